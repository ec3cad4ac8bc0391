/*
 * Encodings, checked parsing, careful file I/O, the monotonic clock, error
 * messages and logging.  Everything here
 * is used by both the daemon and the CLI and touches no global state except
 * the log verbosity flag.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "sg_err.h"
#include "sg_util.h"

void
sg_hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * len] = '\0';
}

int
sg_hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
sg_hex_decode(const char *in, size_t inlen, uint8_t *out, size_t cap,
    size_t *ret_len)
{
	size_t i;

	if (inlen % 2 != 0)
		return SG_ERR_INVALID;
	for (i = 0; i < inlen; i++)
		if (sg_hex_digit((unsigned char)in[i]) < 0)
			return SG_ERR_INVALID;
	if (inlen / 2 > cap)
		return SG_ERR_BUFFER;
	for (i = 0; i < inlen / 2; i++)
		out[i] = (uint8_t)(sg_hex_digit((unsigned char)in[2 * i]) << 4 |
		    sg_hex_digit((unsigned char)in[2 * i + 1]));
	*ret_len = inlen / 2;
	return 0;
}

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *
sg_b64_encode(const uint8_t *in, size_t len)
{
	size_t olen, i, o = 0;
	char *out;

	if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
		return NULL;
	olen = (len + 2) / 3 * 4;
	if ((out = malloc(olen + 1)) == NULL)
		return NULL;
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
		    in[i + 2];
		out[o++] = b64chars[v >> 18];
		out[o++] = b64chars[(v >> 12) & 63];
		out[o++] = b64chars[(v >> 6) & 63];
		out[o++] = b64chars[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = b64chars[v >> 18];
		out[o++] = b64chars[(v >> 12) & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = b64chars[v >> 18];
		out[o++] = b64chars[(v >> 12) & 63];
		out[o++] = b64chars[(v >> 6) & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
	return out;
}

static int
b64val(int c)
{
	const char *p;

	if (c == '\0' || (p = strchr(b64chars, c)) == NULL)
		return -1;
	return (int)(p - b64chars);
}

int
sg_b64_decode(const char *in, size_t inlen, uint8_t **ret, size_t *ret_len)
{
	size_t i, o = 0, pad = 0;
	uint8_t *out;
	int v[4];

	if (inlen % 4 != 0)
		return SG_ERR_INVALID;
	if (inlen > 0 && in[inlen - 1] == '=')
		pad++;
	if (inlen > 1 && in[inlen - 2] == '=')
		pad++;
	if ((out = malloc(inlen / 4 * 3 + 1)) == NULL)
		return SG_ERR_NOMEM;
	for (i = 0; i < inlen; i += 4) {
		int k, last = (i + 4 == inlen);
		for (k = 0; k < 4; k++) {
			if (last && k >= 4 - (int)pad) {
				v[k] = 0;
				continue;
			}
			if ((v[k] = b64val((unsigned char)in[i + k])) < 0)
				goto bad;
		}
		out[o++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
		if (!last || pad < 2)
			out[o++] = (uint8_t)((v[1] & 15) << 4 | v[2] >> 2);
		if (!last || pad < 1)
			out[o++] = (uint8_t)((v[2] & 3) << 6 | v[3]);
		/* Non-canonical encodings (stray low bits) are refused. */
		if (last && pad == 2 && (v[1] & 15) != 0)
			goto bad;
		if (last && pad == 1 && (v[2] & 3) != 0)
			goto bad;
	}
	*ret = out;
	*ret_len = o;
	return 0;
bad:
	free(out);
	return SG_ERR_INVALID;
}

int
sg_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;
	const char *p;

	if (s == NULL || *s == '\0' || strlen(s) > 20)
		return SG_ERR_INVALID;
	for (p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return SG_ERR_INVALID;
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return SG_ERR_INVALID;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v < min || v > max)
		return SG_ERR_INVALID;
	*ret = v;
	return 0;
}

void
sg_time_rfc3339(time_t t, char *out, size_t outlen)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
		if (outlen > 0)
			out[0] = '\0';
	}
}

/*
 * Reads a whole regular file of at most max bytes.  The buffer is sized
 * from fstat and grown (by copying and wiping, never realloc, since it may
 * hold a secret) only if the file grows while we read; one byte past max
 * is read to tell "exactly max" from "too large".
 */
static int
read_fd(int fd, size_t max, char **ret, size_t *ret_len)
{
	struct stat st;
	char *buf = NULL, *nb;
	size_t len = 0, cap, ncap;
	ssize_t n;

	if (fstat(fd, &st) != 0)
		return SG_ERR_IO;
	if (!S_ISREG(st.st_mode))
		return SG_ERR_INVALID;
	if ((uint64_t)st.st_size > max)
		return SG_ERR_TOO_LARGE;
	cap = (size_t)st.st_size + 2;  /* the probe byte and the NUL */
	if ((buf = malloc(cap)) == NULL)
		return SG_ERR_NOMEM;
	for (;;) {
		if (len + 1 == cap) {
			/* The file grew while we read it. */
			if (len > max)
				break;
			ncap = cap * 2 > max + 2 ? max + 2 : cap * 2;
			if ((nb = malloc(ncap)) == NULL) {
				sg_freezero(buf, cap);
				return SG_ERR_NOMEM;
			}
			memcpy(nb, buf, len);
			sg_freezero(buf, cap);
			buf = nb;
			cap = ncap;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			sg_freezero(buf, cap);
			return SG_ERR_IO;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max) {
		sg_freezero(buf, cap);
		return SG_ERR_TOO_LARGE;
	}
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	return 0;
}

int
sg_read_file(const char *path, size_t max, char **ret, size_t *ret_len)
{
	int fd, r;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return errno == ENOENT ? SG_ERR_NOT_FOUND : SG_ERR_IO;
	r = read_fd(fd, max, ret, ret_len);
	close(fd);
	return r;
}

int
sg_read_secret_file(const char *path, char **ret, size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0;
	int r;

	if ((r = sg_read_secret_file_max(path, SG_MAX_SECRET_SIZE, &buf,
	    &len)) != 0)
		return r;
	/* A PIN file usually ends with a newline; it is not part of it. */
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	*ret = buf;
	*ret_len = len;
	return 0;
}

int
sg_write_file(const char *path, const void *buf, size_t len, int mode)
{
	char *tmp;
	size_t off = 0;
	int fd, r = SG_ERR_IO;

	if (asprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()) < 0)
		return SG_ERR_NOMEM;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    mode);
	if (fd < 0)
		goto out;
	while (off < len) {
		ssize_t n = write(fd, (const char *)buf + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail;
		off += (size_t)n;
	}
	if (fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto fail;
	/* The rename itself must reach the disk too. */
	{
		char *dir = sg_dirname(path);
		int dfd = dir != NULL ? open(dir, O_RDONLY | O_DIRECTORY |
		    O_CLOEXEC) : -1;
		free(dir);
		if (dfd >= 0) {
			(void)fsync(dfd);
			close(dfd);
		}
	}
	r = 0;
	goto out;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
out:
	free(tmp);
	return r;
}

void
sg_freezero(void *p, size_t len)
{
	if (p == NULL)
		return;
	explicit_bzero(p, len);
	free(p);
}

int
sg_memeq_ct(const void *a, const void *b, size_t len)
{
	/* OpenSSL's, written so that no compiler turns it into an early
	 * exit. */
	return CRYPTO_memcmp(a, b, len) != 0;
}

char *
sg_path_join(const char *dir, const char *path)
{
	char *out;

	if (path[0] == '/' || dir == NULL || dir[0] == '\0')
		return strdup(path);
	if (asprintf(&out, "%s/%s", dir, path) < 0)
		return NULL;
	return out;
}

char *
sg_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

void
sg_escape(const char *s, size_t len, char *out, size_t cap)
{
	size_t i, o = 0;

	if (cap == 0)
		return;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			if (o + 1 >= cap)
				break;
			out[o++] = (char)c;
		} else {
			if (o + 4 >= cap)
				break;
			snprintf(out + o, cap - o, "\\x%02x", c);
			o += 4;
		}
	}
	out[o] = '\0';
}

int64_t
sg_mono_ns(void)
{
	struct timespec ts;

	/* Cannot fail with a valid clock and pointer. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
sg_mono_us(void)
{
	return sg_mono_ns() / 1000;
}

int64_t
sg_mono_ms(void)
{
	return sg_mono_ns() / 1000000;
}

void
sg_mono_deadline(struct timespec *ret, int64_t ms)
{
	int64_t at;

	/* Past now is now; a wait longer than about 34 years is one that
	 * long, so that the sum cannot overflow. */
	if (ms < 0)
		ms = 0;
	if (ms > (INT64_C(1) << 40))
		ms = INT64_C(1) << 40;
	at = sg_mono_ns() + ms * 1000000;
	ret->tv_sec = (time_t)(at / 1000000000);
	ret->tv_nsec = (long)(at % 1000000000);
}

int
sg_err_set(char *buf, size_t len, int code, const char *fmt, ...)
{
	va_list ap;

	if (buf == NULL || len == 0)
		return code;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return code;
}

static int log_verbose;

void
sg_log_set_verbose(int on)
{
	log_verbose = on;
}

static void
vlog(const char *level, const char *fmt, va_list ap)
{
	char line[2048], esc[4 * sizeof(line) + 1];
	int n;

	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0)
		return;
	/* Whatever a message quotes (a name, a path, a library's error text)
	 * cannot forge a log line: control and non-ASCII bytes are escaped. */
	sg_escape(line, strlen(line), esc, sizeof(esc));
	/* One write per line so that concurrent threads do not interleave. */
	fprintf(stderr, "signgate %s: %s\n", level, esc);
}

#define SG_LOG_FN(name, level, cond)				\
	void name(const char *fmt, ...)				\
	{							\
		va_list ap;					\
		if (!(cond))					\
			return;					\
		va_start(ap, fmt);				\
		vlog(level, fmt, ap);				\
		va_end(ap);					\
	}
SG_LOG_FN(sg_log_info, "info", 1)
SG_LOG_FN(sg_log_warn, "warning", 1)
SG_LOG_FN(sg_log_error, "error", 1)
SG_LOG_FN(sg_log_debug, "debug", log_verbose)

int
sg_read_secret_file_max(const char *path, size_t max, char **ret,
    size_t *ret_len)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int fd, r;

	/* As sg_read_secret_file(), for secrets larger than a PIN (PEM
	 * private keys). */
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return errno == ENOENT ? SG_ERR_NOT_FOUND : SG_ERR_IO;
	if (fstat(fd, &st) != 0) {
		close(fd);
		return SG_ERR_IO;
	}
	if ((st.st_mode & 077) != 0 ||
	    (st.st_uid != geteuid() && st.st_uid != 0)) {
		close(fd);
		return SG_ERR_PERMISSIONS;
	}
	r = read_fd(fd, max, &buf, &len);
	close(fd);
	if (r != 0)
		return r;
	*ret = buf;
	*ret_len = len;
	return 0;
}

const char *
sg_json_stranger(json_t *obj, const char *const *allowed)
{
	const char *k;
	json_t *v;
	size_t i;

	json_object_foreach(obj, k, v) {
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(k, allowed[i]) == 0)
				break;
		if (allowed[i] == NULL)
			return k;
	}
	return NULL;
}

void
sg_signal_block(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int
sg_signal_wait(const sigset_t *set, const char *hup_note)
{
	int sig;

	for (;;) {
		if (sigwait(set, &sig) != 0)
			continue;
		if (sig != SIGHUP)
			return sig;
		sg_log_info("%s", hup_note);
	}
}
