/*
 * Inside the signer process (src/signer_proc.c), for its tests and fuzz
 * harness only; the front never includes this header.
 *
 * The signer process answers each request through a child context: its
 * policies, its records (sg_sigrec.h, sg_witness.h) and a core that holds
 * the keys.  In the daemon the core is the PKCS#11 signer (sg_signer.h);
 * here it is any set of operations with the same meaning, so that the
 * real decoding, evidence, policy and record paths can run over keys held
 * in memory, without a module or a fork.
 */
#ifndef SG_SIGNER_CHILD_H
#define SG_SIGNER_CHILD_H

#include <stddef.h>
#include <stdint.h>

#include "sg_merkle.h"
#include "sg_note.h"
#include "sg_signer.h"

/* The core's operations, as sg_signer.h defines them; core is opaque. */
struct sg_signer_ops {
	void (*sign)(void *core, const struct sg_sign_msg *msg,
	    struct sg_sign_reply *reply);
	int (*key_public)(void *core, const char *name,
	    EVP_PKEY **ret_pub /* borrowed */, enum sg_key_alg *ret_alg,
	    struct sg_token_info *ret_token);
	int (*sign_checkpoint)(void *core, const char *origin, uint64_t size,
	    const uint8_t root[SG_HASH_LEN], uint8_t sig[SG_ED25519_SIG]);
	int (*spec_reserved)(void *core, const struct sg_signer_key_spec *ks,
	    char *errbuf, size_t errlen);
	/* Optional (NULL: one sign per item): sg_signer_sign_many's
	 * meaning, for the items of a SIGN_BATCH. */
	void (*sign_many)(void *core, const struct sg_sign_msg *msgs,
	    size_t n, struct sg_sign_reply *replies);
};

struct sg_signer_child;

/*
 * A child context as the signer process builds one after its core is
 * open: it reads the policy at policy_path, opens its records in
 * state_dir for the log log_origin, and takes keys (the key list the front
 * hands over, every policy key plus SG_SIGNER_LOG_KEY) from ops/core,
 * which must outlive the context.  errbuf says why on failure.
 */
int sg_signer_child_new(const struct sg_signer_ops *ops, void *core,
    const struct sg_signer_key_spec *keys, size_t nkeys,
    const char *policy_path, const char *log_origin, const char *state_dir,
    struct sg_signer_child **ret, char *errbuf, size_t errlen);
/* Frees the context and closes its records; the core stays the caller's. */
void sg_signer_child_free(struct sg_signer_child *c);

/*
 * One record from a channel, answered as a channel thread answers it:
 * decoded (sg_wire_decode_request), checked and handled.  0 with the
 * reply record in *ret (malloc'd, *ret_len bytes): a BATCH_REPLY when the
 * record's header says SIGN_BATCH, a REPLY otherwise; SG_ERR_NOMEM when
 * no reply could be built (the thread then sends none).  Thread-safe.
 */
int sg_signer_child_serve_msg(struct sg_signer_child *c,
    const uint8_t *msg, size_t len, uint8_t **ret, size_t *ret_len);

/*
 * Serves channels fds[0..n) as the signer process does: READY (status 0)
 * on fds[0], then every request handed to `concurrency` workers
 * (sg_signer_child_serve_msg) and answered on its channel, CHECKPOINT one
 * at a time; returns when the front has closed every channel and every
 * answer is sent.  The descriptors stay the caller's.  For tests that fork
 * a signer over keys held in memory (sg_signer_client_adopt() is the
 * front's side).
 */
int sg_signer_child_serve(struct sg_signer_child *c, const int *fds,
    unsigned n, unsigned concurrency);

#endif
