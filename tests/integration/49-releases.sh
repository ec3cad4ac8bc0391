# Releases: a conveyor submits a manifest of 1,000 artifacts with
# `signgate release create`, three officers approve its statement once
# (the manifest's Merkle root and count), and every artifact is signed.
#
# - 1,000 signatures, each verified by openssl over its file and by
#   `signgate verify` from its proof alone (the artifact's entry and the
#   release's approved entry, its inclusion path in the manifest).
# - One changed byte of an artifact, of its manifest line (in the logged
#   entry), or a proof used for another file makes verification fail.
# - The release is in the log: approved once, one artifact-signature
#   entry per artifact naming the release, its line and its position.
# - A SIGKILL of the daemon while a release is being signed loses
#   nothing and signs nothing twice: after the restart every artifact is
#   signed once.
# - Bad manifests are refused naming the field (duplicate names, no
#   artifacts, a bad digest); the requester cannot approve its release.
. "$(dirname "$0")/lib.sh"

# fails CMD...: CMD exits non-zero.
fails() { ! "$@"; }

start_daemon || { not_ok "daemon starts"; finish; exit 1; }
key_pem release >"$T_DIR/release.pub"
api - GET /v1/log/key >/dev/null
cp "$T_DIR/body" "$T_DIR/log.vkey"

N=1000
mkdir -p "$T_DIR/rel"
# 1,000 small distinct files (the content is what is signed).
for i in $(seq 1 $N); do printf 'artifact %d of the release\n' "$i"; done |
    split -l 1 -a 4 -d --additional-suffix=.bin - "$T_DIR/rel/app-"
files=("$T_DIR"/rel/app-*.bin)
expect_eq "$N artifacts to release" "${#files[@]}" "$N"

# pending_release: the id of the newest pending release, or nothing.
pending_release() {
	api alice GET "/v1/requests?state=pending&limit=20" >/dev/null
	jq -r '[.requests[] | select(.kind == "release")][0].id // empty' \
	    "$T_DIR/body"
}

# release_in_background FILE...: `signgate release create` as ci.
release_in_background() {
	( as ci; exec "$SIGNGATE" release create --key release --name app \
	    --version 1.0 --wait 600 "$@" ) >"$T_DIR/rel.out" \
	    2>"$T_DIR/rel.err" &
	REL_PID=$!
}

# approve_release ID: alice and bob (security officers) with openssl,
# dave (release manager) with `signgate approve`, which checks the
# manifest against the statement before it signs.
approve_release() {
	api ci GET "/v1/requests/$1" >/dev/null
	cp "$T_DIR/body" "$T_DIR/r.json"
	expect_eq "alice approves" "$(approve_with_openssl alice "$T_DIR/r.json")" 200
	expect_eq "bob approves" "$(approve_with_openssl bob "$T_DIR/r.json")" 200
	( as dave; "$SIGNGATE" approve "$1" --key "$DEV/officers/dave.key" \
	    --yes ) >"$T_DIR/dave.out" 2>&1
	expect_eq "dave approves with signgate approve" "$?" 0
}

release_in_background "${files[@]}"
RID=
for i in $(seq 1 300); do
	RID=$(pending_release)
	[ -n "$RID" ] && break
	kill -0 "$REL_PID" 2>/dev/null || break
	sleep 0.1
done
check "the release is pending for the officers" [ -n "$RID" ]
api ci GET "/v1/requests/$RID" >/dev/null
cp "$T_DIR/body" "$T_DIR/r0.json"
check "its statement names the manifest's root and $N artifacts" \
    jq -e --argjson n "$N" '.release.manifest_sha256 as $root | .kind == "release" and .release.count == $n and (.statement | startswith("signgate release approval v1\nrelease ")) and (.statement | contains("\nmanifest sha256:" + $root + " " + ($n | tostring) + "\n"))' "$T_DIR/r0.json"
st=$(approve_with_openssl ci "$T_DIR/r0.json" approve alice)
expect_eq "the requester cannot approve its release" "$st" 403
( as alice; "$SIGNGATE" show "$RID" --manifest ) >"$T_DIR/manifest.out" 2>&1
check "signgate show --manifest prints every line" \
    [ "$(grep -c '^  sha256:[0-9a-f]\{64\} raw app-[0-9]*\.bin$' "$T_DIR/manifest.out")" = "$N" ]
check "... after checking them against the statement" \
    grep -q '(matches the statement)' "$T_DIR/manifest.out"
approve_release "$RID"
st=0
wait "$REL_PID" || st=$?
expect_eq "signgate release create exits 0" "$st" 0
[ "$st" = 0 ] || sed 's/^/    /' "$T_DIR/rel.err" | tail -n 5
api ci GET "/v1/requests/$RID" >/dev/null
check "the release is signed, $N of $N" \
    jq -e --argjson n "$N" '.state == "signed" and .release.signed == $n' \
    "$T_DIR/body"

# each_file FUNC: FUNC FILE for every artifact, in as many lists at once
# as there are CPUs (at most 4); prints how many passed.  Called in $(),
# so `wait` waits for those lists only, not for the daemon.
each_file() {
	local k=$(nproc) i n
	[ "$k" -gt 4 ] && k=4
	for i in $(seq 0 $((k - 1))); do
		( n=0
		  for ((j = i; j < ${#files[@]}; j += k)); do
			"$1" "${files[j]}" && n=$((n + 1))
		  done
		  echo "$n" ) >"$T_DIR/each.$i" &
	done
	wait
	cat "$T_DIR"/each.* | awk '{ s += $1 } END { print s + 0 }'
	rm -f "$T_DIR"/each.*
}
has_sig() { [ -s "$1.sig" ]; }
has_proof() { [ -s "$1.sig.proof" ]; }
expect_eq "a signature for every artifact" "$(each_file has_sig)" "$N"
expect_eq "a proof for every artifact" "$(each_file has_proof)" "$N"
# OpenSSL alone checks each signature over its file, as `openssl dgst
# -sha256 -verify` does, all in one process (tests/tools/sigcheck): a
# process each costs more than the check.
"$BUILD/tools/sigcheck" "$T_DIR/release.pub" "${files[@]}" >"$T_DIR/sigcheck.out" 2>&1
expect_eq "OpenSSL verifies every signature over its file" \
    "$(head -n 1 "$T_DIR/sigcheck.out")" "$N"

# signgate verify, from the proofs alone: every artifact in one process
# (--each finds FILE.sig and FILE.sig.proof beside FILE), and one by one.
verify() {
	"$SIGNGATE" verify --key-file "$T_DIR/log.vkey" \
	    --policy "$DEV/policy.conf" --proof "$2" --signature "$3" "$1"
}
verify_each() {
	"$SIGNGATE" verify --key-file "$T_DIR/log.vkey" \
	    --policy "$DEV/policy.conf" --each "$@" \
	    >"$T_DIR/each.out" 2>"$T_DIR/each.err"
}
check "signgate verify --each accepts every artifact" verify_each "${files[@]}"
expect_eq "... a line each" "$(grep -c '^verified: .* (key release, log index [0-9]*)$' "$T_DIR/each.out")" "$N"
expect_eq "... and the count" "$(tail -n 1 "$T_DIR/each.out")" "$N of $N verified"
verify_ok() { verify "$1" "$1.sig.proof" "$1.sig" >/dev/null 2>&1; }
sample=()
for ((i = 0; i < N; i += 97)); do sample+=("${files[i]}"); done
n=0
for f in "${sample[@]}"; do verify_ok "$f" && n=$((n + 1)); done
expect_eq "signgate verify accepts every 97th artifact one by one" \
    "$n" "${#sample[@]}"
expect_rc "verify --each refuses --proof" 2 verify \
    --key-file "$T_DIR/log.vkey" --each --proof "${files[0]}.sig.proof" \
    "${files[0]}"
f=${files[16]}
verify "$f" "$f.sig.proof" "$f.sig" >"$T_DIR/v.out" 2>&1
check "... and says which artifact of which release it is" \
    grep -q "artifact 17 of $N (position 16) of release $RID" "$T_DIR/v.out"
check "... and who approved it" \
    sh -c "grep -q alice '$T_DIR/v.out' && grep -q bob '$T_DIR/v.out' && grep -q dave '$T_DIR/v.out'"

# Tampering, each alone.
f=${files[500]}
cp "$f" "$T_DIR/orig.bin"
printf 'X' | dd of="$f" bs=1 seek=3 conv=notrunc 2>/dev/null
check "a changed byte of an artifact: openssl refuses" fails \
    openssl dgst -sha256 -verify "$T_DIR/release.pub" -signature "$f.sig" "$f"
check "a changed byte of an artifact: signgate verify refuses" fails \
    verify "$f" "$f.sig.proof" "$f.sig"
rc=0
verify_each "${files[@]}" || rc=$?
expect_eq "... and verify --each, with exit 5" "$rc" 5
expect_eq "... counting the others" "$(tail -n 1 "$T_DIR/each.out")" \
    "$((N - 1)) of $N verified"
check "... naming the changed one" \
    grep -qx "signgate: $f: not verified" "$T_DIR/each.err"
check "... and the link that broke" grep -q '^verify: digest: ' "$T_DIR/each.err"
cp "$T_DIR/orig.bin" "$f"
check "the artifact restored verifies again" verify "$f" "$f.sig.proof" "$f.sig"

# The manifest line inside the logged entry, one byte changed (the
# artifact's name), the bundle otherwise intact.
p="$f.sig.proof"
extra=$(awk '/^extra /{ sub(/^extra /, ""); print; exit }' "$p")
printf '%s' "$extra" | base64 -d >"$T_DIR/entry"
line=$(sed -n 's/^line //p' "$T_DIR/entry" | base64 -d)
newline=$(printf '%s' "$line" | sed 's/app-/apq-/')
check "the entry holds the artifact's manifest line" \
    grep -q "raw $(basename "$f")\$" <(printf '%s\n' "$line")
sed "s|^line .*|line $(printf '%s' "$newline" | base64 -w0)|" "$T_DIR/entry" \
    >"$T_DIR/entry2"
newextra=$(base64 -w0 "$T_DIR/entry2")
awk -v old="$extra" -v new="$newextra" \
    '$0 == "extra " old { print "extra " new; next } { print }' "$p" \
    >"$T_DIR/tampered.proof"
check "the tampered proof differs from the original" \
    fails cmp -s "$p" "$T_DIR/tampered.proof"
check "a changed byte of the manifest line: signgate verify refuses" fails \
    verify "$f" "$T_DIR/tampered.proof" "$f.sig"
check "a proof of another artifact: signgate verify refuses" fails \
    verify "$f" "${files[501]}.sig.proof" "$f.sig"

# The log: one approved entry for the release, one artifact-signature
# entry per artifact.
api ci GET "/v1/releases/$RID/artifacts?after=500&limit=1" >/dev/null
idx=$(jq -r '.artifacts[0].signature.log.index' "$T_DIR/body")
aidx=$(jq -r '.artifacts[0].signature.log.approved_index' "$T_DIR/body")
api - GET "/v1/log/entries/$idx" >/dev/null
check "artifact 500's entry names the release, its position and line" \
    sh -c "grep -qx 'type artifact-signature' '$T_DIR/body' && grep -qx 'request $RID' '$T_DIR/body' && grep -qx 'position 500' '$T_DIR/body' && grep -qx 'approved $aidx' '$T_DIR/body'"
api - GET "/v1/log/entries/$aidx" >/dev/null
check "the approved entry holds the statement and three approvals" \
    sh -c "grep -qx 'type approved' '$T_DIR/body' && [ \$(grep -c '^approval ' '$T_DIR/body') = 3 ]"

# --- a SIGKILL while a release is being signed ---------------------------------

mkdir -p "$T_DIR/rel2"
for i in $(seq 1 $N); do printf 'second release, artifact %d\n' "$i"; done |
    split -l 1 -a 4 -d --additional-suffix=.bin - "$T_DIR/rel2/lib-"
files2=("$T_DIR"/rel2/lib-*.bin)
release_in_background "${files2[@]}"
RID2=
for i in $(seq 1 300); do
	RID2=$(pending_release)
	[ -n "$RID2" ] && break
	sleep 0.1
done
kill "$REL_PID" 2>/dev/null; wait "$REL_PID" 2>/dev/null
api ci GET "/v1/requests/$RID2" >/dev/null
cp "$T_DIR/body" "$T_DIR/r2.json"
expect_eq "alice approves the second" "$(approve_with_openssl alice "$T_DIR/r2.json")" 200
expect_eq "bob approves the second" "$(approve_with_openssl bob "$T_DIR/r2.json")" 200
expect_eq "dave approves the second" "$(approve_with_openssl dave "$T_DIR/r2.json")" 200
for i in $(seq 1 400); do
	api ci GET "/v1/requests/$RID2" >/dev/null
	[ "$(jq -r .release.signed "$T_DIR/body")" -gt 0 ] && break
	sleep 0.01
done
kill9_daemon
start_daemon || { not_ok "the daemon starts again"; finish; exit 1; }
for i in $(seq 1 300); do
	api ci GET "/v1/requests/$RID2" >/dev/null
	[ "$(jq -r .state "$T_DIR/body")" = signed ] && break
	sleep 0.1
done
check "after the kill and the restart the release is signed, $N of $N" \
    jq -e --argjson n "$N" '.state == "signed" and .release.signed == $n' \
    "$T_DIR/body"
# Every position signed once in the log: read the artifacts back.
after=0; : >"$T_DIR/idx"
while [ "$after" != null ]; do
	api ci GET "/v1/releases/$RID2/artifacts?after=$after&limit=1000" >/dev/null
	jq -r '.artifacts[] | "\(.position) \(.signature.log.index)"' \
	    "$T_DIR/body" >>"$T_DIR/idx"
	after=$(jq -r .next "$T_DIR/body")
done
expect_eq "every artifact has its signature entry" \
    "$(cut -d' ' -f2 "$T_DIR/idx" | grep -c '^[0-9]')" "$N"
expect_eq "... each its own" "$(cut -d' ' -f2 "$T_DIR/idx" | sort -u | wc -l)" "$N"

# --- a CMS release ---------------------------------------------------------------

mkdir -p "$T_DIR/rel3"
for i in 1 2 3; do printf 'installer %d\n' "$i" >"$T_DIR/rel3/setup-$i.exe"; done
( as ci; exec "$SIGNGATE" release create --key release --format cms \
    --wait 120 "$T_DIR"/rel3/setup-*.exe ) >"$T_DIR/rel.out" \
    2>"$T_DIR/rel.err" &
REL_PID=$!
RID3=
for i in $(seq 1 300); do
	RID3=$(pending_release)
	[ -n "$RID3" ] && break
	sleep 0.1
done
approve_release "$RID3"
st=0
wait "$REL_PID" || st=$?
expect_eq "a CMS release is signed and written" "$st" 0
ncms=0
for f in "$T_DIR"/rel3/setup-*.exe; do
	openssl cms -verify -binary -inform DER -in "$f.p7s" -content "$f" \
	    -CAfile "$DEV/codesign/ca.pem" -purpose any -out /dev/null \
	    >/dev/null 2>&1 && verify "$f" "$f.p7s.proof" "$f.p7s" >/dev/null 2>&1 &&
	    ncms=$((ncms + 1))
done
expect_eq "openssl cms and signgate verify accept every CMS signature" "$ncms" 3

# --- bad manifests --------------------------------------------------------------

d=$(printf '%064x' 1)
st=$(post_json ci /v1/releases "{\"key\":\"release\",\"artifacts\":[{\"name\":\"a\",\"digest\":{\"algorithm\":\"sha256\",\"value\":\"$d\"}},{\"name\":\"a\",\"digest\":{\"algorithm\":\"sha256\",\"value\":\"$d\"}}]}")
expect_eq "two artifacts with one name are refused" "$st" 400
check "... naming the second" jq -e '.field == "artifacts[1].name"' "$T_DIR/body"
st=$(post_json ci /v1/releases '{"key":"release","artifacts":[]}')
expect_eq "a release without artifacts is refused" "$st" 400
st=$(post_json ci /v1/releases '{"key":"release","artifacts":[{"name":"a","digest":{"algorithm":"sha256","value":"zz"}}]}')
expect_eq "a bad digest is refused" "$st" 400
check "... naming its field" jq -e '.field == "artifacts[0].digest.value"' "$T_DIR/body"
st=$(post_json ci /v1/releases "{\"key\":\"release\",\"artifacts\":[{\"name\":\"a b\",\"digest\":{\"algorithm\":\"sha256\",\"value\":\"$d\"}}]}")
expect_eq "a name with a space is refused" "$st" 400

finish
