/*
 * Tests for sg_policy_check, the policy author's mode of the parser: every
 * problem is reported with its line, parsing goes on after a failing
 * statement without cascading, a valid file gives the same policy (and
 * hash) as sg_policy_parse, and sg_policy_parse still stops at the first
 * problem.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_err.h"
#include "sg_policy.h"
#include "sg_test.h"

#define MAXREP 32

struct seen {
	int n;
	int line[MAXREP];
	char msg[MAXREP][256];
};

static void
collect(void *arg, const char *file, int line, const char *msg)
{
	struct seen *s = arg;

	CHECK(strcmp(file, "t.policy") == 0);
	if (s->n < MAXREP) {
		s->line[s->n] = line;
		snprintf(s->msg[s->n], sizeof(s->msg[0]), "%s", msg);
	}
	s->n++;
}

static int
check_text(const char *text, struct seen *s, struct sg_policy **ret)
{
	memset(s, 0, sizeof(*s));
	return sg_policy_check("t.policy", text, strlen(text), collect, s, ret);
}

/* Five independent mistakes in five places: all five, in file order, and
 * nothing else (no echo of a skipped block's lines). */
static void
test_every_problem(void)
{
	static const char text[] =
	    "policy x\n"			/* 1 */
	    "version 1\n"
	    "key k\n"				/* 3: missing object */
	    "    token t\n"
	    "    bogus 1\n"			/* 5: unknown keyword */
	    "end\n"
	    "principal p!\n"			/* 7: bad name, skipped */
	    "    roles officer\n"
	    "    nonsense here\n"
	    "end\n"
	    "group g\n"				/* 11: no members */
	    "end\n"
	    "foo\n";				/* 13: unknown */
	struct seen s;

	CHECK_EQ_INT(check_text(text, &s, NULL), SG_ERR_INVALID);
	CHECK_EQ_INT(s.n, 5);
	CHECK_EQ_INT(s.line[0], 5);
	CHECK(strstr(s.msg[0], "unknown keyword 'bogus'") != NULL);
	CHECK_EQ_INT(s.line[1], 3);
	CHECK(strstr(s.msg[1], "missing 'object' or 'id'") != NULL);
	CHECK_EQ_INT(s.line[2], 7);
	CHECK(strstr(s.msg[2], "not a valid name") != NULL);
	CHECK_EQ_INT(s.line[3], 11);
	CHECK(strstr(s.msg[3], "missing 'members'") != NULL);
	CHECK_EQ_INT(s.line[4], 13);
	CHECK(strstr(s.msg[4], "unknown keyword 'foo'") != NULL);
}

/* sg_policy_parse on the same text reports the first problem only. */
static void
test_parse_stops_at_first(void)
{
	static const char text[] =
	    "policy x\nversion 1\nfoo\nbar\n";
	struct sg_policy *p = NULL;
	struct seen s;
	char err[512];

	CHECK_EQ_INT(sg_policy_parse("t.policy", text, strlen(text), &p, err,
	    sizeof(err)), SG_ERR_INVALID);
	CHECK(p == NULL);
	CHECK(strcmp(err, "t.policy:3: unknown keyword 'foo'") == 0);
	CHECK_EQ_INT(check_text(text, &s, NULL), SG_ERR_INVALID);
	CHECK_EQ_INT(s.n, 2);
	CHECK_EQ_INT(s.line[1], 4);
}

/* Names pointing at other blocks: each bad reference is reported, but
 * only when every block parsed. */
static void
test_resolution_problems(void)
{
	static const char text[] =
	    "policy x\nversion 1\n"
	    "group g\n    members nobody\nend\n"		/* 3-5 */
	    "key k\n"						/* 6 */
	    "    token t\n    object o\n    algorithm ecdsa-p256\n"
	    "    formats raw\n    countries CH\n"
	    "    requesters ghost\n"				/* 12 */
	    "    require missing 1\n"				/* 13 */
	    "end\n";
	struct seen s;

	CHECK_EQ_INT(check_text(text, &s, NULL), SG_ERR_INVALID);
	CHECK_EQ_INT(s.n, 3);
	CHECK_EQ_INT(s.line[0], 4);
	CHECK(strstr(s.msg[0], "principal 'nobody' is not defined") != NULL);
	CHECK_EQ_INT(s.line[1], 12);
	CHECK(strstr(s.msg[1], "principal 'ghost' is not defined") != NULL);
	CHECK_EQ_INT(s.line[2], 13);
	CHECK(strstr(s.msg[2], "group 'missing' is not defined") != NULL);

	/* With a block error elsewhere, references are not looked at. */
	{
		char *t2;

		if (asprintf(&t2, "%sfoo\n", text) < 0)
			return;
		CHECK_EQ_INT(check_text(t2, &s, NULL), SG_ERR_INVALID);
		CHECK_EQ_INT(s.n, 1);
		free(t2);
	}
}

/* An unclosed block, a missing header, bytes that are not text. */
static void
test_structure(void)
{
	struct seen s;
	static const char nul_text[] = "policy x\nversion 1\nfo\0o\nbar\n";

	CHECK_EQ_INT(check_text("group g\n    members a\n", &s, NULL),
	    SG_ERR_INVALID);
	/* the block before 'policy', the missing 'end', the missing
	 * 'policy' */
	CHECK_EQ_INT(s.n, 3);
	memset(&s, 0, sizeof(s));
	CHECK_EQ_INT(sg_policy_check("t.policy", nul_text,
	    sizeof(nul_text) - 1, collect, &s, NULL), SG_ERR_INVALID);
	CHECK_EQ_INT(s.n, 2);
	CHECK_EQ_INT(s.line[0], 3);
	CHECK(strstr(s.msg[0], "NUL byte") != NULL);
	CHECK_EQ_INT(s.line[1], 4);
	CHECK_EQ_INT(sg_policy_check("t.policy", "", 0, NULL, NULL, NULL),
	    SG_ERR_INVALID);
}

/* A valid file: no report, and the same policy and hash as parse. */
static void
test_valid(void)
{
	static const char text[] =
	    "policy x\nversion 3\n"
	    "key k\n"
	    "    token t\n    object o\n    algorithm ecdsa-p256\n"
	    "    formats raw\n    countries CH\n"
	    "end\n";
	struct sg_policy *a = NULL, *b = NULL;
	struct seen s;
	char err[256];

	CHECK_EQ_INT(check_text(text, &s, &a), 0);
	CHECK_EQ_INT(s.n, 0);
	CHECK_EQ_INT(sg_policy_parse("t.policy", text, strlen(text), &b, err,
	    sizeof(err)), 0);
	CHECK(a != NULL && b != NULL);
	if (a != NULL && b != NULL) {
		CHECK(strcmp(sg_policy_sha256_hex(a),
		    sg_policy_sha256_hex(b)) == 0);
		CHECK_EQ_INT(sg_policy_version(a), 3);
		CHECK(sg_policy_key(a, "k") != NULL);
	}
	sg_policy_free(a);
	sg_policy_free(b);
	/* ret may be NULL: check only. */
	CHECK_EQ_INT(check_text(text, &s, NULL), 0);
}

/* The release and grant keywords: every mistake reported at its line,
 * require-grant without allow-grants blamed on the require-grant line,
 * and a require-grant group resolved like a require group. */
static void
test_kind_keywords(void)
{
	static const char text[] =
	    "policy x\nversion 1\n"
	    "key a\n"						/* 3 */
	    "    token t\n    object o\n    algorithm ecdsa-p256\n"
	    "    formats raw\n    countries CH\n"
	    "    allow-releases 0\n"				/* 9 */
	    "    allow-grants 10 1y\n"				/* 10 */
	    "end\n"
	    "key b\n"						/* 12 */
	    "    token t\n    object o\n    algorithm ecdsa-p256\n"
	    "    formats raw\n    countries CH\n"
	    "    require-grant g 1\n"				/* 18 */
	    "    allow-releases 5\n"
	    "    allow-releases 6\n"				/* 20 */
	    "end\n";
	static const char text2[] =
	    "policy x\nversion 1\n"
	    "key c\n"
	    "    token t\n    object o\n    algorithm ecdsa-p256\n"
	    "    formats raw\n    countries CH\n"
	    "    allow-grants 100000 30d\n"
	    "    require-grant nowhere 1\n"			/* 10 */
	    "end\n";
	/* A failed allow-grants is reported once, not again by the
	 * require-grant it would have allowed. */
	static const char text3[] =
	    "policy x\nversion 1\n"
	    "key d\n"
	    "    token t\n    object o\n    algorithm ecdsa-p256\n"
	    "    formats raw\n    countries CH\n"
	    "    require-grant g 1\n"
	    "    allow-grants 0 1h\n"				/* 10 */
	    "end\n";
	struct seen s;

	CHECK_EQ_INT(check_text(text, &s, NULL), SG_ERR_INVALID);
	CHECK_EQ_INT(s.n, 4);
	CHECK_EQ_INT(s.line[0], 9);
	CHECK(strstr(s.msg[0], "key 'a': allow-releases: '0' is not a "
	    "number of artifacts from 1 to 10000") != NULL);
	CHECK_EQ_INT(s.line[1], 10);
	CHECK(strstr(s.msg[1], "key 'a': allow-grants: '1y' is not a "
	    "duration") != NULL);
	CHECK_EQ_INT(s.line[2], 20);
	CHECK(strstr(s.msg[2], "allow-releases: repeated (first at line "
	    "19)") != NULL);
	CHECK_EQ_INT(s.line[3], 18);
	CHECK(strstr(s.msg[3], "key 'b': require-grant: only with "
	    "'allow-grants'") != NULL);

	CHECK_EQ_INT(check_text(text2, &s, NULL), SG_ERR_INVALID);
	CHECK_EQ_INT(s.n, 1);
	CHECK_EQ_INT(s.line[0], 10);
	CHECK(strstr(s.msg[0], "key 'c': require-grant: group 'nowhere' is "
	    "not defined") != NULL);

	CHECK_EQ_INT(check_text(text3, &s, NULL), SG_ERR_INVALID);
	CHECK_EQ_INT(s.n, 1);
	CHECK_EQ_INT(s.line[0], 10);
	CHECK(strstr(s.msg[0], "allow-grants: count '0'") != NULL);
}

SG_TEST_MAIN("policy_check",
    T(test_kind_keywords),
    T(test_every_problem),
    T(test_parse_stops_at_first),
    T(test_resolution_problems),
    T(test_structure),
    T(test_valid))
