# signgate-witness over HTTP, with checkpoints of a throwaway log made by
# the project's own log code (build/tools/witness_log): first contact,
# extension, the cosignature verified with the witness's vkey through
# sg_cosig_verify, 409 with its size as text/x.tlog.size, forks at the
# same and a larger size, an unknown log, another key, malformed and
# oversized bodies, the same checkpoint again; then a restart, after which
# it remembers (refuses the rollback, answers its size); TLS; and the
# refusals at start (key file mode, state directory mode, configuration).
. "$(dirname "$0")/lib.sh"

WLOG="$BUILD/tools/witness_log"
ORIGIN=log.test/witnessed
cd "$T_DIR" || exit 1
LOG_VKEY=$("$WLOG" keygen log.key "$ORIGIN")
OTHER_VKEY=$("$WLOG" keygen other.key other.test/log)
"$WLOG" keygen stranger.key "$ORIGIN" >/dev/null

start_witness w1 "$LOG_VKEY" "$OTHER_VKEY" || { not_ok "witness starts"; finish; exit 1; }
ok "witness starts"
W1_VKEY=$W_VKEY
W1_PID=$W_PID

# add KEY OLD SIZE [FORK_AT [ORIGIN]]: posts that body; the status in
# $STATUS, the body in $T_DIR/resp, the content type in $CTYPE.
add() {
	"$WLOG" body "$1.key" "${5:-$ORIGIN}" "$2" "$3" ${4:+"$4"} >"$T_DIR/req" ||
	    return 1
	post_file "$T_DIR/req"
}
post_file() {
	local out
	out=$(curl -sS -o "$T_DIR/resp" -w '%{http_code} %{content_type}' \
	    --data-binary "@$1" "$W_URL/add-checkpoint")
	STATUS=${out%% *}
	CTYPE=${out#* }
}
# cosigned SIZE: the answer is a cosignature on the checkpoint of SIZE by
# the witness last started.
cosigned() {
	"$WLOG" note log.key "$ORIGIN" "$1" >"$T_DIR/note" &&
	    cat "$T_DIR/resp" >>"$T_DIR/note" &&
	    "$WLOG" verify "$W_VKEY" "$T_DIR/note"
}

add log 0 5
expect_eq "first checkpoint: 200" "$STATUS" 200
check "its cosignature verifies with the witness's vkey" cosigned 5
check "a cosignature is not valid for another checkpoint" \
    bash -c "! (\"$WLOG\" note log.key $ORIGIN 6 >n6 && cat resp >>n6 && \"$WLOG\" verify '$W1_VKEY' n6)"
check "one line: the witness's name and a 76-byte signature" bash -c '
    [ "$(wc -l <resp)" -eq 1 ] && grep -q "^— witness.test/w1 " resp &&
    [ "$(cut -d" " -f3 resp | base64 -d | wc -c)" -eq 76 ]'

add log 0 9
expect_eq "old 0 after 5: 409" "$STATUS" 409
expect_eq "409 is text/x.tlog.size" "$CTYPE" text/x.tlog.size
expect_eq "409 names the size cosigned" "$(cat resp)" 5

add log 5 9
expect_eq "extension 5 -> 9: 200" "$STATUS" 200
check "the extension's cosignature verifies" cosigned 9
add log 9 9
expect_eq "the same checkpoint again: 200" "$STATUS" 200
check "cosigned again" cosigned 9

add log 9 9 4
expect_eq "fork at the same size: 409" "$STATUS" 409
check "the fork's two signed checkpoints are kept, and the journal says so" bash -c "
    f=\$(sed -n 's|.*FORK of log .$ORIGIN. at 9 entries: both signed checkpoints are kept in ||p' '$T_DIR/witness-w1.log') &&
    [ -n \"\$f\" ] && grep -c '^— $ORIGIN ' \"\$f\" | grep -qx 2"
add log 9 12 4
expect_eq "fork at a larger size (the proof fails): 422" "$STATUS" 422
add stranger 9 12
expect_eq "another key for the origin: 403" "$STATUS" 403
add other 0 3 "" other.test/log
expect_eq "a second log is witnessed on its own: 200" "$STATUS" 200
"$WLOG" keygen unknown.key unknown.test/log >/dev/null
add unknown 0 3 "" unknown.test/log
expect_eq "unknown log: 404" "$STATUS" 404
printf 'old x\n\n' >bad
post_file bad
expect_eq "malformed body: 400" "$STATUS" 400
head -c 70000 /dev/zero | tr '\0' A >big
post_file big
expect_eq "oversized body: 413" "$STATUS" 413
expect_eq "GET: 405" "$(curl -s -o /dev/null -w '%{http_code}' "$W_URL/add-checkpoint")" 405
expect_eq "another path: 404" "$(curl -s -o /dev/null -w '%{http_code}' --data x "$W_URL/checkpoint")" 404
check "the journal has one line per decision" bash -c "
    grep -q \"add-checkpoint: log '$ORIGIN' old 5 size 9: 200: extends 5 to 9\" '$T_DIR/witness-w1.log' &&
    grep -q 'old 9 size 12: 422: not consistent' '$T_DIR/witness-w1.log' &&
    ! grep -qi 'PRIVATE' '$T_DIR/witness-w1.log'"

# Restart: the record is on disk.
stop_witness "$W1_PID" w1 && ok "SIGTERM stops it cleanly"
start_witness w1 "$LOG_VKEY" "$OTHER_VKEY" || { not_ok "witness restarts"; finish; exit 1; }
W1_PID=$W_PID
add log 9 5
expect_eq "after a restart, the rollback 9 -> 5 is refused" "$STATUS" 400
add log 5 5
expect_eq "and from the log's own older size: 409" "$STATUS" 409
expect_eq "naming the size it remembers" "$(cat resp)" 9
add log 9 12
expect_eq "the log goes on from there" "$STATUS" 200
check "its cosignature verifies" cosigned 12
stop_witness "$W1_PID" w1

# TLS, no client certificate.
WITNESS_EXTRA=".tls = {certificate: \"$DEV/tls/server.pem\", private_key: \"$DEV/tls/server.key\"}" \
    start_witness w2 "$LOG_VKEY" || not_ok "a TLS witness starts"
"$WLOG" body log.key "$ORIGIN" 0 12 >req
expect_eq "TLS: 200" "$(curl -sS -o resp -w '%{http_code}' --cacert "$DEV/tls/ca.pem" \
    --data-binary @req "https://127.0.0.1:$W_PORT/add-checkpoint")" 200
check "TLS: the cosignature verifies" cosigned 12
stop_witness "$W_PID" w2

# The key on a PKCS#11 token (a copy of the development token; its spare
# Ed25519 key), signing with CKM_EDDSA.
cp -a "$DEV/tokens" "$T_DIR/tokens"
sed "s#^directories.tokendir.*#directories.tokendir = $T_DIR/tokens#" \
    "$DEV/softhsm2.conf" >"$T_DIR/softhsm2.conf"
(umask 077 && cat "$DEV/pins/signgate-dev.pin" >"$T_DIR/token.pin")
WITNESS_EXTRA="del(.key_file) | .pkcs11 = {module: \"/usr/lib/softhsm/libsofthsm2.so\",
    token: \"signgate-dev\", key: \"unrelated-ed25519\", pin_file: \"$T_DIR/token.pin\"}" \
SOFTHSM2_CONF="$T_DIR/softhsm2.conf" start_witness w3 "$LOG_VKEY" &&
    ok "a witness with its key on a token starts" ||
    not_ok "a witness with its key on a token starts"
add log 0 12
expect_eq "token: 200" "$STATUS" 200
check "token: the cosignature verifies with the vkey it prints" cosigned 12
check "token: its key is not the file key" test "$W_VKEY" != "$W1_VKEY"
stop_witness "$W_PID" w3

# Refusals at start.
d="$T_DIR/witness-w1"
chmod 0644 "$d/w.key"
check "a key file others may read is refused" bash -c "
    ! \"$SIGNGATE_WITNESS\" --config '$d/w.json' >out 2>&1 && grep -q 'mode 0600' out"
chmod 0600 "$d/w.key"
chmod 0777 "$d/state"
check "a state directory others may write is refused" bash -c "
    ! timeout 10 \"$SIGNGATE_WITNESS\" --config '$d/w.json' >out 2>&1 && grep -q 'others may write' out"
chmod 0700 "$d/state"
jq '.logs[0].vkey = "nope"' "$d/w.json" >"$d/bad.json"
check "a bad log key is refused, naming the field" bash -c "
    ! \"$SIGNGATE_WITNESS\" --config '$d/bad.json' >out 2>&1 && grep -q 'logs\[0\].vkey' out"
check "usage without --config" bash -c "! \"$SIGNGATE_WITNESS\" >/dev/null 2>&1"
finish
