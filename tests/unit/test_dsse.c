/*
 * Tests for the approval statement, body, PAE and DSSE envelope: exact
 * renderings, byte-exact round trips, and one refusal for every kind of
 * malformed input the parsers must not accept.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_dsse.h"
#include "sg_webauthn.h"
#include "sg_err.h"
#include "sg_test.h"
#include "sg_fixture.h"

static const char good[] = SG_FX_STATEMENT;

static void
fill(struct sg_statement *s)
{
	memset(s, 0, sizeof(*s));
	strcpy(s->request, SG_FX_STMT_ID);
	strcpy(s->key, "release");
	strcpy(s->spki_sha256, SG_FX_STMT_SPKI);
	strcpy(s->digest_alg, "sha256");
	strcpy(s->digest_hex, SG_FX_STMT_DIGEST);
	strcpy(s->format, "raw");
	strcpy(s->requester, "ci");
	strcpy(s->policy_name, "signgate-dev");
	s->policy_version = 1;
	strcpy(s->policy_sha256, SG_FX_STMT_POLICY);
	s->expires = 1764417600;
}

static int
parses(const char *text)
{
	struct sg_statement s;

	return sg_statement_parse(text, strlen(text), &s);
}

/* Replaces the first occurrence of `from` in good[] by `to` and parses. */
static int
parses_edited(const char *from, const char *to)
{
	char buf[4096];
	const char *at = strstr(good, from);
	size_t pre;

	if (at == NULL) {
		fprintf(stderr, "  test bug: '%s' not in statement\n", from);
		return 0;
	}
	pre = (size_t)(at - good);
	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)pre, good, to,
	    at + strlen(from));
	return parses(buf);
}

static void
test_statement_build_exact(void)
{
	struct sg_statement s;
	char *text = NULL;
	size_t len = 0;

	fill(&s);
	CHECK_EQ_INT(sg_statement_build(&s, &text, &len), 0);
	CHECK_STR(text, good);
	CHECK_EQ_INT(len, strlen(good));
	free(text);
}

static void
test_statement_round_trip(void)
{
	struct sg_statement s, t;
	char *text = NULL, *again = NULL;
	size_t len = 0, alen = 0;

	memset(&s, 0x5a, sizeof(s));
	CHECK_EQ_INT(sg_statement_parse(good, strlen(good), &s), 0);
	CHECK_STR(s.request, SG_FX_STMT_ID);
	CHECK_STR(s.key, "release");
	CHECK_STR(s.spki_sha256, SG_FX_STMT_SPKI);
	CHECK_STR(s.digest_alg, "sha256");
	CHECK_STR(s.digest_hex, SG_FX_STMT_DIGEST);
	CHECK_STR(s.format, "raw");
	CHECK_STR(s.requester, "ci");
	CHECK_STR(s.policy_name, "signgate-dev");
	CHECK_EQ_INT(s.policy_version, 1);
	CHECK_STR(s.policy_sha256, SG_FX_STMT_POLICY);
	CHECK_EQ_INT(s.expires, 1764417600);
	CHECK_EQ_INT(sg_statement_build(&s, &again, &alen), 0);
	CHECK(alen == strlen(good) && memcmp(again, good, alen) == 0);
	free(again);

	/* Other digests, cms, big numbers and names with every allowed
	 * character survive both ways. */
	fill(&t);
	strcpy(t.digest_alg, "sha512");
	memset(t.digest_hex, 'f', 128);
	t.digest_hex[128] = '\0';
	strcpy(t.format, "cms");
	strcpy(t.key, "Fw_2.x-Release");
	t.policy_version = 18446744073709551615ULL;
	t.expires = 9223372036854775807LL;
	CHECK_EQ_INT(sg_statement_build(&t, &text, &len), 0);
	memset(&s, 0, sizeof(s));
	CHECK_EQ_INT(sg_statement_parse(text, len, &s), 0);
	CHECK(memcmp(&s, &t, sizeof(s)) == 0);
	free(text);

	fill(&t);
	strcpy(t.digest_alg, "sha384");
	memset(t.digest_hex, '9', 96);
	t.digest_hex[96] = '\0';
	t.expires = 0;
	CHECK_EQ_INT(sg_statement_build(&t, &text, &len), 0);
	CHECK_EQ_INT(sg_statement_parse(text, len, &s), 0);
	CHECK(memcmp(&s, &t, sizeof(s)) == 0);
	free(text);
}

static void
test_statement_build_refuses(void)
{
	struct sg_statement s;
	char *text = (char *)"untouched";
	size_t len = 7;

	fill(&s);
	strcpy(s.key, "bad key");
	CHECK_EQ_INT(sg_statement_build(&s, &text, &len), SG_ERR_INVALID);
	CHECK_STR(text, "untouched");
	CHECK_EQ_INT(len, 7);

	fill(&s);
	strcpy(s.request, "0123456789ABCDEF0123456789abcdef");
	CHECK_EQ_INT(sg_statement_build(&s, &text, &len), SG_ERR_INVALID);
	fill(&s);
	strcpy(s.request, "0123456789abcdef");
	CHECK_EQ_INT(sg_statement_build(&s, &text, &len), SG_ERR_INVALID);
	fill(&s);
	strcpy(s.digest_alg, "md5");
	CHECK_EQ_INT(sg_statement_build(&s, &text, &len), SG_ERR_INVALID);
	fill(&s);
	strcpy(s.digest_alg, "sha384");   /* 64 hex is sha256's length */
	CHECK_EQ_INT(sg_statement_build(&s, &text, &len), SG_ERR_INVALID);
	fill(&s);
	strcpy(s.format, "pem");
	CHECK_EQ_INT(sg_statement_build(&s, &text, &len), SG_ERR_INVALID);
	fill(&s);
	s.expires = -1;
	CHECK_EQ_INT(sg_statement_build(&s, &text, &len), SG_ERR_INVALID);
	fill(&s);
	strcpy(s.policy_name, "a@b");
	CHECK_EQ_INT(sg_statement_build(&s, &text, &len), SG_ERR_INVALID);
	fill(&s);
	s.requester[0] = '\0';
	CHECK_EQ_INT(sg_statement_build(&s, &text, &len), SG_ERR_INVALID);
	fill(&s);
	memset(s.key, 'k', sizeof(s.key));     /* not NUL-terminated */
	CHECK_EQ_INT(sg_statement_build(&s, &text, &len), SG_ERR_INVALID);
	fill(&s);
	s.spki_sha256[10] = 'g';
	CHECK_EQ_INT(sg_statement_build(&s, &text, &len), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_statement_build(NULL, &text, &len), SG_ERR_INVALID);
}

static void
test_statement_parse_refuses(void)
{
	char buf[4096];
	struct sg_statement s;
	size_t n = strlen(good);

	/* Sanity: the editor itself leaves a good statement good. */
	CHECK_EQ_INT(parses_edited("format raw", "format raw"), 0);

	/* Missing line, extra line, empty line, line order. */
	CHECK_EQ_INT(parses_edited("format raw\n", ""), SG_ERR_INVALID);
	CHECK_EQ_INT(parses_edited("format raw\n", "format raw\nextra x\n"),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(parses_edited("format raw\n", "format raw\n\n"),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(parses_edited("format raw\nrequester ci\n",
	    "requester ci\nformat raw\n"), SG_ERR_INVALID);
	snprintf(buf, sizeof(buf), "%sdecision approve\n", good);
	CHECK_EQ_INT(parses(buf), SG_ERR_INVALID);

	/* Line ends and trailing bytes. */
	CHECK_EQ_INT(parses_edited("format raw\n", "format raw\r\n"),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(sg_statement_parse(good, n - 1, &s), SG_ERR_INVALID);
	snprintf(buf, sizeof(buf), "%s ", good);
	CHECK_EQ_INT(parses(buf), SG_ERR_INVALID);
	snprintf(buf, sizeof(buf), "%s\n", good);
	CHECK_EQ_INT(parses(buf), SG_ERR_INVALID);
	memcpy(buf, good, n);
	buf[n] = '\0';
	CHECK_EQ_INT(sg_statement_parse(buf, n + 1, &s), SG_ERR_INVALID);
	CHECK_EQ_INT(parses_edited("format raw", "format raw "),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(parses_edited("format raw", "format  raw"),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(parses_edited("signgate approval v1",
	    "signgate approval v2"), SG_ERR_INVALID);
	CHECK_EQ_INT(parses_edited("signgate approval v1\n",
	    "\nsigngate approval v1\n"), SG_ERR_INVALID);

	/* Upper-case hex anywhere. */
	CHECK_EQ_INT(parses_edited("request 0123456789abcdef",
	    "request 0123456789ABCDEF"), SG_ERR_INVALID);
	CHECK_EQ_INT(parses_edited("sha256:aa", "sha256:AA"), SG_ERR_INVALID);
	CHECK_EQ_INT(parses_edited("sha256:bb", "sha256:BB"), SG_ERR_INVALID);
	CHECK_EQ_INT(parses_edited("sha256:cc", "sha256:Cc"), SG_ERR_INVALID);

	/* Wrong lengths. */
	CHECK_EQ_INT(parses_edited("sha256:bb", "sha256:bbb"), SG_ERR_INVALID);
	CHECK_EQ_INT(parses_edited("sha256:bb", "sha256:b"), SG_ERR_INVALID);
	CHECK_EQ_INT(parses_edited("artifact sha256:", "artifact sha384:"),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(parses_edited("request 01", "request 0"), SG_ERR_INVALID);
	CHECK_EQ_INT(parses_edited("sha256:aa", "sha256:a"), SG_ERR_INVALID);
	CHECK_EQ_INT(parses_edited("sha256:cc", "sha256:ccc"), SG_ERR_INVALID);

	/* Bad names, values and numbers. */
	CHECK_EQ_INT(parses_edited("key release", "key rel/ease"),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(parses_edited("key release", "key "), SG_ERR_INVALID);
	CHECK_EQ_INT(parses_edited("requester ci", "requester c i"),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(parses_edited("requester ci", "requester c\xc3\xa9"),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(parses_edited("policy signgate-dev@",
	    "policy signgate:dev@"), SG_ERR_INVALID);
	CHECK_EQ_INT(parses_edited("format raw", "format RAW"), SG_ERR_INVALID);
	CHECK_EQ_INT(parses_edited("artifact sha256", "artifact md5"),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(parses_edited("@1 ", "@01 "), SG_ERR_INVALID);
	CHECK_EQ_INT(parses_edited("@1 ", "@+1 "), SG_ERR_INVALID);
	CHECK_EQ_INT(parses_edited("@1 ", "@ "), SG_ERR_INVALID);
	CHECK_EQ_INT(parses_edited("@1 ", "@18446744073709551616 "),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(parses_edited("expires 1764417600",
	    "expires 01764417600"), SG_ERR_INVALID);
	CHECK_EQ_INT(parses_edited("expires 1764417600", "expires -1"),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(parses_edited("expires 1764417600",
	    "expires 9223372036854775808"), SG_ERR_INVALID);
	CHECK_EQ_INT(parses_edited("expires 1764417600", "expires 17644e3"),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(parses_edited("key release sha256:",
	    "key release sha1:"), SG_ERR_INVALID);
	CHECK_EQ_INT(parses_edited("key release",
	    "key aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
	    SG_ERR_INVALID);

	/* Oversize, empty, NULL. */
	memset(buf, 'a', sizeof(buf));
	CHECK_EQ_INT(sg_statement_parse(buf, SG_STATEMENT_MAX + 1, &s),
	    SG_ERR_TOO_LARGE);
	CHECK_EQ_INT(sg_statement_parse("", 0, &s), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_statement_parse(NULL, 0, &s), SG_ERR_INVALID);
}

static void
test_statement_parse_failure_leaves_output(void)
{
	struct sg_statement s;

	memset(&s, 0x5a, sizeof(s));
	CHECK_EQ_INT(parses_edited("format raw", "format xyz"), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_statement_parse("x\n", 2, &s), SG_ERR_INVALID);
	CHECK((unsigned char)s.request[0] == 0x5a);
	CHECK((unsigned char)s.key[5] == 0x5a);
}

/* ---- releases and grants ---- */

#define ROOT_HEX \
	"dd00000000000000000000000000000000000000000000000000000000000004"

static const char release_good[] =
    "signgate release approval v1\n"
    "release " SG_FX_STMT_ID "\n"
    "key release sha256:" SG_FX_STMT_SPKI "\n"
    "manifest sha256:" ROOT_HEX " 3\n"
    "format raw\n"
    "requester ci\n"
    "policy signgate-dev@1 sha256:" SG_FX_STMT_POLICY "\n"
    "expires 1764417600\n";

static const char grant_good[] =
    "signgate grant approval v1\n"
    "grant " SG_FX_STMT_ID "\n"
    "key release sha256:" SG_FX_STMT_SPKI "\n"
    "count 100\n"
    "artifact dist/*.tar.gz\n"
    "format cms\n"
    "requester ci\n"
    "policy signgate-dev@1 sha256:" SG_FX_STMT_POLICY "\n"
    "expires 1764417600\n";

static void
fill_release(struct sg_statement *s)
{
	fill(s);
	s->kind = SG_KIND_RELEASE;
	memset(s->digest_alg, 0, sizeof(s->digest_alg));
	memset(s->digest_hex, 0, sizeof(s->digest_hex));
	strcpy(s->manifest_root, ROOT_HEX);
	s->count = 3;
}

static void
fill_grant(struct sg_statement *s)
{
	fill(s);
	s->kind = SG_KIND_GRANT;
	memset(s->digest_alg, 0, sizeof(s->digest_alg));
	memset(s->digest_hex, 0, sizeof(s->digest_hex));
	strcpy(s->format, "cms");
	strcpy(s->pattern, "dist/*.tar.gz");
	s->count = 100;
}

/* text with the first `from` replaced by `to`, parsed. */
static int
kind_parses_edited(const char *text, const char *from, const char *to)
{
	char buf[4096];
	const char *at = strstr(text, from);
	struct sg_statement s;

	if (at == NULL) {
		fprintf(stderr, "  test bug: '%s' not in statement\n", from);
		return 0;
	}
	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - text), text, to,
	    at + strlen(from));
	return sg_statement_parse(buf, strlen(buf), &s);
}

static void
test_kind_statements(void)
{
	struct sg_statement s, t;
	char *text = NULL;
	size_t len = 0;

	fill_release(&s);
	CHECK_EQ_INT(sg_statement_build(&s, &text, &len), 0);
	CHECK_STR(text, release_good);
	free(text);
	memset(&t, 0x5a, sizeof(t));
	CHECK_EQ_INT(sg_statement_parse(release_good, strlen(release_good),
	    &t), 0);
	CHECK(memcmp(&s, &t, sizeof(s)) == 0);
	CHECK_EQ_INT(t.kind, SG_KIND_RELEASE);
	CHECK_EQ_INT(t.count, 3);
	CHECK_STR(t.manifest_root, ROOT_HEX);
	CHECK_STR(t.request, SG_FX_STMT_ID);
	CHECK_STR(t.digest_alg, "");

	fill_grant(&s);
	CHECK_EQ_INT(sg_statement_build(&s, &text, &len), 0);
	CHECK_STR(text, grant_good);
	free(text);
	memset(&t, 0x5a, sizeof(t));
	CHECK_EQ_INT(sg_statement_parse(grant_good, strlen(grant_good), &t),
	    0);
	CHECK(memcmp(&s, &t, sizeof(s)) == 0);
	CHECK_EQ_INT(t.kind, SG_KIND_GRANT);
	CHECK_EQ_INT(t.count, 100);
	CHECK_STR(t.pattern, "dist/*.tar.gz");
	CHECK_STR(t.manifest_root, "");

	/* The bounds of count, and the longest pattern. */
	fill_release(&s);
	s.count = SG_RELEASE_MAX;
	CHECK_EQ_INT(sg_statement_build(&s, &text, &len), 0);
	CHECK_EQ_INT(sg_statement_parse(text, len, &t), 0);
	CHECK_EQ_INT(t.count, SG_RELEASE_MAX);
	free(text);
	fill_grant(&s);
	s.count = SG_GRANT_MAX;
	memset(s.pattern, '*', SG_PATTERN_MAX);
	s.pattern[SG_PATTERN_MAX] = '\0';
	CHECK_EQ_INT(sg_statement_build(&s, &text, &len), 0);
	CHECK_EQ_INT(sg_statement_parse(text, len, &t), 0);
	CHECK(memcmp(&s, &t, sizeof(s)) == 0);
	free(text);
}

static void
test_kind_build_refuses(void)
{
	struct sg_statement s;
	char *text = NULL;
	size_t len = 0;

#define KIND_REFUSED(fillfn, mut) do {					\
	fillfn(&s);							\
	mut;								\
	text = NULL;							\
	CHECK_EQ_INT(sg_statement_build(&s, &text, &len), SG_ERR_INVALID); \
	CHECK(text == NULL);						\
} while (0)

	/* Counts out of range. */
	KIND_REFUSED(fill_release, s.count = 0);
	KIND_REFUSED(fill_release, s.count = SG_RELEASE_MAX + 1);
	KIND_REFUSED(fill_grant, s.count = 0);
	KIND_REFUSED(fill_grant, s.count = SG_GRANT_MAX + 1);
	/* The root: upper case, short, missing. */
	KIND_REFUSED(fill_release, s.manifest_root[0] = 'D');
	KIND_REFUSED(fill_release, s.manifest_root[63] = '\0');
	KIND_REFUSED(fill_release, s.manifest_root[0] = '\0');
	/* Bad patterns. */
	KIND_REFUSED(fill_grant, s.pattern[0] = '\0');
	KIND_REFUSED(fill_grant, strcpy(s.pattern, "a b"));
	KIND_REFUSED(fill_grant, strcpy(s.pattern, "a\n"));
	KIND_REFUSED(fill_grant, memset(s.pattern, 'a', sizeof(s.pattern)));
	/* Another kind's fields must be empty. */
	KIND_REFUSED(fill_release, strcpy(s.digest_alg, "sha256"));
	KIND_REFUSED(fill_release, strcpy(s.digest_hex, SG_FX_STMT_DIGEST));
	KIND_REFUSED(fill_release, strcpy(s.pattern, "*"));
	KIND_REFUSED(fill_grant, strcpy(s.digest_alg, "sha256"));
	KIND_REFUSED(fill_grant, strcpy(s.digest_hex, SG_FX_STMT_DIGEST));
	KIND_REFUSED(fill_grant, strcpy(s.manifest_root, ROOT_HEX));
	KIND_REFUSED(fill, s.count = 1);
	KIND_REFUSED(fill, strcpy(s.manifest_root, ROOT_HEX));
	KIND_REFUSED(fill, strcpy(s.pattern, "*"));
	/* A release or a grant without the kind's fields. */
	KIND_REFUSED(fill, s.kind = SG_KIND_RELEASE);
	KIND_REFUSED(fill, s.kind = SG_KIND_GRANT);
	KIND_REFUSED(fill_grant, s.kind = SG_KIND_RELEASE);
	KIND_REFUSED(fill_release, s.kind = SG_KIND_GRANT);
	KIND_REFUSED(fill, s.kind = (enum sg_kind)3);
	KIND_REFUSED(fill, s.kind = (enum sg_kind)-1);
	/* Common fields still checked. */
	KIND_REFUSED(fill_grant, strcpy(s.requester, "c i"));
	KIND_REFUSED(fill_release, strcpy(s.format, "pem"));
#undef KIND_REFUSED
}

static void
test_kind_parse_refuses(void)
{
	const char *r = release_good, *g = grant_good;

	/* Counts: zero, leading zero, sign, above the maximum. */
	CHECK(kind_parses_edited(r, " 3\n", " 0\n") != 0);
	CHECK(kind_parses_edited(r, " 3\n", " 03\n") != 0);
	CHECK(kind_parses_edited(r, " 3\n", " +3\n") != 0);
	CHECK(kind_parses_edited(r, " 3\n", " 10001\n") != 0);
	CHECK(kind_parses_edited(r, " 3\n", " 10000\n") == 0);
	CHECK(kind_parses_edited(r, " 3\n", "  3\n") != 0);
	CHECK(kind_parses_edited(r, " 3\n", " 3 \n") != 0);
	CHECK(kind_parses_edited(r, " 3\n", "\n") != 0);
	CHECK(kind_parses_edited(g, "count 100\n", "count 0\n") != 0);
	CHECK(kind_parses_edited(g, "count 100\n", "count 0100\n") != 0);
	CHECK(kind_parses_edited(g, "count 100\n", "count 100001\n") != 0);
	CHECK(kind_parses_edited(g, "count 100\n", "count 100000\n") == 0);
	CHECK(kind_parses_edited(g, "count 100\n", "count 18446744073709551616\n")
	    != 0);
	/* Root: upper case, short, other algorithm. */
	CHECK(kind_parses_edited(r, "sha256:dd", "sha256:DD") != 0);
	CHECK(kind_parses_edited(r, "sha256:dd", "sha256:d") != 0);
	CHECK(kind_parses_edited(r, "manifest sha256:", "manifest sha512:")
	    != 0);
	/* Pattern: a space inside, empty. */
	CHECK(kind_parses_edited(g, "dist/*.tar.gz", "dist/* .tar.gz") != 0);
	CHECK(kind_parses_edited(g, "artifact dist/*.tar.gz", "artifact ")
	    != 0);
	CHECK(kind_parses_edited(g, "dist/*.tar.gz", "*") == 0);
	/* Lines of one kind under another's head, or the id keyword of
	 * another kind. */
	CHECK(kind_parses_edited(r, "signgate release approval v1",
	    "signgate grant approval v1") != 0);
	CHECK(kind_parses_edited(r, "signgate release approval v1",
	    "signgate approval v1") != 0);
	CHECK(kind_parses_edited(g, "signgate grant approval v1",
	    "signgate release approval v1") != 0);
	CHECK(kind_parses_edited(r, "release 0123", "request 0123") != 0);
	CHECK(kind_parses_edited(r, "release 0123", "grant 0123") != 0);
	CHECK(kind_parses_edited(g, "grant 0123", "release 0123") != 0);
	CHECK(kind_parses_edited(good, "request 0123", "release 0123") != 0);
	/* Lines swapped, missing, extra. */
	CHECK(kind_parses_edited(g, "count 100\nartifact dist/*.tar.gz\n",
	    "artifact dist/*.tar.gz\ncount 100\n") != 0);
	CHECK(kind_parses_edited(g, "count 100\n", "") != 0);
	CHECK(kind_parses_edited(r, "format raw\n", "format raw\nformat raw\n")
	    != 0);
	CHECK(kind_parses_edited(r, "expires 1764417600\n",
	    "expires 1764417600") != 0);
	CHECK(kind_parses_edited(g, "format cms\n", "format cms\r\n") != 0);
	/* A request's artifact line inside a release. */
	CHECK(kind_parses_edited(r, "manifest sha256:" ROOT_HEX " 3",
	    "artifact sha256:" SG_FX_STMT_DIGEST) != 0);
}

/* Every one-byte change of a release's or a grant's statement either is
 * refused or is another canonical statement (parse then build gives it
 * back), and no cut of one parses. */
static void
test_kind_mutations(void)
{
	static const uint8_t vals[] = { 0x00, '\n', ' ', '0', '9', 'a', 'A',
	    ':', '*', 0x7f, 0xff };
	const char *texts[2] = { release_good, grant_good };
	struct sg_statement st;
	char buf[1024], *again = NULL;
	size_t t, i, k, n, alen = 0, accepted = 0, bad = 0;

	for (t = 0; t < 2; t++) {
		n = strlen(texts[t]);
		for (i = 0; i < n; i++) {
			for (k = 0; k < sizeof(vals); k++) {
				memcpy(buf, texts[t], n);
				if ((uint8_t)buf[i] == vals[k])
					continue;
				buf[i] = (char)vals[k];
				if (sg_statement_parse(buf, n, &st) != 0)
					continue;
				accepted++;
				if (sg_statement_build(&st, &again,
				    &alen) != 0 || alen != n ||
				    memcmp(again, buf, n) != 0)
					bad++;
				free(again);
				again = NULL;
			}
			if (sg_statement_parse(texts[t], i, &st) == 0)
				bad++;
		}
	}
	CHECK(accepted > 0);
	CHECK_EQ_INT(bad, 0);
}

static void
test_body(void)
{
	uint8_t *body = NULL;
	size_t len = 0, slen = 0;
	int approve = -1;

	CHECK_EQ_INT(sg_body_build(good, strlen(good), 1, &body, &len), 0);
	CHECK_EQ_INT(len, strlen(good) + strlen("decision approve\n"));
	CHECK(len >= 17 && memcmp(body + len - 17, "decision approve\n", 17) == 0);
	CHECK_EQ_INT(sg_body_split(body, len, &slen, &approve), 0);
	CHECK_EQ_INT(slen, strlen(good));
	CHECK_EQ_INT(approve, 1);
	CHECK(memcmp(body, good, slen) == 0);
	free(body);

	CHECK_EQ_INT(sg_body_build(good, strlen(good), 0, &body, &len), 0);
	CHECK_EQ_INT(sg_body_split(body, len, &slen, &approve), 0);
	CHECK_EQ_INT(slen, strlen(good));
	CHECK_EQ_INT(approve, 0);
	/* One byte more or less and it is no longer a body. */
	CHECK_EQ_INT(sg_body_split(body, len - 1, &slen, &approve),
	    SG_ERR_INVALID);
	free(body);

	/* A statement must end its last line; the decision must be exact. */
	CHECK_EQ_INT(sg_body_build("abc", 3, 1, &body, &len), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_body_build("", 0, 1, &body, &len), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_body_build(good, strlen(good), 2, &body, &len),
	    SG_ERR_INVALID);
	approve = -1;
	slen = 99;
	CHECK_EQ_INT(sg_body_split((const uint8_t *)"decision approve\n", 17,
	    &slen, &approve), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_body_split((const uint8_t *)"xdecision approve\n", 18,
	    &slen, &approve), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_body_split((const uint8_t *)"x\ndecision maybe\n", 17,
	    &slen, &approve), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_body_split((const uint8_t *)"x\ndecision approve", 18,
	    &slen, &approve), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_body_split((const uint8_t *)"x\ndecision approve\n\n",
	    20, &slen, &approve), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_body_split((const uint8_t *)"x\ndecision Approve\n",
	    19, &slen, &approve), SG_ERR_INVALID);
	CHECK_EQ_INT(slen, 99);
	CHECK_EQ_INT(approve, -1);
	/* Found by fuzzing: a statement of SG_STATEMENT_MAX + 1 bytes with
	 * the (shorter) reject line must be refused like the approve one. */
	{
		uint8_t big[SG_STATEMENT_MAX + 1 + 17];
		memset(big, 'a', SG_STATEMENT_MAX);
		big[SG_STATEMENT_MAX] = '\n';
		memcpy(big + SG_STATEMENT_MAX + 1, "decision reject\n", 16);
		CHECK_EQ_INT(sg_body_split(big, SG_STATEMENT_MAX + 1 + 16, &slen,
		    &approve), SG_ERR_TOO_LARGE);
		memcpy(big + SG_STATEMENT_MAX + 1, "decision approve\n", 17);
		CHECK_EQ_INT(sg_body_split(big, SG_STATEMENT_MAX + 1 + 17, &slen,
		    &approve), SG_ERR_TOO_LARGE);
		CHECK_EQ_INT(slen, 99);
	}
	CHECK_EQ_INT(sg_body_split((const uint8_t *)"x\ndecision reject\n", 18,
	    &slen, &approve), 0);
	CHECK_EQ_INT(slen, 2);
	CHECK_EQ_INT(approve, 0);
}

static void
test_pae(void)
{
	static const char want[] =
	    "DSSEv1 29 http://example.com/HelloWorld 11 hello world";
	uint8_t *pae = NULL;
	size_t len = 0;

	CHECK_EQ_INT(sg_dsse_pae("http://example.com/HelloWorld",
	    (const uint8_t *)"hello world", 11, &pae, &len), 0);
	CHECK_EQ_INT(len, strlen(want));
	CHECK(pae != NULL && memcmp(pae, want, strlen(want)) == 0);
	free(pae);

	CHECK_EQ_INT(sg_dsse_pae("t", NULL, 0, &pae, &len), 0);
	CHECK_EQ_INT(len, strlen("DSSEv1 1 t 0 "));
	CHECK(memcmp(pae, "DSSEv1 1 t 0 ", len) == 0);
	free(pae);

	/* Binary bodies (a NUL inside) are counted in bytes. */
	CHECK_EQ_INT(sg_dsse_pae(SG_DSSE_TYPE, (const uint8_t *)"a\0b", 3,
	    &pae, &len), 0);
	CHECK_EQ_INT(len, strlen("DSSEv1 41 " SG_DSSE_TYPE " 3 ") + 3);
	CHECK(memcmp(pae, "DSSEv1 41 " SG_DSSE_TYPE " 3 a\0b", len) == 0);
	free(pae);
}

static char *
envelope(const char *payload_b64, const char *sig_b64)
{
	char *out = NULL;

	if (asprintf(&out, "{\"payloadType\":\"" SG_DSSE_TYPE "\","
	    "\"payload\":\"%s\",\"signatures\":[{\"keyid\":\"alice\","
	    "\"sig\":\"%s\"}]}", payload_b64, sig_b64) < 0)
		return NULL;
	return out;
}

static void
test_envelope_round_trip(void)
{
	static const uint8_t sig[] = { 0x30, 0x06, 0x02, 0x01, 0x01, 0x02,
	    0x01, 0x02, 0x00, 0xff };
	uint8_t *body = NULL;
	size_t blen = 0;
	char *json = NULL, err[256];
	struct sg_envelope e;

	CHECK_EQ_INT(sg_body_build(good, strlen(good), 1, &body, &blen), 0);
	CHECK_EQ_INT(sg_envelope_build(SG_DSSE_TYPE, body, blen, "alice",
	    sig, sizeof(sig), &json), 0);
	CHECK(json != NULL && strncmp(json, "{\"payloadType\":", 15) == 0);
	memset(&e, 0, sizeof(e));
	CHECK_EQ_INT(sg_envelope_parse(json, strlen(json), &e, err,
	    sizeof(err)), 0);
	CHECK_STR(e.payload_type, SG_DSSE_TYPE);
	CHECK_STR(e.keyid, "alice");
	CHECK(e.payload_len == blen && memcmp(e.payload, body, blen) == 0);
	CHECK(e.sig_len == sizeof(sig) && memcmp(e.sig, sig, sizeof(sig)) == 0);
	sg_envelope_clear(&e);
	CHECK(e.payload == NULL && e.sig == NULL && e.payload_len == 0);
	sg_envelope_clear(&e);   /* twice is fine */
	sg_envelope_clear(NULL);
	free(json);

	/* Member order and whitespace do not matter to the parser. */
	json = strdup(" { \"signatures\" : [ { \"sig\" : \"AQ==\" , "
	    "\"keyid\" : \"bob\" } ] , \"payload\" : \"eA==\" , "
	    "\"payloadType\" : \"x\" } \n");
	CHECK_EQ_INT(sg_envelope_parse(json, strlen(json), &e, NULL, 0), 0);
	CHECK_STR(e.keyid, "bob");
	CHECK(e.payload_len == 1 && e.payload[0] == 'x');
	sg_envelope_clear(&e);
	free(json);

	/* Builder refuses what the parser would refuse. */
	CHECK_EQ_INT(sg_envelope_build(SG_DSSE_TYPE, body, blen, "",
	    sig, sizeof(sig), &json), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_envelope_build(SG_DSSE_TYPE, body, blen, "al ice",
	    sig, sizeof(sig), &json), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_envelope_build(SG_DSSE_TYPE, body, blen, "alice",
	    sig, 0, &json), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_envelope_build("a\nb", body, blen, "alice",
	    sig, sizeof(sig), &json), SG_ERR_INVALID);
	free(body);
}

/* Parses and checks both the refusal and that errbuf names `field`. */
static void
refuse(const char *json, int want, const char *field, int line)
{
	struct sg_envelope e;
	char err[256];
	int r;

	memset(&e, 0x5a, sizeof(e));
	err[0] = '\0';
	r = sg_envelope_parse(json, strlen(json), &e, err, sizeof(err));
	if (r != want || strstr(err, field) == NULL ||
	    (want != 0 && (unsigned char)e.keyid[0] != 0x5a)) {
		fprintf(stderr, "  line %d: got %d (%s), want %d naming %s\n",
		    line, r, err, want, field);
		sg_test_failed_checks++;
	}
	if (r == 0)
		sg_envelope_clear(&e);
}
#define REFUSE(j, f) refuse((j), SG_ERR_INVALID, (f), __LINE__)

static void
test_envelope_refuses(void)
{
	const char *TY = "\"payloadType\":\"t\"";
	const char *PL = "\"payload\":\"eA==\"";
	const char *S1 = "{\"keyid\":\"alice\",\"sig\":\"AQ==\"}";
	char buf[SG_ENVELOPE_MAX + 64];
	char *j;

#define J(...) (snprintf(buf, sizeof(buf), __VA_ARGS__), buf)
	/* Baseline accepted. */
	j = J("{%s,%s,\"signatures\":[%s]}", TY, PL, S1);
	refuse(j, 0, "ok", __LINE__);

	/* Duplicate keys at both levels. */
	REFUSE(J("{%s,%s,%s,\"signatures\":[%s]}", TY, PL, PL, S1), "JSON");
	REFUSE(J("{%s,%s,\"signatures\":[{\"keyid\":\"a\",\"keyid\":\"b\","
	    "\"sig\":\"AQ==\"}]}", TY, PL), "JSON");
	/* Extra fields. */
	REFUSE(J("{%s,%s,\"signatures\":[%s],\"extra\":1}", TY, PL, S1),
	    "extra: unknown field");
	REFUSE(J("{%s,%s,\"signatures\":[{\"keyid\":\"a\",\"sig\":\"AQ==\","
	    "\"cert\":\"x\"}]}", TY, PL), "signatures[0].cert");
	/* Signatures: two, none, not an array, not objects. */
	REFUSE(J("{%s,%s,\"signatures\":[%s,%s]}", TY, PL, S1, S1),
	    "signatures");
	REFUSE(J("{%s,%s,\"signatures\":[]}", TY, PL), "signatures");
	REFUSE(J("{%s,%s,\"signatures\":%s}", TY, PL, S1), "signatures");
	REFUSE(J("{%s,%s,\"signatures\":[\"x\"]}", TY, PL), "signatures[0]");
	/* Missing members. */
	REFUSE(J("{%s,\"signatures\":[%s]}", TY, S1), "payload: missing");
	REFUSE(J("{%s,\"signatures\":[%s]}", PL, S1), "payloadType: missing");
	REFUSE(J("{%s,%s}", TY, PL), "signatures: missing");
	REFUSE(J("{%s,%s,\"signatures\":[{\"sig\":\"AQ==\"}]}", TY, PL),
	    "signatures[0].keyid: missing");
	REFUSE(J("{%s,%s,\"signatures\":[{\"keyid\":\"a\"}]}", TY, PL),
	    "signatures[0].sig: missing");
	/* Bad base64: alphabet, padding, whitespace, non-canonical bits,
	 * empty. */
	REFUSE(J("{%s,\"payload\":\"eA=\",\"signatures\":[%s]}", TY, S1),
	    "payload");
	REFUSE(J("{%s,\"payload\":\"e A==\",\"signatures\":[%s]}", TY, S1),
	    "payload");
	REFUSE(J("{%s,\"payload\":\"eB==\",\"signatures\":[%s]}", TY, S1),
	    "payload");
	REFUSE(J("{%s,\"payload\":\"e-A=\",\"signatures\":[%s]}", TY, S1),
	    "payload");
	REFUSE(J("{%s,\"payload\":\"\",\"signatures\":[%s]}", TY, S1),
	    "payload");
	REFUSE(J("{%s,%s,\"signatures\":[{\"keyid\":\"a\",\"sig\":\"AQ\"}]}",
	    TY, PL), "signatures[0].sig");
	REFUSE(J("{%s,%s,\"signatures\":[{\"keyid\":\"a\",\"sig\":\"\"}]}",
	    TY, PL), "signatures[0].sig");
	/* Wrong types. */
	REFUSE(J("{\"payloadType\":1,%s,\"signatures\":[%s]}", PL, S1),
	    "payloadType");
	REFUSE(J("{%s,\"payload\":null,\"signatures\":[%s]}", TY, S1),
	    "payload: must be a string");
	REFUSE(J("{%s,%s,\"signatures\":[{\"keyid\":7,\"sig\":\"AQ==\"}]}",
	    TY, PL), "signatures[0].keyid");
	REFUSE(J("{%s,%s,\"signatures\":[{\"keyid\":\"a\",\"sig\":[]}]}",
	    TY, PL), "signatures[0].sig: must be a string");
	REFUSE("[1,2]", "object");
	/* Empty keyid, odd keyid, empty or control-character type. */
	REFUSE(J("{%s,%s,\"signatures\":[{\"keyid\":\"\",\"sig\":\"AQ==\"}]}",
	    TY, PL), "signatures[0].keyid");
	REFUSE(J("{%s,%s,\"signatures\":[{\"keyid\":\"a b\",\"sig\":\"AQ==\"}]}",
	    TY, PL), "signatures[0].keyid");
	REFUSE(J("{\"payloadType\":\"\",%s,\"signatures\":[%s]}", PL, S1),
	    "payloadType");
	REFUSE(J("{\"payloadType\":\"a\\u0001\",%s,\"signatures\":[%s]}", PL,
	    S1), "payloadType");
	/* Not JSON, trailing data, NUL inside a string. */
	REFUSE(J("{%s,%s,\"signatures\":[%s]} x", TY, PL, S1), "JSON");
	REFUSE(J("{%s,%s,\"signatures\":[%s]", TY, PL, S1), "JSON");
	REFUSE(J("{\"payloadType\":\"a\\u0000b\",%s,\"signatures\":[%s]}", PL,
	    S1), "JSON");
	REFUSE("", "JSON");
#undef J

	/* Oversize input is refused before it is parsed. */
	memset(buf, ' ', SG_ENVELOPE_MAX + 1);
	buf[SG_ENVELOPE_MAX + 1] = '\0';
	refuse(buf, SG_ERR_TOO_LARGE, "larger", __LINE__);

	/* An embedded NUL in the input bytes is not valid JSON. */
	{
		struct sg_envelope e;
		char in[] = "{\"payloadType\":\"t\"\0}";
		CHECK(sg_envelope_parse(in, sizeof(in) - 1, &e, NULL, 0) != 0);
	}
}

static void
test_envelope_payload_of_built_envelope_is_exact(void)
{
	char *env = envelope("c2lnbmdhdGU=", "MAYCAQECAQI=");
	struct sg_envelope e;

	CHECK(env != NULL);
	CHECK_EQ_INT(sg_envelope_parse(env, strlen(env), &e, NULL, 0), 0);
	CHECK(e.payload_len == 8 && memcmp(e.payload, "signgate", 8) == 0);
	CHECK_EQ_INT(e.sig_len, 8);
	sg_envelope_clear(&e);
	free(env);
}

/* A reject's reason line: after "decision reject" only, text of 1 to
 * SG_REJECT_REASON_MAX bytes, the last line. */
static void
test_body_reason(void)
{
	static const char reason[] =
	    "Signed build differs: r\xc3\xa9sum\xc3\xa9";
	char got[SG_REJECT_REASON_MAX + 1];
	char long_reason[SG_REJECT_REASON_MAX + 2];
	uint8_t *body = NULL;
	size_t len = 0, slen = 0;
	int approve = -1;
	char *t;

	CHECK_EQ_INT(sg_body_build_reason(good, strlen(good), 0, reason, &body,
	    &len), 0);
	CHECK_EQ_INT(len, strlen(good) + 16 + 7 + strlen(reason) + 1);
	if (asprintf(&t, "%sdecision reject\nreason %s\n", good, reason) < 0)
		abort();
	CHECK(len == strlen(t) && memcmp(body, t, len) == 0);
	free(t);
	memset(got, 'x', sizeof(got));
	CHECK_EQ_INT(sg_body_split_reason(body, len, &slen, &approve, got,
	    sizeof(got)), 0);
	CHECK_EQ_INT(slen, strlen(good));
	CHECK_EQ_INT(approve, 0);
	CHECK_STR(got, reason);
	/* sg_body_split() reads the same body without the reason. */
	approve = -1;
	CHECK_EQ_INT(sg_body_split(body, len, &slen, &approve), 0);
	CHECK_EQ_INT(approve, 0);
	CHECK_EQ_INT(slen, strlen(good));
	/* Cut anywhere inside the reason line: no longer a body (except
	 * where the cut leaves a valid shorter body, which cannot happen
	 * without its final LF). */
	CHECK_EQ_INT(sg_body_split(body, len - 1, &slen, &approve),
	    SG_ERR_INVALID);
	free(body);

	/* No reason: "" */
	CHECK_EQ_INT(sg_body_build_reason(good, strlen(good), 0, NULL, &body,
	    &len), 0);
	got[0] = 'x';
	CHECK_EQ_INT(sg_body_split_reason(body, len, &slen, &approve, got,
	    sizeof(got)), 0);
	CHECK_STR(got, "");
	/* A buffer too small for any reason is refused up front. */
	CHECK_EQ_INT(sg_body_split_reason(body, len, &slen, &approve, got,
	    SG_REJECT_REASON_MAX), SG_ERR_INVALID);
	free(body);

	/* An approve takes no reason; a reason must be text. */
	CHECK_EQ_INT(sg_body_build_reason(good, strlen(good), 1, "why", &body,
	    &len), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_body_build_reason(good, strlen(good), 0, "", &body,
	    &len), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_body_build_reason(good, strlen(good), 0, "two\nlines",
	    &body, &len), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_body_build_reason(good, strlen(good), 0,
	    "bidi \xe2\x80\xae", &body, &len), SG_ERR_INVALID);
	memset(long_reason, 'r', sizeof(long_reason) - 1);
	long_reason[sizeof(long_reason) - 1] = '\0';
	CHECK_EQ_INT(sg_body_build_reason(good, strlen(good), 0, long_reason,
	    &body, &len), SG_ERR_INVALID);
	long_reason[SG_REJECT_REASON_MAX] = '\0';
	CHECK_EQ_INT(sg_body_build_reason(good, strlen(good), 0, long_reason,
	    &body, &len), 0);
	CHECK_EQ_INT(sg_body_split_reason(body, len, &slen, &approve, got,
	    sizeof(got)), 0);
	CHECK_EQ_INT(strlen(got), SG_REJECT_REASON_MAX);
	free(body);

	/* Hand-written bodies the parser must refuse. */
	{
		static const char *const bad[] = {
			"x\ndecision approve\nreason no\n",
			"x\nreason no\n",
			"x\ndecision reject\nreason \n",
			"x\ndecision reject\nreason a\tb\n",
			"x\ndecision reject\nreason a\n\n",
			"x\ndecision reject\nreason a\nreason b\n",
			"x\ndecision reject\nreason a",
			"x\ndecision reject\nReason a\n",
			"x\ndecision reject\nreason  \xff\n",
		};
		size_t i;

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			slen = 99;
			if (sg_body_split_reason((const uint8_t *)bad[i],
			    strlen(bad[i]), &slen, &approve, got,
			    sizeof(got)) == 0) {
				fprintf(stderr, "  accepted: %s\n", bad[i]);
				CHECK(0);
			}
			CHECK_EQ_INT(slen, 99);
		}
	}
	/* A reason line that looks like one, inside the statement, is the
	 * statement's business: the decision line still ends the body. */
	CHECK_EQ_INT(sg_body_split_reason((const uint8_t *)
	    "reason x\ndecision reject\n", 25, &slen, &approve, got,
	    sizeof(got)), 0);
	CHECK_EQ_INT(slen, 9);
	CHECK_STR(got, "");
}

/* The "webauthn" member of the signature: built, parsed back, and each
 * of its rules. */
static void
test_envelope_webauthn(void)
{
	static const uint8_t sig[] = { 0x30, 0x06, 0x02, 0x01, 0x01, 0x02,
	    0x01, 0x02 };
	static const uint8_t id[] = { 0xfb, 0xff, 0x00, 0x10 };
	static const uint8_t ad[37] = { 0x49, 0x96, [32] = 0x05, [36] = 1 };
	static const char cd[] = "{\"type\":\"webauthn.get\"}";
	struct sg_envelope_webauthn w;
	struct sg_envelope e;
	uint8_t *body = NULL, got[16];
	size_t blen = 0, glen = 0;
	char *json = NULL, *j, err[256];

	CHECK_EQ_INT(sg_body_build(good, strlen(good), 1, &body, &blen), 0);
	w.cred_id = (uint8_t *)id;
	w.cred_id_len = sizeof(id);
	w.authdata = (uint8_t *)ad;
	w.authdata_len = sizeof(ad);
	w.client_data = (uint8_t *)cd;
	w.client_data_len = strlen(cd);
	CHECK_EQ_INT(sg_envelope_build_webauthn(SG_DSSE_TYPE, body, blen,
	    "gina", sig, sizeof(sig), &w, &json), 0);
	CHECK(json != NULL && strstr(json, "\"webauthn\":{\"credential_id\":"
	    "\"-_8AEA\",\"authenticator_data\":\"SZYA") != NULL);
	memset(&e, 0, sizeof(e));
	CHECK_EQ_INT(sg_envelope_parse(json, strlen(json), &e, err,
	    sizeof(err)), 0);
	CHECK(e.has_webauthn);
	CHECK(e.webauthn.cred_id_len == sizeof(id) &&
	    memcmp(e.webauthn.cred_id, id, sizeof(id)) == 0);
	CHECK(e.webauthn.authdata_len == sizeof(ad) &&
	    memcmp(e.webauthn.authdata, ad, sizeof(ad)) == 0);
	CHECK(e.webauthn.client_data_len == strlen(cd) &&
	    memcmp(e.webauthn.client_data, cd, strlen(cd)) == 0);
	CHECK(e.sig_len == sizeof(sig));
	sg_envelope_clear(&e);
	CHECK(e.webauthn.cred_id == NULL && !e.has_webauthn);
	/* The id alone, cheaply. */
	CHECK_EQ_INT(sg_envelope_webauthn_id(json, strlen(json), got,
	    sizeof(got), &glen), 0);
	CHECK(glen == sizeof(id) && memcmp(got, id, sizeof(id)) == 0);
	free(json);

	/* Without it: no member, and no id. */
	CHECK_EQ_INT(sg_envelope_build_webauthn(SG_DSSE_TYPE, body, blen,
	    "gina", sig, sizeof(sig), NULL, &json), 0);
	CHECK(json != NULL && strstr(json, "webauthn") == NULL);
	CHECK_EQ_INT(sg_envelope_parse(json, strlen(json), &e, err,
	    sizeof(err)), 0);
	CHECK(!e.has_webauthn && e.webauthn.cred_id == NULL);
	sg_envelope_clear(&e);
	glen = 99;
	CHECK_EQ_INT(sg_envelope_webauthn_id(json, strlen(json), got,
	    sizeof(got), &glen), 0);
	CHECK_EQ_INT(glen, 0);
	free(json);

	/* The builder refuses empty or oversize parts. */
	w.client_data_len = SG_WEBAUTHN_CLIENT_DATA_MAX + 1;
	CHECK_EQ_INT(sg_envelope_build_webauthn(SG_DSSE_TYPE, body, blen,
	    "gina", sig, sizeof(sig), &w, &json), SG_ERR_INVALID);
	w.client_data_len = strlen(cd);
	w.cred_id_len = 0;
	CHECK_EQ_INT(sg_envelope_build_webauthn(SG_DSSE_TYPE, body, blen,
	    "gina", sig, sizeof(sig), &w, &json), SG_ERR_INVALID);
	free(body);

#define WA_ENV(inner) \
	"{\"payloadType\":\"t\",\"payload\":\"eA==\",\"signatures\":[" \
	"{\"keyid\":\"gina\",\"sig\":\"AQ==\",\"webauthn\":" inner "}]}"
#define WA_OK_ID "\"credential_id\":\"AQID\""
#define WA_OK_AD "\"authenticator_data\":\"AQID\""
#define WA_OK_CD "\"client_data_json\":\"e30=\""
	j = WA_ENV("{" WA_OK_ID "," WA_OK_AD "," WA_OK_CD "}");
	CHECK_EQ_INT(sg_envelope_parse(j, strlen(j), &e, err, sizeof(err)), 0);
	sg_envelope_clear(&e);
	REFUSE(WA_ENV("[]"), "signatures[0].webauthn: must be an object");
	REFUSE(WA_ENV("null"), "signatures[0].webauthn: must be an object");
	REFUSE(WA_ENV("{" WA_OK_ID "," WA_OK_AD "," WA_OK_CD ",\"x\":1}"),
	    "signatures[0].webauthn.x: unknown field");
	REFUSE(WA_ENV("{" WA_OK_ID "," WA_OK_AD "," WA_OK_CD
	    ",\"signature\":\"AQ==\"}"),
	    "signatures[0].webauthn.signature: unknown field");
	REFUSE(WA_ENV("{" WA_OK_AD "," WA_OK_CD "}"),
	    "signatures[0].webauthn.credential_id: missing");
	REFUSE(WA_ENV("{" WA_OK_ID "," WA_OK_CD "}"),
	    "signatures[0].webauthn.authenticator_data: missing");
	REFUSE(WA_ENV("{" WA_OK_ID "," WA_OK_AD "}"),
	    "signatures[0].webauthn.client_data_json: missing");
	REFUSE(WA_ENV("{\"credential_id\":\"AQ==\"," WA_OK_AD "," WA_OK_CD
	    "}"), "signatures[0].webauthn.credential_id: must be base64url");
	REFUSE(WA_ENV("{\"credential_id\":\"+/8\"," WA_OK_AD "," WA_OK_CD
	    "}"), "signatures[0].webauthn.credential_id: must be base64url");
	REFUSE(WA_ENV("{\"credential_id\":\"\"," WA_OK_AD "," WA_OK_CD "}"),
	    "signatures[0].webauthn.credential_id: must be 1 to 1023 bytes");
	REFUSE(WA_ENV("{\"credential_id\":7," WA_OK_AD "," WA_OK_CD "}"),
	    "signatures[0].webauthn.credential_id: must be a string");
	REFUSE(WA_ENV("{" WA_OK_ID ",\"authenticator_data\":\"AQI-\","
	    WA_OK_CD "}"), "signatures[0].webauthn.authenticator_data: must "
	    "be standard base64");
	REFUSE(WA_ENV("{" WA_OK_ID "," WA_OK_AD ",\"client_data_json\":"
	    "\"e30\"}"), "signatures[0].webauthn.client_data_json: must be "
	    "standard base64");
	REFUSE(WA_ENV("{" WA_OK_ID "," WA_OK_AD "," WA_OK_CD ","
	    WA_OK_CD "}"), "not valid JSON");
	/* Oversize parts. */
	{
		size_t n = (SG_WEBAUTHN_CLIENT_DATA_MAX + 3) / 3 * 4 + 4, i;
		char *big = malloc(n + 1), *doc = NULL;

		if (big == NULL)
			abort();
		for (i = 0; i < n; i++)
			big[i] = 'A';
		big[n] = '\0';
		if (asprintf(&doc, WA_ENV("{" WA_OK_ID "," WA_OK_AD ","
		    "\"client_data_json\":\"%s\"}"), big) < 0)
			abort();
		REFUSE(doc, "signatures[0].webauthn.client_data_json: must be "
		    "1 to 2048 bytes");
		free(doc);
		n = (SG_WEBAUTHN_CRED_ID_MAX + 2) / 3 * 4 + 4;
		big[n] = '\0';
		if (asprintf(&doc, WA_ENV("{\"credential_id\":\"%s\","
		    WA_OK_AD "," WA_OK_CD "}"), big) < 0)
			abort();
		REFUSE(doc, "signatures[0].webauthn.credential_id: must be 1 "
		    "to 1023 bytes");
		free(doc);
		free(big);
	}
#undef WA_ENV
}

SG_TEST_MAIN("dsse",
    T(test_kind_statements),
    T(test_kind_build_refuses),
    T(test_kind_parse_refuses),
    T(test_kind_mutations),
    T(test_statement_build_exact),
    T(test_statement_round_trip),
    T(test_statement_build_refuses),
    T(test_statement_parse_refuses),
    T(test_statement_parse_failure_leaves_output),
    T(test_body),
    T(test_pae),
    T(test_envelope_round_trip),
    T(test_envelope_refuses),
    T(test_envelope_payload_of_built_envelope_is_exact),
    T(test_body_reason),
    T(test_envelope_webauthn))
