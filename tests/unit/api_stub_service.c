/*
 * The service stand-in of api_stub_service.h.  Every operation records
 * its name and arguments in the struct sg_service, counts itself, and
 * answers s->result: on success a request built here (state s->state),
 * on failure s->fault for the operations that take one.  Nothing here
 * checks what the router passes: the tests read the record and decide.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_stub_service.h"
#include "sg_err.h"
#include "sg_http.h"

int64_t stub_clock_ms = 1000000;

const uint8_t stub_audit_sha256[32] = {
	0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
	0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
	0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7,
	0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf,
};

static const char stub_policy[] =
    "policy signgate-test\n"
    "version 3\n"
    "principal ci\n"
    "    roles requester\n"
    "    client-cn ci\n"
    "end\n"
    "principal audit\n"
    "    roles auditor\n"
    "    client-sha256 "
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf\n"
    "end\n"
    "hsm 00c0ffee\n"
    "    site Zurich\n"
    "    country CH\n"
    "end\n"
    "key nightly\n"
    "    token signgate-dev\n"
    "    object nightly\n"
    "    algorithm ed25519\n"
    "    formats raw\n"
    "    requesters ci\n"
    "    countries CH\n"
    "end\n"
    "key release\n"
    "    token signgate-dev\n"
    "    object release\n"
    "    algorithm ecdsa-p256\n"
    "    formats raw\n"
    "    requesters ci\n"
    "    countries CH\n"
    "end\n";

#define STUB_ID "0123456789abcdef0123456789abcdef"

static void
copy(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src != NULL ? src : "");
}

static void
record(struct sg_service *s, const char *name)
{
	s->calls++;
	copy(s->last, sizeof(s->last), name);
}

int
stub_init(struct sg_service *s)
{
	char err[256];
	size_t i;

	memset(s, 0, sizeof(*s));
	if (sg_policy_parse("stub.policy", stub_policy, strlen(stub_policy),
	    &s->policy, err, sizeof(err)) != 0) {
		fprintf(stderr, "stub policy: %s\n", err);
		return -1;
	}
	s->nkeys = STUB_NKEYS;
	for (i = 0; i < s->nkeys; i++) {
		struct sg_key_view *kv = &s->keys[i];
		kv->pk = sg_policy_key_at(s->policy, i);
		memset(kv->spki_sha256, 'a' + (int)i, 64);
		kv->public_key_pem = "-----BEGIN PUBLIC KEY-----\n";
		copy(kv->token.label, sizeof(kv->token.label), "signgate-dev");
		copy(kv->token.serial, sizeof(kv->token.serial), "00c0ffee");
		kv->hsm = sg_policy_hsm(s->policy, "00c0ffee");
		kv->usable = i == 0;
		copy(kv->reason, sizeof(kv->reason), i == 0 ? "" :
		    "the token is not present");
	}
	stub_reset(s);
	return 0;
}

void
stub_reset(struct sg_service *s)
{
	struct sg_policy *p = s->policy;
	struct sg_key_view keys[STUB_NKEYS];

	memcpy(keys, s->keys, sizeof(keys));
	memset(s, 0, sizeof(*s));
	s->policy = p;
	memcpy(s->keys, keys, sizeof(keys));
	s->nkeys = STUB_NKEYS;
	s->state = SG_REQ_PENDING;
}

void
stub_free(struct sg_service *s)
{
	sg_policy_free(s->policy);
	s->policy = NULL;
}

/* A request as the store would return it, in state s->state. */
static struct sg_request *
make_request(struct sg_service *s, const char *id)
{
	struct sg_request *q;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		abort();
	q->seq = 42;
	copy(q->id, sizeof(q->id), id);
	copy(q->key, sizeof(q->key), "nightly");
	copy(q->digest_alg, sizeof(q->digest_alg), "sha256");
	memset(q->digest_hex, '0', 64);
	q->format = SG_FORMAT_RAW;
	copy(q->requester, sizeof(q->requester), "ci");
	copy(q->policy_name, sizeof(q->policy_name), "signgate-test");
	q->policy_version = 3;
	memset(q->policy_sha256, 'f', 64);
	q->state = s->state;
	q->kind = s->kind;
	q->approved_index = s->kind != SG_KIND_REQUEST ? 3 : -1;
	q->count = s->kind == SG_KIND_RELEASE ? s->nitems : 0;
	q->created_at = 1700000000;
	q->expires_at = 1700003600;
	q->log_index = -1;
	if ((q->artifact_json = strdup("{\"name\":\"a\"}")) == NULL ||
	    (q->statement = strdup("statement")) == NULL)
		abort();
	if (s->state == SG_REQ_SIGNED) {
		if ((q->signature = malloc(3)) == NULL)
			abort();
		memcpy(q->signature, "sig", 3);
		q->signature_len = 3;
		q->log_index = 7;
	}
	if (s->state == SG_REQ_CANCELLED) {
		copy(q->cancelled_by, sizeof(q->cancelled_by), "ci");
		if ((q->cancel_reason = strdup("wrong build")) == NULL)
			abort();
	}
	return q;
}

/* ---- sg_service.h -------------------------------------------------------- */

const double sg_hsm_bucket_bounds[SG_HSM_BUCKETS] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
};

const struct sg_policy *
sg_service_policy(const struct sg_service *s)
{
	return s->policy;
}

size_t
sg_service_nkeys(const struct sg_service *s)
{
	return s->nkeys;
}

const struct sg_key_view *
sg_service_key_at(const struct sg_service *s, size_t i)
{
	return i < s->nkeys ? &s->keys[i] : NULL;
}

const struct sg_key_view *
sg_service_key(const struct sg_service *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->nkeys; i++)
		if (strcmp(s->keys[i].pk->name, name) == 0)
			return &s->keys[i];
	return NULL;
}

static int
answer(struct sg_service *s, const char *id, struct sg_request **ret,
    struct sg_fault *f)
{
	*ret = NULL;
	if (s->result != 0) {
		if (f != NULL)
			*f = s->fault;
		return s->result;
	}
	*ret = make_request(s, id);
	return 0;
}

/* What a release, a grant or a request under a grant adds. */
static void
record_kind(struct sg_service *s, const struct sg_new_request *nr)
{
	size_t i;

	for (i = 0; i < nr->nlines && i < 4; i++)
		copy(s->nr_lines[i], sizeof(s->nr_lines[i]), nr->lines[i]);
	copy(s->nr_pattern, sizeof(s->nr_pattern), nr->pattern);
	copy(s->nr_grant, sizeof(s->nr_grant), nr->grant);
	s->nr_has_grant = nr->grant != NULL;
}

int
sg_service_create(struct sg_service *s, const struct sg_new_request *nr,
    struct sg_request **ret, int *ret_existing, struct sg_fault *f)
{
	record(s, "create");
	s->mutations++;
	s->nr = *nr;
	copy(s->nr_key, sizeof(s->nr_key), nr->key);
	copy(s->nr_format, sizeof(s->nr_format),
	    sg_format_str(nr->format));
	copy(s->nr_requester, sizeof(s->nr_requester), nr->requester);
	copy(s->nr_artifact, sizeof(s->nr_artifact), nr->artifact_json);
	copy(s->nr_idem, sizeof(s->nr_idem), nr->idem_key);
	copy(s->nr_body_sha, sizeof(s->nr_body_sha), nr->body_sha256);
	s->nr_has_idem = nr->idem_key != NULL;
	record_kind(s, nr);
	/* Its pointers die with the request. */
	s->nr.key = s->nr.requester = NULL;
	s->nr.artifact_json = s->nr.idem_key = s->nr.body_sha256 = NULL;
	s->nr.lines = NULL;
	s->nr.pattern = s->nr.grant = NULL;
	*ret_existing = s->existing;
	return answer(s, STUB_ID, ret, f);
}

void
sg_service_create_async(struct sg_service *s, const struct sg_new_request *nr,
    sg_service_created_fn done, void *done_arg)
{
	struct sg_request *q = NULL;
	struct sg_fault f;
	int r, existing = 0;

	memset(&f, 0, sizeof(f));
	r = sg_service_create(s, nr, &q, &existing, &f);
	done(done_arg, r, r == 0 ? q : NULL, existing, &f);
}

void
sg_service_decide_async(struct sg_service *s, const char *id,
    const char *principal, const char *envelope_json, size_t len,
    sg_service_decided_fn done, void *done_arg)
{
	struct sg_request *q = NULL;
	struct sg_fault f;
	int r;

	memset(&f, 0, sizeof(f));
	r = sg_service_decide(s, id, principal, envelope_json, len, &q, &f);
	done(done_arg, r, r == 0 ? q : NULL, &f);
}

int
sg_service_decide(struct sg_service *s, const char *id,
    const char *principal, const char *envelope_json, size_t len,
    struct sg_request **ret, struct sg_fault *f)
{
	record(s, "decide");
	s->mutations++;
	copy(s->id, sizeof(s->id), id);
	copy(s->principal, sizeof(s->principal), principal);
	s->text_len = len;
	memcpy(s->text, envelope_json, len < STUB_TEXT_MAX ? len :
	    STUB_TEXT_MAX);
	s->text[len < STUB_TEXT_MAX ? len : STUB_TEXT_MAX] = '\0';
	return answer(s, id, ret, f);
}

int
sg_service_cancel(struct sg_service *s, const char *id,
    const char *principal, const char *reason, struct sg_request **ret,
    struct sg_fault *f)
{
	record(s, "cancel");
	s->mutations++;
	copy(s->id, sizeof(s->id), id);
	copy(s->principal, sizeof(s->principal), principal);
	copy(s->text, sizeof(s->text), reason);
	s->text_len = strlen(s->text);
	return answer(s, id, ret, f);
}

int
sg_service_revoke(struct sg_service *s, const char *id,
    const char *principal, const char *reason, struct sg_request **ret,
    struct sg_fault *f)
{
	record(s, "revoke");
	s->mutations++;
	copy(s->id, sizeof(s->id), id);
	copy(s->principal, sizeof(s->principal), principal);
	copy(s->text, sizeof(s->text), reason);
	s->text_len = strlen(s->text);
	return answer(s, id, ret, f);
}

/* The store's, which the API frees (the stub stands in for the store). */
void
sg_release_items_free(struct sg_release_item *v, size_t n)
{
	size_t i;

	for (i = 0; v != NULL && i < n; i++) {
		free(v[i].line);
		free(v[i].signature);
		free(v[i].cms);
	}
	free(v);
}

int
sg_service_release_items(struct sg_service *s, const char *id,
    uint64_t after, size_t max, struct sg_release_item **ret, size_t *ret_n)
{
	struct sg_release_item *v;
	size_t i, n = 0;

	record(s, "release_items");
	copy(s->id, sizeof(s->id), id);
	s->x = after;
	s->y = max;
	*ret = NULL;
	*ret_n = 0;
	if (s->result != 0)
		return s->result;
	if ((v = calloc(s->nitems + 1, sizeof(*v))) == NULL)
		abort();
	for (i = after; i < s->nitems && n < max; i++, n++) {
		v[n].position = i;
		v[n].log_index = -1;
		if ((v[n].line = strdup(s->items[i])) == NULL)
			abort();
		if (i < s->nsigned) {
			if ((v[n].signature = malloc(3)) == NULL)
				abort();
			memcpy(v[n].signature, "sig", 3);
			v[n].signature_len = 3;
			v[n].log_index = 100 + (int64_t)i;
		}
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* The bundles: bundle_result, with the fault and `what` recorded. */
static int
bundle(struct sg_service *s, const char *what, char **ret,
    struct sg_fault *f)
{
	*ret = NULL;
	snprintf(s->what, sizeof(s->what), "%s", what);
	if (s->bundle_result != 0) {
		if (f != NULL)
			*f = s->fault;
		return s->bundle_result;
	}
	if ((*ret = strdup("c2sp.org/tlog-proof@v1\n")) == NULL)
		abort();
	return 0;
}

int
sg_service_artifact_bundle(struct sg_service *s, uint64_t index,
    uint64_t approved_index, const char *what, char **ret,
    struct sg_fault *f)
{
	(void)index;
	(void)approved_index;
	return bundle(s, what, ret, f);
}

int
sg_service_get(struct sg_service *s, const char *id, struct sg_request **ret)
{
	record(s, "get");
	copy(s->id, sizeof(s->id), id);
	return answer(s, id, ret, NULL);
}

int
sg_service_list(struct sg_service *s, enum sg_req_state state,
    const char *key, int64_t before_seq, size_t limit,
    struct sg_request ***ret, size_t *ret_n)
{
	size_t i;

	record(s, "list");
	copy(s->state_arg, sizeof(s->state_arg), state != SG_REQ_NONE ?
	    sg_req_state_str(state) : NULL);
	copy(s->key_arg, sizeof(s->key_arg), key);
	s->before = before_seq;
	s->limit = limit;
	*ret = NULL;
	*ret_n = 0;
	if (s->result != 0)
		return s->result;
	if ((*ret = calloc(s->nlist + 1, sizeof(**ret))) == NULL)
		abort();
	for (i = 0; i < s->nlist; i++)
		(*ret)[i] = make_request(s, STUB_ID);
	*ret_n = s->nlist;
	return 0;
}

int
sg_service_request_quorum(struct sg_service *s, const struct sg_request *r,
    struct sg_request_quorum *ret)
{
	(void)s;
	(void)r;
	memset(ret, 0, sizeof(*ret));
	ret->res.nterms = 1;
	ret->res.missing[0] = 2;
	ret->nterms = 1;
	copy(ret->terms[0].group, sizeof(ret->terms[0].group),
	    "security-officers");
	ret->terms[0].count = 2;
	copy(ret->in_force, sizeof(ret->in_force), "signgate-test@3");
	return 0;
}

int
sg_service_ready(struct sg_service *s, char *reason, size_t len)
{
	record(s, "ready");
	if (!s->not_ready)
		return 0;
	snprintf(reason, len, "key release: the token is not present");
	return SG_ERR_UNAVAILABLE;
}

const char *
sg_service_log_vkey(const struct sg_service *s)
{
	(void)s;
	return "signgate-test+01234567+AQID";
}

int
sg_service_log_checkpoint(struct sg_service *s, char **ret_note,
    uint64_t *ret_size)
{
	record(s, "log_checkpoint");
	*ret_note = NULL;
	if (s->result != 0)
		return s->result;
	if ((*ret_note = strdup("signgate-test\n8\nAAAA\n")) == NULL)
		abort();
	*ret_size = 8;
	return 0;
}

int
sg_service_log_entry(struct sg_service *s, uint64_t index, char **ret,
    size_t *ret_len)
{
	record(s, "log_entry");
	s->x = index;
	*ret = NULL;
	if (s->result != 0)
		return s->result;
	if ((*ret = strdup("entry\n")) == NULL)
		abort();
	*ret_len = strlen(*ret);
	return 0;
}

static int
proof(struct sg_service *s, const char *name, uint64_t x, uint64_t y,
    uint8_t (*out)[SG_HASH_LEN], size_t cap, size_t *ret_n)
{
	record(s, name);
	s->x = x;
	s->y = y;
	*ret_n = 0;
	if (s->result != 0)
		return s->result;
	if (cap < 2)
		abort();
	memset(out[0], 0x11, SG_HASH_LEN);
	memset(out[1], 0x22, SG_HASH_LEN);
	*ret_n = 2;
	return 0;
}

int
sg_service_log_inclusion(struct sg_service *s, uint64_t index,
    uint64_t size, uint8_t (*out)[SG_HASH_LEN], size_t cap, size_t *ret_n)
{
	return proof(s, "log_inclusion", index, size, out, cap, ret_n);
}

int
sg_service_log_consistency(struct sg_service *s, uint64_t old_size,
    uint64_t new_size, uint8_t (*out)[SG_HASH_LEN], size_t cap,
    size_t *ret_n)
{
	return proof(s, "log_consistency", old_size, new_size, out, cap,
	    ret_n);
}

int
sg_service_log_bundle(struct sg_service *s, uint64_t index, const char *what,
    char **ret, struct sg_fault *f)
{
	(void)index;
	return bundle(s, what, ret, f);
}

size_t
sg_service_witness_stats(struct sg_service *s, struct sg_witness_stats *out,
    size_t cap)
{
	(void)s;
	(void)out;
	(void)cap;
	return 0;
}

/* One full hash tile of 0x5a bytes; every other tile is not covered. */
int
sg_service_log_tile(struct sg_service *s, const struct sg_tile *tile,
    uint8_t **ret, size_t *ret_len, uint64_t *ret_bad)
{
	(void)s;
	(void)ret_bad;
	if (tile->entries || tile->level != 0 || tile->index != 0 ||
	    tile->width != SG_TILE_WIDTH)
		return SG_ERR_NOT_FOUND;
	if ((*ret = malloc(SG_TILE_HASHES_MAX)) == NULL)
		abort();
	memset(*ret, 0x5a, SG_TILE_HASHES_MAX);
	*ret_len = SG_TILE_HASHES_MAX;
	return 0;
}

uint64_t
sg_service_key_signatures(struct sg_service *s, size_t i)
{
	(void)s;
	return 10 + i;
}

void
sg_service_stats(struct sg_service *s, struct sg_service_stats *ret)
{
	(void)s;
	memset(ret, 0, sizeof(*ret));
	ret->requests_created = 5;
	ret->approvals = 3;
	ret->rejections = 1;
	ret->hsm_count = 4;
	ret->pending = 2;
	ret->log_size = 8;
}

/* ---- the store's request destructors (sg_store.h) ------------------------ */

void
sg_request_free(struct sg_request *q)
{
	size_t i;

	if (q == NULL)
		return;
	for (i = 0; i < q->napprovals; i++)
		free(q->approvals[i].envelope);
	free(q->approvals);
	free(q->artifact_json);
	free(q->statement);
	free(q->error);
	free(q->signature);
	free(q->cms);
	free(q->timestamp_note);
	free(q->cancel_reason);
	free(q);
}

void
sg_request_list_free(struct sg_request **v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		sg_request_free(v[i]);
	free(v);
}

/* ---- a clock for sg_api_set_clock, and the front's counters (sg_http.h) -- */

int64_t
stub_now_ms(void)
{
	return stub_clock_ms;
}

/* Requests driven without the front are answered at once. */
struct sg_http_later *
sg_http_later(const struct sg_http_request *req)
{
	(void)req;
	return NULL;
}

void
sg_http_answer(struct sg_http_later *l, struct sg_http_response *resp)
{
	(void)l;
	free(resp->body);
	resp->body = NULL;
}

void
sg_http_stats(struct sg_http_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->accepted = 17;
	st->open_authenticated = 2;
}

/* The policy versions: one logged version (SHA-256 of "a" * 64), no
 * pending one. */
#define STUB_POLICY_SHA \
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

int
sg_service_policy_get(struct sg_service *s, const char *sha256_hex,
    struct sg_policy_version *ret)
{
	(void)s;
	memset(ret, 0, sizeof(*ret));
	if (strcmp(sha256_hex, STUB_POLICY_SHA) != 0)
		return SG_ERR_NOT_FOUND;
	snprintf(ret->sha256, sizeof(ret->sha256), "%s", sha256_hex);
	snprintf(ret->status, sizeof(ret->status), "effective");
	ret->log_index = 3;
	if ((ret->text = strdup("policy stub\nversion 1\n")) == NULL)
		abort();
	return 0;
}

void
sg_policy_version_clear(struct sg_policy_version *v)
{
	free(v->text);
	memset(v, 0, sizeof(*v));
}

int
sg_service_policy_pending(struct sg_service *s,
    struct sg_policy_pending_view *ret)
{
	(void)s;
	memset(ret, 0, sizeof(*ret));
	return SG_ERR_NOT_FOUND;
}

int
sg_service_policy_approve(struct sg_service *s, const char *principal,
    const char *sha256_hex, const char *envelope, size_t len,
    struct sg_policy_pending_view *ret, struct sg_fault *f)
{
	(void)s;
	(void)principal;
	(void)sha256_hex;
	(void)envelope;
	(void)len;
	memset(ret, 0, sizeof(*ret));
	snprintf(f->detail, sizeof(f->detail), "no policy version is pending");
	return SG_ERR_NOT_FOUND;
}

void
sg_policy_pending_view_clear(struct sg_policy_pending_view *v)
{
	free(v->statement);
	memset(v, 0, sizeof(*v));
}
