/*
 * The signer process and its client.
 *
 * Process: sg_signer_spawn() creates `channels` SOCK_SEQPACKET socket pairs
 * and forks.  The child first becomes the signer's user (sg_privdrop.h:
 * when started as root, before it touches the module or a PIN), makes
 * itself non-dumpable (its memory holds PINs and sessions), opens the
 * signer core (module, tokens, keys) and its own copy of the policy,
 * reports READY on the first channel, and then serves each channel on its
 * own thread.  It exits when the front closes the channels (or dies: the
 * kernel closes them).
 *
 * Or the signer runs on its own (`signgated --signer`, its own systemd
 * unit): sg_signer_listen() does the same set-up, with the keys taken from
 * its own policy, then listens on a SOCK_SEQPACKET socket and serves each
 * accepted connection as a channel, with the same code.  The socket file
 * is open to all (mode 0666): access is decided by the peer's uid as the
 * kernel reports it (SO_PEERCRED), which must be the front's user; any
 * other peer is closed unanswered.  The front, sg_signer_connect(), checks
 * likewise that the socket is served by the signer's user.
 *
 * Messages: one request, one reply, on one channel at a time.  Their
 * formats and their table live in src/signer_wire.c (sg_signer_wire.h):
 * SIGN, CHECKPOINT, PROBE, KEYINFO and RELOAD go to the signer, REPLY
 * comes back (the first REPLY on a channel is the signer's READY).  The
 * table fixes each type's exact length (for SIGN, the fixed part plus the
 * declared statement and envelope lengths); sg_wire_decode_request() is
 * the one gate every record passes before a handler runs, and anything it
 * refuses is answered with SG_ERR_INVALID and its reason, the connection
 * staying usable.  The front builds requests with the same module's
 * encoders and checks every reply with sg_wire_decode_reply(); a reply
 * out of protocol marks the signer gone.
 *
 * A request goes: decode, then (SIGN) the key, the evidence, the
 * statement's binding to this request, the policy's rules, and at most
 * one signature (below).  sg_signer_child_serve_msg() does all of it for
 * one record and returns the reply; the channel threads only move records.
 * The keys are reached through a core of operations (sg_signer_child.h):
 * the PKCS#11 signer in the daemon, keys in memory in the fuzz harness.
 *
 * What the signer checks before signing a request (the front is not
 * trusted): the statement parses, names a policy the signer itself has
 * loaded, this key (by name and SPKI digest), this digest and this format;
 * every envelope verifies under the policy's officer keys and is by an
 * officer who may still approve under the newest policy loaded (so a
 * revoked officer never counts, whatever the front sends); the quorum
 * holds; the statement has not expired; formats and the HSM inventory
 * allow it under both policies.  The probe signs a fixed digest and returns
 * no signature.
 *
 * Reload: the front sends the SHA-256 it expects; the signer re-reads the
 * file and every key's certificate chain (each checked against the HSM
 * key) and installs both together or neither.  CMS signatures embed the
 * chain of the newest policy.  A cancelled request is the front's notion
 * (the signer has no store): the front never asks for one.
 *
 * One signature per request and format (src/sigrec.c): once the evidence
 * holds, the signer looks the statement's request id up in its own record.
 * Recorded for this statement: the recorded bytes are returned, without
 * an HSM call.  Recorded for another statement: refused.  Not recorded:
 * it signs, verifies, commits the record to disk, and only then replies.
 *
 * Keys: the signer refuses to start when a policy key reaches the log key
 * (sg_signer_open), or when the key list the front handed over does not
 * match the policy file it read itself; a reload may not add keys, move
 * one, or name the log key's object.
 *
 * Checkpoints: the front sends a tree (size, root) and a consistency proof
 * from the tree the signer signed last, never text.  The signer checks the
 * proof against its own record (sg_witness: a fork or a rollback is
 * refused), records the new tree durably, and only then formats the
 * checkpoint text from the origin it was started with and signs it.  Every
 * reply to a CHECKPOINT carries the record, so the front learns where its
 * next proof must start.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "sg_cms.h"
#include "sg_crypto.h"
#include "sg_dsse.h"
#include "sg_err.h"
#include "sg_evidence.h"
#include "sg_note.h"
#include "sg_policy.h"
#include "sg_privdrop.h"
#include "sg_signer_child.h"
#include "sg_signer_proc.h"
#include "sg_signer_wire.h"
#include "sg_sigrec.h"
#include "sg_util.h"
#include "sg_witness.h"

#define MAX_CHANNELS 64
/* Connections a listening signer serves at once: a restarted front's
 * channels may overlap briefly with its predecessor's. */
#define MAX_CONNECTIONS (2 * MAX_CHANNELS)
#define MAX_POLICIES 64
#define READY_TIMEOUT_MS 60000
#define REPLY_TIMEOUT_MS 120000
#define PROBE_TEXT "signgate readiness probe"

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

/* The PKCS#11 signer as the child's core. */
static void
hsm_sign(void *core, const struct sg_sign_msg *msg,
    struct sg_sign_reply *reply)
{
	sg_signer_sign(core, msg, reply);
}

static int
hsm_key_public(void *core, const char *name, EVP_PKEY **ret_pub,
    enum sg_key_alg *ret_alg, struct sg_token_info *ret_token)
{
	return sg_signer_key_public(core, name, ret_pub, ret_alg, ret_token);
}

static int
hsm_sign_checkpoint(void *core, const char *origin, uint64_t size,
    const uint8_t root[SG_HASH_LEN], uint8_t sig[SG_ED25519_SIG])
{
	return sg_signer_sign_checkpoint(core, origin, size, root, sig);
}

static int
hsm_spec_reserved(void *core, const struct sg_signer_key_spec *ks,
    char *errbuf, size_t errlen)
{
	return sg_signer_spec_reserved(core, ks, errbuf, errlen);
}

static const struct sg_signer_ops hsm_ops = {
	hsm_sign, hsm_key_public, hsm_sign_checkpoint, hsm_spec_reserved
};

static int
key_public(struct sg_signer_child *c, const char *name, EVP_PKEY **ret_pub,
    enum sg_key_alg *ret_alg, struct sg_token_info *ret_token)
{
	return c->ops->key_public(c->core, name, ret_pub, ret_alg, ret_token);
}

static const struct child_key *
child_key(const struct sg_signer_child *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->nkeys; i++)
		if (strcmp(c->keys[i].name, name) == 0)
			return &c->keys[i];
	return NULL;
}

/*
 * Reads key ck's certificate chain as policy p names it (relative to the
 * policy file's directory) and checks that it certifies the HSM key.
 * *ret is NULL when p gives the key no certificate.
 */
static int
child_read_chain(struct sg_signer_child *c, const struct sg_policy *p,
    const struct child_key *ck, char **ret, size_t *ret_len, char *err,
    size_t errlen)
{
	const struct sg_policy_key *pk = sg_policy_key(p, ck->name);
	EVP_PKEY *pub = NULL, *certkey = NULL;
	char *dir = NULL, *path = NULL, *pem = NULL;
	size_t len = 0;
	int r;

	*ret = NULL;
	*ret_len = 0;
	if (pk == NULL || pk->certificate[0] == '\0')
		return 0;
	if ((dir = sg_dirname(c->policy_path)) == NULL ||
	    (path = sg_path_join(dir, pk->certificate)) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	if ((r = sg_read_file(path, SG_PEM_FILE_MAX, &pem, &len)) != 0) {
		snprintf(err, errlen, "key '%s': certificate %s: %s",
		    ck->name, path, sg_strerror(r));
		goto out;
	}
	if (key_public(c, ck->name, &pub, NULL, NULL) != 0 ||
	    sg_pubkey_from_pem(pem, len, &certkey) != 0 ||
	    EVP_PKEY_eq(certkey, pub) != 1) {
		snprintf(err, errlen, "key '%s': certificate %s: its public "
		    "key is not the HSM key's", ck->name, path);
		r = SG_ERR_VERIFY;
		goto out;
	}
	*ret = pem;
	*ret_len = len;
	pem = NULL;
	r = 0;
out:
	EVP_PKEY_free(certkey);
	free(pem);
	free(path);
	free(dir);
	return r;
}

static void
spec_of(const struct sg_policy_key *pk, struct sg_signer_key_spec *ks)
{
	memset(ks, 0, sizeof(*ks));
	snprintf(ks->name, sizeof(ks->name), "%s", pk->name);
	snprintf(ks->token, sizeof(ks->token), "%s", pk->token);
	snprintf(ks->label, sizeof(ks->label), "%s", pk->object);
	memcpy(ks->id, pk->id, pk->id_len);
	ks->id_len = pk->id_len;
	ks->scheme = pk->scheme;
}

static int
same_spec(const struct sg_signer_key_spec *a,
    const struct sg_signer_key_spec *b)
{
	return strcmp(a->token, b->token) == 0 &&
	    strcmp(a->label, b->label) == 0 && a->id_len == b->id_len &&
	    memcmp(a->id, b->id, a->id_len) == 0 && a->scheme == b->scheme;
}

/*
 * A reloaded policy keeps the keys opened at start where they were: no
 * key may be added or moved (that needs a restart, which checks keys in
 * full), and none may name the log key's object.
 */
static int
child_check_reload(struct sg_signer_child *c, const struct sg_policy *p,
    char *err, size_t errlen)
{
	const struct sg_policy_key *pk;
	struct sg_signer_key_spec ks;
	const struct child_key *ck;
	size_t i;
	int r;

	for (i = 0; i < sg_policy_nkeys(p); i++) {
		pk = sg_policy_key_at(p, i);
		spec_of(pk, &ks);
		if ((r = c->ops->spec_reserved(c->core, &ks, err,
		    errlen)) != 0)
			return r;
		if ((ck = child_key(c, pk->name)) == NULL) {
			snprintf(err, errlen, "key '%s' was not opened at "
			    "start: adding a key needs a restart", pk->name);
			return SG_ERR_INVALID;
		}
		if (!same_spec(&ck->spec, &ks)) {
			snprintf(err, errlen, "key '%s': its HSM location "
			    "changed: that needs a restart", pk->name);
			return SG_ERR_INVALID;
		}
	}
	return 0;
}

/* Reads and parses the policy file; with expect, only a file with that
 * SHA-256 (SG_ERR_CONFLICT otherwise). */
static int
child_read_policy(struct sg_signer_child *c, const char *expect,
    struct sg_policy **ret, char *err, size_t errlen)
{
	struct sg_policy *p = NULL;
	char *text = NULL;
	size_t len;
	int r;

	*ret = NULL;
	if ((r = sg_read_file(c->policy_path, SG_POLICY_MAX_SIZE, &text,
	    &len)) != 0) {
		snprintf(err, errlen, "%s: %s", c->policy_path, sg_strerror(r));
		return r;
	}
	r = sg_policy_parse(c->policy_path, text, len, &p, err, errlen);
	free(text);
	if (r != 0)
		return r;
	if (expect != NULL && strcmp(sg_policy_sha256_hex(p), expect) != 0) {
		snprintf(err, errlen, "the policy file now has sha256:%s",
		    sg_policy_sha256_hex(p));
		sg_policy_free(p);
		return SG_ERR_CONFLICT;
	}
	*ret = p;
	return 0;
}

/*
 * Makes p the newest policy and chains[] the keys' chains (the old chains
 * come back in chains[]); *p is taken unless it is already the newest.
 */
static int
child_install_policy(struct sg_signer_child *c, const char *expect,
    struct sg_policy **p, char **chains, size_t *lens, char *err,
    size_t errlen)
{
	char *old;
	size_t i;

	pthread_mutex_lock(&c->lock);
	/* A front (re)connecting to a listening signer asks for the file it
	 * read; if that is the newest one here, nothing changes. */
	if (expect != NULL && c->npolicies > 0 &&
	    strcmp(sg_policy_sha256_hex(c->policies[0]), expect) == 0) {
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	/* Policies are never freed while signing threads may use them. */
	if (c->npolicies == MAX_POLICIES) {
		pthread_mutex_unlock(&c->lock);
		snprintf(err, errlen, "%d policies loaded since start: restart "
		    "the daemon", MAX_POLICIES);
		return SG_ERR_TOO_LARGE;
	}
	for (i = c->npolicies; i > 0; i--)
		c->policies[i] = c->policies[i - 1];
	c->policies[0] = *p;
	c->npolicies++;
	*p = NULL;
	/* Signing threads copy a chain under the lock. */
	for (i = 0; i < c->nkeys; i++) {
		old = c->keys[i].chain_pem;
		c->keys[i].chain_pem = chains[i];
		c->keys[i].chain_len = lens[i];
		chains[i] = old;
	}
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* Loads (or reloads) the policy file; the newest is first.  With
 * expect, only a file with that SHA-256 is installed.  Once the keys are
 * open (a reload), every key's certificate chain is read again from the
 * new policy and checked: the new policy and the new chains are installed
 * together, or nothing is. */
static int
child_load_policy(struct sg_signer_child *c, const char *expect, char *err,
    size_t errlen)
{
	struct sg_policy *p = NULL;
	char **chains = NULL;
	size_t i, *lens = NULL;
	int r;

	if ((r = child_read_policy(c, expect, &p, err, errlen)) != 0)
		return r;
	if (expect != NULL && (r = child_check_reload(c, p, err,
	    errlen)) != 0)
		goto out;
	if (c->nkeys > 0 && ((chains = calloc(c->nkeys,
	    sizeof(*chains))) == NULL || (lens = calloc(c->nkeys,
	    sizeof(*lens))) == NULL)) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < c->nkeys; i++)
		if ((r = child_read_chain(c, p, &c->keys[i], &chains[i],
		    &lens[i], err, errlen)) != 0)
			goto out;
	r = child_install_policy(c, expect, &p, chains, lens, err, errlen);
out:
	for (i = 0; chains != NULL && i < c->nkeys; i++)
		free(chains[i]);
	free(chains);
	free(lens);
	sg_policy_free(p);
	return r;
}

/* Sends a reply that carries no CMS: READY. */
static int
reply_send(int fd, struct sg_wire_reply *rep)
{
	uint8_t *buf;
	size_t n;
	ssize_t w;
	int r;

	if ((r = sg_wire_encode_reply(rep, NULL, 0, &buf, &n)) != 0)
		return r;
	w = send(fd, buf, n, MSG_NOSIGNAL);
	free(buf);
	return w == (ssize_t)n ? 0 : SG_ERR_IO;
}

struct cms_ctx {
	struct sg_signer_child *c;
	const char *key;
};

/* The CMS signs the digest of its signed attributes, which the signer
 * built itself around the approved artifact digest. */
static int
cms_sign_cb(void *arg, enum sg_digest_alg alg, const uint8_t *digest,
    size_t len, uint8_t *sig, size_t cap, size_t *ret_len)
{
	struct cms_ctx *cc = arg;
	struct sg_sign_msg m;
	struct sg_sign_reply *rep;
	int r;

	if (len > sizeof(m.data))
		return SG_ERR_INVALID;
	if ((rep = calloc(1, sizeof(*rep))) == NULL)
		return SG_ERR_NOMEM;
	memset(&m, 0, sizeof(m));
	snprintf(m.key, sizeof(m.key), "%s", cc->key);
	m.digest_alg = alg;
	memcpy(m.data, digest, len);
	m.data_len = len;
	cc->c->ops->sign(cc->c->core, &m, rep);
	r = rep->status;
	if (r == 0 && rep->sig_len <= cap) {
		memcpy(sig, rep->sig, rep->sig_len);
		*ret_len = rep->sig_len;
	} else if (r == 0)
		r = SG_ERR_BUFFER;
	explicit_bzero(rep, sizeof(*rep));
	free(rep);
	return r;
}

/*
 * A SIGN request on its way through the checks: what each step found,
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

/*
 * The evidence, under the policy the statement names (one this process
 * read itself), and every approval also under the newest policy: an
 * officer revoked by a reload no longer counts, whatever the front sends.
 */
static int
check_evidence(struct sg_signer_child *c, struct sign_job *j, char *err,
    size_t errlen)
{
	const struct sg_wire_sign_req *req = j->req;
	size_t i;
	int r = SG_ERR_VERIFY;

	if (sg_statement_parse(req->statement, req->statement_len,
	    &j->st) != 0) {
		snprintf(err, errlen, "statement: not a valid signgate "
		    "approval statement");
		return SG_ERR_VERIFY;
	}
	pthread_mutex_lock(&c->lock);
	j->now = c->policies[0];
	for (i = 0; j->p == NULL && i < c->npolicies; i++)
		if (strcmp(sg_policy_sha256_hex(c->policies[i]),
		    j->st.policy_sha256) == 0)
			j->p = c->policies[i];
	if (j->p != NULL)
		r = sg_evidence_check_now(j->p, j->now, req->statement,
		    req->statement_len, req->envelopes, req->envelope_lens,
		    req->nenvelopes, (int64_t)time(NULL), &j->st, err, errlen);
	else
		snprintf(err, errlen, "policy: the statement names policy "
		    "%.63s@%llu sha256:%.64s, which this signer has not "
		    "loaded", j->st.policy_name,
		    (unsigned long long)j->st.policy_version,
		    j->st.policy_sha256);
	j->pk = j->p != NULL ? sg_policy_key(j->p, req->msg.key) : NULL;
	j->nk = sg_policy_key(j->now, req->msg.key);
	if (r == 0 && j->ck->chain_pem != NULL &&
	    (j->chain = malloc(j->ck->chain_len)) != NULL) {
		memcpy(j->chain, j->ck->chain_pem, j->ck->chain_len);
		j->chain_len = j->ck->chain_len;
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* The request is the one the statement describes: key (by name and SPKI
 * digest), digest and format; and the key is still in force. */
static int
check_binding(const struct sign_job *j, char *err, size_t errlen)
{
	const struct sg_sign_msg *m = &j->req->msg;
	char hex[SG_DIGEST_HEX_SIZE];
	enum sg_format format;

	if (j->nk == NULL) {
		snprintf(err, errlen, "key '%s' is not in the policy in force",
		    m->key);
		return SG_ERR_VERIFY;
	}
	sg_hex_encode(m->data, m->data_len, hex);
	if (j->pk == NULL || strcmp(j->st.key, m->key) != 0) {
		snprintf(err, errlen, "the statement is for key '%s', not "
		    "'%s'", j->st.key, m->key);
		return SG_ERR_VERIFY;
	}
	if (strcmp(j->st.spki_sha256, j->ck->spki_hex) != 0) {
		snprintf(err, errlen, "the statement names key sha256:%s; "
		    "'%s' is sha256:%s", j->st.spki_sha256, m->key,
		    j->ck->spki_hex);
		return SG_ERR_VERIFY;
	}
	if (sg_digest_from_name(j->st.digest_alg) != m->digest_alg ||
	    strcmp(j->st.digest_hex, hex) != 0) {
		snprintf(err, errlen, "the digest is not the one the statement "
		    "names");
		return SG_ERR_VERIFY;
	}
	if (sg_format_parse(j->st.format, &format) != 0 ||
	    format != j->req->format) {
		snprintf(err, errlen, "the format is not the one the statement "
		    "names");
		return SG_ERR_VERIFY;
	}
	return 0;
}

/* Policy p's rules for key pk: the format, and the HSM inventory and
 * countries for the key's token. */
static int
where_allowed(struct sg_signer_child *c, const struct sg_policy *p,
    const struct sg_policy_key *pk, const char *key, enum sg_format format,
    char *err, size_t errlen)
{
	struct sg_token_info ti;
	char why[SG_SIGNER_ERR_MAX - 64];

	if (!(pk->formats & format)) {
		snprintf(err, errlen, "key '%s' does not allow format %s "
		    "under policy %s@%llu", key, sg_format_str(format),
		    sg_policy_name(p),
		    (unsigned long long)sg_policy_version(p));
		return SG_ERR_FORBIDDEN;
	}
	if (key_public(c, key, NULL, NULL, &ti) != 0) {
		snprintf(err, errlen, "no token information for key '%s'",
		    key);
		return SG_ERR_FORBIDDEN;
	}
	/* The inventory rule the front applies too (sg_policy.h). */
	if (sg_policy_token_allowed(p, pk, ti.label, ti.serial,
	    ti.manufacturer, ti.model, NULL, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "%s under policy %s@%llu", why,
		    sg_policy_name(p),
		    (unsigned long long)sg_policy_version(p));
		return SG_ERR_FORBIDDEN;
	}
	return 0;
}

/* The rules on formats and where the HSM stands hold here too, whatever
 * the front decided: under the request's policy and the one in force. */
static int
check_rules(struct sg_signer_child *c, const struct sign_job *j, char *err,
    size_t errlen)
{
	const char *key = j->req->msg.key;
	enum sg_format format = j->req->format;
	int r;

	if ((r = where_allowed(c, j->p, j->pk, key, format, err,
	    errlen)) != 0)
		return r;
	return where_allowed(c, j->now, j->nk, key, format, err, errlen);
}

/* The approved digest as CMS: the reply's signature is the one inside. */
static int
sign_cms(struct sg_signer_child *c, const struct sign_job *j,
    struct sg_wire_reply *rep, uint8_t **ret_cms, size_t *ret_cms_len)
{
	const struct sg_sign_msg *m = &j->req->msg;
	struct cms_ctx cc = { c, m->key };
	uint8_t *cms = NULL, *sv = NULL;
	size_t cms_len = 0, svlen = 0;
	EVP_PKEY *pub = NULL;
	enum sg_key_alg alg;
	int r;

	if (j->chain == NULL) {
		snprintf(rep->err, sizeof(rep->err), "key '%s' has no "
		    "certificate for CMS", m->key);
		return SG_ERR_INVALID;
	}
	if ((r = key_public(c, m->key, &pub, &alg, NULL)) != 0 ||
	    (r = sg_cms_build(j->chain, j->chain_len, pub, j->pk->scheme,
	    m->digest_alg, m->data, m->data_len, time(NULL), cms_sign_cb,
	    &cc, &cms, &cms_len)) != 0) {
		snprintf(rep->err, sizeof(rep->err), "CMS: %s",
		    sg_strerror(r));
		free(cms);
		return r;
	}
	if (cms_len > SG_SIGNER_MAX_CMS)
		r = SG_ERR_TOO_LARGE;
	else if ((r = sg_cms_signature_value(cms, cms_len, &sv,
	    &svlen)) == 0 && svlen > sizeof(rep->sig))
		r = SG_ERR_BUFFER;
	if (r != 0) {
		free(sv);
		free(cms);
		return r;
	}
	memcpy(rep->sig, sv, svlen);
	rep->sig_len = (uint32_t)svlen;
	free(sv);
	*ret_cms = cms;
	*ret_cms_len = cms_len;
	return 0;
}

/* Signs the approved digest (as CMS when asked): the reply's signature,
 * and *ret_cms for CMS. */
static int
sign_fresh(struct sg_signer_child *c, const struct sign_job *j,
    struct sg_wire_reply *rep, uint8_t **ret_cms, size_t *ret_cms_len)
{
	struct sg_sign_msg m;
	struct sg_sign_reply *sr;
	int r;

	if (j->req->format == SG_FORMAT_CMS)
		return sign_cms(c, j, rep, ret_cms, ret_cms_len);
	if ((sr = calloc(1, sizeof(*sr))) == NULL)
		return SG_ERR_NOMEM;
	m = j->req->msg;
	if (j->pk->scheme == SG_SIG_EDDSA)
		m.digest_alg = SG_DIGEST_NONE;
	c->ops->sign(c->core, &m, sr);
	if ((r = sr->status) != 0)
		snprintf(rep->err, sizeof(rep->err), "HSM: %s",
		    sg_strerror(r));
	else {
		memcpy(rep->sig, sr->sig, sr->sig_len);
		rep->sig_len = (uint32_t)sr->sig_len;
	}
	explicit_bzero(sr, sizeof(*sr));
	free(sr);
	return r;
}

/*
 * The recorded answer to a request signed before: checked against what
 * is asked now (the statement already matched, and it binds the key, the
 * digest and the format) and against the key, so that a damaged record
 * never goes out.
 */
static int
replay(struct sg_signer_child *c, const struct sign_job *j,
    struct sg_sigrec_entry *re, struct sg_wire_reply *rep,
    uint8_t **ret_cms, size_t *ret_cms_len)
{
	const struct sg_sign_msg *m = &j->req->msg;
	EVP_PKEY *pub = NULL;
	uint8_t *sv = NULL;
	size_t svlen = 0;
	char when[32];
	int ok;

	ok = strcmp(re->key, m->key) == 0 &&
	    strcmp(re->digest_alg, j->st.digest_alg) == 0 &&
	    strcmp(re->digest_hex, j->st.digest_hex) == 0 &&
	    re->sig_len <= sizeof(rep->sig) &&
	    key_public(c, m->key, &pub, NULL, NULL) == 0;
	if (ok && j->req->format == SG_FORMAT_CMS)
		ok = re->cms != NULL && re->cms_len <= SG_SIGNER_MAX_CMS &&
		    sg_cms_signature_value(re->cms, re->cms_len, &sv,
		    &svlen) == 0 && svlen == re->sig_len &&
		    memcmp(sv, re->sig, svlen) == 0;
	else if (ok)
		ok = re->cms == NULL && sg_verify(pub, j->pk->scheme,
		    j->pk->scheme == SG_SIG_EDDSA ? SG_DIGEST_NONE :
		    m->digest_alg, m->data, m->data_len, re->sig,
		    re->sig_len) == 0;
	free(sv);
	if (!ok) {
		sg_log_error("signer: request %s: the recorded %s signature "
		    "does not match the request or the key; refused",
		    re->request, sg_format_str(re->format));
		snprintf(rep->err, sizeof(rep->err), "the signature recorded "
		    "for request %s does not check", re->request);
		return SG_ERR_INTERNAL;
	}
	rep->err[0] = '\0';
	memcpy(rep->sig, re->sig, re->sig_len);
	rep->sig_len = (uint32_t)re->sig_len;
	*ret_cms = re->cms;
	*ret_cms_len = re->cms_len;
	re->cms = NULL;
	re->cms_len = 0;
	sg_time_rfc3339((time_t)re->signed_at, when, sizeof(when));
	sg_log_info("signer: request %s: the %s signature made at %s "
	    "returned again (no new signature)", re->request,
	    sg_format_str(re->format),
	    when);
	return 0;
}

/* Signs a request the record does not hold, and releases the signature
 * only once it is recorded on disk. */
static int
sign_and_record(struct sg_signer_child *c, const struct sign_job *j,
    struct sg_wire_reply *rep, uint8_t **ret_cms, size_t *ret_cms_len)
{
	const struct sg_wire_sign_req *req = j->req;
	struct sg_sigrec_entry re;
	int r;

	if ((r = sign_fresh(c, j, rep, ret_cms, ret_cms_len)) != 0)
		return r;
	memset(&re, 0, sizeof(re));
	snprintf(re.request, sizeof(re.request), "%s", j->st.request);
	re.format = req->format;
	snprintf(re.statement_sha256, sizeof(re.statement_sha256), "%s",
	    j->ssha_hex);
	snprintf(re.key, sizeof(re.key), "%s", req->msg.key);
	snprintf(re.digest_alg, sizeof(re.digest_alg), "%s",
	    j->st.digest_alg);
	snprintf(re.digest_hex, sizeof(re.digest_hex), "%s",
	    j->st.digest_hex);
	memcpy(re.sig, rep->sig, rep->sig_len);
	re.sig_len = rep->sig_len;
	re.cms = *ret_cms;
	re.cms_len = *ret_cms_len;
	re.signed_at = (int64_t)time(NULL);
	r = sg_sigrec_put(c->rec, &re, req->statement, req->statement_len);
	re.cms = NULL;                 /* still the caller's */
	if (r != 0) {
		/* Never released unless recorded. */
		explicit_bzero(rep->sig, sizeof(rep->sig));
		rep->sig_len = 0;
		free(*ret_cms);
		*ret_cms = NULL;
		*ret_cms_len = 0;
		snprintf(rep->err, sizeof(rep->err), "the signature could not "
		    "be recorded, so it was not released");
	}
	/* Recorded meanwhile by another process on the same record: the
	 * recorded one is the answer. */
	if (r == SG_ERR_CONFLICT && sg_sigrec_get(c->rec, j->st.request,
	    req->format, j->ssha_hex, &re) == 0)
		r = replay(c, j, &re, rep, ret_cms, ret_cms_len);
	else if (r != 0)
		r = SG_ERR_UNAVAILABLE;
	sg_sigrec_entry_clear(&re);
	return r;
}

/*
 * At most one signature per request and format: the record decides
 * between returning what was signed before, refusing a second statement
 * for the same request id, and signing.
 */
static int
sign_once(struct sg_signer_child *c, struct sign_job *j,
    struct sg_wire_reply *rep, uint8_t **ret_cms, size_t *ret_cms_len)
{
	const struct sg_wire_sign_req *req = j->req;
	struct sg_sigrec_entry re;
	uint8_t ssha[32];
	int r;

	memset(&re, 0, sizeof(re));
	if ((r = sg_sigrec_claim(c->rec, j->st.request)) != 0) {
		snprintf(rep->err, sizeof(rep->err), "request %s is being "
		    "signed on another channel", j->st.request);
		return r == SG_ERR_TIMEOUT ? SG_ERR_UNAVAILABLE : r;
	}
	sg_sha256(req->statement, req->statement_len, ssha);
	sg_hex_encode(ssha, sizeof(ssha), j->ssha_hex);
	r = sg_sigrec_get(c->rec, j->st.request, req->format, j->ssha_hex,
	    &re);
	if (r == 0)
		r = replay(c, j, &re, rep, ret_cms, ret_cms_len);
	else if (r == SG_ERR_CONFLICT) {
		sg_log_warn("signer: request %s was signed for statement "
		    "sha256:%s; another statement for it refused",
		    j->st.request, re.statement_sha256);
		snprintf(rep->err, sizeof(rep->err), "request %s was signed "
		    "for another statement (sha256:%.16s...): a request is "
		    "signed once", j->st.request, re.statement_sha256);
		r = SG_ERR_FORBIDDEN;
	} else if (r != SG_ERR_NOT_FOUND) {
		snprintf(rep->err, sizeof(rep->err), "the signature record "
		    "cannot be read");
		r = SG_ERR_UNAVAILABLE;
	} else
		r = sign_and_record(c, j, rep, ret_cms, ret_cms_len);
	sg_sigrec_entry_clear(&re);
	sg_sigrec_release(c->rec, j->st.request);
	return r;
}

/*
 * SIGN, decoded: the key, the evidence, the statement's binding to this
 * request, the policy's rules, then at most one signature.  Any refusal
 * leaves no signature and no CMS in the reply.
 */
static void
handle_sign(struct sg_signer_child *c, const struct sg_wire_sign_req *req,
    struct sg_wire_reply *rep, uint8_t **ret_cms, size_t *ret_cms_len)
{
	struct sign_job j;
	int r;

	memset(&j, 0, sizeof(j));
	j.req = req;
	if ((j.ck = child_key(c, req->msg.key)) == NULL) {
		snprintf(rep->err, sizeof(rep->err), "no key '%s'",
		    req->msg.key);
		r = SG_ERR_NOT_FOUND;
	} else if ((r = check_evidence(c, &j, rep->err,
	    sizeof(rep->err))) == 0 &&
	    (r = check_binding(&j, rep->err, sizeof(rep->err))) == 0 &&
	    (r = check_rules(c, &j, rep->err, sizeof(rep->err))) == 0)
		r = sign_once(c, &j, rep, ret_cms, ret_cms_len);
	if (r != 0) {
		explicit_bzero(rep->sig, sizeof(rep->sig));
		rep->sig_len = 0;
		free(*ret_cms);
		*ret_cms = NULL;
		*ret_cms_len = 0;
	}
	rep->status = r;
	free(j.chain);
}

static void
handle_checkpoint(struct sg_signer_child *c,
    const struct sg_witness_request *req, struct sg_wire_reply *rep)
{
	struct sg_witness_record rec;
	int r;

	/* Recorded before anything is signed; refused if not an extension. */
	r = sg_witness_advance(c->witness, req, &rec, rep->err,
	    sizeof(rep->err));
	rep->log_recorded = rec.present != 0;
	rep->log_size = rec.size;
	memcpy(rep->log_root, rec.root, SG_HASH_LEN);
	if (r == SG_ERR_VERIFY)
		sg_log_error("signer: checkpoint refused: %s", rep->err);
	if (r == 0 && (r = c->ops->sign_checkpoint(c->core, c->log_origin,
	    req->size, req->root, rep->sig)) != 0)
		snprintf(rep->err, sizeof(rep->err), "HSM: %s",
		    sg_strerror(r));
	else if (r == 0)
		rep->sig_len = SG_ED25519_SIG;
	rep->status = r;
}

/* A test signature over a fixed digest; no signature goes back. */
static void
handle_probe(struct sg_signer_child *c, const char *name,
    struct sg_wire_reply *rep)
{
	struct sg_sign_msg m;
	struct sg_sign_reply *sr;
	EVP_PKEY *pub;
	enum sg_key_alg alg;

	if (name[0] == '@') {
		rep->status = SG_ERR_NOT_FOUND;
		return;
	}
	if ((sr = calloc(1, sizeof(*sr))) == NULL) {
		rep->status = SG_ERR_NOMEM;
		return;
	}
	memset(&m, 0, sizeof(m));
	snprintf(m.key, sizeof(m.key), "%s", name);
	m.digest_alg = SG_DIGEST_SHA256;
	sg_sha256(PROBE_TEXT, sizeof(PROBE_TEXT) - 1, m.data);
	m.data_len = 32;
	if (key_public(c, name, &pub, &alg, NULL) == 0 &&
	    alg == SG_ALG_ED25519)
		m.digest_alg = SG_DIGEST_NONE;
	c->ops->sign(c->core, &m, sr);
	rep->status = sr->status;
	explicit_bzero(sr, sizeof(*sr));
	free(sr);
}

/* A key's public facts: its algorithm, its token, its public key. */
static void
handle_keyinfo(struct sg_signer_child *c, const char *name,
    struct sg_wire_reply *rep)
{
	EVP_PKEY *pub = NULL;
	enum sg_key_alg alg;
	unsigned char *der = NULL;
	int len, r;

	r = key_public(c, name, &pub, &alg, &rep->token);
	if (r == 0 && ((len = i2d_PUBKEY(pub, &der)) <= 0 ||
	    (size_t)len > sizeof(rep->der)))
		r = SG_ERR_CRYPTO;
	else if (r == 0) {
		memcpy(rep->der, der, (size_t)len);
		rep->der_len = (uint32_t)len;
		rep->alg = (uint32_t)alg;
	}
	OPENSSL_free(der);
	if (r != 0)
		memset(&rep->token, 0, sizeof(rep->token));
	rep->status = r;
}

static void
dispatch(struct sg_signer_child *c, const struct sg_wire_request *req,
    struct sg_wire_reply *rep, uint8_t **ret_cms, size_t *ret_cms_len)
{
	switch (req->type) {
	case SG_WIRE_SIGN:
		handle_sign(c, &req->u.sign, rep, ret_cms, ret_cms_len);
		break;
	case SG_WIRE_CHECKPOINT:
		handle_checkpoint(c, &req->u.checkpoint, rep);
		break;
	case SG_WIRE_RELOAD:
		rep->status = child_load_policy(c, req->u.reload_sha256,
		    rep->err, sizeof(rep->err));
		break;
	case SG_WIRE_PROBE:
		handle_probe(c, req->u.name, rep);
		break;
	case SG_WIRE_KEYINFO:
		handle_keyinfo(c, req->u.name, rep);
		break;
	default:
		/* sg_wire_decode_request lets no other type through. */
		rep->status = SG_ERR_INTERNAL;
		break;
	}
}

int
sg_signer_child_serve_msg(struct sg_signer_child *c, const uint8_t *msg,
    size_t len, uint8_t **ret, size_t *ret_len)
{
	struct sg_wire_request *req;
	struct sg_wire_reply *rep;
	uint8_t *cms = NULL;
	size_t cms_len = 0;
	int r = SG_ERR_NOMEM;

	*ret = NULL;
	*ret_len = 0;
	rep = calloc(1, sizeof(*rep));
	req = calloc(1, sizeof(*req));
	if (rep == NULL || req == NULL)
		goto out;
	rep->status = sg_wire_decode_request(msg, len, req, rep->err,
	    sizeof(rep->err));
	if (rep->status == 0)
		dispatch(c, req, rep, &cms, &cms_len);
	r = sg_wire_encode_reply(rep, cms, cms_len, ret, ret_len);
out:
	if (rep != NULL)
		explicit_bzero(rep, sizeof(*rep));
	free(rep);
	free(req);
	free(cms);
	return r;
}

struct serve_arg {
	struct sg_signer_child *c;
	int fd;
};

/* One channel: one request, one reply, until the front goes.  A request
 * that cannot be answered for want of memory gets no reply (the front's
 * wait is bounded). */
static void *
serve_channel(void *arg)
{
	struct serve_arg *sa = arg;
	uint8_t *buf, *out;
	size_t out_len;
	ssize_t n;

	if ((buf = malloc(SG_WIRE_MAX_MSG + 1)) == NULL) {
		/* The front sees the channel end. */
		shutdown(sa->fd, SHUT_RDWR);
		return NULL;
	}
	for (;;) {
		n = recv(sa->fd, buf, SG_WIRE_MAX_MSG + 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		if (n == 0) {
			/* An empty message, or the front has gone. */
			struct pollfd hp = { sa->fd, POLLRDHUP, 0 };
			if (poll(&hp, 1, 0) != 0 &&
			    (hp.revents & (POLLHUP | POLLRDHUP)))
				break;
		}
		if (sg_signer_child_serve_msg(sa->c, buf, (size_t)n, &out,
		    &out_len) != 0)
			continue;
		send(sa->fd, out, out_len, MSG_NOSIGNAL);
		free(out);
	}
	explicit_bzero(buf, SG_WIRE_MAX_MSG + 1);
	free(buf);
	return NULL;
}

static int
child_open_keys(struct sg_signer_child *c,
    const struct sg_signer_key_spec *keys, size_t nkeys, char *err,
    size_t errlen)
{
	size_t i;

	if ((c->keys = calloc(nkeys ? nkeys : 1, sizeof(*c->keys))) == NULL)
		return SG_ERR_NOMEM;
	for (i = 0; i < nkeys; i++) {
		struct child_key *ck = &c->keys[c->nkeys++];
		const struct sg_policy_key *pk;
		EVP_PKEY *pub;
		uint8_t spki[32];

		snprintf(ck->name, sizeof(ck->name), "%s", keys[i].name);
		ck->spec = keys[i];
		if (key_public(c, ck->name, &pub, NULL, NULL) == 0 &&
		    sg_pubkey_spki_sha256(pub, spki) == 0)
			sg_hex_encode(spki, sizeof(spki), ck->spki_hex);
		pk = sg_policy_key(c->policies[0], ck->name);
		if (ck->name[0] != '@') {
			/* The front's key list must be the policy's. */
			struct sg_signer_key_spec ks;
			if (pk != NULL)
				spec_of(pk, &ks);
			if (pk == NULL || !same_spec(&ks, &keys[i])) {
				snprintf(err, errlen, "key '%s': not where the "
				    "policy file %s puts it", ck->name,
				    c->policy_path);
				return SG_ERR_INVALID;
			}
		}
		/* At start a bad chain only disables CMS for the key (the
		 * front marks it unusable); a reload refuses one. */
		if (child_read_chain(c, c->policies[0], ck, &ck->chain_pem,
		    &ck->chain_len, err, errlen) != 0)
			sg_log_warn("signer: %s", err);
	}
	err[0] = '\0';
	return 0;
}

/* The policy and the records, before the core is open: they belong to
 * the signer's user, and the policy decides which keys to open. */
static int
child_init(struct sg_signer_child *c, const char *policy_path,
    const char *log_origin, const char *state_dir, char *err,
    size_t errlen)
{
	int r;

	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	if ((c->policy_path = strdup(policy_path)) == NULL ||
	    (c->log_origin = strdup(log_origin)) == NULL)
		return SG_ERR_NOMEM;
	if ((r = child_load_policy(c, NULL, err, errlen)) != 0 ||
	    (r = sg_sigrec_open(state_dir, &c->rec, err, errlen)) != 0 ||
	    (r = sg_witness_open(state_dir, log_origin, &c->witness, err,
	    errlen)) != 0)
		return r;
	return 0;
}

/*
 * What every signer does before it serves, once it runs as the signer's
 * user: nobody may read its memory, it reads the policy itself, opens its
 * records in state_dir (so they belong to the signer's user), then opens
 * the module, the tokens and the keys (those its own policy names, plus the
 * log key, when keys is NULL).
 */
static int
child_setup(struct sg_signer_child *c, const char *module_path,
    const struct sg_signer_token_spec *tokens, size_t ntokens,
    const struct sg_signer_key_spec *keys, size_t nkeys,
    const char *policy_path, const char *log_origin, const char *state_dir,
    const char *log_token, const char *log_key, char *err, size_t errlen)
{
	struct sg_signer_key_spec *own = NULL;
	struct sg_signer *core = NULL;
	int r;

	/* Nobody may read this process's memory (PINs, sessions). */
	prctl(PR_SET_DUMPABLE, 0);
	if ((r = child_init(c, policy_path, log_origin, state_dir, err,
	    errlen)) != 0)
		return r;
	if (keys == NULL) {
		if ((r = sg_signer_key_specs(c->policies[0], log_token,
		    log_key, &own, &nkeys)) != 0)
			return r;
		keys = own;
	}
	r = sg_signer_open(module_path, tokens, ntokens, keys, nkeys, &core,
	    err, errlen);
	c->ops = &hsm_ops;
	c->core = core;
	if (r == 0)
		r = child_open_keys(c, keys, nkeys, err, errlen);
	free(own);
	return r;
}

int
sg_signer_child_new(const struct sg_signer_ops *ops, void *core,
    const struct sg_signer_key_spec *keys, size_t nkeys,
    const char *policy_path, const char *log_origin, const char *state_dir,
    struct sg_signer_child **ret, char *errbuf, size_t errlen)
{
	struct sg_signer_child *c;
	int r;

	*ret = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return SG_ERR_NOMEM;
	if ((r = child_init(c, policy_path, log_origin, state_dir, errbuf,
	    errlen)) == 0) {
		c->ops = ops;
		c->core = core;
		r = child_open_keys(c, keys, nkeys, errbuf, errlen);
	}
	if (r != 0) {
		sg_signer_child_free(c);
		return r;
	}
	*ret = c;
	return 0;
}

void
sg_signer_child_free(struct sg_signer_child *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->npolicies; i++)
		sg_policy_free(c->policies[i]);
	for (i = 0; i < c->nkeys; i++)
		free(c->keys[i].chain_pem);
	free(c->keys);
	sg_sigrec_close(c->rec);
	sg_witness_free(c->witness);
	free(c->policy_path);
	free(c->log_origin);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static void
child_main(int *fds, unsigned n, const char *module_path,
    const struct sg_signer_token_spec *tokens, size_t ntokens,
    const struct sg_signer_key_spec *keys, size_t nkeys,
    const char *policy_path, const char *log_origin, const char *state_dir)
{
	struct sg_signer_child c;
	struct sg_wire_reply rep;
	struct serve_arg *args;
	pthread_t *th;
	unsigned i;
	int r;

	memset(&rep, 0, sizeof(rep));
	/* The signer's own user first: before the policy, the module or a
	 * PIN is touched. */
	r = sg_privdrop_enter(SG_PRIV_SIGNER, rep.err, sizeof(rep.err));
	/* After the drop, which clears it. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	if (r == 0)
		r = child_setup(&c, module_path, tokens, ntokens, keys, nkeys,
		    policy_path, log_origin, state_dir, NULL, NULL, rep.err,
		    sizeof(rep.err));
	/* READY is the first reply on the first channel. */
	rep.status = r;
	reply_send(fds[0], &rep);
	if (r != 0)
		_exit(1);
	if ((th = calloc(n, sizeof(*th))) == NULL ||
	    (args = calloc(n, sizeof(*args))) == NULL)
		_exit(1);
	for (i = 0; i < n; i++) {
		args[i].c = &c;
		args[i].fd = fds[i];
		if (pthread_create(&th[i], NULL, serve_channel, &args[i]) != 0)
			_exit(1);
	}
	for (i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	sg_signer_free(c.core);
	sg_sigrec_close(c.rec);
	sg_witness_free(c.witness);
	_exit(0);
}

int
sg_signer_key_specs(const struct sg_policy *p, const char *log_token,
    const char *log_key, struct sg_signer_key_spec **ret, size_t *ret_n)
{
	struct sg_signer_key_spec *specs;
	size_t i, n = sg_policy_nkeys(p);

	if ((specs = calloc(n + 1, sizeof(*specs))) == NULL)
		return SG_ERR_NOMEM;
	for (i = 0; i < n; i++) {
		const struct sg_policy_key *pk = sg_policy_key_at(p, i);
		snprintf(specs[i].name, sizeof(specs[i].name), "%s", pk->name);
		snprintf(specs[i].token, sizeof(specs[i].token), "%s",
		    pk->token);
		snprintf(specs[i].label, sizeof(specs[i].label), "%s",
		    pk->object);
		memcpy(specs[i].id, pk->id, pk->id_len);
		specs[i].id_len = pk->id_len;
		specs[i].scheme = pk->scheme;
	}
	snprintf(specs[n].name, sizeof(specs[n].name), "%s",
	    SG_SIGNER_LOG_KEY);
	snprintf(specs[n].token, sizeof(specs[n].token), "%s", log_token);
	snprintf(specs[n].label, sizeof(specs[n].label), "%s", log_key);
	specs[n].scheme = SG_SIG_EDDSA;
	*ret = specs;
	*ret_n = n + 1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* The signer on its own: a listening socket instead of socket pairs. */

struct listener {
	struct sg_signer_child c;
	int fd;
	uid_t front_uid;
	pthread_mutex_t lock;
	unsigned active;
};

struct conn_arg {
	struct serve_arg sa;
	struct listener *l;
};

static void
set_bufs(int fd)
{
	int bufsz = (int)SG_WIRE_MAX_MSG * 2;

	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
}

static void *
serve_connection(void *arg)
{
	struct conn_arg *ca = arg;

	serve_channel(&ca->sa);
	close(ca->sa.fd);
	pthread_mutex_lock(&ca->l->lock);
	ca->l->active--;
	pthread_mutex_unlock(&ca->l->lock);
	free(ca);
	return NULL;
}

/* One accepted connection: the front's user, or nobody. */
static void
accept_one(struct listener *l, int fd)
{
	struct sg_wire_reply rep;
	struct conn_arg *ca;
	struct ucred cr;
	socklen_t len = sizeof(cr);
	pthread_attr_t attr;
	pthread_t th;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 ||
	    len != sizeof(cr)) {
		sg_log_warn("signer: a connection without peer credentials: "
		    "closed");
		close(fd);
		return;
	}
	if (cr.uid != l->front_uid) {
		sg_log_warn("signer: refused a connection from uid %u (pid "
		    "%ld): only the front's user (uid %u) may connect",
		    (unsigned)cr.uid, (long)cr.pid, (unsigned)l->front_uid);
		close(fd);
		return;
	}
	pthread_mutex_lock(&l->lock);
	if (l->active >= MAX_CONNECTIONS) {
		pthread_mutex_unlock(&l->lock);
		sg_log_warn("signer: %d connections already: one more closed",
		    MAX_CONNECTIONS);
		close(fd);
		return;
	}
	l->active++;
	pthread_mutex_unlock(&l->lock);
	set_bufs(fd);
	memset(&rep, 0, sizeof(rep));
	if ((ca = calloc(1, sizeof(*ca))) == NULL ||
	    reply_send(fd, &rep) != 0)
		goto fail;
	ca->sa.c = &l->c;
	ca->sa.fd = fd;
	ca->l = l;
	if (pthread_attr_init(&attr) != 0)
		goto fail;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &attr, serve_connection, ca) != 0) {
		pthread_attr_destroy(&attr);
		goto fail;
	}
	pthread_attr_destroy(&attr);
	return;
fail:
	free(ca);
	close(fd);
	pthread_mutex_lock(&l->lock);
	l->active--;
	pthread_mutex_unlock(&l->lock);
}

static void *
accept_main(void *arg)
{
	struct listener *l = arg;
	int fd;

	for (;;) {
		if ((fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
			accept_one(l, fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EBADF || errno == EINVAL || errno == ENOTSOCK)
			break;
		/* Out of descriptors or memory: let some go first. */
		sg_log_error("signer: accept: %s", strerror(errno));
		poll(NULL, 0, 100);
	}
	return NULL;
}

/* Binds the listening socket, replacing a stale socket file but never a
 * live signer's. */
static int
listen_socket(const char *path, int *ret_fd, char *errbuf, size_t errlen)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd, probe;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(errbuf, errlen, "signer_socket: %s exists and "
			    "is not a socket", path);
			return SG_ERR_INVALID;
		}
		if ((probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC,
		    0)) >= 0 && connect(probe, (struct sockaddr *)&sun,
		    sizeof(sun)) == 0) {
			close(probe);
			snprintf(errbuf, errlen, "signer_socket: another "
			    "signer is listening on %s", path);
			return SG_ERR_CONFLICT;
		}
		if (probe >= 0)
			close(probe);
		if (unlink(path) != 0 && errno != ENOENT) {
			snprintf(errbuf, errlen, "signer_socket: cannot remove "
			    "the stale %s: %s", path, strerror(errno));
			return SG_ERR_IO;
		}
	}
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
	    /* Anyone may connect; the peer's uid decides (accept_one). */
	    chmod(path, 0666) != 0 ||
	    listen(fd, MAX_CONNECTIONS) != 0) {
		snprintf(errbuf, errlen, "signer_socket: %s: %s", path,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return SG_ERR_IO;
	}
	*ret_fd = fd;
	return 0;
}

int
sg_signer_listen(const char *socket_path, const char *module_path,
    const struct sg_signer_token_spec *tokens, size_t ntokens,
    const char *policy_path, const char *log_origin, const char *state_dir,
    const char *log_token, const char *log_key, char *errbuf, size_t errlen)
{
	struct sockaddr_un sun;
	struct listener *l;
	pthread_t th;
	int r;

	if (strlen(socket_path) >= sizeof(sun.sun_path)) {
		snprintf(errbuf, errlen, "signer_socket: longer than %zu bytes",
		    sizeof(sun.sun_path) - 1);
		return SG_ERR_INVALID;
	}
	/* The signer's own user first, as in the forked signer. */
	if ((r = sg_privdrop_enter(SG_PRIV_SIGNER, errbuf, errlen)) != 0)
		return r;
	/* Lives as long as the process. */
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return SG_ERR_NOMEM;
	l->fd = -1;
	l->front_uid = sg_privdrop_peer_uid(SG_PRIV_FRONT);
	pthread_mutex_init(&l->lock, NULL);
	if ((r = child_setup(&l->c, module_path, tokens, ntokens, NULL, 0,
	    policy_path, log_origin, state_dir, log_token, log_key, errbuf,
	    errlen)) != 0 ||
	    (r = listen_socket(socket_path, &l->fd, errbuf, errlen)) != 0)
		return r;
	if (pthread_create(&th, NULL, accept_main, l) != 0) {
		snprintf(errbuf, errlen, "cannot start the signer's accept "
		    "thread");
		return SG_ERR_INTERNAL;
	}
	pthread_detach(th);
	sg_log_info("signer: listening on %s for uid %u", socket_path,
	    (unsigned)l->front_uid);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The client, in the front. */

struct key_fact {
	char name[SG_NAME_MAX];
	EVP_PKEY *pub;
	enum sg_key_alg alg;
	struct sg_token_info token;
};

struct sg_signer_client {
	pid_t pid;
	int fds[MAX_CHANNELS];
	int busy[MAX_CHANNELS];
	unsigned n;
	int dead;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct key_fact *facts;
	size_t nfacts;
	uint8_t *rbuf[MAX_CHANNELS];
};

static int
take_channel(struct sg_signer_client *c)
{
	unsigned i;
	int ch = -1;

	pthread_mutex_lock(&c->lock);
	while (!c->dead) {
		for (i = 0; i < c->n; i++)
			if (!c->busy[i]) {
				c->busy[i] = 1;
				ch = (int)i;
				break;
			}
		if (ch >= 0)
			break;
		pthread_cond_wait(&c->cond, &c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return ch;
}

static void
give_channel(struct sg_signer_client *c, int ch, int broken)
{
	pthread_mutex_lock(&c->lock);
	c->busy[ch] = 0;
	if (broken) {
		c->dead = 1;
		sg_log_error("signer: the signer process is gone; signing is "
		    "unavailable until restart");
	}
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* A channel whose answer is overdue is never used again. */
static void
retire_channel(struct sg_signer_client *c, int ch)
{
	unsigned i, live = 0;

	pthread_mutex_lock(&c->lock);
	shutdown(c->fds[ch], SHUT_RDWR);
	/* Stays busy for ever, so nobody takes it. */
	for (i = 0; i < c->n; i++)
		if (!c->busy[i])
			live++;
	if (live == 0 && c->n > 0)
		sg_log_warn("signer: every channel is busy or retired");
	sg_log_error("signer: no answer within %d ms; channel %d retired",
	    REPLY_TIMEOUT_MS, ch);
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* Sends one request and waits for its reply on a free channel.  The
 * reply's fixed part goes to rep, its CMS (if any) to *ret_extra. */
static int
exchange(struct sg_signer_client *c, const void *req, size_t len,
    struct sg_wire_reply *rep, uint8_t **ret_extra, size_t *ret_extra_len)
{
	const uint8_t *extra;
	ssize_t n;
	int ch, r = 0;

	if ((ch = take_channel(c)) < 0)
		return SG_ERR_UNAVAILABLE;
	if (send(c->fds[ch], req, len, MSG_NOSIGNAL) != (ssize_t)len) {
		give_channel(c, ch, 1);
		return SG_ERR_UNAVAILABLE;
	}
	/* The signer answers within the HSM's own deadlines; past this, the
	 * channel is retired (a late answer would be read as the next one's)
	 * and the caller gets an error. */
	{
		struct pollfd pfd = { c->fds[ch], POLLIN, 0 };
		int pr;
		do
			pr = poll(&pfd, 1, REPLY_TIMEOUT_MS);
		while (pr < 0 && errno == EINTR);
		if (pr == 0) {
			retire_channel(c, ch);
			return SG_ERR_TIMEOUT;
		}
	}
	do
		n = recv(c->fds[ch], c->rbuf[ch], SG_WIRE_MAX_REPLY, 0);
	while (n < 0 && errno == EINTR);
	/* A signer that answers out of protocol is not used again. */
	if (n < 0 || sg_wire_decode_reply(c->rbuf[ch], (size_t)n, rep,
	    &extra) != 0) {
		give_channel(c, ch, 1);
		return SG_ERR_UNAVAILABLE;
	}
	if (ret_extra != NULL) {
		*ret_extra = NULL;
		*ret_extra_len = rep->cms_len;
		if (rep->cms_len > 0 && (*ret_extra = malloc(rep->cms_len)) ==
		    NULL)
			r = SG_ERR_NOMEM;
		else if (rep->cms_len > 0)
			memcpy(*ret_extra, extra, rep->cms_len);
	}
	give_channel(c, ch, 0);
	return r;
}

static struct sg_signer_client *
client_alloc(void)
{
	struct sg_signer_client *c;
	unsigned i;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	c->pid = -1;
	for (i = 0; i < MAX_CHANNELS; i++)
		c->fds[i] = -1;
	return c;
}

/* The signer's first message on a channel: a REPLY with its status. */
static int
wait_ready(int fd, uint8_t *buf, char *errbuf, size_t errlen)
{
	struct sg_wire_reply rep;
	const uint8_t *extra;
	struct pollfd pfd;
	ssize_t n;
	int pr;

	pfd.fd = fd;
	pfd.events = POLLIN;
	do
		pr = poll(&pfd, 1, READY_TIMEOUT_MS);
	while (pr < 0 && errno == EINTR);
	if (pr != 1 || (n = recv(fd, buf, SG_WIRE_MAX_REPLY, 0)) <
	    (ssize_t)sizeof(rep)) {
		snprintf(errbuf, errlen, "the signer process did not start");
		return SG_ERR_UNAVAILABLE;
	}
	if (sg_wire_decode_reply(buf, (size_t)n, &rep, &extra) != 0) {
		snprintf(errbuf, errlen, "the signer process failed to start");
		return SG_ERR_UNAVAILABLE;
	}
	if (rep.status != 0) {
		snprintf(errbuf, errlen, "%s", rep.err[0] ? rep.err :
		    "the signer process failed to start");
		return rep.status;
	}
	return 0;
}

/* Key facts, once. */
static int
client_fetch_facts(struct sg_signer_client *c,
    const struct sg_signer_key_spec *keys, size_t nkeys, char *errbuf,
    size_t errlen)
{
	struct sg_wire_reply rep;
	size_t k;
	int r;

	if ((c->facts = calloc(nkeys ? nkeys : 1, sizeof(*c->facts))) ==
	    NULL)
		return SG_ERR_NOMEM;
	for (k = 0; k < nkeys; k++) {
		struct sg_wire_name w;
		const unsigned char *p;
		struct key_fact *f = &c->facts[c->nfacts];

		if ((r = sg_wire_encode_name(&w, SG_WIRE_KEYINFO,
		    keys[k].name)) != 0 ||
		    (r = exchange(c, &w, sizeof(w), &rep, NULL, NULL)) != 0 ||
		    (r = rep.status) != 0) {
			snprintf(errbuf, errlen, "key '%s': %s", keys[k].name,
			    sg_strerror(r));
			return r;
		}
		p = rep.der;
		if ((f->pub = d2i_PUBKEY(NULL, &p, rep.der_len)) == NULL)
			return SG_ERR_CRYPTO;
		snprintf(f->name, sizeof(f->name), "%s", keys[k].name);
		f->alg = (enum sg_key_alg)rep.alg;
		f->token = rep.token;
		c->nfacts++;
	}
	return 0;
}

int
sg_signer_spawn(const char *module_path,
    const struct sg_signer_token_spec *tokens, size_t ntokens,
    const struct sg_signer_key_spec *keys, size_t nkeys,
    const char *policy_path, const char *log_origin, const char *state_dir,
    unsigned channels, struct sg_signer_client **ret, char *errbuf,
    size_t errlen)
{
	struct sg_signer_client *c;
	int child_fds[MAX_CHANNELS], sv[2];
	unsigned i;
	int r = SG_ERR_INTERNAL;

	if (channels == 0 || channels > MAX_CHANNELS || log_origin == NULL ||
	    state_dir == NULL)
		return SG_ERR_INVALID;
	if ((c = client_alloc()) == NULL)
		return SG_ERR_NOMEM;
	for (i = 0; i < MAX_CHANNELS; i++)
		child_fds[i] = -1;
	for (i = 0; i < channels; i++) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
		    sv) != 0) {
			snprintf(errbuf, errlen, "socketpair: %s",
			    strerror(errno));
			goto fail;
		}
		set_bufs(sv[0]);
		set_bufs(sv[1]);
		c->fds[i] = sv[0];
		child_fds[i] = sv[1];
		if ((c->rbuf[i] = malloc(SG_WIRE_MAX_REPLY)) == NULL) {
			r = SG_ERR_NOMEM;
			goto fail;
		}
		c->n++;
	}
	fflush(NULL);
	if ((c->pid = fork()) < 0) {
		snprintf(errbuf, errlen, "fork: %s", strerror(errno));
		goto fail;
	}
	if (c->pid == 0) {
		for (i = 0; i < channels; i++)
			close(c->fds[i]);
		child_main(child_fds, channels, module_path, tokens, ntokens,
		    keys, nkeys, policy_path, log_origin, state_dir);
		_exit(1);
	}
	for (i = 0; i < channels; i++) {
		close(child_fds[i]);
		child_fds[i] = -1;
	}

	/* Wait for READY, bounded. */
	if ((r = wait_ready(c->fds[0], c->rbuf[0], errbuf, errlen)) != 0 ||
	    (r = client_fetch_facts(c, keys, nkeys, errbuf, errlen)) != 0)
		goto fail;
	*ret = c;
	return 0;
fail:
	for (i = 0; i < MAX_CHANNELS; i++)
		if (child_fds[i] >= 0)
			close(child_fds[i]);
	sg_signer_client_free(c);
	return r;
}

/* One channel to a listening signer, which must run as its own user. */
static int
connect_channel(struct sg_signer_client *c, const char *path,
    const struct sockaddr_un *sun, uid_t want, char *errbuf, size_t errlen)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	int fd, r;

	memset(&cr, 0, sizeof(cr));
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) < 0) {
		snprintf(errbuf, errlen, "socket: %s", strerror(errno));
		return SG_ERR_IO;
	}
	set_bufs(fd);
	if (connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) != 0) {
		snprintf(errbuf, errlen, "signer_socket %s: %s (is the signer "
		    "running?)", path, strerror(errno));
		close(fd);
		return SG_ERR_UNAVAILABLE;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 ||
	    len != sizeof(cr) || cr.uid != want) {
		snprintf(errbuf, errlen, "signer_socket %s: served by uid %u, "
		    "not by the signer's user (uid %u)", path,
		    (unsigned)cr.uid, (unsigned)want);
		close(fd);
		return SG_ERR_FORBIDDEN;
	}
	c->fds[c->n] = fd;
	if ((c->rbuf[c->n] = malloc(SG_WIRE_MAX_REPLY)) == NULL)
		return SG_ERR_NOMEM;    /* fd closed with the client */
	if ((r = wait_ready(fd, c->rbuf[c->n], errbuf, errlen)) != 0) {
		if (r == SG_ERR_UNAVAILABLE)
			snprintf(errbuf, errlen, "signer_socket %s: the signer "
			    "closed the connection (does it take uid %u for "
			    "the front's?)", path, (unsigned)getuid());
		return r;
	}
	c->n++;
	return 0;
}

int
sg_signer_connect(const char *socket_path, const char *policy_sha256_hex,
    const struct sg_signer_key_spec *keys, size_t nkeys, unsigned channels,
    struct sg_signer_client **ret, char *errbuf, size_t errlen)
{
	struct sg_signer_client *c;
	struct sockaddr_un sun;
	char e[SG_SIGNER_ERR_MAX];
	uid_t want = sg_privdrop_peer_uid(SG_PRIV_SIGNER);
	unsigned i;
	int r;

	e[0] = '\0';
	if (channels == 0 || channels > MAX_CHANNELS)
		return SG_ERR_INVALID;
	if (strlen(socket_path) >= sizeof(sun.sun_path)) {
		snprintf(errbuf, errlen, "signer_socket: longer than %zu bytes",
		    sizeof(sun.sun_path) - 1);
		return SG_ERR_INVALID;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, socket_path, strlen(socket_path));
	if ((c = client_alloc()) == NULL)
		return SG_ERR_NOMEM;
	for (i = 0; i < channels; i++)
		if ((r = connect_channel(c, socket_path, &sun, want, errbuf,
		    errlen)) != 0)
			goto fail;
	/* The signer may have read an older policy file than this front:
	 * it reads the file again and must find what the front read. */
	if (policy_sha256_hex != NULL &&
	    (r = sg_signer_client_reload(c, policy_sha256_hex, e,
	    sizeof(e))) != 0) {
		snprintf(errbuf, errlen, "the signer at %s does not hold the "
		    "front's policy: %s", socket_path, e[0] ? e :
		    sg_strerror(r));
		goto fail;
	}
	if ((r = client_fetch_facts(c, keys, nkeys, errbuf, errlen)) != 0)
		goto fail;
	*ret = c;
	return 0;
fail:
	sg_signer_client_free(c);
	return r;
}

void
sg_signer_client_free(struct sg_signer_client *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < MAX_CHANNELS; i++) {
		if (c->fds[i] >= 0)
			close(c->fds[i]);
		free(c->rbuf[i]);
	}
	if (c->pid > 0) {
		int status, tries;
		/* Closing the channels ends the child; give it a moment. */
		for (tries = 0; tries < 50; tries++) {
			if (waitpid(c->pid, &status, WNOHANG) == c->pid)
				break;
			usleep(20000);
		}
		if (tries == 50) {
			kill(c->pid, SIGKILL);
			waitpid(c->pid, &status, 0);
		}
	}
	for (i = 0; i < c->nfacts; i++)
		EVP_PKEY_free(c->facts[i].pub);
	free(c->facts);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
}

int
sg_signer_client_fd(struct sg_signer_client *c)
{
	return c->fds[0];
}

int
sg_signer_client_key_public(struct sg_signer_client *c, const char *name,
    EVP_PKEY **ret_pub, enum sg_key_alg *ret_alg,
    struct sg_token_info *ret_token)
{
	size_t i;

	for (i = 0; i < c->nfacts; i++) {
		if (strcmp(c->facts[i].name, name) != 0)
			continue;
		if (ret_pub != NULL)
			*ret_pub = c->facts[i].pub;
		if (ret_alg != NULL)
			*ret_alg = c->facts[i].alg;
		if (ret_token != NULL)
			*ret_token = c->facts[i].token;
		return 0;
	}
	return SG_ERR_NOT_FOUND;
}

int
sg_signer_client_sign(struct sg_signer_client *c,
    const struct sg_sign_msg *msg, const struct sg_sign_evidence *ev,
    struct sg_sign_reply *reply, uint8_t **ret_cms, size_t *ret_cms_len,
    char *errbuf, size_t errlen)
{
	struct sg_wire_reply rep;
	uint8_t *buf, *extra = NULL;
	size_t len, extra_len = 0;
	int r;

	memset(&rep, 0, sizeof(rep));
	memset(reply, 0, sizeof(*reply));
	if ((r = sg_wire_encode_sign(msg, ev, &buf, &len)) != 0) {
		snprintf(errbuf, errlen, "the request does not fit a signer "
		    "message: %s", sg_strerror(r));
		return reply->status = r;
	}
	r = exchange(c, buf, len, &rep, &extra, &extra_len);
	free(buf);
	if (r == 0)
		r = rep.status;
	if (r != 0) {
		snprintf(errbuf, errlen, "%s", r == SG_ERR_UNAVAILABLE &&
		    rep.err[0] == '\0' ? "the signer process is unavailable" :
		    rep.err);
		free(extra);
		explicit_bzero(&rep, sizeof(rep));
		return reply->status = r;
	}
	memcpy(reply->sig, rep.sig, rep.sig_len);
	reply->sig_len = rep.sig_len;
	explicit_bzero(&rep, sizeof(rep));
	if (ret_cms != NULL) {
		*ret_cms = extra;
		*ret_cms_len = extra_len;
	} else
		free(extra);
	return 0;
}

int
sg_signer_client_checkpoint(struct sg_signer_client *c,
    const struct sg_witness_request *req, struct sg_witness_reply *ret)
{
	struct sg_wire_checkpoint *w;
	struct sg_wire_reply rep;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (req->nproof > SG_MERKLE_MAX_PROOF)
		return SG_ERR_INVALID;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return SG_ERR_NOMEM;
	if ((r = sg_wire_encode_checkpoint(w, req)) != 0) {
		free(w);
		return r;
	}
	r = exchange(c, w, sizeof(*w), &rep, NULL, NULL);
	free(w);
	if (r != 0) {
		snprintf(ret->err, sizeof(ret->err), "the signer process is "
		    "unavailable");
		return r;
	}
	ret->rec.present = rep.log_recorded != 0;
	ret->rec.size = rep.log_size;
	memcpy(ret->rec.root, rep.log_root, SG_HASH_LEN);
	snprintf(ret->err, sizeof(ret->err), "%s", rep.err);
	if (rep.status != 0)
		return rep.status;
	if (rep.sig_len != SG_ED25519_SIG)
		return SG_ERR_HSM;
	memcpy(ret->sig, rep.sig, SG_ED25519_SIG);
	return 0;
}

int
sg_signer_client_probe(struct sg_signer_client *c, const char *key)
{
	struct sg_wire_name w;
	struct sg_wire_reply rep;
	int r;

	if ((r = sg_wire_encode_name(&w, SG_WIRE_PROBE, key)) != 0 ||
	    (r = exchange(c, &w, sizeof(w), &rep, NULL, NULL)) != 0)
		return r;
	return rep.status;
}

int
sg_signer_client_reload(struct sg_signer_client *c,
    const char *expect_sha256_hex, char *errbuf, size_t errlen)
{
	struct sg_wire_text w;
	struct sg_wire_reply rep;
	int r;

	if ((r = sg_wire_encode_reload(&w, expect_sha256_hex)) != 0 ||
	    (r = exchange(c, &w, sizeof(w), &rep, NULL, NULL)) != 0)
		return r;
	if (rep.status != 0)
		snprintf(errbuf, errlen, "%s", rep.err);
	return rep.status;
}
