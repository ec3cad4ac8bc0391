# Requests do not queue behind threads.  The daemon's PKCS#11 module is
# p11net.so, a model of a network HSM that forwards to SoftHSM and makes
# every signature take 50 ms, with up to 64 in flight; the daemon has 2
# HTTP threads.  64 clients each ask for a `nightly` signature at once.
# Every one must be answered 201 with a signature that verifies, and the
# model must have seen many signatures in flight at the same
# moment: far more than the daemon has threads, which a request holding a
# thread while it waits for the HSM could never give.  The time the 64
# took is printed beside 64 x 50 ms, the time they take one by one.
. "$(dirname "$0")/lib.sh"

NET="$BUILD/p11wrap/p11net.so"
[ -f "$NET" ] || { not_ok "p11net.so is built (make unit)"; finish; exit 1; }
N=64
LATENCY_MS=50

cp -a "$DEV/tokens" "$T_DIR/tokens"
sed "s#^directories.tokendir.*#directories.tokendir = $T_DIR/tokens#" \
    "$DEV/softhsm2.conf" >"$T_DIR/softhsm2.conf"
export SOFTHSM2_CONF="$T_DIR/softhsm2.conf"
export SG_P11NET_MODULE=/usr/lib/softhsm/libsofthsm2.so
export SG_P11NET_LATENCY_MS=$LATENCY_MS
export SG_P11NET_IN_FLIGHT=$N
export SG_P11NET_STATS="$T_DIR/net/stats"
mkdir -p "$T_DIR/net"
give_to_signer "$T_DIR/tokens" "$T_DIR/softhsm2.conf" "$T_DIR/net"

# 64 TLS handshakes at once on 2 threads take their time in a sanitizer
# build on a busy machine: the handshake deadlines are not what is tested
# here, so they are generous, and no connection waits to be admitted.
write_config ".pkcs11.module = \"$NET\" | .pkcs11.concurrency = $N |
    .threads = 2 | .rate_limit = {per_second: 0, burst: 1} |
    .handshake_timeout = 60 | .first_request_timeout = 120 |
    .per_ip_unauthenticated_limit = $N"
start_daemon || { not_ok "daemon starts on p11net.so"; finish; exit 1; }
ok "daemon starts with p11net.so as its PKCS#11 module, 2 threads"

# N clients, each on a connection of its own opened beforehand, ask at
# the same moment (loadgen: one request each, every answer parsed, its
# digest compared and its signature verified against the key file made
# when the key was generated).
"$BUILD/tools/loadgen" sign -u "$URL" -D "$DEV" -c $N -n $N -v 1 \
    >"$T_DIR/load.out" 2>&1
res=$(grep '^RESULT' "$T_DIR/load.out")
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$res"; }
expect_eq "all $N requests answered 201, signed" "$(field completed)" "$N"
expect_eq "no request failed" "$(field errors)" 0
expect_eq "every signature verified (against the key file)" "$(field verified)" "$N"
elapsed_ms=$(awk -v s="$(field seconds)" 'BEGIN { printf "%d", s * 1000 }')

# The model's count: signatures made (the log's checkpoints too) and the
# most in flight at one moment.
read -r _ sigs _ peak <"$T_DIR/net/stats"
echo "# $N requests in ${elapsed_ms} ms (one by one: $((N * LATENCY_MS)) ms);" \
    "HSM: $sigs signatures, at most $peak in flight at once"
check "the HSM signed at least the $N requests ($sigs)" test "$sigs" -ge "$N"
check "at least 16 signatures were in flight at once with 2 HTTP threads ($peak)" \
    test "$peak" -ge 16
finish
