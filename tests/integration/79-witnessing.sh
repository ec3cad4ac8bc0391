# The gateway's side of witnessing, with two signgate-witness daemons and
# a witness quorum of 2: every signature's proof carries both witnesses'
# cosignatures, `signgate verify --witness` accepts it with both keys and
# refuses it when the quorum asked for is not met.  One witness down with
# fail-closed: the signature request waits, then fails with 503
# "recorded", its log entry stored and no signature handed out; when the
# witness is back, the retry with the same Idempotency-Key gets it.  In
# best-effort the answer comes with the one cosignature there is.  Last,
# the gateway restored from an older copy of its state (and its signer's
# record): the witnesses answer 409, and the gateway says so in its log,
# its metrics and /readyz, while `signgate log monitor` reports the
# rollback from its own state.  That gateway then grows a tree of its own
# past the witnesses' (a fork): they answer 422, and it says so too.
. "$(dirname "$0")/lib.sh"

# sign_nightly N KEY: POST /v1/requests for nightly over digest N with
# Idempotency-Key KEY; prints the status (the answer in $T_DIR/body) and
# writes the time it took (ms) to $T_DIR/elapsed.
sign_nightly() {
	local t0 st
	t0=$(date +%s%3N)
	st=$(post_json ci /v1/requests "{\"key\":\"nightly\",\"digest\":{\"algorithm\":\"sha256\",\"value\":\"$(printf '%064x' "$1")\"},\"artifact\":{\"name\":\"n$1.bin\"}}" \
	    -H "Idempotency-Key: $2")
	echo $(($(date +%s%3N) - t0)) >"$T_DIR/elapsed"
	echo "$st"
}

# save_proof NAME: the answer's proof bundle to $T_DIR/NAME.proof.
save_proof() { jq -j .signature.log.proof "$T_DIR/body" >"$T_DIR/$1.proof"; }
# cosig_lines FILE: the cosignature lines (after the log's own) in it; in
# a proof, those of its first bundle (the others carry the same note).
cosig_lines() {
	awk '/^c2sp\.org\/tlog-proof@v1$/ { n++ } n <= 1' "$1" |
	    grep -c '^— witness\.test/'
}

# expect_verify TEST WANT NAME N ARGS...: signgate verify, offline, of
# the proof NAME of digest N exits WANT.
expect_verify() {
	local test=$1 want=$2 name=$3 n=$4; shift 4
	expect_rc "$test" "$want" verify --key-file "$T_DIR/vkey" \
	    --policy "$DEV/policy.conf" --proof "$T_DIR/$name.proof" \
	    --digest "sha256:$(printf '%064x' "$n")" "$@"
}

# wait_for SECONDS CMD...: polls CMD until it succeeds, at most SECONDS.
wait_for() {
	local n=$(($1 * 20)) i; shift
	for i in $(seq 1 "$n"); do
		"$@" >/dev/null 2>&1 && return 0
		pause 0.05
	done
	return 1
}

# --- set-up: two witnesses at known ports, a gateway with quorum 2 -----------
P1=$(free_port)
P2=$(free_port)
# gateway_config MODE: the configuration with both witnesses.
gateway_config() {
	write_config ".witnesses = {quorum: 2, mode: \"$1\", timeout_ms: 1000,
	    list: [{name: \"witness.test/w1\", url: \"http://127.0.0.1:$P1\",
	            vkey: \"$W1_VKEY\"},
	           {name: \"witness.test/w2\", url: \"http://127.0.0.1:$P2\",
	            vkey: \"$W2_VKEY\"}]}"
}
# The log's key first: the witnesses need it, and the gateway their keys.
mkdir -p "$T_DIR/witness-w1" "$T_DIR/witness-w2"
for w in w1 w2; do
	(umask 077 && openssl genpkey -algorithm ed25519 \
	    -out "$T_DIR/witness-$w/w.key" 2>/dev/null)
done
start_daemon || { not_ok "daemon starts"; finish; exit 1; }
api - GET /v1/log/key >/dev/null
VKEY=$(body | tr -d '\n')
printf '%s\n' "$VKEY" >"$T_DIR/vkey"
stop_daemon
WITNESS_EXTRA=".listen.port = $P1" start_witness w1 "$VKEY" ||
    { not_ok "witness w1 starts"; finish; exit 1; }
W1_VKEY=$W_VKEY W1_PID=$W_PID
WITNESS_EXTRA=".listen.port = $P2" start_witness w2 "$VKEY" ||
    { not_ok "witness w2 starts"; finish; exit 1; }
W2_VKEY=$W_VKEY W2_PID=$W_PID
rm -f "$T_DIR/signgated.json"
gateway_config fail-closed
check "signgated --check accepts the witnesses" \
    "$SIGNGATED" --check -c "$T_DIR/signgated.json"
jq '.witnesses.list[1].vkey = "w2+00000000+AAAA"' "$T_DIR/signgated.json" \
    >"$T_DIR/bad.json"
check "signgated --check names a malformed witness key" bash -c "
    ! '$SIGNGATED' --check -c '$T_DIR/bad.json' >'$T_DIR/check.txt' 2>&1 &&
    grep -q 'witnesses.list\\[1\\].vkey: must be a witness verifier key' '$T_DIR/check.txt'"
jq '.witnesses.list[0].ca_file = "missing.pem"' "$T_DIR/signgated.json" \
    >"$T_DIR/bad.json"
check "signgated --check names a witness CA file it cannot read" bash -c "
    ! '$SIGNGATED' --check -c '$T_DIR/bad.json' >'$T_DIR/check.txt' 2>&1 &&
    grep -q 'witnesses.list\\[0\\].ca_file: cannot read' '$T_DIR/check.txt'"
start_daemon || { not_ok "daemon starts with witnesses"; finish; exit 1; }
as ci

# --- quorum 2: two cosignatures on every proof --------------------------------
expect_eq "a nightly signature (201)" "$(sign_nightly 1 k1)" 201
save_proof a
expect_eq "its proof's checkpoint carries two cosignatures" \
    "$(cosig_lines "$T_DIR/a.proof")" 2
expect_verify "verify with both witnesses' keys" 0 a 1 \
    --witness "$W1_VKEY" --witness "$W2_VKEY"
check "... says which witnesses cosigned" \
    grep -qx 'witnessed: 2 of 2 witnesses (witness.test/w1, witness.test/w2), 2 required' "$T_DIR/out"
expect_verify "verify with \
    --witness-quorum 3 refuses" 5 a 1 --witness "$W1_VKEY" --witness "$W2_VKEY" --witness-quorum 3
check "... naming the witness link" grep -q '^verify: witness: ' "$T_DIR/err"
# A third witness that never saw this log: its key, not its daemon.
mkdir -p "$T_DIR/w3"
(umask 077 && openssl genpkey -algorithm ed25519 -out "$T_DIR/w3/w.key" 2>/dev/null)
jq -n --arg s "$T_DIR/w3/state" --arg v "$VKEY" '{name: "witness.test/w3",
    key_file: "w.key", state_dir: $s, logs: [{vkey: $v}]}' >"$T_DIR/w3/w.json"
W3_VKEY=$("$SIGNGATE_WITNESS" --print-vkey "$T_DIR/w3/w.json")
expect_verify "verify refuses when one of the two keys given did not cosign" 5 a 1 \
    --witness "$W1_VKEY" --witness "$W3_VKEY"
# w1's key under a second name, and w1's cosignature copied under that
# name's key id: a cosignature does not sign the name, so the copy
# verifies, and one witness would count as two.
jq '.name = "witness.test/w1-twin" | .key_file = "'"$T_DIR/witness-w1/w.key"'"' \
    "$T_DIR/witness-w1/w.json" >"$T_DIR/twin.json"
TWIN_VKEY=$("$SIGNGATE_WITNESS" --print-vkey "$T_DIR/twin.json")
python3 - "$T_DIR/a.proof" "$T_DIR/twin.proof" "${TWIN_VKEY#*+}" <<'PY'
import base64, sys
src, dst, vk = sys.argv[1], sys.argv[2], sys.argv[3]
kid = bytes.fromhex(vk.split("+")[0])
out = []
for line in open(src, encoding="utf-8").read().split("\n"):
    out.append(line)
    if line.startswith("\u2014 witness.test/w1 "):
        raw = base64.b64decode(line.split(" ")[2])
        out.append("\u2014 witness.test/w1-twin " +
                   base64.b64encode(kid + raw[4:]).decode())
open(dst, "w", encoding="utf-8").write("\n".join(out))
PY
expect_eq "the forged proof carries w1's cosignature twice" \
    "$(cosig_lines "$T_DIR/twin.proof")" 3
expect_verify "verify refuses one witness's key under two names" 2 twin 1 \
    --witness "$W1_VKEY" --witness "$TWIN_VKEY" --witness-quorum 2
check "... saying so" grep -q 'the same key as another witness' "$T_DIR/err"
expect_verify "... and the forged proof still counts w1 and w2 once each" \
    0 twin 1 --witness "$W1_VKEY" --witness "$W2_VKEY"
printf '# the witnesses\n%s\n\n%s\n' "$W1_VKEY" "$W2_VKEY" >"$T_DIR/witnesses"
expect_verify "verify with \
    --witness-file" 0 a 1 --witness-file "$T_DIR/witnesses"
api - GET /v1/log/checkpoint >/dev/null
check "/v1/log/checkpoint is the cosigned checkpoint" \
    test "$(cosig_lines "$T_DIR/body")" -eq 2
api - GET /metrics >/dev/null
check "/metrics counts each witness's cosignatures" bash -c "
    grep -Eq '^signgate_witness_cosignatures_total\{witness=\"witness.test/w1\"\} [1-9]' '$T_DIR/body' &&
    grep -Eq '^signgate_witness_cosignatures_total\{witness=\"witness.test/w2\"\} [1-9]' '$T_DIR/body'"
STATE="$T_DIR/monitor.state"
expect_rc "log monitor, first run" 0 log monitor --state "$STATE"

# --- one witness down, fail-closed --------------------------------------------
stop_witness "$W2_PID" w2
entries() { sqlite3 "file:$T_DIR/state/signgate.db?mode=ro" \
    'SELECT COUNT(*) FROM log_entries'; }
before=$(entries)
expect_eq "one witness down: the signature request fails with 503" \
    "$(sign_nightly 2 k2)" 503
check "... after waiting for the witnesses (at least 1.5 s)" \
    test "$(cat "$T_DIR/elapsed")" -ge 1500
expect_eq "... recorded" "$(jbody .recorded)" true
check "... awaiting witness cosignatures" bash -c \
    "jq -r .detail '$T_DIR/body' | grep -q 'awaits witness cosignatures'"
check "... and without any signature" bash -c "! grep -q '\"signature\"' '$T_DIR/body'"
check "the log holds its entry all the same" test "$(entries)" -gt "$before"
ID2=$(jq -r .detail "$T_DIR/body" | grep -o 'request [0-9a-f]\{32\}' | cut -d' ' -f2)
expect_eq "reading the request is refused the same way" \
    "$(api ci GET "/v1/requests/$ID2")" 503
WITNESS_EXTRA=".listen.port = $P2" start_witness w2 "$VKEY" ||
    not_ok "witness w2 restarts"
W2_PID=$W_PID
expect_eq "the witness is back: the retry gets the signature" \
    "$(sign_nightly 2 k2)" 200
expect_eq "... the same request" "$(jbody .id)" "$ID2"
save_proof b
expect_verify "... under a checkpoint both witnesses cosigned" 0 b 2 \
    --witness "$W1_VKEY" --witness "$W2_VKEY"

# --- best-effort ---------------------------------------------------------------
stop_daemon
# The state the rollback below restores (the gateway is stopped).
cp -a "$T_DIR/state" "$T_DIR/state.bak"
cp -a "$T_DIR/state-hsm" "$T_DIR/state-hsm.bak"
stop_witness "$W2_PID" w2
gateway_config best-effort
start_daemon || { not_ok "daemon starts in best-effort"; finish; exit 1; }
expect_eq "best-effort, one witness down: answered" "$(sign_nightly 3 k3)" 201
save_proof c
expect_eq "... with the one cosignature there is" \
    "$(cosig_lines "$T_DIR/c.proof")" 1
expect_verify "... which verifies with that witness" 0 c 3 --witness "$W1_VKEY"
expect_verify "... and not as a quorum of two" 5 c 3 \
    --witness "$W1_VKEY" --witness "$W2_VKEY"
WITNESS_EXTRA=".listen.port = $P2" start_witness w2 "$VKEY" ||
    not_ok "witness w2 restarts"
W2_PID=$W_PID
expect_eq "both witnesses back: a signature" "$(sign_nightly 4 k4)" 201
save_proof d
expect_verify "... cosigned by both" 0 d 4 \
    --witness "$W1_VKEY" --witness "$W2_VKEY"
expect_rc "log monitor follows the log" 0 log monitor --state "$STATE"

# --- rollback: the older copy restored -----------------------------------------
stop_daemon
rm -rf "$T_DIR/state" "$T_DIR/state-hsm"
mv "$T_DIR/state.bak" "$T_DIR/state"
mv "$T_DIR/state-hsm.bak" "$T_DIR/state-hsm"
gateway_config fail-closed
start_daemon || { not_ok "the restored gateway starts"; finish; exit 1; }
rolled() { grep -q 'witness witness.test/w1: THE LOG WAS ROLLED BACK OR FORKED' "$T_DIR/daemon.log"; }
check "the gateway logs the witnesses' refusal" wait_for 20 rolled
check "... naming the witness and both sizes" grep -Eq \
    'witness witness.test/w1: THE LOG WAS ROLLED BACK OR FORKED: it has cosigned a tree of [0-9]+ entries, larger than the [0-9]+ this gateway holds' \
    "$T_DIR/daemon.log"
check "the witnesses answered 409" grep -q ': 409: ' "$T_DIR/witness-w1.log"
api - GET /metrics >/dev/null
check "/metrics counts the rollback" grep -Eq \
    '^signgate_witness_rollbacks_total\{witness="witness.test/w1"\} [1-9]' "$T_DIR/body"
degraded() { [ "$(api - GET /readyz)" = 503 ] && grep -q 'rolled back or forked' "$T_DIR/body"; }
check "/readyz is degraded, saying why" wait_for 10 degraded
expect_rc "log monitor reports the rollback" 5 log monitor --state "$STATE"
check "... as a rollback" grep -qi 'rollback' "$T_DIR/err" "$T_DIR/out"

# --- fork: the restored gateway grows past what the witnesses saw -------------
# Its new entries are not those the witnesses cosigned: once its tree is
# larger than theirs, no consistency proof from their tree can verify.
n503=0
for n in 5 6 7 8; do
	[ "$(sign_nightly "$n" "fork$n")" = 503 ] && n503=$((n503 + 1))
done
expect_eq "the forked gateway answers no signature (503, fail-closed)" \
    "$n503" 4
forked() { grep -q 'THE LOG WAS ROLLED BACK OR FORKED: it cannot verify that the tree of [0-9]* entries extends' "$T_DIR/daemon.log"; }
check "the gateway logs the fork once its tree is the larger" wait_for 20 forked
check "... which the witnesses refused with 422" \
    grep -q ': 422: ' "$T_DIR/witness-w1.log"
check "/readyz stays degraded" degraded
expect_rc "log monitor still reports it" 5 log monitor --state "$STATE"

stop_witness "$W1_PID" w1
stop_witness "$W2_PID" w2
finish
