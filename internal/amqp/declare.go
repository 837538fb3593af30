package amqp

import (
	"context"
	"strings"

	"github.com/wharfmq/wharf/internal/amqp/tables"
	"github.com/wharfmq/wharf/internal/amqp/wire"
	"github.com/wharfmq/wharf/internal/broker"
)

// The exchange and queue methods: each checks what only the protocol
// knows, calls the core, and answers unless nowait. Refusals of the model
// come back as *broker.ModelError and close the channel with their code.

func (ch *channel) exchangeDeclare(m *wire.ExchangeDeclare) error {
	if !m.Passive {
		switch broker.ExchangeType(m.Type) {
		case broker.ExchangeDirect, broker.ExchangeFanout, broker.ExchangeTopic, broker.ExchangeHeaders:
		default:
			return newCloseError(wire.ReplyCommandInvalid, "invalid exchange type '%s'", m.Type)
		}
	}
	_, err := ch.c.b.DeclareExchange(context.Background(), ch.c.vhost, broker.ExchangeSpec{
		Name: m.Exchange, Type: m.Type, Passive: m.Passive, Durable: m.Durable,
		AutoDelete: m.AutoDelete, Internal: m.Internal, Arguments: tables.ToBroker(m.Arguments),
	})
	if err != nil {
		return err
	}
	return ch.reply(m.NoWait, &wire.ExchangeDeclareOk{})
}

func (ch *channel) exchangeDelete(m *wire.ExchangeDelete) error {
	if err := ch.c.b.DeleteExchange(context.Background(), ch.c.vhost, m.Exchange, m.IfUnused); err != nil {
		return err
	}
	return ch.reply(m.NoWait, &wire.ExchangeDeleteOk{})
}

func (ch *channel) exchangeBind(m *wire.ExchangeBind) error {
	err := ch.c.b.BindExchange(context.Background(), ch.c.vhost, broker.BindingSpec{
		Source: m.Source, Destination: m.Destination, RoutingKey: m.RoutingKey, Arguments: tables.ToBroker(m.Arguments),
	})
	if err != nil {
		return err
	}
	return ch.reply(m.NoWait, &wire.ExchangeBindOk{})
}

func (ch *channel) exchangeUnbind(m *wire.ExchangeUnbind) error {
	err := ch.c.b.UnbindExchange(context.Background(), ch.c.vhost, broker.BindingSpec{
		Source: m.Source, Destination: m.Destination, RoutingKey: m.RoutingKey, Arguments: tables.ToBroker(m.Arguments),
	})
	if err != nil {
		return err
	}
	return ch.reply(m.NoWait, &wire.ExchangeUnbindOk{})
}

func (ch *channel) queueDeclare(m *wire.QueueDeclare) error {
	if strings.HasPrefix(m.Queue, replyQueue) {
		return ch.declareReply(m)
	}
	info, _, err := ch.c.b.DeclareQueue(context.Background(), ch.c.vhost, ch.c.id, broker.QueueSpec{
		Name: m.Queue, Passive: m.Passive, Durable: m.Durable, Exclusive: m.Exclusive,
		AutoDelete: m.AutoDelete, Arguments: tables.ToBroker(m.Arguments),
	})
	if err != nil {
		return err
	}
	ch.lastQueue = info.Name
	var messages, consumers int
	if s, ok, _ := ch.c.b.Stream(ch.c.vhost, ch.c.id, info.Name); ok {
		messages, consumers = int(s.Messages()), s.Consumers()
	} else if q, err := ch.c.b.Queue(ch.c.vhost, ch.c.id, info.Name); err == nil {
		messages, consumers = q.Counts()
	}
	return ch.reply(m.NoWait, &wire.QueueDeclareOk{Queue: info.Name, MessageCount: uint32(messages), ConsumerCount: uint32(consumers)})
}

func (ch *channel) queueBind(m *wire.QueueBind) error {
	name, key := m.Queue, m.RoutingKey
	if name == "" && key == "" {
		key = ch.lastQueue // RabbitMQ: both empty means the last queue for both
	}
	name, err := ch.queueName(name)
	if err != nil {
		return err
	}
	err = ch.c.b.BindQueue(context.Background(), ch.c.vhost, ch.c.id, broker.BindingSpec{
		Source: m.Exchange, Destination: name, RoutingKey: key, Arguments: tables.ToBroker(m.Arguments),
	})
	if err != nil {
		return err
	}
	return ch.reply(m.NoWait, &wire.QueueBindOk{})
}

func (ch *channel) queueUnbind(m *wire.QueueUnbind) error {
	name, err := ch.queueName(m.Queue)
	if err != nil {
		return err
	}
	err = ch.c.b.UnbindQueue(context.Background(), ch.c.vhost, ch.c.id, broker.BindingSpec{
		Source: m.Exchange, Destination: name, RoutingKey: m.RoutingKey, Arguments: tables.ToBroker(m.Arguments),
	})
	if err != nil {
		return err
	}
	return ch.c.sendMethod(ch.id, &wire.QueueUnbindOk{})
}

func (ch *channel) queuePurge(m *wire.QueuePurge) error {
	q, err := ch.queue(m.Queue)
	if err != nil {
		return err
	}
	n := q.Purge()
	return ch.reply(m.NoWait, &wire.QueuePurgeOk{MessageCount: uint32(n)})
}

func (ch *channel) queueDelete(m *wire.QueueDelete) error {
	name, err := ch.queueName(m.Queue)
	if err != nil {
		return err
	}
	n, err := ch.c.b.DeleteQueue(context.Background(), ch.c.vhost, ch.c.id, name, broker.QueueDeleteCheck{IfUnused: m.IfUnused, IfEmpty: m.IfEmpty})
	if err != nil {
		return err
	}
	return ch.reply(m.NoWait, &wire.QueueDeleteOk{MessageCount: uint32(n)})
}

// reply sends a method's answer unless the client asked for nowait.
func (ch *channel) reply(noWait bool, m wire.Method) error {
	if noWait {
		return nil
	}
	return ch.c.sendMethod(ch.id, m)
}
