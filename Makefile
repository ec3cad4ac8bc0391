# signgate build.  `make` builds both programs; `make SAN=1 …` builds and
# tests everything under AddressSanitizer + UndefinedBehaviorSanitizer in a
# separate build directory.

# The one place the version is written: `signgated --version`,
# `signgate --version`.
VERSION = 0.1.0

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR = $(PREFIX)/bin
SBINDIR = $(PREFIX)/sbin
SYSCONFDIR ?= /etc

CC ?= cc
PKGS = openssl libmicrohttpd gnutls jansson sqlite3 libpq libcurl p11-kit-1
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(filter-out p11-kit-1,$(PKGS)) 2>/dev/null)

WARN = -Wall -Wextra -Wformat=2 -Wshadow -Wvla -Wstrict-prototypes \
       -Wmissing-prototypes -Wno-unused-parameter
HARDEN = -fstack-protector-strong -fPIE -D_FORTIFY_SOURCE=2
CFLAGS ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -Iinclude -DSG_VERSION='"$(VERSION)"' \
	$(WARN) $(HARDEN) $(PKG_CFLAGS) $(CFLAGS)
LDFLAGS_ALL = -pie -Wl,-z,relro,-z,now $(LDFLAGS)
LIBS = $(PKG_LIBS) -ldl -lpthread

ifeq ($(SAN),1)
BUILD = build-san
ALL_CFLAGS += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined -U_FORTIFY_SOURCE
LDFLAGS_ALL += -fsanitize=address,undefined
else
BUILD = build
endif
ifeq ($(WERROR),1)
ALL_CFLAGS += -Werror
endif

# Three libraries, so that the boundaries are enforced at link time:
#   core    formats, crypto, policy, log maths, PKCS#11 (both programs);
#   daemon  the gateway's own modules (signgated only);
#   cli     the command-line client's modules (signgate only).
# A CLI file that calls daemon code (or the reverse) fails to link.  A new
# file in src/ belongs to core unless it is listed under DAEMON_NAMES or
# named cli_*.c.
MAINS = src/signgated.c src/signgate.c src/witnessd.c
DAEMON_NAMES = api http service store tlog signer signer_proc signer_wire sigrec witness privdrop config tsa cfgcheck
DAEMON_NAMES += http_conn http_accept http_tls store_release store_schema \
	store_claim store_copy store_outbox store_policy db db_sqlite db_pg \
	notify
DAEMON_NAMES += api_requests api_log api_ops api_release api_tiles api_policy
DAEMON_NAMES += witnessing
DAEMON_NAMES += signer_policy signer_serve signer_client signer_batch
# The service group, one job a file (src/service_int.h).
DAEMON_NAMES += service_signer service_keys service_log service_quorum \
	service_policy \
	service_sign service_requests service_decide service_sweep \
	service_reload service_metrics service_release service_grant \
	service_notify
# The officers' console (its page is embedded by mk/console.mk).
DAEMON_NAMES += console console_session console_api
DAEMON_SRCS = $(DAEMON_NAMES:%=src/%.c)
CLI_SRCS = $(wildcard src/cli_*.c)
# The witness (signgate-witness) has a library of its own: src/witnessd_*.c.
WITNESSD_SRCS = $(wildcard src/witnessd_*.c)
CORE_SRCS = $(filter-out $(MAINS) $(DAEMON_SRCS) $(CLI_SRCS) $(WITNESSD_SRCS),$(wildcard src/*.c))
LIB_SRCS = $(CORE_SRCS) $(DAEMON_SRCS) $(CLI_SRCS) $(WITNESSD_SRCS)
LIB_OBJS = $(LIB_SRCS:src/%.c=$(BUILD)/obj/%.o)
CORE_LIB = $(BUILD)/libsgcore.a
DAEMON_LIB = $(BUILD)/libsgdaemon.a
CLI_LIB = $(BUILD)/libsgcli.a
WITNESSD_LIB = $(BUILD)/libsgwitnessd.a
# Tests, tools and fuzz harnesses may reach into every part.
ALL_LIBS = $(WITNESSD_LIB) $(DAEMON_LIB) $(CLI_LIB) $(CORE_LIB)
UNIT_SRCS = $(wildcard tests/unit/test_*.c)
UNIT_BINS = $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FIXTURE_OBJ = $(BUILD)/fixture/sg_fixture.o
TOOL_SRCS = $(wildcard tests/tools/*.c)
TOOL_BINS = $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tools/%)
# Preload libraries for fault injection; never sanitized (they must load
# into any binary).
PRELOAD_SRCS = $(wildcard tests/preload/*.c)
PRELOAD_LIBS = $(PRELOAD_SRCS:tests/preload/%.c=$(BUILD)/preload/%.so)

.PHONY: all deps devenv run test test-san unit bench install clean
all: $(BUILD)/signgated $(BUILD)/signgate $(BUILD)/signgate-witness

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(CORE_LIB): $(CORE_SRCS:src/%.c=$(BUILD)/obj/%.o)
	@rm -f $@
	ar rcs $@ $^

$(DAEMON_LIB): $(DAEMON_SRCS:src/%.c=$(BUILD)/obj/%.o)
	@rm -f $@
	ar rcs $@ $^

$(CLI_LIB): $(CLI_SRCS:src/%.c=$(BUILD)/obj/%.o)
	@rm -f $@
	ar rcs $@ $^

$(WITNESSD_LIB): $(WITNESSD_SRCS:src/%.c=$(BUILD)/obj/%.o)
	@rm -f $@
	ar rcs $@ $^

# The programs print VERSION: rebuilt when it changes.
$(BUILD)/obj/signgated.o $(BUILD)/obj/signgate.o $(BUILD)/obj/witnessd.o: Makefile

$(BUILD)/signgated: $(BUILD)/obj/signgated.o $(DAEMON_LIB) $(CORE_LIB)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS_ALL) -o $@ $^ $(LIBS)

$(BUILD)/signgate: $(BUILD)/obj/signgate.o $(CLI_LIB) $(CORE_LIB)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS_ALL) -o $@ $^ $(LIBS)

# The witness uses the gateway's HTTP front and checkpoint record.
$(BUILD)/signgate-witness: $(BUILD)/obj/witnessd.o $(WITNESSD_LIB) \
    $(DAEMON_LIB) $(CORE_LIB)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS_ALL) -o $@ $^ $(LIBS)

# The shared test set-up (tests/unit/sg_fixture.[ch]) is linked into every
# unit test and tool: a new tests/unit/test_*.c needs no rule of its own.
$(FIXTURE_OBJ): tests/unit/sg_fixture.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(FIXTURE_OBJ) $(ALL_LIBS) \
    tests/unit/sg_test.h tests/unit/sg_fixture.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit $(LDFLAGS_ALL) -o $@ $< \
	    $(FIXTURE_OBJ) $(ALL_LIBS) $(LIBS)

$(BUILD)/tools/%: tests/tools/%.c $(FIXTURE_OBJ) $(ALL_LIBS) \
    tests/unit/sg_fixture.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit $(LDFLAGS_ALL) -o $@ $< \
	    $(FIXTURE_OBJ) $(ALL_LIBS) $(LIBS)

$(BUILD)/preload/%.so: tests/preload/%.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -Wall -Wextra -shared -fPIC -o $@ $< -ldl

# Further targets (fuzzing, fault-injection modules) live in mk/*.mk.
-include $(wildcard mk/*.mk)

-include $(LIB_OBJS:.o=.d) $(BUILD)/obj/signgated.d $(BUILD)/obj/signgate.d \
	$(BUILD)/obj/witnessd.d \
	$(FIXTURE_OBJ:.o=.d)

unit: $(UNIT_BINS) $(TOOL_BINS) $(PRELOAD_LIBS)

# Installs missing Debian packages when root, else prints the apt-get line.
deps:
	@scripts/deps.sh

devenv: all
	@scripts/devenv.sh

run: deps
	@$(MAKE) --no-print-directory all
	@scripts/devenv.sh
	@scripts/run-dev.sh $(BUILD)

test: deps
	@$(MAKE) --no-print-directory all unit
	@scripts/devenv.sh
	@BUILD=$(BUILD) tests/run.sh

# Under the sanitizers the exhaustive bit-flip loops of the Merkle tests
# (every bit of every proof hash, for every pair of tree sizes up to 64)
# try every 7th bit: still every bit position across a proof's hashes, the
# same code paths for the sanitizers to watch, a seventh of the time.  The
# plain `make test` flips every bit.
test-san:
	@SG_TEST_BIT_STRIDE=7 $(MAKE) --no-print-directory test SAN=1

# Measurements, never part of `make test`: `make bench` and
# `make bench-gateway` are in mk/bench.mk.

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR)
	install -m 0755 $(BUILD)/signgate $(DESTDIR)$(BINDIR)/signgate
	install -m 0755 $(BUILD)/signgated $(DESTDIR)$(SBINDIR)/signgated
	install -m 0755 $(BUILD)/signgate-witness $(DESTDIR)$(SBINDIR)/signgate-witness
	install -d $(DESTDIR)$(SYSCONFDIR)/signgate
	install -m 0644 policy/example.policy $(DESTDIR)$(SYSCONFDIR)/signgate/policy.example
	install -m 0644 docs/signgated.json.example $(DESTDIR)$(SYSCONFDIR)/signgate/signgated.json.example

clean:
	rm -rf build build-san
