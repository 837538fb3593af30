package wire

//go:generate go run ../gen -spec ../spec/amqp-rabbitmq-0.9.1.json -out methods_gen.go
