#!/bin/bash
#
# Builds the development environment under var/dev/: two SoftHSM tokens
# (the signing HSM and the officers' "smart cards"), a dev code-signing CA
# with a certificate per signing key, a dev TLS CA with server and client
# certificates, a test time-stamping authority (its CA and its certificate,
# for tests/tools/tsa_server), officers' approval keys, the dev policy and
# the daemon's configuration.  The layout is fixed (docs and tests rely on
# it) and is described in the project's DESIGN document.
#
# Idempotent and cheap when nothing changed: if var/dev/.complete is newer
# than this script and the policy template, it exits at once.  Otherwise it
# throws var/dev away and builds a new one in var/dev.tmp.<pid>, renaming it
# into place only when every step has succeeded and been checked, so a
# half-built environment is never seen.  A lock serialises concurrent runs
# (`make test` and `make run` may start at the same time); the loser finds
# the winner's result fresh and returns.
#
# SoftHSM stores no paths inside its token files, so the tokens are made
# with a build-time configuration pointing into the temporary directory,
# while the softhsm2.conf that is kept names the final location.
#
# Run as root (as `make run` and `make test` are in CI), it also creates
# the daemon's two system users if missing, `signgate` (the front) and
# `signgate-hsm` (the signer), and gives each what it needs: the PINs,
# softhsm2.conf and the token directory belong to the signer's user alone;
# the server's TLS key to the front's; the policy, the configuration and
# the certificates are readable by both.  Then it checks, as each user,
# that this holds (a checkout inside a directory closed to others, such as
# /root, fails here rather than at the daemon's start).  Run as anyone
# else, everything stays that user's (a development setting).
#
# Works offline and without prompts.  Requires: softhsm2, opensc
# (pkcs11-tool), openssl, awk, flock; as root also useradd and setpriv.
#
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
final="$root/var/dev"
template="policy/dev.policy.in"
module="/usr/lib/softhsm/libsofthsm2.so"
lock_wait=300           # seconds; a full build takes a few
front_user=signgate     # users.front and users.signer by default
signer_user=signgate-hsm
cert_days=825
ca_days=3650            # the CAs outlive every certificate they issue

is_fresh() {
	[[ -f "$final/.complete" &&
	    "$final/.complete" -nt scripts/devenv.sh &&
	    "$final/.complete" -nt "$template" ]]
}

if is_fresh; then
	exit 0
fi

die() {
	echo "devenv.sh: $*" >&2
	exit 1
}

for tool in softhsm2-util pkcs11-tool openssl awk flock; do
	command -v "$tool" >/dev/null 2>&1 ||
	    die "$tool not found (run scripts/deps.sh)"
done
[[ -r "$module" ]] || die "SoftHSM module $module not found (package softhsm2)"
[[ -r "$template" ]] || die "$template not found"

# The daemon's users, when root: system accounts without a home or a shell.
# Another checkout may be creating them at the same moment: what counts is
# that they exist afterwards.
if [[ $(id -u) -eq 0 ]]; then
	for tool in useradd setpriv; do
		command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
	done
	for u in "$front_user" "$signer_user"; do
		id -u "$u" >/dev/null 2>&1 ||
		    useradd --system --user-group --no-create-home \
			--home-dir /nonexistent --shell /usr/sbin/nologin "$u" ||
		    id -u "$u" >/dev/null 2>&1 ||
		    die "cannot create the system user $u"
	done
fi

mkdir -p var
exec 9>var/.devenv.lock
flock -w "$lock_wait" 9 || die "another devenv.sh held the lock for ${lock_wait}s"
if is_fresh; then
	exit 0
fi

# Nothing in a developer's environment needs to be readable by anyone else,
# and most of it is secret (PINs, CA keys, token contents): create it all
# private rather than remembering which files to tighten afterwards.
umask 077

start=$SECONDS
tmp="$root/var/dev.tmp.$$"
work="$tmp/.work"
trap 'rm -rf "$tmp"' EXIT
# Under the lock no other build is running, so any leftover temporary
# directory belongs to a run that was killed.
rm -rf "$final" "$root"/var/dev.tmp.*
mkdir -p "$tmp"/{pins,tokens,codesign,officers,tls,tsa,state} "$work"
echo "devenv.sh: building var/dev" >&2

# Runs a command with its chatter kept aside; shows it only on failure.
quiet() {
	if ! "$@" >"$work/log" 2>&1; then
		cat "$work/log" >&2
		die "failed: $1 ${2:-}"
	fi
}

p11() {
	pkcs11-tool --module "$module" "$@"
}

# --- SoftHSM -------------------------------------------------------------

write_softhsm_conf() {
	cat >"$1" <<EOF
directories.tokendir = $2
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
}
write_softhsm_conf "$tmp/softhsm2.conf" "$final/tokens"
write_softhsm_conf "$work/softhsm2.conf" "$tmp/tokens"
export SOFTHSM2_CONF="$work/softhsm2.conf"

# Throwaway PINs of throwaway dev tokens.  softhsm2-util and pkcs11-tool
# only take PINs on the command line, so here they appear in argv (visible
# in ps for the moment each command runs); that is acceptable for these dev
# tokens only.  signgate's own programs read PINs from files, never argv.
for t in signgate-dev officer-cards; do
	openssl rand -hex 8 >"$tmp/pins/$t.pin"
	openssl rand -hex 8 >"$tmp/pins/$t.so-pin"
	quiet softhsm2-util --init-token --free --label "$t" \
	    --pin "$(<"$tmp/pins/$t.pin")" --so-pin "$(<"$tmp/pins/$t.so-pin")"
done
dev_pin=$(<"$tmp/pins/signgate-dev.pin")
cards_pin=$(<"$tmp/pins/officer-cards.pin")

# Keys are generated inside the token: sensitive, never extractable.
# Slot numbers change when a token is initialised, so tokens are always
# selected by label.
genkey() {	# label id key-type
	quiet p11 --token-label signgate-dev --login --pin "$dev_pin" \
	    --keypairgen --key-type "$3" --label "$1" --id "$2" \
	    --sensitive --usage-sign
}
genkey release 01 EC:prime256v1
genkey firmware 02 rsa:3072
genkey nightly 03 EC:prime256v1
# OpenSC 0.23 knows the Ed25519 curve as "edwards25519" (not "ed25519").
genkey log 10 EC:edwards25519
# A key no one uses, as a shared HSM would hold: the gateway must cope.
genkey unrelated-ed25519 20 EC:edwards25519

# Prints the serial of the token with the given label.
token_serial() {
	p11 -L 2>/dev/null | awk -v want="$1" '
	    /^ *token label *:/ { l = $0; sub(/^[^:]*: */, "", l); sub(/ +$/, "", l) }
	    /^ *serial num *:/ { s = $0; sub(/^[^:]*: */, "", s); sub(/ +$/, "", s)
	        if (l == want && !found) { print s; found = 1 } }
	    END { if (!found) exit 1 }'
}
dev_serial=$(token_serial signgate-dev) || die "cannot read the serial of signgate-dev"
cards_serial=$(token_serial officer-cards) || die "cannot read the serial of officer-cards"

# --- certificates ----------------------------------------------------------

cnf="$work/openssl.cnf"
cat >"$cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no

[dn]
CN = placeholder

[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash

[codesign]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = codeSigning
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1,IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[tsa]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = critical,timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF

p256() {	# out: a P-256 private key, PKCS#8 PEM
	quiet openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	    -pkeyopt ec_param_enc:named_curve -out "$1"
}

make_ca() {	# dir CN
	p256 "$1/ca.key"
	quiet openssl req -new -x509 -config "$cnf" -extensions ca \
	    -key "$1/ca.key" -subj "/CN=$2" -days "$ca_days" \
	    -set_serial "0x$(openssl rand -hex 16)" -out "$1/ca.pem"
}

# Issues a certificate from the CA in `dir` for the request in `csr`; extra
# arguments go to openssl x509 (-force_pubkey).
issue() {	# dir csr extensions out [args...]
	local dir=$1 csr=$2 ext=$3 out=$4
	shift 4
	quiet openssl x509 -req -in "$csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
	    -days "$cert_days" -set_serial "0x$(openssl rand -hex 16)" \
	    -extfile "$cnf" -extensions "$ext" "$@" -out "$out"
	quiet openssl verify -CAfile "$dir/ca.pem" "$out"
}

# Code signing: the keys live in the HSM, so each certificate is issued
# for the public key read back from the token.  openssl needs a CSR, which
# the HSM key could only sign through an engine; a CSR from a throwaway key
# carries the subject and -force_pubkey puts in the real key.
cs="$tmp/codesign"
make_ca "$cs" "signgate dev code-signing CA"
p256 "$work/throwaway.key"
codesign_cert() {	# label id
	local name=$1 id=$2
	quiet p11 --token-label signgate-dev --read-object --type pubkey \
	    --label "$name" -o "$work/$name.pub.der"
	quiet openssl pkey -pubin -inform DER -in "$work/$name.pub.der" \
	    -out "$cs/$name.pub.pem"
	quiet openssl req -new -config "$cnf" -key "$work/throwaway.key" \
	    -subj "/CN=signgate dev $name" -out "$work/$name.csr"
	issue "$cs" "$work/$name.csr" codesign "$cs/$name.pem" \
	    -force_pubkey "$cs/$name.pub.pem"
	cat "$cs/$name.pem" "$cs/ca.pem" >"$cs/$name.chain.pem"
	quiet openssl x509 -in "$cs/$name.pem" -outform DER -out "$work/$name.der"
	quiet p11 --token-label signgate-dev --login --pin "$dev_pin" \
	    --write-object "$work/$name.der" --type cert --id "$id" --label "$name"
}
codesign_cert release 01
codesign_cert firmware 02
codesign_cert nightly 03

# TLS: a CA, the server (loopback names only), one client per principal.
tls="$tmp/tls"
make_ca "$tls" "signgate dev TLS CA"
p256 "$tls/server.key"
quiet openssl req -new -config "$cnf" -key "$tls/server.key" \
    -subj "/CN=localhost" -out "$work/server.csr"
issue "$tls" "$work/server.csr" server "$tls/server.pem"
for p in ci alice bob carol dave audit; do
	p256 "$tls/$p.key"
	quiet openssl req -new -config "$cnf" -key "$tls/$p.key" \
	    -subj "/CN=$p" -out "$work/$p.csr"
	issue "$tls" "$work/$p.csr" client "$tls/$p.pem"
done

# Time stamping: a CA of its own and the TSA's certificate.  RFC 3161
# wants timeStamping as the only, critical, extended key usage; verifying
# with that purpose proves the certificate fit for tsa_server.
tsa="$tmp/tsa"
make_ca "$tsa" "signgate dev TSA CA"
p256 "$tsa/tsa.key"
quiet openssl req -new -config "$cnf" -key "$tsa/tsa.key" \
    -subj "/CN=signgate dev TSA" -out "$work/tsa.csr"
issue "$tsa" "$work/tsa.csr" tsa "$tsa/tsa.pem"
quiet openssl verify -purpose timestampsign -CAfile "$tsa/ca.pem" "$tsa/tsa.pem"

# --- officers ----------------------------------------------------------------

# Each officer's approval key exists as a file (for `--key`) and on the
# officer-cards token (for `--pkcs11`, as a smart card would hold it).  The
# import must leave the public key object on the token too, since a card
# client finds the key's type and public half there; it is read back and
# compared with the file.
officer() {	# name id
	local name=$1 id=$2
	p256 "$tmp/officers/$name.key"
	quiet openssl pkey -in "$tmp/officers/$name.key" -pubout \
	    -out "$tmp/officers/$name.pub.pem"
	quiet softhsm2-util --import "$tmp/officers/$name.key" \
	    --token officer-cards --label "$name" --id "$id" --pin "$cards_pin"
	quiet p11 --token-label officer-cards --read-object --type pubkey \
	    --label "$name" -o "$work/$name.card.der"
	quiet openssl pkey -pubin -inform DER -in "$work/$name.card.der" \
	    -out "$work/$name.card.pem"
	cmp -s "$work/$name.card.pem" "$tmp/officers/$name.pub.pem" ||
	    die "officer-cards: public key of $name does not match its file"
}
officer alice 01
officer bob 02
officer carol 03
officer dave 04

# --- policy and configuration ------------------------------------------------

# Fills in the template: @SERIAL:<token label>@, @CODESIGN@, and lines that
# hold only @PEM:<path under var/dev>@, replaced by that file's lines with
# the same indentation.  Any placeholder left over is an error, so a typo
# in the template cannot reach the daemon as a literal string.
awk -v dir="$tmp" -v codesign="$final/codesign" \
    -v serials="signgate-dev=$dev_serial officer-cards=$cards_serial" '
function fail(msg) {
	printf "devenv.sh: %s:%d: %s\n", FILENAME, FNR, msg > "/dev/stderr"
	failed = 1
	exit 1
}
# Literal replacement: gsub() would interpret "&" and "\" in paths.
function replace_all(s, from, to,    out, i) {
	out = ""
	while ((i = index(s, from)) > 0) {
		out = out substr(s, 1, i - 1) to
		s = substr(s, i + length(from))
	}
	return out s
}
BEGIN {
	n = split(serials, pairs, " ")
	for (i = 1; i <= n; i++) {
		eq = index(pairs[i], "=")
		label[i] = substr(pairs[i], 1, eq - 1)
		serial[i] = substr(pairs[i], eq + 1)
	}
}
/^[ \t]*@PEM:[A-Za-z0-9._\/-]+@[ \t]*$/ {
	indent = $0
	sub(/[^ \t].*$/, "", indent)
	path = $0
	sub(/^[ \t]*@PEM:/, "", path)
	sub(/@[ \t]*$/, "", path)
	if (path ~ /^\// || path ~ /(^|\/)\.\.(\/|$)/)
		fail("@PEM: path must stay inside var/dev: " path)
	file = dir "/" path
	got = 0
	while ((r = (getline l < file)) > 0) {
		print indent l
		got++
	}
	close(file)
	if (r < 0 || got == 0)
		fail("@PEM: cannot read " path)
	next
}
{
	line = replace_all($0, "@CODESIGN@", codesign)
	for (i = 1; i <= n; i++)
		line = replace_all(line, "@SERIAL:" label[i] "@", serial[i])
	if (line ~ /@(PEM|SERIAL|CODESIGN)[:@]/)
		fail("unresolved placeholder: " line)
	print line
}
END {
	if (failed)
		exit 1
}' "$template" >"$tmp/policy.conf" || die "cannot make policy.conf from $template"

# Paths are relative to this file's directory, so the environment can be
# inspected or copied without editing it.
cat >"$tmp/signgated.json" <<'EOF'
{
  "listen": {"address": "127.0.0.1", "port": 8443},
  "tls": {
    "certificate": "tls/server.pem",
    "private_key": "tls/server.key",
    "client_ca": "tls/ca.pem"
  },
  "pkcs11": {
    "module": "/usr/lib/softhsm/libsofthsm2.so",
    "tokens": [
      {"label": "signgate-dev", "pin_file": "pins/signgate-dev.pin"}
    ]
  },
  "policy": "policy.conf",
  "state_dir": "state",
  "threads": 4,
  "log": {"origin": "signgate.dev/log", "token": "signgate-dev", "key": "log"},
  "console": {"listen": "127.0.0.1:8444", "rp_id": "localhost",
              "origin": "https://localhost:8444"}
}
EOF

printf 'export SOFTHSM2_CONF=%q\n' "$final/softhsm2.conf" >"$tmp/env.sh"

# --- owners (as root) ---------------------------------------------------

# as USER CMD...: runs CMD as USER, without root's groups.
as() {
	local u=$1
	shift
	setpriv --reuid="$u" --regid="$u" --clear-groups -- "$@"
}

if [[ $(id -u) -eq 0 ]]; then
	# Traversable, not listable; every secret stays 0600/0700.
	chmod 0711 "$tmp" "$tmp/tls" "$tmp/codesign"
	# The daemon's PINs; the officer-cards PINs stay root's: they are the
	# officers' (the CLI's), and root reaches into the signer's directory.
	chown -R "$signer_user:$signer_user" "$tmp/tokens" "$tmp/softhsm2.conf"
	chown "$signer_user:$signer_user" "$tmp/pins" "$tmp"/pins/signgate-dev.*
	chown "$front_user:$front_user" "$tmp/tls/server.key"
	# Public: the policy holds only public keys, the configuration only
	# paths and names.
	chmod 0644 "$tmp/policy.conf" "$tmp/signgated.json" "$tmp"/tls/*.pem \
	    "$tmp"/codesign/*.pem
	for f in pins/signgate-dev.pin softhsm2.conf policy.conf \
	    signgated.json codesign/release.chain.pem; do
		as "$signer_user" test -r "$tmp/$f" ||
		    die "$signer_user cannot read var/dev/$f: is a directory" \
			"above $root closed to other users?"
	done
	as "$signer_user" test -r "$(find "$tmp/tokens" -type f | head -n 1)" ||
	    die "$signer_user cannot read the token files"
	for f in tls/server.key tls/server.pem tls/ca.pem policy.conf \
	    signgated.json codesign/release.chain.pem; do
		as "$front_user" test -r "$tmp/$f" ||
		    die "$front_user cannot read var/dev/$f"
	done
	for f in pins/signgate-dev.pin softhsm2.conf tokens; do
		if as "$front_user" test -r "$tmp/$f"; then
			die "$front_user can read var/dev/$f"
		fi
	done
fi

# --- publish -------------------------------------------------------------

rm -rf "$work"
touch "$tmp/.complete"
mv -T "$tmp" "$final"
trap - EXIT
echo "devenv.sh: var/dev ready in $((SECONDS - start))s" \
    "(signgate-dev serial $dev_serial, officer-cards serial $cards_serial)" >&2
