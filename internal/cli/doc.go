// Package cli is the administration and data command line of wharf: topic,
// queue, exchange, binding, group and user commands, produce and consume.
// Every command talks to a running broker over its HTTP listener: the
// REST admin API (/api/v1, see /api/openapi.json) for administration and
// producing, and the WebSocket protocol (/ws, docs/websocket.md) for
// consuming, so the CLI needs nothing the broker does not already serve.
//
// The server, user and password come from flags or WHARF_SERVER,
// WHARF_USER and WHARF_PASSWORD (default http://127.0.0.1:8080 and
// guest/guest). Output is a table for people or JSON (-o json) for
// scripts; data commands read standard input and write standard output
// line by line and report progress on standard error.
package cli
