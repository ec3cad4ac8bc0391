# PostgreSQL servers for the tests: a throwaway cluster in a directory,
# reached over a Unix socket only, with password (SCRAM) authentication so
# that a client's password file is really used.  Sourced, never run:
#
#	source "$SG_ROOT/tests/pg.sh"
#	pg_start "$T_DIR/pg" || exit 1    # PG_SUPER_CONNINFO, PG_SUPER_PASSFILE
#	pg_new_db gw1                     # PG_DB_CONNINFO, PG_DB_PASSFILE
#	pg_psql "$PG_DB_CONNINFO" "$PG_DB_PASSFILE" -c 'select 1'
#	pg_kill9; pg_resume               # a crash of the server, and recovery
#	pg_stop                           # also safe from a trap, and twice
#
# tests/run.sh starts one cluster for the whole run and hands it to the
# unit tests as SG_TEST_PG and SG_TEST_PG_PASSFILE; a script that stops or
# kills its server starts one of its own.
#
# A cluster's directory DIR holds:
#	.sg-pg          what pg_stop needs (binaries, socket directory, port);
#	                nothing is removed from a directory without it
#	data/           the cluster (owned by the server's user, 0700)
#	log/            the server's log (postgresql.log) and initdb's
#	s/              the socket directory, unless DIR is too long for a
#	                socket path (107 bytes): then /tmp/sgpg.XXXXXX
#	pass/           the passwords, one per role (ROLE.pass, mode 0600, the
#	                password alone without a newline); the superuser's is
#	                postgres.pass
# DIR, s/ and pass/ are traversable by anyone (0711), so that a daemon
# running as another user reaches a password file given to it.
#
# PostgreSQL refuses to run as root: run by root, initdb and the server
# run as the system user signgate-pg, made here if missing.  Passwords
# never appear on a command line: psql gets its password through the
# environment, SQL goes through a pipe, initdb reads a file of the
# server's user removed right after it.
#
# Nothing here exits the caller's shell or assumes `set -e`: a function
# that fails returns non-zero with a line on stderr naming the step (and
# the end of the server's log when the server was involved).  Every step
# is bounded in time.

_PG_OS_USER=signgate-pg
_PG_SUPER=postgres
_PG_MARK=.sg-pg
# Bounds, in seconds: pg_ctl's own wait, and the outer bound on a program
# that could hang (initdb, psql, pg_ctl itself).
_PG_WAIT=30
_PG_BOUND=60

_pg_say() { echo "pg.sh: $*" >&2; }

# _pg_log_tail DIR [NAME]: the last lines of DIR's log NAME (default the
# server's, postgresql.log), indented, on stderr.
_pg_log_tail() {
	local f=$1/log/${2:-postgresql.log}
	[ -s "$f" ] || return 0
	echo "pg.sh: the end of $f:" >&2
	tail -n 20 "$f" | sed 's/^/    /' >&2
}

# _pg_as CMD...: runs CMD as the server's user (when root), from /, where
# that user may be.
_pg_as() {
	if [ "$EUID" -eq 0 ]; then
		(cd / && setpriv --reuid="$_PG_OS_USER" --regid="$_PG_OS_USER" \
		    --clear-groups -- "$@")
	else
		(cd / && "$@")
	fi
}

# _pg_os_user: makes sure the server's user exists when root.  Another
# test may be making it at the same moment: what counts is that it exists
# afterwards (useradd fails while the other holds /etc/passwd's lock).
_pg_os_user() {
	local i
	[ "$EUID" -eq 0 ] || return 0
	id -u "$_PG_OS_USER" >/dev/null 2>&1 && return 0
	if ! command -v useradd >/dev/null 2>&1 ||
	    ! command -v setpriv >/dev/null 2>&1; then
		_pg_say "useradd and setpriv are needed to run the server as root"
		return 1
	fi
	for ((i = 0; i < 50; i++)); do
		useradd --system --user-group --no-create-home \
		    --home-dir /nonexistent --shell /usr/sbin/nologin \
		    "$_PG_OS_USER" >/dev/null 2>&1
		id -u "$_PG_OS_USER" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	_pg_say "cannot create the system user $_PG_OS_USER"
	return 1
}

# _pg_secret: 48 random hex digits on stdout (no argv involved).
_pg_secret() {
	local s
	s=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
	[ ${#s} -eq 48 ] || return 1
	printf '%s' "$s"
}

# _pg_write_secret FILE SECRET: FILE (made anew, mode 0600) holds SECRET
# alone, without a newline.
_pg_write_secret() {
	rm -f -- "$1" &&
	    (umask 077; set -C; printf '%s' "$2" >"$1") &&
	    chmod 0600 -- "$1"
}

# _pg_state DIR: reads DIR's .sg-pg into _pg_bindir, _pg_sockdir, _pg_port.
_pg_state() {
	local k v
	_pg_bindir='' _pg_sockdir='' _pg_port=''
	[ -f "$1/$_PG_MARK" ] || return 1
	while IFS='=' read -r k v; do
		case "$k" in
		bindir) _pg_bindir=$v ;;
		sockdir) _pg_sockdir=$v ;;
		port) _pg_port=$v ;;
		esac
	done <"$1/$_PG_MARK"
	[ -n "$_pg_bindir" ] && [ -n "$_pg_sockdir" ] && [ -n "$_pg_port" ]
}

# _pg_abs DIR: DIR made absolute (not resolved), refused unless it is made
# of characters that need no quoting in a configuration file, a conninfo
# or a find(1) pattern.
_pg_abs() {
	local d=$1
	case "$d" in /*) ;; *) d="$PWD/$d" ;; esac
	d=${d%/}
	if [[ ! "$d" =~ ^(/[A-Za-z0-9._+-]+)+$ ]]; then
		_pg_say "unsuitable directory name '$1' (only A-Z a-z 0-9 . _ + - and /)"
		return 1
	fi
	printf '%s' "$d"
}

# _pg_procs DIR: the PIDs of the server's processes of DIR's cluster: the
# postmaster and every child of it (even orphaned) works in the data
# directory, and nothing else of that user does.
_pg_procs() {
	local data p user=$_PG_OS_USER
	data=$(cd "$1/data" 2>/dev/null && pwd -P) || return 0
	[ "$EUID" -eq 0 ] || user=$(id -un)
	find /proc/[0-9]*/cwd -maxdepth 0 -user "$user" -lname "$data" \
	    2>/dev/null | while IFS= read -r p; do
		p=${p#/proc/}
		echo "${p%/cwd}"
	done
}

# _pg_kill_all DIR: SIGKILL to every process of the cluster, then waits
# (up to 10 s) until none is left.  The processes are found anew, never
# from a PID file that may be stale.
_pg_kill_all() {
	local i pids
	for ((i = 0; i < 100; i++)); do
		pids=$(_pg_procs "$1")
		[ -n "$pids" ] || return 0
		# shellcheck disable=SC2086
		kill -KILL $pids 2>/dev/null
		sleep 0.1
	done
	_pg_say "the server's processes in $1 did not die: $(_pg_procs "$1" | tr '\n' ' ')"
	return 1
}

# _pg_clear_locks DIR: the lock files a killed server left behind, when no
# process of it is left.  The server would judge them itself, but it takes
# a zombie's PID, when nothing reaps the dead postmaster, for a live one.
_pg_clear_locks() {
	[ -z "$(_pg_procs "$1")" ] || return 0
	rm -f -- "$1/data/postmaster.pid" \
	    "$_pg_sockdir/.s.PGSQL.$_pg_port.lock" "$_pg_sockdir/.s.PGSQL.$_pg_port"
}

# _pg_ctl_start DIR: starts the server of DIR (settings in its
# postgresql.conf) and waits until it accepts connections.
_pg_ctl_start() {
	if ! _pg_as timeout -k 5 "$_PG_BOUND" "$_pg_bindir/pg_ctl" -D "$1/data" \
	    -l "$1/log/postgresql.log" -w -t "$_PG_WAIT" -s start >&2; then
		_pg_say "the server in $1 did not start within ${_PG_WAIT}s"
		_pg_log_tail "$1"
		return 1
	fi
}

# _pg_psql_bin: psql of the server's version, else the one on PATH.
_pg_psql_bin() {
	local b=${PG_BINDIR:-}
	[ -n "$b" ] || b=$(pg_bindir 2>/dev/null)
	if [ -n "$b" ] && [ -x "$b/psql" ]; then
		printf '%s' "$b/psql"
	else
		printf '%s' psql
	fi
}

# pg_bindir: the directory of the newest PostgreSQL server binaries
# (initdb, pg_ctl, postgres), or $SG_PG_BINDIR; non-zero when none.
pg_bindir() {
	local d
	if [ -n "${SG_PG_BINDIR:-}" ]; then
		d=$SG_PG_BINDIR
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
			echo "$d"
			return 0
		fi
		_pg_say "SG_PG_BINDIR=$d: no initdb, pg_ctl and postgres there"
		return 1
	fi
	while IFS= read -r d; do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
			echo "$d"
			return 0
		fi
	done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5,5Vr)
	return 1
}

# pg_psql CONNINFO PASSFILE [psql options...]: psql on CONNINFO with the
# password in PASSFILE, without ~/.psqlrc, stopping at the first error,
# printing bare rows (-At).  SQL goes with -c or on stdin.
pg_psql() {
	local conninfo=${1:-} passfile=${2:-} pw psql
	if [ $# -lt 2 ] || [ ! -r "$passfile" ]; then
		_pg_say "pg_psql: usage: pg_psql CONNINFO PASSFILE [psql options] (passfile '$passfile')"
		return 2
	fi
	shift 2
	psql=$(_pg_psql_bin)
	pw=$(<"$passfile")
	PGPASSWORD=$pw PGCONNECT_TIMEOUT=10 timeout -k 5 "$_PG_BOUND" \
	    "$psql" -X -q -A -t -v ON_ERROR_STOP=1 -d "$conninfo" "$@"
}

# pg_start DIR: a fresh cluster in DIR (made if missing, else it must be
# empty; it becomes mode 0711), started.  Exports PG_DIR, PG_BINDIR,
# PG_DATA, PG_SOCKDIR, PG_PORT, PG_LOG, PG_SUPER_CONNINFO ("host=SOCKDIR
# port=PORT user=postgres dbname=postgres") and PG_SUPER_PASSFILE.  On
# failure nothing is left running and what it made is removed.
pg_start() {
	local dir bindir sock port pw out t0=$SECONDS
	if [ $# -ne 1 ]; then
		_pg_say "pg_start: usage: pg_start DIR"
		return 2
	fi
	dir=$(_pg_abs "$1") || return 2
	if ! bindir=$(pg_bindir); then
		_pg_say "pg_start: PostgreSQL server binaries not found" \
		    "(/usr/lib/postgresql/*/bin with initdb and pg_ctl, or SG_PG_BINDIR)"
		return 1
	fi
	_pg_os_user || return 1
	if [ -e "$dir/$_PG_MARK" ]; then
		_pg_say "pg_start: $dir already holds a cluster (pg_stop it first)"
		return 1
	fi
	# An existing DIR must be empty: pg_stop removes what is made here,
	# then DIR itself only if nothing else is in it.
	if [ -e "$dir" ] && [ -n "$(ls -A -- "$dir" 2>/dev/null)" ]; then
		_pg_say "pg_start: $dir is not empty"
		return 1
	fi
	if ! mkdir -p -- "$dir" || ! chmod 0711 -- "$dir"; then
		_pg_say "pg_start: cannot make $dir"
		return 1
	fi
	if ! _pg_as test -x "$dir"; then
		_pg_say "pg_start: the server's user ($_PG_OS_USER) cannot reach" \
		    "$dir: its parent directories must be traversable (o+x)"
		rmdir -- "$dir" 2>/dev/null
		return 1
	fi
	# The socket is SOCKDIR/.s.PGSQL.NNNNN (16 bytes more).
	if [ $((${#dir} + 2 + 16)) -le 107 ]; then
		sock=$dir/s
		if ! mkdir -- "$sock"; then
			_pg_say "pg_start: cannot make $sock"
			rmdir -- "$dir" 2>/dev/null
			return 1
		fi
	elif ! sock=$(mktemp -d /tmp/sgpg.XXXXXX); then
		_pg_say "pg_start: cannot make a socket directory in /tmp"
		rmdir -- "$dir" 2>/dev/null
		return 1
	fi
	# Any port does (each cluster has its own socket directory); a
	# distinct one keeps the servers' logs and shared memory keys apart.
	port=$((20000 + RANDOM % 40000))
	printf 'bindir=%s\nsockdir=%s\nport=%s\n' "$bindir" "$sock" "$port" \
	    >"$dir/$_PG_MARK" || { _pg_say "pg_start: cannot write $dir/$_PG_MARK"; return 1; }
	_pg_state "$dir" || return 1

	if ! mkdir -m 0700 -- "$dir/data" "$dir/log" ||
	    ! mkdir -m 0711 -- "$dir/pass" ||
	    ! chmod 0711 -- "$sock" ||
	    { [ "$EUID" -eq 0 ] && ! chown "$_PG_OS_USER:" -- "$dir/data" \
		"$dir/log" "$sock"; }; then
		_pg_say "pg_start: cannot prepare the directories in $dir"
		pg_stop "$dir"
		return 1
	fi
	if ! pw=$(_pg_secret) ||
	    ! _pg_write_secret "$dir/pass/$_PG_SUPER.pass" "$pw" ||
	    ! _pg_write_secret "$dir/log/initdb.pw" "$pw" ||
	    { [ "$EUID" -eq 0 ] && ! chown "$_PG_OS_USER:" -- "$dir/log/initdb.pw"; }; then
		_pg_say "pg_start: cannot write the superuser's password"
		pg_stop "$dir"
		return 1
	fi
	pw=
	# --no-sync: initdb's files are not flushed to disk, which matters
	# only if the machine itself crashes; the tests crash the server,
	# never the machine, and the running server has fsync on.
	if ! _pg_as timeout -k 5 "$_PG_BOUND" "$bindir/initdb" -D "$dir/data" \
	    -U "$_PG_SUPER" --pwfile="$dir/log/initdb.pw" -A scram-sha-256 \
	    -E UTF8 --locale=C --no-sync --no-instructions \
	    >"$dir/log/initdb.log" 2>&1; then
		rm -f -- "$dir/log/initdb.pw"
		_pg_say "pg_start: initdb failed in $dir/data"
		_pg_log_tail "$dir" initdb.log
		pg_stop "$dir"
		return 1
	fi
	rm -f -- "$dir/log/initdb.pw"

	# Appended, so these win over initdb's defaults above them; pg_resume
	# needs nothing more than the data directory.
	if ! cat >>"$dir/data/postgresql.conf" <<-EOF ||
		# tests/pg.sh
		listen_addresses = ''
		port = $port
		unix_socket_directories = '$sock'
		unix_socket_permissions = 0777
		max_connections = 300
		shared_buffers = 16MB
		fsync = on
		synchronous_commit = on
		full_page_writes = on
		password_encryption = 'scram-sha-256'
		huge_pages = off
		jit = off
		log_line_prefix = '%m [%p] %q%u@%d '
		EOF
	    ! printf 'local all all scram-sha-256\n' >"$dir/data/pg_hba.conf"; then
		_pg_say "pg_start: cannot write the server's configuration"
		pg_stop "$dir"
		return 1
	fi
	if ! _pg_ctl_start "$dir"; then
		pg_stop "$dir"
		return 1
	fi

	export PG_DIR=$dir PG_BINDIR=$bindir PG_DATA=$dir/data PG_SOCKDIR=$sock
	export PG_PORT=$port PG_LOG=$dir/log/postgresql.log
	export PG_SUPER_CONNINFO="host=$sock port=$port user=$_PG_SUPER dbname=postgres"
	export PG_SUPER_PASSFILE=$dir/pass/$_PG_SUPER.pass
	# The superuser logs in with the password: authentication works.
	out=$(pg_psql "$PG_SUPER_CONNINFO" "$PG_SUPER_PASSFILE" \
	    -c 'select current_user' 2>&1)
	if [ "$out" != "$_PG_SUPER" ]; then
		_pg_say "pg_start: the superuser cannot log in to the server in $dir: $out"
		_pg_log_tail "$dir"
		pg_stop "$dir"
		return 1
	fi
	[ -z "${SG_PG_VERBOSE:-}" ] ||
	    _pg_say "pg_start: $dir (socket $sock, port $port) in $((SECONDS - t0))s"
	return 0
}

# pg_stop [DIR]: stops the server of DIR (default $PG_DIR), fast
# shutdown, else SIGKILL to all its processes, and removes what pg_start
# made there (and the socket directory), then DIR when that leaves it
# empty.  Nothing to do (0) when DIR is gone or holds no cluster any more;
# safe in a trap and twice.
pg_stop() {
	local dir=${1:-${PG_DIR:-}} rc=0
	[ -n "$dir" ] || return 0
	dir=$(_pg_abs "$dir") || return 2
	if [ ! -e "$dir" ]; then
		_pg_forget "$dir"
		return 0
	fi
	if [ ! -f "$dir/$_PG_MARK" ]; then
		_pg_forget "$dir"
		return 0
	fi
	if ! _pg_state "$dir"; then
		_pg_say "pg_stop: $dir/$_PG_MARK is incomplete"
		_pg_kill_all "$dir" || return 1
	elif [ -n "$(_pg_procs "$dir")" ]; then
		if ! _pg_as timeout -k 5 "$_PG_BOUND" "$_pg_bindir/pg_ctl" \
		    -D "$dir/data" -m fast -t "$_PG_WAIT" -s stop >&2; then
			_pg_say "pg_stop: the server in $dir did not stop within ${_PG_WAIT}s: killing it"
			_pg_log_tail "$dir"
		fi
		_pg_kill_all "$dir" || return 1
	fi
	case "$_pg_sockdir" in
	/tmp/sgpg.*) rm -rf -- "$_pg_sockdir" || rc=1 ;;
	esac
	# What pg_start made, the marker last; DIR itself only when empty.
	rm -rf -- "$dir/data" "$dir/log" "$dir/s" "$dir/pass" || rc=1
	[ "$rc" -ne 0 ] || rm -f -- "$dir/$_PG_MARK" || rc=1
	rmdir -- "$dir" 2>/dev/null
	[ "$rc" -eq 0 ] || _pg_say "pg_stop: cannot remove the cluster in $dir"
	_pg_forget "$dir"
	return "$rc"
}

# _pg_forget DIR: the exported variables go when they describe DIR.
_pg_forget() {
	[ "${PG_DIR:-}" = "$1" ] || return 0
	unset PG_DIR PG_BINDIR PG_DATA PG_SOCKDIR PG_PORT PG_LOG \
	    PG_SUPER_CONNINFO PG_SUPER_PASSFILE PG_DB_CONNINFO PG_DB_PASSFILE
}

# _pg_running DIR: DIR's state is read and its server has processes.
_pg_running() {
	local fn=$1 dir=$2
	if ! _pg_state "$dir"; then
		_pg_say "$fn: $dir holds no cluster made by pg_start"
		return 1
	fi
	if [ -z "$(_pg_procs "$dir")" ]; then
		_pg_say "$fn: the server in $dir is not running"
		return 1
	fi
}

# pg_halt [DIR]: the server stops at once, as in a crash (immediate
# shutdown: no checkpoint, recovery at the next start).
pg_halt() {
	local dir
	dir=$(_pg_abs "${1:-${PG_DIR:-}}") || return 2
	_pg_running pg_halt "$dir" || return 1
	if ! _pg_as timeout -k 5 "$_PG_BOUND" "$_pg_bindir/pg_ctl" \
	    -D "$dir/data" -m immediate -t "$_PG_WAIT" -s stop >&2; then
		_pg_say "pg_halt: the server in $dir did not stop within ${_PG_WAIT}s: killing it"
		_pg_log_tail "$dir"
	fi
	_pg_kill_all "$dir"
}

# pg_kill9 [DIR]: SIGKILL to the postmaster and every server process at
# once; returns when none is left.
pg_kill9() {
	local dir
	dir=$(_pg_abs "${1:-${PG_DIR:-}}") || return 2
	_pg_running pg_kill9 "$dir" || return 1
	_pg_kill_all "$dir"
}

# pg_resume [DIR]: starts the server of DIR again after pg_halt or
# pg_kill9, on the same data directory and socket; returns once it
# accepts connections (crash recovery done).
pg_resume() {
	local dir
	dir=$(_pg_abs "${1:-${PG_DIR:-}}") || return 2
	if ! _pg_state "$dir"; then
		_pg_say "pg_resume: $dir holds no cluster made by pg_start"
		return 1
	fi
	if [ -n "$(_pg_procs "$dir")" ]; then
		_pg_say "pg_resume: the server in $dir is still running"
		return 1
	fi
	_pg_clear_locks "$dir"
	_pg_ctl_start "$dir"
}

# pg_new_db NAME [ROLE]: a database NAME owned by ROLE (default NAME), a
# login role with a random password made unless pg_new_db made it before.
# Exports PG_DB_CONNINFO ("host=SOCKDIR port=PORT dbname=NAME user=ROLE",
# also printed) and PG_DB_PASSFILE ($PG_DIR/pass/ROLE.pass, mode 0600, the
# caller's: chown it to the user that needs it).  Names are lower-case
# SQL identifiers.
pg_new_db() {
	local name=${1:-} role=${2:-${1:-}} file pw sql conninfo out made=
	local re='^[a-z_][a-z0-9_]{0,62}$'
	if [ $# -lt 1 ] || [ $# -gt 2 ] || [[ ! "$name" =~ $re ]] ||
	    [[ ! "$role" =~ $re ]]; then
		_pg_say "pg_new_db: usage: pg_new_db NAME [ROLE] (lower-case identifiers, up to 63 bytes)"
		return 2
	fi
	if [ -z "${PG_DIR:-}" ] || [ -z "${PG_SUPER_CONNINFO:-}" ]; then
		_pg_say "pg_new_db: no server (pg_start first)"
		return 1
	fi
	file=$PG_DIR/pass/$role.pass
	conninfo="host=$PG_SOCKDIR port=$PG_PORT dbname=$name user=$role"
	# The statements are kept out of the server's log even when they
	# fail (a CREATE ROLE carries the password).
	sql="SET log_min_error_statement = panic; SET log_statement = none;"
	if [ ! -e "$file" ]; then
		if ! pw=$(_pg_secret) || ! _pg_write_secret "$file" "$pw"; then
			_pg_say "pg_new_db: cannot write $file"
			return 1
		fi
		sql+=" CREATE ROLE \"$role\" LOGIN PASSWORD '$pw';"
		pw=
		made=$file
	fi
	sql+=$'\n'"CREATE DATABASE \"$name\" OWNER \"$role\";"
	if ! printf '%s\n' "$sql" |
	    pg_psql "$PG_SUPER_CONNINFO" "$PG_SUPER_PASSFILE" >&2; then
		sql=
		[ -z "$made" ] || rm -f -- "$made"
		_pg_say "pg_new_db: cannot create the role $role or the database $name"
		_pg_log_tail "$PG_DIR"
		return 1
	fi
	sql=
	out=$(pg_psql "$conninfo" "$file" -c 'select current_user' 2>&1)
	if [ "$out" != "$role" ]; then
		_pg_say "pg_new_db: $role cannot log in to $name with $file: $out"
		_pg_log_tail "$PG_DIR"
		return 1
	fi
	export PG_DB_CONNINFO=$conninfo PG_DB_PASSFILE=$file
	echo "$conninfo"
}
