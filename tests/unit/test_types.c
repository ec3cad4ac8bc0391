/*
 * Tests for the request states and signature formats: every value has
 * one spelling and reads back as itself, nothing else parses (no prefix,
 * no other case, no trailing byte), only pending is not final, and the
 * format values are distinct bits, so that a key's formats are a mask.
 */
#include <stdint.h>
#include <string.h>

#include "sg_err.h"
#include "sg_test.h"
#include "sg_types.h"

static void
test_state_round_trip(void)
{
	static const char *const names[] = { "pending", "signed", "rejected",
	    "expired", "failed", "cancelled", "active", "revoked" };
	enum sg_req_state s, got;
	size_t i = 0;

	for (s = SG_REQ_STATE_FIRST; s <= SG_REQ_STATE_LAST; s++, i++) {
		CHECK(i < sizeof(names) / sizeof(names[0]));
		if (i >= sizeof(names) / sizeof(names[0]))
			break;
		CHECK_STR(sg_req_state_str(s), names[i]);
		CHECK(strlen(sg_req_state_str(s)) < SG_REQ_STATE_SIZE);
		got = SG_REQ_NONE;
		CHECK_EQ_INT(sg_req_state_parse(names[i], &got), 0);
		CHECK_EQ_INT(got, s);
	}
	CHECK_EQ_INT(i, sizeof(names) / sizeof(names[0]));
	CHECK_STR(sg_req_state_str(SG_REQ_NONE), "?");
	CHECK_STR(sg_req_state_str((enum sg_req_state)(SG_REQ_STATE_LAST + 1)),
	    "?");
	CHECK_STR(sg_req_state_str((enum sg_req_state)-1), "?");
}

static void
test_state_refusals(void)
{
	static const char *const bad[] = { "", "PENDING", "pend", "pendingx",
	    "pending ", " signed", "cancel", "?", "none" };
	enum sg_req_state got = SG_REQ_SIGNED;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ_INT(sg_req_state_parse(bad[i], &got), SG_ERR_INVALID);
		CHECK_EQ_INT(got, SG_REQ_SIGNED);       /* untouched */
	}
	CHECK_EQ_INT(sg_req_state_parse(NULL, &got), SG_ERR_INVALID);
	CHECK_EQ_INT(got, SG_REQ_SIGNED);
}

static void
test_state_final(void)
{
	CHECK(!sg_req_state_final(SG_REQ_NONE));
	CHECK(!sg_req_state_final(SG_REQ_PENDING));
	CHECK(sg_req_state_final(SG_REQ_SIGNED));
	CHECK(sg_req_state_final(SG_REQ_REJECTED));
	CHECK(sg_req_state_final(SG_REQ_EXPIRED));
	CHECK(sg_req_state_final(SG_REQ_FAILED));
	CHECK(sg_req_state_final(SG_REQ_CANCELLED));
	CHECK(!sg_req_state_final(SG_REQ_ACTIVE));
	CHECK(sg_req_state_final(SG_REQ_REVOKED));
	CHECK(!sg_req_state_final((enum sg_req_state)(SG_REQ_STATE_LAST + 1)));
	CHECK(!sg_req_state_valid(SG_REQ_NONE));
	CHECK(sg_req_state_valid(SG_REQ_PENDING));
	CHECK(sg_req_state_valid(SG_REQ_CANCELLED));
	CHECK(!sg_req_state_valid((enum sg_req_state)(SG_REQ_STATE_LAST + 1)));
}

static void
test_format(void)
{
	enum sg_format f = SG_FORMAT_CMS;

	CHECK_STR(sg_format_str(SG_FORMAT_RAW), "raw");
	CHECK_STR(sg_format_str(SG_FORMAT_CMS), "cms");
	CHECK_STR(sg_format_str((enum sg_format)0), "?");
	CHECK_STR(sg_format_str((enum sg_format)(SG_FORMAT_RAW |
	    SG_FORMAT_CMS)), "?");
	CHECK(strlen("raw") < SG_FORMAT_SIZE && strlen("cms") < SG_FORMAT_SIZE);
	CHECK_EQ_INT(sg_format_parse("raw", &f), 0);
	CHECK_EQ_INT(f, SG_FORMAT_RAW);
	CHECK_EQ_INT(sg_format_parse("cms", &f), 0);
	CHECK_EQ_INT(f, SG_FORMAT_CMS);
	CHECK_EQ_INT(sg_format_parse("CMS", &f), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_format_parse("raw\n", &f), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_format_parse("pem", &f), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_format_parse("", &f), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_format_parse(NULL, &f), SG_ERR_INVALID);
	CHECK(sg_format_valid(SG_FORMAT_RAW) && sg_format_valid(SG_FORMAT_CMS));
	CHECK(!sg_format_valid((enum sg_format)0));
	CHECK(!sg_format_valid((enum sg_format)(SG_FORMAT_RAW |
	    SG_FORMAT_CMS)));
	CHECK_EQ_INT(f, SG_FORMAT_CMS);
	/* Distinct bits: a set of formats is their OR. */
	CHECK_EQ_INT(SG_FORMAT_RAW & SG_FORMAT_CMS, 0);
	CHECK(SG_FORMAT_RAW != 0 && (SG_FORMAT_RAW & (SG_FORMAT_RAW - 1)) == 0);
	CHECK(SG_FORMAT_CMS != 0 && (SG_FORMAT_CMS & (SG_FORMAT_CMS - 1)) == 0);
}

static void
test_kind(void)
{
	static const char *const names[] = { "request", "release", "grant" };
	enum sg_kind k = SG_KIND_GRANT;
	size_t i;

	for (i = 0; i < 3; i++) {
		CHECK_STR(sg_kind_str((enum sg_kind)i), names[i]);
		CHECK(strlen(names[i]) < SG_KIND_SIZE);
		CHECK_EQ_INT(sg_kind_parse(names[i], &k), 0);
		CHECK_EQ_INT(k, (enum sg_kind)i);
	}
	CHECK_EQ_INT(SG_KIND_REQUEST, 0);
	CHECK_STR(sg_kind_str((enum sg_kind)3), "?");
	CHECK_STR(sg_kind_str((enum sg_kind)-1), "?");
	k = SG_KIND_RELEASE;
	CHECK_EQ_INT(sg_kind_parse("Grant", &k), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_kind_parse("", &k), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_kind_parse("grants", &k), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_kind_parse(NULL, &k), SG_ERR_INVALID);
	CHECK_EQ_INT(k, SG_KIND_RELEASE);
}

SG_TEST_MAIN("types",
    T(test_kind),
    T(test_state_round_trip),
    T(test_state_refusals),
    T(test_state_final),
    T(test_format))
