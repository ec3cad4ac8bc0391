/*
 * The gateway's side of witnessing (c2sp.org/tlog-witness): each
 * checkpoint the log stores is submitted to every configured witness, with
 * a consistency proof from the tree that witness last acknowledged; the
 * cosignatures they return are stored with the checkpoint, and the log
 * serves the newest checkpoint that carries the quorum (sg_tlog.h).
 *
 * Not to be confused with sg_witness.h, the signer's own record of the
 * trees it signed.
 */
#ifndef SG_WITNESSING_H
#define SG_WITNESSING_H

#include <stddef.h>
#include <stdint.h>

#include "sg_config.h"
#include "sg_merkle.h"
#include "sg_store.h"
#include "sg_tlog.h"

/* The most of a witness's answer that is read: a few cosignature lines,
 * or a size. */
#define SG_WITNESS_ANSWER_MAX 4096

/* --- pure parts --- */

/*
 * The body of POST <witness>/add-checkpoint: "old <size>\n", the proof's
 * hashes in base64 one a line, a blank line, then the log's signed note
 * (its signature lines included).  malloc'd, NUL-terminated.
 */
int sg_witness_submission(uint64_t old_size,
    const uint8_t (*proof)[SG_HASH_LEN], size_t nproof, const char *note,
    char **ret, size_t *ret_len);

/* The body of a 409 (text/x.tlog.size): a decimal size, without leading
 * zeros, and an optional final LF; nothing else. */
int sg_witness_parse_size(const char *body, size_t len, uint64_t *ret);

/*
 * How many distinct configured witnesses have a valid cosignature among
 * `lines` over the log's signed `note`; which[i] (may be NULL) tells
 * whether witness i has.
 */
unsigned sg_witness_count(const struct sg_witnesses_config *cfg,
    const char *note, const char *lines, uint8_t *which);

/*
 * The lines to store: those stored (kept, another gateway's included),
 * then lines[i] (may be NULL) for each configured witness i that has no
 * valid cosignature among them yet: one per witness.  *ret_count is the
 * number of distinct configured witnesses with a valid cosignature in
 * the result.
 */
int sg_witness_merge(const struct sg_witnesses_config *cfg, const char *note,
    const char *stored, char *const *lines, char **ret, unsigned *ret_count);

/*
 * The release condition, for an answer that needs the first `size`
 * entries under a checkpoint: quorum_size is the size of the newest
 * checkpoint with the quorum's cosignatures, round_size that of the
 * newest one whose submission has ended (answered or timed out).
 * Fail-closed: only the quorum counts; best-effort: either.
 */
int sg_witness_released(enum sg_witness_mode mode, uint64_t size,
    uint64_t quorum_size, uint64_t round_size);

/* --- the submitter --- */

struct sg_witnessing;

/* Starts the submitter thread over st and log; cfg must outlive it. */
int sg_witnessing_open(const struct sg_witnesses_config *cfg,
    struct sg_store *st, struct sg_tlog *log, struct sg_witnessing **ret,
    char *errbuf, size_t errlen);
/* Stops the thread (before the store closes). */
void sg_witnessing_free(struct sg_witnessing *w);

/* A new checkpoint is stored: submit it now (any thread; never blocks). */
void sg_witnessing_kick(void *w);

/*
 * Waits until an answer needing the first `size` entries may be released
 * (sg_witness_released), at most twice the witnesses' timeout: 0, or
 * SG_ERR_UNAVAILABLE when it may not.
 */
int sg_witnessing_wait(struct sg_witnessing *w, uint64_t size);

/* Fail-closed. */
int sg_witnessing_fail_closed(const struct sg_witnessing *w);
unsigned sg_witnessing_quorum(const struct sg_witnessing *w);

/* Non-zero while a witness says the log was rolled back or forked; the
 * reason names the witness and the sizes. */
int sg_witnessing_alarm(struct sg_witnessing *w, char *reason, size_t len);

struct sg_witness_stats {
	char name[SG_WITNESS_NAME_SIZE];
	uint64_t cosignatures;         /* checkpoints it cosigned for us */
	uint64_t failures;             /* submissions without a cosignature */
	uint64_t alarms;               /* rollbacks and forks it reported */
	uint64_t size;                 /* the tree it acknowledged last */
};
/* One per configured witness, in configuration order; returns the count. */
size_t sg_witnessing_stats(struct sg_witnessing *w,
    struct sg_witness_stats *out, size_t cap);

#endif
