/*
 * Internals of libsigngate-pkcs11.so, the PKCS#11 client module: a token
 * whose keys are the gateway's keys and whose C_Sign asks the gateway.
 *
 *   module.c    the C_* entry points, the slot, token and session tables,
 *               the one mutex, fork handling
 *   objects.c   the object model built from GET /v1/keys: per key a
 *               private key, a public key and certificates; attributes
 *               and search
 *   mech.c      the mechanism table, DigestInfo parsing, PSS parameter
 *               checks, hashing for the *_SHA* mechanisms, ECDSA DER and
 *               r||s, the check of a returned signature
 *   conf.c      the configuration file and the environment
 *   gateway.c   the calls to the gateway (keys, requests, long-poll,
 *               cancel) and the evidence files
 *
 * Functions return CK_RV where their result goes straight back to the
 * caller of the module, and 0 or a negative SG_ERR_* code otherwise.
 * Nothing here aborts or exits: the module lives in someone else's
 * process.
 */
#ifndef P11MOD_INT_H
#define P11MOD_INT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

/* The C_* functions are the module's only exports: declared with default
 * visibility here, while everything else is hidden (-fvisibility=hidden
 * and the version script). */
#pragma GCC visibility push(default)
#include <p11-kit/pkcs11.h>
#pragma GCC visibility pop

#include "sg_crypto.h"
#include "sg_limits.h"

/* ---- conf.c ---- */

#define P11M_DEFAULT_TIMEOUT 300
#define P11M_MAX_TIMEOUT 86400
#define P11M_DEFAULT_CONNECT_TIMEOUT 10
#define P11M_MAX_CONNECT_TIMEOUT 300
#define P11M_DEFAULT_LABEL "signgate"
#define P11M_CONF_FILE_MAX (64 * 1024)
#define P11M_CONF_LINE_MAX 4096
#ifndef P11M_SYSTEM_CONF
#define P11M_SYSTEM_CONF "/etc/signgate/pkcs11.conf"
#endif
/* An artifact value the gateway accepts (docs/API.md). */
#define P11M_ARTIFACT_MAX SG_ARTIFACT_VALUE_MAX
#define P11M_ARTIFACT_SIZE (P11M_ARTIFACT_MAX + 1)

struct p11m_conf {
	char *url;
	char *cert;
	char *key;
	char *cacert;
	uint64_t timeout;          /* seconds a signature may wait */
	uint64_t connect_timeout;  /* seconds for one connection */
	char token_label[SG_TOKEN_LABEL_SIZE];
	char *grant;               /* a grant id, or NULL */
	char *artifact;            /* NULL: the host program's name */
	char *evidence_dir;        /* NULL: no evidence files */
	char *source;              /* the file read, or "the environment" */
};

/* What p11m_conf_load() found. */
enum {
	P11M_CONF_OK = 0,
	P11M_CONF_NONE = 1,        /* nothing configures the module */
};

/*
 * Finds and reads the configuration: SIGNGATE_PKCS11_CONF, the user's
 * file, the system's file, else SIGNGATE_URL and its companions.
 * P11M_CONF_OK with *ret filled; P11M_CONF_NONE with err saying where it
 * looked; a negative SG_ERR_* with err naming file, line and field.
 */
int p11m_conf_load(struct p11m_conf *ret, char *err, size_t errlen);
/* Parses a configuration file's text (path names it in messages and
 * anchors relative paths). */
int p11m_conf_parse(const char *path, const char *text, size_t len,
    struct p11m_conf *ret, char *err, size_t errlen);
/* The configuration from SIGNGATE_URL, SIGNGATE_CERT, SIGNGATE_KEY,
 * SIGNGATE_CACERT; P11M_CONF_NONE without SIGNGATE_URL. */
int p11m_conf_from_env(struct p11m_conf *ret, char *err, size_t errlen);
int p11m_conf_dup(const struct p11m_conf *c, struct p11m_conf *ret);
void p11m_conf_clear(struct p11m_conf *c);

/* What one signature is made with: the configuration overridden by
 * SIGNGATE_PKCS11_ARTIFACT, SIGNGATE_PKCS11_GRANT and
 * SIGNGATE_PKCS11_EVIDENCE_DIR, read when the operation starts. */
struct p11m_sign_env {
	char artifact[P11M_ARTIFACT_SIZE];
	char tool[P11M_ARTIFACT_SIZE];
	char grant[SG_REQUEST_ID_SIZE];      /* "" for none */
	char *evidence_dir;                  /* NULL for none */
};
int p11m_sign_env_load(const struct p11m_conf *c, struct p11m_sign_env *ret,
    char *err, size_t errlen);
void p11m_sign_env_clear(struct p11m_sign_env *e);

/* Messages for people: "signgate-pkcs11: ..." on stderr and to syslog
 * (LOG_USER|LOG_ERR, ident signgate-pkcs11). */
void p11m_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- mech.c ---- */

struct p11m_mech {
	CK_MECHANISM_TYPE type;
	const char *name;            /* "CKM_ECDSA_SHA256" */
	enum sg_sig_scheme scheme;
	enum sg_digest_alg hash;     /* NONE: the caller hashed */
};

/* The mechanism, or NULL for one the module does not offer. */
const struct p11m_mech *p11m_mech_find(CK_MECHANISM_TYPE t);
/* Every mechanism offered; n is set to their number. */
const struct p11m_mech *p11m_mech_all(size_t *n);
/* The mechanisms a key of this scheme takes (at most P11M_MECH_MAX). */
#define P11M_MECH_MAX 16
size_t p11m_mech_for_scheme(enum sg_sig_scheme s, CK_MECHANISM_TYPE *out,
    size_t cap);
/*
 * Whether mechanism m may sign with a key of this scheme:
 * CKR_KEY_TYPE_INCONSISTENT for EC against RSA,
 * CKR_KEY_FUNCTION_NOT_PERMITTED for PKCS#1 v1.5 against PSS.
 */
CK_RV p11m_mech_key_check(const struct p11m_mech *m, enum sg_sig_scheme key);
/*
 * Checks the mechanism's parameter: none for ECDSA and PKCS#1 v1.5; for
 * PSS a CK_RSA_PKCS_PSS_PARAMS whose hash is the mechanism's (any of
 * SHA-256/384/512 for CKM_RSA_PKCS_PSS), MGF1 with that hash and a salt
 * of its length.  *ret_hash: the digest algorithm the signature is over
 * (NONE when the data decides: CKM_ECDSA, CKM_RSA_PKCS).
 */
CK_RV p11m_mech_params(const struct p11m_mech *m, const void *param,
    CK_ULONG param_len, enum sg_digest_alg *ret_hash);
/*
 * A DER DigestInfo for SHA-256/384/512 with NULL parameters, exactly:
 * *ret_alg and a pointer to the digest inside in.  CKR_DATA_INVALID for
 * anything else.
 */
CK_RV p11m_digestinfo_parse(const uint8_t *in, size_t len,
    enum sg_digest_alg *ret_alg, const uint8_t **ret_digest);
/*
 * The digest that data stands for under a mechanism that does not hash
 * (CKM_ECDSA: 32/48/64 bytes; CKM_RSA_PKCS: a DigestInfo; PSS: bytes of
 * the parameter's hash length).  hash is p11m_mech_params()'s answer.
 */
CK_RV p11m_raw_digest(const struct p11m_mech *m, enum sg_digest_alg hash,
    const uint8_t *data, size_t len, enum sg_digest_alg *ret_alg,
    uint8_t *out, size_t *ret_len);
/* ECDSA DER SEQUENCE {r, s} (strict DER) to r||s of 2 * field bytes. */
int p11m_ecdsa_der_to_raw(const uint8_t *der, size_t len, size_t field,
    uint8_t *out, size_t cap, size_t *ret_len);

/* ---- objects.c ---- */

struct p11m_attr {
	CK_ATTRIBUTE_TYPE type;
	void *value;
	CK_ULONG len;
};

struct p11m_obj {
	CK_OBJECT_HANDLE handle;
	CK_OBJECT_CLASS cls;
	size_t key;                  /* index of its key (certificates of a
	                                CA: the first key that named it) */
	struct p11m_attr *attrs;
	size_t nattrs;
	size_t cap;
};

struct p11m_key {
	char name[SG_NAME_SIZE];
	const char *algorithm;       /* "ecdsa-p256", ... (static) */
	enum sg_key_alg alg;
	enum sg_sig_scheme scheme;
	EVP_PKEY *pub;
	size_t sig_len;              /* C_Sign's output: r||s or modulus */
	size_t field_len;            /* ECDSA: bytes of r and of s */
};

struct p11m_token {
	char principal[SG_NAME_SIZE];    /* "" when the gateway did not say */
	struct p11m_key *keys;
	size_t nkeys;
	struct p11m_obj *objs;
	size_t nobjs;
};

/* The first object handle; handles are dense from there. */
#define P11M_HANDLE_BASE 1

/*
 * Builds the token from a GET /v1/keys body: keys that are active, that
 * the principal may request and that sign a digest (not Ed25519).  A key
 * the module cannot read is left out with a message; a body that is not
 * a key list is SG_ERR_INVALID.
 */
int p11m_token_from_keys(const char *body, size_t len,
    struct p11m_token **ret, char *err, size_t errlen);
void p11m_token_free(struct p11m_token *t);
const struct p11m_obj *p11m_obj_get(const struct p11m_token *t,
    CK_OBJECT_HANDLE h);
/* C_GetAttributeValue's rules for every attribute of the template. */
CK_RV p11m_obj_get_attrs(const struct p11m_obj *o, CK_ATTRIBUTE *tmpl,
    CK_ULONG n);
/* 1 if the object has every attribute of the template with that value. */
int p11m_obj_match(const struct p11m_obj *o, const CK_ATTRIBUTE *tmpl,
    CK_ULONG n);

/* ---- gateway.c ---- */

/* One signature, as the gateway is asked for it.  Owns its copies. */
struct p11m_job {
	struct p11m_conf conf;
	struct p11m_sign_env env;
	char key[SG_NAME_SIZE];
	const char *algorithm;            /* static */
	enum sg_sig_scheme scheme;
	const char *mechanism;            /* static */
	enum sg_digest_alg dalg;
	uint8_t digest[SG_MAX_DIGEST];
	size_t dlen;
	EVP_PKEY *pub;                    /* a reference of its own */
	size_t sig_len;
	size_t field_len;
};
void p11m_job_clear(struct p11m_job *j);

/* GET /v1/keys: the body (malloc'd, NUL-terminated). */
CK_RV p11m_gw_keys(const struct p11m_conf *c, char **ret_body,
    size_t *ret_len);
/*
 * Asks for the signature, waits for it (long-poll, cancelled at the
 * timeout), checks it against the key and writes the evidence.  On CKR_OK
 * out holds job->sig_len bytes (r||s for ECDSA).
 */
CK_RV p11m_gw_sign(const struct p11m_job *job, uint8_t *out, size_t cap,
    size_t *ret_len);

#endif
