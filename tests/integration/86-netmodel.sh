# The network-HSM model of the benchmark under a running daemon: the
# daemon's PKCS#11 module is p11net.so (tests/p11wrap/p11net.c), which
# forwards to SoftHSM with a latency per signature and at most two
# signatures in flight.  Requests from four connections at once are all
# signed, and every signature verifies against the key file; the model's
# settings reached the signer process through the daemon's environment,
# and the signer (its own user when started as root) wrote the stats file
# another process reads: every signature counted, never more than two in
# flight.
. "$(dirname "$0")/lib.sh"

WRAP="$BUILD/p11wrap/p11net.so"
[ -f "$WRAP" ] || { not_ok "p11net.so is built (make unit)"; finish; exit 1; }
LOADGEN="$BUILD/tools/loadgen"
[ -x "$LOADGEN" ] || { not_ok "loadgen is built (make unit)"; finish; exit 1; }

# The signer writes the stats file: its directory is open to its user.
mkdir "$T_DIR/stats"
chmod 0777 "$T_DIR/stats"
export SG_P11NET_MODULE=/usr/lib/softhsm/libsofthsm2.so
export SG_P11NET_LATENCY_MS=20 SG_P11NET_IN_FLIGHT=2
export SG_P11NET_STATS="$T_DIR/stats/p11net"

write_config ".pkcs11.module = \"$WRAP\""
start_daemon || { not_ok "daemon starts on p11net.so"; finish; exit 1; }
ok "daemon starts with p11net.so as its PKCS#11 module"

# 16 requests over 4 connections, every signature checked against
# var/dev/codesign/nightly.pub.pem.
timeout 60 "$LOADGEN" sign -u "$URL" -D "$DEV" -c 4 -n 16 -v 1 \
    >"$T_DIR/loadgen.out" 2>&1
RESULT=$(grep '^RESULT' "$T_DIR/loadgen.out" | tail -n 1)
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$RESULT"; }
expect_eq "16 requests signed through the model" "$(field completed)" 16
expect_eq "no errors" "$(field errors)" 0
expect_eq "every signature verifies against the key file" "$(field verified)" 16

# signatures N peak P, written by the signer after each signature: the
# requests' 16 and the checkpoints' (at least one).
read -r w1 n w2 peak <"$SG_P11NET_STATS" || n=
expect_eq "the stats file's form" "$w1 $w2" "signatures peak"
check "the model counted every signature (16 and the checkpoints: $n)" \
    test "${n:-0}" -gt 16
check "at most two signatures were in flight (peak $peak)" \
    test "${peak:-0}" -ge 1 -a "${peak:-0}" -le 2
if [ "$(id -u)" -eq 0 ]; then
	expect_eq "the signer, as its own user, wrote it" \
	    "$(stat -c %U "$SG_P11NET_STATS")" "$SIGNER_USER"
fi

finish
