// Browser test of the console page (/console/) with Chromium through
// playwright-core. Run by tests/browser/run.sh, which starts wharf and
// installs playwright-core; it passes, in the environment:
//
//   WHARF_HTTP        host:port of wharf's HTTP listener
//   WHARF_KAFKA       host:port of wharf's Kafka listener
//   KCAT              the kcat (or kafkacat) program
//   CHROMIUM          the Chromium executable
//   PLAYWRIGHT_PREFIX the npm prefix playwright-core is installed under
//   OUT_DIR           where the screenshots and the profile go
//   RUN_ID            makes the message and the record unique
//
// Prints one line per check, "PASS name" or "FAIL name (why)", with details
// of a failure indented below it, and exits 1 if a check failed. The checks
// run in order and depend on each other: after a failure the rest are
// reported as failed (not reached) without running, except console-no-errors
// and console-screenshot, which run whenever the page is there.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const env = (name) => {
  const v = process.env[name];
  if (!v) {
    console.error(`console_test: ${name} is not set (run tests/browser/run.sh)`);
    process.exit(2);
  }
  return v;
};
const httpAddr = env('WHARF_HTTP');
const kafkaAddr = env('WHARF_KAFKA');
const kcat = env('KCAT');
const chromiumPath = env('CHROMIUM');
const outDir = env('OUT_DIR');
const runId = env('RUN_ID');
const require = createRequire(path.join(env('PLAYWRIGHT_PREFIX'), 'package.json'));
const { chromium } = require('playwright-core');

const WAIT_MS = 15000; // one expectation
const GROUP = 'g1';
const TOPIC = 't1';
const consoleURL = `http://${httpAddr}/console/?user=guest&password=guest&group=${GROUP}&topic=${TOPIC}`;

const checks = [];
// check adds a check; an "always" check runs even after a failure, as long
// as the page is there.
const check = (name, fn, always = false) => checks.push({ name, fn, always });
let page; // the console
let context;
const browserLog = []; // the page's console messages and errors
const details = []; // what a failing check says beyond its reason

class CheckError extends Error {}
function fail(reason, ...more) {
  details.push(...more);
  throw new CheckError(reason);
}

// kcatRun runs kcat with the given arguments and input; it fails the check
// unless kcat exits 0.
function kcatRun(args, input) {
  const r = spawnSync(kcat, ['-b', kafkaAddr, ...args], { input, encoding: 'utf8', timeout: 30000 });
  if (r.error || r.status !== 0) {
    fail(`kcat ${args.join(' ')} failed (${r.error ? r.error.message : 'status ' + r.status})`, ...(r.stderr || '').split('\n'));
  }
  return r.stdout;
}

// waitState waits until the element (#id) has data-state="state".
async function waitState(selector, state, what) {
  try {
    await page.waitForSelector(`${selector}[data-state="${state}"]`, { timeout: WAIT_MS });
  } catch {
    const text = await page.locator(selector).textContent().catch(() => '?');
    fail(`${what}: ${selector} did not reach state ${state} within ${WAIT_MS / 1000}s; it shows "${text}"`);
  }
}

// The page loads, connects, authenticates as guest and joins the group.
check('console-connect', async () => {
  const resp = await page.goto(consoleURL, { waitUntil: 'load', timeout: WAIT_MS });
  if (!resp || resp.status() !== 200) fail(`GET ${consoleURL} answered ${resp ? resp.status() : 'nothing'}`);
  const csp = resp.headers()['content-security-policy'] || '';
  if (!csp.includes("script-src 'self'")) fail(`the page's Content-Security-Policy is "${csp}"`);
  await waitState('#state', 'connected', 'connection');
  const clientId = await page.textContent('#client-id');
  if (clientId !== 'guest') fail(`#client-id shows "${clientId}", want guest (the welcome's client_id)`);
  await waitState('#group-state', 'joined', 'join');
  await page
    .locator('#messages li.presence[data-event="join"][data-client="guest"]', { hasText: GROUP })
    .first()
    .waitFor({ timeout: WAIT_MS })
    .catch(() => fail(`#messages shows no presence event for guest joining ${GROUP}`));
  if (await page.locator('#login').isVisible()) fail('the login form shows although the page is connected');
  const url = page.url();
  if (url.includes('password')) fail(`the password is still in the address bar: ${url}`);
});

// The topic does not exist yet: the page says it waits for it and
// subscribes once a first record, produced by kcat, has created it.
check('console-topic-subscribe', async () => {
  await waitState('#topic-state', 'waiting', 'subscription to a topic that does not exist yet');
  kcatRun(['-t', TOPIC, '-P', '-K:'], `seed-${runId}:created by the first record\n`);
  await waitState('#topic-state', 'subscribed', 'subscription once the topic exists');
});

// A second WebSocket client, in another page of the same origin, sends a
// message to the group; the console lists it.
check('console-group-message', async () => {
  const text = `hello group ${runId}`;
  const other = await context.newPage();
  try {
    await other.goto(`http://${httpAddr}/healthz`, { timeout: WAIT_MS });
    const reply = await other.evaluate(
      ({ group, text, waitMs }) =>
        new Promise((resolve, reject) => {
          const ws = new WebSocket(`ws://${location.host}/ws`, 'wharf.v1');
          const timer = setTimeout(() => reject(new Error('no reply within ' + waitMs + 'ms')), waitMs);
          ws.onerror = () => reject(new Error('WebSocket error'));
          ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', id: 'a', username: 'guest', password: 'guest' }));
          ws.onmessage = (ev) => {
            const f = JSON.parse(ev.data);
            if (f.type === 'welcome') {
              ws.send(JSON.stringify({ type: 'send', id: 's', group, data: { text, sender: 'browser-test' } }));
            } else if (f.id === 's' || f.type === 'error') {
              clearTimeout(timer);
              ws.close(1000);
              resolve(f);
            }
          };
        }),
      { group: GROUP, text, waitMs: WAIT_MS },
    );
    if (reply.type !== 'ok' || !(reply.delivered >= 1)) {
      fail(`the group send was answered ${JSON.stringify(reply)}, want ok with delivered >= 1`);
    }
  } finally {
    await other.close();
  }
  const item = page.locator(`#messages li.message[data-from="guest"][data-to="group ${GROUP}"]`, { hasText: text });
  await item.first().waitFor({ timeout: WAIT_MS }).catch(() => fail(`#messages does not show the group message "${text}"`));
  const shown = await item.first().textContent();
  if (!shown.includes('"sender":"browser-test"')) fail(`the message is shown as "${shown}", without its JSON data`);
});

// A record produced over Kafka by kcat shows in #records with its
// partition, offset, key and value, as kcat reads them back.
check('console-kafka-record', async () => {
  const key = `k-${runId}`;
  const value = `hello from kcat ${runId}`;
  kcatRun(['-t', TOPIC, '-P', '-K:'], `${key}:${value}\n`);
  const out = kcatRun(['-t', TOPIC, '-C', '-o', 'beginning', '-e', '-q', '-f', '%p\t%o\t%k\t%s\n']);
  const line = out.split('\n').find((l) => l.split('\t')[2] === key);
  if (!line) fail(`kcat -C does not read back the record with key ${key}`, ...out.split('\n'));
  const [partition, offset] = line.split('\t');
  const item = page.locator(`#records li.record[data-key="${key}"]`);
  await item.first().waitFor({ timeout: WAIT_MS }).catch(() => fail(`#records does not show the record with key ${key}`));
  const got = await item.first().evaluate((li) => ({ ...li.dataset, text: li.textContent }));
  const want = { partition, offset, key, value };
  for (const k of Object.keys(want)) {
    if (got[k] !== want[k]) fail(`the record's ${k} is shown as "${got[k]}", want "${want[k]}" (as kcat reads it)`);
    if (!got.text.includes(`${k}=${want[k]}`)) fail(`the record reads "${got.text}", without ${k}=${want[k]}`);
  }
  const n = await page.locator('#records li.record').count();
  if (n > 2) fail(`#records has ${n} records; want the new one and at most the first (subscribed from latest)`);
});

// The page threw nothing and Chromium reported no errors: CSP violations
// and failed loads are console errors.
check('console-no-errors', async () => {
  const errors = browserLog.filter((l) => l.startsWith('error') || l.startsWith('pageerror'));
  if (errors.length) fail(`the browser reported ${errors.length} error(s)`, ...errors);
}, true);

// The Content-Security-Policy is in force: an inline script and a script
// from another origin (localhost is not 127.0.0.1), added to the page, are
// blocked and reported, and the inline one does not run.
check('console-csp', async () => {
  const port = httpAddr.slice(httpAddr.lastIndexOf(':') + 1);
  const r = await page.evaluate(
    (foreign) =>
      new Promise((resolve) => {
        const seen = [];
        document.addEventListener('securitypolicyviolation', (e) => seen.push(`${e.effectiveDirective} ${e.blockedURI}`));
        const inline = document.createElement('script');
        inline.textContent = 'window.cspInlineRan = true;';
        document.body.append(inline);
        const ext = document.createElement('script');
        ext.src = foreign;
        document.body.append(ext);
        setTimeout(() => resolve({ ran: window.cspInlineRan === true, seen }), 1000);
      }),
    `http://localhost:${port}/console/app.js`,
  );
  if (r.ran) fail('an inline script ran', ...r.seen);
  if (!r.seen.some((v) => v.startsWith('script-src') && v.endsWith(' inline'))) {
    fail('no CSP violation was reported for the inline script', ...r.seen);
  }
  if (!r.seen.some((v) => v.startsWith('script-src') && v.includes('//localhost:'))) {
    fail('no CSP violation was reported for the script from another origin', ...r.seen);
  }
});

check('console-screenshot', async () => {
  const file = path.join(outDir, 'console.png');
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot: ${file}`);
}, true);

let browserFailed = '';
try {
  const profile = mkdtempSync(path.join(outDir, 'chromium-profile-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    timeout: 60000,
    viewport: { width: 1100, height: 700 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  page = context.pages()[0] || (await context.newPage());
  page.on('console', (m) => browserLog.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => browserLog.push(`pageerror: ${e.message}`));
} catch (e) {
  browserFailed = `Chromium did not start: ${e.message.split('\n')[0]}`;
  details.push(...e.message.split('\n').slice(1, 20));
}

let failed = 0;
let stop = browserFailed;
for (const c of checks) {
  if (stop && !(c.always && page)) {
    console.log(`FAIL ${c.name} (${stop === browserFailed ? stop : 'not reached: ' + stop + ' failed'})`);
    failed++;
    continue;
  }
  details.length = 0;
  try {
    await c.fn();
    console.log(`PASS ${c.name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${c.name} (${e instanceof CheckError ? e.message : e.stack || e})`);
    for (const d of details.filter(Boolean)) console.log(`    | ${d}`);
    stop = stop || c.name;
    if (page && !c.always) {
      const show = async (sel) => (await page.locator(sel).innerText().catch(() => '?')).split('\n');
      for (const sel of ['#state', '#group-state', '#topic-state', '#error', '#messages', '#records']) {
        for (const l of await show(sel)) console.log(`    | ${sel}: ${l}`);
      }
      for (const l of browserLog.slice(-20)) console.log(`    | browser: ${l}`);
      const file = path.join(outDir, `failed-${c.name}.png`);
      if (await page.screenshot({ path: file, fullPage: true }).then(() => true, () => false)) {
        console.log(`    | screenshot: ${file}`);
      }
    }
  }
}
if (browserFailed) for (const d of details.filter(Boolean)) console.log(`    | ${d}`);
if (context) await context.close().catch(() => {});
process.exit(failed ? 1 : 0);
