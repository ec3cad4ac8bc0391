# The PKCS#11 client module (libsigngate-pkcs11.so) driven by OpenSC's
# pkcs11-tool against a real daemon:
#
# - the token and its objects: every key `ci` may request that signs a
#   digest, each with a private key, a public key and its certificate
#   (no Ed25519: neither the log key nor unrelated-ed25519, which sit on
#   the HSM, and no key ci may not request);
# - key release under a grant (three security officers and the release
#   manager approved it), and a name outside the grant's pattern refused;
# - every mechanism the module offers, each signature checked by openssl
#   with the key's public key from /v1/keys, each one in the log (the
#   evidence files the module writes are accepted offline by
#   `signgate verify`);
# - a scheme the key does not allow is refused before any request;
# - an officer's veto makes pkcs11-tool fail with CKR_FUNCTION_REJECTED
#   and a message naming the officer, with no output file and no second
#   request when pkcs11-tool tries again;
# - a request nobody approves is cancelled at the module's timeout;
# - a gateway that is down fails with CKR_DEVICE_ERROR within the timeout;
# - `make install` lays the module and its p11-kit file out, and p11-kit
#   finds the module (user configuration under a temporary HOME).
#
# Under the sanitizers (BUILD=build-san) the module under test is the
# sanitized one, loaded into the stock pkcs11-tool and p11-kit with
# libasan preloaded (ASan must come first in the process); any sanitizer
# report on their standard error fails the script.  Leak checking is off
# in those processes: pkcs11-tool and p11-kit leak of their own at exit
# (OpenSC's certificate parsing), and a suppression by their frames would
# hide the module's leaks too, since every call into it passes through
# them.  The module's leaks are checked by its unit tests under LSan.
# p11-kit 0.24 hangs at start-up with libasan preloaded, whatever modules
# it loads (measured here), so the install and p11-kit part always uses
# the plain build's module, built by `make install-pkcs11` if needed.
. "$(dirname "$0")/lib.sh"

MODULE="$BUILD/libsigngate-pkcs11.so"
[ -f "$MODULE" ] || { not_ok "the module is built ($MODULE)"; finish; exit 1; }

# Two keys on the firmware HSM object that need no approval: one for
# PKCS#1 v1.5, one for PSS.
P="$T_DIR/policy.conf"
cp "$DEV/policy.conf" "$P"
for k in build-rsa:rsa-pkcs1 build-pss:rsa-pss; do
	cat >>"$P" <<EOF
key ${k%%:*}
    token signgate-dev
    object firmware
    algorithm ${k#*:}
    formats raw
    requesters ci
    veto no
    lifetime 1h
    countries CH
end
EOF
done
write_config ".policy = \"$P\""
start_daemon || { not_ok "daemon starts"; finish; exit 1; }
as ci

# The module's configuration: a file, relative paths from its directory.
mkdir -p "$T_DIR/conf" "$T_DIR/ev"
cp "$DEV/tls/ci.pem" "$DEV/tls/ci.key" "$DEV/tls/ca.pem" "$T_DIR/conf/"
chmod 0600 "$T_DIR/conf/ci.key"
write_module_conf() {   # write_module_conf FILE URL TIMEOUT
	cat >"$1" <<EOF
# signgate PKCS#11 module, for tests/integration/67-pkcs11-tool.sh
url = $2
cert = ci.pem
key = ci.key
cacert = ca.pem
timeout = $3
connect_timeout = 5
token_label = signgate test
artifact = 67-pkcs11-tool
EOF
}
write_module_conf "$T_DIR/conf/pkcs11.conf" "$URL" 30
export SIGNGATE_PKCS11_CONF="$T_DIR/conf/pkcs11.conf"

# p11 ARGS...: pkcs11-tool with the module, bounded; stdout and stderr in
# $T_DIR/p11.out and p11.err; prints the exit status.
p11() {
	local rc
	timeout 60 env "${SAN_ENV[@]}" pkcs11-tool --module "$MODULE" "$@" \
	    </dev/null >"$T_DIR/p11.out" 2>"$T_DIR/p11.err"
	rc=$?
	cat "$T_DIR/p11.err" >>"$T_DIR/tools.err"
	echo $rc
}
hexid() { printf %s "$1" | od -An -tx1 | tr -d ' \n'; }
show_err() { sed 's/^/    stderr: /' "$T_DIR/p11.err" | head -n 8; }

# --- the token and its objects ---------------------------------------------
expect_eq "pkcs11-tool -L" "$(p11 -L)" 0
check "... shows the token with its label" \
    grep -q 'token label *: signgate test' "$T_DIR/p11.out"
expect_eq "pkcs11-tool -O" "$(p11 -O)" 0
cp "$T_DIR/p11.out" "$T_DIR/objects"
api ci GET /v1/keys >/dev/null
cp "$T_DIR/body" "$T_DIR/keys.json"
expect_eq "/v1/keys names the caller" "$(jq -r .principal "$T_DIR/keys.json")" ci
want=$(jq -r '.keys[] | select(.state == "active" and .algorithm != "ed25519"
    and (.policy.requesters | index("ci"))) | .name' "$T_DIR/keys.json" | sort)
got=$(awk '/^Private Key Object/ { p = 1; next } p && /label:/ { print $2; p = 0 }' \
    "$T_DIR/objects" | sort)
expect_eq "one private key per key ci may request that signs a digest" \
    "$(echo $got)" "$(echo $want)"
for k in nightly build-rsa build-pss; do
	check "$k: private key, public key and certificate share its CKA_ID" \
	    test "$(grep -c "ID: *$(hexid "$k")\$" "$T_DIR/objects")" -ge 2
done
check "no Ed25519 object" bash -c "! grep -qiE 'EDDSA|ed25519|edwards' '$T_DIR/objects'"
check "neither the log key nor unrelated-ed25519 is shown" \
    bash -c "! grep -qE 'label: *(log|unrelated-ed25519)\$' '$T_DIR/objects'"
check "the dev code-signing CA is there once" \
    test "$(grep -c 'label: *signgate dev code-signing CA' "$T_DIR/objects")" -eq 1

# --- every mechanism, checked by openssl and by signgate verify -------------
"$SIGNGATE" log key >"$T_DIR/log.vkey" 2>"$T_DIR/err" ||
    not_ok "signgate log key: $(cat "$T_DIR/err")"
for k in nightly build-rsa build-pss release; do
	jq -r --arg k "$k" '.keys[] | select(.name == $k) | .public_key_pem' \
	    "$T_DIR/keys.json" >"$T_DIR/$k.pub"
done
head -c 100000 /dev/urandom >"$T_DIR/data"
for a in sha256 sha384 sha512; do
	openssl dgst "-$a" -binary "$T_DIR/data" >"$T_DIR/data.$a"
done
# DigestInfo prefixes (RFC 8017, 9.2 note 1) for CKM_RSA_PKCS's input.
di_prefix() {
	case $1 in
	sha256) echo 3031300d060960864801650304020105000420 ;;
	sha384) echo 3041300d060960864801650304020205000430 ;;
	sha512) echo 3051300d060960864801650304020305000440 ;;
	esac
}
for a in sha256 sha384 sha512; do
	{ di_prefix "$a" | xxd -r -p; cat "$T_DIR/data.$a"; } >"$T_DIR/di.$a"
done

n=0
# sign_case NAME KEY ALG INPUT OPENSSL_SIGOPTS PKCS11_TOOL_ARGS...: signs,
# verifies with openssl over the data, and checks the evidence offline.
sign_case() {
	local name=$1 key=$2 alg=$3 input=$4 sigopts=$5 ev rc json id hex
	shift 5
	n=$((n + 1))
	ev="$T_DIR/ev/$n"
	mkdir -p "$ev"
	rc=$(SIGNGATE_PKCS11_EVIDENCE_DIR="$ev" p11 --sign --id "$(hexid "$key")" \
	    -i "$input" -o "$T_DIR/sig.$n" "$@")
	expect_eq "$name: pkcs11-tool signs" "$rc" 0
	[ "$rc" = 0 ] || { show_err; return; }
	# shellcheck disable=SC2086
	check "$name: openssl verifies it over the data" \
	    openssl dgst "-$alg" $sigopts -verify "$T_DIR/$key.pub" \
	    -signature "$T_DIR/sig.$n" "$T_DIR/data"
	json=$(ls "$ev"/*.json 2>/dev/null)
	id=$(basename "${json:-none}" .json)
	check "$name: evidence written for one request" \
	    test -n "$json" -a -s "$ev/$id.proof" -a -s "$ev/$id.sig"
	hex=$(openssl dgst "-$alg" -r "$T_DIR/data" | cut -d' ' -f1)
	check "$name: the request carries the mechanism and the artifact" \
	    jq -e --arg a "$alg" --arg h "$hex" '.state == "signed" and
	    .digest.algorithm == $a and .digest.value == $h and
	    .artifact.name == "67-pkcs11-tool" and
	    .artifact.tool == "pkcs11-tool" and
	    (.artifact.mechanism | startswith("CKM_"))' "$json"
	check "$name: signgate verify accepts the logged signature" \
	    "$SIGNGATE" verify --key-file "$T_DIR/log.vkey" --policy "$P" \
	    --proof "$ev/$id.proof" --signature "$ev/$id.sig" \
	    --digest "$alg:$hex"
}
ECDSA="--signature-format openssl"
sign_case "CKM_ECDSA over a SHA-256 digest" nightly sha256 "$T_DIR/data.sha256" \
    "" -m ECDSA $ECDSA
sign_case "CKM_ECDSA over a SHA-384 digest" nightly sha384 "$T_DIR/data.sha384" \
    "" -m ECDSA $ECDSA
sign_case "CKM_ECDSA over a SHA-512 digest" nightly sha512 "$T_DIR/data.sha512" \
    "" -m ECDSA $ECDSA
for a in sha256 sha384 sha512; do
	A=$(echo "$a" | tr a-z A-Z)
	sign_case "CKM_ECDSA_$A" nightly "$a" "$T_DIR/data" "" -m "ECDSA-$A" $ECDSA
	sign_case "CKM_RSA_PKCS over a $A DigestInfo" build-rsa "$a" \
	    "$T_DIR/di.$a" "" -m RSA-PKCS
	sign_case "CKM_${A}_RSA_PKCS" build-rsa "$a" "$T_DIR/data" "" \
	    -m "$A-RSA-PKCS"
	pss="-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:$(( ${a#sha} / 8 ))"
	sign_case "CKM_RSA_PKCS_PSS over a $A digest" build-pss "$a" \
	    "$T_DIR/data.$a" "$pss" -m RSA-PKCS-PSS --hash-algorithm "$A" \
	    --mgf "MGF1-$A"
	sign_case "CKM_${A}_RSA_PKCS_PSS" build-pss "$a" "$T_DIR/data" "$pss" \
	    -m "$A-RSA-PKCS-PSS"
done

# --- key release under a grant three security officers and a release
# manager approved: signed at once, the proof holds both bundles ---------------
post_json ci /v1/grants '{"key":"release","count":2,"lifetime":600,"artifact":"67-*"}' \
    >/dev/null
cp "$T_DIR/body" "$T_DIR/grant.json"
for o in alice bob carol dave; do
	approve_with_openssl "$o" "$T_DIR/grant.json" >/dev/null
done
expect_eq "a grant for release is active" "$(jbody .state)" active
export SIGNGATE_PKCS11_GRANT
SIGNGATE_PKCS11_GRANT=$(jq -r .id "$T_DIR/grant.json")
sign_case "CKM_ECDSA_SHA256 on release under the grant" release sha256 \
    "$T_DIR/data" "" -m ECDSA-SHA256 $ECDSA
check "... the evidence names the grant" \
    jq -e --arg g "$SIGNGATE_PKCS11_GRANT" '.grant.id == $g' "$T_DIR"/ev/$n/*.json
expect_eq "a name outside the grant's pattern is refused" \
    "$(SIGNGATE_PKCS11_ARTIFACT=other.bin p11 --sign --id "$(hexid release)" \
    -m ECDSA-SHA256 -i "$T_DIR/data" -o "$T_DIR/outside.sig")" 1
check "... with the gateway's reason" \
    grep -q "^signgate-pkcs11: key 'release': the gateway refused the request: HTTP 403 Forbidden: 'other.bin' does not match the grant's pattern '67-\*' (field artifact.name)" \
    "$T_DIR/p11.err"
unset SIGNGATE_PKCS11_GRANT

# --- refusals before any request --------------------------------------------
requests_before=$(api audit GET '/v1/requests?limit=200' >/dev/null; jq '.requests | length' "$T_DIR/body")
expect_eq "PSS on the PKCS#1 v1.5 key build-rsa is refused" \
    "$(p11 --sign --id "$(hexid build-rsa)" -m RSA-PKCS-PSS --hash-algorithm SHA256 \
    --mgf MGF1-SHA256 -i "$T_DIR/data.sha256" -o "$T_DIR/refused.sig")" 1
check "... by C_SignInit with CKR_KEY_FUNCTION_NOT_PERMITTED" \
    grep -q 'C_SignInit failed.*CKR_KEY_FUNCTION_NOT_PERMITTED' "$T_DIR/p11.err"
expect_eq "ECDSA on an RSA key is refused" \
    "$(p11 --sign --id "$(hexid build-rsa)" -m ECDSA -i "$T_DIR/data.sha256" \
    -o "$T_DIR/refused.sig")" 1
check "... with CKR_KEY_TYPE_INCONSISTENT" \
    grep -q 'CKR_KEY_TYPE_INCONSISTENT' "$T_DIR/p11.err"
expect_eq "CKM_RSA_PKCS over bytes that are not a DigestInfo is refused" \
    "$(p11 --sign --id "$(hexid build-rsa)" -m RSA-PKCS -i "$T_DIR/data.sha256" \
    -o "$T_DIR/refused.sig")" 1
check "... with CKR_DATA_INVALID" grep -q 'CKR_DATA_INVALID' "$T_DIR/p11.err"
check "no signature file for the refusals" test ! -s "$T_DIR/refused.sig"
expect_eq "the refusals made no request" \
    "$(api audit GET '/v1/requests?limit=200' >/dev/null; jq '.requests | length' "$T_DIR/body")" \
    "$requests_before"

# pending_for KEY: the newest pending request for KEY (bounded wait for one
# to appear), into $T_DIR/pending.json.
pending_for() {
	local i
	for i in $(seq 1 300); do
		api audit GET "/v1/requests?state=pending&key=$1&limit=1" >/dev/null
		if [ "$(jq '.requests | length' "$T_DIR/body")" = 1 ]; then
			jq '.requests[0]' "$T_DIR/body" >"$T_DIR/pending.json"
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# --- a veto: CKR_FUNCTION_REJECTED, naming the officer ----------------------
# A short input goes to C_Sign; when that fails pkcs11-tool tries the same
# data again through C_SignUpdate and C_SignFinal, which the module
# refuses in the same session without a second request.
count_requests() {
	api audit GET "/v1/requests?key=$1&limit=200" >/dev/null
	jq '.requests | length' "$T_DIR/body"
}
before=$(count_requests firmware)
timeout 60 env "${SAN_ENV[@]}" pkcs11-tool --module "$MODULE" --sign \
    --id "$(hexid firmware)" -m RSA-PKCS -i "$T_DIR/di.sha256" \
    -o "$T_DIR/vetoed.sig" </dev/null >"$T_DIR/veto.out" 2>"$T_DIR/veto.err" &
bg=$!
check "firmware: the module's request waits for approvals" pending_for firmware
expect_eq "firmware: alice rejects it" \
    "$(approve_with_openssl alice "$T_DIR/pending.json" reject)" 200
wait "$bg"
expect_eq "firmware: pkcs11-tool fails" "$?" 1
cat "$T_DIR/veto.err" >>"$T_DIR/tools.err"
check "... the module said what the request waited for" \
    grep -q "^signgate-pkcs11: request $(jq -r .id "$T_DIR/pending.json") for key 'firmware' waits for approval (2 of security-officers); waiting up to " \
    "$T_DIR/veto.err"
check "... and the module says who rejected it" \
    grep -q "^signgate-pkcs11: request $(jq -r .id "$T_DIR/pending.json") for key 'firmware' was rejected by alice\$" \
    "$T_DIR/veto.err"
# OpenSC 0.23 prints CKR_FUNCTION_REJECTED as "unknown PKCS11 error
# (0x200)".
check "... and refuses pkcs11-tool's second try without asking again" \
    grep -q "^signgate-pkcs11: key 'firmware': the gateway refused this digest earlier in this session" \
    "$T_DIR/veto.err"
check "... with CKR_FUNCTION_REJECTED (0x200) from C_SignFinal" \
    grep -q 'C_SignFinal failed: rv = .*(0x200)' "$T_DIR/veto.err"
expect_eq "... one request only" "$(count_requests firmware)" $((before + 1))
check "... and no signature written" test ! -s "$T_DIR/vetoed.sig"

# --- nobody approves: cancelled at the module's timeout ---------------------
write_module_conf "$T_DIR/conf/short.conf" "$URL" 2
t0=$(date +%s)
rc=$(SIGNGATE_PKCS11_CONF="$T_DIR/conf/short.conf" p11 --sign \
    --id "$(hexid firmware)" -m SHA256-RSA-PKCS -i "$T_DIR/data" \
    -o "$T_DIR/late.sig")
t1=$(date +%s)
expect_eq "timeout 2 s: pkcs11-tool fails" "$rc" 1
check "... with CKR_FUNCTION_REJECTED (0x200)" \
    grep -q 'C_SignFinal failed: rv = .*(0x200)' "$T_DIR/p11.err"
check "... after the timeout, not long after ($((t1 - t0)) s)" \
    test $((t1 - t0)) -ge 2 -a $((t1 - t0)) -le 8
id=$(sed -n "s/^signgate-pkcs11: request \([0-9a-f]*\) for key 'firmware': not approved within 2 s: cancelled\$/\1/p" \
    "$T_DIR/p11.err")
check "... saying the request was cancelled" test -n "$id"
api audit GET "/v1/requests/$id" >/dev/null
expect_eq "... and the gateway has it cancelled by ci, with the reason" \
    "$(jbody '"\(.state) \(.cancelled.by) \(.cancelled.reason)"')" \
    "cancelled ci not approved within 2 s; the PKCS#11 caller gave up"

# --- configuration errors ------------------------------------------------------
printf 'url = %s\ncolour = blue\n' "$URL" >"$T_DIR/conf/bad.conf"
expect_eq "an unknown setting: pkcs11-tool fails" \
    "$(SIGNGATE_PKCS11_CONF="$T_DIR/conf/bad.conf" p11 -L)" 1
check "... and the module names file, line and field" \
    grep -qx "signgate-pkcs11: $T_DIR/conf/bad.conf:2: colour: unknown setting" \
    "$T_DIR/p11.err"
# without_conf CMD...: CMD with neither a configuration file nor
# SIGNGATE_PKCS11_CONF (the CLI's variables stay).
without_conf() {
	( unset SIGNGATE_PKCS11_CONF SIGNGATE_PKCS11_EVIDENCE_DIR XDG_CONFIG_HOME
	  export HOME="$T_DIR/nohome"
	  "$@" )
}
expect_eq "no configuration at all: the slot has no token" \
    "$(without_conf env -u SIGNGATE_URL timeout 60 env "${SAN_ENV[@]}" \
    pkcs11-tool --module "$MODULE" -L 2>&1 >"$T_DIR/p11.out")" ""
check "... listed as such" grep -q '(empty)' "$T_DIR/p11.out"
expect_eq "the CLI's variables alone configure it" \
    "$(without_conf p11 --sign --id "$(hexid nightly)" -m ECDSA \
    -i "$T_DIR/data.sha256" -o "$T_DIR/env.sig" $ECDSA)" 0
check "... and that signature verifies" openssl dgst -sha256 \
    -verify "$T_DIR/nightly.pub" -signature "$T_DIR/env.sig" "$T_DIR/data"

# --- p11-kit finds the installed module --------------------------------------
inst="$T_DIR/inst"
# Called from `make test`: the parent's jobserver and variables (SAN=1,
# which make also puts in the environment) are not this make's.
if (unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES SAN
    make -C "$SG_ROOT" --no-print-directory -s install-pkcs11 BUILD=build \
    SAN=0 DESTDIR="$inst") >"$T_DIR/make.log" 2>&1; then
	ok "make install-pkcs11 DESTDIR=…"
else
	not_ok "make install-pkcs11 DESTDIR=…"; sed 's/^/    /' "$T_DIR/make.log" | head
fi
libdir=/usr/lib/$(cc -print-multiarch)/pkcs11
check "the module is installed where Debian keeps PKCS#11 modules" \
    test -f "$inst$libdir/libsigngate-pkcs11.so"
check "the p11-kit module file names it" \
    grep -qx "module: $libdir/libsigngate-pkcs11.so" \
    "$inst/usr/share/p11-kit/modules/signgate.module"
# p11-kit reads a user's configuration (~/.config/pkcs11/modules) only
# when not run by root: as root, list the modules as nobody, with copies
# of the module's configuration and client key that nobody may read.
home="$T_DIR/home"
mkdir -p "$home/.config/pkcs11/modules" "$home/conf"
sed "s|^module: .*|module: $inst$libdir/libsigngate-pkcs11.so|" \
    "$inst/usr/share/p11-kit/modules/signgate.module" \
    >"$home/.config/pkcs11/modules/signgate.module"
cp "$T_DIR/conf/pkcs11.conf" "$T_DIR/conf/ci.pem" "$T_DIR/conf/ci.key" \
    "$T_DIR/conf/ca.pem" "$home/conf/"
as_user=()
if [ "$(id -u)" -eq 0 ]; then
	chown -R nobody "$home"
	as_user=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
fi
if HOME="$home" SIGNGATE_PKCS11_CONF="$home/conf/pkcs11.conf" \
    timeout 60 "${as_user[@]}" p11-kit list-modules >"$T_DIR/p11kit.out" 2>&1
then
	ok "p11-kit list-modules"
else
	not_ok "p11-kit list-modules"; head -n 30 "$T_DIR/p11kit.out" | sed "s/^/    /"
fi
check "... finds the module and its token" \
    awk '/^signgate:/ { m = 1 } m && /token: signgate test/ { f = 1 } END { exit !f }' \
    "$T_DIR/p11kit.out"

# --- the gateway is down: CKR_DEVICE_ERROR within the timeout ---------------
stop_daemon
write_module_conf "$T_DIR/conf/down.conf" "$URL" 5
t0=$(date +%s)
rc=$(SIGNGATE_PKCS11_CONF="$T_DIR/conf/down.conf" p11 --sign \
    --id "$(hexid nightly)" -m ECDSA -i "$T_DIR/data.sha256" -o "$T_DIR/down.sig")
t1=$(date +%s)
expect_eq "gateway down: pkcs11-tool fails" "$rc" 1
check "... with CKR_DEVICE_ERROR" grep -q 'CKR_DEVICE_ERROR' "$T_DIR/p11.err"
check "... saying the gateway cannot be reached" \
    grep -q "^signgate-pkcs11: cannot reach the gateway at $URL" "$T_DIR/p11.err"
check "... within the timeout ($((t1 - t0)) s)" test $((t1 - t0)) -le 5

cat "$T_DIR/p11kit.out" >>"$T_DIR/tools.err"
if grep -qE 'Sanitizer|runtime error:' "$T_DIR/tools.err"; then
	not_ok "no sanitizer report from the module"
	grep -E -A 20 'Sanitizer|runtime error:' "$T_DIR/tools.err" | head -n 40
else
	ok "no sanitizer report from the module"
fi

finish
