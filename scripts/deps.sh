#!/bin/bash
#
# Makes sure the Debian 12 packages needed to build and test signgate are
# installed.  It runs on every `make test` and `make run`, so the common
# case (everything present) is a single dpkg-query call and no output at
# all.  When something is missing, root installs it without prompts; anyone
# else gets the exact command to run and a non-zero exit, because a build
# that silently lacks a library fails later with a far less helpful error.
#
# SG_EXTRA_PACKAGES (blank-separated) adds packages; CI uses it for clang.
#
set -euo pipefail

packages=(
	build-essential
	pkg-config
	libssl-dev
	openssl
	libmicrohttpd-dev
	libgnutls28-dev
	libjansson-dev
	libsqlite3-dev
	sqlite3
	libpq-dev
	postgresql
	libcurl4-openssl-dev
	curl
	softhsm2
	opensc
	libp11-kit-dev
	p11-kit
	jq
	libengine-pkcs11-openssl
	osslsigncode
	openjdk-17-jdk-headless
	unzip
	# The officers' console's browser test (tests/integration/73-console.sh):
	# headless Chromium driven over WebDriver (by a Python script, standard
	# library only), the dev CA in an NSS db.
	chromium
	chromium-driver
	libnss3-tools
	python3
	# The independent tlog-tiles reader (tests/tools/tiles_reader.py,
	# tests/integration/77-tiles.sh) checks Ed25519 signatures with it.
	python3-cryptography
)

# Names go to apt-get as arguments; refusing anything that is not a plain
# Debian package name keeps a stray "-o..." from becoming an option.
for p in ${SG_EXTRA_PACKAGES:-}; do
	if [[ ! "$p" =~ ^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?$ ]]; then
		echo "deps.sh: SG_EXTRA_PACKAGES: not a package name: '$p'" >&2
		exit 2
	fi
	packages+=("$p")
done

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "deps.sh: dpkg-query not found; this set-up expects Debian 12." >&2
	echo "deps.sh: install by other means: ${packages[*]}" >&2
	exit 1
fi

# One query for all names; unknown packages only produce a message on
# stderr (and a non-zero status), so both are ignored and a package counts
# as present only when its status says so.
declare -A installed=()
while read -r name _want _flag state; do
	if [[ "$state" == installed ]]; then
		installed["${name%%:*}"]=1
	fi
done < <(dpkg-query -W -f='${Package} ${Status}\n' "${packages[@]%%:*}" \
    2>/dev/null || true)

missing=()
for p in "${packages[@]}"; do
	if [[ -z "${installed[${p%%:*}]:-}" ]]; then
		missing+=("$p")
	fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
	exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
	echo "deps.sh: missing Debian packages: ${missing[*]}" >&2
	echo "deps.sh: install them with:" >&2
	echo "sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
	exit 1
fi

echo "deps.sh: installing ${missing[*]}" >&2
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    "${missing[@]}"
