# libsigngate-pkcs11.so under the stock tools people sign with: OpenSSL
# through libp11's engine (a digest and a CMS file, by pkcs11: URI),
# osslsigncode (Authenticode over a PE file from tests/tools/mkpe, checked
# by `osslsigncode verify` against the dev code-signing CA; Debian 12's
# own 2.5 and backports' 2.9 alike) and jarsigner through SunPKCS11
# (checked by `jarsigner -verify -strict` against the same CA).  Each runs
# for three keys:
#
# - nightly: ECDSA P-256, no approval;
# - build-rsa: RSA-3072 PKCS#1 v1.5, no approval (added to a copy of the
#   dev policy on the HSM object firmware);
# - release: ECDSA P-256 under a grant that three security officers and
#   the release manager approved (the module is told the grant's id).
#
# Every signature a tool embeds is the one the gateway logged: the
# module's evidence directory holds the request, its proof and the raw
# signature; the bytes are compared with the tool's output, and
# `signgate verify` accepts each offline against the log key and the
# policy.  Then the failures: a request the officers reject makes the
# waiting tool fail at once with the module's explanation and no output
# file; a gateway that refuses connections, one that hangs, and one that
# stops while the tool waits make the tool fail within its time bounds.
#
# Under the sanitizers (BUILD=build-san) the module is the sanitized one,
# loaded into the stock tools with libasan preloaded (ASan must come
# first in the process; the JVM runs with it too); any sanitizer report on
# a tool's standard error fails the script.  Leak checking is off in those
# processes: the tools leak of their own at exit, and the module's leaks
# are checked by its unit tests under LSan.
. "$(dirname "$0")/lib.sh"

MOD="$BUILD/libsigngate-pkcs11.so"
CS="$DEV/codesign"

missing=
for t in openssl osslsigncode jarsigner jar unzip; do
	command -v "$t" >/dev/null || missing="$missing $t"
done
[ -f "$MOD" ] || missing="$missing $MOD"
MKPE="$BUILD/tools/mkpe"
[ -x "$MKPE" ] || missing="$missing $MKPE"
ENGINE_SO=$(openssl version -e | sed -n 's/^ENGINESDIR: "\(.*\)"$/\1/p')/pkcs11.so
[ -f "$ENGINE_SO" ] || missing="$missing $ENGINE_SO"
if [ -n "$missing" ]; then
	not_ok "the tools, the module and mkpe are there (missing:$missing; scripts/deps.sh installs the tools, make all unit builds the rest)"
	finish
	exit 1
fi

# --- the gateway: the dev policy and an RSA key without approval -----------
P="$T_DIR/policy.conf"
cp "$DEV/policy.conf" "$P"
cat >>"$P" <<EOF
key build-rsa
    token signgate-dev
    object firmware
    algorithm rsa-pkcs1
    formats raw cms
    certificate $CS/firmware.chain.pem
    requesters ci
    veto no
    lifetime 1h
    countries CH
end
EOF
write_config ".policy = \"$P\""
start_daemon || { not_ok "daemon starts"; finish; exit 1; }
api - GET /v1/log/key >/dev/null
cp "$T_DIR/body" "$T_DIR/log.vkey"

# The module's configuration: the conveyor's client certificate.
conf() {	# conf URL TIMEOUT CONNECT_TIMEOUT
	cat <<EOF
# signgate PKCS#11 module, as the build conveyor ci
url = $1
cert = $DEV/tls/ci.pem
key = $DEV/tls/ci.key
cacert = $DEV/tls/ca.pem
timeout = $2
connect_timeout = $3
EOF
}
conf "$URL" 60 5 >"$T_DIR/pkcs11.conf"
CONF="$T_DIR/pkcs11.conf"
TOOL_TIMEOUT=120
TOOL_GRANT=
# libp11's engine loads the module named here (osslsigncode names it
# with -pkcs11module); SunPKCS11 reads its own configuration file.
export PKCS11_MODULE_PATH="$MOD"
printf 'name = signgate\nlibrary = %s\nslotListIndex = 0\n' "$MOD" \
    >"$T_DIR/sunpkcs11.cfg"

# The grant for release: three security officers and the release manager
# approve once, for names starting with "release-".
st=$(post_json ci /v1/grants '{"key":"release","count":10,"lifetime":3600,"artifact":"release-*"}')
expect_eq "ci asks for a grant of key release" "$st" 201
cp "$T_DIR/body" "$T_DIR/grant.json"
GRANT=$(jq -r .id "$T_DIR/grant.json")
for o in alice bob carol dave; do
	expect_eq "$o approves the grant" \
	    "$(approve_with_openssl "$o" "$T_DIR/grant.json")" 200
done
api ci GET "/v1/requests/$GRANT" >/dev/null
expect_eq "the grant is active" "$(jbody .state)" active
# The grant named in the configuration file (jarsigner), or in the
# environment (the others).
{ cat "$T_DIR/pkcs11.conf"; echo "grant = $GRANT"; } >"$T_DIR/grant.conf"

# --- helpers ----------------------------------------------------------------

uri() { printf 'pkcs11:token=signgate;object=%s;type=private' "$1"; }

# leaf KEY / chain KEY: the key's certificate and chain (build-rsa is the
# firmware object, with firmware's certificate).
leaf() { [ "$1" = build-rsa ] && set -- firmware; echo "$CS/$1.pem"; }
chain() { [ "$1" = build-rsa ] && set -- firmware; echo "$CS/$1.chain.pem"; }

now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }

# tool LABEL CMD...: runs CMD, a tool signing through the module
# configured by $CONF, under the grant $TOOL_GRANT (none when
# empty), bounded by timeout(1) ($TOOL_TIMEOUT s), with no input; the
# artifact name is LABEL and the evidence goes to a directory of its own
# ($T_DIR/ev/LABEL).  Output in $T_DIR/LABEL.out and .err; prints the
# exit status and leaves the elapsed milliseconds in $T_DIR/LABEL.ms.
tool() {
	local label=$1 t0 rc; shift
	mkdir -p "$T_DIR/ev/$label"
	t0=$(now_ms)
	env "${SAN_ENV[@]}" SIGNGATE_PKCS11_CONF="$CONF" \
	    SIGNGATE_PKCS11_ARTIFACT="$label" SIGNGATE_PKCS11_GRANT="$TOOL_GRANT" \
	    SIGNGATE_PKCS11_EVIDENCE_DIR="$T_DIR/ev/$label" \
	    timeout "$TOOL_TIMEOUT" "$@" </dev/null >"$T_DIR/$label.out" \
	    2>"$T_DIR/$label.err"
	rc=$?
	echo $(($(now_ms) - t0)) >"$T_DIR/$label.ms"
	echo "$rc"
}

# expect_tool NAME LABEL CMD...: the tool succeeds.
expect_tool() {
	local name=$1 label=$2 rc; shift 2
	rc=$(tool "$label" "$@")
	expect_eq "$name (exit 0)" "$rc" 0
	if [ "$rc" != 0 ]; then
		sed 's/^/    stderr: /' "$T_DIR/$label.err" | head -n 15
	fi
}

# failed STATUS: a tool's exit status says it failed by itself (not 0,
# and not 124: stopped by timeout(1)).
failed() { [ -n "$1" ] && [ "$1" != 0 ] && [ "$1" != 124 ]; }

hexof() { od -An -v -tx1 "$1" | tr -d ' \n'; }

# sig_of DER: the signature value of a PKCS#7 / CMS SignedData with one
# signer and no unsigned attributes: its last OCTET STRING, in hex.
sig_of() {
	openssl asn1parse -inform DER -in "$1" |
	    sed -n 's/.*prim: OCTET STRING *\[HEX DUMP\]://p' | tail -n 1 |
	    tr 'A-F' 'a-f'
}

# mech TOOL KEY: the mechanism the tool uses: OpenSSL (and osslsigncode,
# through it) hashes itself and asks for CKM_ECDSA or CKM_RSA_PKCS over a
# DigestInfo; SunPKCS11 hands the data to the module's hashing mechanisms.
mech() {
	case "$1:$2" in
	jarsigner:build-rsa) echo CKM_SHA256_RSA_PKCS ;;
	jarsigner:*) echo CKM_ECDSA_SHA256 ;;
	*:build-rsa) echo CKM_RSA_PKCS ;;
	*) echo CKM_ECDSA ;;
	esac
}

# evidence LABEL KEY TOOL SIGHEX: the module wrote exactly one signature
# for this run; it is KEY's, for artifact LABEL, made by TOOL with the
# mechanism it uses, it is the signature the tool embedded (SIGHEX), and
# `signgate verify` accepts it offline with its log proof (for release:
# as a signature under the grant).
evidence() {
	local label=$1 key=$2 tool=$3 want=$4 ev="$T_DIR/ev/$1" n id j
	n=$(find "$ev" -name '*.json' | wc -l)
	[ "$n" = 1 ] || { echo "$n signatures in $ev:"; ls -l "$ev"; return 1; }
	j=$(find "$ev" -name '*.json')
	id=$(basename "$j" .json)
	jq -e --arg k "$key" --arg a "$label" --arg t "$tool" \
	    --arg m "$(mech "$tool" "$key")" \
	    '.state == "signed" and .key == $k and
	     .artifact == {"name": $a, "tool": $t, "mechanism": $m}' \
	    "$j" >/dev/null || { echo "request:"; jq . "$j"; return 1; }
	[ "$(hexof "$ev/$id.sig")" = "$want" ] || {
		echo "logged signature $(hexof "$ev/$id.sig")"
		echo "tool's signature  $want"
		return 1
	}
	"$SIGNGATE" verify --key-file "$T_DIR/log.vkey" --policy "$P" \
	    --proof "$ev/$id.proof" --signature "$ev/$id.sig" \
	    --digest "$(jq -r '"\(.digest.algorithm):\(.digest.value)"' "$j")" \
	    >"$ev/verify.out" 2>&1 || { cat "$ev/verify.out"; return 1; }
	grep -qx "key: $key sha256:[0-9a-f]* [a-z0-9-]*" "$ev/verify.out" ||
	    { cat "$ev/verify.out"; return 1; }
	if [ "$key" = release ]; then
		grep -q "^grant: $GRANT requester ci " "$ev/verify.out" ||
		    { cat "$ev/verify.out"; return 1; }
	fi
}

# --- per key: OpenSSL, osslsigncode, jarsigner -------------------------------

printf 'payload for the digest signatures\n' >"$T_DIR/payload.bin"
# The Authenticode target: a minimal PE file (Debian 12's own osslsigncode
# 2.5 signs PE files, not scripts).
"$MKPE" "$T_DIR/hello.exe" "signed through signgate"
mkdir -p "$T_DIR/jar/app"
printf 'class data for the jar test\n' >"$T_DIR/jar/app/data.txt"
t0=$(now_ms)
jar --create --file "$T_DIR/app.jar" -C "$T_DIR/jar" app
echo "jar created in $(($(now_ms) - t0)) ms"

for key in nightly build-rsa release; do
	key_pem "$key" >"$T_DIR/$key.pub"
	# release signs under the grant, with names matching "release-*".
	pre="$key-"; TOOL_GRANT=
	[ "$key" = release ] && { pre="release-"; TOOL_GRANT=$GRANT; }

	# openssl dgst: the digest of a file signed with the engine key.
	l="${pre}dgst"
	expect_tool "$key: openssl dgst -sign with $(uri "$key")" "$l" \
	    openssl dgst -sha256 -engine pkcs11 -keyform engine \
	    -sign "$(uri "$key")" -out "$T_DIR/$l.sig" "$T_DIR/payload.bin"
	check "$key: openssl dgst -verify accepts it" \
	    openssl dgst -sha256 -verify "$T_DIR/$key.pub" \
	    -signature "$T_DIR/$l.sig" "$T_DIR/payload.bin"
	check "$key: ... it is the logged signature ($(mech openssl "$key")), signgate verify accepts it" \
	    evidence "$l" "$key" openssl "$(hexof "$T_DIR/$l.sig")"
	check "$key: ... over the file's SHA-256" jq -e \
	    --arg d "$(hexdigest sha256 "$T_DIR/payload.bin")" \
	    '.digest == {"algorithm": "sha256", "value": $d}' \
	    "$T_DIR/ev/$l/"*.json

	# openssl cms: a detached CMS signature with the code-signing chain.
	l="${pre}cms"
	expect_tool "$key: openssl cms -sign with the engine key" "$l" \
	    openssl cms -sign -engine pkcs11 -keyform engine \
	    -inkey "$(uri "$key")" -signer "$(leaf "$key")" \
	    -certfile "$CS/ca.pem" -md sha256 -binary \
	    -in "$T_DIR/payload.bin" -outform DER -out "$T_DIR/$l.p7s"
	check "$key: openssl cms -verify accepts it against the dev CA" \
	    openssl cms -verify -binary -inform DER -in "$T_DIR/$l.p7s" \
	    -content "$T_DIR/payload.bin" -CAfile "$CS/ca.pem" -purpose any \
	    -out /dev/null
	check "$key: ... it is the logged signature ($(mech openssl "$key")), signgate verify accepts it" \
	    evidence "$l" "$key" openssl "$(sig_of "$T_DIR/$l.p7s")"

	# osslsigncode: Authenticode over a PE file.
	l="${pre}exe"
	expect_tool "$key: osslsigncode signs a PE file with -pkcs11module" \
	    "$l" osslsigncode sign -pkcs11module "$MOD" \
	    -certs "$(chain "$key")" -key "$(uri "$key")" -h sha256 \
	    -in "$T_DIR/hello.exe" -out "$T_DIR/$l.exe"
	check "$key: osslsigncode verify accepts it against the dev CA" \
	    osslsigncode verify -CAfile "$CS/ca.pem" -in "$T_DIR/$l.exe"
	# (-pem: osslsigncode 2.5 writes the raw certificate table entry.)
	osslsigncode extract-signature -pem -in "$T_DIR/$l.exe" \
	    -out "$T_DIR/$l.pem" >/dev/null 2>&1
	openssl pkcs7 -in "$T_DIR/$l.pem" -outform DER -out "$T_DIR/$l.p7"
	check "$key: ... it is the logged signature ($(mech osslsigncode "$key")), signgate verify accepts it" \
	    evidence "$l" "$key" osslsigncode "$(sig_of "$T_DIR/$l.p7")"

	# jarsigner: one more signer on the same JAR for each key, its
	# signature files named after the key (-sigfile).
	l="${pre}jar"
	sf=$(printf %s "$key" | tr 'a-z-' 'A-Z_' | cut -c1-8)
	[ "$key" = release ] && { CONF="$T_DIR/grant.conf"; TOOL_GRANT=; }
	expect_tool "$key: jarsigner signs the JAR through SunPKCS11" \
	    "$l" jarsigner -keystore NONE -storetype PKCS11 \
	    -addprovider SunPKCS11 -providerArg "$T_DIR/sunpkcs11.cfg" \
	    -protected -sigfile "$sf" "$T_DIR/app.jar" "$key"
	CONF="$T_DIR/pkcs11.conf"
	check "$key: ... jarsigner says the jar is signed" \
	    grep -qx 'jar signed.' "$T_DIR/$l.out"
	blk=META-INF/$sf.EC; [ "$key" = build-rsa ] && blk=META-INF/$sf.RSA
	unzip -p "$T_DIR/app.jar" "$blk" >"$T_DIR/$l.blk"
	unzip -p "$T_DIR/app.jar" "META-INF/$sf.SF" >"$T_DIR/$l.sf"
	check "$key: ... its signature block verifies against the dev CA" \
	    openssl cms -verify -binary -inform DER -in "$T_DIR/$l.blk" \
	    -content "$T_DIR/$l.sf" -CAfile "$CS/ca.pem" -purpose any \
	    -out /dev/null
	check "$key: ... it is the logged signature ($(mech jarsigner "$key")), signgate verify accepts it" \
	    evidence "$l" "$key" jarsigner "$(sig_of "$T_DIR/$l.blk")"
done

TOOL_GRANT=

# One jarsigner -verify for the JAR that all three keys signed, strict,
# with the dev code-signing CA as its only trust anchor.
keytool -importcert -noprompt -alias signgate-dev-ca -file "$CS/ca.pem" \
    -keystore "$T_DIR/devca.p12" -storetype PKCS12 -storepass changeit \
    </dev/null >"$T_DIR/keytool.out" 2>&1
jarsigner -verify -strict -verbose -keystore "$T_DIR/devca.p12" \
    -storepass changeit "$T_DIR/app.jar" </dev/null >"$T_DIR/jarverify.out" 2>&1
expect_eq "jarsigner -verify -strict accepts the JAR against the dev CA (exit 0)" "$?" 0
check "... and says 'jar verified.'" grep -qx 'jar verified.' "$T_DIR/jarverify.out"
for cn in nightly firmware release; do
	check "... signed by signgate dev $cn" \
	    grep -q "^- Signed by \"CN=signgate dev $cn\"" "$T_DIR/jarverify.out"
done

# --- failures -------------------------------------------------------------------

# bg_tool LABEL CMD...: tool in the background; its status goes to
# $T_DIR/LABEL.rc; sets BG_PID.
bg_tool() {
	local label=$1
	( tool "$@" >"$T_DIR/$label.rc" ) &
	BG_PID=$!
	BG_PIDS+=("$BG_PID")
}

# wait_pending LABEL: waits (bounded) until the request made for artifact
# LABEL is pending; its id in PENDING_ID, the request in $T_DIR/LABEL.req.
wait_pending() {
	PENDING_ID=
	for _ in $(seq 1 400); do
		api audit GET '/v1/requests?state=pending&key=firmware' >/dev/null
		PENDING_ID=$(jq -r --arg a "$1" \
		    '[.requests[] | select(.artifact.name == $a)][0].id // empty' \
		    "$T_DIR/body")
		if [ -n "$PENDING_ID" ]; then
			api audit GET "/v1/requests/$PENDING_ID" >/dev/null
			cp "$T_DIR/body" "$T_DIR/$1.req"
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# wait_bg PID SECONDS: waits, bounded, for that background tool; 0 when
# it ended in time.
wait_bg() {
	for _ in $(seq 1 $(($2 * 20))); do
		kill -0 "$1" 2>/dev/null || { wait "$1"; return 0; }
		sleep 0.05
	done
	return 1
}

# A request the officers reject: osslsigncode waits for key firmware's two
# officers; alice rejects it (the key has a veto).
l=rejected-exe
bg_tool "$l" osslsigncode sign -pkcs11module "$MOD" \
    -certs "$(chain firmware)" -key "$(uri firmware)" -h sha256 \
    -in "$T_DIR/hello.exe" -out "$T_DIR/$l.exe"
check "firmware: osslsigncode's request waits for approval" wait_pending "$l"
check "... while osslsigncode waits" kill -0 "$BG_PID"
t0=$(now_ms)
expect_eq "alice rejects it" \
    "$(approve_with_openssl alice "$T_DIR/$l.req" reject)" 200
check "osslsigncode ends soon after the reject" wait_bg "$BG_PID" 15
echo "    (ended $(($(now_ms) - t0)) ms after the reject)"
rc=$(cat "$T_DIR/$l.rc" 2>/dev/null)
check "... and fails (exit $rc)" failed "$rc"
check "... the module says the request was rejected, and by whom" \
    grep -qx "signgate-pkcs11: request $PENDING_ID for key 'firmware' was rejected by alice" \
    "$T_DIR/$l.err"
check "... no signed file is left" [ ! -e "$T_DIR/$l.exe" ]
check "... no evidence is written" [ -z "$(ls -A "$T_DIR/ev/$l")" ]

# An ECDSA key that needs approvals, not approved within the timeout
# (2 s): libp11 retries a failed ECDSA signature once through OpenSSL's
# own EC method; the module must not make a second request (and a second
# wait) for the digest the gateway just refused.
conf "$URL" 2 5 >"$T_DIR/short.conf"
CONF="$T_DIR/short.conf"
l=timeout-dgst
rc=$(tool "$l" openssl dgst -sha256 -engine pkcs11 -keyform engine \
    -sign "$(uri release)" -out "$T_DIR/$l.sig" "$T_DIR/payload.bin")
CONF="$T_DIR/pkcs11.conf"
check "release, not approved within 2 s: openssl fails (exit $rc)" failed "$rc"
check "... the module says it cancelled the request" \
    grep -q "^signgate-pkcs11: request [0-9a-f]* for key 'release': not approved within 2 s: cancelled" \
    "$T_DIR/$l.err"
api audit GET '/v1/requests?key=release&state=cancelled' >/dev/null
expect_eq "... exactly one request was made (and cancelled)" \
    "$(jq --arg a "$l" '[.requests[] | select(.artifact.name == $a)] | length' "$T_DIR/body")" 1
# The bounds leave room for a slow start of the tool on a busy machine;
# a second wait, or a hang, would go past them.
check "... within the 2 s timeout plus the tool's start, one wait ($(cat "$T_DIR/$l.ms") ms)" \
    [ "$(cat "$T_DIR/$l.ms")" -lt 8000 ]

# The gateway down: a tool must fail, and within its time bounds.  Each
# runs under a shorter timeout(1) so that a hang costs little.
TOOL_TIMEOUT=20

# A gateway that refuses connections: nothing listens on port 1.
conf https://127.0.0.1:1 30 5 >"$T_DIR/refused.conf"
CONF="$T_DIR/refused.conf"
l=refused-dgst
rc=$(tool "$l" openssl dgst -sha256 -engine pkcs11 -keyform engine \
    -sign "$(uri nightly)" -out "$T_DIR/$l.sig" "$T_DIR/payload.bin")
check "gateway refusing connections: openssl fails (exit $rc)" failed "$rc"
check "... long before its 30 s timeout ($(cat "$T_DIR/$l.ms") ms)" [ "$(cat "$T_DIR/$l.ms")" -lt 10000 ]
check "... the module says it cannot reach the gateway" \
    grep -q '^signgate-pkcs11: .*127\.0\.0\.1:1' "$T_DIR/$l.err"

# A gateway that hangs (stopped: the kernel still accepts connections,
# TLS never answers): connect_timeout 1 s, timeout 4 s.  (libp11 asks
# for the key list twice, each bounded by connect_timeout.)
conf "$URL" 4 1 >"$T_DIR/hung.conf"
CONF="$T_DIR/hung.conf"
l=hung-exe
kill -STOP "$DAEMON_PID"
rc=$(tool "$l" osslsigncode sign -pkcs11module "$MOD" \
    -certs "$(chain nightly)" -key "$(uri nightly)" -h sha256 \
    -in "$T_DIR/hello.exe" -out "$T_DIR/$l.exe")
kill -CONT "$DAEMON_PID"
check "gateway hanging: osslsigncode fails (exit $rc)" failed "$rc"
check "... within the 4 s timeout plus the tool's start ($(cat "$T_DIR/$l.ms") ms)" \
    [ "$(cat "$T_DIR/$l.ms")" -lt 12000 ]
check "... the module says why" grep -q '^signgate-pkcs11: ' "$T_DIR/$l.err"
check "... no signed file is left" [ ! -e "$T_DIR/$l.exe" ]

# A gateway that stops while the tool waits for approvals: openssl cms
# waits for key firmware's officers, then the daemon is stopped.
CONF="$T_DIR/pkcs11.conf"
l=stopped-cms
bg_tool "$l" openssl cms -sign -engine pkcs11 -keyform engine \
    -inkey "$(uri firmware)" -signer "$(leaf firmware)" \
    -certfile "$CS/ca.pem" -md sha256 -binary -in "$T_DIR/payload.bin" \
    -outform DER -out "$T_DIR/$l.p7s"
check "firmware: openssl's request waits for approval" wait_pending "$l"
t0=$(now_ms)
stop_daemon
check "the gateway stopped: openssl ends within 10 s" wait_bg "$BG_PID" 10
echo "    (ended $(($(now_ms) - t0)) ms after the stop began)"
rc=$(cat "$T_DIR/$l.rc" 2>/dev/null)
check "... and fails (exit $rc)" failed "$rc"
check "... the module says why" grep -q '^signgate-pkcs11: ' "$T_DIR/$l.err"
# (openssl opens its output file before it signs: it stays, empty.)
check "... no CMS is written" [ ! -s "$T_DIR/$l.p7s" ]

# Every tool's standard error: no sanitizer report from the module.
check "no sanitizer report from the module in any tool" bash -c \
    "! grep -l 'ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer' '$T_DIR'/*.err"

finish
