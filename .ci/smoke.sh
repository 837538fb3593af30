#!/usr/bin/env bash
# Smoke test: build wharf, start it on free ports with a fresh data
# directory, wait for /healthz, stop it with SIGTERM and require a clean exit.
# Needs only bash, coreutils and Go.
set -euo pipefail

cd "$(dirname "$0")/.."

if ! command -v go >/dev/null 2>&1; then
	export PATH="/usr/local/go/bin:$PATH"
fi

tmp="$(mktemp -d)"
pid=""
watchdog=""
cleanup() {
	if [ -n "$watchdog" ]; then
		kill "$watchdog" 2>/dev/null || true
	fi
	if [ -n "$pid" ]; then
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
	echo "smoke: FAIL: $*" >&2
	if [ -f "$tmp/wharf.log" ]; then
		echo "--- wharf log ---" >&2
		cat "$tmp/wharf.log" >&2
	fi
	exit 1
}

# http_get HOST:PORT PATH prints the body of a 200 response and fails on
# anything else. It speaks HTTP/1.0 over bash's /dev/tcp, so no HTTP client
# need be installed.
http_get() {
	(
		exec 3<>"/dev/tcp/${1%:*}/${1##*:}"
		printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$2" "$1" >&3
		resp="$(timeout 5 cat <&3)"
		case "$resp" in
		"HTTP/1."?" 200 "*) printf '%s\n' "${resp#*$'\r\n\r\n'}" ;;
		*) exit 1 ;;
		esac
	) 2>/dev/null
}

bin="$tmp/wharf"
echo "smoke: building"
go build -o "$bin" ./cmd/wharf

echo "smoke: wharf version"
"$bin" version | tee "$tmp/version.txt"
grep -q '^wharf ' "$tmp/version.txt" || fail "version output lacks the version line"
grep -q '^go: go' "$tmp/version.txt" || fail "version output lacks the Go version"

# Port 0 asks the system for a free port; the bound address is logged.
echo "smoke: starting wharf serve"
"$bin" serve \
	--data-dir "$tmp/data" \
	--http-listen 127.0.0.1:0 \
	--kafka-listen 127.0.0.1:0 \
	--amqp-listen 127.0.0.1:0 \
	>"$tmp/wharf.log" 2>&1 &
pid=$!

addr=""
for _ in $(seq 100); do
	kill -0 "$pid" 2>/dev/null || fail "wharf exited during startup"
	addr="$(sed -n 's/.*listener=http addr=\([^ ]*\).*/\1/p' "$tmp/wharf.log" | head -n 1)"
	if [ -n "$addr" ] && http_get "$addr" /healthz >"$tmp/healthz.json"; then
		break
	fi
	addr=""
	sleep 0.1
done
[ -n "$addr" ] || fail "/healthz did not answer within 10s"
grep -q '"status":"ok"' "$tmp/healthz.json" || fail "unexpected /healthz body: $(cat "$tmp/healthz.json")"
echo "smoke: /healthz answered on $addr"

http_get "$addr" /readyz >/dev/null || fail "/readyz is not ready"
http_get "$addr" /metrics >"$tmp/metrics.txt" || fail "/metrics failed"
grep -q '^go_goroutines ' "$tmp/metrics.txt" || fail "/metrics lacks go_goroutines"

kafka="$(sed -n 's/.*listener=kafka addr=\([^ ]*\).*/\1/p' "$tmp/wharf.log" | head -n 1)"
[ -n "$kafka" ] || fail "no kafka listener address logged"
(exec 3<>"/dev/tcp/${kafka%:*}/${kafka##*:}") 2>/dev/null || fail "kafka listener on $kafka does not accept connections"
echo "smoke: kafka listener accepts connections on $kafka"

echo "smoke: sending SIGTERM"
kill -TERM "$pid"
(sleep 10 && touch "$tmp/timed-out" && kill -KILL "$pid") >/dev/null 2>&1 &
watchdog=$!
status=0
wait "$pid" || status=$?
pid=""
[ ! -e "$tmp/timed-out" ] || fail "wharf did not exit within 10s of SIGTERM"
[ "$status" -eq 0 ] || fail "wharf exited with status $status after SIGTERM"
grep -q 'broker closed' "$tmp/wharf.log" || fail "log does not show the broker closing"

echo "smoke: passed"
