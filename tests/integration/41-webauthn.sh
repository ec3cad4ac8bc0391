# Approvals made with a security key (WebAuthn), end to end.
#
# The dev policy with carol's approval key replaced by a WebAuthn
# credential (ES256) and bob given one next to his key (RS256, user
# verification required); tools/webauthn_sign plays the browser and the
# key.
# - A release request approved by alice and dave (key files) and carol
#   (security key) is signed, and `signgate verify` accepts the signature
#   offline from its proof bundle and the policy file alone.
# - Refused: a tampered client data (422), another origin (422), a
#   credential the policy does not list for her (403), a plain signature
#   by an officer with no approval key (403), bob's assertion without user
#   verification (422); accepted: bob's with it.
# - A reject signed with a reason (a security key's, and `signgate reject
#   --reason`'s) shows the reason in the request object and `signgate
#   show`.
# - The signer process refuses forged WebAuthn evidence on its own.
# - A reload that moves carol's credential to another origin: her
#   decision on a pending request no longer counts, alice's (key) does.
. "$(dirname "$0")/lib.sh"

WS="$BUILD/tools/webauthn_sign"
RP=signgate.test
ORIGIN=https://console.signgate.test:8443

"$WS" keygen "$T_DIR/carol.wa" "$RP" "$ORIGIN" >"$T_DIR/carol.lines"
"$WS" keygen --rsa "$T_DIR/bob.wa" "$RP" "$ORIGIN" user-verification \
    >"$T_DIR/bob.lines"
check "two credentials made" test -s "$T_DIR/carol.lines" -a -s "$T_DIR/bob.lines"

# carol: the credential instead of her approval key; bob: both.
P="$T_DIR/policy.conf"
awk -v carol="$T_DIR/carol.lines" -v bob="$T_DIR/bob.lines" '
	function put(f,  l) { while ((getline l < f) > 0) print l; close(f) }
	/^principal / { who = $2 }
	who == "carol" && /^    approval-key$/ { skip = 1; put(carol); next }
	skip { if ($0 ~ /END PUBLIC KEY/) skip = 0; next }
	{ print }
	who == "bob" && /^    client-cn bob$/ { put(bob) }
' "$DEV/policy.conf" >"$P"
check "the policy has both credentials and carol no approval key" bash -c "
	[ \$(grep -c '^    webauthn-key ' '$P') = 2 ] &&
	! awk '/^principal carol/,/^end/' '$P' | grep -q '^    approval-key'"
write_config ".policy = \"$P\""
start_daemon || { not_ok "daemon starts"; finish; exit 1; }

n=0
hex() { n=$((n + 1)); printf '%064x' "$n"; }

# wa_post OFFICER REQUEST_JSON [webauthn_sign options]: prints the status.
wa_post() {
	local who=$1 req=$2 id; shift 2
	id=$(jq -r .id "$req")
	"$WS" approve "$@" "$T_DIR/$who.wa" "$who" "$req" >"$T_DIR/wa.env" ||
	    { echo "webauthn_sign-failed"; return; }
	api "$who" POST "/v1/requests/$id/approvals" \
	    -H 'Content-Type: application/json' --data-binary "@$T_DIR/wa.env"
}

# --- a quorum with a security key ------------------------------------------
printf 'release build 1\n' >"$T_DIR/r1.bin"
new_request ci release "$(hexdigest sha256 "$T_DIR/r1.bin")" >/dev/null
cp "$T_DIR/body" "$T_DIR/r1.json"
R1=$(jq -r .id "$T_DIR/r1.json")
expect_eq "alice approves with her key file (200)" \
    "$(approve_with_openssl alice "$T_DIR/r1.json")" 200
expect_eq "dave approves with his key file (200)" \
    "$(approve_with_openssl dave "$T_DIR/r1.json")" 200
expect_eq "carol approves with her security key (200)" \
    "$(wa_post carol "$T_DIR/r1.json")" 200
expect_eq "... and the request is signed" "$(jbody .state)" signed
check "carol's decision counts" \
    jq -e '[.approvals[] | select(.officer == "carol" and .counts)] | length == 1' \
    "$T_DIR/body"

api ci GET "/v1/requests/$R1/signature" >/dev/null
jbody .signature | base64 -d >"$T_DIR/r1.bin.sig"
jq -j .log.proof "$T_DIR/body" >"$T_DIR/r1.bin.sig.proof"
api - GET /v1/log/key >/dev/null
cp "$T_DIR/body" "$T_DIR/log.vkey"
"$SIGNGATE" verify --key-file "$T_DIR/log.vkey" --policy "$P" \
    --proof "$T_DIR/r1.bin.sig.proof" --signature "$T_DIR/r1.bin.sig" \
    "$T_DIR/r1.bin" >"$T_DIR/verify.out" 2>&1
expect_eq "signgate verify accepts it offline (exit 0)" "$?" 0
check "... naming the three approvers" grep -q '^approvers: .*carol' "$T_DIR/verify.out"

# --- refusals ----------------------------------------------------------------
new_request ci release "$(hex)" >/dev/null
cp "$T_DIR/body" "$T_DIR/r2.json"
R2=$(jq -r .id "$T_DIR/r2.json")
expect_eq "tampered client data (422)" "$(wa_post carol "$T_DIR/r2.json" --tamper)" 422
expect_eq "... naming signatures[0].webauthn.client_data_json" \
    "$(jbody .field)" "signatures[0].webauthn.client_data_json"
expect_eq "another origin (422)" \
    "$(wa_post carol "$T_DIR/r2.json" --origin https://evil.signgate.test)" 422
check "... saying which origin" bash -c \
    "jq -r .detail '$T_DIR/body' | grep -q 'clientDataJSON.origin: .https://evil.signgate.test., expected .$ORIGIN.'"
expect_eq "a credential not in the policy for her (403)" \
    "$(wa_post carol "$T_DIR/r2.json" --cred-id "$(head -n1 "$T_DIR/bob.wa.cred")")" 403
expect_eq "... naming signatures[0].webauthn.credential_id" \
    "$(jbody .field)" "signatures[0].webauthn.credential_id"
check "... and saying it is not registered for carol" bash -c \
    "jq -r .detail '$T_DIR/body' | grep -q 'is not registered for carol in the policy'"
expect_eq "user presence missing (422)" \
    "$(wa_post carol "$T_DIR/r2.json" --no-up)" 422
expect_eq "carol's old key file no longer signs for her (403)" \
    "$(approve_with_openssl carol "$T_DIR/r2.json")" 403
expect_eq "bob's credential requires user verification: without (422)" \
    "$(wa_post bob "$T_DIR/r2.json")" 422
check "... saying UV is not set" bash -c \
    "jq -r .detail '$T_DIR/body' | grep -q 'UV not set'"
expect_eq "bob with user verification (200)" "$(wa_post bob "$T_DIR/r2.json" --uv)" 200
expect_eq "nothing else was recorded" \
    "$(jbody '[.approvals[].officer] | join(",")')" "bob"

# --- a reject with a reason ------------------------------------------------
REASON='the changelog does not match the tag'
expect_eq "carol rejects with a reason (200)" \
    "$(wa_post carol "$T_DIR/r2.json" --reject --reason "$REASON")" 200
api audit GET "/v1/requests/$R2" >/dev/null
expect_eq "the request shows her signed reason" \
    "$(jbody '.approvals[] | select(.officer == "carol") | "\(.decision): \(.reason)"')" \
    "reject: $REASON"
check "bob's approval has no reason" \
    jq -e '.approvals[] | select(.officer == "bob") | has("reason") | not' "$T_DIR/body"
as audit
"$SIGNGATE" show "$R2" >"$T_DIR/show.out" 2>&1
check "signgate show prints it after her decision" \
    grep -q "^approval: carol reject [0-9TZ:-]*: $REASON\$" "$T_DIR/show.out"
# signgate reject --reason, with a key file.
as alice
"$SIGNGATE" reject "$R2" --key "$DEV/officers/alice.key" --yes \
    --reason 'not before the audit' >"$T_DIR/cli.out" 2>&1
expect_eq "signgate reject --reason posts (exit 0)" "$?" 0
api audit GET "/v1/requests/$R2" >/dev/null
expect_eq "... and the request shows alice's reason" \
    "$(jbody '.approvals[] | select(.officer == "alice") | .reason')" \
    "not before the audit"
"$SIGNGATE" approve "$R2" --key "$DEV/officers/alice.key" --yes \
    --reason 'x' >"$T_DIR/cli.out" 2>&1
expect_eq "signgate approve --reason is a usage error (exit 2)" "$?" 2

# --- the signer on its own ---------------------------------------------------
"$BUILD/tools/signer_forge" webauthn "$T_DIR/signgated.json" "$DEV" \
    "$T_DIR/carol.wa" >"$T_DIR/forge.out" 2>&1
# A control and four forgeries: all five must have run and held.
if [ $? -eq 0 ] && grep -qx '5 passed, 0 failed' "$T_DIR/forge.out"; then
	ok "the signer refuses forged WebAuthn evidence on its own"
else
	not_ok "the signer refuses forged WebAuthn evidence on its own"
	cat "$T_DIR/forge.out"
fi
grep '^ok - ' "$T_DIR/forge.out" | sed 's/^/  signer_forge: /'

# --- a reload that moves carol's credential to another origin -------------
new_request ci release "$(hex)" >/dev/null
cp "$T_DIR/body" "$T_DIR/r3.json"
R3=$(jq -r .id "$T_DIR/r3.json")
expect_eq "R3: carol approves with her security key (200)" \
    "$(wa_post carol "$T_DIR/r3.json")" 200
expect_eq "R3: alice approves with her key file (200)" \
    "$(approve_with_openssl alice "$T_DIR/r3.json")" 200
check "R3: both count" jq -e '[.approvals[] | select(.counts)] | length == 2' "$T_DIR/body"
sed -e 's/^version 1$/version 2/' \
    -e "/^    webauthn-key $(head -n1 "$T_DIR/carol.wa.cred") /s|origin $ORIGIN|origin https://signgate.test|" \
    "$P" >"$T_DIR/v2.policy"
check "version 2 moves carol's credential only" \
    [ "$(diff "$P" "$T_DIR/v2.policy" | grep -c '^>')" = 2 ]
cp "$T_DIR/v2.policy" "$P"
before=$(grep -c 'SIGHUP' "$T_DIR/daemon.log")
kill -HUP "$DAEMON_PID"
for i in $(seq 1 500); do
	[ "$(grep -c 'SIGHUP' "$T_DIR/daemon.log")" -gt "$before" ] && break
	pause 0.01
done
check "version 2 is in force" \
    grep -q 'SIGHUP: policy signgate-dev version 2 in force' "$T_DIR/daemon.log"
api audit GET "/v1/requests/$R3" >/dev/null
expect_eq "R3: carol's decision no longer counts, alice's does" \
    "$(jbody '[.approvals[] | "\(.officer):\(.counts)"] | join(" ")')" \
    "carol:false alice:true"

finish
