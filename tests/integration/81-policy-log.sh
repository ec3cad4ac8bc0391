# The policy itself in the log: every version the gateway loads is a
# `policy` entry before any request is made under it; GET
# /v1/policies/<sha256> serves its text; a signature's proof carries its
# policy's entry, so `signgate verify` needs no --policy (and refuses one
# that is not the logged policy).  With `policy-change require
# security-officers 2`, a new version stays pending (the old one in force)
# until two officers approve it; forged approvals are refused and not
# counted.
. "$(dirname "$0")/lib.sh"

P=$T_DIR/policy.conf
cp "$DEV/policy.conf" "$P"
write_config ".policy = \"$P\""
start_daemon || { not_ok "daemon starts"; finish; exit 1; }
as ci
mkdir -p "$T_DIR/work"

sha_of() { sha256sum "$1" | cut -d' ' -f1; }
sg() { timeout 60 "$SIGNGATE" "$@" >"$T_DIR/out" 2>"$T_DIR/err"; echo $?; }
# The log index GET /v1/policies/SHA answers in its header, or "".
policy_index() {
	curl -sS --max-time 30 --cacert "$DEV/tls/ca.pem" -D "$T_DIR/hdr" \
	    -o "$T_DIR/ptext" "$URL/v1/policies/$1" >/dev/null 2>&1
	tr -d '\r' <"$T_DIR/hdr" | sed -n 's/^[Ss]igngate-[Ll]og-[Ii]ndex: //p'
}
# SIGHUP, then wait (with a deadline) for the daemon's answer line.
reload() {
	local n i
	n=$(grep -c 'SIGHUP' "$T_DIR/daemon.log")
	kill -HUP "$DAEMON_PID"
	for i in $(seq 1 1000); do
		[ "$(grep -c 'SIGHUP' "$T_DIR/daemon.log")" -gt "$n" ] && return 0
		pause 0.01
	done
	return 1
}
# sign_file NAME KEY: signs $T_DIR/work/NAME (new random bytes).
sign_file() {
	head -c 1024 /dev/urandom >"$T_DIR/work/$1"
	sg sign --key "$2" "$T_DIR/work/$1"
}
VK=$T_DIR/log.vkey
api - GET /v1/log/key >/dev/null; cp "$T_DIR/body" "$VK"
verify() { sg verify --key-file "$VK" --proof "$T_DIR/work/$1.sig.proof" \
    --signature "$T_DIR/work/$1.sig" "${@:2}" "$T_DIR/work/$1"; }

# --- version 1: logged at start --------------------------------------------
cp "$P" "$T_DIR/v1.conf"
S1=$(sha_of "$P")
I1=$(policy_index "$S1")
check "version 1 is in the log at start (index $I1)" test -n "$I1"
check "GET /v1/policies/<sha256> serves its exact text" cmp -s "$T_DIR/ptext" "$P"
expect_eq "an unknown policy is 404" "$(api - GET /v1/policies/$(printf 'e%.0s' $(seq 64)))" 404
expect_eq "sign under version 1" "$(sign_file one.bin nightly)" 0

# --- version 2: a reload appends it before its first request ----------------
sed -e 's/^version 1$/version 2/' -e 's/^policy signgate-dev$/&\npolicy-change require security-officers 2/' \
    "$T_DIR/v1.conf" >"$P"
cp "$P" "$T_DIR/v2.conf"
S2=$(sha_of "$P")
expect_eq "signgate policy check knows policy-change" "$(sg policy check "$P")" 0
check "... and shows its terms" grep -qx '  policy-change: require security-officers 2' "$T_DIR/out"
check "SIGHUP answered" reload
check "version 2 in force" grep -q 'SIGHUP: policy signgate-dev version 2 in force' "$T_DIR/daemon.log"
I2=$(policy_index "$S2")
check "version 2 is logged after version 1 ($I1 < $I2)" test -n "$I2" -a "${I2:-0}" -gt "$I1"
expect_eq "its entry is effective, previous version 1" \
    "$(api - GET "/v1/log/entries/$I2" >/dev/null; grep -E '^(status|previous) ' "$T_DIR/body" | tr '\n' ' ')" \
    "previous sha256:$S1 status effective "
expect_eq "sign under version 2" "$(sign_file two.bin nightly)" 0
IDX2=$(sed -n 's/^log: index \([0-9]*\).*/\1/p' "$T_DIR/out")
[ -n "$IDX2" ] || IDX2=$(grep -o 'index [0-9]*' "$T_DIR/out" | head -1 | cut -d' ' -f2)

expect_eq "verify without --policy accepts the version-2 signature" "$(verify two.bin)" 0
check "... under version 2, from its logged entry" grep -qx "policy: signgate-dev@2 sha256:$S2" "$T_DIR/out"
check "... whose entry comes before the signature's" grep -qx "policy-entry: index $I2" "$T_DIR/out"
LI=$(sed -n 's/^log: index \([0-9]*\),.*/\1/p' "$T_DIR/out")
check "the signature's entry ($LI) comes after the policy's ($I2)" test "${LI:-0}" -gt "$I2"
expect_eq "verify without --policy accepts the older signature" "$(verify one.bin)" 0
check "... under version 1" grep -qx "policy: signgate-dev@1 sha256:$S1" "$T_DIR/out"
expect_eq "verify with the matching --policy" "$(verify two.bin --policy "$T_DIR/v2.conf")" 0
expect_eq "verify with another --policy is refused" "$(verify two.bin --policy "$T_DIR/v1.conf")" 5
check "... naming the policy link" grep -q "^verify: policy: .* is sha256:$S1, not the logged policy sha256:$S2" "$T_DIR/err"
# A proof cut before its policy bundle (as older gateways wrote them)
# still verifies with --policy, and not without it.
awk 'NR > 1 && /^c2sp.org\/tlog-proof@v1$/ { exit } { print }' \
    "$T_DIR/work/two.bin.sig.proof" >"$T_DIR/work/old.proof"
old() { sg verify --key-file "$VK" --proof "$T_DIR/work/old.proof" \
    --signature "$T_DIR/work/two.bin.sig" "$@" "$T_DIR/work/two.bin"; }
expect_eq "a proof without the policy bundle verifies with --policy" "$(old --policy "$T_DIR/v2.conf")" 0
expect_eq "... and not without it" "$(old)" 5

# --- version 3: pending until two security officers approve -----------------
# Version 3 lets one security officer approve firmware (2 before).
sed -e 's/^version 2$/version 3/' \
    -e '/^key firmware$/,/^end$/s/require security-officers 2/require security-officers 1/' \
    "$T_DIR/v2.conf" >"$P"
S3=$(sha_of "$P")
cp "$P" "$T_DIR/v3.conf"
check "SIGHUP answered" reload
check "version 3 is logged pending" grep -q "policy signgate-dev@3 (sha256:$S3) is pending" "$T_DIR/daemon.log"
I3=$(policy_index "$S3")
expect_eq "its entry says pending" \
    "$(api - GET "/v1/log/entries/$I3" >/dev/null; grep '^status ' "$T_DIR/body")" "status pending"
expect_eq "GET /v1/policies/pending" "$(api - GET /v1/policies/pending)" 200
expect_eq "... names version 3, pending, two missing" \
    "$(jbody '[.sha256, .status, .previous.sha256, .required[0].missing] | join(" ")')" \
    "$S3 pending $S2 2"
jq -j .statement "$T_DIR/body" >"$T_DIR/stmt"

# policy_env OFFICER SIGNER STATEMENT_FILE: the approval envelope (openssl).
policy_env() {
	local type="application/vnd.signgate.approval.v1+text" d=$T_DIR/penv.$1
	mkdir -p "$d"
	{ cat "$3"; printf 'decision approve\n'; } >"$d/body"
	{ printf 'DSSEv1 %d %s %d ' "${#type}" "$type" "$(stat -c %s "$d/body")"
	  cat "$d/body"; } >"$d/pae"
	openssl dgst -sha256 -sign "$DEV/officers/$2.key" -out "$d/sig" "$d/pae"
	printf '{"payloadType":"%s","payload":"%s","signatures":[{"keyid":"%s","sig":"%s"}]}' \
	    "$type" "$(base64 -w0 "$d/body")" "$1" "$(base64 -w0 "$d/sig")" >"$d/env.json"
}
post_env() { api "$1" POST "/v1/policies/$2/approvals" -H 'Content-Type: application/json' \
    --data-binary "@$T_DIR/penv.$1/env.json"; }
# Forged: alice's keyid signed with bob's key; alice over another SHA-256.
policy_env alice bob "$T_DIR/stmt"
expect_eq "an approval signed with the wrong key is refused" "$(post_env alice "$S3")" 422
sed "s/$S3/$S1/" "$T_DIR/stmt" >"$T_DIR/stmt.other"
policy_env alice alice "$T_DIR/stmt.other"
expect_eq "an approval of another SHA-256 is refused" "$(post_env alice "$S3")" 422
policy_env carol carol "$T_DIR/stmt"
expect_eq "... as is ci's, who is no security officer" \
    "$(api ci POST "/v1/policies/$S3/approvals" -H 'Content-Type: application/json' \
    --data-binary "@$T_DIR/penv.carol/env.json")" 403
api - GET /v1/policies/pending >/dev/null
expect_eq "none of them counted" "$(jbody '[(.approvals | length), .required[0].missing] | join(" ")')" "0 2"

# alice approves with the CLI: one of two.
as alice
expect_eq "alice approves version 3 (signgate approve --policy)" \
    "$(sg approve --policy "$S3" --key "$DEV/officers/alice.key" --yes)" 0
check "... and it stays pending" grep -qx 'status: pending' "$T_DIR/out"
as ci
expect_eq "a firmware request" "$(new_request ci firmware "$(printf '7%.0s' $(seq 64))")" 201
cp "$T_DIR/body" "$T_DIR/fw2.json"
check "... is made under version 2, still in force" grep -q 'policy signgate-dev@2 ' <(jq -r .statement "$T_DIR/fw2.json")
expect_eq "... and alice's approval alone does not sign it" \
    "$(approve_with_openssl alice "$T_DIR/fw2.json"; jbody .state)" 200pending

# A restart keeps the pending version and its approval; it does not
# start with the pending file (a restart is no way around the approval).
stop_daemon
if start_daemon >/dev/null 2>&1; then
	not_ok "a start with the pending version's file is refused"
	stop_daemon
else
	check "a start with the pending version's file is refused, saying why" \
	    grep -q 'asks for approval of its successor' "$T_DIR/daemon.log"
fi
cp "$T_DIR/v2.conf" "$P"
start_daemon || { not_ok "daemon restarts with version 2"; finish; exit 1; }
api - GET /v1/policies/pending >/dev/null
expect_eq "after a restart version 3 is still pending with alice's approval" \
    "$(jbody '[.sha256, .approvals[0].officer, .required[0].missing] | join(" ")')" "$S3 alice 1"
cp "$T_DIR/v3.conf" "$P"     # the file must hold it when it takes effect

# carol's approval (refused above over ci's connection) completes the
# quorum: version 3 takes effect.
expect_eq "carol approves version 3" "$(post_env carol "$S3")" 200
expect_eq "... and it takes effect" "$(jbody .status)" effective
EI=$(jbody .effective_index)
api - GET "/v1/log/entries/$EI" >/dev/null
check "the log has the policy-effective entry" grep -qx 'type policy-effective' "$T_DIR/body"
check "... for version 3" grep -qx "policy signgate-dev@3 sha256:$S3" "$T_DIR/body"
expect_eq "... naming version 3 and the two approvals" \
    "$(grep -E '^(policy|approval-entry) ' "$T_DIR/body" | cut -d' ' -f1 | tr '\n' ' ')" \
    "policy approval-entry approval-entry "
expect_eq "nothing is pending any more" "$(api - GET /v1/policies/pending)" 404
expect_eq "a firmware request under version 3" "$(new_request ci firmware "$(printf '8%.0s' $(seq 64))")" 201
cp "$T_DIR/body" "$T_DIR/fw3.json"
check "... names version 3" grep -q 'policy signgate-dev@3 ' <(jq -r .statement "$T_DIR/fw3.json")
expect_eq "... and signs after alice alone" \
    "$(approve_with_openssl alice "$T_DIR/fw3.json"; jbody .state)" 200signed

# A signature under version 3 (logged pending, then approved): its proof
# carries how version 3 took effect (the policy-effective entry, the two
# approvals, version 2's entry), and verify checks it without --policy.
expect_eq "sign under version 3" "$(sign_file three.bin nightly)" 0
expect_eq "its proof holds six bundles" \
    "$(grep -c '^c2sp.org/tlog-proof@v1$' "$T_DIR/work/three.bin.sig.proof")" 6
expect_eq "verify without --policy accepts the version-3 signature" "$(verify three.bin)" 0
check "... under version 3" grep -qx "policy: signgate-dev@3 sha256:$S3" "$T_DIR/out"
check "... in force by the policy-effective entry $EI" grep -qx "policy-effective: index $EI" "$T_DIR/out"
check "... approved by alice and carol" grep -qx 'policy approved by: alice carol' "$T_DIR/out"
# The bundles one by one: b1 the signature's .. b6 version 2's entry.
split_proof() {
	rm -f "$T_DIR/work/b".*
	awk -v d="$T_DIR/work" '/^c2sp\.org\/tlog-proof@v1$/ { n++ } { print > (d "/b." n) }' "$1"
}
split_proof "$T_DIR/work/three.bin.sig.proof"
forged() { cat "$@" >"$T_DIR/work/forged.proof"
	sg verify --key-file "$VK" --proof "$T_DIR/work/forged.proof" \
	    --signature "$T_DIR/work/three.bin.sig" "$T_DIR/work/three.bin"; }
cd "$T_DIR/work"
# A version logged pending whose approval was never completed: the
# gateway evaluates requests under the policy in force, so it cannot sign
# under one; such a proof can only be forged, here from a real one.
expect_eq "a proof cut after its pending policy entry is refused" "$(forged b.1 b.2)" 5
check "... on the link policy approval" grep -q '^verify: policy approval: .*logged pending.*no policy-effective entry' "$T_DIR/err"
expect_eq "a proof without its policy-effective bundle is refused" "$(forged b.1 b.2 b.4 b.5 b.6)" 5
check "... on the link policy approval" grep -q '^verify: policy approval: .*not a policy-effective entry' "$T_DIR/err"
expect_eq "a proof without one approval's bundle is refused" "$(forged b.1 b.2 b.3 b.4 b.6)" 5
check "... on the link policy approval" grep -q '^verify: policy approval: the policy-effective entry lists 2 approvals' "$T_DIR/err"
expect_eq "a proof without the previous policy's bundle is refused" "$(forged b.1 b.2 b.3 b.4 b.5)" 5
check "... on the link policy approval" grep -q '^verify: policy approval: ' "$T_DIR/err"
# An approval's entry altered (bob's name for carol's): not in the tree.
E5=$(sed -n 's/^extra //p' b.5 | base64 -d | sed 's/^officer [a-z]*$/officer bob/' | base64 -w0)
sed "s|^extra .*|extra $E5|" b.5 >b.5x
expect_eq "a proof with an altered approval bundle is refused" "$(forged b.1 b.2 b.3 b.4 b.5x b.6)" 5
check "... on the link policy approval" grep -q '^verify: policy approval: the policy-decision entry is not at index' "$T_DIR/err"
# One approval given twice (alice's in carol's place): the quorum is not met.
expect_eq "a proof naming one approval twice is refused" "$(forged b.1 b.2 b.3 b.4 b.4 b.6)" 5
check "... on the link policy approval" grep -q '^verify: policy approval: approval 2: the policy-effective entry lists entry' "$T_DIR/err"
expect_eq "the real proof, reassembled, verifies" "$(forged b.1 b.2 b.3 b.4 b.5 b.6)" 0
cd - >/dev/null

finish
