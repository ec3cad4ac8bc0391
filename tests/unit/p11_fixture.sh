#!/bin/sh
# Builds a throwaway SoftHSM token for the PKCS#11 and signer unit tests.
#
#   p11_fixture.sh DIR LABEL
#
# DIR must exist and be empty.  Afterwards it holds softhsm2.conf (point
# SOFTHSM2_CONF at it before loading the module), the token, PIN files
# (user.pin and wrong.pin mode 0600, open.pin mode 0644 with the right PIN)
# and each test key's public key as exported by pkcs11-tool (<label>.pub,
# DER or PEM), to check the keys the code under test builds.
#
# Keys (label, CKA_ID, type):
#   p256 01 P-256, p384 02 P-384, rsa2048 03, ed25519 04 Ed25519,
#   rsa3072 05, unrelated-ed25519 20 (an Ed25519 key nobody uses, as on a
#   shared HSM), certonly 06 P-256 whose public-key object is replaced by
#   an X.509 certificate, dup 07 and dup 08 (two keys, one label),
#   mismatch 09 P-256 whose public-key object holds p256's public key,
#   always 0a P-256 with CKA_ALWAYS_AUTHENTICATE.
set -eu

dir=$1
label=$2
module=${SG_TEST_P11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
pin=sg-test-4711

mkdir -p "$dir/tokens"
cat >"$dir/softhsm2.conf" <<EOF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
SOFTHSM2_CONF=$dir/softhsm2.conf
export SOFTHSM2_CONF
umask 077
printf '%s\n' "$pin" >"$dir/user.pin"
printf '%s\n' "not-the-pin" >"$dir/wrong.pin"
printf '%s\n' "$pin" >"$dir/open.pin"
chmod 0644 "$dir/open.pin"

softhsm2-util --init-token --free --label "$label" --pin "$pin" \
    --so-pin sg-test-so >/dev/null

p11() {
	pkcs11-tool --module "$module" --token-label "$label" --login \
	    --pin "$pin" "$@" >/dev/null 2>"$dir/p11.err" || {
		cat "$dir/p11.err" >&2
		echo "p11_fixture: pkcs11-tool $* failed" >&2
		exit 1
	}
}

gen() {
	l=$1
	id=$2
	type=$3
	shift 3
	p11 --keypairgen --key-type "$type" --label "$l" --id "$id" "$@"
}

gen p256 01 EC:prime256v1
gen p384 02 EC:secp384r1
gen rsa2048 03 rsa:2048
gen ed25519 04 EC:edwards25519
gen rsa3072 05 rsa:3072
gen unrelated-ed25519 20 EC:edwards25519
gen certonly 06 EC:prime256v1
gen dup 07 EC:prime256v1
gen dup 08 EC:prime256v1
gen mismatch 09 EC:prime256v1
gen always 0a EC:prime256v1 --always-auth

for l in p256 rsa2048 ed25519 rsa3072 certonly; do
	p11 --read-object --type pubkey --label "$l" -o "$dir/$l.pub"
done

# pkcs11-tool 0.23 cannot export a P-384 key ("cannot create EVP_PKEY"):
# wrap the CKA_EC_POINT it lists in a SubjectPublicKeyInfo by hand.
pt=$(pkcs11-tool --module "$module" --token-label "$label" --list-objects \
    --type pubkey 2>/dev/null | awk '
	/^Public Key Object/ { point = "" }
	/^ *EC_POINT:/ { point = $2 }
	/^ *label: *p384$/ { print point }')
case $pt in
0461*) ;;
*) echo "p11_fixture: no P-384 EC_POINT found" >&2; exit 1 ;;
esac
printf '%s%s' 3076301006072a8648ce3d020106052b81040022036200 "${pt#0461}" |
    xxd -r -p >"$dir/p384.pub"
openssl pkey -pubin -inform DER -in "$dir/p384.pub" -noout

# certonly: only a certificate carries the public key.
openssl pkey -pubin -inform DER -in "$dir/certonly.pub" \
    -out "$dir/certonly.pem" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$dir/ca.key"
openssl req -new -x509 -key "$dir/ca.key" -subj /CN=sg-test-ca -days 2 \
    -out "$dir/ca.pem" 2>/dev/null
openssl req -new -key "$dir/ca.key" -subj /CN=certonly \
    -out "$dir/certonly.csr" 2>/dev/null
openssl x509 -req -in "$dir/certonly.csr" -CA "$dir/ca.pem" \
    -CAkey "$dir/ca.key" -set_serial 1 -force_pubkey "$dir/certonly.pem" \
    -days 2 -outform DER -out "$dir/certonly.crt" 2>/dev/null
p11 --write-object "$dir/certonly.crt" --type cert --id 06 --label certonly
p11 --delete-object --type pubkey --id 06

# mismatch: its public-key object belongs to another private key.
p11 --delete-object --type pubkey --id 09
p11 --write-object "$dir/p256.pub" --type pubkey --id 09 --label mismatch

rm -f "$dir/p11.err"
