# Limits: a token bucket per principal (429 with Retry-After), a cap on
# pending requests per requester, a cap on connections per address, and
# connection timeouts, so that slow clients (slowloris) cannot starve the
# others; a body over 64 KiB gets its 413, never a reset (see also
# 66-slow-peers.sh).
. "$(dirname "$0")/lib.sh"

write_config '.rate_limit = {"per_second": 5, "burst": 10} |
    .max_pending_per_requester = 3 | .per_ip_connection_limit = 20 |
    .connection_timeout = 3'
start_daemon || { not_ok "daemon starts"; finish; exit 1; }

# --- rate limit --------------------------------------------------------------
# 20 requests back to back on one kept-alive connection (a burst, whatever
# the machine's load: no handshake between them).
urls=(); outs=()
for i in $(seq 1 20); do urls+=("$URL/v1/keys"); outs+=(-o /dev/null); done
codes=$(curl -sS --max-time 60 --cacert "$DEV/tls/ca.pem" \
    --cert "$DEV/tls/audit.pem" --key "$DEV/tls/audit.key" "${outs[@]}" \
    -D "$T_DIR/h.all" -w '%{http_code}\n' "${urls[@]}")
n429=$(echo "$codes" | grep -c '^429$')
n200=$(echo "$codes" | grep -c '^200$')
check "a burst of 20 from one principal: the first 10 pass ($n200 x 200)" test "$n200" -ge 10 -a "$n200" -le 14
check "... and the rest are refused with 429 ($n429 x 429)" test "$n429" -ge 6
check "a 429 carries Retry-After" grep -qi '^Retry-After: [1-9]' "$T_DIR/h.all"
expect_eq "another principal is not affected" "$(api ci GET /v1/keys)" 200
sleep 2
expect_eq "after waiting, the principal may call again" "$(api audit GET /v1/keys)" 200

# --- pending cap -------------------------------------------------------------
for i in 1 2 3; do
	expect_eq "pending release request $i of 3 (201)" \
	    "$(new_request ci release "$(printf '%064x' "$i")")" 201
done
expect_eq "a fourth pending request is refused (429)" \
    "$(new_request ci release "$(printf '%064x' 4)")" 429
check "... saying why" bash -c "jq -r .detail '$T_DIR/body' | grep -q 'pending requests'"
expect_eq "a request signed at once is still accepted (201)" \
    "$(new_request ci nightly "$(printf '%064x' 5)")" 201

# --- slow clients ------------------------------------------------------------
sleep 2   # refill the buckets
"$BUILD/tools/slowclients" 127.0.0.1 "$PORT" 127.0.0.2 60 8 >"$T_DIR/slow.out" &
slow=$!
sleep 1
start=$(date +%s%N)
st=$(api audit GET /v1/keys)
el=$(( ($(date +%s%N) - start) / 1000000 ))
expect_eq "while 60 slow connections trickle, a normal client is served" "$st" 200
check "... promptly (${el} ms)" test "$el" -lt 2000
wait "$slow"
read -r _ acc _ ref _ closed _ open <"$T_DIR/slow.out"
check "the slow connections were all closed by the server ($(cat "$T_DIR/slow.out"))" \
    test "$open" -eq 0 -a "$((acc + ref))" -eq 60
expect_eq "the daemon still answers afterwards" "$(api audit GET /v1/keys)" 200

# --- bodies over 64 KiB: every client reads its 413 -------------------------
# 40 clients at once (from four addresses, each under the per-address
# cap), bodies from 70 KB to 8 MiB (some chunked), next to two CPU burners
# (bounded: 20 s).  The daemon answers 413 as soon as it sees the size and
# closes with a lingering close, so that no client sees a reset instead of
# the answer.
# (Generous handshake deadlines here: this part is about the 413, and a
# sanitizer build next to the burners can take seconds per handshake;
# 66-slow-peers.sh tests the deadlines.)
stop_daemon
write_config '.per_ip_connection_limit = 20 | .handshake_timeout = 15 |
    .first_request_timeout = 20'
start_daemon || { not_ok "daemon restarts"; finish; exit 1; }
for s in 70000 1048577 4194304 8388608; do
	head -c "$s" /dev/zero | tr '\0' ' ' >"$T_DIR/big.$s"
done
burn() { local end=$(( $(date +%s) + 20 )); while [ "$(date +%s)" -lt "$end" ]; do :; done; }
burn & b1=$!
burn & b2=$!
sizes=(70000 1048577 4194304 8388608)
pids=()
for i in $(seq 1 40); do
	s=${sizes[$((i % 4))]}
	te=()
	[ $((i % 10)) = 0 ] && te=(-H 'Transfer-Encoding: chunked')
	curl -sS --max-time 60 --cacert "$DEV/tls/ca.pem" --cert "$DEV/tls/ci.pem" \
	    --key "$DEV/tls/ci.key" --interface "127.0.0.$((i % 4 + 1))" \
	    -H 'Content-Type: application/json' "${te[@]}" \
	    --data-binary "@$T_DIR/big.$s" -o "$T_DIR/413.$i" \
	    -w '%{http_code} %{exitcode} %{content_type}\n' "$URL/v1/requests" \
	    >"$T_DIR/413.st.$i" 2>"$T_DIR/413.err.$i" &
	pids+=($!)
done
wait "${pids[@]}"
kill "$b1" "$b2" 2>/dev/null; wait "$b1" "$b2" 2>/dev/null
good=0
for i in $(seq 1 40); do
	if [ "$(cat "$T_DIR/413.st.$i")" = "413 0 application/problem+json" ] &&
	    [ "$(jq -r .status "$T_DIR/413.$i" 2>/dev/null)" = 413 ] &&
	    jq -r .detail "$T_DIR/413.$i" | grep -q 65536; then
		good=$((good + 1))
	else
		echo "  client $i: $(cat "$T_DIR/413.st.$i") $(cat "$T_DIR/413.err.$i")"
	fi
done
expect_eq "40 loaded clients with bodies over 64 KiB: each read the 413 problem naming the limit" "$good" 40
expect_eq "the daemon still answers afterwards" "$(api ci GET /v1/keys)" 200

# --- what one log entry may hold (docs/API.md, "Log entries") ----------------
# A decision envelope of more than 4096 bytes, an artifact object of more
# than 16384 bytes as JSON, a policy asking for more than 8 approvals.
PENDING=$(api ci GET '/v1/requests?limit=200' >/dev/null &&
    jq -r '[.requests[] | select(.state == "pending")][0].id' "$T_DIR/body")
pad=$(head -c 4100 /dev/zero | tr '\0' 'a')
expect_eq "an envelope of more than 4096 bytes is refused (413 or 400)" \
    "$(post_json alice "/v1/requests/$PENDING/approvals" \
    "{\"payloadType\":\"x\",\"payload\":\"$pad\",\"signatures\":[]}" |
    sed 's/^413$/400/')" 400
check "... naming the limit" bash -c "jq -r .detail '$T_DIR/body' | grep -q 4096"
art=$(for i in $(seq 1 20); do printf '"f%d":"%s",' "$i" "$(head -c 1000 /dev/zero | tr '\0' 'v')"; done)
expect_eq "an artifact of more than 16384 bytes as JSON is refused (400)" \
    "$(post_json ci /v1/requests "{\"key\":\"nightly\",\"digest\":{\"algorithm\":\"sha256\",\"value\":\"$(printf '%064x' 77)\"},\"artifact\":{${art}\"name\":\"a\"}}")" 400
check "... naming the artifact and the limit" bash -c \
    "[ \"\$(jq -r .field '$T_DIR/body')\" = artifact ] && jq -r .detail '$T_DIR/body' | grep -q 16384"
sed 's/^\( *require security-officers\) 2$/\1 8/; s/^\( *require release-managers\) 1$/\1 1/' \
    "$DEV/policy.conf" >"$T_DIR/quorum9.conf"
check "a policy whose require counts sum to 9 is refused" bash -c \
    "! '$SIGNGATE' policy check '$T_DIR/quorum9.conf' >'$T_DIR/pc.out' 2>&1"
check "... at the line that passes 8, saying why" \
    grep -q 'sum to 9, more than the 8 approvals' "$T_DIR/pc.out"

finish
