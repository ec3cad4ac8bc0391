/*
 * A test-only LD_PRELOAD library that makes the disk fail on demand.
 *
 * Only files whose path contains $SG_IOFAULT_MATCH are touched, and only
 * write, pwrite, pwrite64, fsync and fdatasync on them; a failing call
 * does nothing and returns -1 with errno EIO.  Two modes, which may be
 * combined:
 *
 * Trigger: while the file named by $SG_IOFAULT_TRIGGER exists, every such
 * call fails.  Tests create and remove the trigger to take the disk away
 * and give it back under a running daemon.
 *
 * Counting: every such call is numbered 1, 2, ... across the whole
 * process (all threads share one counter, under a lock, so the numbers
 * follow the order the calls were made in).  With $SG_IOFAULT_FAIL_NTH=N
 * the calls numbered N to N+K-1 fail, K being $SG_IOFAULT_FAIL_COUNT
 * (default 1).  Counting starts once the file named by $SG_IOFAULT_ARM
 * exists and then never stops (at once when that variable is unset), so
 * that a daemon's start-up need not be counted.  A test first runs its
 * flow with counting only, to learn how many calls it makes, then runs it
 * once per N.  To report, $SG_IOFAULT_COUNT_FILE (if set) holds the number
 * of calls counted so far, rewritten after each one, and $SG_IOFAULT_LOG
 * (if set) gets one line per injected failure, "<n> <call> <path>", so a
 * test can say which write it took away; with $SG_IOFAULT_LOG_ALL set, one
 * line per counted call, failed or not, so that a counting run can tell
 * which number a given write will have.
 *
 * The library's own files are written through the real functions, never
 * counted.  A forked child inherits the counter as it was at the fork and
 * counts on its own from there.  They are opened when the library loads,
 * as the user that started the program: a daemon started as root drops to
 * a user that could not create them in the test's directory.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_write)(int, const void *, size_t);

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const char *match, *trigger, *arm;
static unsigned long long fail_nth, fail_count = 1, counted;
static int counting, armed, log_all, count_fd = -1, log_fd = -1;

static unsigned long long
env_number(const char *name, unsigned long long dflt)
{
	const char *s = getenv(name);
	char *end;
	unsigned long long v;

	if (s == NULL || *s == '\0')
		return dflt;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return dflt;
	return v;
}

static void
init(void)
{
	const char *s;

	real_pwrite = (ssize_t (*)(int, const void *, size_t, off_t))
	    dlsym(RTLD_NEXT, "pwrite");
	real_write = (ssize_t (*)(int, const void *, size_t))
	    dlsym(RTLD_NEXT, "write");
	match = getenv("SG_IOFAULT_MATCH");
	trigger = getenv("SG_IOFAULT_TRIGGER");
	arm = getenv("SG_IOFAULT_ARM");
	fail_nth = env_number("SG_IOFAULT_FAIL_NTH", 0);
	fail_count = env_number("SG_IOFAULT_FAIL_COUNT", 1);
	if ((s = getenv("SG_IOFAULT_COUNT_FILE")) != NULL && *s != '\0')
		count_fd = open(s, O_WRONLY | O_CREAT | O_CLOEXEC,
		    0600);
	if ((s = getenv("SG_IOFAULT_LOG")) != NULL && *s != '\0')
		log_fd = open(s, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
		    0600);
	log_all = (s = getenv("SG_IOFAULT_LOG_ALL")) != NULL && *s != '\0';
	counting = fail_nth > 0 || count_fd >= 0;
	armed = arm == NULL || *arm == '\0';
}

/* At load time, before the program can change its user. */
__attribute__((constructor)) static void
early_init(void)
{
	pthread_once(&once, init);
}

static int
matches(int fd, char *path, size_t cap)
{
	char link[64];
	ssize_t n;

	if (match == NULL || *match == '\0')
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if ((n = readlink(link, path, cap - 1)) < 0)
		return 0;
	path[n] = '\0';
	return strstr(path, match) != NULL;
}

/* Numbers the call (when counting) and says whether it must fail. */
static int
should_fail(int fd, const char *call)
{
	char path[PATH_MAX], line[PATH_MAX + 64], num[32];
	unsigned long long n;
	int fail = 0, len;

	pthread_once(&once, init);
	if (!matches(fd, path, sizeof(path)))
		return 0;
	if (trigger != NULL && access(trigger, F_OK) == 0)
		fail = 1;
	if (!counting)
		return fail;
	pthread_mutex_lock(&lock);
	if (!armed && access(arm, F_OK) == 0)
		armed = 1;
	if (armed) {
		n = ++counted;
		if (fail_nth > 0 && n >= fail_nth && n - fail_nth < fail_count)
			fail = 1;
		if (count_fd >= 0) {
			/* Fixed width: a shorter number never leaves digits
			 * of a longer one behind. */
			len = snprintf(num, sizeof(num), "%20llu\n", n);
			(void)real_pwrite(count_fd, num, (size_t)len, 0);
		}
		if ((fail || log_all) && log_fd >= 0) {
			len = snprintf(line, sizeof(line), "%llu %s %s\n", n,
			    call, path);
			if (len > 0 && (size_t)len < sizeof(line))
				(void)real_write(log_fd, line, (size_t)len);
		}
	}
	pthread_mutex_unlock(&lock);
	return fail;
}

#define NEXT(name) \
	static __typeof__(name) *next_##name; \
	if (next_##name == NULL) \
		next_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

ssize_t
write(int fd, const void *buf, size_t n)
{
	NEXT(write);
	if (should_fail(fd, "write")) {
		errno = EIO;
		return -1;
	}
	return next_write(fd, buf, n);
}

ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
	NEXT(pwrite);
	if (should_fail(fd, "pwrite")) {
		errno = EIO;
		return -1;
	}
	return next_pwrite(fd, buf, n, off);
}

ssize_t
pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	NEXT(pwrite64);
	if (should_fail(fd, "pwrite64")) {
		errno = EIO;
		return -1;
	}
	return next_pwrite64(fd, buf, n, off);
}

int
fsync(int fd)
{
	NEXT(fsync);
	if (should_fail(fd, "fsync")) {
		errno = EIO;
		return -1;
	}
	return next_fsync(fd);
}

int
fdatasync(int fd)
{
	NEXT(fdatasync);
	if (should_fail(fd, "fdatasync")) {
		errno = EIO;
		return -1;
	}
	return next_fdatasync(fd);
}
