#!/usr/bin/env bash
# `signgated -t`: checks a configuration and what it names (TLS material,
# policy, PKCS#11 module, tokens, PINs, keys) without starting anything.
# The dev configuration passes with a one-line summary and leaves every
# file as it was (no state directory made; in the token store, which the
# module itself rewrites at every login, no file made or given away), and
# needs no port (it passes while a daemon holds the configured one; under
# strace, when there is one, it makes no bind, listen, accept or
# socketpair call).  Each broken configuration fails with exit 1 and the
# problem named, every problem of a run listed: an unknown field, a
# missing TLS file, a client CA without a certificate, a private key that
# is not the certificate's, a policy with five problems (each with its
# file and line), a policy key whose object is not on the token (with the
# line of its block), a missing log key, a policy key that reaches the log
# key, a wrong PIN (never printed), three of those at once.  A PIN given as
# a systemd credential is "not checked" outside its unit and checked
# inside.  Then --help, --version (the Makefile's VERSION, for both
# programs), an unknown option and bad combinations (exit 2).
#
# Run as root (as CI runs): the token check runs as users.signer, so the
# files the token library makes during the check (SoftHSM's lock files)
# are never root's; unknown users stop the token check rather than run it
# as root; started as users.front, -t says so and reports what it cannot
# do; as another user (nobody, over a private copy) it is the development
# setting and passes.  Not run as root, the development setting is the
# caller's and the root-only part is skipped with a comment line.
. "$(dirname "$0")/lib.sh"

C="$T_DIR/cfg"
mkdir -p "$C"
POL="$DEV/policy.conf"
NEVER="$T_DIR/never"

# t_config NAME [jq filter]: $C/NAME.json, the dev configuration with
# absolute paths and a state directory that does not exist.
t_config() {
	jq --arg dev "$DEV" --arg state "$NEVER" '
	    .tls.certificate = ($dev + "/tls/server.pem") |
	    .tls.private_key = ($dev + "/tls/server.key") |
	    .tls.client_ca = ($dev + "/tls/ca.pem") |
	    .pkcs11.tokens |= map(.pin_file = ($dev + "/" + .pin_file)) |
	    .policy = ($dev + "/policy.conf") |
	    .state_dir = $state' "$DEV/signgated.json" | jq "${2:-.}" \
	    >"$C/$1.json"
}

# run_t CONFIG [command prefix...]: runs -t; stdout and stderr in $T_DIR/t.out
# and t.err; prints the exit status.
run_t() {
	local cfg=$1; shift
	"$@" "$SIGNGATED" -t -c "$cfg" >"$T_DIR/t.out" 2>"$T_DIR/t.err"
	echo $?
}

# listing: every file of the dev environment and of the test configs, with
# type, size, mode, owner, mtime and ctime; in the token store, which the
# PKCS#11 module itself rewrites at every load and login (SoftHSM's
# generation and token.object files, as at every start of the daemon),
# every file's name, type, mode and owner.
listing() {
	{
		find "$DEV" "$C" -path "$DEV/tokens/*" -prune -o \
		    -printf '%p %y %s %m %u %g %T@ %C@\n'
		find "$DEV/tokens" -printf '%p %y %m %u %g\n'
	} 2>&1 | sort
}

# --- the dev configuration ------------------------------------------------
t_config dev
listing >"$T_DIR/before"
expect_eq "-t on the dev configuration: exit 0" "$(run_t "$C/dev.json")" 0
check "... with the summary on stdout" grep -Eqx \
    "signgated: configuration OK: $C/dev.json \(policy signgate-dev@1, 4 keys, 1 token\)" \
    "$T_DIR/t.out"
if [ "$(id -u)" -eq 0 ]; then
	expect_eq "... and nothing on stderr" "$(cat "$T_DIR/t.err")" ""
else
	expect_eq "... and on stderr only the development setting line" \
	    "$(grep -vc 'development setting' "$T_DIR/t.err")" 0
fi
"$SIGNGATED" --check -c "$C/dev.json" >/dev/null 2>&1
expect_eq "--check is -t" "$?" 0
listing >"$T_DIR/after"
check "-t changed no file (listing before and after)" \
    diff "$T_DIR/before" "$T_DIR/after"
check "... made no state_dir" test ! -e "$NEVER"
check "... nor signer_state_dir" test ! -e "$NEVER-hsm"

# A daemon holds the configured port: -t does not need it.
start_daemon || { not_ok "the daemon starts"; finish; exit 1; }
t_config held ".listen.port = $PORT"
expect_eq "-t passes while a daemon holds the configured port" \
    "$(run_t "$C/held.json")" 0
stop_daemon
if ! command -v strace >/dev/null 2>&1; then
	echo "# skipped: no strace to list -t's system calls"
else
	# LeakSanitizer cannot run under ptrace (a sanitizer build).
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
	    strace -f -qq -e trace=bind,listen,socketpair,accept,accept4 \
	    -o "$T_DIR/strace" "$SIGNGATED" -t -c "$C/dev.json" >/dev/null 2>&1
	expect_eq "under strace -t passes" "$?" 0
	check "... and makes no bind, listen, accept or socketpair call" \
	    bash -c "! grep -E 'bind|listen|socketpair|accept' '$T_DIR/strace'"
fi

# --- broken configurations ------------------------------------------------
t_config unknown '.listen.frobnicate = 1'
expect_eq "an unknown field: exit 1" "$(run_t "$C/unknown.json")" 1
check "... named with the file" grep -q "^$C/unknown.json: .*frobnicate" \
    "$T_DIR/t.err"
check "... and counted" grep -qx "signgated: $C/unknown.json: 1 problem" \
    "$T_DIR/t.err"
check "... nothing on stdout" test ! -s "$T_DIR/t.out"

t_config notls ".tls.client_ca = \"$T_DIR/none.pem\""
expect_eq "a missing TLS file: exit 1" "$(run_t "$C/notls.json")" 1
check "... named" grep -qx "$C/notls.json: tls: client CA $T_DIR/none.pem: not found" \
    "$T_DIR/t.err"

printf 'not a certificate\n' >"$C/garbage.pem"
t_config noca ".tls.client_ca = \"$C/garbage.pem\""
expect_eq "a client CA without a certificate: exit 1" "$(run_t "$C/noca.json")" 1
check "... named" grep -qx "$C/noca.json: tls: client CA $C/garbage.pem: no certificate in it" \
    "$T_DIR/t.err"

cp "$DEV/tls/alice.key" "$C/other.key"
chmod 0644 "$C/other.key"
t_config mismatch ".tls.private_key = \"$C/other.key\""
expect_eq "a key that is not the certificate's: exit 1" \
    "$(run_t "$C/mismatch.json")" 1
check "... named" grep -q \
    "^$C/mismatch.json: tls: certificate $DEV/tls/server.pem with private key $C/other.key: .*do not match" \
    "$T_DIR/t.err"

# The five problems of 62-policy-tools.sh's broken policy.
{
	sed -n '1,/^version/p' "$POL"
	printf 'key k1\n    token t\n    bogus 1\nend\n'
	printf 'principal bad!name\n    roles officer\n    junk\nend\n'
	printf 'group empty\nend\n'
	printf 'frobnicate\n'
} >"$C/bad.policy"
t_config badpol ".policy = \"$C/bad.policy\""
expect_eq "a broken policy: exit 1" "$(run_t "$C/badpol.json")" 1
expect_eq "... five problems with file and line" \
    "$(grep -c "^$C/bad.policy:[0-9]*: " "$T_DIR/t.err")" 5
check "... the unknown keyword, at its line" grep -qx \
    "$C/bad.policy:$(grep -n bogus "$C/bad.policy" | cut -d: -f1): key 'k1': unknown keyword 'bogus'" \
    "$T_DIR/t.err"
check "... the stray line" grep -q "unknown keyword 'frobnicate'" "$T_DIR/t.err"
check "... and their count" grep -qx "signgated: $C/badpol.json: 5 problems" \
    "$T_DIR/t.err"

sed '/^key nightly/,/^end/s/^\( *object\) nightly$/\1 no-such-object/' \
    "$POL" >"$C/noobj.policy"
check "control: the policy names an object that is not there" \
    grep -q 'object no-such-object' "$C/noobj.policy"
t_config noobj ".policy = \"$C/noobj.policy\""
expect_eq "a policy key whose object is not on the token: exit 1" \
    "$(run_t "$C/noobj.json")" 1
line=$(grep -n '^key nightly$' "$C/noobj.policy" | cut -d: -f1)
check "... named, at its block's line" grep -qx \
    "$C/noobj.policy:$line: key 'nightly': token 'signgate-dev' has no private key labelled 'no-such-object'" \
    "$T_DIR/t.err"
expect_eq "... the only problem (the other keys were found)" \
    "$(grep -c "^$C/" "$T_DIR/t.err")" 1

t_config nolog '.log.key = "no-such-log-key"'
expect_eq "a missing log key: exit 1" "$(run_t "$C/nolog.json")" 1
check "... named" grep -qx \
    "$C/nolog.json: log.key: token 'signgate-dev' has no private key labelled 'no-such-log-key'" \
    "$T_DIR/t.err"

{
	cat "$POL"
	printf 'key logcopy\n    token signgate-dev\n    object log\n'
	printf '    algorithm ed25519\n    formats raw\n    requesters ci\n'
	printf '    veto no\n    lifetime 1h\n    countries CH\nend\n'
} >"$C/logkey.policy"
t_config logkey ".policy = \"$C/logkey.policy\""
expect_eq "a policy key that is the log key: exit 1" \
    "$(run_t "$C/logkey.json")" 1
line=$(grep -n '^key logcopy$' "$C/logkey.policy" | cut -d: -f1)
check "... named, at its block's line" grep -q \
    "^$C/logkey.policy:$line: key 'logcopy' is the transparency log's key" \
    "$T_DIR/t.err"

WRONG_PIN=wrong-pin-4711
printf '%s\n' "$WRONG_PIN" >"$C/wrong.pin"
chmod 0600 "$C/wrong.pin"
give_to_signer "$C/wrong.pin"
t_config wrongpin ".pkcs11.tokens[0].pin_file = \"$C/wrong.pin\""
expect_eq "a wrong PIN: exit 1" "$(run_t "$C/wrongpin.json")" 1
check "... named with its PIN file" grep -q \
    "^$C/wrongpin.json: pkcs11.tokens\[0\]: token 'signgate-dev' refused the PIN from $C/wrong.pin" \
    "$T_DIR/t.err"
expect_eq "... the only problem (its keys are not tried with it)" \
    "$(grep -c "^$C/" "$T_DIR/t.err")" 1
check "... the PIN is not printed" \
    bash -c "! grep -qF '$WRONG_PIN' '$T_DIR/t.out' '$T_DIR/t.err'"

# Every problem of a run, whatever its kind.
t_config several ".tls.client_ca = \"$T_DIR/none.pem\" |
    .policy = \"$C/noobj.policy\" | .log.key = \"no-such-log-key\""
expect_eq "three problems of three kinds: exit 1" \
    "$(run_t "$C/several.json")" 1
check "... all three listed" grep -qx "signgated: $C/several.json: 3 problems" \
    "$T_DIR/t.err"
expect_eq "... each on its line" "$(grep -c \
    -e ': tls: client CA' -e "key 'nightly': token" -e ': log.key: ' \
    "$T_DIR/t.err")" 3
check "... and no state directory was made by any of them" test ! -e "$NEVER"

# A PIN given as a systemd credential: outside the signer's unit the token
# cannot be checked, and the summary says so; with the credential there
# (as systemd gives it to the unit), it is.
t_config cred ".signer_socket = \"$T_DIR/signer.sock\" |
    .pkcs11.tokens[0] = {label: \"signgate-dev\", pin_credential: \"dev.pin\"}"
expect_eq "a credential PIN outside its unit: exit 0" \
    "$(unset CREDENTIALS_DIRECTORY; run_t "$C/cred.json")" 0
check "... the token said not checked" grep -q \
    "^$C/cred.json: not checked: pkcs11.tokens\[0\] 'signgate-dev': " \
    "$T_DIR/t.err"
check "... and the summary too" grep -q \
    '^signgated: configuration OK: .*1 token, 1 not checked)$' "$T_DIR/t.out"
mkdir -p "$T_DIR/creds"
printf 'wrong-pin-0815\n' >"$T_DIR/creds/dev.pin"
chmod 0600 "$T_DIR/creds/dev.pin"
give_to_signer "$T_DIR/creds"
expect_eq "a credential PIN inside its unit is checked: a wrong one, exit 1" \
    "$(CREDENTIALS_DIRECTORY="$T_DIR/creds" run_t "$C/cred.json")" 1
check "... named" grep -q "refused the PIN from $T_DIR/creds/dev.pin" \
    "$T_DIR/t.err"
cp "$DEV/pins/signgate-dev.pin" "$T_DIR/creds/dev.pin"
give_to_signer "$T_DIR/creds"
expect_eq "... the right one, exit 0" \
    "$(CREDENTIALS_DIRECTORY="$T_DIR/creds" run_t "$C/cred.json")" 0
check "... all checked" grep -q '^signgated: configuration OK: .*1 token)$' \
    "$T_DIR/t.out"

# --- options --------------------------------------------------------------
VERSION=$(sed -n 's/^VERSION = //p' "$SG_ROOT/Makefile")
check "control: the Makefile sets VERSION" test -n "$VERSION"
"$SIGNGATED" --help >"$T_DIR/o.out" 2>"$T_DIR/o.err"
expect_eq "--help: exit 0" "$?" 0
check "... usage on stdout, -t in it" grep -q -- '-t, --check' "$T_DIR/o.out"
check "... nothing on stderr" test ! -s "$T_DIR/o.err"
"$SIGNGATED" --version >"$T_DIR/o.out" 2>"$T_DIR/o.err"
expect_eq "--version: exit 0" "$?" 0
expect_eq "... prints signgated VERSION" "$(cat "$T_DIR/o.out")" \
    "signgated $VERSION"
"$SIGNGATE" --version >"$T_DIR/o.out" 2>"$T_DIR/o.err"
expect_eq "signgate --version: exit 0" "$?" 0
expect_eq "... prints signgate VERSION" "$(cat "$T_DIR/o.out")" \
    "signgate $VERSION"
"$SIGNGATED" --frobnicate -c "$C/dev.json" >"$T_DIR/o.out" 2>"$T_DIR/o.err"
expect_eq "an unknown option: exit 2" "$?" 2
check "... usage on stderr" grep -q '^usage: signgated' "$T_DIR/o.err"
check "... nothing on stdout" test ! -s "$T_DIR/o.out"
"$SIGNGATED" -t >/dev/null 2>&1
expect_eq "-t without -c: exit 2" "$?" 2
"$SIGNGATED" -t --signer -c "$C/dev.json" >/dev/null 2>&1
expect_eq "-t with --signer: exit 2" "$?" 2

# --- users ----------------------------------------------------------------
if [ "$(id -u)" -ne 0 ]; then
	echo "# skipped: the users part needs root"
	finish
	exit
fi

# A private copy of the tokens without SoftHSM's lock files, which the
# library makes again when it opens them: as users.signer, never root.
U="$T_DIR/u"
mkdir -p "$U"
cp -a "$DEV/tokens" "$U/tokens"
find "$U/tokens" -name '*.lock' -delete
sed "s#^directories.tokendir.*#directories.tokendir = $U/tokens#" \
    "$DEV/softhsm2.conf" >"$U/softhsm2.conf"
give_to_signer "$U"
expect_eq "-t over a token copy without lock files: exit 0" \
    "$(SOFTHSM2_CONF="$U/softhsm2.conf" run_t "$C/dev.json")" 0
check "control: the module made its lock files again" \
    test -n "$(find "$U/tokens" -name '*.lock')"
expect_eq "... none of them, nor anything else there, is root's" \
    "$(find "$U/tokens" -user root | wc -l)" 0

# Users that do not exist: said, and the tokens are not opened as root.
t_config nouser '.users.front = "no-such-user-63"'
expect_eq "an unknown users.front: exit 1" "$(run_t "$C/nouser.json")" 1
check "... named" grep -q "^$C/nouser.json: users.front: .*no-such-user-63" \
    "$T_DIR/t.err"
check "... and the tokens not checked as root" grep -q \
    "^$C/nouser.json: not checked: pkcs11: .*never as root" "$T_DIR/t.err"

# Started as users.front: what it cannot do (open the token store, whose
# softhsm2.conf is the signer's) is reported.
expect_eq "-t as users.front: exit 1" "$(run_t "$C/dev.json" \
    setpriv --reuid="$FRONT_USER" --regid="$FRONT_USER" --clear-groups)" 1
check "... says the signer's part was checked as users.front" grep -q \
    "^$C/dev.json: note: the part of users.signer is checked as the user started, users.front" \
    "$T_DIR/t.err"
check "... and names what failed" grep -q "^$C/dev.json: pkcs11.module: " \
    "$T_DIR/t.err"
check "... the only problem (TLS and policy are the front's)" \
    grep -qx "signgated: $C/dev.json: 1 problem" "$T_DIR/t.err"

# Started as another user: the development setting, over files of its own.
D="$T_DIR/nobody"
mkdir -p "$D/tls" "$D/pins"
cp "$DEV/tls/server.pem" "$DEV/tls/server.key" "$DEV/tls/ca.pem" "$D/tls/"
cp "$DEV/pins/signgate-dev.pin" "$D/pins/"
cp -a "$DEV/tokens" "$D/tokens"
sed "s#^directories.tokendir.*#directories.tokendir = $D/tokens#" \
    "$DEV/softhsm2.conf" >"$D/softhsm2.conf"
t_config nobody ".tls.certificate = \"$D/tls/server.pem\" |
    .tls.private_key = \"$D/tls/server.key\" |
    .tls.client_ca = \"$D/tls/ca.pem\" |
    .pkcs11.tokens[0].pin_file = \"$D/pins/signgate-dev.pin\""
chown -R nobody "$D"
expect_eq "-t as nobody (the development setting): exit 0" \
    "$(SOFTHSM2_CONF="$D/softhsm2.conf" run_t "$C/nobody.json" \
    setpriv --reuid=nobody --regid=nogroup --clear-groups)" 0
check "... with the summary" grep -q '^signgated: configuration OK: ' \
    "$T_DIR/t.out"
check "... and the development setting said" \
    grep -q 'development setting' "$T_DIR/t.err"

finish
