# A PKCS#11 module that wraps SoftHSM and injects faults, for the HSM
# failure tests (tests/unit/test_p11_faults.c, tests/integration/
# 85-hsm-faults.sh and 87-checkpoint-faults.sh).  Like the preload
# libraries it is never sanitized: it is dlopen()ed into sanitized and
# plain binaries alike.
P11WRAP_CFLAGS = -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) \
	$(shell pkg-config --cflags p11-kit-1 2>/dev/null)

$(BUILD)/p11wrap/%.so: tests/p11wrap/%.c
	@mkdir -p $(dir $@)
	$(CC) $(P11WRAP_CFLAGS) -shared -fPIC -o $@ $< -ldl -lpthread

unit: $(BUILD)/p11wrap/p11fault.so
