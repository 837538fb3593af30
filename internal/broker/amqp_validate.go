package broker

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// The checks of declarations, with RabbitMQ's rules and reply texts.

// inequivalent is RabbitMQ's refusal of a redeclaration that differs from
// the existing object.
func inequivalent(key, resource, received, current string) error {
	return modelErr(ErrPreconditionFailed, "inequivalent arg '%s' for %s: received %s but current is %s",
		key, resource, received, current)
}

// quoted renders a value as RabbitMQ renders a bare value: '...'.
func quoted(v any) string { return "'" + formatValue(v) + "'" }

// typedValue renders an argument as RabbitMQ renders a typed one.
func typedValue(v any, present bool) string {
	if !present {
		return "none"
	}
	return fmt.Sprintf("the value '%s' of type '%s'", formatValue(v), fieldTypeName(v))
}

// assertFieldEquivalence checks one declare flag of an existing object.
func assertFieldEquivalence(key, resource string, current, received bool) error {
	if current == received {
		return nil
	}
	return inequivalent(key, resource, quoted(received), quoted(current))
}

// assertArgsEquivalence checks the named arguments of a redeclaration
// against the existing ones, as RabbitMQ's assert_args_equivalence does: an
// argument given on one side only differs; given on both, it must have
// equal values (an int and a long of the same value are equal, an int and
// a double are not).
func assertArgsEquivalence(resource string, current, received Table, keys []string) error {
	for _, k := range keys {
		c, cok := current[k]
		r, rok := received[k]
		switch {
		case !cok && !rok:
		case cok && rok:
			if !valuesEqual(c, r) {
				return inequivalent(k, resource, quoted(r), quoted(c))
			}
		default:
			return inequivalent(k, resource, typedValue(r, rok), typedValue(c, cok))
		}
	}
	return nil
}

// assertExchangeEquivalence checks an exchange.declare of an existing
// exchange: type, durable, auto-delete, internal and alternate-exchange
// must match.
func assertExchangeEquivalence(x *amqpExchange, typ ExchangeType, spec ExchangeSpec, args Table) error {
	res := rs("exchange", x.def.Vhost, x.def.Name)
	if x.def.Type != typ {
		return inequivalent("type", res, quoted(string(typ)), quoted(string(x.def.Type)))
	}
	if err := assertFieldEquivalence("durable", res, x.def.Durable, spec.Durable); err != nil {
		return err
	}
	if err := assertFieldEquivalence("auto_delete", res, x.def.AutoDelete, spec.AutoDelete); err != nil {
		return err
	}
	if err := assertFieldEquivalence("internal", res, x.def.Internal, spec.Internal); err != nil {
		return err
	}
	return assertArgsEquivalence(res, x.def.Arguments, args, append([]string{ArgAlternateExchange}, dedupArgKeys()...))
}

// checkExclusiveAccess is RabbitMQ's check_exclusive_access. Lax (every use
// but a declaration) lets anyone use a queue that is not exclusive; strict
// (a declaration) also refuses to redeclare a queue with a different
// exclusive flag. owner is the requester's claim: its connection id when it
// declares the queue exclusive or uses it, "" when it declares it shared.
func checkExclusiveAccess(q *amqpQueue, owner string, strict bool) error {
	if q.def.Owner == owner || !strict && q.def.Owner == "" {
		return nil
	}
	return modelErr(ErrResourceLocked, "cannot obtain exclusive access to locked %s. It could be originally "+
		"declared on another connection or the exclusive property value does not match that of the original declaration.",
		rs("queue", q.def.Vhost, q.def.Name))
}

// queueArgs lists, per queue type, the arguments RabbitMQ knows for it: the
// ones checked on declaration and compared on redeclaration.
func queueArgs(t QueueType) []string {
	switch t {
	case QueueQuorum:
		return []string{"x-dead-letter-exchange", "x-dead-letter-routing-key", "x-dead-letter-strategy",
			"x-expires", "x-max-length", "x-max-length-bytes", "x-max-in-memory-length", "x-max-in-memory-bytes",
			"x-overflow", "x-single-active-consumer", "x-queue-type", "x-quorum-initial-group-size",
			"x-member-placement-tag", "x-delivery-limit", "x-message-ttl", "x-queue-leader-locator",
			"x-consumer-disconnected-timeout", "x-consumer-timeout", "x-delayed-retry-type",
			"x-delayed-retry-min", "x-delayed-retry-max",
			ArgMessageDeduplication, ArgDedupWindowSize, ArgDedupWindowMs}
	case QueueStream:
		return []string{"x-max-length-bytes", "x-queue-type", "x-max-age", "x-stream-max-segment-size-bytes",
			"x-stream-filter-size-bytes", "x-initial-cluster-size", "x-queue-leader-locator"}
	default:
		return []string{"x-expires", "x-message-ttl", "x-dead-letter-exchange", "x-dead-letter-routing-key",
			"x-max-length", "x-max-length-bytes", "x-max-priority", "x-overflow", "x-queue-mode",
			"x-queue-version", "x-single-active-consumer", "x-queue-type", "x-queue-master-locator",
			"x-queue-leader-locator", ArgMessageDeduplication, ArgDedupWindowSize, ArgDedupWindowMs}
	}
}

// queueTypeModule is the name RabbitMQ gives a queue type in messages.
func queueTypeModule(t QueueType) string { return "rabbit_" + string(t) + "_queue" }

// assertQueueEquivalence checks a queue.declare of an existing queue:
// exclusive (405), then durable, auto-delete and the arguments of the
// queue's type (406). x-queue-type compares the types the declarations
// mean, absent meaning classic.
func assertQueueEquivalence(q *amqpQueue, owner string, durable, autoDelete bool, args Table) error {
	if err := checkExclusiveAccess(q, owner, true); err != nil {
		return err
	}
	res := rs("queue", q.def.Vhost, q.def.Name)
	if err := assertFieldEquivalence("durable", res, q.def.Durable, durable); err != nil {
		return err
	}
	if err := assertFieldEquivalence("auto_delete", res, q.def.AutoDelete, autoDelete); err != nil {
		return err
	}
	var received any = string(QueueClassic)
	if t, ok := args["x-queue-type"]; ok && t != "" {
		received = t
	}
	if !valuesEqual(string(q.typ), received) {
		return inequivalent("x-queue-type", res, quoted(received), quoted(string(q.typ)))
	}
	keys := slices.DeleteFunc(queueArgs(q.typ), func(k string) bool { return k == "x-queue-type" })
	return assertArgsEquivalence(res, q.def.Arguments, args, keys)
}

// isIntArg reports whether v is of one of the integer types RabbitMQ
// accepts for integer arguments.
func isIntArg(v any) bool {
	switch v.(type) {
	case int8, int16, int32, int64, uint8, uint16, uint32:
		return true
	}
	return false
}

// queueArgCheck validates one argument of a new queue; the error text is
// what RabbitMQ prints for the reason.
type queueArgCheck func(v any, args Table) string

func checkInt(v any) string {
	if !isIntArg(v) {
		return fmt.Sprintf("\"expected integer, got %s\"", fieldTypeName(v))
	}
	return ""
}

func checkNonNegInt(v any, _ Table) string {
	if e := checkInt(v); e != "" {
		return e
	}
	if neg, _, _ := intValue(v); neg {
		return fmt.Sprintf("{value_negative,%s}", formatValue(v))
	}
	return ""
}

func checkPositiveInt(v any, args Table) string {
	if e := checkNonNegInt(v, args); e != "" {
		return e
	}
	if _, mag, _ := intValue(v); mag == 0 {
		return "{value_zero,0}"
	}
	return ""
}

func checkString(v any, _ Table) string {
	if _, ok := v.(string); !ok {
		return fmt.Sprintf("{unacceptable_type,%s}", fieldTypeName(v))
	}
	return ""
}

func checkOneOf(reason string, values ...string) queueArgCheck {
	return func(v any, args Table) string {
		if e := checkString(v, args); e != "" {
			return e
		}
		if !slices.Contains(values, v.(string)) {
			return reason
		}
		return ""
	}
}

func checkBool(v any, _ Table) string {
	if _, ok := v.(bool); !ok {
		return fmt.Sprintf("{unacceptable_type,%s}", fieldTypeName(v))
	}
	return ""
}

// maxAgePattern is the form of x-max-age: a positive count and a unit.
func maxAgePattern() *regexp.Regexp { return regexp.MustCompile(`^([0-9]+)(Y|M|D|h|m|s)$`) }

func checkMaxAge(v any, args Table) string {
	if e := checkString(v, args); e != "" {
		return e
	}
	m := maxAgePattern().FindStringSubmatch(v.(string))
	if m == nil || strings.TrimLeft(m[1], "0") == "" {
		return "invalid_max_age"
	}
	return ""
}

// queueArgChecks are RabbitMQ's validators of queue arguments (its
// declare_args), applied to the arguments the queue's type knows.
func queueArgChecks(key string) queueArgCheck {
	switch key {
	case "x-expires", "x-quorum-initial-group-size", "x-initial-cluster-size":
		return checkPositiveInt
	case "x-message-ttl", "x-max-length", "x-max-length-bytes", "x-max-in-memory-length", "x-max-in-memory-bytes",
		"x-consumer-timeout", "x-consumer-disconnected-timeout", "x-stream-max-segment-size-bytes",
		"x-stream-filter-size-bytes":
		return checkNonNegInt
	case "x-max-priority":
		return func(v any, args Table) string {
			if e := checkNonNegInt(v, args); e != "" {
				return e
			}
			if _, mag, _ := intValue(v); mag > 255 {
				return fmt.Sprintf("{max_value_exceeded,%d}", mag)
			}
			return ""
		}
	case "x-queue-version":
		return func(v any, args Table) string {
			if e := checkNonNegInt(v, args); e != "" {
				return e
			}
			if _, mag, _ := intValue(v); mag != 2 {
				return fmt.Sprintf("\"unsupported queue version '%d'\"", mag)
			}
			return ""
		}
	case "x-dead-letter-exchange":
		return checkString
	case "x-dead-letter-routing-key":
		return func(v any, args Table) string {
			if e := checkString(v, args); e != "" {
				return e
			}
			if _, ok := args["x-dead-letter-exchange"]; !ok {
				return "routing_key_but_no_dlx_defined"
			}
			return ""
		}
	case "x-dead-letter-strategy":
		return checkOneOf("invalid_dlx_strategy", "at-most-once", "at-least-once")
	case "x-overflow":
		return checkOneOf("invalid_overflow", "drop-head", "reject-publish", "reject-publish-dlx")
	case "x-single-active-consumer":
		return checkBool
	case "x-max-age":
		return checkMaxAge
	case "x-queue-leader-locator":
		return checkOneOf("invalid_queue_locator_arg", "client-local", "balanced")
	case "x-member-placement-tag":
		return func(v any, args Table) string {
			if s, ok := v.(string); !ok || s == "" {
				return "invalid_member_placement_tag_arg"
			}
			return ""
		}
	}
	return dedupArgCheck(key)
}

// checkNewQueue validates the declaration of a new queue as RabbitMQ does:
// x-queue-type names a known type; the dead-letter exchange, if any, is a
// string; each argument the type knows has a valid value; no argument is
// one only other types know; and quorum and stream queues are durable, not
// exclusive and not auto-delete. It returns the queue's type.
func checkNewQueue(vhost, name string, durable, exclusive, autoDelete bool, args Table) (QueueType, error) {
	res := rs("queue", vhost, name)
	typ := QueueClassic
	if v, ok := args["x-queue-type"]; ok {
		s, isString := v.(string)
		switch {
		case !isString:
			return "", modelErr(ErrPreconditionFailed, "invalid arg 'x-queue-type' for %s: {unacceptable_type,%s}", res, fieldTypeName(v))
		case s == "":
		case s == string(QueueClassic) || s == string(QueueQuorum) || s == string(QueueStream):
			typ = QueueType(s)
		default:
			return "", modelErr(ErrPreconditionFailed, "invalid arg 'x-queue-type' for %s: \"unsupported queue type '%s'\"", res, s)
		}
	}
	if v, ok := args["x-dead-letter-exchange"]; ok {
		if _, isString := v.(string); !isString {
			return "", modelErr(ErrPreconditionFailed, "invalid type '%s' for arg 'x-dead-letter-exchange' in %s", fieldTypeName(v), res)
		}
	}
	known := queueArgs(typ)
	for _, k := range known {
		v, ok := args[k]
		check := queueArgChecks(k)
		if !ok || check == nil {
			continue
		}
		if reason := check(v, args); reason != "" {
			return "", modelErr(ErrPreconditionFailed, "invalid arg '%s' for %s: %s", k, res, reason)
		}
	}
	for _, other := range []QueueType{QueueClassic, QueueQuorum, QueueStream} {
		for _, k := range queueArgs(other) {
			if _, ok := args[k]; ok && !slices.Contains(known, k) {
				return "", modelErr(ErrPreconditionFailed, "invalid arg '%s' for %s of queue type %s", k, res, queueTypeModule(typ))
			}
		}
	}
	if typ != QueueClassic {
		switch {
		case autoDelete:
			return "", modelErr(ErrPreconditionFailed, "invalid property 'auto-delete' for %s", res)
		case exclusive:
			return "", modelErr(ErrPreconditionFailed, "invalid property 'exclusive-owner' for %s", res)
		case !durable:
			return "", modelErr(ErrPreconditionFailed, "invalid property 'non-durable' for %s", res)
		}
	}
	return typ, nil
}

// reservedName refuses a new exchange or queue name with the reserved
// prefix amq.
func reservedName(kind, name string) error {
	if strings.HasPrefix(name, "amq.") {
		return modelErr(ErrAccessRefused, "%s name '%s' contains reserved prefix 'amq.*'", kind, name)
	}
	return nil
}

// defaultExchangeRefused is RabbitMQ's refusal of any operation naming the
// default exchange other than publishing to it.
func defaultExchangeRefused() error {
	return modelErr(ErrAccessRefused, "operation not permitted on the default exchange")
}
