"""Python clients against wharf's TLS and SASL listeners, for secure.sh.

Usage:
  secure_check.py confluent-scram BOOTSTRAP PROTOCOL USER PASSWORD CA RUN_ID
      confluent-kafka (librdkafka) with SASL SCRAM-SHA-256; PROTOCOL is
      sasl_plaintext or sasl_ssl (CA is then the CA file). Produces records
      and consumes them back from the beginning, in order.
  pika-tls HOST PORT USER PASSWORD CA RUN_ID
      pika over AMQPS, server name checked against 127.0.0.1: declares a
      queue, publishes with confirms, gets the message back.
  pika-external HOST PORT CA CERT KEY RUN_ID
      pika over AMQPS with a client certificate and the EXTERNAL mechanism,
      then the same as pika-tls.
Exits non-zero with a message on failure.
"""
import ssl
import sys
import time


def fail(msg):
    print(msg)
    sys.exit(1)


def confluent_scram(bootstrap, protocol, user, password, ca, run_id):
    from confluent_kafka import Consumer, Producer, TopicPartition

    conf = {
        "bootstrap.servers": bootstrap,
        "security.protocol": protocol,
        "sasl.mechanisms": "SCRAM-SHA-256",
        "sasl.username": user,
        "sasl.password": password,
    }
    if protocol == "sasl_ssl":
        conf["ssl.ca.location"] = ca
    topic = "secure-confluent-%s-%s" % (protocol, run_id)
    want = [("k%d" % i, "scram value %d" % i) for i in range(5)]
    errors = []

    def report(err, msg):
        if err is not None:
            errors.append(str(err))

    p = Producer(dict(conf))
    for k, v in want:
        p.produce(topic, key=k, value=v, partition=0, on_delivery=report)
    left = p.flush(15)
    if left or errors:
        fail("produce failed: %d undelivered, errors %s" % (left, errors))
    print("produced %d records to %s" % (len(want), topic))

    c = Consumer(dict(conf, **{"group.id": "secure-confluent-" + run_id,
                               "enable.auto.commit": False}))
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.time() + 15
    while len(got) < len(want) and time.time() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            fail("consume error: %s" % m.error())
        got.append((m.key().decode(), m.value().decode()))
    c.close()
    if got != want:
        fail("consumed %r, want %r" % (got, want))
    print("consumed %d records back" % len(got))


def pika_round_trip(params, run_id, what):
    import pika

    conn = pika.BlockingConnection(params)
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        q = "secure-%s-%s" % (what, run_id)
        ch.queue_declare(queue=q, durable=False, auto_delete=False)
        body = ("hello over amqps (%s)" % what).encode()
        ch.basic_publish(exchange="", routing_key=q, body=body, mandatory=True)
        got = None
        deadline = time.time() + 10
        while got is None and time.time() < deadline:
            method, _props, got = ch.basic_get(queue=q, auto_ack=True)
            if method is None:
                got = None
                time.sleep(0.1)
        if got != body:
            fail("basic_get returned %r, want %r" % (got, body))
        ch.queue_delete(queue=q)
        print("published with confirms and got back %r from %s" % (body, q))
    finally:
        conn.close()


def pika_tls(host, port, user, password, ca, run_id):
    import pika

    ctx = ssl.create_default_context(cafile=ca)
    params = pika.ConnectionParameters(
        host=host, port=int(port), virtual_host="/",
        credentials=pika.PlainCredentials(user, password),
        ssl_options=pika.SSLOptions(ctx, "127.0.0.1"),
        connection_attempts=1, socket_timeout=10)
    pika_round_trip(params, run_id, "pika-tls")


def pika_external(host, port, ca, cert, key, run_id):
    import pika
    from pika.credentials import ExternalCredentials

    ctx = ssl.create_default_context(cafile=ca)
    ctx.load_cert_chain(cert, key)
    params = pika.ConnectionParameters(
        host=host, port=int(port), virtual_host="/",
        credentials=ExternalCredentials(),
        ssl_options=pika.SSLOptions(ctx, "127.0.0.1"),
        connection_attempts=1, socket_timeout=10)
    pika_round_trip(params, run_id, "pika-external")


def main():
    if len(sys.argv) < 2:
        fail(__doc__)
    cmds = {
        "confluent-scram": (confluent_scram, 6),
        "pika-tls": (pika_tls, 6),
        "pika-external": (pika_external, 6),
    }
    cmd = sys.argv[1]
    if cmd not in cmds or len(sys.argv) - 2 != cmds[cmd][1]:
        fail(__doc__)
    cmds[cmd][0](*sys.argv[2:])


if __name__ == "__main__":
    main()
