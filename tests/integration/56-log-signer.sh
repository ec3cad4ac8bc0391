# The log key signs only checkpoints the signer formats itself, for trees
# that extend the one it signed last (finding: a raw Ed25519 signature over
# 64 bytes of "<origin>\n<size>\n<root>\n" was a checkpoint for a tree that
# never existed).
#
# The signer's record: a new signer state directory is created 0700 with
# the record 0600, holding exactly the checkpoint the daemon serves.  With
# the daemon stopped, tools/signer_forge --log plays a compromised front
# against the daemon's own record: a checkpoint text, a fork at its size, a
# rollback by one entry, an extension with a made-up proof are refused;
# the recorded tree is signed again (control), and the record is unchanged.
# The daemon then goes on: new signatures, `signgate log monitor` from a
# state taken before, `signgate verify` of signatures before and after.
#
# Fail closed: a record changed under the running daemon (a fork of its
# tree) makes the next write answer 503, the refusal is logged as an error,
# /readyz says degraded with the reason, the refusals metric counts it,
# nothing more is appended; the daemon does not restart on it either.  An
# older backup of the store restored against a newer record is refused at
# start (a rollback), and the recovery of docs/OPERATIONS.md (a new log
# origin, the record moved aside) starts a new log.
. "$(dirname "$0")/lib.sh"

HSM="$T_DIR/state-hsm"
DB="$T_DIR/state/signgate.db"
FORGE="$BUILD/tools/signer_forge"
[ -x "$FORGE" ] || { not_ok "signer_forge is built ($FORGE)"; finish; exit 1; }

# idem_request KEY HEX IDEMPOTENCY-KEY: as new_request, with the key.
idem_request() {
	post_json ci /v1/requests "{\"key\":\"$1\",\"digest\":{\"algorithm\":\"sha256\",\"value\":\"$2\"},\"format\":\"raw\",\"artifact\":{\"name\":\"test.bin\",\"version\":\"1.0\"}}" \
	    -H "Idempotency-Key: $3"
}
entries() { sqlite3 "$DB" 'SELECT COUNT(*) FROM log_entries'; }
served_size() { api - GET /v1/log/checkpoint >/dev/null; sed -n 2p "$T_DIR/body"; }
metric() { api - GET /metrics >/dev/null; sed -n "s/^$1 //p" "$T_DIR/body"; }
# record_is_served: the record file is the served checkpoint's text.
record_is_served() {
	api - GET /v1/log/checkpoint >/dev/null
	[ "$(head -n 3 "$T_DIR/body")" = "$(cat "$HSM/checkpoint")" ]
}

write_config
check "no signer state directory before the first start" test ! -e "$HSM"
start_daemon || { not_ok "daemon starts"; finish; exit 1; }
as ci
expect_eq "the signer created its state directory 0700" \
    "$(stat -c %a "$HSM")" 700
expect_eq "... with its record 0600" "$(stat -c %a "$HSM/checkpoint")" 600
check "... holding the checkpoint the daemon serves (first use)" record_is_served

mkdir -p "$T_DIR/work"
head -c 4096 /dev/urandom >"$T_DIR/work/a.bin"
expect_rc "a nightly signature" 0 sign --key nightly "$T_DIR/work/a.bin"
expect_rc "the log key" 0 log key
cp "$T_DIR/out" "$T_DIR/log.vkey"
MON="$T_DIR/monitor.state"
expect_rc "log monitor, first run" 0 log monitor --state "$MON"
check "the record follows the log" record_is_served
sqlite3 "$DB" ".backup '$T_DIR/backup.db'"
head -c 4096 /dev/urandom >"$T_DIR/work/b.bin"
expect_rc "another nightly signature, after the backup" 0 sign --key nightly "$T_DIR/work/b.bin"
check "the record follows the log" record_is_served
size1=$(served_size)
stop_daemon

# --- a compromised front against the daemon's record --------------------------
"$FORGE" --log "$T_DIR/signgated.json" "$DEV" >"$T_DIR/forge.out" 2>&1
while IFS= read -r line; do
	case "$line" in
	"ok - "*) ok "signer: ${line#ok - }" ;;
	"not ok - "*) not_ok "signer: ${line#not ok - }" ;;
	*" passed, "*" failed") ;;
	*) echo "    $line" ;;
	esac
done <"$T_DIR/forge.out"
check "signer_forge --log ran to its summary" \
    grep -qE '^[0-9]+ passed, 0 failed$' "$T_DIR/forge.out"
check "signer_forge --log: no sanitizer report" \
    bash -c "! grep -q 'Sanitizer\|runtime error:' '$T_DIR/forge.out'"

# --- the daemon goes on --------------------------------------------------------
start_daemon || { not_ok "daemon restarts after the attacks"; finish; exit 1; }
expect_eq "the checkpoint after the restart has the same size" "$(served_size)" "$size1"
head -c 4096 /dev/urandom >"$T_DIR/work/c.bin"
expect_rc "a nightly signature after the attacks" 0 sign --key nightly "$T_DIR/work/c.bin"
expect_rc "log monitor accepts the log from the state taken before" 0 \
    log monitor --state "$MON"
check "the record follows the log" record_is_served
for f in a b c; do
	expect_rc "verify accepts signature $f offline" 0 verify \
	    --key-file "$T_DIR/log.vkey" --policy "$DEV/policy.conf" \
	    --proof "$T_DIR/work/$f.bin.sig.proof" \
	    --signature "$T_DIR/work/$f.bin.sig" "$T_DIR/work/$f.bin"
done
expect_eq "no refusal counted" "$(metric signgate_checkpoint_refusals_total)" 0

# --- a fork under the running daemon: fail closed, loudly ----------------------
cp "$HSM/checkpoint" "$T_DIR/record.good"
size=$(sed -n 2p "$HSM/checkpoint")
{ sed -n 1p "$T_DIR/record.good"; echo "$size"
  printf 'fork%.0s' $(seq 8) | openssl dgst -sha256 -binary | base64; } \
    >"$HSM/checkpoint.new"
mv "$HSM/checkpoint.new" "$HSM/checkpoint"; give_to_signer "$HSM/checkpoint"
n0=$(entries)
H1=$(printf 'a%.0s' $(seq 64))
st=$(idem_request nightly "$H1" fork-1)
expect_eq "a write after the fork answers 503" "$st" 503
check "... without a signature" bash -c "! grep -q '\"signature\"' '$T_DIR/body'"
check "... saying it was recorded (retry with the key)" \
    test "$(jbody .recorded)" = true
check "the refusal is logged as an error" \
    grep -q 'error: log: THE SIGNER REFUSES TO SIGN THE LOG: fork' "$T_DIR/daemon.log"
n1=$(entries)
H2=$(printf 'b%.0s' $(seq 64))
expect_eq "the next write answers 503 too" "$(new_request ci nightly "$H2")" 503
expect_eq "... and appends nothing to the log" "$(entries)" "$n1"
check "... nor stores the request" test "$(sqlite3 "$DB" \
    "SELECT COUNT(*) FROM requests WHERE digest_hex = '$H2'")" = 0
expect_eq "/readyz says 503" "$(api - GET /readyz)" 503
check "... degraded: the signer refuses the log" \
    bash -c "jq -r .reason '$T_DIR/body' | grep -q 'the signer refuses to sign the log: fork'"
expect_eq "the refusals metric counts it" \
    "$(metric signgate_checkpoint_refusals_total)" 1
check "the metric shows the entries no checkpoint covers" \
    test "$(metric signgate_log_uncovered_entries)" -eq $((n1 - n0))
expect_eq "the served checkpoint did not move" "$(served_size)" "$((n0))"
check "no proof is served past it" test "$(api - GET "/v1/log/entries/$n0")" = 404
stop_daemon
if start_daemon >/dev/null 2>&1; then
	not_ok "the daemon does not start on a record that forks its log"
	stop_daemon
else
	ok "the daemon does not start on a record that forks its log"
fi
check "... and says why" grep -q 'the signer refuses the log in the store: fork' "$T_DIR/daemon.log"

# The record put back: the committed entries are signed now, and the
# retry with the Idempotency-Key returns the stored signature with a proof.
mv "$T_DIR/record.good" "$HSM/checkpoint"; give_to_signer "$HSM/checkpoint"
start_daemon || { not_ok "daemon starts with its record back"; finish; exit 1; }
expect_eq "the checkpoint covers every entry again" "$(served_size)" "$(entries)"
expect_eq "the retry with the Idempotency-Key answers 200" \
    "$(idem_request nightly "$H1" fork-1)" 200
check "... with the signature and its proof" \
    bash -c "jq -e '.signature.signature and .signature.log.proof' '$T_DIR/body' >/dev/null"
expect_rc "log monitor accepts the log" 0 log monitor --state "$MON"

# --- an older backup against a newer record -----------------------------------
stop_daemon
mkdir -p "$T_DIR/replaced"
mv "$T_DIR/state/signgate.db"* "$T_DIR/replaced/"
cp "$T_DIR/backup.db" "$DB"; give_to_front "$DB"
if start_daemon >/dev/null 2>&1; then
	not_ok "the daemon does not start on an older backup of the store"
	stop_daemon
else
	ok "the daemon does not start on an older backup of the store"
fi
check "... the signer refuses it as a rollback" \
    grep -q 'the signer refuses the log in the store: rollback' "$T_DIR/daemon.log"
# Recovery: a new log, with its own origin; the old record kept aside.
mv "$HSM/checkpoint" "$HSM/checkpoint.old-log"
origin=$(jq -r .log.origin "$T_DIR/signgated.json")
jq --arg o "$origin/2" '.log.origin = $o' "$T_DIR/signgated.json" >"$T_DIR/c.json" &&
    mv "$T_DIR/c.json" "$T_DIR/signgated.json"
start_daemon || { not_ok "the restored store starts as a new log"; finish; exit 1; }
expect_rc "the new log's key" 0 log key
check "... names the new origin" grep -q "^$origin/2+" "$T_DIR/out"
check "... and its record holds the restored tree" record_is_served
expect_rc "the old monitor state refuses the new log (another key)" 5 \
    log monitor --state "$MON"
finish
