# No policy key may reach the transparency log's key.  A key with no
# `require` on the log key's HSM object would let `ci` ask for a raw
# Ed25519 signature over checkpoint text: a checkpoint for a tree that
# never existed.  Such a policy is refused at start and at SIGHUP reload,
# with an error naming the key, whichever way the key is named: its label,
# its CKA_ID, an RFC 7512 URI (by label or id), or another label on the
# same key pair (a copy of the log key's objects made with C_CopyObject on
# a private copy of the dev token).  The attack itself is tried first
# against the running daemon: the key is not there, nothing is signed.
. "$(dirname "$0")/lib.sh"

# A private copy of the token, with a second name for the log key pair.
private_tokens "$T_DIR"
export SOFTHSM2_CONF="$T_DIR/softhsm2.conf"
LOG_TOKEN=$(jq -r .log.token "$DEV/signgated.json")
LOG_LABEL=$(jq -r .log.key "$DEV/signgated.json")
LOG_ID=10   # scripts/devenv.sh: genkey log 10 EC:edwards25519
check "the log key pair gets a second label on the private token (C_CopyObject)" \
    as_signer "$BUILD/tools/p11copy" "$(jq -r .pkcs11.module "$DEV/signgated.json")" \
    "$LOG_TOKEN" "$DEV/pins/$LOG_TOKEN.pin" "$LOG_LABEL" logtwin 7e

VERSION=$(sed -n 's/^version //p' "$DEV/policy.conf")
# policy_with WHERE...: the dev policy, version raised, plus key x located
# by the given lines (one argument per line).
policy_with() {
	local line
	sed "s/^version $VERSION\$/version $((VERSION + 1))/" "$DEV/policy.conf"
	printf '\nkey x\n'
	for line in "$@"; do printf '    %s\n' "$line"; done
	printf '    algorithm ed25519\n    formats raw\n    requesters ci\n'
	printf '    countries CH\nend\n'
}

VARIANTS="label id uri uri-id twin"
write_variant() {
	case $1 in
	label)	policy_with "token $LOG_TOKEN" "object $LOG_LABEL" ;;
	id)	policy_with "token $LOG_TOKEN" "id $LOG_ID" ;;
	uri)	policy_with "uri pkcs11:token=$LOG_TOKEN;object=$LOG_LABEL;type=private" ;;
	uri-id)	policy_with "uri pkcs11:token=$LOG_TOKEN;id=%$LOG_ID" ;;
	twin)	policy_with "token $LOG_TOKEN" "object logtwin" ;;
	esac >"$T_DIR/policy.conf"
}

# --- control: the daemon runs on the private token -------------------------
cp "$DEV/policy.conf" "$T_DIR/policy.conf"
write_config ".policy = \"$T_DIR/policy.conf\""
start_daemon || { not_ok "the daemon starts on the private token copy"; finish; exit 1; }
ok "the daemon starts on the private token copy with the dev policy"
H=$(printf 'a%.0s' $(seq 64))
# The attack, as `ci` would make it: key x does not exist.
expect_eq "a request on key x is refused (404)" "$(new_request ci x "$H")" 404
check "... and carries no signature" bash -c "! grep -q signature '$T_DIR/body'"

# --- SIGHUP: each variant is refused, naming the key -----------------------
hups=0
for v in $VARIANTS; do
	write_variant "$v"
	kill -HUP "$DAEMON_PID"
	hups=$((hups + 1))
	for i in $(seq 1 100); do
		[ "$(grep -c 'SIGHUP' "$T_DIR/daemon.log")" -ge "$hups" ] && break
		sleep 0.05
	done
	line=$(grep 'SIGHUP' "$T_DIR/daemon.log" | tail -n 1)
	case $line in
	*"policy not reloaded"*"key 'x'"*) ok "reload: key x $v is refused, naming the key (${line#*: })" ;;
	*) not_ok "reload: key x $v is refused, naming the key: got '$line'" ;;
	esac
done
# Moving an existing key onto the log key is refused too.
sed -e "s/^version $VERSION\$/version $((VERSION + 1))/" \
    -e '/^key nightly$/,/^end$/s/^    object nightly$/    object '"$LOG_LABEL"'/' \
    "$DEV/policy.conf" >"$T_DIR/policy.conf"
kill -HUP "$DAEMON_PID"; hups=$((hups + 1))
for i in $(seq 1 100); do
	[ "$(grep -c 'SIGHUP' "$T_DIR/daemon.log")" -ge "$hups" ] && break
	sleep 0.05
done
line=$(grep 'SIGHUP' "$T_DIR/daemon.log" | tail -n 1)
case $line in
*"policy not reloaded"*"key 'nightly'"*"transparency log"*) ok "reload: nightly moved onto the log key is refused (${line#*: })" ;;
*) not_ok "reload: nightly moved onto the log key is refused: got '$line'" ;;
esac
expect_eq "after the refusals, key x still does not exist (404)" "$(new_request ci x "$H")" 404
expect_eq "... and nightly still signs (201)" "$(new_request ci nightly "$H")" 201
# The control: a valid new version is taken.
sed "s/^version $VERSION\$/version $((VERSION + 1))/" "$DEV/policy.conf" >"$T_DIR/policy.conf"
kill -HUP "$DAEMON_PID"; hups=$((hups + 1))
for i in $(seq 1 100); do
	[ "$(grep -c 'SIGHUP' "$T_DIR/daemon.log")" -ge "$hups" ] && break
	sleep 0.05
done
check "control: a valid new version is reloaded" \
    grep -q "SIGHUP: policy .* version $((VERSION + 1)) in force" "$T_DIR/daemon.log"
stop_daemon

# --- start: each variant is refused, naming the key ------------------------
for v in $VARIANTS; do
	write_variant "$v"
	if start_daemon >"$T_DIR/start.out" 2>&1; then
		not_ok "start: key x $v is refused: the daemon started"
		expect_eq "start ($v): key x signs nothing" "$(new_request ci x "$H")" 404
		stop_daemon
		continue
	fi
	DAEMON_PID=
	err=$(grep '^signgated: ' "$T_DIR/daemon.log" | tail -n 1)
	case $err in
	*"key 'x'"*"transparency log"*) ok "start: key x $v is refused, naming the key (${err#signgated: })" ;;
	*) not_ok "start: key x $v is refused, naming the key: got '$err'" ;;
	esac
done

# The control for the start checks: an Ed25519 key that is not the log's.
policy_with "token $LOG_TOKEN" "object unrelated-ed25519" >"$T_DIR/policy.conf"
start_daemon >"$T_DIR/start.out" 2>&1 ||
    { not_ok "control: key x on another Ed25519 key starts"; cat "$T_DIR/start.out"; finish; exit 1; }
ok "control: key x on another Ed25519 key starts"
expect_eq "control: key x (no approval) signs at once (201)" "$(new_request ci x "$H")" 201
finish
