# The gateway benchmark (scripts/bench.sh): raw C_Sign rate, the gateway's
# signing rate and its ratio to it, latency at half load, and whole
# approval lifecycles per second, against a fresh daemon on loopback; then
# the same on PostgreSQL, one gateway and two on one database.  It runs
# before the transparency-log benchmark of `make bench` and writes its
# results into docs/BENCHMARKS.md.  Never part of `make test`.
#
#   make bench-gateway [BENCH_THREADS=2] [BENCH_SECONDS=10] [BENCH_CONNS=16]
#   make bench-gateway BENCH_PROFILE=/tmp/prof   also perf-record the daemon
#   make bench-gateway BENCH_NO_PG=1             SQLite only

BENCH_THREADS ?=
BENCH_SECONDS ?=
BENCH_CONNS ?=
BENCH_PROFILE ?=
BENCH_NO_PG ?=

.PHONY: bench-gateway
bench-gateway: all $(BUILD)/tools/loadgen $(BUILD)/tools/p11bench
	@BUILD=$(BUILD) BENCH_GOALS="$(or $(MAKECMDGOALS),bench)" \
	    BENCH_THREADS=$(BENCH_THREADS) \
	    BENCH_SECONDS=$(BENCH_SECONDS) BENCH_CONNS=$(BENCH_CONNS) \
	    BENCH_PROFILE=$(BENCH_PROFILE) BENCH_NO_PG=$(BENCH_NO_PG) \
	    scripts/bench.sh

bench: bench-gateway
