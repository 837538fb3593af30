// Package spec holds the machine-readable definition of AMQP 0-9-1 that the
// AMQP codec is generated from: amqp-rabbitmq-0.9.1.json, the protocol with
// RabbitMQ's extensions (basic.nack, confirm.select, exchange.bind and
// exchange.unbind, connection.blocked and connection.unblocked,
// connection.update-secret), taken from the rabbitmq-codegen project.
//
// The JSON is MIT-licensed (see license_info and the copyright array inside
// the file); LICENSE-rabbitmq-codegen is the licence note of the project it
// comes from. Both travel with the JSON.
//
// # Invariants
//
//   - The JSON is kept byte for byte as published; nothing edits it. Wire
//     quirks (field-table type tags, reserved fields) are handled by the
//     generator and the wire package, not by changing the definition.
//   - The generated codec (internal/amqp/wire/methods_gen.go) is a pure
//     function of this file; a test in the wire package regenerates it and
//     fails if the checked-in output differs.
package spec
