# Every single write can fail: a whole flow (a nightly signature, a release
# request, three approvals, the release signed) is run once per N with the
# Nth write or fsync into the state directory failing (EIO), N covering the
# flow's writes (all of them when few, else the first 30, the last 10 and a
# sample between) and a few of those the daemon's stop makes.  For each N: every call answers 2xx or 503, never 500
# and never a signature in a 503; what a 503 refused does not exist; what
# was acknowledged is still there after the fault and after a restart
# without it; the daemon recovers by itself (the very next call succeeds);
# the database passes integrity_check; the checkpoint served after each
# step is a prefix of the final log, and `signgate log monitor` accepts the
# log before the flow, after it and after the restart; the log holds
# exactly one entry per stored event and as many entries as the checkpoint
# says.  The runs go two at once, each in a directory of its own.  Last,
# the housekeeping thread must sign a release whose signature
# could not be written also when 64 older requests are pending.
. "$(dirname "$0")/lib.sh"

PRELOAD="$BUILD/preload/iofault.so"
[ -f "$PRELOAD" ] || PRELOAD="$SG_ROOT/build/preload/iofault.so"
[ -f "$PRELOAD" ] || { not_ok "the fault injector is built ($PRELOAD)"; finish; exit 1; }
DB="$T_DIR/state/signgate.db"
MON="$T_DIR/monitor.state"
ARM="$T_DIR/arm"
COUNT="$T_DIR/count"
FAULTS="$T_DIR/faults"
FIRST=30 LAST=10
# A time budget for the runs: the first FIRST and the last LAST N always
# run, a sample between as long as the budget lasts.  A sanitizer build
# takes about a second to start and 0.1 s a call (against 0.1 s and 10 ms),
# so there the sample is small.
case "$BUILD" in
*san*)	BUDGET=${SG_IOFAULT_NTH_SECONDS:-240}
	# The driver is a test tool: its own leaks are not the question.
	TOOL_ASAN="${ASAN_OPTIONS:-}:detect_leaks=0" ;;
*)	BUDGET=${SG_IOFAULT_NTH_SECONDS:-100} TOOL_ASAN=${ASAN_OPTIONS:-} ;;
esac

export SG_IOFAULT_MATCH="$T_DIR/state/" SG_IOFAULT_ARM="$ARM" \
    SG_IOFAULT_COUNT_FILE="$COUNT" SG_IOFAULT_LOG="$FAULTS"
# The sanitizer runtime must otherwise come first in the library list.
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0"

CRASHLOAD="$BUILD/tools/crashload"
[ -x "$CRASHLOAD" ] || { not_ok "the load driver is built ($CRASHLOAD)"; finish; exit 1; }
export SG_DEV="$DEV" SIGNGATE="$SIGNGATE"
W="$T_DIR/work"

ERRS=()      # what went wrong in the current run
err() { ERRS+=("$*"); }

# fresh_start [N]: a new state directory and a daemon with the injector,
# counting from the moment the flow starts (and the Nth call failing).  A
# new log needs a new signer record too: the signer refuses a store that
# holds less than it signed (a rollback).
fresh_start() {
	rm -rf "$T_DIR/state" "$T_DIR/state-hsm" "$W" "$MON" "$ARM" "$COUNT" "$FAULTS"
	mkdir -p "$T_DIR/state" "$W"
	ERRS=()
	SG_IOFAULT_FAIL_NTH=${1:-} LD_PRELOAD="$PRELOAD" start_daemon || return 1
	monitor || return 1
	touch "$ARM"
}

monitor() {
	"$SIGNGATE" log monitor --state "$MON" >"$T_DIR/mon.out" 2>&1 && return 0
	err "log monitor: $(tr '\n' ' ' <"$T_DIR/mon.out")"
	return 1
}

# flow N: the whole flow by the driver; its answers go to the ledger.
flow() {
	ASAN_OPTIONS="$TOOL_ASAN:verify_asan_link_order=0" "$CRASHLOAD" flow "$W" "$1" "$MON" >"$T_DIR/flow.out" 2>&1 ||
	    err "$(grep -v '^statuses:' "$T_DIR/flow.out" | tr '\n' ' ')"
	STATUSES=$(sed -n 's/^statuses: //p' "$T_DIR/flow.out")
}

# verify_acks WHEN: everything acknowledged is there, unchanged.
verify_acks() {
	ASAN_OPTIONS="$TOOL_ASAN:verify_asan_link_order=0" "$CRASHLOAD" verify "$W" 0 final >"$T_DIR/verify.out" 2>&1 ||
	    err "$1: $(grep -v '^ok' "$T_DIR/verify.out" | tr '\n' ' ')"
}

# verify_db WHEN: integrity, and the log matches the tables entry for entry.
verify_db() {
	local when=$1 out size
	out=$(sqlite3 "$DB" 'PRAGMA integrity_check' 2>&1)
	[ "$out" = ok ] || err "$when: integrity_check: $out"
	api - GET /v1/log/checkpoint >/dev/null
	size=$(sed -n 2p "$T_DIR/body")
	out=$(sqlite3 -separator ' ' "$DB" "
	    SELECT (SELECT COUNT(*) FROM log_entries),
	           (SELECT COALESCE(MAX(idx) + 1, 0) FROM log_entries),
	           (SELECT COUNT(*) FROM log_entries WHERE instr(data, X'0a' || CAST('type created' AS BLOB) || X'0a') > 0),
	           (SELECT COUNT(*) FROM requests),
	           (SELECT COUNT(*) FROM log_entries WHERE instr(data, X'0a' || CAST('type decision' AS BLOB) || X'0a') > 0),
	           (SELECT COUNT(*) FROM approvals),
	           (SELECT COUNT(*) FROM log_entries WHERE instr(data, X'0a' || CAST('type signature' AS BLOB) || X'0a') > 0),
	           (SELECT COUNT(*) FROM requests WHERE state = 'signed' AND signature IS NOT NULL),
	           (SELECT MAX(size) FROM log_checkpoints)" 2>&1)
	set -- $out
	[ "$#" = 9 ] || { err "$when: the database cannot be read: $out"; return; }
	[ "$1" = "$size" ] && [ "$2" = "$size" ] && [ "$9" = "$size" ] ||
	    err "$when: the log holds $1 entries (next index $2, newest stored checkpoint $9), the checkpoint says $size"
	[ "$3" = "$4" ] || err "$when: $3 created entries for $4 requests"
	[ "$5" = "$6" ] || err "$when: $5 decision entries for $6 approvals"
	[ "$7" = "$8" ] || err "$when: $7 signature entries for $8 signed requests"
	[ "$4" = 2 ] && [ "$6" = 3 ] && [ "$8" = 2 ] ||
	    err "$when: the store holds $4 requests, $6 approvals, $8 signed (want 2, 3, 2)"
}

# --- how many writes does the flow make? --------------------------------------
write_config
fresh_start || { not_ok "daemon starts with the fault injector"; finish; exit 1; }
flow 0
verify_acks "counting run"
verify_db "counting run"
TOTAL=$(tr -d ' \n' <"$COUNT" 2>/dev/null)
stop_daemon
TOTAL_STOP=$(tr -d ' \n' <"$COUNT" 2>/dev/null)
if [ ${#ERRS[@]} -gt 0 ] || [ -z "$TOTAL" ] || [ "$TOTAL" -lt 1 ]; then
	not_ok "the flow runs with the injector counting: ${ERRS[*]:-no count}"
	finish; exit 1
fi
ok "the flow makes $TOTAL writes and fsyncs into the state directory, the stop $((TOTAL_STOP - TOTAL)) more (statuses $STATUSES)"

# --- the runs ---------------------------------------------------------------
# Every N when few; else the first FIRST and the last LAST (always), then an
# even sample between, as many as the time budget allows.
if [ -n "${SG_IOFAULT_NTH_LIST:-}" ]; then
	MUST=$SG_IOFAULT_NTH_LIST; MAY=
elif [ "$TOTAL" -le $((FIRST + LAST + 40)) ]; then
	MUST=$(seq 1 "$TOTAL"); MAY=
else
	MUST=$( { seq 1 "$FIRST"; seq $((TOTAL - LAST + 1)) "$TOTAL"; } | tr '\n' ' ')
	MAY=$(awk -v a=$((FIRST + 1)) -v b=$((TOTAL - LAST)) 'BEGIN {
	    n = 40; step = (b - a + 1) / n
	    for (i = 0; i < n; i++) printf "%d\n", a + int(i * step + step / 2) }' |
	    sort -un | tr '\n' ' ')
fi
# The stop's own writes (the WAL copied into the database): the first and
# the last three.
if [ -z "${SG_IOFAULT_NTH_LIST:-}" ] && [ "$TOTAL_STOP" -gt "$TOTAL" ]; then
	MUST="$MUST $( { seq $((TOTAL + 1)) $((TOTAL + 3)); seq $((TOTAL_STOP - 2)) "$TOTAL_STOP"; } |
	    awk -v t="$TOTAL" '$1 > t' | sort -un | tr '\n' ' ')"
fi

# run_n N: one run, its report on the standard output and its figures
# ("503" or "absorbed", then "ok" or "failed") in $T_DIR/n.N.fig.
run_n() {
	local n=$1 what summary
	if ! fresh_start "$n"; then
		echo "not ok - N=$n: the daemon starts with the injector ${ERRS[*]}"
		stop_daemon
		echo "absorbed failed" >"$T_DIR/n.$n.fig"
		return
	fi
	flow "$n"
	verify_acks "after the fault"
	verify_db "after the fault"
	if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
		err "the daemon died"; DAEMON_PID=
	fi
	stop_daemon
	cp "$T_DIR/daemon.log" "$T_DIR/daemon.fault.log"
	# (past TOTAL the fault hits the stop, in the last checkpoint of the WAL)
	what=$(cut -d' ' -f2- "$FAULTS" 2>/dev/null | head -n 1 | sed "s|$T_DIR/state/||")
	[ -n "$what" ] || err "the fault was never injected (the flow and the stop made $(tr -d ' \n' <"$COUNT") calls)"
	[ "$n" -le "$TOTAL" ] || what="at the stop: $what"
	if start_daemon; then
		verify_acks "after a restart"
		verify_db "after a restart"
		monitor
		stop_daemon
	else
		err "the daemon does not restart without the fault"
	fi
	local fig=absorbed
	case " $STATUSES " in *" 503 "*) fig=503 ;; esac
	summary="N=$n ($what): $STATUSES"
	if [ ${#ERRS[@]} -eq 0 ]; then
		echo "ok - $summary"
		fig="$fig ok"
	else
		echo "not ok - $summary"
		printf '    %s\n' "${ERRS[@]}"
		fig="$fig failed"
	fi
	if [ ${#ERRS[@]} -gt 0 ] || [ -n "${SG_IOFAULT_NTH_DEBUG:-}" ]; then
		grep -i 'error\|warn' "$T_DIR/daemon.fault.log" | head -n 8 | sed 's/^/    daemon: /'
	fi
	echo "$fig" >"$T_DIR/n.$n.fig"
}

# lane L: the runs of every LANES-th N from the L-th, in a directory of
# its own (its state, ledger, monitor state, injector files and copy of the
# tokens: SoftHSM rewrites its token file at each login, and a daemon
# starting while another logs in to the same token can read it half
# written).  A run of one N waits much of its time (for the daemon's
# starts and stops, for fsync), so two lanes take less time than one (20
# N on a loaded machine: 92 s in one lane, 58 s in two).  Run in a
# subshell whose T_DIR is the lane's directory.
LANES=${SG_IOFAULT_NTH_LANES:-2}
LANE_BASE=$T_DIR
lane() {
	local l=$1 i=0 n
	T_DIR="$LANE_BASE/lane$l"
	mkdir -p "$T_DIR"
	mkfifo "$T_DIR/.pause"
	cp "$LANE_BASE/signgated.json" "$T_DIR/signgated.json.in"
	jq --arg s "$T_DIR/state" '.state_dir = $s' "$T_DIR/signgated.json.in" \
	    >"$T_DIR/signgated.json"
	private_tokens "$T_DIR"
	export SOFTHSM2_CONF="$T_DIR/softhsm2.conf"
	DB="$T_DIR/state/signgate.db" MON="$T_DIR/monitor.state"
	ARM="$T_DIR/arm" COUNT="$T_DIR/count" FAULTS="$T_DIR/faults" W="$T_DIR/work"
	export SG_IOFAULT_MATCH="$T_DIR/state/" SG_IOFAULT_ARM="$ARM" \
	    SG_IOFAULT_COUNT_FILE="$COUNT" SG_IOFAULT_LOG="$FAULTS"
	trap 'stop_daemon; exit 143' TERM
	for n in $MUST $MAY; do
		i=$((i + 1))
		[ $(( (i - 1) % LANES + 1 )) = "$l" ] || continue
		case " $MUST " in
		*" $n "*) ;;
		*)	if [ $(( $(date +%s) - start )) -ge "$BUDGET" ]; then
				echo "skipped" >"$LANE_BASE/n.$n.fig"; continue
			fi ;;
		esac
		run_n "$n" >"$T_DIR/n.$n.out" 2>&1
		for f in out fig; do
			[ -f "$T_DIR/n.$n.$f" ] && mv "$T_DIR/n.$n.$f" "$LANE_BASE/n.$n.$f"
		done
	done
}

start=$(date +%s)
pids=()
for l in $(seq 1 "$LANES"); do
	( lane "$l" ) >"$T_DIR/lane$l.out" 2>&1 &
	pids+=($!); BG_PIDS+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
elapsed=$(( $(date +%s) - start ))
# The reports, in the order of the N; the checks are counted here.
runs=0 failed_runs=0 with503=0 absorbed=0 skipped=0
for n in $MUST $MAY; do
	fig=$(cat "$T_DIR/n.$n.fig" 2>/dev/null)
	case "$fig" in
	skipped) skipped=$((skipped + 1)); continue ;;
	"") not_ok "N=$n: the run left no report"; sed 's/^/    /' "$T_DIR"/lane*.out | tail -n 20
	    runs=$((runs + 1)); failed_runs=$((failed_runs + 1)); continue ;;
	esac
	runs=$((runs + 1))
	case "$fig" in 503*) with503=$((with503 + 1)) ;; *) absorbed=$((absorbed + 1)) ;; esac
	case "$fig" in *failed) failed_runs=$((failed_runs + 1)) ;; esac
	relay "$T_DIR/n.$n.out"
done

# --- a failed signature write behind a backlog ------------------------------
# The last approval's decision is committed, the signature's commit fails
# (its fdatasync, the last one of that approval: the checkpoint row written
# after it has none), the answer is 200 pending, and the housekeeping
# thread must sign within a few seconds: also when 64 older requests are
# pending, waiting for officers.  The counting run logs every call, to find
# that fdatasync's number.
backlog_run() {
	local nth=$1 i pids=() all=
	[ -n "$nth" ] || all=1
	rm -rf "$T_DIR/state" "$T_DIR/state-hsm" "$ARM" "$COUNT" "$FAULTS"; mkdir -p "$T_DIR/state"
	SG_IOFAULT_FAIL_NTH=$nth SG_IOFAULT_LOG_ALL=$all LD_PRELOAD="$PRELOAD" \
	    start_daemon || return 1
	for i in $(seq 1 64); do
		curl -sS --max-time 30 --cacert "$DEV/tls/ca.pem" \
		    --cert "$DEV/tls/ci.pem" --key "$DEV/tls/ci.key" \
		    -H 'Content-Type: application/json' -o /dev/null \
		    --data-binary "{\"key\":\"release\",\"digest\":{\"algorithm\":\"sha256\",\"value\":\"$(printf 'e%063x' "$i")\"},\"format\":\"raw\",\"artifact\":{\"name\":\"backlog\"}}" \
		    "$URL/v1/requests" &
		pids+=($!)
		# (never a bare wait: the daemon is a child of this shell too)
		[ $((i % 8)) = 0 ] && { wait "${pids[@]}"; pids=(); }
	done
	new_request ci release "$(printf 'f%063x' 1)" >/dev/null; cp "$T_DIR/body" "$T_DIR/bl.json"
	approve_with_openssl alice "$T_DIR/bl.json" >/dev/null
	approve_with_openssl bob "$T_DIR/bl.json" >/dev/null
	api audit GET "/v1/requests?state=pending&limit=100" >/dev/null
	BL_PENDING=$(jbody '.requests | length')
	touch "$ARM"
	BL_DAVE=$(approve_with_openssl dave "$T_DIR/bl.json"; jbody .state)
	BL_CALLS=$(tr -d ' \n' <"$COUNT")
	BL_FAULT=$(cut -d' ' -f2- "$FAULTS" 2>/dev/null | sed "s|$T_DIR/state/||")
	BL_SYNC=$(grep " fdatasync $T_DIR/state/signgate.db-wal\$" "$FAULTS" 2>/dev/null |
	    tail -n 1 | cut -d' ' -f1)
}
# The count of that approval's writes can differ by a page split or a WAL
# checkpoint between two runs: a set-up that missed its mark is tried again.
for attempt in 1 2 3; do
	backlog_run "" && nth=$BL_SYNC && [ -n "$nth" ] && stop_daemon &&
	    backlog_run "$nth" && [ "$BL_PENDING" = 65 ] &&
	    [ "$BL_DAVE" = 200pending ] && [ "$BL_FAULT" = "fdatasync signgate.db-wal" ]
	bl_ok=$?
	[ "$bl_ok" = 0 ] && break
	stop_daemon
done
if [ "$bl_ok" -ne 0 ]; then
	not_ok "set-up: dave's approval answers 200 pending with its signature's commit failed (got '$BL_DAVE', fault '$BL_FAULT', $BL_PENDING pending)"
else
	BL_ID=$(jq -r .id "$T_DIR/bl.json")
	for i in $(seq 1 25); do
		api audit GET "/v1/requests/$BL_ID" >/dev/null
		[ "$(jbody .state)" = signed ] && break
		sleep 0.2
	done
	expect_eq "behind 64 older pending requests, a release whose signature could not be written is signed within 5 s" \
	    "$(jbody .state)" signed
fi
stop_daemon

echo "# the flow makes $TOTAL writes; $runs N run in ${elapsed}s ($skipped sampled N left out for time); $with503 answered one 503, $absorbed absorbed the fault without a 503; $failed_runs failed"

finish
