/*
 * The spellings of request states and signature formats (see
 * include/sg_types.h).  Each table is the only place a spelling is
 * written; the parsers compare whole strings, so a prefix or a value with
 * trailing bytes is not a state.
 */
#include <stddef.h>
#include <string.h>

#include "sg_err.h"
#include "sg_types.h"

static const char *const state_names[] = {
	[SG_REQ_PENDING] = "pending",
	[SG_REQ_SIGNED] = "signed",
	[SG_REQ_REJECTED] = "rejected",
	[SG_REQ_EXPIRED] = "expired",
	[SG_REQ_FAILED] = "failed",
	[SG_REQ_CANCELLED] = "cancelled",
	[SG_REQ_ACTIVE] = "active",
	[SG_REQ_REVOKED] = "revoked",
};

static const char *const kind_names[] = {
	[SG_KIND_REQUEST] = "request",
	[SG_KIND_RELEASE] = "release",
	[SG_KIND_GRANT] = "grant",
};

static const struct {
	enum sg_format format;
	const char *name;
} format_names[] = {
	{ SG_FORMAT_RAW, "raw" },
	{ SG_FORMAT_CMS, "cms" },
};

const char *
sg_req_state_str(enum sg_req_state s)
{
	if (s < SG_REQ_STATE_FIRST || s > SG_REQ_STATE_LAST)
		return "?";
	return state_names[s];
}

int
sg_req_state_parse(const char *s, enum sg_req_state *ret)
{
	int i;

	if (s == NULL)
		return SG_ERR_INVALID;
	for (i = SG_REQ_STATE_FIRST; i <= SG_REQ_STATE_LAST; i++) {
		if (strcmp(s, state_names[i]) == 0) {
			*ret = (enum sg_req_state)i;
			return 0;
		}
	}
	return SG_ERR_INVALID;
}

int
sg_req_state_final(enum sg_req_state s)
{
	return s > SG_REQ_PENDING && s <= SG_REQ_STATE_LAST &&
	    s != SG_REQ_ACTIVE;
}

int
sg_req_state_valid(enum sg_req_state s)
{
	return s >= SG_REQ_STATE_FIRST && s <= SG_REQ_STATE_LAST;
}

const char *
sg_format_str(enum sg_format f)
{
	size_t i;

	for (i = 0; i < sizeof(format_names) / sizeof(format_names[0]); i++)
		if (format_names[i].format == f)
			return format_names[i].name;
	return "?";
}

int
sg_format_parse(const char *s, enum sg_format *ret)
{
	size_t i;

	if (s == NULL)
		return SG_ERR_INVALID;
	for (i = 0; i < sizeof(format_names) / sizeof(format_names[0]); i++) {
		if (strcmp(s, format_names[i].name) == 0) {
			*ret = format_names[i].format;
			return 0;
		}
	}
	return SG_ERR_INVALID;
}

int
sg_format_valid(enum sg_format f)
{
	size_t i;

	for (i = 0; i < sizeof(format_names) / sizeof(format_names[0]); i++)
		if (format_names[i].format == f)
			return 1;
	return 0;
}

const char *
sg_kind_str(enum sg_kind k)
{
	if (k < SG_KIND_REQUEST || k > SG_KIND_GRANT)
		return "?";
	return kind_names[k];
}

int
sg_kind_parse(const char *s, enum sg_kind *ret)
{
	int i;

	if (s == NULL)
		return SG_ERR_INVALID;
	for (i = SG_KIND_REQUEST; i <= SG_KIND_GRANT; i++) {
		if (strcmp(s, kind_names[i]) == 0) {
			*ret = (enum sg_kind)i;
			return 0;
		}
	}
	return SG_ERR_INVALID;
}
