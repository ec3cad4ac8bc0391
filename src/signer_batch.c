/*
 * SIGN_BATCH: the signer's side of releases and grants.  One batch is
 * one release or grant statement, the envelopes that count, and 1 to
 * SG_SIGNER_BATCH_MAX items (position, artifact line, inclusion path); the
 * answer is one BATCH_REPLY with a status per item.
 *
 * Run by: sg_signer_child_serve_msg() (src/signer_proc.c) for a record
 * whose header says SIGN_BATCH, on a channel thread.  It may call: the
 * wire codec, the checks of src/signer_proc.c (through
 * src/signer_proc_int.h), sg_artifact_allowed() and the record
 * (sg_sigrec.h).
 *
 * The front is not trusted, so everything that holds for a single SIGN
 * holds here, checked ONCE per batch (the evidence is the same for every
 * item): the statement parses and is a release's or a grant's (a single
 * request's statement is refused here, as a release's or grant's is
 * refused by SIGN); it names a policy this signer loaded; the evidence
 * holds under it and every approval under the newest policy
 * (sg_evidence_check_now, which also checks the key allows the kind and
 * its count); the key is the statement's, by name and by the SPKI digest
 * of the key the signer opened, and still in the policy in force; the
 * format is the statement's, and the format and HSM inventory rules allow
 * it under both policies.  Any refusal there refuses the whole batch.
 *
 * Then each item on its own (a refused item does not refuse the others):
 * sg_artifact_allowed() under the statement, with the signer's clock
 * (release: the line is at its position of the manifest by its path;
 * grant: 1 <= position <= count, the name matches the pattern, before the
 * grant's end); a position twice in one batch is refused.  The digest and
 * format signed are the line's.
 *
 * At most one signature per (id, position, format): each item is a record
 * of its own in sigrec, under sg_sigrec_item_id(kind, id, position), so
 * the record's rules carry over: bound to the first statement, one
 * signature per record id and format.  A recorded item is answered with
 * the recorded bytes only when the recorded digest is the item's (checked
 * against the key first); another digest for the same position is refused
 * (SG_ERR_CONFLICT): a front cannot get N+1 signatures under a grant of N,
 * nor two artifacts signed for one slot of a release.  The batch's record
 * ids are claimed all at once; its new signatures are recorded with ONE
 * commit (sg_sigrec_put_many), and a signature goes out only once its
 * record is on disk.
 *
 * Raw items not recorded yet are signed together when the core has a
 * sign_many (the daemon's does: one HSM hand-over per batch, every
 * signature verified in the core), before the items are taken in order;
 * each item then takes its answer where it would have asked the HSM, so
 * the per-item results are those of one signature at a time.  A signature
 * made that way but not used (the reply full, out of time) is wiped,
 * never recorded nor released.  CMS items, and cores without sign_many,
 * sign one item at a time.
 *
 * The reply holds at most SG_WIRE_BATCH_DATA_MAX bytes of signatures and
 * CMS: once the next item may not fit, it and every item after it are
 * not attempted (SG_ERR_BUFFER: send them again).  So it is after an HSM
 * failure (the HSM is not asked again within the batch) and past
 * BATCH_TIME_MS (so the answer comes well within the front's deadline).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_evidence.h"
#include "sg_manifest.h"
#include "sg_signer_proc.h"
#include "sg_signer_wire.h"
#include "sg_sigrec.h"
#include "sg_util.h"
#include "signer_proc_int.h"

#define BATCH_TIME_MS 60000
_Static_assert(SG_SIGNER_BATCH_MAX <= SG_P11_MANY_MAX,
    "a batch's items reach the HSM in one hand-over");
/* What a CMS adds to its chain (PEM, larger than the DER it becomes) and
 * its signature: attributes, identifiers, framing. */
#define CMS_OVERHEAD 4096

/* One SIGN_BATCH on its way through the checks. */
struct batch {
	struct sign_job j;             /* j.req: the evidence */
	const struct sg_wire_batch_req *req;
	struct sg_batch_result *res;   /* one per item */
	struct sg_artifact_line lines[SG_SIGNER_BATCH_MAX];
	char ids[SG_SIGNER_BATCH_MAX][SG_REQUEST_ID_SIZE];
	int pending[SG_SIGNER_BATCH_MAX]; /* passed the item's rule */
	int fresh[SG_SIGNER_BATCH_MAX];   /* signed now, to be recorded */
	int rec[SG_SIGNER_BATCH_MAX];     /* sg_sigrec_get's answer */
	int presigned[SG_SIGNER_BATCH_MAX]; /* pre[i] holds the core's answer */
	struct sg_sign_reply *pre;     /* raw items signed together, or NULL */
	size_t used;                   /* the reply's bytes so far */
	int stopped;                   /* full, HSM trouble or out of time */
	int64_t until_ms;              /* the time budget (monotonic) */
	char err[SG_SIGNER_ERR_MAX];   /* the first refused item's why */
	size_t err_item;               /* its index (SIZE_MAX: none yet) */
};

int
sp_is_batch(const uint8_t *msg, size_t len)
{
	struct sg_wire_hdr h;

	if (len < sizeof(h))
		return 0;
	memcpy(&h, msg, sizeof(h));
	return h.magic == SG_WIRE_MAGIC && h.type == SG_WIRE_SIGN_BATCH;
}

/* Item i is refused (or not attempted); the reason of the first item
 * refused is the reply's. */
static void
item_refuse(struct batch *b, size_t i, int r, const char *why)
{
	b->res[i].status = r;
	b->pending[i] = 0;
	if (i < b->err_item && r != SG_ERR_BUFFER) {
		b->err_item = i;
		snprintf(b->err, sizeof(b->err), "item %zu (position %llu): "
		    "%s", i + 1, (unsigned long long)b->req->items[i].position,
		    why);
	}
}

/* The statement is a release's or a grant's for this key, by name and
 * SPKI digest, still in force, in the format asked. */
static int
batch_binding(const struct batch *b, char *err, size_t errlen)
{
	const struct sign_job *j = &b->j;

	if (j->st.kind != SG_KIND_RELEASE && j->st.kind != SG_KIND_GRANT) {
		snprintf(err, errlen, "statement: a batch is signed under a "
		    "release or grant statement, not a %s's",
		    sg_kind_str(j->st.kind));
		return SG_ERR_VERIFY;
	}
	return sp_check_key(j, err, errlen);
}

/* Once per batch: the key, the evidence, the binding, the rules. */
static int
batch_check(struct sg_signer_child *c, struct batch *b, char *err,
    size_t errlen)
{
	const struct sg_wire_sign_req *ev = &b->req->sign;
	uint8_t h[32];
	int r;

	b->j.req = ev;
	if ((b->j.ck = sp_child_key(c, ev->msg.key)) == NULL) {
		snprintf(err, errlen, "no key '%s'", ev->msg.key);
		return SG_ERR_NOT_FOUND;
	}
	if ((r = sp_check_evidence(c, &b->j, err, errlen)) != 0 ||
	    (r = batch_binding(b, err, errlen)) != 0 ||
	    (r = sp_check_rules(c, &b->j, err, errlen)) != 0)
		return r;
	sg_sha256(ev->statement, ev->statement_len, h);
	sg_hex_encode(h, sizeof(h), b->j.ssha_hex);
	return 0;
}

/* Each item's own rule, and its record id. */
static void
items_check(struct batch *b)
{
	const struct sg_batch_item *it;
	char why[SG_SIGNER_ERR_MAX - 64];
	size_t i, k;

	for (i = 0; i < b->req->nitems; i++) {
		it = &b->req->items[i];
		for (k = 0; k < i; k++)
			if (b->req->items[k].position == it->position)
				break;
		if (k < i) {
			item_refuse(b, i, SG_ERR_INVALID, "the position is "
			    "twice in the batch");
			continue;
		}
		why[0] = '\0';
		if (sg_artifact_allowed(&b->j.st, it->line, it->line_len,
		    it->position, it->path, it->npath, (int64_t)time(NULL),
		    &b->lines[i], why, sizeof(why)) != 0) {
			item_refuse(b, i, SG_ERR_VERIFY, why[0] ? why :
			    "the artifact is not allowed");
			continue;
		}
		sg_sigrec_item_id(sg_kind_str(b->j.st.kind), b->j.st.request,
		    it->position, b->ids[i]);
		b->pending[i] = 1;
	}
}

/* The digest item i asks for, as the core signs it. */
static void
item_msg(const struct batch *b, size_t i, struct sg_sign_msg *m)
{
	const struct sg_artifact_line *l = &b->lines[i];

	memset(m, 0, sizeof(*m));
	snprintf(m->key, sizeof(m->key), "%s", b->req->sign.msg.key);
	m->digest_alg = l->digest_alg;
	memcpy(m->data, l->digest, l->digest_len);
	m->data_len = l->digest_len;
}

/* Whether n more bytes fit the reply; when not, this item and every one
 * after it are not attempted. */
static int
item_fits(struct batch *b, size_t n)
{
	if (!b->stopped && b->used + n <= SG_WIRE_BATCH_DATA_MAX)
		return 1;
	b->stopped = 1;
	return 0;
}

/*
 * Item i is recorded (re): the recorded bytes go out again only when they
 * are a signature of this item's digest with this key; a position signed
 * for another digest is refused.
 */
static void
item_replay(struct sg_signer_child *c, struct batch *b, size_t i,
    struct sg_sigrec_entry *re)
{
	struct sg_batch_result *out = &b->res[i];
	struct sg_sign_msg m;
	char hex[SG_DIGEST_HEX_SIZE];

	item_msg(b, i, &m);
	sg_hex_encode(m.data, m.data_len, hex);
	if (strcmp(re->digest_alg, sg_digest_name(m.digest_alg)) != 0 ||
	    strcmp(re->digest_hex, hex) != 0) {
		sg_log_warn("signer: %s %s position %llu was signed for "
		    "another digest; refused", sg_kind_str(b->j.st.kind),
		    b->j.st.request,
		    (unsigned long long)b->req->items[i].position);
		item_refuse(b, i, SG_ERR_CONFLICT, "this position was signed "
		    "for another digest: one signature per position");
		return;
	}
	if (!sp_record_ok(c, &b->j, re, &m, b->req->sign.format)) {
		sg_log_error("signer: record %s: the recorded signature does "
		    "not match the item or the key; refused", re->request);
		item_refuse(b, i, SG_ERR_INTERNAL, "the recorded signature "
		    "does not check");
		return;
	}
	if (!item_fits(b, re->sig_len + re->cms_len)) {
		item_refuse(b, i, SG_ERR_BUFFER, "");
		return;
	}
	memcpy(out->sig, re->sig, re->sig_len);
	out->sig_len = re->sig_len;
	out->cms = re->cms;
	out->cms_len = re->cms_len;
	re->cms = NULL;
	b->used += out->sig_len + out->cms_len;
	b->pending[i] = 0;
}

/* Item i's signature from the batch signed together (as sp_sign_digest
 * answers for one). */
static int
item_presigned(struct batch *b, size_t i, struct sg_batch_result *out,
    char *err, size_t errlen)
{
	struct sg_sign_reply *sr = &b->pre[i];
	int r;

	r = sp_sign_taken(sr, out, err, errlen);
	explicit_bzero(sr, sizeof(*sr));
	b->presigned[i] = 0;
	return r;
}

/* Signs item i afresh (not released before its record is committed). */
static void
item_sign(struct sg_signer_child *c, struct batch *b, size_t i)
{
	struct sg_batch_result *out = &b->res[i];
	struct sg_sign_msg m;
	char why[SG_SIGNER_ERR_MAX - 64];
	size_t est = SG_MAX_SIG;
	int r;

	if (b->req->sign.format == SG_FORMAT_CMS)
		est += b->j.chain_len + SG_MAX_SIG + CMS_OVERHEAD;
	if (sg_mono_ms() > b->until_ms)
		b->stopped = 1;
	if (!item_fits(b, est)) {
		item_refuse(b, i, SG_ERR_BUFFER, "");
		return;
	}
	item_msg(b, i, &m);
	why[0] = '\0';
	if (b->presigned[i])
		r = item_presigned(b, i, out, why, sizeof(why));
	else
		r = sp_sign_digest(c, &b->j, &m, b->req->sign.format, out, why,
		    sizeof(why));
	if (r != 0) {
		sg_batch_results_clear(out, 1);
		if (r == SG_ERR_HSM || r == SG_ERR_UNAVAILABLE ||
		    r == SG_ERR_TIMEOUT)
			b->stopped = 1;
		item_refuse(b, i, r, why[0] ? why : sg_strerror(r));
		return;
	}
	if (!item_fits(b, out->sig_len + out->cms_len)) {
		/* Larger than foreseen: not recorded, not released. */
		sg_batch_results_clear(out, 1);
		item_refuse(b, i, SG_ERR_BUFFER, "");
		return;
	}
	b->used += out->sig_len + out->cms_len;
	b->fresh[i] = 1;
	b->pending[i] = 0;
}

/*
 * The raw items not recorded yet, signed together by the core (one
 * hand-over to the HSM, every signature verified there) before the items
 * are taken in order: item_sign then uses the answer instead of asking
 * the HSM itself, so the items' results are those of one signature at a
 * time.  The core stops at its first failure; the items after it are
 * asked one at a time as before.  A signature that item_sign does not
 * use (the reply full, out of time) is wiped: it is never recorded nor
 * released.
 */
static void
items_presign(struct sg_signer_child *c, struct batch *b)
{
	struct sg_sign_msg *msgs;
	struct sg_sign_reply *reps;
	size_t i, n = 0, map[SG_SIGNER_BATCH_MAX];

	if (c->ops->sign_many == NULL || b->req->sign.format == SG_FORMAT_CMS)
		return;
	for (i = 0; i < b->req->nitems; i++)
		if (b->pending[i] && b->rec[i] == SG_ERR_NOT_FOUND)
			map[n++] = i;
	if (n < 2)
		return;
	msgs = calloc(n, sizeof(*msgs));
	reps = calloc(n, sizeof(*reps));
	b->pre = calloc(SG_SIGNER_BATCH_MAX, sizeof(*b->pre));
	if (msgs == NULL || reps == NULL || b->pre == NULL) {
		free(b->pre);
		b->pre = NULL;
		goto out;
	}
	for (i = 0; i < n; i++) {
		item_msg(b, map[i], &msgs[i]);
		if (b->j.pk->scheme == SG_SIG_EDDSA)
			msgs[i].digest_alg = SG_DIGEST_NONE;
	}
	c->ops->sign_many(c->core, msgs, n, reps);
	for (i = 0; i < n; i++) {
		b->pre[map[i]] = reps[i];
		b->presigned[map[i]] = 1;
		if (reps[i].status != 0)
			break;	/* the rest: one at a time */
	}
out:
	if (reps != NULL)
		explicit_bzero(reps, n * sizeof(*reps));
	free(reps);
	free(msgs);
}

/* Each claimed item: returned from the record, refused, or signed. */
static void
items_sign(struct sg_signer_child *c, struct batch *b)
{
	struct sg_sigrec_entry re;
	size_t i;
	int r;

	for (i = 0; i < b->req->nitems; i++) {
		if (!b->pending[i])
			continue;
		b->rec[i] = sg_sigrec_get(c->rec, b->ids[i],
		    b->req->sign.format, b->j.ssha_hex, &re);
		sg_sigrec_entry_clear(&re);
	}
	items_presign(c, b);
	for (i = 0; i < b->req->nitems; i++) {
		if (!b->pending[i])
			continue;
		if (b->rec[i] == SG_ERR_NOT_FOUND) {
			item_sign(c, b, i);
			continue;
		}
		/* Claimed: the record is still what it was just now. */
		r = sg_sigrec_get(c->rec, b->ids[i], b->req->sign.format,
		    b->j.ssha_hex, &re);
		if (r == 0)
			item_replay(c, b, i, &re);
		else if (r == SG_ERR_CONFLICT) {
			sg_log_warn("signer: record %s belongs to another "
			    "statement (sha256:%s); refused", b->ids[i],
			    re.statement_sha256);
			item_refuse(b, i, SG_ERR_CONFLICT, "this position was "
			    "signed under another statement");
		} else if (r != SG_ERR_NOT_FOUND)
			item_refuse(b, i, SG_ERR_UNAVAILABLE, "the signature "
			    "record cannot be read");
		else
			item_sign(c, b, i);
		sg_sigrec_entry_clear(&re);
	}
}

/* The record of item i's new signature. */
static void
item_entry(const struct batch *b, size_t i, int64_t now,
    struct sg_sigrec_entry *e)
{
	const struct sg_artifact_line *l = &b->lines[i];

	memset(e, 0, sizeof(*e));
	memcpy(e->request, b->ids[i], sizeof(e->request));
	e->format = b->req->sign.format;
	memcpy(e->statement_sha256, b->j.ssha_hex,
	    sizeof(e->statement_sha256));
	snprintf(e->key, sizeof(e->key), "%s", b->req->sign.msg.key);
	snprintf(e->digest_alg, sizeof(e->digest_alg), "%s",
	    sg_digest_name(l->digest_alg));
	sg_hex_encode(l->digest, l->digest_len, e->digest_hex);
	memcpy(e->sig, b->res[i].sig, b->res[i].sig_len);
	e->sig_len = b->res[i].sig_len;
	e->cms = b->res[i].cms;        /* still the result's */
	e->cms_len = b->res[i].cms_len;
	e->signed_at = now;
}

/*
 * The batch's new signatures, recorded with one commit; a signature whose
 * record did not commit is wiped (never released unless recorded: sent
 * again, the item finds the record if another writer made it).
 */
static void
batch_record(struct sg_signer_child *c, struct batch *b)
{
	struct sg_sigrec_entry *es;
	size_t i, n = 0, map[SG_SIGNER_BATCH_MAX];
	int results[SG_SIGNER_BATCH_MAX], r;

	for (i = 0; i < b->req->nitems; i++)
		if (b->fresh[i])
			map[n++] = i;
	if (n == 0)
		return;
	if ((es = calloc(n, sizeof(*es))) == NULL)
		r = SG_ERR_NOMEM;
	else {
		for (i = 0; i < n; i++)
			item_entry(b, map[i], (int64_t)time(NULL), &es[i]);
		r = sg_sigrec_put_many(c->rec, es, n, b->req->sign.statement,
		    b->req->sign.statement_len, results);
		explicit_bzero(es, n * sizeof(*es));
		free(es);
	}
	for (i = 0; i < n; i++) {
		if (r == 0 && results[i] == 0)
			continue;
		sg_batch_results_clear(&b->res[map[i]], 1);
		item_refuse(b, map[i], SG_ERR_UNAVAILABLE, "the signature "
		    "could not be recorded, so it was not released");
	}
}

/* The items, under claims on all their record ids at once. */
static void
batch_items(struct sg_signer_child *c, struct batch *b)
{
	const char *ids[SG_SIGNER_BATCH_MAX];
	size_t i, n = 0, map[SG_SIGNER_BATCH_MAX];

	items_check(b);
	for (i = 0; i < b->req->nitems; i++)
		if (b->pending[i]) {
			map[n] = i;
			ids[n++] = b->ids[i];
		}
	if (n > 0 && sg_sigrec_claim_many(c->rec, ids, n) != 0) {
		for (i = 0; i < n; i++)
			item_refuse(b, map[i], SG_ERR_UNAVAILABLE, "being "
			    "signed on another channel");
		return;
	}
	items_sign(c, b);
	batch_record(c, b);
	for (i = 0; i < b->req->nitems; i++)
		if (b->pending[i])     /* not reached */
			item_refuse(b, i, SG_ERR_BUFFER, "");
	if (n > 0)
		sg_sigrec_release_many(c->rec, ids, n);
}

int
sp_serve_batch(struct sg_signer_child *c, const uint8_t *msg, size_t len,
    uint8_t **ret, size_t *ret_len)
{
	struct sg_wire_request *req;
	struct batch *b;
	char err[SG_SIGNER_ERR_MAX];
	size_t n = 0;
	int r, status;

	*ret = NULL;
	*ret_len = 0;
	req = calloc(1, sizeof(*req));
	b = calloc(1, sizeof(*b));
	if (req == NULL || b == NULL ||
	    (b->res = calloc(SG_SIGNER_BATCH_MAX, sizeof(*b->res))) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	err[0] = '\0';
	status = sg_wire_decode_request(msg, len, req, err, sizeof(err));
	if (status == 0 && req->type != SG_WIRE_SIGN_BATCH)
		status = SG_ERR_INTERNAL;
	if (status == 0) {
		b->req = &req->u.batch;
		b->err_item = SIZE_MAX;
		b->until_ms = sg_mono_ms() + BATCH_TIME_MS;
		if ((status = batch_check(c, b, err, sizeof(err))) == 0) {
			batch_items(c, b);
			n = b->req->nitems;
			snprintf(err, sizeof(err), "%s", b->err);
		}
	}
	r = sg_wire_encode_batch_reply(status, err, b->res, n, ret, ret_len);
	if (r != 0 && r != SG_ERR_NOMEM)
		/* A refusal always goes back (what was recorded is kept:
		 * sent again, it comes from the record). */
		r = sg_wire_encode_batch_reply(SG_ERR_INTERNAL, "the reply "
		    "could not be built", NULL, 0, ret, ret_len);
out:
	if (b != NULL && b->res != NULL)
		sg_batch_results_clear(b->res, SG_SIGNER_BATCH_MAX);
	if (b != NULL) {
		if (b->pre != NULL)
			explicit_bzero(b->pre, SG_SIGNER_BATCH_MAX *
			    sizeof(*b->pre));
		free(b->pre);
		free(b->res);
		free(b->j.chain);
		explicit_bzero(b, sizeof(*b));
	}
	free(b);
	free(req);
	return r;
}
