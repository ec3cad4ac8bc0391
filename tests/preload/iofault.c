/*
 * A test-only LD_PRELOAD library that makes the disk fail on demand.
 *
 * While the file named by $SG_IOFAULT_TRIGGER exists, every write, pwrite,
 * fsync and fdatasync on a file whose path contains $SG_IOFAULT_MATCH
 * fails with EIO.  Tests create and remove the trigger to take the disk
 * away and give it back under a running daemon.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static int
should_fail(int fd)
{
	const char *trigger = getenv("SG_IOFAULT_TRIGGER");
	const char *match = getenv("SG_IOFAULT_MATCH");
	char link[64], path[PATH_MAX];
	ssize_t n;

	if (trigger == NULL || match == NULL || access(trigger, F_OK) != 0)
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if ((n = readlink(link, path, sizeof(path) - 1)) < 0)
		return 0;
	path[n] = '\0';
	return strstr(path, match) != NULL;
}

#define NEXT(name) \
	static __typeof__(name) *next_##name; \
	if (next_##name == NULL) \
		next_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

ssize_t
write(int fd, const void *buf, size_t n)
{
	NEXT(write);
	if (should_fail(fd)) {
		errno = EIO;
		return -1;
	}
	return next_write(fd, buf, n);
}

ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
	NEXT(pwrite);
	if (should_fail(fd)) {
		errno = EIO;
		return -1;
	}
	return next_pwrite(fd, buf, n, off);
}

ssize_t
pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	NEXT(pwrite64);
	if (should_fail(fd)) {
		errno = EIO;
		return -1;
	}
	return next_pwrite64(fd, buf, n, off);
}

int
fsync(int fd)
{
	NEXT(fsync);
	if (should_fail(fd)) {
		errno = EIO;
		return -1;
	}
	return next_fsync(fd);
}

int
fdatasync(int fd)
{
	NEXT(fdatasync);
	if (should_fail(fd)) {
		errno = EIO;
		return -1;
	}
	return next_fdatasync(fd);
}
