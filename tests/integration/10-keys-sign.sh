# Keys and immediate signatures: every key type signs through the HSM and
# each signature verifies with the openssl command line against the public
# key that /v1/keys publishes.  The dev token also holds an unrelated
# Ed25519 key, as a shared HSM would.
. "$(dirname "$0")/lib.sh"

start_daemon || { not_ok "daemon starts"; finish; exit 1; }
ok "daemon starts with the dev environment"

check "the dev token holds the unrelated Ed25519 key" bash -c \
    "pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label signgate-dev -O 2>/dev/null | grep -q 'unrelated-ed25519'"

expect_eq "GET /v1/keys answers 200" "$(api ci GET /v1/keys)" 200
expect_eq "the answer names the caller" "$(jbody .principal)" ci
expect_eq "keys listed" "$(jbody '[.keys[].name] | sort | join(",")')" \
    "firmware,firmware-pss,nightly,release"
expect_eq "release is active in Zurich, CH" \
    "$(jbody '.keys[] | select(.name=="release") | [.state,.hsm.site,.hsm.country,.algorithm] | join(" ")')" \
    "active Zurich CH ecdsa-p256"
expect_eq "firmware-pss is rsa-pss" \
    "$(jbody '.keys[] | select(.name=="firmware-pss") | .algorithm')" "rsa-pss"

# The published SPKI digest is the SHA-256 of the DER public key.
key_pem nightly >"$T_DIR/nightly.pub"
want=$(openssl pkey -pubin -in "$T_DIR/nightly.pub" -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1)
api ci GET /v1/keys >/dev/null
expect_eq "spki_sha256 is the SHA-256 of the DER public key" \
    "$(jbody '.keys[] | select(.name=="nightly") | .spki_sha256')" "$want"
check "the certificate's key is the HSM key" bash -c \
    "jq -r '.keys[] | select(.name==\"nightly\") | .certificate_pem' '$T_DIR/body' | openssl x509 -noout -pubkey | openssl pkey -pubin | cmp - <(openssl pkey -pubin -in '$T_DIR/nightly.pub')"

head -c 100000 /dev/urandom >"$T_DIR/artifact.bin"
for alg in sha256 sha384 sha512; do
	hex=$(hexdigest $alg "$T_DIR/artifact.bin")
	st=$(new_request ci nightly "$hex" $alg)
	expect_eq "nightly/$alg: 201 Created" "$st" 201
	expect_eq "nightly/$alg: signed at once" "$(jbody .state)" signed
	jbody .signature.signature | base64 -d >"$T_DIR/sig.$alg"
	check "nightly/$alg: openssl dgst -verify accepts the signature" \
	    openssl dgst -$alg -verify "$T_DIR/nightly.pub" \
	    -signature "$T_DIR/sig.$alg" "$T_DIR/artifact.bin"
	id=$(jbody .id)
	expect_eq "nightly/$alg: GET signature 200" \
	    "$(api audit GET /v1/requests/$id/signature)" 200
	check "nightly/$alg: the signature endpoint returns the same bytes" \
	    bash -c "jq -r .signature '$T_DIR/body' | base64 -d | cmp - '$T_DIR/sig.$alg'"
done

# A changed artifact does not verify.
cp "$T_DIR/artifact.bin" "$T_DIR/other.bin"; printf x >>"$T_DIR/other.bin"
check "a signature does not verify another artifact" bash -c \
    "! openssl dgst -sha256 -verify '$T_DIR/nightly.pub' -signature '$T_DIR/sig.sha256' '$T_DIR/other.bin'"

# Keys that need approvals sign once the quorum holds; approvals are made
# here with nothing but openssl.
sign_with_approvals() {
	local key=$1 alg=$2; shift 2
	local hex st o
	hex=$(hexdigest "$alg" "$T_DIR/artifact.bin")
	st=$(new_request ci "$key" "$hex" "$alg")
	[ "$st" = 201 ] || { echo "create: $st $(body)"; return 1; }
	[ "$(jbody .state)" = pending ] || { echo "not pending"; return 1; }
	cp "$T_DIR/body" "$T_DIR/req.json"
	for o in "$@"; do
		st=$(approve_with_openssl "$o" "$T_DIR/req.json")
		[ "$st" = 200 ] || { echo "approve $o: $st $(body)"; return 1; }
	done
	[ "$(jbody .state)" = signed ] || { echo "state $(jbody .state)"; return 1; }
	jbody .signature.signature | base64 -d >"$T_DIR/sig.$key.$alg"
}

key_pem release >"$T_DIR/release.pub"
key_pem firmware >"$T_DIR/firmware.pub"
key_pem firmware-pss >"$T_DIR/firmware-pss.pub"
check "release (ECDSA P-256) signs after alice, bob and dave approve" \
    sign_with_approvals release sha256 alice bob dave
check "release: openssl verifies" openssl dgst -sha256 -verify \
    "$T_DIR/release.pub" -signature "$T_DIR/sig.release.sha256" "$T_DIR/artifact.bin"
for alg in sha256 sha384 sha512; do
	check "firmware (RSA-3072 PKCS#1 v1.5, $alg) signs after two officers" \
	    sign_with_approvals firmware $alg alice carol
	check "firmware/$alg: openssl verifies PKCS#1 v1.5" openssl dgst -$alg \
	    -verify "$T_DIR/firmware.pub" -signature "$T_DIR/sig.firmware.$alg" \
	    "$T_DIR/artifact.bin"
	check "firmware-pss (RSA-PSS, $alg) signs after two officers" \
	    sign_with_approvals firmware-pss $alg bob carol
	check "firmware-pss/$alg: openssl verifies PSS with salt = digest length" \
	    openssl dgst -$alg -verify "$T_DIR/firmware-pss.pub" \
	    -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest \
	    -signature "$T_DIR/sig.firmware-pss.$alg" "$T_DIR/artifact.bin"
done
check "firmware and firmware-pss are the same HSM key" \
    cmp "$T_DIR/firmware.pub" "$T_DIR/firmware-pss.pub"

expect_eq "healthz on loopback" "$(api - GET /healthz)" 200
expect_eq "readyz makes a real test signature" "$(api - GET /readyz)" 200
api - GET /metrics >/dev/null
expect_eq "metrics: signatures by key" \
    "$(grep '^signgate_signatures_total{key="nightly"}' "$T_DIR/body")" \
    'signgate_signatures_total{key="nightly"} 3'
expect_eq "metrics: firmware-pss signed three times" \
    "$(grep '^signgate_signatures_total{key="firmware-pss"}' "$T_DIR/body")" \
    'signgate_signatures_total{key="firmware-pss"} 3'
check "metrics: requests by endpoint and status" \
    grep -q '^signgate_http_requests_total{endpoint="POST /v1/requests",status="201"} 10$' "$T_DIR/body"
check "metrics: the HSM latency histogram counts every signing call" bash -c \
    "c=\$(sed -n 's/^signgate_hsm_sign_seconds_count //p' '$T_DIR/body'); inf=\$(sed -n 's/^signgate_hsm_sign_seconds_bucket{le=\"+Inf\"} //p' '$T_DIR/body'); [ \"\$c\" -ge 10 ] && [ \"\$c\" = \"\$inf\" ]"
check "metrics: log size equals the checkpoint's" bash -c \
    "[ \"\$(sed -n 's/^signgate_log_size //p' '$T_DIR/body')\" = \"\$(curl -sS --cacert '$DEV/tls/ca.pem' '$URL/v1/log/checkpoint' | sed -n 2p)\" ]"
check "metrics: pending requests and checkpoint age are reported" bash -c \
    "grep -q '^signgate_pending_requests 0$' '$T_DIR/body' && grep -q '^signgate_checkpoint_age_seconds [0-9]' '$T_DIR/body'"

finish
