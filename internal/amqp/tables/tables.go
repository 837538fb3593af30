package tables

import (
	"github.com/wharfmq/wharf/internal/amqp/wire"
	"github.com/wharfmq/wharf/internal/broker"
)

// ToBroker converts a wire table, and the tables, arrays and decimals
// inside it, to the core's types. A nil table stays nil.
func ToBroker(t wire.Table) broker.Table {
	if t == nil {
		return nil
	}
	out := make(broker.Table, len(t))
	for k, v := range t {
		out[k] = value(v)
	}
	return out
}

func value(v any) any {
	switch x := v.(type) {
	case wire.Table:
		return ToBroker(x)
	case wire.Decimal:
		return broker.Decimal{Scale: x.Scale, Value: x.Value}
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = value(e)
		}
		return out
	}
	return v
}
