/*
 * A PKCS#11 module for tests that wraps another module and makes it fail
 * on demand, the way a real HSM fails: a call returns an error code, or
 * takes a long time, or both.
 *
 *   SG_P11FAULT_MODULE   the real module (default: SoftHSM's).
 *   SG_P11FAULT_CONTROL  a control file, one rule per line:
 *       <function> <CKR name | 0xHEX | decimal> [mechanism M]
 *           [after K] [count N | always]
 *       <function> hang <ms> [after K] [count N | always]
 *     e.g. "C_Sign CKR_DEVICE_ERROR count 1", "C_OpenSession
 *     CKR_TOKEN_NOT_PRESENT always", "C_Sign hang 10000".  A rule without
 *     count is "always".  '#' starts a comment.  The first live rule of each
 *     kind for a function applies: a hang sleeps before the call, then an
 *     error rule answers instead of the real module.  "mechanism M" (a
 *     CKM_ name below, or a number) limits an error rule of C_SignInit to
 *     that mechanism, e.g. "C_SignInit CKR_FUNCTION_FAILED mechanism
 *     CKM_EDDSA" fails only Ed25519 keys (the transparency log's).
 *     "after K" lets the rule's first K calls through untouched, e.g.
 *     "C_Sign CKR_DEVICE_ERROR after 5 always": the sixth signature on
 *     fails, in the middle of a batch.
 *   SG_P11FAULT_LOG      a file that gets one line per injected fault.
 *
 * Every call compares the control file's inode, size and mtime with what it
 * saw last (one stat); on a change the rules are read again and every count
 * starts afresh, so writing the same rule again re-arms it.  Tests should
 * write a new file and rename it over the old one, so that a reader never
 * sees half a file and two quick writes can never look alike.  Counts live
 * in this process only.  A hang is slept in short steps and ends early once
 * the file no longer has a hang rule for that function: the device "comes
 * back" when the test removes the rule, so that nothing stays asleep.
 *
 * p11fault_fired() (exported) tells a test how many faults were injected
 * into a function, so that a test can tell "recovered" from "never failed";
 * p11fault_hanging() how many calls are asleep in a hang right now, so that
 * a test can wait for them before it arms the next rules.
 *
 * Only C_GetFunctionList is exported: PKCS#11 applications (and our own
 * layer) reach every other function through the table.  The table is
 * built once, under pthread_once; rules are guarded by one mutex.  Test
 * code only: it is never built into the product.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "p11funcs.h"

#define DEFAULT_MODULE  "/usr/lib/softhsm/libsofthsm2.so"
#define MAX_RULES       64
#define MAX_FILE        (64 * 1024)
#define MAX_HANG_MS     (10 * 60 * 1000)
#define HANG_STEP_MS    10

/* Every function of the table but C_GetFunctionList: name, parameters,
 * arguments. */
#define FUNCS(X) P11_FUNCS(X) P11_SIGN_FUNCS(X)

enum fn_id {
#define X(name, params, args) FN_##name,
	FUNCS(X)
#undef X
	FN_COUNT
};

static const char *const fn_names[FN_COUNT] = {
#define X(name, params, args) #name,
	FUNCS(X)
#undef X
};

#define RV(name) { #name, name }
static const struct {
	const char *name;
	CK_RV rv;
} rv_names[] = {
	RV(CKR_CANCEL),
	RV(CKR_HOST_MEMORY),
	RV(CKR_SLOT_ID_INVALID),
	RV(CKR_GENERAL_ERROR),
	RV(CKR_FUNCTION_FAILED),
	RV(CKR_ARGUMENTS_BAD),
	RV(CKR_NO_EVENT),
	RV(CKR_NEED_TO_CREATE_THREADS),
	RV(CKR_CANT_LOCK),
	RV(CKR_ATTRIBUTE_READ_ONLY),
	RV(CKR_ATTRIBUTE_SENSITIVE),
	RV(CKR_ATTRIBUTE_TYPE_INVALID),
	RV(CKR_ATTRIBUTE_VALUE_INVALID),
	RV(CKR_ACTION_PROHIBITED),
	RV(CKR_DATA_INVALID),
	RV(CKR_DATA_LEN_RANGE),
	RV(CKR_DEVICE_ERROR),
	RV(CKR_DEVICE_MEMORY),
	RV(CKR_DEVICE_REMOVED),
	RV(CKR_ENCRYPTED_DATA_INVALID),
	RV(CKR_ENCRYPTED_DATA_LEN_RANGE),
	RV(CKR_FUNCTION_CANCELED),
	RV(CKR_FUNCTION_NOT_PARALLEL),
	RV(CKR_FUNCTION_NOT_SUPPORTED),
	RV(CKR_KEY_HANDLE_INVALID),
	RV(CKR_KEY_SIZE_RANGE),
	RV(CKR_KEY_TYPE_INCONSISTENT),
	RV(CKR_KEY_NOT_NEEDED),
	RV(CKR_KEY_CHANGED),
	RV(CKR_KEY_NEEDED),
	RV(CKR_KEY_INDIGESTIBLE),
	RV(CKR_KEY_FUNCTION_NOT_PERMITTED),
	RV(CKR_KEY_NOT_WRAPPABLE),
	RV(CKR_KEY_UNEXTRACTABLE),
	RV(CKR_MECHANISM_INVALID),
	RV(CKR_MECHANISM_PARAM_INVALID),
	RV(CKR_OBJECT_HANDLE_INVALID),
	RV(CKR_OPERATION_ACTIVE),
	RV(CKR_OPERATION_NOT_INITIALIZED),
	RV(CKR_PIN_INCORRECT),
	RV(CKR_PIN_INVALID),
	RV(CKR_PIN_LEN_RANGE),
	RV(CKR_PIN_EXPIRED),
	RV(CKR_PIN_LOCKED),
	RV(CKR_SESSION_CLOSED),
	RV(CKR_SESSION_COUNT),
	RV(CKR_SESSION_HANDLE_INVALID),
	RV(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
	RV(CKR_SESSION_READ_ONLY),
	RV(CKR_SESSION_EXISTS),
	RV(CKR_SESSION_READ_ONLY_EXISTS),
	RV(CKR_SESSION_READ_WRITE_SO_EXISTS),
	RV(CKR_SIGNATURE_INVALID),
	RV(CKR_SIGNATURE_LEN_RANGE),
	RV(CKR_TEMPLATE_INCOMPLETE),
	RV(CKR_TEMPLATE_INCONSISTENT),
	RV(CKR_TOKEN_NOT_PRESENT),
	RV(CKR_TOKEN_NOT_RECOGNIZED),
	RV(CKR_TOKEN_WRITE_PROTECTED),
	RV(CKR_UNWRAPPING_KEY_SIZE_RANGE),
	RV(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT),
	RV(CKR_USER_ALREADY_LOGGED_IN),
	RV(CKR_USER_NOT_LOGGED_IN),
	RV(CKR_USER_PIN_NOT_INITIALIZED),
	RV(CKR_USER_TYPE_INVALID),
	RV(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
	RV(CKR_USER_TOO_MANY_TYPES),
	RV(CKR_WRAPPED_KEY_INVALID),
	RV(CKR_WRAPPED_KEY_LEN_RANGE),
	RV(CKR_WRAPPING_KEY_HANDLE_INVALID),
	RV(CKR_WRAPPING_KEY_SIZE_RANGE),
	RV(CKR_WRAPPING_KEY_TYPE_INCONSISTENT),
	RV(CKR_RANDOM_SEED_NOT_SUPPORTED),
	RV(CKR_RANDOM_NO_RNG),
	RV(CKR_DOMAIN_PARAMS_INVALID),
	RV(CKR_CURVE_NOT_SUPPORTED),
	RV(CKR_BUFFER_TOO_SMALL),
	RV(CKR_SAVED_STATE_INVALID),
	RV(CKR_INFORMATION_SENSITIVE),
	RV(CKR_STATE_UNSAVEABLE),
	RV(CKR_CRYPTOKI_NOT_INITIALIZED),
	RV(CKR_CRYPTOKI_ALREADY_INITIALIZED),
	RV(CKR_MUTEX_BAD),
	RV(CKR_MUTEX_NOT_LOCKED),
	RV(CKR_NEW_PIN_MODE),
	RV(CKR_NEXT_OTP),
	RV(CKR_EXCEEDED_MAX_ITERATIONS),
	RV(CKR_FIPS_SELF_TEST_FAILED),
	RV(CKR_LIBRARY_LOAD_FAILED),
	RV(CKR_PIN_TOO_WEAK),
	RV(CKR_PUBLIC_KEY_INVALID),
	RV(CKR_FUNCTION_REJECTED),
};
#undef RV

struct rule {
	enum fn_id fn;
	int hang;               /* else an error */
	CK_RV rv;
	unsigned long hang_ms;
	long left;              /* calls still to fail; -1: always */
	long skip;              /* calls still to let through first */
	int has_mech;           /* only calls with this mechanism */
	CK_MECHANISM_TYPE mech;
};

#define MECH(name) { #name, name }
static const struct {
	const char *name;
	CK_MECHANISM_TYPE mech;
} mech_names[] = {
	MECH(CKM_RSA_PKCS),
	MECH(CKM_RSA_PKCS_PSS),
	MECH(CKM_ECDSA),
	MECH(CKM_EDDSA),
};
#undef MECH

static pthread_once_t once = PTHREAD_ONCE_INIT;
static CK_FUNCTION_LIST *real;
static CK_FUNCTION_LIST table;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct rule rules[MAX_RULES];
static size_t nrules;
static unsigned long rules_gen;         /* bumped by every reload */
static int have_stat;                   /* else "no file" was seen */
static struct stat last_st;
static unsigned long fired[FN_COUNT];
static unsigned long hanging;

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
note(const char *fmt, ...)
{
	const char *path = getenv("SG_P11FAULT_LOG");
	char line[256];
	va_list ap;
	int fd, n;

	if (path == NULL || *path == '\0')
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n <= 0 || (size_t)n >= sizeof(line))
		return;
	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
	    0600)) < 0)
		return;
	/* A lost log line is no reason to fail a call. */
	if (write(fd, line, (size_t)n) != n) {
		close(fd);
		return;
	}
	close(fd);
}

static int
parse_ulong(const char *s, unsigned long max, unsigned long *ret)
{
	char *end;
	unsigned long v;

	if (*s == '\0' || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	*ret = v;
	return 0;
}

static const char *
rv_name(CK_RV rv)
{
	size_t i;

	for (i = 0; i < sizeof(rv_names) / sizeof(rv_names[0]); i++)
		if (rv_names[i].rv == rv)
			return rv_names[i].name;
	return "CKR_(other)";
}

static int
parse_rv(const char *s, CK_RV *ret)
{
	unsigned long v;
	size_t i;

	for (i = 0; i < sizeof(rv_names) / sizeof(rv_names[0]); i++) {
		if (strcmp(rv_names[i].name, s) == 0) {
			*ret = rv_names[i].rv;
			return 0;
		}
	}
	if (strcmp(s, "CKR_OK") == 0 || parse_ulong(s, 0xffffffffUL, &v) != 0 ||
	    v == CKR_OK)
		return -1;
	*ret = v;
	return 0;
}

static int
parse_mech(const char *s, CK_MECHANISM_TYPE *ret)
{
	unsigned long v;
	size_t i;

	for (i = 0; i < sizeof(mech_names) / sizeof(mech_names[0]); i++) {
		if (strcmp(mech_names[i].name, s) == 0) {
			*ret = mech_names[i].mech;
			return 0;
		}
	}
	if (parse_ulong(s, 0xffffffffUL, &v) != 0)
		return -1;
	*ret = v;
	return 0;
}

/* One line; 0 if it held a rule, 1 if it was blank, -1 if malformed. */
static int
parse_line(char *line, struct rule *r)
{
	char *w[7], *save = NULL, *tok;
	unsigned long v;
	size_t n = 0, i;

	if ((tok = strchr(line, '#')) != NULL)
		*tok = '\0';
	for (tok = strtok_r(line, " \t\r", &save); tok != NULL;
	    tok = strtok_r(NULL, " \t\r", &save)) {
		if (n == sizeof(w) / sizeof(w[0]))
			return -1;
		w[n++] = tok;
	}
	if (n == 0)
		return 1;
	memset(r, 0, sizeof(*r));
	for (i = 0; i < FN_COUNT; i++)
		if (strcmp(fn_names[i], w[0]) == 0)
			break;
	if (i == FN_COUNT || n < 2)
		return -1;
	r->fn = (enum fn_id)i;
	r->left = -1;
	i = 1;
	if (strcmp(w[i], "hang") == 0) {
		if (n < 3 || parse_ulong(w[2], MAX_HANG_MS, &r->hang_ms) != 0)
			return -1;
		r->hang = 1;
		i = 3;
	} else {
		if (parse_rv(w[1], &r->rv) != 0)
			return -1;
		i = 2;
		if (n >= i + 2 && strcmp(w[i], "mechanism") == 0) {
			if (r->fn != FN_C_SignInit ||
			    parse_mech(w[i + 1], &r->mech) != 0)
				return -1;
			r->has_mech = 1;
			i += 2;
		}
	}
	if (n >= i + 2 && strcmp(w[i], "after") == 0) {
		if (parse_ulong(w[i + 1], LONG_MAX, &v) != 0)
			return -1;
		r->skip = (long)v;
		i += 2;
	}
	if (i == n)
		return 0;
	if (n == i + 1 && strcmp(w[i], "always") == 0)
		return 0;
	if (n == i + 2 && strcmp(w[i], "count") == 0 &&
	    parse_ulong(w[i + 1], LONG_MAX, &v) == 0) {
		r->left = (long)v;
		return 0;
	}
	return -1;
}

/* Reads the rules again; lock held.  A malformed file is reported and
 * ignored as a whole, so that a half-applied rule set never runs. */
static void
load_rules(const char *path)
{
	struct rule fresh[MAX_RULES];
	char *buf = NULL, *line, *save = NULL;
	size_t n = 0, len = 0;
	ssize_t got;
	int fd, lineno = 0, r;

	nrules = 0;
	rules_gen++;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	if ((buf = malloc(MAX_FILE + 2)) == NULL)
		goto out;
	/* One byte more than allowed tells an oversize file. */
	while (len <= MAX_FILE && (got = read(fd, buf + len,
	    MAX_FILE + 1 - len)) > 0)
		len += (size_t)got;
	if (len > MAX_FILE) {
		fprintf(stderr, "p11fault: %s: larger than %d bytes\n", path,
		    MAX_FILE);
		goto out;
	}
	buf[len] = '\0';
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		if (n == MAX_RULES) {
			fprintf(stderr, "p11fault: %s: more than %d rules\n",
			    path, MAX_RULES);
			goto out;
		}
		r = parse_line(line, &fresh[n]);
		if (r < 0) {
			fprintf(stderr, "p11fault: %s:%d: cannot parse the "
			    "rule\n", path, lineno);
			goto out;
		}
		if (r == 0)
			n++;
	}
	memcpy(rules, fresh, n * sizeof(fresh[0]));
	nrules = n;
out:
	free(buf);
	close(fd);
}

/* Reloads when the file changed; lock held.  Returns the control path. */
static const char *
refresh(void)
{
	const char *path = getenv("SG_P11FAULT_CONTROL");
	struct stat st;

	if (path == NULL || *path == '\0') {
		if (nrules > 0 || have_stat) {
			nrules = 0;
			have_stat = 0;
			rules_gen++;
		}
		return NULL;
	}
	if (stat(path, &st) != 0) {
		if (have_stat) {
			have_stat = 0;
			nrules = 0;
			rules_gen++;
		}
		return path;
	}
	if (have_stat && st.st_ino == last_st.st_ino &&
	    st.st_dev == last_st.st_dev && st.st_size == last_st.st_size &&
	    st.st_mtim.tv_sec == last_st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == last_st.st_mtim.tv_nsec)
		return path;
	last_st = st;
	have_stat = 1;
	load_rules(path);
	return path;
}

/* Takes one use of the first live rule of this kind, if any (mech: the
 * call's mechanism, or NULL if it has none). */
static struct rule *
take(enum fn_id fn, int hang, const CK_MECHANISM_TYPE *mech)
{
	size_t i;

	for (i = 0; i < nrules; i++) {
		struct rule *r = &rules[i];

		if (r->fn != fn || r->hang != hang || r->left == 0)
			continue;
		/* Rules with a mechanism apply at the mechanism's check
		 * only, the others at the plain one: never both. */
		if (r->has_mech != (mech != NULL) ||
		    (mech != NULL && *mech != r->mech))
			continue;
		if (r->skip > 0) {
			r->skip--;
			continue;
		}
		if (r->left > 0)
			r->left--;
		return r;
	}
	return NULL;
}

static int
has_hang(enum fn_id fn)
{
	size_t i;

	for (i = 0; i < nrules; i++)
		if (rules[i].fn == fn && rules[i].hang)
			return 1;
	return 0;
}

static void
hang(enum fn_id fn, unsigned long ms)
{
	struct timespec step = { 0, HANG_STEP_MS * 1000000L };
	unsigned long slept, gen;
	int still;

	pthread_mutex_lock(&lock);
	gen = rules_gen;
	pthread_mutex_unlock(&lock);
	for (slept = 0; slept < ms; slept += HANG_STEP_MS) {
		nanosleep(&step, NULL);
		pthread_mutex_lock(&lock);
		(void)refresh();
		still = rules_gen == gen || has_hang(fn);
		pthread_mutex_unlock(&lock);
		if (!still)
			break;
	}
}

/* Decides the fate of one call: CKR_OK means "forward it". */
static CK_RV
fault_mech(enum fn_id fn, const CK_MECHANISM_TYPE *mech)
{
	struct rule *r;
	unsigned long ms = 0;
	CK_RV rv = CKR_OK;

	pthread_mutex_lock(&lock);
	(void)refresh();
	if ((r = take(fn, 1, mech)) != NULL) {
		ms = r->hang_ms;
		fired[fn]++;
		/* Counted until the call has taken its error rule too. */
		hanging++;
	}
	pthread_mutex_unlock(&lock);
	if (ms > 0) {
		note("%s hang %lu\n", fn_names[fn], ms);
		hang(fn, ms);
	}
	pthread_mutex_lock(&lock);
	(void)refresh();
	if ((r = take(fn, 0, mech)) != NULL) {
		rv = r->rv;
		fired[fn]++;
	}
	if (ms > 0)
		hanging--;
	pthread_mutex_unlock(&lock);
	if (rv != CKR_OK)
		note("%s %s\n", fn_names[fn], rv_name(rv));
	return rv;
}

static CK_RV
fault(enum fn_id fn)
{
	return fault_mech(fn, NULL);
}

#define X(name, params, args)						\
static CK_RV								\
w_##name params								\
{									\
	CK_RV rv;							\
									\
	if ((rv = fault(FN_##name)) != CKR_OK)				\
		return rv;						\
	if (real->name == NULL)						\
		return CKR_FUNCTION_NOT_SUPPORTED;			\
	return real->name args;						\
}
FUNCS(X)
#undef X

/* C_SignInit knows its mechanism, for rules that name one. */
static CK_RV
w_sign_init_mech(CK_SESSION_HANDLE a, CK_MECHANISM *b, CK_OBJECT_HANDLE c)
{
	CK_RV rv;

	if (b != NULL && (rv = fault_mech(FN_C_SignInit,
	    &b->mechanism)) != CKR_OK)
		return rv;
	return w_C_SignInit(a, b, c);
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST **ret);
unsigned long p11fault_fired(const char *function);
unsigned long p11fault_hanging(void);

static void
init_once(void)
{
	const char *path = getenv("SG_P11FAULT_MODULE");
	CK_C_GetFunctionList get;
	void *dl;

	if (path == NULL || *path == '\0')
		path = DEFAULT_MODULE;
	/* Never closed: the real module lives as long as we do. */
	if ((dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		fprintf(stderr, "p11fault: %s\n", dlerror());
		return;
	}
	get = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
	if (get == NULL || get(&real) != CKR_OK || real == NULL) {
		fprintf(stderr, "p11fault: %s: no function list\n", path);
		real = NULL;
		return;
	}
	table.version = real->version;
#define X(name, params, args) table.name = w_##name;
	FUNCS(X)
#undef X
	table.C_SignInit = w_sign_init_mech;
	table.C_GetFunctionList = C_GetFunctionList;
}

CK_RV
C_GetFunctionList(CK_FUNCTION_LIST **ret)
{
	if (ret == NULL)
		return CKR_ARGUMENTS_BAD;
	pthread_once(&once, init_once);
	if (real == NULL)
		return CKR_GENERAL_ERROR;
	*ret = &table;
	return CKR_OK;
}

unsigned long
p11fault_fired(const char *function)
{
	unsigned long n = 0;
	size_t i;

	pthread_mutex_lock(&lock);
	for (i = 0; i < FN_COUNT; i++)
		if (function == NULL || strcmp(fn_names[i], function) == 0)
			n += fired[i];
	pthread_mutex_unlock(&lock);
	return n;
}

unsigned long
p11fault_hanging(void)
{
	unsigned long n;

	pthread_mutex_lock(&lock);
	n = hanging;
	pthread_mutex_unlock(&lock);
	return n;
}
