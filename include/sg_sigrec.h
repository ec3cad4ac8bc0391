/*
 * The signer process's record of every signature it made for a request:
 * a SQLite database (signatures.db, WAL, synchronous=FULL) in the signer's
 * own state directory, which only the signer process writes.
 *
 * A request is identified by the request id its statement names; each
 * (request id, format) gets at most one signature, and a request id is
 * bound to the first statement signed for it.  The signer records a
 * signature durably before it answers with it, and answers a repeated
 * request with the recorded bytes instead of signing again.
 *
 * Releases and grants: each artifact signature is a record of its own,
 * under a record id derived from the statement's kind, id and position
 * (sg_sigrec_item_id), so that the same rules hold per artifact: one
 * signature per (id, position, format), bound to the first statement.  A
 * batch's records are committed together (sg_sigrec_put_many: one
 * transaction, one fsync).
 *
 * Thread-safe: one connection behind a mutex; claims keep two threads
 * from signing the same request at once.
 */
#ifndef SG_SIGREC_H
#define SG_SIGREC_H

#include <stddef.h>
#include <stdint.h>

#include "sg_crypto.h"
#include "sg_limits.h"
#include "sg_types.h"

#define SG_SIGREC_FILE "signatures.db"
#define SG_SIGREC_CLAIM_WAIT_MS 30000

struct sg_sigrec;

struct sg_sigrec_entry {
	char request[SG_REQUEST_ID_SIZE];
	enum sg_format format;
	char statement_sha256[SG_SHA256_HEX_SIZE]; /* lower-case hex */
	char key[SG_NAME_SIZE];
	char digest_alg[8];
	char digest_hex[SG_DIGEST_HEX_SIZE];
	uint8_t sig[SG_MAX_SIG];
	size_t sig_len;
	uint8_t *cms;                  /* DER SignedData (malloc'd), or NULL */
	size_t cms_len;
	int64_t signed_at;             /* unix seconds */
};

/*
 * Opens (creating when missing) the directory, mode 0700, and the record
 * in it, mode 0600.  An existing directory or file must be ours, of the
 * right type, and closed to group and others; otherwise the call fails
 * with SG_ERR_PERMISSIONS and errbuf says what is wrong.
 */
int sg_sigrec_open(const char *dir, struct sg_sigrec **ret, char *errbuf,
    size_t errlen);
void sg_sigrec_close(struct sg_sigrec *rec);

/* Holds `request` for this thread, waiting (at most
 * SG_SIGREC_CLAIM_WAIT_MS) while another thread holds it.  SG_ERR_TIMEOUT
 * or SG_ERR_UNAVAILABLE (too many held) otherwise. */
int sg_sigrec_claim(struct sg_sigrec *rec, const char *request);
void sg_sigrec_release(struct sg_sigrec *rec, const char *request);
/* All of ids[0..n) at once, or none (waiting as sg_sigrec_claim does
 * while any is held); the ids must be distinct. */
int sg_sigrec_claim_many(struct sg_sigrec *rec, const char *const *ids,
    size_t n);
void sg_sigrec_release_many(struct sg_sigrec *rec, const char *const *ids,
    size_t n);

/*
 * The record id of an artifact signed under a release or grant: the
 * first 32 hex digits of SHA-256("signgate-item " kind " " id " "
 * position), position in decimal (kind "release" or "grant").
 */
void sg_sigrec_item_id(const char *kind, const char *id, uint64_t position,
    char out[SG_REQUEST_ID_SIZE]);

/*
 * Looks up what was signed for request id `request`.  0: a signature in
 * `format` is recorded for the statement with this SHA-256, in *ret (free
 * with sg_sigrec_entry_clear).  SG_ERR_CONFLICT: the request id was signed
 * for another statement (ret->statement_sha256 names it).
 * SG_ERR_NOT_FOUND: nothing for this request id in this format.
 * SG_ERR_IO: the record cannot be read, or holds a row whose format is
 * not one (refused, never read as some default).
 */
int sg_sigrec_get(struct sg_sigrec *rec, const char *request,
    enum sg_format format, const char *statement_sha256,
    struct sg_sigrec_entry *ret);

/* Records e (with the statement's text) and returns once the commit is on
 * disk.  SG_ERR_CONFLICT when the request id already has a record in this
 * format or for another statement; SG_ERR_IO when the record cannot be
 * written (nothing is recorded then). */
int sg_sigrec_put(struct sg_sigrec *rec, const struct sg_sigrec_entry *e,
    const char *statement, size_t statement_len);

/*
 * Records es[0..n), all with the same statement, in one transaction, and
 * returns once it is on disk: results[i] is what sg_sigrec_put would have
 * returned for es[i] (each under its own savepoint; a failed commit fails
 * every one).  0, or SG_ERR_INVALID / SG_ERR_NOMEM / SG_ERR_UNAVAILABLE
 * for the whole call (nothing recorded, every results[i] set so).
 */
int sg_sigrec_put_many(struct sg_sigrec *rec,
    const struct sg_sigrec_entry *es, size_t n, const char *statement,
    size_t statement_len, int *results);

void sg_sigrec_entry_clear(struct sg_sigrec_entry *e);

#endif
