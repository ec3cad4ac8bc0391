/*
 * Tests for release manifests and grant patterns (src/manifest.c): the
 * artifact line's one rendering and every refusal, the manifest tree's
 * root against the published RFC 6962 vectors and against an independent
 * level-by-level reference computed here with libcrypto alone, inclusion
 * paths for every position of every manifest of 1 to 33 lines (and a few
 * of a full release) verified and then tampered with, and name patterns,
 * pathological ones included, whose matching must stay polynomial.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "sg_err.h"
#include "sg_manifest.h"
#include "sg_merkle.h"
#include "sg_test.h"
#include "sg_fixture.h"

#define H SG_HASH_LEN
#define HEX64 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

/* ---- artifact lines ---- */

static void
make_line(struct sg_artifact_line *a, enum sg_digest_alg alg,
    enum sg_format f, const char *name, const char *version)
{
	size_t i;

	memset(a, 0, sizeof(*a));
	a->digest_alg = alg;
	a->digest_len = sg_digest_len(alg);
	for (i = 0; i < a->digest_len; i++)
		a->digest[i] = (uint8_t)(i * 13 + 1);
	a->format = f;
	snprintf(a->name, sizeof(a->name), "%s", name);
	snprintf(a->version, sizeof(a->version), "%s", version);
}

static int
same_line(const struct sg_artifact_line *a, const struct sg_artifact_line *b)
{
	return a->digest_alg == b->digest_alg &&
	    a->digest_len == b->digest_len &&
	    memcmp(a->digest, b->digest, a->digest_len) == 0 &&
	    a->format == b->format && strcmp(a->name, b->name) == 0 &&
	    strcmp(a->version, b->version) == 0;
}

/* build -> parse -> the same fields -> build gives the same bytes. */
static void
line_round_trip(const struct sg_artifact_line *a)
{
	struct sg_artifact_line p;
	char buf[SG_ARTIFACT_LINE_MAX + 1], buf2[SG_ARTIFACT_LINE_MAX + 1];
	size_t n = 0, n2 = 0;

	CHECK_EQ_INT(sg_artifact_line_build(a, buf, sizeof(buf), &n), 0);
	CHECK_EQ_INT(strlen(buf), n);
	memset(&p, 0x55, sizeof(p));
	CHECK_EQ_INT(sg_artifact_line_parse(buf, n, &p), 0);
	CHECK(same_line(a, &p));
	CHECK_EQ_INT(sg_artifact_line_build(&p, buf2, sizeof(buf2), &n2), 0);
	CHECK(n == n2 && memcmp(buf, buf2, n) == 0);
}

static void
test_line_exact(void)
{
	struct sg_artifact_line a, p;
	char buf[SG_ARTIFACT_LINE_MAX + 1];
	size_t n = 0;
	static const char want[] = "sha256:" HEX64 " cms app.tar.gz 1.2.3";
	static const char want2[] = "sha256:" HEX64 " raw app.tar.gz";

	memset(&a, 0, sizeof(a));
	a.digest_alg = SG_DIGEST_SHA256;
	a.digest_len = 32;
	sg_fx_hexdec(HEX64, a.digest, 32);
	a.format = SG_FORMAT_CMS;
	strcpy(a.name, "app.tar.gz");
	strcpy(a.version, "1.2.3");
	CHECK_EQ_INT(sg_artifact_line_build(&a, buf, sizeof(buf), &n), 0);
	CHECK_STR(buf, want);
	CHECK_EQ_INT(n, strlen(want));
	a.format = SG_FORMAT_RAW;
	a.version[0] = '\0';
	CHECK_EQ_INT(sg_artifact_line_build(&a, buf, sizeof(buf), &n), 0);
	CHECK_STR(buf, want2);
	/* Parsing the exact text gives the fields. */
	CHECK_EQ_INT(sg_artifact_line_parse(want, strlen(want), &p), 0);
	CHECK_EQ_INT(p.digest_alg, SG_DIGEST_SHA256);
	CHECK_EQ_INT(p.digest_len, 32);
	CHECK(memcmp(p.digest, a.digest, 32) == 0);
	CHECK_EQ_INT(p.format, SG_FORMAT_CMS);
	CHECK_STR(p.name, "app.tar.gz");
	CHECK_STR(p.version, "1.2.3");
	/* A buffer one byte short. */
	CHECK_EQ_INT(sg_artifact_line_build(&a, buf, strlen(want2), &n),
	    SG_ERR_BUFFER);
}

static void
test_line_round_trips(void)
{
	static const enum sg_digest_alg algs[] = { SG_DIGEST_SHA256,
	    SG_DIGEST_SHA384, SG_DIGEST_SHA512 };
	struct sg_artifact_line a;
	char name[SG_ARTIFACT_LINE_NAME_MAX + 1];
	char ver[SG_ARTIFACT_LINE_VERSION_MAX + 1];
	char buf[SG_ARTIFACT_LINE_MAX + 1];
	size_t i, n = 0;

	for (i = 0; i < 3; i++) {
		make_line(&a, algs[i], SG_FORMAT_RAW, "a", "");
		line_round_trip(&a);
		make_line(&a, algs[i], SG_FORMAT_CMS, "dist/app-1.0.tgz", "1");
		line_round_trip(&a);
	}
	/* The longest name and version, with every allowed byte class. */
	memset(name, 'n', SG_ARTIFACT_LINE_NAME_MAX);
	name[SG_ARTIFACT_LINE_NAME_MAX] = '\0';
	name[0] = '!';
	name[1] = '~';
	name[2] = '*';
	name[3] = '/';
	memset(ver, 'v', SG_ARTIFACT_LINE_VERSION_MAX);
	ver[SG_ARTIFACT_LINE_VERSION_MAX] = '\0';
	make_line(&a, SG_DIGEST_SHA512, SG_FORMAT_CMS, name, ver);
	line_round_trip(&a);
	CHECK_EQ_INT(sg_artifact_line_build(&a, buf, sizeof(buf), &n), 0);
	CHECK(n <= SG_ARTIFACT_LINE_MAX);
	/* Every printable byte but the space, in a name. */
	for (i = 0x21; i <= 0x7e; i++) {
		char nm[2] = { (char)i, '\0' };
		make_line(&a, SG_DIGEST_SHA256, SG_FORMAT_RAW, nm, nm);
		line_round_trip(&a);
	}
}

static void
test_line_build_refuses(void)
{
	struct sg_artifact_line a;
	char buf[SG_ARTIFACT_LINE_MAX + 1];
	size_t n = 0;

#define BUILD_REFUSED(mut) do {						\
	make_line(&a, SG_DIGEST_SHA256, SG_FORMAT_RAW, "app", "1");	\
	mut;								\
	CHECK_EQ_INT(sg_artifact_line_build(&a, buf, sizeof(buf), &n),	\
	    SG_ERR_INVALID);						\
} while (0)

	BUILD_REFUSED(a.digest_alg = SG_DIGEST_NONE);
	BUILD_REFUSED(a.digest_alg = (enum sg_digest_alg)9);
	BUILD_REFUSED(a.digest_len = 31);
	BUILD_REFUSED(a.digest_len = 48);
	BUILD_REFUSED(a.format = (enum sg_format)0);
	BUILD_REFUSED(a.format = (enum sg_format)(SG_FORMAT_RAW |
	    SG_FORMAT_CMS));
	BUILD_REFUSED(a.name[0] = '\0');
	BUILD_REFUSED(strcpy(a.name, "a b"));
	BUILD_REFUSED(strcpy(a.name, "a\tb"));
	BUILD_REFUSED(strcpy(a.name, "caf\xc3\xa9"));
	BUILD_REFUSED(strcpy(a.name, "a\x7f"));
	BUILD_REFUSED(strcpy(a.version, "1 2"));
	BUILD_REFUSED(strcpy(a.version, "1\n"));
	BUILD_REFUSED(memset(a.name, 'x', sizeof(a.name)));
	BUILD_REFUSED(memset(a.version, 'x', sizeof(a.version)));
#undef BUILD_REFUSED
	make_line(&a, SG_DIGEST_SHA256, SG_FORMAT_RAW, "app", "1");
	CHECK_EQ_INT(sg_artifact_line_build(NULL, buf, sizeof(buf), &n),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(sg_artifact_line_build(&a, NULL, 0, &n), SG_ERR_INVALID);
}

static void
test_line_parse_refuses(void)
{
	static const char *const bad[] = {
		"",
		"sha256:" HEX64,
		"sha256:" HEX64 " raw",
		"sha256:" HEX64 " raw ",
		"sha256:" HEX64 " raw app ",
		"sha256:" HEX64 " raw  app",
		"sha256:" HEX64 "  raw app",
		" sha256:" HEX64 " raw app",
		"sha256:" HEX64 " raw app 1 2",
		"sha256:" HEX64 " raw app 1 ",
		"sha256:" HEX64 " RAW app",
		"sha256:" HEX64 " pem app",
		"SHA256:" HEX64 " raw app",
		"sha1:" HEX64 " raw app",
		"md5:00112233445566778899aabbccddeeff raw app",
		"sha256 " HEX64 " raw app",
		"sha256:" HEX64 "00 raw app",
		"sha256:" "00112233445566778899aabbccddeeff" " raw app",
		"sha384:" HEX64 " raw app",
		"sha256:" "00112233445566778899AABBCCDDEEFF"
		    "00112233445566778899aabbccddeeff" " raw app",
		"sha256:" "0g112233445566778899aabbccddeeff"
		    "00112233445566778899aabbccddeeff" " raw app",
		"sha256::" HEX64 " raw app",
		"sha256:" HEX64 " raw app\n",
		"sha256:" HEX64 " raw ap\np",
		"sha256:" HEX64 " raw app\r",
		"sha256:" HEX64 " raw app\t1",
		"sha256:" HEX64 " raw caf\xc3\xa9",
		"sha256:" HEX64 " raw a\x7f",
		"sha256:" HEX64 "\traw app",
	};
	struct sg_artifact_line a;
	char buf[1024];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = sg_artifact_line_parse(bad[i], strlen(bad[i]), &a);
		if (r != SG_ERR_INVALID)
			fprintf(stderr, "  accepted: '%s'\n", bad[i]);
		CHECK_EQ_INT(r, SG_ERR_INVALID);
	}
	/* A NUL inside. */
	snprintf(buf, sizeof(buf), "sha256:%s raw app", HEX64);
	buf[strlen(buf) - 1] = '\0';
	CHECK_EQ_INT(sg_artifact_line_parse(buf, strlen(buf) + 1, &a),
	    SG_ERR_INVALID);
	/* A name of 256 bytes, a version of 65. */
	snprintf(buf, sizeof(buf), "sha256:%s raw ", HEX64);
	memset(buf + strlen(buf), 'n', 256);
	buf[sizeof("sha256:") - 1 + 64 + 5 + 256] = '\0';
	CHECK_EQ_INT(sg_artifact_line_parse(buf, strlen(buf), &a),
	    SG_ERR_INVALID);
	buf[strlen(buf) - 1] = '\0';    /* 255: accepted */
	CHECK_EQ_INT(sg_artifact_line_parse(buf, strlen(buf), &a), 0);
	snprintf(buf, sizeof(buf), "sha256:%s raw app ", HEX64);
	memset(buf + strlen(buf), 'v', 65);
	buf[sizeof("sha256:") - 1 + 64 + 9 + 65] = '\0';
	CHECK_EQ_INT(sg_artifact_line_parse(buf, strlen(buf), &a),
	    SG_ERR_INVALID);
	buf[strlen(buf) - 1] = '\0';
	CHECK_EQ_INT(sg_artifact_line_parse(buf, strlen(buf), &a), 0);
	/* Longer than SG_ARTIFACT_LINE_MAX whatever it holds. */
	memset(buf, 'a', sizeof(buf));
	CHECK_EQ_INT(sg_artifact_line_parse(buf, SG_ARTIFACT_LINE_MAX + 1, &a),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(sg_artifact_line_parse(NULL, 3, &a), SG_ERR_INVALID);
	/* Word rule. */
	CHECK_EQ_INT(sg_artifact_word_valid("abc", 3, 3), 1);
	CHECK_EQ_INT(sg_artifact_word_valid("abc", 3, 2), 0);
	CHECK_EQ_INT(sg_artifact_word_valid("", 0, 3), 0);
	CHECK_EQ_INT(sg_artifact_word_valid("a c", 3, 3), 0);
}

/* Every one-byte change of a valid line either fails or is another
 * canonical line (parse then build gives it back). */
static void
test_line_mutations(void)
{
	static const uint8_t vals[] = { 0x00, '\n', ' ', '0', 'A', 'a', ':',
	    '*', 0x7f, 0x80, 0xff };
	static const char line[] = "sha256:" HEX64 " cms app.tar.gz 1.2.3";
	struct sg_artifact_line a;
	char buf[sizeof(line)], again[SG_ARTIFACT_LINE_MAX + 1];
	size_t i, k, n = strlen(line), n2, accepted = 0, bad = 0;

	for (i = 0; i < n; i++) {
		for (k = 0; k < sizeof(vals); k++) {
			memcpy(buf, line, n);
			buf[i] = (char)vals[k];
			if (sg_artifact_line_parse(buf, n, &a) != 0)
				continue;
			accepted++;
			if (sg_artifact_line_build(&a, again, sizeof(again),
			    &n2) != 0 || n2 != n || memcmp(again, buf, n) != 0) {
				fprintf(stderr, "  i=%zu k=%zu\n", i, k);
				bad++;
			}
		}
		/* A cut line is a line only if it ends inside the name
		 * or the version (a shorter one). */
		if (sg_artifact_line_parse(line, i, &a) == 0 &&
		    (i <= strlen("sha256:" HEX64 " cms ") ||
		    i == strlen("sha256:" HEX64 " cms app.tar.gz "))) {
			fprintf(stderr, "  cut %zu\n", i);
			bad++;
		}
	}
	CHECK(accepted > 0);
	CHECK_EQ_INT(bad, 0);
}

/* ---- the manifest tree ---- */

/* An independent reference: the RFC 6962 tree built level by level
 * (pairs from the left, an odd last node carried up unchanged), with
 * libcrypto's SHA-256 directly. */
static void
sha256_parts(const void *a, size_t al, const void *b, size_t bl,
    const void *c, size_t cl, uint8_t out[H])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int len = 0;

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, a, al) != 1 ||
	    EVP_DigestUpdate(ctx, b, bl) != 1 ||
	    EVP_DigestUpdate(ctx, c, cl) != 1 ||
	    EVP_DigestFinal_ex(ctx, out, &len) != 1)
		abort();
	EVP_MD_CTX_free(ctx);
}

static void
ref_root(char **lines, const size_t *lens, size_t n, uint8_t out[H])
{
	static const uint8_t zero = 0x00, one = 0x01;
	uint8_t (*lv)[H] = calloc(n, H);
	size_t i, m;

	if (lv == NULL)
		abort();
	for (i = 0; i < n; i++)
		sha256_parts(&zero, 1, lines[i], lens[i], "", 0, lv[i]);
	for (m = n; m > 1; m = (m + 1) / 2) {
		for (i = 0; i + 1 < m; i += 2)
			sha256_parts(&one, 1, lv[i], H, lv[i + 1], H,
			    lv[i / 2]);
		if (m % 2 == 1)
			memmove(lv[m / 2], lv[m - 1], H);
	}
	memcpy(out, lv[0], H);
	free(lv);
}

/* n distinct canonical lines, lines[i] malloc'd. */
static char **
make_lines(size_t n, size_t **ret_lens)
{
	char **lines = calloc(n, sizeof(*lines));
	size_t *lens = calloc(n, sizeof(*lens));
	size_t i;

	if (lines == NULL || lens == NULL)
		abort();
	for (i = 0; i < n; i++) {
		if ((lines[i] = malloc(SG_ARTIFACT_LINE_MAX + 1)) == NULL)
			abort();
		lens[i] = (size_t)snprintf(lines[i], SG_ARTIFACT_LINE_MAX + 1,
		    "sha256:%064zx raw file-%zu.bin", i * 2654435761u, i);
	}
	*ret_lens = lens;
	return lines;
}

static void
free_lines(char **lines, size_t *lens, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
	free(lens);
}

static void
test_tree_vectors(void)
{
	struct sg_manifest_tree t;
	const char *lines[SG_FX_RFC6962_LEAVES];
	size_t lens[SG_FX_RFC6962_LEAVES], i, n;
	uint8_t data[SG_FX_RFC6962_LEAVES][16], root[H], want[H];

	for (i = 0; i < SG_FX_RFC6962_LEAVES; i++) {
		lens[i] = strlen(sg_fx_rfc6962_leaves[i]) / 2;
		sg_fx_hexdec(sg_fx_rfc6962_leaves[i], data[i], lens[i]);
		lines[i] = (const char *)data[i];
	}
	for (n = 1; n <= SG_FX_RFC6962_LEAVES; n++) {
		CHECK_EQ_INT(sg_manifest_tree_init(&t, lines, lens, n), 0);
		CHECK_EQ_INT(sg_manifest_tree_root(&t, root), 0);
		sg_fx_hexdec(sg_fx_rfc6962_roots[n], want, H);
		CHECK(memcmp(root, want, H) == 0);
		sg_manifest_tree_free(&t);
		CHECK(t.leaves == NULL && t.n == 0);
	}
}

static void
check_root(size_t n)
{
	struct sg_manifest_tree t;
	size_t *lens;
	char **lines = make_lines(n, &lens);
	uint8_t root[H], want[H], leaf[H];

	CHECK_EQ_INT(sg_manifest_tree_init(&t, (const char *const *)lines,
	    lens, n), 0);
	CHECK_EQ_INT(sg_manifest_tree_root(&t, root), 0);
	ref_root(lines, lens, n, want);
	if (memcmp(root, want, H) != 0)
		fprintf(stderr, "  root differs at n = %zu\n", n);
	CHECK(memcmp(root, want, H) == 0);
	/* The leaf is the log's leaf hash of the line's bytes. */
	sg_manifest_leaf(lines[0], lens[0], leaf);
	CHECK(memcmp(leaf, t.leaves[0], H) == 0);
	sg_manifest_tree_free(&t);
	free_lines(lines, lens, n);
}

static void
test_tree_roots(void)
{
	size_t n;

	for (n = 1; n <= 9; n++)
		check_root(n);
	check_root(63);
	check_root(64);
	check_root(65);
	check_root(1000);
	check_root(4097);
	check_root(SG_RELEASE_MAX);
}

static void
test_tree_refuses(void)
{
	struct sg_manifest_tree t;
	size_t *lens;
	char **lines = make_lines(5, &lens);
	uint8_t path[SG_MANIFEST_PATH_MAX][H], root[H];
	size_t np = 0;

	CHECK_EQ_INT(sg_manifest_tree_init(&t, (const char *const *)lines,
	    lens, 0), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_manifest_tree_init(&t, (const char *const *)lines,
	    lens, SG_RELEASE_MAX + 1), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_manifest_tree_init(&t, NULL, lens, 5), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_manifest_tree_init(&t, (const char *const *)lines,
	    lens, 5), 0);
	CHECK_EQ_INT(sg_manifest_tree_path(&t, 5, path, SG_MANIFEST_PATH_MAX,
	    &np), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_manifest_tree_path(&t, 0, path, 2, &np),
	    SG_ERR_BUFFER);
	CHECK_EQ_INT(sg_manifest_tree_path(&t, 0, path, 3, &np), 0);
	CHECK_EQ_INT(np, 3);
	CHECK_EQ_INT(sg_manifest_tree_path(&t, 4, path, 1, &np), 0);
	CHECK_EQ_INT(np, 1);
	sg_manifest_tree_free(&t);
	CHECK_EQ_INT(sg_manifest_tree_root(&t, root), SG_ERR_INVALID);
	free_lines(lines, lens, 5);
}

/* Every tampering of a verified membership fails. */
static void
check_tamper(const char *line, size_t len, size_t pos, size_t n,
    const uint8_t root[H], uint8_t (*path)[H], size_t np)
{
	char *l2 = malloc(len);
	uint8_t r2[H];
	size_t i;

	if (l2 == NULL)
		abort();
	memcpy(l2, line, len);
	l2[len / 2] ^= 0x01;
	CHECK_EQ_INT(sg_manifest_verify(l2, len, pos, n, root,
	    (const uint8_t (*)[H])path, np), SG_ERR_VERIFY);
	free(l2);
	memcpy(r2, root, H);
	r2[7] ^= 0x80;
	CHECK_EQ_INT(sg_manifest_verify(line, len, pos, n, r2,
	    (const uint8_t (*)[H])path, np), SG_ERR_VERIFY);
	for (i = 0; i < np; i++) {
		path[i][i % H] ^= 0x04;
		CHECK_EQ_INT(sg_manifest_verify(line, len, pos, n, root,
		    (const uint8_t (*)[H])path, np), SG_ERR_VERIFY);
		path[i][i % H] ^= 0x04;
	}
	/*
	 * Another position, a shorter or a longer path.  (Another count
	 * can give a tree of the same shape along this path, so the count
	 * alone is not bound by the path: the statement binds it, beside
	 * the root.)  A count that puts the position outside fails.
	 */
	CHECK_EQ_INT(sg_manifest_verify(line, len, pos + 1, n, root,
	    (const uint8_t (*)[H])path, np), SG_ERR_VERIFY);
	if (pos > 0)
		CHECK_EQ_INT(sg_manifest_verify(line, len, pos - 1, n, root,
		    (const uint8_t (*)[H])path, np), SG_ERR_VERIFY);
	CHECK_EQ_INT(sg_manifest_verify(line, len, pos, pos, root,
	    (const uint8_t (*)[H])path, np), SG_ERR_VERIFY);
	if (np > 0)
		CHECK_EQ_INT(sg_manifest_verify(line, len, pos, n, root,
		    (const uint8_t (*)[H])path, np - 1), SG_ERR_VERIFY);
	if (np < SG_MANIFEST_PATH_MAX)
		CHECK_EQ_INT(sg_manifest_verify(line, len, pos, n, root,
		    (const uint8_t (*)[H])path, np + 1), SG_ERR_VERIFY);
}

static void
check_paths(size_t n, const size_t *positions, size_t npos)
{
	struct sg_manifest_tree t;
	size_t *lens, i, np = 0, pos;
	char **lines = make_lines(n, &lens);
	uint8_t root[H], path[SG_MANIFEST_PATH_MAX + 1][H];

	CHECK_EQ_INT(sg_manifest_tree_init(&t, (const char *const *)lines,
	    lens, n), 0);
	CHECK_EQ_INT(sg_manifest_tree_root(&t, root), 0);
	for (i = 0; i < (positions != NULL ? npos : n); i++) {
		pos = positions != NULL ? positions[i] : i;
		CHECK_EQ_INT(sg_manifest_tree_path(&t, pos, path,
		    SG_MANIFEST_PATH_MAX, &np), 0);
		CHECK(np <= SG_MANIFEST_PATH_MAX);
		CHECK_EQ_INT(sg_manifest_verify(lines[pos], lens[pos], pos, n,
		    root, (const uint8_t (*)[H])path, np), 0);
		/* The log's own verifier agrees. */
		CHECK_EQ_INT(sg_merkle_verify_inclusion(t.leaves[pos], pos, n,
		    (const uint8_t (*)[H])path, np, root), 0);
		/* Another line of the same manifest is not at pos. */
		CHECK_EQ_INT(sg_manifest_verify(lines[(pos + 1) % n],
		    lens[(pos + 1) % n], pos, n, root,
		    (const uint8_t (*)[H])path, np),
		    n == 1 ? 0 : SG_ERR_VERIFY);
		check_tamper(lines[pos], lens[pos], pos, n, root, path, np);
	}
	sg_manifest_tree_free(&t);
	free_lines(lines, lens, n);
}

static void
test_tree_paths(void)
{
	static const size_t big[] = { 0, 1, 4095, 4096, 8191, 8192, 9998,
	    9999 };
	size_t n;

	for (n = 1; n <= 33; n++)
		check_paths(n, NULL, 0);
	check_paths(SG_RELEASE_MAX, big, sizeof(big) / sizeof(big[0]));
}

static void
test_verify_refuses(void)
{
	static const char line[] = "sha256:" HEX64 " raw app";
	uint8_t root[H], path[SG_MANIFEST_PATH_MAX + 1][H];

	memset(root, 0, H);
	memset(path, 0, sizeof(path));
	sg_manifest_leaf(line, strlen(line), root);
	/* A manifest of one: the root is the leaf, the path empty. */
	CHECK_EQ_INT(sg_manifest_verify(line, strlen(line), 0, 1, root, NULL,
	    0), 0);
	CHECK_EQ_INT(sg_manifest_verify(line, strlen(line), 1, 1, root, NULL,
	    0), SG_ERR_VERIFY);
	CHECK_EQ_INT(sg_manifest_verify(line, strlen(line), 0, 0, root, NULL,
	    0), SG_ERR_VERIFY);
	CHECK_EQ_INT(sg_manifest_verify(line, strlen(line), 0,
	    SG_RELEASE_MAX + 1, root, NULL, 0), SG_ERR_VERIFY);
	CHECK_EQ_INT(sg_manifest_verify(line, strlen(line), 0, 1, root,
	    (const uint8_t (*)[H])path, SG_MANIFEST_PATH_MAX + 1),
	    SG_ERR_VERIFY);
	CHECK_EQ_INT(sg_manifest_verify(NULL, 0, 0, 1, root, NULL, 0),
	    SG_ERR_VERIFY);
	CHECK_EQ_INT(sg_manifest_verify(line, strlen(line), 0, 1, NULL, NULL,
	    0), SG_ERR_VERIFY);
	CHECK_EQ_INT(sg_manifest_verify(line, strlen(line), 0, 1, root, NULL,
	    1), SG_ERR_VERIFY);
}

/* ---- patterns ---- */

static void
test_pattern_valid(void)
{
	char p[SG_PATTERN_MAX + 2];

	CHECK_EQ_INT(sg_pattern_valid("*"), 1);
	CHECK_EQ_INT(sg_pattern_valid("dist/*.tar.gz"), 1);
	CHECK_EQ_INT(sg_pattern_valid("?"), 1);
	CHECK_EQ_INT(sg_pattern_valid(""), 0);
	CHECK_EQ_INT(sg_pattern_valid(NULL), 0);
	CHECK_EQ_INT(sg_pattern_valid("a b"), 0);
	CHECK_EQ_INT(sg_pattern_valid("a\tb"), 0);
	CHECK_EQ_INT(sg_pattern_valid("a\x7f"), 0);
	CHECK_EQ_INT(sg_pattern_valid("caf\xc3\xa9"), 0);
	memset(p, '*', SG_PATTERN_MAX);
	p[SG_PATTERN_MAX] = '\0';
	CHECK_EQ_INT(sg_pattern_valid(p), 1);
	p[SG_PATTERN_MAX] = 'x';
	p[SG_PATTERN_MAX + 1] = '\0';
	CHECK_EQ_INT(sg_pattern_valid(p), 0);
}

static void
test_pattern_match(void)
{
	static const struct {
		const char *pat, *name;
		int want;
	} v[] = {
		{ "*", "a", 1 },
		{ "*", "dist/sub/app.tgz", 1 },
		{ "app", "app", 1 },
		{ "app", "apps", 0 },
		{ "app", "ap", 0 },
		{ "app*", "app", 1 },
		{ "app*", "app-1.0.tgz", 1 },
		{ "*app", "myapp", 1 },
		{ "*app", "myapp2", 0 },
		{ "a*b*c", "abc", 1 },
		{ "a*b*c", "aXbYc", 1 },
		{ "a*b*c", "aXbYcZ", 0 },
		{ "a*b*c", "acb", 0 },
		{ "a*c", "abcbc", 1 },
		{ "a*bc", "abcbc", 1 },
		{ "a*bc", "abcbd", 0 },
		{ "?", "a", 1 },
		{ "?", "ab", 0 },
		{ "??", "a", 0 },
		{ "a?c", "abc", 1 },
		{ "a?c", "ac", 0 },
		{ "*?", "a", 1 },
		{ "*??*", "a", 0 },
		{ "dist/*.tar.gz", "dist/app-1.tar.gz", 1 },
		{ "dist/*.tar.gz", "dist/x/app.tar.gz", 1 },
		{ "dist/*.tar.gz", "dist/app.tar.gzz", 0 },
		{ "dist/*.tar.gz", "Dist/app.tar.gz", 0 },
		{ "**", "x", 1 },
		{ "*.*", "noext", 0 },
		{ "[ab]", "a", 0 },
		{ "[ab]", "[ab]", 1 },
		{ "\\*", "\\x", 1 },
		{ "\\*", "*", 0 },
		{ "a", "", 0 },
		{ "*", "", 1 },
		{ "a b", "a b", 0 },       /* not a valid pattern */
	};
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		int got = sg_pattern_match(v[i].pat, v[i].name);
		if (got != v[i].want)
			fprintf(stderr, "  '%s' ~ '%s': %d\n", v[i].pat,
			    v[i].name, got);
		CHECK_EQ_INT(got, v[i].want);
	}
	CHECK_EQ_INT(sg_pattern_match("*", NULL), 0);
	CHECK_EQ_INT(sg_pattern_match(NULL, "a"), 0);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Star-heavy patterns against long names that almost match: a
 * backtracking matcher takes exponential time on these, the iterative one
 * at most len(pattern) * len(name) steps each.  1000 matches of the worst
 * case must take well under a second even under the sanitizers.
 */
static void
test_pattern_pathological(void)
{
	char pat[SG_PATTERN_MAX + 1], name[SG_ARTIFACT_LINE_NAME_MAX + 1];
	double t0, t;
	size_t i;
	int r = 0;

	for (i = 0; i + 1 < SG_PATTERN_MAX; i += 2) {
		pat[i] = '*';
		pat[i + 1] = 'a';
	}
	pat[SG_PATTERN_MAX - 1] = 'b';
	pat[SG_PATTERN_MAX] = '\0';
	memset(name, 'a', SG_ARTIFACT_LINE_NAME_MAX);
	name[SG_ARTIFACT_LINE_NAME_MAX] = '\0';
	CHECK_EQ_INT(sg_pattern_valid(pat), 1);
	t0 = now_s();
	for (i = 0; i < 1000; i++)
		r |= sg_pattern_match(pat, name);
	t = now_s() - t0;
	printf("# 1000 pathological matches in %.3f s\n", t);
	CHECK_EQ_INT(r, 0);
	CHECK(t < 2.0);
	/* The same shape that does match. */
	name[SG_ARTIFACT_LINE_NAME_MAX - 1] = 'b';
	CHECK_EQ_INT(sg_pattern_match(pat, name), 1);
	/* '?' and '*' mixed: "*?*?*?...x" against all 'a'. */
	for (i = 0; i + 1 < SG_PATTERN_MAX; i += 2) {
		pat[i] = '*';
		pat[i + 1] = '?';
	}
	pat[SG_PATTERN_MAX - 1] = 'x';
	name[SG_ARTIFACT_LINE_NAME_MAX - 1] = 'a';
	t0 = now_s();
	for (i = 0; i < 1000; i++)
		r |= sg_pattern_match(pat, name);
	t = now_s() - t0;
	CHECK_EQ_INT(r, 0);
	CHECK(t < 2.0);
}

SG_TEST_MAIN("manifest",
    T(test_line_exact),
    T(test_line_round_trips),
    T(test_line_build_refuses),
    T(test_line_parse_refuses),
    T(test_line_mutations),
    T(test_tree_vectors),
    T(test_tree_roots),
    T(test_tree_refuses),
    T(test_tree_paths),
    T(test_verify_refuses),
    T(test_pattern_valid),
    T(test_pattern_match),
    T(test_pattern_pathological))
