/*
 * Fuzzes the API's router (sg_api_dispatch) against the service
 * stand-in of tests/unit/api_stub_service.c: arbitrary methods, paths,
 * query strings, headers and bodies, from any kind of caller.
 *
 * Input: byte 0 says who asks and how the service answers, byte 1 how
 * the API is set up (see decode()); then, separated by newlines, the
 * method, the path, the query string ("a=1&b", split on '&' and the
 * first '='), header lines "Name: value" up to an empty line, and the
 * rest is the body.
 *
 * Properties, beyond the sanitizers': every answer is well formed (a
 * status the API uses, never 500; a body; JSON bodies parse; a problem
 * document says its own status); a long-poll only for GET of a request;
 * nothing the service changes (create, decide, cancel) without a POST
 * from a principal; without a certificate, nothing below /v1/ but the
 * log; operations from loopback only.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api_stub_service.h"
#include "sg_api.h"
#include "sg_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PARAMS 32

struct input {
	struct sg_http_request req;
	struct sg_http_param query[MAX_PARAMS];
	struct sg_http_param headers[MAX_PARAMS];
	int plain_http, rate, anon_rate;
	int principal;                  /* the certificate maps to one */
	char *buf;                      /* the parts, NUL-terminated */
};

static struct sg_service svc;

/* The next part, up to a newline (or all that is left). */
static char *
part(char **p, char *end)
{
	char *s = *p, *nl;

	if (s >= end)
		return end;
	if ((nl = memchr(s, '\n', (size_t)(end - s))) == NULL)
		nl = end;
	*nl = '\0';
	*p = nl < end ? nl + 1 : end;
	return s;
}

static void
split_query(struct input *in, char *q)
{
	char *arg, *save = NULL, *eq;

	for (arg = strtok_r(q, "&", &save); arg != NULL &&
	    in->req.nquery < MAX_PARAMS; arg = strtok_r(NULL, "&", &save)) {
		if ((eq = strchr(arg, '=')) != NULL)
			*eq++ = '\0';
		in->query[in->req.nquery].name = arg;
		in->query[in->req.nquery++].value = eq;
	}
}

/* The service's answer for this input: byte 0, bits 5-7. */
static void
set_answer(unsigned how)
{
	static const enum sg_req_state states[] = { SG_REQ_PENDING,
	    SG_REQ_SIGNED, SG_REQ_CANCELLED };

	stub_reset(&svc);
	if (how < 3) {
		svc.state = states[how];
		return;
	}
	switch (how) {
	case 3:
		svc.result = SG_ERR_NOT_FOUND;
		break;
	case 4:
		svc.result = SG_ERR_FORBIDDEN;
		strcpy(svc.fault.field, "key");
		strcpy(svc.fault.detail, "key: not for you");
		break;
	case 5:
		svc.result = SG_ERR_UNAVAILABLE;
		svc.fault.recorded = 1;
		strcpy(svc.fault.detail, "no checkpoint yet");
		break;
	case 6:
		svc.result = SG_ERR_INVALID;
		break;
	default:
		svc.existing = 1;
		svc.not_ready = 1;
		break;
	}
}

static int
decode(struct input *in, const uint8_t *data, size_t size)
{
	char *p, *end, *line, *colon;
	unsigned who;

	memset(in, 0, sizeof(*in));
	if (size < 2 || (in->buf = malloc(size + 1)) == NULL)
		return -1;
	memcpy(in->buf, data + 2, size - 2);
	in->buf[size - 2] = '\0';
	p = in->buf;
	end = in->buf + size - 2;

	in->req.authenticated = data[0] & 1;
	in->req.loopback = (data[0] >> 1) & 1;
	in->req.resumed = (data[0] >> 2) & 1;
	who = (data[0] >> 3) & 3;
	if (in->req.authenticated) {
		strcpy(in->req.client_cn, who == 0 ? "ci" : who == 1 ?
		    "audit-host" : who == 2 ? "mallory" : "audit");
		if (who == 1)
			memcpy(in->req.client_sha256, stub_audit_sha256, 32);
		in->principal = who < 2;
	}
	set_answer(data[0] >> 5);
	in->plain_http = data[1] & 1;
	in->rate = (data[1] >> 1) & 1;
	in->anon_rate = (data[1] >> 2) & 1;
	svc.nlist = (data[1] >> 3) & 3;

	in->req.method = part(&p, end);
	in->req.path = part(&p, end);
	split_query(in, part(&p, end));
	in->req.query = in->query;
	in->req.headers = in->headers;
	while (p < end && *(line = part(&p, end)) != '\0' &&
	    in->req.nheaders < MAX_PARAMS) {
		if ((colon = strchr(line, ':')) == NULL)
			continue;
		*colon++ = '\0';
		while (*colon == ' ')
			colon++;
		in->headers[in->req.nheaders].name = line;
		in->headers[in->req.nheaders++].value = colon;
	}
	in->req.body = p;
	in->req.body_len = (size_t)(end - p);
	return 0;
}

static int
known_status(int s)
{
	static const int ok[] = { 200, 201, 400, 401, 403, 404, 405, 409,
	    413, 415, 422, 429, 503 };
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (ok[i] == s)
			return 1;
	return 0;
}

static void
check_body(const struct sg_http_response *resp)
{
	json_t *j, *st;

	if (resp->body == NULL || resp->body_len == 0 ||
	    resp->content_type == NULL)
		abort();
	if (strstr(resp->content_type, "json") == NULL)
		return;
	if ((j = json_loadb(resp->body, resp->body_len, 0, NULL)) == NULL)
		abort();
	if (strcmp(resp->content_type, "application/problem+json") == 0) {
		st = json_object_get(j, "status");
		if (resp->status < 400 || json_integer_value(st) !=
		    resp->status || !json_is_string(json_object_get(j,
		    "detail")) || !json_is_string(json_object_get(j, "title")))
			abort();
	} else if (resp->status >= 400 && resp->status != 503)
		abort();
	json_decref(j);
}

static void
check_rules(const struct input *in, const struct sg_http_response *resp)
{
	const char *path = in->req.path;
	int anon_limited = resp->status == 429 && !in->req.authenticated;

	if (resp->wait_id[0] != '\0') {
		if (strcmp(in->req.method, "GET") != 0 ||
		    strncmp(path, "/v1/requests/", 13) != 0 ||
		    in->req.resumed || resp->body != NULL)
			abort();
		return;
	}
	if (!known_status(resp->status))
		abort();
	check_body(resp);
	/* The service changes nothing but for a principal's POST. */
	if (svc.mutations > 0 && (strcmp(in->req.method, "POST") != 0 ||
	    !in->principal || svc.mutations != 1))
		abort();
	/* Without a certificate only the log (and, in plain HTTP, reads). */
	if (!in->req.authenticated && !in->plain_http &&
	    strncmp(path, "/v1/", 4) == 0 &&
	    strncmp(path, "/v1/log/", 8) != 0 &&
	    resp->status != 401 && !anon_limited)
		abort();
	if (!in->req.loopback && (strcmp(path, "/healthz") == 0 ||
	    strcmp(path, "/readyz") == 0 || strcmp(path, "/metrics") == 0) &&
	    resp->status != 403 && !anon_limited)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct sg_http_response resp;
	struct sg_api *a = NULL;
	struct input in;

	if (!ready) {
		if (stub_init(&svc) != 0)
			abort();
		ready = 1;
	}
	if (decode(&in, data, size) != 0)
		return 0;
	if (sg_api_new(&svc, in.plain_http, in.rate ? 1 : 0, 1, &a) != 0)
		abort();
	sg_api_set_clock(a, stub_now_ms);
	if (in.anon_rate)
		sg_api_set_anonymous_rate(a, 1, 1);
	memset(&resp, 0, sizeof(resp));
	sg_api_dispatch(a, &in.req, &resp);
	check_rules(&in, &resp);
	free(resp.body);
	/* A second request: the budgets and counters of the first hold. */
	memset(&resp, 0, sizeof(resp));
	sg_api_dispatch(a, &in.req, &resp);
	if (resp.wait_id[0] == '\0' && !known_status(resp.status))
		abort();
	free(resp.body);
	sg_api_free(a);
	free(in.buf);
	return 0;
}
