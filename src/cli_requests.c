/*
 * `signgate pending`, `signgate show` and `signgate cancel`: what officers
 * look at before they sign, and the way out for a request nobody should
 * sign.  `show` prints every field of the request and the statement
 * text itself, and refuses (exit 1) when the two disagree, because an
 * officer who reads one and signs the other has been deceived.  The same
 * printing is used by `approve` and `reject` right before the prompt.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sg_cli.h"
#include "sg_err.h"
#include "sg_text.h"

#define PAGES_MAX 1000
#define PAGE_LIMIT 50

/* Percent-encodes everything but RFC 3986 unreserved characters. */
static int
pct_append(char *out, size_t cap, const char *s)
{
	static const char hexd[] = "0123456789ABCDEF";
	size_t o = strlen(out);
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
		    *p == '_' || *p == '~';
		if (o + (plain ? 1 : 3) >= cap)
			return SG_ERR_TOO_LARGE;
		if (plain) {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hexd[*p >> 4];
			out[o++] = hexd[*p & 15];
		}
	}
	out[o] = '\0';
	return 0;
}

void
sg_cli_print_cancelled(const json_t *req)
{
	const json_t *c = json_object_get(req, "cancelled");

	if (!json_is_object(c))
		return;
	printf("cancelled: by %s at %s: %s\n",
	    sg_cli_esc(sg_cli_jstr(c, "by")), sg_cli_esc(sg_cli_jstr(c, "at")),
	    sg_cli_text(sg_cli_jstr(c, "reason")));
}

void
sg_cli_print_statement(const char *text)
{
	const char *p = text, *nl;
	char line[SG_STATEMENT_MAX + 1];
	size_t n;

	printf("statement:\n");
	while (p != NULL && *p != '\0') {
		nl = strchr(p, '\n');
		n = nl != NULL ? (size_t)(nl - p) : strlen(p);
		if (n > SG_STATEMENT_MAX)
			n = SG_STATEMENT_MAX;
		memcpy(line, p, n);
		line[n] = '\0';
		printf("  %s\n", sg_cli_esc(line));
		p = nl != NULL ? nl + 1 : NULL;
	}
}

/* A JSON integer member for display (-1 when absent). */
static long long
jint(const json_t *obj, const char *name)
{
	const json_t *v = json_object_get(obj, name);

	return json_is_integer(v) ? (long long)json_integer_value(v) : -1LL;
}

/*
 * The kind and what a release or grant is about; 1 for a single request
 * (which then shows its digest), 0 otherwise.
 */
static int
print_kind(const json_t *req)
{
	const json_t *g = json_object_get(req, "grant");
	const json_t *r = json_object_get(req, "release");
	enum sg_kind kind = SG_KIND_REQUEST;

	(void)sg_cli_req_kind(req, &kind);
	if (kind == SG_KIND_REQUEST) {
		/* A request signed under a grant names it. */
		if (json_is_object(g))
			printf("grant: %s signature %lld\n",
			    sg_cli_esc(sg_cli_jstr(g, "id")),
			    jint(g, "sequence"));
		return 1;
	}
	printf("kind: %s\n", sg_kind_str(kind));
	if (kind == SG_KIND_RELEASE) {
		printf("release: %lld artifacts, manifest sha256:%s, %lld "
		    "signed\n", jint(r, "count"),
		    sg_cli_esc(sg_cli_jstr(r, "manifest_sha256")),
		    jint(r, "signed"));
		if (sg_cli_jstr(r, "name") != NULL)
			printf("release.name: %s\n",
			    sg_cli_text(sg_cli_jstr(r, "name")));
		if (sg_cli_jstr(r, "version") != NULL)
			printf("release.version: %s\n",
			    sg_cli_text(sg_cli_jstr(r, "version")));
	} else
		printf("grant: %lld signatures, %lld used, names matching "
		    "%s, until %s\n", jint(g, "count"), jint(g, "used"),
		    sg_cli_esc(sg_cli_jstr(g, "artifact")),
		    sg_cli_esc(sg_cli_jstr(g, "until")));
	return 0;
}

void
sg_cli_print_request(const json_t *req, const struct sg_statement *st)
{
	const json_t *dig = json_object_get(req, "digest");
	const json_t *art = json_object_get(req, "artifact");
	const json_t *pol = json_object_get(req, "policy");
	const json_t *apps = json_object_get(req, "approvals");
	const json_t *v, *ver;
	const char *k;
	char missing[1024];
	size_t i;

	printf("request: %s\n", sg_cli_esc(sg_cli_jstr(req, "id")));
	printf("state: %s\n", sg_cli_esc(sg_cli_jstr(req, "state")));
	if (st != NULL)
		printf("key: %s spki sha256:%s\n",
		    sg_cli_esc(sg_cli_jstr(req, "key")), st->spki_sha256);
	else
		printf("key: %s\n", sg_cli_esc(sg_cli_jstr(req, "key")));
	if (print_kind(req))
		printf("digest: %s:%s\n",
		    sg_cli_esc(sg_cli_jstr(dig, "algorithm")),
		    sg_cli_esc(sg_cli_jstr(dig, "value")));
	printf("format: %s\n", sg_cli_esc(sg_cli_jstr(req, "format")));
	if (json_is_object(art)) {
		json_object_foreach((json_t *)art, k, v)
			printf("artifact.%s: %s\n", sg_cli_esc(k),
			    json_is_string(v) ?
			    sg_cli_text(json_string_value(v)) :
			    "(not a string)");
	}
	printf("requester: %s\n", sg_cli_esc(sg_cli_jstr(req, "requester")));
	printf("created: %s\n", sg_cli_esc(sg_cli_jstr(req, "created_at")));
	printf("expires: %s\n", sg_cli_esc(sg_cli_jstr(req, "expires_at")));
	ver = json_is_object(pol) ? json_object_get(pol, "version") : NULL;
	printf("policy: %s@%lld sha256:%s\n",
	    sg_cli_esc(sg_cli_jstr(pol, "name")),
	    json_is_integer(ver) ? (long long)json_integer_value(ver) : -1LL,
	    sg_cli_esc(sg_cli_jstr(pol, "sha256")));
	if (sg_cli_jstr(req, "error") != NULL)
		printf("error: %s\n", sg_cli_esc(sg_cli_jstr(req, "error")));
	sg_cli_print_cancelled(req);
	if (json_is_array(apps)) {
		json_array_foreach(apps, i, v) {
			printf("approval: %s %s %s%s",
			    sg_cli_esc(sg_cli_jstr(v, "officer")),
			    sg_cli_esc(sg_cli_jstr(v, "decision")),
			    sg_cli_esc(sg_cli_jstr(v, "at")),
			    json_is_false(json_object_get(v, "counts")) ?
			    " (does not count)" : "");
			if (sg_cli_jstr(v, "reason") != NULL)
				printf(": %s", sg_cli_esc(sg_cli_jstr(v,
				    "reason")));
			printf("\n");
		}
	}
	sg_cli_missing(req, missing, sizeof(missing));
	printf("missing: %s\n", missing);
	sg_cli_print_statement(sg_cli_jstr(req, "statement"));
}

/* "name@version" of a request's artifact, escaped as text, for the
 * table. */
static void
artifact_label(const json_t *req, char *out, size_t cap)
{
	const json_t *art = json_object_get(req, "artifact");
	const json_t *rel = json_object_get(req, "release");
	const json_t *g = json_object_get(req, "grant");
	const char *name = sg_cli_jstr(art, "name");
	const char *version = sg_cli_jstr(art, "version");
	enum sg_kind kind = SG_KIND_REQUEST;

	(void)sg_cli_req_kind(req, &kind);
	if (kind == SG_KIND_RELEASE) {
		name = sg_cli_jstr(rel, "name");
		version = sg_cli_jstr(rel, "version");
		snprintf(out, cap, "release(%lld)%s%s%s%s", jint(rel, "count"),
		    name ? ":" : "", name ? sg_cli_text(name) : "",
		    version ? "@" : "", version ? sg_cli_text(version) : "");
		return;
	}
	if (kind == SG_KIND_GRANT) {
		snprintf(out, cap, "grant(%lld):%s", jint(g, "count"),
		    sg_cli_esc(sg_cli_jstr(g, "artifact")));
		return;
	}
	snprintf(out, cap, "%s%s%s", sg_cli_text(name), version ? "@" : "",
	    version ? sg_cli_text(version) : "");
}

struct pending_args {
	const char *key;
	int json;
};

static int
pending_option(void *arg, int opt, const char *val)
{
	struct pending_args *pa = arg;

	switch (opt) {
	case SG_OPT_CMD:
		pa->key = val;
		return 0;
	case SG_OPT_CMD + 1:
		pa->json = 1;
		return 0;
	}
	return 1;
}

/* The command line of `pending`: SG_EXIT_OK to go on, or an exit status
 * (-1 after --help, which has been answered). */
static int
pending_options(int argc, char **argv, struct sg_cli_conf *conf,
    const char **ret_key, int *ret_json)
{
	static const struct option own[] = {
		{ "key", required_argument, NULL, SG_OPT_CMD },
		{ "json", no_argument, NULL, SG_OPT_CMD + 1 },
		{ NULL, 0, NULL, 0 },
	};
	struct pending_args pa = { NULL, 0 };
	const struct sg_cli_cmdline cl = { "pending", own, NULL,
	    pending_option, &pa };
	int ex, help;

	if ((ex = sg_cli_getopt(argc, argv, &cl, conf, &help)) != 0)
		return ex;
	if (help) {
		sg_cli_usage(stdout, "pending");
		return -1;
	}
	if (optind != argc || (pa.key != NULL && !sg_name_ok(pa.key, 63))) {
		fprintf(stderr, "signgate: usage: signgate pending [--key NAME] "
		    "[--json]\n");
		return SG_EXIT_USAGE;
	}
	*ret_key = pa.key;
	*ret_json = pa.json;
	return SG_EXIT_OK;
}

/* Every page of pending requests (of key, if not NULL) into all. */
static int
fetch_pending(struct sg_cli_http *h, const char *key, json_t *all)
{
	const char *cursor = NULL;
	json_t *page = NULL, *arr;
	char path[1024];
	size_t pages;
	int ex = SG_EXIT_LOCAL;

	for (pages = 0; pages < PAGES_MAX; pages++) {
		snprintf(path, sizeof(path), "/v1/requests?state=pending"
		    "&limit=%d%s%s", PAGE_LIMIT, key ? "&key=" : "",
		    key ? key : "");
		if (cursor != NULL) {
			if (strlen(path) + 8 >= sizeof(path)) {
				ex = SG_EXIT_LOCAL;
				goto out;
			}
			strcat(path, "&cursor=");
			if (pct_append(path, sizeof(path), cursor) != 0) {
				fprintf(stderr, "signgate: cursor too long\n");
				ex = SG_EXIT_SERVER;
				goto out;
			}
		}
		json_decref(page);
		page = NULL;
		if ((ex = sg_cli_api(h, "GET", path, NULL, NULL, 0, &page,
		    NULL)) != 0)
			goto out;
		arr = json_object_get(page, "requests");
		if (!json_is_array(arr)) {
			fprintf(stderr, "signgate: malformed response: no "
			    "requests\n");
			ex = SG_EXIT_SERVER;
			goto out;
		}
		if (json_array_extend(all, arr) != 0) {
			ex = SG_EXIT_LOCAL;
			goto out;
		}
		cursor = sg_cli_jstr(page, "next_cursor");
		if (cursor == NULL || *cursor == '\0')
			break;
	}
	if (pages == PAGES_MAX) {
		fprintf(stderr, "signgate: more than %d pages; stopping\n",
		    PAGES_MAX);
		ex = SG_EXIT_SERVER;
		goto out;
	}
	ex = SG_EXIT_OK;
out:
	json_decref(page);
	return ex;
}

static int
print_pending_json(json_t *all)
{
	json_t *wrap;
	char *s = NULL;

	if ((wrap = json_pack("{s:O}", "requests", all)) == NULL ||
	    (s = json_dumps(wrap, JSON_INDENT(2))) == NULL) {
		json_decref(wrap);
		return SG_EXIT_LOCAL;
	}
	printf("%s\n", s);
	free(s);
	json_decref(wrap);
	return SG_EXIT_OK;
}

static void
print_pending_table(json_t *all)
{
	char art[256], missing[1024];
	json_t *req;
	size_t i;

	printf("%-32s %-12s %-24s %-10s %-20s %-20s %s\n", "ID", "KEY",
	    "ARTIFACT", "REQUESTER", "CREATED", "EXPIRES", "MISSING");
	json_array_foreach(all, i, req) {
		artifact_label(req, art, sizeof(art));
		sg_cli_missing(req, missing, sizeof(missing));
		printf("%-32s %-12s %-24s %-10s %-20s %-20s %s\n",
		    sg_cli_esc(sg_cli_jstr(req, "id")),
		    sg_cli_esc(sg_cli_jstr(req, "key")), art,
		    sg_cli_esc(sg_cli_jstr(req, "requester")),
		    sg_cli_esc(sg_cli_jstr(req, "created_at")),
		    sg_cli_esc(sg_cli_jstr(req, "expires_at")), missing);
	}
}

int
sg_cli_cmd_pending(int argc, char **argv, struct sg_cli_conf *conf)
{
	struct sg_cli_http *h = NULL;
	const char *key = NULL;
	json_t *all = NULL;
	int json = 0, ex;

	if ((ex = pending_options(argc, argv, conf, &key, &json)) != 0)
		return ex < 0 ? SG_EXIT_OK : ex;
	if ((ex = sg_cli_connect(conf, &h)) != 0)
		return ex;
	ex = SG_EXIT_LOCAL;
	if ((all = json_array()) == NULL)
		goto out;
	if ((ex = fetch_pending(h, key, all)) != SG_EXIT_OK)
		goto out;
	if (json)
		ex = print_pending_json(all);
	else {
		print_pending_table(all);
		ex = SG_EXIT_OK;
	}
out:
	ex = sg_cli_flush(ex);
	json_decref(all);
	sg_cli_http_free(h);
	return ex;
}

/*
 * A request signed under a grant was approved through the grant: it
 * shows either no statement of its own or the grant's, which must then
 * be the grant it names, on its key and format.  For display only
 * (`approve` never accepts this).  1 if so, with *has_st.
 */
static int
grant_signature_statement(const json_t *req, struct sg_statement *st,
    int *has_st)
{
	const json_t *g = json_object_get(req, "grant");
	const char *text = sg_cli_jstr(req, "statement");
	enum sg_kind kind;

	*has_st = 0;
	if (!json_is_object(g) || sg_cli_jstr(g, "id") == NULL ||
	    sg_cli_req_kind(req, &kind) != 0 || kind != SG_KIND_REQUEST)
		return 0;
	if (json_object_get(req, "statement") == NULL)
		return 1;
	if (text == NULL || sg_statement_parse(text, strlen(text), st) != 0 ||
	    st->kind != SG_KIND_GRANT ||
	    strcmp(st->request, sg_cli_jstr(g, "id")) != 0 ||
	    sg_cli_jstr(req, "key") == NULL ||
	    strcmp(st->key, sg_cli_jstr(req, "key")) != 0 ||
	    sg_cli_jstr(req, "format") == NULL ||
	    strcmp(st->format, sg_cli_jstr(req, "format")) != 0)
		return 0;
	*has_st = 1;
	return 1;
}

/* The request's statement agrees with the request, which is the one
 * asked for; else err lists why. */
static int
show_statement(const json_t *req, const char *id, struct sg_statement *st,
    int *has_st, char *err, size_t errlen)
{
	*has_st = 1;
	if (sg_cli_request_statement(req, st, err, errlen) != 0) {
		if (!grant_signature_statement(req, st, has_st))
			return 0;
		err[0] = '\0';
		return sg_cli_jstr(req, "id") != NULL &&
		    strcmp(sg_cli_jstr(req, "id"), id) == 0;
	}
	if (strcmp(st->request, id) != 0) {
		snprintf(err, errlen, "asked for request %s, got %s", id,
		    st->request);
		return 0;
	}
	return 1;
}

struct show_args {
	int json;
	int manifest;
};

static int
show_option(void *arg, int opt, const char *val)
{
	struct show_args *sa = arg;

	(void)val;
	if (opt == SG_OPT_CMD)
		sa->json = 1;
	else if (opt == SG_OPT_CMD + 1)
		sa->manifest = 1;
	else
		return 1;
	return 0;
}

/* `show --manifest`: the release's manifest, whose root and count were
 * checked against the statement before anything is printed. */
static int
show_manifest(struct sg_cli_http *h, const struct sg_statement *st)
{
	char **lines = NULL;
	size_t n = 0, i;
	int ex;

	if (st->kind != SG_KIND_RELEASE) {
		fprintf(stderr, "signgate: %s is not a release: only a release "
		    "has a manifest\n", st->request);
		return SG_EXIT_USAGE;
	}
	if ((ex = sg_cli_fetch_manifest(h, st, &lines, &n)) != 0)
		return ex;
	printf("manifest: sha256:%s %zu (matches the statement)\n",
	    st->manifest_root, n);
	for (i = 0; i < n; i++)
		printf("  %s\n", sg_cli_esc(lines[i]));
	free(lines);
	return SG_EXIT_OK;
}

int
sg_cli_cmd_show(int argc, char **argv, struct sg_cli_conf *conf)
{
	static const struct option own[] = {
		{ "json", no_argument, NULL, SG_OPT_CMD },
		{ "manifest", no_argument, NULL, SG_OPT_CMD + 1 },
		{ NULL, 0, NULL, 0 },
	};
	struct show_args sa = { 0, 0 };
	struct sg_cli_http *h = NULL;
	struct sg_cli_http_resp raw;
	struct sg_statement st;
	json_t *req = NULL;
	char path[128], err[2048];
	const char *id;
	int help, ex, ok, has_st;
	const struct sg_cli_cmdline cl = { "show", own, NULL, show_option,
	    &sa };

	memset(&raw, 0, sizeof(raw));
	if ((ex = sg_cli_getopt(argc, argv, &cl, conf, &help)) != 0)
		return ex;
	if (help) {
		sg_cli_usage(stdout, "show");
		return SG_EXIT_OK;
	}
	if ((id = sg_cli_id_operand(argc, argv, "show",
	    " [--json] [--manifest]")) == NULL)
		return SG_EXIT_USAGE;
	if ((ex = sg_cli_connect(conf, &h)) != 0)
		return ex;
	snprintf(path, sizeof(path), "/v1/requests/%s", id);
	if ((ex = sg_cli_api(h, "GET", path, NULL, NULL, 0, &req, &raw)) != 0)
		goto out;
	ok = show_statement(req, id, &st, &has_st, err, sizeof(err));
	if (sa.json)
		sg_cli_print_raw(&raw);
	else
		sg_cli_print_request(req, ok && has_st ? &st : NULL);
	fflush(stdout);
	if (!ok) {
		if (err[0] == '\0')
			snprintf(err, sizeof(err), "asked for %s", id);
		sg_cli_print_errors(err);
		ex = SG_EXIT_LOCAL;
	} else if (sa.manifest)
		ex = has_st ? show_manifest(h, &st) : SG_EXIT_USAGE;
out:
	ex = sg_cli_flush(ex);
	sg_cli_http_resp_clear(&raw);
	json_decref(req);
	sg_cli_http_free(h);
	return ex;
}

/* A reason as the server takes it: 1 to 256 bytes of text (sg_text.h);
 * why says what is wrong. */
static int
valid_reason(const char *s, char *why, size_t cap)
{
	struct sg_text_fault tf;
	size_t n = strlen(s);

	if (n == 0 || n > 256) {
		snprintf(why, cap, "1 to 256 bytes");
		return 0;
	}
	if (sg_text_ok(s, n, &tf) != 0) {
		sg_text_fault_describe(&tf, why, cap);
		return 0;
	}
	return 1;
}

static int
cancel_option(void *arg, int opt, const char *val)
{
	if (opt != SG_OPT_CMD)
		return 1;
	*(const char **)arg = val;
	return 0;
}

/* The body of POST …/cancel, from a checked --reason; an exit status. */
static int
cancel_body(const char *reason, char **ret)
{
	char why[128];
	json_t *body;

	if (reason == NULL) {
		fprintf(stderr, "signgate: cancel: --reason TEXT is "
		    "required\n");
		return SG_EXIT_USAGE;
	}
	if (!valid_reason(reason, why, sizeof(why))) {
		fprintf(stderr, "signgate: cancel: --reason: %s\n", why);
		return SG_EXIT_USAGE;
	}
	*ret = NULL;
	if ((body = json_pack("{s:s}", "reason", reason)) != NULL)
		*ret = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (*ret == NULL) {
		fprintf(stderr, "signgate: cancel: --reason is not valid "
		    "UTF-8\n");
		return SG_EXIT_USAGE;
	}
	return SG_EXIT_OK;
}

int
sg_cli_cmd_cancel(int argc, char **argv, struct sg_cli_conf *conf)
{
	static const struct option own[] = {
		{ "reason", required_argument, NULL, SG_OPT_CMD },
		{ NULL, 0, NULL, 0 },
	};
	struct sg_cli_http *h = NULL;
	const char *reason = NULL, *id;
	const struct sg_cli_cmdline cl = { "cancel", own, NULL, cancel_option,
	    &reason };
	json_t *req = NULL;
	char path[128], *body = NULL;
	int help, ex;

	if ((ex = sg_cli_getopt(argc, argv, &cl, conf, &help)) != 0)
		return ex;
	if (help) {
		sg_cli_usage(stdout, "cancel");
		return SG_EXIT_OK;
	}
	if ((id = sg_cli_id_operand(argc, argv, "cancel",
	    " --reason TEXT")) == NULL)
		return SG_EXIT_USAGE;
	if ((ex = cancel_body(reason, &body)) != 0)
		goto out;
	if ((ex = sg_cli_connect(conf, &h)) != 0)
		goto out;
	snprintf(path, sizeof(path), "/v1/requests/%s/cancel", id);
	if ((ex = sg_cli_api(h, "POST", path, body, NULL, 0, &req,
	    NULL)) != 0)
		goto out;
	if ((ex = sg_cli_expect_request(req, id)) != 0)
		goto out;
	printf("request: %s\n", id);
	printf("state: %s\n", sg_cli_esc(sg_cli_jstr(req, "state")));
	sg_cli_print_cancelled(req);
out:
	ex = sg_cli_flush(ex);
	free(body);
	json_decref(req);
	sg_cli_http_free(h);
	return ex;
}
