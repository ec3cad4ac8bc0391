/*
 * The policy versions in the log: GET /v1/policies/{sha256} (anyone: the
 * text of a logged version, its log index in Signgate-Log-Index),
 * GET /v1/policies/pending (anyone: the version waiting for approval,
 * the statement officers sign and what is still missing) and
 * POST /v1/policies/{sha256}/approvals (an officer's approval, a DSSE
 * envelope as for requests).  The service does the work (sg_service.h);
 * this file renders it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api_int.h"
#include "sg_err.h"
#include "sg_util.h"

/* GET /v1/policies/{sha256} */
void
api_get_policy(struct call *c)
{
	struct sg_policy_version v;
	int r;

	if ((r = sg_service_policy_get(c->a->svc, c->sha, &v)) ==
	    SG_ERR_NOT_FOUND) {
		api_problem(c->resp, 404, NULL, "no logged policy has SHA-256 "
		    "%s", c->sha);
		return;
	}
	if (r != 0) {
		api_problem(c->resp, 503, NULL, "the policies cannot be read");
		return;
	}
	c->resp->status = 200;
	c->resp->content_type = "text/plain; charset=utf-8";
	c->resp->body = v.text;
	c->resp->body_len = strlen(v.text);
	snprintf(c->resp->log_index, sizeof(c->resp->log_index), "%llu",
	    (unsigned long long)v.log_index);
	v.text = NULL;
	sg_policy_version_clear(&v);
}

static json_t *
pending_json(const struct sg_policy_pending_view *v)
{
	json_t *j, *ap, *req;
	size_t i;

	ap = json_array();
	for (i = 0; i < v->napprovals; i++)
		json_array_append_new(ap, json_pack("{s:s, s:I}", "officer",
		    v->officers[i], "log_index",
		    (json_int_t)v->approval_index[i]));
	if (v->effective)
		return json_pack("{s:s, s:s, s:I, s:o, s:I}", "sha256",
		    v->sha256, "status", "effective", "log_index",
		    (json_int_t)v->log_index, "approvals", ap,
		    "effective_index", (json_int_t)v->effective_index);
	req = json_array();
	for (i = 0; i < v->nterms; i++)
		json_array_append_new(req, json_pack("{s:s, s:i, s:i}",
		    "group", v->terms[i].group, "count",
		    (int)v->terms[i].count, "missing", (int)v->missing[i]));
	j = json_pack("{s:s, s:s, s:I, s:s, s:I, s:{s:s, s:I, s:s}, s:s, "
	    "s:o, s:o}", "sha256", v->sha256, "name", v->name, "version",
	    (json_int_t)v->version, "status", "pending", "log_index",
	    (json_int_t)v->log_index, "previous", "name", v->prev_name,
	    "version", (json_int_t)v->prev_version, "sha256", v->prev_sha256,
	    "statement", v->statement, "approvals", ap, "required", req);
	return j;
}

/* GET /v1/policies/pending */
void
api_get_policy_pending(struct call *c)
{
	struct sg_policy_pending_view v;
	int r;

	if ((r = sg_service_policy_pending(c->a->svc, &v)) ==
	    SG_ERR_NOT_FOUND) {
		api_problem(c->resp, 404, NULL, "no policy version is pending");
		return;
	}
	if (r != 0) {
		api_problem(c->resp, 503, NULL, "the policies cannot be read");
		return;
	}
	api_set_json(c->resp, 200, pending_json(&v));
	sg_policy_pending_view_clear(&v);
}

/* POST /v1/policies/{sha256}/approvals */
void
api_post_policy_approval(struct call *c)
{
	struct sg_policy_pending_view v;
	struct sg_fault f;
	int r;

	memset(&f, 0, sizeof(f));
	if ((r = sg_service_policy_approve(c->a->svc, c->principal, c->sha,
	    c->req->body, c->req->body_len, &v, &f)) != 0) {
		api_service_problem(c->resp, r, &f);
		return;
	}
	api_set_json(c->resp, 200, pending_json(&v));
	sg_policy_pending_view_clear(&v);
}
