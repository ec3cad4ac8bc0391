# HSM failures under a running daemon.  The daemon's PKCS#11 module is
# p11fault.so, which forwards to SoftHSM (with a private copy of the dev
# token) and fails the calls a control file names.  While faults are
# injected, `nightly` requests are signed: every answer must be a 201 whose
# signature openssl verifies, or a 503 problem document -- never anything
# else, and never a signature that does not verify.  Single faults are
# recovered within the request; a lasting fault makes /readyz report
# degraded and signing fail cleanly until it ends, then both come back by
# themselves; a hung HSM answers 503 at the deadline; and the token's files
# replaced under the running daemon (a token re-initialised from backup)
# are used again without a restart.
. "$(dirname "$0")/lib.sh"

WRAP="$BUILD/p11wrap/p11fault.so"
if [ ! -f "$WRAP" ]; then
	# `make unit` builds it; build a private one if it has not run.
	WRAP="$T_DIR/p11fault.so"
	cc -std=c11 -D_GNU_SOURCE -O2 -shared -fPIC \
	    $(pkg-config --cflags p11-kit-1) -o "$WRAP" \
	    "$SG_ROOT/tests/p11wrap/p11fault.c" -ldl -lpthread ||
	    { not_ok "p11fault.so builds"; finish; exit 1; }
fi

# A private copy of the tokens: faults and resets must not touch var/dev.
cp -a "$DEV/tokens" "$T_DIR/tokens"
cp -a "$DEV/tokens" "$T_DIR/tokens.orig"
sed "s#^directories.tokendir.*#directories.tokendir = $T_DIR/tokens#" \
    "$DEV/softhsm2.conf" >"$T_DIR/softhsm2.conf"
export SOFTHSM2_CONF="$T_DIR/softhsm2.conf"
export SG_P11FAULT_MODULE=/usr/lib/softhsm/libsofthsm2.so
export SG_P11FAULT_CONTROL="$T_DIR/control"
export SG_P11FAULT_LOG="$T_DIR/faults.log"
# A short deadline keeps the hang checks quick.
export SG_P11_DEADLINE_MS=2000
: >"$T_DIR/faults.log"
# The module runs in the signer: as root, the signer's user owns the
# tokens (and their pristine copy, which token_files_back copies with its
# owner), the configuration and the fault log; the control file stays
# root's and readable.
give_to_signer "$T_DIR/tokens" "$T_DIR/tokens.orig" "$T_DIR/softhsm2.conf" \
    "$T_DIR/faults.log"

# rules TEXT: replaces the control file at once (a new inode).
rules() {
	printf '%s' "$1" >"$T_DIR/control.new" && mv "$T_DIR/control.new" "$T_DIR/control"
}
rules ""
faults() { wc -l <"$T_DIR/faults.log"; }

# The token files vanish at once: renamed away (rm -rf races with SoftHSM
# re-creating its lock files, and can leave half a token behind).
GONE=0
token_files_gone() {
	local d
	GONE=$((GONE + 1))
	mkdir -p "$T_DIR/gone.$GONE"
	for d in "$T_DIR/tokens"/*/; do mv "$d" "$T_DIR/gone.$GONE/"; done
}
# A fresh copy of them appears at once.
token_files_back() {
	local d
	rm -rf "$T_DIR/stage" && cp -a "$T_DIR/tokens.orig" "$T_DIR/stage" &&
	    for d in "$T_DIR/stage"/*/; do mv "$d" "$T_DIR/tokens/"; done
}

write_config ".pkcs11.module = \"$WRAP\""
start_daemon || { not_ok "daemon starts on p11fault.so"; finish; exit 1; }
ok "daemon starts with p11fault.so as its PKCS#11 module"
key_pem nightly >"$T_DIR/nightly.pub"
check "nightly's public key is published" openssl pkey -pubin -in "$T_DIR/nightly.pub" -noout

N=0
RES=
# sign_nightly: one request over a fresh artifact; RES becomes
# "signed" (201, the signature verifies), "unavailable" (503 problem
# document) or a description of what went wrong.
sign_nightly() {
	local st hex
	N=$((N + 1))
	head -c 4096 /dev/urandom >"$T_DIR/art.$N"
	hex=$(hexdigest sha256 "$T_DIR/art.$N")
	st=$(post_json ci /v1/requests "{\"key\":\"nightly\",\"digest\":{\"algorithm\":\"sha256\",\"value\":\"$hex\"},\"format\":\"raw\",\"artifact\":{\"name\":\"a$N.bin\",\"version\":\"1.0\"}}" \
	    -D "$T_DIR/hdr")
	case $st in
	201)
		if [ "$(jbody .state)" != signed ]; then
			RES="201 but state $(jbody .state)"
		elif jbody .signature.signature | base64 -d >"$T_DIR/sig.$N" &&
		    openssl dgst -sha256 -verify "$T_DIR/nightly.pub" \
		    -signature "$T_DIR/sig.$N" "$T_DIR/art.$N" >/dev/null 2>&1; then
			RES=signed
		else
			RES="201 WITH A SIGNATURE THAT DOES NOT VERIFY"
		fi ;;
	503)
		if grep -qi '^content-type: application/problem+json' "$T_DIR/hdr" &&
		    [ "$(jbody .status)" = 503 ] && [ -n "$(jbody .detail)" ]; then
			RES=unavailable
		else
			RES="503 without a problem document: $(body)"
		fi ;;
	*)
		RES="status $st: $(body | head -c 300)" ;;
	esac
}

# readyz_becomes STATUS: waits (the answer is cached for 5 s) until
# /readyz answers STATUS, at most 15 s.
readyz_becomes() {
	local i st
	for i in $(seq 1 30); do
		st=$(api - GET /readyz)
		[ "$st" = "$1" ] && return 0
		sleep 0.5
	done
	echo "readyz: $st $(body)"
	return 1
}

sign_nightly
expect_eq "before any fault: a request is signed and verifies" "$RES" signed
expect_eq "before any fault: /readyz 200" "$(api - GET /readyz)" 200

# --- one fault: recovered within the request ---------------------------------
TRIGGER="C_Sign CKR_SESSION_HANDLE_INVALID count 1
"
bad=0 recovered=0 total=0
for fn in C_Sign C_SignInit C_OpenSession C_Login C_FindObjectsInit; do
	for code in CKR_SESSION_HANDLE_INVALID CKR_SESSION_CLOSED \
	    CKR_DEVICE_REMOVED CKR_DEVICE_ERROR CKR_TOKEN_NOT_PRESENT \
	    CKR_USER_NOT_LOGGED_IN; do
		pre=""
		case $fn in C_Sign|C_SignInit) ;; *) pre=$TRIGGER ;; esac
		before=$(faults)
		rules "$pre$fn $code count 1
"
		sign_nightly
		total=$((total + 1))
		if [ "$RES" = signed ] && [ "$(faults)" -gt "$before" ]; then
			recovered=$((recovered + 1))
		else
			bad=$((bad + 1))
			echo "    $fn $code count 1: $RES (faults $before -> $(faults))"
		fi
	done
done
expect_eq "one fault on each call and code: every request recovered (201, verifies)" \
    "$recovered/$total" "$total/$total"
rules ""

# --- a lasting fault: clean 503s, /readyz degraded, then back -------------
rules "C_Sign CKR_DEVICE_ERROR always
"
before=$(faults)
results=
for i in 1 2 3; do
	sign_nightly
	results="$results $RES"
done
expect_eq "C_Sign failing always: each request is a 503 problem document" \
    "$results" " unavailable unavailable unavailable"
check "... the faults were injected" test "$(faults)" -gt "$before"
check "/readyz goes 503 while the HSM fails" readyz_becomes 503
check "... and says why" grep -q 'degraded' "$T_DIR/body"
rules ""
sign_nightly
expect_eq "fault gone: the next request is signed and verifies, no restart" "$RES" signed
check "/readyz is 200 again" readyz_becomes 200

rules "C_OpenSession CKR_TOKEN_NOT_PRESENT always
C_Sign CKR_DEVICE_REMOVED count 1
"
sign_nightly
expect_eq "token gone for good: a clean 503" "$RES" unavailable
sign_nightly
expect_eq "... and again (the next request tries again)" "$RES" unavailable
rules ""
sign_nightly
expect_eq "token back: signed without a restart" "$RES" signed

# --- a hung HSM: 503 at the deadline ---------------------------------------
rules "C_Sign hang 10000
"
t0=$(date +%s%N)
sign_nightly
dt=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_eq "C_Sign hangs: the request is a 503" "$RES" unavailable
check "... after the 2 s deadline, not the 10 s hang (${dt} ms)" \
    test "$dt" -ge 1900 -a "$dt" -lt 6000
rules ""
sign_nightly
expect_eq "HSM answers again: signed" "$RES" signed

# --- faults under a stream of requests ---------------------------------------
rules "C_Sign CKR_DEVICE_ERROR count 3
C_SignInit CKR_SESSION_HANDLE_INVALID count 3
C_Sign CKR_USER_NOT_LOGGED_IN count 2
C_Login CKR_DEVICE_ERROR count 1
C_FindObjectsInit CKR_TOKEN_NOT_PRESENT count 1
"
before=$(faults)
signed=0 unavail=0 other=0
for i in $(seq 1 20); do
	sign_nightly
	case $RES in
	signed) signed=$((signed + 1)) ;;
	unavailable) unavail=$((unavail + 1)) ;;
	*) other=$((other + 1)); echo "    request $i: $RES" ;;
	esac
done
expect_eq "20 requests under 10 faults: each one signed-and-verified or a 503" "$other" 0
check "... the faults were met ($((  $(faults) - before ))) and most requests recovered ($signed signed, $unavail 503)" \
    test "$(faults)" -gt "$before" -a "$signed" -ge 15
rules ""

# --- the token's files replaced under the running daemon -----------------
token_files_gone
sign_nightly
expect_eq "token files gone: a clean 503" "$RES" unavailable
token_files_back
# The module is re-initialised at most once a second.
sleep 1.2
sign_nightly
expect_eq "token files back: signed again without a restart" "$RES" signed
check "... the daemon re-initialised the module to see the token again" \
    grep -q 'finalising and initialising it again' "$T_DIR/daemon.log"
check "/readyz is 200" readyz_becomes 200

# The same while requests keep coming: the files go away for a moment in
# the middle of the stream, and a fresh copy takes their place.
(sleep 0.5; token_files_gone; sleep 0.5; token_files_back
    : >"$T_DIR/swapped") &
swapper=$!
signed=0 unavail=0 other=0 after=0
for i in $(seq 1 100); do
	sign_nightly
	case $RES in
	signed) signed=$((signed + 1)) ;;
	unavailable) unavail=$((unavail + 1)); sleep 0.2 ;;
	*) other=$((other + 1)); echo "    request $i: $RES" ;;
	esac
	if [ -f "$T_DIR/swapped" ]; then
		[ "$RES" = signed ] && after=$((after + 1))
		[ "$after" -ge 3 ] && break
	fi
done
wait "$swapper"
expect_eq "token files swapped during a stream of requests: no bad answer ($signed signed, $unavail 503)" "$other" 0
check "... and signing continued after the swap" test "$after" -ge 3
sign_nightly
expect_eq "a last request is signed" "$RES" signed

rules ""
finish
