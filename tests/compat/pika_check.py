#!/usr/bin/env python3
"""Compatibility checks with pika, the usual Python AMQP 0-9-1 client.

Usage: pika_check.py URL [RUN_ID [CHECK...]]

  URL     an AMQP URL such as amqp://guest:guest@127.0.0.1:5672/ (pika reads
          a path of "/" as the default virtual host "/")
  RUN_ID  carried by every queue and exchange name, so that reruns against a
          broker that keeps running do not meet each other's leftovers
          (default: seconds since the epoch and the process id)
  CHECK   one or more of the checks below (default: all of them but the
          two restart ones, which run only when named)

  confirm        With publisher confirms, N persistent messages with
                 properties go to a durable queue, each one confirmed, and the
                 queue counts N. A consumer with manual acks and a prefetch of
                 10 gets no more than 10 unacknowledged messages, then all N
                 in order, exactly once, with their properties, and acks them
                 (with multiple=True every 10 messages); the queue then counts
                 0 messages and 0 consumers.
  topic          A topic exchange routes keys to queues bound with a.*, a.#,
                 #.z, *.b.*, #, a.#.c and a.b.c ('#' also matches zero words:
                 a.# matches "a", #.z matches "z"); a queue bound twice gets a
                 message that matches both bindings once.
  headers        A headers exchange with x-match all, x-match any, no x-match
                 (all is the default) and an integer header value.
  mandatory      With confirms, a mandatory publish that no queue takes
                 raises UnroutableError carrying the returned message (reply
                 code 312 NO_ROUTE); without mandatory the same publish is
                 confirmed silently; once a queue is bound the mandatory
                 publish goes through.
  requeue        basic.reject(requeue=True) after basic.get and
                 basic.nack(requeue=True) on a consumer deliver the message
                 again with redelivered=True; basic.reject(requeue=False)
                 drops it.
  direct-reply-to  RabbitMQ's direct reply-to: a requester consumes
                 amq.rabbitmq.reply-to with auto_ack and publishes a request
                 with that reply_to; a responder on another connection gets
                 the request with basic.get, sees a generated reply_to
                 (amq.rabbitmq.reply-to.<opaque>) and publishes the reply to
                 the default exchange with it as routing key, mandatory and
                 confirmed; the requester's consumer gets the reply with its
                 correlation_id. Consuming the pseudo-queue with manual acks,
                 and publishing with that reply_to on a channel that does not
                 consume it, close the channel with 406.
  channel-error  A passive declare of a missing queue closes the channel with
                 404 (ChannelClosedByBroker); so does a confirmed publish to a
                 missing exchange; the connection stays open and a new channel
                 works.
  dead-letter    A queue with x-dead-letter-exchange (a fanout exchange
                 bound to a dead-letter queue): a message rejected with
                 requeue=False arrives in the dead-letter queue with its body
                 and headers, an x-death entry as pika decodes it (count 1,
                 reason rejected, the queue, exchange "" and routing-keys [the
                 queue]) and x-first-death-reason/queue.
  priority       A queue with x-max-priority 10: messages of priorities
                 3, 1, 5, 2, 4 and 5 again, published with no consumer, are
                 then consumed highest priority first, in publish order within
                 a priority.
  ttl-dead-letter  A message published with expiration "100" to a queue with
                 x-dead-letter-exchange expires and arrives in the
                 dead-letter queue with an x-death entry of reason expired
                 and original-expiration "100", and no expiration of its own.
  delivery-limit A quorum queue with x-delivery-limit 1 and a dead-letter
                 exchange: the first delivery has no x-delivery-count, the
                 one after a basic.nack(requeue=True) has x-delivery-count 1,
                 and the next nack with requeue dead-letters the message
                 with an x-death entry of reason delivery_limit.

  restart-publish  Half of a check across a broker restart: with publisher
                 confirms, 50 persistent messages with distinct bodies and,
                 interleaved with them, 10 transient ones (delivery_mode 1)
                 go to the durable queue compat-pika-restart-RUN_ID, each one
                 confirmed; the queue counts 60. The queue is left in place.
  restart-verify The other half, once the broker has restarted: a passive
                 declare of that queue counts exactly 50 messages; a consumer
                 with manual acks gets the 50 persistent bodies in publish
                 order, exactly once, persistent, and none of the transient
                 ones, and acks them; the queue then counts 0 and is deleted.

Every check deletes the queues and exchanges it declared, except that
restart-publish leaves its queue (when it passes) for restart-verify. Exits 0 on
success; on failure prints "FAIL: <reason>" and exits 1. Waits for
deliveries are bounded; a broker that never answers a request is left to
the caller's time limit, and the last line printed says what was being done.
"""

import argparse
import os
import sys
import time
import traceback
import urllib.parse

import pika
from pika.exceptions import AMQPConnectionError, ChannelClosedByBroker, UnroutableError

N = 100
PREFETCH = 10
TIMEOUT = 10.0  # seconds to wait for a delivery that should come
QUIET = 0.5  # seconds to wait to be sure that nothing more comes


class CheckFailed(Exception):
    pass


def log(msg):
    print(msg, flush=True)


def fail(msg):
    raise CheckFailed(msg)


def expect(cond, msg):
    if not cond:
        fail(msg)


class Resources:
    """Names a check declares, deleted again when the check ends."""

    def __init__(self, run_id, check):
        self.run_id = run_id
        self.prefix = "compat-pika-%s-%s" % (check, run_id)
        self.queues = []
        self.exchanges = []

    def queue(self, suffix):
        name = "%s-%s" % (self.prefix, suffix)
        self.queues.append(name)
        return name

    def exchange(self, suffix):
        name = "%s-%s" % (self.prefix, suffix)
        self.exchanges.append(name)
        return name

    def delete(self, conn):
        """Deletes everything, each on a new channel (a check's own channel,
        or the previous delete's, may have been closed by the broker).
        Returns the errors as strings."""
        errors = []
        todo = [("queue", q, lambda ch, q=q: ch.queue_delete(q)) for q in self.queues]
        todo += [("exchange", x, lambda ch, x=x: ch.exchange_delete(x)) for x in self.exchanges]
        for kind, name, delete in todo:
            try:
                ch = conn.channel()
                delete(ch)
                ch.close()
            except Exception as e:  # report it, and go on with the rest
                errors.append("%s.delete %s: %r" % (kind, name, e))
        return errors


_described = False


def connect(url):
    params = pika.URLParameters(url)
    # Fail fast instead of retrying: a refused connection is a result.
    params.connection_attempts = 1
    params.socket_timeout = TIMEOUT
    params.stack_timeout = 2 * TIMEOUT
    params.blocked_connection_timeout = 3 * TIMEOUT
    try:
        conn = pika.BlockingConnection(params)
    except AMQPConnectionError as e:
        fail("cannot connect to %s: %r" % (redact(url), e))
    global _described
    if not _described:
        # Once per run: what the broker said in connection.start and tune.
        _described = True
        try:
            # Not public API: pika keeps the server's properties and the
            # negotiated limits on the connection behind the blocking one.
            impl = conn._impl
            props = impl.server_properties or {}
            caps = impl.server_capabilities or {}
            log("broker: %s %s, capabilities %s, frame_max %s, channel_max %s, heartbeat %s" % (
                _text(props.get("product")), _text(props.get("version")),
                " ".join(sorted(k for k, v in caps.items() if v)) or "(none)",
                impl.params.frame_max, impl.params.channel_max, impl.params.heartbeat))
        except AttributeError:
            pass  # another pika: only this description is lost
    return conn


def _text(v):
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def redact(url):
    """url without its password."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def passive_counts(ch, queue):
    """(message_count, consumer_count) from a passive queue.declare."""
    ok = ch.queue_declare(queue, passive=True)
    return ok.method.message_count, ok.method.consumer_count


def drain_get(ch, queue, limit=1000):
    """Every body left in queue, in order, with basic.get and auto-ack."""
    bodies = []
    while len(bodies) < limit:
        method, _props, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            return bodies
        bodies.append(body)
    fail("queue %s still not empty after %d basic.get" % (queue, limit))


def enable_confirms(conn, ch):
    """confirm.select. pika refuses it (MethodNotImplemented) unless the
    broker's connection.start lists both capabilities checked here."""
    missing = [name for name, ok in (
        ("publisher_confirms", conn.publisher_confirms_supported),
        ("basic.nack", conn.basic_nack_supported)) if not ok]
    if missing:
        fail("connection.start did not list %s as true in the server's "
             "capabilities; pika's confirm_delivery needs publisher_confirms "
             "and basic.nack" % " and ".join(missing))
    ch.confirm_delivery()


def confirmed_publish(ch, exchange, key, body, **kw):
    """basic.publish on a channel in confirm mode; pika raises if the broker
    nacks it (NackError) or returns it (UnroutableError), so returning means
    the broker confirmed it."""
    ch.basic_publish(exchange, key, body, **kw)


def wait_get(ch, queue):
    """basic.get with auto-ack, polling until a message arrives (dead letters
    and expiries are asynchronous); fails after TIMEOUT."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        method, props, body = ch.basic_get(queue, auto_ack=True)
        if method is not None:
            return props, body
        if time.monotonic() > deadline:
            fail("no message in %s within %.0fs" % (queue, TIMEOUT))
        time.sleep(0.05)


def dead_letter_pair(ch, res):
    """A fanout dead-letter exchange and the queue bound to it."""
    dlx = res.exchange("dlx")
    dlq = res.queue("dlq")
    ch.exchange_declare(dlx, exchange_type="fanout")
    ch.queue_declare(dlq)
    ch.queue_bind(dlq, dlx)
    return dlx, dlq


def one_death(headers):
    """The single x-death entry of a dead-lettered message's headers."""
    deaths = (headers or {}).get("x-death")
    expect(isinstance(deaths, list) and len(deaths) == 1,
           "x-death is %r, want a list of one entry" % (deaths,))
    d = deaths[0]
    expect(isinstance(d, dict), "x-death[0] is %r, want a table" % (d,))
    return d


# ---------------------------------------------------------------- checks


def check_confirm(conn, res):
    q = res.queue("durable")
    ch = conn.channel()
    log("queue.declare %s (durable)" % q)
    ok = ch.queue_declare(q, durable=True)
    expect(ok.method.queue == q, "declare-ok names queue %r, want %r" % (ok.method.queue, q))
    expect(ok.method.message_count == 0,
           "new queue %s counts %d messages" % (q, ok.method.message_count))

    log("confirm.select")
    enable_confirms(conn, ch)

    def props(i):
        return pika.BasicProperties(
            delivery_mode=2,  # persistent
            content_type="text/plain",
            message_id="msg-%d" % i,
            headers={"seq": i, "src": "pika"},
        )

    def body(i):
        return ("message %03d \u00e9" % i).encode()

    log("publishing %d persistent messages, each confirmed" % N)
    for i in range(N):
        confirmed_publish(ch, "", q, body(i), properties=props(i), mandatory=True)
    log("all %d publishes confirmed" % N)

    count, consumers = passive_counts(ch, q)
    expect(count == N, "after %d confirmed publishes the queue counts %d messages" % (N, count))
    expect(consumers == 0, "the queue counts %d consumers before any consume" % consumers)
    log("queue.declare passive: %d messages" % count)

    ch.basic_qos(prefetch_count=PREFETCH)
    log("basic.qos prefetch_count=%d, basic.consume with manual ack" % PREFETCH)
    got = []
    last_tag = 0
    for method, properties, b in ch.consume(q, auto_ack=False, inactivity_timeout=TIMEOUT):
        if method is None:
            fail("no delivery within %.0fs after %d of %d messages" % (TIMEOUT, len(got), N))
        i = len(got)
        expect(b == body(i), "delivery %d: body %r, want %r (out of order or lost)" % (i, b, body(i)))
        expect(not method.redelivered, "delivery %d is flagged redelivered" % i)
        expect(method.delivery_tag > last_tag,
               "delivery tag %d after %d: tags must increase" % (method.delivery_tag, last_tag))
        last_tag = method.delivery_tag
        expect(method.routing_key == q and method.exchange == "",
               "delivery %d: exchange %r routing key %r, want '' and %r"
               % (i, method.exchange, method.routing_key, q))
        want = props(i)
        for attr in ("delivery_mode", "content_type", "message_id", "headers"):
            g, w = getattr(properties, attr), getattr(want, attr)
            expect(g == w, "delivery %d: property %s is %r, want %r" % (i, attr, g, w))
        got.append(b)
        if len(got) == PREFETCH and len(got) < N:
            # Nothing acked yet: the broker must hold the rest back.
            conn.process_data_events(time_limit=QUIET)
            extra = ch.get_waiting_message_count()
            expect(extra == 0,
                   "with prefetch_count=%d and no ack, %d more messages arrived" % (PREFETCH, extra))
            log("prefetch: no delivery beyond %d unacknowledged messages" % PREFETCH)
        if len(got) % PREFETCH == 0 or len(got) == N:
            ch.basic_ack(method.delivery_tag, multiple=True)
        if len(got) == N:
            break
    log("consumed %d messages in order with their properties, acked" % len(got))

    # Exactly once: nothing more arrives.
    conn.process_data_events(time_limit=QUIET)
    extra = ch.get_waiting_message_count()
    expect(extra == 0, "%d messages arrived after all %d were consumed" % (extra, N))
    requeued = ch.cancel()
    expect(requeued == 0, "basic.cancel left %d unconsumed deliveries" % requeued)

    count, consumers = passive_counts(ch, q)
    expect(count == 0, "after acking all messages the queue counts %d" % count)
    expect(consumers == 0, "after basic.cancel the queue counts %d consumers" % consumers)
    log("queue.declare passive: 0 messages, 0 consumers")
    ch.close()


# Topic bindings and the keys each queue must get, in publish order. Worked
# out by hand from the AMQP rules: '*' is exactly one word, '#' zero or more.
TOPIC_KEYS = [
    "a", "a.b", "a.b.c", "a.c", "z", "a.z", "x.b.y", "a.b.z", "a.x.y.c",
    "aa.b", "b.a", "x.y.z", "a.b.c.d",
]
TOPIC_WANT = {
    "a.*": ["a.b", "a.c", "a.z"],
    "a.#": ["a", "a.b", "a.b.c", "a.c", "a.z", "a.b.z", "a.x.y.c", "a.b.c.d"],
    "#.z": ["z", "a.z", "a.b.z", "x.y.z"],
    "*.b.*": ["a.b.c", "x.b.y", "a.b.z"],
    "#": TOPIC_KEYS,
    "a.#.c": ["a.b.c", "a.c", "a.x.y.c"],
    "a.b.c": ["a.b.c"],
}
# One queue bound twice; "a.z" matches both bindings and arrives once.
TOPIC_TWICE = ("a.*", "*.z")
TOPIC_TWICE_WANT = ["a.b", "a.c", "a.z"]


def check_topic(conn, res):
    ch = conn.channel()
    x = res.exchange("topic")
    log("exchange.declare %s (topic)" % x)
    ch.exchange_declare(x, exchange_type="topic")
    queues = {}
    for i, pattern in enumerate(TOPIC_WANT):
        q = res.queue("q%d" % i)
        ch.queue_declare(q)
        ch.queue_bind(q, x, routing_key=pattern)
        queues[pattern] = q
    twice = res.queue("twice")
    ch.queue_declare(twice)
    for pattern in TOPIC_TWICE:
        ch.queue_bind(twice, x, routing_key=pattern)
    log("bound %d queues: %s, and one with %s" % (
        len(queues) + 1, " ".join(TOPIC_WANT), " and ".join(TOPIC_TWICE)))

    enable_confirms(conn, ch)
    for key in TOPIC_KEYS:
        confirmed_publish(ch, x, key, key.encode())
    log("published and confirmed keys %s" % " ".join(TOPIC_KEYS))

    checks = [(p, queues[p], TOPIC_WANT[p]) for p in TOPIC_WANT]
    checks.append((" and ".join(TOPIC_TWICE), twice, TOPIC_TWICE_WANT))
    for pattern, q, want in checks:
        count, _ = passive_counts(ch, q)
        got = [b.decode() for b in drain_get(ch, q)]
        expect(got == want, "queue bound with %s got keys %s, want %s" % (pattern, got, want))
        expect(count == len(want), "queue bound with %s counted %d messages, want %d"
               % (pattern, count, len(want)))
        log("  %-12s got %s" % (pattern, " ".join(got)))
    ch.close()


# Headers bindings (arguments) and message headers, with the messages each
# queue must get, in publish order.
HEADERS_BINDINGS = {
    "all": {"x-match": "all", "format": "pdf", "type": "report"},
    "any": {"x-match": "any", "format": "pdf", "type": "report"},
    "default": {"format": "pdf"},  # no x-match: "all"
    "int": {"x-match": "all", "version": 2},
}
HEADERS_MESSAGES = [
    ("m1", {"format": "pdf", "type": "report"}),
    ("m2", {"format": "pdf", "type": "log"}),
    ("m3", {"format": "zip", "type": "report", "extra": "x"}),
    ("m4", {"format": "pdf", "type": "report", "extra": 1}),
    ("m5", {"other": "x"}),
    ("m6", None),
    ("m7", {"format": "PDF"}),
    ("m8", {"type": "report"}),
    ("m9", {"version": 2}),
]
HEADERS_WANT = {
    "all": ["m1", "m4"],
    "any": ["m1", "m2", "m3", "m4", "m8"],
    "default": ["m1", "m2", "m4"],
    "int": ["m9"],
}


def check_headers(conn, res):
    ch = conn.channel()
    x = res.exchange("headers")
    log("exchange.declare %s (headers)" % x)
    ch.exchange_declare(x, exchange_type="headers")
    queues = {}
    for name, args in HEADERS_BINDINGS.items():
        q = res.queue(name)
        ch.queue_declare(q)
        # The routing key plays no part in a headers exchange.
        ch.queue_bind(q, x, routing_key="ignored", arguments=args)
        queues[name] = q
        log("  bound %s with %s" % (name, args))

    enable_confirms(conn, ch)
    for body, headers in HEADERS_MESSAGES:
        confirmed_publish(ch, x, "key-" + body, body.encode(),
                          properties=pika.BasicProperties(headers=headers))
    log("published and confirmed %s" % ", ".join("%s %s" % m for m in HEADERS_MESSAGES))

    for name, want in HEADERS_WANT.items():
        got = [b.decode() for b in drain_get(ch, queues[name])]
        expect(got == want, "queue bound with %s got %s, want %s"
               % (HEADERS_BINDINGS[name], got, want))
        log("  %-8s got %s" % (name, " ".join(got)))
    ch.close()


def check_mandatory(conn, res):
    ch = conn.channel()
    x = res.exchange("direct")
    log("exchange.declare %s (direct, no bindings)" % x)
    ch.exchange_declare(x, exchange_type="direct")
    enable_confirms(conn, ch)

    log("mandatory publish with key nowhere")
    try:
        confirmed_publish(ch, x, "nowhere", b"unroutable", mandatory=True)
    except UnroutableError as e:
        expect(len(e.messages) == 1, "UnroutableError with %d returned messages, want 1" % len(e.messages))
        ret = e.messages[0]
        m = ret.method
        log("  returned: reply %d %s, exchange %s, key %s, body %r"
            % (m.reply_code, m.reply_text, m.exchange, m.routing_key, ret.body))
        expect(m.reply_code == 312, "basic.return reply code %d, want 312 (NO_ROUTE)" % m.reply_code)
        expect(m.exchange == x and m.routing_key == "nowhere",
               "basic.return names exchange %r key %r, want %r and 'nowhere'"
               % (m.exchange, m.routing_key, x))
        expect(ret.body == b"unroutable", "basic.return body %r, want b'unroutable'" % ret.body)
    else:
        fail("mandatory publish to an exchange without bindings was confirmed, "
             "want basic.return (UnroutableError)")

    log("the same publish without mandatory is confirmed and dropped")
    confirmed_publish(ch, x, "nowhere", b"dropped")

    q = res.queue("bound")
    ch.queue_declare(q)
    ch.queue_bind(q, x, routing_key="somewhere")
    log("mandatory publish with key somewhere, bound to %s" % q)
    confirmed_publish(ch, x, "somewhere", b"routed", mandatory=True)
    got = drain_get(ch, q)
    expect(got == [b"routed"], "the bound queue got %r, want [b'routed']" % got)
    ch.close()


def check_requeue(conn, res):
    ch = conn.channel()
    q = res.queue("requeue")
    ch.queue_declare(q)
    enable_confirms(conn, ch)

    # basic.reject(requeue=True) after basic.get.
    confirmed_publish(ch, "", q, b"reject-me")
    method, _, body = ch.basic_get(q, auto_ack=False)
    expect(method is not None, "basic.get found the queue empty after a confirmed publish")
    expect(body == b"reject-me" and not method.redelivered,
           "first basic.get: body %r redelivered %s, want b'reject-me' False" % (body, method.redelivered))
    log("basic.get: %r, redelivered=%s; basic.reject requeue=True" % (body, method.redelivered))
    ch.basic_reject(method.delivery_tag, requeue=True)
    method, _, body = ch.basic_get(q, auto_ack=False)
    expect(method is not None, "basic.get found the queue empty after basic.reject(requeue=True)")
    expect(body == b"reject-me", "after the reject basic.get returned %r" % body)
    expect(method.redelivered, "the requeued message is not flagged redelivered")
    log("basic.get again: %r, redelivered=%s" % (body, method.redelivered))
    ch.basic_ack(method.delivery_tag)

    # basic.nack(requeue=True) on a consumer: delivered again to it.
    confirmed_publish(ch, "", q, b"nack-me")
    deliveries = []
    for method, _, body in ch.consume(q, auto_ack=False, inactivity_timeout=TIMEOUT):
        if method is None:
            fail("no delivery within %.0fs; deliveries so far %r" % (TIMEOUT, deliveries))
        deliveries.append((body, method.redelivered))
        if len(deliveries) == 1:
            log("deliver: %r, redelivered=%s; basic.nack requeue=True" % (body, method.redelivered))
            ch.basic_nack(method.delivery_tag, requeue=True)
        else:
            log("deliver again: %r, redelivered=%s" % (body, method.redelivered))
            ch.basic_ack(method.delivery_tag)
            break
    expect(deliveries == [(b"nack-me", False), (b"nack-me", True)],
           "deliveries (body, redelivered) %r, want [(b'nack-me', False), (b'nack-me', True)]"
           % deliveries)
    ch.cancel()

    # basic.reject(requeue=False) drops the message.
    confirmed_publish(ch, "", q, b"drop-me")
    method, _, body = ch.basic_get(q, auto_ack=False)
    expect(method is not None and body == b"drop-me", "basic.get did not return b'drop-me'")
    ch.basic_reject(method.delivery_tag, requeue=False)
    log("basic.reject requeue=False of %r" % body)
    count, _ = passive_counts(ch, q)
    expect(count == 0, "after basic.reject(requeue=False) the queue counts %d messages" % count)
    method, _, body = ch.basic_get(q, auto_ack=False)
    expect(method is None, "basic.get after basic.reject(requeue=False) returned %r" % body)
    log("the queue is empty")
    ch.close()


def check_channel_error(conn, res):
    missing_q = res.prefix + "-missing"  # never declared, nothing to delete
    ch = conn.channel()
    log("queue.declare passive %s (missing)" % missing_q)
    try:
        ch.queue_declare(missing_q, passive=True)
    except ChannelClosedByBroker as e:
        log("  channel closed: %d %s" % (e.reply_code, e.reply_text))
        expect(e.reply_code == 404, "reply code %d, want 404 (NOT_FOUND)" % e.reply_code)
    else:
        fail("passive declare of a missing queue succeeded")
    expect(ch.is_closed, "the channel is still open after the broker closed it")
    expect(conn.is_open, "the connection closed with the channel")

    missing_x = res.prefix + "-missing-exchange"
    ch = conn.channel()
    enable_confirms(conn, ch)
    log("confirmed publish to missing exchange %s" % missing_x)
    try:
        ch.basic_publish(missing_x, "k", b"nowhere")
    except ChannelClosedByBroker as e:
        log("  channel closed: %d %s" % (e.reply_code, e.reply_text))
        expect(e.reply_code == 404, "reply code %d, want 404 (NOT_FOUND)" % e.reply_code)
    else:
        fail("publish to a missing exchange was confirmed")
    expect(conn.is_open, "the connection closed with the channel")

    ch = conn.channel()
    q = res.queue("after-error")
    log("a new channel: declare %s, publish, get" % q)
    ch.queue_declare(q)
    ch.basic_publish("", q, b"still works")
    method, _, body = ch.basic_get(q, auto_ack=True)
    expect(method is not None and body == b"still works",
           "basic.get on the new channel returned %r" % (body,))
    ch.close()


def check_direct_reply_to(conn, res):
    reply_queue = "amq.rabbitmq.reply-to"
    q = res.queue("rpc")
    ch = conn.channel()
    ch.queue_declare(q)
    replies = []
    ch.basic_consume(reply_queue, lambda _ch, method, props, body: replies.append((method, props, body)),
                     auto_ack=True)
    log("basic.consume %s (auto_ack), request to %s" % (reply_queue, q))
    ch.basic_publish("", q, b"question",
                     properties=pika.BasicProperties(reply_to=reply_queue, correlation_id="c-1"))

    responder = connect(res.url)
    try:
        rch = responder.channel()
        enable_confirms(responder, rch)
        deadline = time.monotonic() + TIMEOUT
        while True:
            method, props, body = rch.basic_get(q, auto_ack=True)
            if method is not None:
                break
            expect(time.monotonic() < deadline, "the request did not reach %s within %.0fs" % (q, TIMEOUT))
            responder.sleep(0.05)
        log("responder got %r, reply_to %s" % (body, props.reply_to))
        expect(body == b"question", "request body %r, want b'question'" % body)
        expect(props.reply_to.startswith(reply_queue + ".") and len(props.reply_to) > len(reply_queue) + 1,
               "request reply_to %r, want %s.<opaque>" % (props.reply_to, reply_queue))
        confirmed_publish(rch, "", props.reply_to, b"answer", mandatory=True,
                          properties=pika.BasicProperties(correlation_id=props.correlation_id))
    finally:
        responder.close()

    deadline = time.monotonic() + TIMEOUT
    while not replies and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.1)
    expect(len(replies) == 1, "the requester got %d replies, want 1" % len(replies))
    method, props, body = replies[0]
    log("requester got %r, correlation_id %s" % (body, props.correlation_id))
    expect(body == b"answer" and props.correlation_id == "c-1",
           "reply %r correlation_id %r, want b'answer' and 'c-1'" % (body, props.correlation_id))
    ch.close()

    ch = conn.channel()
    log("basic.consume %s with manual acks" % reply_queue)
    try:
        ch.basic_consume(reply_queue, lambda *a: None, auto_ack=False)
        conn.process_data_events(time_limit=QUIET)
        ch.basic_qos(prefetch_count=1)  # a round trip: the close arrives first
    except ChannelClosedByBroker as e:
        log("  channel closed: %d %s" % (e.reply_code, e.reply_text))
        expect(e.reply_code == 406, "reply code %d, want 406 (PRECONDITION_FAILED)" % e.reply_code)
    else:
        fail("a manual-ack consumer of %s was accepted" % reply_queue)

    ch = conn.channel()
    enable_confirms(conn, ch)
    log("publish with reply_to %s on a channel that does not consume it" % reply_queue)
    try:
        ch.basic_publish("", q, b"refused", properties=pika.BasicProperties(reply_to=reply_queue))
    except ChannelClosedByBroker as e:
        log("  channel closed: %d %s" % (e.reply_code, e.reply_text))
        expect(e.reply_code == 406, "reply code %d, want 406 (PRECONDITION_FAILED)" % e.reply_code)
    else:
        fail("a request with reply_to %s was accepted without a reply consumer" % reply_queue)
    expect(conn.is_open, "the connection closed with the channel")


# The restart checks: restart-publish before the broker restarts,
# restart-verify after. Persistent messages are numbered 0..RESTART_N-1; a
# transient one follows every RESTART_N/RESTART_TRANSIENT-th of them.
RESTART_N = 50
RESTART_TRANSIENT = 10


def restart_queue(res):
    """The queue both restart checks use; not derived from the check name,
    as res.queue would, since the two checks share it."""
    return "compat-pika-restart-%s" % res.run_id


def restart_body(i):
    return ("persistent %02d \u00e9" % i).encode()


def restart_transient_body(j):
    return ("transient %02d" % j).encode()


def check_restart_publish(conn, res):
    q = restart_queue(res)
    # Deleted if this check fails; left for restart-verify if it passes.
    res.queues.append(q)
    ch = conn.channel()
    log("queue.declare %s (durable)" % q)
    ok = ch.queue_declare(q, durable=True)
    expect(ok.method.message_count == 0,
           "new queue %s counts %d messages" % (q, ok.method.message_count))
    log("confirm.select")
    enable_confirms(conn, ch)

    every = RESTART_N // RESTART_TRANSIENT
    transient = 0
    for i in range(RESTART_N):
        confirmed_publish(ch, "", q, restart_body(i), mandatory=True,
                          properties=pika.BasicProperties(
                              delivery_mode=2, message_id="persistent-%d" % i))
        if (i + 1) % every == 0:
            confirmed_publish(ch, "", q, restart_transient_body(transient), mandatory=True,
                              properties=pika.BasicProperties(
                                  delivery_mode=1, message_id="transient-%d" % transient))
            transient += 1
    log("published %d persistent and %d transient messages, interleaved, "
        "each one confirmed" % (RESTART_N, transient))

    count, _ = passive_counts(ch, q)
    expect(count == RESTART_N + transient,
           "after %d confirmed publishes the queue counts %d messages"
           % (RESTART_N + transient, count))
    log("queue.declare passive: %d messages; the queue stays for restart-verify" % count)
    ch.close()
    res.queues.remove(q)


def check_restart_verify(conn, res):
    q = restart_queue(res)
    ch = conn.channel()
    log("queue.declare passive %s" % q)
    try:
        count, consumers = passive_counts(ch, q)
    except ChannelClosedByBroker as e:
        fail("after the restart, a passive declare of the durable queue %s failed: "
             "%d %s (the queue did not survive the restart)" % (q, e.reply_code, e.reply_text))
    res.queues.append(q)  # from here on, deleted when the check ends
    transient = {restart_transient_body(j) for j in range(RESTART_TRANSIENT)}
    expect(count == RESTART_N,
           "after the restart the queue counts %d messages, want %d: the %d persistent "
           "ones and none of the %d transient ones" % (count, RESTART_N, RESTART_N, RESTART_TRANSIENT))
    expect(consumers == 0, "after the restart the queue counts %d consumers" % consumers)
    log("queue.declare passive: %d messages, 0 consumers" % count)

    ch.basic_qos(prefetch_count=PREFETCH)
    log("basic.qos prefetch_count=%d, basic.consume with manual ack" % PREFETCH)
    got = 0
    redelivered = 0
    for method, properties, b in ch.consume(q, auto_ack=False, inactivity_timeout=TIMEOUT):
        if method is None:
            fail("no delivery within %.0fs after %d of %d messages" % (TIMEOUT, got, RESTART_N))
        expect(b not in transient,
               "delivery %d: %r is a transient message (delivery_mode 1); it must not "
               "survive a restart" % (got, b))
        expect(b == restart_body(got),
               "delivery %d: body %r, want %r (out of order, lost or delivered twice)"
               % (got, b, restart_body(got)))
        expect(properties.delivery_mode == 2,
               "delivery %d: delivery_mode %r, want 2 (persistent)" % (got, properties.delivery_mode))
        expect(properties.message_id == "persistent-%d" % got,
               "delivery %d: message_id %r, want %r"
               % (got, properties.message_id, "persistent-%d" % got))
        if method.redelivered:
            redelivered += 1
        got += 1
        if got % PREFETCH == 0 or got == RESTART_N:
            ch.basic_ack(method.delivery_tag, multiple=True)
        if got == RESTART_N:
            break
    log("consumed the %d persistent messages in publish order and acked them "
        "(%d flagged redelivered)" % (got, redelivered))

    conn.process_data_events(time_limit=QUIET)
    extra = ch.get_waiting_message_count()
    expect(extra == 0, "%d more messages arrived after the %d persistent ones" % (extra, RESTART_N))
    requeued = ch.cancel()
    expect(requeued == 0, "basic.cancel left %d unconsumed deliveries" % requeued)
    count, _ = passive_counts(ch, q)
    expect(count == 0, "after acking all messages the queue counts %d" % count)
    log("queue.declare passive: 0 messages")
    ok = ch.queue_delete(q)
    res.queues.remove(q)
    expect(ok.method.message_count == 0,
           "queue.delete-ok counts %d messages, want 0" % ok.method.message_count)
    log("queue.delete %s: 0 messages" % q)
    ch.close()


def check_dead_letter(conn, res):
    ch = conn.channel()
    enable_confirms(conn, ch)
    dlx, dlq = dead_letter_pair(ch, res)
    q = res.queue("source")
    log("queue.declare %s with x-dead-letter-exchange %s" % (q, dlx))
    ch.queue_declare(q, arguments={"x-dead-letter-exchange": dlx})
    confirmed_publish(ch, "", q, b"bad", properties=pika.BasicProperties(headers={"app": "pika"}))
    method, _, body = ch.basic_get(q, auto_ack=False)
    expect(method is not None and body == b"bad", "basic.get did not return b'bad'")
    log("basic.reject requeue=False")
    ch.basic_reject(method.delivery_tag, requeue=False)
    props, body = wait_get(ch, dlq)
    expect(body == b"bad", "the dead-letter queue got %r, want b'bad'" % body)
    headers = props.headers or {}
    log("dead letter headers: %r" % (headers,))
    expect(headers.get("app") == "pika", "the message's own header app is %r" % (headers.get("app"),))
    d = one_death(headers)
    want = {"count": 1, "reason": "rejected", "queue": q, "exchange": "", "routing-keys": [q]}
    for k, v in want.items():
        expect(d.get(k) == v, "x-death %s is %r, want %r (entry %r)" % (k, d.get(k), v, d))
    expect("time" in d, "x-death has no time: %r" % (d,))
    expect(headers.get("x-first-death-reason") == "rejected" and headers.get("x-first-death-queue") == q,
           "x-first-death-reason/queue are %r/%r" % (headers.get("x-first-death-reason"),
                                                    headers.get("x-first-death-queue")))
    count, _ = passive_counts(ch, q)
    expect(count == 0, "the source queue still counts %d messages" % count)
    ch.close()


def check_priority(conn, res):
    ch = conn.channel()
    enable_confirms(conn, ch)
    q = res.queue("priority")
    log("queue.declare %s with x-max-priority 10" % q)
    ch.queue_declare(q, arguments={"x-max-priority": 10})
    sent = [(3, b"p3"), (1, b"p1"), (5, b"p5"), (2, b"p2"), (4, b"p4"), (5, b"p5-second")]
    for prio, body in sent:
        confirmed_publish(ch, "", q, body, properties=pika.BasicProperties(priority=prio))
    count, _ = passive_counts(ch, q)
    expect(count == len(sent), "the queue counts %d messages, want %d" % (count, len(sent)))
    got = []
    for method, props, body in ch.consume(q, auto_ack=False, inactivity_timeout=TIMEOUT):
        if method is None:
            fail("no delivery within %.0fs; deliveries so far %r" % (TIMEOUT, got))
        got.append((props.priority, body))
        ch.basic_ack(method.delivery_tag)
        if len(got) == len(sent):
            break
    ch.cancel()
    want = [(5, b"p5"), (5, b"p5-second"), (4, b"p4"), (3, b"p3"), (2, b"p2"), (1, b"p1")]
    log("consumed (priority, body): %r" % (got,))
    expect(got == want, "deliveries %r, want %r" % (got, want))
    ch.close()


def check_ttl_dead_letter(conn, res):
    ch = conn.channel()
    enable_confirms(conn, ch)
    dlx, dlq = dead_letter_pair(ch, res)
    q = res.queue("ttl")
    log("queue.declare %s with x-dead-letter-exchange %s; publish with expiration 100" % (q, dlx))
    ch.queue_declare(q, arguments={"x-dead-letter-exchange": dlx})
    confirmed_publish(ch, "", q, b"stale", properties=pika.BasicProperties(expiration="100"))
    props, body = wait_get(ch, dlq)
    expect(body == b"stale", "the dead-letter queue got %r, want b'stale'" % body)
    d = one_death(props.headers)
    log("x-death: %r" % (d,))
    for k, v in {"count": 1, "reason": "expired", "queue": q, "original-expiration": "100"}.items():
        expect(d.get(k) == v, "x-death %s is %r, want %r (entry %r)" % (k, d.get(k), v, d))
    expect(props.expiration is None, "the dead letter keeps expiration %r" % (props.expiration,))
    ch.close()


def check_delivery_limit(conn, res):
    ch = conn.channel()
    enable_confirms(conn, ch)
    dlx, dlq = dead_letter_pair(ch, res)
    q = res.queue("quorum")
    log("queue.declare %s (quorum, x-delivery-limit 1, x-dead-letter-exchange %s)" % (q, dlx))
    ch.queue_declare(q, durable=True, arguments={
        "x-queue-type": "quorum", "x-delivery-limit": 1, "x-dead-letter-exchange": dlx})
    confirmed_publish(ch, "", q, b"poison", properties=pika.BasicProperties(delivery_mode=2))
    seen = []
    for _ in range(2):
        method, props, body = ch.basic_get(q, auto_ack=False)
        expect(method is not None and body == b"poison", "basic.get did not return b'poison'")
        seen.append((props.headers or {}).get("x-delivery-count"))
        ch.basic_nack(method.delivery_tag, requeue=True)
    log("x-delivery-count of the two deliveries: %r" % (seen,))
    expect(seen == [None, 1], "x-delivery-count %r, want [None, 1]" % (seen,))
    props, body = wait_get(ch, dlq)
    expect(body == b"poison", "the dead-letter queue got %r, want b'poison'" % body)
    d = one_death(props.headers)
    log("x-death: %r" % (d,))
    for k, v in {"count": 1, "reason": "delivery_limit", "queue": q}.items():
        expect(d.get(k) == v, "x-death %s is %r, want %r (entry %r)" % (k, d.get(k), v, d))
    count, _ = passive_counts(ch, q)
    expect(count == 0, "the quorum queue still counts %d messages" % count)
    ch.close()


CHECKS = {
    "confirm": check_confirm,
    "topic": check_topic,
    "headers": check_headers,
    "mandatory": check_mandatory,
    "requeue": check_requeue,
    "channel-error": check_channel_error,
    "direct-reply-to": check_direct_reply_to,
    "dead-letter": check_dead_letter,
    "priority": check_priority,
    "ttl-dead-letter": check_ttl_dead_letter,
    "delivery-limit": check_delivery_limit,
    "restart-publish": check_restart_publish,
    "restart-verify": check_restart_verify,
}
# Run when no check is named: all but the restart ones, which need the
# broker to restart between them.
DEFAULT_CHECKS = [c for c in CHECKS if not c.startswith("restart-")]


def run(url, run_id, name):
    log("== %s" % name)
    res = Resources(run_id, name)
    res.url = url  # for checks that open a second connection
    conn = connect(url)
    try:
        CHECKS[name](conn, res)
    finally:
        if not conn.is_open:
            # The broker closed the connection: clean up on a new one.
            try:
                conn = connect(url)
            except Exception as e:
                log("cleanup: cannot reconnect: %r" % (e,))
        errors = res.delete(conn) if conn.is_open else ["not connected"]
        for e in errors:
            log("cleanup: %s" % e)
        if conn.is_open:
            conn.close()
    # A leftover from a passing check is a failure too.
    if errors:
        fail("cleanup: " + "; ".join(errors))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url", help="AMQP URL, e.g. amqp://guest:guest@127.0.0.1:5672/")
    ap.add_argument("run_id", nargs="?", default="%d-%d" % (time.time(), os.getpid()))
    ap.add_argument("checks", nargs="*", metavar="check", help=" ".join(CHECKS))
    args = ap.parse_args()
    for c in args.checks:
        if c not in CHECKS:
            ap.error("unknown check %r; known: %s" % (c, " ".join(CHECKS)))
    log("pika %s, broker %s, run id %s" % (pika.__version__, redact(args.url), args.run_id))
    try:
        for name in args.checks or DEFAULT_CHECKS:
            run(args.url, args.run_id, name)
    except CheckFailed as e:
        log("FAIL: %s" % e)
        return 1
    except Exception as e:  # pika errors and the like: show where
        traceback.print_exc(file=sys.stdout)
        log("FAIL: %s: %r" % (type(e).__name__, e))
        return 1
    log("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
