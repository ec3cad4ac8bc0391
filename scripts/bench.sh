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
#      signature logged, as artifacts per second and as a ratio to (1).
#
# The figures also go to $BUILD/bench.json (gateway.*, raw.*, releases.*).
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
# BENCH_PROFILE=DIR (also record `perf record -g` of the daemon during an
# extra sign phase into DIR; needs perf), BENCH_NO_DOC=1 (do not touch
# docs/BENCHMARKS.md).
#
# Loopback only; every phase is bounded in time (`timeout`), the whole run
# takes about 5 x BENCH_SECONDS plus 15 s (6 x with BENCH_PROFILE).
# Never part of `make test`.
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
cmdline="$cmdline${BENCH_THREADS:+ BENCH_THREADS=$BENCH_THREADS}${BENCH_SECONDS:+ BENCH_SECONDS=$BENCH_SECONDS}${BENCH_CONNS:+ BENCH_CONNS=$BENCH_CONNS}${BENCH_PROFILE:+ BENCH_PROFILE=$BENCH_PROFILE}"

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
limit=$((secs * 3 + 60))        # seconds any one phase may take

for tool in jq curl timeout; do
	command -v "$tool" >/dev/null || die "$tool not found"
done

echo "== gateway benchmark: building and checking the dev environment"
# Under make (mk/bench.mk) the programs are prerequisites, built for the
# right variant (SAN=1 included); run alone, build the plain variant.
if [ -z "${MAKELEVEL:-}" ] && [ "$build" = "$root/build" ]; then
	${MAKE:-make} --no-print-directory all build/tools/loadgen \
	    build/tools/p11bench >/dev/null
fi
for prog in signgated tools/loadgen tools/p11bench; do
	[ -x "$build/$prog" ] || die "$build/$prog not built (make unit)"
done
scripts/devenv.sh >/dev/null
# shellcheck source=/dev/null
. "$dev/env.sh"

work=$(mktemp -d /tmp/signgate-bench.XXXXXX)
# Run by root, the daemon's front runs as its own user and needs the way in.
chmod 0711 "$work"
daemon_pid=
cleanup() {
	if [ -n "$daemon_pid" ]; then
		kill -TERM "$daemon_pid" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$daemon_pid" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "$daemon_pid" 2>/dev/null || true
		wait "$daemon_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

# field NAME LINE: the value of NAME=... in a RESULT line.
field() {
	sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"
}

# run_phase LOGNAME CMD...: runs a measuring tool under a time bound,
# shows its human lines and returns its RESULT line in $result.
result=
run_phase() {
	local name=$1; shift
	local rc=0
	timeout "$limit" "$@" >"$work/$name.out" 2>&1 || rc=$?
	grep -v '^RESULT' "$work/$name.out" | sed 's/^/    /'
	result=$(grep '^RESULT' "$work/$name.out" | tail -n 1)
	# Errors under load are results (counted in the table); a tool that
	# could not measure at all stops the benchmark.
	[ -n "$result" ] || die "$name failed (exit $rc)"
}

# metric NAME: a value from the daemon's /metrics (loopback, no identity).
metric() {
	curl -sS --max-time 10 --cacert "$dev/tls/ca.pem" "$url/metrics" |
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
run_phase p11-deadline "${as_signer[@]}" "$build/tools/p11bench" \
    -p "$dev/pins/signgate-dev.pin" -t signgate-dev -k nightly \
    -T "$threads" -s "$((secs / 2 > 2 ? secs / 2 : 2))" -d 5000
handover_rate=$(field rate "$result")
# One checkpoint signature: the log key (Ed25519) on one thread.
run_phase p11-logkey "${as_signer[@]}" "$build/tools/p11bench" \
    -p "$dev/pins/signgate-dev.pin" -t signgate-dev -k log -T 1 -s 3 -d 0
logkey_rate=$(field rate "$result")

echo "== starting signgated ($threads threads) on a free loopback port"
mkdir -p "$work/state"
jq --arg dev "$dev" --arg state "$work/state" --argjson threads "$threads" '
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
    .per_ip_unauthenticated_limit = 0' "$dev/signgated.json" \
    >"$work/signgated.json"
"$build/signgated" -c "$work/signgated.json" -p 0 >"$work/daemon.log" 2>&1 &
daemon_pid=$!
port=
for _ in $(seq 1 200); do
	port=$(sed -n 's/.*listening on https:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' \
	    "$work/daemon.log" | tail -n 1)
	[ -n "$port" ] && break
	kill -0 "$daemon_pid" 2>/dev/null ||
	    { cat "$work/daemon.log"; daemon_pid=; die "signgated exited"; }
	sleep 0.05
done
[ -n "$port" ] || { cat "$work/daemon.log"; die "signgated did not start"; }
url="https://127.0.0.1:$port"
signer_pid=$(pgrep -P "$daemon_pid" | head -n 1 || true)
echo "    $url (front pid $daemon_pid, signer pid ${signer_pid:-?})"

lg=("$build/tools/loadgen")
common=(-u "$url" -D "$dev" -c "$conns" -v 100)

echo "== warm-up: 2 s of signing (not counted)"
run_phase warmup "${lg[@]}" sign "${common[@]}" -s 2 >/dev/null

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

echo "== 6. raw signing rate again (the machine may have changed meanwhile)"
run_phase p11-raw-after "${as_signer[@]}" "$build/tools/p11bench" \
    -p "$dev/pins/signgate-dev.pin" -t signgate-dev -k nightly \
    -T "$threads" -s "$((secs / 2 > 2 ? secs / 2 : 2))" -d 0
raw_after=$(field rate "$result")
raw_before=$raw_rate
raw_rate=$(awk -v a="$raw_before" -v b="$raw_after" 'BEGIN { print (a + b) / 2 }')

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

# One C_Sign on one thread, from the raw run: threads / rate.
csign_us=$(awk -v t="$threads" -v r="$raw_rate" 'BEGIN { printf "%.0f", t / r * 1e6 }')
summary=$(awk \
    -v threads="$threads" -v conns="$conns" -v secs="$secs" \
    -v raw="$raw_rate" -v rawb="$raw_before" -v rawa="$raw_after" \
    -v ho="$handover_rate" -v gw="$gw_rate" -v logkey="$logkey_rate" \
    -v late="$(field late "$life_res")" \
    -v gwdone="$gw_done" -v csign="$csign_us" -v half="$half" \
    -v gwerr="$(field errors "$sign_res")" \
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
    -v reln="$rel_n" -v relrate="$rel_rate" -v relver="$rel_ver" '
function verdict(ok) { return ok ? "met" : "**not met**" }
BEGIN {
	ratio = raw > 0 ? gw / raw : 0
	p99goal = 2000 + csign
	printf "| measure | result | target |\n|---|---|---|\n"
	printf "| raw `C_Sign`, nightly ECDSA P-256, %d threads, in-process (deadline 0) | %.0f signatures/s (mean of %.0f before and %.0f after the gateway phases) | |\n", threads, raw, rawb, rawa
	printf "| the same through `sg_p11_sign`'"'"'s deadline hand-over (the daemon'"'"'s setting) | %.0f signatures/s | |\n", ho
	logus = logkey > 0 ? 1e6 / logkey : 0
	printf "| raw `C_Sign` of the log key (Ed25519, one checkpoint signature), 1 thread | %.0f signatures/s (%.0f us each) | |\n", logkey, logus
	printf "| gateway `POST /v1/requests` on nightly, %d daemon threads, %d keep-alive connections | %.0f signatures/s (p50 %.1f ms, p99 %.1f ms) | |\n", threads, conns, gw, sp50 / 1000, sp99 / 1000
	printf "| ratio gateway / raw `C_Sign` | %.3f | >= 0.75: %s |\n", ratio, verdict(ratio >= 0.75)
	printf "| latency at %d/s offered (half load; achieved %.0f/s) | p50 %.2f ms, p99 %.2f ms, max %.1f ms | p99 <= 2 ms + one `C_Sign` (%.2f ms): %s |\n", half, lrate, lp50 / 1000, lp99 / 1000, lmax / 1000, p99goal / 1000, verdict(lp99 <= p99goal)
	printf "| whole lifecycles on release (create, 3 DSSE approvals, sign, log) | %.1f/s (p50 %.1f ms, p99 %.1f ms; %d late) | >= 1000/s: %s |\n", life, lifep50 / 1000, lifep99 / 1000, late, verdict(life >= 1000)
	relratio = raw > 0 ? relrate / raw : 0
	printf "| a release of %d artifacts on release, quorum to the last signature logged | %.0f artifacts/s (ratio to raw `C_Sign` %.3f; %d sampled signatures verified) | >= 0.5 of raw: %s |\n", reln, relrate, relratio, relver, verdict(relratio >= 0.5)
	printf "| errors (any status but 201/200-signed, failed checks) | %d | 0: %s |\n", gwerr + lerr + liferr, verdict(gwerr + lerr + liferr == 0)
	printf "| signatures verified against the key files | %d | |\n", ver
	printf "| connections opened after warm-up | %d | |\n", nc
	perjob = batches > 0 ? jobs / batches : 0
	hmean = hcnt > 0 ? hsum / hcnt * 1e6 : 0
	fper = gwdone > 0 ? fcpu / tck / gwdone * 1e6 : 0
	sper = gwdone > 0 ? scpu / tck / gwdone * 1e6 : 0
	printf "| during (2): store jobs per commit (group commit) | %.2f (%d commits, %d jobs) | |\n", perjob, batches, jobs
	printf "| during (2): mean HSM call seen by the front (signer IPC + `C_Sign`) | %.0f us | |\n", hmean
	printf "| during (2): daemon CPU per signature, front + signer process | %.0f + %.0f us | |\n", fper, sper
	printf "| during (2): load generator CPU | %.2f s of %d s | |\n", ccpu, secs
}')

machine=$(printf '%s\n' \
    "- CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $ncpu CPUs (nproc)" \
    "- memory: $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)" \
    "- kernel: $(uname -sr); $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")" \
    "- state directory on: $(df -T "$work" | awk 'NR == 2 { print $2 " (" $1 ")" }')" \
    "- load average before the run: $loadavg" \
    "- source: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' with local changes')" \
    "- date: $(date -u +%Y-%m-%dT%H:%MZ)" \
    "- command: \`$cmdline\` ($threads daemon threads and \`C_Sign\` threads, $conns connections, $secs s per phase; daemon warnings logged: $daemon_warnings)")

jq -n --argjson raw "$raw_rate" --argjson gw "$gw_rate" \
    --argjson life "$(field rate "$life_res")" --argjson reln "$rel_n" \
    --argjson relrate "$rel_rate" --argjson relver "$rel_ver" \
    --arg source "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    --arg date "$(date -u +%Y-%m-%dT%H:%MZ)" --argjson threads "$threads" '{
      source: $source, date: $date, threads: $threads,
      raw: {c_sign_per_s: $raw},
      gateway: {signatures_per_s: $gw, ratio_to_raw: ($gw / $raw),
        lifecycles_per_s: $life},
      releases: {artifacts: $reln, artifacts_per_s: $relrate,
        ratio_to_raw: ($relrate / $raw), verified_sample: $relver}}' \
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
