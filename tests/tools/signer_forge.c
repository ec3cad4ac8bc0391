/*
 * signer_forge: shows that the signer process refuses forged and malformed
 * requests, as a compromised front could send them.
 *
 *   signer_forge CONFIG [DEVDIR]
 *   signer_forge replay CONFIG DEVDIR ENTRY COUNT
 *   signer_forge --log CONFIG [DEVDIR]
 *   signer_forge webauthn CONFIG DEVDIR KEYFILE
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
 * the signatures that verify.  Raw messages start from what the wire
 * module's encoders build (sg_signer_wire.h), as the front's client does,
 * and then break one field; every raw reply must pass the front's own
 * check (sg_wire_decode_reply), refusals included.
 *
 * Checkpoints: the log key signs only the signer's own checkpoint text and
 * only trees that extend its record.  Text (the old message, a checkpoint
 * text, random bytes) is refused; on a record of its own the forge tries
 * forks (another root at the recorded size, another log's tree and proof,
 * a tampered, truncated or extended proof, one future of a shared prefix
 * after the other), rollbacks, stale proofs, a restart, another origin, a
 * directory others may write, and races between two channels and between
 * two signer processes on one record; each signed answer must verify over
 * the text the signer formats for (size, root) under the configured
 * origin.  With --log, the same attacks go against a stopped daemon's own
 * record (signer_state_dir) and the tree in its store, which must be left
 * as it was.  Otherwise the forge's signers keep their records in a
 * scratch directory and never touch the daemon's.
 *
 * Two more signers are spawned on copies of the policy with one rule
 * changed (a key that allows raw only; an HSM standing where no key may be
 * used): those rules must hold in the signer too, not only in the front.
 * Another copy lets key release have releases and grants: under a grant
 * of 2 a third signature, or a second digest for a slot, is refused, and
 * so is a release artifact out of its manifest (SIGN_BATCH, through the
 * client), while the honest items sign.
 * One more signer runs on a copy that is then reloaded with an officer
 * revoked: her envelope must no longer count, though the statement's own
 * policy lists her.
 * The last case sends a zero-length record, which SOCK_SEQPACKET allows;
 * the channel must survive it.
 *
 * With webauthn, the policy lets carol approve with a security key (the
 * credential of KEYFILE, as tests/tools/webauthn_sign makes it): her
 * honest assertion completes a quorum, and one whose client data was
 * changed, made at another origin, without user presence or naming a
 * credential she does not have is refused by the signer itself.
 *
 * One signature per request and format: a request asked for by several
 * channels at once, then again and again (client and raw channel), gets
 * one signature, byte for byte (a control shows that two requests for one
 * digest get different ECDSA signatures), and one record in the signer's
 * state directory; another statement under the same request id, even one
 * a quorum approved, is refused.  Keys and the log key: signers spawned on
 * policies with a key x on the log key's object (by label, CKA_ID or URI)
 * refuse to start, and so does one handed a key list that does not match
 * its policy file; a running signer refuses a reload that adds such a key,
 * any new key, or moves one.  (Another label on the log key pair needs a
 * token the tool does not make: tests/integration/46-log-key-policy.sh.)
 * The log key's CKA_ID is $SG_FORGE_LOG_KEY_ID, by default 10 as
 * scripts/devenv.sh makes it.
 *
 * replay: ENTRY is a signature entry of the log (GET /v1/log/entries/N).
 * Its statement and approvals are sent COUNT times on the raw channel to
 * a signer spawned with CONFIG (so on the daemon's signer state
 * directory); every answer must be the entry's signature (and CMS)
 * byte for byte.  Then a statement for another digest under the same
 * request id, with a fresh quorum, must be refused.
 *
 * Run as root, the signers drop to the configured users.signer, as the
 * daemon's do (sg_privdrop.h); this tool itself stays root, and gives each
 * signer's record directory to that user and its scratch files to all.
 *
 * Every refusal is checked for its status, a word of its reason, and that
 * no signature (nor CMS) came back.  Each case prints "ok - ..." or
 * "not ok - ..."; the last line is "N passed, M failed".  Every wait on the
 * channel is bounded (WAIT_MS).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include "sg_cms.h"
#include "sg_config.h"
#include "sg_crypto.h"
#include "sg_dsse.h"
#include "sg_entry.h"
#include "sg_err.h"
#include "sg_manifest.h"
#include "sg_note.h"
#include "sg_policy.h"
#include "sg_privdrop.h"
#include "sg_signer.h"
#include "sg_signer_proc.h"
#include "sg_signer_wire.h"
#include "sg_sigrec.h"
#include "sg_util.h"
#include "sg_webauthn.h"
#include "sg_fixture.h"

#define WAIT_MS 20000
#define EMPTY_WAIT_MS 3000
/* The largest message the signer reads, and the largest reply. */
#define WIRE_MAX SG_WIRE_MAX_MSG
#define REPLY_MAX SG_WIRE_MAX_REPLY
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
	char tmp[64];                  /* scratch directory, or "" */
	char hsmdir[4096];             /* the main signer's record */
	int daemon_record;             /* replay: hsmdir is the daemon's */
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
 * give it: every key of `p` plus the log key (then changed by `tweak`,
 * when given), and its record in the configured signer state directory.
 * On failure the signer's reason is in err.
 */
static int
spawn_signer_ex(const struct sg_config *cfg, const struct sg_policy *p,
    const char *policy_path, const char *state_dir,
    void (*tweak)(struct sg_signer_key_spec *, size_t), int prepare,
    struct sg_signer_client **ret, char *err, size_t errlen)
{
	struct sg_signer_key_spec *specs;
	size_t nspecs;
	int r;

	/* The keys signgated hands its signer: the policy's and the log's. */
	if ((r = sg_signer_key_specs(p, cfg->log_token, cfg->log_key, &specs,
	    &nspecs)) != 0)
		return r;
	if (tweak != NULL)
		tweak(specs, nspecs);
	err[0] = '\0';
	/* As signgated does before it forks its signer, for a directory
	 * not made yet; one the forge made on purpose is left as it is, for
	 * the signer's own checks. */
	if (prepare && sg_privdrop_start() == SG_PRIV_START_ROOT &&
	    access(state_dir, F_OK) != 0 &&
	    (r = sg_privdrop_prepare_dir("signer_state_dir", state_dir,
	    SG_PRIV_SIGNER, err, errlen)) != 0) {
		free(specs);
		return r;
	}
	r = sg_signer_spawn(cfg->pkcs11_module, cfg->tokens, cfg->ntokens,
	    specs, nspecs, policy_path, cfg->log_origin, state_dir,
	    cfg->threads + 4, 0, ret, err, errlen);
	free(specs);
	return r;
}

static int
spawn_signer(const struct sg_config *cfg, const struct sg_policy *p,
    const char *policy_path, const char *state_dir,
    struct sg_signer_client **ret)
{
	char err[512];
	int r;

	if ((r = spawn_signer_ex(cfg, p, policy_path, state_dir, NULL, 1, ret,
	    err, sizeof(err))) != 0)
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

/* A scratch directory (sg_fixture.h) the signers can traverse: the forge
 * runs as root, its signers as the signer user. */
static int
scratch(char *dir, size_t cap)
{
	if (sg_fx_tmpdir("forge", dir, cap) != 0)
		return -1;
	if (chmod(dir, 0711) != 0) {
		fprintf(stderr, "chmod %s: %s\n", dir, strerror(errno));
		(void)sg_fx_rm_tree(dir);
		dir[0] = '\0';
		return -1;
	}
	return 0;
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
	r = sg_read_file(path, SG_PEM_FILE_MAX, &f->ca_pem, &f->ca_len);
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
	/* Never the daemon's record: the forge's signers keep their own. */
	if (scratch(f->tmp, sizeof(f->tmp)) != 0)
		return SG_ERR_IO;
	if (f->daemon_record)
		snprintf(f->hsmdir, sizeof(f->hsmdir), "%s",
		    f->cfg->signer_state_dir);
	else
		snprintf(f->hsmdir, sizeof(f->hsmdir), "%s/hsm", f->tmp);
	return spawn_signer(f->cfg, f->policy, f->cfg->policy_path, f->hsmdir,
	    &f->sc);
}

static void
teardown(struct forge *f)
{
	size_t i;

	sg_signer_client_free(f->sc);
	(void)sg_fx_rm_tree(f->tmp);
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

/* The format spelled s, as the statement spells it; 0 (not a format,
 * which the encoder refuses) for another spelling. */
static enum sg_format
format_of(const char *s)
{
	enum sg_format f = (enum sg_format)0;

	(void)sg_format_parse(s, &f);
	return f;
}

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
	ev.format = format_of(format);
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
	const uint8_t *extra;
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
	/* The front's own check: framing, lengths, and a refusal that
	 * carries nothing. */
	if (sg_wire_decode_reply(f->rbuf, (size_t)n, rep, &extra) != 0) {
		snprintf(why, whylen, "a reply out of protocol (%zd bytes)",
		    n);
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

/* A well-formed SIGN message, built as the client builds it (with one
 * spare byte after it, for the case that sends one byte more), malloc'd. */
static uint8_t *
wire_sign(const char *key, enum sg_digest_alg alg, const uint8_t *digest,
    size_t dlen, const char *format, const char *stmt, size_t stmt_len,
    const struct envs *e, size_t *ret_len)
{
	struct sg_sign_msg m;
	struct sg_sign_evidence ev;
	uint8_t *msg, *buf;
	size_t len;

	memset(&m, 0, sizeof(m));
	snprintf(m.key, sizeof(m.key), "%s", key);
	m.digest_alg = alg;
	memcpy(m.data, digest, dlen);
	m.data_len = dlen;
	memset(&ev, 0, sizeof(ev));
	ev.statement = stmt;
	ev.statement_len = stmt_len;
	if (e != NULL) {
		ev.envelopes = (const char *const *)e->json;
		ev.envelope_lens = e->len;
		ev.n = e->n;
	}
	ev.format = format_of(format);
	if (sg_wire_encode_sign(&m, &ev, &msg, &len) != 0 ||
	    (buf = calloc(1, len + 1)) == NULL)
		abort();
	memcpy(buf, msg, len);
	free(msg);
	*ret_len = len;
	return buf;
}

static void
wire_name(struct sg_wire_name *w, uint32_t type, const char *name)
{
	if (sg_wire_encode_name(w, type, name) != 0)
		abort();
}

/* A text-shaped message (RELOAD's layout) of any type, with any length
 * field: forgeries only, as no valid message carries free text. */
static void
wire_text(struct sg_wire_text *w, uint32_t type, const char *text,
    size_t len)
{
	memset(w, 0, sizeof(*w));
	sg_wire_hdr_init(&w->h, type, sizeof(*w));
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
	char why[128], *stmt;
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

	MUTATE(w->h.magic = 0x53475331u;
	    raw_expect(f, "the untagged protocol's magic (SGS1)", msg, mlen,
	    SG_ERR_INVALID, "malformed message"));
	MUTATE(w->h.magic = SG_WIRE_MAGIC ^ 0x100;
	    raw_expect(f, "wrong magic", msg, mlen, SG_ERR_INVALID,
	    "malformed message"));
	MUTATE(w->h.reserved = 1;
	    raw_expect(f, "the header's reserved word not 0", msg, mlen,
	    SG_ERR_INVALID, "malformed message"));
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
	sg_wire_hdr_init(&w->h, SG_WIRE_SIGN, WIRE_MAX);
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

	if (sg_wire_encode_reload(&wt, sg_policy_sha256_hex(f->policy)) != 0)
		abort();
	wt.len = 63;
	wt.text[63] = '\0';
	raw_expect(f, "RELOAD with a 63-character digest", &wt, sizeof(wt),
	    SG_ERR_INVALID, NULL);
}

/* ------------------------------------------------------------------ */
/* Checkpoints: the log key signs only the signer's own checkpoint text,
 * and only for a tree that extends the one it signed last. */

#define TREE_MAX 64
#define TREE_LEVELS 7

/* An in-memory tree with every complete subtree hash, for proofs. */
struct tree {
	uint8_t h[TREE_LEVELS][TREE_MAX][SG_HASH_LEN];
	uint64_t count[TREE_LEVELS];
};

static int
tree_emit(void *ctx, unsigned level, uint64_t index,
    const uint8_t hash[SG_HASH_LEN])
{
	struct tree *t = ctx;

	if (level >= TREE_LEVELS || index >= TREE_MAX ||
	    index != t->count[level])
		return SG_ERR_INTERNAL;
	memcpy(t->h[level][index], hash, SG_HASH_LEN);
	t->count[level]++;
	return 0;
}

static int
tree_get(void *ctx, unsigned level, uint64_t index, uint8_t out[SG_HASH_LEN])
{
	struct tree *t = ctx;

	if (level >= TREE_LEVELS || index >= t->count[level])
		return SG_ERR_NOT_FOUND;
	memcpy(out, t->h[level][index], SG_HASH_LEN);
	return 0;
}

/* TREE_MAX leaves of its own, named after the tree. */
static struct tree *
tree_make(const char *name)
{
	struct sg_merkle_frontier fr;
	struct tree *t;
	uint8_t leaf[SG_HASH_LEN];
	char text[64];
	size_t i;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		abort();
	sg_merkle_frontier_init(&fr);
	for (i = 0; i < TREE_MAX; i++) {
		snprintf(text, sizeof(text), "%s leaf %zu", name, i);
		sg_merkle_leaf_hash((const uint8_t *)text, strlen(text), leaf);
		if (sg_merkle_frontier_append(&fr, leaf, tree_emit, t) != 0)
			abort();
	}
	return t;
}

/* TREE_MAX leaves: base's first `shared`, then this tree's own. */
static struct tree *
tree_fork(const struct tree *base, size_t shared, const char *name)
{
	struct sg_merkle_frontier fr;
	struct tree *t;
	uint8_t leaf[SG_HASH_LEN];
	char text[64];
	size_t i;

	if (shared > base->count[0] || (t = calloc(1, sizeof(*t))) == NULL)
		abort();
	sg_merkle_frontier_init(&fr);
	for (i = 0; i < TREE_MAX; i++) {
		if (i < shared)
			memcpy(leaf, base->h[0][i], SG_HASH_LEN);
		else {
			snprintf(text, sizeof(text), "%s leaf %zu", name, i);
			sg_merkle_leaf_hash((const uint8_t *)text,
			    strlen(text), leaf);
		}
		if (sg_merkle_frontier_append(&fr, leaf, tree_emit, t) != 0)
			abort();
	}
	return t;
}

static void
tree_root(struct tree *t, uint64_t size, uint8_t out[SG_HASH_LEN])
{
	if (sg_merkle_root(tree_get, t, size, out) != 0)
		abort();
}

static void
ckpt_encode(struct sg_wire_checkpoint *w, const struct sg_witness_request *req)
{
	if (sg_wire_encode_checkpoint(w, req) != 0)
		abort();
}

/* A CHECKPOINT for t at size, with t's proof from `from` (no proof when
 * from is 0 or not below size), claiming old_size. */
static void
wire_ckpt(struct sg_wire_checkpoint *w, struct tree *t, uint64_t size,
    uint64_t from, uint64_t old_size)
{
	struct sg_witness_request *req;

	if ((req = calloc(1, sizeof(*req))) == NULL)
		abort();
	req->size = size;
	req->old_size = old_size;
	tree_root(t, size, req->root);
	if (from > 0 && from < size && sg_merkle_consistency_proof(tree_get,
	    t, from, size, req->proof, SG_MERKLE_MAX_PROOF,
	    &req->nproof) != 0)
		abort();
	ckpt_encode(w, req);
	free(req);
}

/* The checkpoint text the signer must have signed. */
static int
ckpt_verifies(EVP_PKEY *logpub, const char *origin, uint64_t size,
    const uint8_t root[SG_HASH_LEN], const uint8_t *sig)
{
	struct sg_checkpoint cp;
	char *text = NULL;
	int ok;

	memset(&cp, 0, sizeof(cp));
	snprintf(cp.origin, sizeof(cp.origin), "%s", origin);
	cp.size = size;
	memcpy(cp.root, root, SG_HASH_LEN);
	if (logpub == NULL || sg_checkpoint_format(&cp, &text) != 0)
		return 0;
	ok = sg_verify(logpub, SG_SIG_EDDSA, SG_DIGEST_NONE,
	    (const uint8_t *)text, strlen(text), sig, SG_ED25519_SIG) == 0;
	free(text);
	return ok;
}

struct ckpt_ctx {
	struct forge *f;
	struct sg_signer_client *sc;
	EVP_PKEY *logpub;
	uint8_t last_sig[SG_ED25519_SIG];
};

/*
 * Sends a CHECKPOINT (msg, len bytes) on the signer's raw channel.  want
 * 0: signed, and the signature verifies over the signer's checkpoint text
 * for (w->size, w->root) under the configured origin; otherwise refused
 * with that status, a word of the reason and no signature.  Returns the
 * reply for further checks (rep.status is -999 if none came).
 */
static struct sg_wire_reply
ckpt_expect(struct ckpt_ctx *cx, const char *name, const void *msg,
    size_t len, int want, const char *word)
{
	const struct sg_wire_checkpoint *w = msg;
	struct sg_wire_reply rep;
	const uint8_t *sig;
	char why[128];
	int ok;

	if (raw_exchange(cx->f, sg_signer_client_fd(cx->sc), msg, len, &rep,
	    why, sizeof(why), WAIT_MS) != 0) {
		result(0, "%s: %s", name, why);
		rep.status = -999;
		return rep;
	}
	sig = cx->f->rbuf + offsetof(struct sg_wire_reply, sig);
	if (want == 0) {
		ok = rep.status == 0 && rep.sig_len == SG_ED25519_SIG &&
		    len == sizeof(*w) && ckpt_verifies(cx->logpub,
		    cx->f->cfg->log_origin, w->size, w->root, sig) &&
		    rep.log_recorded && rep.log_size == w->size &&
		    memcmp(rep.log_root, w->root, SG_HASH_LEN) == 0;
		if (ok)
			memcpy(cx->last_sig, sig, SG_ED25519_SIG);
		result(ok, "%s: %s (%s%s%s)", name, ok ? "signed, over the "
		    "signer's own checkpoint text, and recorded" :
		    "NOT signed as it should be", errname(rep.status),
		    rep.err[0] ? ": " : "", rep.err);
		return rep;
	}
	ok = rep.status == want && rep.sig_len == 0 && rep.cms_len == 0 &&
	    (word == NULL || strstr(rep.err, word) != NULL);
	result(ok, "%s: %s (%s%s%s)", name, ok ? "refused" : "NOT refused as "
	    "it should be", errname(rep.status), rep.err[0] ? ": " : "",
	    rep.err);
	return rep;
}

/* The record file: mode 0600 in a 0700 directory, holding exactly the
 * checkpoint text of (size, root). */
static void
ckpt_record_is(struct forge *f, const char *dir, uint64_t size,
    const uint8_t root[SG_HASH_LEN], const char *name)
{
	struct sg_checkpoint cp;
	struct stat ds, fs;
	char path[256], *want = NULL, *got = NULL;
	size_t len = 0;
	int ok;

	memset(&cp, 0, sizeof(cp));
	snprintf(cp.origin, sizeof(cp.origin), "%s", f->cfg->log_origin);
	cp.size = size;
	memcpy(cp.root, root, SG_HASH_LEN);
	snprintf(path, sizeof(path), "%s/checkpoint", dir);
	ok = sg_checkpoint_format(&cp, &want) == 0 &&
	    sg_read_file(path, 4096, &got, &len) == 0 &&
	    strcmp(want, got) == 0 && stat(dir, &ds) == 0 &&
	    stat(path, &fs) == 0 && (ds.st_mode & 07777) == 0700 &&
	    (fs.st_mode & 07777) == 0600;
	result(ok, "%s: the record holds the checkpoint of %llu entries "
	    "(file 0600, directory 0700)", name, (unsigned long long)size);
	free(want);
	free(got);
}

struct race {
	struct sg_signer_client *sc;
	struct sg_witness_request req;
	struct sg_witness_reply rep;
	int r;
};

static void *
race_main(void *arg)
{
	struct race *ra = arg;

	ra->r = sg_signer_client_checkpoint(ra->sc, &ra->req, &ra->rep);
	return NULL;
}

static void
race_req(struct race *ra, struct tree *t, uint64_t from, uint64_t size)
{
	memset(&ra->req, 0, sizeof(ra->req));
	ra->req.size = size;
	ra->req.old_size = from;
	tree_root(t, size, ra->req.root);
	if (sg_merkle_consistency_proof(tree_get, t, from, size,
	    ra->req.proof, SG_MERKLE_MAX_PROOF, &ra->req.nproof) != 0)
		abort();
}

/*
 * Two extensions of the same record that fork from each other, sent at
 * once: over two channels of one signer, or to two signer processes that
 * share the directory.  Exactly one may be signed, and the other must be
 * refused as a fork.
 */
static void
ckpt_races(struct forge *f, struct sg_signer_client *a,
    struct sg_signer_client *b, struct tree *base, uint64_t *size,
    const char *how)
{
	struct race ra[2];
	pthread_t th[2];
	char name[32];
	int round, i, signed_n, bad = 0;

	for (round = 0; round < 4 && *size + 2 <= TREE_MAX; round++) {
		struct tree *alt;
		snprintf(name, sizeof(name), "alt%s%d", how, round);
		alt = tree_fork(base, (size_t)*size, name);
		ra[0].sc = a;
		ra[1].sc = b;
		race_req(&ra[0], base, *size, *size + 2);
		race_req(&ra[1], alt, *size, *size + 2);
		for (i = 0; i < 2; i++)
			if (pthread_create(&th[i], NULL, race_main,
			    &ra[i]) != 0)
				abort();
		for (i = 0; i < 2; i++)
			pthread_join(th[i], NULL);
		signed_n = (ra[0].r == 0) + (ra[1].r == 0);
		if (signed_n != 1 || (ra[0].r != 0 && ra[0].r !=
		    SG_ERR_VERIFY && ra[0].r != SG_ERR_CONFLICT) ||
		    (ra[1].r != 0 && ra[1].r != SG_ERR_VERIFY &&
		    ra[1].r != SG_ERR_CONFLICT))
			bad++;
		/* Go on from whichever won, in the base tree's terms. */
		if (ra[1].r == 0) {
			/* The alternative won: make it the base from now. */
			memcpy(base, alt, sizeof(*base));
		}
		*size += 2;
		free(alt);
	}
	result(bad == 0, "%s: of two forking extensions sent at once, exactly "
	    "one is signed, %d times (%d wrong)", how, round, bad);
}

/* A signer on its own record directory, for the checkpoint cases. */
static int
ckpt_spawn(struct forge *f, const char *dir, struct sg_signer_client **ret)
{
	return spawn_signer(f->cfg, f->policy, f->cfg->policy_path, dir, ret);
}

static void
checkpoint_forgeries(struct forge *f)
{
	struct ckpt_ctx cx;
	struct sg_wire_checkpoint *w, *w2;
	struct sg_wire_text wt;
	struct sg_wire_reply rep;
	struct sg_signer_client *other = NULL;
	struct tree *A, *B, *C;
	uint8_t root[SG_HASH_LEN], sig8[SG_ED25519_SIG];
	char dir[160], cp[256], err[256];
	uint64_t size;
	int i, r;

	memset(&cx, 0, sizeof(cx));
	cx.f = f;
	snprintf(dir, sizeof(dir), "%s/ckpt", f->tmp);
	if ((w = calloc(1, sizeof(*w))) == NULL ||
	    (w2 = calloc(1, sizeof(*w2))) == NULL)
		abort();
	/* A: the log; B: another log; C: A's first 8 entries, then its own. */
	A = tree_make("A");
	B = tree_make("B");
	C = tree_fork(A, 8, "C");
	if ((r = ckpt_spawn(f, dir, &cx.sc)) != 0) {
		result(0, "checkpoints: a signer on a new record directory: %s",
		    sg_strerror(r));
		goto out;
	}
	if (sg_signer_client_key_public(cx.sc, SG_SIGNER_LOG_KEY, &cx.logpub,
	    NULL, NULL) != 0)
		cx.logpub = NULL;

	/* Text is not signable: the old message, a checkpoint text, bytes. */
	snprintf(cp, sizeof(cp), "%s\n5\n%s\n", f->cfg->log_origin,
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
	wire_text(&wt, SG_WIRE_CHECKPOINT, cp, strlen(cp));
	ckpt_expect(&cx, "a formatted checkpoint text in a text-shaped "
	    "CHECKPOINT (the old message)", &wt, sizeof(wt), SG_ERR_INVALID,
	    "malformed checkpoint");
	wire_text(&wt, SG_WIRE_CHECKPOINT, "hello\n", 6);
	ckpt_expect(&cx, "arbitrary text in a text-shaped CHECKPOINT", &wt,
	    sizeof(wt), SG_ERR_INVALID, "malformed checkpoint");
	wire_ckpt(w, A, 5, 0, 0);
	w->h.len = sizeof(*w) - 1;
	ckpt_expect(&cx, "a CHECKPOINT one byte short", w, sizeof(*w) - 1,
	    SG_ERR_INVALID, "malformed checkpoint");
	w->h.len = sizeof(*w) + 1;
	{
		uint8_t *big = calloc(1, sizeof(*w) + 1);
		if (big == NULL)
			abort();
		memcpy(big, w, sizeof(*w));
		ckpt_expect(&cx, "a CHECKPOINT one byte long", big,
		    sizeof(*w) + 1, SG_ERR_INVALID, "malformed checkpoint");
		free(big);
	}
	wire_ckpt(w, A, 5, 0, 0);
	w->nproof = SG_MERKLE_MAX_PROOF + 1;
	ckpt_expect(&cx, "nproof past the proof array", w, sizeof(*w),
	    SG_ERR_INVALID, "malformed checkpoint");
	w->nproof = 0;
	w->size = (uint64_t)INT64_MAX + 1;
	ckpt_expect(&cx, "a size past 2^63 - 1", w, sizeof(*w),
	    SG_ERR_INVALID, "malformed");
	wire_ckpt(w, A, 0, 0, 0);
	memset(w->root, 0x5a, SG_HASH_LEN);
	ckpt_expect(&cx, "the empty tree with another root", w, sizeof(*w),
	    SG_ERR_VERIFY, "fork");

	/* Trust on first use: the first tree becomes the record. */
	wire_ckpt(w, A, 5, 0, 0);
	ckpt_expect(&cx, "first use: the tree of 5 entries", w, sizeof(*w), 0,
	    NULL);
	tree_root(A, 5, root);
	ckpt_record_is(f, dir, 5, root, "first use");
	{
		uint8_t *sig = f->rbuf + offsetof(struct sg_wire_reply, sig);
		char other_origin[300];
		snprintf(other_origin, sizeof(other_origin), "%s.other",
		    f->cfg->log_origin);
		result(!ckpt_verifies(cx.logpub, other_origin, 5, root, sig),
		    "the signature does not verify for another origin: the "
		    "origin is the signer's");
	}

	/* Bytes now: a checkpoint text laid over the tree fields, random
	 * bodies.  None may come back signed. */
	memset(w, 0, sizeof(*w));
	sg_wire_hdr_init(&w->h, SG_WIRE_CHECKPOINT, sizeof(*w));
	memcpy((uint8_t *)w + sizeof(w->h), cp, strlen(cp));
	rep = ckpt_expect(&cx, "a checkpoint text laid over the tree fields",
	    w, sizeof(*w), SG_ERR_INVALID, NULL);
	for (i = 0; i < 8; i++) {
		char name[64];
		RAND_bytes((uint8_t *)w + sizeof(w->h), (int)(sizeof(*w) -
		    sizeof(w->h)));
		w->nproof %= SG_MERKLE_MAX_PROOF + 1;
		if (i % 2)
			w->size %= 1000;
		snprintf(name, sizeof(name), "random tree fields (%d)", i + 1);
		if (raw_exchange(f, sg_signer_client_fd(cx.sc), w, sizeof(*w),
		    &rep, err, sizeof(err), WAIT_MS) != 0)
			result(0, "%s: %s", name, err);
		else
			result(rep.status != 0 && rep.sig_len == 0, "%s: "
			    "refused (%s: %s)", name, errname(rep.status),
			    rep.err);
	}
	ckpt_record_is(f, dir, 5, root, "after the bytes");

	/* Forks and rollbacks of the recorded tree. */
	wire_ckpt(w, B, 5, 0, 5);
	ckpt_expect(&cx, "another root at the recorded size (fork)", w,
	    sizeof(*w), SG_ERR_VERIFY, "fork");
	wire_ckpt(w, A, 4, 0, 5);
	ckpt_expect(&cx, "a smaller tree of the same log (rollback)", w,
	    sizeof(*w), SG_ERR_VERIFY, "rollback");
	wire_ckpt(w, A, 0, 0, 0);
	ckpt_expect(&cx, "the empty tree (rollback)", w, sizeof(*w),
	    SG_ERR_VERIFY, "rollback");
	wire_ckpt(w, A, 5, 0, 5);
	wire_ckpt(w2, A, 8, 5, 5);
	memcpy(w->proof, w2->proof, sizeof(w->proof));
	w->nproof = w2->nproof;
	ckpt_expect(&cx, "the recorded tree with a proof attached", w,
	    sizeof(*w), SG_ERR_INVALID, "no proof");
	wire_ckpt(w, A, 8, 0, 5);
	ckpt_expect(&cx, "a larger tree without a proof", w, sizeof(*w),
	    SG_ERR_VERIFY, "fork");
	wire_ckpt(w, A, 8, 5, 5);
	w->proof[0][7] ^= 0x10;
	ckpt_expect(&cx, "a larger tree with one bit of its proof flipped", w,
	    sizeof(*w), SG_ERR_VERIFY, "fork");
	wire_ckpt(w, A, 8, 5, 5);
	w->nproof--;
	ckpt_expect(&cx, "a larger tree with its proof truncated", w,
	    sizeof(*w), SG_ERR_VERIFY, "fork");
	wire_ckpt(w, A, 8, 5, 5);
	memcpy(w->proof[w->nproof], w->root, SG_HASH_LEN);
	w->nproof++;
	ckpt_expect(&cx, "a larger tree with a hash added to its proof", w,
	    sizeof(*w), SG_ERR_VERIFY, "fork");
	wire_ckpt(w, B, 8, 5, 5);
	ckpt_expect(&cx, "another log's tree with its own valid proof", w,
	    sizeof(*w), SG_ERR_VERIFY, "fork");
	wire_ckpt(w, A, 8, 5, 5);
	tree_root(B, 8, w->root);
	ckpt_expect(&cx, "this log's proof for another log's root", w,
	    sizeof(*w), SG_ERR_VERIFY, "fork");
	wire_ckpt(w, A, 8, 4, 4);
	rep = ckpt_expect(&cx, "a valid proof from a size that is not the "
	    "record's", w, sizeof(*w), SG_ERR_CONFLICT, "must start at 5");
	result(rep.log_recorded && rep.log_size == 5 &&
	    memcmp(rep.log_root, root, SG_HASH_LEN) == 0, "... and the reply "
	    "tells the record (5 entries, its root)");
	ckpt_record_is(f, dir, 5, root, "after the forks");

	/* A correct extension, then the same tree again. */
	wire_ckpt(w, A, 8, 5, 5);
	ckpt_expect(&cx, "a correct extension from 5 to 8 entries", w,
	    sizeof(*w), 0, NULL);
	memcpy(sig8, cx.last_sig, sizeof(sig8));
	tree_root(A, 8, root);
	ckpt_record_is(f, dir, 8, root, "after the extension");
	wire_ckpt(w, A, 8, 0, 0);
	ckpt_expect(&cx, "the recorded tree again (a lost checkpoint)", w,
	    sizeof(*w), 0, NULL);
	result(memcmp(sig8, cx.last_sig, sizeof(sig8)) == 0, "... signed "
	    "again byte for byte (Ed25519 is deterministic)");

	/* Two futures of one prefix: the first signed wins for good. */
	wire_ckpt(w, C, 10, 8, 8);
	ckpt_expect(&cx, "another future of the same 8 entries, first to come",
	    w, sizeof(*w), 0, NULL);
	wire_ckpt(w, A, 10, 8, 8);
	ckpt_expect(&cx, "the other future at the same size (fork)", w,
	    sizeof(*w), SG_ERR_VERIFY, "fork");
	wire_ckpt(w, A, 12, 10, 10);
	ckpt_expect(&cx, "the other future, larger, proof from its own 10 "
	    "(fork)", w, sizeof(*w), SG_ERR_VERIFY, "fork");
	wire_ckpt(w, A, 12, 8, 8);
	ckpt_expect(&cx, "the other future, proof from the shared 8 (stale)",
	    w, sizeof(*w), SG_ERR_CONFLICT, "must start at 10");

	/* The record outlives the process. */
	sg_signer_client_free(cx.sc);
	cx.sc = NULL;
	if ((r = ckpt_spawn(f, dir, &cx.sc)) != 0) {
		result(0, "checkpoints: the signer again on its record: %s",
		    sg_strerror(r));
		goto out;
	}
	if (sg_signer_client_key_public(cx.sc, SG_SIGNER_LOG_KEY, &cx.logpub,
	    NULL, NULL) != 0)
		cx.logpub = NULL;
	wire_ckpt(w, C, 9, 0, 10);
	ckpt_expect(&cx, "after a restart: a smaller tree (rollback)", w,
	    sizeof(*w), SG_ERR_VERIFY, "rollback");
	wire_ckpt(w, A, 10, 0, 10);
	ckpt_expect(&cx, "after a restart: the other future (fork)", w,
	    sizeof(*w), SG_ERR_VERIFY, "fork");
	wire_ckpt(w, C, 10, 0, 10);
	ckpt_expect(&cx, "after a restart: the recorded tree", w, sizeof(*w),
	    0, NULL);

	/* Races: one signer, two channels; two signers, one record. */
	size = 10;
	memcpy(A, C, sizeof(*A));
	ckpt_races(f, cx.sc, cx.sc, A, &size, "one signer");
	if ((r = ckpt_spawn(f, dir, &other)) != 0)
		result(0, "checkpoints: a second signer on the same record: %s",
		    sg_strerror(r));
	else
		ckpt_races(f, cx.sc, other, A, &size, "two signers");
	sg_signer_client_free(other);
	other = NULL;
	tree_root(A, size, root);
	ckpt_record_is(f, dir, size, root, "after the races");

	/* Another log origin on this record: the signer does not start. */
	{
		char *saved = f->cfg->log_origin, o2[300];
		snprintf(o2, sizeof(o2), "%s.other", saved);
		f->cfg->log_origin = o2;
		r = ckpt_spawn(f, dir, &other);
		f->cfg->log_origin = saved;
		result(r != 0, "a signer configured for another log origin does "
		    "not start on this record (%s)", sg_strerror(r));
		sg_signer_client_free(other);
	}
	/*
	 * Nor on a record directory others may write.  Started as root,
	 * signgated gives the directory to the signer's user with mode 0700
	 * before it forks; here the directory is given over, then opened to
	 * all, and the signer is spawned without that step.
	 */
	{
		char wdir[200];
		snprintf(wdir, sizeof(wdir), "%s/open", f->tmp);
		err[0] = '\0';
		if (mkdir(wdir, 0700) == 0 &&
		    sg_privdrop_prepare_dir("signer_state_dir", wdir,
		    SG_PRIV_SIGNER, err, sizeof(err)) == 0 &&
		    chmod(wdir, 0777) == 0) {
			other = NULL;
			r = spawn_signer_ex(f->cfg, f->policy,
			    f->cfg->policy_path, wdir, NULL, 0, &other, err,
			    sizeof(err));
			result(r != 0 && strstr(err, "mode") != NULL, "a "
			    "signer does not start on a record directory of "
			    "mode 0777 (%s: %s)", sg_strerror(r), err);
			sg_signer_client_free(other);
		} else
			result(0, "%s: %s %s", wdir, strerror(errno), err);
	}
out:
	sg_signer_client_free(cx.sc);
	free(A);
	free(B);
	free(C);
	free(w);
	free(w2);
}

/*
 * --log: the same attacks on a daemon's own record (its signer state
 * directory), against the tree in its store, read here.  The daemon must
 * be stopped or idle; the record must end as it began, so that the daemon
 * goes on afterwards.
 */
struct store_tree {
	sqlite3 *db;
	sqlite3_stmt *get;
};

static int
store_get(void *ctx, unsigned level, uint64_t index, uint8_t out[SG_HASH_LEN])
{
	struct store_tree *st = ctx;
	int rc;

	sqlite3_reset(st->get);
	sqlite3_bind_int(st->get, 1, (int)level);
	sqlite3_bind_int64(st->get, 2, (sqlite3_int64)index);
	if ((rc = sqlite3_step(st->get)) != SQLITE_ROW)
		return rc == SQLITE_DONE ? SG_ERR_NOT_FOUND : SG_ERR_IO;
	if (sqlite3_column_bytes(st->get, 0) != SG_HASH_LEN)
		return SG_ERR_INTERNAL;
	memcpy(out, sqlite3_column_blob(st->get, 0), SG_HASH_LEN);
	return 0;
}

static int
daemon_log(struct forge *f)
{
	struct store_tree st = { NULL, NULL };
	struct ckpt_ctx cx;
	struct sg_wire_checkpoint *w;
	struct sg_witness_request *req;
	struct sg_wire_text wt;
	sqlite3_stmt *q = NULL;
	uint8_t root[SG_HASH_LEN], prev[SG_HASH_LEN];
	uint64_t size = 0;
	char *path, cp[256];
	int r;

	memset(&cx, 0, sizeof(cx));
	cx.f = f;
	if ((w = calloc(1, sizeof(*w))) == NULL ||
	    (req = calloc(1, sizeof(*req))) == NULL ||
	    (path = sg_path_join(f->cfg->state_dir, "signgate.db")) == NULL)
		abort();
	if (sqlite3_open_v2(path, &st.db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK || sqlite3_prepare_v2(st.db, "SELECT COALESCE(MAX(idx) "
	    "+ 1, 0) FROM log_entries", -1, &q, NULL) != SQLITE_OK ||
	    sqlite3_step(q) != SQLITE_ROW || sqlite3_prepare_v2(st.db,
	    "SELECT hash FROM log_nodes WHERE level = ?1 AND idx = ?2", -1,
	    &st.get, NULL) != SQLITE_OK) {
		result(0, "the daemon's store %s: %s", path,
		    st.db ? sqlite3_errmsg(st.db) : "cannot open");
		goto out;
	}
	size = (uint64_t)sqlite3_column_int64(q, 0);
	if (size < 2 || sg_merkle_root(store_get, &st, size, root) != 0 ||
	    sg_merkle_root(store_get, &st, size - 1, prev) != 0) {
		result(0, "the daemon's log (%llu entries) cannot be read",
		    (unsigned long long)size);
		goto out;
	}
	ckpt_record_is(f, f->cfg->signer_state_dir, size, root, "the daemon's "
	    "record is its store's tree");
	if ((r = ckpt_spawn(f, f->cfg->signer_state_dir, &cx.sc)) != 0) {
		result(0, "a signer on the daemon's record: %s",
		    sg_strerror(r));
		goto out;
	}
	if (sg_signer_client_key_public(cx.sc, SG_SIGNER_LOG_KEY, &cx.logpub,
	    NULL, NULL) != 0)
		cx.logpub = NULL;

	snprintf(cp, sizeof(cp), "%s\n%llu\n%s\n", f->cfg->log_origin,
	    (unsigned long long)size + 1,
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
	wire_text(&wt, SG_WIRE_CHECKPOINT, cp, strlen(cp));
	ckpt_expect(&cx, "daemon log: a checkpoint text one entry ahead", &wt,
	    sizeof(wt), SG_ERR_INVALID, "malformed checkpoint");
	req->size = size;
	memcpy(req->root, root, SG_HASH_LEN);
	req->root[0] ^= 1;
	ckpt_encode(w, req);
	ckpt_expect(&cx, "daemon log: another root at its size (fork)", w,
	    sizeof(*w), SG_ERR_VERIFY, "fork");
	req->size = size - 1;
	memcpy(req->root, prev, SG_HASH_LEN);
	ckpt_encode(w, req);
	ckpt_expect(&cx, "daemon log: its own tree one entry shorter "
	    "(rollback)", w, sizeof(*w), SG_ERR_VERIFY, "rollback");
	req->size = size + 1;
	req->old_size = size;
	memcpy(req->root, root, SG_HASH_LEN);
	req->root[31] ^= 0x80;
	memcpy(req->proof[0], root, SG_HASH_LEN);
	req->nproof = 1;
	ckpt_encode(w, req);
	ckpt_expect(&cx, "daemon log: one entry more, with a made-up proof", w,
	    sizeof(*w), SG_ERR_VERIFY, "fork");
	req->size = size;
	req->old_size = size - 1;
	memcpy(req->root, root, SG_HASH_LEN);
	if (sg_merkle_consistency_proof(store_get, &st, size - 1, size,
	    req->proof, SG_MERKLE_MAX_PROOF, &req->nproof) != 0)
		abort();
	ckpt_encode(w, req);
	ckpt_expect(&cx, "daemon log: its own tree with a proof from one "
	    "entry less", w, sizeof(*w), SG_ERR_INVALID, "no proof");
	memset(req->proof, 0, sizeof(req->proof));
	req->nproof = 0;
	req->old_size = size;
	ckpt_encode(w, req);
	ckpt_expect(&cx, "daemon log: its own tree, as recorded (control)",
	    w, sizeof(*w), 0, NULL);
	ckpt_record_is(f, f->cfg->signer_state_dir, size, root, "the daemon's "
	    "record after the attacks");
out:
	sg_signer_client_free(cx.sc);
	sqlite3_finalize(q);
	sqlite3_finalize(st.get);
	sqlite3_close(st.db);
	free(path);
	free(req);
	free(w);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Rules of the policy beyond the quorum. */

enum variant { VARIANT_RELEASE_RAW_ONLY, VARIANT_HSM_ELSEWHERE,
	VARIANT_RELEASE_BATCHES };

/*
 * The policy file with one rule changed: key release allows only raw, or
 * every HSM of the inventory stands in DE, or key release allows releases
 * of up to 4 artifacts and grants of up to 2 signatures (whatever the
 * file said of them before).  Line-based: the dev policy's
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
		else if (strncmp(p, "end\n", 4) == 0) {
			if (v == VARIANT_RELEASE_BATCHES && in_release) {
				o += sprintf(o, "    allow-releases 4\n"
				    "    allow-grants 2 1h\n");
				changed++;
			}
			in_release = in_hsm = 0;
		}
		for (field = p; field < nl && (*field == ' ' ||
		    *field == '\t'); field++)
			;
		if (v == VARIANT_RELEASE_BATCHES && in_release &&
		    field > p && (strncmp(field, "allow-", 6) == 0 ||
		    strncmp(field, "require-grant ", 14) == 0))
			continue;
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
	    (r = spawn_signer(f->cfg, g->policy, path, f->hsmdir,
	    &g->sc)) != 0)
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
	char dir[64], why[512];
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
	if (scratch(dir, sizeof(dir)) != 0) {
		result(0, "policy rules: no scratch directory");
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
	(void)sg_fx_rm_tree(dir);
}


/* ------------------------------------------------------------------ */
/* Releases and grants: SIGN_BATCH through the client. */

/* A release's or grant's statement on key release (count artifacts or
 * signatures), valid in every other respect. */
static char *
kind_stmt(struct forge *f, enum sg_kind kind, uint64_t count,
    const char *root_hex, size_t *ret_len)
{
	struct sg_statement st;
	uint8_t d[32];

	random_digest(d);
	stmt_init(f, &st, "release", d, "raw");
	st.kind = kind;
	st.digest_alg[0] = '\0';
	st.digest_hex[0] = '\0';
	st.count = count;
	if (kind == SG_KIND_RELEASE)
		snprintf(st.manifest_root, sizeof(st.manifest_root), "%s",
		    root_hex);
	else
		snprintf(st.pattern, sizeof(st.pattern), "fw-*.bin");
	return stmt_text(&st, ret_len);
}

/* A line for name with digest d (raw). */
static void
forge_line(const char *name, const uint8_t d[32], char *out, size_t *len)
{
	struct sg_artifact_line a;

	memset(&a, 0, sizeof(a));
	a.digest_alg = SG_DIGEST_SHA256;
	memcpy(a.digest, d, 32);
	a.digest_len = 32;
	a.format = SG_FORMAT_RAW;
	snprintf(a.name, sizeof(a.name), "%s", name);
	if (sg_artifact_line_build(&a, out, SG_ARTIFACT_LINE_MAX + 1,
	    len) != 0)
		abort();
}

/* Item i of a batch answer: signed over d with key release. */
static int
item_signed(struct forge *f, const struct sg_batch_result *r,
    const uint8_t d[32])
{
	const struct sg_policy_key *pk = sg_policy_key(f->policy, "release");

	return pk != NULL && r->status == 0 && r->sig_len > 0 &&
	    r->cms == NULL && verify_with(f, "release",
	    pk->scheme == SG_SIG_EDDSA ? SG_DIGEST_NONE : SG_DIGEST_SHA256, d,
	    32, r->sig, r->sig_len) == 0;
}

/* Sends items under stmt with the release quorum (or alice alone). */
static int
batch_via(struct forge *f, const char *stmt, size_t len, int quorum,
    const struct sg_batch_item *items, size_t n, struct sg_batch_result *res,
    char *why, size_t whylen)
{
	struct sg_sign_evidence ev;
	struct envs e;
	int r;

	memset(&e, 0, sizeof(e));
	env_add(f, &e, stmt, len, 1, ALICE);
	if (quorum) {
		env_add(f, &e, stmt, len, 1, BOB);
		env_add(f, &e, stmt, len, 1, DAVE);
	}
	memset(&ev, 0, sizeof(ev));
	ev.statement = stmt;
	ev.statement_len = len;
	ev.envelopes = (const char *const *)e.json;
	ev.envelope_lens = e.len;
	ev.n = e.n;
	ev.format = SG_FORMAT_RAW;
	r = sg_signer_client_sign_batch(f->sc, "release", &ev, items, n, res,
	    why, whylen);
	envs_clear(&e);
	return r;
}

static void
grant_item_at(uint64_t pos, const char *name, const uint8_t d[32],
    char *line, struct sg_batch_item *it)
{
	memset(it, 0, sizeof(*it));
	forge_line(name, d, line, &it->line_len);
	it->line = line;
	it->position = pos;
}

/* A grant of 2: a front asking for a third signature, or a second digest
 * for a slot, is refused; the slots themselves sign, once. */
static void
grant_attacks(struct forge *g)
{
	static char lines[4][SG_ARTIFACT_LINE_MAX + 1];
	struct sg_batch_item it[4];
	struct sg_batch_result *res, *again;
	uint8_t d[4][32];
	char why[SG_SIGNER_ERR_MAX], *stmt;
	size_t len, i;
	int r;

	if ((res = calloc(2 * SG_SIGNER_BATCH_MAX, sizeof(*res))) == NULL)
		abort();
	again = res + SG_SIGNER_BATCH_MAX;
	for (i = 0; i < 4; i++)
		random_digest(d[i]);
	stmt = kind_stmt(g, SG_KIND_GRANT, 2, NULL, &len);
	grant_item_at(1, "fw-1.bin", d[0], lines[0], &it[0]);
	grant_item_at(2, "fw-2.bin", d[1], lines[1], &it[1]);
	grant_item_at(3, "fw-3.bin", d[2], lines[2], &it[2]);
	grant_item_at(2, "other.bin", d[3], lines[3], &it[3]);
	r = batch_via(g, stmt, len, 0, it, 2, res, why, sizeof(why));
	result(r != 0 && res[0].sig_len == 0, "a grant batch with alice "
	    "alone: refused (%s: %s)", errname(r), why);
	r = batch_via(g, stmt, len, 1, it, 3, res, why, sizeof(why));
	result(r == 0 && item_signed(g, &res[0], d[0]) &&
	    item_signed(g, &res[1], d[1]), "control: grant slots 1 and 2 "
	    "sign (%s: %s)", errname(r), why);
	result(r == 0 && res[2].status == SG_ERR_VERIFY &&
	    res[2].sig_len == 0, "a third signature under a grant of 2: "
	    "refused (%s: %s)", errname(res[2].status), why);
	r = batch_via(g, stmt, len, 1, it, 1, again, why, sizeof(why));
	result(r == 0 && again[0].sig_len == res[0].sig_len &&
	    memcmp(again[0].sig, res[0].sig, res[0].sig_len) == 0,
	    "grant slot 1 asked again: the same bytes");
	sg_batch_results_clear(again, SG_SIGNER_BATCH_MAX);
	grant_item_at(1, "fw-1.bin", d[3], lines[2], &it[2]);
	r = batch_via(g, stmt, len, 1, &it[2], 1, again, why, sizeof(why));
	result(r == 0 && again[0].status == SG_ERR_CONFLICT &&
	    again[0].sig_len == 0, "grant slot 1 for another digest: refused "
	    "(%s: %s)", errname(again[0].status), why);
	sg_batch_results_clear(again, SG_SIGNER_BATCH_MAX);
	r = batch_via(g, stmt, len, 1, &it[3], 1, again, why, sizeof(why));
	result(r == 0 && again[0].status != 0 && again[0].sig_len == 0,
	    "a name outside the grant's pattern: refused (%s: %s)",
	    errname(again[0].status), why);
	sg_batch_results_clear(res, 2 * SG_SIGNER_BATCH_MAX);
	free(res);
	free(stmt);
}

/* A release of 3: an item out of its manifest (another path, a flipped
 * byte) is refused while the others sign. */
static void
release_attacks(struct forge *g)
{
	static char lines[3][SG_ARTIFACT_LINE_MAX + 1], bad[SG_ARTIFACT_LINE_MAX + 1];
	static uint8_t paths[3][SG_MANIFEST_PATH_MAX][SG_HASH_LEN];
	const char *lp[3];
	struct sg_manifest_tree t;
	struct sg_batch_item it[3];
	struct sg_batch_result *res;
	uint8_t d[3][32], root[SG_HASH_LEN];
	char why[SG_SIGNER_ERR_MAX], name[32], root_hex[SG_SHA256_HEX_SIZE];
	char *stmt;
	size_t len, lens[3], i, np;
	int r;

	if ((res = calloc(SG_SIGNER_BATCH_MAX, sizeof(*res))) == NULL)
		abort();
	for (i = 0; i < 3; i++) {
		random_digest(d[i]);
		snprintf(name, sizeof(name), "fw-%zu.bin", i);
		forge_line(name, d[i], lines[i], &lens[i]);
		lp[i] = lines[i];
	}
	if (sg_manifest_tree_init(&t, lp, lens, 3) != 0 ||
	    sg_manifest_tree_root(&t, root) != 0)
		abort();
	sg_hex_encode(root, SG_HASH_LEN, root_hex);
	stmt = kind_stmt(g, SG_KIND_RELEASE, 3, root_hex, &len);
	for (i = 0; i < 3; i++) {
		memset(&it[i], 0, sizeof(it[i]));
		/* Item 1 carries item 2's path. */
		if (sg_manifest_tree_path(&t, i == 1 ? 2 : i, paths[i],
		    SG_MANIFEST_PATH_MAX, &np) != 0)
			abort();
		it[i].position = i;
		it[i].line = lines[i];
		it[i].line_len = lens[i];
		it[i].path = (const uint8_t (*)[SG_HASH_LEN])paths[i];
		it[i].npath = np;
	}
	memcpy(bad, lines[2], lens[2] + 1);
	bad[10] ^= 0x01;
	it[2].line = bad;
	r = batch_via(g, stmt, len, 1, it, 3, res, why, sizeof(why));
	result(r == 0 && item_signed(g, &res[0], d[0]), "control: release "
	    "artifact 0 signs (%s: %s)", errname(r), why);
	result(r == 0 && res[1].status == SG_ERR_VERIFY &&
	    res[1].sig_len == 0, "a release artifact with another's path: "
	    "refused (%s)", errname(res[1].status));
	result(r == 0 && res[2].status == SG_ERR_VERIFY &&
	    res[2].sig_len == 0, "a release artifact with a flipped byte: "
	    "refused (%s)", errname(res[2].status));
	sg_batch_results_clear(res, SG_SIGNER_BATCH_MAX);
	free(res);
	free(stmt);
	sg_manifest_tree_free(&t);
}

static void
batch_rules(struct forge *f)
{
	char dir[64];
	struct forge g;
	int r;

	if (scratch(dir, sizeof(dir)) != 0) {
		result(0, "batches: no scratch directory");
		return;
	}
	if ((r = variant_open(f, VARIANT_RELEASE_BATCHES, dir, &g)) != 0)
		result(0, "batches: a signer on a policy with releases and "
		    "grants: %s", sg_strerror(r));
	else {
		grant_attacks(&g);
		release_attacks(&g);
	}
	variant_close(&g);
	(void)sg_fx_rm_tree(dir);
}

/* ------------------------------------------------------------------ */
/* Revocation: the signer's newest policy decides who still counts. */

/*
 * The policy with carol revoked (an auditor without approval key, in no
 * group) and version raised; with bad_cert, nightly's certificate is
 * release's chain instead.  Line-based, on the dev policy's layout.
 */
static int
revoked_text(const char *in, size_t len, int bad_cert, char **ret,
    size_t *ret_len)
{
	const char *p = in, *end = in + len, *nl, *field;
	char *out, *o;
	int in_carol = 0, in_nightly = 0, skip = 0, changed = 0;

	if ((out = malloc(len + 1024)) == NULL)
		return SG_ERR_NOMEM;
	o = out;
	for (; p < end; p = nl) {
		nl = memchr(p, '\n', (size_t)(end - p));
		nl = nl != NULL ? nl + 1 : end;
		for (field = p; field < nl && (*field == ' ' ||
		    *field == '\t'); field++)
			;
		if (strncmp(p, "principal carol\n", 16) == 0)
			in_carol = 1;
		else if (strncmp(p, "key nightly\n", 12) == 0)
			in_nightly = 1;
		else if (strncmp(p, "end\n", 4) == 0)
			in_carol = in_nightly = 0;
		if (skip) {
			if (strncmp(field, "-----END", 8) == 0)
				skip = 0;
			continue;
		}
		if (strncmp(p, "version ", 8) == 0) {
			o += sprintf(o, "version %d\n", bad_cert ? 3 : 2);
			changed++;
			continue;
		}
		if (in_carol && strncmp(field, "roles ", 6) == 0) {
			o += sprintf(o, "    roles auditor\n");
			changed++;
			continue;
		}
		if (in_carol && strncmp(field, "approval-key", 12) == 0) {
			skip = 1;
			continue;
		}
		if (strncmp(field, "members alice bob carol\n", 24) == 0) {
			o += sprintf(o, "    members alice bob\n");
			changed++;
			continue;
		}
		/* Grants need every security officer: two of them now. */
		if (strncmp(field, "require-grant security-officers 3\n",
		    34) == 0) {
			o += sprintf(o, "    require-grant security-officers 2\n");
			continue;
		}
		if (bad_cert && in_nightly &&
		    strncmp(field, "certificate ", 12) == 0) {
			const char *slash = memrchr(field, '/',
			    (size_t)(nl - field));
			if (slash == NULL)
				break;
			o += sprintf(o, "%.*s/release.chain.pem\n",
			    (int)(slash - p), p);
			changed++;
			continue;
		}
		memcpy(o, p, (size_t)(nl - p));
		o += nl - p;
	}
	*o = '\0';
	if (changed < (bad_cert ? 4 : 3)) {
		free(out);
		return SG_ERR_NOT_FOUND;
	}
	*ret = out;
	*ret_len = (size_t)(o - out);
	return 0;
}

/* Writes the revoked policy to path and tells the signer to reload it. */
static int
reload_revoked(struct forge *g, const char *path, int bad_cert, char *err,
    size_t errlen)
{
	struct sg_policy *np = NULL;
	char *text = NULL, *vtext = NULL;
	size_t len, vlen = 0;
	int r;

	err[0] = '\0';
	if ((r = sg_read_file(g->cfg->policy_path, SG_POLICY_MAX_SIZE, &text,
	    &len)) != 0 || (r = revoked_text(text, len, bad_cert, &vtext,
	    &vlen)) != 0 || (r = sg_write_file(path, vtext, vlen,
	    0644)) != 0 || (r = parse_policy_file(path, &np)) != 0)
		goto out;
	r = sg_signer_client_reload(g->sc, sg_policy_sha256_hex(np), err,
	    errlen);
out:
	sg_policy_free(np);
	free(text);
	free(vtext);
	return r;
}

/* firmware (2 security officers) on statement stmt with the given
 * approvals, signed through the client as a front would ask. */
static void
firmware_with(struct forge *g, const int *who, struct outcome *o,
    struct sg_statement *st, uint8_t d[32])
{
	struct envs e;
	char *stmt;
	size_t len;

	memset(&e, 0, sizeof(e));
	random_digest(d);
	stmt_init(g, st, "firmware", d, "raw");
	stmt = stmt_text(st, &len);
	for (; *who >= 0; who++)
		env_add(g, &e, stmt, len, 1, *who);
	sign_via(g, "firmware", SG_DIGEST_SHA256, d, 32, stmt, len, &e, "raw",
	    o);
	envs_clear(&e);
	free(stmt);
}

/*
 * A signer on a copy of the policy where carol is a security officer;
 * statements made under that version.  After a reload that revokes carol,
 * evidence holding her envelope is refused even though the statement's
 * own policy still lists her; the same request with two officers who are
 * still eligible is signed.  A reload whose certificate does not certify
 * the key is refused by the signer itself.
 */
static void
revocation(struct forge *f)
{
	static const int alice_carol[] = { ALICE, CAROL, -1 };
	static const int alice_bob[] = { ALICE, BOB, -1 };
	static const int alice_bob_carol[] = { ALICE, BOB, CAROL, -1 };
	char dir[64], err[SG_SIGNER_ERR_MAX];
	char *path = NULL, *text = NULL;
	struct forge g;
	struct sg_statement st;
	struct outcome o;
	uint8_t d[32];
	size_t len;
	int r;

	if (scratch(dir, sizeof(dir)) != 0) {
		result(0, "revocation: no scratch directory");
		return;
	}
	g = *f;
	g.policy = NULL;
	g.sc = NULL;
	if ((path = sg_path_join(dir, "policy.conf")) == NULL ||
	    sg_read_file(f->cfg->policy_path, SG_POLICY_MAX_SIZE, &text,
	    &len) != 0 || sg_write_file(path, text, len, 0644) != 0 ||
	    parse_policy_file(path, &g.policy) != 0 ||
	    spawn_signer(f->cfg, g.policy, path, f->hsmdir, &g.sc) != 0) {
		result(0, "revocation: a signer on a copy of the policy");
		goto out;
	}

	firmware_with(&g, alice_carol, &o, &st, d);
	result(o.r == 0 && o.rep.sig_len > 0, "control: before the reload, "
	    "firmware with alice+carol is signed (%s %s)", errname(o.r),
	    o.err);
	outcome_clear(&o);

	r = reload_revoked(&g, path, 0, err, sizeof(err));
	result(r == 0, "the signer reloads the policy that revokes carol "
	    "(%s %s)", errname(r), err);

	/* Statements still name version 1 (g.policy), as a request made
	 * before the reload does. */
	firmware_with(&g, alice_carol, &o, &st, d);
	expect_refused("after the reload: firmware (version-1 statement) "
	    "with revoked carol's envelope", &o, SG_ERR_VERIFY,
	    "carol may no longer approve key firmware");
	firmware_with(&g, alice_bob_carol, &o, &st, d);
	expect_refused("after the reload: a quorum without her plus her "
	    "envelope", &o, SG_ERR_VERIFY, "may no longer approve");
	firmware_with(&g, alice_bob, &o, &st, d);
	result(o.r == 0 && o.rep.sig_len > 0 && verify_with(&g, "firmware",
	    SG_DIGEST_SHA256, d, 32, o.rep.sig, o.rep.sig_len) == 0,
	    "control: after the reload, the version-1 request with "
	    "alice+bob is signed (%s %s)", errname(o.r), o.err);
	outcome_clear(&o);

	r = reload_revoked(&g, path, 1, err, sizeof(err));
	result(r != 0 && strstr(err, "not the HSM key's") != NULL,
	    "a reload giving nightly release's certificate is refused by "
	    "the signer (%s: %s)", errname(r), err);
	firmware_with(&g, alice_bob, &o, &st, d);
	result(o.r == 0, "after the refused reload the signer still signs "
	    "(%s %s)", errname(o.r), o.err);
	outcome_clear(&o);
out:
	sg_signer_client_free(g.sc);
	sg_policy_free(g.policy);
	if (path != NULL)
		unlink(path);
	free(path);
	free(text);
	(void)sg_fx_rm_tree(dir);
}

/* After every forgery the channel still serves honest requests. */
static void
still_works(struct forge *f)
{
	static const int release_quorum[] = { ALICE, BOB, DAVE, -1 };
	struct sg_wire_name wn;
	struct sg_wire_reply rep;
	char why[512];
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
	{
		struct sg_witness_request *req = calloc(1, sizeof(*req));
		struct sg_witness_reply wr;
		ok = req != NULL;
		if (ok) {
			req->nproof = SG_MERKLE_MAX_PROOF + 1;
			ok = sg_signer_client_checkpoint(f->sc, req, &wr) ==
			    SG_ERR_INVALID;
		}
		free(req);
		result(ok, "the client's checkpoint call refuses an "
		    "over-long proof");
	}
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

/* ------------------------------------------------------------------ */
/* One signature per request and format. */

/* How many records the signer keeps for a request id (its own database,
 * read here only to count). */
static int
records_for(struct forge *f, const char *request)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	char *path;
	int n = -1;

	if ((path = sg_path_join(f->hsmdir, SG_SIGREC_FILE)) == NULL)
		return -1;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) ==
	    SQLITE_OK && sqlite3_busy_timeout(db, 5000) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM signatures WHERE "
	    "request = ?1", -1, &s, NULL) == SQLITE_OK) {
		sqlite3_bind_text(s, 1, request, -1, SQLITE_STATIC);
		if (sqlite3_step(s) == SQLITE_ROW)
			n = sqlite3_column_int(s, 0);
	}
	sqlite3_finalize(s);
	sqlite3_close(db);
	free(path);
	return n;
}

static int
same_bytes(const struct outcome *a, const struct outcome *b)
{
	return a->r == 0 && b->r == 0 && a->rep.sig_len > 0 &&
	    a->rep.sig_len == b->rep.sig_len &&
	    memcmp(a->rep.sig, b->rep.sig, a->rep.sig_len) == 0 &&
	    a->cms_len == b->cms_len && (a->cms_len == 0 ||
	    memcmp(a->cms, b->cms, a->cms_len) == 0);
}

/* A raw SIGN on the channel; 1 when its answer is exactly `first`. */
static int
raw_same(struct forge *f, const uint8_t *msg, size_t mlen,
    const struct outcome *first, char *why, size_t whylen)
{
	struct sg_wire_reply rep;
	const uint8_t *extra = f->rbuf + sizeof(rep);

	if (raw_exchange(f, sg_signer_client_fd(f->sc), msg, mlen, &rep, why,
	    whylen, WAIT_MS) != 0)
		return 0;
	snprintf(why, whylen, "%s%s%s", errname(rep.status),
	    rep.err[0] ? ": " : "", rep.err);
	return rep.status == 0 && rep.sig_len == first->rep.sig_len &&
	    memcmp(f->rbuf + offsetof(struct sg_wire_reply, sig),
	    first->rep.sig, rep.sig_len) == 0 &&
	    rep.cms_len == first->cms_len && (rep.cms_len == 0 ||
	    memcmp(extra, first->cms, rep.cms_len) == 0);
}

struct racer {
	struct forge *f;
	const char *key, *stmt, *format;
	size_t len;
	const uint8_t *digest;
	const struct envs *e;
	struct outcome o;
	pthread_t th;
};

static void *
racer_main(void *arg)
{
	struct racer *ra = arg;

	sign_via(ra->f, ra->key, SG_DIGEST_SHA256, ra->digest, 32, ra->stmt,
	    ra->len, ra->e, ra->format, &ra->o);
	return NULL;
}

#define REPEATS 10
#define RACERS 8

/* One request, asked for again and again, answered with one signature. */
static void
once_per_request(struct forge *f, const char *key, const char *format,
    const int *who)
{
	struct sg_statement st, st2;
	struct envs e, e2;
	struct outcome first, o, again;
	struct racer ra[RACERS];
	uint8_t d[32], *msg;
	size_t len, len2, mlen, i, started = 0;
	char *stmt, *stmt2, why[512];
	int ok, same;
	const int *w;

	memset(&e, 0, sizeof(e));
	memset(&e2, 0, sizeof(e2));
	random_digest(d);
	stmt_init(f, &st, key, d, format);
	stmt = stmt_text(&st, &len);
	for (w = who; w != NULL && *w >= 0; w++)
		env_add(f, &e, stmt, len, 1, *w);

	/* Several channels at once, for a request never signed before. */
	for (i = 0; i < RACERS; i++) {
		ra[i].f = f;
		ra[i].key = key;
		ra[i].stmt = stmt;
		ra[i].len = len;
		ra[i].format = format;
		ra[i].digest = d;
		ra[i].e = &e;
		if (pthread_create(&ra[i].th, NULL, racer_main, &ra[i]) != 0)
			break;
		started++;
	}
	for (i = 0; i < started; i++)
		pthread_join(ra[i].th, NULL);
	first = ra[0].o;
	ok = started == RACERS && first.r == 0;
	for (i = 1; ok && i < started; i++)
		ok = same_bytes(&first, &ra[i].o);
	result(ok, "%s %s: %d channels asking at once for a new request get "
	    "one and the same signature (%s)", key, format, RACERS,
	    first.err[0] ? first.err : errname(first.r));
	for (i = 1; i < started; i++)
		outcome_clear(&ra[i].o);
	ok = first.r == 0 && (strcmp(format, "cms") == 0 ?
	    sg_cms_verify_digest(first.cms, first.cms_len, SG_DIGEST_SHA256,
	    d, 32, f->ca_pem, f->ca_len) == 0 : verify_with(f, key,
	    SG_DIGEST_SHA256, d, 32, first.rep.sig, first.rep.sig_len) == 0);
	result(ok, "%s %s: that signature verifies", key, format);
	result(records_for(f, st.request) == 1, "%s %s: the signer recorded "
	    "exactly one signature for the request (%d)", key, format,
	    records_for(f, st.request));

	/* Again and again, through the client and the raw channel. */
	same = 0;
	for (i = 0; i < REPEATS; i++) {
		sign_via(f, key, SG_DIGEST_SHA256, d, 32, stmt, len, &e,
		    format, &again);
		same += same_bytes(&first, &again);
		outcome_clear(&again);
	}
	msg = wire_sign(key, SG_DIGEST_SHA256, d, 32, format, stmt, len, &e,
	    &mlen);
	for (i = 0; i < REPEATS; i++)
		same += raw_same(f, msg, mlen, &first, why, sizeof(why));
	free(msg);
	result(same == 2 * REPEATS, "%s %s: asked %d more times (client and "
	    "raw channel), the answer is byte for byte the first (%d of %d)",
	    key, format, 2 * REPEATS, same, 2 * REPEATS);
	result(records_for(f, st.request) == 1, "%s %s: still one record "
	    "for the request", key, format);

	/* Another statement under the same request id, fully approved. */
	st2 = st;
	random_digest(d);
	sg_hex_encode(d, 32, st2.digest_hex);
	stmt2 = stmt_text(&st2, &len2);
	for (w = who; w != NULL && *w >= 0; w++)
		env_add(f, &e2, stmt2, len2, 1, *w);
	sign_via(f, key, SG_DIGEST_SHA256, d, 32, stmt2, len2, &e2, format,
	    &o);
	expect_refused("the same request id with another digest (approved "
	    "by the quorum)", &o, SG_ERR_FORBIDDEN, "another statement");
	envs_clear(&e2);
	free(stmt2);

	/* The same request id in the other format (for a key with both). */
	if ((sg_policy_key(f->policy, key)->formats &
	    (SG_FORMAT_RAW | SG_FORMAT_CMS)) != (SG_FORMAT_RAW |
	    SG_FORMAT_CMS))
		goto done;
	st2 = st;
	snprintf(st2.format, sizeof(st2.format), "%s",
	    strcmp(format, "cms") == 0 ? "raw" : "cms");
	stmt2 = stmt_text(&st2, &len2);
	for (w = who; w != NULL && *w >= 0; w++)
		env_add(f, &e2, stmt2, len2, 1, *w);
	if (sg_hex_decode(st.digest_hex, 64, d, sizeof(d), &len2) != 0)
		abort();
	sign_via(f, key, SG_DIGEST_SHA256, d, 32, stmt2, strlen(stmt2), &e2,
	    st2.format, &o);
	expect_refused("the same request id in the other format", &o,
	    SG_ERR_FORBIDDEN, "another statement");
	envs_clear(&e2);
	free(stmt2);
done:
	result(records_for(f, st.request) == 1, "%s %s: after the refusals, "
	    "still one record", key, format);
	outcome_clear(&first);
	envs_clear(&e);
	free(stmt);
}

static void
one_signature(struct forge *f)
{
	static const int release_quorum[] = { ALICE, BOB, DAVE, -1 };
	struct sg_statement st;
	struct envs e;
	struct outcome a, b;
	uint8_t d[32];
	char *stmt;
	size_t len;
	int i, differ = 0;

	/* The control: ECDSA is randomised, so two requests for the same
	 * digest get different signatures; equal bytes below mean "the
	 * record", not "a deterministic HSM". */
	memset(&e, 0, sizeof(e));
	random_digest(d);
	for (i = 0; i < 2; i++) {
		stmt_init(f, &st, "nightly", d, "raw");
		stmt = stmt_text(&st, &len);
		sign_via(f, "nightly", SG_DIGEST_SHA256, d, 32, stmt, len, &e,
		    "raw", i == 0 ? &a : &b);
		free(stmt);
	}
	differ = a.r == 0 && b.r == 0 && !same_bytes(&a, &b);
	result(differ, "control: two requests for one digest get two "
	    "different ECDSA signatures");
	outcome_clear(&a);
	outcome_clear(&b);

	once_per_request(f, "release", "raw", release_quorum);
	once_per_request(f, "release", "cms", release_quorum);
	once_per_request(f, "nightly", "raw", NULL);
}

/* ------------------------------------------------------------------ */
/* Keys that would reach the log key, at start and at reload. */

/* The log key's CKA_ID as scripts/devenv.sh makes it. */
static const char *
log_id_hex(void)
{
	const char *s = getenv("SG_FORGE_LOG_KEY_ID");

	return s != NULL && *s != '\0' ? s : "10";
}

enum log_variant { LOG_BY_LABEL, LOG_BY_ID, LOG_BY_URI, LOG_BY_URI_ID };
static const char *const log_variant_words[] = {
	"by its label", "by its CKA_ID", "by an RFC 7512 URI",
	"by a URI with its id",
};

/* A policy text with `block` added and the version raised by one. */
static int
policy_plus(const char *text, size_t len, const char *block, char **ret,
    size_t *ret_len)
{
	const char *v = strstr(text, "\nversion ");
	unsigned long long ver;
	char *out, *end;
	int n;

	if (v == NULL)
		return SG_ERR_INVALID;
	v += 9;
	ver = strtoull(v, &end, 10);
	if ((out = malloc(len + strlen(block) + 32)) == NULL)
		return SG_ERR_NOMEM;
	n = sprintf(out, "%.*s%llu%.*s%s", (int)(v - text), text, ver + 1,
	    (int)(len - (size_t)(end - text)), end, block);
	*ret = out;
	*ret_len = (size_t)n;
	return 0;
}

static void
log_block(const struct forge *f, enum log_variant v, const char *name,
    char *out, size_t cap)
{
	char where[256];

	switch (v) {
	case LOG_BY_LABEL:
		snprintf(where, sizeof(where), "token %s\n    object %s",
		    f->cfg->log_token, f->cfg->log_key);
		break;
	case LOG_BY_ID:
		snprintf(where, sizeof(where), "token %s\n    id %s",
		    f->cfg->log_token, log_id_hex());
		break;
	case LOG_BY_URI:
		snprintf(where, sizeof(where), "uri pkcs11:token=%s;object=%s",
		    f->cfg->log_token, f->cfg->log_key);
		break;
	case LOG_BY_URI_ID:
		snprintf(where, sizeof(where), "uri pkcs11:token=%s;id=%%%s",
		    f->cfg->log_token, log_id_hex());
		break;
	}
	snprintf(out, cap, "\nkey %s\n    %s\n    algorithm ed25519\n"
	    "    formats raw\n    requesters ci\n    countries CH\nend\n",
	    name, where);
}

static int
write_policy(const char *path, const char *text, size_t len,
    struct sg_policy **ret)
{
	int r;

	if ((r = sg_write_file(path, text, len, 0644)) != 0)
		return r;
	return ret != NULL ? parse_policy_file(path, ret) : 0;
}

/* Moves release to nightly's object in the specs the front hands over. */
static void
tweak_move_release(struct sg_signer_key_spec *ks, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(ks[i].name, "release") == 0)
			snprintf(ks[i].label, sizeof(ks[i].label), "nightly");
}

static void
start_rules(struct forge *f, const char *dir, const char *text, size_t len)
{
	struct sg_signer_client *sc = NULL;
	struct sg_policy *p = NULL;
	char block[512], err[512], *path, *vtext = NULL;
	size_t vlen;
	int v, r;

	if ((path = sg_path_join(dir, "start.conf")) == NULL)
		abort();
	for (v = LOG_BY_LABEL; v <= LOG_BY_URI_ID; v++) {
		log_block(f, (enum log_variant)v, "x", block, sizeof(block));
		p = NULL;
		if (policy_plus(text, len, block, &vtext, &vlen) != 0 ||
		    write_policy(path, vtext, vlen, &p) != 0) {
			result(0, "start: a policy with key x %s: cannot be "
			    "written or parsed", log_variant_words[v]);
			free(vtext);
			continue;
		}
		sc = NULL;
		r = spawn_signer_ex(f->cfg, p, path, f->hsmdir, NULL, 1, &sc,
		    err, sizeof(err));
		result(r != 0 && sc == NULL && strstr(err, "key 'x'") !=
		    NULL && strstr(err, "transparency log") != NULL,
		    "start: the signer process refuses key x naming the log "
		    "key %s (%s)", log_variant_words[v], r != 0 ? err :
		    "STARTED");
		sg_signer_client_free(sc);
		sg_policy_free(p);
		free(vtext);
	}

	/* The front's key list must agree with the policy file. */
	p = NULL;
	if (write_policy(path, text, len, &p) == 0) {
		sc = NULL;
		r = spawn_signer_ex(f->cfg, p, path, f->hsmdir,
		    tweak_move_release, 1, &sc, err, sizeof(err));
		result(r != 0 && strstr(err, "key 'release'") != NULL &&
		    strstr(err, "not where the policy file") != NULL,
		    "start: a key list from the front that moves release is "
		    "refused (%s)", r != 0 ? err : "STARTED");
		sg_signer_client_free(sc);
	} else
		result(0, "start: the policy copy cannot be written");
	sg_policy_free(p);
	unlink(path);
	free(path);
}

static void
reload_expect(struct sg_signer_client *sc, const char *path,
    const char *vtext, size_t vlen, const char *name, const char *word1,
    const char *word2)
{
	char err[SG_SIGNER_ERR_MAX] = "", hex[SG_SHA256_HEX_SIZE];
	uint8_t sha[32];
	int r;

	if (sg_write_file(path, vtext, vlen, 0644) != 0) {
		result(0, "%s: cannot write the policy", name);
		return;
	}
	sg_sha256(vtext, vlen, sha);
	sg_hex_encode(sha, sizeof(sha), hex);
	r = sg_signer_client_reload(sc, hex, err, sizeof(err));
	if (word1 == NULL)
		result(r == 0, "%s: reloaded (%s)", name, r == 0 ? "ok" : err);
	else
		result(r != 0 && strstr(err, word1) != NULL &&
		    (word2 == NULL || strstr(err, word2) != NULL),
		    "%s: refused (%s)", name, r != 0 ? err : "RELOADED");
}

static void
reload_rules(struct forge *f, const char *dir, const char *text,
    size_t len)
{
	struct sg_signer_client *sc = NULL;
	struct sg_policy *p = NULL;
	char block[512], name[160], *path, *vtext = NULL, *moved;
	size_t vlen;
	int v;

	if ((path = sg_path_join(dir, "reload.conf")) == NULL)
		abort();
	if (write_policy(path, text, len, &p) != 0 ||
	    spawn_signer(f->cfg, p, path, f->hsmdir, &sc) != 0) {
		result(0, "reload: a signer on a copy of the policy");
		goto out;
	}
	for (v = LOG_BY_LABEL; v <= LOG_BY_URI_ID; v++) {
		log_block(f, (enum log_variant)v, "x", block, sizeof(block));
		if (policy_plus(text, len, block, &vtext, &vlen) != 0)
			abort();
		snprintf(name, sizeof(name), "reload: the signer process "
		    "refuses a new key x naming the log key %s",
		    log_variant_words[v]);
		reload_expect(sc, path, vtext, vlen, name, "key 'x'",
		    "transparency log");
		free(vtext);
	}
	/* Any new key, or a key moved: a restart checks keys in full. */
	snprintf(block, sizeof(block), "\nkey y\n    token %s\n    object "
	    "unrelated-ed25519\n    algorithm ed25519\n    formats raw\n"
	    "    requesters ci\n    countries CH\nend\n", f->cfg->log_token);
	if (policy_plus(text, len, block, &vtext, &vlen) != 0)
		abort();
	reload_expect(sc, path, vtext, vlen, "reload: a new key y (not the "
	    "log key)", "key 'y'", "restart");
	free(vtext);
	if (policy_plus(text, len, "", &vtext, &vlen) != 0 ||
	    (moved = strstr(vtext, "\nkey release\n")) == NULL ||
	    (moved = strstr(moved, "object release\n")) == NULL)
		abort();
	memcpy(moved, "object nightly\n", 15);   /* as long as before */
	reload_expect(sc, path, vtext, strlen(vtext), "reload: release moved "
	    "to another HSM object", "key 'release'", "location changed");
	free(vtext);
	/* The control: the same keys, a higher version. */
	if (policy_plus(text, len, "", &vtext, &vlen) != 0)
		abort();
	reload_expect(sc, path, vtext, vlen, "control: reload with the same "
	    "keys and a higher version", NULL, NULL);
	free(vtext);
out:
	sg_signer_client_free(sc);
	sg_policy_free(p);
	unlink(path);
	free(path);
}

static void
key_rules(struct forge *f)
{
	char dir[64], *text = NULL;
	size_t len;

	if (scratch(dir, sizeof(dir)) != 0) {
		result(0, "key rules: no scratch directory");
		return;
	}
	if (sg_read_file(f->cfg->policy_path, SG_POLICY_MAX_SIZE, &text,
	    &len) != 0) {
		result(0, "key rules: cannot read the policy");
		(void)sg_fx_rm_tree(dir);
		return;
	}
	start_rules(f, dir, text, len);
	reload_rules(f, dir, text, len);
	free(text);
	(void)sg_fx_rm_tree(dir);
}

/* ------------------------------------------------------------------ */
/* replay: a logged signature's public evidence, sent again. */

static int
replay_main(struct forge *f, const char *entry_path, unsigned count)
{
	static const int release_quorum[] = { ALICE, BOB, DAVE, -1 };
	struct sg_entry ent;
	struct sg_statement st;
	struct sg_wire_reply rep;
	struct envs e;
	struct outcome o;
	uint8_t d[32], *msg, cms_sha[32];
	size_t len, dlen, mlen, i;
	unsigned n, same = 0;
	char *text = NULL, *stmt, why[512];
	int r, ok;
	const int *w;

	memset(&e, 0, sizeof(e));
	memset(&ent, 0, sizeof(ent));
	if ((r = sg_read_file(entry_path, SG_ENTRY_MAX, &text, &len)) != 0 ||
	    (r = sg_entry_parse(text, len, &ent)) != 0 ||
	    ent.type != SG_ENTRY_SIGNATURE ||
	    sg_statement_parse(ent.statement, ent.statement_len, &st) != 0 ||
	    sg_hex_decode(st.digest_hex, strlen(st.digest_hex), d, sizeof(d),
	    &dlen) != 0) {
		result(0, "replay: %s is not a signature entry", entry_path);
		free(text);
		sg_entry_clear(&ent);
		return 1;
	}
	for (i = 0; i < ent.napprovals; i++)
		env_add_raw(&e, ent.approvals[i]);
	msg = wire_sign(st.key, sg_digest_from_name(st.digest_alg), d, dlen,
	    st.format, ent.statement, ent.statement_len, &e, &mlen);
	for (n = 0; n < count; n++) {
		if (raw_exchange(f, sg_signer_client_fd(f->sc), msg, mlen, &rep,
		    why, sizeof(why), WAIT_MS) != 0)
			break;
		ok = rep.status == 0 && rep.sig_len == ent.signature_len &&
		    memcmp(f->rbuf + offsetof(struct sg_wire_reply, sig),
		    ent.signature, ent.signature_len) == 0;
		if (ok && ent.has_cms) {
			sg_sha256(f->rbuf + sizeof(rep), rep.cms_len, cms_sha);
			ok = rep.cms_len > 0 && memcmp(cms_sha,
			    ent.cms_sha256, 32) == 0;
		} else if (ok)
			ok = rep.cms_len == 0;
		if (!ok && same == n)
			snprintf(why, sizeof(why), "%s%s%s, sig_len %u",
			    errname(rep.status), rep.err[0] ? ": " : "",
			    rep.err, rep.sig_len);
		same += ok;
	}
	free(msg);
	result(same == count, "replay: request %s (%s, %s): the logged "
	    "evidence sent %u times on the raw channel; %u answers are "
	    "byte for byte the logged signature%s%s", st.request, st.key,
	    st.format, count, same, same == count ? "" : "; first other: ",
	    same == count ? "" : why);

	/* Another digest under the same request id, approved afresh. */
	st.expires = (long long)time(NULL) + 600;
	random_digest(d);
	sg_hex_encode(d, 32, st.digest_hex);
	snprintf(st.digest_alg, sizeof(st.digest_alg), "sha256");
	stmt = stmt_text(&st, &len);
	envs_clear(&e);
	if (sg_policy_key(f->policy, st.key) != NULL &&
	    sg_policy_key(f->policy, st.key)->nterms > 0)
		for (w = release_quorum; *w >= 0; w++)
			env_add(f, &e, stmt, len, 1, *w);
	sign_via(f, st.key, SG_DIGEST_SHA256, d, 32, stmt, len, &e,
	    st.format, &o);
	expect_refused("replay: another statement claiming the same request "
	    "id, with a fresh quorum", &o, SG_ERR_FORBIDDEN,
	    "another statement");
	free(stmt);
	envs_clear(&e);
	sg_entry_clear(&ent);
	free(text);
	return 0;
}

/* ------------------------------------------------------------------ */
/* WebAuthn evidence: `signer_forge webauthn CONFIG DEVDIR KEYFILE`, with
 * a policy where carol approves with the credential of KEYFILE (private
 * key; KEYFILE.cred: id, RP ID, origin, as tests/tools/webauthn_sign
 * writes them). */

struct wa_cred {
	EVP_PKEY *key;
	char id[2048];
	char rp_id[256];
	char origin[320];
};

static int
wa_load(const char *keyfile, struct wa_cred *c)
{
	char path[4096];
	FILE *fp;
	int ok;

	memset(c, 0, sizeof(*c));
	snprintf(path, sizeof(path), "%s.cred", keyfile);
	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	ok = fscanf(fp, "%2047s %255s %319s", c->id, c->rp_id,
	    c->origin) == 3;
	fclose(fp);
	if (!ok || (c->key = sg_fx_read_key(keyfile)) == NULL)
		return -1;
	return 0;
}

enum wa_forgery { WA_HONEST, WA_TAMPER, WA_ORIGIN, WA_NO_UP, WA_OTHER_ID };

/* carol's envelope on stmt made with the security key, honest or broken
 * as asked. */
static void
wa_env_add(struct envs *e, const struct wa_cred *c, const char *stmt,
    size_t len, enum wa_forgery how)
{
	struct sg_fx_wa_opts fo;
	struct sg_fx_wa_assertion a;
	struct sg_envelope_webauthn w;
	uint8_t *body = NULL, *pae = NULL, hash[32], id[1024];
	size_t blen = 0, pae_len = 0, id_len = 0;
	char *json = NULL;

	if (e->n == MAX_ENV || sg_body_build(stmt, len, 1, &body, &blen) != 0 ||
	    sg_dsse_pae(SG_DSSE_TYPE, body, blen, &pae, &pae_len) != 0)
		abort();
	sg_sha256(pae, pae_len, hash);
	memset(&fo, 0, sizeof(fo));
	fo.rp_id = c->rp_id;
	fo.origin = how == WA_ORIGIN ? "https://evil.example" : c->origin;
	fo.flags = how == WA_NO_UP ? 0 : 0x01;
	/* A member no check reads: only the signature covers it. */
	fo.extra = ",\"note\":\"a\"";
	if (sg_fx_wa_sign(c->key, &fo, hash, sizeof(hash), &a) != 0 ||
	    sg_b64url_decode(c->id, strlen(c->id), id, sizeof(id),
	    &id_len) != 0)
		abort();
	if (how == WA_TAMPER)           /* the note's "a" */
		a.client_data[a.client_data_len - 3] ^= 0x01;
	if (how == WA_OTHER_ID)
		id[0] ^= 0x01;
	w.cred_id = id;
	w.cred_id_len = id_len;
	w.authdata = a.authdata;
	w.authdata_len = a.authdata_len;
	w.client_data = (uint8_t *)a.client_data;
	w.client_data_len = a.client_data_len;
	if (sg_envelope_build_webauthn(SG_DSSE_TYPE, body, blen, "carol",
	    a.sig, a.sig_len, &w, &json) != 0)
		abort();
	e->json[e->n] = json;
	e->len[e->n] = strlen(json);
	e->n++;
	sg_fx_wa_free(&a);
	free(body);
	free(pae);
}

/* release with alice + dave (key files) and carol's assertion. */
static void
wa_case(struct forge *f, const struct wa_cred *c, enum wa_forgery how,
    const char *name, int want, const char *word)
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
	stmt_init(f, &st, "release", d, "raw");
	stmt = stmt_text(&st, &len);
	env_add(f, &e, stmt, len, 1, ALICE);
	env_add(f, &e, stmt, len, 1, DAVE);
	wa_env_add(&e, c, stmt, len, how);
	sign_via(f, "release", SG_DIGEST_SHA256, d, 32, stmt, len, &e, "raw",
	    &o);
	if (want != 0)
		expect_refused(name, &o, want, word);
	else {
		ok = o.r == 0 && o.rep.sig_len > 0 && verify_with(f,
		    "release", SG_DIGEST_SHA256, d, 32, o.rep.sig,
		    o.rep.sig_len) == 0;
		result(ok, "%s: signed and verifies (%s (%s))", name,
		    errname(o.r), o.err);
		outcome_clear(&o);
	}
	envs_clear(&e);
	free(stmt);
}

static int
webauthn_main(struct forge *f, const char *keyfile)
{
	struct wa_cred c;

	if (wa_load(keyfile, &c) != 0) {
		result(0, "webauthn: cannot read the credential %s", keyfile);
		return SG_ERR_IO;
	}
	wa_case(f, &c, WA_HONEST, "control: release with alice+dave and "
	    "carol's security key", 0, NULL);
	wa_case(f, &c, WA_TAMPER, "webauthn: carol's client data changed "
	    "after signing", SG_ERR_VERIFY, "sig: the assertion's signature "
	    "does not verify");
	wa_case(f, &c, WA_ORIGIN, "webauthn: carol's assertion from another "
	    "origin", SG_ERR_VERIFY, "clientDataJSON.origin");
	wa_case(f, &c, WA_NO_UP, "webauthn: carol's assertion without user "
	    "presence", SG_ERR_VERIFY, "UP not set");
	wa_case(f, &c, WA_OTHER_ID, "webauthn: a credential id not registered "
	    "for carol", SG_ERR_VERIFY, "is not registered for carol");
	EVP_PKEY_free(c.key);
	return 0;
}

int
main(int argc, char **argv)
{
	struct forge f;
	int r;

	int log_mode = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(&f, 0, sizeof(f));
	if (argc >= 2 && strcmp(argv[1], "replay") == 0) {
		uint64_t count;

		f.daemon_record = 1;
		if (argc != 6 || sg_parse_u64(argv[5], 1, 10000, &count) != 0) {
			fprintf(stderr, "usage: signer_forge replay CONFIG "
			    "DEVDIR ENTRY COUNT\n");
			return 2;
		}
		if ((r = setup(&f, argv[2], argv[3])) == 0)
			r = replay_main(&f, argv[4], (unsigned)count);
		else
			result(0, "setup: %s", sg_strerror(r));
		teardown(&f);
		printf("%d passed, %d failed\n", npass, nfail);
		return nfail == 0 && r == 0 ? 0 : 1;
	}
	if (argc == 5 && strcmp(argv[1], "webauthn") == 0) {
		if ((r = setup(&f, argv[2], argv[3])) == 0)
			r = webauthn_main(&f, argv[4]);
		else
			result(0, "setup: %s", sg_strerror(r));
		teardown(&f);
		printf("%d passed, %d failed\n", npass, nfail);
		return nfail == 0 && r == 0 ? 0 : 1;
	}
	if (argc >= 2 && strcmp(argv[1], "--log") == 0) {
		log_mode = 1;
		argc--;
		argv++;
	}
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: signer_forge [--log] CONFIG [DEVDIR]\n"
		    "       signer_forge replay CONFIG DEVDIR ENTRY COUNT\n"
		    "       signer_forge webauthn CONFIG DEVDIR KEYFILE\n");
		return 2;
	}
	if ((r = setup(&f, argv[1], argc == 3 ? argv[2] : NULL)) != 0) {
		result(0, "setup: %s", sg_strerror(r));
		teardown(&f);
		printf("%d passed, %d failed\n", npass, nfail);
		return 1;
	}
	if (log_mode) {
		daemon_log(&f);
		teardown(&f);
		printf("%d passed, %d failed\n", npass, nfail);
		return nfail == 0 ? 0 : 1;
	}
	positive_controls(&f);
	one_signature(&f);
	key_rules(&f);
	forged_evidence(&f);
	raw_forgeries(&f);
	checkpoint_forgeries(&f);
	policy_rules(&f);
	batch_rules(&f);
	revocation(&f);
	still_works(&f);
	empty_message(&f);
	teardown(&f);
	printf("%d passed, %d failed\n", npass, nfail);
	return nfail == 0 ? 0 : 1;
}
