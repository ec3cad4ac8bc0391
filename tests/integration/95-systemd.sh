# The systemd packaging: what `make install` lays out, and whether the
# hardened unit fits what signgated really does.
#
# 1. Layout: `make install DESTDIR=… PREFIX=/usr` (and PREFIX=/usr/local)
#    installs every file at its place with its mode, and the unit's
#    ExecStart= and Documentation= name files of that install.
# 2. systemd's own tools, offline: `systemd-analyze security` rates each
#    installed unit (signgated.service, the front; signgated-signer.service,
#    the signer) at an exposure of 2.0 or less; `systemd-analyze verify`
#    accepts them (pointed at the DESTDIR binary, as verify insists that
#    ExecStart= exists); systemd-sysusers and systemd-tmpfiles apply the
#    sysusers.d and tmpfiles.d files to a scratch root with the two
#    accounts, owners and modes OPERATIONS.md promises.
# 3. The sandbox against the code: the signer (signgated --signer) and the
#    front, connected over the signer's socket as the units run them, each
#    as its unit's user when run by root, go through a whole lifecycle
#    under strace (keys, a signature without approval, a CMS signature
#    after three approvals, the log, readyz, metrics, a policy reload, a
#    clean stop), and every system call, socket family, memory mapping and
#    file access each made must be one its own unit allows.  This is how a
#    unit that would kill or cripple the daemon at its first signature is
#    caught without a running systemd.
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
	for f in bin/signgate sbin/signgated sbin/signgate-witness; do
		check "install $prefix: $prefix/$f 0755" \
		    mode_is "$root$prefix/$f" 755
	done
	for f in lib/systemd/system/signgated.service \
	    lib/systemd/system/signgated-signer.service \
	    lib/sysusers.d/signgate.conf lib/tmpfiles.d/signgate.conf \
	    lib/systemd/system/signgate-witness.service \
	    lib/sysusers.d/signgate-witness.conf \
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
	unit="$root$prefix/lib/systemd/system/signgated-signer.service"
	want="ExecStart=$prefix/sbin/signgated --signer -c /etc/signgate/signgated.json"
	expect_eq "install $prefix: the signer's unit starts $prefix/sbin/signgated --signer" \
	    "$(grep '^ExecStart=' "$unit" 2>/dev/null)" "$want"
	want="LoadCredential=codesign.pin:/etc/signgate/pins/codesign.pin"
	expect_eq "install $prefix: only the signer's unit loads the PIN" \
	    "$(grep -h '^LoadCredential=' "$unit" "${unit%-signer.service}.service" \
	    2>/dev/null)" "$want"
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
units="$root/usr/lib/systemd/system"
unit_front="$units/signgated.service"
unit_signer="$units/signgated-signer.service"

# --- 2. systemd's tools, offline --------------------------------------------

if [ "$have_analyze" = 1 ] && [ -f "$unit_front" ] && [ -f "$unit_signer" ]; then
	mkdir -p "$T_DIR/verify"
	for name in signgated signgated-signer signgate-witness; do
		systemd-analyze security --offline=yes "$units/$name.service" \
		    >"$T_DIR/security.$name.out" 2>&1
		exposure=$(sed -n "s/.*Overall exposure level for $name\.service: \([0-9.]*\).*/\1/p" \
		    "$T_DIR/security.$name.out")
		echo "# systemd-analyze security $name.service: overall exposure ${exposure:-unknown}"
		if [ -n "$exposure" ] && awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }'; then
			ok "systemd-analyze security $name.service: exposure $exposure <= 2.0"
		else
			not_ok "systemd-analyze security $name.service: exposure '${exposure}' > 2.0"
			grep '✗' "$T_DIR/security.$name.out" | sed 's/^/    /'
		fi
		# verify insists that ExecStart= exists; it cannot look
		# inside a DESTDIR, so the copy it checks points at the
		# DESTDIR binary.
		sed "s|^ExecStart=/usr/sbin/|ExecStart=$root/usr/sbin/|" \
		    "$units/$name.service" >"$T_DIR/verify/$name.service"
	done
	if systemd-analyze verify "$T_DIR/verify/signgated.service" \
	    "$T_DIR/verify/signgated-signer.service" \
	    "$T_DIR/verify/signgate-witness.service" \
	    >"$T_DIR/verify.out" 2>&1 && [ ! -s "$T_DIR/verify.out" ]; then
		ok "systemd-analyze verify: no error, no warning"
	else
		not_ok "systemd-analyze verify"
		sed 's/^/    /' "$T_DIR/verify.out" | head -n 20
	fi
	check "the front's unit requires and follows the signer's" bash -c \
	    "grep -qx 'Requires=signgated-signer.service' '$unit_front' &&
	     grep -qx 'PartOf=signgated-signer.service' '$unit_front' &&
	     grep -q '^After=.*signgated-signer.service' '$unit_front'"
	expect_eq "the units run as two users" \
	    "$(grep -h '^User=' "$unit_front" "$unit_signer" | tr '\n' ' ')" \
	    "User=signgate User=signgate-hsm "
fi

sys="$T_DIR/sysroot"
if command -v systemd-sysusers >/dev/null 2>&1 &&
    command -v systemd-tmpfiles >/dev/null 2>&1 &&
    [ -f "$root/usr/lib/sysusers.d/signgate.conf" ]; then
	mkdir -p "$sys/etc"
	check "systemd-sysusers creates the signgate and signgate-hsm accounts" \
	    systemd-sysusers --root="$sys" "$root/usr/lib/sysusers.d/signgate.conf"
	for u in signgate signgate-hsm; do
		expect_eq "$u: a system account, home /var/lib/$u, no login" \
		    "$(awk -F: -v u=$u '$1 == u { print ($3 < 1000 ? "system" : "user"), $6, $7 }' \
		    "$sys/etc/passwd" 2>/dev/null)" "system /var/lib/$u /usr/sbin/nologin"
	done
	check "systemd-tmpfiles creates signgate's directories" \
	    systemd-tmpfiles --root="$sys" --create "$root/usr/lib/tmpfiles.d/signgate.conf"
	uid=$(awk -F: '$1 == "signgate" { print $3 }' "$sys/etc/passwd" 2>/dev/null)
	gid=$(awk -F: '$1 == "signgate" { print $3 }' "$sys/etc/group" 2>/dev/null)
	suid=$(awk -F: '$1 == "signgate-hsm" { print $3 }' "$sys/etc/passwd" 2>/dev/null)
	sgid=$(awk -F: '$1 == "signgate-hsm" { print $3 }' "$sys/etc/group" 2>/dev/null)
	check "the two accounts have two uids and two groups" \
	    test -n "$uid" -a -n "$suid" -a "$uid" != "$suid" -a "$gid" != "$sgid"
	for spec in "etc/signgate 755 0 0" "etc/signgate/tls 750 0 $gid" \
	    "etc/signgate/pins 700 0 0" "etc/signgate/hsm 750 0 $sgid" \
	    "var/lib/signgate 700 $uid $gid" "var/lib/signgate-hsm 700 $suid $sgid"; do
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
elif [ ! -f "$unit_front" ] || [ ! -f "$unit_signer" ]; then
	sandbox_skip="no installed units"
fi

# unit_values UNIT KEY: every value of KEY= in the unit, one a line (for
# settings without a ~ form).
unit_values() {
	sed -n "s/^$2=//p" "$1" | tr ' ' '\n' | sed '/^$/d'
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

# sandbox_check NAME TRACE UNIT WRITABLE: what the process traced in
# TRACE did, against UNIT; WRITABLE, an extended regular expression, is
# where it may write.
sandbox_check() {
	local name=$1 trace=$2 unit=$3 writable=$4 allow deny fams f bad wx
	allow=$(sed -n 's/^SystemCallFilter=\([^~]\)/\1/p' "$unit")
	deny=$(sed -n 's/^SystemCallFilter=~//p' "$unit")
	expand_groups $allow | sort -u >"$T_DIR/allowed.all"
	expand_groups $deny | sort -u >"$T_DIR/denied"
	comm -23 "$T_DIR/allowed.all" "$T_DIR/denied" >"$T_DIR/allowed"

	{ grep -oE '^[0-9]+ +[a-z0-9_]+\(' "$trace" |
	    sed -E 's/^[0-9]+ +//; s/\($//'
	  grep -oE '<\.\.\. [a-z0-9_]+ resumed>' "$trace" |
	    awk '{ print $2 }'; } | sort -u >"$T_DIR/used.$name"
	echo "# the $name made $(wc -l <"$T_DIR/used.$name") distinct system calls"
	comm -23 "$T_DIR/used.$name" "$T_DIR/allowed" >"$T_DIR/refused.$name"
	if [ ! -s "$T_DIR/refused.$name" ]; then
		ok "$name: every system call is in its unit's SystemCallFilter="
	else
		not_ok "$name: system calls its unit's filter refuses:" \
		    "$(tr '\n' ' ' <"$T_DIR/refused.$name")"
	fi

	fams=$(grep -oE ' socket(pair)?\(AF_[A-Z0-9]+' "$trace" |
	    sed 's/.*(//' | sort -u)
	allowed_fams=" $(unit_values "$unit" RestrictAddressFamilies | tr '\n' ' ') "
	bad=
	for f in $fams; do
		case "$allowed_fams" in *" $f "*) ;; *) bad="$bad $f" ;; esac
	done
	expect_eq "$name: socket families within RestrictAddressFamilies= ($(echo $fams))" \
	    "${bad:-none refused}" "none refused"

	# MemoryDenyWriteExecute=: no W+X mapping, no mprotect to X.
	wx=$(grep -E ' (mmap|mprotect|pkey_mprotect)\(' "$trace" |
	    grep -E 'PROT_WRITE\|PROT_EXEC|PROT_EXEC\|PROT_WRITE| (pkey_)?mprotect\(.*PROT_EXEC' |
	    head -n 3)
	expect_eq "$name: no memory that MemoryDenyWriteExecute= refuses" \
	    "${wx:-none}" "none"

	# Files.  ProtectSystem=strict: writes only where the unit allows.
	# PrivateDevices=: only the pseudo-devices.  ProcSubset=pid: only
	# process directories under /proc.  ProtectHome=: no home.
	{ grep -E ' (open|openat)\(.*(O_WRONLY|O_RDWR|O_CREAT|O_TRUNC)' "$trace"
	  grep -E ' (creat|mkdir|mkdirat|unlink|unlinkat|rename|renameat|renameat2|truncate|link|linkat|symlink|symlinkat|mknod|mknodat)\(' \
	    "$trace"; } | grep -oE '"/[^"]*"' | tr -d '"' | sort -u \
	    >"$T_DIR/written.$name"
	echo "# the $name wrote to: $(sed "s|^$T_DIR/|\$T_DIR/|" "$T_DIR/written.$name" |
	    tr '\n' ' ')"
	bad=$(grep -vE "$writable" "$T_DIR/written.$name" | head -n 5 | tr '\n' ' ')
	expect_eq "$name: writes only where its unit allows (ProtectSystem=strict)" \
	    "${bad:-none elsewhere}" "none elsewhere"
	grep -oE '"/(dev|proc|home|root|run/user)(/[^"]*)?"' "$trace" |
	    tr -d '"' | sort -u >"$T_DIR/special.$name"
	# /proc/sys/vm/overcommit_memory: glibc's malloc reads it and
	# does without when it cannot.
	bad=$(grep -vE '^/dev/(null|zero|full|random|urandom|tty|ptmx|pts/.*|shm/.*)$' "$T_DIR/special.$name" |
	    grep -vE '^/proc/(self|thread-self|[0-9]+)(/|$)' |
	    grep -vx /proc/sys/vm/overcommit_memory | head -n 5 | tr '\n' ' ')
	expect_eq "$name: no device, /proc or home path the sandbox hides" \
	    "${bad:-none}" "none"
}

# stop_traced TRACE PID NAME: SIGTERM to the traced daemon itself (strace
# would only detach on a signal); strace then ends with its exit status.
stop_traced() {
	local main_pid rc
	main_pid=$(awk 'NR == 1 { print $1 }' "$1")
	kill -TERM "$main_pid" 2>/dev/null
	await_exit "$2" 10
	rc=$?
	expect_eq "traced: the $3 stops cleanly on SIGTERM" "$rc" 0
}

if [ -n "$sandbox_skip" ]; then
	echo "# sandbox check skipped: $sandbox_skip"
else
	systemd-analyze syscall-filter >"$T_DIR/filters" 2>/dev/null

	# As the units run them: each part as its user when we are root
	# (strace -u: no drop to trace then, and strace itself stays root so
	# that it still reads the non-dumpable signer's arguments), the state
	# directories made as StateDirectory= makes them, the socket's
	# directory as RuntimeDirectory=.
	mkdir -p "$T_DIR/run" "$T_DIR/state" "$T_DIR/state-hsm"
	chmod 0700 "$T_DIR/state" "$T_DIR/state-hsm"
	as_front= as_signer=
	if [ "$(id -u)" -eq 0 ]; then
		as_front="-u $FRONT_USER" as_signer="-u $SIGNER_USER"
		chown "$FRONT_USER:$FRONT_USER" "$T_DIR/state"
		chown "$SIGNER_USER:$SIGNER_USER" "$T_DIR/run" "$T_DIR/state-hsm"
	fi
	for part in front signer; do
		if [ "$part" = front ]; then who=$as_front; else who=$as_signer; fi
		printf '#!/bin/sh\nexec strace -f -qq -s 4096 %s -o "%s" -- "%s" "$@"\n' \
		    "$who" "$T_DIR/trace.$part" "$BUILD/signgated" >"$T_DIR/traced-$part"
		chmod +x "$T_DIR/traced-$part"
	done
	# A policy of our own, so that a reload (ExecReload=) can be traced.
	cp "$DEV/policy.conf" "$T_DIR/policy.conf"
	write_config ".policy = \"$T_DIR/policy.conf\" |
	    .signer_socket = \"$T_DIR/run/signer.sock\""
	if SIGNER_CMD="$T_DIR/traced-signer" start_signer &&
	    SIGNGATED="$T_DIR/traced-front" start_daemon; then
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
		front_trace="$T_DIR/trace.front"
		signer_trace="$T_DIR/trace.signer"
		sed -i 's/^version .*/version 2/' "$T_DIR/policy.conf"
		kill -HUP "$(awk 'NR == 1 { print $1 }' "$front_trace")"
		for _ in $(seq 1 100); do
			grep -q 'SIGHUP: policy' "$T_DIR/daemon.log" && break
			sleep 0.05
		done
		check "traced: SIGHUP reloads the policy (version 2), in the signer too" \
		    grep -q 'SIGHUP: policy .* version 2 in force' "$T_DIR/daemon.log"

		stop_traced "$front_trace" "$DAEMON_PID" front
		DAEMON_PID=
		stop_traced "$signer_trace" "$SIGNER_PID" signer
		SIGNER_PID=

		tokendir=$(sed -n 's/^directories\.tokendir *= *//p' \
		    "$SOFTHSM2_CONF")
		# The front: its state directory (StateDirectory=).
		sandbox_check front "$front_trace" "$unit_front" \
		    "^$T_DIR/state(/|\$)"
		# The signer: its state directory, its socket's directory
		# (RuntimeDirectory=) and, for SoftHSM alone, the token
		# directory (a real module needs none, see OPERATIONS.md).
		sandbox_check signer "$signer_trace" "$unit_signer" \
		    "^($T_DIR/state-hsm|$T_DIR/run|$tokendir)(/|\$)"
		check "the front never opened the PKCS#11 module" \
		    bash -c "! grep -qE 'open(at)?\\(.*libsofthsm2\\.so' '$front_trace'"
		check "the signer did" \
		    grep -qE 'open(at)?\(.*libsofthsm2\.so' "$signer_trace"
	else
		not_ok "signgated (signer and front) starts under strace"
	fi
fi

finish
