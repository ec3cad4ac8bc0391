# A short fuzzing run of every parser harness (tests/fuzz/): each runs for
# FUZZ_SMOKE_SECONDS (default 20) from its seeds, two at a time, under
# ASan and UBSan (`make fuzz-smoke`, mk/fuzz.mk).  A harness that ends
# without a finding is one pass; a crash, leak, UBSan report or timeout is
# one failure, with the report and the crashing input's path.  Without
# clang and its libFuzzer runtime nothing is run and nothing is counted:
# a skipped check is not a pass.
#
# It shares nothing with the other integration scripts (its own build
# directory, no daemon, no port, nothing in var/dev), so tests/run.sh
# starts it beside them (SG_TEST_BESIDE=1).  Then the harnesses run one at
# a time, each for the same seconds, and not under `nice`: each has about
# one CPU (as each of two at a time has on an otherwise idle machine of
# two), and at least a fair share of the two while a script beside it
# keeps both busy.
# run.sh: beside the others
set -u
SG_ROOT=${SG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$SG_ROOT" || exit 1
# Called from `make test`: the parent's jobserver and variables (SAN=1)
# are not ours.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES

# The harnesses carry their own sanitizers: the sanitizer pass of the suite
# (BUILD=build-san) would only repeat the same run.
case "${BUILD:-build}" in
*build-san*)
	echo "# fuzzing runs in the plain pass of the suite only"
	echo "0 passed, 0 failed"
	exit 0
	;;
esac

CC=${FUZZ_CC:-clang}
pass=0
fail=0

if ! command -v "$CC" >/dev/null 2>&1; then
	echo "# fuzzing skipped: $CC not installed"
	echo "0 passed, 0 failed"
	exit 0
fi
if [ ! -f "$("$CC" -print-file-name=libclang_rt.fuzzer-x86_64.a)" ]; then
	echo "# fuzzing skipped: no libFuzzer runtime for $CC (libclang-rt-dev)"
	echo "0 passed, 0 failed"
	exit 0
fi

log=$(mktemp /tmp/signgate-fuzz.XXXXXX)
trap 'rm -f "$log"' EXIT

jobs=()
[ -n "${SG_TEST_BESIDE:-}" ] && jobs=(FUZZ_JOBS=1 FUZZ_NICE=0)
if ! make --no-print-directory FUZZ_CC="$CC" fuzz-build >"$log" 2>&1; then
	echo "not ok - fuzz harnesses build"
	tail -n 30 "$log" | sed 's/^/    /'
	echo "0 passed, 1 failed"
	exit 1
fi

make --no-print-directory -s FUZZ_CC="$CC" "${jobs[@]}" fuzz-smoke >"$log" 2>&1
rc=$?
grep -v '^make\(\[[0-9]*\]\)\?: \*\*\*' "$log"
for src in tests/fuzz/fuzz_*.c; do
	t=${src#tests/fuzz/fuzz_}; t=${t%.c}
	if grep -q "^ok - fuzz $t (" "$log"; then
		pass=$((pass + 1))
	elif grep -q "^not ok - fuzz $t:" "$log"; then
		fail=$((fail + 1))
	else
		echo "not ok - fuzz $t: no result (make exited $rc)"
		fail=$((fail + 1))
	fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
