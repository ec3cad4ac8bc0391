/*
 * What the store's files share (src/store.c, src/store_release.c); not
 * for anyone else: the rest of the daemon sees include/sg_store.h.
 */
#ifndef SG_STORE_INT_H
#define SG_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "sg_store.h"

struct sg_txn {
	struct sg_store *st;
	sqlite3 *db;
	int write;
};

/* SQLite's result code as an SG_ERR_* (a constraint is a conflict). */
int store_db_err(sqlite3 *db, int rc);
int store_prepare(struct sg_txn *t, const char *sql, sqlite3_stmt **ret);
/* Column values: text into a buffer, text malloc'd (NULL for NULL), a
 * blob malloc'd (NULL, 0 for NULL or empty). */
void store_copy_col(sqlite3_stmt *s, int col, char *out, size_t cap);
int store_dup_col(sqlite3_stmt *s, int col, char **ret);
int store_blob_col(sqlite3_stmt *s, int col, uint8_t **ret,
    size_t *ret_len);
/* Steps an UPDATE: 0 if it changed exactly one row, SG_ERR_CONFLICT if
 * none. */
int store_changed_one(struct sg_txn *t, sqlite3_stmt *s);
/* Up to max ids from sql, which binds ?1 to now and ?2 to max. */
int store_select_ids(struct sg_txn *t, const char *sql, int64_t now,
    size_t max, char (*ret_ids)[SG_REQUEST_ID_SIZE], size_t *ret_n);

#endif
