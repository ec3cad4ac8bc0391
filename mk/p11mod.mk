# libsigngate-pkcs11.so, the PKCS#11 client module (src/p11mod/).
#
# Its sources, and the project files it reuses (the CLI's HTTP client and
# helpers, the crypto and text rules), are compiled again as PIC into
# $(BUILD)/pic/, with hidden visibility: the version script exports the
# C_* functions only, and -z defs makes any symbol left to chance a link
# error.  `make all` builds it; `make install` puts it in PKCS11DIR (where
# Debian keeps PKCS#11 modules) and its p11-kit module file in
# P11KIT_MODULEDIR, rewritten to name where the module went.
#
#   make install [DESTDIR=] [PKCS11DIR=/usr/lib/<multiarch>/pkcs11]
#                [P11KIT_MODULEDIR=/usr/share/p11-kit/modules]
#
# The unit tests (tests/unit/test_p11mod*.c) link the same objects
# directly, so that they can reach the module's internal functions.

P11MOD = $(BUILD)/libsigngate-pkcs11.so
P11MOD_SRCS = $(wildcard src/p11mod/*.c)
P11MOD_REUSE = cli_http curl_client cli_common util err crypto types text
P11MOD_OBJS = $(P11MOD_SRCS:src/p11mod/%.c=$(BUILD)/pic/p11mod/%.o)
P11MOD_REUSE_OBJS = $(P11MOD_REUSE:%=$(BUILD)/pic/%.o)
P11MOD_MAP = src/p11mod/libsigngate-pkcs11.map
P11MOD_CFLAGS = $(filter-out -fPIE,$(ALL_CFLAGS)) -fPIC -fvisibility=hidden \
	-DP11M_SYSTEM_CONF='"$(SYSCONFDIR)/signgate/pkcs11.conf"'
P11MOD_LDFLAGS = $(filter-out -pie,$(LDFLAGS_ALL)) -shared -Wl,-z,defs \
	-Wl,--version-script=$(P11MOD_MAP) -Wl,-soname,libsigngate-pkcs11.so
P11MOD_LIBS = $(shell pkg-config --libs openssl jansson libcurl 2>/dev/null) \
	-lpthread

PKCS11DIR ?= /usr/lib/$(shell $(CC) -print-multiarch 2>/dev/null)/pkcs11
P11KIT_MODULEDIR ?= /usr/share/p11-kit/modules

all: $(P11MOD)

$(BUILD)/pic/p11mod/%.o: src/p11mod/%.c
	@mkdir -p $(dir $@)
	$(CC) $(P11MOD_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/pic/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(P11MOD_CFLAGS) -MMD -MP -c -o $@ $<

$(P11MOD): $(P11MOD_OBJS) $(P11MOD_REUSE_OBJS) $(P11MOD_MAP)
	$(CC) $(P11MOD_CFLAGS) $(P11MOD_LDFLAGS) -o $@ $(P11MOD_OBJS) \
	    $(P11MOD_REUSE_OBJS) $(P11MOD_LIBS)

# Unit tests of the module: its objects linked in, the rest from the
# project's libraries.
P11MOD_TESTS = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,\
	$(wildcard tests/unit/test_p11mod*.c))
$(P11MOD_TESTS): $(BUILD)/tests/%: tests/unit/%.c $(P11MOD_OBJS) \
    $(FIXTURE_OBJ) $(ALL_LIBS) tests/unit/sg_test.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit -Isrc/p11mod $(LDFLAGS_ALL) -o $@ $< \
	    $(P11MOD_OBJS) $(FIXTURE_OBJ) $(ALL_LIBS) $(LIBS)

.PHONY: install-pkcs11
install: install-pkcs11

install-pkcs11: $(P11MOD)
	@mkdir -p $(BUILD)/pkcs11
	sed -e 's|@PKCS11DIR@|$(PKCS11DIR)|' pkcs11/signgate.module \
	    >$(BUILD)/pkcs11/signgate.module
	@grep -q '^module: $(PKCS11DIR)/libsigngate-pkcs11.so$$' \
	    $(BUILD)/pkcs11/signgate.module || { echo "install-pkcs11:" \
	    "module: was not rewritten; check pkcs11/signgate.module" >&2; exit 1; }
	install -d $(DESTDIR)$(PKCS11DIR) $(DESTDIR)$(P11KIT_MODULEDIR)
	install -m 0644 $(P11MOD) $(DESTDIR)$(PKCS11DIR)/libsigngate-pkcs11.so
	install -m 0644 $(BUILD)/pkcs11/signgate.module \
	    $(DESTDIR)$(P11KIT_MODULEDIR)/signgate.module

-include $(P11MOD_OBJS:.o=.d) $(P11MOD_REUSE_OBJS:.o=.d)
