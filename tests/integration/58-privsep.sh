# Privilege separation: the signer process refuses forged and malformed
# messages (tools/signer_forge plays a compromised front against a signer
# of its own), and in a real daemon the front never loads the PKCS#11
# module nor touches a PIN, the signer's memory is closed to the front's
# user, and a dead signer makes signing answer 503 while reads go on.
#
# The daemon runs as nobody here, on private copies of the dev files, so
# that "not dumpable" can be seen: as root every /proc file is readable.
. "$(dirname "$0")/lib.sh"

# --- forged and malformed messages -----------------------------------------
write_config
"$BUILD/tools/signer_forge" "$T_DIR/signgated.json" "$DEV" \
    >"$T_DIR/forge.out" 2>&1
forge_rc=$?
while IFS= read -r line; do
	case "$line" in
	"ok - "*) ok "signer: ${line#ok - }" ;;
	"not ok - "*) not_ok "signer: ${line#not ok - }" ;;
	[0-9]*" passed, "*" failed") ;;
	*) echo "    $line" ;;
	esac
done <"$T_DIR/forge.out"
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$T_DIR/forge.out" | tail -n 1)
check "signer_forge ran to its summary (exit $forge_rc: ${summary:-none})" \
    test -n "$summary"
check "signer_forge: no sanitizer report" \
    bash -c "! grep -q 'Sanitizer\|runtime error:' '$T_DIR/forge.out'"
rm -f "$T_DIR/signgated.json"

# --- the daemon, as an unprivileged user -----------------------------------
U="$T_DIR/u"
# The signer's record of the log (signer_state_dir) is the signer's own.
mkdir -p "$U/tls" "$U/pins" "$U/codesign" "$T_DIR/state" "$T_DIR/state-hsm"
cp "$DEV/tls/server.pem" "$DEV/tls/server.key" "$DEV/tls/ca.pem" "$U/tls/"
cp "$DEV/pins/signgate-dev.pin" "$U/pins/"
cp "$DEV"/codesign/*.chain.pem "$U/codesign/"
cp -a "$DEV/tokens" "$U/tokens"
sed "s#^directories.tokendir.*#directories.tokendir = $U/tokens#" \
    "$DEV/softhsm2.conf" >"$U/softhsm2.conf"
sed "s#^\(    certificate \)\(.*/\)\{0,1\}\([^/]*\.chain\.pem\)\$#\1$U/codesign/\3#" \
    "$DEV/policy.conf" >"$U/policy.conf"
chown -R nobody "$U" "$T_DIR/state" "$T_DIR/state-hsm"
chmod 0711 "$T_DIR"
check "the private policy differs only in its certificate paths" bash -c \
    "diff <(grep -v '^    certificate ' '$DEV/policy.conf') \
        <(grep -v '^    certificate ' '$U/policy.conf') &&
     ! grep '^    certificate ' '$U/policy.conf' | grep -v ' $U/codesign/'"
cat >"$T_DIR/signgated-as-nobody" <<EOF
#!/bin/sh
exec setpriv --reuid=nobody --regid=nogroup --clear-groups "$SIGNGATED" "\$@"
EOF
chmod 0755 "$T_DIR/signgated-as-nobody"
export SOFTHSM2_CONF="$U/softhsm2.conf"
write_config ".tls.certificate = \"$U/tls/server.pem\" |
    .tls.private_key = \"$U/tls/server.key\" |
    .tls.client_ca = \"$U/tls/ca.pem\" |
    .pkcs11.tokens[0].pin_file = \"$U/pins/signgate-dev.pin\" |
    .policy = \"$U/policy.conf\""
SIGNGATED="$T_DIR/signgated-as-nobody" start_daemon ||
    { not_ok "signgated starts as nobody"; finish; exit 1; }
P=$DAEMON_PID

children() { ps -o pid= --ppid "$1" | tr -d ' '; }
C=$(children "$P")
expect_eq "signgated has exactly one child process" \
    "$(printf '%s\n' $C | grep -c .)" 1
C=$(printf '%s\n' $C | head -n 1)
expect_eq "the child is signgated's signer (Name)" \
    "$(sed -n 's/^Name:[[:space:]]*//p' "/proc/$C/status")" signgated
expect_eq "the front runs as nobody" "$(stat -c %U "/proc/$P")" nobody
check "the signer loaded the PKCS#11 module" \
    grep -q libsofthsm2.so "/proc/$C/maps"
check "the front never loads the PKCS#11 module" \
    bash -c "! grep -q libsofthsm2 '/proc/$P/maps'"
expect_eq "the front holds no descriptor on the PIN file" \
    "$(ls -l "/proc/$P/fd" | grep -c pins)" 0
expect_eq "the signer keeps no descriptor on the PIN file" \
    "$(ls -l "/proc/$C/fd" | grep -c pins)" 0
expect_eq "the front holds no descriptor on the token store" \
    "$(ls -l "/proc/$P/fd" | grep -c "$U/tokens")" 0

# Not dumpable: the kernel gives its /proc files to root, and the front's
# own user cannot read its memory map or environment.
expect_eq "the front's /proc files belong to nobody (control)" \
    "$(stat -c %U "/proc/$P/environ")" nobody
expect_eq "the signer's /proc files belong to root (not dumpable)" \
    "$(stat -c %U "/proc/$C/environ")" root
AS_NOBODY="setpriv --reuid=nobody --regid=nogroup --clear-groups"
check "as nobody, the front's maps are readable (control)" \
    $AS_NOBODY grep -q signgated "/proc/$P/maps"
check "as nobody, the signer's maps are not" \
    bash -c "! $AS_NOBODY cat '/proc/$C/maps' >/dev/null 2>&1"
check "as nobody, the signer's environ is not" \
    bash -c "! $AS_NOBODY cat '/proc/$C/environ' >/dev/null 2>&1"

# The PIN is nowhere in the front's memory (readable mappings up to
# 64 MiB each; the sanitizer's reserved ranges are larger and skipped).
cat >"$T_DIR/memscan.py" <<'EOF'
import re, sys
pid, needle = sys.argv[1], open(sys.argv[2], 'rb').read().strip()
hits = scanned = 0
with open('/proc/%s/maps' % pid) as maps, \
        open('/proc/%s/mem' % pid, 'rb', 0) as mem:
    for line in maps:
        m = re.match(r'([0-9a-f]+)-([0-9a-f]+) r', line)
        if not m:
            continue
        lo, hi = int(m.group(1), 16), int(m.group(2), 16)
        if hi - lo > 64 << 20 or '[vvar' in line or '[vsyscall' in line:
            continue
        try:
            mem.seek(lo)
            buf = mem.read(hi - lo)
        except (OSError, ValueError, OverflowError):
            continue
        scanned += len(buf)
        hits += buf.count(needle)
print(hits, scanned >> 20)
EOF
printf '%s\n' "$U/policy.conf" >"$T_DIR/needle"
read -r hits mib < <(python3 "$T_DIR/memscan.py" "$P" "$T_DIR/needle")
check "the scan finds the policy path in the front's memory (control)" \
    test "${hits:-0}" -gt 0
read -r hits mib < <(python3 "$T_DIR/memscan.py" "$P" "$DEV/pins/signgate-dev.pin")
expect_eq "the PIN is nowhere in the front's memory ($mib MiB scanned)" \
    "$hits" 0

# --- a dead signer -----------------------------------------------------------
H1=$(printf 'd%.0s' $(seq 64)); H2=$(printf 'e%.0s' $(seq 64))
expect_eq "with the signer alive, nightly is signed (201)" \
    "$(new_request ci nightly "$H1")" 201
kill -KILL "$C"
for i in $(seq 1 100); do
	[ -z "$(children "$P")" ] && break
	[ "$(ps -o stat= -p "$C" | cut -c1)" = Z ] && break
	sleep 0.05
done
expect_eq "with the signer killed, signing answers 503" \
    "$(new_request ci nightly "$H2")" 503
check "... with no signature in the answer" \
    bash -c "! grep -q '\"signature\"' '$T_DIR/body'"
check "... saying the signer is unavailable" \
    bash -c "jq -r .detail '$T_DIR/body' | grep -q 'signer process is unavailable'"
expect_eq "again: 503, not a hang nor a crash" \
    "$(new_request ci nightly "$H2")" 503
check "the front is still running" kill -0 "$P"
expect_eq "GET /v1/keys still works (200)" "$(api ci GET /v1/keys)" 200
check "... and lists the keys" \
    bash -c "jq -e '.keys | length >= 4' '$T_DIR/body' >/dev/null"
expect_eq "/readyz says 503" "$(api - GET /readyz)" 503
api audit GET '/v1/requests?limit=200' >/dev/null
expect_eq "only the request signed before the kill is recorded" \
    "$(jq -r '[.requests[] | select(.state == "signed")] | length' "$T_DIR/body")" 1
check "the front logged that the signer is gone" \
    grep -q 'the signer process is gone' "$T_DIR/daemon.log"
finish
