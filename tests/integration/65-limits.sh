# Limits: a token bucket per principal (429 with Retry-After), a cap on
# pending requests per requester, a cap on connections per address, and
# connection timeouts, so that slow clients (slowloris) cannot starve the
# others.
. "$(dirname "$0")/lib.sh"

write_config '.rate_limit = {"per_second": 5, "burst": 10} |
    .max_pending_per_requester = 3 | .per_ip_connection_limit = 20 |
    .connection_timeout = 3'
start_daemon || { not_ok "daemon starts"; finish; exit 1; }

# --- rate limit --------------------------------------------------------------
codes=""
for i in $(seq 1 20); do
	codes="$codes $(api audit GET /v1/keys -D "$T_DIR/h.$i")"
done
n429=$(echo "$codes" | tr ' ' '\n' | grep -c '^429$')
n200=$(echo "$codes" | tr ' ' '\n' | grep -c '^200$')
check "a burst of 20 from one principal: the first 10 pass ($n200 x 200)" test "$n200" -ge 10 -a "$n200" -le 14
check "... and the rest are refused with 429 ($n429 x 429)" test "$n429" -ge 6
last429=$(grep -l '^HTTP/[0-9.]* 429' "$T_DIR"/h.* | head -n 1)
check "a 429 carries Retry-After" grep -qi '^Retry-After: [1-9]' "$last429"
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

finish
