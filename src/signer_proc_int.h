/*
 * The signer process's private declarations, shared by its files; not
 * for anyone else (the front sees include/sg_signer_proc.h, the tests and
 * the fuzz harness include/sg_signer_child.h).
 *
 * Files, by job, and what each may call (arrows point to callees):
 *
 *   signer_proc.c    the signer's checks on every request: evidence,
 *                    binding, rules, CMS, replay from its record,
 *                    checkpoint, probe, key facts, dispatch  -> policy
 *   signer_batch.c   SIGN_BATCH: a release's or grant's artifacts, the
 *                    evidence checked once, each item by its own rule,
 *                    one record commit per batch              -> proc
 *   signer_policy.c  the signer's policy file, chains and keys; the
 *                    child context (sg_signer_child_new/free)
 *   signer_serve.c   the signer process's life: privilege drop, set-up,
 *                    channel threads and workers, the standalone
 *                    listener
 *                                                            -> proc, policy
 *   signer_client.c  the front's client: spawn, connect, channels, the
 *                    reply thread, calls
 *                                                            -> serve (the
 *                                                               forked child)
 *
 * signer_client.c runs in the front (it calls sp_child_main() only in
 * the child it forks, which never returns); the other files run in the
 * signer process, except sg_signer_key_specs(), which the front and the
 * configuration check call too.
 */
#ifndef SIGNER_PROC_INT_H
#define SIGNER_PROC_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "sg_dsse.h"
#include "sg_limits.h"
#include "sg_policy.h"
#include "sg_signer.h"
#include "sg_signer_child.h"
#include "sg_sigrec.h"
#include "sg_signer_proc.h"
#include "sg_signer_wire.h"
#include "sg_witness.h"

#define MAX_CHANNELS 64
#define MAX_POLICIES 64

/* ------------------------------------------------------------------ */
/* The child. */

struct child_key {
	char name[SG_NAME_MAX];
	struct sg_signer_key_spec spec;  /* where it was opened */
	char spki_hex[SG_SHA256_HEX_SIZE];
	char *chain_pem;               /* the newest policy's; under lock */
	size_t chain_len;
};

struct sg_signer_child {
	const struct sg_signer_ops *ops;  /* the core: sg_signer.h's */
	void *core;
	struct sg_sigrec *rec;         /* what was signed, per request */
	char *policy_path;
	pthread_mutex_t lock;          /* policies, keys' chains */
	struct sg_policy *policies[MAX_POLICIES];
	size_t npolicies;
	struct child_key *keys;
	size_t nkeys;
	char *log_origin;              /* configured, never from a message */
	struct sg_witness *witness;    /* the record of the last checkpoint */
};

/*
 * A SIGN (or SIGN_BATCH) request on its way through the checks: what each step found,
 * for the steps after it.
 */
struct sign_job {
	const struct sg_wire_sign_req *req;
	const struct child_key *ck;    /* the key asked for */
	struct sg_statement st;        /* the statement, parsed */
	const struct sg_policy *p;     /* the policy the statement names */
	const struct sg_policy *now;   /* the newest policy loaded */
	const struct sg_policy_key *pk;  /* the key under p */
	const struct sg_policy_key *nk;  /* the key under now */
	char *chain;                   /* the key's chain (a copy), or NULL */
	size_t chain_len;
	char ssha_hex[SG_SHA256_HEX_SIZE]; /* SHA-256 of the statement */
};


/* src/signer_proc.c */
/* The evidence under the statement's policy and the newest (j->req, j->ck
 * set): fills j->st, p, now, pk, nk and the chain. */
int sp_check_evidence(struct sg_signer_child *c, struct sign_job *j,
    char *err, size_t errlen);
/* The statement names the key asked for (j->req->msg.key), by name and
 * by the SPKI digest of the key opened, still in the policy in force, and
 * the format asked for (j->req->format). */
int sp_check_key(const struct sign_job *j, char *err, size_t errlen);
/* The format (j->req->format) and the HSM inventory under both. */
int sp_check_rules(struct sg_signer_child *c, const struct sign_job *j,
    char *err, size_t errlen);
/* Signs m's digest with j's key, in format: out->sig (and out->cms). */
int sp_sign_digest(struct sg_signer_child *c, const struct sign_job *j,
    const struct sg_sign_msg *m, enum sg_format format,
    struct sg_batch_result *out, char *err, size_t errlen);
/* The core's answer sr as sp_sign_digest takes it: out->sig, or the
 * status (with "HSM: why" in err). */
int sp_sign_taken(const struct sg_sign_reply *sr, struct sg_batch_result *out,
    char *err, size_t errlen);
/* 1 if the record re is a good signature over m's digest in format with
 * m's key (checked against the key before it is returned again). */
int sp_record_ok(struct sg_signer_child *c, const struct sign_job *j,
    const struct sg_sigrec_entry *re, const struct sg_sign_msg *m,
    enum sg_format format);

/* src/signer_batch.c: a record whose header says SIGN_BATCH, answered
 * with a BATCH_REPLY (as sg_signer_child_serve_msg answers). */
int sp_is_batch(const uint8_t *msg, size_t len);
int sp_serve_batch(struct sg_signer_child *c, const uint8_t *msg,
    size_t len, uint8_t **ret, size_t *ret_len);

/* src/signer_policy.c */
int sp_key_public(struct sg_signer_child *c, const char *name,
    EVP_PKEY **ret_pub, enum sg_key_alg *ret_alg,
    struct sg_token_info *ret_token);
const struct child_key *sp_child_key(const struct sg_signer_child *c,
    const char *name);
int sp_load_policy(struct sg_signer_child *c, const char *expect, char *err,
    size_t errlen);
int sp_open_keys(struct sg_signer_child *c,
    const struct sg_signer_key_spec *keys, size_t nkeys, char *err,
    size_t errlen);
int sp_child_init(struct sg_signer_child *c, const char *policy_path,
    const char *log_origin, const char *state_dir, char *err,
    size_t errlen);

/* src/signer_serve.c */
void sp_child_main(int *fds, unsigned n, unsigned concurrency,
    const char *module_path, const struct sg_signer_token_spec *tokens,
    size_t ntokens, const struct sg_signer_key_spec *keys, size_t nkeys,
    const char *policy_path, const char *log_origin, const char *state_dir);
void sp_set_bufs(int fd);

#endif
