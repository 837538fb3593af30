package service

import (
	"github.com/wharfmq/wharf/internal/amqp/wire"
	"github.com/wharfmq/wharf/internal/broker"
)

// A record written from an AMQP message (broker.RecordFromMessage) carries
// the message's encoded basic properties in its x-amqp-properties header
// and the exchange it was published to in x-amqp-exchange. The topic faces
// hand those out decoded, in the form the queue faces use, so that a
// client can publish the message again with the same properties:
//   - x-amqp-properties that decode become FetchedRecord.Properties and
//     leave the record's headers (they are opaque bytes); ones that do not
//     decode stay among the headers and no properties are given;
//   - x-amqp-exchange becomes FetchedRecord.Exchange and stays among the
//     headers, as readable text other Kafka clients see too.

// recordAMQP returns the AMQP properties and exchange a record's headers
// carry, and the headers left to show.
func recordAMQP(hs []broker.Header) (props *Properties, exchange string, rest []broker.Header) {
	at := -1
	for i, h := range hs {
		switch h.Key {
		case broker.HeaderAMQPProperties:
			at = i
		case broker.HeaderAMQPExchange:
			exchange = string(h.Value)
		}
	}
	if at < 0 {
		return nil, exchange, hs
	}
	w, err := wire.DecodeProperties(hs[at].Value)
	if err != nil {
		return nil, exchange, hs
	}
	p := FromWire(&w)
	rest = make([]broker.Header, 0, len(hs)-1)
	for _, h := range hs {
		if h.Key != broker.HeaderAMQPProperties {
			rest = append(rest, h)
		}
	}
	return &p, exchange, rest
}
