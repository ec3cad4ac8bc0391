# Crash consistency: the daemon is killed with SIGKILL at 200 random
# moments (80 with a sanitizer build) and restarted on the same state
# directory each time (in two chains of half the cycles at once, each with
# its own daemon and state directory): most 20-300 ms after the first answer of a stream
# of work, one in eight within 100 ms of the start.  The work: ci creating
# nightly requests (signed at once) and release requests, each with an
# Idempotency-Key and retried with the same key when the answer was lost;
# alice, bob and dave approving the releases; an auditor reading
# checkpoints and signatures.  Every answer goes into a ledger
# (tests/tools/crashload.c).
#
# After every restart: `signgate log monitor` accepts the new checkpoint as
# an extension of the newest one served before the kill, and everything
# acknowledged in the last cycle is still there.  At the end, once all open
# work is finished without crashes: every 2xx request exists with the same
# id and statement, every acknowledged approval is recorded, a request has
# at most one signature across all answers and still serves it, every
# checkpoint ever served is a prefix of the final log, every fully approved
# release is signed; in the database: integrity_check is ok, the log holds
# as many entries as the checkpoint says, one created entry per request,
# one decision entry per approval, exactly one signature entry per signed
# request and none for any other.
. "$(dirname "$0")/lib.sh"

CRASHLOAD="$BUILD/tools/crashload"
[ -x "$CRASHLOAD" ] || { not_ok "the load driver is built ($CRASHLOAD)"; finish; exit 1; }
CYCLES=${SG_CRASH_CYCLES:-200}
# Every cycle runs; the time budget is only a cap that keeps the script
# inside the runner's 600 s (an idle machine needs under a second a cycle,
# the cap allows two to three times that).  A sanitizer build takes about a
# second to start and to give its first answer, against 0.1 s: it runs
# fewer cycles, and checks the ledger every fifth restart (each check
# covers every cycle since the last one).
case "$BUILD" in
*san*)	CYCLES=${SG_CRASH_CYCLES:-80} BUDGET=${SG_CRASH_SECONDS:-480} EVERY=5
	# The driver is a test tool: its own leaks are not the question.
	TOOL_ASAN="${ASAN_OPTIONS:-}:detect_leaks=0" ;;
*)	BUDGET=${SG_CRASH_SECONDS:-420} EVERY=1 TOOL_ASAN=${ASAN_OPTIONS:-} ;;
esac
# The cycles run in CHAINS chains at once, each with its own daemon, state
# directory, ledger, monitor state and copy of the tokens, restarted only
# on its own: cycles 1..CYCLES/CHAINS in the first, and so on.  A cycle
# waits much of its time (for the moment of the kill, for the restart),
# so two chains take less time than one (60 cycles on a lightly loaded
# machine: 37 s in one chain, 28 s in two), with about as many calls cut
# by a kill; each chain's load gets half the CPU, so fewer calls are
# answered between the kills.
CHAINS=${SG_CRASH_CHAINS:-2}
export SG_DEV="$DEV" SIGNGATE="$SIGNGATE"

# No limit may refuse the load: only crashes are being tested.
write_config '.rate_limit = {"per_second": 1000000, "burst": 1000000} |
    .max_pending_per_requester = 1000000'
for k in $(seq 1 "$CHAINS"); do
	mkdir -p "$T_DIR/c$k/state" "$T_DIR/c$k/work"
	mkfifo "$T_DIR/c$k/.pause"
	# A copy of the tokens each (else CKR_USER_PIN_NOT_INITIALIZED).
	private_tokens "$T_DIR/c$k"
	jq --arg s "$T_DIR/c$k/state" '.state_dir = $s' "$T_DIR/signgated.json" \
	    >"$T_DIR/c$k/signgated.json"
done

# The newest checkpoint served since byte $1 of the ledger becomes what the
# monitor last saw, so the next run checks the log against it.
remember_checkpoint() {
	local k size root msize
	k=$(tail -c +"$(($1 + 1))" "$W/journal" 2>/dev/null | awk '$1 == "K" { print $2, $3 }' |
	    sort -n -k1,1 | tail -n 1)
	[ -n "$k" ] || return 0
	size=${k%% *}; root=${k#* }
	msize=$(sed -n 's/^size //p' "$MON")
	[ "$size" -ge "$msize" ] || return 0
	sed -i "s|^size .*|size $size|; s|^root .*|root $root|" "$MON"
}

# chain K FIRST LAST: cycles FIRST..LAST against chain K's own daemon,
# then its open work finished and everything checked.  Run in a subshell
# whose T_DIR is the chain's directory (lib.sh's helpers keep their files
# there): its checks are printed ("ok - " and "not ok - " lines, counted
# by the caller), the loop's figures go to T_DIR/figures.
chain() {
	local k=$1 first=$2 last=$3 c ms i lp out size
	local mon_fail=0 verify_fail=0 start_fail=0 integ_fail=0 cycles=0
	local early=0 off= first_fail= start elapsed
	T_DIR="$T_DIR/c$k"
	export SOFTHSM2_CONF="$T_DIR/softhsm2.conf"
	W="$T_DIR/work" MON="$T_DIR/monitor.state" DB="$T_DIR/state/signgate.db"
	local load_out="$T_DIR/load.out" mon_out="$T_DIR/mon.out"
	local verify_out="$T_DIR/verify.out"
	trap 'kill9_daemon; exit 143' TERM
	start_daemon || { not_ok "chain $k: daemon starts"; return 1; }
	"$SIGNGATE" log monitor --state "$MON" >"$mon_out" 2>&1 ||
	    { not_ok "chain $k: log monitor, first run"; cat "$mon_out"; stop_daemon; return 1; }
	start=$(date +%s)
	for c in $(seq "$first" "$last"); do
		[ $(( $(date +%s) - start )) -lt "$BUDGET" ] || break
		[ -n "$off" ] || off=$(stat -c %s "$W/journal" 2>/dev/null || echo 0)
		ASAN_OPTIONS=$TOOL_ASAN "$CRASHLOAD" load "$W" "$c" 30 >"$load_out" 2>&1 &
		lp=$!
		if [ $((c % 8)) = 0 ]; then
			# Now and then early: the first connections and calls.
			ms=$((RANDOM % 101)); early=$((early + 1))
		else
			# Else 20-300 ms after the first answer.
			ms=$((20 + RANDOM % 281))
			for i in $(seq 1 500); do
				[ -s "$load_out" ] && break
				sleep 0.01
			done
		fi
		sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
		kill9_daemon
		wait "$lp" 2>/dev/null
		cycles=$((cycles + 1))
		if ! start_daemon; then
			start_fail=$((start_fail + 1)); first_fail=${first_fail:-"cycle $c: the daemon does not restart"}
			break
		fi
		remember_checkpoint "$off"
		if ! "$SIGNGATE" log monitor --state "$MON" >"$mon_out" 2>&1; then
			mon_fail=$((mon_fail + 1))
			echo "# cycle $c (killed after $ms ms): log monitor:"; sed 's/^/#   /' "$mon_out"
			first_fail=${first_fail:-"cycle $c: log monitor"}
			# Start over from what is served now, to find further faults.
			rm -f "$MON"; "$SIGNGATE" log monitor --state "$MON" >/dev/null 2>&1
		fi
		if [ $((c % EVERY)) = 0 ] || [ "$c" = "$last" ]; then
			if ! ASAN_OPTIONS=$TOOL_ASAN "$CRASHLOAD" verify "$W" "$off" >"$verify_out" 2>&1; then
				verify_fail=$((verify_fail + 1))
				echo "# cycle $c (killed after $ms ms): what was acknowledged before the kill:"
				grep -v '^ok' "$verify_out" | sed 's/^/#   /'
				first_fail=${first_fail:-"cycle $c: acknowledged answers"}
			fi
			off=
		fi
		if [ $((c % 25)) = 0 ]; then
			out=$(sqlite3 "$DB" 'PRAGMA integrity_check' 2>&1)
			[ "$out" = ok ] || { integ_fail=$((integ_fail + 1)); echo "# cycle $c: integrity_check: $out"; }
		fi
	done
	elapsed=$(( $(date +%s) - start ))
	echo "$cycles $start_fail $mon_fail $verify_fail $integ_fail $early" >"$T_DIR/figures"
	echo "# chain $k: cycles $first to $last, $cycles run in ${elapsed}s ($early of them within 100 ms of the start)"
	[ -z "$first_fail" ] || echo "# chain $k: first failure: $first_fail"
	[ "$start_fail" = 0 ] || return 0

	# --- finish the open work, then check everything -----------------------
	check "chain $k: open work finishes without crashes (retries, missing approvals, signatures)" \
	    env ASAN_OPTIONS="$TOOL_ASAN" "$CRASHLOAD" drain "$W" 60
	ASAN_OPTIONS=$TOOL_ASAN "$CRASHLOAD" verify "$W" 0 final >"$verify_out" 2>&1
	relay "$verify_out" "chain $k: "
	check "chain $k: log monitor after the last cycle" "$SIGNGATE" log monitor --state "$MON"

	api - GET /v1/log/checkpoint >/dev/null
	size=$(sed -n 2p "$T_DIR/body")
	q() { sqlite3 "$DB" "$1" 2>&1; }
	entries_of() {
		q "SELECT COUNT(*) FROM log_entries WHERE instr(data, X'0a' || CAST('type $1' AS BLOB) || X'0a') > 0"
	}
	expect_eq "chain $k: integrity_check" "$(q 'PRAGMA integrity_check')" ok
	expect_eq "chain $k: the log holds as many entries as the checkpoint says" "$(q 'SELECT COUNT(*) FROM log_entries')" "$size"
	expect_eq "chain $k: ... numbered 0 to size-1" "$(q 'SELECT COALESCE(MAX(idx) + 1, 0) FROM log_entries')" "$size"
	expect_eq "chain $k: ... and the newest stored checkpoint is that size" "$(q 'SELECT MAX(size) FROM log_checkpoints')" "$size"
	expect_eq "chain $k: one created entry per request" "$(entries_of created)" "$(q 'SELECT COUNT(*) FROM requests')"
	expect_eq "chain $k: one decision entry per approval" "$(entries_of decision)" "$(q 'SELECT COUNT(*) FROM approvals')"
	# The signature entry of a request: "request <id>" is its fourth line.
	local sigent="SELECT substr(CAST(data AS TEXT), instr(CAST(data AS TEXT), X'0a' || 'request ') + 9, 32) AS rid
	    FROM log_entries WHERE instr(data, X'0a' || CAST('type signature' AS BLOB) || X'0a') > 0"
	expect_eq "chain $k: no request has two signature entries" \
	    "$(q "SELECT COUNT(*) FROM (SELECT rid FROM ($sigent) GROUP BY rid HAVING COUNT(*) > 1)")" 0
	expect_eq "chain $k: every signed request has its signature entry, at its log_index" \
	    "$(q "SELECT COUNT(*) FROM requests r WHERE r.state = 'signed' AND NOT EXISTS
	        (SELECT 1 FROM log_entries e WHERE e.idx = r.log_index AND
	         instr(e.data, X'0a' || CAST('type signature' AS BLOB) || X'0a') > 0 AND
	         instr(e.data, CAST('request ' || r.id AS BLOB)) > 0)")" 0
	expect_eq "chain $k: no signature entry for a request that is not signed" \
	    "$(q "SELECT COUNT(*) FROM ($sigent) s LEFT JOIN requests r ON r.id = s.rid
	        WHERE r.state IS NOT 'signed'")" 0
	expect_eq "chain $k: every signed request holds a signature" \
	    "$(q "SELECT COUNT(*) FROM requests WHERE state = 'signed' AND signature IS NULL")" 0
	local answered lost replays
	answered=$(grep -c '^[CA] ' "$W/journal")
	lost=$(awk '$1 == "F" && $4 == 0' "$W/journal" | wc -l)
	replays=$(awk '($1 == "C" && $3 == 200) || ($1 == "A" && $4 == 409)' "$W/journal" | wc -l)
	echo "# chain $k: $answered creates and decisions answered, $lost calls cut by a kill, $replays answered as replays after a lost answer"
	echo "# chain $k: the store: $(q "SELECT COUNT(*) || ' requests (' || SUM(state = 'signed') || ' signed, ' || SUM(state = 'pending') || ' pending), ' FROM requests")$(q 'SELECT COUNT(*) FROM approvals') approvals, $size log entries"
	stop_daemon
}

# The chains' checks are counted here, from their output, in chain order.
pids=() first=1 start=$(date +%s)
for k in $(seq 1 "$CHAINS"); do
	last=$(( CYCLES * k / CHAINS ))
	( T_PASS=0 T_FAIL=0; chain "$k" "$first" "$last" ) >"$T_DIR/c$k/out" 2>&1 &
	pids+=($!); BG_PIDS+=($!)
	first=$((last + 1))
done
for p in "${pids[@]}"; do wait "$p"; done
elapsed=$(( $(date +%s) - start ))
cycles=0 start_fail=0 mon_fail=0 verify_fail=0 integ_fail=0 early=0
for k in $(seq 1 "$CHAINS"); do
	relay "$T_DIR/c$k/out"
	set -- $(cat "$T_DIR/c$k/figures" 2>/dev/null)
	[ "$#" = 6 ] || set -- 0 1 0 0 0 0
	cycles=$((cycles + $1)) start_fail=$((start_fail + $2)) mon_fail=$((mon_fail + $3))
	verify_fail=$((verify_fail + $4)) integ_fail=$((integ_fail + $5)) early=$((early + $6))
done
echo "# $cycles kill cycles in ${elapsed}s in $CHAINS chains at once ($early of them within 100 ms of the start)"
expect_eq "$CYCLES cycles of load, SIGKILL and restart ran" "$cycles" "$CYCLES"
expect_eq "the daemon restarted after every kill" "$start_fail" 0
expect_eq "after every restart the log monitor found the log consistent with the last checkpoint served" "$mon_fail" 0
expect_eq "after every restart what the last cycle acknowledged was there" "$verify_fail" 0
expect_eq "integrity_check every 25 cycles" "$integ_fail" 0

sleep 0.2
check "no signer process outlived its daemon" \
    bash -c "! pgrep -f -- '$T_DIR/c[0-9]*/[s]igngated.json'"

finish
