# `signgate log monitor --key`: the first run records where the log is
# without reporting history; the next reports exactly the signatures made
# by that key since (indices as the signers' proof bundles say), nothing
# for another key, and nothing on a run right after; a request created
# before one run and signed after it is reported with its artifact's name;
# --artifact-pattern, --hours and --max-per-run turn a signature into
# exit 6 naming the entry; the Prometheus textfile says what the run saw,
# a failed run included (a gateway out of reach: exit 4); a corrupted
# state file is refused and left alone; a version 1 state file is
# accepted and upgraded; --from 0 reports the history, through the JSON
# API and through the gateway's tiles and a mirror's directory (--log),
# which must not hold a changed entry; a checkpoint cosigned (with
# openssl, as c2sp.org/tlog-cosignature says) by fewer than
# --witness-quorum of the --witness keys fails with exit 5, one cosigned
# by enough passes.
. "$(dirname "$0")/lib.sh"

# The CLI may take up to a minute here (see sg in lib.sh).
SG_TIMEOUT=60

# The indices of the signature lines the last run printed, one a line.
reported() { sed -n 's/^signature: index \([0-9]*\) .*/\1/p' "$T_DIR/out"; }
# sign_as KEY NAME: signs a fresh file called NAME; prints its log index.
sign_as() {
	local f="$T_DIR/work/$2"
	head -c 64 /dev/urandom >"$f"
	[ "$(sg sign --key "$1" "$f")" = 0 ] || { echo "sign-failed"; return; }
	sed -n 's/^index //p' "$f.sig.proof" | head -n 1
}
prom() { sed -n "s/^$1 //p" "$T_DIR/metrics.prom"; }

# A second key that needs no approval, on the nightly key's object.
sed -n '/^key nightly$/,/^end$/p' "$DEV/policy.conf" |
    sed 's/^key nightly$/key nightly-b/' >"$T_DIR/policy.extra"
cat "$DEV/policy.conf" "$T_DIR/policy.extra" >"$T_DIR/policy.conf"
write_config ".policy = \"$T_DIR/policy.conf\""
start_daemon || { not_ok "daemon starts"; finish; exit 1; }
as ci
mkdir -p "$T_DIR/work"
STATE="$T_DIR/monitor.state"
MON=(log monitor --state "$STATE" --key nightly)

# --- the first run records the position ------------------------------------
sign_as nightly before.bin >/dev/null
expect_rc "first run" 0 "${MON[@]}"
expect_eq "... reports no history" "$(reported | wc -l)" 0
check "... writes a version 2 state" grep -qx 'signgate-log-monitor v2' "$STATE"
expect_eq "... that starts at the log's end" \
    "$(sed -n 's/^next //p' "$STATE")" "$(sed -n 's/^size //p' "$STATE")"

# --- k signatures by nightly, one by nightly-b -------------------------------
want=""
for i in 1 2 3; do
	want="$want$(sign_as nightly "a$i.bin")"$'\n'
done
other=$(sign_as nightly-b b1.bin)
cp "$STATE" "$T_DIR/max.state"
expect_rc "--max-per-run 2 over the 3 signatures" 6 log monitor --state "$T_DIR/max.state" \
    --key nightly --max-per-run 2
check "... says so" grep -q 'VIOLATION: entry [0-9]*: 3 signatures by key nightly in one run .* more than --max-per-run 2' "$T_DIR/err"
expect_rc "the run after the signatures" 0 "${MON[@]}" --prometheus "$T_DIR/metrics.prom"
expect_eq "... reports exactly nightly's 3 signatures, by index" \
    "$(reported | sort -n)" "$(printf '%s' "$want" | sort -n)"
check "... nothing of nightly-b's (entry $other)" bash -c \
    "! grep -q 'index $other ' '$T_DIR/out'"
check "... each line names key, requester, approvers, hsm and artifact" \
    grep -qE "^signature: index [0-9]+ time 20[0-9-]{8}T[0-9:]{8}Z key nightly request [0-9a-f]{32} requester ci approvers - hsm [0-9a-f]+ CH artifact sha256:[0-9a-f]{64} name a1\.bin$" "$T_DIR/out"
check "... and its summary" grep -qx 'signatures: 3 by key nightly' "$T_DIR/out"
expect_eq "prometheus: nightly's signatures" "$(prom 'signgate_log_monitor_signatures{key="nightly"}')" 3
expect_eq "prometheus: nightly-b's signatures" "$(prom 'signgate_log_monitor_signatures{key="nightly-b"}')" 1
expect_eq "prometheus: log size is the state's" "$(prom signgate_log_monitor_log_size)" "$(sed -n 's/^size //p' "$STATE")"
expect_eq "prometheus: no violations" "$(prom signgate_log_monitor_violations)" 0
expect_eq "prometheus: up" "$(prom signgate_log_monitor_up)" 1
expect_eq "prometheus: last success is the state's" \
    "$(prom signgate_log_monitor_last_success_timestamp_seconds)" "$(sed -n 's/^success //p' "$STATE")"

expect_rc "a run right after" 0 "${MON[@]}"
expect_eq "... reports nothing" "$(reported | wc -l)" 0
check "... and read nothing" grep -qx 'read: no new entries' "$T_DIR/out"

# --- a request created before a run and signed after it ----------------------
head -c 32 /dev/urandom >"$T_DIR/work/fw.bin"
expect_eq "a firmware request" "$(new_request ci firmware "$(hexdigest sha256 "$T_DIR/work/fw.bin")")" 201
cp "$T_DIR/body" "$T_DIR/fw.json"
FID=$(jq -r .id "$T_DIR/fw.json")
expect_rc "a run while it is pending" 0 log monitor --state "$STATE" --key firmware
check "... remembers the pending request" grep -q "^pending $FID " "$STATE"
for o in alice bob; do
	expect_eq "$o approves" "$(approve_with_openssl $o "$T_DIR/fw.json")" 200
done
expect_eq "the firmware request is signed" \
    "$(api ci GET "/v1/requests/$FID?wait=20" >/dev/null; jbody .state)" signed
expect_rc "the run after its signature" 0 log monitor --state "$STATE" --key firmware
check "... names the artifact and both officers" grep -qE \
    "^signature: index [0-9]+ .* key firmware request $FID requester ci approvers (alice,bob|bob,alice) .* name test\.bin$" "$T_DIR/out"
check "... and forgets the request" bash -c "! grep -q '^pending $FID ' '$STATE'"

# --- rules -------------------------------------------------------------------
bad=$(sign_as nightly tool.exe)
expect_rc "an artifact outside --artifact-pattern" 6 "${MON[@]}" \
    --artifact-pattern '*.bin' --artifact-pattern '*.tar.gz'
check "... names the entry $bad" grep -q "VIOLATION: entry $bad: artifact name tool.exe matches no --artifact-pattern" "$T_DIR/err"
check "... still reports it" grep -q "^signature: index $bad " "$T_DIR/out"

late=$(sign_as nightly late.bin)
h=$(date -u +%H); h=$((10#$h))
s=$(((h + 1) % 24)); e=$((s + 1))
hours=$(printf '%02d-%02d' "$s" "$e")
expect_rc "a signature outside --hours $hours" 6 "${MON[@]}" --hours "$hours" \
    --artifact-pattern '*.bin' --prometheus "$T_DIR/metrics.prom"
check "... names the entry $late" grep -q "VIOLATION: entry $late: signed at .* outside --hours $hours" "$T_DIR/err"
expect_eq "prometheus: one violation" "$(prom signgate_log_monitor_violations)" 1
expect_eq "prometheus: two since the state began" "$(prom signgate_log_monitor_violations_total)" 2
expect_eq "prometheus: exit status 6" "$(prom signgate_log_monitor_exit_status)" 6
expect_eq "--hours with no hour" "$(sg "${MON[@]}" --hours 07-07)" 2

# --- state files -------------------------------------------------------------
cp "$STATE" "$T_DIR/good.state"
sed 's/^next \([0-9]*\)$/next x\1/' "$T_DIR/good.state" >"$STATE"
cp "$STATE" "$T_DIR/bad.state"
expect_rc "a corrupted state file" 1 "${MON[@]}" --prometheus "$T_DIR/metrics.prom"
check "... is refused" grep -q 'not a log monitor state file' "$T_DIR/err"
check "... and left as it was" cmp -s "$STATE" "$T_DIR/bad.state"
expect_eq "prometheus: the failure" "$(prom signgate_log_monitor_up)/$(prom signgate_log_monitor_exit_status)" 0/1

cp "$T_DIR/good.state" "$STATE"
expect_rc "a gateway out of reach" 4 --url https://127.0.0.1:1 "${MON[@]}" \
    --prometheus "$T_DIR/metrics.prom"
check "... leaves the state as it was" cmp -s "$STATE" "$T_DIR/good.state"
expect_eq "prometheus: the failure, and the last success from the state" \
    "$(prom signgate_log_monitor_up)/$(prom signgate_log_monitor_exit_status)/$(prom signgate_log_monitor_last_success_timestamp_seconds)" \
    "0/4/$(sed -n 's/^success //p' "$STATE")"

sign_as nightly after-v1.bin >/dev/null
{ echo 'signgate-log-monitor v1'; sed -n '2,4p' "$T_DIR/good.state"; } >"$STATE"
expect_rc "a version 1 state file" 0 "${MON[@]}"
check "... is upgraded" grep -qx 'signgate-log-monitor v2' "$STATE"
check "... and says so" grep -qx 'state: upgraded from version 1' "$T_DIR/out"
expect_eq "... reading from its size on" "$(reported | wc -l)" 1

# --- history, through the API and through the tiles --------------------------
expect_rc "a first run with --from 0" 0 log monitor --state "$T_DIR/h.state" \
    --key nightly --from 0
cp "$T_DIR/out" "$T_DIR/api.out"
expect_eq "... reports every nightly signature, by index" "$(reported | sort -n)" \
    "$(for f in before.bin a1.bin a2.bin a3.bin tool.exe late.bin after-v1.bin; do
	sed -n 's/^index //p' "$T_DIR/work/$f.sig.proof" | head -n 1; done | sort -n)"
VKEY=$(sed -n 's/^key //p' "$STATE")
expect_rc "--log: the same from the gateway's tiles" 0 log monitor \
    --state "$T_DIR/t.state" --key nightly --from 0 --log "$URL/log" --vkey "$VKEY"
expect_eq "... the same lines" "$(grep '^signature:' "$T_DIR/out")" \
    "$(grep '^signature:' "$T_DIR/api.out")"
expect_rc "log mirror to a directory" 0 log mirror "$T_DIR/mirror" --vkey "$VKEY"
expect_rc "--log: the same from the mirror's directory" 0 log monitor \
    --state "$T_DIR/m.state" --key nightly --from 0 --log "$T_DIR/mirror" --vkey "$VKEY"
expect_eq "... the same lines" "$(grep '^signature:' "$T_DIR/out")" \
    "$(grep '^signature:' "$T_DIR/api.out")"
cp -r "$T_DIR/mirror" "$T_DIR/bad-mirror"
bundle=$(find "$T_DIR/bad-mirror/tile/entries" -type f | head -n 1)
# A letter of an entry's "signgate-log-entry" header, changed.
off=$(grep -bo 'signgate-log-entry' "$bundle" | sed -n '3s/:.*//p')
printf 'S' | dd of="$bundle" bs=1 seek="$off" conv=notrunc status=none
expect_rc "--log: a mirror with a changed entry" 5 log monitor \
    --state "$T_DIR/bm.state" --from 0 --log "$T_DIR/bad-mirror" --vkey "$VKEY"
check "... BAD ENTRY, and no state written" bash -c \
    "grep -q 'BAD ENTRY' '$T_DIR/err' && test ! -e '$T_DIR/bm.state'"
expect_eq "--log on a first run without --vkey" "$(sg log monitor \
    --state "$T_DIR/t2.state" --log "$URL/log")" 2

# --- witnesses ----------------------------------------------------------------
hex2bin() { printf '%s' "$1" | sed 's/../\\x&/g' | xargs -0 printf '%b'; }
# witness NAME: a cosigner key (openssl) in $T_DIR/NAME.key; sets W and WID.
witness() {
	local pub
	openssl genpkey -algorithm ed25519 -out "$T_DIR/$1.key" 2>/dev/null
	pub=$(openssl pkey -in "$T_DIR/$1.key" -pubout -outform DER 2>/dev/null |
	    tail -c 32 | od -An -tx1 -v | tr -d ' \n')
	WID=$({ printf '%s\n\004' "$1"; hex2bin "$pub"; } |
	    openssl dgst -sha256 -binary | head -c 4 | od -An -tx1 | tr -d ' \n')
	W="$1+$WID+$({ printf '\004'; hex2bin "$pub"; } | base64 -w0)"
}
# cosign NAME WID NOTE: appends NAME's cosignature/v1 line (c2sp.org/
# tlog-cosignature, made here with openssl) to the signed note NOTE.
cosign() {
	local t d="$T_DIR/cosig.$1"
	mkdir -p "$d"
	t=$(date +%s)
	awk '/^$/ { exit } { print }' "$3" >"$d/text"
	{ printf 'cosignature/v1\ntime %s\n' "$t"; cat "$d/text"; } >"$d/msg"
	openssl pkeyutl -sign -inkey "$T_DIR/$1.key" -rawin -in "$d/msg" -out "$d/sig"
	printf '\342\200\224 %s %s\n' "$1" "$({ hex2bin "$2"; hex2bin "$(printf '%016x' "$t")";
	    cat "$d/sig"; } | base64 -w0)" >>"$3"
}
witness w1; W1=$W; W1ID=$WID
witness w2; W2=$W
cp "$STATE" "$T_DIR/before-w.state"
expect_rc "a checkpoint without the witness's cosignature" 5 "${MON[@]}" --witness "$W1"
check "... WITNESS QUORUM on stderr" grep -q 'WITNESS QUORUM' "$T_DIR/err"
check "... the state file unchanged" cmp -s "$STATE" "$T_DIR/before-w.state"
expect_eq "--witness-quorum above the keys given" "$(sg "${MON[@]}" --witness "$W1" --witness-quorum 2)" 2
expect_eq "--witness with a log key" "$(sg "${MON[@]}" --witness "$VKEY")" 2
# A mirror whose checkpoint w1 cosigned (the log's signature untouched).
cp -r "$T_DIR/mirror" "$T_DIR/w-mirror"
cosign w1 "$W1ID" "$T_DIR/w-mirror/checkpoint"
expect_rc "a checkpoint cosigned by w1, quorum 1 of w1 and w2" 0 log monitor \
    --state "$T_DIR/w.state" --log "$T_DIR/w-mirror" --vkey "$VKEY" \
    --witness "$W1" --witness "$W2" --witness-quorum 1
check "... says 1 of 2" grep -qx 'witnesses: 1 of 2 cosigned (quorum 1)' "$T_DIR/out"
expect_rc "... and not with quorum 2" 5 log monitor --state "$T_DIR/w2.state" \
    --log "$T_DIR/w-mirror" --vkey "$VKEY" --witness "$W1" --witness "$W2"

finish
