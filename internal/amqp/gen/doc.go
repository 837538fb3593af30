// Command gen writes the generated part of the AMQP 0-9-1 codec
// (internal/amqp/wire/methods_gen.go) from the machine-readable definition.
// It is run by go generate in internal/amqp/wire:
//
//	go run ../gen -spec ../spec/amqp-rabbitmq-0.9.1.json -out methods_gen.go
//
// It owns nothing but that command line: the generator itself is
// internal/amqp/internal/gen, and a test in internal/amqp/wire fails when the
// checked-in output differs from what it would write.
package main
