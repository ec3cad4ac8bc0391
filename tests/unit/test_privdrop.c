/*
 * The privilege-drop module.  Without root: the /proc status parser, the
 * rules two users must satisfy, user lookup, the refusal to become uid 0,
 * and the development setting (no drop, no directory touched, peers are
 * the caller).  As root (CI): the drop itself, in a child process (it
 * cannot be undone), checked from inside and out; and the state
 * directories handed over, with the symbolic link, foreign entry and
 * redirectable parent refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sg_err.h"
#include "sg_privdrop.h"
#include "sg_test.h"

static const char status_text[] =
    "Name:\tsigngated\n"
    "Umask:\t0077\n"
    "State:\tS (sleeping)\n"
    "Uid:\t999\t999\t999\t999\n"
    "Gid:\t994\t994\t994\t994\n"
    "FDSize:\t64\n"
    "Groups:\t994 \n"
    "CapInh:\t0000000000000000\n"
    "CapPrm:\t0000000000000000\n"
    "CapEff:\t0000000000000000\n"
    "CapBnd:\t000001ffffffffff\n"
    "CapAmb:\t0000000000000000\n"
    "NoNewPrivs:\t1\n"
    "Seccomp:\t0\n";

static char *
edited(const char *from, const char *to)
{
	static char buf[sizeof(status_text) + 256];
	const char *p = strstr(status_text, from);

	if (p == NULL)
		abort();
	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(p - status_text),
	    status_text, to, p + strlen(from));
	return buf;
}

static int
parse(const char *text, struct sg_priv_status *st)
{
	return sg_privdrop_parse_status(text, strlen(text), st);
}

static void
test_parse_status(void)
{
	struct sg_priv_status st;
	int i;

	CHECK_EQ_INT(parse(status_text, &st), 0);
	for (i = 0; i < 4; i++) {
		CHECK_EQ_INT(st.uid[i], 999);
		CHECK_EQ_INT(st.gid[i], 994);
	}
	CHECK(st.cap_prm == 0 && st.cap_eff == 0 && st.cap_amb == 0);
	CHECK_EQ_INT(st.no_new_privs, 1);

	CHECK_EQ_INT(parse(edited("Uid:\t999\t999\t999\t999",
	    "Uid:\t999\t0\t999\t999"), &st), 0);
	CHECK_EQ_INT(st.uid[1], 0);
	CHECK_EQ_INT(parse(edited("CapEff:\t0000000000000000",
	    "CapEff:\t000001ffffffffff"), &st), 0);
	CHECK(st.cap_eff == 0x1ffffffffffULL);
	CHECK_EQ_INT(parse(edited("NoNewPrivs:\t1", "NoNewPrivs:\t0"), &st),
	    0);
	CHECK_EQ_INT(st.no_new_privs, 0);
	/* Kernels before 4.3 have no CapAmb line. */
	CHECK_EQ_INT(parse(edited("CapAmb:\t0000000000000000\n", ""), &st),
	    0);

	/* Anything else is refused, never read as zero. */
	CHECK_EQ_INT(parse(edited("Uid:\t999\t999\t999\t999\n", ""), &st),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(parse(edited("Gid:\t994\t994\t994\t994",
	    "Gid:\t994\t994\t994"), &st), SG_ERR_INVALID);
	CHECK_EQ_INT(parse(edited("Uid:\t999\t999\t999\t999",
	    "Uid:\t999\t999\t999\t999\t1"), &st), SG_ERR_INVALID);
	CHECK_EQ_INT(parse(edited("Uid:\t999", "Uid:\t-1"), &st),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(parse(edited("Uid:\t999", "Uid:\t99999999999"), &st),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(parse(edited("CapPrm:\t0000000000000000\n", ""), &st),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(parse(edited("CapPrm:\t0000000000000000",
	    "CapPrm:\t00000000000000"), &st), SG_ERR_INVALID);
	CHECK_EQ_INT(parse(edited("CapEff:\t0000000000000000",
	    "CapEff:\t000000000000000g"), &st), SG_ERR_INVALID);
	CHECK_EQ_INT(parse(edited("NoNewPrivs:\t1\n", ""), &st),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(parse(edited("NoNewPrivs:\t1", "NoNewPrivs:\t2"), &st),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(parse("", &st), SG_ERR_INVALID);
}

static void
test_parse_own_status(void)
{
	struct sg_priv_status st;
	char buf[16384];
	ssize_t n;
	int fd;

	if ((fd = open("/proc/self/status", O_RDONLY)) < 0) {
		CHECK(fd >= 0);
		return;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	CHECK(n > 0);
	if (n <= 0)
		return;
	CHECK_EQ_INT(sg_privdrop_parse_status(buf, (size_t)n, &st), 0);
	CHECK_EQ_INT(st.uid[0], getuid());
	CHECK_EQ_INT(st.uid[1], geteuid());
	CHECK_EQ_INT(st.gid[0], getgid());
}

static struct sg_priv_user
user(const char *name, uid_t uid, gid_t gid)
{
	struct sg_priv_user u;

	memset(&u, 0, sizeof(u));
	snprintf(u.name, sizeof(u.name), "%s", name);
	u.uid = uid;
	u.gid = gid;
	u.groups[0] = gid;
	u.ngroups = 1;
	return u;
}

#define PAIR_REFUSED(f, s, want) do {					\
	char e_[256] = "";						\
	CHECK_EQ_INT(sg_privdrop_check_pair(&(f), &(s), e_, sizeof(e_)), \
	    SG_ERR_INVALID);						\
	if (strstr(e_, (want)) == NULL) {				\
		fprintf(stderr, "  %s:%d: error \"%s\" lacks \"%s\"\n",	\
		    __FILE__, __LINE__, e_, (want));			\
		sg_test_failed_checks++;				\
	}								\
} while (0)

static void
test_check_pair(void)
{
	struct sg_priv_user f = user("signgate", 999, 994);
	struct sg_priv_user s = user("signgate-hsm", 995, 993);
	struct sg_priv_user bad;
	char e[256];

	CHECK_EQ_INT(sg_privdrop_check_pair(&f, &s, e, sizeof(e)), 0);

	bad = user("root", 0, 0);
	PAIR_REFUSED(bad, s, "users.front: 'root' is uid 0");
	PAIR_REFUSED(f, bad, "users.signer: 'root' is uid 0");
	bad = user("wheel", 1001, 0);
	PAIR_REFUSED(f, bad, "users.signer: 'wheel' is in group 0");
	bad = f;
	bad.groups[bad.ngroups++] = 0;
	PAIR_REFUSED(bad, s, "users.front: 'signgate' is in group 0");
	/* Two names for one uid are one user. */
	bad = user("signgate-alias", 999, 993);
	PAIR_REFUSED(f, bad, "same uid 999");
	/* The front must not share the signer's group. */
	bad = f;
	bad.groups[bad.ngroups++] = 993;
	PAIR_REFUSED(bad, s, "users.front: 'signgate' is in group 993");
	bad = user("signgate", 999, 993);
	PAIR_REFUSED(bad, s, "primary group of users.signer");
}

static void
test_lookup(void)
{
	struct sg_priv_user u;
	char e[512] = "", longname[64];

	CHECK_EQ_INT(sg_privdrop_lookup("users.front", "root", &u, e,
	    sizeof(e)), 0);
	CHECK_EQ_INT(u.uid, 0);
	CHECK(u.ngroups >= 1);
	CHECK_EQ_INT(sg_privdrop_lookup("users.front", "no-such-sg-user", &u,
	    e, sizeof(e)), SG_ERR_INVALID);
	CHECK(strstr(e, "users.front: no such user 'no-such-sg-user'") !=
	    NULL);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CHECK_EQ_INT(sg_privdrop_lookup("users.signer", longname, &u, e,
	    sizeof(e)), SG_ERR_INVALID);
	CHECK(strstr(e, "users.signer") != NULL);
}

static void
test_never_uid0(void)
{
	struct sg_priv_user r = user("root", 0, 0), g = user("x", 1234, 0);
	char e[256] = "";

	/* Refused before any system call: safe to run as anyone. */
	CHECK_EQ_INT(sg_privdrop_become(&r, 0, e, sizeof(e)),
	    SG_ERR_FORBIDDEN);
	CHECK(strstr(e, "uid 0") != NULL);
	CHECK_EQ_INT(sg_privdrop_become(&g, 0, e, sizeof(e)),
	    SG_ERR_FORBIDDEN);
}

/* Not root, not one of the users: both parts stay the caller. */
static void
test_development_setting(void)
{
	char e[512] = "", dir[] = "/tmp/test_privdrop.XXXXXX", path[600];
	struct stat st;
	pid_t pid;
	int status;

	if (geteuid() == 0)
		return;         /* the root tests below cover that start */
	CHECK_EQ_INT(sg_privdrop_init("no-such-sg-front", "no-such-sg-signer",
	    e, sizeof(e)), 0);
	CHECK_EQ_INT(sg_privdrop_start(), SG_PRIV_START_DEV);
	CHECK(sg_privdrop_user(SG_PRIV_FRONT) == NULL);
	CHECK_EQ_INT(sg_privdrop_peer_uid(SG_PRIV_FRONT), getuid());
	CHECK_EQ_INT(sg_privdrop_peer_uid(SG_PRIV_SIGNER), getuid());
	/* No directory is made or touched. */
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/state", dir);
	CHECK_EQ_INT(sg_privdrop_prepare_dir("state_dir", path, SG_PRIV_FRONT,
	    e, sizeof(e)), 0);
	CHECK(stat(path, &st) != 0 && errno == ENOENT);
	rmdir(dir);
	/* Entering a role changes no id, but sets no-new-privileges (in a
	 * child: it cannot be undone). */
	if ((pid = fork()) == 0) {
		int ok = sg_privdrop_enter(SG_PRIV_SIGNER, e, sizeof(e)) == 0 &&
		    prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1;
		_exit(ok ? 0 : 1);
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid &&
	    WIFEXITED(status) && WEXITSTATUS(status) == 0);

	/* Started as one of the two users: the other must exist. */
	{
		struct passwd *pw = getpwuid(getuid());
		if (pw != NULL) {
			char name[64];
			snprintf(name, sizeof(name), "%s", pw->pw_name);
			CHECK_EQ_INT(sg_privdrop_init(name, "no-such-sg-signer",
			    e, sizeof(e)), SG_ERR_INVALID);
			CHECK(strstr(e, "users.signer: no such user") != NULL);
			CHECK_EQ_INT(sg_privdrop_init("no-such-sg-front", name,
			    e, sizeof(e)), SG_ERR_INVALID);
			CHECK(strstr(e, "users.front: no such user") != NULL);
		}
	}
}

/* As root: a child drops to nobody and checks itself; the parent checks
 * it from outside. */
static void
test_become_as_root(void)
{
	struct sg_priv_user u;
	char e[512] = "";
	int p[2], q[2], status;
	pid_t pid;
	char line[16384];
	ssize_t n;

	if (geteuid() != 0) {
		printf("# not root: the drop itself is tested in "
		    "tests/integration/57-users.sh run as root\n");
		return;
	}
	CHECK_EQ_INT(sg_privdrop_lookup("users.front", "nobody", &u, e,
	    sizeof(e)), 0);
	CHECK(pipe(p) == 0 && pipe(q) == 0);
	if ((pid = fork()) == 0) {
		char ok = 1, buf[16384];
		int fd;

		close(p[0]);
		close(q[1]);
		if (sg_privdrop_become(&u, 0, e, sizeof(e)) != 0) {
			fprintf(stderr, "  %s\n", e);
			ok = 0;
		}
		/* Root cannot be regained, nor a capability. */
		if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0 ||
		    prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0 ||
		    prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
			ok = 0;
		if ((fd = open("/proc/self/status", O_RDONLY)) >= 0) {
			n = read(fd, buf, sizeof(buf));
			close(fd);
			(void)n;
		}
		if (write(p[1], &ok, 1) != 1)
			_exit(2);
		/* Wait for the parent's look from outside. */
		n = read(q[0], &ok, 1);
		_exit(0);
	}
	close(p[1]);
	close(q[0]);
	{
		char ok = 0;
		CHECK(read(p[0], &ok, 1) == 1 && ok == 1);
	}
	{
		struct sg_priv_status st;
		char path[64];
		int fd;

		snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
		CHECK((fd = open(path, O_RDONLY)) >= 0);
		n = fd >= 0 ? read(fd, line, sizeof(line) - 1) : -1;
		if (fd >= 0)
			close(fd);
		CHECK(n > 0 && sg_privdrop_parse_status(line, (size_t)n,
		    &st) == 0);
		if (n > 0) {
			CHECK_EQ_INT(st.uid[0], u.uid);
			CHECK_EQ_INT(st.uid[2], u.uid);
			CHECK_EQ_INT(st.uid[3], u.uid);
			CHECK_EQ_INT(st.gid[1], u.gid);
			CHECK(st.cap_prm == 0 && st.cap_eff == 0);
			CHECK_EQ_INT(st.no_new_privs, 1);
		}
	}
	close(p[0]);
	close(q[1]);
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0);
}

static int
owner_mode(const char *path, uid_t *uid, unsigned *mode)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return -1;
	*uid = st.st_uid;
	*mode = st.st_mode & 07777;
	return 0;
}

#define DIR_REFUSED(field, path, role, want) do {			\
	char e_[1024] = "";						\
	CHECK(sg_privdrop_prepare_dir((field), (path), (role), e_,	\
	    sizeof(e_)) != 0);						\
	if (strstr(e_, (want)) == NULL) {				\
		fprintf(stderr, "  %s:%d: error \"%s\" lacks \"%s\"\n",	\
		    __FILE__, __LINE__, e_, (want));			\
		sg_test_failed_checks++;				\
	}								\
} while (0)

/* As root, with nobody and daemon standing in for the two users. */
static void
test_prepare_dir_as_root(void)
{
	char dir[] = "/tmp/test_privdrop.XXXXXX", a[64], b[64], c[96];
	const struct sg_priv_user *f, *s;
	char e[1024] = "";
	unsigned mode;
	uid_t uid;
	int fd;

	if (geteuid() != 0)
		return;
	if (sg_privdrop_init("nobody", "daemon", e, sizeof(e)) != 0) {
		printf("# no users nobody and daemon: %s\n", e);
		return;
	}
	CHECK_EQ_INT(sg_privdrop_start(), SG_PRIV_START_ROOT);
	f = sg_privdrop_user(SG_PRIV_FRONT);
	s = sg_privdrop_user(SG_PRIV_SIGNER);
	CHECK(f != NULL && s != NULL);
	if (f == NULL || s == NULL)
		return;
	CHECK_EQ_INT(sg_privdrop_peer_uid(SG_PRIV_SIGNER), s->uid);
	CHECK(mkdtemp(dir) != NULL && chmod(dir, 0711) == 0);

	/* Made, then taken over. */
	snprintf(a, sizeof(a), "%s/state", dir);
	CHECK_EQ_INT(sg_privdrop_prepare_dir("state_dir", a, SG_PRIV_FRONT, e,
	    sizeof(e)), 0);
	CHECK(owner_mode(a, &uid, &mode) == 0 && uid == f->uid &&
	    mode == 0700);
	snprintf(b, sizeof(b), "%s/state-hsm", dir);
	CHECK(mkdir(b, 0755) == 0);
	CHECK_EQ_INT(sg_privdrop_prepare_dir("signer_state_dir", b,
	    SG_PRIV_SIGNER, e, sizeof(e)), 0);
	CHECK(owner_mode(b, &uid, &mode) == 0 && uid == s->uid &&
	    mode == 0700);
	/* Again: nothing changes. */
	CHECK_EQ_INT(sg_privdrop_prepare_dir("signer_state_dir", b,
	    SG_PRIV_SIGNER, e, sizeof(e)), 0);

	/* An entry of someone else's. */
	snprintf(c, sizeof(c), "%s/planted", b);
	CHECK((fd = open(c, O_CREAT | O_WRONLY, 0600)) >= 0);
	if (fd >= 0)
		close(fd);
	CHECK(chown(c, f->uid, f->gid) == 0);
	DIR_REFUSED("signer_state_dir", b, SG_PRIV_SIGNER, "planted belongs "
	    "to uid");
	unlink(c);

	/* A symbolic link, and what it points at left alone. */
	snprintf(c, sizeof(c), "%s/link", dir);
	CHECK(symlink(a, c) == 0);
	DIR_REFUSED("state_dir", c, SG_PRIV_SIGNER, "a symbolic link is "
	    "refused");
	CHECK(owner_mode(a, &uid, &mode) == 0 && uid == f->uid);
	unlink(c);

	/* Below a directory a user owns, or anyone may write to. */
	snprintf(c, sizeof(c), "%s/state/hsm", dir);
	DIR_REFUSED("signer_state_dir", c, SG_PRIV_SIGNER, "one of "
	    "signgated's users");
	CHECK(access(c, F_OK) != 0);
	CHECK(chmod(dir, 0777) == 0);
	snprintf(c, sizeof(c), "%s/other", dir);
	DIR_REFUSED("state_dir", c, SG_PRIV_FRONT, "writable by group or "
	    "others");
	CHECK(chmod(dir, 01777) == 0);   /* sticky, as /tmp */
	CHECK_EQ_INT(sg_privdrop_prepare_dir("state_dir", c, SG_PRIV_FRONT, e,
	    sizeof(e)), 0);
	DIR_REFUSED("state_dir", "/", SG_PRIV_FRONT, "must name a directory");

	rmdir(c);
	rmdir(a);
	rmdir(b);
	rmdir(dir);
}

SG_TEST_MAIN("privdrop",
    T(test_parse_status),
    T(test_parse_own_status),
    T(test_check_pair),
    T(test_lookup),
    T(test_never_uid0),
    T(test_development_setting),
    T(test_become_as_root),
    T(test_prepare_dir_as_root))
