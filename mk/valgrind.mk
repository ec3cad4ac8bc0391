# `make valgrind`: every unit test under valgrind memcheck (CI runs it).
# Known leaks inside SoftHSM (not ours) are suppressed in
# tests/valgrind.supp; any other error or definite leak fails.  The Merkle
# test's bit-flip loops sample every 61st bit here (every 7th in the
# sanitizer run, every bit in the normal one).
VALGRIND = valgrind --quiet --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite --show-leak-kinds=definite \
	--suppressions=tests/valgrind.supp --trace-children=no

# The PKCS#11 tests race 80 threads against the session pool's deadlines,
# which valgrind's serialised threads cannot meet, and so does the
# network-HSM model's (32 signing threads through the same pool); their
# memory safety is covered by the sanitizer run (make test-san), so they
# are not run here.
VALGRIND_EXCLUDE = $(BUILD)/tests/test_p11 $(BUILD)/tests/test_p11_faults \
	$(BUILD)/tests/test_p11net

# Valgrind runs a program's threads one at a time and each PKCS#11 call
# some fifty times slower, so the PKCS#11 calls of the tests it runs
# (test_signer's signing threads on SoftHSM, say) get a deadline of two
# minutes instead of the 5 s default meant for an HSM at full speed; the
# deadline itself is tested in test_p11 and test_p11_faults, in the normal
# and the sanitizer runs.
VALGRIND_ENV = SG_P11_DEADLINE_MS=120000

# VALGRIND_TESTS narrows the run: make valgrind VALGRIND_TESTS="test_cms
# test_tsa".  The shared set-up (tests/unit/sg_fixture.c) is linked into
# each binary, so it is checked with every one of them.
VALGRIND_TESTS ?= $(UNIT_BINS:$(BUILD)/tests/%=%)
VALGRIND_BINS = $(filter-out $(VALGRIND_EXCLUDE), \
	$(VALGRIND_TESTS:%=$(BUILD)/tests/%))

# The binaries are independent (each works in scratch directories of its
# own, as tests/run.sh relies on), and valgrind runs a program's threads
# one at a time, so VALGRIND_JOBS of them run at once (default: one per
# CPU); their reports come out in order: for a failed one, valgrind's own
# report and the failed checks, wherever they stand in its output.
VALGRIND_JOBS ?= $(shell nproc 2>/dev/null || echo 1)

.PHONY: valgrind
valgrind: SHELL = /bin/bash
valgrind: unit
	@scripts/devenv.sh
	@echo "valgrind: not run here (timing-bound): $(VALGRIND_EXCLUDE)"
	@for t in $(VALGRIND_BINS); do \
		while [ "$$(jobs -rp | wc -l)" -ge $(VALGRIND_JOBS) ]; do \
			wait -n; \
		done; \
		( rm -f $$t.vg.rc; \
		  SG_TEST_SRCDIR=$(CURDIR) SG_TEST_BIT_STRIDE=61 $(VALGRIND_ENV) \
		      $(VALGRIND) $$t \
		      >$$t.vg.log 2>&1; echo $$? >$$t.vg.rc ) & \
	done; wait; \
	fail=0; for t in $(VALGRIND_BINS); do \
		echo "== valgrind $$t"; \
		rc=$$(cat $$t.vg.rc 2>/dev/null); rm -f $$t.vg.rc; \
		if [ "$$rc" != 0 ]; then \
			grep -E '^==[0-9]+== |^not ok|^  ' $$t.vg.log | \
			    head -n 60; tail -n 1 $$t.vg.log; fail=1; \
		else tail -n 1 $$t.vg.log; fi; \
	done; exit $$fail
