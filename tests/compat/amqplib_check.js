#!/usr/bin/env node
/*
Compatibility checks with amqplib, the usual Node.js AMQP 0-9-1 client (its
promise API).

Usage: node amqplib_check.js URL [RUN_ID [CHECK...]]

  URL     an AMQP URL such as amqp://guest:guest@127.0.0.1:5672/ (amqplib
          reads a path of "/" as the default virtual host "/"); when there
          are no arguments at all, COMPAT_AMQP_URL
  RUN_ID  carried by every queue and exchange name, so that reruns against a
          broker that keeps running do not meet each other's leftovers
          (default: seconds since the epoch and the process id)
  CHECK   one or more of the checks below (default: all of them but the
          two restart ones, which run only when named)

  confirm        On a confirm channel, N persistent messages with basic
                 properties (content type and encoding, headers holding each
                 field-table type that RabbitMQ lists: t b s I l f d D S A T
                 F V x, correlation id, message id, reply-to, timestamp,
                 type, user id, app id, priority; expiration and cluster id
                 unset) go to a durable queue; the bodies include every byte
                 value, an empty one and one larger than frame_max. Each
                 publish is acked and waitForConfirms resolves; the queue
                 counts N. A consumer with manual acks and a prefetch of 10
                 gets no more than 10 unacknowledged messages (the queue then
                 counts N-10 ready messages and 1 consumer), then all N in
                 order, exactly once, bodies byte for byte and properties
                 equal to those sent (unset ones unset), and acks them
                 (allUpTo every 10 messages); the queue then counts 0
                 messages and 0 consumers.
  topic          A topic exchange routes keys to queues bound with a.*, a.#,
                 #.z, *.b.*, #, a.#.c and a.b.c ('#' also matches zero words);
                 a queue bound twice gets a message that matches both
                 bindings once.
  headers        A headers exchange with x-match all, x-match any, no x-match
                 (all is the default) and an integer header value.
  cc-bcc         Sender-selected distribution (amqplib's CC and BCC publish
                 options) on a direct exchange: CC adds routing keys and stays
                 in the delivered headers; BCC adds routing keys and is
                 removed from them.
  mandatory      On a confirm channel, a mandatory publish that no queue
                 takes comes back through the channel's 'return' event (reply
                 code 312 NO_ROUTE, with its exchange, routing key, body and
                 properties) before its confirm; without mandatory the same
                 publish is confirmed silently; once a queue is bound the
                 mandatory publish goes through.
  requeue        reject(requeue=true) after get and nack(requeue=true) on a
                 consumer deliver the message again with redelivered=true;
                 nack(allUpTo=true, requeue=true) of two messages got puts
                 both back in their old place, ahead of the one never
                 delivered; reject(requeue=false) drops a message.
  channel-error  A passive declare (checkQueue) of a missing queue fails with
                 404 NOT_FOUND naming queue.declare and closes the channel;
                 so does a publish to a missing exchange on a confirm
                 channel (basic.publish), whose confirm fails; the connection
                 stays open and a new channel works.

  restart-publish  Half of a check across a broker restart: on a confirm
                 channel, 50 persistent messages with distinct bodies and,
                 interleaved with them, 10 transient ones (persistent: false)
                 go to the durable queue compat-amqplib-restart-RUN_ID, each
                 one confirmed; the queue counts 60. The queue is left in
                 place.
  restart-verify The other half, once the broker has restarted: a passive
                 declare of that queue counts exactly 50 messages; a consumer
                 with manual acks gets the 50 persistent bodies in publish
                 order, exactly once, persistent, and none of the transient
                 ones, and acks them; the queue then counts 0 and is deleted.

Every check deletes the queues and exchanges it declared, except that
restart-publish leaves its queue (when it passes) for restart-verify. Exits 0
on success; on failure prints "FAIL: <reason>" and exits 1 (2 for bad
arguments). Waits for deliveries are bounded; a broker that never answers a
request is left to the caller's time limit, and the last line printed says
what was being done.
*/
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { isDeepStrictEqual, inspect } = require('node:util');

const N = 100;
const PREFETCH = 10;
const TIMEOUT = 10000; // ms to wait for something that should come
const QUIET = 500; // ms to wait to be sure that nothing more comes

class CheckFailed extends Error {}

function log(msg) {
  console.log(msg);
}

function fail(msg) {
  throw new CheckFailed(msg);
}

function expect(cond, msg) {
  if (!cond) fail(msg);
}

function show(v) {
  return inspect(v, { depth: 6, breakLength: Infinity, maxArrayLength: 20, maxStringLength: 80 });
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// withTimeout resolves or rejects as promise does, or fails the check with
// what after ms.
function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new CheckFailed(`${what}: nothing within ${ms / 1000}s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// redact prints url without its password.
function redact(url) {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(an unparsable URL)';
  }
}

let amqp;
let amqplibVersion = '?';
function loadAmqplib() {
  try {
    amqp = require('amqplib');
  } catch (e) {
    fail(`cannot load amqplib (NODE_PATH=${process.env.NODE_PATH || ''}): ${e.message}`);
  }
  try {
    const dir = path.dirname(require.resolve('amqplib'));
    amqplibVersion = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version;
  } catch {
    // only the version in the first line is lost
  }
}

// Inbox collects messages (deliveries, returns) as they come; next waits
// for one, up to ms.
class Inbox {
  constructor() {
    this.items = [];
    this.wake = null;
  }

  push(m) {
    this.items.push(m);
    if (this.wake) this.wake();
  }

  get length() {
    return this.items.length;
  }

  async next(ms) {
    if (this.items.length === 0) {
      await new Promise((resolve) => {
        const timer = setTimeout(done, ms);
        const self = this;
        function done() {
          clearTimeout(timer);
          self.wake = null;
          resolve();
        }
        this.wake = done;
      });
    }
    return this.items.length > 0 ? this.items.shift() : null;
  }
}

// Resources are the names a check declares, deleted again when it ends.
class Resources {
  constructor(runId, check) {
    this.runId = runId;
    this.prefix = `compat-amqplib-${check}-${runId}`;
    this.queues = [];
    this.exchanges = [];
  }

  queue(suffix) {
    const name = `${this.prefix}-${suffix}`;
    this.queues.push(name);
    return name;
  }

  exchange(suffix) {
    const name = `${this.prefix}-${suffix}`;
    this.exchanges.push(name);
    return name;
  }

  // delete deletes everything, each on a new channel (a check's own
  // channel, or the previous delete's, may have been closed by the broker),
  // and returns the errors as strings.
  async delete(conn) {
    const errors = [];
    const todo = [
      ...this.queues.map((q) => ['queue', q, (ch) => ch.deleteQueue(q)]),
      ...this.exchanges.map((x) => ['exchange', x, (ch) => ch.deleteExchange(x)]),
    ];
    for (const [kind, name, del] of todo) {
      try {
        const ch = await openChannel(conn);
        await withTimeout(del(ch), TIMEOUT, `${kind}.delete ${name}`);
        await ch.close();
      } catch (e) {
        errors.push(`${kind}.delete ${name}: ${e.message}`);
      }
    }
    return errors;
  }
}

// ---------------------------------------------------------------- connection

let described = false;

// connect opens a connection that records whether, and why, it closed.
async function connect(url) {
  let conn;
  try {
    conn = await amqp.connect(url, { timeout: TIMEOUT });
  } catch (e) {
    fail(`cannot connect to ${redact(url)}: ${e.message}`);
  }
  conn.isOpen = true;
  conn.closeError = null;
  conn.on('error', (e) => {
    conn.closeError = e;
    log(`  connection error: ${e.message}`);
  });
  conn.on('close', () => {
    conn.isOpen = false;
  });
  if (!described) {
    // Once per run: what the broker said in connection.start and tune.
    described = true;
    const c = conn.connection;
    const props = c.serverProperties || {};
    const caps = props.capabilities || {};
    const on = Object.keys(caps)
      .filter((k) => caps[k] === true)
      .sort();
    log(
      `broker: ${props.product} ${props.version}, capabilities ${on.join(' ') || '(none)'}, ` +
        `frame_max ${c.frameMax}, channel_max ${c.channelMax}, heartbeat ${c.heartbeat}`,
    );
  }
  return conn;
}

// openChannel opens a channel (a confirm channel with confirm) that records
// the error the broker closed it with, instead of letting the 'error' event
// go unhandled.
async function openChannel(conn, confirm) {
  const ch = confirm ? await conn.createConfirmChannel() : await conn.createChannel();
  ch.isOpen = true;
  ch.closeError = null;
  ch.closed = new Promise((resolve) => {
    ch.on('close', () => {
      ch.isOpen = false;
      resolve();
    });
  });
  ch.on('error', (e) => {
    ch.closeError = e;
  });
  return ch;
}

// publish publishes on a confirm channel, waiting for 'drain' when amqplib
// asks for it, and returns { confirm }, a promise of the broker's confirm
// (wrapped, so that awaiting publish does not wait for it): it resolves on
// basic.ack and rejects on basic.nack or when the channel closes first.
async function publish(ch, exchange, key, body, options) {
  let confirmed;
  const confirm = new Promise((resolve, reject) => {
    confirmed = (err) => (err ? reject(err) : resolve());
  });
  confirm.catch(() => {}); // the caller looks at it, or waitForConfirms fails
  if (!ch.publish(exchange, key, body, options || {}, confirmed)) {
    await withTimeout(new Promise((resolve) => ch.once('drain', resolve)), TIMEOUT, "waiting for amqplib's drain");
  }
  return { confirm };
}

// confirmedPublish publishes and waits until the broker confirms.
async function confirmedPublish(ch, exchange, key, body, options) {
  const { confirm } = await publish(ch, exchange, key, body, options);
  try {
    await withTimeout(confirm, TIMEOUT, `confirm of a publish to ${exchange || "''"} with key ${key}`);
  } catch (e) {
    if (e instanceof CheckFailed) throw e;
    fail(`publish to exchange ${show(exchange)} key ${show(key)} was not confirmed: ${e.message}`);
  }
}

async function counts(ch, queue) {
  const ok = await ch.checkQueue(queue);
  return [ok.messageCount, ok.consumerCount];
}

// drainGet returns every body left in queue, in order, with get and noAck.
async function drainGet(ch, queue, limit = 1000) {
  const bodies = [];
  while (bodies.length < limit) {
    const m = await ch.get(queue, { noAck: true });
    if (m === false) return bodies;
    bodies.push(m.content);
  }
  fail(`queue ${queue} still not empty after ${limit} get`);
}

// ---------------------------------------------------------------- checks

// The basic properties as amqplib decodes them; each must come back as sent
// (absent ones absent).
const PROPERTY_NAMES = [
  'contentType',
  'contentEncoding',
  'headers',
  'deliveryMode',
  'priority',
  'correlationId',
  'replyTo',
  'expiration',
  'messageId',
  'timestamp',
  'type',
  'userId',
  'appId',
  'clusterId',
];

// Bodies of the confirm check: every byte value, an empty body, a body of
// 300 KiB (more than the usual frame_max of 128 KiB, so several body
// frames), then text with a non-ASCII character.
function confirmBody(i) {
  if (i === 0) return Buffer.from(Array.from({ length: 256 }, (_, b) => b));
  if (i === 1) return Buffer.alloc(0);
  if (i === 2) {
    const b = Buffer.alloc(300 * 1024);
    let x = 12345;
    for (let j = 0; j < b.length; j++) {
      x = (x * 1103515245 + 12345) >>> 0;
      b[j] = x >>> 24;
    }
    return b;
  }
  return Buffer.from(`message ${String(i).padStart(3, '0')} \u00e9`, 'utf8');
}

// Headers with each field-table type RabbitMQ lists; amqplib picks the
// smallest integer type that fits (b, s, I, l) and d for fractions, and
// '!' names the others.
function confirmHeaders(i) {
  return {
    seq: i,
    src: 'amqplib',
    text: 'caf\u00e9 \u2603',
    byte: -5,
    short: 1000,
    int: 100000,
    long: 2 ** 40 + 1,
    negLong: -(2 ** 40),
    double: 1.5,
    float: { '!': 'float', value: 0.25 },
    yes: true,
    no: false,
    nothing: null,
    bin: Buffer.from([0, 1, 2, 0x7f, 0x80, 0xfe, 0xff, 0]),
    list: [1, 'two', true, null, [3, 'x'], { k: 'v' }],
    table: { a: 1, b: { c: 'deep' }, e: [] },
    ts: { '!': 'timestamp', value: 1700000000 },
    dec: { '!': 'decimal', value: { places: 2, digits: 12345 } },
  };
}

// What amqplib gives back for confirmHeaders(i).
function wantHeaders(i) {
  const h = confirmHeaders(i);
  h.float = 0.25;
  return h;
}

function confirmOptions(i, user, runId) {
  return {
    persistent: true,
    mandatory: true,
    contentType: i === 0 || i === 2 ? 'application/octet-stream' : 'text/plain',
    contentEncoding: 'identity',
    headers: confirmHeaders(i),
    priority: i % 10,
    correlationId: `corr-${i}`,
    replyTo: `compat-amqplib-reply-${runId}`,
    messageId: `msg-${i}`,
    timestamp: 1700000000 + i,
    type: 'compat.message',
    userId: user,
    appId: 'compat-amqplib',
  };
}

function wantProperties(i, user, runId) {
  const o = confirmOptions(i, user, runId);
  const p = {};
  for (const name of PROPERTY_NAMES) p[name] = undefined;
  Object.assign(p, o, { headers: wantHeaders(i), deliveryMode: 2 });
  delete p.persistent;
  delete p.mandatory;
  return p;
}

function checkProperties(what, got, want) {
  for (const name of PROPERTY_NAMES) {
    const g = got[name];
    const w = want[name];
    if (isDeepStrictEqual(g, w)) continue;
    if (name === 'headers' && g && w && typeof g === 'object') {
      // Name the headers that differ: the whole table is long.
      const keys = [...new Set([...Object.keys(g), ...Object.keys(w)])].filter((k) => !isDeepStrictEqual(g[k], w[k]));
      fail(`${what}: headers differ in ${keys.map((k) => `${k}: got ${show(g[k])}, want ${show(w[k])}`).join('; ')}`);
    }
    fail(`${what}: property ${name} is ${show(g)}, want ${show(w)}`);
  }
}

function checkBody(what, got, want) {
  expect(Buffer.isBuffer(got), `${what}: content is ${show(got)}, not a Buffer`);
  if (got.equals(want)) return;
  let at = 0;
  while (at < got.length && at < want.length && got[at] === want[at]) at++;
  fail(
    `${what}: body of ${got.length} bytes differs from the ${want.length} bytes published, ` +
      `first at byte ${at} (got ${show(got.subarray(0, 24))}, want ${show(want.subarray(0, 24))})`,
  );
}

async function checkConfirm(conn, res, ctx) {
  const q = res.queue('durable');
  const ch = await openChannel(conn, true);
  log(`queue.declare ${q} (durable), on a confirm channel`);
  const ok = await ch.assertQueue(q, { durable: true });
  expect(ok.queue === q, `declare-ok names queue ${show(ok.queue)}, want ${show(q)}`);
  expect(ok.messageCount === 0, `new queue ${q} counts ${ok.messageCount} messages`);

  log(`publishing ${N} persistent messages with properties; bodies: 256 byte values, empty, 300 KiB, text`);
  let acked = 0;
  const nacked = [];
  const confirms = [];
  for (let i = 0; i < N; i++) {
    const { confirm } = await publish(ch, '', q, confirmBody(i), confirmOptions(i, ctx.user, res.runId));
    confirms.push(
      confirm.then(
        () => acked++,
        (e) => nacked.push(`${i}: ${e.message}`),
      ),
    );
  }
  await withTimeout(ch.waitForConfirms(), TIMEOUT, 'waitForConfirms');
  await Promise.all(confirms);
  expect(nacked.length === 0, `publishes not confirmed: ${nacked.join('; ')}`);
  expect(acked === N, `waitForConfirms resolved with ${acked} of ${N} publishes acked`);
  log(`waitForConfirms: all ${N} publishes acked`);

  let [count, consumers] = await counts(ch, q);
  expect(count === N, `after ${N} confirmed publishes the queue counts ${count} messages`);
  expect(consumers === 0, `the queue counts ${consumers} consumers before any consume`);
  log(`checkQueue: ${count} messages`);

  await ch.prefetch(PREFETCH);
  const inbox = new Inbox();
  const { consumerTag } = await ch.consume(q, (m) => inbox.push(m), { noAck: false });
  log(`prefetch ${PREFETCH}, consume with manual ack (consumer tag ${consumerTag})`);
  let lastTag = 0;
  for (let i = 0; i < N; i++) {
    const m = await inbox.next(TIMEOUT);
    expect(m !== null, `no delivery within ${TIMEOUT / 1000}s after ${i} of ${N} messages`);
    const what = `delivery ${i}`;
    checkBody(what, m.content, confirmBody(i));
    expect(!m.fields.redelivered, `${what} is flagged redelivered`);
    expect(m.fields.deliveryTag > lastTag, `${what}: delivery tag ${m.fields.deliveryTag} after ${lastTag}: tags must increase`);
    lastTag = m.fields.deliveryTag;
    expect(m.fields.consumerTag === consumerTag, `${what}: consumer tag ${show(m.fields.consumerTag)}, want ${show(consumerTag)}`);
    expect(
      m.fields.exchange === '' && m.fields.routingKey === q,
      `${what}: exchange ${show(m.fields.exchange)} routing key ${show(m.fields.routingKey)}, want '' and ${show(q)}`,
    );
    checkProperties(what, m.properties, wantProperties(i, ctx.user, res.runId));
    const got = i + 1;
    if (got === PREFETCH && got < N) {
      // Nothing acked yet: the broker must hold the rest back.
      await sleep(QUIET);
      expect(inbox.length === 0, `with prefetch ${PREFETCH} and no ack, ${inbox.length} more messages arrived`);
      log(`prefetch: no delivery beyond ${PREFETCH} unacknowledged messages`);
      [count, consumers] = await counts(ch, q);
      expect(
        count === N - PREFETCH && consumers === 1,
        `with ${PREFETCH} messages delivered and not acked the queue counts ${count} messages and ` +
          `${consumers} consumers, want ${N - PREFETCH} (ready ones) and 1`,
      );
      log(`checkQueue: ${count} ready messages, ${consumers} consumer`);
    }
    if (got % PREFETCH === 0 || got === N) ch.ack(m, true);
  }
  log(`consumed ${N} messages in order, bodies byte for byte, properties as sent; acked`);

  // Exactly once: nothing more arrives.
  await sleep(QUIET);
  expect(inbox.length === 0, `${inbox.length} messages arrived after all ${N} were consumed`);
  await ch.cancel(consumerTag);
  [count, consumers] = await counts(ch, q);
  expect(count === 0, `after acking all messages the queue counts ${count}`);
  expect(consumers === 0, `after basic.cancel the queue counts ${consumers} consumers`);
  log('checkQueue: 0 messages, 0 consumers');
  await ch.close();
}

// Topic bindings and the keys each queue must get, in publish order. Worked
// out by hand from the AMQP rules: '*' is exactly one word, '#' zero or more.
const TOPIC_KEYS = ['a', 'a.b', 'a.b.c', 'a.c', 'z', 'a.z', 'x.b.y', 'a.b.z', 'a.x.y.c', 'aa.b', 'b.a', 'x.y.z', 'a.b.c.d'];
const TOPIC_WANT = {
  'a.*': ['a.b', 'a.c', 'a.z'],
  'a.#': ['a', 'a.b', 'a.b.c', 'a.c', 'a.z', 'a.b.z', 'a.x.y.c', 'a.b.c.d'],
  '#.z': ['z', 'a.z', 'a.b.z', 'x.y.z'],
  '*.b.*': ['a.b.c', 'x.b.y', 'a.b.z'],
  '#': TOPIC_KEYS,
  'a.#.c': ['a.b.c', 'a.c', 'a.x.y.c'],
  'a.b.c': ['a.b.c'],
};
// One queue bound twice; "a.z" matches both bindings and arrives once.
const TOPIC_TWICE = ['a.*', '*.z'];
const TOPIC_TWICE_WANT = ['a.b', 'a.c', 'a.z'];

async function checkTopic(conn, res) {
  const ch = await openChannel(conn, true);
  const x = res.exchange('topic');
  log(`exchange.declare ${x} (topic)`);
  await ch.assertExchange(x, 'topic', { durable: false });
  const queues = {};
  let i = 0;
  for (const pattern of Object.keys(TOPIC_WANT)) {
    const q = res.queue(`q${i++}`);
    await ch.assertQueue(q, { durable: false });
    await ch.bindQueue(q, x, pattern);
    queues[pattern] = q;
  }
  const twice = res.queue('twice');
  await ch.assertQueue(twice, { durable: false });
  for (const pattern of TOPIC_TWICE) await ch.bindQueue(twice, x, pattern);
  log(`bound ${Object.keys(queues).length + 1} queues: ${Object.keys(TOPIC_WANT).join(' ')}, and one with ${TOPIC_TWICE.join(' and ')}`);

  for (const key of TOPIC_KEYS) await confirmedPublish(ch, x, key, Buffer.from(key));
  log(`published and confirmed keys ${TOPIC_KEYS.join(' ')}`);

  const checks = Object.keys(TOPIC_WANT).map((p) => [p, queues[p], TOPIC_WANT[p]]);
  checks.push([TOPIC_TWICE.join(' and '), twice, TOPIC_TWICE_WANT]);
  for (const [pattern, q, want] of checks) {
    const [count] = await counts(ch, q);
    const got = (await drainGet(ch, q)).map((b) => b.toString());
    expect(isDeepStrictEqual(got, want), `queue bound with ${pattern} got keys ${show(got)}, want ${show(want)}`);
    expect(count === want.length, `queue bound with ${pattern} counted ${count} messages, want ${want.length}`);
    log(`  ${pattern.padEnd(12)} got ${got.join(' ')}`);
  }
  await ch.close();
}

// Headers bindings (arguments) and message headers, with the messages each
// queue must get, in publish order.
const HEADERS_BINDINGS = {
  all: { 'x-match': 'all', format: 'pdf', type: 'report' },
  any: { 'x-match': 'any', format: 'pdf', type: 'report' },
  default: { format: 'pdf' }, // no x-match: all
  int: { 'x-match': 'all', version: 2 },
};
const HEADERS_MESSAGES = [
  ['m1', { format: 'pdf', type: 'report' }],
  ['m2', { format: 'pdf', type: 'log' }],
  ['m3', { format: 'zip', type: 'report', extra: 'x' }],
  ['m4', { format: 'pdf', type: 'report', extra: 1 }],
  ['m5', { other: 'x' }],
  ['m6', undefined],
  ['m7', { format: 'PDF' }],
  ['m8', { type: 'report' }],
  ['m9', { version: 2 }],
];
const HEADERS_WANT = {
  all: ['m1', 'm4'],
  any: ['m1', 'm2', 'm3', 'm4', 'm8'],
  default: ['m1', 'm2', 'm4'],
  int: ['m9'],
};

async function checkHeaders(conn, res) {
  const ch = await openChannel(conn, true);
  const x = res.exchange('headers');
  log(`exchange.declare ${x} (headers)`);
  await ch.assertExchange(x, 'headers', { durable: false });
  const queues = {};
  for (const [name, args] of Object.entries(HEADERS_BINDINGS)) {
    const q = res.queue(name);
    await ch.assertQueue(q, { durable: false });
    // The routing key plays no part in a headers exchange.
    await ch.bindQueue(q, x, 'ignored', args);
    queues[name] = q;
    log(`  bound ${name} with ${show(args)}`);
  }

  for (const [body, headers] of HEADERS_MESSAGES) {
    await confirmedPublish(ch, x, `key-${body}`, Buffer.from(body), { headers });
  }
  log(`published and confirmed ${HEADERS_MESSAGES.map(([b, h]) => `${b} ${show(h)}`).join(', ')}`);

  for (const [name, want] of Object.entries(HEADERS_WANT)) {
    const got = (await drainGet(ch, queues[name])).map((b) => b.toString());
    expect(isDeepStrictEqual(got, want), `queue bound with ${show(HEADERS_BINDINGS[name])} got ${show(got)}, want ${show(want)}`);
    log(`  ${name.padEnd(8)} got ${got.join(' ')}`);
  }
  await ch.close();
}

async function checkCcBcc(conn, res) {
  const ch = await openChannel(conn, true);
  const x = res.exchange('direct');
  log(`exchange.declare ${x} (direct)`);
  await ch.assertExchange(x, 'direct', { durable: false });
  const queues = {};
  for (const key of ['key-a', 'key-b', 'key-c']) {
    const q = res.queue(key);
    await ch.assertQueue(q, { durable: false });
    await ch.bindQueue(q, x, key);
    queues[key] = q;
  }
  log(`bound queues with keys ${Object.keys(queues).join(' ')}`);

  await confirmedPublish(ch, x, 'key-a', Buffer.from('cc'), { CC: ['key-b'], headers: { h: 1 } });
  log("published key-a with CC ['key-b']");
  await confirmedPublish(ch, x, 'nowhere', Buffer.from('bcc'), { BCC: 'key-c', headers: { h: 2 } });
  log("published key nowhere with BCC 'key-c'");
  await confirmedPublish(ch, x, 'key-a', Buffer.from('both'), { CC: 'key-b', BCC: ['key-c', 'key-a'] });
  log("published key-a with CC 'key-b' and BCC ['key-c', 'key-a']");

  const want = {
    'key-a': [
      ['cc', { h: 1, CC: ['key-b'] }],
      ['both', { CC: ['key-b'] }],
    ],
    'key-b': [
      ['cc', { h: 1, CC: ['key-b'] }],
      ['both', { CC: ['key-b'] }],
    ],
    'key-c': [
      ['bcc', { h: 2 }],
      ['both', { CC: ['key-b'] }],
    ],
  };
  for (const [key, msgs] of Object.entries(want)) {
    const got = [];
    for (;;) {
      const m = await ch.get(queues[key], { noAck: true });
      if (m === false) break;
      got.push([m.content.toString(), m.properties.headers]);
    }
    expect(
      isDeepStrictEqual(got, msgs),
      `queue bound with ${key} got (body, headers) ${show(got)}, want ${show(msgs)} (CC stays in the headers, BCC does not)`,
    );
    log(`  ${key} got ${got.map(([b, h]) => `${b} ${show(h)}`).join(', ')}`);
  }
  await ch.close();
}

async function checkMandatory(conn, res) {
  const ch = await openChannel(conn, true);
  const returned = new Inbox();
  const events = [];
  ch.on('return', (m) => {
    events.push('return');
    returned.push(m);
  });
  const x = res.exchange('direct');
  log(`exchange.declare ${x} (direct, no bindings)`);
  await ch.assertExchange(x, 'direct', { durable: false });

  log('mandatory publish with key nowhere');
  const { confirm } = await publish(ch, x, 'nowhere', Buffer.from('unroutable'), {
    mandatory: true,
    messageId: 'm-unroutable',
    headers: { h: 'v' },
  });
  await withTimeout(
    confirm.then(() => events.push('ack')),
    TIMEOUT,
    'confirm of the mandatory publish',
  );
  const m = await returned.next(TIMEOUT);
  expect(m !== null, `no 'return' event within ${TIMEOUT / 1000}s of a mandatory publish to an exchange without bindings`);
  const f = m.fields;
  log(`  returned: reply ${f.replyCode} ${f.replyText}, exchange ${f.exchange}, key ${f.routingKey}, body ${show(m.content.toString())}`);
  expect(isDeepStrictEqual(events, ['return', 'ack']), `events in the order ${events.join(', ')}, want return before ack`);
  expect(f.replyCode === 312, `basic.return reply code ${f.replyCode}, want 312 (NO_ROUTE)`);
  expect(f.replyText === 'NO_ROUTE', `basic.return reply text ${show(f.replyText)}, want 'NO_ROUTE'`);
  expect(f.exchange === x && f.routingKey === 'nowhere', `basic.return names exchange ${show(f.exchange)} key ${show(f.routingKey)}, want ${show(x)} and 'nowhere'`);
  checkBody('basic.return', m.content, Buffer.from('unroutable'));
  expect(
    m.properties.messageId === 'm-unroutable' && isDeepStrictEqual(m.properties.headers, { h: 'v' }),
    `basic.return properties message id ${show(m.properties.messageId)} headers ${show(m.properties.headers)}, want 'm-unroutable' and { h: 'v' }`,
  );

  log('the same publish without mandatory is confirmed and dropped');
  await confirmedPublish(ch, x, 'nowhere', Buffer.from('dropped'));
  await sleep(QUIET);
  expect(returned.length === 0, `a publish without mandatory came back: ${show(returned.items.map((r) => r.content.toString()))}`);

  const q = res.queue('bound');
  await ch.assertQueue(q, { durable: false });
  await ch.bindQueue(q, x, 'somewhere');
  log(`mandatory publish with key somewhere, bound to ${q}`);
  await confirmedPublish(ch, x, 'somewhere', Buffer.from('routed'), { mandatory: true });
  await sleep(QUIET);
  expect(returned.length === 0, 'a mandatory publish to a bound queue came back');
  const got = (await drainGet(ch, q)).map((b) => b.toString());
  expect(isDeepStrictEqual(got, ['routed']), `the bound queue got ${show(got)}, want ['routed']`);
  await ch.close();
}

async function checkRequeue(conn, res) {
  const ch = await openChannel(conn, true);
  const q = res.queue('requeue');
  await ch.assertQueue(q, { durable: false });

  // reject(requeue=true) after get.
  await confirmedPublish(ch, '', q, Buffer.from('reject-me'));
  let m = await ch.get(q, { noAck: false });
  expect(m !== false, 'get found the queue empty after a confirmed publish');
  expect(
    m.content.toString() === 'reject-me' && !m.fields.redelivered,
    `first get: body ${show(m.content.toString())} redelivered ${m.fields.redelivered}, want 'reject-me' false`,
  );
  log(`get: 'reject-me', redelivered=${m.fields.redelivered}; reject requeue=true`);
  ch.reject(m, true);
  m = await ch.get(q, { noAck: false });
  expect(m !== false, 'get found the queue empty after reject(requeue=true)');
  expect(m.content.toString() === 'reject-me', `after the reject get returned ${show(m.content.toString())}`);
  expect(m.fields.redelivered, 'the requeued message is not flagged redelivered');
  log(`get again: 'reject-me', redelivered=${m.fields.redelivered}`);
  ch.ack(m);

  // nack(requeue=true) on a consumer: delivered again to it.
  await confirmedPublish(ch, '', q, Buffer.from('nack-me'));
  const inbox = new Inbox();
  const { consumerTag } = await ch.consume(q, (d) => inbox.push(d), { noAck: false });
  const deliveries = [];
  for (let i = 0; i < 2; i++) {
    const d = await inbox.next(TIMEOUT);
    expect(d !== null, `no delivery within ${TIMEOUT / 1000}s; deliveries so far ${show(deliveries)}`);
    deliveries.push([d.content.toString(), d.fields.redelivered]);
    if (i === 0) {
      log(`deliver: 'nack-me', redelivered=${d.fields.redelivered}; nack requeue=true`);
      ch.nack(d, false, true);
    } else {
      log(`deliver again: 'nack-me', redelivered=${d.fields.redelivered}`);
      ch.ack(d);
    }
  }
  expect(
    isDeepStrictEqual(deliveries, [
      ['nack-me', false],
      ['nack-me', true],
    ]),
    `deliveries (body, redelivered) ${show(deliveries)}, want [['nack-me', false], ['nack-me', true]]`,
  );
  await ch.cancel(consumerTag);
  await sleep(QUIET);
  expect(inbox.length === 0, `${inbox.length} more deliveries after the ack`);

  // nack(allUpTo=true, requeue=true) of two messages got: both go back to
  // where they were, ahead of the third.
  for (const b of ['one', 'two', 'three']) await confirmedPublish(ch, '', q, Buffer.from(b));
  const one = await ch.get(q, { noAck: false });
  const two = await ch.get(q, { noAck: false });
  expect(
    one !== false && two !== false && one.content.toString() === 'one' && two.content.toString() === 'two',
    `two gets returned ${show([one && one.content.toString(), two && two.content.toString()])}, want ['one', 'two']`,
  );
  ch.nack(two, true, true);
  log("get 'one' and 'two' of one two three; nack allUpTo=true requeue=true");
  const again = [];
  for (;;) {
    const g = await ch.get(q, { noAck: true });
    if (g === false) break;
    again.push([g.content.toString(), g.fields.redelivered]);
  }
  const wantAgain = [
    ['one', true],
    ['two', true],
    ['three', false],
  ];
  expect(
    isDeepStrictEqual(again, wantAgain),
    `after the nack, gets returned (body, redelivered) ${show(again)}, want ${show(wantAgain)} (requeued messages keep their place)`,
  );
  log(`then get: ${again.map(([b, r]) => `${b} redelivered=${r}`).join(', ')}`);

  // reject(requeue=false) drops the message.
  await confirmedPublish(ch, '', q, Buffer.from('drop-me'));
  m = await ch.get(q, { noAck: false });
  expect(m !== false && m.content.toString() === 'drop-me', "get did not return 'drop-me'");
  ch.reject(m, false);
  log("reject requeue=false of 'drop-me'");
  const [count] = await counts(ch, q);
  expect(count === 0, `after reject(requeue=false) the queue counts ${count} messages`);
  m = await ch.get(q, { noAck: false });
  expect(m === false, `get after reject(requeue=false) returned ${show(m && m.content.toString())}`);
  log('the queue is empty');
  await ch.close();
}

// expectChannelClosed waits until ch has closed and wants the error it was
// closed with to carry code 404 and name the method (class and method id)
// that caused it.
async function expectChannelClosed(conn, ch, what, classId, methodId) {
  await withTimeout(ch.closed, TIMEOUT, `waiting for the channel to close after ${what}`);
  const e = ch.closeError;
  expect(e !== null, `the channel closed after ${what} without an 'error' event`);
  log(`  channel closed: ${e.message}`);
  expect(e.code === 404, `reply code ${e.code}, want 404 (NOT_FOUND)`);
  expect(
    e.classId === classId && e.methodId === methodId,
    `channel.close names class ${e.classId} method ${e.methodId}, want ${classId} ${methodId}`,
  );
  expect(conn.isOpen, `the connection closed with the channel${conn.closeError ? `: ${conn.closeError.message}` : ''}`);
}

async function checkChannelError(conn, res) {
  const missingQ = `${res.prefix}-missing`; // never declared, nothing to delete
  let ch = await openChannel(conn);
  log(`checkQueue ${missingQ} (missing)`);
  let err = null;
  try {
    await withTimeout(ch.checkQueue(missingQ), TIMEOUT, 'checkQueue of a missing queue');
  } catch (e) {
    if (e instanceof CheckFailed) throw e;
    err = e;
  }
  expect(err !== null, 'a passive declare of a missing queue succeeded');
  log(`  checkQueue failed: ${err.message}`);
  expect(err.code === 404, `checkQueue failed with code ${err.code}, want 404 (NOT_FOUND)`);
  await expectChannelClosed(conn, ch, 'checkQueue', 50, 10); // queue.declare

  const missingX = `${res.prefix}-missing-exchange`;
  ch = await openChannel(conn, true);
  log(`publish to missing exchange ${missingX} on a confirm channel`);
  const { confirm } = await publish(ch, missingX, 'k', Buffer.from('nowhere'));
  let confirmErr = null;
  try {
    await withTimeout(confirm, TIMEOUT, 'the confirm of a publish to a missing exchange');
  } catch (e) {
    if (e instanceof CheckFailed) throw e;
    confirmErr = e;
  }
  expect(confirmErr !== null, 'a publish to a missing exchange was confirmed');
  log(`  the publish was not confirmed: ${confirmErr.message}`);
  let waitErr = null;
  try {
    await withTimeout(ch.waitForConfirms(), TIMEOUT, 'waitForConfirms after a publish to a missing exchange');
  } catch (e) {
    if (e instanceof CheckFailed) throw e;
    waitErr = e;
  }
  expect(waitErr !== null, 'waitForConfirms resolved after a publish to a missing exchange');
  await expectChannelClosed(conn, ch, 'the publish', 60, 40); // basic.publish

  ch = await openChannel(conn);
  const q = res.queue('after-error');
  log(`a new channel: declare ${q}, sendToQueue, get`);
  await ch.assertQueue(q, { durable: false });
  ch.sendToQueue(q, Buffer.from('still works'));
  let m = false;
  for (let i = 0; i < 20 && m === false; i++) {
    // Without confirms, the get may overtake nothing but is retried briefly.
    m = await ch.get(q, { noAck: true });
    if (m === false) await sleep(50);
  }
  expect(m !== false && m.content.toString() === 'still works', `get on the new channel returned ${show(m && m.content.toString())}`);
  await ch.close();
  expect(conn.isOpen, 'the connection closed');
}

// The restart checks: restart-publish before the broker restarts,
// restart-verify after. Persistent messages are numbered 0..RESTART_N-1; a
// transient one follows every RESTART_N/RESTART_TRANSIENT-th of them.
const RESTART_N = 50;
const RESTART_TRANSIENT = 10;

// restartQueue is the queue both restart checks use; not derived from the
// check name, as res.queue would, since the two checks share it.
function restartQueue(res) {
  return `compat-amqplib-restart-${res.runId}`;
}

function restartBody(i) {
  // Text, then bytes that are not UTF-8.
  return Buffer.concat([Buffer.from(`persistent ${String(i).padStart(2, '0')} \u00e9 `), Buffer.from([0, 0xff, i])]);
}

function restartTransientBody(j) {
  return Buffer.from(`transient ${String(j).padStart(2, '0')}`);
}

async function checkRestartPublish(conn, res) {
  const q = restartQueue(res);
  // Deleted if this check fails; left for restart-verify if it passes.
  res.queues.push(q);
  const ch = await openChannel(conn, true);
  log(`queue.declare ${q} (durable), on a confirm channel`);
  const ok = await ch.assertQueue(q, { durable: true });
  expect(ok.messageCount === 0, `new queue ${q} counts ${ok.messageCount} messages`);

  const every = RESTART_N / RESTART_TRANSIENT;
  let transient = 0;
  for (let i = 0; i < RESTART_N; i++) {
    await confirmedPublish(ch, '', q, restartBody(i), {
      mandatory: true,
      persistent: true,
      messageId: `persistent-${i}`,
      headers: { seq: i },
    });
    if ((i + 1) % every === 0) {
      await confirmedPublish(ch, '', q, restartTransientBody(transient), {
        mandatory: true,
        persistent: false,
        messageId: `transient-${transient}`,
      });
      transient++;
    }
  }
  log(`published ${RESTART_N} persistent and ${transient} transient messages, interleaved, each one confirmed`);

  const [count] = await counts(ch, q);
  expect(count === RESTART_N + transient, `after ${RESTART_N + transient} confirmed publishes the queue counts ${count} messages`);
  log(`checkQueue: ${count} messages; the queue stays for restart-verify`);
  await ch.close();
  res.queues.splice(res.queues.indexOf(q), 1);
}

async function checkRestartVerify(conn, res) {
  const q = restartQueue(res);
  const ch = await openChannel(conn);
  log(`checkQueue ${q}`);
  let count;
  let consumers;
  try {
    [count, consumers] = await counts(ch, q);
  } catch (e) {
    fail(`after the restart, a passive declare of the durable queue ${q} failed: ${e.message} (the queue did not survive the restart)`);
  }
  res.queues.push(q); // from here on, deleted when the check ends
  const transient = new Set(Array.from({ length: RESTART_TRANSIENT }, (_, j) => restartTransientBody(j).toString('hex')));
  expect(
    count === RESTART_N,
    `after the restart the queue counts ${count} messages, want ${RESTART_N}: the ${RESTART_N} persistent ones and none of the ${RESTART_TRANSIENT} transient ones`,
  );
  expect(consumers === 0, `after the restart the queue counts ${consumers} consumers`);
  log(`checkQueue: ${count} messages, 0 consumers`);

  await ch.prefetch(PREFETCH);
  const inbox = new Inbox();
  const { consumerTag } = await ch.consume(q, (m) => inbox.push(m), { noAck: false });
  log(`prefetch ${PREFETCH}, consume with manual ack`);
  let redelivered = 0;
  for (let i = 0; i < RESTART_N; i++) {
    const m = await inbox.next(TIMEOUT);
    expect(m !== null, `no delivery within ${TIMEOUT / 1000}s after ${i} of ${RESTART_N} messages`);
    expect(
      !transient.has(m.content.toString('hex')),
      `delivery ${i}: ${show(m.content.toString())} is a transient message (delivery mode 1); it must not survive a restart`,
    );
    checkBody(`delivery ${i} (out of order, lost or delivered twice?)`, m.content, restartBody(i));
    expect(m.properties.deliveryMode === 2, `delivery ${i}: deliveryMode ${m.properties.deliveryMode}, want 2 (persistent)`);
    expect(
      m.properties.messageId === `persistent-${i}`,
      `delivery ${i}: messageId ${show(m.properties.messageId)}, want ${show(`persistent-${i}`)}`,
    );
    expect(isDeepStrictEqual(m.properties.headers, { seq: i }), `delivery ${i}: headers ${show(m.properties.headers)}, want ${show({ seq: i })}`);
    if (m.fields.redelivered) redelivered++;
    if ((i + 1) % PREFETCH === 0 || i + 1 === RESTART_N) ch.ack(m, true);
  }
  log(`consumed the ${RESTART_N} persistent messages in publish order and acked them (${redelivered} flagged redelivered)`);

  await sleep(QUIET);
  expect(inbox.length === 0, `${inbox.length} more messages arrived after the ${RESTART_N} persistent ones`);
  await ch.cancel(consumerTag);
  [count] = await counts(ch, q);
  expect(count === 0, `after acking all messages the queue counts ${count}`);
  log('checkQueue: 0 messages');
  const ok = await ch.deleteQueue(q);
  res.queues.splice(res.queues.indexOf(q), 1);
  expect(ok.messageCount === 0, `queue.delete-ok counts ${ok.messageCount} messages, want 0`);
  log(`queue.delete ${q}: 0 messages`);
  await ch.close();
}

const CHECKS = {
  confirm: checkConfirm,
  topic: checkTopic,
  headers: checkHeaders,
  'cc-bcc': checkCcBcc,
  mandatory: checkMandatory,
  requeue: checkRequeue,
  'channel-error': checkChannelError,
  'restart-publish': checkRestartPublish,
  'restart-verify': checkRestartVerify,
};
// Run when no check is named: all but the restart ones, which need the
// broker to restart between them.
const DEFAULT_CHECKS = Object.keys(CHECKS).filter((c) => !c.startsWith('restart-'));

async function run(url, runId, name, ctx) {
  log(`== ${name}`);
  const res = new Resources(runId, name);
  let conn = await connect(url);
  let errors = [];
  try {
    await CHECKS[name](conn, res, ctx);
  } finally {
    if (!conn.isOpen) {
      // The broker closed the connection: clean up on a new one.
      try {
        conn = await connect(url);
      } catch (e) {
        log(`cleanup: cannot reconnect: ${e.message}`);
      }
    }
    errors = conn.isOpen ? await res.delete(conn) : ['not connected'];
    for (const e of errors) log(`cleanup: ${e}`);
    if (conn.isOpen) {
      try {
        await withTimeout(conn.close(), TIMEOUT, 'connection.close');
      } catch (e) {
        errors.push(`connection.close: ${e.message}`);
      }
    }
  }
  // A leftover from a passing check is a failure too.
  if (errors.length > 0) fail(`cleanup: ${errors.join('; ')}`);
}

function usage(msg) {
  if (msg) console.error(`amqplib_check.js: ${msg}`);
  console.error(`usage: node amqplib_check.js URL [RUN_ID [CHECK...]]\n  checks: ${Object.keys(CHECKS).join(' ')}`);
  process.exit(2);
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length === 0 && process.env.COMPAT_AMQP_URL) args.push(process.env.COMPAT_AMQP_URL);
  if (args.length === 0 || args[0] === '-h' || args[0] === '--help') usage();
  const [url, runId = `${Math.floor(Date.now() / 1000)}-${process.pid}`, ...checks] = args;
  for (const c of checks) {
    if (!Object.hasOwn(CHECKS, c)) usage(`unknown check ${show(c)}`);
  }
  let user = 'guest'; // amqplib's default without credentials in the URL
  try {
    const u = new URL(url);
    if (u.username !== '' || u.password !== '') user = decodeURIComponent(u.username);
  } catch {
    usage(`not a URL: ${show(redact(url))}`);
  }
  try {
    loadAmqplib();
    log(`amqplib ${amqplibVersion}, node ${process.version}, broker ${redact(url)}, run id ${runId}`);
    for (const name of checks.length > 0 ? checks : DEFAULT_CHECKS) {
      await run(url, runId, name, { user });
    }
  } catch (e) {
    if (!(e instanceof CheckFailed)) {
      // amqplib errors and the like: show where.
      log(e && e.stack ? e.stack : String(e));
    }
    log(`FAIL: ${e instanceof CheckFailed ? e.message : `${e && e.name}: ${e && e.message}`}`);
    return 1;
  }
  log('OK');
  return 0;
}

process.on('unhandledRejection', (e) => {
  log(`FAIL: unhandled rejection: ${e && e.stack ? e.stack : String(e)}`);
  process.exit(1);
});

main().then(
  (code) => process.exit(code),
  (e) => {
    log(`FAIL: ${e && e.stack ? e.stack : String(e)}`);
    process.exit(1);
  },
);
