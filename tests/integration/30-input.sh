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

# Nothing from the refused requests was created: two good ones only.
api ci GET '/v1/requests?limit=200' >/dev/null
expect_eq "only the accepted requests exist" "$(jbody '.requests | length')" 2

finish
