#!/usr/bin/env python3
"""Compatibility checks with kafka-python.

Usage: kafka_python_check.py --bootstrap HOST:PORT {admin,produce,group}

  admin    KafkaAdminClient.create_topics (3 partitions); a second create of
           the same topic fails with TopicAlreadyExistsError; the topic and
           its partitions are listed.
  produce  KafkaProducer (acks='all') sends N keyed records with headers,
           every send succeeds; the records read back by a KafkaConsumer
           without a group (assigned partitions) match exactly, once each.
  group    N records are produced; a KafkaConsumer with a group_id reads all
           of them and commits; the committed offsets equal the end offsets,
           both through that consumer's committed() and through a new
           consumer of the same group.

The broker version is probed from ApiVersions, as an application would.
Exits 0 on success; on failure prints "FAIL: <reason>" and exits 1. Every
wait is bounded.
"""

import argparse
import collections
import logging
import os
import sys
import threading
import time
import traceback
import uuid

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

N = 30
PARTITIONS = 3
TIMEOUT = 30.0  # seconds, for any single wait
TIMEOUT_MS = int(TIMEOUT * 1000)


class CheckFailed(Exception):
    pass


class LogTail(logging.Handler):
    """Keeps kafka-python's last warnings and errors, to explain a failure."""

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.lines = collections.deque(maxlen=200)

    def emit(self, record):
        self.lines.append("%s %s: %s" % (record.levelname, record.name, record.getMessage()))

    def summary(self, n=8):
        out = []
        for line in reversed(self.lines):
            if line not in out:
                out.append(line)
            if len(out) == n:
                break
        return "\n".join("    " + line for line in reversed(out))


LOGS = LogTail()
_logger = logging.getLogger("kafka")
_logger.addHandler(LOGS)
_logger.setLevel(logging.WARNING)
_logger.propagate = False


def log(msg):
    print(msg, flush=True)


def fail(msg):
    raise CheckFailed(msg, LOGS.summary())


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


def record_of(rec):
    return (rec.key, rec.value, [(k, v) for k, v in rec.headers or []])


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


def admin_client(bootstrap):
    try:
        return KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="compat-kafka-python",
            request_timeout_ms=TIMEOUT_MS,
            api_version_auto_timeout_ms=TIMEOUT_MS,
        )
    except KafkaError as e:
        fail("KafkaAdminClient: %r" % e)


def create_topic(bootstrap, topic, partitions):
    admin = admin_client(bootstrap)
    try:
        admin.create_topics(
            [NewTopic(name=topic, num_partitions=partitions, replication_factor=1)],
            timeout_ms=TIMEOUT_MS,
        )
    except KafkaError as e:
        admin.close()
        fail("create_topics(%s, %d partitions): %r" % (topic, partitions, e))
    return admin


def wait_partitions(client, topic, partitions):
    """Waits until a consumer's metadata shows the topic's partitions."""
    deadline = time.monotonic() + TIMEOUT
    got = None
    while time.monotonic() < deadline:
        got = client.partitions_for_topic(topic)
        if got is not None and len(got) == partitions:
            return sorted(got)
        time.sleep(0.2)
    fail("topic %s: partitions %s, want %d" % (topic, got, partitions))


def produce(bootstrap, topic, records):
    try:
        p = KafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            retries=3,
            request_timeout_ms=TIMEOUT_MS,
            max_block_ms=TIMEOUT_MS,
            api_version_auto_timeout_ms=TIMEOUT_MS,
        )
    except KafkaError as e:
        fail("KafkaProducer: %r" % e)
    try:
        futures = [p.send(topic, key=k, value=v, headers=h) for k, v, h in records]
        p.flush(timeout=TIMEOUT)
        metas = []
        for i, f in enumerate(futures):
            try:
                metas.append(f.get(timeout=TIMEOUT))
            except KafkaError as e:
                fail("send of record %d: %r" % (i, e))
    finally:
        p.close(timeout=TIMEOUT)
    return metas


def group_state(consumer):
    """Why a group consumer has no records yet, as far as the client knows."""
    coord = getattr(consumer, "_coordinator", None)
    if coord is None or not consumer.config.get("group_id"):
        return ""
    if coord.coordinator_id is None:
        return "; no group coordinator found (FindCoordinator)"
    if not consumer.assignment():
        return "; no partition assigned (group join did not complete)"
    return ""


def poll_records(consumer, count, what):
    """Polls until count records arrived, then a little longer to catch any
    extra ones; fails if fewer arrive within the timeout."""
    got = []

    # kafka-python's poll() can block past its timeout while it looks for a
    # group coordinator, so a watchdog ends the process if it does.
    def expired():
        print("FAIL: %s: read %d of %d records, poll() still blocked after %.0fs%s"
              % (what, len(got), count, TIMEOUT + 10, group_state(consumer)), flush=True)
        logs = LOGS.summary()
        if logs:
            print("  last kafka-python warnings:\n%s" % logs, flush=True)
        os._exit(1)

    watchdog = threading.Timer(TIMEOUT + 10, expired)
    watchdog.daemon = True
    watchdog.start()
    try:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and len(got) < count:
            for recs in consumer.poll(timeout_ms=500).values():
                got.extend(record_of(r) for r in recs)
        if len(got) < count:
            fail("%s: read %d of %d records within %.0fs%s"
                 % (what, len(got), count, TIMEOUT, group_state(consumer)))
        # Duplicates would show up right behind the expected records.
        for recs in consumer.poll(timeout_ms=500).values():
            got.extend(record_of(r) for r in recs)
    finally:
        watchdog.cancel()
    return got


def check_admin(bootstrap):
    topic = unique("compat-kafka-python-admin")
    admin = create_topic(bootstrap, topic, PARTITIONS)
    try:
        log("created topic %s with %d partitions" % (topic, PARTITIONS))
        try:
            admin.create_topics(
                [NewTopic(name=topic, num_partitions=PARTITIONS, replication_factor=1)],
                timeout_ms=TIMEOUT_MS,
            )
            fail("second create_topics(%s) succeeded; want TopicAlreadyExistsError" % topic)
        except TopicAlreadyExistsError:
            log("second create reports TopicAlreadyExistsError")
        except KafkaError as e:
            fail("second create_topics(%s): %r; want TopicAlreadyExistsError" % (topic, e))
        topics = admin.list_topics()
        if topic not in topics:
            fail("list_topics lacks %s: %s" % (topic, sorted(topics)))
    finally:
        admin.close()
    c = KafkaConsumer(bootstrap_servers=bootstrap, api_version_auto_timeout_ms=TIMEOUT_MS)
    try:
        parts = wait_partitions(c, topic, PARTITIONS)
    finally:
        c.close()
    log("list_topics shows %s; partitions %s" % (topic, parts))


def check_produce(bootstrap):
    topic = unique("compat-kafka-python-produce")
    create_topic(bootstrap, topic, PARTITIONS).close()
    want = expected_records("kafka-python")
    metas = produce(bootstrap, topic, want)
    log("KafkaProducer(acks='all'): %d records acknowledged, partitions %s"
        % (len(metas), sorted({m.partition for m in metas})))

    c = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        api_version_auto_timeout_ms=TIMEOUT_MS,
        request_timeout_ms=TIMEOUT_MS + 5000,
    )
    try:
        tps = [TopicPartition(topic, p) for p in wait_partitions(c, topic, PARTITIONS)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        got = poll_records(c, len(want), "read back")
    finally:
        c.close()
    compare(got, want, "read back")
    log("read back %d records with matching keys, values and headers" % len(got))


def check_group(bootstrap):
    topic = unique("compat-kafka-python-group")
    group = unique("compat-kafka-python-group")
    create_topic(bootstrap, topic, PARTITIONS).close()
    want = expected_records("kafka-python-group")
    produce(bootstrap, topic, want)
    log("produced %d records to %s; consuming in group %s" % (len(want), topic, group))

    c = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=10000,
        heartbeat_interval_ms=1000,
        api_version_auto_timeout_ms=TIMEOUT_MS,
        request_timeout_ms=TIMEOUT_MS + 5000,
    )
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    try:
        c.subscribe([topic])
        got = poll_records(c, len(want), "group consumer")
        compare(got, want, "group consumer")
        log("consumer read %d records (partitions %s)"
            % (len(got), sorted(tp.partition for tp in c.assignment())))
        try:
            c.commit()
        except KafkaError as e:
            fail("commit: %r" % e)
        end = c.end_offsets(tps)
        committed = {tp.partition: c.committed(tp) for tp in tps}
        want_offsets = {tp.partition: end[tp] for tp in tps}
        if committed != want_offsets:
            fail("committed() shows %s, want the end offsets %s" % (committed, want_offsets))
        log("committed offsets %s" % committed)
    finally:
        c.close()

    # A new member of the group, with no subscription, sees the same.
    c2 = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        api_version_auto_timeout_ms=TIMEOUT_MS,
    )
    try:
        again = {tp.partition: c2.committed(tp) for tp in tps}
    finally:
        c2.close()
    if again != want_offsets:
        fail("a new consumer of group %s sees committed offsets %s, want %s" % (group, again, want_offsets))
    log("a new consumer of the group sees the same committed offsets")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", required=True, help="HOST:PORT of the Kafka listener")
    ap.add_argument("check", choices=["admin", "produce", "group"])
    args = ap.parse_args()
    checks = {"admin": check_admin, "produce": check_produce, "group": check_group}
    try:
        checks[args.check](args.bootstrap)
    except CheckFailed as e:
        msg, logs = e.args
        print("FAIL: %s" % msg, flush=True)
        if logs:
            print("  last kafka-python warnings:\n%s" % logs, flush=True)
        return 1
    except Exception as e:
        traceback.print_exc(file=sys.stdout)
        print("FAIL: unexpected %s: %s" % (type(e).__name__, e), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
