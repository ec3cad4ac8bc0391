/*
 * Set-up the unit tests share (tests/unit/sg_fixture.c, linked into every
 * unit test binary and test tool): scratch directories and their removal,
 * files of the source and build trees found from a test binary, a
 * throwaway SoftHSM token, a PKI and an RFC 3161 authority made in-process
 * with OpenSSL, and the few helpers and test vectors more than one test
 * needs.  Nothing here checks anything: each function says how it failed
 * (0 / -1, or NULL, with a line on stderr) and the test CHECKs it.
 */
#ifndef SG_FIXTURE_H
#define SG_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <p11-kit/pkcs11.h>

#include "sg_crypto.h"

/* ---- scratch directories ---- */

/* Every scratch directory starts so; sg_fx_rm_tree removes nothing else. */
#define SG_FX_TMP_PREFIX "/tmp/sg-test-"

/* Makes /tmp/sg-test-NAME.XXXXXX (mode 0700) into out. */
int sg_fx_tmpdir(const char *name, char *out, size_t cap);
/* Removes dir and everything below it (links themselves, never what they
 * point to); refuses a path outside SG_FX_TMP_PREFIX.  0 when dir is gone
 * afterwards, or is "" (a scratch directory never made). */
int sg_fx_rm_tree(const char *dir);

/* ---- files and programs ---- */

/* A file of the source tree: under $SG_TEST_SRCDIR, else three levels
 * above this binary (<tree>/<build>/tests/test_x), else below the current
 * directory.  0 when it is readable. */
int sg_fx_source_file(const char *rel, char *out, size_t cap);
/* A file of the build tree this binary belongs to (<build>/REL, two
 * levels above it).  0 when access(2) allows amode (R_OK, X_OK). */
int sg_fx_build_file(const char *rel, int amode, char *out, size_t cap);
int sg_fx_write_bytes(const char *path, const void *p, size_t n);
/* Writes dir/name with text; returns its path (caller frees), or NULL. */
char *sg_fx_file(const char *dir, const char *name, const char *text);
/* Runs argv (a NULL-terminated list; no shell) and waits: 0 when it
 * exits with status 0. */
int sg_fx_run(const char *const argv[]);

/* ---- a throwaway SoftHSM token (tests/unit/p11_fixture.sh) ---- */

#define SG_FX_SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"

/* Builds the token named label in dir (made if missing) and points
 * SOFTHSM2_CONF at it; dir then holds the PIN files and each key's
 * exported public key (see the script). */
int sg_fx_p11_token(const char *dir, const char *label);
/* The public key pkcs11-tool exported for the key labelled label (DER, or
 * PEM for Ed25519), or NULL. */
EVP_PKEY *sg_fx_p11_exported(const char *dir, const char *label);
/* The slot of the token labelled label, found through the module dl
 * (dlopen()ed) itself, not through the code under test; *ret_f is its
 * function list once known.  0, or -1 when there is no such token. */
int sg_fx_p11_slot(void *dl, const char *label, CK_FUNCTION_LIST **ret_f,
    CK_SLOT_ID *ret_slot);

/*
 * For a test that loads SoftHSM, once at file scope.  Under ASan only:
 * SoftHSM leaks in every Ed25519 C_SignInit (see tests/lsan.supp); only
 * its frames are suppressed, and the slow unwinder is needed to see them
 * through libcrypto.  A macro, not code in sg_fixture.c, so that the other
 * tests keep the sanitizers' defaults.
 */
#define SG_FX_SOFTHSM_SANITIZER_DEFAULTS				\
	const char *__asan_default_options(void);			\
	const char *__lsan_default_suppressions(void);			\
	const char *__lsan_default_options(void);			\
	const char *__asan_default_options(void)			\
	{ return "fast_unwind_on_malloc=0:malloc_context_size=12"; }	\
	const char *__lsan_default_suppressions(void)			\
	{ return "leak:libsofthsm2.so\n"; }				\
	const char *__lsan_default_options(void)			\
	{ return "print_suppressions=0"; }

/* ---- a PostgreSQL database (tests/pg.sh) ---- */

/*
 * A fresh database for a test of the PostgreSQL store, in the server
 * tests/run.sh starts for the run: SG_TEST_PG is its superuser's conninfo,
 * SG_TEST_PG_PASSFILE that superuser's password.  The database is named
 * PREFIX_PID_N and owned by the superuser; prefix is lower-case letters,
 * digits and '_', starting with a letter.  Returns 1 with conninfo
 * ("host=... port=... user=... dbname=...") and passfile (a new file of
 * mode 0600 holding the password alone, removed with the server); 0 when
 * there is no server (the test is skipped: SKIP in sg_test.h); -1 on a
 * failure, with a line on stderr.
 */
int sg_fx_pg_new_db(const char *prefix, char *conninfo, size_t cap,
    char *passfile, size_t pcap);

/* ---- keys and certificates ---- */

/* The public half only, as a verifier has it. */
EVP_PKEY *sg_fx_public_only(EVP_PKEY *k);
/* The public key, or the private key unencrypted, as PEM (caller
 * frees), or NULL. */
char *sg_fx_pubkey_pem(EVP_PKEY *k);
char *sg_fx_privkey_pem(EVP_PKEY *k);
/* Lower-case hex SHA-256 of the DER SubjectPublicKeyInfo. */
void sg_fx_spki_hex(EVP_PKEY *k, char out[65]);
/* OpenSSL's own verdict (1: good) on a signature over a digest of
 * algorithm da, or over the message itself for EdDSA; saltlen only
 * matters for PSS (RSA_PSS_SALTLEN_DIGEST: the digest's length). */
int sg_fx_verify(EVP_PKEY *pub, enum sg_sig_scheme scheme,
    enum sg_digest_alg da, const uint8_t *data, size_t len,
    const uint8_t *sig, size_t siglen, int saltlen);

enum sg_fx_cert_kind {
	SG_FX_CERT_PLAIN,       /* no extensions at all */
	SG_FX_CERT_CA,
	SG_FX_CERT_CODESIGN,    /* extendedKeyUsage codeSigning */
	SG_FX_CERT_TSA,         /* critical extendedKeyUsage timeStamping */
};

/* A v3 certificate for pub, valid from an hour ago for `days` days,
 * issued by issuer (NULL: self-signed) with issuer_key; or NULL. */
X509 *sg_fx_cert(const char *cn, EVP_PKEY *pub, X509 *issuer,
    EVP_PKEY *issuer_key, enum sg_fx_cert_kind kind, long days);
/* PEM of a, then b unless NULL (caller frees), or NULL. */
char *sg_fx_certs_pem(X509 *a, X509 *b);
/* PEM of a plain self-signed certificate for k, valid for a day. */
char *sg_fx_self_signed_pem(EVP_PKEY *k, const char *cn);
int sg_fx_write_cert(const char *path, X509 *x);
/* The private key as PEM, in a file of mode 0600. */
int sg_fx_write_key(const char *path, EVP_PKEY *k);
/* The unencrypted PEM private key in the file, or NULL. */
EVP_PKEY *sg_fx_read_key(const char *path);

/* A root CA, an intermediate CA under it for code-signing leaves, and a
 * time-stamping authority under the root (P-256 keys throughout), with a
 * scratch directory for the files a test makes of them. */
struct sg_fx_pki {
	EVP_PKEY *root_key, *inter_key, *tsa_key;
	X509 *root, *inter, *tsa;
	char *root_pem;         /* the trust anchor */
	char dir[64];           /* sg_fx_tmpdir(name) */
};

int sg_fx_pki_make(struct sg_fx_pki *pki, const char *name);
/* Removes the directory and frees what pki holds (any part may be
 * missing). */
void sg_fx_pki_free(struct sg_fx_pki *pki);

/* ---- RFC 3161, answered in-process ---- */

#define SG_FX_TSA_POLICY "1.2.3.4.1"

/* A DER TimeStampReq for SHA-256 of data, asking for the certificate,
 * with nonce unless 0 (caller frees), or NULL. */
uint8_t *sg_fx_ts_request(const void *data, size_t len, long nonce,
    size_t *ret_len);
/* The DER TimeStampResp the authority (cert, key) gives to a DER request
 * (caller frees), or NULL. */
uint8_t *sg_fx_ts_respond(X509 *cert, EVP_PKEY *key, const uint8_t *req,
    size_t len, size_t *ret_len);
/* The token alone (DER ContentInfo) the authority makes over data. */
int sg_fx_ts_token(X509 *cert, EVP_PKEY *key, const void *data, size_t len,
    uint8_t **ret, size_t *ret_len);

/* ---- small helpers ---- */

/* Sends all n bytes (MSG_NOSIGNAL); -1 on error. */
int sg_fx_send_all(int fd, const void *buf, size_t n);
/*
 * Reads one HTTP request (headers and a Content-Length body) into buf
 * (NUL-terminated): 1 with *ret_head the header's length and *ret_len the
 * whole; 0 at end of file before any byte; -1 on an error, a request
 * over cap, when *stop is set, or after idle_ms without a byte (0: no
 * limit).  Polls every 100 ms, so a stand-in server stops promptly.
 */
int sg_fx_http_read(int fd, char *buf, size_t cap, size_t *ret_head,
    size_t *ret_len, const volatile int *stop, int idle_ms);
/* s (freed) with the first `from` replaced by `to`; aborts when `from` is
 * not there. */
char *sg_fx_replace1(char *s, const char *from, const char *to);
/* Starts n threads, thread i on (char *)args + i * stride, and joins them;
 * returns how many started (it stops at the first that cannot).  With
 * ret_failures, each argument's int at byte offset failures_at is set to
 * 0 first, and *ret_failures is their sum over the threads that ran. */
int sg_fx_threads(int n, void *(*fn)(void *), void *args, size_t stride,
    size_t failures_at, int *ret_failures);
/* Decodes exactly n bytes of hex; aborts otherwise. */
void sg_fx_hexdec(const char *hex, uint8_t *out, size_t n);

/* A response body as libcurl hands it to sg_fx_body_write (its
 * CURLOPT_WRITEFUNCTION, the body its CURLOPT_WRITEDATA): NUL-terminated
 * once a byte came, at most SG_FX_BODY_MAX bytes; past that the callback
 * returns short, which fails the transfer.  The caller frees p. */
#define SG_FX_BODY_MAX (1024 * 1024)
struct sg_fx_body {
	char *p;
	size_t len;
};
size_t sg_fx_body_write(char *data, size_t size, size_t nmemb, void *arg);

/* ---- an approval statement (include/sg_dsse.h) and its parts ---- */

#define SG_FX_STMT_ID "0123456789abcdef0123456789abcdef"
#define SG_FX_STMT_SPKI \
	"aa00000000000000000000000000000000000000000000000000000000000001"
#define SG_FX_STMT_DIGEST \
	"bb00000000000000000000000000000000000000000000000000000000000002"
#define SG_FX_STMT_POLICY \
	"cc00000000000000000000000000000000000000000000000000000000000003"
#define SG_FX_STATEMENT							\
	"signgate approval v1\n"					\
	"request " SG_FX_STMT_ID "\n"					\
	"key release sha256:" SG_FX_STMT_SPKI "\n"			\
	"artifact sha256:" SG_FX_STMT_DIGEST "\n"			\
	"format raw\n"							\
	"requester ci\n"						\
	"policy signgate-dev@1 sha256:" SG_FX_STMT_POLICY "\n"		\
	"expires 1764417600\n"

/*
 * 1 when json is a DSSE approval envelope whose payload is exactly `body`
 * and whose first signature is officer's, over the PAE with SHA-256 -- the
 * server's check as docs/API.md describes it, redone by hand without the
 * code under test.  keyid, unless NULL, must be that signature's keyid.
 */
int sg_fx_envelope_ok(const char *json, const char *body, EVP_PKEY *officer,
    const char *keyid);

/* ---- RFC 6962 test vectors (transparency-dev/merkle testonly) ---- */

#define SG_FX_RFC6962_LEAVES 8
#define SG_FX_RFC6962_NINCL 5
#define SG_FX_RFC6962_NCONS 5

/* Eight leaves (hex), and the roots of the trees of their first 0 to 8. */
extern const char *const sg_fx_rfc6962_leaves[SG_FX_RFC6962_LEAVES];
extern const char *const sg_fx_rfc6962_roots[SG_FX_RFC6962_LEAVES + 1];
/* The leaf hash of leaf i. */
void sg_fx_rfc6962_leaf_hash(size_t i, uint8_t out[32]);

/* Published inclusion proofs: the leaf is 1-based, as there. */
struct sg_fx_incl_vec {
	uint64_t leaf, size;
	size_t n;
	const char *proof[3];
};
extern const struct sg_fx_incl_vec sg_fx_rfc6962_incl[SG_FX_RFC6962_NINCL];

/* Published consistency proofs from size m to size n (np hashes); the
 * first is the empty proof of a tree to itself. */
struct sg_fx_cons_vec {
	uint64_t m, n;
	size_t np;
	const char *proof[3];
};
extern const struct sg_fx_cons_vec sg_fx_rfc6962_cons[SG_FX_RFC6962_NCONS];

/* ---- a software security key: WebAuthn assertions as a browser and
 * an authenticator make them (docs/API.md, "Approvals made with a
 * security key"), written without the code under test ---- */

struct sg_fx_wa_opts {
	const char *rp_id;      /* its SHA-256 is the authenticator data's */
	const char *origin;
	const char *type;       /* NULL: "webauthn.get" */
	uint8_t flags;          /* 0x01 UP, 0x04 UV */
	int cross_origin;       /* 0: absent, 1: false, 2: true */
	const char *extra;      /* raw members appended (",\"x\":1") or NULL */
};

struct sg_fx_wa_assertion {
	uint8_t authdata[64];
	size_t authdata_len;    /* 37 */
	char *client_data;      /* the client data JSON, malloc'd */
	size_t client_data_len;
	uint8_t *sig;           /* DER ECDSA or PKCS#1 v1.5, malloc'd */
	size_t sig_len;
};

/* base64url without padding (caller frees), or NULL. */
char *sg_fx_b64url(const uint8_t *in, size_t len);
/* An assertion by key over challenge: 0, or -1. */
int sg_fx_wa_sign(EVP_PKEY *key, const struct sg_fx_wa_opts *o,
    const uint8_t *challenge, size_t clen, struct sg_fx_wa_assertion *ret);
/* Signs a's (possibly altered) authenticator and client data again. */
int sg_fx_wa_resign(EVP_PKEY *key, struct sg_fx_wa_assertion *a);
void sg_fx_wa_free(struct sg_fx_wa_assertion *a);

/* ---- a log signed in process ---- */

struct sg_witness_request;
struct sg_witness_reply;
/* The signer's part for tools that build a log without an HSM: the
 * checkpoint of req (origin, req's size and root) signed with the Ed25519
 * key into ret, with the signer's record of that tree.  0, or an SG_ERR_*
 * code. */
int sg_fx_log_sign(EVP_PKEY *key, const char *origin,
    const struct sg_witness_request *req, struct sg_witness_reply *ret);

struct sg_store;
struct sg_tlog;
/* A store opened on a directory, and its log under origin, whose
 * checkpoints sg_fx_log_sign signs with a fresh Ed25519 key: for tools
 * that fill a log without an HSM. */
struct sg_fx_log {
	const char *origin;
	EVP_PKEY *key;
	struct sg_store *st;
	struct sg_tlog *log;
};
/* 0, or -1 with a line on stderr. */
int sg_fx_log_open(struct sg_fx_log *l, const char *dir, const char *origin);
/* Appends, in one store write, the entries entry() makes for each i in
 * [from, to): entry writes the text into buf (cap bytes) and returns its
 * length, or -1 when it does not fit.  0, or an SG_ERR_* code. */
int sg_fx_log_append(struct sg_fx_log *l, uint64_t from, uint64_t to,
    int (*entry)(uint64_t i, char *buf, size_t cap));
/* Frees the log, closes the store and frees the key. */
void sg_fx_log_close(struct sg_fx_log *l);

#endif
