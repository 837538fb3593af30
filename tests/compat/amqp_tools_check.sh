#!/usr/bin/env bash
# Compatibility check with amqp-tools, the command-line clients built on
# librabbitmq (rabbitmq-c).
#
# Usage: amqp_tools_check.sh URL [RUN_ID [PHASE]]
#
#   URL     an AMQP URL such as amqp://guest:guest@127.0.0.1:5672/
#   RUN_ID  carried by the queue name, so that reruns against a broker that
#           keeps running start from a new queue (default: seconds since the
#           epoch and the process id)
#   PHASE   restart-publish or restart-verify: one half of the check across a
#           broker restart described at the end, instead of the check below
#
# amqp-declare-queue declares a durable queue; amqp-publish -p sends
# persistent messages to it through the default exchange, one connection per
# message (an empty body, bytes that are not text, a body larger than the
# usual frame_max of 128 KiB, ...) and then three lines from one connection
# with -l (each line, newline included, is one message). amqp-consume -c N
# reads them back; the bodies must equal what was published, byte for byte
# and in order. Then amqp-get finds the queue empty and amqp-delete-queue
# reports 0 messages.
#
# restart-publish declares the durable queue compat-amqp-tools-restart-RUN_ID
# and publishes to it 5 persistent messages (amqp-publish -p) and, between
# them, 2 that are not persistent (no delivery mode); it leaves the queue in
# place unless it fails. restart-verify, once the broker has restarted, reads
# the queue with amqp-consume -c 5: the 5 persistent bodies, in order, and no
# other. Then amqp-get finds the queue empty, and amqp-delete-queue deletes
# it and reports 0 messages.
#
# Exits 0 on success; on failure prints "FAIL: <reason>" and exits 1.
set -euo pipefail

usage() {
	echo "usage: $0 URL [RUN_ID [restart-publish|restart-verify]]" >&2
	exit 2
}
if [ $# -lt 1 ] || [ $# -gt 3 ]; then usage; fi
url="$1"
run_id="${2:-$(date +%s)-$$}"
phase="${3:-}"
case "$phase" in
"" | restart-publish | restart-verify) ;;
*) usage ;;
esac
STEP_TIMEOUT="${STEP_TIMEOUT:-30}" # seconds for any one amqp-* command

# librabbitmq follows the AMQP URI spec, where amqp://host/ names the empty
# virtual host "" (pika reads the same URL as "/"). So that both clients use
# the default virtual host "/", a URL whose path is a bare "/" gets "%2f".
case "$url" in
amqp://*/ | amqps://*/)
	rest="${url#*://}"
	rest="${rest%/}"
	if [[ "$rest" != */* ]]; then url="${url}%2f"; fi
	;;
esac

queue="compat-amqp-tools-$run_id"
if [ -n "$phase" ]; then queue="compat-amqp-tools-restart-$run_id"; fi
tmp="$(mktemp -d)"
declared=false
cleanup() {
	if $declared; then
		timeout -k 5 "$STEP_TIMEOUT" amqp-delete-queue -u "$url" -q "$queue" >/dev/null 2>&1 || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*"
	exit 1
}

# step DESCRIPTION CMD... runs CMD under the time limit, with its standard
# output in $tmp/out and its standard error shown.
step() {
	local what="$1" status=0
	shift
	timeout -k 5 "$STEP_TIMEOUT" "$@" >"$tmp/out" || status=$?
	if [ "$status" -eq 124 ]; then
		fail "$what: no answer within ${STEP_TIMEOUT}s"
	elif [ "$status" -ne 0 ]; then
		fail "$what: exit status $status"
	fi
}

# expect_empty WHAT fails unless amqp-get finds the queue empty: it exits 2
# then, 0 when it got a message. WHAT says what was consumed before.
expect_empty() {
	local status=0
	timeout -k 5 "$STEP_TIMEOUT" amqp-get -u "$url" -q "$queue" >"$tmp/extra" 2>&1 || status=$?
	case "$status" in
	2) echo "amqp-get: the queue is empty" ;;
	0) fail "amqp-get found one more message after $1: '$(head -c 60 "$tmp/extra")'" ;;
	124) fail "amqp-get: no answer within ${STEP_TIMEOUT}s" ;;
	*) fail "amqp-get exited with status $status: $(cat "$tmp/extra")" ;;
	esac
}

# delete_queue deletes the queue with amqp-delete-queue, which prints the
# message count of queue.delete-ok; it must be 0.
delete_queue() {
	step "amqp-delete-queue" amqp-delete-queue -u "$url" -q "$queue"
	declared=false
	local out
	out="$(cat "$tmp/out")"
	[ "$out" = "0" ] || fail "amqp-delete-queue reported '$out' messages deleted, want 0"
	echo "amqp-delete-queue: deleted with 0 messages"
}

# consume N DIR has amqp-consume -c N read N messages from the queue and ack
# them; each body goes to the next numbered file in DIR.
#
# amqp-consume runs the command once per message, one after the other, with
# the body on standard input, and acks the message when the command exits 0.
# "--" ends amqp-consume's options (else it would read the -c of "sh -c" as
# its own).
consume() {
	local n="$1" dir="$2" status=0 got
	# shellcheck disable=SC2016 # $0 and $(...) belong to the inner shell
	local save_body='i=$(($(ls "$0" | wc -l) + 1)); cat >"$0/$(printf %02d "$i")"'
	timeout -k 5 "$STEP_TIMEOUT" amqp-consume -u "$url" -q "$queue" -c "$n" -- \
		sh -c "$save_body" "$dir" || status=$?
	got="$(find "$dir" -type f | wc -l)"
	if [ "$status" -eq 124 ]; then
		fail "amqp-consume -c $n received $got of $n messages within ${STEP_TIMEOUT}s"
	elif [ "$status" -ne 0 ]; then
		fail "amqp-consume -c $n exited with status $status after $got messages"
	fi
	[ "$got" -eq "$n" ] || fail "amqp-consume -c $n ran its command $got times"
}

# The restart phases. Their bodies: persistent ones are "persistent N",
# the others "transient N".
restart_persistent=5

restart_publish() {
	echo "amqp-tools restart-publish: queue $queue"
	declared=true # deleted on exit, unless this phase passes
	step "amqp-declare-queue -d" amqp-declare-queue -u "$url" -q "$queue" -d
	local out
	out="$(cat "$tmp/out")"
	[ "$out" = "$queue" ] || fail "amqp-declare-queue printed '$out', want the queue name $queue"
	echo "declared durable queue $queue"
	local i t=0
	for i in $(seq "$restart_persistent"); do
		step "amqp-publish -p of persistent $i" \
			amqp-publish -u "$url" -r "$queue" -p -b "persistent $i"
		echo "published 'persistent $i' with -p"
		if [ "$i" -eq 2 ] || [ "$i" -eq 4 ]; then
			t=$((t + 1))
			step "amqp-publish of transient $t" \
				amqp-publish -u "$url" -r "$queue" -b "transient $t"
			echo "published 'transient $t' without -p"
		fi
	done
	declared=false # left for restart-verify
	echo "the queue is left for restart-verify"
	echo "OK"
}

restart_verify() {
	echo "amqp-tools restart-verify: queue $queue"
	local n=$restart_persistent i
	mkdir "$tmp/got"
	# amqp-consume -q does not declare the queue: a queue that did not
	# survive the restart makes it fail (404 from basic.consume).
	declared=true
	consume "$n" "$tmp/got"
	for i in $(seq "$n"); do
		local f
		f="$tmp/got/$(printf '%02d' "$i")"
		printf 'persistent %d' "$i" >"$tmp/want"
		if ! cmp -s "$tmp/want" "$f"; then
			fail "message $i after the restart is '$(head -c 60 "$f")'" \
				"($(wc -c <"$f") bytes), want 'persistent $i' ($(wc -c <"$tmp/want") bytes)" \
				"(a message that was not persistent survived, or one was lost, reordered or altered)"
		fi
	done
	echo "amqp-consume -c $n read 'persistent 1' to 'persistent $n' in order"
	expect_empty "the $n persistent ones (a transient message survived the restart?)"
	delete_queue
	echo "OK"
}

case "$phase" in
restart-publish)
	restart_publish
	exit 0
	;;
restart-verify)
	restart_verify
	exit 0
	;;
esac

echo "amqp-tools: queue $queue"

# ---------------------------------------------------------------- declare

declared=true # from here on, delete the queue on exit
step "amqp-declare-queue -d" amqp-declare-queue -u "$url" -q "$queue" -d
out="$(cat "$tmp/out")"
[ "$out" = "$queue" ] || fail "amqp-declare-queue printed '$out', want the queue name $queue"
echo "declared durable queue $queue"

# ---------------------------------------------------------------- publish

# The expected bodies, one file each, numbered in publish order.
mkdir "$tmp/want" "$tmp/got"
printf 'hello' >"$tmp/want/01"
printf 'hello world, with spaces  and a tab\t' >"$tmp/want/02"
printf 'line one\nline two\n' >"$tmp/want/03"
printf 'caf\xc3\xa9 \xe2\x98\x95' >"$tmp/want/04"
: >"$tmp/want/05" # empty body
printf 'nul\000 bytes \377\376\001 end' >"$tmp/want/06"
# 300000 bytes: more than one body frame at frame_max 131072.
head -c 300000 /dev/zero | tr '\0' 'x' >"$tmp/want/07"
printf 'last one-per-connection message' >"$tmp/want/08"
single=8

for f in "$tmp"/want/*; do
	body="$(basename "$f")"
	step "amqp-publish -p of body $body" amqp-publish -u "$url" -r "$queue" -p <"$f"
done
echo "published $single messages, one connection each"

# -l: one message per line of standard input, newline included.
printf 'line-mode 1\nline-mode 2\nline-mode 3\n' >"$tmp/lines"
step "amqp-publish -p -l" amqp-publish -u "$url" -r "$queue" -p -l <"$tmp/lines"
i=$single
while IFS= read -r line; do
	i=$((i + 1))
	printf '%s\n' "$line" >"$tmp/want/$(printf '%02d' "$i")"
done <"$tmp/lines"
n=$i
echo "published 3 more with -l from one connection: $n in all"

# ---------------------------------------------------------------- consume

consume "$n" "$tmp/got"

for f in "$tmp"/want/*; do
	g="$tmp/got/$(basename "$f")"
	if ! cmp -s "$f" "$g"; then
		fail "message $(basename "$f") differs: want $(wc -c <"$f") bytes starting" \
			"'$(head -c 40 "$f" | od -An -c | tr -s ' ' | head -n 2 | tr -d '\n')'," \
			"got $(wc -c <"$g") bytes starting" \
			"'$(head -c 40 "$g" | od -An -c | tr -s ' ' | head -n 2 | tr -d '\n')'" \
			"(lost, reordered or altered)"
	fi
done
echo "amqp-consume -c $n read every body back, byte for byte, in order"

# ---------------------------------------------------------------- empty

expect_empty "all were consumed and acked"
delete_queue
echo "OK"
