# The officers' console: its page (console/) is embedded into signgated at
# build time, as C arrays written by scripts/embed-assets.sh (od and awk;
# nothing to build for the host, no xxd).
CONSOLE_ASSETS = console/index.html console/console.js console/console.css
CONSOLE_GEN = $(BUILD)/gen/console_assets.c

$(CONSOLE_GEN): $(CONSOLE_ASSETS) scripts/embed-assets.sh
	@mkdir -p $(dir $@)
	scripts/embed-assets.sh $(CONSOLE_ASSETS) >$@.tmp
	mv $@.tmp $@

$(BUILD)/obj/console_assets.o: $(CONSOLE_GEN)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(DAEMON_LIB): $(BUILD)/obj/console_assets.o
