#!/usr/bin/env python3
"""Compatibility checks with confluent-kafka-python (librdkafka).

Usage: confluent_check.py --bootstrap HOST:PORT {admin,produce,group,txn}

  admin    AdminClient.create_topics (3 partitions), a second create of the
           same topic fails with TOPIC_ALREADY_EXISTS, list_topics shows the
           broker and the topic with its partitions.
  produce  An idempotent Producer (enable.idempotence=True, acks=all) sends N
           keyed records with headers; every delivery report succeeds; the
           records read back (assigned partitions, no group) match exactly,
           once each.
  group    N keyed records with headers are produced; a Consumer in a group
           (auto.offset.reset=earliest, enable.auto.commit=False) reads all
           of them, commits after processing, and sees the committed offsets;
           after it closes, a second consumer in the same group reads nothing.
  txn      A transactional Producer (transactional.id) commits a transaction,
           aborts one, and commits a consume-transform-produce transaction
           that reads N records in a group (isolation.level=read_committed)
           and sends the group's offsets with send_offsets_to_transaction. A
           read_committed consumer reads exactly the committed records; a
           read_uncommitted one the aborted ones too; the group's committed
           offsets are the input's high watermarks.

Exits 0 on success; on failure prints "FAIL: <reason>" and exits 1. Every
wait is bounded.
"""

import argparse
import collections
import logging
import sys
import time
import traceback
import uuid

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

N = 30
PARTITIONS = 3
TIMEOUT = 30.0  # seconds, for any single wait


class CheckFailed(Exception):
    pass


class DebugTail(logging.Handler):
    """Keeps the last librdkafka debug lines, to explain a failure."""

    def __init__(self):
        super().__init__()
        self.lines = collections.deque(maxlen=500)

    def emit(self, record):
        self.lines.append(record.getMessage())

    def summary(self, n=12):
        """The last n distinct lines, oldest first."""
        out = []
        for line in reversed(self.lines):
            if line not in out:
                out.append(line)
            if len(out) == n:
                break
        return "\n".join("    " + line for line in reversed(out))


DEBUG = DebugTail()
_logger = logging.getLogger("librdkafka")
_logger.addHandler(DEBUG)
_logger.setLevel(logging.DEBUG)
_logger.propagate = False


def log(msg):
    print(msg, flush=True)


def fail(msg):
    # The debug lines logged so far explain a stuck consumer group; taken
    # now, before closing the client logs its own shutdown.
    raise CheckFailed(msg, DEBUG.summary())


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


def expected_records(tag):
    """N records: (key, value, headers) with headers as a list of pairs."""
    out = []
    for i in range(N):
        key = ("key-%d" % i).encode()
        value = ("%s value %d \u00e9" % (tag, i)).encode()
        headers = [("seq", str(i).encode()), ("src", tag.encode())]
        out.append((key, value, headers))
    return out


def record_of(msg):
    headers = msg.headers() or []
    return (msg.key(), msg.value(), [(k, v) for k, v in headers])


def create_topic(bootstrap, topic, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1)],
        operation_timeout=TIMEOUT,
        request_timeout=TIMEOUT,
    )
    try:
        futures[topic].result(timeout=TIMEOUT)
    except Exception as e:  # KafkaException or a timeout
        fail("create_topics(%s, %d partitions): %s" % (topic, partitions, e))
    return admin


def wait_topic(admin, topic, partitions):
    """Waits until metadata shows the topic with all partitions led."""
    deadline = time.monotonic() + TIMEOUT
    last = "no metadata"
    while time.monotonic() < deadline:
        try:
            md = admin.list_topics(topic=topic, timeout=5)
        except KafkaException as e:
            last = "list_topics: %s" % e
            time.sleep(0.2)
            continue
        t = md.topics.get(topic)
        if t is None:
            last = "topic %s missing from metadata" % topic
        elif t.error is not None:
            last = "topic %s metadata error: %s" % (topic, t.error)
        elif len(t.partitions) != partitions:
            last = "topic %s has %d partitions, want %d" % (topic, len(t.partitions), partitions)
        elif any(p.leader < 0 for p in t.partitions.values()):
            last = "topic %s has a partition without a leader" % topic
        else:
            return md
        time.sleep(0.2)
    fail(last)


def produce(bootstrap, topic, records, idempotent):
    errors = []

    def on_error(err):
        # Fatal errors (such as an idempotent producer the broker cannot
        # serve) end the check at once; others are only reported.
        errors.append(err)

    conf = {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": idempotent,
        "message.timeout.ms": int(TIMEOUT * 1000),
        "error_cb": on_error,
    }
    p = Producer(conf)
    reports = []

    def on_delivery(err, msg):
        reports.append((err, msg))

    try:
        for key, value, headers in records:
            p.produce(topic, key=key, value=value, headers=headers, on_delivery=on_delivery)
            p.poll(0)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            fatal = [e for e in errors if e.fatal()]
            if fatal:
                fail("producer fatal error: %s" % fatal[0].str())
            if p.flush(0.5) == 0:
                break
    except KafkaException as e:
        fail("producer (enable.idempotence=%s): %s" % (idempotent, e.args[0].str()))
    remaining = len(p)
    if remaining:
        why = "; ".join(e.str() for e in errors[-3:]) or "no error reported"
        fail("flush: %d of %d records not delivered within %.0fs (%s)" % (remaining, len(records), TIMEOUT, why))
    bad = [(err, msg) for err, msg in reports if err is not None]
    if bad:
        fail("%d delivery reports failed, first: %s" % (len(bad), bad[0][0].str()))
    if len(reports) != len(records):
        fail("%d delivery reports for %d records" % (len(reports), len(records)))
    return reports


def compare(got, want, what):
    """got and want are lists of (key, value, headers); order is ignored."""
    if len(got) != len(want):
        fail("%s: read %d records, want %d" % (what, len(got), len(want)))
    by_key = {}
    for rec in got:
        if rec[0] in by_key:
            fail("%s: key %r read twice" % (what, rec[0]))
        by_key[rec[0]] = rec
    for rec in want:
        g = by_key.get(rec[0])
        if g is None:
            fail("%s: key %r not read" % (what, rec[0]))
        if g != rec:
            fail("%s: record mismatch: got %r, want %r" % (what, g, rec))


def check_admin(bootstrap):
    topic = unique("compat-confluent-admin")
    admin = create_topic(bootstrap, topic, PARTITIONS)
    log("created topic %s with %d partitions" % (topic, PARTITIONS))

    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)],
        request_timeout=TIMEOUT,
    )
    try:
        futures[topic].result(timeout=TIMEOUT)
        fail("second create_topics(%s) succeeded; want TOPIC_ALREADY_EXISTS" % topic)
    except KafkaException as e:
        code = e.args[0].code()
        if code != KafkaError.TOPIC_ALREADY_EXISTS:
            fail("second create_topics(%s): %s; want TOPIC_ALREADY_EXISTS" % (topic, e))
    log("second create reports TOPIC_ALREADY_EXISTS")

    wait_topic(admin, topic, PARTITIONS)
    md = admin.list_topics(timeout=TIMEOUT)
    if topic not in md.topics:
        fail("list_topics (all topics) lacks %s: %s" % (topic, sorted(md.topics)))
    if not md.brokers:
        fail("list_topics shows no broker")
    host, port = bootstrap.rsplit(":", 1)
    addrs = ["%s:%d" % (b.host, b.port) for b in md.brokers.values()]
    if "%s:%s" % (host, port) not in addrs:
        fail("list_topics brokers %s do not include %s" % (addrs, bootstrap))
    parts = md.topics[topic].partitions
    if sorted(parts) != list(range(PARTITIONS)):
        fail("topic %s partitions %s, want 0..%d" % (topic, sorted(parts), PARTITIONS - 1))
    log("list_topics shows broker %s and %s with partitions %s" % (addrs, topic, sorted(parts)))


def check_produce(bootstrap):
    topic = unique("compat-confluent-idempotent")
    admin = create_topic(bootstrap, topic, PARTITIONS)
    wait_topic(admin, topic, PARTITIONS)
    want = expected_records("confluent-idempotent")
    reports = produce(bootstrap, topic, want, idempotent=True)
    used = sorted({msg.partition() for _, msg in reports})
    log("idempotent producer: %d delivery reports OK, partitions %s" % (len(reports), used))

    # Read back without a group: assign every partition from the beginning.
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": unique("compat-confluent-readback"),
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    })
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        got = consume_until_eof(c, set(range(PARTITIONS)))
    finally:
        c.close()
    compare(got, want, "read back")
    log("read back %d records with matching keys, values and headers" % len(got))


def consume_until_eof(c, partitions, on_record=None):
    """Polls until every partition in the set (or, if it is None, every
    partition assigned so far, once any is) reports end of partition."""
    got = []
    eof = set()
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        msg = c.poll(0.5)
        if msg is None:
            pass
        elif msg.error() is not None:
            if msg.error().code() == KafkaError._PARTITION_EOF:
                eof.add(msg.partition())
            else:
                fail("consumer error: %s" % msg.error().str())
        else:
            got.append(record_of(msg))
            eof.discard(msg.partition())
            if on_record is not None:
                on_record(msg)
        target = partitions() if callable(partitions) else partitions
        if target and target <= eof:
            return got
    target = partitions() if callable(partitions) else partitions
    if not target:
        fail("no partition assigned within %.0fs (group join did not complete)" % TIMEOUT)
    fail("end of partitions %s not reached within %.0fs; reached %s, read %d records"
         % (sorted(target), TIMEOUT, sorted(eof), len(got)))


def group_consumer(bootstrap, group, topic, assigned):
    def on_assign(consumer, partitions):
        assigned.update(p.partition for p in partitions)

    def on_revoke(consumer, partitions):
        assigned.difference_update(p.partition for p in partitions)

    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "session.timeout.ms": 10000,
        "debug": "cgrp",
        "logger": _logger,
    })
    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    return c


def check_group(bootstrap):
    topic = unique("compat-confluent-group")
    group = unique("compat-confluent-group")
    admin = create_topic(bootstrap, topic, PARTITIONS)
    wait_topic(admin, topic, PARTITIONS)
    want = expected_records("confluent-group")
    produce(bootstrap, topic, want, idempotent=False)
    log("produced %d records to %s; consuming in group %s" % (len(want), topic, group))

    assigned = set()
    c1 = group_consumer(bootstrap, group, topic, assigned)
    try:
        got = consume_until_eof(c1, lambda: set(assigned))
        compare(got, want, "group consumer")
        log("consumer 1 read %d records (partitions %s)" % (len(got), sorted(assigned)))
        try:
            res = c1.commit(asynchronous=False)
        except KafkaException as e:
            fail("commit: %s" % e)
        bad = [tp for tp in res or [] if tp.error is not None]
        if bad:
            fail("commit: partition %d: %s" % (bad[0].partition, bad[0].error))
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        try:
            committed = c1.committed(tps, timeout=TIMEOUT)
        except KafkaException as e:
            fail("committed: %s" % e)
        for tp in committed:
            if tp.error is not None:
                fail("committed: partition %d: %s" % (tp.partition, tp.error))
            _, high = c1.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=TIMEOUT)
            if tp.offset != high:
                fail("committed offset of partition %d is %d, want the high watermark %d"
                     % (tp.partition, tp.offset, high))
        log("committed offsets %s" % {tp.partition: tp.offset for tp in committed})
    finally:
        c1.close()

    assigned2 = set()
    c2 = group_consumer(bootstrap, group, topic, assigned2)
    try:
        again = consume_until_eof(c2, lambda: set(assigned2))
    finally:
        c2.close()
    if again:
        fail("second consumer in group %s read %d records again; want none (offsets committed)"
             % (group, len(again)))
    log("consumer 2 in the same group read nothing new")


def read_all(bootstrap, topic, isolation):
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": unique("compat-confluent-txn-read"),
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "isolation.level": isolation,
    })
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        return consume_until_eof(c, set(range(PARTITIONS)))
    finally:
        c.close()


def check_txn(bootstrap):
    src = unique("compat-confluent-txn-in")
    dst = unique("compat-confluent-txn-out")
    group = unique("compat-confluent-txn-group")
    for t in (src, dst):
        wait_topic(create_topic(bootstrap, t, PARTITIONS), t, PARTITIONS)
    inputs = expected_records("confluent-txn-in")
    produce(bootstrap, src, inputs, idempotent=True)

    p = Producer({
        "bootstrap.servers": bootstrap,
        "transactional.id": unique("compat-confluent-txn"),
        "transaction.timeout.ms": 60000,
    })
    try:
        p.init_transactions(TIMEOUT)
        committed = expected_records("confluent-txn-commit")
        aborted = expected_records("confluent-txn-abort")
        for records, commit in ((committed, True), (aborted, False)):
            p.begin_transaction()
            for key, value, headers in records:
                p.produce(dst, key=key, value=value, headers=headers)
            if commit:
                p.commit_transaction(TIMEOUT)
            else:
                p.flush(TIMEOUT)
                p.abort_transaction(TIMEOUT)
        log("committed one transaction of %d records, aborted one" % N)

        # Consume, transform, produce, and commit the offsets in the
        # transaction.
        assigned = set()
        c = group_consumer(bootstrap, group, src, assigned)
        transformed = []
        try:
            p.begin_transaction()

            def on_record(msg):
                key, value, headers = record_of(msg)
                rec = (key, value + b" transformed", headers)
                transformed.append(rec)
                p.produce(dst, key=rec[0], value=rec[1], headers=rec[2])

            got = consume_until_eof(c, lambda: set(assigned), on_record)
            compare(got, inputs, "transactional consumer")
            positions = c.position([TopicPartition(src, q) for q in range(PARTITIONS)])
            p.send_offsets_to_transaction(positions, c.consumer_group_metadata(), TIMEOUT)
            p.commit_transaction(TIMEOUT)
            log("consume-transform-produce transaction committed with offsets %s"
                % {tp.partition: tp.offset for tp in positions})
            tps = [TopicPartition(src, q) for q in range(PARTITIONS)]
            for tp in c.committed(tps, timeout=TIMEOUT):
                _, high = c.get_watermark_offsets(TopicPartition(src, tp.partition), timeout=TIMEOUT)
                if tp.error is not None or tp.offset != high:
                    fail("group offset of partition %d is %d (%s), want the high watermark %d"
                         % (tp.partition, tp.offset, tp.error, high))
        finally:
            c.close()
    except KafkaException as e:
        fail("transactional producer: %s" % e.args[0].str())
    finally:
        p.flush(TIMEOUT)

    # Keys repeat across the three sets, so compare with the values too.
    def key_value(records):
        return sorted((r[0], r[1]) for r in records)

    got = read_all(bootstrap, dst, "read_committed")
    if key_value(got) != key_value(committed + transformed):
        fail("read_committed read %d records, want the %d committed ones exactly"
             % (len(got), len(committed) + len(transformed)))
    log("read_committed reads the %d committed records only" % len(got))
    got = read_all(bootstrap, dst, "read_uncommitted")
    if key_value(got) != key_value(committed + aborted + transformed):
        fail("read_uncommitted read %d records, want %d (aborted ones included)"
             % (len(got), len(committed) + len(aborted) + len(transformed)))
    log("read_uncommitted reads the aborted records too")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", required=True, help="HOST:PORT of the Kafka listener")
    ap.add_argument("check", choices=["admin", "produce", "group", "txn"])
    args = ap.parse_args()
    checks = {"admin": check_admin, "produce": check_produce, "group": check_group, "txn": check_txn}
    try:
        checks[args.check](args.bootstrap)
    except CheckFailed as e:
        msg, debug = e.args
        print("FAIL: %s" % msg, flush=True)
        if debug:
            print("  last librdkafka debug lines (consumer group):\n%s" % debug, flush=True)
        return 1
    except Exception as e:
        traceback.print_exc(file=sys.stdout)
        print("FAIL: unexpected %s: %s" % (type(e).__name__, e), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
