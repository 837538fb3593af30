#!/usr/bin/env bash
# Security compatibility checks: TLS and SASL with real clients that are not
# written in Go, against a freshly built wharf.
#
#   Kafka (kcat and confluent-kafka-python, both librdkafka):
#   kcat-sasl-plain-tls     SASL PLAIN over TLS: produce, consume, compare
#   kcat-scram-512-tls      SASL SCRAM-SHA-512 over TLS: the same
#   kcat-wrong-password     a wrong password fails, and the topic it named
#                           is not created
#   kcat-no-sasl            no SASL on the plain listener fails
#                           (--require-auth)
#   confluent-scram-256-plain, confluent-scram-256-tls
#                           confluent-kafka with SCRAM-SHA-256 over the plain
#                           and the TLS listener: produce, consume
#                           (secure_check.py confluent-scram)
#   kcat-reader-produce-refused
#                           user "reader" (read permission only) producing is
#                           refused with TOPIC_AUTHORIZATION_FAILED
#   kcat-reader-consume     "reader" consuming works
#
#   AMQP 0-9-1 (pika, secure_check.py):
#   pika-amqps              AMQPS with the CA and the server name checked:
#                           declare, publish with confirms, basic_get
#   pika-external           AMQPS with a client certificate (common name
#                           "app") and the EXTERNAL mechanism: the same
#
#   HTTP (curl):
#   curl-https-healthz      GET /healthz over HTTPS with the CA: 200
#   curl-https-basic        GET /api/v1/server with app's password: 200
#   curl-https-wrong-password
#                           the same with a wrong password: 401
#
# Builds wharf, writes development certificates with `wharf dev-cert` (client
# certificate for "app"), starts `wharf serve` with a fresh data directory,
# every plain and TLS listener on a free loopback port, --require-auth and
# --tls-client-auth optional, then creates the users "app" (all permissions
# on "/") and "reader" (read only), with random passwords, over REST as
# guest. Prints one line per check (PASS, FAIL or SKIP, then its name), the
# output of each failed check, and a final line "N passed, N failed"
# (", N skipped" follows when checks were skipped). Exits 1 if any check
# failed. Stops wharf with SIGTERM at the end.
#
# A client that is not installed is skipped, except when CI=true: then it is
# a failure. On Debian the clients are the packages kcat,
# python3-confluent-kafka, python3-pika and curl; the Python modules are
# looked for in /usr/bin/python3 before python3 on PATH (PYTHON=... names
# another interpreter).
#
# Environment: CHECK_TIMEOUT (seconds per check, default 60), WHARF_LOG_LEVEL
# for the server (default debug), KEEP_TMP=1 keeps the temporary directory
# (certificates, data and server log) and prints where it is.
set -euo pipefail

cd "$(dirname "$0")/../.."

if ! command -v go >/dev/null 2>&1; then
	export PATH="/usr/local/go/bin:$PATH"
fi

CHECK_TIMEOUT="${CHECK_TIMEOUT:-60}"
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
		echo "secure: kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT

die() {
	echo "secure: $*" >&2
	if [ -f "$tmp/wharf.log" ]; then
		echo "--- wharf log (last 50 lines) ---" >&2
		tail -n 50 "$tmp/wharf.log" >&2
	fi
	exit 1
}

# ---------------------------------------------------------------- server

echo "secure: building wharf"
go build -o "$tmp/wharf" ./cmd/wharf

certs="$tmp/certs"
"$tmp/wharf" dev-cert --dir "$certs" --hosts 127.0.0.1,localhost --client app \
	>"$tmp/dev-cert.out" 2>&1 || { cat "$tmp/dev-cert.out" >&2; die "wharf dev-cert failed"; }
for f in ca.crt server.crt server.key client.crt client.key; do
	[ -s "$certs/$f" ] || die "wharf dev-cert did not write $f"
done

"$tmp/wharf" serve \
	--data-dir "$tmp/data" \
	--auto-create-topics=true \
	--kafka-listen 127.0.0.1:0 \
	--kafka-tls-listen 127.0.0.1:0 \
	--amqp-listen 127.0.0.1:0 \
	--amqps-listen 127.0.0.1:0 \
	--http-listen 127.0.0.1:0 \
	--https-listen 127.0.0.1:0 \
	--tls-cert-file "$certs/server.crt" \
	--tls-key-file "$certs/server.key" \
	--tls-ca-file "$certs/ca.crt" \
	--tls-client-auth optional \
	--require-auth \
	--log-level "${WHARF_LOG_LEVEL:-debug}" \
	>"$tmp/wharf.log" 2>&1 &
pid=$!

# listening_addr LISTENER prints the address that wharf logged "listening"
# on for LISTENER, once it accepts connections.
listening_addr() {
	local addr
	addr="$(sed -n "/msg=listening .*listener=$1 /s/.* addr=\([^ ]*\).*/\1/p" "$tmp/wharf.log" | head -n 1)"
	if [ -n "$addr" ] && (exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}") 2>/dev/null; then
		printf '%s\n' "$addr"
	fi
}

# wait_listener LISTENER prints its address, or dies after 15s.
wait_listener() {
	local addr=""
	for _ in $(seq 150); do
		kill -0 "$pid" 2>/dev/null || die "wharf exited during startup"
		addr="$(listening_addr "$1")"
		if [ -n "$addr" ]; then
			printf '%s\n' "$addr"
			return 0
		fi
		sleep 0.1
	done
	die "the $1 listener did not accept connections within 15s"
}
kafka_addr="$(wait_listener kafka)"
kafka_tls_addr="$(wait_listener kafka-tls)"
amqp_addr="$(wait_listener amqp)"
amqps_addr="$(wait_listener amqps)"
http_addr="$(wait_listener http)"
https_addr="$(wait_listener https)"
echo "secure: wharf is serving kafka $kafka_addr, kafka-tls $kafka_tls_addr, amqp $amqp_addr, amqps $amqps_addr, http $http_addr, https $https_addr"

# ---------------------------------------------------------------- users

app_password="app-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
reader_password="reader-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"

# rest METHOD PATH BODY calls wharf's REST API as guest (loopback only) and
# dies unless the answer is 2xx.
rest() {
	local code
	code="$(curl -sS -o "$tmp/rest.out" -w '%{http_code}' -u guest:guest \
		-X "$1" -H 'Content-Type: application/json' --data "$3" \
		"http://$http_addr$2")" || die "curl $1 $2 failed"
	case "$code" in
	2??) ;;
	*) cat "$tmp/rest.out" >&2; die "$1 $2 answered $code" ;;
	esac
}
command -v curl >/dev/null 2>&1 || die "curl is needed to create the users: install curl"
rest PUT /api/v1/users/app "{\"password\": \"$app_password\", \"tags\": []}"
rest PUT /api/v1/permissions/%2F/app '{"configure": ".*", "write": ".*", "read": ".*"}'
rest PUT /api/v1/users/reader "{\"password\": \"$reader_password\", \"tags\": []}"
rest PUT /api/v1/permissions/%2F/reader '{"configure": "", "write": "", "read": ".*"}'
echo "secure: created users app and reader"

# ---------------------------------------------------------------- tools

kcat_bin=""
for c in kcat kafkacat; do
	if command -v "$c" >/dev/null 2>&1; then
		kcat_bin="$(command -v "$c")"
		break
	fi
done
missing_kcat=""
if [ -z "$kcat_bin" ]; then missing_kcat="kcat is not installed: install kcat"; fi

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
py_pika="$(find_python pika || true)"
missing_confluent=""
if [ -z "$py_confluent" ]; then missing_confluent="confluent_kafka is not importable: install python3-confluent-kafka"; fi
missing_pika=""
if [ -z "$py_pika" ]; then missing_pika="pika is not importable: install python3-pika"; fi

# ---------------------------------------------------------------- runner

passed=0
failed=0
skipped=0

# run_check NAME MISSING CMD... runs CMD with its output in a file. A
# non-empty MISSING says which tool is absent: the check is skipped, or fails
# under CI=true.
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
	if ! kill -0 "$pid" 2>/dev/null; then
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

# ---------------------------------------------------------------- kcat

# kcat_tls USER PASSWORD MECHANISM ARGS... runs kcat against the Kafka TLS
# listener with SASL.
kcat_tls() {
	local user="$1" password="$2" mechanism="$3"
	shift 3
	limit "$kcat_bin" -b "$kafka_tls_addr" \
		-X security.protocol=sasl_ssl -X "sasl.mechanisms=$mechanism" \
		-X "sasl.username=$user" -X "sasl.password=$password" \
		-X "ssl.ca.location=$certs/ca.crt" "$@"
}

# kcat_round_trip NAME MECHANISM produces keyed records to a new topic as
# app over TLS and reads them back from the beginning, compared.
kcat_round_trip() {
	local topic="secure-$1-$run_id" mechanism="$2"
	printf '%s\n' 'k1:v1' 'k2:hello over tls' 'k3:a:b:c' >"$tmp/$1-in.txt"
	kcat_tls app "$app_password" "$mechanism" -P -t "$topic" -p 0 -K: <"$tmp/$1-in.txt" ||
		{ echo "kcat -P ($mechanism over TLS) failed"; return 1; }
	sed 's/:/ /' "$tmp/$1-in.txt" >"$tmp/$1-want.txt"
	kcat_tls app "$app_password" "$mechanism" -C -t "$topic" -p 0 -o beginning -e -f '%k %s\n' \
		>"$tmp/$1-got.txt" 2>"$tmp/$1-C.err" ||
		{ cat "$tmp/$1-C.err"; echo "kcat -C ($mechanism over TLS) failed"; return 1; }
	diff -u "$tmp/$1-want.txt" "$tmp/$1-got.txt" ||
		{ echo "kcat -C output differs from what was produced (--- want, +++ got)"; return 1; }
	cat "$tmp/$1-got.txt"
}

check_kcat_plain_tls() { kcat_round_trip plain-tls PLAIN; }
check_kcat_scram512_tls() { kcat_round_trip scram512-tls SCRAM-SHA-512; }

# topic_exists TOPIC: whether app's metadata of all topics lists TOPIC (a
# Metadata request naming the topic would create it: --auto-create-topics).
topic_exists() {
	kcat_tls app "$app_password" PLAIN -L >"$tmp/exists-L.txt" 2>&1 ||
		{ cat "$tmp/exists-L.txt"; echo "kcat -L as app failed"; return 2; }
	grep -Eq "topic \"$1\" with [1-9][0-9]* partitions" "$tmp/exists-L.txt"
}

# A wrong password: kcat fails (or gets no metadata), and the topic it
# produced to does not exist afterwards.
check_kcat_wrong_password() {
	local topic="secure-wrong-password-$run_id" status=0
	printf 'k:v\n' | limit "$kcat_bin" -b "$kafka_tls_addr" \
		-X security.protocol=sasl_ssl -X sasl.mechanisms=PLAIN \
		-X sasl.username=app -X "sasl.password=wrong-$app_password" \
		-X "ssl.ca.location=$certs/ca.crt" -X message.timeout.ms=5000 \
		-P -t "$topic" -K: >"$tmp/wrong.out" 2>&1 || status=$?
	cat "$tmp/wrong.out"
	if [ "$status" -eq 0 ]; then
		echo "kcat -P with a wrong password exited 0"
		return 1
	fi
	echo "kcat -P with a wrong password exited $status"
	local e=0
	topic_exists "$topic" || e=$?
	if [ "$e" -eq 0 ]; then
		echo "topic $topic was created by a client with a wrong password"
		return 1
	fi
	[ "$e" -eq 1 ] || return 1
	echo "topic $topic was not created"
}

# No SASL on the plain listener with --require-auth: metadata fails.
check_kcat_no_sasl() {
	local status=0
	limit "$kcat_bin" -b "$kafka_addr" -L -m 5 >"$tmp/nosasl.out" 2>&1 || status=$?
	cat "$tmp/nosasl.out"
	if [ "$status" -eq 0 ] && grep -q 'broker' "$tmp/nosasl.out"; then
		echo "kcat -L without SASL got metadata from a --require-auth listener"
		return 1
	fi
	echo "kcat -L without SASL exited $status"
}

# reader may not produce: the delivery fails with TOPIC_AUTHORIZATION_FAILED.
# The topic exists (app produced to it), so only authorization can refuse.
reader_topic="secure-plain-tls-$run_id"
check_kcat_reader_produce() {
	local status=0
	printf 'k:from reader\n' | kcat_tls reader "$reader_password" PLAIN \
		-X message.timeout.ms=5000 -P -t "$reader_topic" -p 0 -K: >"$tmp/reader-P.out" 2>&1 || status=$?
	cat "$tmp/reader-P.out"
	if [ "$status" -eq 0 ]; then
		echo "kcat -P as reader exited 0; want a refusal"
		return 1
	fi
	grep -Eqi 'TOPIC_AUTHORIZATION_FAILED|Topic authorization failed' "$tmp/reader-P.out" ||
		{ echo "kcat -P as reader failed, but not with TOPIC_AUTHORIZATION_FAILED"; return 1; }
}

# reader may consume what app produced.
check_kcat_reader_consume() {
	kcat_tls reader "$reader_password" PLAIN -C -t "$reader_topic" -p 0 -o beginning -e -f '%k %s\n' \
		>"$tmp/reader-got.txt" 2>"$tmp/reader-C.err" ||
		{ cat "$tmp/reader-C.err"; echo "kcat -C as reader failed"; return 1; }
	diff -u "$tmp/plain-tls-want.txt" "$tmp/reader-got.txt" ||
		{ echo "kcat -C as reader read other records than app produced (--- want, +++ got)"; return 1; }
	cat "$tmp/reader-got.txt"
}

# ---------------------------------------------------------------- curl

# curl_code URL ARGS... prints the HTTP status of a GET over HTTPS with the CA.
curl_code() {
	local url="$1"
	shift
	limit curl -sS -o "$tmp/curl.out" -w '%{http_code}' --cacert "$certs/ca.crt" "$@" "$url"
}

# expect_code WANT URL ARGS...
expect_code() {
	local want="$1" code
	shift
	code="$(curl_code "$@")" || { echo "curl $1 failed"; return 1; }
	echo "GET $1: $code"
	head -c 2000 "$tmp/curl.out"
	echo
	[ "$code" = "$want" ] || { echo "want $want"; return 1; }
}

check_curl_healthz() { expect_code 200 "https://$https_addr/healthz"; }
check_curl_basic() { expect_code 200 "https://$https_addr/api/v1/server" -u "app:$app_password"; }
check_curl_wrong() { expect_code 401 "https://$https_addr/api/v1/server" -u "app:wrong-$app_password"; }

# ---------------------------------------------------------------- checks

run_check kcat-sasl-plain-tls "$missing_kcat" check_kcat_plain_tls
run_check kcat-scram-512-tls "$missing_kcat" check_kcat_scram512_tls
run_check kcat-wrong-password "$missing_kcat" check_kcat_wrong_password
run_check kcat-no-sasl "$missing_kcat" check_kcat_no_sasl
run_check confluent-scram-256-plain "$missing_confluent" \
	limit "$py_confluent" tests/compat/secure_check.py confluent-scram \
	"$kafka_addr" sasl_plaintext app "$app_password" "$certs/ca.crt" "$run_id"
run_check confluent-scram-256-tls "$missing_confluent" \
	limit "$py_confluent" tests/compat/secure_check.py confluent-scram \
	"$kafka_tls_addr" sasl_ssl app "$app_password" "$certs/ca.crt" "$run_id"
run_check kcat-reader-produce-refused "$missing_kcat" check_kcat_reader_produce
run_check kcat-reader-consume "$missing_kcat" check_kcat_reader_consume
run_check pika-amqps "$missing_pika" \
	limit "$py_pika" tests/compat/secure_check.py pika-tls \
	"${amqps_addr%:*}" "${amqps_addr##*:}" app "$app_password" "$certs/ca.crt" "$run_id"
run_check pika-external "$missing_pika" \
	limit "$py_pika" tests/compat/secure_check.py pika-external \
	"${amqps_addr%:*}" "${amqps_addr##*:}" "$certs/ca.crt" "$certs/client.crt" "$certs/client.key" "$run_id"
run_check curl-https-healthz "" check_curl_healthz
run_check curl-https-basic "" check_curl_basic
run_check curl-https-wrong-password "" check_curl_wrong

if [ "$failed" -gt 0 ] && [ -f "$tmp/wharf.log" ]; then
	# Why wharf refused Kafka logins (mechanism and reason), to tell a
	# wrong password in a check from a SASL exchange wharf gets wrong.
	echo "--- wharf: refused Kafka logins (count) ---"
	sed -n 's/.*msg="kafka login refused".* mechanism=\([^ ]*\) err=\("[^"]*"\|[^ ]*\).*/\1 \2/p' "$tmp/wharf.log" |
		sort | uniq -c | sort -rn | head -n 20 || true
	echo "--- wharf: warnings and errors (last 20) ---"
	grep -E 'level=(WARN|ERROR)' "$tmp/wharf.log" | tail -n 20 || true
fi

summary="$passed passed, $failed failed"
if [ "$skipped" -gt 0 ]; then summary="$summary, $skipped skipped"; fi
echo "$summary"
[ "$failed" -eq 0 ]
