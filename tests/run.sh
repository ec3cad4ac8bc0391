#!/usr/bin/env bash
# Runs every test: the unit test binaries in $BUILD/tests and the
# integration scripts in tests/integration.  Each prints a last line
# "N passed, M failed"; this adds them up and ends with the same line.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD SG_ROOT=$(pwd)
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$SG_ROOT/tests/lsan.supp:print_suppressions=0}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:fast_unwind_on_malloc=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
[ -f tests/lsan.supp ] || export LSAN_OPTIONS=""

total_pass=0
total_fail=0
failed_suites=()

# report NAME OUT RC: prints a suite's output and adds up its last line.
report() {
	local name=$1 out=$2 rc=$3 last p f
	echo "== $name"
	cat "$out"
	last=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
	if [ -n "$last" ]; then
		p=${last%% passed*}
		f=${last#*, }; f=${f%% failed*}
	else
		p=0; f=0
	fi
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok - $name exited with status $rc"
		f=$((f + 1))
	fi
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	[ "$f" -gt 0 ] && failed_suites+=("$name")
}

# Seconds each suite took, printed after the totals (slowest first) so
# that the suite's time budget can be watched.
timings=()

run_one() {
	local name=$1 out rc t0=$SECONDS; shift
	out=$(mktemp)
	timeout 600 "$@" >"$out" 2>&1
	rc=$?
	report "$name" "$out" "$rc"
	timings+=("$((SECONDS - t0)) $name")
	rm -f "$out"
}

# fail_suite NAME WHY: a failure that is not a test's (counted as one).
fail_suite() {
	echo "== $1"
	echo "not ok - $2"
	total_fail=$((total_fail + 1))
	failed_suites+=("$1")
}

# One PostgreSQL server for the whole run (tests/pg.sh): the unit tests
# of the PostgreSQL store each make a database of their own in it, from
# SG_TEST_PG (the superuser's conninfo) and SG_TEST_PG_PASSFILE (its
# password).  A script that stops or crashes a server starts its own, so
# this one is never disturbed; its PG_* variables stay out of the tests'
# environment for that reason.  Without the server's binaries those tests
# are skipped, but in CI that is a failure.
. tests/pg.sh
pg_run_dir=
stop_pg() {
	[ -n "$pg_run_dir" ] || return 0
	pg_stop "$pg_run_dir" || return 1
	pg_run_dir=
}
trap stop_pg EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if pg_bindir >/dev/null 2>&1; then
	if pg_run_dir=$(mktemp -d /tmp/sg-pg.XXXXXX) && pg_start "$pg_run_dir"; then
		echo "PostgreSQL server for the tests: $PG_BINDIR, in $pg_run_dir"
		export SG_TEST_PG=$PG_SUPER_CONNINFO
		export SG_TEST_PG_PASSFILE=$PG_SUPER_PASSFILE
		export -n PG_DIR PG_BINDIR PG_DATA PG_SOCKDIR PG_PORT PG_LOG \
		    PG_SUPER_CONNINFO PG_SUPER_PASSFILE
	else
		fail_suite postgresql "the PostgreSQL server for the tests did not start"
		stop_pg
	fi
elif [ -n "${CI:-}" ]; then
	fail_suite postgresql "PostgreSQL server binaries not found (in CI they must be: scripts/deps.sh installs postgresql)"
else
	echo "PostgreSQL server binaries not found: PostgreSQL tests are skipped"
fi

# The integration scripts run one after the other, each with the machine
# to itself but for those marked "# run.sh: beside the others" (they
# share nothing with the rest: no daemon, no port, no state, no var/dev):
# those start first, in the background, with SG_TEST_BESIDE=1, and their
# reports come out in their place.  They run for a fixed time rather than
# for an amount of work (the fuzzing smoke run), so their deadline is
# longer than the others'.
beside_dir=$(mktemp -d)
declare -A beside=()
for t in tests/integration/[0-9]*.sh; do
	[ -f "$t" ] && grep -qx '# run.sh: beside the others' "$t" || continue
	( SG_TEST_BESIDE=1 timeout 900 bash "$t" >"$beside_dir/$(basename "$t").out" 2>&1
	  echo $? >"$beside_dir/$(basename "$t").rc" ) &
	beside[$t]=$!
done

# The unit binaries are independent (each works in scratch directories of
# its own), so they run UNIT_JOBS at a time (default: one per CPU); their
# reports come out in order.
# running PID...: how many of them are still running.
running() {
	local p n=0
	for p in "$@"; do kill -0 "$p" 2>/dev/null && n=$((n + 1)); done
	echo "$n"
}
unit_dir=$(mktemp -d)
unit_t0=$SECONDS
unit_jobs=${UNIT_JOBS:-$(nproc)}
units=() unit_pids=()
# The longest binaries start first, so that no long one is left running
# alone at the end; the reports come out in the order they started.
slow_first=(test_p11mod_gw test_p11_faults test_merkle test_store
    test_cli_http)
unit_list=()
for t in "${slow_first[@]}"; do
	[ -x "$BUILD/tests/$t" ] && unit_list+=("$BUILD/tests/$t")
done
for t in "$BUILD"/tests/test_*; do
	[[ " ${slow_first[*]} " == *" $(basename "$t") "* ]] || unit_list+=("$t")
done
for t in "${unit_list[@]}"; do
	[ -x "$t" ] || continue
	i=${#units[@]}
	units+=("$t")
	while [ "$(running "${unit_pids[@]}")" -ge "$unit_jobs" ]; do
		wait -n
	done
	( t0=$SECONDS
	  timeout 600 "$t" >"$unit_dir/$i.out" 2>&1
	  echo $? >"$unit_dir/$i.rc"
	  echo $((SECONDS - t0)) >"$unit_dir/$i.sec" ) &
	unit_pids+=($!)
done
[ ${#unit_pids[@]} -eq 0 ] || wait "${unit_pids[@]}"
for i in "${!units[@]}"; do
	report "unit $(basename "${units[i]}")" "$unit_dir/$i.out" \
	    "$(cat "$unit_dir/$i.rc" 2>/dev/null || echo 1)"
	timings+=("$(cat "$unit_dir/$i.sec" 2>/dev/null || echo 0) unit $(basename "${units[i]}")")
done
rm -rf "$unit_dir"
timings+=("$((SECONDS - unit_t0)) unit tests (all)")

for t in tests/integration/[0-9]*.sh; do
	[ -f "$t" ] || continue
	if [ -n "${beside[$t]:-}" ]; then
		wait "${beside[$t]}"
		report "integration $(basename "$t")" \
		    "$beside_dir/$(basename "$t").out" \
		    "$(cat "$beside_dir/$(basename "$t").rc" 2>/dev/null || echo 1)"
		continue
	fi
	run_one "integration $(basename "$t")" bash "$t"
done
rm -rf "$beside_dir"

stop_pg || fail_suite postgresql "the PostgreSQL server for the tests did not stop"

echo
echo "seconds per suite, slowest first (scripts beside the others overlap the rest):"
printf '%s\n' "${timings[@]}" | sort -rn | head -n 16 | sed 's/^/  /'
if [ ${#failed_suites[@]} -gt 0 ]; then
	echo "failing suites: ${failed_suites[*]}"
fi
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
