/*
 * signer_forge: shows that the signer process refuses forged and malformed
 * requests, as a compromised front could send them.
 *
 *   signer_forge CONFIG [DEVDIR]
 *
 * CONFIG is a daemon configuration (absolute paths); DEVDIR holds the
 * officers' private keys (officers/<name>.key) and the code-signing CA
 * (codesign/ca.pem), by default the directory of the configured policy.
 *
 * The signer is spawned with the key specs the daemon gives it (every
 * policy key plus the log key), and then plays the front's role with two
 * voices: the client API, for evidence that is well formed but does not
 * prove what it claims (quorum, duplicates, vetoes, wrong signers, other
 * statements, other keys, policies, digests, formats, expired or foreign
 * requesters), and the raw SOCK_SEQPACKET channel, for messages that are
 * not well formed at all.  Positive controls sit next to the refusals so
 * that a refusal cannot come from a broken test: the same builders produce
 * the signatures that verify.
 *
 * Two more signers are spawned on copies of the policy with one rule
 * changed (a key that allows raw only; an HSM standing where no key may be
 * used): those rules must hold in the signer too, not only in the front.
 * The last case sends a zero-length record, which SOCK_SEQPACKET allows;
 * the channel must survive it.
 *
 * Run as root, the signers drop to the configured users.signer, as the
 * daemon's do (sg_privdrop.h); this tool itself stays root.
 *
 * Every refusal is checked for its status, a word of its reason, and that
 * no signature (nor CMS) came back.  Each case prints "ok - ..." or
 * "not ok - ..."; the last line is "N passed, M failed".  Every wait on the
 * channel is bounded (WAIT_MS).
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "sg_cms.h"
#include "sg_config.h"
#include "sg_crypto.h"
#include "sg_dsse.h"
#include "sg_err.h"
#include "sg_note.h"
#include "sg_policy.h"
#include "sg_privdrop.h"
#include "sg_signer.h"
#include "sg_signer_proc.h"
#include "sg_util.h"

#define WAIT_MS 20000
#define EMPTY_WAIT_MS 3000
/* The largest message the signer reads (its MAX_MSG). */
#define WIRE_MAX (sizeof(struct sg_wire_sign) + SG_SIGNER_MAX_EVIDENCE)
#define REPLY_MAX (sizeof(struct sg_wire_reply) + SG_SIGNER_MAX_CMS)
#define MAX_ENV 70

enum { ALICE, BOB, CAROL, DAVE, NOFFICERS };
static const char *const officer_names[NOFFICERS] = {
	"alice", "bob", "carol", "dave"
};

struct forge {
	struct sg_config *cfg;
	struct sg_policy *policy;
	struct sg_signer_client *sc;
	char *devdir;
	char *ca_pem;
	size_t ca_len;
	EVP_PKEY *officer[NOFFICERS];
	uint8_t *rbuf;                 /* raw replies */
};

/* A set of envelopes for one request. */
struct envs {
	char *json[MAX_ENV];
	size_t len[MAX_ENV];
	size_t n;
};

/* What one signing request through the client gave. */
struct outcome {
	int r;
	char err[SG_SIGNER_ERR_MAX];
	struct sg_sign_reply rep;
	uint8_t *cms;
	size_t cms_len;
};

static int npass, nfail;

static void result(int ok, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
result(int ok, const char *fmt, ...)
{
	va_list ap;

	if (ok)
		npass++;
	else
		nfail++;
	printf("%s - ", ok ? "ok" : "not ok");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static const char *
errname(int r)
{
	switch (r) {
	case 0: return "OK";
	case SG_ERR_INVALID: return "INVALID";
	case SG_ERR_NOT_FOUND: return "NOT_FOUND";
	case SG_ERR_FORBIDDEN: return "FORBIDDEN";
	case SG_ERR_CONFLICT: return "CONFLICT";
	case SG_ERR_TOO_LARGE: return "TOO_LARGE";
	case SG_ERR_VERIFY: return "VERIFY";
	case SG_ERR_UNAVAILABLE: return "UNAVAILABLE";
	default: return sg_strerror(r);
	}
}

/* ------------------------------------------------------------------ */
/* Setup. */

static int
load_officer(struct forge *f, size_t i)
{
	char path[1024];
	char *pem = NULL;
	size_t len = 0;
	BIO *bio;
	int r;

	snprintf(path, sizeof(path), "%s/officers/%s.key", f->devdir,
	    officer_names[i]);
	if ((r = sg_read_secret_file_max(path, 16384, &pem, &len)) != 0) {
		fprintf(stderr, "%s: %s\n", path, sg_strerror(r));
		return r;
	}
	if ((bio = BIO_new_mem_buf(pem, (int)len)) != NULL)
		f->officer[i] = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	sg_freezero(pem, len);
	if (f->officer[i] == NULL) {
		fprintf(stderr, "%s: not a private key\n", path);
		return SG_ERR_CRYPTO;
	}
	return 0;
}

/*
 * Spawns a signer for policy_path with the key specs the daemon would
 * give it: every key of `p` plus the log key.
 */
static int
spawn_signer(const struct sg_config *cfg, const struct sg_policy *p,
    const char *policy_path, struct sg_signer_client **ret)
{
	struct sg_signer_key_spec *specs;
	char err[512];
	size_t nkeys, i;
	int r;

	nkeys = sg_policy_nkeys(p);
	if ((specs = calloc(nkeys + 1, sizeof(*specs))) == NULL)
		return SG_ERR_NOMEM;
	for (i = 0; i < nkeys; i++) {
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
	snprintf(specs[i].name, sizeof(specs[i].name), "%s",
	    SG_SIGNER_LOG_KEY);
	snprintf(specs[i].token, sizeof(specs[i].token), "%s",
	    cfg->log_token);
	snprintf(specs[i].label, sizeof(specs[i].label), "%s",
	    cfg->log_key);
	specs[i].scheme = SG_SIG_EDDSA;
	err[0] = '\0';
	r = sg_signer_spawn(cfg->pkcs11_module, cfg->tokens, cfg->ntokens,
	    specs, nkeys + 1, policy_path, cfg->threads + 4, ret, err,
	    sizeof(err));
	free(specs);
	if (r != 0)
		fprintf(stderr, "signer: %s (%s)\n", err, sg_strerror(r));
	return r;
}

static int
parse_policy_file(const char *path, struct sg_policy **ret)
{
	char err[512], *text = NULL;
	size_t len;
	int r;

	if ((r = sg_read_file(path, SG_POLICY_MAX_SIZE, &text, &len)) != 0) {
		fprintf(stderr, "%s: %s\n", path, sg_strerror(r));
		return r;
	}
	r = sg_policy_parse(path, text, len, ret, err, sizeof(err));
	free(text);
	if (r != 0)
		fprintf(stderr, "%s\n", err);
	return r;
}

static int
setup(struct forge *f, const char *config, const char *devdir)
{
	char err[512], *path = NULL;
	size_t i;
	int r;

	err[0] = '\0';
	if ((r = sg_config_load(config, &f->cfg, err, sizeof(err))) != 0) {
		fprintf(stderr, "%s\n", err);
		return r;
	}
	if ((r = sg_privdrop_init(f->cfg->front_user, f->cfg->signer_user,
	    err, sizeof(err))) != 0) {
		fprintf(stderr, "%s\n", err);
		return r;
	}
	if ((r = parse_policy_file(f->cfg->policy_path, &f->policy)) != 0)
		return r;
	f->devdir = devdir != NULL ? strdup(devdir) :
	    sg_dirname(f->cfg->policy_path);
	if (f->devdir == NULL ||
	    (path = sg_path_join(f->devdir, "codesign/ca.pem")) == NULL)
		return SG_ERR_NOMEM;
	r = sg_read_file(path, 1 << 20, &f->ca_pem, &f->ca_len);
	free(path);
	if (r != 0) {
		fprintf(stderr, "codesign/ca.pem: %s\n", sg_strerror(r));
		return r;
	}
	for (i = 0; i < NOFFICERS; i++)
		if ((r = load_officer(f, i)) != 0)
			return r;
	if ((f->rbuf = malloc(REPLY_MAX + 1)) == NULL)
		return SG_ERR_NOMEM;
	return spawn_signer(f->cfg, f->policy, f->cfg->policy_path, &f->sc);
}

static void
teardown(struct forge *f)
{
	size_t i;

	sg_signer_client_free(f->sc);
	for (i = 0; i < NOFFICERS; i++)
		EVP_PKEY_free(f->officer[i]);
	sg_policy_free(f->policy);
	sg_config_free(f->cfg);
	free(f->devdir);
	free(f->ca_pem);
	free(f->rbuf);
}

/* ------------------------------------------------------------------ */
/* Evidence builders. */

static void
random_digest(uint8_t d[32])
{
	if (RAND_bytes(d, 32) != 1)
		abort();
}

/* A statement for key on digest, valid in every other respect. */
static void
stmt_init(struct forge *f, struct sg_statement *st, const char *key,
    const uint8_t digest[32], const char *format)
{
	EVP_PKEY *pub = NULL;
	uint8_t rnd[SG_REQUEST_ID_LEN / 2], spki[32];

	memset(st, 0, sizeof(*st));
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		abort();
	sg_hex_encode(rnd, sizeof(rnd), st->request);
	snprintf(st->key, sizeof(st->key), "%s", key);
	if (sg_signer_client_key_public(f->sc, key, &pub, NULL, NULL) == 0 &&
	    sg_pubkey_spki_sha256(pub, spki) == 0)
		sg_hex_encode(spki, sizeof(spki), st->spki_sha256);
	snprintf(st->digest_alg, sizeof(st->digest_alg), "sha256");
	sg_hex_encode(digest, 32, st->digest_hex);
	snprintf(st->format, sizeof(st->format), "%s", format);
	snprintf(st->requester, sizeof(st->requester), "ci");
	snprintf(st->policy_name, sizeof(st->policy_name), "%s",
	    sg_policy_name(f->policy));
	st->policy_version = sg_policy_version(f->policy);
	snprintf(st->policy_sha256, sizeof(st->policy_sha256), "%s",
	    sg_policy_sha256_hex(f->policy));
	st->expires = (long long)time(NULL) + 600;
}

static char *
stmt_text(const struct sg_statement *st, size_t *ret_len)
{
	char *text = NULL;

	if (sg_statement_build(st, &text, ret_len) != 0) {
		fprintf(stderr, "sg_statement_build refused the statement\n");
		abort();
	}
	return text;
}

/*
 * An envelope whose signature, by officer `signer`, covers the body of
 * `signed_stmt`, but which carries the body of `carried_stmt` (normally
 * the same) under `keyid`.  With flip_sig, one byte of the signature is
 * changed after signing.
 */
static void
env_add_ex(struct forge *f, struct envs *e, const char *signed_stmt,
    size_t signed_len, const char *carried_stmt, size_t carried_len,
    int approve, int signer, const char *keyid, int flip_sig)
{
	uint8_t *body = NULL, *cbody = NULL, *pae = NULL, sig[256];
	size_t blen = 0, cblen = 0, pae_len = 0, slen = sizeof(sig);
	EVP_MD_CTX *md;
	char *json = NULL;

	if (e->n == MAX_ENV || (md = EVP_MD_CTX_new()) == NULL)
		abort();
	if (sg_body_build(signed_stmt, signed_len, approve, &body,
	    &blen) != 0 || sg_body_build(carried_stmt, carried_len, approve,
	    &cbody, &cblen) != 0 ||
	    sg_dsse_pae(SG_DSSE_TYPE, body, blen, &pae, &pae_len) != 0 ||
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL,
	    f->officer[signer]) != 1 ||
	    EVP_DigestSign(md, sig, &slen, pae, pae_len) != 1) {
		fprintf(stderr, "cannot build an envelope\n");
		abort();
	}
	if (flip_sig)
		sig[slen / 2] ^= 0x01;
	if (sg_envelope_build(SG_DSSE_TYPE, cbody, cblen, keyid, sig, slen,
	    &json) != 0)
		abort();
	e->json[e->n] = json;
	e->len[e->n] = strlen(json);
	e->n++;
	EVP_MD_CTX_free(md);
	free(body);
	free(cbody);
	free(pae);
}

/* An honest envelope: officer `who` decides on `stmt`. */
static void
env_add(struct forge *f, struct envs *e, const char *stmt, size_t len,
    int approve, int who)
{
	env_add_ex(f, e, stmt, len, stmt, len, approve, who,
	    officer_names[who], 0);
}

static void
env_add_raw(struct envs *e, const char *json)
{
	if (e->n == MAX_ENV || (e->json[e->n] = strdup(json)) == NULL)
		abort();
	e->len[e->n] = strlen(json);
	e->n++;
}

static void
envs_clear(struct envs *e)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		free(e->json[i]);
	memset(e, 0, sizeof(*e));
}

/* ------------------------------------------------------------------ */
/* Through the client API. */

static void
sign_via(struct forge *f, const char *key, enum sg_digest_alg alg,
    const uint8_t *digest, size_t dlen, const char *stmt, size_t stmt_len,
    const struct envs *e, const char *format, struct outcome *o)
{
	struct sg_sign_msg m;
	struct sg_sign_evidence ev;

	memset(o, 0, sizeof(*o));
	memset(&m, 0, sizeof(m));
	snprintf(m.key, sizeof(m.key), "%s", key);
	m.digest_alg = alg;
	memcpy(m.data, digest, dlen);
	m.data_len = dlen;
	memset(&ev, 0, sizeof(ev));
	ev.statement = stmt;
	ev.statement_len = stmt_len;
	ev.envelopes = (const char *const *)e->json;
	ev.envelope_lens = e->len;
	ev.n = e->n;
	ev.format = format;
	o->r = sg_signer_client_sign(f->sc, &m, &ev, &o->rep, &o->cms,
	    &o->cms_len, o->err, sizeof(o->err));
}

static void
outcome_clear(struct outcome *o)
{
	free(o->cms);
	o->cms = NULL;
}

/* The refusal is the expected one and nothing that could be used came
 * back. */
static void
expect_refused(const char *name, struct outcome *o, int want,
    const char *word)
{
	int ok = o->r == want && o->rep.status == want &&
	    o->rep.sig_len == 0 && o->cms == NULL &&
	    (word == NULL || strstr(o->err, word) != NULL);

	if (ok)
		result(1, "%s: refused (%s: %s)", name, errname(o->r), o->err);
	else
		result(0, "%s: got %s (%s), sig_len %zu, cms %s; want %s "
		    "with '%s'", name, errname(o->r), o->err, o->rep.sig_len,
		    o->cms != NULL ? "returned" : "none", errname(want),
		    word != NULL ? word : "");
	outcome_clear(o);
}

static int
verify_with(struct forge *f, const char *key, enum sg_digest_alg alg,
    const uint8_t *data, size_t len, const uint8_t *sig, size_t sig_len)
{
	const struct sg_policy_key *pk = sg_policy_key(f->policy, key);
	EVP_PKEY *pub = NULL;

	if (pk == NULL || sg_signer_client_key_public(f->sc, key, &pub, NULL,
	    NULL) != 0)
		return SG_ERR_NOT_FOUND;
	return sg_verify(pub, pk->scheme, alg, data, len, sig, sig_len);
}

/* Signs a fresh digest with key under honest evidence (the approvals
 * given as officer indices, -1 terminated); 1 if it verifies. */
static int
honest_sign(struct forge *f, const char *key, const int *who, char *why,
    size_t whylen)
{
	struct sg_statement st;
	struct envs e;
	struct outcome o;
	uint8_t d[32];
	char *stmt;
	size_t len;
	int ok;

	memset(&e, 0, sizeof(e));
	random_digest(d);
	stmt_init(f, &st, key, d, "raw");
	stmt = stmt_text(&st, &len);
	for (; who != NULL && *who >= 0; who++)
		env_add(f, &e, stmt, len, 1, *who);
	sign_via(f, key, SG_DIGEST_SHA256, d, 32, stmt, len, &e, "raw", &o);
	ok = o.r == 0 && o.rep.sig_len > 0 && o.cms == NULL &&
	    verify_with(f, key, SG_DIGEST_SHA256, d, 32, o.rep.sig,
	    o.rep.sig_len) == 0;
	snprintf(why, whylen, "%s (%s), sig_len %zu", errname(o.r), o.err,
	    o.rep.sig_len);
	outcome_clear(&o);
	envs_clear(&e);
	free(stmt);
	return ok;
}

static void
positive_controls(struct forge *f)
{
	static const int release_quorum[] = { ALICE, BOB, DAVE, -1 };
	static const int firmware_quorum[] = { ALICE, CAROL, -1 };
	struct sg_statement st;
	struct envs e;
	struct outcome o;
	uint8_t d[32], *sv = NULL;
	size_t len, svlen = 0;
	char why[512], *stmt;
	int ok;

	ok = honest_sign(f, "nightly", NULL, why, sizeof(why));
	result(ok, "control: nightly with the statement alone is signed and "
	    "verifies (%s)", why);
	ok = honest_sign(f, "release", release_quorum, why, sizeof(why));
	result(ok, "control: release with alice+bob+dave is signed and "
	    "verifies (%s)", why);
	ok = honest_sign(f, "firmware", firmware_quorum, why, sizeof(why));
	result(ok, "control: firmware (RSA) with alice+carol is signed and "
	    "verifies (%s)", why);

	/* CMS: built by the signer around the approved digest. */
	memset(&e, 0, sizeof(e));
	random_digest(d);
	stmt_init(f, &st, "release", d, "cms");
	stmt = stmt_text(&st, &len);
	env_add(f, &e, stmt, len, 1, ALICE);
	env_add(f, &e, stmt, len, 1, BOB);
	env_add(f, &e, stmt, len, 1, DAVE);
	sign_via(f, "release", SG_DIGEST_SHA256, d, 32, stmt, len, &e, "cms",
	    &o);
	ok = o.r == 0 && o.cms != NULL && o.cms_len > 0 &&
	    sg_cms_verify_digest(o.cms, o.cms_len, SG_DIGEST_SHA256, d, 32,
	    f->ca_pem, f->ca_len) == 0;
	result(ok, "control: release as CMS comes back and verifies against "
	    "the code-signing CA (%s (%s), %zu bytes)", errname(o.r), o.err,
	    o.cms_len);
	ok = o.cms != NULL && sg_cms_signature_value(o.cms, o.cms_len, &sv,
	    &svlen) == 0 && svlen == o.rep.sig_len &&
	    memcmp(sv, o.rep.sig, svlen) == 0;
	result(ok, "control: the CMS reply's signature is the one inside the "
	    "SignedData");
	free(sv);
	outcome_clear(&o);
	envs_clear(&e);
	free(stmt);
}

static void
forged_evidence(struct forge *f)
{
	struct sg_statement st, st2;
	struct envs e;
	struct outcome o;
	uint8_t d[32], d2[32];
	char *stmt, *stmt2, *bad;
	size_t len, len2;

#define BEGIN(key, fmt) do {						\
	memset(&e, 0, sizeof(e));					\
	random_digest(d);						\
	stmt_init(f, &st, key, d, fmt);					\
} while (0)
#define RENDER() (stmt = stmt_text(&st, &len))
#define END() do { envs_clear(&e); free(stmt); } while (0)

	/* Quorum not met: two security officers, no release manager. */
	BEGIN("release", "raw");
	RENDER();
	env_add(f, &e, stmt, len, 1, ALICE);
	env_add(f, &e, stmt, len, 1, BOB);
	sign_via(f, "release", SG_DIGEST_SHA256, d, 32, stmt, len, &e, "raw",
	    &o);
	expect_refused("release with alice+bob only (quorum not met)", &o,
	    SG_ERR_VERIFY, "quorum");
	/* Three officers, but carol fills no release-managers seat. */
	env_add(f, &e, stmt, len, 1, CAROL);
	sign_via(f, "release", SG_DIGEST_SHA256, d, 32, stmt, len, &e, "raw",
	    &o);
	expect_refused("release with alice+bob+carol (no release manager)",
	    &o, SG_ERR_VERIFY, "release-managers");
	END();

	/* No envelope at all for a key that needs approval. */
	BEGIN("release", "raw");
	RENDER();
	sign_via(f, "release", SG_DIGEST_SHA256, d, 32, stmt, len, &e, "raw",
	    &o);
	expect_refused("release with the statement alone", &o, SG_ERR_VERIFY,
	    "quorum");
	END();

	/* One officer twice. */
	BEGIN("release", "raw");
	RENDER();
	env_add(f, &e, stmt, len, 1, ALICE);
	env_add(f, &e, stmt, len, 1, ALICE);
	env_add(f, &e, stmt, len, 1, DAVE);
	sign_via(f, "release", SG_DIGEST_SHA256, d, 32, stmt, len, &e, "raw",
	    &o);
	expect_refused("release with alice+alice+dave (duplicate)", &o,
	    SG_ERR_VERIFY, "twice");
	END();

	/* A veto outweighs a quorum that would otherwise hold. */
	BEGIN("firmware", "raw");
	RENDER();
	env_add(f, &e, stmt, len, 1, ALICE);
	env_add(f, &e, stmt, len, 1, CAROL);
	env_add(f, &e, stmt, len, 0, BOB);
	sign_via(f, "firmware", SG_DIGEST_SHA256, d, 32, stmt, len, &e, "raw",
	    &o);
	expect_refused("firmware with alice+carol approving and bob "
	    "rejecting (veto)", &o, SG_ERR_VERIFY, "veto");
	END();

	/*
	 * Not tested, as the signer cannot tell: a front that drops a
	 * recorded reject and sends only the approvals.  The log, which
	 * holds every decision, is where that shows.
	 */

	/* Bob's key under keyid alice. */
	BEGIN("release", "raw");
	RENDER();
	env_add_ex(f, &e, stmt, len, stmt, len, 1, BOB, "alice", 0);
	env_add(f, &e, stmt, len, 1, BOB);
	env_add(f, &e, stmt, len, 1, DAVE);
	sign_via(f, "release", SG_DIGEST_SHA256, d, 32, stmt, len, &e, "raw",
	    &o);
	expect_refused("an envelope signed by bob under keyid alice", &o,
	    SG_ERR_VERIFY, "does not verify");
	END();

	/* A signature with one byte changed. */
	BEGIN("release", "raw");
	RENDER();
	env_add(f, &e, stmt, len, 1, ALICE);
	env_add_ex(f, &e, stmt, len, stmt, len, 1, BOB, "bob", 1);
	env_add(f, &e, stmt, len, 1, DAVE);
	sign_via(f, "release", SG_DIGEST_SHA256, d, 32, stmt, len, &e, "raw",
	    &o);
	expect_refused("an envelope whose signature has one byte changed", &o,
	    SG_ERR_VERIFY, "does not verify");
	END();

	/* A non-officer's keyid (ci), signed with an officer's key. */
	BEGIN("release", "raw");
	RENDER();
	env_add_ex(f, &e, stmt, len, stmt, len, 1, ALICE, "ci", 0);
	env_add(f, &e, stmt, len, 1, BOB);
	env_add(f, &e, stmt, len, 1, DAVE);
	sign_via(f, "release", SG_DIGEST_SHA256, d, 32, stmt, len, &e, "raw",
	    &o);
	expect_refused("an envelope under keyid ci (not an officer)", &o,
	    SG_ERR_VERIFY, "not an officer");
	END();

	/* Approvals of another request (another request id). */
	BEGIN("release", "raw");
	st2 = st;
	memcpy(st2.request, "00000000000000000000000000000000", 32);
	RENDER();
	stmt2 = stmt_text(&st2, &len2);
	env_add(f, &e, stmt2, len2, 1, ALICE);
	env_add(f, &e, stmt2, len2, 1, BOB);
	env_add(f, &e, stmt2, len2, 1, DAVE);
	sign_via(f, "release", SG_DIGEST_SHA256, d, 32, stmt, len, &e, "raw",
	    &o);
	expect_refused("approvals of another request id", &o, SG_ERR_VERIFY,
	    "another statement");
	free(stmt2);
	END();

	/* An envelope whose body has one byte changed after signing. */
	BEGIN("release", "raw");
	RENDER();
	if ((bad = strdup(stmt)) == NULL)
		abort();
	{
		/* Another hex digit, so that the text is still a statement. */
		char *c = bad + (strstr(bad, "artifact sha256:") - bad) + 16;
		*c = *c == '0' ? '1' : '0';
	}
	env_add(f, &e, stmt, len, 1, ALICE);
	env_add_ex(f, &e, stmt, len, bad, len, 1, BOB, "bob", 0);
	env_add(f, &e, stmt, len, 1, DAVE);
	sign_via(f, "release", SG_DIGEST_SHA256, d, 32, stmt, len, &e, "raw",
	    &o);
	expect_refused("an envelope whose body has one byte changed", &o,
	    SG_ERR_VERIFY, "another statement");
	envs_clear(&e);

	/* The same change made consistently in the statement and in every
	 * envelope's body: the officers' signatures no longer hold. */
	random_digest(d2);
	if (sg_hex_decode(bad + (strstr(bad, "artifact sha256:") - bad) + 16,
	    64, d2, sizeof(d2), &len2) != 0)
		abort();
	env_add_ex(f, &e, stmt, len, bad, len, 1, ALICE, "alice", 0);
	env_add_ex(f, &e, stmt, len, bad, len, 1, BOB, "bob", 0);
	env_add_ex(f, &e, stmt, len, bad, len, 1, DAVE, "dave", 0);
	sign_via(f, "release", SG_DIGEST_SHA256, d2, 32, bad, len, &e, "raw",
	    &o);
	expect_refused("an approved statement re-targeted to another digest "
	    "(statement and envelope bodies changed)", &o, SG_ERR_VERIFY,
	    "does not verify");
	free(bad);
	END();

	/* An envelope that is not an envelope. */
	BEGIN("release", "raw");
	RENDER();
	env_add(f, &e, stmt, len, 1, ALICE);
	env_add(f, &e, stmt, len, 1, BOB);
	env_add(f, &e, stmt, len, 1, DAVE);
	env_add_raw(&e, "{\"payloadType\":1}");
	sign_via(f, "release", SG_DIGEST_SHA256, d, 32, stmt, len, &e, "raw",
	    &o);
	expect_refused("a quorum plus one envelope that is not DSSE", &o,
	    SG_ERR_VERIFY, "not a valid envelope");
	END();

	/* The message's digest is not the statement's. */
	BEGIN("nightly", "raw");
	RENDER();
	random_digest(d2);
	sign_via(f, "nightly", SG_DIGEST_SHA256, d2, 32, stmt, len, &e, "raw",
	    &o);
	expect_refused("nightly: the message's digest differs from the "
	    "statement's", &o, SG_ERR_VERIFY, "digest");
	/* Same bytes, another algorithm. */
	sign_via(f, "nightly", SG_DIGEST_SHA512, d, 32, stmt, len, &e, "raw",
	    &o);
	expect_refused("nightly: the statement's digest bytes under another "
	    "algorithm", &o, SG_ERR_VERIFY, "digest");
	END();

	/* A statement for nightly (no approval needed) sent with key
	 * release. */
	BEGIN("nightly", "raw");
	RENDER();
	sign_via(f, "release", SG_DIGEST_SHA256, d, 32, stmt, len, &e, "raw",
	    &o);
	expect_refused("a nightly statement sent with key release", &o,
	    SG_ERR_VERIFY, "statement is for key");
	END();

	/* A statement for release naming nightly's SPKI. */
	BEGIN("release", "raw");
	stmt_init(f, &st2, "nightly", d, "raw");
	memcpy(st.spki_sha256, st2.spki_sha256, sizeof(st.spki_sha256));
	RENDER();
	env_add(f, &e, stmt, len, 1, ALICE);
	env_add(f, &e, stmt, len, 1, BOB);
	env_add(f, &e, stmt, len, 1, DAVE);
	sign_via(f, "release", SG_DIGEST_SHA256, d, 32, stmt, len, &e, "raw",
	    &o);
	expect_refused("an approved release statement naming another key's "
	    "SPKI", &o, SG_ERR_VERIFY, "names key sha256:");
	END();

	/* Another policy file. */
	BEGIN("nightly", "raw");
	memset(st.policy_sha256, 'a', 64);
	RENDER();
	sign_via(f, "nightly", SG_DIGEST_SHA256, d, 32, stmt, len, &e, "raw",
	    &o);
	expect_refused("a statement naming another policy sha256", &o,
	    SG_ERR_VERIFY, "policy");
	END();
	BEGIN("nightly", "raw");
	st.policy_version++;
	RENDER();
	sign_via(f, "nightly", SG_DIGEST_SHA256, d, 32, stmt, len, &e, "raw",
	    &o);
	expect_refused("a statement naming another policy version", &o,
	    SG_ERR_VERIFY, "policy");
	END();

	/* Expired, for both a key without and a key with approval. */
	BEGIN("nightly", "raw");
	st.expires = (long long)time(NULL) - 1;
	RENDER();
	sign_via(f, "nightly", SG_DIGEST_SHA256, d, 32, stmt, len, &e, "raw",
	    &o);
	expect_refused("an expired nightly statement", &o, SG_ERR_VERIFY,
	    "expir");
	END();
	BEGIN("release", "raw");
	st.expires = (long long)time(NULL) - 1;
	RENDER();
	env_add(f, &e, stmt, len, 1, ALICE);
	env_add(f, &e, stmt, len, 1, BOB);
	env_add(f, &e, stmt, len, 1, DAVE);
	sign_via(f, "release", SG_DIGEST_SHA256, d, 32, stmt, len, &e, "raw",
	    &o);
	expect_refused("an expired release statement with its quorum", &o,
	    SG_ERR_VERIFY, "expir");
	END();

	/* A requester who may not request (an officer; an unknown name). */
	BEGIN("nightly", "raw");
	snprintf(st.requester, sizeof(st.requester), "alice");
	RENDER();
	sign_via(f, "nightly", SG_DIGEST_SHA256, d, 32, stmt, len, &e, "raw",
	    &o);
	expect_refused("requester alice (may not request)", &o,
	    SG_ERR_VERIFY, "requester");
	END();
	BEGIN("nightly", "raw");
	snprintf(st.requester, sizeof(st.requester), "mallory");
	RENDER();
	sign_via(f, "nightly", SG_DIGEST_SHA256, d, 32, stmt, len, &e, "raw",
	    &o);
	expect_refused("requester mallory (not a principal)", &o,
	    SG_ERR_VERIFY, "requester");
	END();

	/* Format mismatch, both ways. */
	BEGIN("nightly", "raw");
	RENDER();
	sign_via(f, "nightly", SG_DIGEST_SHA256, d, 32, stmt, len, &e, "cms",
	    &o);
	expect_refused("statement raw, message cms", &o, SG_ERR_VERIFY,
	    "format");
	END();
	BEGIN("nightly", "cms");
	RENDER();
	sign_via(f, "nightly", SG_DIGEST_SHA256, d, 32, stmt, len, &e, "raw",
	    &o);
	expect_refused("statement cms, message raw", &o, SG_ERR_VERIFY,
	    "format");
	END();

	/* A key the signer does not have. */
	BEGIN("nightly", "raw");
	RENDER();
	sign_via(f, "nosuch", SG_DIGEST_SHA256, d, 32, stmt, len, &e, "raw",
	    &o);
	expect_refused("a key the signer does not have", &o,
	    SG_ERR_NOT_FOUND, "no key");

	/* The log key through SIGN, with evidence that is otherwise valid. */
	sign_via(f, SG_SIGNER_LOG_KEY, SG_DIGEST_SHA256, d, 32, stmt, len, &e,
	    "raw", &o);
	expect_refused("SIGN with key @log (valid nightly evidence)", &o,
	    SG_ERR_VERIFY, "@log");
	END();

	/* A statement that does not parse. */
	BEGIN("nightly", "raw");
	RENDER();
	stmt[len - 1] = ' ';
	sign_via(f, "nightly", SG_DIGEST_SHA256, d, 32, stmt, len, &e, "raw",
	    &o);
	expect_refused("a statement that does not parse", &o, SG_ERR_VERIFY,
	    "statement");
	END();
#undef BEGIN
#undef RENDER
#undef END
}

/* ------------------------------------------------------------------ */
/* The raw channel. */

/*
 * Sends one message and reads one reply, both bounded in time.  Returns 0
 * with the reply's fixed part in *rep, or -1 (why in `why`).
 */
static int
raw_exchange(struct forge *f, int fd, const void *msg, size_t len,
    struct sg_wire_reply *rep, char *why, size_t whylen, int wait_ms)
{
	struct pollfd pfd;
	ssize_t n;
	int pr;

	memset(rep, 0, sizeof(*rep));
	if (send(fd, msg, len, MSG_NOSIGNAL) != (ssize_t)len) {
		snprintf(why, whylen, "send: %s", strerror(errno));
		return -1;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	do
		pr = poll(&pfd, 1, wait_ms);
	while (pr < 0 && errno == EINTR);
	if (pr != 1) {
		snprintf(why, whylen, "no reply within %d ms", wait_ms);
		return -1;
	}
	n = recv(fd, f->rbuf, REPLY_MAX + 1, MSG_DONTWAIT);
	if (n < (ssize_t)sizeof(*rep)) {
		snprintf(why, whylen, "short reply (%zd bytes: %s)", n,
		    n < 0 ? strerror(errno) : "closed");
		return -1;
	}
	memcpy(rep, f->rbuf, sizeof(*rep));
	rep->err[sizeof(rep->err) - 1] = '\0';
	if (rep->h.magic != SG_WIRE_MAGIC || rep->h.type != SG_WIRE_REPLY ||
	    rep->h.len != (uint32_t)n ||
	    rep->cms_len != (uint32_t)((size_t)n - sizeof(*rep))) {
		snprintf(why, whylen, "a reply that does not frame");
		return -1;
	}
	return 0;
}

/* Sends a forged message; the reply must have status `want`, carry no
 * signature, and (if word) say word. */
static void
raw_expect(struct forge *f, const char *name, const void *msg, size_t len,
    int want, const char *word)
{
	struct sg_wire_reply rep;
	char why[128];

	if (raw_exchange(f, sg_signer_client_fd(f->sc), msg, len, &rep, why,
	    sizeof(why), WAIT_MS) != 0) {
		result(0, "%s: %s", name, why);
		return;
	}
	if (rep.status == want && rep.sig_len == 0 && rep.cms_len == 0 &&
	    (word == NULL || strstr(rep.err, word) != NULL))
		result(1, "%s: %s (%s%s%s)", name, want != 0 ? "refused" :
		    "answered", errname(rep.status), rep.err[0] ? ": " : "",
		    rep.err);
	else
		result(0, "%s: got %s (%s), sig_len %u, cms_len %u; want %s "
		    "with '%s'", name, errname(rep.status), rep.err,
		    rep.sig_len, rep.cms_len, errname(want),
		    word != NULL ? word : "");
}

/* A well-formed SIGN message (as the client builds it), malloc'd. */
static uint8_t *
wire_sign(const char *key, enum sg_digest_alg alg, const uint8_t *digest,
    size_t dlen, const char *format, const char *stmt, size_t stmt_len,
    const struct envs *e, size_t *ret_len)
{
	struct sg_wire_sign *w;
	uint8_t *buf;
	size_t total, off, i;

	total = sizeof(*w) + stmt_len;
	for (i = 0; e != NULL && i < e->n; i++)
		total += e->len[i];
	if ((buf = calloc(1, total + 1)) == NULL)
		abort();
	w = (struct sg_wire_sign *)buf;
	w->h.magic = SG_WIRE_MAGIC;
	w->h.type = SG_WIRE_SIGN;
	w->h.len = (uint32_t)total;
	snprintf(w->key, sizeof(w->key), "%s", key);
	w->digest_alg = (uint32_t)alg;
	w->data_len = (uint32_t)dlen;
	memcpy(w->data, digest, dlen);
	snprintf(w->format, sizeof(w->format), "%s", format);
	w->statement_len = (uint32_t)stmt_len;
	memcpy(buf + sizeof(*w), stmt, stmt_len);
	off = sizeof(*w) + stmt_len;
	for (i = 0; e != NULL && i < e->n; i++) {
		w->envelope_lens[i] = (uint32_t)e->len[i];
		memcpy(buf + off, e->json[i], e->len[i]);
		off += e->len[i];
	}
	w->nenvelopes = e != NULL ? (uint32_t)e->n : 0;
	*ret_len = total;
	return buf;
}

static void
wire_name(struct sg_wire_name *w, uint32_t type, const char *name)
{
	memset(w, 0, sizeof(*w));
	w->h.magic = SG_WIRE_MAGIC;
	w->h.type = type;
	w->h.len = sizeof(*w);
	snprintf(w->name, sizeof(w->name), "%s", name);
}

static void
wire_text(struct sg_wire_text *w, uint32_t type, const char *text,
    size_t len)
{
	memset(w, 0, sizeof(*w));
	w->h.magic = SG_WIRE_MAGIC;
	w->h.type = type;
	w->h.len = sizeof(*w);
	w->len = (uint32_t)len;
	memcpy(w->text, text, len < sizeof(w->text) ? len : sizeof(w->text));
}

/* A raw SIGN for nightly that the signer accepts: the baseline every
 * forgery below departs from by one field. */
static void
raw_sign_control(struct forge *f, const char *name)
{
	struct sg_statement st;
	struct sg_wire_reply rep;
	uint8_t d[32], *msg, *sig;
	size_t len, mlen;
	char why[128], *stmt;
	int ok;

	random_digest(d);
	stmt_init(f, &st, "nightly", d, "raw");
	stmt = stmt_text(&st, &len);
	msg = wire_sign("nightly", SG_DIGEST_SHA256, d, 32, "raw", stmt, len,
	    NULL, &mlen);
	if (raw_exchange(f, sg_signer_client_fd(f->sc), msg, mlen, &rep, why,
	    sizeof(why), WAIT_MS) != 0) {
		result(0, "%s: %s", name, why);
	} else {
		sig = f->rbuf + offsetof(struct sg_wire_reply, sig);
		ok = rep.status == 0 && rep.sig_len > 0 &&
		    rep.sig_len <= SG_MAX_SIG && verify_with(f, "nightly",
		    SG_DIGEST_SHA256, d, 32, sig, rep.sig_len) == 0;
		result(ok, "%s: %s, signature %s", name, errname(rep.status),
		    ok ? "verifies" : "missing or bad");
	}
	free(msg);
	free(stmt);
}

static void
raw_forgeries(struct forge *f)
{
	struct sg_statement st;
	struct sg_wire_sign *w;
	struct sg_wire_name wn;
	struct sg_wire_text wt;
	struct sg_wire_reply rep;
	struct envs e;
	uint8_t d[32], *msg, *big, *sig;
	size_t len, mlen;
	char why[128], *stmt, cp[256];
	EVP_PKEY *logpub = NULL;
	int fd = sg_signer_client_fd(f->sc), ok;

	raw_sign_control(f, "raw control: a well-formed SIGN for nightly");

	/* One well-formed release message, with a quorum, to depart from. */
	memset(&e, 0, sizeof(e));
	random_digest(d);
	stmt_init(f, &st, "release", d, "raw");
	stmt = stmt_text(&st, &len);
	env_add(f, &e, stmt, len, 1, ALICE);
	env_add(f, &e, stmt, len, 1, BOB);
	env_add(f, &e, stmt, len, 1, DAVE);
	msg = wire_sign("release", SG_DIGEST_SHA256, d, 32, "raw", stmt, len,
	    &e, &mlen);
	w = (struct sg_wire_sign *)msg;

#define MUTATE(stmt_) do {						\
	struct sg_wire_sign saved = *w;					\
	stmt_;								\
	*w = saved;							\
} while (0)

	MUTATE(w->h.magic = 0x53475332u;
	    raw_expect(f, "wrong magic", msg, mlen, SG_ERR_INVALID,
	    "malformed message"));
	MUTATE(w->h.len = (uint32_t)mlen + 1;
	    raw_expect(f, "h.len one more than the bytes sent", msg, mlen,
	    SG_ERR_INVALID, "malformed message"));
	MUTATE(w->h.len = (uint32_t)mlen - 1;
	    raw_expect(f, "h.len one less than the bytes sent", msg, mlen,
	    SG_ERR_INVALID, "malformed message"));
	MUTATE(w->h.len = 0;
	    raw_expect(f, "h.len 0", msg, mlen, SG_ERR_INVALID,
	    "malformed message"));
	raw_expect(f, "a message shorter than the header", msg,
	    sizeof(struct sg_wire_hdr) - 1, SG_ERR_INVALID,
	    "malformed message");
	MUTATE(w->h.len = offsetof(struct sg_wire_sign, statement_len);
	    raw_expect(f, "a SIGN struct truncated before statement_len", msg,
	    offsetof(struct sg_wire_sign, statement_len), SG_ERR_INVALID,
	    "malformed sign message"));
	MUTATE(w->h.len = sizeof(struct sg_wire_hdr);
	    raw_expect(f, "a SIGN that is only a header", msg,
	    sizeof(struct sg_wire_hdr), SG_ERR_INVALID,
	    "malformed sign message"));
	MUTATE(w->statement_len += 1;
	    raw_expect(f, "statement_len one past the end", msg, mlen,
	    SG_ERR_INVALID, "lengths say"));
	MUTATE(w->statement_len = SG_STATEMENT_MAX + 1;
	    raw_expect(f, "statement_len past SG_STATEMENT_MAX", msg, mlen,
	    SG_ERR_INVALID, "malformed sign message"));
	MUTATE(w->statement_len = 0xffffffffu;
	    raw_expect(f, "statement_len 0xffffffff", msg, mlen,
	    SG_ERR_INVALID, "malformed sign message"));
	MUTATE(w->statement_len = 0;
	    w->envelope_lens[0] += (uint32_t)len;
	    raw_expect(f, "statement_len 0 (its bytes counted as an "
	    "envelope's)", msg, mlen, SG_ERR_INVALID, "no statement"));
	MUTATE(w->nenvelopes = 65;
	    raw_expect(f, "nenvelopes 65", msg, mlen, SG_ERR_INVALID,
	    "malformed sign message"));
	MUTATE(w->nenvelopes = 0xffffffffu;
	    raw_expect(f, "nenvelopes 0xffffffff", msg, mlen, SG_ERR_INVALID,
	    "malformed sign message"));
	MUTATE(w->nenvelopes = 2;
	    raw_expect(f, "nenvelopes one less than sent", msg, mlen,
	    SG_ERR_INVALID, "lengths say"));
	MUTATE(w->envelope_lens[1] = 0;
	    raw_expect(f, "an envelope length of 0", msg, mlen,
	    SG_ERR_INVALID, "bad length"));
	MUTATE(w->envelope_lens[1] = SG_ENVELOPE_MAX + 1;
	    raw_expect(f, "an envelope length past SG_ENVELOPE_MAX", msg, mlen,
	    SG_ERR_INVALID, "bad length"));
	MUTATE(w->envelope_lens[1] = 0xffffffffu;
	    raw_expect(f, "an envelope length of 0xffffffff", msg, mlen,
	    SG_ERR_INVALID, "bad length"));
	MUTATE(w->envelope_lens[0] -= 1; w->envelope_lens[1] += 1;
	    raw_expect(f, "envelope boundaries moved by one byte", msg, mlen,
	    SG_ERR_VERIFY, "approval"));
	MUTATE(w->h.len = (uint32_t)mlen + 1;
	    raw_expect(f, "one byte more than the lengths declare", msg,
	    mlen + 1, SG_ERR_INVALID, "lengths say"));
	MUTATE(w->data_len = SG_MAX_DIGEST + 1;
	    raw_expect(f, "data_len past the digest buffer", msg, mlen,
	    SG_ERR_INVALID, "malformed sign message"));
	MUTATE(w->data_len = 0;
	    raw_expect(f, "data_len 0", msg, mlen, SG_ERR_VERIFY, "digest"));
	MUTATE(w->digest_alg = 99;
	    raw_expect(f, "digest_alg 99", msg, mlen, SG_ERR_VERIFY,
	    "digest"));
	MUTATE(w->h.type = 99;
	    raw_expect(f, "unknown type 99", msg, mlen, SG_ERR_INVALID,
	    "unknown message type 99"));
	MUTATE(w->h.type = SG_WIRE_REPLY;
	    raw_expect(f, "a REPLY sent to the signer", msg, mlen,
	    SG_ERR_INVALID, "unknown message type"));
	MUTATE(w->h.type = SG_WIRE_READY;
	    raw_expect(f, "a READY sent to the signer", msg, mlen,
	    SG_ERR_INVALID, "unknown message type"));
	MUTATE(memset(w->key, 'r', sizeof(w->key));
	    raw_expect(f, "a key name without NUL terminator", msg, mlen,
	    SG_ERR_INVALID, "malformed sign message"));
	MUTATE(memcpy(w->format, "rawx", 4);
	    raw_expect(f, "a format without NUL terminator", msg, mlen,
	    SG_ERR_INVALID, "malformed sign message"));
	MUTATE(snprintf(w->key, sizeof(w->key), "%s", SG_SIGNER_LOG_KEY);
	    raw_expect(f, "SIGN with key @log and a release quorum", msg,
	    mlen, SG_ERR_VERIFY, "@log"));
	/* The untouched message is accepted: the mutations were the cause. */
	if (raw_exchange(f, fd, msg, mlen, &rep, why, sizeof(why),
	    WAIT_MS) != 0)
		result(0, "raw control: the unmutated release message: %s",
		    why);
	else {
		sig = f->rbuf + offsetof(struct sg_wire_reply, sig);
		ok = rep.status == 0 && rep.sig_len > 0 &&
		    verify_with(f, "release", SG_DIGEST_SHA256, d, 32, sig,
		    rep.sig_len) == 0;
		result(ok, "raw control: the unmutated release message is "
		    "signed (%s %s)", errname(rep.status), rep.err);
	}
	free(msg);
	envs_clear(&e);
	free(stmt);
#undef MUTATE

	/*
	 * The largest message the signer reads, and one byte more.  A
	 * SOCK_SEQPACKET record must fit the sender's SO_SNDBUF (less a
	 * little overhead) or send() fails with EMSGSIZE, which the client
	 * takes for a dead signer; the kernel caps SO_SNDBUF by
	 * net.core.wmem_max.
	 */
	{
		int sndbuf = 0;
		socklen_t sl = sizeof(sndbuf);
		ok = getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &sl) == 0 &&
		    sndbuf > 32 && (size_t)sndbuf - 32 >= WIRE_MAX + 1;
		result(ok, "the channel's send buffer (%d bytes) holds the "
		    "largest message (%zu bytes)", sndbuf, WIRE_MAX);
	}
	if ((big = calloc(1, WIRE_MAX + 1)) == NULL)
		abort();
	w = (struct sg_wire_sign *)big;
	w->h.magic = SG_WIRE_MAGIC;
	w->h.type = SG_WIRE_SIGN;
	w->h.len = (uint32_t)WIRE_MAX;
	snprintf(w->key, sizeof(w->key), "nightly");
	snprintf(w->format, sizeof(w->format), "raw");
	w->statement_len = 100;
	raw_expect(f, "a message of exactly the largest size (lengths "
	    "disagree)", big, WIRE_MAX, SG_ERR_INVALID, "lengths say");
	w->h.len = (uint32_t)WIRE_MAX + 1;
	raw_expect(f, "a message one byte over the largest size", big,
	    WIRE_MAX + 1, SG_ERR_INVALID, "malformed message");
	free(big);

	/* Small messages. */
	wire_name(&wn, SG_WIRE_KEYINFO, "nightly");
	raw_expect(f, "KEYINFO truncated by 8 bytes", &wn, sizeof(wn) - 8,
	    SG_ERR_INVALID, NULL);
	wn.h.len = sizeof(wn) - 8;
	raw_expect(f, "KEYINFO truncated by 8 bytes (h.len agreeing)", &wn,
	    sizeof(wn) - 8, SG_ERR_INVALID, NULL);
	wire_name(&wn, SG_WIRE_KEYINFO, "nosuch");
	raw_expect(f, "KEYINFO for an unknown name", &wn, sizeof(wn),
	    SG_ERR_NOT_FOUND, NULL);
	wire_name(&wn, SG_WIRE_KEYINFO, "");
	memset(wn.name, 'n', sizeof(wn.name));
	raw_expect(f, "KEYINFO with a name without NUL terminator", &wn,
	    sizeof(wn), SG_ERR_INVALID, NULL);
	wire_name(&wn, SG_WIRE_PROBE, SG_SIGNER_LOG_KEY);
	raw_expect(f, "PROBE for @log", &wn, sizeof(wn), SG_ERR_NOT_FOUND,
	    NULL);
	wire_name(&wn, SG_WIRE_PROBE, "nosuch");
	raw_expect(f, "PROBE for an unknown key", &wn, sizeof(wn),
	    SG_ERR_NOT_FOUND, NULL);
	wire_name(&wn, SG_WIRE_PROBE, "");
	memset(wn.name, 'n', sizeof(wn.name));
	raw_expect(f, "PROBE with a name without NUL terminator", &wn,
	    sizeof(wn), SG_ERR_INVALID, NULL);
	wire_name(&wn, SG_WIRE_PROBE, "nightly");
	raw_expect(f, "PROBE for nightly succeeds and returns no signature",
	    &wn, sizeof(wn), 0, NULL);
	wire_name(&wn, SG_WIRE_KEYINFO, "nightly");
	if (raw_exchange(f, fd, &wn, sizeof(wn), &rep, why, sizeof(why),
	    WAIT_MS) != 0)
		result(0, "KEYINFO for nightly: %s", why);
	else
		result(rep.status == 0 && rep.der_len > 0 && rep.sig_len == 0,
		    "KEYINFO for nightly gives its public key only (%u bytes "
		    "DER, sig_len %u)", rep.der_len, rep.sig_len);

	/* Checkpoints: only well-formed ones, only with the log key. */
	if (sg_signer_client_key_public(f->sc, SG_SIGNER_LOG_KEY, &logpub,
	    NULL, NULL) != 0)
		logpub = NULL;
	snprintf(cp, sizeof(cp), "%s\n5\n%s\n", f->cfg->log_origin,
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
	len = strlen(cp);
	wire_text(&wt, SG_WIRE_CHECKPOINT, cp, len);
	if (raw_exchange(f, fd, &wt, sizeof(wt), &rep, why, sizeof(why),
	    WAIT_MS) != 0)
		result(0, "raw control: a well-formed checkpoint: %s", why);
	else {
		sig = f->rbuf + offsetof(struct sg_wire_reply, sig);
		ok = rep.status == 0 && rep.sig_len == SG_ED25519_SIG &&
		    logpub != NULL && sg_verify(logpub, SG_SIG_EDDSA,
		    SG_DIGEST_NONE, (const uint8_t *)cp, len, sig,
		    rep.sig_len) == 0;
		result(ok, "raw control: a well-formed checkpoint is signed "
		    "by the log key (%s, sig_len %u)", errname(rep.status),
		    rep.sig_len);
	}
	wire_text(&wt, SG_WIRE_CHECKPOINT, "hello\n", 6);
	raw_expect(f, "a checkpoint text that is not a checkpoint", &wt,
	    sizeof(wt), SG_ERR_INVALID, NULL);
	memset(&st, 0, sizeof(st));
	random_digest(d);
	stmt_init(f, &st, "nightly", d, "raw");
	stmt = stmt_text(&st, &len);
	wire_text(&wt, SG_WIRE_CHECKPOINT, stmt, len);
	raw_expect(f, "an approval statement sent as a checkpoint", &wt,
	    sizeof(wt), SG_ERR_INVALID, NULL);
	free(stmt);
	snprintf(cp, sizeof(cp), "%s\n5\n%s\nextension\n",
	    f->cfg->log_origin, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
	wire_text(&wt, SG_WIRE_CHECKPOINT, cp, strlen(cp));
	raw_expect(f, "a checkpoint with an extension line", &wt, sizeof(wt),
	    SG_ERR_INVALID, NULL);
	wire_text(&wt, SG_WIRE_CHECKPOINT, cp, strlen(cp));
	wt.len = 3;
	raw_expect(f, "a checkpoint whose len cuts it short", &wt, sizeof(wt),
	    SG_ERR_INVALID, NULL);
	wt.len = 0;
	raw_expect(f, "a checkpoint of length 0", &wt, sizeof(wt),
	    SG_ERR_INVALID, NULL);
	wt.len = (uint32_t)sizeof(wt.text) + 1;
	raw_expect(f, "a checkpoint len past its buffer", &wt, sizeof(wt),
	    SG_ERR_INVALID, NULL);
	wt.len = 0xffffffffu;
	raw_expect(f, "a checkpoint len of 0xffffffff", &wt, sizeof(wt),
	    SG_ERR_INVALID, NULL);
	wire_text(&wt, SG_WIRE_CHECKPOINT, cp, strlen(cp));
	raw_expect(f, "a CHECKPOINT struct truncated by one byte", &wt,
	    sizeof(wt) - 1, SG_ERR_INVALID, NULL);
	wire_text(&wt, SG_WIRE_RELOAD, sg_policy_sha256_hex(f->policy), 63);
	raw_expect(f, "RELOAD with a 63-character digest", &wt, sizeof(wt),
	    SG_ERR_INVALID, NULL);
}

/* ------------------------------------------------------------------ */
/* Rules of the policy beyond the quorum. */

enum variant { VARIANT_RELEASE_RAW_ONLY, VARIANT_HSM_ELSEWHERE };

/*
 * The policy file with one rule changed: key release allows only raw, or
 * every HSM of the inventory stands in DE.  Line-based: the dev policy's
 * layout (blocks "key NAME" / "hsm SERIAL" ... "end", indented fields).
 * Certificate paths must be absolute, as the copy lives elsewhere.
 */
static int
variant_text(const char *in, size_t len, enum variant v, char **ret,
    size_t *ret_len)
{
	const char *p = in, *end = in + len, *nl, *field;
	char *out, *o;
	int in_release = 0, in_hsm = 0, changed = 0;

	if ((out = malloc(len + 64 * 16 + 1)) == NULL)
		return SG_ERR_NOMEM;
	o = out;
	for (; p < end; p = nl) {
		nl = memchr(p, '\n', (size_t)(end - p));
		nl = nl != NULL ? nl + 1 : end;
		if (strncmp(p, "key release\n", 12) == 0)
			in_release = 1;
		else if (strncmp(p, "hsm ", 4) == 0)
			in_hsm = 1;
		else if (strncmp(p, "end\n", 4) == 0)
			in_release = in_hsm = 0;
		for (field = p; field < nl && (*field == ' ' ||
		    *field == '\t'); field++)
			;
		if (v == VARIANT_RELEASE_RAW_ONLY && in_release &&
		    field > p && strncmp(field, "formats ", 8) == 0) {
			o += sprintf(o, "    formats raw\n");
			changed++;
			continue;
		}
		if (v == VARIANT_HSM_ELSEWHERE && in_hsm && field > p &&
		    strncmp(field, "country ", 8) == 0 && changed < 16) {
			o += sprintf(o, "    country DE\n");
			changed++;
			continue;
		}
		memcpy(o, p, (size_t)(nl - p));
		o += nl - p;
	}
	*o = '\0';
	if (changed == 0) {
		free(out);
		return SG_ERR_NOT_FOUND;
	}
	*ret = out;
	*ret_len = (size_t)(o - out);
	return 0;
}

/* A forge whose signer read a variant of the policy; g shares f's
 * officers and buffers, and owns its policy and signer. */
static int
variant_open(struct forge *f, enum variant v, char *dir, struct forge *g)
{
	char *text = NULL, *vtext = NULL, *path = NULL;
	size_t len, vlen = 0;
	int r;

	*g = *f;
	g->policy = NULL;
	g->sc = NULL;
	if ((r = sg_read_file(f->cfg->policy_path, SG_POLICY_MAX_SIZE, &text,
	    &len)) != 0 || (r = variant_text(text, len, v, &vtext,
	    &vlen)) != 0)
		goto out;
	if ((path = sg_path_join(dir, "policy.conf")) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	/* A policy holds only public keys; the signer's user reads it. */
	if ((r = sg_write_file(path, vtext, vlen, 0644)) != 0 ||
	    (r = parse_policy_file(path, &g->policy)) != 0 ||
	    (r = spawn_signer(f->cfg, g->policy, path, &g->sc)) != 0)
		goto out;
out:
	if (path != NULL)
		unlink(path);
	free(path);
	free(text);
	free(vtext);
	return r;
}

static void
variant_close(struct forge *g)
{
	sg_signer_client_free(g->sc);
	sg_policy_free(g->policy);
	g->sc = NULL;
	g->policy = NULL;
}

/* Refused with any error and nothing usable returned: for rules the
 * signer has no dedicated error for. */
static void
expect_refused_any(const char *name, struct outcome *o)
{
	int ok = o->r != 0 && o->rep.sig_len == 0 && o->cms == NULL;

	result(ok, "%s: %s (%s: %s)", name, ok ? "refused" : "NOT refused",
	    errname(o->r), o->err);
	outcome_clear(o);
}

static void
policy_rules(struct forge *f)
{
	char dir[] = "/tmp/signer_forge.XXXXXX", why[512];
	struct forge g;
	struct sg_statement st;
	struct envs e;
	struct outcome o;
	uint8_t d[32];
	size_t len;
	char *stmt;
	int r;
	static const int release_quorum[] = { ALICE, BOB, DAVE, -1 };

	/* Traversable: run as root, the signers run as users.signer. */
	if (mkdtemp(dir) == NULL || chmod(dir, 0711) != 0) {
		result(0, "policy rules: mkdtemp: %s", strerror(errno));
		return;
	}

	/* Formats: release allows raw only, so no CMS for it. */
	if ((r = variant_open(f, VARIANT_RELEASE_RAW_ONLY, dir, &g)) != 0)
		result(0, "policy rules: a signer on the raw-only policy: %s",
		    sg_strerror(r));
	else {
		result(honest_sign(&g, "release", release_quorum, why,
		    sizeof(why)), "control: with release raw-only, raw is "
		    "still signed (%s)", why);
		memset(&e, 0, sizeof(e));
		random_digest(d);
		stmt_init(&g, &st, "release", d, "cms");
		stmt = stmt_text(&st, &len);
		env_add(&g, &e, stmt, len, 1, ALICE);
		env_add(&g, &e, stmt, len, 1, BOB);
		env_add(&g, &e, stmt, len, 1, DAVE);
		sign_via(&g, "release", SG_DIGEST_SHA256, d, 32, stmt, len, &e,
		    "cms", &o);
		expect_refused_any("a CMS for release, whose policy allows "
		    "raw only (approved statement)", &o);
		envs_clear(&e);
		free(stmt);
	}
	variant_close(&g);

	/* Countries: the token stands where no key may be used. */
	if ((r = variant_open(f, VARIANT_HSM_ELSEWHERE, dir, &g)) != 0)
		result(0, "policy rules: a signer on the DE policy: %s",
		    sg_strerror(r));
	else {
		random_digest(d);
		stmt_init(&g, &st, "nightly", d, "raw");
		stmt = stmt_text(&st, &len);
		memset(&e, 0, sizeof(e));
		sign_via(&g, "nightly", SG_DIGEST_SHA256, d, 32, stmt, len, &e,
		    "raw", &o);
		expect_refused_any("nightly on a token in a country the key "
		    "does not allow", &o);
		free(stmt);
		stmt_init(&g, &st, "release", d, "raw");
		stmt = stmt_text(&st, &len);
		env_add(&g, &e, stmt, len, 1, ALICE);
		env_add(&g, &e, stmt, len, 1, BOB);
		env_add(&g, &e, stmt, len, 1, DAVE);
		sign_via(&g, "release", SG_DIGEST_SHA256, d, 32, stmt, len, &e,
		    "raw", &o);
		expect_refused_any("release with its quorum on a token in a "
		    "country the key does not allow", &o);
		envs_clear(&e);
		free(stmt);
	}
	variant_close(&g);
	rmdir(dir);
}

/* After every forgery the channel still serves honest requests. */
static void
still_works(struct forge *f)
{
	static const int release_quorum[] = { ALICE, BOB, DAVE, -1 };
	struct sg_wire_name wn;
	struct sg_wire_reply rep;
	char why[512];
	uint8_t sig[SG_ED25519_SIG];
	int ok;

	ok = honest_sign(f, "nightly", NULL, why, sizeof(why));
	result(ok, "after the forgeries: nightly is still signed (%s)", why);
	ok = honest_sign(f, "release", release_quorum, why, sizeof(why));
	result(ok, "after the forgeries: release with its quorum is still "
	    "signed (%s)", why);
	wire_name(&wn, SG_WIRE_KEYINFO, "release");
	ok = raw_exchange(f, sg_signer_client_fd(f->sc), &wn, sizeof(wn),
	    &rep, why, sizeof(why), WAIT_MS) == 0 && rep.status == 0 &&
	    rep.der_len > 0;
	result(ok, "after the forgeries: the raw channel still answers");
	ok = sg_signer_client_probe(f->sc, "firmware") == 0 &&
	    sg_signer_client_probe(f->sc, SG_SIGNER_LOG_KEY) ==
	    SG_ERR_NOT_FOUND;
	result(ok, "after the forgeries: probes answer (firmware ok, @log "
	    "refused)");
	ok = sg_signer_client_checkpoint(f->sc, "x\n", 2, sig) ==
	    SG_ERR_INVALID;
	result(ok, "the client's checkpoint call refuses a non-checkpoint");
}

/*
 * A zero-length record is a valid SOCK_SEQPACKET message; the signer must
 * answer it like any other malformed message and keep the channel.  Run
 * last: if the signer takes it for end-of-file, the channel is lost.
 */
static void
empty_message(struct forge *f)
{
	struct sg_wire_name wn;
	struct sg_wire_reply rep;
	char why[128];
	int fd = sg_signer_client_fd(f->sc), ok;

	if (send(fd, "", 0, MSG_NOSIGNAL) != 0) {
		result(0, "a zero-length message: send: %s", strerror(errno));
		return;
	}
	{
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t n;
		if (poll(&pfd, 1, EMPTY_WAIT_MS) == 1 && (n = recv(fd, f->rbuf,
		    REPLY_MAX + 1, MSG_DONTWAIT)) >= (ssize_t)sizeof(rep)) {
			memcpy(&rep, f->rbuf, sizeof(rep));
			result(rep.status == SG_ERR_INVALID &&
			    rep.sig_len == 0, "a zero-length message is "
			    "refused (%s)", errname(rep.status));
		} else
			result(0, "a zero-length message gets no reply");
	}
	wire_name(&wn, SG_WIRE_KEYINFO, "nightly");
	ok = raw_exchange(f, fd, &wn, sizeof(wn), &rep, why, sizeof(why),
	    EMPTY_WAIT_MS) == 0 && rep.status == 0;
	result(ok, "after a zero-length message the channel still "
	    "answers%s%s", ok ? "" : ": ", ok ? "" : why);
}

int
main(int argc, char **argv)
{
	struct forge f;
	int r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: signer_forge CONFIG [DEVDIR]\n");
		return 2;
	}
	memset(&f, 0, sizeof(f));
	if ((r = setup(&f, argv[1], argc == 3 ? argv[2] : NULL)) != 0) {
		result(0, "setup: %s", sg_strerror(r));
		teardown(&f);
		printf("%d passed, %d failed\n", npass, nfail);
		return 1;
	}
	positive_controls(&f);
	forged_evidence(&f);
	raw_forgeries(&f);
	policy_rules(&f);
	still_works(&f);
	empty_message(&f);
	teardown(&f);
	printf("%d passed, %d failed\n", npass, nfail);
	return nfail == 0 ? 0 : 1;
}
