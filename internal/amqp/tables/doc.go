// Package tables converts AMQP field tables as the wire codec decodes them
// into the core's tables (broker.Table), for declare arguments and for
// routing on headers, and reads the routing keys a publish's CC and BCC
// headers add (sender-selected distribution). It is shared by the AMQP
// listener and the gateway, which both take AMQP tables from clients; it
// holds no state.
package tables
