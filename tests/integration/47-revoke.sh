# Revocation, reload and cancel.
#
# - An officer revoked by a reload (carol: made an auditor, in no group)
#   no longer counts on requests made before the reload: her approval
#   posted afterwards is refused, and one posted before no longer
#   completes the quorum (the request waits for another officer, and the
#   signature's logged evidence leaves her out).
# - A request view always describes the request's own policy (group
#   labels and counts), even after a reload renamed the group.
# - A reload that renews a key's certificate applies everywhere: /v1/keys
#   and the chain inside new CMS signatures; one that changes an HSM
#   location or brings a certificate for another key is refused and says
#   why, naming the key and the field.
# - A pending request can be cancelled by its requester or an eligible
#   officer (API and CLI), nobody else, and only while pending; the
#   cancel is in the log and ends a waiting `signgate sign` at once.
. "$(dirname "$0")/lib.sh"

P="$T_DIR/policy.conf"
cp "$DEV/policy.conf" "$P"
cp "$P" "$T_DIR/v1.policy"
write_config ".policy = \"$P\""
start_daemon || { not_ok "daemon starts"; finish; exit 1; }

n=0
hex() { n=$((n + 1)); printf '%064x' "$n"; }

# reload VERSION: SIGHUP, then wait (bounded) for the log to answer.
reload() {
	local before i
	before=$(grep -c 'SIGHUP' "$T_DIR/daemon.log")
	kill -HUP "$DAEMON_PID"
	for i in $(seq 1 100); do
		[ "$(grep -c 'SIGHUP' "$T_DIR/daemon.log")" -gt "$before" ] && return 0
		sleep 0.1
	done
	return 1
}

# --- before the reload: carol is a security officer -------------------------
new_request ci release "$(hex)" >/dev/null; cp "$T_DIR/body" "$T_DIR/a.json"
A=$(jq -r .id "$T_DIR/a.json")
expect_eq "A: alice approves under version 1" \
    "$(approve_with_openssl alice "$T_DIR/a.json")" 200
new_request ci release "$(hex)" >/dev/null; cp "$T_DIR/body" "$T_DIR/b.json"
B=$(jq -r .id "$T_DIR/b.json")
expect_eq "B: carol approves under version 1" \
    "$(approve_with_openssl carol "$T_DIR/b.json")" 200
expect_eq "B: dave approves under version 1" \
    "$(approve_with_openssl dave "$T_DIR/b.json")" 200
expect_eq "B: pending, one security officer missing" \
    "$(jbody '"\(.state) \(.required[0].group) \(.required[0].missing)"')" \
    "pending security-officers 1"
new_request ci firmware "$(hex)" >/dev/null; cp "$T_DIR/body" "$T_DIR/f.json"
F=$(jq -r .id "$T_DIR/f.json")
new_request ci release "$(hex)" >/dev/null; cp "$T_DIR/body" "$T_DIR/c.json"
C=$(jq -r .id "$T_DIR/c.json")

# --- version 2: carol revoked, the group renamed ----------------------------
awk '
	/^principal carol$/ { carol = 1 }
	carol && /^    roles officer$/ { print "    roles auditor"; next }
	carol && /^    approval-key$/ { skip = 1; next }
	skip { if ($0 ~ /END PUBLIC KEY/) skip = 0; next }
	/^end$/ { carol = 0 }
	/^    members alice bob carol$/ { print "    members alice bob"; next }
	{ print }
' "$T_DIR/v1.policy" | sed -e 's/^version 1$/version 2/' \
    -e 's/require-grant security-officers 3$/require-grant security-officers 2/' \
    -e 's/security-officers/secops/g' >"$T_DIR/v2.policy"
cp "$T_DIR/v2.policy" "$P"
check "SIGHUP answered" reload
check "version 2 is in force" grep -q 'SIGHUP: policy signgate-dev version 2 in force' "$T_DIR/daemon.log"

# The attack, posted after the reload: refused, clearly.
expect_eq "A: carol's approval after the reload is refused (403)" \
    "$(approve_with_openssl carol "$T_DIR/a.json")" 403
check "... saying she may no longer approve under the policy in force" \
    bash -c "jq -r .detail '$T_DIR/body' | grep -q \"carol may no longer approve key release: the policy in force (signgate-dev@2)\""
api audit GET "/v1/requests/$A" >/dev/null
expect_eq "A: still pending, only alice recorded" \
    "$(jbody '"\(.state) \([.approvals[].officer] | join(","))"')" "pending alice"

# The view describes the request's own policy, not the renamed one.
expect_eq "A: the view names version 1's group and count" \
    "$(jbody '"\(.required[0].group) \(.required[0].count) \(.required[1].group)"')" \
    "security-officers 2 release-managers"
expect_eq "A: ... and says which policy is in force" "$(jbody .policy_in_force)" \
    "signgate-dev@2"
new_request ci release "$(hex)" >/dev/null
expect_eq "a new request's view names version 2's group" \
    "$(jbody '"\(.required[0].group) \(.required[0].count)"')" "secops 2"
api audit GET '/v1/requests?state=pending&limit=200' >/dev/null
expect_eq "the list shows A under its own policy's group" \
    "$(jq -r --arg id "$A" '.requests[] | select(.id == $id) | .required[0].group' "$T_DIR/body")" \
    security-officers
as audit
"$SIGNGATE" pending >"$T_DIR/pending.out" 2>&1
check "signgate pending shows A missing 1 of 2 security-officers" \
    grep -q "^$A .*1 of 2 security-officers" "$T_DIR/pending.out"

# carol approved before the reload: her approval no longer counts.
expect_eq "B: alice's approval does not complete the quorum with carol's" \
    "$(approve_with_openssl alice "$T_DIR/b.json"; jbody '"\(.state) \(.required[0].missing)"')" \
    "200pending 1"
expect_eq "B: carol's approval is shown as not counting" \
    "$(jbody '[.approvals[] | "\(.officer)=\(.counts)"] | join(" ")')" \
    "carol=false dave=true alice=true"
as audit
"$SIGNGATE" show "$B" >"$T_DIR/show.b" 2>&1
check "signgate show marks carol's approval (does not count)" \
    grep -q '^approval: carol approve .* (does not count)$' "$T_DIR/show.b"
# The housekeeping thread re-evaluates pending requests every second:
# give it two rounds, the request must not be signed behind our back.
sleep 2.5
api audit GET "/v1/requests/$B" >/dev/null
expect_eq "B: still pending after the housekeeping rounds" "$(jbody .state)" pending
expect_eq "B: bob completes it without carol" \
    "$(approve_with_openssl bob "$T_DIR/b.json"; jbody .state)" "200signed"
jbody .signature.signature | base64 -d >"$T_DIR/b.sig"
jq -j .signature.log.proof "$T_DIR/body" >"$T_DIR/b.proof"
as ci
"$SIGNGATE" log key >"$T_DIR/log.vkey"
"$SIGNGATE" verify --key-file "$T_DIR/log.vkey" --policy "$T_DIR/v1.policy" \
    --proof "$T_DIR/b.proof" --signature "$T_DIR/b.sig" \
    --digest "sha256:$(jq -r .digest.value "$T_DIR/b.json")" >"$T_DIR/verify.b" 2>&1
rc=$?
expect_eq "B: the signature verifies offline under version 1" "$rc" 0
[ "$rc" = 0 ] || sed 's/^/    /' "$T_DIR/verify.b"
expect_eq "B: its logged evidence is dave, alice, bob (not carol)" \
    "$(sed -n 's/^approvers: //p' "$T_DIR/verify.b")" "dave alice bob"

# Nor may she cancel what she could have approved before.
expect_eq "F: carol may not cancel a firmware request any more (403)" \
    "$(post_json carol "/v1/requests/$F/cancel" '{"reason":"revoked"}')" 403

# --- cancel -----------------------------------------------------------------
new_request ci nightly "$(hex)" >/dev/null
S=$(jbody .id)
as ci
"$SIGNGATE" cancel "$C" --reason "wrong build" >"$T_DIR/cancel.out" 2>&1
expect_eq "the requester cancels C with the CLI (exit 0)" "$?" 0
check "... which prints state and who/why" bash -c \
    "grep -qx 'state: cancelled' '$T_DIR/cancel.out' &&
     grep -q '^cancelled: by ci at .*: wrong build$' '$T_DIR/cancel.out'"
as alice
"$SIGNGATE" show "$C" >"$T_DIR/show.c" 2>&1
check "signgate show displays the cancellation" bash -c \
    "grep -qx 'state: cancelled' '$T_DIR/show.c' &&
     grep -q '^cancelled: by ci at .*: wrong build$' '$T_DIR/show.c'"
expect_eq "a second cancel answers 409" \
    "$(post_json alice "/v1/requests/$C/cancel" '{"reason":"again"}')" 409
check "... with the state, who and why" bash -c \
    "jq -r .detail '$T_DIR/body' | grep -q 'is cancelled, not pending (cancelled by ci at .*: wrong build)'"
"$SIGNGATE" cancel "$C" --reason again >/dev/null 2>"$T_DIR/cancel2.err"
expect_eq "the CLI's second cancel exits 3" "$?" 3
expect_eq "an approval on the cancelled request answers 409" \
    "$(approve_with_openssl bob "$T_DIR/c.json")" 409
expect_eq "a signed request cannot be cancelled (409)" \
    "$(post_json ci "/v1/requests/$S/cancel" '{"reason":"late"}')" 409
check "... and the answer says it is signed" bash -c \
    "jq -r .detail '$T_DIR/body' | grep -q 'is signed, not pending'"

# An eligible officer cancels; others may not.
new_request ci release "$(hex)" >/dev/null; D=$(jbody .id)
expect_eq "the auditor may not cancel (403)" \
    "$(post_json audit "/v1/requests/$D/cancel" '{"reason":"no"}')" 403
expect_eq "revoked carol may not cancel (403)" \
    "$(post_json carol "/v1/requests/$D/cancel" '{"reason":"no"}')" 403
new_request ci firmware "$(hex)" >/dev/null; G=$(jbody .id)
expect_eq "dave, in none of firmware's groups, may not cancel it (403)" \
    "$(post_json dave "/v1/requests/$G/cancel" '{"reason":"no"}')" 403
check "... and is told who may" bash -c \
    "jq -r .detail '$T_DIR/body' | grep -q \"only its requester ('ci') or an officer who may approve it\""
expect_eq "a cancel without a reason is refused (400)" \
    "$(post_json alice "/v1/requests/$D/cancel" '{}')" 400
expect_eq "... naming the field" "$(jbody .field)" reason
expect_eq "a reason with a control character is refused (400)" \
    "$(post_json alice "/v1/requests/$D/cancel" '{"reason":"a\u0007b"}')" 400
expect_eq "a reason over 256 bytes is refused (400)" \
    "$(post_json alice "/v1/requests/$D/cancel" "{\"reason\":\"$(printf 'x%.0s' $(seq 257))\"}")" 400
expect_eq "an unknown member is refused (400)" \
    "$(post_json alice "/v1/requests/$D/cancel" '{"reason":"x","by":"ci"}')" 400
# The reason is shown to officers: the text rule of artifact names.
expect_eq "a reason with a right-to-left override is refused (400)" \
    "$(post_json alice "/v1/requests/$D/cancel" "$(printf '{"reason":"ok \xe2\x80\xae"}')")" 400
check "... naming the field and the code point" bash -c \
    "[ \"\$(jq -r .field '$T_DIR/body')\" = reason ] &&
     jq -r .detail '$T_DIR/body' | grep -q '^reason: U+202E (RIGHT-TO-LEFT OVERRIDE) is not allowed'"
expect_eq "a reason with U+0085 is refused (400)" \
    "$(post_json alice "/v1/requests/$D/cancel" "$(printf '{"reason":"a\xc2\x85b"}')")" 400
expect_eq "a reason that is not UTF-8 is refused (400)" \
    "$(post_json alice "/v1/requests/$D/cancel" "$(printf '{"reason":"caf\xe9"}')")" 400
expect_eq "... naming the field" "$(jbody .field)" reason
as alice
"$SIGNGATE" cancel "$D" --reason "$(printf 'x\xe2\x80\x8by')" >/dev/null 2>"$T_DIR/cancel3.err"
expect_eq "the CLI refuses a zero width space in --reason (exit 2)" "$?" 2
check "... naming the code point" grep -q 'U+200B (ZERO WIDTH SPACE)' "$T_DIR/cancel3.err"
expect_eq "alice (an approver of release) cancels D (200)" \
    "$(post_json alice "/v1/requests/$D/cancel" '{"reason":"superseded by a newer build"}')" 200
expect_eq "D: cancelled by alice with her reason" \
    "$(jbody '"\(.state) \(.cancelled.by) \(.cancelled.reason)"')" \
    "cancelled alice superseded by a newer build"
api audit GET '/v1/requests?state=cancelled' >/dev/null
expect_eq "GET /v1/requests?state=cancelled lists C and D" \
    "$(jq -r '[.requests[].id] | sort | join(" ")' "$T_DIR/body")" \
    "$(printf '%s\n' "$C" "$D" | sort | tr '\n' ' ' | sed 's/ $//')"

# The log records each cancel with who and why.
api - GET /v1/log/checkpoint >/dev/null
size=$(sed -n 2p "$T_DIR/body")
: >"$T_DIR/cancels"
for i in $(seq 0 $((size - 1))); do
	api - GET "/v1/log/entries/$i" >/dev/null
	if grep -qx 'type cancelled' "$T_DIR/body"; then
		printf '%s %s %s\n' "$(sed -n 's/^request //p' "$T_DIR/body")" \
		    "$(sed -n 's/^by //p' "$T_DIR/body")" \
		    "$(sed -n 's/^reason //p' "$T_DIR/body" | base64 -d)" >>"$T_DIR/cancels"
	fi
done
check "the log has C's cancel entry (by ci, why)" grep -qx "$C ci wrong build" "$T_DIR/cancels"
check "the log has D's cancel entry (by alice, why)" \
    grep -qx "$D alice superseded by a newer build" "$T_DIR/cancels"
expect_eq "and no other cancel entry (the refusals left none)" \
    "$(wc -l <"$T_DIR/cancels")" 2

# A waiting `signgate sign` ends promptly when its request is cancelled.
printf 'an artifact nobody should sign\n' >"$T_DIR/art.bin"
as ci
"$SIGNGATE" sign --key release --wait 120 "$T_DIR/art.bin" \
    >"$T_DIR/sign.out" 2>"$T_DIR/sign.err" &
SIGN_PID=$!
for i in $(seq 1 200); do
	grep -q '^request: ' "$T_DIR/sign.out" && break
	sleep 0.05
done
W=$(sed -n 's/^request: //p' "$T_DIR/sign.out")
check "signgate sign is waiting on its request" test -n "$W"
t0=$(date +%s%N)
expect_eq "bob cancels it" \
    "$(post_json bob "/v1/requests/$W/cancel" '{"reason":"not this one"}')" 200
wait "$SIGN_PID"
rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_eq "the waiting sign exits 6 (no signature)" "$rc" 6
check "... within 5 s of the cancel (${ms} ms)" test "$ms" -lt 5000
check "... saying who cancelled and why" \
    grep -q '^cancelled: by bob at .*: not this one$' "$T_DIR/sign.out"
check "... and that the request was cancelled" \
    grep -q "request $W was cancelled; no signature" "$T_DIR/sign.err"
check "... writing no signature" test ! -e "$T_DIR/art.bin.sig"

# --- version 3: a renewed certificate for nightly ---------------------------
nightly_chain() { jq -j '.keys[] | select(.name == "nightly") | .certificate_pem' "$T_DIR/body"; }
cms_subjects() {	# request JSON -> the subjects of its CMS's certificates
	jq -r .signature.cms "$1" | base64 -d >"$T_DIR/cms.der"
	openssl pkcs7 -inform DER -in "$T_DIR/cms.der" -print_certs 2>/dev/null |
	    sed -n 's/^subject=//p'
}
api ci GET /v1/keys >/dev/null
nightly_chain >"$T_DIR/keys.before"
check "control: before the renewal, /v1/keys shows the dev chain" \
    cmp -s "$T_DIR/keys.before" "$DEV/codesign/nightly.chain.pem"
new_request ci nightly "$(hex)" sha256 cms >/dev/null; cp "$T_DIR/body" "$T_DIR/n1.json"
cms_subjects "$T_DIR/n1.json" >"$T_DIR/n1.subjects"
check "control: a CMS before the renewal embeds the old certificate" \
    grep -q 'CN *= *signgate dev nightly$' "$T_DIR/n1.subjects"

cat >"$T_DIR/ext.cnf" <<'EOF'
[codesign]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = codeSigning
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$T_DIR/throwaway.key" 2>/dev/null
openssl req -new -key "$T_DIR/throwaway.key" \
    -subj "/CN=signgate dev nightly renewed" -out "$T_DIR/renew.csr" 2>/dev/null
openssl x509 -req -in "$T_DIR/renew.csr" -CA "$DEV/codesign/ca.pem" \
    -CAkey "$DEV/codesign/ca.key" -days 30 -set_serial "0x$(openssl rand -hex 16)" \
    -extfile "$T_DIR/ext.cnf" -extensions codesign \
    -force_pubkey "$DEV/codesign/nightly.pub.pem" -out "$T_DIR/renewed.pem" 2>/dev/null
cat "$T_DIR/renewed.pem" "$DEV/codesign/ca.pem" >"$T_DIR/nightly-renewed.chain.pem"
check "the renewed certificate is for nightly's key" bash -c \
    "cmp -s <(openssl x509 -in '$T_DIR/renewed.pem' -noout -pubkey) '$DEV/codesign/nightly.pub.pem'"

# A certificate for another key is refused, naming the key.
sed -e 's/^version 2$/version 3/' \
    -e "s#^\(    certificate \).*/nightly.chain.pem\$#\1$DEV/codesign/release.chain.pem#" \
    "$T_DIR/v2.policy" >"$P"
check "SIGHUP answered" reload
check "a certificate for another key is refused, naming key and field" \
    grep -q "SIGHUP: policy not reloaded, the running one stays in force: key 'nightly': certificate .*release.chain.pem: the certificate's public key is not the HSM key's" "$T_DIR/daemon.log"

# An HSM location change is refused: needs a restart.
sed -e 's/^version 2$/version 3/' \
    -e '/^key nightly$/,/^end$/s/^    object nightly$/    object release/' \
    "$T_DIR/v2.policy" >"$P"
check "SIGHUP answered" reload
check "a changed HSM location is refused: needs a restart, naming key and field" \
    grep -q "SIGHUP: policy not reloaded, the running one stays in force: $P: key 'nightly': object changed ('nightly' to 'release'): an HSM location changed; that needs a restart" "$T_DIR/daemon.log"
sed -e 's/^version 2$/version 3/' \
    -e '/^key firmware-pss$/,/^end$/s/^    algorithm rsa-pss$/    algorithm rsa-pkcs1/' \
    "$T_DIR/v2.policy" >"$P"
check "SIGHUP answered" reload
check "a changed algorithm is refused: needs a restart" \
    grep -q "key 'firmware-pss': algorithm changed (rsa-pss to rsa-pkcs1); that needs a restart" "$T_DIR/daemon.log"
api ci GET /v1/keys >/dev/null
nightly_chain >"$T_DIR/keys.after-refusals"
check "after the refusals, /v1/keys still shows the old chain" \
    cmp -s "$T_DIR/keys.after-refusals" "$T_DIR/keys.before"

# The renewal itself applies everywhere.
sed -e 's/^version 2$/version 3/' \
    -e "s#^\(    certificate \).*/nightly.chain.pem\$#\1$T_DIR/nightly-renewed.chain.pem#" \
    "$T_DIR/v2.policy" >"$P"
check "SIGHUP answered" reload
check "version 3 is in force" grep -q 'SIGHUP: policy signgate-dev version 3 in force' "$T_DIR/daemon.log"
api ci GET /v1/keys >/dev/null
nightly_chain >"$T_DIR/keys.after"
check "/v1/keys shows the renewed chain" \
    cmp -s "$T_DIR/keys.after" "$T_DIR/nightly-renewed.chain.pem"
printf 'a renewed artifact\n' >"$T_DIR/renewed.bin"
new_request ci nightly "$(hexdigest sha256 "$T_DIR/renewed.bin")" sha256 cms >/dev/null
cp "$T_DIR/body" "$T_DIR/n2.json"
expect_eq "a CMS after the renewal is signed" "$(jq -r .state "$T_DIR/n2.json")" signed
cms_subjects "$T_DIR/n2.json" >"$T_DIR/n2.subjects"
check "... and embeds the renewed certificate" \
    grep -q 'CN *= *signgate dev nightly renewed$' "$T_DIR/n2.subjects"
check "... not the old one" \
    bash -c "! grep -q 'CN *= *signgate dev nightly$' '$T_DIR/n2.subjects'"
check "openssl cms -verify accepts it with the dev CA" \
    openssl cms -verify -binary -inform DER -in "$T_DIR/cms.der" \
    -content "$T_DIR/renewed.bin" -CAfile "$DEV/codesign/ca.pem" \
    -purpose any -out /dev/null

finish
