package tables

import "github.com/wharfmq/wharf/internal/amqp/wire"

// RoutingKeys returns the keys a message published with key and headers is
// routed on: key, then RabbitMQ's sender-selected distribution keys, the
// CC and BCC headers (a string, or an array of strings; byte arrays count
// as strings). bcc reports a BCC header, which routes but must not reach
// consumers (see WithoutBCC).
func RoutingKeys(key string, headers wire.Table) (keys []string, bcc bool) {
	keys = []string{key}
	add := func(v any) {
		switch x := v.(type) {
		case string:
			keys = append(keys, x)
		case []byte:
			keys = append(keys, string(x))
		case []any:
			for _, e := range x {
				switch s := e.(type) {
				case string:
					keys = append(keys, s)
				case []byte:
					keys = append(keys, string(s))
				}
			}
		}
	}
	if v, ok := headers["CC"]; ok {
		add(v)
	}
	v, bcc := headers["BCC"]
	if bcc {
		add(v)
	}
	return keys, bcc
}

// WithoutBCC returns a shallow copy of headers without the BCC header.
func WithoutBCC(headers wire.Table) wire.Table {
	out := make(wire.Table, len(headers))
	for k, v := range headers {
		if k != "BCC" {
			out[k] = v
		}
	}
	return out
}
