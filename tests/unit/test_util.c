/*
 * Tests for the shared helpers: encodings (hex, strict base64), checked
 * number parsing, RFC 3339 time, careful file reading (size caps,
 * O_NOFOLLOW, directories, secret-file permissions), atomic writes, log
 * escaping, constant-time comparison, path helpers, the monotonic clock
 * and the error-message helper.  Every refusal is checked to leave the
 * output parameters untouched.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "sg_err.h"
#include "sg_test.h"
#include "sg_fixture.h"
#include "sg_util.h"

static char tmpdir[64];

/* Writes a file with an exact mode (not filtered by the umask). */
static int
put_file(const char *name, const void *data, size_t len, mode_t mode,
    char *ret_path, size_t cap)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	unlink(path);
	if ((f = fopen(path, "wb")) == NULL)
		return -1;
	if (len > 0 && fwrite(data, 1, len, f) != len) {
		fclose(f);
		return -1;
	}
	if (fclose(f) != 0 || chmod(path, mode) != 0)
		return -1;
	if (ret_path != NULL)
		snprintf(ret_path, cap, "%s", path);
	return 0;
}

/* ---- hex ---- */

static void
test_hex_encode(void)
{
	static const uint8_t in[] = { 0x00, 0xff, 0x10, 0xab, 0x7f };
	char out[2 * sizeof(in) + 1];

	memset(out, 'X', sizeof(out));
	sg_hex_encode(in, sizeof(in), out);
	CHECK_STR(out, "00ff10ab7f");
	sg_hex_encode(in, 0, out);
	CHECK_STR(out, "");
}

static void
test_hex_decode(void)
{
	uint8_t out[8];
	size_t len = 99;

	CHECK_EQ_INT(sg_hex_decode("00ff10ab", 8, out, sizeof(out), &len), 0);
	CHECK_EQ_INT(len, 4);
	CHECK(memcmp(out, "\x00\xff\x10\xab", 4) == 0);

	/* Upper and mixed case. */
	len = 99;
	CHECK_EQ_INT(sg_hex_decode("DEADbeEF", 8, out, sizeof(out), &len), 0);
	CHECK_EQ_INT(len, 4);
	CHECK(memcmp(out, "\xde\xad\xbe\xef", 4) == 0);

	/* Empty input is zero bytes. */
	len = 99;
	CHECK_EQ_INT(sg_hex_decode("", 0, out, sizeof(out), &len), 0);
	CHECK_EQ_INT(len, 0);

	/* Only the given length is looked at. */
	len = 99;
	CHECK_EQ_INT(sg_hex_decode("0102zz", 4, out, sizeof(out), &len), 0);
	CHECK_EQ_INT(len, 2);

	/* Refusals leave ret_len alone. */
	len = 99;
	CHECK_EQ_INT(sg_hex_decode("abc", 3, out, sizeof(out), &len),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(sg_hex_decode("0g", 2, out, sizeof(out), &len),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(sg_hex_decode("zz", 2, out, sizeof(out), &len),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(sg_hex_decode(" 0", 2, out, sizeof(out), &len),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(sg_hex_decode("0x", 2, out, sizeof(out), &len),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(sg_hex_decode("a\0", 2, out, sizeof(out), &len),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(len, 99);

	/* Buffer too small, and exactly big enough. */
	memset(out, 0x55, sizeof(out));
	CHECK_EQ_INT(sg_hex_decode("0102030405", 10, out, 4, &len),
	    SG_ERR_BUFFER);
	CHECK_EQ_INT(len, 99);
	CHECK_EQ_INT(out[4], 0x55);
	CHECK_EQ_INT(sg_hex_decode("0102030405", 10, out, 5, &len), 0);
	CHECK_EQ_INT(len, 5);
	CHECK_EQ_INT(out[4], 0x05);
	CHECK_EQ_INT(out[5], 0x55);
}

/* sg_hex_digit: every hex digit in either case, nothing else (the
 * PKCS#11 URI parser decodes %XX with it). */
static void
test_hex_digit(void)
{
	int c, want;

	for (c = 0; c < 256; c++) {
		if (c >= '0' && c <= '9')
			want = c - '0';
		else if (c >= 'a' && c <= 'f')
			want = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			want = c - 'A' + 10;
		else
			want = -1;
		CHECK_EQ_INT(sg_hex_digit(c), want);
	}
	CHECK_EQ_INT(sg_hex_digit(-1), -1);
}

/* sg_json_stranger: a member not allowed; NULL for an empty object or
 * one of allowed members only; names are compared whole (no prefix or
 * case match). */
static void
test_json_stranger(void)
{
	static const char *const allowed[] = { "a", "bc", NULL };
	static const char *const none[] = { NULL };
	const char *k;
	json_t *o;

	o = json_loads("{}", 0, NULL);
	CHECK(o != NULL && sg_json_stranger(o, allowed) == NULL);
	CHECK(sg_json_stranger(o, none) == NULL);
	json_decref(o);
	o = json_loads("{\"a\": 1, \"bc\": 2}", 0, NULL);
	CHECK(o != NULL && sg_json_stranger(o, allowed) == NULL);
	CHECK(sg_json_stranger(o, none) != NULL);
	json_decref(o);
	o = json_loads("{\"a\": 1, \"BC\": 2}", 0, NULL);
	CHECK(o != NULL && (k = sg_json_stranger(o, allowed)) != NULL &&
	    strcmp(k, "BC") == 0);
	json_decref(o);
	o = json_loads("{\"bcd\": 1, \"bc\": 2}", 0, NULL);
	CHECK(o != NULL && (k = sg_json_stranger(o, allowed)) != NULL &&
	    strcmp(k, "bcd") == 0);
	json_decref(o);
}

static void
test_hex_round_trip(void)
{
	uint8_t in[256], out[256];
	char hex[513];
	size_t i, len = 0;

	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)i;
	sg_hex_encode(in, sizeof(in), hex);
	CHECK_EQ_INT(strlen(hex), 512);
	CHECK_EQ_INT(sg_hex_decode(hex, strlen(hex), out, sizeof(out), &len),
	    0);
	CHECK_EQ_INT(len, sizeof(in));
	CHECK(memcmp(in, out, sizeof(in)) == 0);
}

/* ---- base64 ---- */

static const struct {
	const char *plain, *b64;
} rfc4648[] = {
	{ "", "" },
	{ "f", "Zg==" },
	{ "fo", "Zm8=" },
	{ "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" },
	{ "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

static void
test_b64_vectors(void)
{
	size_t i, len;
	uint8_t *dec;
	char *enc;

	for (i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		const char *p = rfc4648[i].plain, *b = rfc4648[i].b64;
		enc = sg_b64_encode((const uint8_t *)p, strlen(p));
		CHECK_STR(enc, b);
		free(enc);
		dec = NULL;
		len = 999;
		CHECK_EQ_INT(sg_b64_decode(b, strlen(b), &dec, &len), 0);
		CHECK_EQ_INT(len, strlen(p));
		CHECK(dec != NULL && memcmp(dec, p, strlen(p)) == 0);
		free(dec);
	}
}

static void
test_b64_binary_round_trip(void)
{
	uint8_t in[300], *dec;
	size_t n, len;
	char *enc;

	for (n = 0; n < sizeof(in); n++)
		in[n] = (uint8_t)(n * 7 + 3);
	for (n = 0; n <= sizeof(in); n += 37) {
		enc = sg_b64_encode(in, n);
		CHECK(enc != NULL);
		if (enc == NULL)
			continue;
		CHECK_EQ_INT(strlen(enc), (n + 2) / 3 * 4);
		dec = NULL;
		len = 0;
		CHECK_EQ_INT(sg_b64_decode(enc, strlen(enc), &dec, &len), 0);
		CHECK_EQ_INT(len, n);
		CHECK(dec != NULL && memcmp(dec, in, n) == 0);
		free(dec);
		free(enc);
	}
	/* All 64 symbols, including '+' and '/'. */
	enc = sg_b64_encode((const uint8_t *)"\xfb\xff\xbf", 3);
	CHECK_STR(enc, "+/+/");
	free(enc);
}

static int
b64_refused(const char *s)
{
	uint8_t *dec = (uint8_t *)"untouched";
	size_t len = 12345;
	int r;

	r = sg_b64_decode(s, strlen(s), &dec, &len);
	if (r == 0) {
		fprintf(stderr, "  base64 \"%s\" accepted\n", s);
		free(dec);
		return 0;
	}
	return r == SG_ERR_INVALID && len == 12345 &&
	    strcmp((const char *)dec, "untouched") == 0;
}

static void
test_b64_strict(void)
{
	/* Whitespace anywhere. */
	CHECK(b64_refused("Zm9v\n"));
	CHECK(b64_refused("Zm\n9"));
	CHECK(b64_refused(" Zg="));
	CHECK(b64_refused("Zm9v Zm9v  "));
	CHECK(b64_refused("Zm9v\r\nYmFy"));
	/* Wrong length, missing or extra padding. */
	CHECK(b64_refused("Z"));
	CHECK(b64_refused("Zg"));
	CHECK(b64_refused("Zg="));
	CHECK(b64_refused("Zg==="));
	CHECK(b64_refused("Zm9vYg="));
	CHECK(b64_refused("Zm9vY"));
	/* Padding in the wrong place. */
	CHECK(b64_refused("===="));
	CHECK(b64_refused("Z==="));
	CHECK(b64_refused("Zg=a"));
	CHECK(b64_refused("Z=g="));
	CHECK(b64_refused("=Zg="));
	CHECK(b64_refused("Zg==Zm9v"));
	CHECK(b64_refused("Zm8=Zm8="));
	/* Non-canonical trailing bits. */
	CHECK(b64_refused("Zh=="));
	CHECK(b64_refused("Zv=="));
	CHECK(b64_refused("Zm9="));
	CHECK(b64_refused("Zm9vYh=="));
	CHECK(b64_refused("Zm9vYmF="));
	/* Characters outside the standard alphabet (URL-safe too). */
	CHECK(b64_refused("Zm9-"));
	CHECK(b64_refused("Zm9_"));
	CHECK(b64_refused("Zm9*"));
	CHECK(b64_refused("Zm9\x80"));
	/* An embedded NUL inside the given length. */
	{
		uint8_t *dec = NULL;
		size_t len = 0;
		CHECK_EQ_INT(sg_b64_decode("Zm\0v", 4, &dec, &len),
		    SG_ERR_INVALID);
		CHECK(dec == NULL);
	}
}

/* ---- numbers ---- */

static void
test_parse_u64(void)
{
	uint64_t v = 7;

	CHECK_EQ_INT(sg_parse_u64("0", 0, UINT64_MAX, &v), 0);
	CHECK_EQ_INT(v, 0);
	CHECK_EQ_INT(sg_parse_u64("1234567890", 0, UINT64_MAX, &v), 0);
	CHECK_EQ_INT(v, 1234567890);
	CHECK_EQ_INT(sg_parse_u64("18446744073709551615", 0, UINT64_MAX, &v),
	    0);
	CHECK(v == UINT64_MAX);
	CHECK_EQ_INT(sg_parse_u64("007", 0, 10, &v), 0);
	CHECK_EQ_INT(v, 7);

	v = 42;
	CHECK_EQ_INT(sg_parse_u64("", 0, UINT64_MAX, &v), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_parse_u64(NULL, 0, UINT64_MAX, &v), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_parse_u64("+1", 0, UINT64_MAX, &v), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_parse_u64("-1", 0, UINT64_MAX, &v), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_parse_u64("-0", 0, UINT64_MAX, &v), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_parse_u64(" 1", 0, UINT64_MAX, &v), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_parse_u64("1 ", 0, UINT64_MAX, &v), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_parse_u64("1\n", 0, UINT64_MAX, &v), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_parse_u64("1a", 0, UINT64_MAX, &v), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_parse_u64("0x10", 0, UINT64_MAX, &v), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_parse_u64("1.0", 0, UINT64_MAX, &v), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_parse_u64("1e3", 0, UINT64_MAX, &v), SG_ERR_INVALID);
	/* Overflow: one past the maximum, and much further. */
	CHECK_EQ_INT(sg_parse_u64("18446744073709551616", 0, UINT64_MAX, &v),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(sg_parse_u64("18446744073709551620", 0, UINT64_MAX, &v),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(sg_parse_u64("99999999999999999999", 0, UINT64_MAX, &v),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(sg_parse_u64("184467440737095516150", 0, UINT64_MAX,
	    &v), SG_ERR_INVALID);
	CHECK_EQ_INT(v, 42);

	/* Bounds are inclusive. */
	CHECK_EQ_INT(sg_parse_u64("4", 5, 10, &v), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_parse_u64("11", 5, 10, &v), SG_ERR_INVALID);
	CHECK_EQ_INT(v, 42);
	CHECK_EQ_INT(sg_parse_u64("5", 5, 10, &v), 0);
	CHECK_EQ_INT(v, 5);
	CHECK_EQ_INT(sg_parse_u64("10", 5, 10, &v), 0);
	CHECK_EQ_INT(v, 10);
	CHECK_EQ_INT(sg_parse_u64("60", 0, 60, &v), 0);
	CHECK_EQ_INT(sg_parse_u64("61", 0, 60, &v), SG_ERR_INVALID);
	CHECK_EQ_INT(v, 60);
}

/* ---- time ---- */

static void
test_time_rfc3339(void)
{
	char out[32];

	sg_time_rfc3339(0, out, sizeof(out));
	CHECK_STR(out, "1970-01-01T00:00:00Z");
	sg_time_rfc3339(1764417600, out, sizeof(out));
	CHECK_STR(out, "2025-11-29T12:00:00Z");
	sg_time_rfc3339(951782400, out, sizeof(out));  /* leap day */
	CHECK_STR(out, "2000-02-29T00:00:00Z");
	sg_time_rfc3339((time_t)4102444799LL, out, sizeof(out));
	CHECK_STR(out, "2099-12-31T23:59:59Z");
	/* Exactly 21 bytes is enough; 20 gives an empty string, never a
	 * truncated time. */
	memset(out, 'X', sizeof(out));
	sg_time_rfc3339(1764417600, out, 21);
	CHECK_STR(out, "2025-11-29T12:00:00Z");
	memset(out, 'X', sizeof(out));
	sg_time_rfc3339(1764417600, out, 20);
	CHECK_STR(out, "");
}

/* ---- file reading ---- */

static void
test_read_file(void)
{
	char path[PATH_MAX], link[PATH_MAX], dir[PATH_MAX], missing[PATH_MAX];
	char data[100], *buf = NULL, *sentinel = (char *)"sentinel";
	size_t len = 0;

	memset(data, 'a', sizeof(data));
	data[50] = '\0';  /* binary content is kept whole */
	CHECK(put_file("plain", data, sizeof(data), 0644, path,
	    sizeof(path)) == 0);

	CHECK_EQ_INT(sg_read_file(path, 4096, &buf, &len), 0);
	CHECK_EQ_INT(len, 100);
	CHECK(buf != NULL && memcmp(buf, data, 100) == 0 && buf[100] == '\0');
	free(buf);
	buf = NULL;
	CHECK_EQ_INT(sg_read_file(path, 101, &buf, &len), 0);
	CHECK_EQ_INT(len, 100);
	free(buf);

	/* One byte over the cap. */
	buf = sentinel;
	len = 7;
	CHECK_EQ_INT(sg_read_file(path, 99, &buf, &len), SG_ERR_TOO_LARGE);
	CHECK(buf == sentinel && len == 7);
	CHECK_EQ_INT(sg_read_file(path, 0, &buf, &len), SG_ERR_TOO_LARGE);

	/* Empty file. */
	CHECK(put_file("empty", "", 0, 0644, path, sizeof(path)) == 0);
	buf = NULL;
	CHECK_EQ_INT(sg_read_file(path, 100, &buf, &len), 0);
	CHECK_EQ_INT(len, 0);
	CHECK(buf != NULL && buf[0] == '\0');
	free(buf);

	/* Missing file. */
	snprintf(missing, sizeof(missing), "%s/no-such-file", tmpdir);
	buf = sentinel;
	CHECK_EQ_INT(sg_read_file(missing, 100, &buf, &len),
	    SG_ERR_NOT_FOUND);
	CHECK(buf == sentinel);

	/* A symbolic link to a good file is refused (O_NOFOLLOW). */
	CHECK(put_file("target", "x", 1, 0644, path, sizeof(path)) == 0);
	snprintf(link, sizeof(link), "%s/link", tmpdir);
	CHECK(symlink(path, link) == 0);
	buf = sentinel;
	CHECK(sg_read_file(link, 100, &buf, &len) < 0);
	CHECK(buf == sentinel);

	/* A directory is refused. */
	snprintf(dir, sizeof(dir), "%s/adir", tmpdir);
	CHECK(mkdir(dir, 0700) == 0);
	CHECK(sg_read_file(dir, 100, &buf, &len) < 0);
	CHECK(buf == sentinel);

	/* A FIFO would block or be a stream: refused without reading. */
	snprintf(dir, sizeof(dir), "%s/afifo", tmpdir);
	if (mkfifo(dir, 0600) == 0) {
		int wfd = open(dir, O_RDWR | O_NONBLOCK);
		if (wfd >= 0) {
			/* Should it read, the alarm ends the test. */
			alarm(10);
			CHECK(sg_read_file(dir, 100, &buf, &len) < 0);
			alarm(0);
			CHECK(buf == sentinel);
			close(wfd);
		}
	}
}

/* "At most max bytes": a file of exactly max bytes is read whole. */
static void
test_read_file_exactly_max(void)
{
	char path[PATH_MAX], data[100], *buf = NULL;
	size_t len = 0;

	memset(data, 'b', sizeof(data));
	CHECK(put_file("exact", data, sizeof(data), 0644, path,
	    sizeof(path)) == 0);
	CHECK_EQ_INT(sg_read_file(path, sizeof(data), &buf, &len), 0);
	CHECK_EQ_INT(len, sizeof(data));
	CHECK(buf != NULL && memcmp(buf, data, sizeof(data)) == 0);
	free(buf);

	CHECK(put_file("exact", "", 0, 0644, path, sizeof(path)) == 0);
	buf = NULL;
	CHECK_EQ_INT(sg_read_file(path, 0, &buf, &len), 0);
	CHECK_EQ_INT(len, 0);
	free(buf);
}

static void
test_read_secret_file(void)
{
	char path[PATH_MAX], link[PATH_MAX], big[300];
	char *buf = NULL, *sentinel = (char *)"sentinel";
	size_t len = 0;

	CHECK(put_file("pin", "1234\n", 5, 0600, path, sizeof(path)) == 0);
	CHECK_EQ_INT(sg_read_secret_file(path, &buf, &len), 0);
	CHECK_EQ_INT(len, 4);
	CHECK_STR(buf, "1234");
	sg_freezero(buf, len);

	/* CR LF and several newlines are all removed; inner ones kept. */
	CHECK(put_file("pin", "ab\ncd\r\n\n", 8, 0400, path,
	    sizeof(path)) == 0);
	buf = NULL;
	CHECK_EQ_INT(sg_read_secret_file(path, &buf, &len), 0);
	CHECK_EQ_INT(len, 5);
	CHECK_STR(buf, "ab\ncd");
	sg_freezero(buf, len);

	/* Readable by group or others. */
	buf = sentinel;
	len = 7;
	CHECK(put_file("pin", "1234\n", 5, 0640, path, sizeof(path)) == 0);
	CHECK_EQ_INT(sg_read_secret_file(path, &buf, &len),
	    SG_ERR_PERMISSIONS);
	CHECK(put_file("pin", "1234\n", 5, 0644, path, sizeof(path)) == 0);
	CHECK_EQ_INT(sg_read_secret_file(path, &buf, &len),
	    SG_ERR_PERMISSIONS);
	CHECK(put_file("pin", "1234\n", 5, 0604, path, sizeof(path)) == 0);
	CHECK_EQ_INT(sg_read_secret_file(path, &buf, &len),
	    SG_ERR_PERMISSIONS);
	CHECK(put_file("pin", "1234\n", 5, 0620, path, sizeof(path)) == 0);
	CHECK_EQ_INT(sg_read_secret_file(path, &buf, &len),
	    SG_ERR_PERMISSIONS);
	CHECK(buf == sentinel && len == 7);

	/* Owned by someone else (only root can set that up). */
	if (geteuid() == 0) {
		CHECK(put_file("pin", "1234\n", 5, 0600, path,
		    sizeof(path)) == 0);
		CHECK(chown(path, 4321, 4321) == 0);
		CHECK_EQ_INT(sg_read_secret_file(path, &buf, &len),
		    SG_ERR_PERMISSIONS);
		CHECK(buf == sentinel);
	}

	/* Larger than SG_MAX_SECRET_SIZE. */
	memset(big, '7', sizeof(big));
	CHECK(put_file("bigpin", big, SG_MAX_SECRET_SIZE + 1, 0600, path,
	    sizeof(path)) == 0);
	CHECK_EQ_INT(sg_read_secret_file(path, &buf, &len), SG_ERR_TOO_LARGE);
	CHECK(buf == sentinel);
	CHECK(put_file("bigpin", big, SG_MAX_SECRET_SIZE - 1, 0600, path,
	    sizeof(path)) == 0);
	buf = NULL;
	CHECK_EQ_INT(sg_read_secret_file(path, &buf, &len), 0);
	CHECK_EQ_INT(len, SG_MAX_SECRET_SIZE - 1);
	sg_freezero(buf, len);
	buf = sentinel;

	/* Missing, symlink. */
	buf = sentinel;
	snprintf(link, sizeof(link), "%s/no-pin", tmpdir);
	CHECK_EQ_INT(sg_read_secret_file(link, &buf, &len), SG_ERR_NOT_FOUND);
	CHECK(put_file("pin", "1234\n", 5, 0600, path, sizeof(path)) == 0);
	snprintf(link, sizeof(link), "%s/pinlink", tmpdir);
	CHECK(symlink(path, link) == 0);
	CHECK(sg_read_secret_file(link, &buf, &len) < 0);
	CHECK(buf == sentinel);
}

/* A PIN file of exactly SG_MAX_SECRET_SIZE bytes is within the cap. */
static void
test_read_secret_file_exactly_max(void)
{
	char path[PATH_MAX], big[SG_MAX_SECRET_SIZE], *buf = NULL;
	size_t len = 0;

	memset(big, '7', sizeof(big));
	CHECK(put_file("maxpin", big, sizeof(big), 0600, path,
	    sizeof(path)) == 0);
	CHECK_EQ_INT(sg_read_secret_file(path, &buf, &len), 0);
	CHECK_EQ_INT(len, SG_MAX_SECRET_SIZE);
	sg_freezero(buf, len);
}

static void
test_read_secret_file_max(void)
{
	char path[PATH_MAX], link[PATH_MAX];
	char *buf = NULL, *sentinel = (char *)"sentinel";
	const char pem[] = "-----BEGIN PRIVATE KEY-----\nabc\n"
	    "-----END PRIVATE KEY-----\n";
	size_t len = 0;

	/* The content comes back unchanged, trailing newline included. */
	CHECK(put_file("key", pem, strlen(pem), 0600, path,
	    sizeof(path)) == 0);
	CHECK_EQ_INT(sg_read_secret_file_max(path, 4096, &buf, &len), 0);
	CHECK_EQ_INT(len, strlen(pem));
	CHECK_STR(buf, pem);
	sg_freezero(buf, len);

	buf = sentinel;
	len = 7;
	CHECK_EQ_INT(sg_read_secret_file_max(path, strlen(pem) - 1, &buf,
	    &len), SG_ERR_TOO_LARGE);
	CHECK(put_file("key", pem, strlen(pem), 0640, path,
	    sizeof(path)) == 0);
	CHECK_EQ_INT(sg_read_secret_file_max(path, 4096, &buf, &len),
	    SG_ERR_PERMISSIONS);
	CHECK(put_file("key", pem, strlen(pem), 0604, path,
	    sizeof(path)) == 0);
	CHECK_EQ_INT(sg_read_secret_file_max(path, 4096, &buf, &len),
	    SG_ERR_PERMISSIONS);
	if (geteuid() == 0) {
		CHECK(put_file("key", pem, strlen(pem), 0600, path,
		    sizeof(path)) == 0);
		CHECK(chown(path, 4321, 4321) == 0);
		CHECK_EQ_INT(sg_read_secret_file_max(path, 4096, &buf, &len),
		    SG_ERR_PERMISSIONS);
	}
	snprintf(link, sizeof(link), "%s/no-key", tmpdir);
	CHECK_EQ_INT(sg_read_secret_file_max(link, 4096, &buf, &len),
	    SG_ERR_NOT_FOUND);
	CHECK(put_file("key", pem, strlen(pem), 0600, path,
	    sizeof(path)) == 0);
	snprintf(link, sizeof(link), "%s/keylink", tmpdir);
	CHECK(symlink(path, link) == 0);
	CHECK(sg_read_secret_file_max(link, 4096, &buf, &len) < 0);
	CHECK(buf == sentinel && len == 7);
}

/* ---- writing ---- */

static int
count_entries(const char *dir)
{
	struct dirent *de;
	DIR *d;
	int n = 0;

	if ((d = opendir(dir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void
test_write_file(void)
{
	char dir[128], path[256], tmp[PATH_MAX];
	struct stat sb;
	char *buf = NULL;
	size_t len = 0;
	mode_t old = umask(022);

	snprintf(dir, sizeof(dir), "%s/w", tmpdir);
	CHECK(mkdir(dir, 0700) == 0);
	snprintf(path, sizeof(path), "%s/out", dir);

	CHECK_EQ_INT(sg_write_file(path, "hello", 5, 0600), 0);
	CHECK(stat(path, &sb) == 0 && (sb.st_mode & 07777) == 0600);
	CHECK_EQ_INT(sg_read_file(path, 100, &buf, &len), 0);
	CHECK(len == 5 && buf != NULL && memcmp(buf, "hello", 5) == 0);
	free(buf);
	CHECK_EQ_INT(count_entries(dir), 1);  /* no temporary left */

	/* Replacing: the new content and the new mode. */
	CHECK_EQ_INT(sg_write_file(path, "bye\0!", 5, 0640), 0);
	CHECK(stat(path, &sb) == 0 && (sb.st_mode & 07777) == 0640);
	buf = NULL;
	CHECK_EQ_INT(sg_read_file(path, 100, &buf, &len), 0);
	CHECK(len == 5 && buf != NULL && memcmp(buf, "bye\0!", 5) == 0);
	free(buf);
	CHECK_EQ_INT(count_entries(dir), 1);

	CHECK_EQ_INT(sg_write_file(path, "", 0, 0644), 0);
	CHECK(stat(path, &sb) == 0 && sb.st_size == 0 &&
	    (sb.st_mode & 07777) == 0644);

	/* When the temporary cannot be created, the old file is intact. */
	CHECK_EQ_INT(sg_write_file(path, "keep", 4, 0600), 0);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	CHECK(mkdir(tmp, 0700) == 0);
	CHECK(sg_write_file(path, "lost", 4, 0600) < 0);
	buf = NULL;
	CHECK_EQ_INT(sg_read_file(path, 100, &buf, &len), 0);
	CHECK(len == 4 && buf != NULL && memcmp(buf, "keep", 4) == 0);
	free(buf);
	rmdir(tmp);

	/* A directory that does not exist. */
	snprintf(tmp, sizeof(tmp), "%s/nodir/out", dir);
	CHECK(sg_write_file(tmp, "x", 1, 0600) < 0);

	/* The rename fails (the target is a non-empty directory): an error,
	 * and the temporary is removed. */
	snprintf(tmp, sizeof(tmp), "%s/sub", dir);
	CHECK(mkdir(tmp, 0700) == 0);
	snprintf(tmp, sizeof(tmp), "%s/sub/keep", dir);
	CHECK(sg_write_file(tmp, "k", 1, 0600) == 0);
	snprintf(tmp, sizeof(tmp), "%s/sub", dir);
	CHECK(sg_write_file(tmp, "x", 1, 0600) < 0);
	CHECK_EQ_INT(count_entries(dir), 2);   /* out and sub */
	umask(old);
}

/* ---- escaping ---- */

static void
test_escape(void)
{
	char out[64];

	sg_escape("plain text", 10, out, sizeof(out));
	CHECK_STR(out, "plain text");
	sg_escape("a\nb\r\t", 5, out, sizeof(out));
	CHECK_STR(out, "a\\x0ab\\x0d\\x09");
	sg_escape("\x1b[31m", 5, out, sizeof(out));
	CHECK_STR(out, "\\x1b[31m");
	sg_escape("\x7f", 1, out, sizeof(out));
	CHECK_STR(out, "\\x7f");
	/* A backslash is escaped too, so that "\x0a" in input cannot pass
	 * for an escape. */
	sg_escape("a\\x0a", 5, out, sizeof(out));
	CHECK_STR(out, "a\\x5cx0a");
	/* Non-ASCII (UTF-8 "é"), byte by byte. */
	sg_escape("caf\xc3\xa9", 5, out, sizeof(out));
	CHECK_STR(out, "caf\\xc3\\xa9");
	/* The length is honoured, embedded NULs included. */
	sg_escape("a\0b", 3, out, sizeof(out));
	CHECK_STR(out, "a\\x00b");
	sg_escape("abcdef", 3, out, sizeof(out));
	CHECK_STR(out, "abc");
	sg_escape("", 0, out, sizeof(out));
	CHECK_STR(out, "");
}

static void
test_escape_truncation(void)
{
	char out[16];

	/* Truncation never splits an escape and always terminates. */
	memset(out, 'X', sizeof(out));
	sg_escape("abc\n", 4, out, 5);
	CHECK_STR(out, "abc");
	CHECK_EQ_INT(out[5], 'X');
	memset(out, 'X', sizeof(out));
	sg_escape("abc\n", 4, out, 8);  /* exactly fits */
	CHECK_STR(out, "abc\\x0a");
	CHECK_EQ_INT(out[8], 'X');
	memset(out, 'X', sizeof(out));
	sg_escape("abc\n", 4, out, 7);
	CHECK_STR(out, "abc");
	memset(out, 'X', sizeof(out));
	sg_escape("abcdefghij", 10, out, 4);
	CHECK_STR(out, "abc");
	CHECK_EQ_INT(out[4], 'X');
	memset(out, 'X', sizeof(out));
	sg_escape("abc", 3, out, 1);
	CHECK_EQ_INT(out[0], '\0');
	CHECK_EQ_INT(out[1], 'X');
	/* cap 0 writes nothing at all. */
	memset(out, 'X', sizeof(out));
	sg_escape("abc", 3, out, 0);
	CHECK_EQ_INT(out[0], 'X');
}

/* ---- comparisons and paths ---- */

static void
test_memeq_ct(void)
{
	uint8_t a[32], b[32];
	size_t i;

	memset(a, 0x5a, sizeof(a));
	memcpy(b, a, sizeof(b));
	CHECK_EQ_INT(sg_memeq_ct(a, b, sizeof(a)), 0);
	CHECK_EQ_INT(sg_memeq_ct(a, b, 0), 0);
	for (i = 0; i < sizeof(a); i++) {
		b[i] ^= 0x01;
		CHECK(sg_memeq_ct(a, b, sizeof(a)) != 0);
		b[i] ^= 0x01;
		b[i] ^= 0x80;
		CHECK(sg_memeq_ct(a, b, sizeof(a)) != 0);
		b[i] ^= 0x80;
	}
	/* Only len bytes are compared. */
	b[31] = 0;
	CHECK_EQ_INT(sg_memeq_ct(a, b, 31), 0);
	CHECK(sg_memeq_ct(a, b, 32) != 0);
}

static void
test_path_join(void)
{
	char *p;

	p = sg_path_join("/etc/signgate", "tls/ca.pem");
	CHECK_STR(p, "/etc/signgate/tls/ca.pem");
	free(p);
	p = sg_path_join("var/dev", "pins/x.pin");
	CHECK_STR(p, "var/dev/pins/x.pin");
	free(p);
	p = sg_path_join(".", "x");
	CHECK_STR(p, "./x");
	free(p);
	p = sg_path_join("/etc/signgate", "/usr/lib/x.so");
	CHECK_STR(p, "/usr/lib/x.so");
	free(p);
	p = sg_path_join(NULL, "x");
	CHECK_STR(p, "x");
	free(p);
	p = sg_path_join("", "x");
	CHECK_STR(p, "x");
	free(p);
}

static void
test_dirname(void)
{
	char *p;

	p = sg_dirname("/etc/signgate/signgated.json");
	CHECK_STR(p, "/etc/signgate");
	free(p);
	p = sg_dirname("var/dev/signgated.json");
	CHECK_STR(p, "var/dev");
	free(p);
	p = sg_dirname("signgated.json");
	CHECK_STR(p, ".");
	free(p);
	p = sg_dirname("/signgated.json");
	CHECK_STR(p, "/");
	free(p);
	p = sg_dirname("./x");
	CHECK_STR(p, ".");
	free(p);
}

static void
test_freezero_null(void)
{
	char *p = strdup("secret");

	sg_freezero(NULL, 10);  /* must not crash */
	CHECK(p != NULL);
	sg_freezero(p, 7);
}

/* The one monotonic clock: CLOCK_MONOTONIC, in three units that agree. */
static void
test_mono_clock(void)
{
	struct timespec ts, pause = { 0, 20 * 1000000L };
	int64_t raw, ns, us, ms, ns2;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	raw = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	ns = sg_mono_ns();
	us = sg_mono_us();
	ms = sg_mono_ms();
	CHECK(ns >= raw);
	CHECK(ns - raw < 1000000000);        /* the same clock, not another */
	CHECK(us >= ns / 1000);
	CHECK(ms >= us / 1000);
	CHECK(ms - ns / 1000000 < 1000);
	while (nanosleep(&pause, &pause) != 0 && errno == EINTR)
		;
	ns2 = sg_mono_ns();
	CHECK(ns2 - ns >= 20 * 1000000);
	CHECK(sg_mono_ms() - ms >= 20);
}

static int64_t
ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

/* A deadline is now + ms on the monotonic clock, normalised; a condition
 * variable on that clock times out at it, not before. */
static void
test_mono_deadline(void)
{
	pthread_condattr_t ca;
	pthread_cond_t cond;
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct timespec ts;
	int64_t before, after;
	int r;

	before = sg_mono_ns();
	sg_mono_deadline(&ts, 1500);
	after = sg_mono_ns();
	CHECK(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000);
	CHECK(ts_ns(&ts) >= before + 1500 * INT64_C(1000000));
	CHECK(ts_ns(&ts) <= after + 1500 * INT64_C(1000000));
	/* The past is now; a huge wait does not wrap around. */
	before = sg_mono_ns();
	sg_mono_deadline(&ts, -5000);
	CHECK(ts_ns(&ts) >= before && ts_ns(&ts) <= sg_mono_ns());
	sg_mono_deadline(&ts, INT64_MAX);
	CHECK(ts.tv_sec > 0 && ts_ns(&ts) > sg_mono_ns());
	CHECK(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000);

	CHECK_EQ_INT(pthread_condattr_init(&ca), 0);
	CHECK_EQ_INT(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC), 0);
	CHECK_EQ_INT(pthread_cond_init(&cond, &ca), 0);
	pthread_mutex_lock(&lock);
	before = sg_mono_ms();
	sg_mono_deadline(&ts, 50);
	do
		r = pthread_cond_timedwait(&cond, &lock, &ts);
	while (r == 0);
	after = sg_mono_ms();
	pthread_mutex_unlock(&lock);
	CHECK_EQ_INT(r, ETIMEDOUT);
	CHECK(after - before >= 50);
	CHECK(after - before < 5000);
	pthread_cond_destroy(&cond);
	pthread_condattr_destroy(&ca);
}

/* The error helper formats, always terminates, tolerates no buffer, and
 * returns the code it was given. */
static void
test_err_set(void)
{
	char buf[16], small[6];

	memset(buf, 'x', sizeof(buf));
	CHECK_EQ_INT(sg_err_set(buf, sizeof(buf), SG_ERR_INVALID,
	    "field %s: %d", "a", 7), SG_ERR_INVALID);
	CHECK_STR(buf, "field a: 7");
	CHECK_EQ_INT(sg_err_set(buf, sizeof(buf), 0, "%s", ""), 0);
	CHECK_STR(buf, "");
	/* Truncated, NUL-terminated, never past the buffer. */
	memset(small, 'x', sizeof(small));
	CHECK_EQ_INT(sg_err_set(small, 4, SG_ERR_IO, "abcdefgh"), SG_ERR_IO);
	CHECK_STR(small, "abc");
	CHECK_EQ_INT(small[4], 'x');
	/* No buffer, or none of it: only the code. */
	CHECK_EQ_INT(sg_err_set(NULL, 10, SG_ERR_VERIFY, "%s", "x"),
	    SG_ERR_VERIFY);
	memset(small, 'x', sizeof(small));
	CHECK_EQ_INT(sg_err_set(small, 0, SG_ERR_NOMEM, "%s", "y"),
	    SG_ERR_NOMEM);
	CHECK_EQ_INT(small[0], 'x');
}

/* A hostile string in a log message cannot start a new log line. */
static void
test_log_escapes(void)
{
	char path[300], *out = NULL;
	size_t len = 0;
	int saved, fd;

	snprintf(path, sizeof(path), "%s/log.txt", tmpdir);
	fflush(stderr);
	saved = dup(2);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(saved >= 0 && fd >= 0);
	if (saved < 0 || fd < 0)
		return;
	dup2(fd, 2);
	close(fd);
	sg_log_warn("request for '%s'", "evil\nsigngate info: forged\x1b[2J\xc3\xa9");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	CHECK_EQ_INT(sg_read_file(path, 4096, &out, &len), 0);
	CHECK_STR(out, "signgate warning: request for 'evil\\x0asigngate "
	    "info: forged\\x1b[2J\\xc3\\xa9'\n");
	free(out);
}

static void
setup(void)
{
	if (sg_fx_tmpdir("util", tmpdir, sizeof(tmpdir)) != 0)
		exit(2);
}

static void test_setup(void) { setup(); CHECK(tmpdir[0] == '/'); }
static void test_teardown(void) { CHECK_EQ_INT(sg_fx_rm_tree(tmpdir), 0); }

SG_TEST_MAIN("util",
    T(test_setup),
    T(test_hex_encode),
    T(test_hex_decode),
    T(test_hex_digit),
    T(test_json_stranger),
    T(test_hex_round_trip),
    T(test_b64_vectors),
    T(test_b64_binary_round_trip),
    T(test_b64_strict),
    T(test_parse_u64),
    T(test_time_rfc3339),
    T(test_read_file),
    T(test_read_file_exactly_max),
    T(test_read_secret_file),
    T(test_read_secret_file_exactly_max),
    T(test_read_secret_file_max),
    T(test_write_file),
    T(test_escape),
    T(test_escape_truncation),
    T(test_log_escapes),
    T(test_memeq_ct),
    T(test_path_join),
    T(test_dirname),
    T(test_freezero_null),
    T(test_mono_clock),
    T(test_mono_deadline),
    T(test_err_set),
    T(test_teardown))
