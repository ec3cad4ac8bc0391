# Shared helpers for the integration tests: a real signgated on a free
# loopback port over the development environment (var/dev), curl with the
# principals' client certificates, and a tiny check/report vocabulary.
# Every test script sources this file, calls start_daemon, runs checks, and
# ends with `finish`, which prints "N passed, M failed".

set -u
SG_ROOT=${SG_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$SG_ROOT/$BUILD" ;; esac
DEV="$SG_ROOT/var/dev"
SIGNGATED="$BUILD/signgated"
SIGNGATE="$BUILD/signgate"
# shellcheck disable=SC1091
. "$DEV/env.sh"

T_PASS=0
T_FAIL=0
T_DIR=$(mktemp -d /tmp/signgate-test.XXXXXX)
# Run by root, the daemon's two users (the defaults of users.front and
# users.signer) must reach files here: traversable, not listable, and
# what the tests write for the daemon readable whatever the caller's umask.
chmod 0711 "$T_DIR"
umask 022
# pause SECONDS: the waits below poll every 10 ms without starting a
# process: reading a FIFO that nobody writes times out (opened for reading
# and writing, it never reports an end of file; opened for each call, no
# daemon inherits it).
mkfifo "$T_DIR/.pause"
pause() { read -r -t "$1" _ <>"$T_DIR/.pause"; :; }
FRONT_USER=signgate
SIGNER_USER=signgate-hsm
DAEMON_PID=
SIGNER_PID=
PORT=
URL=

# Programs a script starts in the background add their PIDs here; each is
# bounded by its own timeout, and this makes sure none outlives the script
# when it stops early.
BG_PIDS=()
kill_bg() {
	local p
	for p in "${BG_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
}

cleanup() {
	kill_bg
	stop_daemon
	stop_signer
	# A PostgreSQL server the script started (source tests/pg.sh;
	# pg_start "$T_DIR/pg") goes before its directory.
	if declare -F pg_stop >/dev/null; then
		pg_stop
	fi
	rm -rf "$T_DIR"
}
trap cleanup EXIT

# SAN_ENV goes to env(1) in front of a program we did not write that loads
# one of ours (the PKCS#11 client module): under the sanitizer build the
# ASan runtime must be preloaded into it, and only into it; its own leaks
# are not ours to report.
SAN_ENV=()
case "$(basename "$BUILD")" in
build-san)
	SAN_ENV=("LD_PRELOAD=$(cc -print-file-name=libasan.so)"
	    "ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0")
	;;
esac

ok() { T_PASS=$((T_PASS + 1)); echo "ok - $*"; }
not_ok() { T_FAIL=$((T_FAIL + 1)); echo "not ok - $*"; }

# relay FILE [PREFIX]: the "ok - " and "not ok - " lines a subshell wrote
# to FILE become this script's checks (PREFIX before each name); other
# lines are passed on.
relay() {
	local line
	while IFS= read -r line; do
		case "$line" in
		"ok - "*) ok "${2:-}${line#ok - }" ;;
		"not ok - "*) not_ok "${2:-}${line#not ok - }" ;;
		*) echo "$line" ;;
		esac
	done <"$1"
}

# check NAME CMD...: passes when CMD exits 0.
check() {
	local name=$1; shift
	if "$@" >"$T_DIR/check.out" 2>&1; then
		ok "$name"
	else
		not_ok "$name"
		sed 's/^/    /' "$T_DIR/check.out" | head -n 20
	fi
}

# expect_eq NAME GOT WANT
expect_eq() {
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		not_ok "$1: got '$2', want '$3'"
	fi
}

finish() {
	stop_daemon
	stop_signer
	echo "$T_PASS passed, $T_FAIL failed"
	[ "$T_FAIL" -eq 0 ]
}

# Writes a config for a fresh state directory; extra jq filter optional.
write_config() {
	local filter=${1:-.}
	mkdir -p "$T_DIR/state"
	jq --arg dev "$DEV" --arg state "$T_DIR/state" '
	    .tls.certificate = ($dev + "/tls/server.pem") |
	    .tls.private_key = ($dev + "/tls/server.key") |
	    .tls.client_ca = ($dev + "/tls/ca.pem") |
	    .pkcs11.tokens |= map(.pin_file = ($dev + "/" + .pin_file)) |
	    .policy = ($dev + "/policy.conf") |
	    .state_dir = $state |
	    del(.console)' "$DEV/signgated.json" | jq "$filter" \
	    >"$T_DIR/signgated.json"
}

# await_start PID LOG NAME REGEX: waits until a line of LOG matches the
# bash REGEX, up to 30 s (a sanitizer build on a busy machine starts
# slowly), and sets STARTED to the match's first group (the whole match
# when it has none).  1 after printing LOG when PID exits first or never
# says so.
await_start() {
	local pid=$1 log=$2 name=$3 re=$4 i line
	STARTED=
	for i in $(seq 1 3000); do
		while IFS= read -r line; do
			[[ $line =~ $re ]] &&
			    STARTED=${BASH_REMATCH[1]:-${BASH_REMATCH[0]}}
		done <"$log"
		[ -n "$STARTED" ] && return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "$name exited:"; cat "$log"
			return 1
		fi
		pause 0.01
	done
	echo "$name did not start:"; cat "$log"
	return 1
}

# await_exit PID [SECONDS]: waits for PID to end (5 s unless given), then
# kills it; returns its exit status.
await_exit() {
	local i
	for i in $(seq 1 $((${2:-5} * 100))); do
		kill -0 "$1" 2>/dev/null || break
		pause 0.01
	done
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

# stop_bg PID LOG NAME: SIGTERM, and a clean stop: exit status 0 within
# 5 s and no sanitizer report (leaks at exit, memory errors) in LOG; else
# not_ok and 1.
stop_bg() {
	local rc
	kill -TERM "$1" 2>/dev/null
	await_exit "$1"
	rc=$?
	if [ "$rc" -ne 0 ] || grep -q 'Sanitizer\|runtime error:' "$2"; then
		not_ok "$3 stopped cleanly (exit $rc)"
		grep -A 30 'Sanitizer\|runtime error:' "$2" | head -n 60
		return 1
	fi
}

# start_daemon [jq filter for the config]: the daemon of
# $T_DIR/signgated.json, logging to $T_DIR/daemon.log; DAEMON_CONF and
# DAEMON_LOG name others (a second gateway), for stop_daemon too.
start_daemon() {
	local conf=${DAEMON_CONF:-$T_DIR/signgated.json}
	local log=${DAEMON_LOG:-$T_DIR/daemon.log}
	[ -f "$conf" ] || write_config "${1:-.}"
	: >"$log"
	"$SIGNGATED" -c "$conf" -p 0 >>"$log" 2>&1 &
	DAEMON_PID=$!
	PORT=
	if ! await_start "$DAEMON_PID" "$log" signgated \
	    'listening on https?://127\.0\.0\.1:([0-9]+)'; then
		kill -0 "$DAEMON_PID" 2>/dev/null || DAEMON_PID=
		return 1
	fi
	PORT=$STARTED
	URL="https://127.0.0.1:$PORT"
	export SIGNGATE_URL="$URL" SIGNGATE_CACERT="$DEV/tls/ca.pem"
}

stop_daemon() {
	local pid=${DAEMON_PID:-}
	[ -n "$pid" ] || return 0
	DAEMON_PID=
	stop_bg "$pid" "${DAEMON_LOG:-$T_DIR/daemon.log}" signgated || :
}

# give_to_signer PATH...: when run by root, what only the signer's user may
# use (a private copy of the tokens, softhsm2.conf, a fault module's log)
# becomes that user's, as scripts/devenv.sh does for var/dev.
give_to_signer() {
	[ "$(id -u)" -eq 0 ] || return 0
	chown -R "$SIGNER_USER:$SIGNER_USER" "$@"
}

# give_to_front PATH...: likewise for what the front's user owns (a store
# restored from a backup, as an operator restores one).
give_to_front() {
	[ "$(id -u)" -eq 0 ] || return 0
	chown -R "$FRONT_USER:$FRONT_USER" "$@"
}

# private_tokens DIR: a copy of the tokens of its own in DIR/tokens, and
# DIR/softhsm2.conf naming it (export SOFTHSM2_CONF to use it), both the
# signer's user's: SoftHSM rewrites its token file at each login, and a
# daemon starting while another logs in to the same token can read it
# half written.
private_tokens() {
	cp -a "$DEV/tokens" "$1/tokens"
	sed "s#^directories.tokendir.*#directories.tokendir = $1/tokens#" \
	    "$DEV/softhsm2.conf" >"$1/softhsm2.conf"
	give_to_signer "$1/tokens" "$1/softhsm2.conf"
}

# as_signer CMD...: runs CMD as the signer's user when run by root (the
# PIN files and tokens are that user's), else as it is.
as_signer() {
	if [ "$(id -u)" -eq 0 ]; then
		setpriv --reuid="$SIGNER_USER" --regid="$SIGNER_USER" \
		    --clear-groups "$@"
	else
		"$@"
	fi
}

# start_signer: the signer on its own (signgated --signer; SIGNER_CMD
# instead when set) for $T_DIR/signgated.json, which names signer_socket;
# waits until it listens.
start_signer() {
	: >"$T_DIR/signer.log"
	"${SIGNER_CMD:-$SIGNGATED}" --signer -c "$T_DIR/signgated.json" \
	    >>"$T_DIR/signer.log" 2>&1 &
	SIGNER_PID=$!
	await_start "$SIGNER_PID" "$T_DIR/signer.log" "signgated --signer" \
	    'signer: listening on' && return 0
	kill -0 "$SIGNER_PID" 2>/dev/null || SIGNER_PID=
	return 1
}

stop_signer() {
	local pid=${SIGNER_PID:-}
	[ -n "$pid" ] || return 0
	SIGNER_PID=
	stop_bg "$pid" "$T_DIR/signer.log" "signgated --signer" || :
}

kill9_daemon() {
	kill -KILL "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
}

# need_pg WHAT: loads tests/pg.sh; 0 when PostgreSQL's server binaries
# are there, else 1 after saying that WHAT is not tested (in CI, where
# they must be, a failure).
need_pg() {
	# shellcheck disable=SC1091
	. "$SG_ROOT/tests/pg.sh"
	pg_bindir >/dev/null 2>&1 && return 0
	if [ -n "${CI:-}" ]; then
		not_ok "PostgreSQL server binaries are installed (CI)"
	else
		echo "# PostgreSQL server binaries not found: $1 not tested"
	fi
	return 1
}

# Two gateways of one script: their daemons' pids, and stopping both.
A_PID= B_PID=
stop_gateways() {
	[ -n "$A_PID" ] && { DAEMON_PID=$A_PID DAEMON_LOG=$T_DIR/a.log stop_daemon; A_PID=; }
	[ -n "$B_PID" ] && { DAEMON_PID=$B_PID DAEMON_LOG=$T_DIR/b.log stop_daemon; B_PID=; }
	DAEMON_PID=
}

# as PRINCIPAL: sets the CLI environment for that principal.
as() {
	export SIGNGATE_CERT="$DEV/tls/$1.pem" SIGNGATE_KEY="$DEV/tls/$1.key"
}

# api PRINCIPAL METHOD PATH [curl args...]: body to $T_DIR/body, prints
# the status.  PRINCIPAL "-" sends no client certificate.
api() {
	local who=$1 method=$2 path=$3; shift 3
	local certargs=()
	[ "$who" != "-" ] && certargs=(--cert "$DEV/tls/$who.pem" --key "$DEV/tls/$who.key")
	curl -sS --max-time 30 --cacert "$DEV/tls/ca.pem" "${certargs[@]}" \
	    -X "$method" -o "$T_DIR/body" -w '%{http_code}' "$@" \
	    "$URL$path" 2>"$T_DIR/curl.err" || echo "curl-error"
}

body() { cat "$T_DIR/body"; }
jbody() { jq -r "$1" "$T_DIR/body"; }

# sg ARGS...: the CLI bounded in time (SG_TIMEOUT seconds, 30 unless the
# script sets it), with no terminal and no input; stdout in $T_DIR/out,
# stderr in $T_DIR/err; prints the exit status.
sg() {
	timeout "${SG_TIMEOUT:-30}" setsid -w "$SIGNGATE" "$@" </dev/null \
	    >"$T_DIR/out" 2>"$T_DIR/err"
	echo $?
}

# expect_rc NAME STATUS ARGS...: the CLI exits with STATUS; the start of
# what it wrote is shown when not.
expect_rc() {
	local name=$1 want=$2 got; shift 2
	got=$(sg "$@")
	expect_eq "$name (exit $want)" "$got" "$want"
	if [ "$got" != "$want" ]; then
		sed 's/^/    stderr: /' "$T_DIR/err" | head -n 5
		sed 's/^/    stdout: /' "$T_DIR/out" | head -n 5
	fi
}

# post_json PRINCIPAL PATH JSON [curl args]
post_json() {
	local who=$1 path=$2 json=$3; shift 3
	api "$who" POST "$path" -H 'Content-Type: application/json' \
	    --data-binary "$json" "$@"
}

# new_request PRINCIPAL KEY HEX [ALG] [FORMAT]: prints the status; the
# request is in $T_DIR/body.
new_request() {
	local alg=${4:-sha256} fmt=${5:-raw}
	post_json "$1" /v1/requests "{\"key\":\"$2\",\"digest\":{\"algorithm\":\"$alg\",\"value\":\"$3\"},\"format\":\"$fmt\",\"artifact\":{\"name\":\"test.bin\",\"version\":\"1.0\"}}"
}

# sha HEX of a file with an algorithm
hexdigest() { openssl dgst "-$1" -r "$2" | cut -d' ' -f1; }

# key_pem NAME > file: the key's public key from /v1/keys.
key_pem() {
	api ci GET /v1/keys >/dev/null
	jq -r --arg k "$1" '.keys[] | select(.name == $k) | .public_key_pem' \
	    "$T_DIR/body"
}

# approve_with_openssl OFFICER REQUEST_JSON_FILE [decision]: builds the
# DSSE envelope with nothing but openssl, as docs/API.md (POST /v1/requests/{id}/approvals) shows, and posts
# it over the officer's own connection; prints the status.
approve_with_openssl() {
	local officer=$1 id
	id=$(dsse_envelope "$@") || return 1
	api "$officer" POST "/v1/requests/$id/approvals" \
	    -H 'Content-Type: application/json' \
	    --data-binary "@$T_DIR/dsse.$officer/env.json"
}

# dsse_envelope OFFICER REQUEST_JSON_FILE [decision [signer [DIR]]]:
# writes the envelope to DIR/env.json (default $T_DIR/dsse.OFFICER) and
# prints the request's id.
dsse_envelope() {
	local officer=$1 reqfile=$2 decision=${3:-approve} signer=${4:-$1}
	local type="application/vnd.signgate.approval.v1+text"
	local id req d=${5:-$T_DIR/dsse.$officer}
	[ -d "$d" ] || mkdir -p "$d"
	# One jq for the id (first line) and the statement (the rest), split
	# by the shell: each process costs milliseconds (jq tens), and the
	# concurrency tests approve hundreds of times.
	jq -j '.id + "\n" + .statement' "$reqfile" >"$d/req"
	IFS= read -r -d '' req <"$d/req"
	id=${req%%$'\n'*}
	printf '%sdecision %s\n' "${req#*$'\n'}" "$decision" >"$d/body"
	{ printf 'DSSEv1 %d %s %d ' "${#type}" "$type" "$(stat -c %s "$d/body")"
	  printf '%sdecision %s\n' "${req#*$'\n'}" "$decision"; } >"$d/pae"
	openssl dgst -sha256 -sign "$DEV/officers/$signer.key" -out "$d/sig" \
	    "$d/pae"
	# Base64 and the officers' names need no JSON escaping.
	printf '{"payloadType":"%s","payload":"%s","signatures":[{"keyid":"%s","sig":"%s"}]}\n' \
	    "$type" "$(base64 -w0 "$d/body")" "$officer" \
	    "$(base64 -w0 "$d/sig")" >"$d/env.json"
	echo "$id"
}

# free_port: a loopback TCP port nobody listens on now (for a server whose
# port must be known before it starts).
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_witness NAME LOG_VKEY...: a signgate-witness named NAME
# ("witness.test/NAME") for these logs, on a free loopback port, in
# $T_DIR/witness-NAME (its key, its configuration w.json, its state) and
# logging to $T_DIR/witness-NAME.log; WITNESS_EXTRA (a jq filter) changes
# the configuration.  Sets W_PID, W_PORT, W_URL, W_VKEY.  The directory is
# kept, so starting NAME again restarts the same witness.
SIGNGATE_WITNESS="$BUILD/signgate-witness"
start_witness() {
	local name=$1; shift
	local d="$T_DIR/witness-$name" log="$T_DIR/witness-$name.log" i line
	mkdir -p "$d"
	chmod 0700 "$d"
	[ -f "$d/w.key" ] || (umask 077 && openssl genpkey -algorithm ed25519 \
	    -out "$d/w.key" 2>/dev/null)
	printf '%s\n' "$@" | jq -R . | jq -s --arg n "witness.test/$name" \
	    --arg s "$d/state" '{name: $n, listen: {address: "127.0.0.1",
	    port: 0}, key_file: "w.key", state_dir: $s,
	    logs: map({vkey: .})}' | jq "${WITNESS_EXTRA:-.}" >"$d/w.json"
	W_VKEY=$("$SIGNGATE_WITNESS" --print-vkey "$d/w.json") || return 1
	: >"$log"
	"$SIGNGATE_WITNESS" --config "$d/w.json" >>"$log" 2>&1 &
	W_PID=$!
	# Stopped by the cleanup even if it never says it listens.
	BG_PIDS+=("$W_PID")
	W_PORT=
	if ! await_start "$W_PID" "$log" signgate-witness \
	    'witnessing .* port ([0-9]+)'; then
		kill -0 "$W_PID" 2>/dev/null || W_PID=
		return 1
	fi
	W_PORT=$STARTED
	W_URL="http://127.0.0.1:$W_PORT"
}

# stop_witness PID NAME: SIGTERM, and a clean exit (status 0, no sanitizer
# report) within 5 s, or not_ok.
stop_witness() {
	stop_bg "$1" "$T_DIR/witness-$2.log" "signgate-witness $2"
}
