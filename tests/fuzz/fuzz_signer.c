/*
 * Fuzzes the signer process's handling of what the front sends, end to
 * end: every input is one record from a channel, answered by
 * sg_signer_child_serve_msg() exactly as a channel thread answers it
 * (the wire decoder, the evidence check, the policy's rules, the
 * signature record, the checkpoint record), over a child built on a fake
 * core that holds its keys in memory instead of a PKCS#11 token.
 *
 * Properties checked on every answer: it is a reply the front accepts
 * (sg_wire_decode_reply: framing, lengths, a refusal that carries
 * nothing) and carries the request's tag; a signature returned for SIGN
 * verifies with the key over the digest asked for, under a statement that
 * names that key, digest and format; a checkpoint signature verifies with the log key over the
 * checkpoint text of the tree asked for, which is now the record.  A
 * SIGN_BATCH is answered with a BATCH_REPLY the front accepts, each item
 * signed only when its line is allowed under a release or grant statement
 * for that key (sg_artifact_allowed), with a signature over the line's
 * digest, and never two digests signed for one (id, position, format).
 *
 * The policy, the keys and the officers' keys are fixed, so that the
 * seeds (tests/fuzz/corpus/signer/) carry statements and approvals that
 * verify.  The seeds are made by this harness:
 *
 *   SG_FUZZ_SIGNER_SEEDS=tests/fuzz/corpus/signer build-fuzz/fuzz_signer
 *
 * and SG_FUZZ_SIGNER_VERBOSE=1 prints each answer's status and reason
 * (to see which seeds reach which step).
 *
 * The records live in a scratch directory (under /dev/shm when it can,
 * as the signature record syncs every commit), removed at exit; a run
 * that finds something leaves it, with the records it found it on.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "sg_crypto.h"
#include "sg_dsse.h"
#include "sg_err.h"
#include "sg_evidence.h"
#include "sg_manifest.h"
#include "sg_merkle.h"
#include "sg_note.h"
#include "sg_policy.h"
#include "sg_signer_child.h"
#include "sg_signer_proc.h"
#include "sg_signer_wire.h"
#include "sg_sigrec.h"
#include "sg_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TOKEN "fuzz-token"
#define SERIAL "0123456789abcdef"
#define ORIGIN "fuzz.example/log"
#define EXPIRES 4102444800LL   /* 2100-01-01 */

/* Officers' approval keys, P-256. */
static const char alice_key[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgnEatJniVfa89bXf/\n"
    "p2XRb/qKOkEjrxLDl2Q66LuANGyhRANCAATFstNRaWI8ysKQAtV3NmeLlKjuxomu\n"
    "f1Oyt5Qy3RYuLJG2N6WYSx/wVcPdequZiFLHwASbQFwsjre56YD6BwEm\n"
    "-----END PRIVATE KEY-----\n";
static const char bob_key[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQggajujiwwkRMGEP+w\n"
    "AATM0WmE7+esa19UzsCL84V2MKqhRANCAASauK7vKRtCb2aQydO7k7Fd34b+G6nt\n"
    "KwOEL4azDAcIGqAuln4/wyBCvurIWzvN4yvWI+z+rD5FrOQ3CNQfd4ru\n"
    "-----END PRIVATE KEY-----\n";

/* The token's keys. */
static const char release_key[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgNWK/HECvOb1ikfhV\n"
    "oOsdj8omro4QpLjjhJ2XACrxcUOhRANCAARBcIGQZd30Z5/dYH72akRVKfRu3nbQ\n"
    "YeIqJxkz4r+0tCQg07XF/BMhVV6mo6+o9/2zcKBwqgCyeoaov/gT3jtJ\n"
    "-----END PRIVATE KEY-----\n";
static const char nightly_key[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgKN9LLxQ80Sl8uT0l\n"
    "dkemSA7DRmLSaIouV03ZiJ89rMChRANCAARAiUCIxmAR1uSpmYfdupv4IQtFoBDw\n"
    "6GX97vQRito6Jpo/w5btowVhuvBr3y9hHO/FsrSeLFcWuizw+IXad2oo\n"
    "-----END PRIVATE KEY-----\n";
static const char nowhere_key[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgjPLPvf26rXg7I98v\n"
    "TxL/7B4fcl+zlCAPek5w2+9/aCOhRANCAASVukjAS9m2w4AQ4kutGBPGl7wT0PJH\n"
    "IPSCkVvunPhyhjztODuKSgHNQm08bN9JEsNpN0swJ5PDPBm90iZg13yd\n"
    "-----END PRIVATE KEY-----\n";
static const char edkey_key[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIOizFYT0sf5lBdLBwYfCRO/YpliWhotZ0OEjIu42zy/w\n"
    "-----END PRIVATE KEY-----\n";
static const char log_key[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIFBtngm+2Sy/JWD4Ai27xqM5JjqR9sCH1oEUUCiBfbpp\n"
    "-----END PRIVATE KEY-----\n";

/*
 * release needs both officers; nightly and edkey sign at once; nowhere's
 * countries exclude the token's.  release and nightly have certificates
 * (made at start, relative to the policy file) for CMS.
 */
static const char policy_text[] =
    "policy signgate-fuzz\n"
    "version 1\n"
    "\n"
    "principal ci\n"
    "    roles requester\n"
    "    client-cn ci\n"
    "end\n"
    "\n"
    "principal alice\n"
    "    roles officer\n"
    "    client-cn alice\n"
    "    approval-key\n"
    "    -----BEGIN PUBLIC KEY-----\n"
    "    MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAExbLTUWliPMrCkALVdzZni5So7saJ\n"
    "    rn9TsreUMt0WLiyRtjelmEsf8FXD3XqrmYhSx8AEm0BcLI63uemA+gcBJg==\n"
    "    -----END PUBLIC KEY-----\n"
    "end\n"
    "\n"
    "principal bob\n"
    "    roles officer\n"
    "    client-cn bob\n"
    "    approval-key\n"
    "    -----BEGIN PUBLIC KEY-----\n"
    "    MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEmriu7ykbQm9mkMnTu5OxXd+G/hup\n"
    "    7SsDhC+GswwHCBqgLpZ+P8MgQr7qyFs7zeMr1iPs/qw+RazkNwjUH3eK7g==\n"
    "    -----END PUBLIC KEY-----\n"
    "end\n"
    "\n"
    "group officers\n"
    "    members alice bob\n"
    "end\n"
    "\n"
    "hsm " SERIAL "\n"
    "    manufacturer Fuzz project\n"
    "    model Fuzz v1\n"
    "    site Zurich\n"
    "    country CH\n"
    "end\n"
    "\n"
    "key release\n"
    "    token " TOKEN "\n"
    "    object release\n"
    "    algorithm ecdsa-p256\n"
    "    formats raw cms\n"
    "    certificate release.pem\n"
    "    requesters ci\n"
    "    require officers 2\n"
    "    veto yes\n"
    "    lifetime 24h\n"
    "    countries CH\n"
    "    allow-releases 16\n"
    "    allow-grants 4 24h\n"
    "end\n"
    "\n"
    "key nightly\n"
    "    token " TOKEN "\n"
    "    object nightly\n"
    "    algorithm ecdsa-p256\n"
    "    formats raw cms\n"
    "    certificate nightly.pem\n"
    "    requesters ci\n"
    "    veto no\n"
    "    lifetime 1h\n"
    "    countries CH\n"
    "end\n"
    "\n"
    "key edkey\n"
    "    token " TOKEN "\n"
    "    object edkey\n"
    "    algorithm ed25519\n"
    "    formats raw\n"
    "    requesters ci\n"
    "    veto no\n"
    "    lifetime 1h\n"
    "    countries CH\n"
    "end\n"
    "\n"
    "key nowhere\n"
    "    token " TOKEN "\n"
    "    object nowhere\n"
    "    algorithm ecdsa-p256\n"
    "    formats raw\n"
    "    requesters ci\n"
    "    veto no\n"
    "    lifetime 1h\n"
    "    countries DE\n"
    "end\n";

/* ------------------------------------------------------------------ */
/* The fake core: keys in memory, signing as the PKCS#11 signer does. */

struct fake_key {
	const char *name;
	const char *pem;
	const char *cert;              /* file name, or NULL */
	enum sg_key_alg alg;
	enum sg_sig_scheme scheme;
	EVP_PKEY *pkey;
};

static struct fake_key fake_keys[] = {
	{ "release", release_key, "release.pem", SG_ALG_ECDSA_P256,
	    SG_SIG_ECDSA, NULL },
	{ "nightly", nightly_key, "nightly.pem", SG_ALG_ECDSA_P256,
	    SG_SIG_ECDSA, NULL },
	{ "edkey", edkey_key, NULL, SG_ALG_ED25519, SG_SIG_EDDSA, NULL },
	{ "nowhere", nowhere_key, NULL, SG_ALG_ECDSA_P256, SG_SIG_ECDSA,
	    NULL },
	{ SG_SIGNER_LOG_KEY, log_key, NULL, SG_ALG_ED25519, SG_SIG_EDDSA,
	    NULL },
};
#define NFAKE_KEYS (sizeof(fake_keys) / sizeof(fake_keys[0]))

static EVP_PKEY *officers[2];

static struct fake_key *
fake_key(const char *name)
{
	size_t i;

	for (i = 0; i < NFAKE_KEYS; i++)
		if (strcmp(fake_keys[i].name, name) == 0)
			return &fake_keys[i];
	return NULL;
}

static int
pkey_sign(EVP_PKEY *k, enum sg_sig_scheme scheme, enum sg_digest_alg alg,
    const uint8_t *data, size_t len, uint8_t *sig, size_t *sig_len)
{
	EVP_PKEY_CTX *pc = NULL;
	EVP_MD_CTX *md = NULL;
	int ok = 0;

	if (scheme == SG_SIG_EDDSA)
		ok = (md = EVP_MD_CTX_new()) != NULL &&
		    EVP_DigestSignInit(md, NULL, NULL, NULL, k) == 1 &&
		    EVP_DigestSign(md, sig, sig_len, data, len) == 1;
	else
		ok = (pc = EVP_PKEY_CTX_new(k, NULL)) != NULL &&
		    EVP_PKEY_sign_init(pc) == 1 &&
		    EVP_PKEY_CTX_set_signature_md(pc, sg_digest_md(alg)) == 1 &&
		    EVP_PKEY_sign(pc, sig, sig_len, data, len) == 1;
	EVP_MD_CTX_free(md);
	EVP_PKEY_CTX_free(pc);
	return ok ? 0 : SG_ERR_CRYPTO;
}

/* sg_signer_sign(): the request's shape, the key, then a signature. */
static void
fake_sign(void *core, const struct sg_sign_msg *msg,
    struct sg_sign_reply *reply)
{
	struct fake_key *k;
	size_t len = sizeof(reply->sig);

	(void)core;
	memset(reply, 0, sizeof(*reply));
	if (strnlen(msg->key, sizeof(msg->key)) == sizeof(msg->key) ||
	    msg->data_len > sizeof(msg->data)) {
		reply->status = SG_ERR_INVALID;
		return;
	}
	if (msg->key[0] == '@' || (k = fake_key(msg->key)) == NULL) {
		reply->status = SG_ERR_NOT_FOUND;
		return;
	}
	if (k->scheme == SG_SIG_EDDSA ? msg->digest_alg != SG_DIGEST_NONE ||
	    msg->data_len == 0 : sg_digest_len(msg->digest_alg) == 0 ||
	    msg->data_len != sg_digest_len(msg->digest_alg)) {
		reply->status = SG_ERR_INVALID;
		return;
	}
	if ((reply->status = pkey_sign(k->pkey, k->scheme, msg->digest_alg,
	    msg->data, msg->data_len, reply->sig, &len)) == 0)
		reply->sig_len = len;
}

static int
fake_key_public(void *core, const char *name, EVP_PKEY **ret_pub,
    enum sg_key_alg *ret_alg, struct sg_token_info *ret_token)
{
	struct fake_key *k;

	(void)core;
	if ((k = fake_key(name)) == NULL)
		return SG_ERR_NOT_FOUND;
	if (ret_pub != NULL)
		*ret_pub = k->pkey;    /* a private key serves as public */
	if (ret_alg != NULL)
		*ret_alg = k->alg;
	if (ret_token != NULL) {
		memset(ret_token, 0, sizeof(*ret_token));
		snprintf(ret_token->label, sizeof(ret_token->label), TOKEN);
		snprintf(ret_token->serial, sizeof(ret_token->serial), SERIAL);
		snprintf(ret_token->manufacturer,
		    sizeof(ret_token->manufacturer), "Fuzz project");
		snprintf(ret_token->model, sizeof(ret_token->model),
		    "Fuzz v1");
	}
	return 0;
}

static int
fake_sign_checkpoint(void *core, const char *origin, uint64_t size,
    const uint8_t root[SG_HASH_LEN], uint8_t sig[SG_ED25519_SIG])
{
	struct sg_checkpoint cp;
	char *text = NULL;
	size_t len = SG_ED25519_SIG;
	int r;

	(void)core;
	memset(&cp, 0, sizeof(cp));
	if (strlen(origin) >= sizeof(cp.origin))
		return SG_ERR_INVALID;
	snprintf(cp.origin, sizeof(cp.origin), "%s", origin);
	cp.size = size;
	memcpy(cp.root, root, SG_HASH_LEN);
	if ((r = sg_checkpoint_format(&cp, &text)) != 0)
		return r;
	r = pkey_sign(fake_key(SG_SIGNER_LOG_KEY)->pkey, SG_SIG_EDDSA,
	    SG_DIGEST_NONE, (const uint8_t *)text, strlen(text), sig, &len);
	free(text);
	return r;
}

/* Only the log key's own object is reserved. */
static int
fake_spec_reserved(void *core, const struct sg_signer_key_spec *ks,
    char *errbuf, size_t errlen)
{
	(void)core;
	if (strcmp(ks->token, TOKEN) == 0 && strcmp(ks->label, "log") == 0) {
		snprintf(errbuf, errlen, "key '%s' is the transparency log's "
		    "key", ks->name);
		return SG_ERR_FORBIDDEN;
	}
	return 0;
}

static const struct sg_signer_ops fake_ops = {
	fake_sign, fake_key_public, fake_sign_checkpoint, fake_spec_reserved,
	NULL
};

/* ------------------------------------------------------------------ */
/* Set-up. */

static struct sg_signer_child *child;
static struct sg_policy *policy;
static char workdir[64];
static int verbose;            /* SG_FUZZ_SIGNER_VERBOSE: each answer */

static EVP_PKEY *
load_key(const char *pem)
{
	EVP_PKEY *k = NULL;
	BIO *bio;

	if ((bio = BIO_new_mem_buf(pem, -1)) != NULL)
		k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (k == NULL)
		abort();
	return k;
}

/* A self-signed certificate for k, as the key's chain. */
static void
write_cert(const char *path, EVP_PKEY *k, const char *cn)
{
	X509 *x;
	X509_NAME *name;
	FILE *fp;

	if ((x = X509_new()) == NULL || X509_set_version(x, 2) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365) == NULL ||
	    X509_set_pubkey(x, k) != 1 ||
	    (name = X509_get_subject_name(x)) == NULL ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, name) != 1 ||
	    X509_sign(x, k, EVP_sha256()) == 0 ||
	    (fp = fopen(path, "w")) == NULL)
		abort();
	if (PEM_write_X509(fp, x) != 1 || fclose(fp) != 0)
		abort();
	X509_free(x);
}

static int
remove_one(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void
cleanup(void)
{
	size_t i;

	sg_signer_child_free(child);
	child = NULL;
	sg_policy_free(policy);
	for (i = 0; i < NFAKE_KEYS; i++)
		EVP_PKEY_free(fake_keys[i].pkey);
	EVP_PKEY_free(officers[0]);
	EVP_PKEY_free(officers[1]);
	if (workdir[0] != '\0')
		nftw(workdir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void
setup(void)
{
	struct sg_signer_key_spec *specs = NULL;
	char path[256], state[256], err[512];
	size_t i, nspecs;

	snprintf(workdir, sizeof(workdir), "/dev/shm/fuzz_signer.XXXXXX");
	if (mkdtemp(workdir) == NULL) {
		snprintf(workdir, sizeof(workdir), "/tmp/fuzz_signer.XXXXXX");
		if (mkdtemp(workdir) == NULL)
			abort();
	}
	atexit(cleanup);
	for (i = 0; i < NFAKE_KEYS; i++) {
		fake_keys[i].pkey = load_key(fake_keys[i].pem);
		if (fake_keys[i].cert == NULL)
			continue;
		snprintf(path, sizeof(path), "%s/%s", workdir,
		    fake_keys[i].cert);
		write_cert(path, fake_keys[i].pkey, fake_keys[i].name);
	}
	officers[0] = load_key(alice_key);
	officers[1] = load_key(bob_key);
	snprintf(path, sizeof(path), "%s/policy.conf", workdir);
	snprintf(state, sizeof(state), "%s/state", workdir);
	if (sg_write_file(path, policy_text, strlen(policy_text), 0644) != 0 ||
	    sg_policy_parse(path, policy_text, strlen(policy_text), &policy,
	    err, sizeof(err)) != 0 ||
	    sg_signer_key_specs(policy, TOKEN, "log", &specs, &nspecs) != 0) {
		fprintf(stderr, "fuzz_signer: policy: %s\n", err);
		abort();
	}
	if (sg_signer_child_new(&fake_ops, NULL, specs, nspecs, path, ORIGIN,
	    state, &child, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_signer: %s\n", err);
		abort();
	}
	free(specs);
}

/* ------------------------------------------------------------------ */
/* Properties of an answer. */

static void
check_sign(const struct sg_wire_sign_req *req,
    const struct sg_wire_reply *rep, const uint8_t *cms)
{
	struct sg_statement st;
	struct fake_key *k;
	char hex[2 * SG_MAX_DIGEST + 1];

	if ((k = fake_key(req->msg.key)) == NULL || k->name[0] == '@' ||
	    rep->sig_len == 0 ||
	    sg_statement_parse(req->statement, req->statement_len, &st) != 0)
		abort();
	sg_hex_encode(req->msg.data, req->msg.data_len, hex);
	if (strcmp(st.key, k->name) != 0 || strcmp(st.digest_hex, hex) != 0 ||
	    strcmp(st.format, sg_format_str(req->format)) != 0)
		abort();
	if (req->format == SG_FORMAT_CMS) {
		if (cms == NULL || rep->cms_len == 0)
			abort();
		return;
	}
	if (rep->cms_len != 0 || sg_verify(k->pkey, k->scheme,
	    k->scheme == SG_SIG_EDDSA ? SG_DIGEST_NONE : req->msg.digest_alg,
	    req->msg.data, req->msg.data_len, rep->sig, rep->sig_len) != 0)
		abort();
}

static void
check_checkpoint(const struct sg_witness_request *req,
    const struct sg_wire_reply *rep)
{
	struct sg_checkpoint cp;
	char *text = NULL;

	memset(&cp, 0, sizeof(cp));
	snprintf(cp.origin, sizeof(cp.origin), "%s", ORIGIN);
	cp.size = req->size;
	memcpy(cp.root, req->root, SG_HASH_LEN);
	if (rep->sig_len != SG_ED25519_SIG || !rep->log_recorded ||
	    rep->log_size != req->size ||
	    memcmp(rep->log_root, req->root, SG_HASH_LEN) != 0 ||
	    sg_checkpoint_format(&cp, &text) != 0 ||
	    sg_verify(fake_key(SG_SIGNER_LOG_KEY)->pkey, SG_SIG_EDDSA,
	    SG_DIGEST_NONE, (const uint8_t *)text, strlen(text), rep->sig,
	    SG_ED25519_SIG) != 0)
		abort();
	free(text);
}

/* Every slot signed so far (record id and format) and its digest: one
 * digest per slot, ever. */
#define MAX_SLOTS 4096
static struct slot {
	char id[SG_REQUEST_ID_SIZE];
	enum sg_format format;
	uint8_t digest[SG_MAX_DIGEST];
	size_t len;
} slots[MAX_SLOTS];
static size_t nslots;

static void
slot_check(const char *id, enum sg_format format,
    const struct sg_artifact_line *l)
{
	size_t i;

	for (i = 0; i < nslots; i++) {
		if (strcmp(slots[i].id, id) != 0 || slots[i].format != format)
			continue;
		if (slots[i].len != l->digest_len ||
		    memcmp(slots[i].digest, l->digest, l->digest_len) != 0)
			abort();       /* a second digest for one slot */
		return;
	}
	if (nslots == MAX_SLOTS)
		return;
	snprintf(slots[nslots].id, sizeof(slots[nslots].id), "%s", id);
	slots[nslots].format = format;
	memcpy(slots[nslots].digest, l->digest, l->digest_len);
	slots[nslots].len = l->digest_len;
	nslots++;
}

/* One item the signer signed: allowed under the statement, signed over
 * its line's digest with the statement's key. */
static void
check_item(const struct sg_wire_batch_req *req, const struct sg_statement *st,
    size_t i, const struct sg_wire_batch_result *r, const uint8_t *sig)
{
	const struct sg_batch_item *it = &req->items[i];
	struct sg_artifact_line l;
	struct fake_key *k;
	char why[256], id[SG_REQUEST_ID_SIZE];

	if ((k = fake_key(req->sign.msg.key)) == NULL ||
	    strcmp(st->key, k->name) != 0 ||
	    sg_artifact_allowed(st, it->line, it->line_len, it->position,
	    it->path, it->npath, (int64_t)time(NULL), &l, why,
	    sizeof(why)) != 0 || l.format != req->sign.format)
		abort();
	if ((req->sign.format == SG_FORMAT_CMS) != (r->cms_len > 0))
		abort();
	if (req->sign.format == SG_FORMAT_RAW && sg_verify(k->pkey, k->scheme,
	    k->scheme == SG_SIG_EDDSA ? SG_DIGEST_NONE : l.digest_alg,
	    l.digest, l.digest_len, sig, r->sig_len) != 0)
		abort();
	sg_sigrec_item_id(sg_kind_str(st->kind), st->request, it->position,
	    id);
	slot_check(id, req->sign.format, &l);
}

static void
check_batch(const uint8_t *msg, size_t len, const uint8_t *out,
    size_t out_len)
{
	struct sg_wire_request *req;
	struct sg_wire_batch_reply rep;
	struct sg_statement st;
	const uint8_t *extra;
	char err[SG_SIGNER_ERR_MAX];
	size_t i, off = 0;

	if (sg_wire_decode_batch_reply(out, out_len, &rep, &extra) != 0)
		abort();
	if (verbose)
		fprintf(stderr, "fuzz_signer: %zu bytes: batch status %d%s%s, "
		    "%u items\n", len, rep.status, rep.err[0] ? ": " : "",
		    rep.err, rep.nitems);
	if (rep.status != 0)
		return;
	if ((req = calloc(1, sizeof(*req))) == NULL)
		abort();
	if (sg_wire_decode_request(msg, len, req, err, sizeof(err)) != 0 ||
	    req->type != SG_WIRE_SIGN_BATCH ||
	    rep.nitems != req->u.batch.nitems ||
	    sg_statement_parse(req->u.batch.sign.statement,
	    req->u.batch.sign.statement_len, &st) != 0 ||
	    (st.kind != SG_KIND_RELEASE && st.kind != SG_KIND_GRANT))
		abort();
	for (i = 0; i < rep.nitems; i++) {
		if (rep.items[i].status == 0)
			check_item(&req->u.batch, &st, i, &rep.items[i],
			    extra + off);
		off += rep.items[i].sig_len + rep.items[i].cms_len;
	}
	free(req);
}

static void
check_answer(const uint8_t *msg, size_t len, const uint8_t *out,
    size_t out_len)
{
	struct sg_wire_request *req;
	struct sg_wire_reply *rep;
	const uint8_t *cms;
	char err[SG_SIGNER_ERR_MAX];

	/* The answer is its request's: same tag (0 when there was none). */
	if (sg_wire_tag(out, out_len) != sg_wire_tag(msg, len))
		abort();
	if (len >= sizeof(struct sg_wire_hdr) && out_len >=
	    sizeof(struct sg_wire_hdr) && ((const struct sg_wire_hdr *)
	    (const void *)out)->type == SG_WIRE_BATCH_REPLY) {
		check_batch(msg, len, out, out_len);
		return;
	}
	if ((req = calloc(1, sizeof(*req))) == NULL ||
	    (rep = calloc(1, sizeof(*rep))) == NULL)
		abort();
	if (sg_wire_decode_reply(out, out_len, rep, &cms) != 0)
		abort();
	if (verbose)
		fprintf(stderr, "fuzz_signer: %zu bytes: status %d%s%s, "
		    "sig_len %u, cms_len %u\n", len, rep->status,
		    rep->err[0] ? ": " : "", rep->err, rep->sig_len,
		    rep->cms_len);
	if (rep->status == 0 && sg_wire_decode_request(msg, len, req, err,
	    sizeof(err)) != 0)
		abort();
	if (rep->status == 0 && req->type == SG_WIRE_SIGN)
		check_sign(&req->u.sign, rep, cms);
	else if (rep->status == 0 && req->type == SG_WIRE_CHECKPOINT)
		check_checkpoint(&req->u.checkpoint, rep);
	else if (rep->status == 0 && rep->sig_len != 0)
		abort();               /* PROBE, KEYINFO, RELOAD */
	free(req);
	free(rep);
}

/* ------------------------------------------------------------------ */
/* Seeds. */

/* Each seed with a tag of its own, as the front numbers its requests. */
static void
write_seed(const char *dir, const char *name, const void *msg, size_t len)
{
	static uint64_t tag;
	char path[512];
	uint8_t *copy;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (len < sizeof(struct sg_wire_hdr) || (copy = malloc(len)) == NULL)
		abort();
	memcpy(copy, msg, len);
	sg_wire_set_tag(copy, ++tag);
	if (sg_write_file(path, copy, len, 0644) != 0) {
		fprintf(stderr, "fuzz_signer: cannot write %s\n", path);
		exit(1);
	}
	free(copy);
}

/* An approval (or a reject) of stmt by officer i, as the CLI makes it. */
static char *
envelope(const char *stmt, size_t len, int approve, int i)
{
	static const char *const names[] = { "alice", "bob" };
	uint8_t *body = NULL, *pae = NULL, sig[256];
	size_t blen = 0, pae_len = 0, slen = sizeof(sig);
	EVP_MD_CTX *md;
	char *json = NULL;

	if ((md = EVP_MD_CTX_new()) == NULL ||
	    sg_body_build(stmt, len, approve, &body, &blen) != 0 ||
	    sg_dsse_pae(SG_DSSE_TYPE, body, blen, &pae, &pae_len) != 0 ||
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL,
	    officers[i]) != 1 ||
	    EVP_DigestSign(md, sig, &slen, pae, pae_len) != 1 ||
	    sg_envelope_build(SG_DSSE_TYPE, body, blen, names[i], sig, slen,
	    &json) != 0)
		abort();
	EVP_MD_CTX_free(md);
	free(body);
	free(pae);
	return json;
}

/* A SIGN for key with the given approvals (+1 approve, -1 reject, 0
 * none, per officer). */
static void
seed_sign(const char *dir, const char *name, const char *key,
    const char *format, const char *request, const int who[2])
{
	struct sg_statement st;
	struct sg_sign_msg m;
	struct sg_sign_evidence ev;
	const char *envs[2];
	char *json[2] = { NULL, NULL }, *stmt = NULL;
	size_t lens[2], len, n = 0, mlen, i;
	uint8_t spki[32], *msg = NULL;
	EVP_PKEY *pub;

	memset(&st, 0, sizeof(st));
	memset(&m, 0, sizeof(m));
	snprintf(st.request, sizeof(st.request), "%s", request);
	snprintf(st.key, sizeof(st.key), "%s", key);
	if (fake_key_public(NULL, key, &pub, NULL, NULL) != 0 ||
	    sg_pubkey_spki_sha256(pub, spki) != 0)
		abort();
	sg_hex_encode(spki, sizeof(spki), st.spki_sha256);
	snprintf(st.digest_alg, sizeof(st.digest_alg), "sha256");
	sg_sha256(name, strlen(name), m.data);
	m.data_len = 32;
	m.digest_alg = SG_DIGEST_SHA256;
	snprintf(m.key, sizeof(m.key), "%s", key);
	sg_hex_encode(m.data, 32, st.digest_hex);
	snprintf(st.format, sizeof(st.format), "%s", format);
	snprintf(st.requester, sizeof(st.requester), "ci");
	snprintf(st.policy_name, sizeof(st.policy_name), "%s",
	    sg_policy_name(policy));
	st.policy_version = sg_policy_version(policy);
	snprintf(st.policy_sha256, sizeof(st.policy_sha256), "%s",
	    sg_policy_sha256_hex(policy));
	st.expires = EXPIRES;
	if (sg_statement_build(&st, &stmt, &len) != 0)
		abort();
	for (i = 0; i < 2; i++) {
		if (who[i] == 0)
			continue;
		json[n] = envelope(stmt, len, who[i] > 0, (int)i);
		envs[n] = json[n];
		lens[n] = strlen(json[n]);
		n++;
	}
	memset(&ev, 0, sizeof(ev));
	ev.statement = stmt;
	ev.statement_len = len;
	ev.envelopes = envs;
	ev.envelope_lens = lens;
	ev.n = n;
	if (sg_format_parse(format, &ev.format) != 0 ||
	    sg_wire_encode_sign(&m, &ev, &msg, &mlen) != 0)
		abort();
	write_seed(dir, name, msg, mlen);
	free(msg);
	free(stmt);
	free(json[0]);
	free(json[1]);
}

/* A statement of kind (release over lines, or a grant of count for
 * pattern) on key release, expiring in 2100. */
static char *
kind_statement(enum sg_kind kind, const char *id, const char *format,
    uint64_t count, const char *root_hex, size_t *ret_len)
{
	struct sg_statement st;
	EVP_PKEY *pub;
	uint8_t spki[32];
	char *stmt = NULL;

	memset(&st, 0, sizeof(st));
	st.kind = kind;
	snprintf(st.request, sizeof(st.request), "%s", id);
	snprintf(st.key, sizeof(st.key), "release");
	if (fake_key_public(NULL, "release", &pub, NULL, NULL) != 0 ||
	    sg_pubkey_spki_sha256(pub, spki) != 0)
		abort();
	sg_hex_encode(spki, sizeof(spki), st.spki_sha256);
	st.count = count;
	if (kind == SG_KIND_RELEASE)
		snprintf(st.manifest_root, sizeof(st.manifest_root), "%s",
		    root_hex);
	else
		snprintf(st.pattern, sizeof(st.pattern), "fw-*");
	snprintf(st.format, sizeof(st.format), "%s", format);
	snprintf(st.requester, sizeof(st.requester), "ci");
	snprintf(st.policy_name, sizeof(st.policy_name), "%s",
	    sg_policy_name(policy));
	st.policy_version = sg_policy_version(policy);
	snprintf(st.policy_sha256, sizeof(st.policy_sha256), "%s",
	    sg_policy_sha256_hex(policy));
	st.expires = EXPIRES;
	if (sg_statement_build(&st, &stmt, ret_len) != 0)
		abort();
	return stmt;
}

/* Lines fw-0 ... fw-(n-1) in format, and their manifest tree. */
struct seed_manifest {
	char lines[4][SG_ARTIFACT_LINE_MAX + 1];
	size_t lens[4];
	uint8_t paths[4][SG_MANIFEST_PATH_MAX][SG_HASH_LEN];
	size_t npaths[4];
	char root_hex[SG_SHA256_HEX_SIZE];
};

static void
seed_lines(struct seed_manifest *m, const char *format, const char *tag)
{
	struct sg_artifact_line a;
	struct sg_manifest_tree t;
	const char *lp[4];
	uint8_t root[SG_HASH_LEN];
	char text[64];
	size_t i;

	for (i = 0; i < 4; i++) {
		memset(&a, 0, sizeof(a));
		snprintf(text, sizeof(text), "%s %zu", tag, i);
		sg_sha256(text, strlen(text), a.digest);
		a.digest_alg = SG_DIGEST_SHA256;
		a.digest_len = 32;
		if (sg_format_parse(format, &a.format) != 0)
			abort();
		snprintf(a.name, sizeof(a.name), "fw-%zu", i);
		if (sg_artifact_line_build(&a, m->lines[i], sizeof(m->lines[i]),
		    &m->lens[i]) != 0)
			abort();
		lp[i] = m->lines[i];
	}
	if (sg_manifest_tree_init(&t, lp, m->lens, 4) != 0 ||
	    sg_manifest_tree_root(&t, root) != 0)
		abort();
	for (i = 0; i < 4; i++)
		if (sg_manifest_tree_path(&t, i, m->paths[i],
		    SG_MANIFEST_PATH_MAX, &m->npaths[i]) != 0)
			abort();
	sg_hex_encode(root, SG_HASH_LEN, m->root_hex);
	sg_manifest_tree_free(&t);
}

/* A SIGN_BATCH on key release: a release of the four lines (positions
 * 0..3) or a grant of 2 (positions 1..4: two past the count). */
static void
seed_batch(const char *dir, const char *name, enum sg_kind kind,
    const char *format, const char *id, const int who[2])
{
	struct seed_manifest m;
	struct sg_batch_item items[4];
	struct sg_sign_evidence ev;
	const char *envs[2];
	char *json[2] = { NULL, NULL }, *stmt;
	size_t lens[2], len, n = 0, mlen, i;
	uint8_t *msg = NULL;

	seed_lines(&m, format, name);
	stmt = kind_statement(kind, id, format, kind == SG_KIND_RELEASE ? 4 : 2,
	    m.root_hex, &len);
	for (i = 0; i < 2; i++) {
		if (who[i] == 0)
			continue;
		json[n] = envelope(stmt, len, who[i] > 0, (int)i);
		envs[n] = json[n];
		lens[n] = strlen(json[n]);
		n++;
	}
	for (i = 0; i < 4; i++) {
		memset(&items[i], 0, sizeof(items[i]));
		items[i].line = m.lines[i];
		items[i].line_len = m.lens[i];
		items[i].position = kind == SG_KIND_RELEASE ? i : i + 1;
		if (kind == SG_KIND_RELEASE) {
			items[i].path = (const uint8_t (*)[SG_HASH_LEN])
			    m.paths[i];
			items[i].npath = m.npaths[i];
		}
	}
	memset(&ev, 0, sizeof(ev));
	ev.statement = stmt;
	ev.statement_len = len;
	ev.envelopes = envs;
	ev.envelope_lens = lens;
	ev.n = n;
	if (sg_format_parse(format, &ev.format) != 0 ||
	    sg_wire_encode_sign_batch("release", &ev, items, 4, &msg,
	    &mlen) != 0)
		abort();
	write_seed(dir, name, msg, mlen);
	free(msg);
	free(stmt);
	free(json[0]);
	free(json[1]);
}

/* A log of 16 leaves with every complete subtree, for proofs. */
struct seed_tree {
	uint8_t h[5][16][SG_HASH_LEN];
	uint64_t count[5];
};

static int
tree_emit(void *ctx, unsigned level, uint64_t index,
    const uint8_t hash[SG_HASH_LEN])
{
	struct seed_tree *t = ctx;

	if (level >= 5 || index >= 16 || index != t->count[level])
		return SG_ERR_INTERNAL;
	memcpy(t->h[level][index], hash, SG_HASH_LEN);
	t->count[level]++;
	return 0;
}

static int
tree_get(void *ctx, unsigned level, uint64_t index,
    uint8_t out[SG_HASH_LEN])
{
	struct seed_tree *t = ctx;

	if (level >= 5 || index >= t->count[level])
		return SG_ERR_NOT_FOUND;
	memcpy(out, t->h[level][index], SG_HASH_LEN);
	return 0;
}

static void
seed_checkpoint(const char *dir, const char *name, struct seed_tree *t,
    uint64_t from, uint64_t size)
{
	struct sg_witness_request *req;
	struct sg_wire_checkpoint *w;

	if ((req = calloc(1, sizeof(*req))) == NULL ||
	    (w = calloc(1, sizeof(*w))) == NULL)
		abort();
	req->size = size;
	req->old_size = from;
	if (sg_merkle_root(tree_get, t, size, req->root) != 0 ||
	    (from > 0 && from < size && sg_merkle_consistency_proof(tree_get,
	    t, from, size, req->proof, SG_MERKLE_MAX_PROOF,
	    &req->nproof) != 0) || sg_wire_encode_checkpoint(w, req) != 0)
		abort();
	write_seed(dir, name, w, sizeof(*w));
	free(req);
	free(w);
}

static void
seed_name(const char *dir, const char *name, uint32_t type, const char *key)
{
	struct sg_wire_name w;

	if (sg_wire_encode_name(&w, type, key) != 0)
		abort();
	write_seed(dir, name, &w, sizeof(w));
}

static void
seed_reload(const char *dir, const char *name, const char *hex)
{
	struct sg_wire_text w;

	if (sg_wire_encode_reload(&w, hex) != 0)
		abort();
	write_seed(dir, name, &w, sizeof(w));
}

static void
write_seeds(const char *dir)
{
	static const int both[2] = { 1, 1 }, alice[2] = { 1, 0 };
	static const int veto[2] = { 1, -1 }, none[2] = { 0, 0 };
	struct sg_merkle_frontier fr;
	struct seed_tree *t;
	uint8_t leaf[SG_HASH_LEN];
	char text[32];
	size_t i;

	seed_sign(dir, "sign-nightly-raw", "nightly", "raw",
	    "00000000000000000000000000000001", none);
	seed_sign(dir, "sign-nightly-cms", "nightly", "cms",
	    "00000000000000000000000000000002", none);
	seed_sign(dir, "sign-release-raw", "release", "raw",
	    "00000000000000000000000000000003", both);
	seed_sign(dir, "sign-release-cms", "release", "cms",
	    "00000000000000000000000000000004", both);
	seed_sign(dir, "sign-release-quorum-short", "release", "raw",
	    "00000000000000000000000000000005", alice);
	seed_sign(dir, "sign-release-veto", "release", "raw",
	    "00000000000000000000000000000006", veto);
	seed_sign(dir, "sign-edkey-raw", "edkey", "raw",
	    "00000000000000000000000000000007", none);
	seed_sign(dir, "sign-nowhere-raw", "nowhere", "raw",
	    "00000000000000000000000000000008", none);
	/* Another statement under a request id signed above. */
	seed_sign(dir, "sign-nightly-again", "nightly", "raw",
	    "00000000000000000000000000000001", none);
	seed_batch(dir, "batch-release-raw", SG_KIND_RELEASE, "raw",
	    "00000000000000000000000000000011", both);
	seed_batch(dir, "batch-release-cms", SG_KIND_RELEASE, "cms",
	    "00000000000000000000000000000012", both);
	seed_batch(dir, "batch-grant-raw", SG_KIND_GRANT, "raw",
	    "00000000000000000000000000000013", both);
	seed_batch(dir, "batch-grant-quorum-short", SG_KIND_GRANT, "raw",
	    "00000000000000000000000000000014", alice);
	/* The grant's slots again, for other digests. */
	seed_batch(dir, "batch-grant-again", SG_KIND_GRANT, "raw",
	    "00000000000000000000000000000013", both);

	if ((t = calloc(1, sizeof(*t))) == NULL)
		abort();
	sg_merkle_frontier_init(&fr);
	for (i = 0; i < 16; i++) {
		snprintf(text, sizeof(text), "leaf %zu", i);
		sg_merkle_leaf_hash((const uint8_t *)text, strlen(text), leaf);
		if (sg_merkle_frontier_append(&fr, leaf, tree_emit, t) != 0)
			abort();
	}
	seed_checkpoint(dir, "checkpoint-first-3", t, 0, 3);
	seed_checkpoint(dir, "checkpoint-3-to-7", t, 3, 7);
	seed_checkpoint(dir, "checkpoint-7-to-16", t, 7, 16);
	seed_checkpoint(dir, "checkpoint-1-to-16", t, 1, 16);
	free(t);

	seed_name(dir, "probe-nightly", SG_WIRE_PROBE, "nightly");
	seed_name(dir, "probe-edkey", SG_WIRE_PROBE, "edkey");
	seed_name(dir, "probe-log", SG_WIRE_PROBE, SG_SIGNER_LOG_KEY);
	seed_name(dir, "keyinfo-release", SG_WIRE_KEYINFO, "release");
	seed_name(dir, "keyinfo-log", SG_WIRE_KEYINFO, SG_SIGNER_LOG_KEY);
	seed_name(dir, "keyinfo-nosuch", SG_WIRE_KEYINFO, "nosuch");
	seed_reload(dir, "reload-same", sg_policy_sha256_hex(policy));
	seed_reload(dir, "reload-other",
	    "0000000000000000000000000000000000000000000000000000000000000000");
}

/* ------------------------------------------------------------------ */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *seeds = getenv("SG_FUZZ_SIGNER_SEEDS");

	(void)argc;
	(void)argv;
	verbose = getenv("SG_FUZZ_SIGNER_VERBOSE") != NULL;
	setup();
	if (seeds != NULL) {
		if (mkdir(seeds, 0755) != 0 && errno != EEXIST)
			abort();
		write_seeds(seeds);
		exit(0);
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *msg, *out = NULL;
	size_t out_len = 0;

	/* As a channel thread holds a record: its own buffer. */
	if ((msg = malloc(size + 1)) == NULL)
		return 0;
	memcpy(msg, data, size);
	if (sg_signer_child_serve_msg(child, msg, size, &out,
	    &out_len) == 0) {
		check_answer(msg, size, out, out_len);
		free(out);
	}
	free(msg);
	return 0;
}
