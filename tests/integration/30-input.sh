# Input discipline: every malformed request is refused with a clear
# problem document naming the field, and nothing is created.
. "$(dirname "$0")/lib.sh"

start_daemon || { not_ok "daemon starts"; finish; exit 1; }

H=$(printf '%064d' 0)
good='{"key":"nightly","digest":{"algorithm":"sha256","value":"'$H'"},"format":"raw","artifact":{"name":"a"}}'

# expect_problem NAME STATUS FIELD JSON [curl args]
expect_problem() {
	local name=$1 want=$2 field=$3 json=$4; shift 4
	local st
	st=$(post_json ci /v1/requests "$json" "$@")
	if [ "$st" = "$want" ] && [ "$(jbody .status)" = "$want" ] &&
	    { [ -z "$field" ] || [ "$(jbody .field)" = "$field" ]; } &&
	    grep -q 'application/problem+json' "$T_DIR/headers"; then
		ok "$name ($want${field:+, field $field})"
	else
		not_ok "$name: got $st $(body)"
	fi
}
# Keep response headers for the content-type check.
post_json() {
	local who=$1 path=$2 json=$3; shift 3
	api "$who" POST "$path" -H 'Content-Type: application/json' \
	    -D "$T_DIR/headers" --data-binary "$json" "$@"
}

expect_eq "a good request is accepted" "$(post_json ci /v1/requests "$good")" 201

expect_problem "malformed JSON" 400 "" '{"key": '
expect_problem "not an object" 400 "" '[1,2]'
expect_problem "duplicate keys" 400 "" '{"key":"nightly","key":"release","digest":{"algorithm":"sha256","value":"'$H'"},"artifact":{"name":"a"}}'
expect_problem "unknown top-level field" 400 "extra" '{"key":"nightly","digest":{"algorithm":"sha256","value":"'$H'"},"artifact":{"name":"a"},"extra":1}'
expect_problem "unknown digest field" 400 "digest.salt" '{"key":"nightly","digest":{"algorithm":"sha256","value":"'$H'","salt":"x"},"artifact":{"name":"a"}}'
expect_problem "missing key" 400 "key" '{"digest":{"algorithm":"sha256","value":"'$H'"},"artifact":{"name":"a"}}'
expect_problem "key not a string" 400 "key" '{"key":5,"digest":{"algorithm":"sha256","value":"'$H'"},"artifact":{"name":"a"}}'
expect_problem "unknown digest algorithm" 400 "digest.algorithm" '{"key":"nightly","digest":{"algorithm":"md5","value":"'$H'"},"artifact":{"name":"a"}}'
expect_problem "sha256 digest too short" 400 "digest.value" '{"key":"nightly","digest":{"algorithm":"sha256","value":"'${H:2}'"},"artifact":{"name":"a"}}'
expect_problem "sha384 with a sha256-sized value" 400 "digest.value" '{"key":"nightly","digest":{"algorithm":"sha384","value":"'$H'"},"artifact":{"name":"a"}}'
expect_problem "non-hex digest" 400 "digest.value" '{"key":"nightly","digest":{"algorithm":"sha256","value":"'${H:2}'zz"},"artifact":{"name":"a"}}'
expect_problem "bad format" 400 "format" '{"key":"nightly","digest":{"algorithm":"sha256","value":"'$H'"},"format":"pgp","artifact":{"name":"a"}}'
expect_problem "missing artifact" 400 "artifact" '{"key":"nightly","digest":{"algorithm":"sha256","value":"'$H'"}}'
expect_problem "artifact without name" 400 "artifact.name" '{"key":"nightly","digest":{"algorithm":"sha256","value":"'$H'"},"artifact":{"version":"1"}}'
expect_problem "artifact value not a string" 400 "artifact.version" '{"key":"nightly","digest":{"algorithm":"sha256","value":"'$H'"},"artifact":{"name":"a","version":1}}'
expect_problem "artifact value with a control character" 400 "artifact.name" '{"key":"nightly","digest":{"algorithm":"sha256","value":"'$H'"},"artifact":{"name":"a\nb"}}'
expect_problem "unknown algorithm" 400 "algorithm" '{"key":"nightly","algorithm":"dsa","digest":{"algorithm":"sha256","value":"'$H'"},"artifact":{"name":"a"}}'
expect_problem "algorithm not a string" 400 "algorithm" '{"key":"nightly","algorithm":1,"digest":{"algorithm":"sha256","value":"'$H'"},"artifact":{"name":"a"}}'
# A client that expects one scheme never gets another: the key's
# algorithm must be the one named.
expect_problem "another key's algorithm" 400 "algorithm" '{"key":"nightly","algorithm":"rsa-pss","digest":{"algorithm":"sha256","value":"'$H'"},"artifact":{"name":"a"}}'
check "... the detail names both schemes" grep -q "key 'nightly' signs with ecdsa-p256, not rsa-pss" "$T_DIR/body"
expect_problem "PKCS#1 v1.5 for an RSA-PSS key" 400 "algorithm" '{"key":"firmware-pss","algorithm":"rsa-pkcs1","digest":{"algorithm":"sha256","value":"'$H'"},"artifact":{"name":"a"}}'
expect_eq "the key's own algorithm is accepted" "$(post_json ci /v1/requests '{"key":"nightly","algorithm":"ecdsa-p256","digest":{"algorithm":"sha256","value":"'$H'"},"artifact":{"name":"b"}}')" 201
expect_problem "unknown key" 404 "key" '{"key":"nosuchkey","digest":{"algorithm":"sha256","value":"'$H'"},"artifact":{"name":"a"}}'

st=$(api alice POST /v1/requests -H 'Content-Type: application/json' --data-binary "$good")
expect_eq "an officer may not request (403)" "$st" 403
st=$(api audit POST /v1/requests -H 'Content-Type: application/json' --data-binary "$good")
expect_eq "an auditor may not request (403)" "$st" 403
st=$(api ci POST /v1/requests -H 'Content-Type: text/plain' --data-binary "$good")
expect_eq "wrong Content-Type (415)" "$st" 415

# 64 KiB body cap, both with Content-Length and chunked.
head -c 70000 /dev/zero | tr '\0' ' ' >"$T_DIR/big"
st=$(api ci POST /v1/requests -H 'Content-Type: application/json' --data-binary "@$T_DIR/big")
expect_eq "a body over 64 KiB (413)" "$st" 413
st=$(api ci POST /v1/requests -H 'Content-Type: application/json' \
    -H 'Transfer-Encoding: chunked' --data-binary "@$T_DIR/big")
expect_eq "a chunked body over 64 KiB (413)" "$st" 413

expect_eq "unknown endpoint (404)" "$(api ci GET /v1/nothing)" 404
expect_eq "unknown request id (404)" "$(api ci GET /v1/requests/0123456789abcdef0123456789abcdef)" 404
expect_eq "malformed request id (404)" "$(api ci GET /v1/requests/xyz)" 404
expect_eq "wrong method (405)" "$(api ci DELETE /v1/keys)" 405
expect_eq "bad list filter (400)" "$(api ci GET '/v1/requests?state=bogus')" 400
expect_eq "bad wait (400)" "$(api ci GET "/v1/requests/0123456789abcdef0123456789abcdef?wait=61")" 400

# Idempotency: a retry returns the original, a different body is refused.
st=$(post_json ci /v1/requests "$good" -H 'Idempotency-Key: retry-1')
first=$(jbody .id)
expect_eq "idempotent create (201)" "$st" 201
st=$(post_json ci /v1/requests "$good" -H 'Idempotency-Key: retry-1')
expect_eq "the retry returns the original request" "$st $(jbody .id)" "200 $first"
other='{"key":"nightly","digest":{"algorithm":"sha256","value":"'$(printf '%064d' 1)'"},"artifact":{"name":"a"}}'
st=$(post_json ci /v1/requests "$other" -H 'Idempotency-Key: retry-1')
expect_eq "the same key with another body (409)" "$st" 409

# Nothing from the refused requests was created: three good ones only.
api ci GET '/v1/requests?limit=200' >/dev/null
expect_eq "only the accepted requests exist" "$(jbody '.requests | length')" 3

# --- artifact text that would mislead an officer -----------------------------
# The bytes go into the body raw (printf), never through jq, so that what
# the daemon sees is exactly the attack.
# text_problem NAME FIELD DETAIL_REGEX ARTIFACT_JSON_MEMBERS
text_problem() {
	local name=$1 field=$2 want=$3 members=$4 st
	st=$(post_json ci /v1/requests "$(printf '{"key":"nightly","digest":{"algorithm":"sha256","value":"%s"},"artifact":{%s}}' "$H" "$members")")
	if [ "$st" = 400 ] && [ "$(jbody .field)" = "$field" ] &&
	    jbody .detail | grep -qE "^$field: $want"; then
		ok "$name (400, $field)"
	else
		not_ok "$name: got $st $(body)"
	fi
}
text_problem "a right-to-left override in the name" artifact.name \
    'U\+202E \(RIGHT-TO-LEFT OVERRIDE\) is not allowed' \
    "$(printf '"name":"invoice\xe2\x80\xaegpj.exe"')"
text_problem "... written as a JSON escape" artifact.name \
    'U\+202E \(RIGHT-TO-LEFT OVERRIDE\) is not allowed' '"name":"invoice\u202egpj.exe"'
text_problem "a C1 NEXT LINE in the version" artifact.version \
    'U\+0085 \(NEXT LINE\) is not allowed' \
    "$(printf '"name":"a","version":"1.0\xc2\x85signed"')"
text_problem "a zero width space in the name" artifact.name \
    'U\+200B \(ZERO WIDTH SPACE\) is not allowed' "$(printf '"name":"a\xe2\x80\x8bb"')"
text_problem "a byte order mark in the name" artifact.name \
    'U\+FEFF \(ZERO WIDTH NO-BREAK SPACE\) is not allowed' "$(printf '"name":"\xef\xbb\xbfa"')"
text_problem "a line separator in the version" artifact.version \
    'U\+2028 \(LINE SEPARATOR\) is not allowed' '"name":"a","version":"1\u2028"'
text_problem "a tag character in a metadata value" artifact.commit \
    'U\+E0041 \(a tag character\) is not allowed' "$(printf '"name":"a","commit":"x\xf3\xa0\x81\x81"')"
text_problem "DEL in the name" artifact.name 'U\+007F \(DELETE\) is not allowed' \
    "$(printf '"name":"a\x7f"')"
text_problem "invalid UTF-8 in the name" artifact.name 'is not valid UTF-8' \
    "$(printf '"name":"caf\xe9.exe"')"
text_problem "an overlong '/' in the name" artifact.name 'is not valid UTF-8' \
    "$(printf '"name":"..\xc0\xafetc"')"
text_problem "an encoded surrogate in the version" artifact.version 'is not valid UTF-8' \
    "$(printf '"name":"a","version":"\xed\xa0\x80"')"
text_problem "a noncharacter in the name" artifact.name 'is not valid UTF-8: U\+FFFF is a noncharacter' \
    "$(printf '"name":"a\xef\xbf\xbf"')"
st=$(post_json ci /v1/requests "$(printf '{"key":"nightly","digest":{"algorithm":"sha256","value":"%s"},"artifact":{"name":"a","v\xff":"1"}}' "$H")")
expect_eq "invalid UTF-8 in an artifact field name (400)" "$st" 400
expect_eq "... names the artifact" "$(jbody .field)" artifact

# Ordinary non-ASCII names are text like any other.
utf_ok() {
	local name=$1 art=$2 st
	st=$(post_json ci /v1/requests "$(printf '{"key":"nightly","digest":{"algorithm":"sha256","value":"%s"},"artifact":%s}' "$(printf '%064d' $3)" "$art")")
	if [ "$st" = 201 ] && [ "$(jbody .artifact | jq -cS .)" = "$(printf '%s' "$art" | jq -cS .)" ]; then
		ok "$name is accepted and kept as sent"
	else
		not_ok "$name: got $st $(body)"
	fi
}
utf_ok "a German name" "$(printf '{"name":"\xc3\x9cberpr\xc3\xbcfung.exe","version":"1.0-\xc3\x9f"}')" 11
utf_ok "a CJK name" "$(printf '{"name":"\xe7\xad\xbe\xe5\x90\x8d\xe7\xbd\x91\xe5\x85\xb3.bin"}')" 12
utf_ok "a Hebrew name (right-to-left letters, no controls)" "$(printf '{"name":"\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d.msi"}')" 13
api ci GET '/v1/requests?limit=200' >/dev/null
expect_eq "only the accepted requests exist" "$(jbody '.requests | length')" 6

finish
