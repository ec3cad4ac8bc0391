# Requests do not queue behind threads.  The daemon's PKCS#11 module is
# p11net.so, a model of a network HSM that forwards to SoftHSM and makes
# every signature take 50 ms, with up to 64 in flight; the daemon has 2
# HTTP threads.  64 clients each ask for a `nightly` signature at once.
# Every one must be answered 201 with a signature that openssl verifies,
# and the model must have seen many signatures in flight at the same
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

write_config ".pkcs11.module = \"$NET\" | .threads = 2 | .rate_limit = {per_second: 0, burst: 1}"
start_daemon || { not_ok "daemon starts on p11net.so"; finish; exit 1; }
ok "daemon starts with p11net.so as its PKCS#11 module, 2 threads"
key_pem nightly >"$T_DIR/nightly.pub"

# One curl, N transfers at once, each on its own connection (in curl's
# configuration, `next` starts a transfer with options of its own).
digest=$(printf 'hsm latency' | openssl dgst -sha256 -r | cut -d' ' -f1)
: >"$T_DIR/parallel.conf"
for i in $(seq 1 $N); do
	hex=$(printf '%s %d' "$digest" "$i" | openssl dgst -sha256 -r | cut -d' ' -f1)
	echo "$hex" >"$T_DIR/digest.$i"
	[ "$i" -gt 1 ] && echo next >>"$T_DIR/parallel.conf"
	cat >>"$T_DIR/parallel.conf" <<-EOF
	url = "$URL/v1/requests"
	cacert = "$DEV/tls/ca.pem"
	cert = "$DEV/tls/ci.pem"
	key = "$DEV/tls/ci.key"
	header = "Content-Type: application/json"
	data-binary = "{\\"key\\":\\"nightly\\",\\"digest\\":{\\"algorithm\\":\\"sha256\\",\\"value\\":\\"$hex\\"},\\"format\\":\\"raw\\",\\"artifact\\":{\\"name\\":\\"n$i.bin\\",\\"version\\":\\"1\\"}}"
	output = "$T_DIR/answer.$i"
	write-out = "%{http_code}\\n"
	max-time = 60
	EOF
done
t0=$(date +%s%N)
curl -sS --parallel --parallel-immediate --parallel-max $N \
    -K "$T_DIR/parallel.conf" >"$T_DIR/codes" 2>"$T_DIR/curl.err"
t1=$(date +%s%N)
elapsed_ms=$(((t1 - t0) / 1000000))

expect_eq "all $N requests answered 201" \
    "$(grep -c '^201$' "$T_DIR/codes")" "$N"
bad=0
for i in $(seq 1 $N); do
	jq -r .signature.signature "$T_DIR/answer.$i" | base64 -d >"$T_DIR/sig.$i" 2>/dev/null
	xxd -r -p "$T_DIR/digest.$i" >"$T_DIR/bin.$i"
	openssl pkeyutl -verify -pubin -inkey "$T_DIR/nightly.pub" \
	    -in "$T_DIR/bin.$i" -sigfile "$T_DIR/sig.$i" >/dev/null 2>&1 ||
	    bad=$((bad + 1))
done
expect_eq "every signature verifies with openssl over its own digest" "$bad" 0

# The model's count: signatures made (the log's checkpoints too) and the
# most in flight at one moment.
read -r _ sigs _ peak <"$T_DIR/net/stats"
echo "# $N requests in ${elapsed_ms} ms (one by one: $((N * LATENCY_MS)) ms);" \
    "HSM: $sigs signatures, at most $peak in flight at once"
check "the HSM signed at least the $N requests ($sigs)" test "$sigs" -ge "$N"
check "at least 16 signatures were in flight at once with 2 HTTP threads ($peak)" \
    test "$peak" -ge 16
finish
