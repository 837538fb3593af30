// Package console serves Wharf's live console: a small static page, mounted
// by the gateway at /console/, that connects back to the gateway's
// WebSocket endpoint (/ws, wss:// when the page is served over https) and
// shows what one client sees there.
//
// The page authenticates with an auth request (docs/websocket.md), using
// the user and password given in its URL (?user=guest&password=guest) or
// typed into a login form, joins a group (?group=, "console" by default),
// subscribes to a topic (?topic=) from the latest offset and lists, as they
// arrive, the group's messages and presence events (#messages) and the
// topic's records with partition, offset, key and value (#records). It is
// a development tool: credentials in a URL end up in the browser's history
// (the page removes the password from the address bar once it has read
// it), so use the query form only against a broker on loopback with the
// built-in guest user.
//
// The page is plain HTML, CSS and JavaScript embedded in the binary: no
// build step and nothing loaded from another origin. Every response
// carries a Content-Security-Policy that lets only the page's own
// same-origin script and style run and lets it connect only to its own
// origin; the page builds its DOM with textContent, never with HTML from
// the wire.
package console
