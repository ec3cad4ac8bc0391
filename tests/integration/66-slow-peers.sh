# Peers without a client certificate cannot hold connections: deadlines
# for the handshake, the first request and each request; caps on
# unauthenticated connections, globally and per address, where a new
# connection displaces the oldest slow one; a budget of its own for reads
# of the public log.  Each attack runs against a real daemon on loopback,
# bounded in connections and time, while the `ci` principal keeps asking,
# and each of its answers must come within a few seconds.  Also: the client
# certificate is verified once per connection, not on every request.
. "$(dirname "$0")/lib.sh"

HS=3 FR=5 RQ=4          # handshake, first request, request deadlines (s)
SLACK_MS=2000           # reaper tick, scheduling, a loaded machine
ANSWER_MS=3000          # "within a few seconds"
write_config ".handshake_timeout = $HS | .first_request_timeout = $FR |
    .request_timeout = $RQ | .rate_limit = {\"per_second\": 0, \"burst\": 1} |
    .anonymous_rate_limit = {\"per_second\": 5, \"burst\": 10}"
start_daemon || { not_ok "daemon starts"; finish; exit 1; }
SLOW="$BUILD/tools/slowpeers"

# metric NAME: a value from /metrics (the line that starts with NAME).
metric() {
	curl -sS --max-time 30 --cacert "$DEV/tls/ca.pem" "$URL/metrics" |
	    awk -v n="$1" 'index($0, n " ") == 1 { print $2 }'
}

# probe SECONDS OUT [curl args]: as ci, until SECONDS pass, asks for the
# keys, creates a request (signed at once) and reads the checkpoint without
# a certificate.  OUT gets "answers N bad N worst_ms N".  A 429 for the
# log read counts as bad unless LOG429 is set (its budget spent on purpose).
PROBE_N=0
LOG429=
probe() {
	local secs=$1 out=$2; shift 2
	local end=$(( $(date +%s) + secs )) n=0 bad=0 worst=0 r st ms i
	while [ "$(date +%s)" -lt "$end" ]; do
		PROBE_N=$((PROBE_N + 1))
		for i in keys sign log; do
			case $i in
			keys) r=$(curl -sS --max-time 30 --cacert "$DEV/tls/ca.pem" \
			    --cert "$DEV/tls/ci.pem" --key "$DEV/tls/ci.key" "$@" \
			    -o /dev/null -w '%{http_code} %{time_total}' \
			    "$URL/v1/keys" 2>/dev/null) ;;
			sign) r=$(curl -sS --max-time 30 --cacert "$DEV/tls/ca.pem" \
			    --cert "$DEV/tls/ci.pem" --key "$DEV/tls/ci.key" "$@" \
			    -H 'Content-Type: application/json' --data-binary \
			    "{\"key\":\"nightly\",\"digest\":{\"algorithm\":\"sha256\",\"value\":\"$(printf '%064x' $((PROBE_N + $$ * 1000)))\"},\"artifact\":{\"name\":\"p\"}}" \
			    -o /dev/null -w '%{http_code} %{time_total}' \
			    "$URL/v1/requests" 2>/dev/null) ;;
			log) r=$(curl -sS --max-time 30 --cacert "$DEV/tls/ca.pem" \
			    "$@" -o /dev/null -w '%{http_code} %{time_total}' \
			    "$URL/v1/log/checkpoint" 2>/dev/null) ;;
			esac
			st=${r%% *}
			ms=$(awk -v t="${r#* }" 'BEGIN { printf "%d", t * 1000 }')
			n=$((n + 1))
			case "$i:$st" in
			keys:200|sign:201|log:200) ;;
			log:429) [ -n "$LOG429" ] ||
			    { bad=$((bad + 1)); echo "  $i: '$r'" >&2; } ;;
			*) bad=$((bad + 1)); echo "  $i: '$r'" >&2 ;;
			esac
			[ "$ms" -gt "$worst" ] && worst=$ms
		done
		sleep 0.2
	done
	echo "answers $n bad $bad worst_ms $worst" >"$out"
}

# field NAME FILE: the number after NAME in a "name value ..." line.
field() { awk -v n="$1" '{ for (i = 1; i < NF; i++) if ($i == n) print $(i + 1) }' "$2"; }

# --- one slow peer of each kind, each from its own address ----------------
# (no reconnection: each connection is measured once)
"$SLOW" -p "$PORT" -m hello -a 127.0.1.1 -c 4 -t 9 -r 60000 >"$T_DIR/p.hello" &
p1=$!
"$SLOW" -p "$PORT" -m idle -a 127.0.1.2 -c 4 -t 9 -r 60000 >"$T_DIR/p.idle" &
p2=$!
"$SLOW" -p "$PORT" -m headers -a 127.0.1.3 -c 4 -t 9 -r 60000 >"$T_DIR/p.headers" &
p3=$!
"$SLOW" -p "$PORT" -m headers -a 127.0.1.4 -c 4 -t 9 -r 60000 \
    -C "$DEV/tls/ci.pem" -K "$DEV/tls/ci.key" >"$T_DIR/p.headers-ci" &
p4=$!
"$SLOW" -p "$PORT" -m body -a 127.0.1.5 -c 4 -t 9 -r 60000 >"$T_DIR/p.body" &
p5=$!
"$SLOW" -p "$PORT" -m body -a 127.0.1.6 -c 4 -t 9 -r 60000 \
    -C "$DEV/tls/ci.pem" -K "$DEV/tls/ci.key" >"$T_DIR/p.body-ci" &
p6=$!
wait $p1 $p2 $p3 $p4 $p5 $p6
# held FILE: the longest a connection was held, less how late the tool
# may have seen the close (its longest loop pass, on a busy machine).
held() {
	local h l
	h=$(field max_held_ms "$1"); l=$(field max_lag_ms "$1")
	echo $(( ${h:-999999} - ${l:-0} ))
}
held_check() {
	local name=$1 file=$2 lo=$3 hi=$4 c h
	c=$(field closed "$file"); h=$(held "$file")
	check "$name: the server closed all 4 within $((hi / 1000)) s ($(cat "$file"))" \
	    test "${c:-0}" -eq 4 -a "$(field max_held_ms "$file")" -ge "$lo" -a "$h" -le "$hi"
}
held_check "a TLS handshake trickled byte by byte" "$T_DIR/p.hello" \
    $((HS * 1000 - 500)) $((HS * 1000 + SLACK_MS))
held_check "TLS done, then no request at all" "$T_DIR/p.idle" \
    $((FR * 1000 - 500)) $((FR * 1000 + SLACK_MS))
held_check "request headers that never end" "$T_DIR/p.headers" \
    $((FR * 1000 - 500)) $((FR * 1000 + SLACK_MS))
held_check "request headers that never end, with ci's certificate" \
    "$T_DIR/p.headers-ci" $((FR * 1000 - 500)) $((FR * 1000 + SLACK_MS))
held_check "a body trickled without a certificate (401 at once)" \
    "$T_DIR/p.body" 0 $((FR * 1000 - 1500))
held_check "a body trickled with ci's certificate (request deadline)" \
    "$T_DIR/p.body-ci" $((RQ * 1000 - 500)) $((RQ * 1000 + SLACK_MS))
d_hs=$(metric 'signgate_http_deadline_closes_total{deadline="handshake"}')
d_fr=$(metric 'signgate_http_deadline_closes_total{deadline="first_request"}')
d_rq=$(metric 'signgate_http_deadline_closes_total{deadline="request"}')
# 20 of the 24 were closed at a deadline (the 4 anonymous bodies by their
# 401); a handshake slowed down by a busy machine counts as such.
check "the deadlines are counted in /metrics (handshake $d_hs, first request $d_fr, request $d_rq)" \
    test "${d_hs:-0}" -ge 4 -a "${d_fr:-0}" -ge 1 -a "${d_rq:-0}" -ge 1 -a \
    $(( ${d_hs:-0} + ${d_fr:-0} + ${d_rq:-0} )) -eq 20

# --- the flood: 17 addresses x 64 connections without a certificate ---------
# Each completes TLS and trickles request headers (or, on some addresses,
# the handshake itself), and reconnects a second after the server closes
# it, for 20 s.  Meanwhile ci asks again and again.
"$SLOW" -p "$PORT" -m headers -a 127.0.0.2 -n 9 -c 64 -t 20 -i 1000 -r 1000 \
    >"$T_DIR/flood.tls" &
f1=$!
"$SLOW" -p "$PORT" -m hello -a 127.0.0.11 -n 8 -c 64 -t 20 -i 1000 -r 1000 \
    >"$T_DIR/flood.hello" &
f2=$!
sleep 3
probe 15 "$T_DIR/probe.flood"
wait $f1 $f2
read -r _ n _ bad _ worst <"$T_DIR/probe.flood"
check "during the flood ci, and anonymous log reads, got every answer ($n answers, $bad bad)" \
    test "$n" -ge 9 -a "$bad" -eq 0
check "... each within $((ANSWER_MS / 1000)) s (worst ${worst} ms)" test "$worst" -le $ANSWER_MS
for f in tls hello; do
	h=$(held "$T_DIR/flood.$f"); o=$(field opened "$T_DIR/flood.$f")
	check "the flood's connections ($f) were each held at most $((FR + SLACK_MS / 1000)) s ($(cat "$T_DIR/flood.$f"))" \
	    test "${o:-0}" -ge 512 -a "$h" -le $((FR * 1000 + SLACK_MS))
done
check "the flood was cut down by evictions and deadlines" test \
    "$(metric 'signgate_http_connections_total{outcome="evicted"}')" -gt 0

# --- 64 slow connections from ci's own address --------------------------------
"$SLOW" -p "$PORT" -m headers -a 127.0.0.30 -c 64 -t 12 -i 1000 -r 1000 \
    >"$T_DIR/same.out" &
f1=$!
sleep 3
probe 8 "$T_DIR/probe.same" --interface 127.0.0.30
wait $f1
read -r _ n _ bad _ worst <"$T_DIR/probe.same"
check "64 slow peers on ci's address do not lock ci out ($n answers, $bad bad)" \
    test "$n" -ge 6 -a "$bad" -eq 0
check "... each within $((ANSWER_MS / 1000)) s (worst ${worst} ms)" test "$worst" -le $ANSWER_MS

# --- a flood of anonymous log reads: its own budget -----------------------------
sleep 2         # the anonymous budget refills
"$SLOW" -p "$PORT" -m logread -a 127.0.0.40 -n 4 -c 8 -t 10 >"$T_DIR/reads.out" &
f1=$!
sleep 1
LOG429=1 probe 8 "$T_DIR/probe.reads"
wait $f1
read -r _ n _ bad _ worst <"$T_DIR/probe.reads"
ok200=$(field s200 "$T_DIR/reads.out"); n429=$(field s429 "$T_DIR/reads.out")
budget=$((10 + 5 * 11 + 10))
check "anonymous log reads are served within their budget of 5/s ($(cat "$T_DIR/reads.out"))" \
    test "${ok200:-0}" -ge 5 -a "${ok200:-999999}" -le $budget
check "... and refused with 429 beyond it" \
    test $(( ${ok200:-0} + ${n429:-0} )) -le $budget -o "${n429:-0}" -gt 0
check "... and do not starve ci ($n answers, $bad bad, worst ${worst} ms)" \
    test "$n" -ge 6 -a "$bad" -eq 0 -a "$worst" -le $ANSWER_MS
sleep 2
st=$(api - GET /v1/log/checkpoint)
expect_eq "afterwards the log reads without a certificate again" "$st" 200
check "... and its answer closes the connection" grep -qi '^connection: close' \
    <(curl -sS --max-time 30 --cacert "$DEV/tls/ca.pem" -D - -o /dev/null "$URL/v1/log/checkpoint")

# --- the client certificate is verified once per connection --------------------
v0=$(metric signgate_tls_client_verifications_total)
codes=$(curl -sS --max-time 30 --cacert "$DEV/tls/ca.pem" --cert "$DEV/tls/ci.pem" \
    --key "$DEV/tls/ci.key" -o /dev/null -o /dev/null -o /dev/null -o /dev/null \
    -w '%{http_code} %{num_connects}\n' "$URL/v1/keys" "$URL/v1/keys" \
    "$URL/v1/requests" "$URL/v1/keys" | tr '\n' ' ')
v1=$(metric signgate_tls_client_verifications_total)
expect_eq "four requests on one kept-alive connection" "$codes" "200 1 200 0 200 0 200 0 "
expect_eq "... verify the certificate once" "$((v1 - v0))" 1
for i in 1 2 3; do api ci GET /v1/keys >/dev/null; done
v2=$(metric signgate_tls_client_verifications_total)
expect_eq "three connections verify it three times" "$((v2 - v1))" 3
check "TLS sessions are not resumed (no verification can be skipped)" bash -c "
    echo | timeout 20 openssl s_client -connect 127.0.0.1:$PORT -reconnect \
        -CAfile '$DEV/tls/ca.pem' -cert '$DEV/tls/ci.pem' -key '$DEV/tls/ci.key' \
        2>/dev/null >'$T_DIR/sclient.out'; grep -q '^New' '$T_DIR/sclient.out' &&
    ! grep -q '^Reused' '$T_DIR/sclient.out'"
expect_eq "without a certificate, a non-log endpoint still answers 401" \
    "$(api - GET /v1/keys)" 401
expect_eq "... and a request with a body is refused at once (401)" \
    "$(api - POST /v1/requests -H 'Content-Type: application/json' --data '{}')" 401
expect_eq "... as a problem document" "$(jbody .status)" 401

finish
