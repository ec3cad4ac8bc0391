/*
 * `signgate grant request` and `signgate grant revoke`.
 *
 * A grant lets its requester have up to N files signed with one key, each
 * at once and without asking the officers again, until a time T, for
 * names matching a pattern; the officers approve the grant itself (its
 * statement: key, count, pattern, format, T).  `grant request` asks for
 * one and checks that the statement the server wrote (what the officers
 * will sign) says what was asked: key, count, pattern, format, and an end
 * no later than the lifetime asked for.  `grant revoke` ends one early
 * (an officer who may approve it).  Signing under a grant is `sign
 * --grant ID` (cli_sign.c).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "sg_cli.h"
#include "sg_dsse.h"
#include "sg_err.h"
#include "sg_manifest.h"
#include "sg_text.h"
#include "sg_util.h"

/* The statement's end may lie this far past now + lifetime (clocks). */
#define CLOCK_SLACK 300
#define DURATION_MAX (366ULL * 86400)

enum {
	OPT_KEY = SG_OPT_CMD,
	OPT_COUNT,
	OPT_FOR,
	OPT_ARTIFACT,
	OPT_FORMAT,
	OPT_REASON,
};

int
sg_cli_duration(const char *s, uint64_t *ret)
{
	char num[24];
	size_t n = s != NULL ? strlen(s) : 0;
	uint64_t mult = 1, v;

	if (n == 0 || n >= sizeof(num))
		return SG_ERR_INVALID;
	switch (s[n - 1]) {
	case 'd':
		mult *= 24;
		/* FALLTHROUGH */
	case 'h':
		mult *= 60;
		/* FALLTHROUGH */
	case 'm':
		mult *= 60;
		/* FALLTHROUGH */
	case 's':
		n--;
		break;
	}
	if (n == 0)
		return SG_ERR_INVALID;
	memcpy(num, s, n);
	num[n] = '\0';
	if (sg_parse_u64(num, 1, DURATION_MAX, &v) != 0 ||
	    v > DURATION_MAX / mult)
		return SG_ERR_INVALID;
	*ret = v * mult;
	return 0;
}

struct grant_args {
	const char *key;
	const char *pattern;
	const char *reason;
	enum sg_format format;
	uint64_t count;
	uint64_t lifetime;
	int help;
};

static int
grant_option(void *arg, int opt, const char *v)
{
	struct grant_args *a = arg;

	switch (opt) {
	case OPT_KEY:
		a->key = v;
		return 0;
	case OPT_ARTIFACT:
		a->pattern = v;
		return 0;
	case OPT_REASON:
		a->reason = v;
		return 0;
	case OPT_COUNT:
		if (sg_parse_u64(v, 1, SG_GRANT_MAX, &a->count) == 0)
			return 0;
		fprintf(stderr, "signgate: --count: 1 to %d\n", SG_GRANT_MAX);
		return SG_EXIT_USAGE;
	case OPT_FOR:
		if (sg_cli_duration(v, &a->lifetime) == 0)
			return 0;
		fprintf(stderr, "signgate: --for: a duration such as 45s, "
		    "30m, 2h or 7d\n");
		return SG_EXIT_USAGE;
	case OPT_FORMAT:
		if (sg_format_parse(v, &a->format) == 0)
			return 0;
		fprintf(stderr, "signgate: --format: raw or cms\n");
		return SG_EXIT_USAGE;
	}
	return 1;
}

static int
grant_parse(int argc, char **argv, struct sg_cli_conf *conf,
    struct grant_args *a)
{
	static const struct option own[] = {
		{ "key", required_argument, NULL, OPT_KEY },
		{ "count", required_argument, NULL, OPT_COUNT },
		{ "for", required_argument, NULL, OPT_FOR },
		{ "artifact", required_argument, NULL, OPT_ARTIFACT },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "reason", required_argument, NULL, OPT_REASON },
		{ NULL, 0, NULL, 0 },
	};
	const struct sg_cli_cmdline cl = { "grant", own, NULL, grant_option,
	    a };

	memset(a, 0, sizeof(*a));
	a->format = SG_FORMAT_RAW;
	a->pattern = "*";
	return sg_cli_getopt(argc, argv, &cl, conf, &a->help);
}

/* The grant statement says what was asked; err says what differs. */
static int
grant_statement_check(const json_t *req, const struct grant_args *a,
    time_t asked_at, struct sg_statement *st, char *err, size_t errlen)
{
	const char *id = sg_cli_jstr(req, "id");

	if (sg_cli_kind_statement(req, st, err, errlen) != 0)
		return SG_ERR_VERIFY;
	if (st->kind != SG_KIND_GRANT || !sg_request_id_ok(id) ||
	    strcmp(st->request, id) != 0)
		return sg_err_set(err, errlen, SG_ERR_VERIFY, "the answer is "
		    "not the grant's");
	if (strcmp(st->key, a->key) != 0 || st->count != a->count ||
	    strcmp(st->pattern, a->pattern) != 0 ||
	    strcmp(st->format, sg_format_str(a->format)) != 0)
		return sg_err_set(err, errlen, SG_ERR_VERIFY, "the statement "
		    "names key %s, %llu signatures of %s for %s, not what was "
		    "asked", st->key, (unsigned long long)st->count,
		    st->format, sg_cli_esc(st->pattern));
	if (st->expires > (long long)asked_at + (long long)a->lifetime +
	    CLOCK_SLACK)
		return sg_err_set(err, errlen, SG_ERR_VERIFY, "the statement's "
		    "end is later than the %llu s asked for",
		    (unsigned long long)a->lifetime);
	return 0;
}

static void
print_grant(const json_t *req, const struct sg_statement *st)
{
	char until[32];

	sg_time_rfc3339((time_t)st->expires, until, sizeof(until));
	printf("grant: %s\n", st->request);
	printf("state: %s\n", sg_cli_esc(sg_cli_jstr(req, "state")));
	printf("key: %s spki sha256:%s\n", st->key, st->spki_sha256);
	printf("count: %llu\n", (unsigned long long)st->count);
	printf("artifact: %s\n", sg_cli_esc(st->pattern));
	printf("format: %s\n", st->format);
	printf("until: %s\n", until);
	sg_cli_print_statement(sg_cli_jstr(req, "statement"));
}

static int
grant_request(int argc, char **argv, struct sg_cli_conf *conf)
{
	struct grant_args a;
	struct sg_statement st;
	struct sg_cli_http *h = NULL;
	json_t *body = NULL, *req = NULL;
	char *text = NULL, err[1024];
	time_t asked_at;
	int ex;

	if ((ex = grant_parse(argc, argv, conf, &a)) != 0)
		return ex;
	if (a.help) {
		sg_cli_usage(stdout, "grant");
		return SG_EXIT_OK;
	}
	if (a.key == NULL || !sg_name_ok(a.key, SG_NAME_LEN_MAX) ||
	    a.count == 0 || a.lifetime == 0 || a.reason != NULL ||
	    optind != argc) {
		fprintf(stderr, "signgate: usage: signgate grant request --key "
		    "NAME --count N --for DURATION [--artifact PATTERN] "
		    "[--format raw|cms]\n");
		return SG_EXIT_USAGE;
	}
	if (!sg_pattern_valid(a.pattern)) {
		fprintf(stderr, "signgate: --artifact: 1 to %d printable ASCII "
		    "characters without spaces ('*' any run, '?' one)\n",
		    SG_PATTERN_MAX);
		return SG_EXIT_USAGE;
	}
	ex = SG_EXIT_LOCAL;
	if ((body = json_pack("{s:s, s:I, s:I, s:s, s:s}", "key", a.key,
	    "count", (json_int_t)a.count, "lifetime", (json_int_t)a.lifetime,
	    "artifact", a.pattern, "format", sg_format_str(a.format))) ==
	    NULL || (text = json_dumps(body, JSON_COMPACT)) == NULL)
		goto out;
	if ((ex = sg_cli_connect(conf, &h)) != 0)
		goto out;
	asked_at = time(NULL);
	if ((ex = sg_cli_api(h, "POST", "/v1/grants", text, NULL, 0, &req,
	    NULL)) != 0)
		goto out;
	if (grant_statement_check(req, &a, asked_at, &st, err,
	    sizeof(err)) != 0) {
		sg_cli_print_errors(err);
		fprintf(stderr, "signgate: the server's grant is not the one "
		    "asked for\n");
		ex = SG_EXIT_SERVER;
		goto out;
	}
	print_grant(req, &st);
	ex = SG_EXIT_OK;
out:
	ex = sg_cli_flush(ex);
	free(text);
	json_decref(body);
	json_decref(req);
	sg_cli_http_free(h);
	return ex;
}

static int
grant_revoke(int argc, char **argv, struct sg_cli_conf *conf)
{
	struct grant_args a;
	struct sg_cli_http *h = NULL;
	struct sg_text_fault tf;
	json_t *body = NULL, *req = NULL;
	const char *id;
	char path[128], why[128], *text = NULL;
	int ex;

	if ((ex = grant_parse(argc, argv, conf, &a)) != 0)
		return ex;
	if (a.help) {
		sg_cli_usage(stdout, "grant");
		return SG_EXIT_OK;
	}
	if ((id = sg_cli_id_operand(argc, argv, "grant revoke",
	    " --reason TEXT")) == NULL)
		return SG_EXIT_USAGE;
	if (a.reason == NULL || *a.reason == '\0' || strlen(a.reason) > 256) {
		fprintf(stderr, "signgate: grant revoke: --reason TEXT (1 to "
		    "256 bytes) is required\n");
		return SG_EXIT_USAGE;
	}
	if (sg_text_ok(a.reason, strlen(a.reason), &tf) != 0) {
		sg_text_fault_describe(&tf, why, sizeof(why));
		fprintf(stderr, "signgate: --reason: %s\n", why);
		return SG_EXIT_USAGE;
	}
	ex = SG_EXIT_LOCAL;
	if ((body = json_pack("{s:s}", "reason", a.reason)) == NULL ||
	    (text = json_dumps(body, JSON_COMPACT)) == NULL)
		goto out;
	if ((ex = sg_cli_connect(conf, &h)) != 0)
		goto out;
	snprintf(path, sizeof(path), "/v1/grants/%s/revoke", id);
	if ((ex = sg_cli_api(h, "POST", path, text, NULL, 0, &req,
	    NULL)) != 0 || (ex = sg_cli_expect_request(req, id)) != 0)
		goto out;
	printf("grant: %s\n", id);
	printf("state: %s\n", sg_cli_esc(sg_cli_jstr(req, "state")));
	ex = SG_EXIT_OK;
out:
	ex = sg_cli_flush(ex);
	free(text);
	json_decref(body);
	json_decref(req);
	sg_cli_http_free(h);
	return ex;
}

int
sg_cli_cmd_grant(int argc, char **argv, struct sg_cli_conf *conf)
{
	if (argc < 2 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0) {
		sg_cli_usage(argc < 2 ? stderr : stdout, "grant");
		return argc < 2 ? SG_EXIT_USAGE : SG_EXIT_OK;
	}
	if (strcmp(argv[1], "request") == 0)
		return grant_request(argc - 1, argv + 1, conf);
	if (strcmp(argv[1], "revoke") == 0)
		return grant_revoke(argc - 1, argv + 1, conf);
	fprintf(stderr, "signgate: grant: no such subcommand: %s (request or "
	    "revoke)\n", sg_cli_esc(argv[1]));
	return SG_EXIT_USAGE;
}
