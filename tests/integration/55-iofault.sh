# Fail closed on a failing disk: while the state directory cannot be
# written, creating, approving and signing answer 503 and no signature
# leaves the daemon; nothing acknowledged is lost, and the daemon recovers
# without a restart when the disk comes back.
. "$(dirname "$0")/lib.sh"

PRELOAD="$BUILD/preload/iofault.so"
[ -f "$PRELOAD" ] || PRELOAD="$SG_ROOT/build/preload/iofault.so"
TRIGGER="$T_DIR/disk-fails"
export SG_IOFAULT_TRIGGER="$TRIGGER" SG_IOFAULT_MATCH="$T_DIR/state/"
# The sanitizer runtime must otherwise come first in the library list.
ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
LD_PRELOAD="$PRELOAD" start_daemon || { not_ok "daemon starts"; finish; exit 1; }
ok "daemon starts with the fault injector"

H1=$(printf '1%.0s' $(seq 64)); H2=$(printf '2%.0s' $(seq 64)); H3=$(printf '3%.0s' $(seq 64))
expect_eq "a signature while the disk works (201)" "$(new_request ci nightly "$H1")" 201
OK1=$(jbody .id)
new_request ci release "$H1" >/dev/null; cp "$T_DIR/body" "$T_DIR/rel.json"
expect_eq "alice approves while the disk works" "$(approve_with_openssl alice "$T_DIR/rel.json")" 200
api - GET /v1/log/checkpoint >/dev/null; size_before=$(sed -n 2p "$T_DIR/body")

touch "$TRIGGER"
st=$(new_request ci nightly "$H2")
expect_eq "no disk: creating a signed request answers 503" "$st" 503
check "no disk: the 503 carries no signature" bash -c "! grep -q signature '$T_DIR/body'"
check "no disk: the 503 is a problem document with Retry-After semantics" \
    test "$(jbody .status)" = 503
expect_eq "no disk: an approval answers 503" "$(approve_with_openssl bob "$T_DIR/rel.json")" 503
expect_eq "no disk: a pending request answers 503" "$(new_request ci release "$H3")" 503
rm -f "$TRIGGER"

api ci GET "/v1/requests/$(jq -r .id "$T_DIR/rel.json")" >/dev/null
expect_eq "the failed approval was not recorded" "$(jbody '[.approvals[].officer] | join(",")')" alice
expect_eq "after the disk returns: a signature again (201)" "$(new_request ci nightly "$H3")" 201
expect_eq "after the disk returns: bob's approval (200)" "$(approve_with_openssl bob "$T_DIR/rel.json")" 200
expect_eq "after the disk returns: dave's approval signs (200)" \
    "$(approve_with_openssl dave "$T_DIR/rel.json"; jbody .state)" "200signed"
api audit GET "/v1/requests?limit=200" >/dev/null
expect_eq "nothing from the failed calls exists" \
    "$(jbody "[.requests[] | select(.digest.value == \"$H2\")] | length")" 0
api - GET /v1/log/checkpoint >/dev/null; size_after=$(sed -n 2p "$T_DIR/body")
# nightly: created + signature; release: two decisions + signature
expect_eq "the log grew by exactly the acknowledged entries" \
    "$((size_after - size_before))" 5

stop_daemon
start_daemon || { not_ok "daemon restarts"; finish; exit 1; }
expect_eq "after a restart the first signature is still there" \
    "$(api ci GET /v1/requests/$OK1/signature)" 200
check "sqlite integrity_check" bash -c "[ \"\$(sqlite3 '$T_DIR/state/signgate.db' 'PRAGMA integrity_check')\" = ok ]"
api - GET /v1/log/checkpoint >/dev/null
expect_eq "the checkpoint after restart has the same size" "$(sed -n 2p "$T_DIR/body")" "$size_after"

finish
