# The systemd packaging: what `make install` lays out, and whether the
# hardened unit fits what signgated really does.
#
# 1. Layout: `make install DESTDIR=… PREFIX=/usr` (and PREFIX=/usr/local)
#    installs every file at its place with its mode, and the unit's
#    ExecStart= and Documentation= name files of that install.
# 2. systemd's own tools, offline: `systemd-analyze security` rates the
#    installed unit at an exposure of 2.0 or less; `systemd-analyze verify`
#    accepts it (pointed at the DESTDIR binary, as verify insists that
#    ExecStart= exists); systemd-sysusers and systemd-tmpfiles apply the
#    sysusers.d and tmpfiles.d files to a scratch root with the owners and
#    modes OPERATIONS.md promises.
# 3. The sandbox against the code: signgated runs a whole lifecycle under
#    strace (keys, a signature without approval, a CMS signature after
#    three approvals, the log, readyz, metrics, a clean stop), and every
#    system call, socket family, memory mapping and file access it made
#    must be one the unit allows.  This is how a unit that would kill or
#    cripple the daemon at its first signature is caught without a running
#    systemd.
#
# A part whose tool is missing (systemd-analyze, strace) or meaningless
# here (sanitizer builds make system calls of their own) is skipped with a
# comment line and counts neither as a pass nor as a failure.
SG_ROOT=${SG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=lib.sh
. "$SG_ROOT/tests/integration/lib.sh"
cd "$SG_ROOT" || exit 1
# Called from `make test`: the parent's jobserver and variables are not ours.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES

make_args=()
case "$(basename "$BUILD")" in build-san) make_args=(SAN=1) ;; esac

have_analyze=0
if command -v systemd-analyze >/dev/null 2>&1; then
	have_analyze=1
else
	echo "# systemd-analyze not installed: security review, verify and" \
	    "the system call check skipped"
fi

# --- 1. layout -----------------------------------------------------------

# mode_is FILE MODE: the file exists as a regular file with that mode.
mode_is() {
	local m
	[ -f "$1" ] && [ ! -L "$1" ] || { echo "missing: $1"; return 1; }
	m=$(stat -c %a "$1")
	[ "$m" = "$2" ] || { echo "$1: mode $m, want $2"; return 1; }
}

# check_layout ROOT PREFIX
check_layout() {
	local root=$1 prefix=$2 f unit want
	for f in bin/signgate sbin/signgated; do
		check "install $prefix: $prefix/$f 0755" \
		    mode_is "$root$prefix/$f" 755
	done
	for f in lib/systemd/system/signgated.service \
	    lib/sysusers.d/signgate.conf lib/tmpfiles.d/signgate.conf \
	    share/doc/signgate/README.md share/doc/signgate/OPERATIONS.md \
	    share/doc/signgate/policy/README.md; do
		check "install $prefix: $prefix/$f 0644" \
		    mode_is "$root$prefix/$f" 644
	done
	for f in signgated.json.example policy.example; do
		check "install $prefix: /etc/signgate/$f 0644" \
		    mode_is "$root/etc/signgate/$f" 644
	done
	unit="$root$prefix/lib/systemd/system/signgated.service"
	want="ExecStart=$prefix/sbin/signgated -c /etc/signgate/signgated.json"
	expect_eq "install $prefix: the unit starts $prefix/sbin/signgated" \
	    "$(grep '^ExecStart=' "$unit" 2>/dev/null)" "$want"
	want="Documentation=file://$prefix/share/doc/signgate/OPERATIONS.md"
	expect_eq "install $prefix: the unit's documentation is installed" \
	    "$(grep '^Documentation=' "$unit" 2>/dev/null)" "$want"
	check "install $prefix: the installed signgated runs" \
	    "$root$prefix/sbin/signgated" -h
}

root="$T_DIR/root"
for prefix in /usr /usr/local; do
	r="$root$prefix"
	[ "$prefix" = /usr ] && r="$root"
	if make --no-print-directory -s "${make_args[@]}" install \
	    DESTDIR="$r" PREFIX="$prefix" >"$T_DIR/make.log" 2>&1; then
		ok "make install DESTDIR=… PREFIX=$prefix"
		check_layout "$r" "$prefix"
	else
		not_ok "make install DESTDIR=… PREFIX=$prefix"
		tail -n 20 "$T_DIR/make.log" | sed 's/^/    /'
	fi
done
unit="$root/usr/lib/systemd/system/signgated.service"

# --- 2. systemd's tools, offline --------------------------------------------

if [ "$have_analyze" = 1 ] && [ -f "$unit" ]; then
	systemd-analyze security --offline=yes "$unit" \
	    >"$T_DIR/security.out" 2>&1
	exposure=$(sed -n 's/.*Overall exposure level for signgated\.service: \([0-9.]*\).*/\1/p' \
	    "$T_DIR/security.out")
	echo "# systemd-analyze security: overall exposure ${exposure:-unknown}"
	if [ -n "$exposure" ] && awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }'; then
		ok "systemd-analyze security: exposure $exposure <= 2.0"
	else
		not_ok "systemd-analyze security: exposure '${exposure}' > 2.0"
		grep '✗' "$T_DIR/security.out" | sed 's/^/    /'
	fi

	# verify insists that ExecStart= exists; it cannot look inside a
	# DESTDIR, so the copy it checks points at the DESTDIR binary.
	mkdir -p "$T_DIR/verify"
	sed "s|^ExecStart=/usr/sbin/signgated|ExecStart=$root/usr/sbin/signgated|" \
	    "$unit" >"$T_DIR/verify/signgated.service"
	if systemd-analyze verify "$T_DIR/verify/signgated.service" \
	    >"$T_DIR/verify.out" 2>&1 && [ ! -s "$T_DIR/verify.out" ]; then
		ok "systemd-analyze verify: no error, no warning"
	else
		not_ok "systemd-analyze verify"
		sed 's/^/    /' "$T_DIR/verify.out" | head -n 20
	fi
fi

sys="$T_DIR/sysroot"
if command -v systemd-sysusers >/dev/null 2>&1 &&
    command -v systemd-tmpfiles >/dev/null 2>&1 &&
    [ -f "$root/usr/lib/sysusers.d/signgate.conf" ]; then
	mkdir -p "$sys/etc"
	check "systemd-sysusers creates the signgate account" \
	    systemd-sysusers --root="$sys" "$root/usr/lib/sysusers.d/signgate.conf"
	expect_eq "signgate: a system account, home /var/lib/signgate, no login" \
	    "$(awk -F: '$1 == "signgate" { print ($3 < 1000 ? "system" : "user"), $6, $7 }' \
	    "$sys/etc/passwd" 2>/dev/null)" "system /var/lib/signgate /usr/sbin/nologin"
	check "systemd-tmpfiles creates signgate's directories" \
	    systemd-tmpfiles --root="$sys" --create "$root/usr/lib/tmpfiles.d/signgate.conf"
	uid=$(awk -F: '$1 == "signgate" { print $3 }' "$sys/etc/passwd" 2>/dev/null)
	gid=$(awk -F: '$1 == "signgate" { print $3 }' "$sys/etc/group" 2>/dev/null)
	for spec in "etc/signgate 750 0 $gid" "etc/signgate/tls 750 0 $gid" \
	    "etc/signgate/pins 700 0 0" "var/lib/signgate 700 $uid $gid" \
	    "var/lib/signgate-hsm 700 $uid $gid"; do
		set -- $spec
		expect_eq "tmpfiles: /$1 mode $2 owner $3:$4" \
		    "$(stat -c '%a %u %g' "$sys/$1" 2>/dev/null)" "$2 $3 $4"
	done
else
	echo "# systemd-sysusers or systemd-tmpfiles not installed: skipped"
fi

# --- 3. the sandbox against a real run ----------------------------------------

sandbox_skip=
if [ "$have_analyze" = 0 ]; then
	sandbox_skip="no systemd-analyze to list the allowed system calls"
elif ! command -v strace >/dev/null 2>&1; then
	sandbox_skip="strace not installed"
elif ! strace -f -qq -o /dev/null true >/dev/null 2>&1; then
	sandbox_skip="strace cannot trace here"
elif ldd "$SIGNGATED" 2>/dev/null | grep -q 'libasan\|libubsan'; then
	sandbox_skip="a sanitizer build makes system calls of its own"
elif [ ! -f "$unit" ]; then
	sandbox_skip="no installed unit"
fi

# unit_values KEY: every value of KEY= in the installed unit, one a line
# (for settings without a ~ form).
unit_values() {
	sed -n "s/^$1=//p" "$unit" | tr ' ' '\n' | sed '/^$/d'
}

# expand_groups WORD...: system call names, with @groups expanded from
# systemd-analyze's own tables.
expand_groups() {
	awk -v WANT="$*" '
	    /^@/ { g = $1; next }
	    /^ *#/ || NF != 1 { next }
	    g != "" { m[g] = m[g] " " $1 }
	    function expand(x,   k, p, j) {
		if (x !~ /^@/) { out[x] = 1; return }
		if (seen[x]++) return
		k = split(m[x], p, " ")
		for (j = 1; j <= k; j++) expand(p[j])
	    }
	    END {
		n = split(WANT, w, " ")
		for (i = 1; i <= n; i++) expand(w[i])
		for (s in out) print s
	    }' "$T_DIR/filters"
}

if [ -n "$sandbox_skip" ]; then
	echo "# sandbox check skipped: $sandbox_skip"
else
	systemd-analyze syscall-filter >"$T_DIR/filters" 2>/dev/null
	# The unit's filter: the allow lists, minus the deny (~) lists.
	allow=$(sed -n 's/^SystemCallFilter=\([^~]\)/\1/p' "$unit")
	deny=$(sed -n 's/^SystemCallFilter=~//p' "$unit")
	expand_groups $allow | sort -u >"$T_DIR/allowed.all"
	expand_groups $deny | sort -u >"$T_DIR/denied"
	comm -23 "$T_DIR/allowed.all" "$T_DIR/denied" >"$T_DIR/allowed"

	cat >"$T_DIR/traced-signgated" <<EOF
#!/bin/sh
exec strace -f -qq -s 4096 -o "$T_DIR/strace.out" -- "$BUILD/signgated" "\$@"
EOF
	chmod +x "$T_DIR/traced-signgated"
	SIGNGATED="$T_DIR/traced-signgated"
	# A policy of our own, so that a reload (ExecReload=) can be traced.
	cp "$DEV/policy.conf" "$T_DIR/policy.conf"
	write_config ".policy = \"$T_DIR/policy.conf\""
	if start_daemon; then
		as ci
		expect_eq "traced: GET /v1/keys" "$(api ci GET /v1/keys)" 200
		d=$(printf 'nightly build\n' | sha256sum | cut -c1-64)
		expect_eq "traced: a signature without approval" \
		    "$(new_request ci nightly "$d")" 201
		d=$(printf 'release build\n' | sha256sum | cut -c1-64)
		expect_eq "traced: a CMS request that needs approvals" \
		    "$(new_request ci release "$d" sha256 cms)" 201
		cp "$T_DIR/body" "$T_DIR/release.json"
		id=$(jq -r .id "$T_DIR/release.json")
		for o in alice bob dave; do
			expect_eq "traced: $o approves" \
			    "$(approve_with_openssl "$o" "$T_DIR/release.json")" 200
		done
		expect_eq "traced: the CMS signature is released" \
		    "$(api ci GET "/v1/requests/$id/signature")" 200
		expect_eq "traced: GET /v1/log/checkpoint" \
		    "$(api - GET /v1/log/checkpoint)" 200
		expect_eq "traced: /readyz" "$(api - GET /readyz)" 200
		expect_eq "traced: /metrics" "$(api - GET /metrics)" 200
		main_pid=$(awk 'NR == 1 { print $1 }' "$T_DIR/strace.out")
		sed -i 's/^version .*/version 2/' "$T_DIR/policy.conf"
		kill -HUP "$main_pid"
		for _ in $(seq 1 100); do
			grep -q 'SIGHUP: policy' "$T_DIR/daemon.log" && break
			sleep 0.05
		done
		check "traced: SIGHUP reloads the policy (version 2)" \
		    grep -q 'SIGHUP: policy .* version 2 in force' "$T_DIR/daemon.log"

		# Stop the daemon itself (strace would only detach on a
		# signal); strace then ends with its exit status.
		kill -TERM "$main_pid" 2>/dev/null
		for _ in $(seq 1 200); do
			kill -0 "$DAEMON_PID" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "$DAEMON_PID" 2>/dev/null
		wait "$DAEMON_PID"
		expect_eq "traced: signgated stops cleanly on SIGTERM" "$?" 0
		DAEMON_PID=

		trace="$T_DIR/strace.out"
		{ grep -oE '^[0-9]+ +[a-z0-9_]+\(' "$trace" |
		    sed -E 's/^[0-9]+ +//; s/\($//'
		  grep -oE '<\.\.\. [a-z0-9_]+ resumed>' "$trace" |
		    awk '{ print $2 }'; } | sort -u >"$T_DIR/used"
		echo "# signgated made $(wc -l <"$T_DIR/used") distinct system calls"
		# fchown: SQLite gives a new journal the database's owner
		# only when it runs as root (as this test does); the service
		# runs as signgate and never makes the call, and SQLite
		# ignores its failure anyway.
		comm -23 "$T_DIR/used" "$T_DIR/allowed" | grep -vx fchown \
		    >"$T_DIR/refused"
		if [ ! -s "$T_DIR/refused" ]; then
			ok "every system call is in the unit's SystemCallFilter="
		else
			not_ok "system calls the unit's filter refuses:" \
			    "$(tr '\n' ' ' <"$T_DIR/refused")"
		fi

		fams=$(grep -oE ' socket(pair)?\(AF_[A-Z0-9]+' "$trace" |
		    sed 's/.*(//' | sort -u)
		allowed_fams=" $(unit_values RestrictAddressFamilies | tr '\n' ' ') "
		bad=
		for f in $fams; do
			case "$allowed_fams" in *" $f "*) ;; *) bad="$bad $f" ;; esac
		done
		expect_eq "socket families within RestrictAddressFamilies= ($(echo $fams))" \
		    "${bad:-none refused}" "none refused"

		# MemoryDenyWriteExecute=: no W+X mapping, no mprotect to X.
		wx=$(grep -E ' (mmap|mprotect|pkey_mprotect)\(' "$trace" |
		    grep -E 'PROT_WRITE\|PROT_EXEC|PROT_EXEC\|PROT_WRITE| (pkey_)?mprotect\(.*PROT_EXEC' |
		    head -n 3)
		expect_eq "no memory that MemoryDenyWriteExecute= refuses" \
		    "${wx:-none}" "none"

		# Files.  ProtectSystem=strict: writes only to the state
		# directories, the front's and the signer's (StateDirectory=
		# lists both), and, for SoftHSM alone, its token directory (a
		# real module needs none, see OPERATIONS.md).
		# PrivateDevices=: only the pseudo-devices.  ProcSubset=pid:
		# only process directories under /proc.  ProtectHome=: no
		# home.
		tokendir=$(sed -n 's/^directories\.tokendir *= *//p' \
		    "$SOFTHSM2_CONF")
		{ grep -E ' (open|openat)\(.*(O_WRONLY|O_RDWR|O_CREAT|O_TRUNC)' "$trace"
		  grep -E ' (creat|mkdir|mkdirat|unlink|unlinkat|rename|renameat|renameat2|truncate|link|linkat|symlink|symlinkat|mknod|mknodat)\(' \
		    "$trace"; } | grep -oE '"/[^"]*"' | tr -d '"' | sort -u \
		    >"$T_DIR/written"
		bad=$(grep -vE "^($T_DIR/state/|$T_DIR/state-hsm/|$tokendir/)" "$T_DIR/written" |
		    grep -vxE "$T_DIR/state(-hsm)?" | head -n 5 | tr '\n' ' ')
		expect_eq "writes only to the state directories (ProtectSystem=strict)" \
		    "${bad:-none elsewhere}" "none elsewhere"
		grep -oE '"/(dev|proc|home|root|run/user)(/[^"]*)?"' "$trace" |
		    tr -d '"' | sort -u >"$T_DIR/special"
		# /proc/sys/vm/overcommit_memory: glibc's malloc reads it and
		# does without when it cannot.
		bad=$(grep -vE '^/dev/(null|zero|full|random|urandom|tty|ptmx|pts/.*|shm/.*)$' "$T_DIR/special" |
		    grep -vE '^/proc/(self|thread-self|[0-9]+)(/|$)' |
		    grep -vx /proc/sys/vm/overcommit_memory | head -n 5 | tr '\n' ' ')
		expect_eq "no device, /proc or home path the sandbox hides" \
		    "${bad:-none}" "none"
	else
		not_ok "signgated starts under strace"
	fi
fi

finish
