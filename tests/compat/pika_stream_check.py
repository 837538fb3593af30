#!/usr/bin/env python3
"""A stream queue and the Kafka topic of the same name are one log: pika
writes it, and the caller reads it with kcat.

Usage: pika_stream_check.py URL STREAM publish|consume

  publish  Declares the stream queue STREAM (x-queue-type stream, durable)
           and, with publisher confirms, publishes to it through the default
           exchange 3 messages with routing key STREAM, bodies s0, s1, s2 and
           the header h=v<i>, each one confirmed. Prints nothing.
  consume  Consumes STREAM from x-stream-offset "first" with a prefetch of
           10 and manual acks, until it has 3 deliveries more than were
           published by "publish" (the caller produced 3 over Kafka), and
           prints one line per delivery: "<x-stream-offset> <routing key>
           <body>".

Exits 0 on success; on failure prints "FAIL: <reason>" and exits 1.
"""

import sys

import pika


def fail(reason):
    print("FAIL: " + reason)
    sys.exit(1)


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in ("publish", "consume"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    url, stream, phase = sys.argv[1:]
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.queue_declare(stream, durable=True, arguments={"x-queue-type": "stream"})
    if phase == "publish":
        ch.confirm_delivery()
        for i in range(3):
            ch.basic_publish("", stream, ("s%d" % i).encode(),
                             pika.BasicProperties(headers={"h": "v%d" % i}), mandatory=True)
        conn.close()
        return
    ch.basic_qos(prefetch_count=10)
    got = []
    for method, props, body in ch.consume(stream, arguments={"x-stream-offset": "first"}, inactivity_timeout=30):
        if method is None:
            fail("no delivery within 30s after %d" % len(got))
        offset = (props.headers or {}).get("x-stream-offset")
        if not isinstance(offset, int):
            fail("delivery %r has x-stream-offset %r" % (body, offset))
        got.append("%d %s %s" % (offset, method.routing_key, body.decode()))
        ch.basic_ack(method.delivery_tag)
        if len(got) == 6:
            break
    ch.cancel()
    conn.close()
    print("\n".join(got))


if __name__ == "__main__":
    main()
