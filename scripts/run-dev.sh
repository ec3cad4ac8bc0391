#!/bin/bash
#
# `make run`: starts the daemon in the foreground on the development
# environment (var/dev/, made by scripts/devenv.sh) after printing how to
# talk to it.  The guide uses absolute paths so that its lines can be pasted
# into any other terminal.  The daemon replaces this shell (exec), so ^C
# and signals reach it directly.
#
# Usage: scripts/run-dev.sh BUILD_DIR
#
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
dev="$root/var/dev"

die() {
	echo "run-dev.sh: $*" >&2
	exit 1
}

[[ $# -eq 1 ]] || die "usage: scripts/run-dev.sh BUILD_DIR"
build=$1
[[ "$build" == /* ]] || build="$root/$build"
[[ -x "$build/signgated" ]] || die "$build/signgated not built (run make)"
[[ -x "$build/signgate" ]] || die "$build/signgate not built (run make)"
[[ -f "$dev/.complete" ]] || die "no development environment (run scripts/devenv.sh)"

# shellcheck source=/dev/null
. "$dev/env.sh"

url="https://127.0.0.1:8443"
card_module="/usr/lib/softhsm/libsofthsm2.so"

exports() {	# principal
	cat <<EOF
  export SIGNGATE_URL=$url
  export SIGNGATE_CERT=$dev/tls/$1.pem
  export SIGNGATE_KEY=$dev/tls/$1.key
  export SIGNGATE_CACERT=$dev/tls/ca.pem
EOF
}

cat <<EOF
signgate development daemon: $url
Development environment: $dev (policy: $dev/policy.conf)

Each principal has its own client certificate.  In another terminal, pick
one and paste its lines:

EOF
for p in ci:requester alice:officer bob:officer carol:officer \
    dave:"officer, release manager" audit:auditor; do
	echo "# ${p%%:*} (${p#*:})"
	exports "${p%%:*}"
	echo
done
cat <<EOF
Try it as ci (nightly needs no approval):
  $build/signgate keys
  $build/signgate sign --key nightly README.md    # writes README.md.sig and README.md.sig.proof
and check the signature with openssl against the public key that /v1/keys
publishes:
  curl -s --cacert $dev/tls/ca.pem --cert $dev/tls/ci.pem --key $dev/tls/ci.key \\
      $url/v1/keys | jq -r '.keys[] | select(.name == "nightly") | .public_key_pem' >nightly.pub
  openssl dgst -sha256 -verify nightly.pub -signature README.md.sig README.md

A release needs two of alice, bob, carol and also dave.  As ci:
  $build/signgate sign --key release README.md
then as each officer (here alice; ID from the pending list):
  $build/signgate pending
  $build/signgate show ID
  $build/signgate approve ID --key $dev/officers/alice.key
or with the officer's key on the officer-cards token, as a smart card:
  . $dev/env.sh
  $build/signgate approve ID --pkcs11 'pkcs11:token=officer-cards;object=alice' \\
      --module $card_module --pin-file $dev/pins/officer-cards.pin

The officers' console (sign in and approve with a security key) is at
  https://localhost:8444/
Its browser must trust the dev CA $dev/tls/ca.pem; register a key on
https://localhost:8444/#/register and add the lines it prints to the
officer's principal in $dev/policy.conf (see docs/CONSOLE.md).

Starting $build/signgated -c var/dev/signgated.json  (^C stops it)
EOF

exec "$build/signgated" -c var/dev/signgated.json
