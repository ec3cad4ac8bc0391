# The Swiss HSM rule and key rotation.
# - A policy that places the dev token in Germany while every key allows
#   only Switzerland: nothing is signed, and the reason is clear at start,
#   in /v1/keys, in /readyz and to the requester.  A token missing from the
#   inventory likewise.
# - Rotation: sign, move `nightly` and `release` to new HSM keys, sign
#   again; both signatures verify with the keys /v1/keys lists (active and
#   retired), and a request made before the rotation fails clearly instead
#   of being signed with another key.
. "$(dirname "$0")/lib.sh"

H=$(printf 'c%.0s' $(seq 64))

# --- the token stands in Germany -------------------------------------------
sed 's/^\(    country \)CH$/\1DE/' "$DEV/policy.conf" >"$T_DIR/policy-de.conf"
check "the DE policy differs only in the HSM's country" bash -c \
    "[ \$(diff '$DEV/policy.conf' '$T_DIR/policy-de.conf' | grep -c '^>') = 1 ]"
write_config ".policy = \"$T_DIR/policy-de.conf\""
start_daemon || { not_ok "daemon starts"; finish; exit 1; }
check "at start the log says why each key is not used" \
    grep -q "key 'release' will not be used: token serial .* stands in DE (Zurich); key 'release' is not allowed there" "$T_DIR/daemon.log"
api ci GET /v1/keys >/dev/null
expect_eq "/v1/keys: every key unavailable" \
    "$(jbody '[.keys[].state] | unique | join(",")')" unavailable
check "/v1/keys: the reason names the country" bash -c \
    "jq -r '.keys[] | select(.name==\"nightly\") | .reason' '$T_DIR/body' | grep -q 'stands in DE'"
expect_eq "/readyz: 503" "$(api - GET /readyz)" 503
check "/readyz: says why" grep -q 'stands in DE' "$T_DIR/body"
expect_eq "a request on nightly: 403" "$(new_request ci nightly "$H")" 403
check "... and the requester is told why" bash -c "jbody() { jq -r \"\$1\" '$T_DIR/body'; }; jbody .detail | grep -q 'stands in DE'"
api audit GET '/v1/requests?limit=200' >/dev/null
expect_eq "nothing was created or signed" "$(jbody '.requests | length')" 0
stop_daemon
rm -rf "$T_DIR/state" "$T_DIR/state-hsm" "$T_DIR/signgated.json"

# --- the token is not in the inventory -------------------------------------
sed 's/^hsm [0-9a-f]*$/hsm 0000000000000000/' "$DEV/policy.conf" >"$T_DIR/policy-noinv.conf"
write_config ".policy = \"$T_DIR/policy-noinv.conf\""
start_daemon || { not_ok "daemon starts"; finish; exit 1; }
api ci GET /v1/keys >/dev/null
check "a token missing from the inventory is never used" bash -c \
    "jq -r '.keys[] | select(.name==\"release\") | .reason' '$T_DIR/body' | grep -q 'is not in the HSM inventory'"
expect_eq "... requests are refused (403)" "$(new_request ci nightly "$H")" 403
stop_daemon
rm -rf "$T_DIR/state" "$T_DIR/state-hsm" "$T_DIR/signgated.json"

# --- rotation ----------------------------------------------------------------
# A private copy of the tokens, so the new keys do not touch var/dev.
private_tokens "$T_DIR"
export SOFTHSM2_CONF="$T_DIR/softhsm2.conf"
cp "$DEV/policy.conf" "$T_DIR/policy.conf"
write_config ".policy = \"$T_DIR/policy.conf\""
start_daemon || { not_ok "daemon starts"; finish; exit 1; }
printf 'first artifact\n' >"$T_DIR/a1"
new_request ci nightly "$(hexdigest sha256 "$T_DIR/a1")" >/dev/null
jbody .signature.signature | base64 -d >"$T_DIR/a1.sig"
key_pem nightly >"$T_DIR/nightly-old.pub"
check "before rotation: the nightly signature verifies" \
    openssl dgst -sha256 -verify "$T_DIR/nightly-old.pub" -signature "$T_DIR/a1.sig" "$T_DIR/a1"
new_request ci release "$H" >/dev/null; cp "$T_DIR/body" "$T_DIR/old-release.json"
OLD=$(jq -r .id "$T_DIR/old-release.json")
expect_eq "alice approves the old release request before the rotation" \
    "$(approve_with_openssl alice "$T_DIR/old-release.json")" 200
stop_daemon

# New keys in the HSM and certificates from the dev code-signing CA.
# (Throwaway dev PIN on argv: pkcs11-tool has no other way here.)
P11="pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label signgate-dev --login --pin $(cat "$DEV/pins/signgate-dev.pin")"
mk_key() {	# label id
	$P11 --keypairgen --key-type EC:prime256v1 --label "$1" --id "$2" >/dev/null 2>&1 &&
	$P11 --read-object --type pubkey --label "$1" -o "$T_DIR/$1.pub.der" >/dev/null 2>&1 &&
	openssl pkey -pubin -inform DER -in "$T_DIR/$1.pub.der" -out "$T_DIR/$1.pub.pem" &&
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$T_DIR/throwaway.key" -subj "/CN=signgate dev $1" -out "$T_DIR/$1.csr" 2>/dev/null &&
	printf 'keyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n' >"$T_DIR/cs.ext" &&
	openssl x509 -req -in "$T_DIR/$1.csr" -CA "$DEV/codesign/ca.pem" -CAkey "$DEV/codesign/ca.key" \
	    -CAcreateserial -force_pubkey "$T_DIR/$1.pub.pem" -extfile "$T_DIR/cs.ext" -days 30 \
	    -out "$T_DIR/$1.pem" 2>/dev/null &&
	cat "$T_DIR/$1.pem" "$DEV/codesign/ca.pem" >"$T_DIR/$1.chain.pem"
}
check "a new nightly key is made in the HSM" mk_key nightly-2 31
check "a new release key is made in the HSM" mk_key release-2 32
# Made as root: the token's new files go back to the signer's user.
give_to_signer "$T_DIR/tokens"
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
awk -v dir="$T_DIR" -v now="$NOW" '
	/^key (nightly|release)$/ { k = $2 }
	k != "" && $1 == "object" { print "    object " k "-2"; next }
	k != "" && $1 == "certificate" {
		print "    certificate " dir "/" k "-2.chain.pem"
		print "    retired " $2 " " now
		next
	}
	/^end$/ { k = "" }
	/^version / { print "version 2"; next }
	{ print }
' "$DEV/policy.conf" >"$T_DIR/policy.conf"
check "the rotated policy names the new objects" grep -q 'object nightly-2' "$T_DIR/policy.conf"

start_daemon || { not_ok "daemon starts after the rotation"; finish; exit 1; }
api ci GET /v1/keys >/dev/null
jq -r '.keys[] | select(.name=="nightly") | .public_key_pem' "$T_DIR/body" >"$T_DIR/nightly-new.pub"
jq -r '.keys[] | select(.name=="nightly") | .retired[0].public_key_pem' "$T_DIR/body" >"$T_DIR/nightly-retired.pub"
check "/v1/keys lists the new key" cmp <(openssl pkey -pubin -in "$T_DIR/nightly-new.pub") <(openssl pkey -pubin -in "$T_DIR/nightly-2.pub.pem")
check "/v1/keys lists the old key as retired" cmp <(openssl pkey -pubin -in "$T_DIR/nightly-retired.pub") <(openssl pkey -pubin -in "$T_DIR/nightly-old.pub")
expect_eq "... with its date" "$(jbody '.keys[] | select(.name=="nightly") | .retired[0] | "\(.state) \(.retired_at)"')" "retired $NOW"

as audit
"$SIGNGATE" keys >"$T_DIR/keys.txt" 2>&1
check "signgate keys shows the retired key with its date" \
    grep -q "retired $NOW: spki sha256:$(openssl pkey -pubin -in "$T_DIR/nightly-old.pub" -outform DER | sha256sum | cut -d' ' -f1), CN=signgate dev nightly" "$T_DIR/keys.txt"

printf 'second artifact\n' >"$T_DIR/a2"
expect_eq "after rotation: nightly signs (201)" "$(new_request ci nightly "$(hexdigest sha256 "$T_DIR/a2")")" 201
jbody .signature.signature | base64 -d >"$T_DIR/a2.sig"
check "the new signature verifies with the active key" \
    openssl dgst -sha256 -verify "$T_DIR/nightly-new.pub" -signature "$T_DIR/a2.sig" "$T_DIR/a2"
check "the old signature verifies with the retired key" \
    openssl dgst -sha256 -verify "$T_DIR/nightly-retired.pub" -signature "$T_DIR/a1.sig" "$T_DIR/a1"
check "the new signature is not the old key's" bash -c \
    "! openssl dgst -sha256 -verify '$T_DIR/nightly-retired.pub' -signature '$T_DIR/a2.sig' '$T_DIR/a2' >/dev/null 2>&1"

# The release request made before the rotation names the old key.
expect_eq "bob approves the old request" "$(approve_with_openssl bob "$T_DIR/old-release.json")" 200
expect_eq "dave's approval completes the quorum" "$(approve_with_openssl dave "$T_DIR/old-release.json")" 200
expect_eq "... but the request fails instead of using another key" "$(jbody .state)" failed
check "... and says the key was rotated" bash -c "jq -r .error '$T_DIR/body' | grep -q 'was rotated at $NOW'"
expect_eq "it has no signature (409)" "$(api ci GET /v1/requests/$OLD/signature)" 409

finish
