# Installation of the systemd integration and the documentation, on top of
# the main Makefile's `install` (programs and example configuration).
#
#   make install [PREFIX=/usr/local] [DESTDIR=] [SYSCONFDIR=/etc]
#   make install-systemd   the units, sysusers.d and tmpfiles.d files only
#   make install-doc       README.md, OPERATIONS.md, the policy reference,
#                          the log monitor's example units (examples/)
#
# systemd/signgated.service (the front) and signgated-signer.service (the
# signer) are written for PREFIX=/usr and SYSCONFDIR=/etc; the installed
# copies are rewritten with sed so that ExecStart=, the credential path and
# Documentation= name where this install puts things.
# The sed only touches the lines it expects and the result is checked, so a
# template edit that breaks the substitution fails the install instead of
# installing a unit that points at a missing program.
#
# Directories systemd searches for each kind of file, under PREFIX
# (/usr/local/lib/… and /usr/lib/… are both on systemd's search paths).

UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
DOCDIR ?= $(PREFIX)/share/doc/signgate

SG_UNIT_SED = \
	-e 's|^ExecStart=/usr/sbin/signgated |ExecStart=$(SBINDIR)/signgated |' \
	-e 's|^Documentation=file:///usr/share/doc/signgate/|Documentation=file://$(DOCDIR)/|' \
	-e 's| /etc/signgate/| $(SYSCONFDIR)/signgate/|g' \
	-e 's|:/etc/signgate/|:$(SYSCONFDIR)/signgate/|g'
SG_TMPFILES_SED = -e 's|^d /etc/signgate|d $(SYSCONFDIR)/signgate|'

.PHONY: install-systemd install-doc
install: install-systemd install-doc

install-systemd:
	@mkdir -p $(BUILD)/systemd
	sed $(SG_UNIT_SED) systemd/signgated.service >$(BUILD)/systemd/signgated.service
	@grep -q '^ExecStart=$(SBINDIR)/signgated -c $(SYSCONFDIR)/signgate/signgated.json$$' \
	    $(BUILD)/systemd/signgated.service || { echo "install-systemd:" \
	    "ExecStart= was not rewritten; check systemd/signgated.service" >&2; exit 1; }
	sed $(SG_UNIT_SED) systemd/signgated-signer.service >$(BUILD)/systemd/signgated-signer.service
	@grep -q '^ExecStart=$(SBINDIR)/signgated --signer -c $(SYSCONFDIR)/signgate/signgated.json$$' \
	    $(BUILD)/systemd/signgated-signer.service || { echo "install-systemd:" \
	    "ExecStart= was not rewritten; check systemd/signgated-signer.service" >&2; exit 1; }
	sed $(SG_TMPFILES_SED) systemd/signgate.tmpfiles >$(BUILD)/systemd/signgate.tmpfiles
	sed -e 's|^ExecStart=/usr/sbin/signgate-witness |ExecStart=$(SBINDIR)/signgate-witness |' \
	    -e 's|^Documentation=file:///usr/share/doc/signgate/|Documentation=file://$(DOCDIR)/|' \
	    -e 's| /etc/signgate-witness/| $(SYSCONFDIR)/signgate-witness/|g' \
	    systemd/signgate-witness.service >$(BUILD)/systemd/signgate-witness.service
	@grep -q '^ExecStart=$(SBINDIR)/signgate-witness --config $(SYSCONFDIR)/signgate-witness/witness.json$$' \
	    $(BUILD)/systemd/signgate-witness.service || { echo "install-systemd:" \
	    "ExecStart= was not rewritten; check systemd/signgate-witness.service" >&2; exit 1; }
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR)
	install -m 0644 $(BUILD)/systemd/signgated.service $(DESTDIR)$(UNITDIR)/signgated.service
	install -m 0644 $(BUILD)/systemd/signgated-signer.service $(DESTDIR)$(UNITDIR)/signgated-signer.service
	install -m 0644 systemd/signgate.sysusers $(DESTDIR)$(SYSUSERSDIR)/signgate.conf
	install -m 0644 $(BUILD)/systemd/signgate-witness.service $(DESTDIR)$(UNITDIR)/signgate-witness.service
	install -m 0644 systemd/signgate-witness.sysusers $(DESTDIR)$(SYSUSERSDIR)/signgate-witness.conf
	install -m 0644 $(BUILD)/systemd/signgate.tmpfiles $(DESTDIR)$(TMPFILESDIR)/signgate.conf

install-doc:
	install -d $(DESTDIR)$(DOCDIR)/policy
	install -m 0644 README.md docs/OPERATIONS.md $(DESTDIR)$(DOCDIR)/
	install -m 0644 policy/README.md $(DESTDIR)$(DOCDIR)/policy/README.md
	install -d $(DESTDIR)$(DOCDIR)/examples
	install -m 0644 systemd/signgate-log-monitor.service \
	    systemd/signgate-log-monitor.timer $(DESTDIR)$(DOCDIR)/examples/
