/*
 * A thin layer over the standard PKCS#11 C API (the module is loaded with
 * dlopen), used by the daemon's signer and by the CLI for officers' smart
 * cards.  See src/p11.c for why libp11 is not used.
 *
 * Thread safety: sg_p11_sign() may be called from any number of threads at
 * once; each call borrows a session from the token's pool (one session per
 * concurrent caller, created on demand).  Loading, opening tokens and finding
 * keys are done at start-up from one thread.
 *
 * Failures: sg_p11_sign() recovers from a dead session, a logout, a device
 * error or a token reset by itself (new session, login, keys found again,
 * one retry); when it cannot, it returns SG_ERR_UNAVAILABLE and the next
 * call tries again.  It never hangs past its deadline (sg_p11_set_deadline).
 */
#ifndef SG_P11_H
#define SG_P11_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "sg_crypto.h"
#include "sg_limits.h"

struct sg_p11;        /* a loaded, initialised module */
struct sg_p11_token;  /* a logged-in token, owned by its sg_p11 */
struct sg_p11_key;    /* a private key with its public half, owned by its token */

struct sg_token_info {
	char label[SG_TOKEN_LABEL_MAX + 1];
	char serial[SG_TOKEN_SERIAL_MAX + 1];
	char manufacturer[SG_TOKEN_MANUFACTURER_MAX + 1];
	char model[SG_TOKEN_MODEL_MAX + 1];
};

/* dlopen()s the module and calls C_Initialize with CKF_OS_LOCKING_OK.
 * SG_ERR_CONFLICT if the module is already initialised in this process
 * (one sg_p11 per module per process); SG_ERR_UNAVAILABLE if it cannot be
 * loaded; module_path must contain a '/'. */
int sg_p11_load(const char *module_path, struct sg_p11 **ret);
/* Closes every session, C_Finalize, dlclose.  NULL is fine. */
void sg_p11_free(struct sg_p11 *p);

/* Finds the token with this label (not by slot number: slots move),
 * logs the user in with the PIN (CKR_USER_ALREADY_LOGGED_IN is fine).
 * The PIN is not kept by this layer beyond what re-login needs; see p11.c.
 * SG_ERR_NOT_FOUND: no such token; SG_ERR_INVALID: two tokens carry the
 * label; SG_ERR_CONFLICT: already open; SG_ERR_PIN: the PIN was refused. */
int sg_p11_open_token(struct sg_p11 *p, const char *label,
    const char *pin, size_t pin_len, struct sg_p11_token **ret);
void sg_p11_token_info(const struct sg_p11_token *t, struct sg_token_info *ret);

/* Finds a private key by CKA_LABEL (label != NULL) and/or CKA_ID
 * (id_len > 0), and its public key (from the public key object, or the
 * certificate object with the same CKA_ID).  SG_ERR_NO_KEY when none,
 * SG_ERR_INVALID when more than one private key matches, SG_ERR_NOT_FOUND
 * when the private key has no public key or certificate, SG_ERR_MECHANISM
 * for key types and curves we do not sign with. */
int sg_p11_find_key(struct sg_p11_token *t, const char *label,
    const uint8_t *id, size_t id_len, struct sg_p11_key **ret);

enum sg_key_alg sg_p11_key_alg(const struct sg_p11_key *k);
/* The public key; the reference stays owned by the key. */
EVP_PKEY *sg_p11_key_public(const struct sg_p11_key *k);
/* 1 when a and b are the same private key object of the same token
 * (whatever label or id each was asked for by), else 0. */
int sg_p11_key_same_object(const struct sg_p11_key *a,
    const struct sg_p11_key *b);
/* 1 when the private key object's own CKA_LABEL equals label (non-empty)
 * or its own CKA_ID equals id (id_len > 0): a lookup by that label or id
 * on its token would find this object (or a second one, refused as
 * ambiguous). */
int sg_p11_key_names(const struct sg_p11_key *k, const char *label,
    const uint8_t *id, size_t id_len);

/* Signs.  For ECDSA, RSA PKCS#1 and PSS, `data` is a digest of the given
 * algorithm and its length must match it; for EdDSA, digest_alg is
 * SG_DIGEST_NONE and data is the message.  The signature (DER for ECDSA,
 * raw for RSA and Ed25519) is written to sig (cap bytes). */
int sg_p11_sign(struct sg_p11_key *k, enum sg_sig_scheme scheme,
    enum sg_digest_alg digest_alg, const uint8_t *data, size_t data_len,
    uint8_t *sig, size_t cap, size_t *ret_sig_len);

/*
 * Signs n (1 <= n <= SG_P11_MANY_MAX) digests with one key, as n calls of
 * sg_p11_sign would (each with the same recovery and retry), but handed to
 * one worker at once: one deadline for the batch, the per-call deadline
 * for its first signature and at most P11_MANY_ITEM_MS (250 ms, bounded by
 * the per-call deadline) for each further one, 600 s at most.  For EdDSA,
 * each message is at most SG_MAX_DIGEST bytes.  The items are signed in
 * order and the first failure ends the batch: that item's status says
 * why, every item after it gets SG_ERR_BUFFER (not attempted) and no
 * signature.  A timeout gives the first item SG_ERR_TIMEOUT and none of
 * the batch's signatures (the abandoned batch works on copies of its own
 * and never touches the items again).  Returns 0 when every item was
 * signed, else the failing item's status; SG_ERR_INVALID without items.
 */
#define SG_P11_MANY_MAX 64
struct sg_p11_item {
	const uint8_t *data;           /* in: the digest (EdDSA: message) */
	size_t data_len;
	uint8_t *sig;                  /* out: cap bytes */
	size_t cap;
	size_t sig_len;                /* out */
	int status;                    /* out: 0 or SG_ERR_* */
};
int sg_p11_sign_many(struct sg_p11_key *k, enum sg_sig_scheme scheme,
    enum sg_digest_alg digest_alg, struct sg_p11_item *items, size_t n);

/*
 * Every sg_p11_sign (its recovery from a failing or reset token included)
 * returns within a deadline: SG_ERR_TIMEOUT when the module does not
 * answer in time (see src/p11.c for what happens to the call left behind).
 * The default is 5000 ms, or SG_P11_DEADLINE_MS from the environment at
 * sg_p11_load; 0 means no deadline (the call runs on the caller's thread).
 * SG_ERR_INVALID above 600000.  Keys that need a login on a PIN pad before
 * each signature (CKA_ALWAYS_AUTHENTICATE without a PIN) have no deadline:
 * a person is typing.
 */
int sg_p11_set_deadline(struct sg_p11 *p, unsigned int ms);
/* Sessions enough for n signatures at once on each token (64 unless
 * said: the signer says how many workers it has). */
void sg_p11_set_concurrency(struct sg_p11 *p, unsigned int n);
unsigned int sg_p11_deadline(const struct sg_p11 *p);

/*
 * 0 while the token is known to fail: a recovery (new session, login, keys
 * found again) failed, a call failed again after recovering, or a call
 * timed out.  The next signing call recovers first and, if that works,
 * makes the token healthy (1) again.  Cheap: for readiness and metrics.
 */
int sg_p11_token_healthy(const struct sg_p11_token *t);
/* The token a key lives on. */
struct sg_p11_token *sg_p11_key_token(const struct sg_p11_key *k);

/* The last failing CK_RV seen by this thread in the current (or last)
 * sg_p11_* call, for messages; CKR_OK if none.  After a call that succeeded
 * by recovering (new session, re-login) it names what was recovered from. */
unsigned long sg_p11_last_rv(void);
const char *sg_p11_rv_name(unsigned long rv);

#endif
