# Policy reload on SIGHUP: a valid new policy takes effect for new
# requests while pending ones keep the policy their statement names; an
# invalid file, an unchanged version, or a changed HSM location leaves the
# running policy in force and the log says why.
. "$(dirname "$0")/lib.sh"

cp "$DEV/policy.conf" "$T_DIR/policy.conf"
write_config ".policy = \"$T_DIR/policy.conf\""
start_daemon || { not_ok "daemon starts"; finish; exit 1; }
H1=$(printf '4%.0s' $(seq 64)); H2=$(printf '5%.0s' $(seq 64))

new_request ci release "$H1" >/dev/null; cp "$T_DIR/body" "$T_DIR/v1.json"
check "the first request is made under version 1" grep -q 'policy signgate-dev@1 ' <(jq -r .statement "$T_DIR/v1.json")

# Version 2: release needs all three security officers and the release manager.
sed -e 's/^version 1$/version 2/' \
    -e '/^key release$/,/^end$/s/require security-officers 2/require security-officers 3/' \
    "$DEV/policy.conf" >"$T_DIR/policy.conf"
kill -HUP "$DAEMON_PID"
for i in $(seq 1 50); do grep -q 'SIGHUP' "$T_DIR/daemon.log" && break; sleep 0.1; done
check "SIGHUP: the log says version 2 is in force" grep -q 'SIGHUP: policy signgate-dev version 2 in force' "$T_DIR/daemon.log"
api ci GET /v1/keys >/dev/null
expect_eq "/v1/keys shows the new rule" \
    "$(jbody '.keys[] | select(.name=="release") | .policy.require[0].count')" 3
new_request ci release "$H2" >/dev/null; cp "$T_DIR/body" "$T_DIR/v2.json"
check "a new request is made under version 2" grep -q 'policy signgate-dev@2 ' <(jq -r .statement "$T_DIR/v2.json")

# The old request still needs only 2 officers + dave; the new one 3 + dave.
for o in alice bob dave; do approve_with_openssl "$o" "$T_DIR/v1.json" >/dev/null; done
expect_eq "the version-1 request signs after alice, bob and dave" "$(jbody .state)" signed
for o in alice bob dave; do approve_with_openssl "$o" "$T_DIR/v2.json" >/dev/null; done
expect_eq "the version-2 request is still pending after the same three" "$(jbody .state)" pending
expect_eq "carol's approval signs it" "$(approve_with_openssl carol "$T_DIR/v2.json"; jbody .state)" "200signed"

# Invalid files leave version 2 in force.
: >"$T_DIR/daemon.log.mark"
cp "$T_DIR/policy.conf" "$T_DIR/policy.good"
printf 'version 3\nthis is not a policy\n' >"$T_DIR/policy.conf"
kill -HUP "$DAEMON_PID"; sleep 0.5
check "a broken file is refused with file:line" grep -q "SIGHUP: policy not reloaded, the running one stays in force: $T_DIR/policy.conf:[0-9]*:" "$T_DIR/daemon.log"
sed 's/^version 2$/version 3/; s/^    object nightly$/    object release/' "$T_DIR/policy.good" >"$T_DIR/policy.conf"
kill -HUP "$DAEMON_PID"; sleep 0.5
check "a changed HSM location is refused (restart needed)" grep -q 'an HSM location changed; that needs a restart' "$T_DIR/daemon.log"
sed 's/require security-officers 3/require security-officers 1/' "$T_DIR/policy.good" >"$T_DIR/policy.conf"
kill -HUP "$DAEMON_PID"; sleep 0.5
check "a new rule without a new version is refused" grep -q 'version 2 is not above the running version 2' "$T_DIR/daemon.log"
api ci GET /v1/keys >/dev/null
expect_eq "after the refusals, version 2's rule is still in force" \
    "$(jbody '.keys[] | select(.name=="release") | .policy.require[0].count')" 3
expect_eq "and signing still works" "$(new_request ci nightly "$H1")" 201

finish
