/*
 * The public transparency log endpoints: GET /v1/log/checkpoint, /key,
 * /entries/{index}, /proof/inclusion and /proof/consistency.  Anyone may
 * call them (the router checks nothing but the anonymous budget); they
 * only read the log through the service (sg_service.h) and answer as
 * text or, for proofs, as JSON with base64 hashes, through api.c's
 * problem and rendering helpers (api_int.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api_int.h"
#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_util.h"

static void
set_text(struct sg_http_response *resp, int status, const char *type,
    char *body, size_t len)
{
	resp->status = status;
	resp->content_type = type;
	resp->body = body;
	resp->body_len = len;
}

static int
query_u64(struct call *c, const char *name, uint64_t min, uint64_t *ret)
{
	const char *v = api_query(c, name);

	if (v == NULL || sg_parse_u64(v, min, INT64_MAX, ret) != 0) {
		api_problem(c->resp, 400, name, "%s: must be a whole number from "
		    "%llu", name, (unsigned long long)min);
		return -1;
	}
	return 0;
}

static json_t *
hashes_json(uint8_t (*h)[SG_HASH_LEN], size_t n)
{
	json_t *arr = json_array();
	size_t i;

	for (i = 0; i < n; i++) {
		char *b = sg_b64_encode(h[i], SG_HASH_LEN);
		json_array_append_new(arr, json_string(b ? b : ""));
		free(b);
	}
	return arr;
}

/* GET /v1/log/checkpoint */
void
api_get_log_checkpoint(struct call *c)
{
	char *text = NULL;
	uint64_t size;

	if (sg_service_log_checkpoint(c->a->svc, &text, &size) != 0)
		api_problem(c->resp, 503, NULL, "the log cannot be read");
	else
		set_text(c->resp, 200, "text/plain; charset=utf-8", text,
		    strlen(text));
}

/* GET /v1/log/key */
void
api_get_log_key(struct call *c)
{
	char *text = NULL;

	if (asprintf(&text, "%s\n", sg_service_log_vkey(c->a->svc)) < 0)
		api_problem(c->resp, 500, NULL, "out of memory");
	else
		set_text(c->resp, 200, "text/plain; charset=utf-8", text,
		    strlen(text));
}

/* GET /v1/log/entries/{index} */
void
api_get_log_entry(struct call *c)
{
	char *text = NULL;
	size_t len;
	int r;

	r = sg_service_log_entry(c->a->svc, c->index, &text, &len);
	if (r == SG_ERR_NOT_FOUND)
		api_problem(c->resp, 404, NULL, "no entry %llu under the latest "
		    "checkpoint", (unsigned long long)c->index);
	else if (r != 0)
		api_problem(c->resp, 503, NULL, "the log cannot be read");
	else
		set_text(c->resp, 200, "text/plain; charset=us-ascii", text,
		    len);
}

/* A log proof between two query numbers, a and b: hashes as JSON. */
struct proof_route {
	const char *a, *b;             /* the query arguments */
	uint64_t a_min;                /* b's minimum is 1 */
	int (*fn)(struct sg_service *, uint64_t, uint64_t,
	    uint8_t (*)[SG_HASH_LEN], size_t, size_t *);
	const char *why;               /* the 400's detail, about b */
};

static void
get_log_proof(struct call *c, const struct proof_route *pr)
{
	uint8_t hashes[SG_MERKLE_MAX_PROOF][SG_HASH_LEN];
	uint64_t x, y;
	size_t n;
	int r;

	if (query_u64(c, pr->a, pr->a_min, &x) != 0 ||
	    query_u64(c, pr->b, 1, &y) != 0)
		return;
	r = pr->fn(c->a->svc, x, y, hashes, SG_MERKLE_MAX_PROOF, &n);
	if (r == SG_ERR_INVALID)
		api_problem(c->resp, 400, pr->b, "%s", pr->why);
	else if (r != 0)
		api_problem(c->resp, 503, NULL, "the log cannot be read");
	else
		api_set_json(c->resp, 200, json_pack("{s:I, s:I, s:o}", pr->a,
		    (json_int_t)x, pr->b, (json_int_t)y, "hashes",
		    hashes_json(hashes, n)));
}

/* GET /v1/log/proof/inclusion?index=&size= */
void
api_get_log_inclusion(struct call *c)
{
	static const struct proof_route pr = { "index", "size", 0,
	    sg_service_log_inclusion, "index must be below size, and size "
	    "at most the latest checkpoint's" };

	get_log_proof(c, &pr);
}

/* GET /v1/log/proof/consistency?old=&new= */
void
api_get_log_consistency(struct call *c)
{
	static const struct proof_route pr = { "old", "new", 1,
	    sg_service_log_consistency, "need 0 < old <= new <= the latest "
	    "checkpoint's size" };

	get_log_proof(c, &pr);
}
