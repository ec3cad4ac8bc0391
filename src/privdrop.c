/*
 * Privilege separation by user: see sg_privdrop.h.
 *
 * The drop follows OpenSSH's permanently_set_uid() and Tor's switch_id():
 * supplementary groups first (they need root), then the gid, then the uid,
 * all three ids of each (real, effective, saved) at once; the file system
 * ids follow the effective ones.  Then it is checked rather than trusted:
 * regaining uid 0 or gid 0 must fail, and /proc/self/status must show the
 * target ids in all four places and empty permitted, effective and ambient
 * capability sets (a parent that left SECBIT_KEEP_CAPS or
 * SECBIT_NO_SETUID_FIXUP behind would otherwise let capabilities survive
 * setresuid()).  The bounding set is emptied while that is still allowed,
 * and no-new-privileges is set, so nothing executed later could gain
 * either back.
 *
 * The kernel makes a process non-dumpable when its credentials change; the
 * caller says what it wants instead: the signer stays closed (its memory
 * holds PINs and sessions), the front becomes dumpable again, as it is
 * when its systemd unit starts it as its user (its own user, which nothing
 * else runs as, may then read its /proc files; a core dump is possible).
 *
 * Directories handed to a user by root (state_dir, signer_state_dir) are
 * opened relative to their real parent, which must sit in directories
 * that neither user can change, so that a compromised front cannot point
 * root's chown at some other directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sg_err.h"
#include "sg_privdrop.h"
#include "sg_util.h"

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

#define STATUS_MAX 16384

static struct {
	enum sg_priv_start start;
	struct sg_priv_user front, signer;
	int entered;                    /* 1 + role once dropped */
} plan;

static const char *
field_of(enum sg_priv_role role)
{
	return role == SG_PRIV_FRONT ? "users.front" : "users.signer";
}

static const char *
start_name(enum sg_priv_start s)
{
	return s == SG_PRIV_START_FRONT ? "users.front" : "users.signer";
}

int
sg_privdrop_lookup(const char *field, const char *name,
    struct sg_priv_user *ret, char *errbuf, size_t errlen)
{
	struct passwd pw, *res = NULL;
	char *buf;
	long sz;
	int n, r;

	memset(ret, 0, sizeof(*ret));
	if (strlen(name) >= sizeof(ret->name)) {
		snprintf(errbuf, errlen, "%s: user name too long", field);
		return SG_ERR_INVALID;
	}
	if ((sz = sysconf(_SC_GETPW_R_SIZE_MAX)) < 16384)
		sz = 16384;
	if ((buf = malloc((size_t)sz)) == NULL)
		return SG_ERR_NOMEM;
	r = getpwnam_r(name, &pw, buf, (size_t)sz, &res);
	if (r != 0 || res == NULL) {
		if (r != 0 && r != ENOENT && r != ESRCH)
			snprintf(errbuf, errlen, "%s: cannot look up user "
			    "'%s': %s", field, name, strerror(r));
		else
			snprintf(errbuf, errlen, "%s: no such user '%s' "
			    "(create it: useradd --system --user-group "
			    "--no-create-home --shell /usr/sbin/nologin %s)",
			    field, name, name);
		free(buf);
		return SG_ERR_INVALID;
	}
	snprintf(ret->name, sizeof(ret->name), "%s", name);
	ret->uid = pw.pw_uid;
	ret->gid = pw.pw_gid;
	free(buf);
	n = SG_PRIVDROP_MAX_GROUPS;
	if (getgrouplist(name, ret->gid, ret->groups, &n) < 0 || n < 1) {
		snprintf(errbuf, errlen, "%s: user '%s' is in more than %d "
		    "groups", field, name, SG_PRIVDROP_MAX_GROUPS);
		return SG_ERR_INVALID;
	}
	ret->ngroups = n;
	return 0;
}

static int
in_groups(const struct sg_priv_user *u, gid_t g)
{
	int i;

	for (i = 0; i < u->ngroups; i++)
		if (u->groups[i] == g)
			return 1;
	return u->gid == g;
}

static int
check_one(const char *field, const struct sg_priv_user *u, char *errbuf,
    size_t errlen)
{
	if (u->uid == 0) {
		snprintf(errbuf, errlen, "%s: '%s' is uid 0: each part must "
		    "run as an unprivileged user", field, u->name);
		return SG_ERR_INVALID;
	}
	if (in_groups(u, 0)) {
		snprintf(errbuf, errlen, "%s: '%s' is in group 0 (root)",
		    field, u->name);
		return SG_ERR_INVALID;
	}
	return 0;
}

int
sg_privdrop_check_pair(const struct sg_priv_user *front,
    const struct sg_priv_user *signer, char *errbuf, size_t errlen)
{
	int r;

	if ((r = check_one("users.front", front, errbuf, errlen)) != 0 ||
	    (r = check_one("users.signer", signer, errbuf, errlen)) != 0)
		return r;
	if (front->uid == signer->uid) {
		snprintf(errbuf, errlen, "users: '%s' and '%s' are the same "
		    "uid %u: the front and the signer need two users",
		    front->name, signer->name, (unsigned)front->uid);
		return SG_ERR_INVALID;
	}
	/* The signer's own files may be group-readable (a token store):
	 * the front must not share its group. */
	if (in_groups(front, signer->gid)) {
		snprintf(errbuf, errlen, "users.front: '%s' is in group %u, "
		    "the primary group of users.signer '%s'", front->name,
		    (unsigned)signer->gid, signer->name);
		return SG_ERR_INVALID;
	}
	return 0;
}

int
sg_privdrop_init(const char *front_user, const char *signer_user,
    char *errbuf, size_t errlen)
{
	struct sg_priv_user f, s;
	char ferr[256], serr[256];
	uid_t uid = getuid();
	int fr, sr, r;

	memset(&plan, 0, sizeof(plan));
	if (uid != geteuid() || getgid() != getegid()) {
		snprintf(errbuf, errlen, "signgated runs set-user-ID or "
		    "set-group-ID: refused");
		return SG_ERR_FORBIDDEN;
	}
	fr = sg_privdrop_lookup("users.front", front_user, &f, ferr,
	    sizeof(ferr));
	sr = sg_privdrop_lookup("users.signer", signer_user, &s, serr,
	    sizeof(serr));
	if (uid == 0)
		plan.start = SG_PRIV_START_ROOT;
	else if (fr == 0 && f.uid == uid)
		plan.start = SG_PRIV_START_FRONT;
	else if (sr == 0 && s.uid == uid)
		plan.start = SG_PRIV_START_SIGNER;
	else {
		plan.start = SG_PRIV_START_DEV;
		sg_log_warn("development setting: the front and the signer "
		    "both run as uid %u; started as root (or as the two "
		    "systemd units) they run as %s and %s, and only the "
		    "signer can read the PINs and the tokens",
		    (unsigned)uid, front_user, signer_user);
		return 0;
	}
	if (fr != 0 || sr != 0) {
		snprintf(errbuf, errlen, "%s", fr != 0 ? ferr : serr);
		plan.start = SG_PRIV_START_NONE;
		return fr != 0 ? fr : sr;
	}
	if ((r = sg_privdrop_check_pair(&f, &s, errbuf, errlen)) != 0) {
		plan.start = SG_PRIV_START_NONE;
		return r;
	}
	plan.front = f;
	plan.signer = s;
	return 0;
}

enum sg_priv_start
sg_privdrop_start(void)
{
	return plan.start;
}

const struct sg_priv_user *
sg_privdrop_user(enum sg_priv_role role)
{
	if (plan.start == SG_PRIV_START_NONE ||
	    plan.start == SG_PRIV_START_DEV)
		return NULL;
	return role == SG_PRIV_FRONT ? &plan.front : &plan.signer;
}

uid_t
sg_privdrop_peer_uid(enum sg_priv_role role)
{
	const struct sg_priv_user *u = sg_privdrop_user(role);

	return u != NULL ? u->uid : getuid();
}

/* ------------------------------------------------------------------ */
/* The drop and its checks. */

static int
parse_ids(const char *line, unsigned long out[4])
{
	char *end;
	int i;

	for (i = 0; i < 4; i++) {
		while (*line == ' ' || *line == '\t')
			line++;
		if (*line < '0' || *line > '9')
			return -1;
		errno = 0;
		out[i] = strtoul(line, &end, 10);
		if (errno != 0 || out[i] > UINT32_MAX)
			return -1;
		line = end;
	}
	while (*line == ' ' || *line == '\t')
		line++;
	return *line == '\n' || *line == '\0' ? 0 : -1;
}

static int
parse_hex64(const char *line, uint64_t *out)
{
	char *end;

	while (*line == ' ' || *line == '\t')
		line++;
	if (strspn(line, "0123456789abcdefABCDEF") != 16)
		return -1;
	errno = 0;
	*out = strtoull(line, &end, 16);
	return errno == 0 && (*end == '\n' || *end == '\0') ? 0 : -1;
}

int
sg_privdrop_parse_status(const char *text, size_t len,
    struct sg_priv_status *ret)
{
	unsigned long ids[4];
	const char *p = text, *end = text + len, *nl;
	char line[256];
	unsigned seen = 0;
	int i;

	memset(ret, 0, sizeof(*ret));
	while (p < end) {
		size_t n;

		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		n = (size_t)(nl - p);
		if (n >= sizeof(line))
			n = sizeof(line) - 1;
		memcpy(line, p, n);
		line[n] = '\0';
		p = nl < end ? nl + 1 : end;
		if (strncmp(line, "Uid:", 4) == 0) {
			if (parse_ids(line + 4, ids) != 0)
				return SG_ERR_INVALID;
			for (i = 0; i < 4; i++)
				ret->uid[i] = (uid_t)ids[i];
			seen |= 1;
		} else if (strncmp(line, "Gid:", 4) == 0) {
			if (parse_ids(line + 4, ids) != 0)
				return SG_ERR_INVALID;
			for (i = 0; i < 4; i++)
				ret->gid[i] = (gid_t)ids[i];
			seen |= 2;
		} else if (strncmp(line, "CapPrm:", 7) == 0) {
			if (parse_hex64(line + 7, &ret->cap_prm) != 0)
				return SG_ERR_INVALID;
			seen |= 4;
		} else if (strncmp(line, "CapEff:", 7) == 0) {
			if (parse_hex64(line + 7, &ret->cap_eff) != 0)
				return SG_ERR_INVALID;
			seen |= 8;
		} else if (strncmp(line, "CapAmb:", 7) == 0) {
			if (parse_hex64(line + 7, &ret->cap_amb) != 0)
				return SG_ERR_INVALID;
			seen |= 16;
		} else if (strncmp(line, "NoNewPrivs:", 11) == 0) {
			const char *v = line + 11;
			while (*v == ' ' || *v == '\t')
				v++;
			if ((v[0] != '0' && v[0] != '1') || v[1] != '\0')
				return SG_ERR_INVALID;
			ret->no_new_privs = v[0] == '1';
			seen |= 32;
		}
	}
	/* Every field but CapAmb (kernels before 4.3 lack it) is needed. */
	return (seen | 16) == 63 ? 0 : SG_ERR_INVALID;
}

static int
read_status(struct sg_priv_status *st)
{
	char *buf;
	ssize_t n;
	size_t len = 0;
	int fd, r;

	if ((fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC)) < 0)
		return SG_ERR_IO;
	if ((buf = malloc(STATUS_MAX)) == NULL) {
		close(fd);
		return SG_ERR_NOMEM;
	}
	while (len < STATUS_MAX - 1) {
		n = read(fd, buf + len, STATUS_MAX - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	r = sg_privdrop_parse_status(buf, len, st);
	free(buf);
	return r;
}

static int
same_groups(const struct sg_priv_user *u)
{
	gid_t now[SG_PRIVDROP_MAX_GROUPS + 1];
	int n, i, j;

	if ((n = getgroups(SG_PRIVDROP_MAX_GROUPS + 1, now)) < 0)
		return 0;
	for (i = 0; i < n; i++) {
		for (j = 0; j < u->ngroups; j++)
			if (now[i] == u->groups[j])
				break;
		if (j == u->ngroups)
			return 0;
	}
	for (j = 0; j < u->ngroups; j++) {
		for (i = 0; i < n; i++)
			if (now[i] == u->groups[j])
				break;
		if (i == n)
			return 0;
	}
	return 1;
}

#define FAIL(...) do {							\
	snprintf(errbuf, errlen, __VA_ARGS__);				\
	return SG_ERR_FORBIDDEN;					\
} while (0)

int
sg_privdrop_become(const struct sg_priv_user *u, int dumpable,
    char *errbuf, size_t errlen)
{
	struct sg_priv_status st;
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	int cap, i;

	if (u->uid == 0 || in_groups(u, 0))
		FAIL("%s: refusing to run as uid 0 or gid 0", u->name);
	/* Ambient and bounding sets, while root may still change them.  A
	 * bounding set that cannot be emptied (no CAP_SETPCAP) is left:
	 * no-new-privileges below makes it unusable all the same. */
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	for (cap = 0; cap < 64; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 &&
		    errno == EINVAL)
			break;
	if (setgroups((size_t)u->ngroups, u->groups) != 0)
		FAIL("%s: setgroups: %s", u->name, strerror(errno));
	if (setresgid(u->gid, u->gid, u->gid) != 0)
		FAIL("%s: setresgid(%u): %s", u->name, (unsigned)u->gid,
		    strerror(errno));
	if (setresuid(u->uid, u->uid, u->uid) != 0)
		FAIL("%s: setresuid(%u): %s", u->name, (unsigned)u->uid,
		    strerror(errno));

	/* Checked, not trusted. */
	if (getresuid(&ru, &eu, &su) != 0 || ru != u->uid || eu != u->uid ||
	    su != u->uid || getresgid(&rg, &eg, &sg) != 0 || rg != u->gid ||
	    eg != u->gid || sg != u->gid)
		FAIL("%s: the user and group ids did not all change",
		    u->name);
	if (!same_groups(u))
		FAIL("%s: the supplementary groups did not change", u->name);
	if (setuid(0) != -1 || seteuid(0) != -1 || setgid(0) != -1 ||
	    setegid(0) != -1)
		FAIL("%s: root could be regained after the drop", u->name);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		FAIL("%s: PR_SET_NO_NEW_PRIVS: %s", u->name, strerror(errno));
	if (prctl(PR_SET_DUMPABLE, dumpable ? 1 : 0, 0, 0, 0) != 0)
		FAIL("%s: PR_SET_DUMPABLE: %s", u->name, strerror(errno));
	if (read_status(&st) != 0)
		FAIL("%s: cannot read /proc/self/status to check the drop",
		    u->name);
	for (i = 0; i < 4; i++)
		if (st.uid[i] != u->uid || st.gid[i] != u->gid)
			FAIL("%s: /proc/self/status shows uid %u gid %u",
			    u->name, (unsigned)st.uid[i], (unsigned)st.gid[i]);
	if (st.cap_prm != 0 || st.cap_eff != 0 || st.cap_amb != 0)
		FAIL("%s: capabilities left after the drop (CapPrm %016llx "
		    "CapEff %016llx CapAmb %016llx)", u->name,
		    (unsigned long long)st.cap_prm,
		    (unsigned long long)st.cap_eff,
		    (unsigned long long)st.cap_amb);
	if (!st.no_new_privs)
		FAIL("%s: no-new-privileges is not set", u->name);
	return 0;
}

#undef FAIL

int
sg_privdrop_enter(enum sg_priv_role role, char *errbuf, size_t errlen)
{
	const struct sg_priv_user *u;
	int r;

	switch (plan.start) {
	case SG_PRIV_START_ROOT:
		if (plan.entered == 1 + (int)role)
			return 0;
		if (plan.entered != 0) {
			snprintf(errbuf, errlen, "%s: this process already "
			    "runs as %s", field_of(role),
			    field_of(plan.entered - 1));
			return SG_ERR_FORBIDDEN;
		}
		u = role == SG_PRIV_FRONT ? &plan.front : &plan.signer;
		if ((r = sg_privdrop_become(u, role == SG_PRIV_FRONT, errbuf,
		    errlen)) != 0)
			return r;
		plan.entered = 1 + (int)role;
		return 0;
	case SG_PRIV_START_FRONT:
	case SG_PRIV_START_SIGNER:
		if ((plan.start == SG_PRIV_START_FRONT) !=
		    (role == SG_PRIV_FRONT)) {
			snprintf(errbuf, errlen, "%s: this process was started "
			    "as %s and cannot become %s", field_of(role),
			    start_name(plan.start), field_of(role));
			return SG_ERR_FORBIDDEN;
		}
		break;
	case SG_PRIV_START_NONE:
		if (geteuid() == 0) {
			snprintf(errbuf, errlen, "%s: started as root without "
			    "users to drop to", field_of(role));
			return SG_ERR_FORBIDDEN;
		}
		break;
	case SG_PRIV_START_DEV:
		break;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		snprintf(errbuf, errlen, "PR_SET_NO_NEW_PRIVS: %s",
		    strerror(errno));
		return SG_ERR_FORBIDDEN;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Directories handed over by root. */

/* One directory on the way: neither user may own or change it. */
static int
safe_step(const char *field, const char *p, char *errbuf, size_t errlen)
{
	struct stat st;

	if (lstat(p, &st) != 0) {
		snprintf(errbuf, errlen, "%s: %s: %s", field, p,
		    strerror(errno));
		return SG_ERR_IO;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(errbuf, errlen, "%s: %s is not a directory", field, p);
		return SG_ERR_INVALID;
	}
	if (st.st_uid == plan.front.uid || st.st_uid == plan.signer.uid) {
		snprintf(errbuf, errlen, "%s: %s belongs to uid %u, one of "
		    "signgated's users, who could then redirect the path",
		    field, p, (unsigned)st.st_uid);
		return SG_ERR_PERMISSIONS;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 &&
	    (st.st_mode & S_ISVTX) == 0) {
		snprintf(errbuf, errlen, "%s: %s is writable by group or "
		    "others (mode %04o)", field, p,
		    (unsigned)(st.st_mode & 07777));
		return SG_ERR_PERMISSIONS;
	}
	return 0;
}

/* No directory from / down to dir (a real path) may be owned by either
 * user or be writable by group or others without the sticky bit. */
static int
ancestors_safe(const char *field, const char *dir, char *errbuf,
    size_t errlen)
{
	char *p;
	size_t i, n = strlen(dir);
	int r;

	if ((r = safe_step(field, "/", errbuf, errlen)) != 0)
		return r;
	if ((p = strdup(dir)) == NULL)
		return SG_ERR_NOMEM;
	for (i = 1; i <= n && n > 1 && r == 0; i++) {
		char save = p[i];
		if (i < n && save != '/')
			continue;
		p[i] = '\0';
		r = safe_step(field, p, errbuf, errlen);
		p[i] = save;
	}
	free(p);
	return r;
}

/* Every entry directly inside belongs to u. */
static int
entries_owned(const char *field, const char *path, int dfd,
    const struct sg_priv_user *u, char *errbuf, size_t errlen)
{
	struct dirent *de;
	struct stat st;
	DIR *d;
	int fd, r = 0;

	if ((fd = dup(dfd)) < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		snprintf(errbuf, errlen, "%s: %s: %s", field, path,
		    strerror(errno));
		return SG_ERR_IO;
	}
	while (r == 0 && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;       /* gone meanwhile */
		if (st.st_uid != u->uid) {
			char esc[256];
			sg_escape(de->d_name, strlen(de->d_name), esc,
			    sizeof(esc));
			snprintf(errbuf, errlen, "%s: %s/%s belongs to uid %u, "
			    "not %s (uid %u): give it to %s or remove it",
			    field, path, esc, (unsigned)st.st_uid, u->name,
			    (unsigned)u->uid, u->name);
			r = SG_ERR_PERMISSIONS;
		}
	}
	closedir(d);
	return r;
}

int
sg_privdrop_prepare_dir(const char *field, const char *path,
    enum sg_priv_role role, char *errbuf, size_t errlen)
{
	const struct sg_priv_user *u;
	struct stat st;
	char *dir = NULL, *real = NULL;
	const char *base;
	size_t n;
	int pfd = -1, dfd = -1, r = SG_ERR_IO;

	if (plan.start != SG_PRIV_START_ROOT)
		return 0;
	u = role == SG_PRIV_FRONT ? &plan.front : &plan.signer;
	n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--;
	if ((dir = strndup(path, n)) == NULL)
		return SG_ERR_NOMEM;
	base = strrchr(dir, '/') != NULL ? strrchr(dir, '/') + 1 : dir;
	if (*base == '\0' || strcmp(base, ".") == 0 ||
	    strcmp(base, "..") == 0) {
		snprintf(errbuf, errlen, "%s: %s: must name a directory",
		    field, path);
		r = SG_ERR_INVALID;
		goto out;
	}
	{
		char *parent = sg_dirname(dir);
		if (parent == NULL) {
			r = SG_ERR_NOMEM;
			goto out;
		}
		real = realpath(parent, NULL);
		free(parent);
	}
	if (real == NULL) {
		snprintf(errbuf, errlen, "%s: %s: parent directory: %s", field,
		    path, strerror(errno));
		goto out;
	}
	if ((r = ancestors_safe(field, real, errbuf, errlen)) != 0)
		goto out;
	r = SG_ERR_IO;
	if ((pfd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(errbuf, errlen, "%s: %s: %s", field, real,
		    strerror(errno));
		goto out;
	}
	if (mkdirat(pfd, base, 0700) != 0 && errno != EEXIST) {
		snprintf(errbuf, errlen, "%s: cannot create %s: %s", field,
		    path, strerror(errno));
		goto out;
	}
	if ((dfd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) < 0) {
		snprintf(errbuf, errlen, "%s: %s: %s", field, path,
		    errno == ELOOP || errno == ENOTDIR ? "not a directory "
		    "(a symbolic link is refused)" : strerror(errno));
		goto out;
	}
	if (fstat(dfd, &st) != 0 || fchown(dfd, u->uid, u->gid) != 0 ||
	    fchmod(dfd, 0700) != 0) {
		snprintf(errbuf, errlen, "%s: cannot give %s to %s: %s", field,
		    path, u->name, strerror(errno));
		goto out;
	}
	if ((r = entries_owned(field, path, dfd, u, errbuf, errlen)) != 0)
		goto out;
	r = 0;
out:
	if (dfd >= 0)
		close(dfd);
	if (pfd >= 0)
		close(pfd);
	free(real);
	free(dir);
	return r;
}
