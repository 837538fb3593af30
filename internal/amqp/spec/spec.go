package spec

import _ "embed"

//go:embed amqp-rabbitmq-0.9.1.json
var definition string

// FileName is the name of the definition file in this package.
const FileName = "amqp-rabbitmq-0.9.1.json"

// JSON returns a copy of the AMQP 0-9-1 definition (amqp-rabbitmq-0.9.1.json).
func JSON() []byte { return []byte(definition) }
