# `make valgrind`: every unit test under valgrind memcheck (CI runs it).
# Known leaks inside SoftHSM (not ours) are suppressed in
# tests/valgrind.supp; any other error or definite leak fails.  The Merkle
# test's bit-flip loops sample every 61st bit here (they are exhaustive in
# the normal and sanitizer runs).
VALGRIND = valgrind --quiet --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite --show-leak-kinds=definite \
	--suppressions=tests/valgrind.supp --trace-children=no

.PHONY: valgrind
valgrind: unit
	@scripts/devenv.sh
	@fail=0; for t in $(UNIT_BINS); do \
		echo "== valgrind $$t"; \
		if ! SG_TEST_SRCDIR=$(CURDIR) SG_TEST_BIT_STRIDE=61 $(VALGRIND) $$t >$$t.vg.log 2>&1; then \
			tail -n 40 $$t.vg.log; fail=1; \
		else tail -n 1 $$t.vg.log; fi; \
	done; exit $$fail
