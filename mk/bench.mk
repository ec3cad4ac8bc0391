# The benchmark (scripts/bench.sh, docs/BENCHMARKS.md): raw C_Sign rate,
# the gateway's signing rate and its ratio to it, CPU per signature,
# latency at half load, and whole approval lifecycles per second, against a
# fresh daemon on loopback; the same on PostgreSQL, one gateway and two on
# one database; the same gateway on a network-HSM model (SoftHSM behind
# p11net.so: a fixed latency per signature, a bounded number in flight);
# and, for `make bench` only, the transparency log's proofs and memory at
# BENCH_LOG_ENTRIES entries.  It writes build/bench.json and the results
# section of docs/BENCHMARKS.md.  Never part of `make test`.
#
#   make bench [BENCH_LOG_ENTRIES=10000000]      everything
#   make bench-gateway [BENCH_THREADS=2] [BENCH_SECONDS=10] [BENCH_CONNS=16]
#   make bench-gateway BENCH_NET_LATENCY_MS=5 BENCH_NET_IN_FLIGHT=16
#   make bench-gateway BENCH_PROFILE=/tmp/prof   also perf-record the daemon
#   make bench-gateway BENCH_NO_PG=1             SQLite only

BENCH_THREADS ?=
BENCH_SECONDS ?=
BENCH_CONNS ?=
BENCH_PROFILE ?=
BENCH_NO_PG ?=
BENCH_NET_LATENCY_MS ?=
BENCH_NET_IN_FLIGHT ?=
BENCH_NET_CONNS ?=
BENCH_NET_THREADS ?=
BENCH_LOG_ENTRIES ?= 10000000

BENCH_PROGS = all $(BUILD)/tools/loadgen $(BUILD)/tools/p11bench \
	$(BUILD)/tools/bench_log $(BUILD)/p11wrap/p11net.so

# bench_run LOG_ENTRIES: the script, 0 entries skipping the log part.
bench_run = @BUILD=$(BUILD) BENCH_GOALS="$(or $(MAKECMDGOALS),bench)" \
	    BENCH_THREADS=$(BENCH_THREADS) \
	    BENCH_SECONDS=$(BENCH_SECONDS) BENCH_CONNS=$(BENCH_CONNS) \
	    BENCH_PROFILE=$(BENCH_PROFILE) BENCH_NO_PG=$(BENCH_NO_PG) \
	    BENCH_NET_LATENCY_MS=$(BENCH_NET_LATENCY_MS) \
	    BENCH_NET_IN_FLIGHT=$(BENCH_NET_IN_FLIGHT) \
	    BENCH_NET_CONNS=$(BENCH_NET_CONNS) \
	    BENCH_NET_THREADS=$(BENCH_NET_THREADS) \
	    BENCH_LOG_ENTRIES=$(1) scripts/bench.sh

.PHONY: bench-gateway
bench-gateway: $(BENCH_PROGS)
	$(call bench_run,0)

bench: $(BENCH_PROGS)
	$(call bench_run,$(BENCH_LOG_ENTRIES))
