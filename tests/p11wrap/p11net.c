/*
 * A PKCS#11 module for tests and benchmarks that wraps another module and
 * makes it behave like a network HSM: every signature costs a fixed extra
 * wall-clock latency, and the device signs at most N of them at once.
 *
 *   SG_P11NET_MODULE      the real module (default: SoftHSM's).
 *   SG_P11NET_LATENCY_MS  the extra latency of each C_Sign (and
 *                         C_SignFinal), 0 to 60000; default 5.
 *   SG_P11NET_IN_FLIGHT   how many signatures the device works on at
 *                         once, 1 to 4096; default 16.  A call beyond that
 *                         waits for a slot, as a network HSM's session
 *                         capacity makes it wait.
 *   SG_P11NET_STATS       a file rewritten after every signature with one
 *                         line "signatures N peak P" (a temporary file in
 *                         the same directory, then rename), so that another
 *                         process can read the figures.  The process that
 *                         loads the module writes it: for the daemon, its
 *                         signer, which runs as the signer's user when the
 *                         daemon is started as root, so the directory must
 *                         be writable by that user (mode 0777, or owned by
 *                         it).  Unset: no file.
 *
 * A signature takes a slot, is made by the real module, then sleeps out the
 * latency (clock_nanosleep, never spinning) before it gives the slot back:
 * throughput is at most N / latency, whatever the real module's speed.
 * C_Sign's size query (a NULL signature buffer) goes straight through: it
 * neither waits, sleeps nor counts.  Only calls that returned a signature
 * count.  Every other function is forwarded as is.  The variables are read
 * once, when the table is built; a malformed one makes C_GetFunctionList
 * fail with a line on stderr naming it.
 *
 * p11net_signatures() and p11net_peak_in_flight() (exported) tell a test in
 * the same process how many signatures were made and how many were in
 * flight at most.
 *
 * Only C_GetFunctionList is exported: PKCS#11 applications (and our own
 * layer) reach every other function through the table.  The table is built
 * once, under pthread_once; the slots and counts are guarded by one mutex.
 * Test code only: it is never built into the product.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "p11funcs.h"

#define DEFAULT_MODULE          "/usr/lib/softhsm/libsofthsm2.so"
#define DEFAULT_LATENCY_MS      5
#define DEFAULT_IN_FLIGHT       16
#define MAX_LATENCY_MS          60000
#define MAX_IN_FLIGHT           4096

/* Every function of the table but C_GetFunctionList, C_Sign and
 * C_SignFinal: name, parameters, arguments. */
#define FUNCS(X) P11_FUNCS(X)

static pthread_once_t once = PTHREAD_ONCE_INIT;
static CK_FUNCTION_LIST *real;
static CK_FUNCTION_LIST table;

static unsigned long latency_ms = DEFAULT_LATENCY_MS;
static unsigned long in_flight_max = DEFAULT_IN_FLIGHT;
static char *stats_path;                /* NULL: no stats file */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slot_free = PTHREAD_COND_INITIALIZER;
static unsigned long in_flight;
static unsigned long peak;
static unsigned long signatures;

/* One writer of the stats file at a time, so that the renames land in
 * the order of the counts they carry. */
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;

/* The variable's value as a number in [min, max], def when unset; -1 when
 * it is malformed (and says so). */
static int
env_ulong(const char *name, unsigned long min, unsigned long max,
    unsigned long def, unsigned long *ret)
{
	const char *s = getenv(name);
	char *end;
	unsigned long v;

	*ret = def;
	if (s == NULL || *s == '\0')
		return 0;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s < '0' || *s > '9' || errno != 0 || *end != '\0' || v < min ||
	    v > max) {
		fprintf(stderr, "p11net: %s: \"%s\" is not a number from %lu "
		    "to %lu\n", name, s, min, max);
		return -1;
	}
	*ret = v;
	return 0;
}

/* Sleeps the latency out from now, whatever signals interrupt it. */
static void
sleep_latency(void)
{
	struct timespec until;
	int r;

	if (latency_ms == 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += (time_t)(latency_ms / 1000);
	until.tv_nsec += (long)(latency_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	do {
		r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until,
		    NULL);
	} while (r == EINTR);
}

static void
slot_take(void)
{
	pthread_mutex_lock(&lock);
	while (in_flight >= in_flight_max)
		pthread_cond_wait(&slot_free, &lock);
	in_flight++;
	if (in_flight > peak)
		peak = in_flight;
	pthread_mutex_unlock(&lock);
}

static void
slot_give(int signed_one)
{
	pthread_mutex_lock(&lock);
	in_flight--;
	if (signed_one)
		signatures++;
	pthread_cond_signal(&slot_free);
	pthread_mutex_unlock(&lock);
}

/* Rewrites the stats file: a temporary file beside it, then rename.  A
 * failure costs the reader a stale line, never the call its result. */
static void
write_stats(void)
{
	char tmp[PATH_MAX], line[96];
	unsigned long n, p;
	int fd, len, ok;

	if (stats_path == NULL)
		return;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", stats_path) >=
	    sizeof(tmp))
		return;
	pthread_mutex_lock(&stats_lock);
	pthread_mutex_lock(&lock);
	n = signatures;
	p = peak;
	pthread_mutex_unlock(&lock);
	len = snprintf(line, sizeof(line), "signatures %lu peak %lu\n", n, p);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644)) < 0)
		goto out;
	ok = write(fd, line, (size_t)len) == len;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, stats_path) != 0)
		(void)unlink(tmp);
 out:
	pthread_mutex_unlock(&stats_lock);
}

/* The end of a signing call that took a slot: the latency, then the slot
 * back; rv is the real module's answer. */
static CK_RV
signing_done(CK_RV rv)
{
	sleep_latency();
	slot_give(rv == CKR_OK);
	if (rv == CKR_OK)
		write_stats();
	return rv;
}

static CK_RV
w_C_Sign(CK_SESSION_HANDLE a, CK_BYTE *b, CK_ULONG c, CK_BYTE *d,
    CK_ULONG *e)
{
	if (real->C_Sign == NULL)
		return CKR_FUNCTION_NOT_SUPPORTED;
	/* The size query: no signature, no device time. */
	if (d == NULL)
		return real->C_Sign(a, b, c, d, e);
	slot_take();
	return signing_done(real->C_Sign(a, b, c, d, e));
}

static CK_RV
w_C_SignFinal(CK_SESSION_HANDLE a, CK_BYTE *b, CK_ULONG *c)
{
	if (real->C_SignFinal == NULL)
		return CKR_FUNCTION_NOT_SUPPORTED;
	if (b == NULL)
		return real->C_SignFinal(a, b, c);
	slot_take();
	return signing_done(real->C_SignFinal(a, b, c));
}

#define X(name, params, args)						\
static CK_RV								\
w_##name params								\
{									\
	if (real->name == NULL)						\
		return CKR_FUNCTION_NOT_SUPPORTED;			\
	return real->name args;						\
}
FUNCS(X)
#undef X

CK_RV C_GetFunctionList(CK_FUNCTION_LIST **ret);
unsigned long p11net_signatures(void);
unsigned long p11net_peak_in_flight(void);

static void
init_once(void)
{
	const char *path = getenv("SG_P11NET_MODULE");
	const char *stats = getenv("SG_P11NET_STATS");
	CK_FUNCTION_LIST *fl = NULL;
	CK_C_GetFunctionList get;
	void *dl;

	if (env_ulong("SG_P11NET_LATENCY_MS", 0, MAX_LATENCY_MS,
	    DEFAULT_LATENCY_MS, &latency_ms) != 0 ||
	    env_ulong("SG_P11NET_IN_FLIGHT", 1, MAX_IN_FLIGHT,
	    DEFAULT_IN_FLIGHT, &in_flight_max) != 0)
		return;
	if (stats != NULL && *stats != '\0' &&
	    (stats_path = strdup(stats)) == NULL)
		return;
	if (path == NULL || *path == '\0')
		path = DEFAULT_MODULE;
	/* Never closed: the real module lives as long as we do. */
	if ((dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		fprintf(stderr, "p11net: %s\n", dlerror());
		return;
	}
	get = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
	if (get == NULL || get(&fl) != CKR_OK || fl == NULL) {
		fprintf(stderr, "p11net: %s: no function list\n", path);
		return;
	}
	table.version = fl->version;
#define X(name, params, args) table.name = w_##name;
	FUNCS(X)
#undef X
	table.C_Sign = w_C_Sign;
	table.C_SignFinal = w_C_SignFinal;
	table.C_GetFunctionList = C_GetFunctionList;
	real = fl;
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
p11net_signatures(void)
{
	unsigned long n;

	pthread_mutex_lock(&lock);
	n = signatures;
	pthread_mutex_unlock(&lock);
	return n;
}

unsigned long
p11net_peak_in_flight(void)
{
	unsigned long n;

	pthread_mutex_lock(&lock);
	n = peak;
	pthread_mutex_unlock(&lock);
	return n;
}
