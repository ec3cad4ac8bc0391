# Checkpoints are signed after the commit: when the log key cannot sign
# (p11fault.so fails C_SignInit for the Ed25519 mechanism only, so the
# signing keys keep working), the batch's entries stay committed but its
# clients get 503 with "recorded": a nightly signature, a pending release,
# an officer's decision.  Nothing signed is lost, nothing uncovered is
# served (no signature, no entry, no proof past the checkpoint); /readyz
# and the metrics tell.  When the key is back, the housekeeping thread
# signs a checkpoint covering everything within seconds, a replay with the
# Idempotency-Key returns the stored signature with a proof that `signgate
# verify` accepts, and `signgate log monitor` accepts the log; a later
# batch covers earlier uncovered entries as well.  When the signer cannot
# write its record (iofault.so on its state directory), nothing is signed,
# and a daemon with uncovered entries does not start until it can; then it
# signs them before serving.  A log key that fails at start stops the
# start.
. "$(dirname "$0")/lib.sh"

WRAP="$BUILD/p11wrap/p11fault.so"
[ -f "$WRAP" ] || WRAP="$SG_ROOT/build/p11wrap/p11fault.so"
[ -f "$WRAP" ] || { not_ok "p11fault.so is built (make unit)"; finish; exit 1; }
cp -a "$DEV/tokens" "$T_DIR/tokens"
sed "s#^directories.tokendir.*#directories.tokendir = $T_DIR/tokens#" \
    "$DEV/softhsm2.conf" >"$T_DIR/softhsm2.conf"
export SOFTHSM2_CONF="$T_DIR/softhsm2.conf"
export SG_P11FAULT_MODULE=/usr/lib/softhsm/libsofthsm2.so
export SG_P11FAULT_CONTROL="$T_DIR/control"
export SG_P11FAULT_LOG="$T_DIR/faults.log"
: >"$T_DIR/faults.log"
give_to_signer "$T_DIR/tokens" "$T_DIR/softhsm2.conf" "$T_DIR/faults.log"
rules() {
	printf '%s' "$1" >"$T_DIR/control.new" && mv "$T_DIR/control.new" "$T_DIR/control"
}
LOGKEY_FAILS='C_SignInit CKR_FUNCTION_FAILED mechanism CKM_EDDSA always
'
rules ""
DB="$T_DIR/state/signgate.db"

q() { sqlite3 "$DB" "$1"; }
entries() { q 'SELECT COUNT(*) FROM log_entries'; }
served_size() { api - GET /v1/log/checkpoint >/dev/null; sed -n 2p "$T_DIR/body"; }
metric() { api - GET /metrics >/dev/null; sed -n "s/^$1 //p" "$T_DIR/body"; }
# create KEY FILE IDEM: a request for FILE's SHA-256 with an Idempotency-Key.
create() {
	post_json ci /v1/requests "{\"key\":\"$1\",\"digest\":{\"algorithm\":\"sha256\",\"value\":\"$(hexdigest sha256 "$2")\"},\"format\":\"raw\",\"artifact\":{\"name\":\"$(basename "$2")\"}}" \
	    -H "Idempotency-Key: $3"
}
# covered [SECONDS]: waits until the served checkpoint covers every entry.
covered() {
	local i
	for i in $(seq 1 $((${1:-10} * 10))); do
		[ "$(served_size)" = "$(entries)" ] && return 0
		sleep 0.1
	done
	return 1
}
# save_signature FILE: the signature and proof of the answer in $T_DIR/body.
save_signature() {
	jq -r .signature.signature "$T_DIR/body" | base64 -d >"$1.sig" &&
	    jq -j .signature.log.proof "$T_DIR/body" >"$1.sig.proof"
}
verify_file() {
	sg verify --key-file "$T_DIR/log.vkey" --policy "$DEV/policy.conf" \
	    --proof "$1.sig.proof" --signature "$1.sig" "$1"
}

write_config ".pkcs11.module = \"$WRAP\""
start_daemon || { not_ok "daemon starts on p11fault.so"; finish; exit 1; }
as ci
[ "$(sg log key)" = 0 ] && cp "$T_DIR/out" "$T_DIR/log.vkey"
MON="$T_DIR/monitor.state"
check "log monitor, first run" "$SIGNGATE" log monitor --state "$MON"
mkdir -p "$T_DIR/work"
for f in n1 n2 n3 r1; do head -c 2048 /dev/urandom >"$T_DIR/work/$f.bin"; done
expect_eq "with the log key working: a nightly signature (201)" \
    "$(create nightly "$T_DIR/work/n1.bin" k-n1)" 201
new_request ci release "$(printf 'c%.0s' $(seq 64))" >/dev/null
cp "$T_DIR/body" "$T_DIR/rel0.json"
expect_eq "alice approves an earlier release (200)" \
    "$(approve_with_openssl alice "$T_DIR/rel0.json")" 200
n0=$(entries)
expect_eq "every entry is under the checkpoint" "$(served_size)" "$n0"

# --- the log key fails ------------------------------------------------------
rules "$LOGKEY_FAILS"
expect_eq "log key failing: a nightly signature answers 503" \
    "$(create nightly "$T_DIR/work/n2.bin" k-n2)" 503
check "... without a signature" bash -c "! grep -q '\"signature\"' '$T_DIR/body'"
check "... saying it was recorded" test "$(jbody .recorded)" = true
check "... and to retry with the Idempotency-Key" bash -c \
    "jq -r .detail '$T_DIR/body' | grep -q 'retry with the same Idempotency-Key'"
check "the log key's signing really failed (p11fault)" grep -q 'C_SignInit CKR_FUNCTION_FAILED' "$T_DIR/faults.log"
N2_ID=$(q "SELECT id FROM requests WHERE digest_hex = '$(hexdigest sha256 "$T_DIR/work/n2.bin")'")
check "the signed request is stored" test -n "$N2_ID"
N2_SIG=$(q "SELECT hex(signature) FROM requests WHERE id = '$N2_ID' AND state = 'signed'")
check "... with its signature" test -n "$N2_SIG"
N2_B64=$(printf '%s' "$N2_SIG" | sed 's/../\\x&/g' | xargs -0 printf '%b' | base64 -w0)
expect_eq "a pending release answers 503 too" \
    "$(create release "$T_DIR/work/r1.bin" k-r1)" 503
check "... recorded" test "$(jbody .recorded)" = true
expect_eq "bob's decision answers 503" \
    "$(approve_with_openssl bob "$T_DIR/rel0.json")" 503
check "... recorded" test "$(jbody .recorded)" = true
check "... and stored" test "$(q "SELECT COUNT(*) FROM approvals WHERE officer = 'bob'")" = 1
expect_eq "bob sending it again: 409, already decided" \
    "$(approve_with_openssl bob "$T_DIR/rel0.json")" 409
n1=$(entries)
check "the entries are committed ($n0 -> $n1)" test "$n1" -gt "$n0"
expect_eq "the served checkpoint stays at $n0" "$(served_size)" "$n0"
expect_eq "no entry past it is served" "$(api - GET "/v1/log/entries/$n0")" 404
expect_eq "the stored signature is not served (no proof)" \
    "$(api ci GET "/v1/requests/$N2_ID/signature")" 503
check "... and not in the answer" bash -c "! grep -qF '$N2_B64' '$T_DIR/body'"
expect_eq "the request itself is readable, but not its signature" \
    "$(api ci GET "/v1/requests/$N2_ID")" 503
check "... not in that answer either" bash -c "! grep -qF '$N2_B64' '$T_DIR/body'"
expect_eq "a replay with the Idempotency-Key: 503 while the key fails" \
    "$(create nightly "$T_DIR/work/n2.bin" k-n2)" 503
check "... recorded, without a signature" bash -c \
    "[ \"\$(jq -r .recorded '$T_DIR/body')\" = true ] && ! grep -q '\"signature\"' '$T_DIR/body'"
sleep 1.2
expect_eq "/readyz says 503" "$(api - GET /readyz)" 503
check "... entries wait for a signed checkpoint" \
    bash -c "jq -r .reason '$T_DIR/body' | grep -q 'log entries wait for a signed checkpoint'"
expect_eq "the metric counts the uncovered entries" \
    "$(metric signgate_log_uncovered_entries)" $((n1 - n0))
expect_eq "it is no refusal" "$(metric signgate_checkpoint_refusals_total)" 0
check "the failure is logged" grep -q 'error: log: the checkpoint for [0-9]* entries could not be signed' "$T_DIR/daemon.log"

# --- the key comes back: the housekeeping thread covers everything ----------
rules ""
check "within 5 s a checkpoint covers every entry (housekeeping)" covered 5
expect_eq "the replay answers 200" "$(create nightly "$T_DIR/work/n2.bin" k-n2)" 200
expect_eq "... the same request" "$(jbody .id)" "$N2_ID"
expect_eq "... with the signature stored when the checkpoint failed" \
    "$(jbody .signature.signature | base64 -d | od -An -tx1 -v | tr -d ' \n' | tr a-f A-F)" "$N2_SIG"
save_signature "$T_DIR/work/n2.bin"
expect_eq "... and a proof that signgate verify accepts" "$(verify_file "$T_DIR/work/n2.bin")" 0
expect_eq "the release's replay answers 200 pending" \
    "$(create release "$T_DIR/work/r1.bin" k-r1; jbody .state)" 200pending
cp "$T_DIR/body" "$T_DIR/rel1.json"
for o in alice bob dave; do
	expect_eq "$o approves the release (200)" "$(approve_with_openssl "$o" "$T_DIR/rel1.json")" 200
done
expect_eq "... which is signed" "$(jbody .state)" signed
save_signature "$T_DIR/work/r1.bin"
expect_eq "... with a proof that signgate verify accepts" "$(verify_file "$T_DIR/work/r1.bin")" 0
api ci GET "/v1/requests/$(jq -r .id "$T_DIR/rel0.json")" >/dev/null
expect_eq "bob's decision taken during the failure is there" \
    "$(jbody '[.approvals[].officer] | join(",")')" alice,bob
expect_eq "/readyz is back to 200 (within its 5 s cache)" \
    "$(for i in $(seq 1 60); do s=$(api - GET /readyz); [ "$s" = 200 ] && break; sleep 0.1; done; echo "$s")" 200
check "log monitor accepts the log" "$SIGNGATE" log monitor --state "$MON"

# --- a later batch covers it as well -------------------------------------------
rules "$LOGKEY_FAILS"
expect_eq "log key failing again: 503" "$(create nightly "$T_DIR/work/n3.bin" k-n3)" 503
rules ""
head -c 2048 /dev/urandom >"$T_DIR/work/n4.bin"
expect_eq "the next write succeeds (201)" "$(create nightly "$T_DIR/work/n4.bin" k-n4)" 201
expect_eq "... and its checkpoint covers the earlier entries too" "$(served_size)" "$(entries)"

# --- the signer cannot write its record: nothing signed, not even at start --
PRELOAD="$BUILD/preload/iofault.so"
[ -f "$PRELOAD" ] || PRELOAD="$SG_ROOT/build/preload/iofault.so"
stop_daemon
# Only the checkpoint record fails (its record of signatures, in the same
# directory, has a test of its own: 59-signer-record.sh).
iofault_start() {
	SG_IOFAULT_TRIGGER="$T_DIR/disk-fails" \
	    SG_IOFAULT_MATCH="$T_DIR/state-hsm/checkpoint" \
	    ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
	    LD_PRELOAD="$PRELOAD" start_daemon
}
iofault_start || { not_ok "daemon starts with the fault injector"; finish; exit 1; }
head -c 2048 /dev/urandom >"$T_DIR/work/n5.bin"
touch "$T_DIR/disk-fails"
expect_eq "the signer's disk failing: a nightly signature answers 503" \
    "$(create nightly "$T_DIR/work/n5.bin" k-n5)" 503
check "... recorded" test "$(jbody .recorded)" = true
check "... because the record could not be written" \
    grep -q 'could not be signed: .*state-hsm/checkpoint.tmp: write: Input/output error' "$T_DIR/daemon.log"
stop_daemon
n5=$(entries)
if iofault_start >/dev/null 2>&1; then
	not_ok "uncovered entries and a record that cannot be written: no start"
	stop_daemon
else
	ok "uncovered entries and a record that cannot be written: no start"
fi
check "... no checkpoint could be signed for the $n5 entries" \
    grep -q "no checkpoint could be signed for the $n5 entries" "$T_DIR/daemon.log"
rm -f "$T_DIR/disk-fails"
start_daemon || { not_ok "daemon restarts"; finish; exit 1; }
expect_eq "at the start the daemon signs a checkpoint covering them" "$(served_size)" "$n5"
expect_eq "the replay answers 200" "$(create nightly "$T_DIR/work/n5.bin" k-n5)" 200
save_signature "$T_DIR/work/n5.bin"
expect_eq "... with a proof that signgate verify accepts" "$(verify_file "$T_DIR/work/n5.bin")" 0
check "log monitor accepts the log" "$SIGNGATE" log monitor --state "$MON"

# --- the log key failing at start: the daemon does not start ------------------
stop_daemon
rules "$LOGKEY_FAILS"
if start_daemon >/dev/null 2>&1; then
	not_ok "with the log key failing the daemon does not start"
	stop_daemon
else
	ok "with the log key failing the daemon does not start"
fi
check "... and names the log key" grep -q "key '@log'" "$T_DIR/daemon.log"
rules ""
finish
