/*
 * What every CLI command shares: the option loop (sg_cli_getopt: a
 * command only says what its own options mean), global options and their
 * environment fall-backs, escaping of server strings before they reach a
 * terminal, problem details, small request-object helpers, and one
 * function that performs an API call and turns its outcome into the exit
 * status the user sees.
 *
 * The server is trusted to sign, not to print: any string it returns may
 * carry terminal escape sequences, so everything from a response passes
 * through sg_cli_esc() before it is written.  Exit statuses are chosen
 * here, once: 2xx is success, 4xx means the server refused (3), anything
 * else that came back, or nothing at all, is a server-side failure (4).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "sg_cli.h"
#include "sg_err.h"
#include "sg_text.h"
#include "sg_util.h"

static const struct option global_options[] = {
	{ "url", required_argument, NULL, SG_OPT_URL },
	{ "cert", required_argument, NULL, SG_OPT_CERT },
	{ "key", required_argument, NULL, SG_OPT_KEY },
	{ "cacert", required_argument, NULL, SG_OPT_CACERT },
	{ "timeout", required_argument, NULL, SG_OPT_TIMEOUT },
	{ "help", no_argument, NULL, SG_OPT_HELP },
	{ "verbose", no_argument, NULL, 'v' },
	{ NULL, 0, NULL, 0 },
};

int
sg_cli_options(const struct option *own, struct option *out, size_t cap)
{
	size_t n = 0, i, j;

	for (i = 0; own != NULL && own[i].name != NULL; i++) {
		if (n + 1 >= cap)
			return SG_ERR_BUFFER;
		out[n++] = own[i];
	}
	for (i = 0; global_options[i].name != NULL; i++) {
		int shadowed = 0;
		for (j = 0; own != NULL && own[j].name != NULL; j++)
			if (strcmp(own[j].name, global_options[i].name) == 0)
				shadowed = 1;
		if (shadowed)
			continue;
		if (n + 1 >= cap)
			return SG_ERR_BUFFER;
		out[n++] = global_options[i];
	}
	memset(&out[n], 0, sizeof(out[n]));
	return 0;
}

int
sg_cli_global_option(struct sg_cli_conf *c, int opt, const char *arg)
{
	switch (opt) {
	case SG_OPT_URL:
		c->url = arg;
		return 0;
	case SG_OPT_CERT:
		c->cert = arg;
		return 0;
	case SG_OPT_KEY:
		c->key = arg;
		return 0;
	case SG_OPT_CACERT:
		c->cacert = arg;
		return 0;
	case SG_OPT_TIMEOUT:
		if (sg_parse_u64(arg, 1, SG_CLI_MAX_TIMEOUT, &c->timeout) != 0) {
			fprintf(stderr, "signgate: --timeout: must be 1 to %d "
			    "seconds\n", SG_CLI_MAX_TIMEOUT);
			return SG_EXIT_USAGE;
		}
		return 0;
	case 'v':
		c->verbose = 1;
		sg_log_set_verbose(1);
		return 0;
	}
	return 1;
}

int
sg_cli_getopt(int argc, char **argv, const struct sg_cli_cmdline *cl,
    struct sg_cli_conf *conf, int *ret_help)
{
	struct option opts[SG_CLI_MAX_OPTIONS];
	const char *shortopts = cl->shortopts != NULL ? cl->shortopts : "hv";
	int c, r;

	*ret_help = 0;
	if (sg_cli_options(cl->own, opts, SG_CLI_MAX_OPTIONS) != 0)
		return SG_EXIT_LOCAL;
	optind = 0;
	while ((c = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
		if (c == 'h' || c == SG_OPT_HELP) {
			*ret_help = 1;
			continue;
		}
		if (cl->fn != NULL && (r = cl->fn(cl->arg, c, optarg)) != 1) {
			if (r != 0)
				return r;
			continue;
		}
		if (sg_cli_global_option(conf, c, optarg) == 0)
			continue;
		fprintf(stderr, "see: signgate %s --help\n", cl->cmd);
		return SG_EXIT_USAGE;
	}
	return SG_EXIT_OK;
}

int
sg_cli_opt_json(void *arg, int opt, const char *val)
{
	(void)val;
	if (opt != SG_OPT_CMD)
		return 1;
	*(int *)arg = 1;
	return 0;
}

const char *
sg_cli_id_operand(int argc, char **argv, const char *cmd, const char *rest)
{
	if (argc - optind != 1 || !sg_request_id_ok(argv[optind])) {
		fprintf(stderr, "signgate: usage: signgate %s ID (%d lower-case "
		    "hex characters)%s\n", cmd, SG_REQUEST_ID_LEN, rest);
		return NULL;
	}
	return argv[optind];
}

static const char *
env_or(const char *opt, const char *name)
{
	const char *v;

	if (opt != NULL)
		return opt;
	if ((v = getenv(name)) == NULL || *v == '\0')
		return NULL;
	return v;
}

/* A part of u that must be absent. */
static int
has_part(CURLU *u, CURLUPart what)
{
	char *v = NULL;
	CURLUcode rc;

	rc = curl_url_get(u, what, &v, 0);
	curl_free(v);
	return rc == CURLUE_OK;
}

/*
 * The gateway's base URL, parsed as libcurl will parse it: https://HOST
 * [:PORT][/PATH], or http:// to exactly 127.0.0.1, ::1 or localhost
 * (without TLS there is no client identity: loopback only).  No user or
 * password part, no query, fragment or zone, nothing but printable ASCII.
 */
int
sg_cli_url_ok(const char *url)
{
	static const char *const loopback[] = {
		"127.0.0.1", "[::1]", "::1", "localhost",
	};
	char *scheme = NULL, *host = NULL;
	const char *p;
	CURLU *u = NULL;
	size_t i, n;
	int ok = 0;

	if (url == NULL)
		return 0;
	for (p = url; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return 0;
	if ((u = curl_url()) == NULL ||
	    curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    host[0] == '\0')
		goto out;
	/* SCHEME://HOST, as written: libcurl forgives missing or extra
	 * slashes. */
	n = strlen(scheme);
	if (strncmp(url + n, "://", 3) != 0 || url[n + 3] == '/')
		goto out;
	if (has_part(u, CURLUPART_USER) || has_part(u, CURLUPART_PASSWORD) ||
	    has_part(u, CURLUPART_OPTIONS) || has_part(u, CURLUPART_QUERY) ||
	    has_part(u, CURLUPART_FRAGMENT) || has_part(u, CURLUPART_ZONEID))
		goto out;
	if (strcmp(scheme, "https") == 0) {
		ok = 1;
		goto out;
	}
	if (strcmp(scheme, "http") != 0)
		goto out;
	for (i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++)
		if (strcmp(host, loopback[i]) == 0)
			ok = 1;
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

int
sg_cli_conf_resolve(struct sg_cli_conf *c)
{
	c->url = env_or(c->url, "SIGNGATE_URL");
	c->cert = env_or(c->cert, "SIGNGATE_CERT");
	c->key = env_or(c->key, "SIGNGATE_KEY");
	c->cacert = env_or(c->cacert, "SIGNGATE_CACERT");
	if (c->timeout == 0)
		c->timeout = SG_CLI_DEFAULT_TIMEOUT;
	if (c->url == NULL) {
		fprintf(stderr, "signgate: no server: give --url or set "
		    "SIGNGATE_URL\n");
		return SG_EXIT_USAGE;
	}
	if (!sg_cli_url_ok(c->url)) {
		fprintf(stderr, "signgate: --url must be https://HOST[:PORT] "
		    "(http:// only to 127.0.0.1, localhost or [::1])\n");
		return SG_EXIT_USAGE;
	}
	if (c->key != NULL && c->cert == NULL) {
		fprintf(stderr, "signgate: a client key needs its certificate "
		    "(--cert or SIGNGATE_CERT)\n");
		return SG_EXIT_USAGE;
	}
	return 0;
}

#define ESC_BUFS 8
#define ESC_CAP (4 * SG_ARTIFACT_VALUE_MAX + 64)

/* s escaped by fn into the next of the rotating buffers. */
static const char *
esc_with(void (*fn)(const char *, size_t, char *, size_t), const char *s)
{
	static char bufs[ESC_BUFS][ESC_CAP];
	static unsigned next;
	char *b;

	if (s == NULL)
		return "-";
	b = bufs[next++ % ESC_BUFS];
	fn(s, strlen(s), b, ESC_CAP);
	return b;
}

const char *
sg_cli_esc(const char *s)
{
	return esc_with(sg_escape, s);
}

const char *
sg_cli_text(const char *s)
{
	return esc_with(sg_text_escape, s);
}

const char *
sg_cli_jstr(const json_t *obj, const char *name)
{
	json_t *v;

	if (!json_is_object(obj))
		return NULL;
	v = json_object_get(obj, name);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

enum sg_req_state
sg_cli_req_state(const json_t *req)
{
	enum sg_req_state s;

	if (sg_req_state_parse(sg_cli_jstr(req, "state"), &s) != 0)
		return SG_REQ_NONE;
	return s;
}

int
sg_cli_expect_request(const json_t *req, const char *id)
{
	const char *got = sg_cli_jstr(req, "id");

	if (sg_request_id_ok(got) && strcmp(got, id) == 0)
		return SG_EXIT_OK;
	fprintf(stderr, "signgate: the server answered with another "
	    "request\n");
	return SG_EXIT_SERVER;
}

void
sg_cli_print_raw(const struct sg_cli_http_resp *r)
{
	fwrite(r->body, 1, r->len, stdout);
	if (r->len == 0 || r->body[r->len - 1] != '\n')
		putchar('\n');
}

void
sg_cli_print_errors(const char *lines)
{
	const char *nl;
	size_t n;

	while (lines != NULL && *lines != '\0') {
		nl = strchr(lines, '\n');
		n = nl != NULL ? (size_t)(nl - lines) : strlen(lines);
		fprintf(stderr, "signgate: error: %.*s\n", (int)n, lines);
		lines = nl != NULL ? nl + 1 : NULL;
	}
}

int
sg_cli_flush(int ex)
{
	if (fflush(stdout) != 0 && ex == SG_EXIT_OK)
		return SG_EXIT_LOCAL;
	return ex;
}

static void
copy_member(const json_t *obj, const char *name, char *out, size_t cap)
{
	const char *v = sg_cli_jstr(obj, name);

	if (v != NULL)
		snprintf(out, cap, "%s", v);
}

int
sg_problem_parse(const char *body, size_t len, struct sg_problem *ret)
{
	struct sg_problem p;
	json_t *root, *st;

	memset(&p, 0, sizeof(p));
	if (body == NULL || len > SG_CLI_RESPONSE_MAX)
		return SG_ERR_INVALID;
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(root)) {
		json_decref(root);
		return SG_ERR_INVALID;
	}
	if (json_is_integer(st = json_object_get(root, "status")))
		p.status = (long)json_integer_value(st);
	copy_member(root, "title", p.title, sizeof(p.title));
	copy_member(root, "detail", p.detail, sizeof(p.detail));
	copy_member(root, "field", p.field, sizeof(p.field));
	json_decref(root);
	*ret = p;
	return 0;
}

int
sg_cli_status_exit(long status)
{
	if (status >= 200 && status <= 299)
		return SG_EXIT_OK;
	if (status >= 400 && status <= 499)
		return SG_EXIT_REFUSED;
	return SG_EXIT_SERVER;
}

void
sg_cli_missing(const json_t *req, char *out, size_t cap)
{
	const json_t *req_arr, *t;
	size_t i, o = 0;
	int n;

	if (cap == 0)
		return;
	out[0] = '\0';
	req_arr = json_is_object(req) ? json_object_get(req, "required") : NULL;
	if (json_is_array(req_arr)) {
		json_array_foreach(req_arr, i, t) {
			json_t *miss = json_object_get(t, "missing");
			json_t *count = json_object_get(t, "count");
			if (!json_is_integer(miss) ||
			    json_integer_value(miss) <= 0)
				continue;
			n = snprintf(out + o, cap - o, "%s%lld of %lld %s",
			    o > 0 ? ", " : "",
			    (long long)json_integer_value(miss),
			    json_is_integer(count) ?
			    (long long)json_integer_value(count) :
			    (long long)json_integer_value(miss),
			    sg_cli_esc(sg_cli_jstr(t, "group")));
			if (n < 0 || (size_t)n >= cap - o) {
				out[o] = '\0';
				break;
			}
			o += (size_t)n;
		}
	}
	if (o == 0)
		snprintf(out, cap, "none");
}

static void
print_problem(const char *method, const char *path,
    const struct sg_cli_http_resp *resp)
{
	struct sg_problem p;
	const char *what = resp->status >= 400 && resp->status <= 499 ?
	    "refused" : "failed";

	if (sg_problem_parse(resp->body, resp->len, &p) != 0) {
		fprintf(stderr, "signgate: %s %s: server %s: HTTP %ld\n",
		    method, sg_cli_esc(path), what, resp->status);
		return;
	}
	fprintf(stderr, "signgate: %s %s: server %s: %ld %s%s%s", method,
	    sg_cli_esc(path), what, resp->status,
	    p.title[0] ? sg_cli_esc(p.title) : "error",
	    p.detail[0] ? ": " : "", p.detail[0] ? sg_cli_esc(p.detail) : "");
	if (p.field[0] != '\0')
		fprintf(stderr, " (field %s)", sg_cli_esc(p.field));
	fputc('\n', stderr);
}

int
sg_cli_api(struct sg_cli_http *h, const char *method, const char *path,
    const char *body, const char *idempotency_key, long extra_timeout,
    json_t **ret_json, struct sg_cli_http_resp *ret_raw)
{
	struct sg_cli_http_resp resp;
	json_error_t jerr;
	json_t *root = NULL;
	int r, ex = SG_EXIT_SERVER;

	memset(&resp, 0, sizeof(resp));
	r = sg_cli_http_request(h, method, path, body,
	    body != NULL ? strlen(body) : 0, idempotency_key, extra_timeout,
	    &resp);
	if (r != 0) {
		fprintf(stderr, "signgate: %s %s: %s\n", method,
		    sg_cli_esc(path), sg_cli_http_error(h));
		goto out;
	}
	if ((ex = sg_cli_status_exit(resp.status)) != SG_EXIT_OK) {
		print_problem(method, path, &resp);
		goto out;
	}
	root = json_loadb(resp.body, resp.len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(root)) {
		fprintf(stderr, "signgate: %s %s: malformed response: %s\n",
		    method, sg_cli_esc(path),
		    root == NULL ? sg_cli_esc(jerr.text) : "not an object");
		ex = SG_EXIT_SERVER;
		goto out;
	}
	*ret_json = root;
	root = NULL;
	if (ret_raw != NULL) {
		*ret_raw = resp;
		memset(&resp, 0, sizeof(resp));   /* transferred */
	}
	ex = SG_EXIT_OK;
out:
	json_decref(root);
	sg_cli_http_resp_clear(&resp);
	return ex;
}

static int
readable(const char *path, const char *what)
{
	if (access(path, R_OK) == 0)
		return 1;
	fprintf(stderr, "signgate: %s %s: %s\n", what, path, strerror(errno));
	return 0;
}

int
sg_cli_connect(struct sg_cli_conf *c, struct sg_cli_http **ret)
{
	int r;

	if ((r = sg_cli_conf_resolve(c)) != 0)
		return r;
	/* A missing local file is our problem, not a TLS failure (exit 4). */
	if ((c->cert != NULL && !readable(c->cert, "--cert")) ||
	    (c->key != NULL && !readable(c->key, "--key")) ||
	    (c->cacert != NULL && !readable(c->cacert, "--cacert")))
		return SG_EXIT_LOCAL;
	if ((r = sg_cli_http_new(c, ret)) != 0) {
		fprintf(stderr, "signgate: cannot set up the HTTP client: %s\n",
		    sg_strerror(r));
		return SG_EXIT_LOCAL;
	}
	return 0;
}

int
sg_cli_req_kind(const json_t *req, enum sg_kind *ret)
{
	const json_t *k = json_object_get(req, "kind");

	if (!json_is_object(req))
		return SG_ERR_INVALID;
	if (k == NULL) {
		*ret = SG_KIND_REQUEST;
		return 0;
	}
	return sg_kind_parse(json_string_value(k), ret);
}

int
sg_cli_api_text(struct sg_cli_http *h, const char *path, char **ret,
    size_t *ret_len)
{
	struct sg_cli_http_resp resp;
	int ex;

	memset(&resp, 0, sizeof(resp));
	if (sg_cli_http_request(h, "GET", path, NULL, 0, NULL, 0,
	    &resp) != 0) {
		fprintf(stderr, "signgate: GET %s: %s\n", sg_cli_esc(path),
		    sg_cli_http_error(h));
		return SG_EXIT_SERVER;
	}
	if ((ex = sg_cli_status_exit(resp.status)) != SG_EXIT_OK) {
		print_problem("GET", path, &resp);
		sg_cli_http_resp_clear(&resp);
		return ex;
	}
	if (strncmp(resp.content_type, "text/plain", 10) != 0) {
		fprintf(stderr, "signgate: GET %s: expected text/plain, got "
		    "%s\n", sg_cli_esc(path), sg_cli_esc(resp.content_type));
		sg_cli_http_resp_clear(&resp);
		return SG_EXIT_SERVER;
	}
	*ret = resp.body;
	*ret_len = resp.len;
	return SG_EXIT_OK;
}
