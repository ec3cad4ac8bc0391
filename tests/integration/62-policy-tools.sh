#!/usr/bin/env bash
# The policy author's tools: `signgate policy check` reports every problem
# of a policy with file and line, `signgate policy hash` prints exactly the
# line that statements made under the policy carry (compared with a real
# request's statement).
. "$(dirname "$0")/lib.sh"

pol="$DEV/policy.conf"

# --- a valid policy -------------------------------------------------------
check "policy check accepts the dev policy" "$SIGNGATE" policy check "$pol"
"$SIGNGATE" policy check "$pol" >"$T_DIR/check.ok" 2>&1
check "... and says so with its hash" grep -Eq \
    "^.*policy.conf: ok, policy [A-Za-z0-9._-]+@[0-9]+ sha256:[0-9a-f]{64}$" \
    "$T_DIR/check.ok"
hash_line=$("$SIGNGATE" policy hash "$pol")
expect_eq "policy hash names the file's SHA-256" \
    "${hash_line##*sha256:}" "$(sha256sum "$pol" | cut -d' ' -f1)"

start_daemon
as ci
st=$(new_request ci release "$(printf '%064d' 7)")
expect_eq "a release request" "$st" 201
stmt_line=$(jq -r .statement "$T_DIR/body" | grep '^policy ')
expect_eq "policy hash is the statement's policy line" "$hash_line" "$stmt_line"
stop_daemon

# --- a policy with five problems ------------------------------------------
{
	sed -n '1,/^version/p' "$pol"
	printf 'key k1\n    token t\n    bogus 1\nend\n'
	printf 'principal bad!name\n    roles officer\n    junk\nend\n'
	printf 'group empty\nend\n'
	printf 'frobnicate\n'
} >"$T_DIR/bad.policy"
"$SIGNGATE" policy check "$T_DIR/bad.policy" >"$T_DIR/bad.out" 2>"$T_DIR/bad.err"
expect_eq "policy check fails on a broken policy" "$?" 1
expect_eq "... with five problems" "$(grep -c "^$T_DIR/bad.policy:[0-9]*: " "$T_DIR/bad.err")" 5
check "... and their count" grep -qx "5 problems" "$T_DIR/bad.err"
check "... naming the unknown keyword" grep -q "unknown keyword 'bogus'" "$T_DIR/bad.err"
check "... the bad name" grep -q "'bad!name' is not a valid name" "$T_DIR/bad.err"
check "... the empty group" grep -q "group 'empty': missing 'members'" "$T_DIR/bad.err"
check "... and the stray line" grep -q "unknown keyword 'frobnicate'" "$T_DIR/bad.err"
check "... but not the lines of the skipped block" \
    bash -c "! grep -q junk '$T_DIR/bad.err'"
"$SIGNGATE" policy hash "$T_DIR/bad.policy" >/dev/null 2>&1
expect_eq "policy hash refuses a broken policy" "$?" 1
"$SIGNGATE" policy check "$T_DIR/none.policy" 2>/dev/null
expect_eq "policy check on a missing file" "$?" 1
"$SIGNGATE" policy frob "$pol" 2>/dev/null
expect_eq "an unknown policy subcommand is a usage error" "$?" 2

finish
