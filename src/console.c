/*
 * The officers' console: the front's handler (docs/CONSOLE.md).
 *
 * The console has a listener of its own (a second front, sg_http.h, with
 * no client certificate asked for): browsers do not hold the client
 * certificates the API needs.  Its connections start unauthenticated and
 * live under the same caps and deadlines as the API's; requests without
 * a session (the page itself, the sign-in) share one rate budget, and an
 * officer's requests are counted against its own rate when they reach
 * the API.
 *
 * Every answer carries sg_console_headers: a Content-Security-Policy
 * that allows nothing but the console's own script, style and requests
 * (no inline script or style anywhere in the page), nosniff, no
 * referrer, no framing.  The JSON API is not cached (the front sets
 * Cache-Control: no-store on every answer).
 *
 * Rules, in this order, every request passes (the row of routes[] it
 * matches decides):
 *   1. a path no row covers is 404, a method its rows do not take 405;
 *   2. rows without a session (the page, the sign-in) take a token from
 *      the anonymous budget (429);
 *   3. rows that need a session: a live session cookie (401);
 *   4. a POST (every change, the sign-in too): an Origin header exactly
 *      the configured origin (403), Content-Type application/json
 *      (415), a body that is a JSON object without duplicate members
 *      (400).  With a SameSite=Strict cookie, this is the CSRF defence:
 *      a cross-site page can neither send the cookie nor forge Origin,
 *      and cannot send application/json without a preflight the
 *      console never grants.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "console_int.h"
#include "sg_api.h"
#include "sg_err.h"
#include "sg_policy.h"
#include "sg_service.h"
#include "sg_text.h"
#include "sg_util.h"

const char *const sg_console_headers[] = {
	"Content-Security-Policy", "default-src 'none'; script-src 'self'; "
	    "style-src 'self'; img-src 'self'; connect-src 'self'; "
	    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	/* X-Content-Type-Options: nosniff and Cache-Control: no-store are
	 * on every answer of every front already (http.c). */
	"Referrer-Policy", "no-referrer",
	"X-Frame-Options", "DENY",
	"Cross-Origin-Opener-Policy", "same-origin",
	NULL,
};

#define M_GET 0x1u
#define M_POST 0x2u

enum need {
	NEED_NOTHING,                   /* anonymous budget */
	NEED_SESSION,
};

struct route {
	unsigned methods;
	const char *pattern;            /* {id}: a request id */
	enum need need;
	console_fn *fn;
};

static console_fn get_asset;

static const struct route routes[] = {
	{ M_GET, "/", NEED_NOTHING, get_asset },
	{ M_GET, "/index.html", NEED_NOTHING, get_asset },
	{ M_GET, "/console.js", NEED_NOTHING, get_asset },
	{ M_GET, "/console.css", NEED_NOTHING, get_asset },
	{ M_GET, "/api/config", NEED_NOTHING, console_get_config },
	{ M_POST, "/api/signin/begin", NEED_NOTHING, console_signin_begin },
	{ M_POST, "/api/signin", NEED_NOTHING, console_signin },
	{ M_POST, "/api/signout", NEED_SESSION, console_signout },
	{ M_GET, "/api/session", NEED_SESSION, console_get_session },
	{ M_GET, "/api/queue", NEED_SESSION, console_get_queue },
	{ M_GET, "/api/requests/{id}", NEED_SESSION, console_get_request },
	{ M_POST, "/api/requests/{id}/approvals", NEED_SESSION,
	    console_post_approval },
	{ M_POST, "/api/requests/{id}/cancel/begin", NEED_SESSION,
	    console_cancel_begin },
	{ M_POST, "/api/requests/{id}/cancel", NEED_SESSION,
	    console_post_cancel },
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* ---- the credentials of the policy in force ----------------------------- */

static const struct sg_principal *
officer_of(struct sg_console *c, const char *officer)
{
	const struct sg_principal *pr;

	if (c->svc == NULL)
		return NULL;
	pr = sg_policy_principal(sg_service_policy(c->svc), officer);
	return pr != NULL && (pr->roles & SG_ROLE_OFFICER) ? pr : NULL;
}

/* Policies stay in memory until the service goes (a reload retains the
 * old one), so the pointers returned outlive the request. */
static const struct sg_webauthn_cred *
policy_cred(void *arg, const char *officer, const uint8_t *id, size_t len)
{
	const struct sg_principal *pr = officer_of(arg, officer);

	return pr != NULL ? sg_principal_webauthn(pr, id, len) : NULL;
}

static void
policy_creds(void *arg, const char *officer,
    const struct sg_webauthn_cred **ret, size_t max, size_t *ret_n)
{
	const struct sg_principal *pr = officer_of(arg, officer);
	size_t i;

	*ret_n = 0;
	for (i = 0; pr != NULL && i < pr->nwebauthn && *ret_n < max; i++)
		ret[(*ret_n)++] = &pr->webauthn[i];
}

/* ---- life ---------------------------------------------------------------- */

int
sg_console_new(const struct sg_console_conf *conf, struct sg_console **ret)
{
	struct sg_console *c;

	if (strlen(conf->rp_id) >= SG_WEBAUTHN_RP_ID_SIZE ||
	    strlen(conf->origin) >= SG_WEBAUTHN_ORIGIN_SIZE)
		return SG_ERR_INVALID;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return SG_ERR_NOMEM;
	snprintf(c->rp_id, sizeof(c->rp_id), "%s", conf->rp_id);
	snprintf(c->origin, sizeof(c->origin), "%s", conf->origin);
	c->svc = conf->svc;
	c->api = conf->api;
	c->now_ms = sg_mono_ms;
	c->cred_one = policy_cred;
	c->cred_all = policy_creds;
	c->cred_arg = c;
	c->anon_per_second = conf->anon_per_second;
	c->anon_burst = conf->anon_burst;
	c->anon_tokens = conf->anon_burst;
	c->anon_last_ms = c->now_ms();
	pthread_mutex_init(&c->lock, NULL);
	*ret = c;
	return 0;
}

void
sg_console_free(struct sg_console *c)
{
	if (c == NULL)
		return;
	pthread_mutex_destroy(&c->lock);
	sg_freezero(c, sizeof(*c));
}

void
sg_console_set_clock(struct sg_console *c, int64_t (*now_ms)(void))
{
	c->now_ms = now_ms != NULL ? now_ms : sg_mono_ms;
	c->anon_last_ms = c->now_ms();
}

void
sg_console_set_creds(struct sg_console *c, sg_console_cred_fn one,
    sg_console_creds_fn all, void *arg)
{
	c->cred_one = one != NULL ? one : policy_cred;
	c->cred_all = all != NULL ? all : policy_creds;
	c->cred_arg = one != NULL ? arg : c;
}

void
sg_console_set_front(struct sg_console *c, struct sg_http *front)
{
	c->front = front;
}

/* The console's long-polls wait on a request's id (its page) or on
 * "queue" (any change). */
void
sg_console_changed(struct sg_console *c, const char *id)
{
	if (c == NULL || c->front == NULL)
		return;
	sg_http_notify(c->front, id);
	sg_http_notify(c->front, "queue");
}

/* ---- answers -------------------------------------------------------------- */

void
console_json(struct sg_http_response *resp, int status, json_t *j)
{
	free(resp->body);
	resp->body = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	resp->body_len = resp->body != NULL ? strlen(resp->body) : 0;
	resp->status = resp->body != NULL ? status : 500;
	resp->content_type = resp->status >= 400 ?
	    "application/problem+json" : "application/json";
	json_decref(j);
}

void
console_problem(struct sg_http_response *resp, int status,
    const char *fmt, ...)
{
	char detail[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	console_json(resp, status, json_pack("{s:s, s:s, s:i, s:s}", "type",
	    "about:blank", "title", sg_api_status_title(status), "status",
	    status, "detail", detail));
}

static const char *
param(const struct sg_http_param *v, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcasecmp(v[i].name, name) == 0)
			return v[i].value;
	return NULL;
}

const char *
console_header(const struct sg_http_request *req, const char *name)
{
	return param(req->headers, req->nheaders, name);
}

const char *
console_query(const struct sg_http_request *req, const char *name)
{
	size_t i;

	/* Case matters in query names. */
	for (i = 0; i < req->nquery; i++)
		if (strcmp(req->query[i].name, name) == 0)
			return req->query[i].value;
	return NULL;
}

static void
get_asset(struct console_call *cc)
{
	const char *path = cc->req->path;
	size_t i;

	if (strcmp(path, "/index.html") == 0)
		path = "/";
	for (i = 0; i < sg_console_nassets; i++) {
		const struct sg_console_asset *a = &sg_console_assets[i];
		if (strcmp(a->path, path) != 0)
			continue;
		if ((cc->resp->body = malloc(a->len + 1)) == NULL) {
			console_problem(cc->resp, 500, "out of memory");
			return;
		}
		memcpy(cc->resp->body, a->data, a->len);
		cc->resp->body_len = a->len;
		cc->resp->status = 200;
		cc->resp->content_type = a->content_type;
		return;
	}
	console_problem(cc->resp, 404, "no such page");
}

/* ---- the rules ------------------------------------------------------------ */

enum match { MATCH_NO, MATCH_YES };

static enum match
match(const char *pat, const char *path, char id[SG_REQUEST_ID_SIZE])
{
	while (*pat != '\0') {
		if (strncmp(pat, "{id}", 4) == 0) {
			if (!sg_lower_hexn(path, SG_REQUEST_ID_SIZE - 1))
				return MATCH_NO;
			memcpy(id, path, SG_REQUEST_ID_SIZE - 1);
			id[SG_REQUEST_ID_SIZE - 1] = '\0';
			pat += 4;
			path += SG_REQUEST_ID_SIZE - 1;
		} else if (*pat++ != *path++)
			return MATCH_NO;
	}
	return *path == '\0' ? MATCH_YES : MATCH_NO;
}

/* The anonymous budget: 1 when over it (then answered). */
static int
anon_over(struct console_call *cc)
{
	struct sg_console *c = cc->c;
	int64_t now = c->now_ms();
	unsigned wait = 0;

	if (c->anon_per_second == 0)
		return 0;
	pthread_mutex_lock(&c->lock);
	c->anon_tokens += (double)(now - c->anon_last_ms) *
	    c->anon_per_second / 1000.0;
	if (c->anon_tokens > c->anon_burst)
		c->anon_tokens = c->anon_burst;
	c->anon_last_ms = now;
	if (c->anon_tokens >= 1.0)
		c->anon_tokens -= 1.0;
	else
		wait = (unsigned)((1.0 - c->anon_tokens) /
		    c->anon_per_second) + 1;
	pthread_mutex_unlock(&c->lock);
	if (wait == 0)
		return 0;
	console_problem(cc->resp, 429, "requests without a session are over "
	    "their rate limit of %u per second", c->anon_per_second);
	cc->resp->retry_after = wait;
	return 1;
}

static int
is_json(const struct sg_http_request *req)
{
	const char *ct = console_header(req, "Content-Type");
	size_t n = strlen("application/json");

	return ct != NULL && strncasecmp(ct, "application/json", n) == 0 &&
	    (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* A change: Origin, Content-Type, a JSON object.  0 to go on. */
static int
check_change(struct console_call *cc)
{
	const char *origin = console_header(cc->req, "Origin");
	json_error_t jerr;

	if (origin == NULL || strcmp(origin, cc->c->origin) != 0) {
		console_problem(cc->resp, 403, "a change needs the Origin "
		    "header %s", cc->c->origin);
		return -1;
	}
	if (!is_json(cc->req)) {
		console_problem(cc->resp, 415, "Content-Type must be "
		    "application/json");
		return -1;
	}
	cc->body = json_loadb(cc->req->body, cc->req->body_len,
	    JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(cc->body)) {
		console_problem(cc->resp, 400, "the body must be a JSON object "
		    "(without duplicate members)");
		return -1;
	}
	return 0;
}

/* A session whose officer still has a credential in the policy in
 * force; 0 to go on. */
static int
check_session(struct console_call *cc)
{
	const struct sg_webauthn_cred *one;
	size_t n = 0;

	if (console_session_find(cc->c, console_header(cc->req, "Cookie"),
	    cc->officer, cc->session) != 0) {
		console_problem(cc->resp, 401, "sign in with your security "
		    "key");
		return -1;
	}
	cc->c->cred_all(cc->c->cred_arg, cc->officer, &one, 1, &n);
	if (n == 0) {
		/* Revoked, or no longer an officer: the session ends. */
		console_session_end(cc->c, cc->session);
		cc->officer[0] = '\0';
		console_problem(cc->resp, 401, "no security key of yours is "
		    "registered in the policy in force any more");
		return -1;
	}
	return 0;
}

void
sg_console_handle(void *ctx, const struct sg_http_request *req,
    struct sg_http_response *resp)
{
	const struct route *rt = NULL;
	struct console_call cc;
	unsigned method, allowed = 0;
	char id[SG_REQUEST_ID_SIZE];
	size_t i;

	memset(&cc, 0, sizeof(cc));
	cc.c = ctx;
	cc.req = req;
	cc.resp = resp;
	method = strcmp(req->method, "GET") == 0 ? M_GET :
	    strcmp(req->method, "POST") == 0 ? M_POST : 0;
	for (i = 0; i < NROUTES; i++) {
		if (match(routes[i].pattern, req->path, id) != MATCH_YES)
			continue;
		allowed |= routes[i].methods;
		if ((routes[i].methods & method) != 0) {
			rt = &routes[i];
			memcpy(cc.id, id, sizeof(cc.id));
			break;
		}
	}
	if (rt == NULL && allowed == 0)
		console_problem(resp, 404, "no such page");
	else if (rt == NULL)
		console_problem(resp, 405, "use %s", allowed & M_GET ? "GET" :
		    "POST");
	else if (rt->need == NEED_NOTHING && anon_over(&cc))
		;
	else if (rt->need == NEED_SESSION && check_session(&cc) != 0)
		;
	else if (method == M_POST && check_change(&cc) != 0)
		;
	else
		rt->fn(&cc);
	json_decref(cc.body);
}
