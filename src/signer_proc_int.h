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
 *   signer_policy.c  the signer's policy file, chains and keys; the
 *                    child context (sg_signer_child_new/free)
 *   signer_serve.c   the signer process's life: privilege drop, set-up,
 *                    channel threads, the standalone listener
 *                                                            -> proc, policy
 *   signer_client.c  the front's client: spawn, connect, channels, calls
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

#include <openssl/evp.h>

#include "sg_limits.h"
#include "sg_signer.h"
#include "sg_signer_child.h"
#include "sg_sigrec.h"
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
void sp_child_main(int *fds, unsigned n, const char *module_path,
    const struct sg_signer_token_spec *tokens, size_t ntokens,
    const struct sg_signer_key_spec *keys, size_t nkeys,
    const char *policy_path, const char *log_origin, const char *state_dir);
void sp_set_bufs(int fd);

#endif
