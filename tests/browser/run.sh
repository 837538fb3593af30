#!/usr/bin/env bash
# Browser test of the console page (/console/): Chromium, driven by
# playwright-core from console_test.mjs, against a freshly built wharf.
#
# Builds wharf, starts `wharf serve` with its HTTP and Kafka listeners on
# free loopback ports (AMQP off) and a fresh data directory, and runs
# console_test.mjs, which opens
# http://HTTP/console/?user=guest&password=guest&group=g1&topic=t1 in
# headless Chromium and checks, in order:
#
#   console-connect          the page connects to /ws, authenticates as guest
#                            (its welcome's client id shows) and joins g1 (its
#                            own presence event shows in #messages)
#   console-topic-subscribe  t1 does not exist yet: the page waits for it; a
#                            first record produced with kcat creates it and
#                            the page subscribes (from latest)
#   console-group-message    a second WebSocket client, in another page of the
#                            same origin, sends a message to g1: #messages
#                            shows it
#   console-kafka-record     a record produced with kcat over the Kafka
#                            protocol shows in #records with the partition,
#                            offset, key and value that kcat reads back
#   console-no-errors        no script error and no console error (a blocked
#                            Content-Security-Policy load is one)
#   console-csp              the Content-Security-Policy holds: an inline
#                            script and one from another origin, added to the
#                            page, are blocked
#   console-screenshot       a screenshot of the page, console.png in the
#                            temporary directory (its path is printed)
#
# Prints one line per check (PASS, FAIL or SKIP, then its name), details
# below a failure, and a final line "N passed, N failed" (", N skipped"
# follows when skipped). Exits 1 if a check failed.
#
# Needs Chromium (Debian's chromium, /usr/bin/chromium; CHROMIUM=... names
# another), node 18 or later and npm (Debian's nodejs and npm), kcat (or
# kafkacat) and access to the npm registry: playwright-core, at the version
# pinned below, is installed with npm into the temporary directory at run
# time (nothing is written to the repository). When one is missing, or the
# install fails, the test is skipped (exit 0), except with CI=true, where it
# fails.
#
# Environment: KEEP_TMP=1 keeps the temporary directory (screenshot, data
# directory, server log) and prints where it is; CHECK_TIMEOUT bounds the
# whole browser run in seconds (default 180); WHARF_LOG_LEVEL for the
# server (default debug).
set -euo pipefail

cd "$(dirname "$0")/../.."

if ! command -v go >/dev/null 2>&1; then
	export PATH="/usr/local/go/bin:$PATH"
fi

# playwright-core 1.61 is the last release that runs on node 18 (Debian 12's
# nodejs); it drives the Chromium of Debian 12's chromium package.
PLAYWRIGHT_VERSION=1.61.1
NPM_TIMEOUT=300 # seconds for the npm install
CHECK_TIMEOUT="${CHECK_TIMEOUT:-180}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
run_id="$(date +%s)-$$"
in_ci=false
if [ "${CI:-}" = "true" ]; then in_ci=true; fi

tmp="$(mktemp -d)"
pid=""
cleanup() {
	if [ -n "$pid" ]; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	if [ "${KEEP_TMP:-}" = "1" ]; then
		echo "browser: kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT

# not_run REASON reports the whole test as skipped, or as failed under
# CI=true, and exits.
not_run() {
	if $in_ci; then
		echo "FAIL browser ($1; CI=true requires it)"
		echo "0 passed, 1 failed"
		exit 1
	fi
	echo "SKIP browser ($1)"
	echo "0 passed, 0 failed, 1 skipped"
	exit 0
}

die() {
	echo "browser: $*" >&2
	if [ -f "$tmp/wharf.log" ]; then
		echo "--- wharf log (last 50 lines) ---" >&2
		tail -n 50 "$tmp/wharf.log" >&2
	fi
	exit 1
}

# ---------------------------------------------------------------- tools

missing=""
if [ ! -x "$CHROMIUM" ]; then
	missing="$missing; $CHROMIUM is not installed: install chromium"
fi
if ! command -v node >/dev/null 2>&1; then
	missing="$missing; node is not installed: install nodejs"
else
	major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || true)"
	if ! [ "$major" -ge 18 ] 2>/dev/null; then
		missing="$missing; node $(node --version 2>/dev/null) is too old: playwright-core $PLAYWRIGHT_VERSION needs node 18 or later"
	fi
fi
if ! command -v npm >/dev/null 2>&1; then
	missing="$missing; npm is not installed: install npm"
fi
kcat_bin=""
for c in kcat kafkacat; do
	if command -v "$c" >/dev/null 2>&1; then
		kcat_bin="$(command -v "$c")"
		break
	fi
done
if [ -z "$kcat_bin" ]; then
	missing="$missing; kcat is not installed: install kcat"
fi
if [ -n "$missing" ]; then
	not_run "${missing#; }"
fi

echo "browser: installing playwright-core@$PLAYWRIGHT_VERSION with npm" >&2
if ! NPM_CONFIG_UPDATE_NOTIFIER=false timeout -k 5 "$NPM_TIMEOUT" \
	npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
	--prefix "$tmp/node" "playwright-core@$PLAYWRIGHT_VERSION" >"$tmp/npm-install.log" 2>&1 ||
	[ ! -f "$tmp/node/node_modules/playwright-core/package.json" ]; then
	{
		echo "browser: npm install playwright-core@$PLAYWRIGHT_VERSION failed; its last lines:"
		tail -n 10 "$tmp/npm-install.log" | sed 's/^/    | /'
	} >&2
	not_run "npm install playwright-core@$PLAYWRIGHT_VERSION failed"
fi

# ---------------------------------------------------------------- server

echo "browser: building wharf" >&2
go build -o "$tmp/wharf" ./cmd/wharf

# Port 0 picks a free port; each listener logs the address it bound.
"$tmp/wharf" serve \
	--data-dir "$tmp/data" \
	--kafka-listen 127.0.0.1:0 \
	--amqp-listen "" \
	--http-listen 127.0.0.1:0 \
	--auto-create-topics=true \
	--log-level "${WHARF_LOG_LEVEL:-debug}" \
	>"$tmp/wharf.log" 2>&1 &
pid=$!

# listening_addr LISTENER prints the address wharf logged "listening" on for
# LISTENER (kafka or http), once it accepts connections.
listening_addr() {
	local addr
	addr="$(sed -n "/msg=listening .*listener=$1 /s/.* addr=\([^ ]*\).*/\1/p" "$tmp/wharf.log" | head -n 1)"
	if [ -n "$addr" ] && (exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}") 2>/dev/null; then
		printf '%s\n' "$addr"
	fi
}

kafka_addr=""
http_addr=""
for _ in $(seq 150); do
	kill -0 "$pid" 2>/dev/null || die "wharf exited during startup"
	[ -n "$kafka_addr" ] || kafka_addr="$(listening_addr kafka)"
	[ -n "$http_addr" ] || http_addr="$(listening_addr http)"
	if [ -n "$kafka_addr" ] && [ -n "$http_addr" ]; then break; fi
	sleep 0.1
done
[ -n "$kafka_addr" ] || die "the Kafka listener did not accept connections within 15s"
[ -n "$http_addr" ] || die "the HTTP listener did not accept connections within 15s"
echo "browser: wharf is serving HTTP on $http_addr and Kafka on $kafka_addr" >&2

# ---------------------------------------------------------------- run

mkdir -p "$tmp/out"
status=0
WHARF_HTTP="$http_addr" WHARF_KAFKA="$kafka_addr" KCAT="$kcat_bin" CHROMIUM="$CHROMIUM" \
	PLAYWRIGHT_PREFIX="$tmp/node" OUT_DIR="$tmp/out" RUN_ID="$run_id" \
	timeout -k 10 "$CHECK_TIMEOUT" node tests/browser/console_test.mjs >"$tmp/test.out" 2>&1 || status=$?
cat "$tmp/test.out"

passed="$(grep -c '^PASS ' "$tmp/test.out" || true)"
failed="$(grep -c '^FAIL ' "$tmp/test.out" || true)"
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
	if [ "$status" -eq 124 ]; then
		echo "FAIL browser (timed out after ${CHECK_TIMEOUT}s)"
	else
		echo "FAIL browser (console_test.mjs exited with status $status)"
	fi
	failed=1
fi
if ! kill -0 "$pid" 2>/dev/null; then
	echo "FAIL wharf-running (wharf exited during the test)"
	failed=$((failed + 1))
fi

if grep -q '^screenshot: ' "$tmp/test.out"; then
	if [ "${KEEP_TMP:-}" = "1" ]; then
		echo "browser: the screenshot is kept (KEEP_TMP=1)" >&2
	else
		echo "browser: the screenshot is removed on exit; KEEP_TMP=1 keeps it" >&2
	fi
fi
if [ "$failed" -gt 0 ]; then
	echo "--- wharf: warnings and errors (last 20) ---"
	grep -E 'level=(WARN|ERROR)' "$tmp/wharf.log" | tail -n 20 || true
	echo "--- wharf: WebSocket and /console/ requests (last 20) ---"
	grep -E 'websocket|path=/(ws|console)' "$tmp/wharf.log" | tail -n 20 || true
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
