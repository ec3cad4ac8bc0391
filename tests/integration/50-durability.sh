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

# 100 requests, each approved by alice, bob and dave concurrently.
N_REQ=100
for i in $(seq 1 $N_REQ); do
	hex=$(printf '%064x' "$i")
	new_request ci release "$hex" >/dev/null
	cp "$T_DIR/body" "$T_DIR/c$i.json"
done
ok "$N_REQ release requests created"
pids=()
for o in alice bob dave carol; do
	(
		for i in $(seq 1 $N_REQ); do
			approve_with_openssl "$o" "$T_DIR/c$i.json" >"$T_DIR/st.$o.$i"
		done
	) &
	pids+=($!)
done
wait "${pids[@]}"
# carol is the fourth officer: the quorum may already hold when she comes,
# so each of her answers is 200 (pending/signed) or 409 (already signed).
bad=0
for o in alice bob dave carol; do
	for i in $(seq 1 $N_REQ); do
		st=; read -r st <"$T_DIR/st.$o.$i"
		case "$st" in 200|409) ;; *) bad=$((bad + 1)); echo "  $o $i: $st" ;; esac
	done
done
expect_eq "every concurrent approval was answered 200 or 409" "$bad" 0
# Each request as the API shows it, one GET each; the ids and the states
# are read with one jq for all (each jq takes tens of milliseconds).
created=() got=()
for i in $(seq 1 $N_REQ); do
	created+=("$T_DIR/c$i.json"); got+=("$T_DIR/got.$i.json")
done
i=0
while read -r id; do
	api audit GET "/v1/requests/$id" >/dev/null
	mv "$T_DIR/body" "${got[i]}"
	i=$((i + 1))
done < <(jq -r .id "${created[@]}")
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
expect_eq "... and the store records schema version 7" \
    "$(sqlite3 "$T_DIR/state/signgate.db" 'PRAGMA user_version')" 7

finish
