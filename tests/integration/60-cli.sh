# The `signgate` command line end to end against a real daemon: keys,
# immediate signatures checked with openssl, the whole release flow (a
# conveyor waiting while two officers approve with their smart cards and
# the release manager with a key file), a veto, idempotent retries, and
# every refusal with the exit status `signgate --help` documents.
#
# Every CLI run is bounded by timeout(1), reads stdin from /dev/null and
# runs without a controlling terminal (setsid), so that nothing can wait
# for a prompt.
. "$(dirname "$0")/lib.sh"

MODULE=/usr/lib/softhsm/libsofthsm2.so
PIN_FILE="$DEV/pins/officer-cards.pin"
CARD="pkcs11:token=officer-cards;object"

err_has() { grep -qE -- "$1" "$T_DIR/err"; }
absent() { [ ! -e "$1" ]; }

# bg_sign NAME ARGS...: `signgate sign ARGS` in the background, output in
# $T_DIR/NAME.out and .err; sets BG_PID.
bg_sign() {
	local name=$1; shift
	timeout 60 setsid -w "$SIGNGATE" sign "$@" </dev/null \
	    >"$T_DIR/$name.out" 2>"$T_DIR/$name.err" &
	BG_PID=$!
	BG_PIDS+=("$BG_PID")
}

# wait_line FILE REGEX SECONDS: waits, bounded, for a line in FILE.
wait_line() {
	for _ in $(seq 1 $(($3 * 20))); do
		grep -qE -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# wait_pid PID SECONDS: waits, bounded, for that one process; its exit
# status goes to WAIT_RC (124 or a signal status when it had to be
# stopped).
wait_pid() {
	local pid=$1
	for _ in $(seq 1 $(($2 * 20))); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null
	wait "$pid"
	WAIT_RC=$?
}

# The request id a sign printed ("request: <id>").
req_id() { sed -n 's/^request: \([0-9a-f]*\)$/\1/p' "$1" | head -n 1; }

# verify ALG PUB SIG FILE: openssl accepts the signature over FILE.
verify() {
	openssl dgst "-$1" -verify "$2" -signature "$3" "$4"
}

# check_proof ID SIGFILE OUTPUT: when the server's signature object for
# request ID carries a log proof, sign wrote exactly that text to
# SIGFILE.proof and said so; otherwise it wrote none.
check_proof() {
	local id=$1 sig=$2 out=$3
	api audit GET "/v1/requests/$id/signature" >/dev/null
	if [ -n "$(jbody '.log.proof // empty')" ]; then
		check "the log proof is written to $(basename "$sig").proof" \
		    bash -c "jq -j .log.proof '$T_DIR/body' | cmp - '$sig.proof'"
		check "... and announced" grep -qx "proof: $sig.proof" "$out"
	else
		check "no log proof, none written" absent "$sig.proof"
	fi
}

# --- help and usage (no daemon needed) --------------------------------------
expect_rc "signgate --help" 0 --help
check "... documents the exit statuses" \
    grep -qE '^  7  timed out waiting' "$T_DIR/out"
expect_rc "signgate -h" 0 -h
expect_rc "signgate help" 0 help
for cmd in keys sign pending show approve reject; do
	expect_rc "signgate help $cmd" 0 help "$cmd"
	check "... prints the usage of $cmd" \
	    grep -qE "^usage: signgate .*\\b$cmd\\b" "$T_DIR/out"
	expect_rc "signgate $cmd --help" 0 "$cmd" --help
	check "... prints the usage of $cmd" \
	    grep -qE "^usage: signgate .*\\b$cmd\\b" "$T_DIR/out"
	expect_rc "signgate $cmd -h" 0 "$cmd" -h
done
expect_rc "help works with no server configured" 0 \
    --url https://127.0.0.1:1 sign --help

start_daemon || { not_ok "daemon starts"; finish; exit 1; }
ok "daemon starts"

key_pem nightly >"$T_DIR/nightly.pub"
key_pem release >"$T_DIR/release.pub"
key_pem firmware >"$T_DIR/firmware.pub"
check "the public keys come from /v1/keys" bash -c \
    "for k in nightly release firmware; do openssl pkey -pubin -noout -in '$T_DIR/'\$k.pub || exit 1; done"

# --- keys ---------------------------------------------------------------------
as ci
expect_rc "signgate keys" 0 keys
for k in release firmware firmware-pss nightly; do
	check "keys lists $k, active, on signgate-dev in Zurich, CH" \
	    grep -qE "^$k +[a-z0-9-]+ +[a-z,]+ +active +signgate-dev/Zurich/CH\$" \
	    "$T_DIR/out"
done
check "keys starts with its header" grep -qE '^NAME +ALGORITHM +FORMATS +STATE +HSM$' "$T_DIR/out"
expect_eq "keys lists exactly four keys" "$(grep -cE '^[a-z]' "$T_DIR/out")" 4
want=$(openssl pkey -pubin -in "$T_DIR/nightly.pub" -outform DER |
    openssl dgst -sha256 -r | cut -d' ' -f1)
check "keys shows nightly's SPKI digest as openssl computes it" \
    bash -c "grep -A1 '^nightly ' '$T_DIR/out' | grep -qx '    spki: sha256:$want'"
expect_rc "signgate keys --json" 0 keys --json
check "... is valid JSON with the four keys in Zurich, CH" jq -e '
    ([.keys[].name] | sort) == ["firmware", "firmware-pss", "nightly", "release"]
    and ([.keys[].hsm | "\(.site)/\(.country)"] | unique) == ["Zurich/CH"]' \
    "$T_DIR/out"
as audit
expect_rc "an auditor may list the keys too" 0 keys

# --- immediate signatures (nightly) -------------------------------------------
as ci
head -c 50000 /dev/urandom >"$T_DIR/nightly.bin"
cp "$T_DIR/nightly.bin" "$T_DIR/nightly-changed.bin"
printf x >>"$T_DIR/nightly-changed.bin"
expect_rc "sign --key nightly FILE" 0 sign --key nightly "$T_DIR/nightly.bin"
check "... says where it wrote the signature" \
    grep -qx "signature: $T_DIR/nightly.bin.sig" "$T_DIR/out"
check "... says it verified the local digest" \
    grep -q "^verified: ecdsa-p256 sha256:$(hexdigest sha256 "$T_DIR/nightly.bin") key nightly " \
    "$T_DIR/out"
check "... and the state signed" grep -qx "state: signed" "$T_DIR/out"
check "openssl dgst -sha256 -verify accepts FILE.sig" \
    verify sha256 "$T_DIR/nightly.pub" "$T_DIR/nightly.bin.sig" "$T_DIR/nightly.bin"
check "... and rejects it for a changed file" \
    bash -c "! openssl dgst -sha256 -verify '$T_DIR/nightly.pub' \
    -signature '$T_DIR/nightly.bin.sig' '$T_DIR/nightly-changed.bin'"
check_proof "$(req_id "$T_DIR/out")" "$T_DIR/nightly.bin.sig" "$T_DIR/out"

cp "$T_DIR/nightly.bin.sig" "$T_DIR/nightly.first.sig"
for alg in sha384 sha512; do
	expect_rc "sign --digest $alg --out" 0 sign --key nightly --digest "$alg" \
	    --out "$T_DIR/nightly.$alg" "$T_DIR/nightly.bin"
	check "... says it wrote --out" \
	    grep -qx "signature: $T_DIR/nightly.$alg" "$T_DIR/out"
	check "openssl dgst -$alg -verify accepts the --out file" \
	    verify "$alg" "$T_DIR/nightly.pub" "$T_DIR/nightly.$alg" "$T_DIR/nightly.bin"
done
check "--out leaves FILE.sig alone" cmp "$T_DIR/nightly.first.sig" "$T_DIR/nightly.bin.sig"

# CMS: either a detached CMS that openssl verifies, or nothing at all.
rc=$(sg sign --key nightly --format cms "$T_DIR/nightly.bin")
check "sign --format cms writes a verifying CMS or nothing (exit $rc)" bash -c "
	if [ $rc = 0 ]; then
		openssl cms -verify -binary -inform DER -in '$T_DIR/nightly.bin.p7s' \
		    -content '$T_DIR/nightly.bin' -CAfile '$DEV/codesign/ca.pem' \
		    -purpose any -out /dev/null
	else
		[ $rc = 3 ] && [ ! -e '$T_DIR/nightly.bin.p7s' ]
	fi"

# --- the release flow: a waiting sign, two cards and a key file ---------------
head -c 70000 /dev/urandom >"$T_DIR/release.bin"
as ci
bg_sign rel --key release --wait 40 "$T_DIR/release.bin"
REL_PID=$BG_PID
check "the release sign waits and names what is missing" wait_line \
    "$T_DIR/rel.out" '^missing: 2 of 2 security-officers, 1 of 1 release-managers$' 10
ID=$(req_id "$T_DIR/rel.out")
check "... after printing its request id" \
    bash -c "[ \${#1} = 32 ]" _ "$ID"
check "... and the state pending" grep -qx "state: pending" "$T_DIR/rel.out"
check "... and no signature yet" absent "$T_DIR/release.bin.sig"

as alice
expect_rc "pending as alice" 0 pending
check "... lists the release request, requested by ci" \
    grep -qE "^$ID +release +release\\.bin +ci .*2 of 2 security-officers, 1 of 1 release-managers\$" \
    "$T_DIR/out"
expect_rc "pending --key release" 0 pending --key release
check "... lists it" grep -q "^$ID " "$T_DIR/out"
expect_rc "pending --key nightly" 0 pending --key nightly
check "... does not list it" bash -c "! grep -q '^$ID ' '$T_DIR/out'"
expect_rc "pending --json" 0 pending --json
check "... is valid JSON and holds the request once" \
    jq -e --arg id "$ID" '[.requests[] | select(.id == $id)] | length == 1' "$T_DIR/out"

api alice GET "/v1/requests/$ID" >/dev/null
jq -j .statement "$T_DIR/body" >"$T_DIR/rel.statement"
expect_rc "show ID" 0 show "$ID"
check "... shows the local digest" \
    grep -qx "digest: sha256:$(hexdigest sha256 "$T_DIR/release.bin")" "$T_DIR/out"
check "... shows the key and its SPKI" \
    grep -qx "key: release spki sha256:$(api ci GET /v1/keys >/dev/null; jbody '.keys[] | select(.name=="release") | .spki_sha256')" \
    "$T_DIR/out"
check "... shows what is missing" \
    grep -qx "missing: 2 of 2 security-officers, 1 of 1 release-managers" "$T_DIR/out"
check "... shows no approval yet" bash -c "! grep -q '^approval:' '$T_DIR/out'"
check "... shows the server's statement, line for line" bash -c \
    "diff <(sed -n '/^statement:\$/,\$p' '$T_DIR/out' | tail -n +2 | sed 's/^  //') '$T_DIR/rel.statement'"
expect_rc "show ID --json" 0 show "$ID" --json
check "... is the request as JSON" jq -e --arg id "$ID" \
    '.id == $id and .state == "pending" and .key == "release"' "$T_DIR/out"

expect_rc "alice approves with her card" 0 approve "$ID" \
    --pkcs11 "$CARD=alice" --module "$MODULE" --pin-file "$PIN_FILE" --yes
check "... posted as alice" grep -qx "posted: alice approve" "$T_DIR/out"
check "... still missing one officer and the release manager" \
    grep -qx "missing: 1 of 2 security-officers, 1 of 1 release-managers" "$T_DIR/out"
check "the waiting sign sees alice's approval" wait_line "$T_DIR/rel.out" \
    '^missing: 1 of 2 security-officers, 1 of 1 release-managers$' 10

as bob
expect_rc "bob approves with his card (verbose)" 0 -v approve "$ID" \
    --pkcs11 "$CARD=bob" --module "$MODULE" --pin-file "$PIN_FILE" --yes
check "... logging the HTTP exchanges" err_has "^signgate debug: POST /v1/requests/$ID/approvals -> 200"
check "... but never the PIN" bash -c "! grep -qF -- \"\$(head -n 1 '$PIN_FILE')\" '$T_DIR/out' '$T_DIR/err'"
check "... missing only the release manager" \
    grep -qx "missing: 1 of 1 release-managers" "$T_DIR/out"
check "... still pending" grep -qx "state: pending" "$T_DIR/out"
check "no signature before the quorum" absent "$T_DIR/release.bin.sig"

as dave
start=$(date +%s%N)
expect_rc "dave approves with his key file" 0 approve "$ID" \
    --key "$DEV/officers/dave.key" --yes
check "... and the request is signed" grep -qx "state: signed" "$T_DIR/out"
check "... nothing missing" grep -qx "missing: none" "$T_DIR/out"

wait_pid "$REL_PID" 15
el=$(( ($(date +%s%N) - start) / 1000000 ))
expect_eq "the waiting sign exits 0" "$WAIT_RC" 0
[ "$WAIT_RC" = 0 ] || sed 's/^/    /' "$T_DIR/rel.err"
check "... soon after the last approval (${el} ms)" test "$el" -lt 10000
check "... says it is signed" grep -qx "state: signed" "$T_DIR/rel.out"
check "... and where the signature is" \
    grep -qx "signature: $T_DIR/release.bin.sig" "$T_DIR/rel.out"
check_proof "$ID" "$T_DIR/release.bin.sig" "$T_DIR/rel.out"
check "openssl verifies FILE.sig with the release key from /v1/keys" \
    verify sha256 "$T_DIR/release.pub" "$T_DIR/release.bin.sig" "$T_DIR/release.bin"
check "... and not with the nightly key" bash -c "! openssl dgst -sha256 -verify \
    '$T_DIR/nightly.pub' -signature '$T_DIR/release.bin.sig' '$T_DIR/release.bin'"

expect_rc "show ID after signing" 0 show "$ID"
expect_eq "... lists the three approvals" \
    "$(sed -n 's/^approval: \([a-z]*\) \([a-z]*\) .*/\1:\2/p' "$T_DIR/out" | paste -sd' ')" \
    "alice:approve bob:approve dave:approve"
check "... state signed, nothing missing" bash -c \
    "grep -qx 'state: signed' '$T_DIR/out' && grep -qx 'missing: none' '$T_DIR/out'"
as carol
expect_rc "approving a signed request is refused" 3 approve "$ID" \
    --key "$DEV/officers/carol.key" --yes
as alice
expect_rc "pending no longer lists it" 0 pending
check "... (not listed)" bash -c "! grep -q '^$ID ' '$T_DIR/out'"

# --- a veto: the waiting sign ends without a signature ------------------------
head -c 30000 /dev/urandom >"$T_DIR/firmware.bin"
as ci
bg_sign fw --key firmware --wait 40 "$T_DIR/firmware.bin"
FW_PID=$BG_PID
check "the firmware sign waits" wait_line "$T_DIR/fw.out" '^missing: 2 of 2 security-officers$' 10
FW=$(req_id "$T_DIR/fw.out")
as alice
expect_rc "alice approves the firmware request with her card" 0 approve "$FW" \
    --pkcs11 "$CARD=alice" --module "$MODULE" --pin-file "$PIN_FILE" --yes
as bob
expect_rc "bob rejects it" 0 reject "$FW" --key "$DEV/officers/bob.key" --yes
check "... posted as a reject" grep -qx "posted: bob reject" "$T_DIR/out"
check "... and the request is rejected" grep -qx "state: rejected" "$T_DIR/out"
wait_pid "$FW_PID" 15
expect_eq "the waiting sign exits 6" "$WAIT_RC" 6
check "... says the request was rejected" grep -qx "state: rejected" "$T_DIR/fw.out"
check "... and writes no signature" absent "$T_DIR/firmware.bin.sig"
check "... says so" grep -q "rejected; no signature" "$T_DIR/fw.err"
as carol
expect_rc "approving a rejected request is refused" 3 approve "$FW" \
    --pkcs11 "$CARD=carol" --module "$MODULE" --pin-file "$PIN_FILE" --yes
as ci
expect_rc "sign resumes the rejected request (same idempotency key) and exits 6" 6 \
    sign --key firmware --no-wait --idempotency-key \
    "$(sed -n 's/^idempotency-key: //p' "$T_DIR/fw.out")" "$T_DIR/firmware.bin"
check "... still writing no signature" absent "$T_DIR/firmware.bin.sig"

# --- refusals -----------------------------------------------------------------
head -c 20000 /dev/urandom >"$T_DIR/r2.bin"
as ci
expect_rc "sign --no-wait on a release request" 0 sign --key release --no-wait \
    "$T_DIR/r2.bin"
R2=$(req_id "$T_DIR/out")
check "... prints its id and exits while pending" bash -c \
    "[ \${#1} = 32 ] && grep -qx 'state: pending' '$T_DIR/out'" _ "$R2"
check "... writing nothing" absent "$T_DIR/r2.bin.sig"

as alice
expect_rc "alice approves with her key file" 0 approve "$R2" \
    --key "$DEV/officers/alice.key" --yes
expect_rc "alice approving twice is refused" 3 approve "$R2" \
    --key "$DEV/officers/alice.key" --yes
check "... with the server's reason" err_has "409"
expect_rc "alice approving twice with her card is refused" 3 approve "$R2" \
    --pkcs11 "$CARD=alice" --module "$MODULE" --pin-file "$PIN_FILE" --yes

as ci
expect_rc "the requester ci cannot approve" 3 approve "$R2" \
    --key "$DEV/officers/carol.key" --yes
check "... (403)" err_has "403"
expect_rc "ci cannot approve in an officer's name" 3 approve "$R2" \
    --key "$DEV/officers/carol.key" --as carol --yes

as carol
expect_rc "bob's card key over carol's connection is refused" 3 approve "$R2" \
    --pkcs11 "$CARD=bob" --module "$MODULE" --pin-file "$PIN_FILE" --yes
check "... because it does not verify as carol's (422)" err_has "422"
as bob
expect_rc "bob's card key with --as carol is refused" 3 approve "$R2" \
    --pkcs11 "$CARD=bob" --module "$MODULE" --pin-file "$PIN_FILE" \
    --as carol --yes

as carol
cp "$DEV/officers/carol.key" "$T_DIR/carol-0644.key"
chmod 0644 "$T_DIR/carol-0644.key"
expect_rc "a key file with mode 0644 is refused" 1 approve "$R2" \
    --key "$T_DIR/carol-0644.key" --yes
check "... naming the mode" err_has "chmod 600"
cp "$PIN_FILE" "$T_DIR/pin-0644"
chmod 0644 "$T_DIR/pin-0644"
expect_rc "a PIN file with mode 0644 is refused" 1 approve "$R2" \
    --pkcs11 "$CARD=carol" --module "$MODULE" --pin-file "$T_DIR/pin-0644" --yes
check "... naming the mode" err_has "0600"
expect_rc "no PIN file and no terminal" 1 approve "$R2" \
    --pkcs11 "$CARD=carol" --module "$MODULE" --yes
printf 'not-the-pin\n' >"$T_DIR/wrong.pin"
chmod 0600 "$T_DIR/wrong.pin"
expect_rc "a wrong PIN" 1 approve "$R2" \
    --pkcs11 "$CARD=carol" --module "$MODULE" --pin-file "$T_DIR/wrong.pin" --yes
expect_rc "an unknown card key" 1 approve "$R2" \
    --pkcs11 "$CARD=mallory" --module "$MODULE" --pin-file "$PIN_FILE" --yes
api audit GET "/v1/requests/$R2" >/dev/null
expect_eq "after every refusal only alice's approval counts" \
    "$(jbody '[.approvals[] | "\(.officer):\(.decision)"] | join(" ")')" "alice:approve"
expect_eq "... and the request is still pending" "$(jbody .state)" pending

as ci
start=$(date +%s%N)
expect_rc "--wait 2 on an unapproved request times out" 7 sign --key release \
    --wait 2 "$T_DIR/r2.bin"
el=$(( ($(date +%s%N) - start) / 1000000 ))
check "... after about 2 s (${el} ms)" test "$el" -ge 1500 -a "$el" -le 10000
check "... saying it is still pending" err_has "still pending"
check "... writing nothing" absent "$T_DIR/r2.bin.sig"

expect_rc "a FILE that does not exist" 1 sign --key nightly "$T_DIR/no-such.bin"
check "... writes nothing" absent "$T_DIR/no-such.bin.sig"
expect_rc "--out in a directory that does not exist" 1 sign --key nightly \
    --out "$T_DIR/no-such-dir/x.sig" "$T_DIR/r2.bin"
check "... writes nothing" bash -c "[ ! -e '$T_DIR/no-such-dir' ] && ! grep -q '^signature:' '$T_DIR/out'"

expect_rc "an unknown key is refused" 3 sign --key no-such-key "$T_DIR/r2.bin"
check "... naming the field" err_has "\(field key\)"
check "... writing nothing" absent "$T_DIR/r2.bin.sig"
as alice
expect_rc "an officer may not request a signature" 3 sign --key nightly \
    "$T_DIR/r2.bin"
check "... writing nothing" absent "$T_DIR/r2.bin.sig"
expect_rc "show of an unknown request" 3 show 0123456789abcdef0123456789abcdef
expect_rc "approve of an unknown request" 3 approve \
    0123456789abcdef0123456789abcdef --key "$DEV/officers/alice.key" --yes
rc=$(SIGNGATE_CERT='' SIGNGATE_KEY='' sg keys)
expect_eq "no client certificate is refused (exit 3)" "$rc" 3
expect_rc "a server the CA does not vouch for" 4 \
    --cacert "$DEV/codesign/ca.pem" keys

# --- usage errors ---------------------------------------------------------------
touch "$T_DIR/u.bin"
expect_rc "no command" 2
expect_rc "an unknown command" 2 frobnicate
expect_rc "help for an unknown command" 2 help frobnicate
expect_rc "an unknown global option" 2 --frobnicate keys
expect_rc "--timeout 0" 2 --timeout 0 keys
expect_rc "keys with an argument" 2 keys extra
expect_rc "sign without --key" 2 sign "$T_DIR/u.bin"
expect_rc "sign without FILE" 2 sign --key nightly
expect_rc "sign with two files" 2 sign --key nightly "$T_DIR/u.bin" "$T_DIR/u.bin"
expect_rc "sign --digest md5" 2 sign --key nightly --digest md5 "$T_DIR/u.bin"
expect_rc "sign --format pdf" 2 sign --key nightly --format pdf "$T_DIR/u.bin"
expect_rc "sign --wait soon" 2 sign --key nightly --wait soon "$T_DIR/u.bin"
expect_rc "sign --idempotency-key with a space" 2 sign --key nightly \
    --idempotency-key "a b" "$T_DIR/u.bin"
expect_rc "sign --meta without =" 2 sign --key nightly --meta novalue "$T_DIR/u.bin"
expect_rc "sign --bogus" 2 sign --bogus --key nightly "$T_DIR/u.bin"
expect_rc "sign --artifact-name with a right-to-left override" 2 sign \
    --key nightly --artifact-name "$(printf 'invoice\xe2\x80\xaegpj.exe')" "$T_DIR/u.bin"
check "... naming the code point" \
    err_has 'artifact field name: U\+202E \(RIGHT-TO-LEFT OVERRIDE\) is not allowed'
expect_rc "sign --artifact-version with a C1 control" 2 sign --key nightly \
    --artifact-version "$(printf '1\xc2\x85')" "$T_DIR/u.bin"
expect_rc "sign --meta with invalid UTF-8" 2 sign --key nightly \
    --meta "$(printf 'commit=\xc0\xaf')" "$T_DIR/u.bin"
check "no usage error wrote a signature" absent "$T_DIR/u.bin.sig"
expect_rc "pending with an argument" 2 pending extra
expect_rc "show without ID" 2 show
expect_rc "show with a malformed ID" 2 show not-an-id
expect_rc "approve without a key" 2 approve "$R2" --yes
expect_rc "approve with both --key and --pkcs11" 2 approve "$R2" \
    --key "$DEV/officers/carol.key" --pkcs11 "$CARD=carol" --yes
expect_rc "approve without --yes and no terminal" 2 approve "$R2" \
    --key "$DEV/officers/carol.key"
expect_rc "approve with a malformed URI" 2 approve "$R2" \
    --pkcs11 "token=officer-cards" --module "$MODULE" --pin-file "$PIN_FILE" --yes
expect_rc "approve --pin-file without --pkcs11" 2 approve "$R2" \
    --key "$DEV/officers/carol.key" --pin-file "$PIN_FILE" --yes
expect_rc "reject without an ID" 2 reject --key "$DEV/officers/carol.key" --yes
expect_rc "no server configured" 2 --url "" keys
rc=$(SIGNGATE_URL='' sg keys)
expect_eq "no server in the environment either (exit 2)" "$rc" 2
expect_rc "a plain-http URL off loopback" 2 --url http://192.0.2.1:8443 keys
api audit GET "/v1/requests/$R2" >/dev/null
expect_eq "no usage error posted anything" \
    "$(jbody '[.approvals[].officer] | join(" ")')" "alice"

# --- artifact names beyond ASCII ---------------------------------------------------
as ci
UNAME=$(printf '\xc3\x9cberpr\xc3\xbcfung.exe')
expect_rc "sign with a German artifact name" 0 sign --key release --no-wait \
    --artifact-name "$UNAME" --artifact-version "$(printf '2.0-\xce\xb2')" "$T_DIR/u.bin"
U_ID=$(req_id "$T_DIR/out")
as alice
expect_rc "show that request" 0 show "$U_ID"
check "... shows the name as written" grep -qxF "artifact.name: $UNAME" "$T_DIR/out"
check "... and the version" grep -qxF "artifact.version: $(printf '2.0-\xce\xb2')" "$T_DIR/out"
expect_rc "pending" 0 pending --key release
check "... lists it as name@version" grep -qF "$UNAME@$(printf '2.0-\xce\xb2')" "$T_DIR/out"

# --- idempotency ------------------------------------------------------------------
head -c 10000 /dev/urandom >"$T_DIR/idem.bin"
as ci
K="release-$$-$RANDOM"
expect_rc "sign --idempotency-key K" 0 sign --key release --no-wait \
    --idempotency-key "$K" "$T_DIR/idem.bin"
I1=$(req_id "$T_DIR/out")
check "... echoes the key" grep -qx "idempotency-key: $K" "$T_DIR/out"
expect_rc "the same again" 0 sign --key release --no-wait \
    --idempotency-key "$K" "$T_DIR/idem.bin"
I2=$(req_id "$T_DIR/out")
check "... got a request id" bash -c "[ \${#1} = 32 ]" _ "$I1"
expect_eq "the same file and key give the same request id" "$I2" "$I1"
api audit GET "/v1/requests?state=pending&key=release&limit=200" >/dev/null
expect_eq "... and one request only" \
    "$(jq --arg d "$(hexdigest sha256 "$T_DIR/idem.bin")" \
    '[.requests[] | select(.digest.value == $d)] | length' "$T_DIR/body")" 1
expect_rc "without the key a second request is made" 0 sign --key release \
    --no-wait "$T_DIR/idem.bin"
check "... with another id" bash -c "[ '$(req_id "$T_DIR/out")' != '$I1' ]"
printf x >>"$T_DIR/idem.bin"
rc=$(sg sign --key release --no-wait --idempotency-key "$K" "$T_DIR/idem.bin")
check "the key with another file is not taken for the first request (exit $rc)" \
    bash -c "[ $rc = 3 ] || [ $rc = 4 ]"
check "... writing nothing" absent "$T_DIR/idem.bin.sig"

K2="nightly-$$-$RANDOM"
expect_rc "nightly sign --idempotency-key K" 0 sign --key nightly \
    --idempotency-key "$K2" "$T_DIR/nightly.bin" --out "$T_DIR/n1.sig"
N1=$(req_id "$T_DIR/out")
expect_rc "the same again" 0 sign --key nightly \
    --idempotency-key "$K2" "$T_DIR/nightly.bin" --out "$T_DIR/n2.sig"
expect_eq "... gives the same request id" "$(req_id "$T_DIR/out")" "$N1"
check "... and the same signature" cmp "$T_DIR/n1.sig" "$T_DIR/n2.sig"
check "... which verifies" verify sha256 "$T_DIR/nightly.pub" "$T_DIR/n2.sig" \
    "$T_DIR/nightly.bin"

# --- the daemon is down: nothing is written -------------------------------------
stop_daemon
head -c 1000 /dev/urandom >"$T_DIR/down.bin"
expect_rc "keys with the daemon down" 4 keys
start=$(date +%s%N)
expect_rc "sign with the daemon down" 4 sign --key nightly "$T_DIR/down.bin"
el=$(( ($(date +%s%N) - start) / 1000000 ))
check "... gives up in bounded time (${el} ms)" test "$el" -lt 20000
check "... after retrying" err_has "retrying"
check "... and writes no signature" absent "$T_DIR/down.bin.sig"
check "... nor says it did" bash -c "! grep -q '^signature:' '$T_DIR/out'"

finish
