# Moving a gateway from SQLite to PostgreSQL with signgated --copy-store:
# a gateway on SQLite signs a nightly artifact and a release (three
# approvals made with openssl) and keeps a pending request with one
# approval; stopped, its store is copied into a new database of a
# PostgreSQL server of this script's own (tests/pg.sh), the SQLite file
# is moved away, and the gateway started on the copy serves the same
# checkpoint, hands out the release's signature again for the same
# Idempotency-Key with a proof that verifies offline, keeps the pending
# request and its approval, and signs a new request in a log that the
# monitor sees grow from the one it pinned on SQLite; copied back to
# SQLite, the grown log matches its checkpoint.  A second copy into the
# same database, and a conninfo holding a password, are refused.
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$SG_ROOT/tests/pg.sh"

# The cluster lives in T_DIR: stopped before lib.sh removes T_DIR.
trap 'pg_stop "$T_DIR/pg" >/dev/null 2>&1; cleanup' EXIT

# The CLI may take up to a minute here (see sg in lib.sh).
SG_TIMEOUT=60

# copy [--as-front] ARGS...: signgated --copy-store (as the front's
# user, as docs/OPERATIONS.md says to run it, with --as-front when run by
# root); report in $T_DIR/copy.out, the reason in $T_DIR/copy.err;
# prints the exit status.
copy() {
	local as=()
	if [ "$1" = --as-front ]; then
		shift
		[ "$(id -u)" -ne 0 ] || as=(setpriv --reuid="$FRONT_USER" \
		    --regid="$FRONT_USER" --clear-groups)
	fi
	timeout 120 "${as[@]}" "$SIGNGATED" --copy-store "$@" \
	    >"$T_DIR/copy.out" 2>"$T_DIR/copy.err"
	echo $?
}

# cp_line N: line N of the served checkpoint (2 size, 3 root).
cp_line() {
	api - GET /v1/log/checkpoint >/dev/null
	sed -n "${1}p" "$T_DIR/body"
}

W="$T_DIR/work"
mkdir -p "$W"
start_daemon || { not_ok "the daemon starts on SQLite"; finish; exit 1; }
as ci

# --- on SQLite ----------------------------------------------------------------
head -c 4096 /dev/urandom >"$W/nightly.bin"
expect_rc "sign nightly on SQLite" 0 sign --key nightly "$W/nightly.bin"

printf 'release %s\n' "$(date +%s%N)" >"$W/release.bin"
IDEM="release-52-$$"
expect_rc "sign release, not waiting" 0 sign --key release --no-wait \
    --idempotency-key "$IDEM" "$W/release.bin"
RID=$(sed -n 's/^request: //p' "$T_DIR/out")
api ci GET "/v1/requests/$RID" >/dev/null; cp "$T_DIR/body" "$T_DIR/rel.json"
for o in alice bob dave; do
	expect_eq "$o approves the release" \
	    "$(approve_with_openssl $o "$T_DIR/rel.json")" 200
done
expect_rc "the release is signed" 0 sign --key release \
    --idempotency-key "$IDEM" --wait 30 "$W/release.bin"
mv "$W/release.bin.sig" "$W/release.bin.sig.sqlite"

H=$(printf 'e%.0s' $(seq 64))
new_request ci release "$H" >/dev/null; cp "$T_DIR/body" "$T_DIR/pend.json"
PEND=$(jq -r .id "$T_DIR/pend.json")
expect_eq "carol approves the pending request" \
    "$(approve_with_openssl carol "$T_DIR/pend.json")" 200

expect_rc "log key" 0 log key
cp "$T_DIR/out" "$W/log.vkey"
MON="$T_DIR/monitor.state"
expect_rc "the monitor pins the SQLite log" 0 log monitor --state "$MON"
SIZE=$(cp_line 2)
ROOT=$(cp_line 3)
ROOT_HEX=$(printf '%s' "$ROOT" | base64 -d | od -An -tx1 -v | tr -d ' \n')
check "the log has entries" test "${SIZE:-0}" -gt 3
stop_daemon

# --- the copy -----------------------------------------------------------------
pg_start "$T_DIR/pg" || { not_ok "PostgreSQL starts"; finish; exit 1; }
pg_new_db signgate >/dev/null || { not_ok "a database"; finish; exit 1; }
CI=$PG_DB_CONNINFO

# The password file is the front user's own, mode 0600: the copy, run
# as that user, and the gateway read the same one.
install -m 0600 "$PG_DB_PASSFILE" "$T_DIR/store.pass"
give_to_front "$T_DIR/store.pass"
rc=$(copy --as-front "sqlite:$T_DIR/state" "postgresql:$CI" \
    --password-file "$T_DIR/store.pass")
expect_eq "copy sqlite -> postgresql, as the front's user" "$rc" 0
[ "$rc" = 0 ] || sed 's/^/    /' "$T_DIR/copy.err" | head -n 5
check "... the report says the log matches the checkpoint" grep -qx \
    "the log matches the signed checkpoint of $SIZE entries" "$T_DIR/copy.out"
check "... with the served root" grep -q "root $ROOT_HEX\$" "$T_DIR/copy.out"
sed 's/^/    /' "$T_DIR/copy.out"
check "... three requests" grep -Eq '^  requests +3 rows$' "$T_DIR/copy.out"
check "... four approvals" grep -Eq '^  approvals +4 rows$' "$T_DIR/copy.out"
expect_eq "the database holds them" "$(pg_psql "$CI" "$PG_DB_PASSFILE" -c \
    "SELECT COUNT(*) FROM requests")/$(pg_psql "$CI" "$PG_DB_PASSFILE" -c \
    "SELECT COUNT(*) FROM log_entries")" "3/$SIZE"

expect_eq "a second copy into the same database is refused" \
    "$(copy --as-front "sqlite:$T_DIR/state" "postgresql:$CI" \
    --password-file "$T_DIR/store.pass")" 1
check "... naming the table" grep -q 'table requests holds rows' \
    "$T_DIR/copy.err"
expect_eq "... and changes nothing" "$(pg_psql "$CI" "$PG_DB_PASSFILE" \
    -c "SELECT COUNT(*) FROM requests")" 3
expect_eq "a conninfo holding a password is refused" \
    "$(copy "sqlite:$T_DIR/state" "postgresql:$CI password=hunter2")" 1
check "... saying why" grep -q 'must not hold a password' "$T_DIR/copy.err"
check "... without repeating it" bash -c "! grep -q hunter2 '$T_DIR/copy.err'"

# The SQLite store goes away: a gateway that opened it would find it
# empty, and its signer would refuse that as a rollback.
mv "$T_DIR/state/signgate.db" "$T_DIR/signgate.db.moved"
check "nothing of the SQLite store is left in state_dir" bash -c \
    "! ls '$T_DIR/state' | grep -q '^signgate\.db'"

# --- on PostgreSQL ------------------------------------------------------------
write_config ".store = {\"backend\": \"postgresql\", \"conninfo\": \"$CI\",
    \"password_file\": \"$T_DIR/store.pass\"}"
start_daemon || { not_ok "the daemon starts on the copy"; finish; exit 1; }
ok "the daemon starts on the PostgreSQL copy (its signer takes the tree)"

expect_eq "the same checkpoint size" "$(cp_line 2)" "$SIZE"
expect_eq "the same root" "$(cp_line 3)" "$ROOT"

expect_rc "the release's signature again, for the same Idempotency-Key" 0 \
    sign --key release --idempotency-key "$IDEM" --wait 30 "$W/release.bin"
check "... the same signature" cmp "$W/release.bin.sig" \
    "$W/release.bin.sig.sqlite"
(cd "$W" && timeout 30 "$SIGNGATE" verify --key-file log.vkey \
    --policy "$DEV/policy.conf" --proof release.bin.sig.proof \
    --signature release.bin.sig release.bin >"$T_DIR/verify.out" 2>&1)
expect_eq "... and its proof from the copy verifies offline" "$?" 0
check "... with its three approvers" grep -qx 'approvers: alice bob dave' \
    "$T_DIR/verify.out"

api ci GET "/v1/requests/$PEND" >/dev/null
expect_eq "the pending request is still pending, with carol's approval" \
    "$(jbody '.state + " " + ([.approvals[].officer] | join(","))')" \
    "pending carol"

head -c 1024 /dev/urandom >"$W/after.bin"
expect_rc "a new request is signed on PostgreSQL" 0 sign --key nightly \
    "$W/after.bin"
(cd "$W" && timeout 30 "$SIGNGATE" verify --key-file log.vkey \
    --policy "$DEV/policy.conf" --proof after.bin.sig.proof \
    --signature after.bin.sig after.bin >"$T_DIR/verify.out" 2>&1)
expect_eq "... and verifies offline" "$?" 0
expect_eq "... in the database" "$(pg_psql "$CI" "$PG_DB_PASSFILE" -c \
    "SELECT COUNT(*) FROM requests WHERE state = 'signed'")" 3
check "... after every copied request" test "$(pg_psql "$CI" \
    "$PG_DB_PASSFILE" -c "SELECT MAX(seq) FROM requests")" -gt 3
expect_rc "the monitor sees the SQLite log grow on PostgreSQL" 0 \
    log monitor --state "$MON"
check "... consistent" grep -qx 'consistent: yes' "$T_DIR/out"
SIZE2=$(cp_line 2)
stop_daemon

# --- and back -----------------------------------------------------------------
# Run by root into a directory of the front's: the new database is given
# to the directory's owner.
mkdir -m 0700 "$T_DIR/back"
give_to_front "$T_DIR/back"
rc=$(copy "postgresql:$CI" "sqlite:$T_DIR/back" \
    --password-file "$PG_DB_PASSFILE")
expect_eq "copy postgresql -> sqlite" "$rc" 0
[ "$rc" = 0 ] || sed 's/^/    /' "$T_DIR/copy.err" | head -n 5
check "... the report says the log matches the grown checkpoint" grep -qx \
    "the log matches the signed checkpoint of $SIZE2 entries" "$T_DIR/copy.out"
check "... four requests" grep -Eq '^  requests +4 rows$' "$T_DIR/copy.out"
expect_eq "... the database belongs to the directory's owner" \
    "$(stat -c %U "$T_DIR/back/signgate.db")" "$(stat -c %U "$T_DIR/back")"

finish
