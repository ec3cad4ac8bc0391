/*
 * The endpoints of releases and grants: creating them (their bodies
 * checked member by member, each error naming its field), a release's
 * manifest and its artifacts with their signatures, and revoking a grant.
 * Decisions, cancellation and reading them back go through the request
 * endpoints (api_requests.c): a release and a grant are approved like a
 * request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api_int.h"
#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_limits.h"
#include "sg_manifest.h"
#include "sg_service.h"
#include "sg_text.h"
#include "sg_util.h"

#define ITEMS_DEFAULT 100
#define ITEMS_MAX 1000

json_t *
api_artifact_signature_json(struct sg_api *a, const struct sg_request *o,
    const char *digest_alg, enum sg_format fmt, int64_t log_index,
    const uint8_t *sig, size_t sig_len, const uint8_t *cms, size_t cms_len,
    const char *what, struct sg_fault *f)
{
	const struct sg_key_view *kv = sg_service_key(a->svc, o->key);
	const char *alg = kv != NULL ? sg_scheme_name(kv->pk->alg,
	    kv->pk->scheme) : NULL;
	char *b64 = NULL, *proof = NULL;
	json_t *j = NULL;

	/* Never hand out a signature without its proof. */
	if (log_index < 0 || o->approved_index < 0 ||
	    sg_service_artifact_bundle(a->svc, (uint64_t)log_index,
	    (uint64_t)o->approved_index, what, &proof, f) != 0)
		return NULL;
	if ((b64 = sg_b64_encode(sig, sig_len)) == NULL)
		goto out;
	j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:I, s:I, s:s}}",
	    "format", sg_format_str(fmt), "algorithm",
	    alg != NULL ? alg : "unknown", "digest_algorithm", digest_alg,
	    "key", o->key, "spki_sha256", o->spki_sha256, "signature", b64,
	    "log", "index", (json_int_t)log_index, "approved_index",
	    (json_int_t)o->approved_index, "proof", proof);
	free(b64);
	if (j != NULL && cms != NULL) {
		if ((b64 = sg_b64_encode(cms, cms_len)) != NULL)
			json_object_set_new(j, "cms", json_string(b64));
		free(b64);
	}
out:
	free(proof);
	return j;
}

/* One artifact of the body's "artifacts" as a line (malloc'd). */
static int
parse_item(struct sg_http_response *resp, json_t *it, size_t i,
    enum sg_format fmt, char **ret)
{
	static const char *const allowed[] = { "name", "version", "digest",
	    NULL };
	struct sg_new_request nr;
	struct sg_artifact_line al;
	char prefix[48], field[64], line[SG_ARTIFACT_LINE_MAX + 1];
	json_t *v;
	size_t n;

	snprintf(prefix, sizeof(prefix), "artifacts[%zu].", i);
	if (!json_is_object(it)) {
		api_problem(resp, 400, "artifacts", "artifacts[%zu]: must be an "
		    "object with name, digest and optional version", i);
		return -1;
	}
	if (api_only_fields(resp, it, prefix, allowed) != 0)
		return -1;
	memset(&al, 0, sizeof(al));
	al.format = fmt;
	v = json_object_get(it, "name");
	if (!json_is_string(v) || !sg_artifact_word_valid(json_string_value(v),
	    json_string_length(v), SG_ARTIFACT_LINE_NAME_MAX)) {
		snprintf(field, sizeof(field), "%sname", prefix);
		api_problem(resp, 400, field, "%s: must be 1 to %d bytes of "
		    "printable ASCII without spaces", field,
		    SG_ARTIFACT_LINE_NAME_MAX);
		return -1;
	}
	snprintf(al.name, sizeof(al.name), "%s", json_string_value(v));
	if ((v = json_object_get(it, "version")) != NULL &&
	    (!json_is_string(v) || !sg_artifact_word_valid(
	    json_string_value(v), json_string_length(v),
	    SG_ARTIFACT_LINE_VERSION_MAX))) {
		snprintf(field, sizeof(field), "%sversion", prefix);
		api_problem(resp, 400, field, "%s: must be 1 to %d bytes of "
		    "printable ASCII without spaces", field,
		    SG_ARTIFACT_LINE_VERSION_MAX);
		return -1;
	}
	if (v != NULL)
		snprintf(al.version, sizeof(al.version), "%s",
		    json_string_value(v));
	memset(&nr, 0, sizeof(nr));
	if (api_parse_digest(resp, json_object_get(it, "digest"), prefix,
	    &nr) != 0)
		return -1;
	al.digest_alg = nr.digest_alg;
	memcpy(al.digest, nr.digest, nr.digest_len);
	al.digest_len = nr.digest_len;
	if (sg_artifact_line_build(&al, line, sizeof(line), &n) != 0 ||
	    (*ret = strdup(line)) == NULL) {
		api_problem(resp, 400, "artifacts", "%s: not an artifact", prefix);
		return -1;
	}
	return 0;
}

/* The lines of "artifacts", names unique. */
static int
parse_items(struct sg_http_response *resp, json_t *arr, enum sg_format fmt,
    char ***ret, size_t *ret_n)
{
	struct sg_artifact_line al, bl;
	char **lines, field[64];
	size_t i, k, n;

	if (!json_is_array(arr) || (n = json_array_size(arr)) == 0 ||
	    n > SG_RELEASE_MAX) {
		api_problem(resp, 400, "artifacts", "artifacts: must be an array "
		    "of 1 to %d artifacts", SG_RELEASE_MAX);
		return -1;
	}
	if ((lines = calloc(n, sizeof(*lines))) == NULL)
		return -1;
	*ret = lines;
	*ret_n = 0;
	for (i = 0; i < n; i++) {
		if (parse_item(resp, json_array_get(arr, i), i, fmt,
		    &lines[i]) != 0)
			return -1;
		*ret_n = i + 1;
	}
	/* Names are unique in a release (quadratic only in what a 4 MiB
	 * body holds: compared through a sorted copy would be faster, but
	 * a duplicate must be named with its positions). */
	for (i = 1; i < n; i++) {
		if (sg_artifact_line_parse(lines[i], strlen(lines[i]), &al))
			return -1;
		for (k = 0; k < i; k++) {
			if (sg_artifact_line_parse(lines[k], strlen(lines[k]),
			    &bl) == 0 && strcmp(al.name, bl.name) == 0) {
				snprintf(field, sizeof(field),
				    "artifacts[%zu].name", i);
				api_problem(resp, 400, field, "%s: '%s' is also "
				    "artifacts[%zu]'s", field, al.name, k);
				return -1;
			}
		}
	}
	return 0;
}

static void
lines_free(char **lines, size_t n)
{
	size_t i;

	for (i = 0; lines != NULL && i < n; i++)
		free(lines[i]);
	free(lines);
}

static int
parse_format(struct sg_http_response *resp, json_t *body,
    enum sg_format *ret)
{
	json_t *v;

	*ret = SG_FORMAT_RAW;
	if ((v = json_object_get(body, "format")) != NULL &&
	    (!json_is_string(v) ||
	    sg_format_parse(json_string_value(v), ret) != 0)) {
		api_problem(resp, 400, "format", "format: must be raw or cms");
		return -1;
	}
	return 0;
}

static int
parse_key(struct sg_http_response *resp, json_t *body, const char **ret)
{
	json_t *v = json_object_get(body, "key");

	if (!json_is_string(v) ||
	    !sg_name_ok(json_string_value(v), SG_NAME_LEN_MAX)) {
		api_problem(resp, 400, "key", "key: must be a key name");
		return -1;
	}
	*ret = json_string_value(v);
	return 0;
}

/* Creates what nr describes and answers with it. */
static void
create(struct call *c, struct sg_new_request *nr)
{
	struct sg_request *q = NULL;
	struct sg_fault f;
	char body_sha[SG_SHA256_HEX_SIZE];
	int r, existing = 0;

	memset(&f, 0, sizeof(f));
	if (api_parse_idempotency(c->req, c->resp, nr, body_sha) != 0)
		return;
	nr->requester = c->principal;
	if ((r = sg_service_create(c->a->svc, nr, &q, &existing, &f)) != 0) {
		api_service_problem(c->resp, r, &f);
		return;
	}
	snprintf(c->resp->location, sizeof(c->resp->location),
	    "/v1/requests/%s", q->id);
	api_respond_request(c->a, c->resp, existing ? 200 : 201, q);
	sg_request_free(q);
}

/* POST /v1/releases */
void
api_post_release(struct call *c)
{
	static const char *const top[] = { "key", "format", "release",
	    "artifacts", NULL };
	struct sg_new_request nr;
	char **lines = NULL, *meta = NULL;
	size_t n = 0;
	json_t *v;

	memset(&nr, 0, sizeof(nr));
	nr.kind = SG_KIND_RELEASE;
	if (api_only_fields(c->resp, c->body, "", top) != 0 ||
	    parse_key(c->resp, c->body, &nr.key) != 0 ||
	    parse_format(c->resp, c->body, &nr.format) != 0)
		goto out;
	if ((v = json_object_get(c->body, "release")) != NULL) {
		if (api_parse_artifact(c->resp, v, "release", 0, &meta) != 0)
			goto out;
	} else
		meta = strdup("{}");
	if (meta == NULL)
		goto out;
	if (parse_items(c->resp, json_object_get(c->body, "artifacts"),
	    nr.format, &lines, &n) != 0)
		goto out;
	nr.artifact_json = meta;
	nr.lines = (const char *const *)lines;
	nr.nlines = n;
	create(c, &nr);
out:
	lines_free(lines, n);
	free(meta);
}

/* POST /v1/grants */
void
api_post_grant(struct call *c)
{
	static const char *const top[] = { "key", "format", "count",
	    "lifetime", "artifact", NULL };
	struct sg_new_request nr;
	json_t *v;

	memset(&nr, 0, sizeof(nr));
	nr.kind = SG_KIND_GRANT;
	nr.artifact_json = "{}";
	nr.pattern = "*";
	if (api_only_fields(c->resp, c->body, "", top) != 0 ||
	    parse_key(c->resp, c->body, &nr.key) != 0 ||
	    parse_format(c->resp, c->body, &nr.format) != 0)
		return;
	v = json_object_get(c->body, "count");
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > SG_GRANT_MAX) {
		api_problem(c->resp, 400, "count", "count: must be a whole "
		    "number from 1 to %d", SG_GRANT_MAX);
		return;
	}
	nr.count = (uint64_t)json_integer_value(v);
	v = json_object_get(c->body, "lifetime");
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > 30 * 86400) {
		api_problem(c->resp, 400, "lifetime", "lifetime: must be the "
		    "grant's duration in seconds, 1 to %d", 30 * 86400);
		return;
	}
	nr.lifetime = (uint64_t)json_integer_value(v);
	if ((v = json_object_get(c->body, "artifact")) != NULL) {
		if (!json_is_string(v) ||
		    !sg_pattern_valid(json_string_value(v))) {
			api_problem(c->resp, 400, "artifact", "artifact: must be "
			    "a name pattern of 1 to %d bytes of printable "
			    "ASCII without spaces ('*' any run, '?' one byte)",
			    SG_PATTERN_MAX);
			return;
		}
		nr.pattern = json_string_value(v);
	}
	create(c, &nr);
}

/* POST /v1/grants/{id}/revoke {"reason": "..."} */
void
api_post_revoke(struct call *c)
{
	api_with_reason(c, sg_service_revoke);
}

/* The release of the path's {id}, or NULL with the problem answered. */
static struct sg_request *
fetch_release(struct call *c)
{
	struct sg_request *o;

	if ((o = api_fetch_request(c)) == NULL)
		return NULL;
	if (o->kind == SG_KIND_RELEASE)
		return o;
	api_problem(c->resp, 404, NULL, "%s is a %s, not a release", c->id,
	    sg_kind_str(o->kind));
	sg_request_free(o);
	return NULL;
}

/* GET /v1/releases/{id}/manifest: the lines, each with its LF. */
void
api_get_manifest(struct call *c)
{
	struct sg_release_item *items = NULL;
	struct sg_request *o;
	size_t i, n = 0, len = 0;
	char *text;

	if ((o = fetch_release(c)) == NULL)
		return;
	if (sg_service_release_items(c->a->svc, o->id, 0, o->count, &items,
	    &n) != 0 || n != o->count) {
		api_problem(c->resp, 503, NULL, "the manifest cannot be read");
		goto out;
	}
	for (i = 0; i < n; i++)
		len += strlen(items[i].line) + 1;
	if ((text = malloc(len + 1)) == NULL) {
		api_problem(c->resp, 500, NULL, "out of memory");
		goto out;
	}
	for (i = 0, len = 0; i < n; i++) {
		size_t k = strlen(items[i].line);
		memcpy(text + len, items[i].line, k);
		text[len + k] = '\n';
		len += k + 1;
	}
	c->resp->status = 200;
	c->resp->content_type = "text/plain; charset=us-ascii";
	c->resp->body = text;
	c->resp->body_len = len;
out:
	sg_release_items_free(items, n);
	sg_request_free(o);
}

static json_t *
item_json(struct sg_api *a, const struct sg_request *o,
    const struct sg_release_item *it, struct sg_fault *f)
{
	struct sg_artifact_line al;
	char hex[SG_DIGEST_HEX_SIZE], what[64];
	json_t *j, *sig;

	if (sg_artifact_line_parse(it->line, strlen(it->line), &al) != 0)
		return NULL;
	sg_hex_encode(al.digest, al.digest_len, hex);
	j = json_pack("{s:I, s:s, s:s, s:{s:s, s:s}, s:s, s:s}", "position",
	    (json_int_t)it->position, "line", it->line, "name", al.name,
	    "digest", "algorithm", sg_digest_name(al.digest_alg), "value", hex,
	    "format", sg_format_str(al.format), "state",
	    it->signature != NULL ? "signed" : "pending");
	if (j != NULL && al.version[0] != '\0')
		json_object_set_new(j, "version", json_string(al.version));
	if (j == NULL || it->signature == NULL)
		return j;
	snprintf(what, sizeof(what), "the signature of artifact %llu",
	    (unsigned long long)it->position);
	sig = api_artifact_signature_json(a, o, sg_digest_name(al.digest_alg),
	    al.format, it->log_index, it->signature, it->signature_len,
	    it->cms, it->cms_len, what, f);
	if (sig == NULL) {
		json_decref(j);
		return NULL;
	}
	json_object_set_new(j, "signature", sig);
	return j;
}

/* GET /v1/releases/{id}/artifacts?after=P&limit=L */
void
api_get_artifacts(struct call *c)
{
	const char *after_s = api_query(c, "after");
	const char *limit_s = api_query(c, "limit");
	struct sg_release_item *items = NULL;
	struct sg_request *o;
	struct sg_fault f;
	uint64_t after = 0, limit = ITEMS_DEFAULT;
	size_t i, n = 0;
	json_t *arr, *j;

	if (after_s != NULL && sg_parse_u64(after_s, 0, SG_RELEASE_MAX,
	    &after) != 0) {
		api_problem(c->resp, 400, "after", "after: must be a position, "
		    "0 to %d", SG_RELEASE_MAX);
		return;
	}
	if (limit_s != NULL && sg_parse_u64(limit_s, 1, ITEMS_MAX,
	    &limit) != 0) {
		api_problem(c->resp, 400, "limit", "limit: must be 1 to %d",
		    ITEMS_MAX);
		return;
	}
	if ((o = fetch_release(c)) == NULL)
		return;
	if (sg_service_release_items(c->a->svc, o->id, after, limit, &items,
	    &n) != 0) {
		api_problem(c->resp, 503, NULL, "the artifacts cannot be read");
		goto out;
	}
	arr = json_array();
	memset(&f, 0, sizeof(f));
	for (i = 0; i < n; i++) {
		if ((j = item_json(c->a, o, &items[i], &f)) == NULL) {
			json_decref(arr);
			if (f.detail[0] != '\0')
				api_service_problem(c->resp,
				    SG_ERR_UNAVAILABLE, &f);
			else
				api_problem(c->resp, 503, NULL, "artifact %llu "
				    "or its log proof cannot be read",
				    (unsigned long long)items[i].position);
			goto out;
		}
		json_array_append_new(arr, j);
	}
	j = json_pack("{s:o}", "artifacts", arr);
	if (n > 0 && n == limit && after + n < o->count)
		json_object_set_new(j, "next", json_integer(
		    (json_int_t)(items[n - 1].position + 1)));
	else
		json_object_set_new(j, "next", json_null());
	api_set_json(c->resp, 200, j);
out:
	sg_release_items_free(items, n);
	sg_request_free(o);
}
