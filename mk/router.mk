# The API's router without the daemon behind it: the unit test
# (tests/unit/test_api.c) and the fuzz harness (tests/fuzz/fuzz_api.c)
# link the API's objects (API_OBJ_NAMES: api.o and its handlers' files)
# with a stand-in for the service (tests/unit/api_stub_service.c, which
# also stands in for the front's clock and the store's destructors) and
# the core library, instead of the daemon library, whose real service
# would clash with the stand-in.  A new daemon function that the API
# calls must be added to the stand-in, or these links fail.  (This file
# sorts after fuzz.mk, whose variables the fuzz rule uses.)

API_STUB_SRC = tests/unit/api_stub_service.c
API_STUB_DEPS = $(API_STUB_SRC) tests/unit/api_stub_service.h
API_OBJ_NAMES = api api_requests api_log api_ops api_release api_tiles api_policy
API_OBJS = $(API_OBJ_NAMES:%=$(BUILD)/obj/%.o)
FUZZ_API_OBJS = $(API_OBJ_NAMES:%=$(FUZZ_BUILD)/obj/%.o)

$(BUILD)/tests/test_api: tests/unit/test_api.c $(API_STUB_DEPS) \
    $(API_OBJS) $(CORE_LIB) tests/unit/sg_test.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit $(LDFLAGS_ALL) -o $@ $< \
	    $(API_STUB_SRC) $(API_OBJS) $(CORE_LIB) $(LIBS)

FUZZ_CORE_OBJS = $(CORE_SRCS:src/%.c=$(FUZZ_BUILD)/obj/%.o)

$(FUZZ_BUILD)/libsgcore.a: $(FUZZ_CORE_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_api: tests/fuzz/fuzz_api.c $(API_STUB_DEPS) \
    $(FUZZ_API_OBJS) $(FUZZ_BUILD)/libsgcore.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Itests/unit -fsanitize=fuzzer -o $@ $< \
	    $(API_STUB_SRC) $(FUZZ_API_OBJS) \
	    $(FUZZ_BUILD)/libsgcore.a $(LIBS)
