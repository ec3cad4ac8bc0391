# The transparency log from the auditor's side: the checkpoint verifies
# with nothing but openssl, every entry's inclusion proof verifies against
# the checkpoint root (RFC 6962, recomputed here in shell), `log monitor`
# accepts a growing log and cries FORK / ROLLBACK / KEY CHANGED at a
# doctored state, and `signgate verify` accepts a release signature (three
# approvals built with openssl) and a nightly one, offline, with the daemon
# stopped and only five files at hand, and refuses every single changed
# byte in any of them, naming the broken link.
. "$(dirname "$0")/lib.sh"

err_has() { grep -qE -- "$1" "$T_DIR/err"; }

hex2bin() { printf '%s' "$1" | sed 's/../\\x&/g' | xargs -0 printf '%b'; }
b64hex() { printf '%s' "$1" | base64 -d | od -An -tx1 -v | tr -d ' \n'; }
node() { { printf '\001'; hex2bin "$1"; hex2bin "$2"; } | openssl dgst -sha256 -r | cut -c1-64; }

# inclusion_ok LEAF_HEX INDEX SIZE ROOT_HEX PROOF_HEX...: RFC 9162 2.1.3.2.
inclusion_ok() {
	local r=$1 fn=$2 size=$3 sn=$(($3 - 1)) root=$4 p; shift 4
	[ "$fn" -lt "$size" ] || return 1
	for p in "$@"; do
		[ "$sn" -eq 0 ] && return 1
		if [ $((fn & 1)) -eq 1 ] || [ "$fn" -eq "$sn" ]; then
			r=$(node "$p" "$r")
			if [ $((fn & 1)) -eq 0 ]; then
				while [ $((fn & 1)) -eq 0 ] && [ "$fn" -ne 0 ]; do
					fn=$((fn >> 1)); sn=$((sn >> 1))
				done
			fi
		else
			r=$(node "$r" "$p")
		fi
		fn=$((fn >> 1)); sn=$((sn >> 1))
	done
	[ "$sn" -eq 0 ] && [ "$r" = "$root" ]
}

# flip FILE POS: changes the byte at POS (letters and digits to the next
# one of their kind and '+' to '/', so base64 stays base64 and a changed
# hash is caught by the link that checks it, not by the parser; anything
# else + 1).
flip() {
	local f=$1 pos=$2 b n
	b=$(od -An -tu1 -j "$pos" -N1 "$f" | tr -d ' \n')
	case $b in
	57) n=48 ;; 90) n=65 ;; 122) n=97 ;; 43) n=47 ;;
	*) if { [ "$b" -ge 48 ] && [ "$b" -le 56 ]; } ||
	      { [ "$b" -ge 65 ] && [ "$b" -le 89 ]; } ||
	      { [ "$b" -ge 97 ] && [ "$b" -le 121 ]; }; then
		n=$((b + 1))
	   else
		n=$(((b + 1) % 256))
	   fi ;;
	esac
	# shellcheck disable=SC2059
	printf "$(printf '\\%03o' "$n")" |
	    dd of="$f" bs=1 seek="$pos" conv=notrunc status=none
}

# line_start FILE N: byte offset of line N (1-based).
line_start() { head -n $(($2 - 1)) "$1" | wc -c; }
line_len() { sed -n "${2}p" "$1" | tr -d '\n' | wc -c; }

start_daemon || { not_ok "daemon starts"; finish; exit 1; }
as ci

# --- the log key and the checkpoint, with openssl only ----------------------
expect_eq "log key without a client certificate" \
    "$(unset SIGNGATE_CERT SIGNGATE_KEY; sg log key)" 0
cp "$T_DIR/out" "$T_DIR/vkey"
VKEY=$(cat "$T_DIR/vkey")
expect_eq "log key is the server's /v1/log/key" \
    "$(api - GET /v1/log/key)|$(body | tr -d '\n')" "200|$VKEY"
check "the verifier key is <name>+<8 hex>+<base64 of 33 bytes>" bash -c \
    "[[ '$VKEY' =~ ^[^+]+\\+[0-9a-f]{8}\\+[A-Za-z0-9+/]{44}\$ ]]"

mkdir -p "$T_DIR/ossl"
# The name and the key id hold no '+'; the base64 may.
VKEY_B64=${VKEY#*+}; VKEY_B64=${VKEY_B64#*+}
printf '%s' "$VKEY_B64" | base64 -d | tail -c 32 >"$T_DIR/ossl/pub.raw"
{ hex2bin 302a300506032b6570032100; cat "$T_DIR/ossl/pub.raw"; } >"$T_DIR/ossl/pub.der"
openssl pkey -pubin -inform DER -in "$T_DIR/ossl/pub.der" -out "$T_DIR/ossl/pub.pem" 2>/dev/null

expect_eq "log checkpoint without a client certificate" \
    "$(unset SIGNGATE_CERT SIGNGATE_KEY; sg log checkpoint)" 0
cp "$T_DIR/out" "$T_DIR/ossl/note"
# text: everything up to the blank line; signature: the line after it.
awk 'BEGIN { t = 1 } t && /^$/ { t = 0; next } t { print }' "$T_DIR/ossl/note" >"$T_DIR/ossl/text"
sigline=$(awk 'f { print; exit } /^$/ { f = 1 }' "$T_DIR/ossl/note")
expect_eq "the signature line is by the log key's name" \
    "$(printf '%s' "$sigline" | cut -d' ' -f2)" "${VKEY%%+*}"
printf '%s' "${sigline##* }" | base64 -d >"$T_DIR/ossl/sig.all"
expect_eq "the signature starts with the key id" \
    "$(head -c 4 "$T_DIR/ossl/sig.all" | od -An -tx1 | tr -d ' \n')" \
    "$(printf '%s' "$VKEY" | cut -d+ -f2)"
tail -c 64 "$T_DIR/ossl/sig.all" >"$T_DIR/ossl/sig"
check "the checkpoint signature verifies with openssl pkeyutl -rawin" \
    openssl pkeyutl -verify -pubin -inkey "$T_DIR/ossl/pub.pem" -rawin \
    -in "$T_DIR/ossl/text" -sigfile "$T_DIR/ossl/sig"
sed '2s/$/0/' "$T_DIR/ossl/text" >"$T_DIR/ossl/text.bad"
check "... and not over another size" bash -c "! openssl pkeyutl -verify \
    -pubin -inkey '$T_DIR/ossl/pub.pem' -rawin -in '$T_DIR/ossl/text.bad' \
    -sigfile '$T_DIR/ossl/sig' >/dev/null 2>&1"

# --- the monitor over a growing log ------------------------------------------
STATE="$T_DIR/monitor.state"
expect_rc "log monitor, first run (trust on first use)" 0 log monitor --state "$STATE"
check "... says so" grep -q 'trusted on first use' "$T_DIR/out"
check "the state file pins the key" grep -qx "key $VKEY" "$STATE"
size0=$(sed -n 's/^size //p' "$STATE")

# A nightly signature through the CLI: no approval needed.
mkdir -p "$T_DIR/work"
head -c 4096 /dev/urandom >"$T_DIR/work/nightly.bin"
expect_rc "sign nightly" 0 sign --key nightly "$T_DIR/work/nightly.bin"
check "sign saved the proof bundle" test -s "$T_DIR/work/nightly.bin.sig.proof"
check "sign printed the proof path" grep -qx "proof: $T_DIR/work/nightly.bin.sig.proof" "$T_DIR/out"
check "the bundle is a tlog-proof" bash -c \
    "head -n 1 '$T_DIR/work/nightly.bin.sig.proof' | grep -qx 'c2sp.org/tlog-proof@v1'"

expect_rc "log monitor after a signature" 0 log monitor --state "$STATE"
check "... saw the log grow" test "$(sed -n 's/^size: //p' "$T_DIR/out")" -gt "$size0"
check "... from what it saw before" grep -qx "previous: $size0" "$T_DIR/out"

# A release signature: three approvals made with openssl, then the same
# `sign` resumed (same Idempotency-Key) to fetch signature and proof.
printf 'release %s\n' "$(date +%s%N)" >"$T_DIR/work/release.bin"
IDEM="release-70-$$"
expect_rc "sign release, not waiting" 0 sign --key release --no-wait \
    --idempotency-key "$IDEM" "$T_DIR/work/release.bin"
RID=$(sed -n 's/^request: //p' "$T_DIR/out")
api ci GET "/v1/requests/$RID" >/dev/null; cp "$T_DIR/body" "$T_DIR/rel.json"
for o in alice bob; do
	expect_eq "$o approves the release" "$(approve_with_openssl $o "$T_DIR/rel.json")" 200
	expect_rc "log monitor after $o's approval" 0 log monitor --state "$STATE"
done
expect_eq "dave approves the release" "$(approve_with_openssl dave "$T_DIR/rel.json")" 200
expect_rc "sign release, resumed" 0 sign --key release --idempotency-key "$IDEM" \
    --wait 30 "$T_DIR/work/release.bin"
check "the release proof was saved" test -s "$T_DIR/work/release.bin.sig.proof"
expect_rc "log monitor after the release" 0 log monitor --state "$STATE"
check "... consistent" grep -qx 'consistent: yes' "$T_DIR/out"

# --- the monitor refuses doctored views --------------------------------------
good_state=$(cat "$STATE")
size=$(sed -n 's/^size //p' "$STATE")
other_root=$(printf 'not this log' | openssl dgst -sha256 -binary | base64)

sed "s|^root .*|root $other_root|" "$STATE" >"$STATE.tmp" && mv "$STATE.tmp" "$STATE"
forged=$(cat "$STATE")
expect_rc "another root at the same size" 5 log monitor --state "$STATE"
check "... FORK on stderr" err_has 'FORK'
expect_eq "... state file unchanged" "$(cat "$STATE")" "$forged"

sed "s|^size .*|size $((size - 1))|" "$STATE" >"$STATE.tmp" && mv "$STATE.tmp" "$STATE"
expect_rc "a smaller tree with a root that is not its prefix" 5 log monitor --state "$STATE"
check "... FORK (the consistency proof fails)" err_has 'FORK'

printf '%s\n' "$good_state" | sed "s|^size .*|size $((size + 5))|" >"$STATE"
expect_rc "the log claims fewer entries than seen" 5 log monitor --state "$STATE"
check "... ROLLBACK on stderr" err_has 'ROLLBACK'
expect_eq "... state file unchanged" "$(sed -n 's/^size //p' "$STATE")" "$((size + 5))"

# A different, well-formed Ed25519 verifier key for the same name.
openssl genpkey -algorithm ed25519 -out "$T_DIR/other.key" 2>/dev/null
openssl pkey -in "$T_DIR/other.key" -pubout -outform DER 2>/dev/null | tail -c 32 >"$T_DIR/other.pub"
name=${VKEY%%+*}
kid=$({ printf '%s\n\001' "$name"; cat "$T_DIR/other.pub"; } | openssl dgst -sha256 -binary | head -c 4 | od -An -tx1 | tr -d ' \n')
OTHER="$name+$kid+$({ printf '\001'; cat "$T_DIR/other.pub"; } | base64 -w0)"
printf '%s\n' "$good_state" | sed "s|^key .*|key $OTHER|" >"$STATE"
expect_rc "a state pinning another key" 5 log monitor --state "$STATE"
check "... KEY CHANGED on stderr" err_has 'KEY CHANGED'
rm -f "$STATE"
expect_rc "first use with --vkey of another key" 5 log monitor --state "$STATE" --vkey "$OTHER"
check "... KEY CHANGED" err_has 'KEY CHANGED'
check "... and no state written" test ! -e "$STATE"
expect_rc "first use with --vkey of the right key" 0 log monitor --state "$STATE" --vkey "$VKEY"
printf '%s\n' "$good_state" >"$STATE"
expect_rc "the genuine state still passes" 0 log monitor --state "$STATE"
printf 'signgate-log-monitor v1\nkey %s\nsize x\n' "$VKEY" >"$STATE.bad"
expect_rc "a malformed state file is not overwritten" 1 log monitor --state "$STATE.bad"

# --- every entry, and every inclusion proof at the current size --------------
api - GET /v1/log/checkpoint >/dev/null
N=$(sed -n 2p "$T_DIR/body")
ROOT=$(b64hex "$(sed -n 3p "$T_DIR/body")")
bad_entries=0; bad_proofs=0
for i in $(seq 0 $((N - 1))); do
	st=$(api - GET "/v1/log/entries/$i")
	if [ "$st" != 200 ] || [ "$(head -n 1 "$T_DIR/body")" != "signgate-log-entry v1" ]; then
		bad_entries=$((bad_entries + 1)); continue
	fi
	leaf=$({ printf '\000'; cat "$T_DIR/body"; } | openssl dgst -sha256 -r | cut -c1-64)
	api - GET "/v1/log/proof/inclusion?index=$i&size=$N" >/dev/null
	mapfile -t hs < <(jbody '.hashes[]')
	ph=()
	for h in "${hs[@]}"; do ph+=("$(b64hex "$h")"); done
	inclusion_ok "$leaf" "$i" "$N" "$ROOT" "${ph[@]}" || bad_proofs=$((bad_proofs + 1))
done
check "the log has entries ($N)" test "$N" -ge 7
expect_eq "every entry 0..$((N - 1)) is served and starts right" "$bad_entries" 0
expect_eq "no entry past the checkpoint size" "$(api - GET "/v1/log/entries/$N")" 404
expect_eq "every inclusion proof verifies against the checkpoint root" "$bad_proofs" 0
# The same computation refuses a leaf that is not in the log.
api - GET "/v1/log/proof/inclusion?index=0&size=$N" >/dev/null
ph=()
for h in $(jbody '.hashes[]'); do ph+=("$(b64hex "$h")"); done
if inclusion_ok "$(printf '0%.0s' $(seq 64))" 0 "$N" "$ROOT" "${ph[@]}"; then
	not_ok "the shell inclusion check refuses a wrong leaf"
else
	ok "the shell inclusion check refuses a wrong leaf"
fi

# --- offline verification -----------------------------------------------------
stop_daemon
OFF="$T_DIR/offline"
mkdir -p "$OFF"
for f in nightly.bin nightly.bin.sig nightly.bin.sig.proof release.bin \
    release.bin.sig release.bin.sig.proof; do
	cp "$T_DIR/work/$f" "$OFF/"
done
cp "$T_DIR/vkey" "$OFF/log.vkey"
# The release signature's proof ends with its policy's entry's bundle
# (81-policy-log.sh checks it): verified here with --policy, the tamper
# cases below walk the one bundle of the signature.
check "the release proof carries a policy bundle" test \
    "$(grep -c '^c2sp.org/tlog-proof@v1$' "$OFF/release.bin.sig.proof")" = 2
awk 'NR > 1 && /^c2sp.org\/tlog-proof@v1$/ { exit } { print }' \
    "$T_DIR/work/release.bin.sig.proof" >"$OFF/release.bin.sig.proof"
cp "$DEV/policy.conf" "$OFF/policy.conf"
# No server, no var/dev, no client identity: only these files.
offline() {
	(cd "$OFF" && env -i PATH="$PATH" ASAN_OPTIONS="${ASAN_OPTIONS:-}" \
	    LSAN_OPTIONS="${LSAN_OPTIONS:-}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" \
	    timeout 30 "$SIGNGATE" verify "$@" \
	    </dev/null >"$T_DIR/out" 2>"$T_DIR/err"; echo $?)
}
v_release() { offline --key-file log.vkey --policy policy.conf \
    --proof release.bin.sig.proof --signature release.bin.sig release.bin; }
v_nightly() { offline --key-file log.vkey --policy policy.conf \
    --proof nightly.bin.sig.proof --signature nightly.bin.sig nightly.bin; }

expect_eq "verify accepts the release signature offline" "$(v_release)" 0
check "... with its three approvers" grep -qx 'approvers: alice bob dave' "$T_DIR/out"
check "... on the Swiss HSM" grep -q '^hsm: [0-9a-f]* CH (Zurich)$' "$T_DIR/out"
check "... at its log index" grep -q '^log: index [0-9]*, checkpoint .* size [0-9]* root ' "$T_DIR/out"
expect_eq "verify accepts the nightly signature offline" "$(v_nightly)" 0
check "... which needed no approval" grep -qx 'approvers: none needed' "$T_DIR/out"
expect_eq "verify with --log-key and --digest" "$(offline --log-key "$VKEY" \
    --policy policy.conf --proof release.bin.sig.proof \
    --digest "sha256:$(hexdigest sha256 "$OFF/release.bin")")" 0
expect_eq "the nightly artifact against the release proof" "$(offline \
    --key-file log.vkey --policy policy.conf --proof release.bin.sig.proof \
    nightly.bin)" 5
check "... names the digest" err_has '^verify: digest: '
expect_eq "the nightly signature file against the release proof" "$(offline \
    --key-file log.vkey --policy policy.conf --proof release.bin.sig.proof \
    --signature nightly.bin.sig release.bin)" 5
check "... names the signature" err_has '^verify: signature: '
expect_eq "a digest of another algorithm" "$(offline --key-file log.vkey \
    --policy policy.conf --proof release.bin.sig.proof \
    --digest "sha384:$(hexdigest sha384 "$OFF/release.bin")")" 5
expect_eq "a missing proof file is a local error" "$(offline --key-file \
    log.vkey --policy policy.conf --proof nope.proof release.bin)" 1
expect_eq "no FILE and no --digest is a usage error" "$(offline --key-file \
    log.vkey --policy policy.conf --proof release.bin.sig.proof)" 2

# One changed byte anywhere must fail with exit 5 and the right link.
# tamper FILE POS LINK_REGEX
TAMPER_FAIL=0; TAMPER_N=0
tamper() {
	local f=$1 pos=$2 want=$3 rc
	cp "$OFF/$f" "$T_DIR/orig"
	flip "$OFF/$f" "$pos"
	if cmp -s "$OFF/$f" "$T_DIR/orig"; then
		not_ok "tamper $f@$pos changed nothing"
		return
	fi
	rc=$(v_release)
	TAMPER_N=$((TAMPER_N + 1))
	if [ "$rc" != 5 ] || ! grep -qE "^verify: ($want): " "$T_DIR/err"; then
		TAMPER_FAIL=$((TAMPER_FAIL + 1))
		echo "    $f byte $pos: exit $rc, $(head -n 1 "$T_DIR/err")"
	fi
	cp "$T_DIR/orig" "$OFF/$f"
}

P=release.bin.sig.proof
siglen=$(stat -c %s "$OFF/release.bin.sig")
for pos in 0 1 3 8 $((siglen / 2)) $((siglen - 1)); do
	tamper release.bin.sig "$pos" signature
done
alen=$(stat -c %s "$OFF/release.bin")
for pos in 0 $((alen / 2)) $((alen - 2)) $((alen - 1)); do
	tamper release.bin "$pos" digest
done
vlen=$(stat -c %s "$OFF/log.vkey")
for pos in 0 5 $((vlen - 50)) $((vlen - 46)) $((vlen - 30)) $((vlen - 10)) $((vlen - 2)) $((vlen - 1)); do
	tamper log.vkey "$pos" 'log key'
done
plen=$(stat -c %s "$OFF/policy.conf")
for pos in 3 $((plen / 8)) $((plen / 4)) $((plen / 3)) $((plen / 2)) $((3 * plen / 4)) $((plen - 20)) $((plen - 1)); do
	tamper policy.conf "$pos" policy
done
# The proof: magic, the extra line (the entry), the index, each hash, the
# checkpoint's origin, size and root, and its signature line.
PROOF_LINKS='proof|checkpoint|entry|inclusion|statement|public key|signature|policy|approval [0-9]+|quorum|hsm|expiry|key|requester'
tamper "$P" 2 proof
s=$(line_start "$OFF/$P" 2); l=$(line_len "$OFF/$P" 2)
for off in 6 40 $((l / 5)) $((l / 3)) $((l / 2)) $((2 * l / 3)) $((l - 30)) $((l - 3)); do
	tamper "$P" $((s + off)) "$PROOF_LINKS"
done
tamper "$P" $(($(line_start "$OFF/$P" 3) + 6)) 'inclusion|proof'
nl=$(wc -l <"$OFF/$P")
blank=$(grep -n '^$' "$OFF/$P" | head -n 1 | cut -d: -f1)
for ln in $(seq 4 $((blank - 1))); do
	tamper "$P" $(($(line_start "$OFF/$P" "$ln") + 10)) inclusion
done
tamper "$P" $(($(line_start "$OFF/$P" $((blank + 1))) + 2)) checkpoint
tamper "$P" "$(line_start "$OFF/$P" $((blank + 2)))" checkpoint
tamper "$P" $(($(line_start "$OFF/$P" $((blank + 3))) + 5)) checkpoint
tamper "$P" $(($(line_start "$OFF/$P" $((blank + 3))) + 30)) checkpoint
tamper "$P" $(($(line_start "$OFF/$P" "$nl") + 30)) checkpoint
tamper "$P" $(($(line_start "$OFF/$P" "$nl") + $(line_len "$OFF/$P" "$nl") - 5)) checkpoint
# A different but well-formed entry re-encoded into the bundle (the HSM's
# country changed; one approval dropped): the Merkle proof catches it.
entry_b64=$(sed -n 2p "$OFF/$P" | cut -c7-)
for edit in 's/^\(hsm [0-9a-f]*\) CH$/\1 DE/' '0,/^approval /{/^approval /d}'; do
	cp "$OFF/$P" "$T_DIR/orig"
	new_b64=$(printf '%s' "$entry_b64" | base64 -d | sed "$edit" | base64 -w0)
	awk -v e="extra $new_b64" 'NR == 2 { print e; next } { print }' \
	    "$T_DIR/orig" >"$OFF/$P"
	expect_eq "an edited entry ($edit) fails" "$(v_release)" 5
	check "... at the inclusion link" err_has '^verify: inclusion: '
	check "... and was an edit" test "$new_b64" != "$entry_b64"
	cp "$T_DIR/orig" "$OFF/$P"
done

# A witness cosigns the checkpoint under a key name that is not ASCII:
# its line is from an unknown key and is ignored (c2sp.org/signed-note),
# while the log's own line still has to verify.
cp "$OFF/$P" "$T_DIR/orig"
W_NAME=$(printf 't\xc3\xa9moin.example/\xe8\xa8\xbc\xe4\xba\xba')
openssl genpkey -algorithm ed25519 -out "$T_DIR/witness.key" 2>/dev/null
sed -n "$((blank + 1)),$((blank + 3))p" "$OFF/$P" >"$T_DIR/cp.text"
openssl pkeyutl -sign -rawin -inkey "$T_DIR/witness.key" -in "$T_DIR/cp.text" \
    -out "$T_DIR/cp.wsig"
W_LINE=$(printf '\xe2\x80\x94 %s %s' "$W_NAME" \
    "$({ printf '\x12\x34\x56\x78'; head -c 8 /dev/zero; cat "$T_DIR/cp.wsig"; } | base64 -w0)")
printf '%s\n' "$W_LINE" >>"$OFF/$P"
check "the proof now carries a non-ASCII cosigner line" grep -qF "$W_NAME" "$OFF/$P"
expect_eq "verify ignores a cosignature from an unknown non-ASCII key" "$(v_release)" 0
{ head -n $((nl - 1)) "$T_DIR/orig"; printf '%s\n' "$W_LINE"; tail -n 1 "$T_DIR/orig"; } >"$OFF/$P"
expect_eq "... before the log's own line too" "$(v_release)" 0
# (in the signature bytes: the name and key ID stay those of the log)
flip "$OFF/$P" $(($(line_start "$OFF/$P" $((nl + 1))) + $(line_len "$OFF/$P" $((nl + 1))) - 5))
expect_eq "a bad log signature next to that line still fails" "$(v_release)" 5
check "... at the checkpoint link" err_has '^verify: checkpoint: '
cp "$T_DIR/orig" "$OFF/$P"

check "at least 40 single-byte changes tried ($TAMPER_N)" test "$TAMPER_N" -ge 40
expect_eq "every changed byte fails verify with exit 5, naming the link" "$TAMPER_FAIL" 0
expect_eq "the untouched files still verify" "$(v_release)" 0

finish
