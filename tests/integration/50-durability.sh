# Durability and concurrency: the daemon killed with SIGKILL between
# approvals keeps the request and its approvals, and the last approval
# after the restart signs it; 100 requests approved concurrently by several
# officers are each signed exactly once.
. "$(dirname "$0")/lib.sh"

start_daemon || { not_ok "daemon starts"; finish; exit 1; }
H=$(printf 'd%.0s' $(seq 64))

new_request ci release "$H" >/dev/null; cp "$T_DIR/body" "$T_DIR/r.json"
R=$(jq -r .id "$T_DIR/r.json")
expect_eq "alice approves" "$(approve_with_openssl alice "$T_DIR/r.json")" 200
expect_eq "dave approves" "$(approve_with_openssl dave "$T_DIR/r.json")" 200
kill9_daemon
ok "daemon killed with SIGKILL between approvals"
start_daemon || { not_ok "daemon restarts"; finish; exit 1; }
api ci GET "/v1/requests/$R" >/dev/null
expect_eq "after restart the request is pending" "$(jbody .state)" pending
expect_eq "after restart both approvals are intact" \
    "$(jbody '[.approvals[].officer] | join(",")')" "alice,dave"
expect_eq "... and the statement is unchanged" "$(jbody .statement)" "$(jq -r .statement "$T_DIR/r.json")"
expect_eq "bob's approval after the restart (200)" "$(approve_with_openssl bob "$T_DIR/r.json")" 200
expect_eq "... signs it" "$(jbody .state)" signed

# A signed answer survives a SIGKILL right after it was given.
new_request ci nightly "$H" >/dev/null
N=$(jbody .id)
kill9_daemon
start_daemon || { not_ok "daemon restarts"; finish; exit 1; }
expect_eq "an acknowledged signature survives SIGKILL" \
    "$(api ci GET /v1/requests/$N/signature)" 200

# 100 requests, each approved by alice, bob and dave concurrently.  The
# requests are created by one curl over one connection (a process and a
# TLS handshake each would cost more than the calls); each officer's
# approvals are made by tests/tools/approve over a connection of the
# officer's own, the four officers at once: the envelopes are built as
# approve_with_openssl builds them, with OpenSSL and not the project's
# DSSE code.
N_REQ=100
APPROVE="$BUILD/tools/approve"
[ -x "$APPROVE" ] || { not_ok "the approval driver is built ($APPROVE)"; finish; exit 1; }
# curl_op PRINCIPAL: the start of one operation of a curl -K file, as
# PRINCIPAL, printing its status on a line; "next" separates operations.
# One curl runs them all over one connection.
curl_op() {
	printf 'cacert = "%s"\ncert = "%s"\nkey = "%s"\nmax-time = 30\n' \
	    "$DEV/tls/ca.pem" "$DEV/tls/$1.pem" "$DEV/tls/$1.key"
	printf 'silent\nshow-error\nwrite-out = "%%{http_code}\\n"\n'
}
curl_batch() { curl -K "$1" 2>"$T_DIR/curl.err" || echo "curl-error"; }
: >"$T_DIR/create.conf"
for i in $(seq 1 $N_REQ); do
	printf '{"key":"release","digest":{"algorithm":"sha256","value":"%064x"},"format":"raw","artifact":{"name":"test.bin","version":"1.0"}}' \
	    "$i" >"$T_DIR/create.$i"
	[ "$i" = 1 ] || echo next
	curl_op ci
	printf 'header = "Content-Type: application/json"\n'
	printf 'data-binary = "@%s"\noutput = "%s"\nurl = "%s"\n' \
	    "$T_DIR/create.$i" "$T_DIR/c$i.json" "$URL/v1/requests"
done >>"$T_DIR/create.conf"
expect_eq "$N_REQ release requests created" \
    "$(curl_batch "$T_DIR/create.conf" | sort | uniq -c | awk '{ print $2 ":" $1 }' | tr '\n' ' ')" "201:$N_REQ "
created=()
for i in $(seq 1 $N_REQ); do created+=("$T_DIR/c$i.json"); done
pids=()
for o in alice bob dave carol; do
	SG_DEV="$DEV" "$APPROVE" "$o" "${created[@]}" >"$T_DIR/st.$o" \
	    2>"$T_DIR/approve.$o.err" &
	pids+=($!)
done
rcs=
for p in "${pids[@]}"; do wait "$p"; rcs="$rcs$?"; done
expect_eq "each officer's approvals were all built and sent" "$rcs" 0000
# carol is the fourth officer: the quorum may already hold when she comes,
# so each of her answers is 200 (pending/signed) or 409 (already signed).
bad=0
for o in alice bob dave carol; do
	i=0
	while read -r st; do
		i=$((i + 1))
		case "$st" in 200|409) ;; *) bad=$((bad + 1)); echo "  $o $i: $st" ;; esac
	done <"$T_DIR/st.$o"
	[ "$i" = "$N_REQ" ] || { bad=$((bad + 1)); echo "  $o: $i answers for $N_REQ requests"; sed 's/^/    /' "$T_DIR/approve.$o.err"; }
done
expect_eq "every concurrent approval was answered 200 or 409" "$bad" 0
# Each request as the API shows it, one GET each over one connection; the
# ids and the states are read with one jq for all (each jq takes tens of
# milliseconds).
got=()
: >"$T_DIR/get.conf"
i=0
while read -r id; do
	i=$((i + 1))
	got+=("$T_DIR/got.$i.json")
	[ "$i" = 1 ] || echo next
	curl_op audit
	printf 'output = "%s"\nurl = "%s"\n' "$T_DIR/got.$i.json" "$URL/v1/requests/$id"
done < <(jq -r .id "${created[@]}") >>"$T_DIR/get.conf"
expect_eq "each of them read (200)" \
    "$(curl_batch "$T_DIR/get.conf" | sort | uniq -c | awk '{ print $2 ":" $1 }' | tr '\n' ' ')" "200:$N_REQ "
signed=$(jq -s '[.[] | select(.state == "signed")] | length' "${got[@]}")
expect_eq "all $N_REQ requests are signed" "$signed" "$N_REQ"
st=$(sqlite3 "$T_DIR/state/signgate.db" "SELECT COUNT(*) FROM requests WHERE key='release' AND state='signed' AND signature IS NOT NULL")
expect_eq "the store holds exactly one signature per request" "$st" $((N_REQ + 1))
m=$(api - GET /metrics >/dev/null; sed -n 's/^signgate_signatures_total{key="release"} \([0-9]*\)/\1/p' "$T_DIR/body")
expect_eq "the HSM was asked to sign each request exactly once since restart" "$m" "$N_REQ"
check "sqlite integrity_check" bash -c "[ \"\$(sqlite3 '$T_DIR/state/signgate.db' 'PRAGMA integrity_check')\" = ok ]"

# A store made by an earlier build (without the columns added since, and
# without a recorded schema version) is upgraded in place at start, and
# keeps working.
stop_daemon
sqlite3 "$T_DIR/state/signgate.db" "ALTER TABLE requests DROP COLUMN timestamp_note;
    ALTER TABLE requests DROP COLUMN log_index;
    ALTER TABLE log_checkpoints DROP COLUMN signed_at;
    PRAGMA user_version = 0;"
start_daemon || { not_ok "daemon starts on an older store"; finish; exit 1; }
expect_eq "an older store is upgraded: signing works (201)" \
    "$(new_request ci nightly "$(printf '%064x' 999)")" 201
expect_eq "... and the old requests are still there" \
    "$(api ci GET "/v1/requests/$R" >/dev/null; jbody .state)" signed
SCHEMA=$(sed -n 's/^#define SG_STORE_SCHEMA_VERSION //p' \
    "$SG_ROOT/include/sg_store.h")
expect_eq "... and the store records this build's schema version ($SCHEMA)" \
    "$(sqlite3 "$T_DIR/state/signgate.db" 'PRAGMA user_version')" "$SCHEMA"

finish
