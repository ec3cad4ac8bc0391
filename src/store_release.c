/*
 * The store's side of releases and grants: a release's artifact lines and
 * their signatures, the transitions into and out of `active`, and a
 * grant's count.
 *
 * Integrity: the transitions are guarded in SQL like the others (a
 * release or grant becomes active from pending once; an artifact is
 * signed once), and a grant's count is taken with one guarded UPDATE
 * inside the writer's transaction, so that however many requests race
 * for it, and across restarts, sequence numbers are 1..N, each once,
 * never N + 1 (the UNIQUE (grant_id, grant_seq) of the requests table
 * and the CHECK used <= count hold it as well).  A release's `used`
 * counts its artifacts signed, kept in the transaction that signs each.
 */
#include <stdlib.h>
#include <string.h>

#include "sg_err.h"
#include "sg_store.h"
#include "store_int.h"

int
sg_store_release_put_lines(struct sg_txn *t, const char *id,
    const char *const *lines, size_t n)
{
	struct sg_db_stmt *s = NULL;
	size_t i;
	int rc, r;

	if ((r = store_prepare(t, "INSERT INTO release_artifacts (release_id, "
	    "position, line) VALUES (?1, ?2, ?3)", &s)) != 0)
		return r;
	for (i = 0; i < n && r == 0; i++) {
		sg_db_bind_text(s, 1, id);
		sg_db_bind_int64(s, 2, (int64_t)i);
		sg_db_bind_text(s, 3, lines[i]);
		if ((rc = sg_db_step(s)) != SG_DB_DONE)
			r = store_db_err(t->db, rc);
		sg_db_reset(s);
	}
	sg_db_finalize(s);
	return r;
}

void
sg_release_items_free(struct sg_release_item *v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(v[i].line);
		free(v[i].signature);
		free(v[i].cms);
	}
	free(v);
}

static int
item_row(struct sg_db_stmt *s, struct sg_release_item *it)
{
	int r;

	memset(it, 0, sizeof(*it));
	it->position = (uint64_t)sg_db_column_int64(s, 0);
	it->log_index = store_index_col(s, 4);
	it->signed_at = sg_db_column_int64(s, 5);
	if ((r = store_dup_col(s, 1, &it->line)) != 0 ||
	    (r = store_blob_col(s, 2, &it->signature,
	    &it->signature_len)) != 0 ||
	    (r = store_blob_col(s, 3, &it->cms, &it->cms_len)) != 0)
		return r;
	return it->line == NULL ? SG_ERR_IO : 0;
}

int
sg_store_release_items(struct sg_txn *t, const char *id, uint64_t after,
    size_t max, int unsigned_only, struct sg_release_item **ret,
    size_t *ret_n)
{
	struct sg_release_item *v;
	struct sg_db_stmt *s = NULL;
	size_t n = 0;
	int rc = SG_DB_DONE, r;

	if ((v = calloc(max ? max : 1, sizeof(*v))) == NULL)
		return SG_ERR_NOMEM;
	if ((r = store_prepare(t, "SELECT position, line, signature, cms, "
	    "log_index, signed_at FROM release_artifacts WHERE release_id = "
	    "?1 AND position >= ?2 AND (?3 = 0 OR signature IS NULL) "
	    "ORDER BY position LIMIT ?4", &s)) != 0)
		goto out;
	sg_db_bind_text(s, 1, id);
	sg_db_bind_int64(s, 2, (int64_t)after);
	sg_db_bind_int64(s, 3, unsigned_only);
	sg_db_bind_int64(s, 4, (int64_t)max);
	while (n < max && (rc = sg_db_step(s)) == SG_DB_ROW) {
		if ((r = item_row(s, &v[n++])) != 0)
			goto out;
	}
	if (n < max && rc != SG_DB_DONE) {
		r = store_db_err(t->db, rc);
		goto out;
	}
	*ret = v;
	*ret_n = n;
	v = NULL;
out:
	sg_db_finalize(s);
	sg_release_items_free(v, n);
	return r;
}

int
sg_store_release_item_signed(struct sg_txn *t, const char *id,
    uint64_t position, const uint8_t *sig, size_t sig_len,
    const uint8_t *cms, size_t cms_len, uint64_t log_index, int64_t at)
{
	struct sg_db_stmt *s = NULL;
	int r;

	if ((r = store_claim_fence(t, id)) != 0)
		return r;
	if ((r = store_prepare(t, "UPDATE release_artifacts SET signature = "
	    "?3, cms = ?4, log_index = ?5, signed_at = ?6 WHERE release_id = "
	    "?1 AND position = ?2 AND signature IS NULL", &s)) != 0)
		return r;
	sg_db_bind_text(s, 1, id);
	sg_db_bind_int64(s, 2, (int64_t)position);
	sg_db_bind_blob(s, 3, sig, sig_len);
	if (cms != NULL)
		sg_db_bind_blob(s, 4, cms, cms_len);
	sg_db_bind_int64(s, 5, (int64_t)log_index);
	sg_db_bind_int64(s, 6, at);
	r = store_changed_one(t, s);
	sg_db_finalize(s);
	if (r != 0)
		return r;
	/* The release's count of signed artifacts, kept with it (reading
	 * a request must not scan its artifacts). */
	if ((r = store_prepare(t, "UPDATE requests SET used = used + 1 "
	    "WHERE id = ?1 AND kind = 'release'", &s)) != 0)
		return r;
	sg_db_bind_text(s, 1, id);
	r = store_changed_one(t, s);
	sg_db_finalize(s);
	return r;
}

int
sg_store_activate(struct sg_txn *t, const char *id, uint64_t approved_index)
{
	struct sg_db_stmt *s = NULL;
	int r;

	if ((r = store_prepare(t, "UPDATE requests SET state = 'active', "
	    "approved_index = ?2 WHERE id = ?1 AND state = 'pending' AND "
	    "kind IN ('release', 'grant')", &s)) != 0)
		return r;
	sg_db_bind_text(s, 1, id);
	sg_db_bind_int64(s, 2, (int64_t)approved_index);
	r = store_changed_one(t, s);
	sg_db_finalize(s);
	if (r == 0)
		r = store_changed(t, SG_CHANGE_STATE, id, SG_REQ_ACTIVE, NULL,
		    0, NULL);
	return r;
}

int
sg_store_release_done(struct sg_txn *t, const char *id, int64_t at)
{
	struct sg_db_stmt *s = NULL;
	int r;

	if ((r = store_prepare(t, "UPDATE requests SET state = 'signed', "
	    "signed_at = ?2 WHERE id = ?1 AND state = 'active' AND kind = "
	    "'release' AND NOT EXISTS (SELECT 1 FROM release_artifacts WHERE "
	    "release_id = ?1 AND signature IS NULL)", &s)) != 0)
		return r;
	sg_db_bind_text(s, 1, id);
	sg_db_bind_int64(s, 2, at);
	r = store_changed_one(t, s);
	sg_db_finalize(s);
	if (r == 0)
		r = store_changed(t, SG_CHANGE_STATE, id, SG_REQ_SIGNED, NULL,
		    0, NULL);
	return r;
}

int
sg_store_active_releases(struct sg_txn *t, size_t max,
    char (*ret_ids)[SG_REQUEST_ID_SIZE], size_t *ret_n)
{
	return store_select_ids(t, "SELECT id FROM requests WHERE state = "
	    "'active' AND kind = 'release' AND ?1 = ?1 ORDER BY seq LIMIT ?2",
	    0, max, ret_ids, ret_n);
}

int
sg_store_grant_take(struct sg_txn *t, const char *grant_id, int64_t now,
    uint64_t *ret_seq)
{
	struct sg_db_stmt *s = NULL;
	int rc, r;

	if ((r = store_prepare(t, "UPDATE requests SET used = used + 1 WHERE "
	    "id = ?1 AND kind = 'grant' AND state = 'active' AND used < count "
	    "AND expires_at > ?2 RETURNING used", &s)) != 0)
		return r;
	sg_db_bind_text(s, 1, grant_id);
	sg_db_bind_int64(s, 2, now);
	rc = sg_db_step(s);
	if (rc == SG_DB_ROW) {
		*ret_seq = (uint64_t)sg_db_column_int64(s, 0);
		r = 0;
	} else
		r = rc == SG_DB_DONE ? SG_ERR_CONFLICT :
		    store_db_err(t->db, rc);
	sg_db_finalize(s);
	return r;
}
