# Multi-party approval: the dev policy end to end, and every refusal the
# always-rules demand.  Approvals are built with nothing but openssl.
. "$(dirname "$0")/lib.sh"

# A test policy derived from the dev one: dave may also request (to try
# self-approval) and firmware-pss requests expire after 5 seconds.
awk '
	/^principal dave/ { in_dave = 1 }
	in_dave && /roles officer/ { sub(/roles officer/, "roles officer requester"); in_dave = 0 }
	/^key release/ { in_release = 1 }
	in_release && /requesters ci/ { sub(/requesters ci/, "requesters ci dave"); in_release = 0 }
	/^key firmware-pss/ { in_pss = 1 }
	in_pss && /lifetime/ { sub(/lifetime .*/, "lifetime 5s"); in_pss = 0 }
	{ print }
' "$DEV/policy.conf" >"$T_DIR/policy.conf"
write_config ".policy = \"$T_DIR/policy.conf\""
start_daemon || { not_ok "daemon starts"; finish; exit 1; }

H1=$(printf 'a%.0s' $(seq 64))
H2=$(printf 'b%.0s' $(seq 64))

new_request ci release "$H1" >/dev/null; cp "$T_DIR/body" "$T_DIR/r1.json"
R1=$(jq -r .id "$T_DIR/r1.json")
new_request ci release "$H2" >/dev/null; cp "$T_DIR/body" "$T_DIR/r2.json"
R2=$(jq -r .id "$T_DIR/r2.json")

expect_eq "a release request starts pending" "$(jq -r .state "$T_DIR/r1.json")" pending
expect_eq "it says what is missing" \
    "$(jq -r '[.required[] | "\(.group):\(.missing)"] | join(" ")' "$T_DIR/r1.json")" \
    "security-officers:2 release-managers:1"
check "the statement is exactly as docs/API.md says" bash -c "
	spki=\$(jq -r '.keys[] | select(.name==\"release\") | .spki_sha256' <(curl -sS --cacert '$DEV/tls/ca.pem' --cert '$DEV/tls/ci.pem' --key '$DEV/tls/ci.key' '$URL/v1/keys'))
	psha=\$(sha256sum '$T_DIR/policy.conf' | cut -d' ' -f1)
	exp=\$(jq -r .expires_at '$T_DIR/r1.json')
	want=\$(printf 'signgate approval v1\nrequest %s\nkey release sha256:%s\nartifact sha256:%s\nformat raw\nrequester ci\npolicy signgate-dev@1 sha256:%s\nexpires %s\n' \
	    '$R1' \"\$spki\" '$H1' \"\$psha\" \"\$(date -d \"\$exp\" +%s)\")
	diff <(jq -j .statement '$T_DIR/r1.json') <(printf '%s\n' \"\$want\")"

# --- refusals -------------------------------------------------------------
expect_eq "the requester cannot approve (403)" \
    "$(approve_with_openssl ci "$T_DIR/r1.json" approve alice)" 403
expect_eq "an auditor cannot approve (403)" \
    "$(approve_with_openssl audit "$T_DIR/r1.json" approve alice)" 403

# bob's key under alice's name, over alice's connection.
expect_eq "bob's signature under alice's name (422)" \
    "$(approve_with_openssl alice "$T_DIR/r1.json" approve bob)" 422

# alice's valid envelope posted over bob's connection.
approve_with_openssl alice "$T_DIR/r2.json" >/dev/null   # makes the envelope
st=$(api bob POST "/v1/requests/$R1/approvals" -H 'Content-Type: application/json' \
    --data-binary "@$T_DIR/dsse.alice/env.json")
expect_eq "an envelope posted over another officer's connection (403)" "$st" 403

# The statement of request 2 posted to request 1.
st=$(api alice POST "/v1/requests/$R1/approvals" -H 'Content-Type: application/json' \
    --data-binary "@$T_DIR/dsse.alice/env.json")
expect_eq "a statement from another request (422)" "$st" 422
expect_eq "... names the payload" "$(jbody .field)" payload

# One changed byte in the statement (the digest), properly signed.
sed 's/artifact sha256:a/artifact sha256:c/' <(jq -j .statement "$T_DIR/r1.json") >"$T_DIR/changed.txt"
jq --rawfile s "$T_DIR/changed.txt" '.statement = $s' "$T_DIR/r1.json" >"$T_DIR/r1-changed.json"
check "the changed statement differs in one byte" bash -c \
    "[ \$(cmp -l <(jq -j .statement '$T_DIR/r1.json') '$T_DIR/changed.txt' | wc -l) = 1 ]"
expect_eq "a statement with one changed byte (422)" \
    "$(approve_with_openssl alice "$T_DIR/r1-changed.json")" 422

# A signature with one flipped bit.
approve_with_openssl carol "$T_DIR/r1.json" >/dev/null
expect_eq "carol's first approval counts" "$(jbody '.approvals | length')" 1
st=$(approve_with_openssl carol "$T_DIR/r1.json")
expect_eq "a second approval by the same officer (409)" "$st" 409
api ci GET "/v1/requests/$R1" >/dev/null
expect_eq "... counted once" "$(jbody '[.approvals[] | select(.officer=="carol")] | length')" 1

# The same envelope as bob would make it, with its last signature byte changed.
d="$T_DIR/flip"; mkdir -p "$d"
jq -j .statement "$T_DIR/r1.json" >"$d/body"; printf 'decision approve\n' >>"$d/body"
type="application/vnd.signgate.approval.v1+text"
{ printf 'DSSEv1 %d %s %d ' ${#type} "$type" "$(stat -c %s "$d/body")"; cat "$d/body"; } >"$d/pae"
openssl dgst -sha256 -sign "$DEV/officers/bob.key" -out "$d/sig" "$d/pae"
siglen=$(stat -c %s "$d/sig")
{ head -c $((siglen - 1)) "$d/sig"; tail -c 1 "$d/sig" | tr '\000-\377' '\001-\377\000'; } >"$d/sig.bad"
jq -n --arg t "$type" --arg p "$(base64 -w0 "$d/body")" --arg s "$(base64 -w0 "$d/sig.bad")" \
    '{payloadType:$t, payload:$p, signatures:[{keyid:"bob", sig:$s}]}' >"$d/env.json"
st=$(api bob POST "/v1/requests/$R1/approvals" -H 'Content-Type: application/json' --data-binary "@$d/env.json")
expect_eq "a signature with one changed byte (422)" "$st" 422

# Malformed envelopes.
st=$(api bob POST "/v1/requests/$R1/approvals" -H 'Content-Type: application/json' --data '{"payloadType":"x"}')
expect_eq "an incomplete envelope (400)" "$st" 400
expect_eq "... names the missing field" "$(jbody .field)" payload
expect_eq "... and why" "$(jbody .detail)" "payload: missing"
st=$(api bob POST "/v1/requests/$R1/approvals" -H 'Content-Type: application/json' \
    --data "$(jq '."payload: x" = 1' "$d/env.json")")
expect_eq "an envelope with an unknown member named 'payload: x' (400)" "$st" 400
expect_eq "... names that member, not 'payload'" "$(jbody .field)" "payload: x"
st=$(api bob POST "/v1/requests/$R1/approvals" -H 'Content-Type: application/json' \
    --data "$(jq '.extra = 1' "$d/env.json")")
expect_eq "an envelope with an unknown field (400)" "$st" 400
st=$(api bob POST "/v1/requests/$R1/approvals" -H 'Content-Type: application/json' \
    --data "$(jq '.payloadType = "application/json"' "$d/env.json")")
expect_eq "another payload type (422)" "$st" 422

# --- the quorum -----------------------------------------------------------
api ci GET "/v1/requests/$R1" >/dev/null
expect_eq "after carol: still pending" "$(jbody .state)" pending
expect_eq "dave is needed and one more officer" \
    "$(jbody '[.required[] | "\(.group):\(.missing)"] | join(" ")')" \
    "security-officers:1 release-managers:1"
expect_eq "dave approves (200)" "$(approve_with_openssl dave "$T_DIR/r1.json")" 200
expect_eq "after carol and dave: pending" "$(jbody .state)" pending
expect_eq "the signature is not available yet (409)" \
    "$(api ci GET /v1/requests/$R1/signature)" 409
expect_eq "bob approves (200)" "$(approve_with_openssl bob "$T_DIR/r1.json")" 200
expect_eq "after the third approval: signed" "$(jbody .state)" signed
expect_eq "three approvals recorded" "$(jbody '[.approvals[].officer] | join(",")')" "carol,dave,bob"
key_pem release >"$T_DIR/release.pub"
api ci GET "/v1/requests/$R1/signature" >/dev/null
jbody .signature | base64 -d >"$T_DIR/r1.sig"
printf '%s' "$H1" | sed 's/../\\x&/g' | xargs -0 printf "%b" >"$T_DIR/r1.digest"
check "the signature verifies over the digest" openssl pkeyutl -verify -pubin \
    -inkey "$T_DIR/release.pub" -in "$T_DIR/r1.digest" -sigfile "$T_DIR/r1.sig"
expect_eq "approving a signed request (409)" \
    "$(approve_with_openssl alice "$T_DIR/r1.json")" 409

# Self-approval: dave requests, dave approves.
new_request dave release "$H2" >/dev/null; cp "$T_DIR/body" "$T_DIR/r3.json"
expect_eq "self-approval is refused (403)" "$(approve_with_openssl dave "$T_DIR/r3.json")" 403

# Two security officers without the release manager never sign.
approve_with_openssl alice "$T_DIR/r2.json" >/dev/null
approve_with_openssl bob "$T_DIR/r2.json" >/dev/null
approve_with_openssl carol "$T_DIR/r2.json" >/dev/null
expect_eq "three security officers but no release manager: pending" "$(jbody .state)" pending

# --- firmware: one reject vetoes -----------------------------------------
new_request ci firmware "$H1" >/dev/null; cp "$T_DIR/body" "$T_DIR/f.json"
F=$(jq -r .id "$T_DIR/f.json")
expect_eq "alice approves firmware" "$(approve_with_openssl alice "$T_DIR/f.json")" 200
expect_eq "bob rejects firmware" "$(approve_with_openssl bob "$T_DIR/f.json" reject)" 200
expect_eq "one reject vetoes: rejected" "$(jbody .state)" rejected
expect_eq "carol's approval after the veto (409)" "$(approve_with_openssl carol "$T_DIR/f.json")" 409
api ci GET "/v1/requests/$F" >/dev/null
expect_eq "the vetoed request is never signed" "$(jbody .state)" rejected

# --- expiry ----------------------------------------------------------------
new_request ci firmware-pss "$H1" >/dev/null; cp "$T_DIR/body" "$T_DIR/e.json"
E=$(jq -r .id "$T_DIR/e.json")
expect_eq "alice approves before expiry" "$(approve_with_openssl alice "$T_DIR/e.json")" 200
sleep 6
expect_eq "an approval after expiry (409)" "$(approve_with_openssl bob "$T_DIR/e.json")" 409
api ci GET "/v1/requests/$E" >/dev/null
expect_eq "the expired request is never signed" "$(jbody .state)" expired

# --- listing and long-polling ---------------------------------------------
expect_eq "list pending release requests" \
    "$(api audit GET '/v1/requests?state=pending&key=release' >/dev/null; jbody '[.requests[].id] | sort | join(",")')" \
    "$(printf '%s\n' "$R2" "$(jq -r .id "$T_DIR/r3.json")" | sort | paste -sd,)"
api audit GET '/v1/requests?limit=2' >/dev/null
c=$(jbody .next_cursor)
check "paging returns a cursor" test "$c" != null
api audit GET "/v1/requests?limit=200&cursor=$c" >/dev/null
expect_eq "the next page holds the rest" "$(jbody '.requests | length')" 3

new_request ci release "$H2" >/dev/null; cp "$T_DIR/body" "$T_DIR/w.json"
W=$(jq -r .id "$T_DIR/w.json")
start=$(date +%s%N)
api audit GET "/v1/requests/$W?wait=2" >/dev/null
el=$(( ($(date +%s%N) - start) / 1000000 ))
check "wait=2 on a quiet request returns after about 2 s (${el} ms)" test "$el" -ge 1800 -a "$el" -le 5000
( sleep 1; approve_with_openssl alice "$T_DIR/w.json" >/dev/null ) &
waker=$!
start=$(date +%s%N)
api audit GET "/v1/requests/$W?wait=30" >"$T_DIR/wait.status"
el=$(( ($(date +%s%N) - start) / 1000000 ))
wait "$waker"
check "a waiting client wakes on the approval (${el} ms)" test "$el" -lt 10000
expect_eq "... and sees it" "$(jbody '.approvals | length')" 1

# --- the log entry carries the approvals that make the quorum -------------
# Four approvals count, three make the quorum: the signature's log entry
# carries a smallest set that meets it.
new_request ci release "$(printf '%064x' 4040)" >/dev/null; cp "$T_DIR/body" "$T_DIR/r4.json"
for o in alice bob carol dave; do
	approve_with_openssl "$o" "$T_DIR/r4.json" >/dev/null
done
expect_eq "four approve: signed, four approvals that count" \
    "$(jbody '.state + " " + ([.approvals[] | select(.counts)] | length | tostring)')" \
    "signed 4"
jbody '.signature.log.proof' | sed -n 's/^extra //p' | base64 -d >"$T_DIR/r4.entry"
expect_eq "the log entry carries the three that make the quorum" \
    "$(grep -c '^approval ' "$T_DIR/r4.entry")" 3

finish
