# libFuzzer harnesses for the parsers (tests/fuzz/fuzz_<target>.c, seeds in
# tests/fuzz/corpus/<target>/).  Needs clang with its fuzzer runtime
# (Debian: clang, libclang-rt-14-dev).
#
#   make fuzz          each harness for FUZZ_SECONDS (default 60), corpus
#                      kept in build-fuzz/fuzz/corpus/ between runs
#   make fuzz-smoke    each harness for FUZZ_SMOKE_SECONDS (default 20) from
#                      the seeds alone (tests/integration/90-fuzz.sh)
#   make fuzz-build    only build the harnesses
#   make fuzz-clean    remove build-fuzz/
#
# FUZZ_TARGETS narrows the set (FUZZ_TARGETS="entry policy"); FUZZ_JOBS
# harnesses run at once (default 2), under `nice`.  Each run prints
# "ok - fuzz <target> (N execs)" or "not ok - fuzz <target>: ..." with the
# sanitizer report and the crashing input (build-fuzz/<mode>/artifacts/),
# and the target fails on any finding.  The seeds are copied to a scratch
# corpus, so new inputs never land in the repository.
#
# The library is compiled again from src/ with clang, coverage and
# sanitizers (ASan, UBSan with no recovery), into build-fuzz/.

FUZZ_CC ?= clang
FUZZ_BUILD = build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 20
FUZZ_JOBS ?= 2
FUZZ_NICE ?= 10
FUZZ_FLAGS ?=
FUZZ_ALL_TARGETS = $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_TARGETS ?= $(FUZZ_ALL_TARGETS)

FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -Iinclude $(WARN) $(PKG_CFLAGS) -g -O1 \
	$(FUZZ_SAN)
FUZZ_LIB_OBJS = $(LIB_SRCS:src/%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_BINS = $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)

# Sanitizer settings of our own: the test runner's (suppressions,
# abort_on_error=0) must not hide or change a finding.
FUZZ_ENV = ASAN_OPTIONS=detect_leaks=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 LSAN_OPTIONS=

.PHONY: fuzz fuzz-smoke fuzz-build fuzz-bins fuzz-clean fuzz-check-cc

fuzz-check-cc:
	@command -v $(FUZZ_CC) >/dev/null 2>&1 || \
	    { echo "fuzz: $(FUZZ_CC) not found (install clang)" >&2; exit 1; }
	@[ -f "$$($(FUZZ_CC) -print-file-name=libclang_rt.fuzzer-x86_64.a)" ] || \
	    { echo "fuzz: no libFuzzer runtime for $(FUZZ_CC) (install libclang-rt-dev)" >&2; exit 1; }

# clang's -Wformat=2 also flags vsnprintf() in printf-like wrappers, which
# gcc accepts; the library is kept warning-free under gcc.
$(FUZZ_BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Wno-format-nonliteral \
	    -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_BUILD)/libsigngate.a: $(FUZZ_LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_BUILD)/libsigngate.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -MMD -MP -o $@ $< \
	    $(FUZZ_BUILD)/libsigngate.a $(LIBS)

fuzz-bins: $(FUZZ_BINS)
	@:

fuzz-build: fuzz-check-cc
	@$(MAKE) --no-print-directory -j$(FUZZ_JOBS) fuzz-bins

# One harness run: $(1) is the mode (fuzz keeps its corpus, smoke starts
# from the seeds each time), $(2) the seconds.  libFuzzer exits non-zero on
# a crash, a leak, a UBSan report, a timeout (10 s per input) or running
# out of memory.
define fuzz_run
	@t=$*; d=$(FUZZ_BUILD)/$(1); c=$$d/corpus/$$t; a=$$d/artifacts/$$t; \
	l=$$d/logs/$$t.log; \
	if [ "$(1)" = smoke ]; then rm -rf "$$c" "$$a"; fi; \
	mkdir -p "$$c" "$$a" "$$d/logs"; \
	if [ -d tests/fuzz/corpus/$$t ]; then cp tests/fuzz/corpus/$$t/* "$$c"/; fi; \
	env $(FUZZ_ENV) nice -n $(FUZZ_NICE) $(FUZZ_BUILD)/fuzz_$$t \
	    -max_total_time=$(2) -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix="$$a/" $(FUZZ_FLAGS) "$$c" \
	    >"$$l" 2>&1; rc=$$?; \
	n=$$(sed -n 's/^stat::number_of_executed_units: *//p' "$$l" | tail -n 1); \
	if [ $$rc -eq 0 ]; then \
		echo "ok - fuzz $$t ($${n:-0} execs)"; \
	else \
		echo "not ok - fuzz $$t: finding after $${n:-?} execs (exit $$rc), log $$l"; \
		grep -E -A 12 '^==[0-9]+== ?ERROR|runtime error:' "$$l" | head -n 40 | sed 's/^/    /'; \
		grep -E '^(artifact_prefix|Test unit written|Base64:)' "$$l" | sed 's/^/    /'; \
		exit 1; \
	fi
endef

FUZZ_RUNS = $(FUZZ_TARGETS:%=fuzz-run-%)
FUZZ_SMOKE_RUNS = $(FUZZ_TARGETS:%=fuzz-smoke-run-%)
.PHONY: $(FUZZ_RUNS) $(FUZZ_SMOKE_RUNS)

$(FUZZ_RUNS): fuzz-run-%: $(FUZZ_BUILD)/fuzz_%
	$(call fuzz_run,fuzz,$(FUZZ_SECONDS))

$(FUZZ_SMOKE_RUNS): fuzz-smoke-run-%: $(FUZZ_BUILD)/fuzz_%
	$(call fuzz_run,smoke,$(FUZZ_SMOKE_SECONDS))

fuzz: fuzz-build
	@$(MAKE) --no-print-directory -k -O -j$(FUZZ_JOBS) $(FUZZ_RUNS)

fuzz-smoke: fuzz-build
	@$(MAKE) --no-print-directory -k -O -j$(FUZZ_JOBS) $(FUZZ_SMOKE_RUNS)

fuzz-clean:
	rm -rf $(FUZZ_BUILD)

-include $(FUZZ_LIB_OBJS:.o=.d) $(FUZZ_BINS:=.d)
