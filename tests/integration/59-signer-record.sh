# The signer makes at most one signature per request and format, and
# keeps the record in its own state directory.
#
# The attack: a signed request's public evidence (statement and
# approvals, from GET /v1/log/entries/N) is sent to a signer process again
# and again on the raw channel, as a compromised front would
# (tools/signer_forge replay, on the daemon's configuration and so on the
# same signer state directory): every answer must be the logged signature
# byte for byte (ECDSA is randomised: a fresh signature would differ), for
# raw and for CMS, and also after a restart; another statement claiming
# the same request id is refused.  Then the crash between signing and
# logging: the front's commit of a signature fails (the Nth write of its
# store, tests/preload/iofault.c), the housekeeping thread retries, and
# the signature logged is the one the signer recorded the first time; only
# one exists.  Last, when the signer's own record cannot be written, no
# signature leaves it.
. "$(dirname "$0")/lib.sh"

PRELOAD="$BUILD/preload/iofault.so"
[ -f "$PRELOAD" ] || PRELOAD="$SG_ROOT/build/preload/iofault.so"
FORGE="$BUILD/tools/signer_forge"
HSM="$T_DIR/state-hsm"
REC="$HSM/signatures.db"
case "$BUILD" in
*san*)	TOOL_ASAN="${ASAN_OPTIONS:-}:detect_leaks=0" ;;
*)	TOOL_ASAN=${ASAN_OPTIONS:-} ;;
esac
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0"

# wait_state ID STATE: polls (5 s at most) until the request is in STATE.
wait_state() {
	local i
	for i in $(seq 1 50); do
		api audit GET "/v1/requests/$1" >/dev/null
		[ "$(jbody .state)" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# signed_release FORMAT HEX: a release request approved by alice, bob and
# dave; its JSON in $T_DIR/$FORMAT.json, its id in REQ.
signed_release() {
	new_request ci release "$2" sha256 "$1" >/dev/null
	cp "$T_DIR/body" "$T_DIR/$1.json"
	REQ=$(jq -r .id "$T_DIR/$1.json")
	approve_with_openssl alice "$T_DIR/$1.json" >/dev/null
	approve_with_openssl bob "$T_DIR/$1.json" >/dev/null
	approve_with_openssl dave "$T_DIR/$1.json" >/dev/null
	wait_state "$REQ" signed
}

# entry_of ID FILE: the request's signature entry from the public log.
entry_of() {
	api audit GET "/v1/requests/$1" >/dev/null
	cp "$T_DIR/body" "$2.request"
	api - GET "/v1/log/entries/$(jbody .signature.log.index)" >/dev/null
	cp "$T_DIR/body" "$2"
}

# replay FILE COUNT WHAT: the forge's replay, its lines as ours.
replay() {
	local line summary
	ASAN_OPTIONS="$TOOL_ASAN:verify_asan_link_order=0" \
	    "$FORGE" replay "$T_DIR/signgated.json" "$DEV" "$1" "$2" \
	    >"$T_DIR/forge.out" 2>&1
	while IFS= read -r line; do
		case "$line" in
		"ok - "*) ok "$3: ${line#ok - }" ;;
		"not ok - "*) not_ok "$3: ${line#not ok - }" ;;
		esac
	done <"$T_DIR/forge.out"
	summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$T_DIR/forge.out" | tail -n 1)
	check "$3: the forge ran to its summary (${summary:-none})" test -n "$summary"
}

# rec_sql SQL: a question to the signer's record.
rec_sql() { sqlite3 "$REC" "$1"; }
# api_sig_hex FILE: the signature in a request's JSON, as hex.
api_sig_hex() { jq -r .signature.signature "$1" | base64 -d | xxd -p | tr -d '\n'; }

# --- the attack, with the daemon running --------------------------------------
write_config
start_daemon || { not_ok "daemon starts"; finish; exit 1; }
H1=$(printf '1%.0s' $(seq 64)); H2=$(printf '2%.0s' $(seq 64)); H3=$(printf '3%.0s' $(seq 64))
check "release (raw) is approved and signed" signed_release raw "$H1"; RAW=$REQ
check "release (cms) is approved and signed" signed_release cms "$H2"; CMS=$REQ
expect_eq "nightly is signed at once (201)" "$(new_request ci nightly "$H3")" 201
NIGHTLY=$(jbody .id)
entry_of "$RAW" "$T_DIR/raw.entry"
entry_of "$CMS" "$T_DIR/cms.entry"
entry_of "$NIGHTLY" "$T_DIR/nightly.entry"
check "the signature entries come from the public log" \
    grep -q '^type signature$' "$T_DIR/raw.entry"

replay "$T_DIR/raw.entry" 25 "daemon running, release raw"
expect_eq "the signer answered all 25 from its record (its log says so)" \
    "$(grep -c "signer: request $RAW: the raw signature made at .* returned again" "$T_DIR/forge.out")" 25
replay "$T_DIR/cms.entry" 25 "daemon running, release cms"
replay "$T_DIR/nightly.entry" 25 "daemon running, nightly"

for id in "$RAW" "$CMS" "$NIGHTLY"; do
	expect_eq "one record for request $id" \
	    "$(rec_sql "SELECT COUNT(*) FROM signatures WHERE request = '$id'")" 1
done
expect_eq "the record holds the logged raw signature" \
    "$(rec_sql "SELECT lower(hex(signature)) FROM signatures WHERE request = '$RAW'")" \
    "$(api_sig_hex "$T_DIR/raw.entry.request")"
expect_eq "the record holds the logged CMS" \
    "$(rec_sql "SELECT lower(hex(cms)) FROM signatures WHERE request = '$CMS'" | xxd -r -p | sha256sum | cut -d' ' -f1)" \
    "$(jq -r .signature.cms "$T_DIR/cms.entry.request" | base64 -d | sha256sum | cut -d' ' -f1)"
expect_eq "the signer's state directory is mode 0700" "$(stat -c %a "$HSM")" 700
expect_eq "its record is mode 0600" "$(stat -c %a "$REC")" 600
expect_eq "... and so is the record's write-ahead log" "$(stat -c %a "$REC-wal")" 600
check "the front's state directory holds no signer record" \
    bash -c "! ls '$T_DIR/state' | grep -q signatures"

# --- after a restart ------------------------------------------------------------
stop_daemon
start_daemon || { not_ok "daemon restarts"; finish; exit 1; }
replay "$T_DIR/raw.entry" 5 "after a restart, release raw"
replay "$T_DIR/cms.entry" 5 "after a restart, release cms"
expect_eq "after a restart, the API still serves the same raw signature" \
    "$(api audit GET "/v1/requests/$RAW" >/dev/null; api_sig_hex "$T_DIR/body")" \
    "$(api_sig_hex "$T_DIR/raw.entry.request")"
stop_daemon

# --- a crash between signing and logging -----------------------------------------
# Dave's approval completes the quorum; the fdatasync that commits the
# signature (the last one of that call: the checkpoint row written after
# it has none) fails, so the request stays pending with its signature made
# but not logged; the housekeeping thread then retries.  The counting run
# logs every call, to find that fdatasync's number.  The count of that
# call's writes can differ by a page split or a WAL checkpoint between two
# runs: a set-up that missed its mark is tried again.
ARM="$T_DIR/arm" COUNT="$T_DIR/count" FAULTS="$T_DIR/faults"
# fresh_store: a new, empty store.  The signer's checkpoint record goes
# with it (the signer would rightly refuse a log that starts again); its
# record of signatures stays.
fresh_store() {
	rm -rf "$T_DIR/state" "$HSM/checkpoint"; mkdir -p "$T_DIR/state"
}
crash_run() {
	local fmt=$1 nth=$2 hex=$3 all=
	[ -n "$nth" ] || all=1
	CR_STATE= CR_SYNC= CR_FAULT=
	rm -f "$ARM" "$COUNT" "$FAULTS"; fresh_store
	SG_IOFAULT_MATCH="$T_DIR/state/" SG_IOFAULT_ARM="$ARM" \
	    SG_IOFAULT_COUNT_FILE="$COUNT" SG_IOFAULT_LOG="$FAULTS" \
	    SG_IOFAULT_LOG_ALL=$all SG_IOFAULT_FAIL_NTH=$nth \
	    LD_PRELOAD="$PRELOAD" start_daemon || return 1
	new_request ci release "$hex" sha256 "$fmt" >/dev/null
	cp "$T_DIR/body" "$T_DIR/crash.json"
	approve_with_openssl alice "$T_DIR/crash.json" >/dev/null
	approve_with_openssl bob "$T_DIR/crash.json" >/dev/null
	touch "$ARM"
	CR_STATE=$(approve_with_openssl dave "$T_DIR/crash.json"; jbody .state)
	CR_FAULT=$(cut -d' ' -f2- "$FAULTS" 2>/dev/null | sed "s|$T_DIR/state/||")
	CR_SYNC=$(grep " fdatasync $T_DIR/state/signgate.db-wal\$" "$FAULTS" 2>/dev/null |
	    tail -n 1 | cut -d' ' -f1)
}
for fmt in raw cms; do
	hex=$(printf "c%063x" "$(printf '%d' "'$fmt")")
	for attempt in 1 2 3; do
		crash_run "$fmt" "" "$hex" && nth=$CR_SYNC && [ -n "$nth" ] &&
		    stop_daemon &&
		    crash_run "$fmt" "$nth" "$hex" && [ "$CR_STATE" = 200pending ] &&
		    [ "$CR_FAULT" = "fdatasync signgate.db-wal" ]
		rc=$?
		[ "$rc" = 0 ] && break
		stop_daemon
	done
	if [ "$rc" -ne 0 ]; then
		not_ok "$fmt: set-up: dave's approval answers 200 pending with its signature's commit failed (got '$CR_STATE', fault '$CR_FAULT')"
		continue
	fi
	ok "$fmt: dave's approval answers 200 pending: the signature's commit failed ($CR_FAULT)"
	ID=$(jq -r .id "$T_DIR/crash.json")
	check "$fmt: the housekeeping thread completes the request within 5 s" wait_state "$ID" signed
	cp "$T_DIR/body" "$T_DIR/crash.signed.json"
	check "$fmt: the retry got the recorded signature back (no new one)" \
	    grep -q "signer: request $ID: the $fmt signature made at .* returned again" "$T_DIR/daemon.log"
	expect_eq "$fmt: the signer recorded one signature for the request" \
	    "$(rec_sql "SELECT COUNT(*) FROM signatures WHERE request = '$ID'")" 1
	expect_eq "$fmt: the signature logged is the one the signer recorded first" \
	    "$(api_sig_hex "$T_DIR/crash.signed.json")" \
	    "$(rec_sql "SELECT lower(hex(signature)) FROM signatures WHERE request = '$ID'")"
	if [ "$fmt" = cms ]; then
		expect_eq "cms: the CMS logged is the one the signer recorded first" \
		    "$(jq -r .signature.cms "$T_DIR/crash.signed.json" | base64 -d | sha256sum | cut -d' ' -f1)" \
		    "$(rec_sql "SELECT lower(hex(cms)) FROM signatures WHERE request = '$ID'" | xxd -r -p | sha256sum | cut -d' ' -f1)"
	fi
	expect_eq "$fmt: the log holds one signature entry for the request" \
	    "$(sqlite3 "$T_DIR/state/signgate.db" "SELECT COUNT(*) FROM log_entries WHERE instr(data, CAST('request $ID' AS BLOB)) > 0 AND instr(data, X'0a' || CAST('type signature' AS BLOB) || X'0a') > 0")" 1
	stop_daemon
done

# --- the signer's own record cannot be written --------------------------------------
TRIGGER="$T_DIR/hsm-disk-fails"
fresh_store
# Only its record of signatures: its checkpoint record has tests of its own
# (56-log-signer.sh, 87-checkpoint-faults.sh).
SG_IOFAULT_MATCH="$HSM/signatures.db" SG_IOFAULT_TRIGGER="$TRIGGER" \
    LD_PRELOAD="$PRELOAD" \
    start_daemon || { not_ok "daemon starts with the fault injector on the signer's record"; finish; exit 1; }
H4=$(printf '4%.0s' $(seq 64)); H5=$(printf '5%.0s' $(seq 64))
new_request ci release "$H4" >/dev/null; cp "$T_DIR/body" "$T_DIR/rf.json"
ID=$(jq -r .id "$T_DIR/rf.json")
approve_with_openssl alice "$T_DIR/rf.json" >/dev/null
approve_with_openssl bob "$T_DIR/rf.json" >/dev/null
touch "$TRIGGER"
expect_eq "no record: nightly answers 503" "$(new_request ci nightly "$H5")" 503
check "... with no signature in it" bash -c "! grep -q '\"signature\"' '$T_DIR/body'"
expect_eq "no record: the approval that completes release's quorum leaves it pending" \
    "$(approve_with_openssl dave "$T_DIR/rf.json"; jbody .state)" 200pending
check "... and carries no signature" bash -c "! jq -e .signature '$T_DIR/body' >/dev/null"
check "the signer said why" grep -q "could not be recorded, so it was not released" "$T_DIR/daemon.log"
expect_eq "no record was kept for the release" \
    "$(rec_sql "SELECT COUNT(*) FROM signatures WHERE request = '$ID'")" 0
rm -f "$TRIGGER"
check "with the disk back, the housekeeping thread signs the release within 5 s" wait_state "$ID" signed
expect_eq "... with one record" \
    "$(rec_sql "SELECT COUNT(*) FROM signatures WHERE request = '$ID'")" 1
expect_eq "... holding the signature served" "$(api_sig_hex "$T_DIR/body")" \
    "$(rec_sql "SELECT lower(hex(signature)) FROM signatures WHERE request = '$ID'")"
expect_eq "and nightly signs again (201)" "$(new_request ci nightly "$H5")" 201
check "sqlite integrity_check of the signer's record" \
    bash -c "[ \"\$(sqlite3 '$REC' 'PRAGMA integrity_check')\" = ok ]"
finish
