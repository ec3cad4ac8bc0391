/*
 * The policy versions in the log (schema version 8): for each policy the
 * store keeps (by SHA-256, src/store.c), the index of its `policy` log
 * entry, its status and the policy in force when it was logged, and for
 * a version logged pending that took effect, the index of its
 * policy-effective entry (a proof carries it); and the officers'
 * approvals of a pending version.
 *
 * A policy's status: effective (it took effect: the one in force is the
 * effective one logged last), pending (logged, waiting for the approvals
 * its predecessor asks for; at most one), replaced (was pending, and a
 * newer version took its place before it took effect).  A policy kept
 * for requests before this schema has no status and no log entry.
 *
 * Locks: none; every function runs inside a transaction of the caller.
 */
#include <stdlib.h>
#include <string.h>

#include "sg_db.h"
#include "sg_err.h"
#include "sg_store.h"
#include "store_int.h"

int
sg_store_policy_logged(struct sg_txn *t, const char *sha256_hex,
    const char *text, int64_t now, uint64_t index, const char *status,
    const char *previous)
{
	struct sg_db_stmt *s = NULL;
	int r;

	if ((r = sg_store_put_policy(t, sha256_hex, text, now)) != 0)
		return r;
	/* Logged again: a policy-effective entry before this one is not
	 * how this entry came into force. */
	if ((r = store_prepare(t, "UPDATE policies SET log_index = ?2, "
	    "status = ?3, previous = ?4, effective_index = NULL WHERE "
	    "sha256 = ?1", &s)) != 0)
		return r;
	sg_db_bind_text(s, 1, sha256_hex);
	sg_db_bind_int64(s, 2, (int64_t)index);
	sg_db_bind_text(s, 3, status);
	if (previous != NULL && previous[0] != '\0')
		sg_db_bind_text(s, 4, previous);
	r = store_step_done(t, s);
	sg_db_finalize(s);
	if (r != 0)
		return r;
	/* Nor do approvals of an earlier round count for this one (their
	 * entries stand in the log before this policy entry, where verify
	 * would refuse them): this round starts with none. */
	s = NULL;
	if ((r = store_prepare(t, "DELETE FROM policy_approvals WHERE "
	    "policy_sha256 = ?1", &s)) != 0)
		return r;
	sg_db_bind_text(s, 1, sha256_hex);
	r = store_step_done(t, s);
	sg_db_finalize(s);
	return r;
}

int
sg_store_policy_set_status(struct sg_txn *t, const char *sha256_hex,
    const char *status, int64_t effective_index)
{
	struct sg_db_stmt *s = NULL;
	int r;

	if ((r = store_prepare(t, "UPDATE policies SET status = ?2, "
	    "effective_index = ?3 WHERE sha256 = ?1 AND status IS NOT NULL",
	    &s)) != 0)
		return r;
	sg_db_bind_text(s, 1, sha256_hex);
	sg_db_bind_text(s, 2, status);
	if (effective_index >= 0)
		sg_db_bind_int64(s, 3, effective_index);
	r = store_changed_one(t, s);
	sg_db_finalize(s);
	return r;
}

/* One logged policy row from sql (which binds ?1 when arg is not NULL). */
static int
policy_row(struct sg_txn *t, const char *sql, const char *arg,
    struct sg_store_policy *ret)
{
	struct sg_db_stmt *s = NULL;
	int r;

	memset(ret, 0, sizeof(*ret));
	if ((r = store_prepare(t, sql, &s)) != 0)
		return r;
	if (arg != NULL)
		sg_db_bind_text(s, 1, arg);
	if ((r = store_step_row(t, s)) == 0) {
		store_copy_col(s, 0, ret->sha256, sizeof(ret->sha256));
		ret->log_index = store_index_col(s, 2);
		store_copy_col(s, 3, ret->status, sizeof(ret->status));
		store_copy_col(s, 4, ret->previous, sizeof(ret->previous));
		ret->first_seen = sg_db_column_int64(s, 5);
		ret->effective_index = store_index_col(s, 6);
		r = store_dup_col(s, 1, &ret->text);
		if (r == 0 && ret->text == NULL)
			r = SG_ERR_IO;
	}
	sg_db_finalize(s);
	return r;
}

#define POLICY_COLS "sha256, text, log_index, status, previous, " \
    "first_seen, effective_index"

int
sg_store_policy_in_force(struct sg_txn *t, struct sg_store_policy *ret)
{
	return policy_row(t, "SELECT " POLICY_COLS " FROM policies WHERE "
	    "status = 'effective' ORDER BY log_index DESC LIMIT 1", NULL, ret);
}

int
sg_store_policy_pending(struct sg_txn *t, struct sg_store_policy *ret)
{
	return policy_row(t, "SELECT " POLICY_COLS " FROM policies WHERE "
	    "status = 'pending' ORDER BY log_index DESC LIMIT 1", NULL, ret);
}

int
sg_store_policy_get(struct sg_txn *t, const char *sha256_hex,
    struct sg_store_policy *ret)
{
	return policy_row(t, "SELECT " POLICY_COLS " FROM policies WHERE "
	    "sha256 = ?1 AND log_index IS NOT NULL", sha256_hex, ret);
}

void
sg_store_policy_clear(struct sg_store_policy *p)
{
	if (p == NULL)
		return;
	free(p->text);
	memset(p, 0, sizeof(*p));
}

int
sg_store_policy_approval_add(struct sg_txn *t, const char *sha256_hex,
    const char *officer, int64_t at, const char *envelope, uint64_t index)
{
	struct sg_db_stmt *s = NULL;
	int r;

	if ((r = store_prepare(t, "INSERT INTO policy_approvals "
	    "(policy_sha256, officer, at, envelope, log_index) VALUES "
	    "(?1, ?2, ?3, ?4, ?5)", &s)) != 0)
		return r;
	sg_db_bind_text(s, 1, sha256_hex);
	sg_db_bind_text(s, 2, officer);
	sg_db_bind_int64(s, 3, at);
	sg_db_bind_text(s, 4, envelope);
	sg_db_bind_int64(s, 5, (int64_t)index);
	r = store_step_done(t, s);
	sg_db_finalize(s);
	return r;
}

int
sg_store_policy_approvals(struct sg_txn *t, const char *sha256_hex,
    struct sg_store_policy_approval *ret, size_t cap, size_t *ret_n)
{
	struct sg_db_stmt *s = NULL;
	size_t n = 0;
	int rc = SG_DB_DONE, r;

	if ((r = store_prepare(t, "SELECT officer, envelope, log_index, at "
	    "FROM policy_approvals WHERE policy_sha256 = ?1 ORDER BY "
	    "log_index", &s)) != 0)
		return r;
	sg_db_bind_text(s, 1, sha256_hex);
	while (n < cap && (rc = sg_db_step(s)) == SG_DB_ROW) {
		struct sg_store_policy_approval *a = &ret[n];

		memset(a, 0, sizeof(*a));
		store_copy_col(s, 0, a->officer, sizeof(a->officer));
		if ((r = store_dup_col(s, 1, &a->envelope)) != 0)
			break;
		a->log_index = (uint64_t)sg_db_column_int64(s, 2);
		a->at = sg_db_column_int64(s, 3);
		n++;
	}
	if (r == 0 && n < cap && rc != SG_DB_DONE)
		r = store_db_err(t->db, rc);
	sg_db_finalize(s);
	if (r != 0) {
		sg_store_policy_approvals_free(ret, n);
		return r;
	}
	*ret_n = n;
	return 0;
}

void
sg_store_policy_approvals_free(struct sg_store_policy_approval *a, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(a[i].envelope);
		a[i].envelope = NULL;
	}
}
