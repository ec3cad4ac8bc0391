# The officers' console in a real browser: headless Chromium over
# WebDriver (tests/integration/console_driver.py), with a virtual security
# key (the WebDriver WebAuthn extension) and the dev CA trusted through an
# NSS db in a HOME of its own, so that https://localhost:PORT is a secure
# context without certificate errors.
#   - dave registers a key on the registration page; the printed policy
#     lines go into his principal, the policy is reloaded (SIGHUP);
#   - he signs in with the key, finds a release request (2 security
#     officers + 1 release manager) in his queue, opens it and approves
#     it in the page; alice and bob approve with their key files; the
#     page shows it signed without a reload, and `signgate verify`
#     accepts the signature offline;
#   - refused: envelopes the page signed, then altered (client data,
#     origin, credential id, another officer's keyid), and posts without
#     the configured Origin;
#   - the console's front: no client certificate, the security headers,
#     a silent peer closed at the handshake deadline, `signgated -t`
#     checking that the certificate names the console's host;
#   - a release is listed and approved in the page the same way;
#   - he rejects another with a reason (signed with the decision), and
#     cancels a third in the page (an assertion over the cancel text).
# Without chromium, chromedriver, certutil or python3 the test is skipped, except
# in CI (CI set), where that is a failure.
. "$(dirname "$0")/lib.sh"

missing=
for p in /usr/bin/chromium /usr/bin/chromedriver certutil /usr/bin/python3; do
	command -v "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ -n "${CI:-}" ]; then
		not_ok "the browser test's programs are installed (CI):$missing"
	else
		echo "# not found:$missing (scripts/deps.sh installs them): console browser test skipped"
	fi
	finish
	exit $?
fi

DRIVER="/usr/bin/python3 $SG_ROOT/tests/integration/console_driver.py $T_DIR/wd.json"

# --- the gateway, its console on a port of its own ------------------------
cp "$DEV/policy.conf" "$T_DIR/policy.conf"
# The origin names the port, so it is chosen first; should another
# program take it meanwhile, another one.
for attempt in 1 2 3; do
	CPORT=$(free_port)
	ORIGIN="https://localhost:$CPORT"
	write_config ".policy = \"$T_DIR/policy.conf\" | .console = {\"listen\": \"127.0.0.1:$CPORT\", \"rp_id\": \"localhost\", \"origin\": \"$ORIGIN\"}"
	start_daemon >"$T_DIR/start-daemon.out" 2>&1 && break
	grep -q "console: cannot listen" "$T_DIR/start-daemon.out" || break
done
if [ -z "$DAEMON_PID" ]; then
	not_ok "daemon starts"
	sed 's/^/    /' "$T_DIR/start-daemon.out" | head -20
	finish
	exit 1
fi
for i in $(seq 1 500); do
	grep -q "console on https://127.0.0.1:$CPORT" "$T_DIR/daemon.log" && break
	pause 0.01
done
check "the console listens on its own port" \
    grep -q "console on https://127.0.0.1:$CPORT (origin $ORIGIN)" "$T_DIR/daemon.log"

# The console over curl: no client certificate needed, the headers.
st=$(curl -sS --max-time 10 --cacert "$DEV/tls/ca.pem" -D "$T_DIR/h" \
    -o "$T_DIR/index.html" -w '%{http_code}' "$ORIGIN/" 2>"$T_DIR/curl.err")
expect_eq "the page is served without a client certificate" "$st" 200
check "with the Content-Security-Policy" grep -qi "^content-security-policy: default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'" "$T_DIR/h"
check "nosniff (once), no referrer, no-store" sh -c "[ \$(grep -ci '^x-content-type-options: nosniff' '$T_DIR/h') = 1 ] && grep -qi '^referrer-policy: no-referrer' '$T_DIR/h' && grep -qi '^cache-control: no-store' '$T_DIR/h'"
st=$(curl -sS --max-time 10 --cacert "$DEV/tls/ca.pem" -o /dev/null \
    -w '%{http_code}' "$ORIGIN/api/queue" 2>>"$T_DIR/curl.err")
expect_eq "the queue needs a session" "$st" 401

# Unknown peers are held to the API's deadlines: one that never starts
# TLS is closed at the handshake deadline (handshake_timeout, 3 s).
handshake_closes() {
	api - GET /metrics >/dev/null
	awk '/^signgate_http_deadline_closes_total\{deadline="handshake"\}/ { print $2 }' "$T_DIR/body"
}
before=$(handshake_closes)
exec 3<>"/dev/tcp/127.0.0.1/$CPORT"
read -r -t 20 -u 3 _
rc=$?
exec 3<&-
expect_eq "a silent peer of the console is closed (end of file, not our timeout)" "$rc" 1
check "... at the handshake deadline (counted in /metrics)" \
    [ "$(handshake_closes)" -gt "${before:-0}" ]

# signgated -t: the certificate must name the console's host.
check "signgated -t accepts the console (the certificate names localhost)" \
    "$SIGNGATED" -t -c "$T_DIR/signgated.json"
jq '.console.rp_id = "example.com" | .console.origin = "https://console.example.com"' \
    "$T_DIR/signgated.json" >"$T_DIR/other-host.json"
"$SIGNGATED" -t -c "$T_DIR/other-host.json" >"$T_DIR/t.out" 2>&1
expect_eq "signgated -t refuses a console host the certificate does not name" \
    "$?:$(grep -c "console.origin: the TLS certificate .* does not name 'console.example.com'" "$T_DIR/t.out")" "1:1"

# --- the browser ------------------------------------------------------------
export HOME="$T_DIR/home"
mkdir -p "$HOME/.pki/nssdb"
certutil -N -d "sql:$HOME/.pki/nssdb" --empty-password
certutil -A -d "sql:$HOME/.pki/nssdb" -n signgate-dev-ca -t "C,," \
    -i "$DEV/tls/ca.pem"
WD_PORT=$(free_port)
WD_PID=
stop_browser() {
	[ -n "$WD_PID" ] || return 0
	$DRIVER quit >/dev/null 2>&1
	# chromedriver and the browser it started: their own process group.
	kill -TERM -- "-$WD_PID" 2>/dev/null
	for i in $(seq 1 200); do
		kill -0 -- "-$WD_PID" 2>/dev/null || break
		pause 0.01
	done
	kill -KILL -- "-$WD_PID" 2>/dev/null
	WD_PID=
}
trap 'stop_browser; cleanup' EXIT
setsid timeout 120 /usr/bin/chromedriver --port="$WD_PORT" \
    >"$T_DIR/chromedriver.log" 2>&1 &
WD_PID=$!
for i in $(seq 1 1000); do
	curl -s --max-time 1 "http://127.0.0.1:$WD_PORT/status" 2>/dev/null |
	    grep -q '"ready": *true' && break
	pause 0.01
done
if ! $DRIVER start "http://127.0.0.1:$WD_PORT" "$T_DIR/chrome" \
    >"$T_DIR/start.out" 2>&1; then
	not_ok "headless Chromium starts with a virtual authenticator"
	sed 's/^/    /' "$T_DIR/start.out" | head -20
	finish
	exit 1
fi
ok "headless Chromium starts with a virtual authenticator"

# --- registration -------------------------------------------------------
check "dave registers a security key on the registration page" \
    sh -c "$DRIVER register '$ORIGIN' dave >'$T_DIR/reg.txt'"
check "the page prints the webauthn-key line with this RP ID and origin" \
    grep -Eq "^webauthn-key [A-Za-z0-9_-]+ rp-id localhost origin $ORIGIN\$" "$T_DIR/reg.txt"
check "... and the credential's public key" \
    sh -c "sed -n '/BEGIN PUBLIC KEY/,/END PUBLIC KEY/p' '$T_DIR/reg.txt' | openssl pkey -pubin -noout"
CRED=$(awk '/^webauthn-key /{print $2}' "$T_DIR/reg.txt")

# Into dave's principal, version 2, reloaded.
awk -v lines="$T_DIR/reg.txt" '
	/^principal dave$/ { in_dave = 1 }
	in_dave && /^end$/ {
		while ((getline l < lines) > 0) print "    " l
		in_dave = 0
	}
	{ print }' "$DEV/policy.conf" | sed 's/^version 1$/version 2/' \
    >"$T_DIR/policy.conf"
kill -HUP "$DAEMON_PID"
for i in $(seq 1 500); do
	grep -q 'SIGHUP' "$T_DIR/daemon.log" && break
	pause 0.01
done
check "SIGHUP: the policy with dave's key is in force" \
    grep -q 'SIGHUP: policy signgate-dev version 2 in force' "$T_DIR/daemon.log"

# --- sign-in, queue, request page ------------------------------------------
check "dave signs in with the key" $DRIVER signin "$ORIGIN" dave
H=$(printf 'c%.0s' $(seq 64))
st=$(new_request ci release "$H")
expect_eq "ci asks for a release signature" "$st" 201
cp "$T_DIR/body" "$T_DIR/rq.json"
ID=$(jq -r .id "$T_DIR/rq.json")
check "the request is in dave's queue (live, without a reload)" \
    $DRIVER queue-has "$ORIGIN" "$ID"
$DRIVER open "$ORIGIN" "$ID" >"$T_DIR/page-statement.txt" 2>"$T_DIR/open.err"
check "the request page shows the exact statement" \
    cmp "$T_DIR/page-statement.txt" <(jq -j .statement "$T_DIR/rq.json")

# --- refusals: envelopes the page signed, altered ----------------------------
COOKIE=$($DRIVER cookie 2>"$T_DIR/cookie.err")
check "the session cookie is a __Host- cookie" \
    grep -q '^__Host-signgate-console=' <<<"$COOKIE"
cpost() {	# PATH FILE [ORIGIN]: a POST as the page makes it
	curl -sS --max-time 30 --cacert "$DEV/tls/ca.pem" -X POST \
	    -H "Origin: ${3-$ORIGIN}" -H 'Content-Type: application/json' \
	    -H "Cookie: $COOKIE" --data-binary "@$2" -o "$T_DIR/cbody" \
	    -w '%{http_code}' "$ORIGIN$1" 2>>"$T_DIR/curl.err"
}
$DRIVER envelope approve >"$T_DIR/env.json" 2>"$T_DIR/env.err"
check "the page signs an approval envelope with the key" \
    jq -e --arg c "$CRED" '.signatures[0].keyid == "dave" and .signatures[0].webauthn.credential_id == $c' "$T_DIR/env.json"
cd_json=$(jq -r '.signatures[0].webauthn.client_data_json' "$T_DIR/env.json" | base64 -d)
alter_cd() {	# sed expression: the envelope with its client data changed
	local cd
	cd=$(printf '%s' "$cd_json" | sed "$1" | base64 -w0)
	jq --arg cd "$cd" '.signatures[0].webauthn.client_data_json = $cd' \
	    "$T_DIR/env.json"
}
alter_cd 's/"type":"webauthn.get"/"type": "webauthn.get"/' >"$T_DIR/t1.json"
st=$(cpost "/api/requests/$ID/approvals" "$T_DIR/t1.json")
check "a tampered client data is refused ($st)" [ "${st:0:1}" = 4 ]
alter_cd "s#\"origin\":\"$ORIGIN\"#\"origin\":\"https://evil.example\"#" >"$T_DIR/t2.json"
check "(the origin was there to change)" sh -c "! cmp -s '$T_DIR/t2.json' '$T_DIR/env.json'"
st=$(cpost "/api/requests/$ID/approvals" "$T_DIR/t2.json")
check "a client data of another origin is refused ($st)" [ "${st:0:1}" = 4 ]
other=$(head -c 16 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')
jq --arg c "$other" '.signatures[0].webauthn.credential_id = $c' \
    "$T_DIR/env.json" >"$T_DIR/t3.json"
st=$(cpost "/api/requests/$ID/approvals" "$T_DIR/t3.json")
check "a credential the policy does not register is refused ($st)" [ "${st:0:1}" = 4 ]
jq '.signatures[0].keyid = "alice"' "$T_DIR/env.json" >"$T_DIR/t4.json"
expect_eq "an envelope of another officer is refused" \
    "$(cpost "/api/requests/$ID/approvals" "$T_DIR/t4.json")" 403
expect_eq "a POST from another origin is refused" \
    "$(cpost "/api/requests/$ID/approvals" "$T_DIR/env.json" https://evil.example)" 403
expect_eq "a POST without Origin is refused" \
    "$(cpost "/api/requests/$ID/approvals" "$T_DIR/env.json" '')" 403
api ci GET "/v1/requests/$ID" >/dev/null
expect_eq "none of them was recorded" "$(jbody '.approvals | length')" 0

# --- the approval in the page, then two officers with key files ------------
check "dave approves in the page with the key" $DRIVER approve
api ci GET "/v1/requests/$ID" >/dev/null
expect_eq "dave's decision is recorded (approve, counts)" \
    "$(jbody '[.approvals[] | select(.officer == "dave") | .decision, .counts] | join(" ")')" \
    "approve true"
expect_eq "alice approves with her key file" "$(approve_with_openssl alice "$T_DIR/rq.json")" 200
expect_eq "bob approves with his key file" "$(approve_with_openssl bob "$T_DIR/rq.json")" 200
cp "$T_DIR/body" "$T_DIR/signed.json"
expect_eq "the request is signed" "$(jq -r .state "$T_DIR/signed.json")" signed
check "the page shows it signed without a reload" $DRIVER wait-state signed
$DRIVER screenshot "${SG_CONSOLE_SCREENSHOT:-$T_DIR/console-request.png}" 2>>"$T_DIR/open.err"
check "a screenshot of the request page" \
    sh -c "head -c 8 '${SG_CONSOLE_SCREENSHOT:-$T_DIR/console-request.png}' | od -An -tx1 | grep -q '89 50 4e 47'"

jq -r .signature.signature "$T_DIR/signed.json" | base64 -d >"$T_DIR/sig"
jq -j .signature.log.proof "$T_DIR/signed.json" >"$T_DIR/proof"
api - GET /v1/log/key >/dev/null
cp "$T_DIR/body" "$T_DIR/log.vkey"
check "signgate verify accepts the signature offline (dave's key assertion among the approvals)" \
    "$SIGNGATE" verify --key-file "$T_DIR/log.vkey" \
    --policy "$T_DIR/policy.conf" --proof "$T_DIR/proof" \
    --signature "$T_DIR/sig" --digest "sha256:$H"

# --- a rejection with its reason, signed ------------------------------------
H3=$(printf 'e%.0s' $(seq 64))
new_request ci release "$H3" >/dev/null
ID3=$(jbody .id)
$DRIVER open "$ORIGIN" "$ID3" >/dev/null 2>>"$T_DIR/open.err"
check "dave rejects a request in the page, with a reason" \
    $DRIVER reject "not this build"
api ci GET "/v1/requests/$ID3" >/dev/null
expect_eq "dave's rejection is recorded with his signed reason" \
    "$(jbody '[.approvals[] | select(.officer == "dave") | .decision, .reason] | join(" / ")')" \
    "reject / not this build"

# --- a release: listed and approved the same way -------------------------------
st=$(post_json ci /v1/releases "{\"key\":\"release\",\"artifacts\":[{\"name\":\"app.bin\",\"digest\":{\"algorithm\":\"sha256\",\"value\":\"$(printf 'f%.0s' $(seq 64))\"}}]}")
expect_eq "ci submits a release" "$st" 201
RID=$(jbody .id)
check "the release is in dave's queue" $DRIVER queue-has "$ORIGIN" "$RID"
$DRIVER open "$ORIGIN" "$RID" >"$T_DIR/release-statement.txt" 2>>"$T_DIR/open.err"
check "its page shows the release's statement" \
    grep -q '^release ' "$T_DIR/release-statement.txt"
check "dave approves the release in the page" $DRIVER approve
api ci GET "/v1/requests/$RID" >/dev/null
expect_eq "dave's approval of the release is recorded and counts" \
    "$(jbody '[.approvals[] | select(.officer == "dave") | .decision, .counts] | join(" ")')" \
    "approve true"

# --- a cancel in the page ------------------------------------------------------
H2=$(printf 'd%.0s' $(seq 64))
new_request ci release "$H2" >/dev/null
ID2=$(jbody .id)
$DRIVER open "$ORIGIN" "$ID2" >/dev/null 2>>"$T_DIR/open.err"
check "dave cancels another request in the page" \
    $DRIVER cancel "wrong build"
api ci GET "/v1/requests/$ID2" >/dev/null
expect_eq "it is cancelled by dave, with his reason" \
    "$(jbody '[.state, .cancelled.by, .cancelled.reason] | join("/")')" \
    "cancelled/dave/wrong build"

stop_browser
finish
