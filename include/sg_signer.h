/*
 * The signer: the only module that holds PKCS#11 sessions and PINs.  Its
 * interface is message-shaped (fixed-size structs in, fixed-size structs
 * out): it runs in its own process, as its own user, and the front reaches
 * it over a socket pair (src/signer_proc.c, sg_signer_proc.h).  It signs a
 * digest with a named key and nothing else.
 */
#ifndef SG_SIGNER_H
#define SG_SIGNER_H

#include <stddef.h>
#include <stdint.h>

#include "sg_limits.h"
#include "sg_p11.h"

/* An older name of SG_NAME_SIZE (sg_limits.h), until no file uses it. */
#define SG_NAME_MAX SG_NAME_SIZE

struct sg_signer;

/* Where one named key lives and how it signs. */
struct sg_signer_key_spec {
	char name[SG_NAME_SIZE];       /* policy key name */
	char token[SG_TOKEN_LABEL_SIZE];
	char label[SG_NAME_SIZE];      /* CKA_LABEL, or "" */
	uint8_t id[SG_P11_ID_MAX];     /* CKA_ID, or id_len == 0 */
	size_t id_len;
	enum sg_sig_scheme scheme;
};

/* One token the signer logs into. */
struct sg_signer_token_spec {
	char label[SG_TOKEN_LABEL_SIZE];
	char pin_file[512];            /* path to a mode-0600 file, read at start */
};

struct sg_sign_msg {
	char key[SG_NAME_SIZE];
	enum sg_digest_alg digest_alg; /* NONE for EdDSA over raw bytes */
	uint8_t data[SG_MAX_DIGEST];
	size_t data_len;
};

struct sg_sign_reply {
	int status;                    /* 0 or SG_ERR_* */
	uint8_t sig[SG_MAX_SIG];
	size_t sig_len;
};

/* Loads the module, logs into each token (PINs read from their files and
 * wiped right after use), finds each key.  A key that cannot be found is
 * reported in the error text (errbuf) and the call fails. */
int sg_signer_open(const char *module_path,
    const struct sg_signer_token_spec *tokens, size_t ntokens,
    const struct sg_signer_key_spec *keys, size_t nkeys,
    struct sg_signer **ret, char *errbuf, size_t errlen);
void sg_signer_free(struct sg_signer *s);

/* Thread-safe. */
void sg_signer_sign(struct sg_signer *s, const struct sg_sign_msg *msg,
    struct sg_sign_reply *reply);

/*
 * Signs msgs[0..n) as n calls of sg_signer_sign would (each signature
 * verified with the key's public key, reserved keys refused), handing
 * runs of messages for the same key and digest algorithm to the HSM
 * together (sg_p11_sign_many: one worker hand-over for up to
 * SG_P11_MANY_MAX).  In order; the first failure ends it: its reply says
 * why, every reply after it is SG_ERR_BUFFER (not attempted) without a
 * signature.  Thread-safe.
 */
void sg_signer_sign_many(struct sg_signer *s, const struct sg_sign_msg *msgs,
    size_t n, struct sg_sign_reply *replies);

/* Read-only facts about a key, for /v1/keys and statements. */
/* The HSM sessions for n signatures at once (sg_p11_set_concurrency). */
void sg_signer_set_concurrency(struct sg_signer *s, unsigned int n);
int sg_signer_key_public(struct sg_signer *s, const char *name,
    EVP_PKEY **ret_pub /* borrowed */, enum sg_key_alg *ret_alg,
    struct sg_token_info *ret_token);

/*
 * The transparency log's key is configured as a key spec named
 * SG_SIGNER_LOG_KEY (names starting with '@' cannot come from a policy).
 * sg_signer_sign() refuses it; it signs only the checkpoint text
 * "<origin>\n<size>\n<base64 root>\n" that sg_signer_sign_checkpoint()
 * formats itself (c2sp.org/tlog-checkpoint).  Whether the tree may be
 * signed at all is the caller's question (sg_witness.h).
 */
#define SG_SIGNER_LOG_KEY "@log"
#define SG_SIGNER_CHECKPOINT_MAX 1024
/*
 * No other key may reach a reserved one: sg_signer_open() refuses (with
 * SG_ERR_FORBIDDEN and an error naming the key) a key that is the same
 * private key object as a reserved key, however it was named, or whose
 * public key equals a reserved key's (another object holding the same key
 * pair).  sg_signer_spec_reserved() applies the part of that rule that
 * needs no lookup to a key spec not opened (a reloaded policy's): the
 * reserved key's token, and its own CKA_LABEL or CKA_ID.
 */
int sg_signer_spec_reserved(const struct sg_signer *s,
    const struct sg_signer_key_spec *ks, char *errbuf, size_t errlen);
int sg_signer_sign_checkpoint(struct sg_signer *s, const char *origin,
    uint64_t size, const uint8_t root[32], uint8_t sig[64]);

#endif
