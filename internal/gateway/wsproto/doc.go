// Package wsproto is the wire format of Wharf's WebSocket protocol, version
// 1 (docs/websocket.md): the requests a client sends, decoded and checked,
// and the frames the server sends, encoded. It does no I/O and holds no
// state.
//
// Invariants:
//   - Decode never panics and accepts only what the document describes: an
//     unknown type or field, or a missing or malformed one, is an *Error
//     that names it.
//   - Byte fields (keys, values, bodies, header values) cross as UTF-8
//     strings, or base64 in the matching *_b64 field, or raw as the payload
//     of a binary frame; a request gives at most one of the three.
//   - Encoding a server frame is deterministic, so a broadcast is encoded
//     once and the same bytes go to every recipient.
package wsproto
