# Grants: "ci may obtain up to N signatures with key release until T, for
# names matching P", approved once by the grant's stricter quorum
# (require-grant: three security officers and a release manager).
#
# - The count is exact: 16 clients racing for a grant of 50 get exactly 50
#   signatures, numbered 1..50 once each, then refusals; the same after
#   a SIGKILL of the daemon in the middle of the race and a restart.
# - Every signature verifies with openssl over its digest, and its log
#   entry names the grant and its sequence number (offline check with
#   `signgate verify` of the two-bundle proof).
# - A name outside the pattern, another requester, another key or format
#   are refused; so are requests before approval.
# - Revocation stops the grant at once (and survives a SIGKILL); so does
#   its end.
# - A key whose policy has no allow-grants / allow-releases refuses them
#   with a problem document naming the field.
. "$(dirname "$0")/lib.sh"

start_daemon || { not_ok "daemon starts"; finish; exit 1; }
key_pem release >"$T_DIR/release.pub"

# fails CMD...: CMD exits non-zero.
fails() { ! "$@"; }

n=0
hex() { n=$((n + 1)); printf '%064x' "$n"; }

# grant KEY COUNT LIFETIME [PATTERN]: creates a grant; prints the status.
grant() {
	local pat=${4:+,\"artifact\":\"$4\"}
	post_json ci /v1/grants "{\"key\":\"$1\",\"count\":$2,\"lifetime\":$3$pat}"
}

# approve_all FILE: the grant quorum (three officers and a manager).
approve_all() {
	local o st
	for o in alice bob carol dave; do
		st=$(approve_with_openssl "$o" "$1")
		[ "$st" = 200 ] || { echo "approval by $o: $st"; body; return 1; }
	done
}

# under GRANT NAME HEX [WHO]: a request under the grant; prints the status.
under() {
	post_json "${4:-ci}" /v1/requests "{\"grant\":\"$1\",\"digest\":{\"algorithm\":\"sha256\",\"value\":\"$3\"},\"artifact\":{\"name\":\"$2\"}}"
}

# --- policy: which keys allow what --------------------------------------------

st=$(grant firmware 5 60)
expect_eq "a key without allow-grants refuses a grant" "$st" 403
check "... and the problem names the key and why" \
    jq -e '.field == "key" and (.detail | test("does not allow grants"))' \
    "$T_DIR/body"
st=$(post_json ci /v1/releases '{"key":"firmware","artifacts":[{"name":"a.bin","digest":{"algorithm":"sha256","value":"'"$(hex)"'"}}]}')
expect_eq "a key without allow-releases refuses a release" "$st" 403
check "... and the problem says so" \
    jq -e '.field == "key" and (.detail | test("does not allow releases"))' \
    "$T_DIR/body"
st=$(grant release 100001 60)
expect_eq "a count over the largest grant is refused" "$st" 400
check "... naming count" jq -e '.field == "count"' "$T_DIR/body"
st=$(grant release 5 999999)
expect_eq "a lifetime over the key's longest grant is refused" "$st" 400
check "... naming lifetime" jq -e '.field == "lifetime"' "$T_DIR/body"
st=$(grant release 5 60 'has space')
expect_eq "a pattern with a space is refused" "$st" 400

# --- one grant, its approval, its bounds --------------------------------------

st=$(grant release 50 3600 'app-*.bin')
expect_eq "ci asks for a grant of 50" "$st" 201
cp "$T_DIR/body" "$T_DIR/g1.json"
G1=$(jq -r .id "$T_DIR/g1.json")
check "the grant is pending, kind grant, 50 allowed" \
    jq -e '.kind == "grant" and .state == "pending" and .grant.count == 50 and .grant.used == 0 and .grant.artifact == "app-*.bin"' "$T_DIR/g1.json"
check "its statement is a grant statement" \
    jq -e '.statement | startswith("signgate grant approval v1\ngrant ") and contains("\ncount 50\nartifact app-*.bin\n")' "$T_DIR/g1.json"
check "its quorum is the require-grant terms (3 + 1)" \
    jq -e '[.required[] | .count] == [3, 1]' "$T_DIR/g1.json"
st=$(under "$G1" app-1.bin "$(hex)")
expect_eq "a request under a pending grant is refused" "$st" 403
st=$(approve_with_openssl ci "$T_DIR/g1.json" approve alice)
expect_eq "the requester cannot approve its own grant" "$st" 403
approve_all "$T_DIR/g1.json" || not_ok "the officers approve the grant"
api ci GET "/v1/requests/$G1" >/dev/null
check "the approved grant is active" jq -e '.state == "active"' "$T_DIR/body"

st=$(under "$G1" other.bin "$(hex)")
expect_eq "a name outside the pattern is refused" "$st" 403
check "... naming artifact.name" jq -e '.field == "artifact.name"' "$T_DIR/body"
st=$(under "$G1" app-2.bin "$(hex)" audit)
check "another principal cannot use the grant" [ "$st" = 403 ]
st=$(post_json ci /v1/requests "{\"grant\":\"$G1\",\"key\":\"nightly\",\"digest\":{\"algorithm\":\"sha256\",\"value\":\"$(hex)\"},\"artifact\":{\"name\":\"app-3.bin\"}}")
expect_eq "another key under the grant is refused" "$st" 403
st=$(post_json ci /v1/requests "{\"grant\":\"$G1\",\"format\":\"cms\",\"digest\":{\"algorithm\":\"sha256\",\"value\":\"$(hex)\"},\"artifact\":{\"name\":\"app-3.bin\"}}")
expect_eq "another format under the grant is refused" "$st" 403
st=$(post_json ci /v1/requests "{\"grant\":\"$G1\",\"algorithm\":\"rsa-pss\",\"digest\":{\"algorithm\":\"sha256\",\"value\":\"$(hex)\"},\"artifact\":{\"name\":\"app-3.bin\"}}")
check "another scheme under the grant is refused (400, algorithm)" \
    jq -e --arg st "$st" '$st == "400" and .field == "algorithm"' "$T_DIR/body"

# One signature, checked end to end.
printf 'artifact one\n' >"$T_DIR/app-1.bin"
d=$(hexdigest sha256 "$T_DIR/app-1.bin")
st=$(under "$G1" app-1.bin "$d")
expect_eq "a request under the active grant is signed at once" "$st" 201
cp "$T_DIR/body" "$T_DIR/s1.json"
check "it is signed, sequence 1 of the grant" \
    jq -e --arg g "$G1" '.state == "signed" and .grant.id == $g and .grant.sequence == 1' "$T_DIR/s1.json"
jq -r .signature.signature "$T_DIR/s1.json" | base64 -d >"$T_DIR/app-1.bin.sig"
check "openssl verifies the signature over the file" \
    openssl dgst -sha256 -verify "$T_DIR/release.pub" \
    -signature "$T_DIR/app-1.bin.sig" "$T_DIR/app-1.bin"
jq -j .signature.log.proof "$T_DIR/s1.json" >"$T_DIR/app-1.bin.sig.proof"
check "the proof holds three bundles (signature, approval, then policy)" \
    [ "$(grep -c '^c2sp.org/tlog-proof@v1$' "$T_DIR/app-1.bin.sig.proof")" = 3 ]
api - GET /v1/log/key >/dev/null
cp "$T_DIR/body" "$T_DIR/log.vkey"
check "signgate verify accepts it offline" "$SIGNGATE" verify \
    --key-file "$T_DIR/log.vkey" --policy "$DEV/policy.conf" \
    --proof "$T_DIR/app-1.bin.sig.proof" --signature "$T_DIR/app-1.bin.sig" \
    "$T_DIR/app-1.bin"
"$SIGNGATE" verify --key-file "$T_DIR/log.vkey" --policy "$DEV/policy.conf" \
    --proof "$T_DIR/app-1.bin.sig.proof" --signature "$T_DIR/app-1.bin.sig" \
    "$T_DIR/app-1.bin" >"$T_DIR/verify.out" 2>&1
check "... and says it is signature 1 of 50 under the grant" \
    grep -q "1 of 50" "$T_DIR/verify.out"
printf 'artifact ONE\n' >"$T_DIR/app-1.bin"
check "a changed byte of the file fails verification" fails "$SIGNGATE" verify \
    --key-file "$T_DIR/log.vkey" --policy "$DEV/policy.conf" \
    --proof "$T_DIR/app-1.bin.sig.proof" --signature "$T_DIR/app-1.bin.sig" \
    "$T_DIR/app-1.bin"
api ci GET "/v1/log/entries/$(jq -r .signature.log.index "$T_DIR/s1.json")" >/dev/null
check "the log entry names the grant and the sequence number" \
    sh -c "grep -q '^type artifact-signature$' '$T_DIR/body' && grep -q '^request $G1$' '$T_DIR/body' && grep -q '^position 1$' '$T_DIR/body'"

# race CLIENTS GRANT PREFIX: each client posts until refused; statuses in
# $T_DIR/race.<i>.
race() {
	local i pids=()
	for i in $(seq 1 "$1"); do
		(
			k=0
			while :; do
				k=$((k + 1))
				h=$(printf '%s%08x%08x' "$3" "$i" "$k" | sha256sum | cut -c1-64)
				s=$(under "$2" "app-$i-$k.bin" "$h")
				echo "$s" >>"$T_DIR/race.$i"
				[ "$s" = 201 ] || [ "$s" = curl-error ] || break
				[ "$s" = curl-error ] && break
			done
		) &
		pids+=($!)
	done
	wait "${pids[@]}"
}

# signed_under GRANT: the sequence numbers signed under it, sorted.
signed_under() {
	api ci GET "/v1/requests?state=signed&limit=200" >/dev/null
	jq -r --arg g "$1" '.requests[] | select(.grant.id == $g) | .grant.sequence' \
	    "$T_DIR/body" | sort -n
}

rm -f "$T_DIR"/race.*
race 16 "$G1" a
ok201=$(cat "$T_DIR"/race.* | grep -c '^201$')
expect_eq "16 racing clients get the 49 signatures left" "$ok201" 49
check "every client then hears a refusal (409: used up)" \
    sh -c "for f in '$T_DIR'/race.*; do tail -n 1 \"\$f\" | grep -q '^409$' || exit 1; done"
expect_eq "the grant's numbers are 1..50, each once" \
    "$(signed_under "$G1" | tr '\n' ' ')" "$(seq 1 50 | tr '\n' ' ')"
api ci GET "/v1/requests/$G1" >/dev/null
check "the grant says 50 of 50 used" jq -e '.grant.used == 50' "$T_DIR/body"
st=$(under "$G1" app-x.bin "$(hex)")
expect_eq "the 51st is refused" "$st" 409
check "... saying the grant is used up" \
    jq -e '.detail | test("used up")' "$T_DIR/body"

# --- a SIGKILL in the middle of the race ---------------------------------------

st=$(grant release 50 3600 'app-*.bin')
cp "$T_DIR/body" "$T_DIR/g2.json"
G2=$(jq -r .id "$T_DIR/g2.json")
approve_all "$T_DIR/g2.json" || not_ok "the officers approve the second grant"
rm -f "$T_DIR"/race.*
race 16 "$G2" b &
racer=$!
# Let some signatures through, then kill the daemon under load.
for i in $(seq 1 200); do
	[ "$(cat "$T_DIR"/race.* 2>/dev/null | grep -c '^201$')" -ge 10 ] && break
	sleep 0.05
done
kill9_daemon
wait "$racer"
before=$(cat "$T_DIR"/race.* | grep -c '^201$')
start_daemon || { not_ok "the daemon starts again"; finish; exit 1; }
# Reserved numbers whose signature was in flight are signed by the
# housekeeping thread while the grant holds; then the race goes on.
for i in $(seq 1 100); do
	api ci GET "/v1/requests?state=pending&limit=200" >/dev/null
	[ "$(jq --arg g "$G2" '[.requests[] | select(.grant.id == $g)] | length' "$T_DIR/body")" = 0 ] && break
	sleep 0.1
done
rm -f "$T_DIR"/race.*
race 16 "$G2" c
nums=$(signed_under "$G2" | tr '\n' ' ')
expect_eq "after the kill and the restart: exactly 50, numbered 1..50" \
    "$nums" "$(seq 1 50 | tr '\n' ' ')"
check "and some had been signed before the kill ($before)" [ "$before" -ge 10 ]

# --- revocation and the grant's end -------------------------------------------

# A grant of 5 s, used while it holds; its end is checked last, so that
# the revocations below take the time it needs to run out.
st=$(grant release 10 5)
cp "$T_DIR/body" "$T_DIR/g5.json"
G5=$(jq -r .id "$T_DIR/g5.json")
approve_all "$T_DIR/g5.json" || not_ok "the officers approve the short grant"
st=$(under "$G5" any.bin "$(hex)")
expect_eq "the short grant signs while it holds" "$st" 201

st=$(grant release 10 3600)
cp "$T_DIR/body" "$T_DIR/g3.json"
G3=$(jq -r .id "$T_DIR/g3.json")
approve_all "$T_DIR/g3.json" || not_ok "the officers approve the third grant"
st=$(under "$G3" any.bin "$(hex)")
expect_eq "the third grant signs" "$st" 201
st=$(post_json ci "/v1/grants/$G3/revoke" '{"reason":"build 4711 is done"}')
check "its requester may give it up" [ "$st" = 200 ]
st=$(post_json audit "/v1/grants/$G1/revoke" '{"reason":"no"}')
expect_eq "an auditor may not revoke a grant" "$st" 403

st=$(grant release 10 3600)
cp "$T_DIR/body" "$T_DIR/g4.json"
G4=$(jq -r .id "$T_DIR/g4.json")
approve_all "$T_DIR/g4.json" || not_ok "the officers approve the fourth grant"
st=$(under "$G4" any.bin "$(hex)")
expect_eq "the fourth grant signs" "$st" 201
st=$(post_json carol "/v1/grants/$G4/revoke" '{"reason":"key compromise drill"}')
expect_eq "an officer revokes the grant" "$st" 200
check "it is revoked, by carol, with the reason" \
    jq -e '.state == "revoked" and .revoked.by == "carol" and .revoked.reason == "key compromise drill"' "$T_DIR/body"
st=$(under "$G4" any2.bin "$(hex)")
expect_eq "a request after the revocation is refused at once" "$st" 403
check "... saying it was revoked" jq -e '.detail | test("revoked")' "$T_DIR/body"
st=$(post_json carol "/v1/grants/$G4/revoke" '{"reason":"again"}')
expect_eq "a revoked grant cannot be revoked again" "$st" 409
kill9_daemon
start_daemon || { not_ok "the daemon starts again"; finish; exit 1; }
st=$(under "$G4" any3.bin "$(hex)")
expect_eq "the revocation survives a SIGKILL" "$st" 403
api ci GET /v1/log/checkpoint >/dev/null
size=$(sed -n 2p "$T_DIR/body")
found=0
for i in $(seq $((size - 1)) -1 $((size > 40 ? size - 40 : 0))); do
	api ci GET "/v1/log/entries/$i" >/dev/null
	if grep -q '^type revoked$' "$T_DIR/body" && grep -q "^request $G4\$" "$T_DIR/body"; then
		found=1; break
	fi
done
expect_eq "the revocation is in the log" "$found" 1

# The short grant's end (it was used while it held, above).
wait_s=$(( $(jq -r '.expires_at | fromdateiso8601' "$T_DIR/g5.json") - $(date +%s) + 1 ))
[ "$wait_s" -gt 0 ] && sleep "$wait_s"
st=$(under "$G5" any2.bin "$(hex)")
expect_eq "after its end it is refused at once" "$st" 403
check "... saying it expired" jq -e '.detail | test("expired")' "$T_DIR/body"

finish
