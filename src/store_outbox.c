/*
 * The notification outbox: the change hook the store calls for every
 * change it records, and the table of deliveries (notify_outbox) the
 * delivery thread (src/notify.c) works through.
 *
 * A row is an event for one webhook.  It is inserted by the change
 * hook inside the write job that makes the change, so that it commits
 * or rolls back with it: an acknowledged change always has its events,
 * and a change undone has none.  The delivery thread claims due rows
 * with a lease (owner, until) in a write job of its own; on PostgreSQL
 * every gateway's write batches take the log_head row lock first
 * (src/store.c), so two gateways' claims are ordered, and the guarded
 * UPDATE (`until <= now`) takes a row only when no live lease holds it.
 * A gateway that dies leaves its leases to run out; the rows are then
 * delivered by whichever gateway claims them next, hence at least once.
 *
 * Locks: none of its own; the change hook is set before the first write.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_db.h"
#include "sg_err.h"
#include "sg_store.h"
#include "sg_util.h"
#include "store_int.h"

/* Rows claimed per webhook in one claim. */
#define OUTBOX_CLAIM_MAX 64

void
sg_store_set_change_hook(struct sg_store *st, sg_store_change_fn fn,
    void *ctx)
{
	st->change_fn = fn;
	st->change_ctx = ctx;
}

int
store_changed(struct sg_txn *t, enum sg_store_change_what what,
    const char *id, enum sg_req_state state, const char *officer,
    int approve, const char *reason)
{
	struct sg_store_change c;

	if (t->st == NULL || t->st->change_fn == NULL)
		return 0;
	memset(&c, 0, sizeof(c));
	c.what = what;
	c.id = id;
	c.state = state;
	c.officer = officer;
	c.approve = approve;
	c.reason = reason;
	return t->st->change_fn(t->st->change_ctx, t, &c);
}

void
sg_outbox_rows_free(struct sg_outbox_row *v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		free(v[i].body);
	free(v);
}

int
sg_store_outbox_put(struct sg_txn *t, const char *event_id,
    const char *webhook, const char *type, const char *object_id,
    const char *body, int64_t now)
{
	struct sg_db_stmt *s = NULL;
	int r;

	if (strlen(event_id) >= SG_OUTBOX_ID_SIZE ||
	    strlen(webhook) >= SG_NAME_SIZE ||
	    strlen(type) >= SG_OUTBOX_TYPE_SIZE)
		return SG_ERR_INVALID;
	if ((r = store_prepare(t, "INSERT INTO notify_outbox (event_id, "
	    "webhook, type, object_id, body, created_at, next_at) VALUES "
	    "(?1, ?2, ?3, ?4, ?5, ?6, ?6)", &s)) != 0)
		return r;
	sg_db_bind_text(s, 1, event_id);
	sg_db_bind_text(s, 2, webhook);
	sg_db_bind_text(s, 3, type);
	sg_db_bind_text(s, 4, object_id);
	sg_db_bind_text(s, 5, body);
	sg_db_bind_int64(s, 6, now);
	r = store_step_done(t, s);
	sg_db_finalize(s);
	return r;
}

struct claim_job {
	const char *const *webhooks;
	size_t nwebhooks;
	const char *owner;
	int64_t now, until;
	size_t max;
	struct sg_outbox_row *rows;
	size_t n;
};

/* The due rows of one webhook, appended to c->rows (not yet leased). */
static int
select_due(struct sg_txn *t, struct claim_job *c, const char *webhook,
    size_t max)
{
	struct sg_db_stmt *s = NULL;
	struct sg_outbox_row *row;
	int rc, r;

	if ((r = store_prepare(t, "SELECT seq, event_id, webhook, type, body, "
	    "attempts FROM notify_outbox WHERE webhook = ?1 AND delivered_at "
	    "IS NULL AND next_at <= ?2 AND until <= ?2 ORDER BY next_at, seq "
	    "LIMIT ?3", &s)) != 0)
		return r;
	sg_db_bind_text(s, 1, webhook);
	sg_db_bind_int64(s, 2, c->now);
	sg_db_bind_int64(s, 3, (int64_t)max);
	while ((rc = sg_db_step(s)) == SG_DB_ROW) {
		row = &c->rows[c->n];
		memset(row, 0, sizeof(*row));
		row->seq = sg_db_column_int64(s, 0);
		store_copy_col(s, 1, row->event_id, sizeof(row->event_id));
		store_copy_col(s, 2, row->webhook, sizeof(row->webhook));
		store_copy_col(s, 3, row->type, sizeof(row->type));
		if ((r = store_dup_col(s, 4, &row->body)) != 0)
			goto out;
		if (row->body == NULL) {
			r = SG_ERR_IO;
			goto out;
		}
		row->attempts = sg_db_column_int64(s, 5);
		c->n++;
	}
	r = rc == SG_DB_DONE ? 0 : store_db_err(t->db, rc);
out:
	sg_db_finalize(s);
	return r;
}

/* Leases row to c->owner unless a live lease (another gateway's, taken
 * since it was read) holds it: *ret_got says which. */
static int
lease_one(struct sg_txn *t, struct claim_job *c, int64_t seq, int *ret_got)
{
	struct sg_db_stmt *s = NULL;
	int r;

	*ret_got = 0;
	if ((r = store_prepare(t, "UPDATE notify_outbox SET owner = ?2, "
	    "until = ?3 WHERE seq = ?1 AND delivered_at IS NULL AND "
	    "until <= ?4", &s)) != 0)
		return r;
	sg_db_bind_int64(s, 1, seq);
	sg_db_bind_text(s, 2, c->owner);
	sg_db_bind_int64(s, 3, c->until);
	sg_db_bind_int64(s, 4, c->now);
	r = store_changed_one(t, s);
	sg_db_finalize(s);
	if (r == SG_ERR_CONFLICT)
		return 0;
	if (r == 0)
		*ret_got = 1;
	return r;
}

static int
job_claim(struct sg_txn *t, void *arg)
{
	struct claim_job *c = arg;
	size_t i, kept, per;
	int got, r = 0;

	if (c->nwebhooks == 0)
		return 0;
	per = c->max / c->nwebhooks > 0 ? c->max / c->nwebhooks : 1;
	for (i = 0; i < c->nwebhooks && c->n < c->max; i++) {
		if ((r = select_due(t, c, c->webhooks[i],
		    per < c->max - c->n ? per : c->max - c->n)) != 0)
			return r;
	}
	for (i = 0, kept = 0; i < c->n; i++) {
		if ((r = lease_one(t, c, c->rows[i].seq, &got)) != 0)
			return r;
		if (!got) {
			free(c->rows[i].body);
			continue;
		}
		c->rows[kept++] = c->rows[i];
	}
	c->n = kept;
	return 0;
}

int
sg_store_outbox_claim(struct sg_store *st, const char *const *webhooks,
    size_t nwebhooks, int64_t now, int lease_seconds, size_t max,
    struct sg_outbox_row **ret, size_t *ret_n)
{
	struct claim_job c;
	int r;

	*ret = NULL;
	*ret_n = 0;
	if (max == 0 || nwebhooks == 0)
		return 0;
	if (max > OUTBOX_CLAIM_MAX * nwebhooks)
		max = OUTBOX_CLAIM_MAX * nwebhooks;
	memset(&c, 0, sizeof(c));
	c.webhooks = webhooks;
	c.nwebhooks = nwebhooks;
	c.owner = st->node;
	c.now = now;
	c.until = now + lease_seconds;
	c.max = max;
	if ((c.rows = calloc(max, sizeof(*c.rows))) == NULL)
		return SG_ERR_NOMEM;
	r = sg_store_write(st, job_claim, &c);
	if (r != 0) {
		/* The job's rows were rolled back: none is leased. */
		sg_outbox_rows_free(c.rows, c.n);
		return r;
	}
	if (c.n == 0) {
		free(c.rows);
		return 0;
	}
	*ret = c.rows;
	*ret_n = c.n;
	return 0;
}

struct done_job {
	const int64_t *seqs;
	const int *delivered;
	const int64_t *next_at;
	const char *const *why;
	size_t n;
	const char *owner;
	int64_t now;
};

static int
job_done(struct sg_txn *t, void *arg)
{
	struct done_job *d = arg;
	struct sg_db_stmt *s = NULL;
	size_t i;
	int r;

	for (i = 0; i < d->n; i++) {
		/* Delivered is a fact whoever holds the lease now; a retry is
		 * scheduled only by the gateway that holds it. */
		if (d->delivered[i])
			r = store_prepare(t, "UPDATE notify_outbox SET "
			    "delivered_at = ?2, owner = NULL, until = 0, "
			    "attempts = attempts + 1, last_error = NULL WHERE "
			    "seq = ?1 AND delivered_at IS NULL", &s);
		else
			r = store_prepare(t, "UPDATE notify_outbox SET "
			    "next_at = ?3, owner = NULL, until = 0, attempts = "
			    "attempts + 1, last_error = ?4 WHERE seq = ?1 AND "
			    "delivered_at IS NULL AND owner = ?5 AND ?2 = ?2",
			    &s);
		if (r != 0)
			return r;
		sg_db_bind_int64(s, 1, d->seqs[i]);
		sg_db_bind_int64(s, 2, d->now);
		if (!d->delivered[i]) {
			sg_db_bind_int64(s, 3, d->next_at[i]);
			if (d->why != NULL && d->why[i] != NULL)
				sg_db_bind_text(s, 4, d->why[i]);
			sg_db_bind_text(s, 5, d->owner);
		}
		r = store_step_done(t, s);
		sg_db_finalize(s);
		if (r != 0)
			return r;
	}
	return 0;
}

int
sg_store_outbox_done(struct sg_store *st, const int64_t *seqs,
    const int *delivered, const int64_t *next_at, const char *const *why,
    size_t n, int64_t now)
{
	struct done_job d;

	if (n == 0)
		return 0;
	memset(&d, 0, sizeof(d));
	d.seqs = seqs;
	d.delivered = delivered;
	d.next_at = next_at;
	d.why = why;
	d.n = n;
	d.owner = st->node;
	d.now = now;
	return sg_store_write(st, job_done, &d);
}

static int
job_release(struct sg_txn *t, void *arg)
{
	struct sg_db_stmt *s = NULL;
	int r;

	if ((r = store_prepare(t, "UPDATE notify_outbox SET owner = NULL, "
	    "until = 0 WHERE owner = ?1 AND delivered_at IS NULL", &s)) != 0)
		return r;
	sg_db_bind_text(s, 1, (const char *)arg);
	r = store_step_done(t, s);
	sg_db_finalize(s);
	return r;
}

int
sg_store_outbox_release(struct sg_store *st)
{
	return sg_store_write(st, job_release, st->node);
}

struct prune_job {
	int64_t delivered_before, undelivered_before;
	uint64_t dropped;
};

static int
job_prune(struct sg_txn *t, void *arg)
{
	struct prune_job *p = arg;
	struct sg_db_stmt *s = NULL;
	int rc, r;

	if ((r = store_prepare(t, "DELETE FROM notify_outbox WHERE "
	    "delivered_at IS NOT NULL AND delivered_at < ?1", &s)) != 0)
		return r;
	sg_db_bind_int64(s, 1, p->delivered_before);
	rc = sg_db_step(s);
	sg_db_finalize(s);
	if (rc != SG_DB_DONE)
		return store_db_err(t->db, rc);
	if ((r = store_prepare(t, "DELETE FROM notify_outbox WHERE "
	    "delivered_at IS NULL AND created_at < ?1", &s)) != 0)
		return r;
	sg_db_bind_int64(s, 1, p->undelivered_before);
	rc = sg_db_step(s);
	if (rc == SG_DB_DONE)
		p->dropped = (uint64_t)sg_db_changes(s);
	sg_db_finalize(s);
	return rc == SG_DB_DONE ? 0 : store_db_err(t->db, rc);
}

int
sg_store_outbox_prune(struct sg_store *st, int64_t delivered_before,
    int64_t undelivered_before, uint64_t *ret_dropped)
{
	struct prune_job p;
	int r;

	memset(&p, 0, sizeof(p));
	p.delivered_before = delivered_before;
	p.undelivered_before = undelivered_before;
	r = sg_store_write(st, job_prune, &p);
	if (ret_dropped != NULL)
		*ret_dropped = r == 0 ? p.dropped : 0;
	return r;
}

int
sg_store_outbox_pending(struct sg_store *st, const char *const *webhooks,
    size_t nwebhooks, int64_t now, uint64_t *ret_pending, uint64_t *ret_due)
{
	struct sg_txn *t = NULL;
	struct sg_db_stmt *s = NULL;
	size_t i;
	int rc, r;

	*ret_pending = *ret_due = 0;
	if (nwebhooks == 0)
		return 0;
	if ((r = sg_store_read_begin(st, &t)) != 0)
		return r;
	for (i = 0; i < nwebhooks; i++) {
		if ((r = store_prepare(t, "SELECT COUNT(*), COALESCE(SUM(CASE "
		    "WHEN next_at <= ?2 AND until <= ?2 THEN 1 ELSE 0 END), 0) "
		    "FROM notify_outbox WHERE webhook = ?1 AND delivered_at IS "
		    "NULL", &s)) != 0)
			break;
		sg_db_bind_text(s, 1, webhooks[i]);
		sg_db_bind_int64(s, 2, now);
		rc = sg_db_step(s);
		if (rc == SG_DB_ROW) {
			*ret_pending += (uint64_t)sg_db_column_int64(s, 0);
			*ret_due += (uint64_t)sg_db_column_int64(s, 1);
			r = 0;
		} else
			r = store_db_err(t->db, rc);
		sg_db_finalize(s);
		if (r != 0)
			break;
	}
	sg_store_read_end(t);
	return r;
}
