# Two users: the front and the signer must not share a uid, or code running
# in the front reads the PIN and signs anything through the module, with no
# quorum and no log entry.
#
# Run as root (as CI and `make test` by root do), the daemon starts as
# root over the development environment and must drop: the front (the
# daemon's pid) to users.front, the signer (its child) to users.signer,
# all four ids of each, no capability in any set, no new privileges.  Then
# the attack is played as the front's user (setpriv): reading the PIN
# file, softhsm2.conf and the token files, the signer's environment and
# memory, and signing with `release` through the module with pkcs11-tool
# and the right PIN, must all fail, while the same reads and the same
# pkcs11-tool command as the signer's user succeed (the controls).  Then:
# an unknown users.front, a uid 0 users.signer, a signer_state_dir below a
# directory the front's user owns (from where root's chown could be
# redirected), a symbolic link as state_dir, and a front-owned file in
# signer_state_dir each stop the start with the reason; a start as another
# user says it is a development setting.  Last, the two-unit layout: the
# signer started on its own (--signer) and the front connecting to its
# socket, each dropping to its user, the signer closing connections from
# any uid but the front's, and the front refusing a socket served by any
# uid but the signer's.
#
# Not run as root, the daemon runs as the caller and the test checks that
# it says, once, that this is a development setting.
. "$(dirname "$0")/lib.sh"

H=$(printf 'a%.0s' $(seq 64))
# The system's python: the daemon's users cannot reach a per-user one.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
children() { ps -o pid= --ppid "$1" | tr -d ' '; }
# status PID FIELD: the values of a /proc/PID/status line, blank-separated.
status() {
	sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" | tr -s ' \t' '  ' |
	    sed 's/ *$//'
}

if [ "$(id -u)" -ne 0 ]; then
	me=$(id -u)
	start_daemon || { not_ok "daemon starts"; finish; exit 1; }
	check "as uid $me the daemon says it is a development setting" \
	    grep -q "development setting: the front and the signer both run as uid $me" \
	    "$T_DIR/daemon.log"
	expect_eq "... once" "$(grep -c 'development setting' "$T_DIR/daemon.log")" 1
	C=$(children "$DAEMON_PID" | head -n 1)
	expect_eq "the front runs as the caller" "$(status "$DAEMON_PID" Uid)" \
	    "$me $me $me $me"
	expect_eq "the signer runs as the caller" "$(status "$C" Uid)" \
	    "$me $me $me $me"
	expect_eq "signing works (201)" "$(new_request ci nightly "$H")" 201
	finish
	exit
fi

FU=$FRONT_USER SU=$SIGNER_USER
check "users.front $FU exists (scripts/devenv.sh makes it)" id -u "$FU"
check "users.signer $SU exists" id -u "$SU"
fuid=$(id -u "$FU") fgid=$(id -g "$FU") suid=$(id -u "$SU") sgid=$(id -g "$SU")
AS_FRONT=(setpriv --reuid="$FU" --regid="$FU" --clear-groups)
AS_SIGNER=(setpriv --reuid="$SU" --regid="$SU" --clear-groups)
as_front() { "${AS_FRONT[@]}" "$@"; }
as_signer() { "${AS_SIGNER[@]}" "$@"; }
not() { ! "$@"; }

# creds NAME PID UID GID: the four ids, the groups, no capabilities, no
# new privileges.
creds() {
	local name=$1 pid=$2 uid=$3 gid=$4 set
	expect_eq "$name: Uid real, effective, saved, fs" \
	    "$(status "$pid" Uid)" "$uid $uid $uid $uid"
	expect_eq "$name: Gid real, effective, saved, fs" \
	    "$(status "$pid" Gid)" "$gid $gid $gid $gid"
	expect_eq "$name: supplementary groups" "$(status "$pid" Groups)" "$gid"
	for set in CapPrm CapEff CapAmb CapInh; do
		expect_eq "$name: $set empty" "$(status "$pid" "$set")" \
		    0000000000000000
	done
	expect_eq "$name: NoNewPrivs" "$(status "$pid" NoNewPrivs)" 1
}

# --- the forked signer -------------------------------------------------------
start_daemon || { not_ok "daemon starts as root"; finish; exit 1; }
P=$DAEMON_PID
C=$(children "$P")
expect_eq "signgated has one child, the signer" \
    "$(printf '%s\n' $C | grep -c .)" 1
C=$(printf '%s\n' $C | head -n 1)
creds "front (pid $P) runs as $FU" "$P" "$fuid" "$fgid"
creds "signer (pid $C) runs as $SU" "$C" "$suid" "$sgid"
check "started as root: no development-setting line" \
    not grep -q 'development setting' "$T_DIR/daemon.log"
expect_eq "state_dir was given to $FU, 0700" \
    "$(stat -c '%U %a' "$T_DIR/state")" "$FU 700"
expect_eq "signer_state_dir was made for $SU, 0700" \
    "$(stat -c '%U %a' "$T_DIR/state-hsm")" "$SU 700"
expect_eq "control: the daemon signs (201)" "$(new_request ci nightly "$H")" 201

# --- the attack, as the front's user ----------------------------------------
PIN="$DEV/pins/signgate-dev.pin"
TOKF=$(find "$DEV/tokens" -type f -name '*.object' | head -n 1)
check "control: $SU reads the PIN file" as_signer cat "$PIN"
check "$FU cannot read the PIN file" not as_front cat "$PIN"
check "control: $SU reads softhsm2.conf" as_signer cat "$SOFTHSM2_CONF"
check "$FU cannot read softhsm2.conf" not as_front cat "$SOFTHSM2_CONF"
check "control: $SU reads a token file" as_signer cat "$TOKF"
check "$FU cannot read a token file" not as_front cat "$TOKF"
check "$FU cannot list the token directory" not as_front ls "$DEV/tokens"
check "control: $FU reads the front's own environment" \
    as_front cat "/proc/$P/environ"
check "$FU cannot read the signer's environment" \
    not as_front cat "/proc/$C/environ"
check "control: $FU opens the front's own memory" \
    as_front "$PY" -c "open('/proc/$P/mem', 'rb')"
check "$FU cannot open the signer's memory" \
    not as_front "$PY" -c "open('/proc/$C/mem', 'rb')"

# Signing with release (id 01; it needs three approvals) straight through
# the module, with the right PIN (read here by root; throwaway dev PIN on
# argv, as pkcs11-tool wants it).
printf 'not approved by anyone\n' | openssl dgst -sha256 -binary >"$T_DIR/digest"
p11sign() {	# CONF OUT as-command...
	local conf=$1 out=$2
	shift 2
	SOFTHSM2_CONF="$conf" "$@" pkcs11-tool \
	    --module /usr/lib/softhsm/libsofthsm2.so --token-label signgate-dev \
	    --login --pin "$(cat "$PIN")" --sign -m ECDSA --id 01 \
	    -i "$T_DIR/digest" >"$out" 2>"$out.err"
}
check "control: $SU signs with release through the module" \
    p11sign "$SOFTHSM2_CONF" "$T_DIR/sig.signer" "${AS_SIGNER[@]}"
expect_eq "... a 64-byte P-256 signature" "$(stat -c %s "$T_DIR/sig.signer")" 64
check "$FU cannot sign with release through the module" \
    not p11sign "$SOFTHSM2_CONF" "$T_DIR/sig.front" "${AS_FRONT[@]}"
# With a SoftHSM configuration of its own naming the token directory.
printf 'directories.tokendir = %s\nobjectstore.backend = file\n' \
    "$DEV/tokens" >"$T_DIR/front-softhsm2.conf"
check "... nor with a softhsm2.conf of its own" \
    not p11sign "$T_DIR/front-softhsm2.conf" "$T_DIR/sig.front2" "${AS_FRONT[@]}"
expect_eq "... and no signature came out" \
    "$(cat "$T_DIR/sig.front" "$T_DIR/sig.front2" | wc -c)" 0
stop_daemon

# --- starts that must be refused ---------------------------------------------
# refused NAME WANT [jq filter]: signgated exits non-zero, saying WANT.
refused() {
	local name=$1 want=$2
	rm -f "$T_DIR/signgated.json"
	write_config "${3:-.}"
	timeout 60 "$SIGNGATED" -c "$T_DIR/signgated.json" -p 0 \
	    >"$T_DIR/refused.log" 2>&1
	local rc=$?
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] &&
	    grep -q -- "$want" "$T_DIR/refused.log"; then
		ok "$name"
	else
		not_ok "$name (exit $rc)"
		sed 's/^/    /' "$T_DIR/refused.log" | head -n 5
	fi
}
refused "an unknown users.front stops the start, naming users.front" \
    "users.front: no such user 'no-such-sg-user'" \
    '.users = {"front": "no-such-sg-user"}'
refused "a users.signer of uid 0 stops the start" \
    "users.signer: 'root' is uid 0" '.users = {"signer": "root"}'
mkdir -p "$T_DIR/fronts"
chown "$FU:$FU" "$T_DIR/fronts"
refused "a signer_state_dir below a directory $FU owns is refused" \
    "signer_state_dir: $T_DIR/fronts belongs to uid $fuid" \
    ".signer_state_dir = \"$T_DIR/fronts/hsm\""
check "... and root did not create it there" test ! -e "$T_DIR/fronts/hsm"
mkdir -p "$T_DIR/elsewhere"
rm -rf "$T_DIR/state"
ln -s "$T_DIR/elsewhere" "$T_DIR/state.link"
refused "a symbolic link as state_dir is refused" \
    "state_dir: $T_DIR/state.link: not a directory (a symbolic link is refused)" \
    ".state_dir = \"$T_DIR/state.link\""
expect_eq "... and its target was not given away" \
    "$(stat -c %U "$T_DIR/elsewhere")" root
mkdir -p "$T_DIR/state-hsm"
touch "$T_DIR/state-hsm/planted"
chown "$FU:$FU" "$T_DIR/state-hsm/planted"
refused "a file of $FU in signer_state_dir is refused" \
    "signer_state_dir: $T_DIR/state-hsm/planted belongs to uid $fuid, not $SU"
rm -f "$T_DIR/state-hsm/planted" "$T_DIR/signgated.json"
write_config
timeout 60 setpriv --reuid=nobody --regid=nogroup --clear-groups \
    "$SIGNGATED" -c "$T_DIR/signgated.json" -p 0 >"$T_DIR/nobody.log" 2>&1
check "started as nobody: a development setting, said once" \
    test "$(grep -c 'development setting: the front and the signer both run as uid' \
    "$T_DIR/nobody.log")" = 1

# --- the two units' layout: the signer on its own -------------------------------
rm -rf "$T_DIR/state" "$T_DIR/state-hsm" "$T_DIR/signgated.json"
mkdir -p "$T_DIR/run"
chown "$SU:$SU" "$T_DIR/run"
SOCK="$T_DIR/run/signer.sock"
write_config ".signer_socket = \"$SOCK\""
start_signer || { not_ok "signgated --signer starts as root"; finish; exit 1; }
S=$SIGNER_PID
creds "signer on its own (pid $S) runs as $SU" "$S" "$suid" "$sgid"
start_daemon || { not_ok "the front starts on the signer's socket"; finish; exit 1; }
P=$DAEMON_PID
creds "front on the socket (pid $P) runs as $FU" "$P" "$fuid" "$fgid"
expect_eq "the front forks no signer" "$(children "$P" | grep -c .)" 0
expect_eq "signing through the socket works (201)" \
    "$(new_request ci nightly "$(printf 'b%.0s' $(seq 64))")" 201
cat >"$T_DIR/probe.py" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.settimeout(10)
s.connect(sys.argv[1])
try:
    m = s.recv(65536)
except ConnectionResetError:
    m = b''
print('answered' if m else 'closed')
EOF
expect_eq "control: a connection from $FU gets the signer's READY" \
    "$(as_front "$PY" "$T_DIR/probe.py" "$SOCK")" answered
expect_eq "a connection from root is closed unanswered" \
    "$("$PY" "$T_DIR/probe.py" "$SOCK")" closed
expect_eq "a connection from nobody is closed unanswered" \
    "$(setpriv --reuid=nobody --regid=nogroup --clear-groups \
    "$PY" "$T_DIR/probe.py" "$SOCK")" closed
check "... and the signer says whom it refused" \
    grep -q "signer: refused a connection from uid 0 " "$T_DIR/signer.log"
stop_daemon
stop_signer

# An impostor on the socket (root here): the front must not talk to it.
cat >"$T_DIR/impostor.py" <<'EOF'
import os, socket, sys
path = sys.argv[1]
if os.path.exists(path):
    os.unlink(path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind(path)
os.chmod(path, 0o666)
s.listen(64)
open(sys.argv[2], 'w').close()
while True:
    c, _ = s.accept()
    try:
        c.send(b'\0' * 64)
    except OSError:
        pass
    c.close()
EOF
rm -f "$T_DIR/impostor.up"
"$PY" "$T_DIR/impostor.py" "$SOCK" "$T_DIR/impostor.up" &
IMP=$!
for _ in $(seq 1 200); do [ -e "$T_DIR/impostor.up" ] && break; sleep 0.05; done
timeout 60 "$SIGNGATED" -c "$T_DIR/signgated.json" -p 0 >"$T_DIR/imp.log" 2>&1
rc=$?
kill "$IMP" 2>/dev/null; wait "$IMP" 2>/dev/null
check "the front refuses a signer socket served by root (exit $rc)" \
    grep -q "served by uid 0, not by the signer's user (uid $suid)" "$T_DIR/imp.log"

finish
