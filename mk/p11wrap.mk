# PKCS#11 modules that wrap SoftHSM, for tests and benchmarks:
# p11fault.so injects faults (tests/unit/test_p11_faults.c, tests/
# integration/85-hsm-faults.sh and 87-checkpoint-faults.sh); p11net.so
# makes it a network HSM, each signature a fixed latency with a bounded
# number in flight (tests/unit/test_p11net.c,
# tests/integration/86-netmodel.sh, scripts/bench.sh).  Like the
# preload libraries they are never sanitized: they are dlopen()ed into
# sanitized and plain binaries alike.
P11WRAP_CFLAGS = -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) \
	$(shell pkg-config --cflags p11-kit-1 2>/dev/null)

$(BUILD)/p11wrap/%.so: tests/p11wrap/%.c tests/p11wrap/p11funcs.h
	@mkdir -p $(dir $@)
	$(CC) $(P11WRAP_CFLAGS) -shared -fPIC -o $@ $< -ldl -lpthread

unit: $(BUILD)/p11wrap/p11fault.so $(BUILD)/p11wrap/p11net.so
