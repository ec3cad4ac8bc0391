#!/bin/bash
#
# The gateway benchmark behind `make bench` (docs/BENCHMARKS.md, the target column of "Results").  In one
# run, on one machine, against one fresh daemon on a free loopback port:
#
#   1. the raw in-process signing rate of the `nightly` key (ECDSA P-256)
#      with as many threads as the daemon has (build/tools/p11bench):
#      plain C_Sign on the caller's thread, measured before and again
#      after the gateway phases (their mean is the denominator), and,
#      for reference, through the daemon's own deadline hand-over and for
#      the log key (Ed25519, one checkpoint signature);
#   2. the gateway's rate of POST /v1/requests on `nightly` (no approval,
#      each signature durably logged) over HTTPS keep-alive with client
#      certificates (build/tools/loadgen sign), and its ratio to (1);
#   3. latency at a fixed offered rate of half of (2);
#   4. whole lifecycles per second on `release`: create as ci, approve as
#      alice, bob and dave with DSSE envelopes, signed and logged;
#   5. a release of 10,000 artifacts on `release`: the time from the
#      approval that completes its quorum to the last artifact's
#      signature logged, as artifacts per second and as a ratio to (1);
#   6. the store on PostgreSQL (a server of this run, tests/pg.sh, one
#      database; the SQLite gateway stopped): one gateway's rate of (2)
#      and lifecycles of (4), each with its ratio to (1);
#   7. a second gateway on the same database (a node name, state
#      directory and signer of its own), both loaded at once with half
#      the connections each (the two load generators' clocks start at
#      the same moment): the combined rate, its ratio to (1) and each
#      gateway's share; then, from the database: no request signed twice
#      (every signature entry names a request of its own), as many
#      requests signed as signature entries, and during (7) as many as
#      the 201 answers both load generators counted, the log without
#      gaps and covered by its newest checkpoint, and `signgate log
#      monitor` consistent through A, B and A again;
#   8. the raw rate of (1) again;
#   9. a network-HSM model: the same token behind tests/p11wrap/p11net.so,
#      which adds a fixed latency to every signature and signs at most N
#      at once (BENCH_NET_LATENCY_MS, default 5; BENCH_NET_IN_FLIGHT,
#      default 16): the raw rate through it with N threads, then a fresh
#      gateway whose pkcs11.module is p11net.so: its rate of (2) with
#      BENCH_NET_CONNS connections (default 64), its ratio to that raw
#      rate, latency at half its rate, and its store jobs per commit;
#  10. the transparency log (build/tools/bench_log): inclusion and
#      consistency proof times and memory at BENCH_LOG_ENTRIES entries
#      (`make bench`: one million; 0, as `make bench-gateway` passes,
#      skips it).
#
# CPU per signature during (2): the front's and the signer's user + system
# time from /proc/PID/stat, divided by the signatures of the phase, beside
# the raw benchmark's own CPU time per signature in (1) and (8).
#
# The figures also go to $BUILD/bench.json (softhsm.*, netmodel.*,
# lifecycles_per_s, jobs_per_commit, connections, log.*, releases.*,
# postgresql.*; postgresql and log are null when skipped).
#
# Every answer is checked (201/200 and state signed) and every 100th
# signature verified against var/dev/codesign/<key>.pub.pem.  The summary
# table, with the machine it ran on and the command, replaces the results
# section of docs/BENCHMARKS.md (between the bench:results markers).
#
# Environment: BUILD (build directory, default build), BENCH_THREADS
# (daemon and C_Sign threads; default 2 on a machine with at most 2 CPUs,
# else 4), BENCH_SECONDS (each measured phase, default 10, at most 60),
# BENCH_CONNS (client connections, default 8 per daemon thread),
# BENCH_NET_LATENCY_MS, BENCH_NET_IN_FLIGHT and BENCH_NET_CONNS (see (9)),
# BENCH_NET_THREADS (the network-HSM gateway's threads, default
# BENCH_THREADS), BENCH_LOG_ENTRIES (see (10)),
# BENCH_PROFILE=DIR (also record `perf record -g` of the daemon during an
# extra sign phase into DIR; needs perf), BENCH_NO_DOC=1 (do not touch
# docs/BENCHMARKS.md), BENCH_NO_PG=1 (skip (6) and (7); without it, a
# machine without PostgreSQL's server binaries stops the run), and
# SG_PG_BINDIR (those binaries, as for tests/pg.sh).
#
# Loopback only; every phase is bounded in time (`timeout`), and the
# daemons, the load generators and the PostgreSQL server are stopped on
# every exit, an interrupted one too.  The SQLite part takes about 5 x
# BENCH_SECONDS plus 15 s (6 x with BENCH_PROFILE) on a quiet machine, the
# PostgreSQL part 3 x BENCH_SECONDS plus about 20 s, the network-HSM part
# 3 x BENCH_SECONDS plus about 10 s, the log about 20 s per million
# entries.  A database that
# fails its checks in (7) makes the run fail, after the figures are
# written.  Never part of `make test`.
#
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
dev="$root/var/dev"
BUILD=${BUILD:-build}
case "$BUILD" in /*) build=$BUILD ;; *) build="$root/$BUILD" ;; esac
doc="$root/docs/BENCHMARKS.md"
# How this run was started, for the record (mk/bench.mk passes the goals).
if [ -n "${MAKELEVEL:-}" ]; then
	cmdline="make ${BENCH_GOALS:-bench}"
else
	cmdline="scripts/bench.sh"
fi
cmdline="$cmdline${BENCH_THREADS:+ BENCH_THREADS=$BENCH_THREADS}${BENCH_SECONDS:+ BENCH_SECONDS=$BENCH_SECONDS}${BENCH_CONNS:+ BENCH_CONNS=$BENCH_CONNS}${BENCH_PROFILE:+ BENCH_PROFILE=$BENCH_PROFILE}${BENCH_NO_PG:+ BENCH_NO_PG=$BENCH_NO_PG}${BENCH_NET_LATENCY_MS:+ BENCH_NET_LATENCY_MS=$BENCH_NET_LATENCY_MS}${BENCH_NET_IN_FLIGHT:+ BENCH_NET_IN_FLIGHT=$BENCH_NET_IN_FLIGHT}${BENCH_NET_CONNS:+ BENCH_NET_CONNS=$BENCH_NET_CONNS}${BENCH_NET_THREADS:+ BENCH_NET_THREADS=$BENCH_NET_THREADS}"
[ "${BENCH_LOG_ENTRIES:-0}" = 10000000 ] ||
    cmdline="$cmdline BENCH_LOG_ENTRIES=${BENCH_LOG_ENTRIES:-0}"

die() {
	echo "bench.sh: $*" >&2
	exit 1
}

ncpu=$(nproc)
threads=${BENCH_THREADS:-}
[ -n "$threads" ] || { [ "$ncpu" -le 2 ] && threads=2 || threads=4; }
secs=${BENCH_SECONDS:-10}
conns=${BENCH_CONNS:-$((threads * 8))}
[[ "$threads" =~ ^[0-9]+$ && "$threads" -ge 1 && "$threads" -le 64 ]] ||
    die "BENCH_THREADS must be 1-64"
[[ "$secs" =~ ^[0-9]+$ && "$secs" -ge 2 && "$secs" -le 60 ]] ||
    die "BENCH_SECONDS must be 2-60"
[[ "$conns" =~ ^[0-9]+$ && "$conns" -ge 1 && "$conns" -le 256 ]] ||
    die "BENCH_CONNS must be 1-256"
[[ "${BENCH_NO_PG:-0}" =~ ^[01]$ ]] || die "BENCH_NO_PG must be 0 or 1"
net_latency=${BENCH_NET_LATENCY_MS:-5}
net_inflight=${BENCH_NET_IN_FLIGHT:-16}
net_conns=${BENCH_NET_CONNS:-64}
net_threads=${BENCH_NET_THREADS:-$threads}
log_entries=${BENCH_LOG_ENTRIES:-0}
[[ "$net_latency" =~ ^[0-9]+$ && "$net_latency" -le 1000 ]] ||
    die "BENCH_NET_LATENCY_MS must be 0-1000"
# p11bench signs with one thread per slot, at most 64.
[[ "$net_inflight" =~ ^[0-9]+$ && "$net_inflight" -ge 1 && "$net_inflight" -le 64 ]] ||
    die "BENCH_NET_IN_FLIGHT must be 1-64"
[[ "$net_conns" =~ ^[0-9]+$ && "$net_conns" -ge 1 && "$net_conns" -le 256 ]] ||
    die "BENCH_NET_CONNS must be 1-256"
# The daemon's signer has threads + 4 channels, at most 64.
[[ "$net_threads" =~ ^[0-9]+$ && "$net_threads" -ge 1 && "$net_threads" -le 60 ]] ||
    die "BENCH_NET_THREADS must be 1-60"
[[ "$log_entries" =~ ^[0-9]+$ && ( "$log_entries" = 0 ||
    ( "$log_entries" -ge 1000 && "$log_entries" -le 100000000 ) ) ]] ||
    die "BENCH_LOG_ENTRIES must be 0 or 1000-100000000"
limit=$((secs * 3 + 60))        # seconds any one phase may take

for tool in jq curl timeout; do
	command -v "$tool" >/dev/null || die "$tool not found"
done
# The PostgreSQL server (tests/pg.sh finds it), before anything is measured.
if [ "${BENCH_NO_PG:-0}" != 1 ]; then
	# shellcheck source=tests/pg.sh
	. "$root/tests/pg.sh"
	pg_bin=$(pg_bindir) || die "PostgreSQL server binaries not found" \
	    "(/usr/lib/postgresql/*/bin, or SG_PG_BINDIR); BENCH_NO_PG=1" \
	    "skips the PostgreSQL phases"
fi

echo "== gateway benchmark: building and checking the dev environment"
# Under make (mk/bench.mk) the programs are prerequisites, built for the
# right variant (SAN=1 included); run alone, build the plain variant.
if [ -z "${MAKELEVEL:-}" ] && [ "$build" = "$root/build" ]; then
	${MAKE:-make} --no-print-directory all build/tools/loadgen \
	    build/tools/p11bench build/tools/bench_log \
	    build/p11wrap/p11net.so >/dev/null
fi
for prog in signgated tools/loadgen tools/p11bench tools/bench_log; do
	[ -x "$build/$prog" ] || die "$build/$prog not built (make unit)"
done
p11net="$build/p11wrap/p11net.so"
[ -f "$p11net" ] || die "$p11net not built (make unit)"
scripts/devenv.sh >/dev/null
# shellcheck source=/dev/null
. "$dev/env.sh"

work=$(mktemp -d /tmp/signgate-bench.XXXXXX)
# Run by root, the daemon's front runs as its own user and needs the way in.
chmod 0711 "$work"
daemons=()              # every signgated started, until stopped
phase_pids=()           # measuring tools running in the background
pg_dir=                 # the PostgreSQL cluster, once started

# stop_gateway PID: SIGTERM, up to 5 s for a clean exit, then SIGKILL.
stop_gateway() {
	local d rest=()
	kill -TERM "$1" 2>/dev/null || true
	for _ in $(seq 1 100); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	for d in "${daemons[@]}"; do
		[ "$d" = "$1" ] || rest+=("$d")
	done
	daemons=("${rest[@]}")
}

cleanup() {
	local d
	trap - INT TERM
	for d in "${phase_pids[@]}"; do
		kill -TERM "$d" 2>/dev/null || true     # timeout passes it on
		wait "$d" 2>/dev/null || true
	done
	for d in "${daemons[@]}"; do
		stop_gateway "$d"
	done
	# The gateways first: they hold connections to the server.
	if [ -n "$pg_dir" ]; then
		pg_stop "$pg_dir" || echo "bench.sh: PostgreSQL in $pg_dir not stopped" >&2
	fi
	rm -rf "$work"
}
trap cleanup EXIT
# An interrupted run still stops its daemons and its server (EXIT).
trap 'exit 130' INT
trap 'exit 143' TERM

# field NAME LINE: the value of NAME=... in a RESULT line.
field() {
	sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"
}

# start_phase LOGNAME CMD...: starts a measuring tool in the background
# under a time bound, its output in $work/LOGNAME.out; sets phase_pid.
# The clean-up stops the tools still running (an interrupted run).
phase_pid=
start_phase() {
	local name=$1; shift
	timeout "${phase_limit:-$limit}" "$@" >"$work/$name.out" 2>&1 &
	phase_pid=$!
	phase_pids+=("$phase_pid")
}

# unlist_phase PID: a program of the list above that has been waited for.
unlist_phase() {
	local p rest=()
	for p in "${phase_pids[@]}"; do
		[ "$p" = "$1" ] || rest+=("$p")
	done
	phase_pids=("${rest[@]}")
}

# end_phase LOGNAME PID: waits for the tool, shows its human lines and
# returns its RESULT line in $result.
result=
end_phase() {
	local rc=0
	wait "$2" || rc=$?
	unlist_phase "$2"
	{ grep -v '^RESULT' "$work/$1.out" || true; } | sed 's/^/    /'
	result=$(grep '^RESULT' "$work/$1.out" | tail -n 1 || true)
	# Errors under load are results (counted in the table); a tool that
	# could not measure at all stops the benchmark.
	[ -n "$result" ] || die "$1 failed (exit $rc)"
}

# run_phase LOGNAME CMD...: both of the above.
run_phase() {
	local name=$1; shift
	start_phase "$name" "$@"
	end_phase "$name" "$phase_pid"
}

# metric NAME [URL]: a value from the daemon's /metrics (loopback, no
# identity); the first daemon's unless URL is given.
metric() {
	curl -sS --max-time 10 --cacert "$dev/tls/ca.pem" "${2:-$url}/metrics" |
	    awk -v m="$1" '$1 == m { print $2 }'
}

# cpu_ticks PID: user + system clock ticks of a process so far.
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# Run by root, the tokens and their PIN belong to the signer's user
# (scripts/devenv.sh): the raw benchmark runs as that user, as the
# daemon's signer does.
as_signer=()
if [ "$(id -u)" -eq 0 ]; then
	as_signer=(setpriv --reuid=signgate-hsm --regid=signgate-hsm
	    --clear-groups)
fi

loadavg=$(cut -d' ' -f1-3 /proc/loadavg)

echo "== 1. raw signing rate: nightly (ECDSA P-256), $threads threads, $secs s"
run_phase p11-raw "${as_signer[@]}" "$build/tools/p11bench" -p "$dev/pins/signgate-dev.pin" \
    -t signgate-dev -k nightly -T "$threads" -s "$secs" -d 0
raw_rate=$(field rate "$result")
raw_cpu_before=$(field cpu_us_per_sig "$result")
run_phase p11-deadline "${as_signer[@]}" "$build/tools/p11bench" \
    -p "$dev/pins/signgate-dev.pin" -t signgate-dev -k nightly \
    -T "$threads" -s "$((secs / 2 > 2 ? secs / 2 : 2))" -d 5000
handover_rate=$(field rate "$result")
# One checkpoint signature: the log key (Ed25519) on one thread.
run_phase p11-logkey "${as_signer[@]}" "$build/tools/p11bench" \
    -p "$dev/pins/signgate-dev.pin" -t signgate-dev -k log -T 1 -s 3 -d 0
logkey_rate=$(field rate "$result")

# gw_config STATE OUT [STORE [MODULE THREADS]]: the daemon's configuration
# in OUT: the dev one with absolute paths, state directory STATE (its
# signer's is STATE-hsm), no rate limits, the store object STORE (JSON;
# default SQLite in STATE), the PKCS#11 module MODULE (default the dev
# one's) and THREADS daemon threads (default BENCH_THREADS).
gw_config() {
	mkdir -p "$1"
	jq --arg dev "$dev" --arg state "$1" --argjson threads "${5:-$threads}" \
	    --argjson store "${3:-null}" --arg p11module "${4:-}" '
    .listen.address = "127.0.0.1" |
    .tls.certificate = ($dev + "/tls/server.pem") |
    .tls.private_key = ($dev + "/tls/server.key") |
    .tls.client_ca = ($dev + "/tls/ca.pem") |
    .pkcs11.tokens |= map(.pin_file = ($dev + "/" + .pin_file)) |
    .policy = ($dev + "/policy.conf") |
    .state_dir = $state |
    .threads = $threads |
    .rate_limit = {per_second: 0, burst: 1} |
    .max_pending_per_requester = 100000 |
    .per_ip_connection_limit = 1024 |
    .per_ip_unauthenticated_limit = 0 |
    if $p11module != "" then .pkcs11.module = $p11module else . end |
    if $store != null then .store = $store else . end' \
	    "$dev/signgated.json" >"$2"
}

# start_gateway CONFIG LOG: starts signgated on CONFIG, on a free loopback
# port, logging to LOG; sets gw_pid, gw_url and gw_signer (the signer
# process, empty if not found).  Waits (up to 30 s) until it listens.
start_gateway() {
	local port='' t_end=$((SECONDS + 30))
	"$build/signgated" -c "$1" -p 0 >"$2" 2>&1 &
	gw_pid=$!
	daemons+=("$gw_pid")
	while [ "$SECONDS" -lt "$t_end" ]; do
		port=$(sed -n 's/.*listening on https:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' \
		    "$2" | tail -n 1)
		[ -n "$port" ] && break
		kill -0 "$gw_pid" 2>/dev/null ||
		    { cat "$2"; die "signgated ($1) exited"; }
		sleep 0.05
	done
	[ -n "$port" ] || { cat "$2"; die "signgated ($1) did not start within 30 s"; }
	gw_url="https://127.0.0.1:$port"
	gw_signer=$(pgrep -P "$gw_pid" | head -n 1 || true)
}

echo "== starting signgated ($threads threads) on a free loopback port"
gw_config "$work/state" "$work/signgated.json"
start_gateway "$work/signgated.json" "$work/daemon.log"
daemon_pid=$gw_pid url=$gw_url signer_pid=$gw_signer
echo "    $url (front pid $daemon_pid, signer pid ${signer_pid:-?})"

lg=("$build/tools/loadgen")
common=(-u "$url" -D "$dev" -c "$conns" -v 100)

# warmup LOGNAME URL CONNS [SECONDS]: signing, not counted (default 2 s);
# says so only when something went wrong.
warmup() {
	run_phase "$1" "${lg[@]}" sign -u "$2" -D "$dev" -c "$3" -v 100 \
	    -s "${4:-2}" >/dev/null
	[ "$(field errors "$result")" = 0 ] ||
	    echo "    warm-up ($1): $(field errors "$result") errors ($(field error_detail "$result"))"
}

echo "== warm-up: 2 s of signing (not counted)"
warmup warmup "$url" "$conns"

echo "== 2. gateway: POST /v1/requests on nightly, $conns connections, $secs s"
b0=$(metric signgate_store_batches_total); j0=$(metric signgate_store_jobs_total)
h0=$(metric signgate_hsm_sign_seconds_sum); n0=$(metric signgate_hsm_sign_seconds_count)
f0=$(cpu_ticks "$daemon_pid"); s0=$( [ -n "$signer_pid" ] && cpu_ticks "$signer_pid" || echo 0)
run_phase sign "${lg[@]}" sign "${common[@]}" -s "$secs"
sign_res=$result
f1=$(cpu_ticks "$daemon_pid"); s1=$( [ -n "$signer_pid" ] && cpu_ticks "$signer_pid" || echo 0)
b1=$(metric signgate_store_batches_total); j1=$(metric signgate_store_jobs_total)
h1=$(metric signgate_hsm_sign_seconds_sum); n1=$(metric signgate_hsm_sign_seconds_count)
gw_rate=$(field rate "$sign_res")
gw_done=$(field completed "$sign_res")
tck=$(getconf CLK_TCK)

half=$(awk -v r="$gw_rate" 'BEGIN { h = int(r / 2); print h < 1 ? 1 : h }')
echo "== 3. latency at half that rate: $half/s offered, $conns connections, $secs s"
run_phase latency "${lg[@]}" sign "${common[@]}" -s "$secs" -r "$half"
lat_res=$result

echo "== 4. lifecycles on release (ci creates; alice, bob, dave approve), $secs s"
run_phase lifecycle "${lg[@]}" lifecycle "${common[@]}" -s "$secs"
life_res=$result

echo "== 5. a release of 10000 artifacts on release: quorum to the last signature logged"
rel_n=10000
# approve OFFICER FILE: a DSSE approval of the statement in FILE (a
# request object), posted as OFFICER; prints the status.
approve() {
	local type="application/vnd.signgate.approval.v1+text" d="$work/dsse.$1"
	mkdir -p "$d"
	jq -j .statement "$2" >"$d/body"
	printf 'decision approve\n' >>"$d/body"
	{ printf 'DSSEv1 %d %s %d ' "${#type}" "$type" "$(stat -c %s "$d/body")"
	  cat "$d/body"; } >"$d/pae"
	openssl dgst -sha256 -sign "$dev/officers/$1.key" -out "$d/sig" "$d/pae"
	jq -n --arg t "$type" --arg p "$(base64 -w0 "$d/body")" --arg k "$1" \
	    --arg s "$(base64 -w0 "$d/sig")" \
	    '{payloadType: $t, payload: $p, signatures: [{keyid: $k, sig: $s}]}' \
	    >"$d/env.json"
	curl -sS --max-time 60 --cacert "$dev/tls/ca.pem" \
	    --cert "$dev/tls/$1.pem" --key "$dev/tls/$1.key" \
	    -H 'Content-Type: application/json' --data-binary "@$d/env.json" \
	    -o "$d/answer" -w '%{http_code}' \
	    "$url/v1/requests/$(jq -r .id "$2")/approvals"
}
ci_curl() {
	curl -sS --max-time 60 --cacert "$dev/tls/ca.pem" \
	    --cert "$dev/tls/ci.pem" --key "$dev/tls/ci.key" "$@"
}
seq 1 "$rel_n" | awk '{ printf "%s%s", (NR > 1 ? "," : "{\"key\":\"release\",\"release\":{\"name\":\"bench\"},\"artifacts\":["), "{\"name\":\"bench-" $1 ".bin\",\"digest\":{\"algorithm\":\"sha256\",\"value\":\"" sprintf("%064x", $1 * 7919) "\"}}" } END { print "]}" }' \
    >"$work/release.json"
st=$(ci_curl -H 'Content-Type: application/json' \
    --data-binary "@$work/release.json" -o "$work/rel.json" -w '%{http_code}' \
    "$url/v1/releases")
[ "$st" = 201 ] || { cat "$work/rel.json"; die "the release was refused ($st)"; }
rel_id=$(jq -r .id "$work/rel.json")
for o in alice bob; do
	[ "$(approve "$o" "$work/rel.json")" = 200 ] || die "approval by $o refused"
done
t0=$(date +%s%N)
[ "$(approve dave "$work/rel.json")" = 200 ] || die "approval by dave refused"
rel_state=
for _ in $(seq 1 600); do
	ci_curl -o "$work/rel.now" "$url/v1/requests/$rel_id?wait=5"
	rel_state=$(jq -r .state "$work/rel.now")
	[ "$rel_state" = active ] || break
done
t1=$(date +%s%N)
[ "$rel_state" = signed ] || die "the release ended $rel_state"
[ "$(jq -r .release.signed "$work/rel.now")" = "$rel_n" ] ||
    die "the release holds $(jq -r .release.signed "$work/rel.now") signatures"
rel_rate=$(awk -v n="$rel_n" -v ns="$((t1 - t0))" 'BEGIN { printf "%.0f", n / (ns / 1e9) }')
# Every 100th artifact's signature checked against the key file.
rel_ver=0
for pos in $(seq 0 100 $((rel_n - 1))); do
	ci_curl -o "$work/item.json" "$url/v1/releases/$rel_id/artifacts?after=$pos&limit=1"
	jq -r '.artifacts[0].signature.signature' "$work/item.json" | base64 -d >"$work/item.sig"
	printf '%064x' $(( (pos + 1) * 7919 )) | xxd -r -p >"$work/item.dgst"
	openssl pkeyutl -verify -pubin -inkey "$dev/codesign/release.pub.pem" \
	    -in "$work/item.dgst" -sigfile "$work/item.sig" >/dev/null 2>&1 &&
	    rel_ver=$((rel_ver + 1))
done
echo "    $rel_n artifacts in $(( (t1 - t0) / 1000000 )) ms: $rel_rate/s; $rel_ver of $(( (rel_n + 99) / 100 )) sampled signatures verified"

if [ -n "${BENCH_PROFILE:-}" ]; then
	command -v perf >/dev/null || die "BENCH_PROFILE needs perf"
	mkdir -p "$BENCH_PROFILE"
	echo "== profile: perf record -g of the daemon during $secs s of signing"
	perf record -q -e cpu-clock -F 999 --call-graph dwarf,16384 \
	    -p "$daemon_pid" -o "$BENCH_PROFILE/front.data" -- \
	    sleep $((secs + 2)) >/dev/null 2>&1 &
	pf=$!
	if [ -n "$signer_pid" ]; then
		perf record -q -e cpu-clock -F 999 --call-graph dwarf,16384 \
		    -p "$signer_pid" -o "$BENCH_PROFILE/signer.data" -- \
		    sleep $((secs + 2)) >/dev/null 2>&1 &
		prof_signer=$!
	fi
	sleep 1
	run_phase profile "${lg[@]}" sign "${common[@]}" -s "$secs"
	wait "$pf" || true
	[ -n "${prof_signer:-}" ] && { wait "$prof_signer" || true; }
	echo "    perf data in $BENCH_PROFILE (perf report -i …/front.data)"
fi

# Anything the daemon logged at warning level or worse during the run.
daemon_warnings=$(grep -c -E '^signgate (warning|error):' "$work/daemon.log" || true)

# ---------------------------------------------------------------------------
# 6-7. The same gateway on PostgreSQL: one gateway, then two on one
# database.  The SQLite gateway is stopped first: the machine is theirs.
pg_ran=0
pg_fail=()              # the consistency checks that failed, described
if [ "${BENCH_NO_PG:-0}" = 1 ]; then
	echo "== 6-7. PostgreSQL phases skipped (BENCH_NO_PG=1)"
else
	stop_gateway "$daemon_pid"
	pg_t0=$SECONDS
	pg_version=$("$pg_bin/postgres" --version | awk '{ print $3 }')
	echo "== 6. PostgreSQL $pg_version: a server of this run, one database, one gateway ($threads threads)"
	pg_dir=$work/pg
	pg_start "$pg_dir" || die "PostgreSQL did not start"
	pg_new_db signgate >/dev/null || die "cannot make the database"
	# Run by root, the daemon's front (user signgate) reads the password.
	if [ "$(id -u)" -eq 0 ]; then
		chown signgate: "$PG_DB_PASSFILE"
	fi
	chmod 0600 "$PG_DB_PASSFILE"
	sql() { pg_psql "$PG_DB_CONNINFO" "$PG_DB_PASSFILE" -c "$1"; }
	# pg_store NODE: the store object of a gateway on that database.
	pg_store() {
		jq -n --arg c "$PG_DB_CONNINFO" --arg p "$PG_DB_PASSFILE" \
		    --arg n "$1" '{backend: "postgresql", conninfo: $c,
		    password_file: $p, node: $n}'
	}
	gw_config "$work/state-pg-a" "$work/pg-a.json" "$(pg_store bench-a)"
	start_gateway "$work/pg-a.json" "$work/pg-a.log"
	pga_pid=$gw_pid pga_url=$gw_url
	echo "    gateway A: $pga_url (node bench-a, front pid $pga_pid, signer pid ${gw_signer:-?})"
	warmup pg-warmup-a "$pga_url" "$conns"

	echo "== 6a. PostgreSQL, one gateway: POST /v1/requests on nightly, $conns connections, $secs s"
	pb0=$(metric signgate_store_batches_total "$pga_url")
	pj0=$(metric signgate_store_jobs_total "$pga_url")
	run_phase pg1-sign "${lg[@]}" sign -u "$pga_url" -D "$dev" -c "$conns" \
	    -v 100 -s "$secs"
	pg1_sign_res=$result
	pb1=$(metric signgate_store_batches_total "$pga_url")
	pj1=$(metric signgate_store_jobs_total "$pga_url")

	echo "== 6b. PostgreSQL, one gateway: lifecycles on release, $secs s"
	run_phase pg1-lifecycle "${lg[@]}" lifecycle -u "$pga_url" -D "$dev" \
	    -c "$conns" -v 100 -s "$secs"
	pg1_life_res=$result

	conns_a=$(( (conns + 1) / 2 ))
	conns_b=$(( conns / 2 > 0 ? conns / 2 : 1 ))
	echo "== 7. PostgreSQL, two gateways on the database: a second one (node bench-b, state of its own)"
	gw_config "$work/state-pg-b" "$work/pg-b.json" "$(pg_store bench-b)"
	start_gateway "$work/pg-b.json" "$work/pg-b.log"
	pgb_pid=$gw_pid pgb_url=$gw_url
	echo "    gateway B: $pgb_url (node bench-b, front pid $pgb_pid, signer pid ${gw_signer:-?})"
	warmup pg-warmup-b "$pgb_url" "$conns_b" 1

	# Before: the signed requests, and the log as A serves it (the
	# monitor's first look, with the log key A serves).
	signed0=$(sql "SELECT count(*) FROM requests WHERE key = 'nightly' AND state = 'signed'") ||
	    die "cannot read the database"
	curl -sS --max-time 10 --cacert "$dev/tls/ca.pem" -o "$work/log.vkey" \
	    "$pga_url/v1/log/key" || die "GET /v1/log/key failed"
	monitor() {	# URL: signgate log monitor against that gateway
		SIGNGATE_URL=$1 SIGNGATE_CACERT="$dev/tls/ca.pem" timeout 60 \
		    "$build/signgate" log monitor --state "$work/monitor.state" \
		    --vkey "$(cat "$work/log.vkey")" </dev/null \
		    >>"$work/monitor.out" 2>&1
	}
	monitor "$pga_url" || pg_fail+=("log monitor, first look at A: $(tail -n 1 "$work/monitor.out")")
	qb0=$(metric signgate_store_batches_total "$pga_url")
	qj0=$(metric signgate_store_jobs_total "$pga_url")
	rb0=$(metric signgate_store_batches_total "$pgb_url")
	rj0=$(metric signgate_store_jobs_total "$pgb_url")
	echo "== 7a. PostgreSQL, two gateways: POST /v1/requests on nightly on both at once, $conns_a + $conns_b connections, $secs s"
	# Both clocks start at the same moment, once the connections are up.
	t_start=$(( $(date +%s%3N) + 1500 ))
	start_phase pg2-a "${lg[@]}" sign -u "$pga_url" -D "$dev" -c "$conns_a" \
	    -v 100 -s "$secs" -a "$t_start"
	pa=$phase_pid
	start_phase pg2-b "${lg[@]}" sign -u "$pgb_url" -D "$dev" -c "$conns_b" \
	    -v 100 -s "$secs" -a "$t_start"
	pb=$phase_pid
	# Meanwhile one session samples, 20 times a second, whether a
	# gateway's writer waits for a lock (the other's on the log's head):
	# the share of the time the log's one order holds a writer back.
	sql "DO \$\$
	    DECLARE n int := 0; w int := 0; c int;
	    BEGIN
	      PERFORM pg_sleep_until(to_timestamp($t_start / 1000.0));
	      WHILE clock_timestamp() <
	        to_timestamp($t_start / 1000.0 + LEAST($secs, 50)) LOOP
	        PERFORM pg_stat_clear_snapshot();
	        SELECT count(*) INTO c FROM pg_stat_activity
	          WHERE datname = current_database() AND wait_event_type = 'Lock';
	        n := n + 1;
	        IF c > 0 THEN w := w + 1; END IF;
	        PERFORM pg_sleep(0.05);
	      END LOOP;
	      RAISE NOTICE 'lockwait % %', w, n;
	    END \$\$" >"$work/lockwait.out" 2>&1 &
	lw=$!
	phase_pids+=("$lw")
	echo "    gateway A:"
	end_phase pg2-a "$pa"
	pg2a_res=$result
	echo "    gateway B:"
	end_phase pg2-b "$pb"
	pg2b_res=$result
	lockwait=
	if wait "$lw"; then
		lockwait=$(sed -n 's/.*NOTICE: *lockwait \([0-9]*\) \([0-9]*\).*/\1 \2/p' \
		    "$work/lockwait.out")
	fi
	unlist_phase "$lw"
	[ -n "$lockwait" ] ||
	    echo "    the lock sampler failed: $(tail -n 1 "$work/lockwait.out")"
	lockwait=${lockwait:-0 0}
	echo "    a gateway's writer waiting for a lock in ${lockwait% *} of ${lockwait#* } samples"
	qb1=$(metric signgate_store_batches_total "$pga_url")
	qj1=$(metric signgate_store_jobs_total "$pga_url")
	rb1=$(metric signgate_store_batches_total "$pgb_url")
	rj1=$(metric signgate_store_jobs_total "$pgb_url")

	echo "== 7b. PostgreSQL: the log and the requests after the two gateways"
	# pg_check DESCRIPTION GOT WANT: a check of the database, shown.
	pg_check() {
		if [ "$2" = "$3" ]; then
			echo "    ok: $1 ($2)"
		else
			echo "    FAILED: $1: $2, expected $3"
			pg_fail+=("$1: $2, expected $3")
		fi
	}
	# One query, one snapshot.  The entries' text is ASCII by the entry
	# grammar (include/sg_entry.h); a signature entry names its request
	# on its "request" line.  The database holds single requests only (no
	# release, whose artifacts' entries are of another type), so every
	# signed request has exactly one signature entry.
	got=$(sql "WITH s AS (
	      SELECT idx, convert_from(data, 'UTF8') AS t FROM log_entries
	      WHERE convert_from(data, 'UTF8') LIKE
	        E'signgate-log-entry v1\ntype signature\n%')
	    SELECT (SELECT count(*) FROM s),
	      (SELECT count(DISTINCT substring(t FROM E'\nrequest ([0-9a-f]+)\n')) FROM s),
	      (SELECT count(*) FROM requests WHERE state = 'signed'),
	      (SELECT count(*) FROM requests r JOIN s ON s.idx = r.log_index
	        WHERE r.state = 'signed' AND
	        position(E'\nrequest ' || r.id || E'\n' IN s.t) > 0),
	      (SELECT coalesce(string_agg(state || ':' || n, ',' ORDER BY state), 'none')
	        FROM (SELECT state, count(*) AS n FROM requests
	        WHERE state <> 'signed' GROUP BY state) o),
	      (SELECT count(*) || ' ' || coalesce(min(idx), 0) || ' ' ||
	        coalesce(max(idx) + 1, 0) FROM log_entries),
	      (SELECT coalesce(max(size), 0) FROM log_checkpoints),
	      (SELECT count(*) FROM requests WHERE key = 'nightly' AND
	        state = 'signed')") || die "cannot read the database"
	IFS='|' read -r nsig nsigreq nsigned nown others entries ckpt signed1 \
	    <<<"$got"
	pg_check "signature entries, and distinct requests among them" \
	    "$nsig $nsigreq" "$nsig $nsig"
	pg_check "requests signed (every gateway phase) = signature entries" \
	    "$nsigned" "$nsig"
	pg_check "signed requests whose log index is their own signature entry" \
	    "$nown" "$nsig"
	pg_check "requests in another state than signed" "$others" none
	nent=${entries%% *}
	pg_check "log entries: count, first index, end (no gap)" "$entries" \
	    "$nent 0 $nent"
	pg_check "the newest checkpoint covers every entry" "$ckpt" "$nent"
	pg_check "requests signed during (7a) = 201 answers counted by both load generators" \
	    "$((signed1 - signed0))" \
	    "$(( $(field created "$pg2a_res") + $(field created "$pg2b_res") ))"
	for g in B A; do
		u=$pga_url; [ "$g" = B ] && u=$pgb_url
		if monitor "$u"; then
			echo "    ok: log monitor on $g: $(tail -n 1 "$work/monitor.out")"
		else
			echo "    FAILED: log monitor on $g: $(tail -n 1 "$work/monitor.out")"
			pg_fail+=("log monitor on $g: $(tail -n 1 "$work/monitor.out")")
		fi
	done

	# Anything the two gateways logged at warning level or worse, shown.
	pga_warnings=$(grep -c -E '^signgate (warning|error):' "$work/pg-a.log" || true)
	pgb_warnings=$(grep -c -E '^signgate (warning|error):' "$work/pg-b.log" || true)
	for g in a b; do
		if grep -q -E '^signgate (warning|error):' "$work/pg-$g.log"; then
			echo "    gateway ${g^^} logged (warnings and errors, the first 20):"
			grep -E '^signgate (warning|error):' "$work/pg-$g.log" |
			    head -n 20 | sed 's/^/      /'
		fi
	done
	stop_gateway "$pgb_pid"
	stop_gateway "$pga_pid"
	# Its data thrown away, the server need not write a checkpoint.
	pg_halt "$pg_dir" || die "PostgreSQL did not stop"
	pg_stop "$pg_dir" || die "PostgreSQL's directory was not removed"
	pg_dir=
	pg_ran=1
	echo "    (the PostgreSQL phases took $((SECONDS - pg_t0)) s)"
fi

echo "== 8. raw signing rate again (the machine may have changed meanwhile)"
run_phase p11-raw-after "${as_signer[@]}" "$build/tools/p11bench" \
    -p "$dev/pins/signgate-dev.pin" -t signgate-dev -k nightly \
    -T "$threads" -s "$((secs / 2 > 2 ? secs / 2 : 2))" -d 0
raw_after=$(field rate "$result")
raw_cpu_after=$(field cpu_us_per_sig "$result")
raw_before=$raw_rate
raw_rate=$(awk -v a="$raw_before" -v b="$raw_after" 'BEGIN { print (a + b) / 2 }')


# The raw benchmark's CPU per signature: the mean of (1) and (8).
csign_cpu=$(awk -v a="$raw_cpu_before" -v b="$raw_cpu_after" 'BEGIN { print (a + b) / 2 }')

# ---------------------------------------------------------------------------
# 9. The network-HSM model: the same token behind p11net.so.  The SQLite
# gateway of (2)-(5) is stopped first (the PostgreSQL phases did already).
for d in "${daemons[@]}"; do
	if [ "$d" = "$daemon_pid" ]; then
		stop_gateway "$daemon_pid"
	fi
done
echo "== 9. network-HSM model: SoftHSM behind p11net.so, $net_latency ms per signature, at most $net_inflight in flight"
# Read by p11net.so in p11bench and in the gateway's signer (which keeps
# the daemon's environment).  No stats file: it costs a rename per
# signature.
export SG_P11NET_MODULE=/usr/lib/softhsm/libsofthsm2.so
export SG_P11NET_LATENCY_MS=$net_latency SG_P11NET_IN_FLIGHT=$net_inflight
unset SG_P11NET_STATS
echo "== 9a. raw signing rate through it: nightly, $net_inflight threads (a session each), $secs s"
run_phase net-raw "${as_signer[@]}" "$build/tools/p11bench" -m "$p11net" \
    -p "$dev/pins/signgate-dev.pin" -t signgate-dev -k nightly \
    -T "$net_inflight" -s "$secs" -d 0
net_raw=$(field rate "$result")
echo "== 9b. a gateway on it ($net_threads threads, pkcs11.module = p11net.so)"
gw_config "$work/state-net" "$work/net.json" "" "$p11net" "$net_threads"
start_gateway "$work/net.json" "$work/net.log"
net_pid=$gw_pid net_url=$gw_url
echo "    $net_url (front pid $net_pid, signer pid ${gw_signer:-?})"
warmup net-warmup "$net_url" "$net_conns"
echo "== 9c. network-HSM gateway: POST /v1/requests on nightly, $net_conns connections, $secs s"
nb0=$(metric signgate_store_batches_total "$net_url")
nj0=$(metric signgate_store_jobs_total "$net_url")
nh0=$(metric signgate_hsm_sign_seconds_sum "$net_url")
nn0=$(metric signgate_hsm_sign_seconds_count "$net_url")
run_phase net-sign "${lg[@]}" sign -u "$net_url" -D "$dev" -c "$net_conns" \
    -v 100 -s "$secs"
net_sign_res=$result
nb1=$(metric signgate_store_batches_total "$net_url")
nj1=$(metric signgate_store_jobs_total "$net_url")
nh1=$(metric signgate_hsm_sign_seconds_sum "$net_url")
nn1=$(metric signgate_hsm_sign_seconds_count "$net_url")
net_gw=$(field rate "$net_sign_res")
net_half=$(awk -v r="$net_gw" 'BEGIN { h = int(r / 2); print h < 1 ? 1 : h }')
echo "== 9d. latency at half that rate: $net_half/s offered, $net_conns connections, $secs s"
run_phase net-latency "${lg[@]}" sign -u "$net_url" -D "$dev" \
    -c "$net_conns" -v 100 -s "$secs" -r "$net_half"
net_lat_res=$result
net_warnings=$(grep -c -E '^signgate (warning|error):' "$work/net.log" || true)
if [ "$net_warnings" -gt 0 ]; then
	echo "    the gateway logged (warnings and errors, the first 20):"
	grep -E '^signgate (warning|error):' "$work/net.log" | head -n 20 |
	    sed 's/^/      /'
fi
stop_gateway "$net_pid"

# ---------------------------------------------------------------------------
# 10. The transparency log, on its own (no daemon running).
log_res=
if [ "$log_entries" -gt 0 ]; then
	echo "== 10. transparency log: proofs and memory at $log_entries entries"
	# About 20 s per million entries on a quiet machine; 4 minutes of
	# slack on top of twice that.
	phase_limit=$((log_entries / 25000 + 240))
	run_phase log "$build/tools/bench_log" "$work/log" "$log_entries"
	phase_limit=
	log_res=$result
	rm -rf "$work/log"
else
	echo "== 10. transparency log skipped (BENCH_LOG_ENTRIES=0)"
fi

# The goals, then every figure.  One C_Sign on one thread, from the raw
# run: threads / rate.
csign_us=$(awk -v t="$threads" -v r="$raw_rate" 'BEGIN { printf "%.0f", t / r * 1e6 }')
summary=$(awk \
    -v threads="$threads" -v conns="$conns" -v secs="$secs" \
    -v raw="$raw_rate" -v rawb="$raw_before" -v rawa="$raw_after" \
    -v ho="$handover_rate" -v gw="$gw_rate" -v logkey="$logkey_rate" \
    -v late="$(field late "$life_res")" \
    -v gwdone="$gw_done" -v csign="$csign_us" -v csigncpu="$csign_cpu" \
    -v half="$half" -v gwerr="$(field errors "$sign_res")" \
    -v lp50="$(field p50_us "$lat_res")" -v lp99="$(field p99_us "$lat_res")" \
    -v lmax="$(field max_us "$lat_res")" -v lrate="$(field rate "$lat_res")" \
    -v lerr="$(field errors "$lat_res")" \
    -v sp50="$(field p50_us "$sign_res")" -v sp99="$(field p99_us "$sign_res")" \
    -v life="$(field rate "$life_res")" -v liferr="$(field errors "$life_res")" \
    -v lifep50="$(field p50_us "$life_res")" -v lifep99="$(field p99_us "$life_res")" \
    -v ver="$(( $(field verified "$sign_res") + $(field verified "$lat_res") + $(field verified "$life_res") ))" \
    -v nc="$(( $(field new_conns "$sign_res") + $(field new_conns "$lat_res") + $(field new_conns "$life_res") ))" \
    -v ccpu="$(field client_cpu_s "$sign_res")" \
    -v batches="$((b1 - b0))" -v jobs="$((j1 - j0))" \
    -v hsum="$(awk -v a="$h0" -v b="$h1" 'BEGIN { print b - a }')" \
    -v hcnt="$((n1 - n0))" \
    -v fcpu="$(( (f1 - f0) ))" -v scpu="$(( (s1 - s0) ))" -v tck="$tck" \
    -v reln="$rel_n" -v relrate="$rel_rate" -v relver="$rel_ver" \
    -v nlat="$net_latency" -v nfl="$net_inflight" -v nconns="$net_conns" \
    -v nthreads="$net_threads" -v nraw="$net_raw" -v ngw="$net_gw" \
    -v nsp50="$(field p50_us "$net_sign_res")" -v nsp99="$(field p99_us "$net_sign_res")" \
    -v nhalf="$net_half" -v nlrate="$(field rate "$net_lat_res")" \
    -v nlp50="$(field p50_us "$net_lat_res")" -v nlp99="$(field p99_us "$net_lat_res")" \
    -v nlmax="$(field max_us "$net_lat_res")" \
    -v nerr="$(( $(field errors "$net_sign_res") + $(field errors "$net_lat_res") ))" \
    -v nver="$(( $(field verified "$net_sign_res") + $(field verified "$net_lat_res") ))" \
    -v nnc="$(( $(field new_conns "$net_sign_res") + $(field new_conns "$net_lat_res") ))" \
    -v nbatches="$((nb1 - nb0))" -v njobs="$((nj1 - nj0))" \
    -v nhsum="$(awk -v a="$nh0" -v b="$nh1" 'BEGIN { print b - a }')" \
    -v nhcnt="$((nn1 - nn0))" -v nwarn="$net_warnings" \
    -v logn="$(field entries "$log_res")" \
    -v logapp="$(field append_s "$log_res")" \
    -v logrh="$(field rss_kib_half "$log_res")" -v logre="$(field rss_kib_end "$log_res")" \
    -v logi50="$(field inclusion_p50_us "$log_res")" \
    -v logi99="$(field inclusion_p99_us "$log_res")" \
    -v logimax="$(field inclusion_max_us "$log_res")" \
    -v logc50="$(field consistency_p50_us "$log_res")" \
    -v logc99="$(field consistency_p99_us "$log_res")" '
function verdict(ok) { return ok ? "met" : "**not met**" }
BEGIN {
	ratio = raw > 0 ? gw / raw : 0
	nratio = nraw > 0 ? ngw / nraw : 0
	fper = gwdone > 0 ? fcpu / tck / gwdone * 1e6 : 0
	sper = gwdone > 0 ? scpu / tck / gwdone * 1e6 : 0
	cpux = csigncpu > 0 ? (fper + sper) / csigncpu : 0
	perjob = batches > 0 ? jobs / batches : 0
	nperjob = nbatches > 0 ? njobs / nbatches : 0
	hmean = hcnt > 0 ? hsum / hcnt * 1e6 : 0
	nhmean = nhcnt > 0 ? nhsum / nhcnt * 1e6 : 0
	# The log grows flat when its memory at the end is within a tenth of
	# its memory at half its size.
	flat = logrh > 0 && logre <= logrh * 1.1

	printf "### Goals\n\n"
	printf "| goal | target | result | |\n|---|---|---|---|\n"
	printf "| gateway ÷ raw on the network-HSM model (%d ms, %d in flight) | ≥ 0.90 | %.3f (%.0f ÷ %.0f signatures/s) | %s |\n", nlat, nfl, nratio, ngw, nraw, verdict(nratio >= 0.90)
	printf "| gateway ÷ raw on SoftHSM, client on the same CPUs | ≥ 0.25 | %.3f (%.0f ÷ %.0f signatures/s) | %s |\n", ratio, gw, raw, verdict(ratio >= 0.25)
	printf "| daemon CPU per signature, front + signer, beside one C_Sign | ≤ 3 × C_Sign | %.0f + %.0f us = %.1f × C_Sign (%.0f us) | %s |\n", fper, sper, cpux, csigncpu, verdict(csigncpu > 0 && cpux <= 3)
	printf "| p99 at half load on the network-HSM model | ≤ the HSM latency + 3 ms (%d ms) | %.2f ms (p50 %.2f ms; %d/s offered) | %s |\n", nlat + 3, nlp99 / 1000, nlp50 / 1000, nhalf, verdict(nlp99 > 0 && nlp99 <= (nlat + 3) * 1000)
	printf "| store jobs per commit at %d connections | ≥ 8 | %.2f (network-HSM model gateway, %d commits) | %s |\n", nconns, nperjob, nbatches, verdict(nperjob >= 8)
	printf "| whole release lifecycles | ≥ 1,000/s | %.1f/s | %s |\n", life, verdict(life >= 1000)
	if (logn > 0)
		printf "| inclusion proof p99 at 10 million entries; memory as the log grows | ≤ 1 ms at 10 M; flat | p99 %.2f ms at %d entries; VmRSS %d KiB at half, %d KiB at the end | p99: %s; memory: %s |\n", logi99 / 1000, logn, logrh, logre, (logn >= 10000000 ? verdict(logi99 <= 1000) : "not measured at 10 M"), verdict(flat)
	else
		printf "| inclusion proof p99 at 10 million entries; memory as the log grows | ≤ 1 ms at 10 M; flat | not measured (BENCH_LOG_ENTRIES=0) | |\n"

	printf "\n### Every figure\n\n"
	printf "| measure | result |\n|---|---|\n"
	printf "| raw `C_Sign`, nightly ECDSA P-256, %d threads, in-process (deadline 0) | %.0f signatures/s (mean of %.0f before and %.0f after the gateway phases); CPU %.0f us per signature |\n", threads, raw, rawb, rawa, csigncpu
	printf "| the same through `sg_p11_sign`'"'"'s deadline hand-over (the daemon'"'"'s setting) | %.0f signatures/s |\n", ho
	logus = logkey > 0 ? 1e6 / logkey : 0
	printf "| raw `C_Sign` of the log key (Ed25519, one checkpoint signature), 1 thread | %.0f signatures/s (%.0f us each) |\n", logkey, logus
	printf "| gateway `POST /v1/requests` on nightly, %d daemon threads, %d keep-alive connections | %.0f signatures/s (p50 %.1f ms, p99 %.1f ms) |\n", threads, conns, gw, sp50 / 1000, sp99 / 1000
	printf "| latency at %d/s offered (half load; achieved %.0f/s) | p50 %.2f ms, p99 %.2f ms, max %.1f ms (one `C_Sign`: %.2f ms) |\n", half, lrate, lp50 / 1000, lp99 / 1000, lmax / 1000, csign / 1000
	printf "| whole lifecycles on release (create, 3 DSSE approvals, sign, log) | %.1f/s (p50 %.1f ms, p99 %.1f ms; %d late) |\n", life, lifep50 / 1000, lifep99 / 1000, late
	relratio = raw > 0 ? relrate / raw : 0
	printf "| a release of %d artifacts on release, quorum to the last signature logged | %.0f artifacts/s (ratio to raw `C_Sign` %.3f; %d sampled signatures verified) |\n", reln, relrate, relratio, relver
	printf "| errors (any status but 201/200-signed, failed checks) | %d |\n", gwerr + lerr + liferr
	printf "| signatures verified against the key files | %d |\n", ver
	printf "| connections opened after warm-up | %d |\n", nc
	printf "| during (2): store jobs per commit (group commit) | %.2f (%d commits, %d jobs) |\n", perjob, batches, jobs
	printf "| during (2): mean HSM call seen by the front (signer IPC + `C_Sign`) | %.0f us |\n", hmean
	printf "| during (2): daemon CPU per signature, front + signer process | %.0f + %.0f us |\n", fper, sper
	printf "| during (2): load generator CPU | %.2f s of %d s |\n", ccpu, secs
	printf "| network-HSM model: raw `C_Sign` through p11net.so (%d ms, at most %d in flight), %d threads | %.0f signatures/s (at most %.0f) |\n", nlat, nfl, nfl, nraw, (nlat > 0 ? nfl * 1000 / nlat : 0)
	printf "| network-HSM model: gateway `POST /v1/requests` on nightly, %d daemon threads, %d keep-alive connections | %.0f signatures/s (p50 %.1f ms, p99 %.1f ms) |\n", nthreads, nconns, ngw, nsp50 / 1000, nsp99 / 1000
	printf "| network-HSM model: latency at %d/s offered (half load; achieved %.0f/s) | p50 %.2f ms, p99 %.2f ms, max %.1f ms |\n", nhalf, nlrate, nlp50 / 1000, nlp99 / 1000, nlmax / 1000
	printf "| network-HSM model: store jobs per commit; mean HSM call seen by the front | %.2f (%d commits, %d jobs); %.0f us |\n", nperjob, nbatches, njobs, nhmean
	printf "| network-HSM model: errors; signatures verified; connections opened after warm-up; gateway warnings logged | %d; %d; %d; %d |\n", nerr, nver, nnc, nwarn
	if (logn > 0) {
		printf "| transparency log: %d entries appended | %.1f s; VmRSS %d KiB at half, %d KiB at the end |\n", logn, logapp, logrh, logre
		printf "| transparency log: inclusion proof at %d entries | p50 %.0f us, p99 %.0f us, max %.0f us |\n", logn, logi50, logi99, logimax
		printf "| transparency log: consistency proof to %d entries | p50 %.0f us, p99 %.0f us |\n", logn, logc50, logc99
	}
}')

# The PostgreSQL rows of the second table.
if [ "$pg_ran" = 1 ]; then
	pg_errors=$(( $(field errors "$pg1_sign_res") + $(field errors "$pg1_life_res") + $(field errors "$pg2a_res") + $(field errors "$pg2b_res") ))
	if [ ${#pg_fail[@]} -eq 0 ]; then
		pg_checks="met: no request signed twice (every signature entry names a request of its own), requests signed = signature entries, and during (7) = the 201 answers counted; log without gaps, the newest checkpoint covering it; \`signgate log monitor\` consistent on A, B, A"
	else
		pg_checks="**failed**: $(printf '%s; ' "${pg_fail[@]}")"
	fi
	summary+=$'\n'$(awk \
	    -v threads="$threads" -v conns="$conns" -v raw="$raw_rate" \
	    -v ca="$conns_a" -v cb="$conns_b" \
	    -v one="$(field rate "$pg1_sign_res")" \
	    -v onep50="$(field p50_us "$pg1_sign_res")" -v onep99="$(field p99_us "$pg1_sign_res")" \
	    -v life="$(field rate "$pg1_life_res")" -v lifelate="$(field late "$pg1_life_res")" \
	    -v lifep50="$(field p50_us "$pg1_life_res")" -v lifep99="$(field p99_us "$pg1_life_res")" \
	    -v ra="$(field rate "$pg2a_res")" -v rb="$(field rate "$pg2b_res")" \
	    -v na="$(field completed "$pg2a_res")" -v nb="$(field completed "$pg2b_res")" \
	    -v ap99="$(field p99_us "$pg2a_res")" -v bp99="$(field p99_us "$pg2b_res")" \
	    -v late_a="$(field start_late_ms "$pg2a_res")" -v late_b="$(field start_late_ms "$pg2b_res")" \
	    -v b1="$((pb1 - pb0))" -v j1="$((pj1 - pj0))" \
	    -v b2a="$((qb1 - qb0))" -v j2a="$((qj1 - qj0))" \
	    -v b2b="$((rb1 - rb0))" -v j2b="$((rj1 - rj0))" \
	    -v errs="$pg_errors" -v checks="$pg_checks" \
	    -v ver="$(( $(field verified "$pg1_sign_res") + $(field verified "$pg1_life_res") + $(field verified "$pg2a_res") + $(field verified "$pg2b_res") ))" \
	    -v nc="$(( $(field new_conns "$pg1_sign_res") + $(field new_conns "$pg1_life_res") + $(field new_conns "$pg2a_res") + $(field new_conns "$pg2b_res") ))" \
	    -v wa="$pga_warnings" -v wb="$pgb_warnings" \
	    -v lww="${lockwait% *}" -v lwn="${lockwait#* }" '
function r(x) { return raw > 0 ? x / raw : 0 }
function pj(j, b) { return b > 0 ? j / b : 0 }
BEGIN {
	two = ra + rb
	share = na + nb > 0 ? na / (na + nb) : 0
	printf "| PostgreSQL, one gateway: `POST /v1/requests` on nightly, %d daemon threads, %d keep-alive connections | %.0f signatures/s (p50 %.1f ms, p99 %.1f ms) |\n", threads, conns, one, onep50 / 1000, onep99 / 1000
	printf "| ratio PostgreSQL one gateway / raw `C_Sign` | %.3f |\n", r(one)
	printf "| PostgreSQL, one gateway: whole lifecycles on release | %.1f/s (p50 %.1f ms, p99 %.1f ms; %d late); ratio to raw `C_Sign` %.4f |\n", life, lifep50 / 1000, lifep99 / 1000, lifelate, r(life)
	printf "| PostgreSQL, two gateways on one database, both at once (%d + %d connections, %d threads each) | %.0f signatures/s (A %.0f/s, B %.0f/s; share of A %.2f; p99 %.1f and %.1f ms; %.2f x one gateway) |\n", ca, cb, threads, two, ra, rb, share, ap99 / 1000, bp99 / 1000, (one > 0 ? two / one : 0)
	printf "| ratio PostgreSQL two gateways / raw `C_Sign` | %.3f |\n", r(two)
	printf "| PostgreSQL: store jobs per commit, one gateway; two gateways A, B | %.2f (%d commits); %.2f (%d), %.2f (%d) |\n", pj(j1, b1), b1, pj(j2a, b2a), b2a, pj(j2b, b2b), b2b
	printf "| PostgreSQL, two gateways: a gateway'"'"'s writer waiting for a lock (the log'"'"'s head, held by the other'"'"'s batch), sampled 20 times a second during (7) | %.0f%% of %d samples |\n", (lwn > 0 ? 100 * lww / lwn : 0), lwn
	printf "| PostgreSQL: the database checked after (7) | %s |\n", checks
	printf "| PostgreSQL errors (any status but 201/200-signed, failed checks) | %d |\n", errs
	printf "| PostgreSQL: signatures verified against the key files; connections opened after warm-up; gateway warnings logged (A, B) | %d; %d; %d, %d |\n", ver, nc, wa, wb
}')
	pg_json=$(jq -n \
	    --arg version "$pg_version" \
	    --argjson raw "$raw_rate" \
	    --argjson one "$(field rate "$pg1_sign_res")" \
	    --argjson life "$(field rate "$pg1_life_res")" \
	    --argjson ra "$(field rate "$pg2a_res")" --argjson rb "$(field rate "$pg2b_res")" \
	    --argjson na "$(field completed "$pg2a_res")" --argjson nb "$(field completed "$pg2b_res")" \
	    --argjson created "$(( $(field created "$pg2a_res") + $(field created "$pg2b_res") ))" \
	    --argjson signed "$((signed1 - signed0))" \
	    --argjson lww "${lockwait% *}" --argjson lwn "${lockwait#* }" \
	    --argjson errors "$pg_errors" \
	    --argjson failed "$(if [ ${#pg_fail[@]} -eq 0 ]; then echo '[]'; else printf '%s\n' "${pg_fail[@]}" | jq -R . | jq -s .; fi)" '{
	      server_version: $version,
	      one: {sign_per_s: $one, sign_ratio: ($one / $raw),
	        lifecycles_per_s: $life, lifecycle_ratio: ($life / $raw)},
	      two: {sign_per_s: ($ra + $rb), sign_ratio: (($ra + $rb) / $raw),
	        a_per_s: $ra, b_per_s: $rb,
	        share_a: (if $na + $nb > 0 then $na / ($na + $nb) else 0 end),
	        vs_one: (if $one > 0 then ($ra + $rb) / $one else 0 end),
	        lock_wait_share: (if $lwn > 0 then $lww / $lwn else null end),
	        signed: $signed, answered_201: $created,
	        consistent: ($failed | length == 0), failed_checks: $failed},
	      errors: $errors}')
else
	summary+=$'\n'"| PostgreSQL phases | skipped (BENCH_NO_PG=1) |"
	pg_json=null
fi

machine=$(printf '%s\n' \
    "- CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $ncpu CPUs (nproc)" \
    "- memory: $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)" \
    "- kernel: $(uname -sr); $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")" \
    "- state directory on: $(df -T "$work" | awk 'NR == 2 { print $2 " (" $1 ")" }')" \
    "- load average before the run: $loadavg" \
    "- source: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' with local changes')" \
    "- date: $(date -u +%Y-%m-%dT%H:%MZ)" \
    "- command: \`$cmdline\` ($threads daemon threads and \`C_Sign\` threads, $conns connections, $secs s per phase; daemon warnings logged: $daemon_warnings)" \
    "- network-HSM model: SoftHSM behind tests/p11wrap/p11net.so, $net_latency ms per signature, at most $net_inflight in flight; its gateway: $net_threads threads, $net_conns connections")
if [ "$pg_ran" = 1 ]; then
	machine+=$'\n'"- PostgreSQL: $pg_version, a server of this run (tests/pg.sh: Unix socket, fsync and synchronous_commit on, shared_buffers 16MB), its data on the same file system; the gateways on it: the dev configuration, $threads threads each"
fi

# per_sig TICKS: clock ticks of CPU over the signatures of (2), in us.
per_sig() {
	awk -v t="$1" -v k="$tck" -v n="$gw_done" \
	    'BEGIN { printf "%.1f", (n > 0 ? t / k / n * 1e6 : 0) }'
}
# ratio A B: A / B, 0 when B is 0.
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", (b > 0 ? a / b : 0) }'
}
if [ -n "$log_res" ]; then
	log_json=$(jq -n \
	    --argjson n "$(field entries "$log_res")" \
	    --argjson i99 "$(field inclusion_p99_us "$log_res")" \
	    --argjson c99 "$(field consistency_p99_us "$log_res")" \
	    --argjson rh "$(field rss_kib_half "$log_res")" \
	    --argjson re "$(field rss_kib_end "$log_res")" \
	    '{entries: $n, inclusion_p99_us: $i99, consistency_p99_us: $c99,
	      rss_kib_half: $rh, rss_kib_end: $re}')
else
	log_json=null
fi
jq -n --argjson raw "$raw_rate" --argjson gw "$gw_rate" \
    --argjson ratio "$(ratio "$gw_rate" "$raw_rate")" \
    --argjson front "$(per_sig $((f1 - f0)))" \
    --argjson signer "$(per_sig $((s1 - s0)))" \
    --argjson csign "$csign_cpu" \
    --argjson nlat "$net_latency" --argjson nfl "$net_inflight" \
    --argjson nraw "$net_raw" --argjson ngw "$net_gw" \
    --argjson nratio "$(ratio "$net_gw" "$net_raw")" \
    --argjson np50 "$(awk -v u="$(field p50_us "$net_lat_res")" 'BEGIN { print u / 1000 }')" \
    --argjson np99 "$(awk -v u="$(field p99_us "$net_lat_res")" 'BEGIN { print u / 1000 }')" \
    --argjson life "$(field rate "$life_res")" \
    --argjson jpc "$(ratio $((nj1 - nj0)) $((nb1 - nb0)))" \
    --argjson conns "$(( $(field new_conns "$sign_res") + $(field new_conns "$lat_res") + $(field new_conns "$life_res") + $(field new_conns "$net_sign_res") + $(field new_conns "$net_lat_res") ))" \
    --argjson log "$log_json" \
    --argjson reln "$rel_n" --argjson relrate "$rel_rate" \
    --argjson relver "$rel_ver" \
    --argjson relratio "$(ratio "$rel_rate" "$raw_rate")" \
    --arg source "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    --arg date "$(date -u +%Y-%m-%dT%H:%MZ)" --argjson threads "$threads" \
    --argjson pg "$pg_json" '{
      source: $source, date: $date, threads: $threads,
      softhsm: {raw_per_s: $raw, gateway_per_s: $gw, ratio: $ratio,
        cpu_us_per_signature: {front: $front, signer: $signer,
          c_sign: $csign}},
      netmodel: {latency_ms: $nlat, in_flight: $nfl, raw_per_s: $nraw,
        gateway_per_s: $ngw, ratio: $nratio,
        half_load: {p50_ms: $np50, p99_ms: $np99}},
      lifecycles_per_s: $life,
      jobs_per_commit: $jpc,
      connections: $conns,
      log: $log,
      releases: {artifacts: $reln, artifacts_per_s: $relrate,
        ratio_to_raw: $relratio, verified_sample: $relver},
      postgresql: $pg}' \
    >"$build/bench.json"

echo
echo "== summary"
echo "$summary"
echo
echo "$machine"

if [ "${BENCH_NO_DOC:-0}" != 1 ]; then
	section=$(printf '%s\n\n%s\n\n%s\n' "## Results" "$machine" "$summary")
	begin='<!-- bench:results:begin -->'
	end='<!-- bench:results:end -->'
	if [ -f "$doc" ] && grep -qF "$begin" "$doc" && grep -qF "$end" "$doc"; then
		SECTION=$section awk -v b="$begin" -v e="$end" '
		    $0 == b { print; print ENVIRON["SECTION"]; skip = 1; next }
		    $0 == e { skip = 0 }
		    !skip { print }' "$doc" >"$doc.tmp"
		mv "$doc.tmp" "$doc"
	else
		printf '# Benchmarks\n\n%s\n%s\n%s\n' "$begin" "$section" "$end" >>"$doc"
	fi
	echo
	echo "results written to docs/BENCHMARKS.md"
fi
# A database that failed its checks fails the run, after the figures.
if [ ${#pg_fail[@]} -gt 0 ]; then
	die "the PostgreSQL checks failed: $(printf '%s; ' "${pg_fail[@]}")"
fi
