# Notifications: every change reaches the webhooks, signed with their
# HMAC, at least once: through a receiver that is down for a while, and
# through a SIGKILL of the daemon while deliveries wait.  The receiver is
# Python's standard library (tests/tools/webhook_receiver.py), which
# checks each signature independently.  Then `signgate watch`: an
# officer's queue, and a command run for each change of it.
. "$(dirname "$0")/lib.sh"

RECV_LOG=$T_DIR/received.jsonl
RECV_PORTFILE=$T_DIR/recv.port
RECV_PID=
: >"$RECV_LOG"

# Two webhooks, each with its own secret (the front's user's, 0600): ops
# gets every event as JSON, chat only signatures and cancellations, in
# Slack's form.
head -c 32 /dev/urandom | base64 >"$T_DIR/ops.hmac"
head -c 32 /dev/urandom | base64 >"$T_DIR/chat.hmac"
chmod 0600 "$T_DIR/ops.hmac" "$T_DIR/chat.hmac"
give_to_front "$T_DIR/ops.hmac" "$T_DIR/chat.hmac"

start_receiver() {
	rm -f "$RECV_PORTFILE.ready"
	/usr/bin/python3 "$SG_ROOT/tests/tools/webhook_receiver.py" \
	    "$RECV_PORTFILE" "$RECV_LOG" "/ops=$T_DIR/ops.hmac" \
	    "/chat=$T_DIR/chat.hmac" 2>>"$T_DIR/receiver.err" &
	RECV_PID=$!
	BG_PIDS+=("$RECV_PID")
	local i
	for i in $(seq 1 1000); do
		[ -f "$RECV_PORTFILE.ready" ] && return 0
		kill -0 "$RECV_PID" 2>/dev/null || break
		pause 0.01
	done
	echo "the receiver did not start:"; cat "$T_DIR/receiver.err"
	return 1
}

stop_receiver() {
	kill -TERM "$RECV_PID" 2>/dev/null
	wait "$RECV_PID" 2>/dev/null
	RECV_PID=
}

# received JQFILTER: the deliveries the receiver logged, as one array,
# through the filter (over .path, .valid, .event_id, .body as text, .ev
# the body parsed).
received() {
	jq -rs "map(. + {ev: (.body | fromjson)}) | $1" "$RECV_LOG"
}

# wait_for SECONDS JQFILTER: until the filter over received() is true.
wait_for() {
	local n=$(( $1 * 20 )) i
	for i in $(seq 1 "$n"); do
		[ "$(received "$2")" = true ] && return 0
		pause 0.05
	done
	echo "waited $1 s for: $2"
	return 1
}

# metric NAME: its value in /metrics (from loopback).
metric() {
	curl -sS --max-time 10 --cacert "$DEV/tls/ca.pem" "$URL/metrics" |
	    awk -v m="$1" '$1 == m { print $2 }'
}

start_receiver || { not_ok "the receiver starts"; finish; exit 1; }
RPORT=$(cat "$RECV_PORTFILE")

write_config ".notify = {retry_max_seconds: 2, webhooks: [
    {name: \"ops\", url: \"http://127.0.0.1:$RPORT/ops\",
     secret_file: \"$T_DIR/ops.hmac\"},
    {name: \"chat\", url: \"http://127.0.0.1:$RPORT/chat\",
     secret_file: \"$T_DIR/chat.hmac\", format: \"slack\",
     events: [\"request.signed\", \"*.cancelled\"]}]}"
# A secret others may read is refused, by `signgated -t` as at start.
cp -p "$T_DIR/ops.hmac" "$T_DIR/loose.hmac"
chmod 0644 "$T_DIR/loose.hmac"
jq ".notify.webhooks[0].secret_file = \"$T_DIR/loose.hmac\"" \
    "$T_DIR/signgated.json" >"$T_DIR/loose.json"
"$SIGNGATED" -t -c "$T_DIR/loose.json" >"$T_DIR/loose.out" 2>&1
expect_eq "signgated -t refuses a secret file of mode 0644" "$?" 1
check "... naming the webhook and the file" grep -q \
    "notify.webhooks\[0\] (ops): secret_file $T_DIR/loose.hmac cannot be read" \
    "$T_DIR/loose.out"
check "... never its content" bash -c "! grep -qF '$(cat "$T_DIR/ops.hmac")' '$T_DIR/loose.out'"
start_daemon || { not_ok "daemon starts"; finish; exit 1; }

# --- a lifecycle: created, three approvals, signed ------------------------
H1=$(printf '1%.0s' $(seq 64))
new_request ci release "$H1" >/dev/null; cp "$T_DIR/body" "$T_DIR/r1.json"
R1=$(jq -r .id "$T_DIR/r1.json")
for o in alice bob dave; do
	expect_eq "$o approves" "$(approve_with_openssl $o "$T_DIR/r1.json")" 200
done
expect_eq "the request is signed" "$(api ci GET "/v1/requests/$R1?wait=30" >/dev/null; jbody .state)" signed

check "its five events reach ops" wait_for 20 \
    "[.[] | select(.path == \"/ops\" and .ev.request.id == \"$R1\")] | length == 5"
expect_eq "every delivery's HMAC is valid" "$(received 'all(.valid)')" true
expect_eq "created, 3 approvals, signed" \
    "$(received "[.[] | select(.path == \"/ops\" and .ev.request.id == \"$R1\") | .ev.type] | sort | join(\" \")")" \
    "request.approval request.approval request.approval request.created request.signed"
expect_eq "the header's id is the event's, and every id differs" \
    "$(received '[.[] | select(.path == "/ops")] | (all(.event_id == .ev.id)) and (map(.event_id) | unique | length) == length')" true
expect_eq "created says what is missing" \
    "$(received "[.[] | select(.path == \"/ops\" and .ev.type == \"request.created\" and .ev.request.id == \"$R1\") | .ev.request.missing[] | \"\(.group):\(.missing)\"] | join(\" \")")" \
    "security-officers:2 release-managers:1"
expect_eq "each approval names its officer and decision" \
    "$(received "[.[] | select(.path == \"/ops\" and .ev.type == \"request.approval\" and .ev.request.id == \"$R1\") | \"\(.ev.officer):\(.ev.decision):\(.ev.request.missing | map(.missing) | add // 0)\"] | sort | join(\" \")")" \
    "alice:approve:2 bob:approve:1 dave:approve:0"
expect_eq "signed: the object is signed, nothing missing, the gateway named" \
    "$(received "[.[] | select(.ev.type == \"request.signed\" and .path == \"/ops\") | \"\(.ev.request.state) \(.ev.request.missing | length) \(.ev.request.key) \(.ev.request.requester) \(.ev.request.artifact.name) \(.ev.gateway != \"\")\"] | .[0]")" \
    "signed 0 release ci test.bin true"
check "chat gets the signature in Slack's form" wait_for 10 \
    "[.[] | select(.path == \"/chat\")] | length >= 1"
expect_eq "... only {\"text\"}, one line naming the request" \
    "$(received "[.[] | select(.path == \"/chat\") | .ev | (keys == [\"text\"]) and (.text | contains(\"$R1\") and contains(\": signed\") and (contains(\"\n\") | not))] | all")" true

# --- a reject (firmware: one reject ends it) and a cancel -----------------
H2=$(printf '2%.0s' $(seq 64)); H3=$(printf '3%.0s' $(seq 64))
new_request ci firmware "$H2" >/dev/null; cp "$T_DIR/body" "$T_DIR/r2.json"
R2=$(jq -r .id "$T_DIR/r2.json")
expect_eq "carol rejects" "$(approve_with_openssl carol "$T_DIR/r2.json" reject)" 200
new_request ci release "$H3" >/dev/null
R3=$(jbody .id)
expect_eq "ci cancels" "$(post_json ci "/v1/requests/$R3/cancel" '{"reason":"wrong build"}')" 200
check "reject and cancel reach ops" wait_for 20 \
    "([.[] | select(.path == \"/ops\" and .ev.request.id == \"$R2\") | .ev.type] | sort == [\"request.approval\", \"request.created\", \"request.rejected\"]) and ([.[] | select(.path == \"/ops\" and .ev.request.id == \"$R3\") | .ev.type] | sort == [\"request.cancelled\", \"request.created\"])"
expect_eq "the reject names carol" \
    "$(received "[.[] | select(.ev.type == \"request.approval\" and .ev.request.id == \"$R2\") | \"\(.ev.officer):\(.ev.decision)\"] | join(\" \")")" "carol:reject"
expect_eq "the cancel names who and why" \
    "$(received "[.[] | select(.path == \"/ops\" and .ev.type == \"request.cancelled\") | \"\(.ev.officer):\(.ev.reason):\(.ev.request.state)\"] | join(\" \")")" \
    "ci:wrong build:cancelled"
check "chat gets the cancel, not the reject" wait_for 10 \
    "([.[] | select(.path == \"/chat\") | .ev.text | select(contains(\"$R3\") and contains(\"cancelled by ci: wrong build\"))] | length == 1) and ([.[] | select(.path == \"/chat\") | .ev.text | select(contains(\"$R2\"))] | length == 0)"

# --- a grant: created, four approvals, active, used once, revoked ---------
expect_eq "ci asks for a grant" "$(post_json ci /v1/grants '{"key":"release","count":2,"lifetime":600,"artifact":"app-*.bin"}')" 201
cp "$T_DIR/body" "$T_DIR/g.json"
G=$(jq -r .id "$T_DIR/g.json")
for o in alice bob carol dave; do
	st=$(approve_with_openssl $o "$T_DIR/g.json")
	[ "$st" = 200 ] || not_ok "$o approves the grant: $st"
done
expect_eq "a signature under the grant" "$(post_json ci /v1/requests "{\"grant\":\"$G\",\"digest\":{\"algorithm\":\"sha256\",\"value\":\"$(printf 'c%.0s' $(seq 64))\"},\"artifact\":{\"name\":\"app-1.bin\"}}")" 201
RG=$(jbody .id)
expect_eq "ci revokes the grant" "$(post_json ci "/v1/grants/$G/revoke" '{"reason":"release done"}')" 200
check "the grant's events and its signature's reach ops" wait_for 20 \
    "([.[] | select(.path == \"/ops\" and .ev.grant.id? == \"$G\") | .ev.type] | sort == [\"grant.active\", \"grant.approval\", \"grant.approval\", \"grant.approval\", \"grant.approval\", \"grant.created\", \"grant.revoked\"]) and ([.[] | select(.path == \"/ops\" and .ev.request.id? == \"$RG\") | .ev.type] | sort == [\"request.created\", \"request.signed\"])"
expect_eq "... the grant's pattern and count, who revoked it and why" \
    "$(received "[.[] | select(.ev.type == \"grant.revoked\") | \"\(.ev.grant.artifact) \(.ev.grant.count) \(.ev.grant.used) \(.ev.officer):\(.ev.reason)\"] | .[0]")" \
    "app-*.bin 2 1 ci:release done"
expect_eq "... the signature names its grant" \
    "$(received "[.[] | select(.ev.type == \"request.signed\" and .ev.request.id == \"$RG\") | .ev.request.grant.id] | .[0]")" "$G"

# --- a release: created, three approvals, active, signed -----------------
st=$(post_json ci /v1/releases "{\"key\":\"release\",\"release\":{\"name\":\"suite\",\"version\":\"2.0\"},\"artifacts\":[{\"name\":\"a.bin\",\"digest\":{\"algorithm\":\"sha256\",\"value\":\"$(printf 'a%.0s' $(seq 64))\"}},{\"name\":\"b.bin\",\"digest\":{\"algorithm\":\"sha256\",\"value\":\"$(printf 'b%.0s' $(seq 64))\"}}]}")
expect_eq "ci submits a release of two artifacts" "$st" 201
cp "$T_DIR/body" "$T_DIR/rel.json"
REL=$(jq -r .id "$T_DIR/rel.json")
for o in alice bob dave; do
	st=$(approve_with_openssl $o "$T_DIR/rel.json")
	[ "$st" = 200 ] || not_ok "$o approves the release: $st"
done
check "the release's events reach ops, up to signed" wait_for 30 \
    "[.[] | select(.path == \"/ops\" and .ev.release.id? == \"$REL\") | .ev.type] | sort == [\"release.active\", \"release.approval\", \"release.approval\", \"release.approval\", \"release.created\", \"release.signed\"]"
expect_eq "... naming the release and counting its artifacts" \
    "$(received "[.[] | select(.ev.type == \"release.signed\") | \"\(.ev.release.release.name) \(.ev.release.count) \(.ev.release.signed) \(.ev.release.state)\"] | .[0]")" \
    "suite 2 2 signed"

# --- the receiver down for a while, then up -------------------------------
stop_receiver
F0=$(metric signgate_notify_failures_total)
IDS=()
for h in 4 5 6; do
	new_request ci release "$(printf "$h%.0s" $(seq 64))" >/dev/null
	IDS+=("$(jbody .id)")
done
expect_eq "ci cancels one of them" "$(post_json ci "/v1/requests/${IDS[0]}/cancel" '{"reason":"superseded"}')" 200
check "deliveries fail while the receiver is down" bash -c "
	for i in \$(seq 1 200); do
		f=\$(curl -sS --cacert '$DEV/tls/ca.pem' '$URL/metrics' | awk '\$1 == \"signgate_notify_failures_total\" { print \$2 }')
		[ \"\${f:-0}\" -gt '${F0:-0}' ] && exit 0
		read -r -t 0.1 _ <>'$T_DIR/.pause'
	done; exit 1"
check "they are pending" test "$(metric signgate_notify_pending)" -ge 1
start_receiver || not_ok "the receiver starts again"
check "once it is back, every event arrives (4 to ops, 1 to chat)" wait_for 20 \
    "([.[] | select(.path == \"/ops\" and (.ev.request.id | IN(\"${IDS[0]}\", \"${IDS[1]}\", \"${IDS[2]}\")))] | length == 4) and ([.[] | select(.path == \"/chat\" and (.ev.text | contains(\"${IDS[0]}\")))] | length == 1)"
expect_eq "... each once, each valid" \
    "$(received '(map(.event_id + .path) | unique | length) == length and all(.valid)')" true
check "nothing is left pending" bash -c "
	for i in \$(seq 1 100); do
		[ \"\$(curl -sS --cacert '$DEV/tls/ca.pem' '$URL/metrics' | awk '\$1 == \"signgate_notify_pending\" { print \$2 }')\" = 0 ] && exit 0
		read -r -t 0.1 _ <>'$T_DIR/.pause'
	done; exit 1"

# --- SIGKILL while deliveries wait ----------------------------------------
stop_receiver
H7=$(printf '7%.0s' $(seq 64))
new_request ci release "$H7" >/dev/null; cp "$T_DIR/body" "$T_DIR/r7.json"
R7=$(jq -r .id "$T_DIR/r7.json")
expect_eq "alice approves R7" "$(approve_with_openssl alice "$T_DIR/r7.json")" 200
check "R7's events wait in the outbox" test "$(metric signgate_notify_pending)" -ge 2
kill9_daemon
start_daemon || { not_ok "the daemon starts again"; finish; exit 1; }
start_receiver || not_ok "the receiver starts again"
check "after the restart, R7's events arrive" wait_for 20 \
    "[.[] | select(.path == \"/ops\" and .ev.request.id == \"$R7\") | .ev.type] | sort == [\"request.approval\", \"request.created\"]"
expect_eq "... valid, with distinct ids" \
    "$(received "[.[] | select(.ev.request.id? == \"$R7\")] | all(.valid) and (map(.event_id) | unique | length) == 2")" true

# --- signgate watch -------------------------------------------------------
H8=$(printf '8%.0s' $(seq 64))
new_request ci release "$H8" >/dev/null
R8=$(jbody .id)
as bob
"$SIGNGATE" watch --once >"$T_DIR/watch.bob" 2>&1
expect_eq "watch --once exits 0" "$?" 0
check "bob's queue holds R8 and R7, with what they miss" grep -q \
    -e "waiting $R8 request release .* ci  *pending  *missing: 2 of 2 security-officers, 1 of 1 release-managers" \
    "$T_DIR/watch.bob"
check "... and R7, which alice approved" grep -q "waiting $R7 .*missing: 1 of 2 security-officers, 1 of 1 release-managers" "$T_DIR/watch.bob"
as alice
"$SIGNGATE" watch --once >"$T_DIR/watch.alice" 2>&1
check "alice's queue has R8 but not R7, which she decided" bash -c \
    "grep -q 'queue of alice:' '$T_DIR/watch.alice' && grep -q ' $R8 ' '$T_DIR/watch.alice' && ! grep -q ' $R7 ' '$T_DIR/watch.alice'"
as ci
"$SIGNGATE" watch --once >"$T_DIR/watch.ci" 2>&1
check "ci's queue does not hold what ci asked for" bash -c "! grep -q ' $R8 ' '$T_DIR/watch.ci'"

# --exec: one command per event, the event on stdin, never in the command.
as carol
: >"$T_DIR/exec.log"
timeout 60 "$SIGNGATE" watch --interval 1 --exec \
    'printf "%s %s\n" "$SG_EVENT_TYPE" "$SG_REQUEST_ID" >>"'"$T_DIR"'/exec.log"; cat >>"'"$T_DIR"'/exec.json"; echo >>"'"$T_DIR"'/exec.json"' \
    >"$T_DIR/watch.carol" 2>&1 &
WATCH_PID=$!
BG_PIDS+=("$WATCH_PID")
# wait_file SECONDS PATTERN FILE
wait_file() {
	local i
	for i in $(seq 1 $(( $1 * 20 ))); do
		grep -q -e "$2" "$3" 2>/dev/null && return 0
		pause 0.05
	done
	echo "no '$2' in $3 after $1 s:"; cat "$3"
	return 1
}
check "watch lists carol's queue first" wait_file 20 "queue of carol:" "$T_DIR/watch.carol"
expect_eq "... and runs no command for it" "$(wc -c <"$T_DIR/exec.log")" 0
H9=$(printf '9%.0s' $(seq 64))
new_request ci release "$H9" >/dev/null; cp "$T_DIR/body" "$T_DIR/r9.json"
R9=$(jq -r .id "$T_DIR/r9.json")
check "a new request runs the command" wait_file 20 "^new $R9\$" "$T_DIR/exec.log"
expect_eq "... with the event on its stdin" \
    "$(jq -rs "map(select(.request.id == \"$R9\")) | .[0] | \"\(.type) \(.request.state) \(.request.key)\"" "$T_DIR/exec.json")" \
    "new pending release"
expect_eq "alice approves R9" "$(approve_with_openssl alice "$T_DIR/r9.json")" 200
check "her decision is a change" wait_file 20 "^changed $R9\$" "$T_DIR/exec.log"
expect_eq "ci cancels R9" "$(post_json ci "/v1/requests/$R9/cancel" '{"reason":"done watching"}')" 200
check "the cancel takes it out of the queue" wait_file 20 "^gone $R9\$" "$T_DIR/exec.log"
expect_eq "... the event shows it cancelled" \
    "$(jq -rs "map(select(.type == \"gone\" and .request.id == \"$R9\")) | .[0].request.state" "$T_DIR/exec.json")" cancelled
kill -TERM "$WATCH_PID" 2>/dev/null
wait "$WATCH_PID" 2>/dev/null

# --- a receiver that never answers holds up neither the others nor a stop -
# It accepts connections (the kernel does) and never reads them: a
# delivery waits there for its 10 s; the other webhook and the stop must
# not.
/usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
print(s.getsockname()[1], flush=True); time.sleep(120)' >"$T_DIR/hole.port" &
BG_PIDS+=("$!")
check "the silent receiver listens" wait_file 10 "^[0-9]" "$T_DIR/hole.port"
HOLE=$(cat "$T_DIR/hole.port")
stop_daemon
jq ".notify.webhooks = [{name: \"hole\", url: \"http://127.0.0.1:$HOLE/\",
    secret_file: \"$T_DIR/ops.hmac\"}, .notify.webhooks[0]]" \
    "$T_DIR/signgated.json" >"$T_DIR/hole.json"
DAEMON_CONF=$T_DIR/hole.json start_daemon || not_ok "the daemon starts with the silent webhook"
new_request ci release "$(printf 'e%.0s' $(seq 64))" >/dev/null
check "a delivery is connected to it" bash -c "
	for i in \$(seq 1 200); do
		ss -Htn state established '( dport = :$HOLE )' | grep -q . && exit 0
		read -r -t 0.05 _ <>'$T_DIR/.pause'
	done; exit 1"
# While that delivery hangs (10 s), ops is told of the next request.
new_request ci release "$(printf 'f%.0s' $(seq 64))" >/dev/null
RH=$(jbody .id)
check "the other webhook's deliveries go on meanwhile" wait_for 6 \
    "[.[] | select(.path == \"/ops\" and .ev.request.id == \"$RH\")] | length == 1"
t0=$(date +%s%N)
DAEMON_CONF=$T_DIR/hole.json stop_daemon
t1=$(date +%s%N)
check "the daemon stops within 2 s all the same" test $(( (t1 - t0) / 1000000 )) -lt 2000

# --- two gateways on one PostgreSQL database share the outbox -------------
# Events made on either gateway are delivered once, by one of them.
need_pg "the shared outbox" || { finish; exit; }
trap 'stop_gateways; cleanup' EXIT
pg_start "$T_DIR/pg" >/dev/null || { not_ok "PostgreSQL starts"; finish; exit 1; }
pg_new_db signgate >/dev/null || { not_ok "a database for signgate"; finish; exit 1; }
give_to_front "$PG_DB_PASSFILE"
chmod 0600 "$PG_DB_PASSFILE"
for g in a b; do
	jq ".state_dir = \"$T_DIR/state-$g\" |
	    .store = {backend: \"postgresql\", conninfo: \"$PG_DB_CONNINFO\",
	              password_file: \"$PG_DB_PASSFILE\", node: \"gw-$g\"}" \
	    "$T_DIR/signgated.json" >"$T_DIR/$g.json"
	DAEMON_CONF=$T_DIR/$g.json DAEMON_LOG=$T_DIR/$g.log start_daemon ||
	    { not_ok "gateway $g starts on PostgreSQL"; finish; exit 1; }
	case $g in a) A_PID=$DAEMON_PID; A=$URL ;; b) B_PID=$DAEMON_PID; B=$URL ;; esac
	DAEMON_PID=
done
: >"$RECV_LOG"
PG_IDS=()
for i in 1 2 3 4 5 6; do
	if [ $((i % 2)) -eq 0 ]; then URL=$A; other=$B; else URL=$B; other=$A; fi
	new_request ci release "$(printf "d%063x" "$i")" >/dev/null
	id=$(jbody .id)
	PG_IDS+=("$id")
	URL=$other
	st=$(post_json ci "/v1/requests/$id/cancel" '{"reason":"two sites"}')
	[ "$st" = 200 ] || not_ok "cancel $id on the other gateway: $st"
done
check "every event arrives: 12 to ops, 6 to chat" wait_for 30 \
    "([.[] | select(.path == \"/ops\")] | length == 12) and ([.[] | select(.path == \"/chat\")] | length == 6)"
expect_eq "... each once, each valid, for these six requests" \
    "$(received "(map(.event_id + .path) | unique | length) == length and all(.valid) and ([.[] | select(.path == \"/ops\") | .ev.request.id] | unique | sort) == ([\"${PG_IDS[0]}\",\"${PG_IDS[1]}\",\"${PG_IDS[2]}\",\"${PG_IDS[3]}\",\"${PG_IDS[4]}\",\"${PG_IDS[5]}\"] | sort)")" true
URL=$A; da=$(metric signgate_notify_delivered_total)
URL=$B; db=$(metric signgate_notify_delivered_total)
expect_eq "the two gateways delivered 18 between them, none twice" "$(( ${da:-0} + ${db:-0} ))" 18
stop_gateways
pg_stop "$T_DIR/pg"

finish
