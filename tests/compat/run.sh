#!/usr/bin/env bash
# Compatibility checks: real clients that are not written in Go against a
# freshly built wharf.
#
#   Kafka:
#   kcat                   (librdkafka's command-line client)
#   confluent_check.py     (confluent-kafka-python, librdkafka)
#   kafka_python_check.py  (kafka-python, pure Python)
#
#   AMQP 0-9-1:
#   pika_check.py          (pika, pure Python)
#   amqp_tools_check.sh    (amqp-tools: amqp-publish, amqp-consume and the
#                           other command-line clients of librabbitmq)
#   amqplib_check.js       (amqplib, the Node.js client, through its promise
#                           API)
#
#   Both: pika_stream_check.py and kcat on one stream queue, which is the
#   Kafka topic of its name (stream-kcat).
#
# Builds wharf, starts `wharf serve` with its Kafka and AMQP listeners on free
# loopback ports and a fresh data directory, runs every check with a time
# limit and prints one line per
# check (PASS, FAIL or SKIP, then its name), the output of each failed check,
# and a final line "N passed, N failed" (", N skipped" follows when checks
# were skipped). Exits 1 if any check failed.
#
# Then the checks across a broker restart: pika-restart-publish,
# amqp-tools-restart-publish and amqplib-restart-publish leave persistent
# and transient messages in durable queues (pika_check.py restart-publish,
# amqp_tools_check.sh ... restart-publish, amqplib_check.js ...
# restart-publish); wharf-restart stops wharf with SIGTERM, wants exit status
# 0 and starts it again on the same data directory and the same Kafka and
# AMQP addresses (the ones it logged the first time; a port taken meanwhile
# fails the check); pika-restart-verify, amqp-tools-restart-verify and
# amqplib-restart-verify then want exactly the persistent messages back, in
# order. They need a wharf that this script started, so they are skipped
# with COMPAT_AMQP_URL or COMPAT_BOOTSTRAP.
#
# A client that is not installed is skipped, except when CI=true: then it is
# a failure, so that CI runs every check. On Debian the clients are the
# packages kcat, python3-confluent-kafka, python3-kafka, python3-pika and
# amqp-tools; the Python modules are looked for in /usr/bin/python3 (which
# sees Debian's packages) before python3 on PATH. PYTHON=... names another
# interpreter. amqplib is not a Debian package: when the AMQP checks run,
# npm installs the version pinned in AMQPLIB_VERSION below into the
# temporary directory (nothing is written to the repository), and node runs
# amqplib_check.js with NODE_PATH pointing there. That needs node 18 or
# later and npm (the Debian packages nodejs and npm) and access to the npm
# registry; without them, or when the install fails, the amqplib checks are
# skipped (failed with CI=true).
#
# Environment: COMPAT_BOOTSTRAP=HOST:PORT runs the Kafka checks against a
# broker that is already running instead of building and starting wharf;
# COMPAT_AMQP_URL=amqp://USER:PASSWORD@HOST:PORT/ does the same for the AMQP
# checks (a RabbitMQ, say; a path of "/" is the virtual host "/"), and the
# wharf that is started for the Kafka checks then has no AMQP listener. With
# COMPAT_BOOTSTRAP alone, the AMQP checks are skipped. Queue, exchange and
# topic names carry a run id, so runs against one broker do not clash.
# CHECK_TIMEOUT (seconds per check, default 120),
# WHARF_LOG_LEVEL for the server (default debug), KEEP_TMP=1 keeps the
# temporary directory (data and server log, to which the restarted wharf
# appends) and prints where it is.
set -euo pipefail

cd "$(dirname "$0")/../.."

if ! command -v go >/dev/null 2>&1; then
	export PATH="/usr/local/go/bin:$PATH"
fi

CHECK_TIMEOUT="${CHECK_TIMEOUT:-120}"
GROUP_TIMEOUT=45 # one kcat -G run: joining a group and reading to the end
AMQPLIB_VERSION=2.3.1 # the amqplib that npm installs for amqplib_check.js
NPM_TIMEOUT=300       # seconds for that npm install
# Topic, group, queue and exchange names carry this, so a run against a
# broker that is already running (COMPAT_BOOTSTRAP, COMPAT_AMQP_URL) starts
# from empty topics and queues.
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
		echo "compat: kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT

die() {
	echo "compat: $*" >&2
	if [ -f "$tmp/wharf.log" ]; then
		echo "--- wharf log (last 50 lines) ---" >&2
		tail -n 50 "$tmp/wharf.log" >&2
	fi
	exit 1
}

# ---------------------------------------------------------------- server

# redact_url URL prints URL without its password.
redact_url() {
	printf '%s\n' "$1" | sed 's#^\([a-z]*://[^:/@]*:\)[^@/]*@#\1***@#'
}

# start_wharf KAFKA_LISTEN AMQP_LISTEN starts wharf in the background on the
# data directory $tmp/data, its output appended to $tmp/wharf.log (a restart
# adds to the same log); pid is its process id.
log_from=1 # the first line of the log written by the current wharf
start_wharf() {
	log_from=1
	if [ -f "$tmp/wharf.log" ]; then log_from=$(($(wc -l <"$tmp/wharf.log") + 1)); fi
	"$tmp/wharf" serve \
		--data-dir "$tmp/data" \
		--kafka-listen "$1" \
		--auto-create-topics=true \
		--amqp-listen "$2" \
		--http-listen "" \
		--log-level "${WHARF_LOG_LEVEL:-debug}" \
		>>"$tmp/wharf.log" 2>&1 &
	pid=$!
}

# wharf_log prints what the current wharf has logged.
wharf_log() {
	tail -n "+$log_from" "$tmp/wharf.log"
}

# listening_addr LISTENER prints the address that the current wharf logged
# "listening" on for LISTENER (kafka or amqp), once it accepts connections.
listening_addr() {
	local addr
	addr="$(wharf_log | sed -n "/msg=listening .*listener=$1 /s/.* addr=\([^ ]*\).*/\1/p" | head -n 1)"
	if [ -n "$addr" ] && (exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}") 2>/dev/null; then
		printf '%s\n' "$addr"
	fi
}

bootstrap=""
amqp_addr="" # the address of wharf's AMQP listener, once it serves one
# amqp_url is the broker for the AMQP checks; when it stays empty,
# amqp_skip or amqp_fail says why (the checks are skipped or fail).
amqp_url=""
amqp_skip=""
amqp_fail=""
if [ -n "${COMPAT_AMQP_URL:-}" ]; then
	# An already running broker, such as a real RabbitMQ to check the checks.
	amqp_url="$COMPAT_AMQP_URL"
	echo "compat: AMQP checks use the broker at $(redact_url "$amqp_url") (COMPAT_AMQP_URL)"
fi
if [ -n "${COMPAT_BOOTSTRAP:-}" ]; then
	# An already running broker, such as a real Kafka to check the checks.
	bootstrap="$COMPAT_BOOTSTRAP"
	echo "compat: using the broker at $bootstrap (COMPAT_BOOTSTRAP); wharf is not started"
	if [ -z "$amqp_url" ]; then
		amqp_skip="COMPAT_BOOTSTRAP is set without COMPAT_AMQP_URL: no AMQP broker"
	fi
else
	echo "compat: building wharf"
	go build -o "$tmp/wharf" ./cmd/wharf

	# Port 0 picks a free port; the bound address is logged. HTTP is not
	# needed here and stays off; so does AMQP when COMPAT_AMQP_URL names
	# another broker.
	amqp_listen="127.0.0.1:0"
	if [ -n "$amqp_url" ]; then amqp_listen=""; fi
	start_wharf 127.0.0.1:0 "$amqp_listen"

	bootstrap=""
	for _ in $(seq 150); do
		kill -0 "$pid" 2>/dev/null || die "wharf exited during startup"
		bootstrap="$(listening_addr kafka)"
		if [ -n "$bootstrap" ]; then break; fi
		sleep 0.1
	done
	[ -n "$bootstrap" ] || die "the Kafka listener did not accept connections within 15s"
	echo "compat: wharf is serving Kafka on $bootstrap"

	# The AMQP listener logs "listening" with listener=amqp and its address.
	if [ -n "$amqp_listen" ]; then
		amqp_fail="wharf did not report an AMQP listener accepting connections within 15s"
		for _ in $(seq 150); do
			kill -0 "$pid" 2>/dev/null || die "wharf exited during startup"
			amqp_addr="$(listening_addr amqp)"
			if [ -n "$amqp_addr" ]; then
				# guest/guest: the default user, allowed from loopback only.
				amqp_url="amqp://guest:guest@$amqp_addr/"
				amqp_fail=""
				echo "compat: wharf is serving AMQP on $amqp_addr"
				break
			fi
			sleep 0.1
		done
	fi
fi

# ---------------------------------------------------------------- tools

kcat_bin=""
for c in kcat kafkacat; do
	if command -v "$c" >/dev/null 2>&1; then
		kcat_bin="$(command -v "$c")"
		break
	fi
done

# find_python MODULE prints the first interpreter that imports MODULE.
find_python() {
	local candidates=()
	if [ -n "${PYTHON:-}" ]; then
		candidates=("$PYTHON")
	else
		candidates=(/usr/bin/python3 python3)
	fi
	local py
	for py in "${candidates[@]}"; do
		if command -v "$py" >/dev/null 2>&1 && "$py" -c "import $1" >/dev/null 2>&1; then
			command -v "$py"
			return 0
		fi
	done
	return 1
}
py_confluent="$(find_python confluent_kafka || true)"
py_kafka="$(find_python kafka || true)"
py_pika="$(find_python pika || true)"
amqp_tools_missing=""
for c in amqp-declare-queue amqp-publish amqp-consume amqp-get amqp-delete-queue; do
	command -v "$c" >/dev/null 2>&1 || amqp_tools_missing="$amqp_tools_missing $c"
done

# install_amqplib installs amqplib $AMQPLIB_VERSION with npm into
# $tmp/node/node_modules, for NODE_PATH. When it cannot, it prints why
# (missing_amqplib, for run_check) and returns 1.
install_amqplib() {
	if ! command -v node >/dev/null 2>&1; then
		echo "node is not installed: install nodejs"
		return 1
	fi
	local major
	major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || true)"
	if ! [ "$major" -ge 18 ] 2>/dev/null; then
		echo "node $(node --version 2>/dev/null) is too old: amqplib $AMQPLIB_VERSION needs node 18 or later"
		return 1
	fi
	if ! command -v npm >/dev/null 2>&1; then
		echo "npm is not installed: install npm"
		return 1
	fi
	echo "compat: installing amqplib@$AMQPLIB_VERSION with npm" >&2
	if ! NPM_CONFIG_UPDATE_NOTIFIER=false timeout -k 5 "$NPM_TIMEOUT" \
		npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
		--prefix "$tmp/node" "amqplib@$AMQPLIB_VERSION" >"$tmp/npm-install.log" 2>&1 ||
		[ ! -f "$tmp/node/node_modules/amqplib/package.json" ]; then
		{
			echo "compat: npm install amqplib@$AMQPLIB_VERSION failed; its last lines:"
			tail -n 10 "$tmp/npm-install.log" | sed 's/^/    | /'
		} >&2
		echo "npm install amqplib@$AMQPLIB_VERSION failed"
		return 1
	fi
}
# Only when the AMQP checks are to run.
missing_amqplib=""
if [ -z "$amqp_skip" ]; then
	missing_amqplib="$(install_amqplib)" || true
fi

# ---------------------------------------------------------------- runner

passed=0
failed=0
skipped=0
needs_wharf=true # whether run_check fails a check when wharf has exited

# run_check NAME MISSING CMD... runs CMD (a function or a program) with its
# output in a file. A non-empty MISSING says which tool is absent: the check
# is skipped, or fails under CI=true.
run_check() {
	local name="$1" missing="$2"
	shift 2
	if [ -n "$missing" ]; then
		if $in_ci; then
			echo "FAIL $name ($missing; CI=true requires it)"
			failed=$((failed + 1))
		else
			echo "SKIP $name ($missing)"
			skipped=$((skipped + 1))
		fi
		return 0
	fi
	if $needs_wharf && [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
		echo "FAIL $name (wharf is no longer running)"
		failed=$((failed + 1))
		return 0
	fi
	local out="$tmp/check-$name.out" status=0
	"$@" >"$out" 2>&1 || status=$?
	if [ "$status" -eq 0 ]; then
		echo "PASS $name"
		passed=$((passed + 1))
	else
		if [ "$status" -eq 124 ]; then
			echo "FAIL $name (timed out after ${CHECK_TIMEOUT}s)"
		else
			echo "FAIL $name"
		fi
		failed=$((failed + 1))
		tail -n 40 "$out" | sed 's/^/    | /'
	fi
}

# limit runs a command under the per-check time limit.
limit() {
	timeout -k 5 "$CHECK_TIMEOUT" "$@"
}

# run_amqp_check NAME MISSING CMD... is run_check for a check that needs an
# AMQP broker. With its client installed but no broker, it is skipped
# (amqp_skip) or fails (amqp_fail); with COMPAT_AMQP_URL it does not need
# wharf to be running.
run_amqp_check() {
	local name="$1" missing="$2"
	if [ -z "$missing" ] && [ -n "$amqp_fail" ]; then
		echo "FAIL $name ($amqp_fail)"
		failed=$((failed + 1))
		return 0
	fi
	if [ -z "$missing" ] && [ -n "$amqp_skip" ]; then
		echo "SKIP $name ($amqp_skip)"
		skipped=$((skipped + 1))
		return 0
	fi
	if [ -n "${COMPAT_AMQP_URL:-}" ]; then needs_wharf=false; fi
	run_check "$@"
	needs_wharf=true
}

# ---------------------------------------------------------------- kcat

# kcat -L lists the broker at its advertised address and a topic that a
# produce created.
check_kcat_metadata() {
	local topic="compat-kcat-metadata-$run_id"
	printf 'k:created\n' | limit "$kcat_bin" -b "$bootstrap" -P -t "$topic" -K: ||
		{ echo "kcat -P to $topic failed"; return 1; }
	limit "$kcat_bin" -b "$bootstrap" -L >"$tmp/kcat-L.txt" ||
		{ echo "kcat -L failed"; return 1; }
	cat "$tmp/kcat-L.txt"
	grep -Eq "^ *broker [0-9]+ at ${bootstrap}( |\$)" "$tmp/kcat-L.txt" ||
		{ echo "kcat -L does not list the broker at $bootstrap"; return 1; }
	grep -Eq "topic \"$topic\" with [0-9]+ partitions" "$tmp/kcat-L.txt" ||
		{ echo "kcat -L does not list topic $topic"; return 1; }
}

# Records with keys (split at the first ':') and two headers, produced to
# partition 0 and read back from the beginning in order, with key, value and
# headers.
check_kcat_produce_consume() {
	local topic="compat-kcat-records-$run_id"
	printf '%s\n' 'k1:v1' 'k2:hello world' 'k3:a:b:c' $'k4:caf\xc3\xa9' 'k5:' >"$tmp/kcat-in.txt"
	limit "$kcat_bin" -b "$bootstrap" -P -t "$topic" -p 0 -K: -H a=b -H trace=compat-1 <"$tmp/kcat-in.txt" ||
		{ echo "kcat -P failed"; return 1; }
	sed 's/^\([^:]*\):\(.*\)$/\1 \2 a=b,trace=compat-1/' "$tmp/kcat-in.txt" >"$tmp/kcat-want.txt"
	limit "$kcat_bin" -b "$bootstrap" -C -t "$topic" -p 0 -o beginning -e -f '%k %s %h\n' \
		>"$tmp/kcat-got.txt" 2>"$tmp/kcat-C.err" ||
		{ cat "$tmp/kcat-C.err"; echo "kcat -C failed"; return 1; }
	diff -u "$tmp/kcat-want.txt" "$tmp/kcat-got.txt" ||
		{ echo "kcat -C output differs from what was produced (--- want, +++ got)"; return 1; }
	cat "$tmp/kcat-got.txt"
}

# A balanced consumer (-G) reads every record; a second one in the same
# group, after the first committed on exit, reads none. No -o here: in -G
# mode kcat applies -o to every assignment, overriding committed offsets.
check_kcat_group() {
	local topic="compat-kcat-group-$run_id" group="compat-kcat-group-$run_id"
	seq 1 20 | sed 's/.*/key&:value &/' >"$tmp/kcat-group-in.txt"
	limit "$kcat_bin" -b "$bootstrap" -P -t "$topic" -K: <"$tmp/kcat-group-in.txt" ||
		{ echo "kcat -P failed"; return 1; }
	sed 's/:/ /' "$tmp/kcat-group-in.txt" | sort >"$tmp/kcat-group-want.txt"
	local status=0
	timeout -k 5 "$GROUP_TIMEOUT" "$kcat_bin" -b "$bootstrap" -G "$group" \
		-X auto.offset.reset=earliest -e -f '%k %s\n' -d cgrp,protocol "$topic" \
		>"$tmp/kcat-group-got.txt" 2>"$tmp/kcat-group.err" || status=$?
	if [ "$status" -ne 0 ]; then
		if [ "$status" -eq 124 ]; then
			echo "kcat -G did not finish within ${GROUP_TIMEOUT}s; last distinct librdkafka debug lines:"
		else
			echo "kcat -G exited with status $status; last distinct librdkafka debug lines:"
		fi
		# Up to the shutdown that the time limit started.
		sed '/received op TERMINATE/,$d' "$tmp/kcat-group.err" |
			grep -E 'CGRP|JOIN|SYNC|HEARTBEAT|COORD|FindCoordinator|Unsupported|ERROR|FAIL' |
			sed 's/^%[0-9]|[0-9.]*|//' | awk '!seen[$0]++' | tail -n 10
		return 1
	fi
	sort "$tmp/kcat-group-got.txt" | diff -u "$tmp/kcat-group-want.txt" - ||
		{ echo "kcat -G read other records than were produced (--- want, +++ got)"; return 1; }
	echo "first consumer read $(wc -l <"$tmp/kcat-group-got.txt") records"
	timeout -k 5 "$GROUP_TIMEOUT" "$kcat_bin" -b "$bootstrap" -G "$group" \
		-X auto.offset.reset=earliest -e -f '%k %s\n' "$topic" \
		>"$tmp/kcat-group-again.txt" 2>"$tmp/kcat-group-again.err" ||
		{ tail -n 5 "$tmp/kcat-group-again.err"; echo "second kcat -G in the same group failed"; return 1; }
	if [ -s "$tmp/kcat-group-again.txt" ]; then
		echo "second kcat -G in group $group read $(wc -l <"$tmp/kcat-group-again.txt") records again; want none (offsets committed)"
		return 1
	fi
	echo "second consumer in the same group read nothing new"
}

# ---------------------------------------------------------------- stream

# A stream queue is the Kafka topic of its name: pika publishes 3 messages
# to stream queue compat-stream-RUN_ID (pika_stream_check.py publish); kcat
# reads them from the topic at offsets 0-2 with the routing key as key and
# the header h; kcat produces 3 more records with keys; pika reads all 6
# from the stream with x-stream-offset equal to the Kafka offsets and the
# key as routing key (pika_stream_check.py consume).
check_stream_kcat() {
	local stream="compat-stream-$run_id"
	limit "$py_pika" tests/compat/pika_stream_check.py "$amqp_url" "$stream" publish ||
		{ echo "publishing to stream queue $stream failed"; return 1; }
	printf '0 %s s0 h=v0\n1 %s s1 h=v1\n2 %s s2 h=v2\n' "$stream" "$stream" "$stream" >"$tmp/stream-want.txt"
	limit "$kcat_bin" -b "$bootstrap" -C -t "$stream" -p 0 -o beginning -e -f '%o %k %s %h\n' \
		>"$tmp/stream-got.txt" 2>"$tmp/stream-C.err" ||
		{ cat "$tmp/stream-C.err"; echo "kcat -C of topic $stream failed"; return 1; }
	# The x-amqp-properties header (binary) is not compared.
	sed 's/,x-amqp-properties=.*$//' "$tmp/stream-got.txt" | diff -u "$tmp/stream-want.txt" - ||
		{ echo "kcat read other records than pika published (--- want, +++ got)"; return 1; }
	printf '%s\n' 'k3:s3' 'k4:s4' 'k5:s5' | limit "$kcat_bin" -b "$bootstrap" -P -t "$stream" -p 0 -K: ||
		{ echo "kcat -P to $stream failed"; return 1; }
	printf '0 %s s0\n1 %s s1\n2 %s s2\n3 k3 s3\n4 k4 s4\n5 k5 s5\n' "$stream" "$stream" "$stream" >"$tmp/stream-want2.txt"
	limit "$py_pika" tests/compat/pika_stream_check.py "$amqp_url" "$stream" consume >"$tmp/stream-got2.txt" ||
		{ cat "$tmp/stream-got2.txt"; echo "consuming stream queue $stream failed"; return 1; }
	diff -u "$tmp/stream-want2.txt" "$tmp/stream-got2.txt" ||
		{ echo "pika read other messages than the log holds (--- want, +++ got)"; return 1; }
	cat "$tmp/stream-got2.txt"
}

# ---------------------------------------------------------------- run

missing_kcat=""
[ -n "$kcat_bin" ] || missing_kcat="kcat is not installed"
missing_confluent=""
[ -n "$py_confluent" ] || missing_confluent="no python3 imports confluent_kafka: install python3-confluent-kafka"
missing_kafka=""
[ -n "$py_kafka" ] || missing_kafka="no python3 imports kafka: install python3-kafka"
missing_pika=""
[ -n "$py_pika" ] || missing_pika="no python3 imports pika: install python3-pika"
missing_amqp_tools=""
[ -z "$amqp_tools_missing" ] || missing_amqp_tools="not installed:$amqp_tools_missing: install amqp-tools"

run_check kcat-metadata "$missing_kcat" check_kcat_metadata
run_check kcat-produce-consume "$missing_kcat" check_kcat_produce_consume
run_check kcat-group "$missing_kcat" check_kcat_group

for c in admin produce group txn; do
	run_check "confluent-kafka-$c" "$missing_confluent" \
		limit "$py_confluent" tests/compat/confluent_check.py --bootstrap "$bootstrap" "$c"
done
for c in admin produce group; do
	run_check "kafka-python-$c" "$missing_kafka" \
		limit "$py_kafka" tests/compat/kafka_python_check.py --bootstrap "$bootstrap" "$c"
done

for c in confirm topic headers mandatory requeue channel-error direct-reply-to dead-letter priority ttl-dead-letter delivery-limit; do
	run_amqp_check "pika-$c" "$missing_pika" \
		limit "$py_pika" tests/compat/pika_check.py "$amqp_url" "$run_id" "$c"
done
run_amqp_check amqp-tools "$missing_amqp_tools" \
	limit bash tests/compat/amqp_tools_check.sh "$amqp_url" "$run_id"
# The stream check needs wharf's Kafka and AMQP listeners on one log.
missing_stream="$missing_pika"
[ -n "$missing_stream" ] || missing_stream="$missing_kcat"
if [ -n "${COMPAT_AMQP_URL:-}" ] || [ -n "${COMPAT_BOOTSTRAP:-}" ]; then
	echo "SKIP stream-kcat (needs the wharf this script starts, for both protocols)"
	skipped=$((skipped + 1))
else
	run_amqp_check stream-kcat "$missing_stream" check_stream_kcat
fi
for c in confirm topic headers cc-bcc mandatory requeue channel-error; do
	run_amqp_check "amqplib-$c" "$missing_amqplib" \
		limit env NODE_PATH="$tmp/node/node_modules" node tests/compat/amqplib_check.js "$amqp_url" "$run_id" "$c"
done

# ---------------------------------------------------------------- restart

# check_wharf_restart stops wharf with SIGTERM and wants it to exit with
# status 0, then starts it again on the same data directory and the same
# Kafka and AMQP addresses (the ones logged by the first start, whose
# configured port was 0), and waits for both listeners to accept connections.
# wharf is started again even when the old one exited badly, so that the
# checks after the restart still run. When the new one does not serve AMQP,
# amqp_fail makes the AMQP checks that follow fail.
check_wharf_restart() {
	local status=0 ok=true waited=0
	echo "sending SIGTERM to wharf (pid $pid)"
	kill -TERM "$pid"
	while kill -0 "$pid" 2>/dev/null; do
		if [ "$waited" -ge 300 ]; then
			echo "wharf did not exit within 30s of SIGTERM; killing it"
			kill -KILL "$pid" 2>/dev/null || true
			ok=false
			break
		fi
		sleep 0.1
		waited=$((waited + 1))
	done
	wait "$pid" || status=$?
	pid=""
	if [ "$status" -ne 0 ]; then
		echo "wharf exited with status $status after SIGTERM, want 0; its last lines:"
		wharf_log | tail -n 20
		ok=false
	else
		echo "wharf exited with status 0 after SIGTERM"
	fi

	# The same AMQP address as before; or, when the first wharf served none,
	# the same setting as then.
	local amqp_listen_again="${amqp_addr:-$amqp_listen}"
	echo "starting wharf again on $tmp/data with Kafka on $bootstrap and AMQP on ${amqp_listen_again:-(none)}"
	if [ -n "$amqp_addr" ]; then
		amqp_fail="wharf did not serve AMQP again after the restart (see wharf-restart)"
	fi
	start_wharf "$bootstrap" "$amqp_listen_again"
	local listener want addr
	for listener in kafka amqp; do
		want="$bootstrap"
		if [ "$listener" = amqp ]; then want="$amqp_addr"; fi
		[ -n "$want" ] || continue
		addr=""
		for _ in $(seq 150); do
			if ! kill -0 "$pid" 2>/dev/null; then
				status=0
				wait "$pid" || status=$?
				pid=""
				if wharf_log | grep -q 'address already in use'; then
					echo "the restarted wharf could not listen on the address it used before" \
						"(the port was taken by another process meanwhile); it exited with status $status:"
					wharf_log | grep 'address already in use'
				else
					echo "the restarted wharf exited with status $status during startup; its last lines:"
					wharf_log | tail -n 20
				fi
				return 1
			fi
			addr="$(listening_addr "$listener")"
			if [ -n "$addr" ]; then break; fi
			sleep 0.1
		done
		if [ -z "$addr" ]; then
			echo "the restarted wharf's $listener listener did not accept connections on $want within 15s"
			return 1
		fi
		if [ "$addr" != "$want" ]; then
			echo "the restarted wharf serves $listener on $addr, want $want as before"
			return 1
		fi
		echo "wharf serves $listener on $addr again"
	done
	amqp_fail=""
	$ok
}

# after_pass STATUS NAME CMD... runs CMD when STATUS is true, that is when
# check NAME (which published what CMD verifies) passed.
after_pass() {
	if ! $1; then
		echo "$2 did not pass: nothing to verify"
		return 1
	fi
	shift 2
	"$@"
}

# The checks across a restart need a wharf that this script started and can
# restart, also for AMQP.
restart_checks="pika-restart-publish amqp-tools-restart-publish amqplib-restart-publish wharf-restart"
restart_checks="$restart_checks pika-restart-verify amqp-tools-restart-verify amqplib-restart-verify"
restart_skip=""
if [ -n "${COMPAT_AMQP_URL:-}" ]; then
	restart_skip="the AMQP broker is the one at COMPAT_AMQP_URL, which this script cannot restart"
elif [ -n "${COMPAT_BOOTSTRAP:-}" ]; then
	restart_skip="wharf is not started with COMPAT_BOOTSTRAP"
fi
if [ -n "$restart_skip" ]; then
	for c in $restart_checks; do
		echo "SKIP $c ($restart_skip)"
		skipped=$((skipped + 1))
	done
else
	before=$passed
	run_amqp_check pika-restart-publish "$missing_pika" \
		limit "$py_pika" tests/compat/pika_check.py "$amqp_url" "$run_id" restart-publish
	pika_published=false
	if [ "$passed" -gt "$before" ]; then pika_published=true; fi
	before=$passed
	run_amqp_check amqp-tools-restart-publish "$missing_amqp_tools" \
		limit bash tests/compat/amqp_tools_check.sh "$amqp_url" "$run_id" restart-publish
	tools_published=false
	if [ "$passed" -gt "$before" ]; then tools_published=true; fi
	before=$passed
	run_amqp_check amqplib-restart-publish "$missing_amqplib" \
		limit env NODE_PATH="$tmp/node/node_modules" node tests/compat/amqplib_check.js "$amqp_url" "$run_id" restart-publish
	amqplib_published=false
	if [ "$passed" -gt "$before" ]; then amqplib_published=true; fi

	run_check wharf-restart "" check_wharf_restart

	run_amqp_check pika-restart-verify "$missing_pika" \
		after_pass "$pika_published" pika-restart-publish \
		limit "$py_pika" tests/compat/pika_check.py "$amqp_url" "$run_id" restart-verify
	run_amqp_check amqp-tools-restart-verify "$missing_amqp_tools" \
		after_pass "$tools_published" amqp-tools-restart-publish \
		limit bash tests/compat/amqp_tools_check.sh "$amqp_url" "$run_id" restart-verify
	run_amqp_check amqplib-restart-verify "$missing_amqplib" \
		after_pass "$amqplib_published" amqplib-restart-publish \
		limit env NODE_PATH="$tmp/node/node_modules" node tests/compat/amqplib_check.js "$amqp_url" "$run_id" restart-verify
fi

if [ "$failed" -gt 0 ] && [ -f "$tmp/wharf.log" ]; then
	# Why the server closed connections (unsupported keys, versions) and
	# what it warned about, to tell a client problem from a missing feature.
	echo "--- wharf: reasons for closed connections (count) ---"
	sed -n 's/.*msg="connection closed".* reason=\("[^"]*"\|[^ ]*\).*/\1/p' "$tmp/wharf.log" |
		grep -v -E '^"?(EOF|.*use of closed network connection.*|.*connection reset by peer.*)"?$' |
		sort | uniq -c | sort -rn | head -n 20 || true
	echo "--- wharf: warnings and errors (last 20) ---"
	grep -E 'level=(WARN|ERROR)' "$tmp/wharf.log" | tail -n 20 || true
fi

summary="$passed passed, $failed failed"
if [ "$skipped" -gt 0 ]; then summary="$summary, $skipped skipped"; fi
echo "$summary"
[ "$failed" -eq 0 ]
