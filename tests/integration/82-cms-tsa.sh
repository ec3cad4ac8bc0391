# Code-signing formats: detached CMS SignedData built from the digest alone
# for every key type, verified by `openssl cms`; RFC 3161 timestamps from a
# local test authority, verified by `openssl ts`; and what happens when the
# authority fails (required: the request fails clearly; optional: signed
# without a timestamp, and the response says so).
. "$(dirname "$0")/lib.sh"

CA="$DEV/codesign/ca.pem"
printf 'the artifact\n' >"$T_DIR/art"
printf 'another artifact\n' >"$T_DIR/other"
HEX=$(hexdigest sha256 "$T_DIR/art")

cms_verify() {	# p7s content
	openssl cms -verify -binary -inform DER -in "$1" -content "$2" \
	    -CAfile "$CA" -purpose any -out /dev/null 2>"$T_DIR/cms.err"
}

# sign_cms KEY OFFICERS... : leaves the final request JSON in $T_DIR/body
sign_cms() {
	local key=$1 st o; shift
	st=$(new_request ci "$key" "$HEX" sha256 cms)
	[ "$st" = 201 ] || { echo "create: $st $(body)"; return 1; }
	cp "$T_DIR/body" "$T_DIR/req.$key.json"
	for o in "$@"; do
		st=$(approve_with_openssl "$o" "$T_DIR/req.$key.json")
		[ "$st" = 200 ] || { echo "approve $o: $st $(body)"; return 1; }
	done
}

# --- CMS for every key type, no timestamps ---------------------------------
start_daemon || { not_ok "daemon starts"; finish; exit 1; }
for spec in "nightly" "release alice bob dave" "firmware alice carol" "firmware-pss bob carol"; do
	set -- $spec
	key=$1
	check "$key: a CMS request is signed" sign_cms "$@"
	jbody .signature.cms | base64 -d >"$T_DIR/$key.p7s"
	expect_eq "$key: state signed, format cms" "$(jbody '"\(.state) \(.signature.format)"')" "signed cms"
	check "$key: openssl cms -verify accepts the CMS" cms_verify "$T_DIR/$key.p7s" "$T_DIR/art"
	check "$key: the CMS does not verify another file" bash -c \
	    "! openssl cms -verify -binary -inform DER -in '$T_DIR/$key.p7s' -content '$T_DIR/other' -CAfile '$CA' -purpose any -out /dev/null 2>/dev/null"
	check "$key: the CMS carries the signing certificate chain" bash -c \
	    "openssl pkcs7 -inform DER -in '$T_DIR/$key.p7s' -print_certs 2>/dev/null | grep -c 'subject=' | grep -qx 2"
done
check "firmware-pss: the signer info uses RSASSA-PSS" bash -c \
    "openssl cms -cmsout -print -inform DER -in '$T_DIR/firmware-pss.p7s' | grep -q 'rsassaPss'"
check "a nightly CMS carries the signed attributes" bash -c \
    "openssl cms -cmsout -print -inform DER -in '$T_DIR/nightly.p7s' | grep -q 'signingTime' &&
     openssl cms -cmsout -print -inform DER -in '$T_DIR/nightly.p7s' | grep -q 'messageDigest'"
# Through the CLI: sign --format cms writes FILE.p7s, and verify checks it
# offline with the proof bundle.
as ci
cp "$T_DIR/art" "$T_DIR/cli.bin"
check "signgate sign --format cms writes FILE.p7s" \
    "$SIGNGATE" sign --key nightly --format cms "$T_DIR/cli.bin"
check "... which openssl cms -verify accepts" cms_verify "$T_DIR/cli.bin.p7s" "$T_DIR/cli.bin"
"$SIGNGATE" log key >"$T_DIR/log.vkey"
check "signgate verify checks the CMS offline with its proof" \
    "$SIGNGATE" verify --key-file "$T_DIR/log.vkey" --policy "$DEV/policy.conf" \
    --proof "$T_DIR/cli.bin.p7s.proof" --signature "$T_DIR/cli.bin.p7s" "$T_DIR/cli.bin"
check "signgate verify refuses the CMS for another file" bash -c \
    "! '$SIGNGATE' verify --key-file '$T_DIR/log.vkey' --policy '$DEV/policy.conf' \
    --proof '$T_DIR/cli.bin.p7s.proof' --signature '$T_DIR/cli.bin.p7s' '$T_DIR/other' 2>/dev/null"
stop_daemon

# --- a test time-stamping authority -----------------------------------------
d="$T_DIR/tsa"; mkdir -p "$d"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$d/ca.key" -out "$d/ca.pem" -subj "/CN=test TSA CA" -days 2 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$d/tsa.key" -out "$d/tsa.csr" -subj "/CN=test TSA" 2>/dev/null
printf 'extendedKeyUsage=critical,timeStamping\nkeyUsage=critical,digitalSignature\n' >"$d/ext"
openssl x509 -req -in "$d/tsa.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
    -out "$d/tsa.pem" -days 2 -extfile "$d/ext" 2>/dev/null
chmod 600 "$d/tsa.key"
"$BUILD/tools/tsa_server" --cert "$d/tsa.pem" --key "$d/tsa.key" --port 0 >"$d/out" 2>"$d/err" &
TSA_PID=$!
for i in $(seq 1 100); do grep -q listening "$d/out" && break; sleep 0.05; done
TSA_PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$d/out")
check "the test authority listens" test -n "$TSA_PORT"
DEAD="http://127.0.0.1:1/"
# A new log: a new store, and a new signer record with it.
rm -f "$T_DIR/signgated.json"; rm -rf "$T_DIR/state" "$T_DIR/state-hsm"
write_config ".timestamping = [
    {\"key\": \"nightly\", \"url\": \"http://127.0.0.1:$TSA_PORT/\", \"required\": true},
    {\"key\": \"firmware\", \"url\": \"http://127.0.0.1:$TSA_PORT/\", \"required\": true},
    {\"key\": \"release\", \"url\": \"$DEAD\", \"required\": false, \"timeout_ms\": 2000},
    {\"key\": \"firmware-pss\", \"url\": \"$DEAD\", \"required\": true, \"timeout_ms\": 2000}]"
start_daemon || { not_ok "daemon starts with timestamping"; finish; exit 1; }

for spec in "nightly" "firmware alice carol"; do
	set -- $spec
	key=$1
	check "$key: a timestamped CMS request is signed" sign_cms "$@"
	jbody .signature.cms | base64 -d >"$T_DIR/$key.ts.p7s"
	jbody .signature.signature | base64 -d >"$T_DIR/$key.sigvalue"
	jbody .signature.timestamp.token | base64 -d >"$T_DIR/$key.tst"
	expect_eq "$key: the response says a timestamp was added" "$(jbody .signature.timestamp.status)" added
	check "$key: openssl cms -verify accepts the timestamped CMS" cms_verify "$T_DIR/$key.ts.p7s" "$T_DIR/art"
	check "$key: the CMS holds the id-aa-timeStampToken attribute" bash -c \
	    "openssl cms -cmsout -print -inform DER -in '$T_DIR/$key.ts.p7s' | grep -q 'id-smime-aa-timeStampToken'"
	check "$key: openssl ts -verify accepts the token over the signature value" \
	    openssl ts -verify -token_in -in "$T_DIR/$key.tst" -data "$T_DIR/$key.sigvalue" -CAfile "$d/ca.pem"
	check "$key: the token does not match other data" bash -c \
	    "! openssl ts -verify -token_in -in '$T_DIR/$key.tst' -data '$T_DIR/art' -CAfile '$d/ca.pem' >/dev/null 2>&1"
done

# Optional authority down: signed without a timestamp, and said so.
check "release with the optional authority down is signed" sign_cms release alice bob dave
expect_eq "... the response says the timestamp was skipped" "$(jbody .signature.timestamp.status)" skipped
check "... and why" bash -c "jq -r .signature.timestamp.detail '$T_DIR/body' | grep -q 'cannot connect'"
jbody .signature.cms | base64 -d >"$T_DIR/release.nots.p7s"
check "... the CMS verifies" cms_verify "$T_DIR/release.nots.p7s" "$T_DIR/art"

# Required authority down: the request fails clearly and is never signed.
sign_cms firmware-pss bob carol
expect_eq "firmware-pss with the required authority down: failed" "$(jbody .state)" failed
check "... and the error names the authority" bash -c "jq -r .error '$T_DIR/body' | grep -q 'time-stamping authority failed'"
expect_eq "... no signature (409)" "$(api ci GET /v1/requests/$(jq -r .id "$T_DIR/req.firmware-pss.json")/signature)" 409
expect_eq "a nightly request whose authority dies: 503" \
    "$(kill "$TSA_PID"; wait "$TSA_PID" 2>/dev/null; new_request ci nightly "$HEX" sha256 cms)" 503
check "... saying the authority failed" bash -c "jq -r .detail '$T_DIR/body' | grep -q 'time-stamping authority failed'"

finish
