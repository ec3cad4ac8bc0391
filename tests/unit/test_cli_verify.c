/*
 * `signgate verify` on hand-made evidence: a log built here from entries
 * made with sg_entry_build(), its tree and proofs computed here by hand
 * (RFC 6962 with SHA-256, not with the code under test), a checkpoint
 * signed with an Ed25519 key made here, officers' approval envelopes and
 * an ECDSA signature over the artifact made with OpenSSL directly, and a
 * policy file with releases and grants allowed.
 *
 * The good cases (a release's artifact, a grant's signature, a single
 * request) must verify and say how the signature relates to what was
 * approved.  Then every attack must fail with exit 5 and the link that
 * broke: every single changed byte of the file, of the signature, of the
 * proof; every changed byte of the logged artifact line and of its
 * manifest path, logged and checkpointed anew (a log that records what
 * the officers did not approve); another position, another approved
 * entry, another release; bundles reordered, alone, truncated, or under
 * different checkpoints; too few approvals; a grant's name outside its
 * pattern, a sequence number past its count, a signature after its end.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "sg_cli.h"
#include "sg_crypto.h"
#include "sg_dsse.h"
#include "sg_entry.h"
#include "sg_err.h"
#include "sg_note.h"
#include "sg_policy.h"
#include "sg_util.h"
#include "sg_test.h"
#include "sg_fixture.h"

#define ORIGIN "log.test.example"
#define RID "00112233445566778899aabbccddeeff"
#define OTHER_ID "0123456789abcdef0123456789abcdef"
#define T0 1800000000LL
#define EXPIRES (T0 + 86400)
#define NART 3
#define GRANT_COUNT 50
#define PATTERN "app-*.bin"
#define SERIAL "0011223344556677"

static EVP_PKEY *officers[3], *signkey, *logkey;
static const char *const officer_names[3] = { "alice", "bob", "carol" };
static char dir[128];

/* ---- RFC 6962 by hand ---- */

static void
leaf_hash(const void *p, size_t n, uint8_t out[32])
{
	uint8_t *b = malloc(n + 1);

	if (b == NULL)
		abort();
	b[0] = 0;
	memcpy(b + 1, p, n);
	SHA256(b, n + 1, out);
	free(b);
}

static void
node_hash(const uint8_t l[32], const uint8_t r[32], uint8_t out[32])
{
	uint8_t b[65];

	b[0] = 1;
	memcpy(b + 1, l, 32);
	memcpy(b + 33, r, 32);
	SHA256(b, sizeof(b), out);
}

/* The largest power of two below n (n > 1). */
static size_t
split_point(size_t n)
{
	size_t k = 1;

	while (k << 1 < n)
		k <<= 1;
	return k;
}

static void
mth(uint8_t (*leaves)[32], size_t n, uint8_t out[32])
{
	uint8_t l[32], r[32];
	size_t k;

	if (n == 1) {
		memcpy(out, leaves[0], 32);
		return;
	}
	k = split_point(n);
	mth(leaves, k, l);
	mth(leaves + k, n - k, r);
	node_hash(l, r, out);
}

/* RFC 6962 PATH(m, D[n]), sibling first. */
static size_t
path(uint8_t (*leaves)[32], size_t n, size_t m, uint8_t (*out)[32])
{
	size_t k, len;

	if (n == 1)
		return 0;
	k = split_point(n);
	if (m < k) {
		len = path(leaves, k, m, out);
		mth(leaves + k, n - k, out[len]);
	} else {
		len = path(leaves + k, n - k, m - k, out);
		mth(leaves, k, out[len]);
	}
	return len + 1;
}

/* ---- keys and files ---- */

static void
keys_init(void)
{
	size_t i;

	if (signkey != NULL)
		return;
	for (i = 0; i < 3; i++)
		officers[i] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	signkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	logkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (signkey == NULL || logkey == NULL || officers[2] == NULL)
		abort();
}

static char *
xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	return s;
}

static char *
policy_text(void)
{
	char *o[3], *t;
	size_t i;

	for (i = 0; i < 3; i++) {
		char *pem = sg_fx_pubkey_pem(officers[i]);

		o[i] = xasprintf("principal %s\n    roles officer\n"
		    "    client-cn %s\n    approval-key\n%send\n",
		    officer_names[i], officer_names[i], pem);
		free(pem);
	}
	t = xasprintf("policy verify-test\nversion 7\n\n"
	    "principal ci\n    roles requester\n    client-cn ci\nend\n"
	    "%s%s%s"
	    "group security-officers\n    members alice bob carol\nend\n"
	    "hsm " SERIAL "\n    site Zurich\n    country CH\nend\n"
	    "key release\n    token t\n    object release\n"
	    "    algorithm ecdsa-p256\n    formats raw\n"
	    "    requesters ci\n"
	    "    require security-officers 2\n"
	    "    veto no\n    lifetime 24h\n    countries CH\n"
	    "    allow-releases 100\n"
	    "    allow-grants 100 7d\n"
	    "end\n", o[0], o[1], o[2]);
	for (i = 0; i < 3; i++)
		free(o[i]);
	return t;
}

/* ---- the evidence ---- */

/* What a test may change in otherwise good evidence. */
struct params {
	enum sg_kind kind;
	size_t target;               /* release: position; grant: sequence */
	const char *name;            /* grant: the artifact's name */
	const char *line;            /* logged line instead of the true one */
	int path_flip;               /* byte of the path to flip, or -1 */
	long long position;          /* logged position, -1: the true one */
	int approved_delta;          /* added to the logged approved index */
	const char *sig_request;     /* the signature entry's request id */
	size_t napprovals;           /* 2 is the quorum */
	long long sig_time;          /* the signature entry's time */
	int reorder;                 /* the approved bundle first */
	int single;                  /* the signature's bundle alone */
	int other_checkpoint;        /* bundle 2 under a larger tree */
	int stmt_kind;               /* the statement's kind, -1: kind's */
};

static void
params_default(struct params *p, enum sg_kind kind)
{
	memset(p, 0, sizeof(*p));
	p->kind = kind;
	p->target = kind == SG_KIND_GRANT ? 3 : 1;
	p->name = "app-2.bin";
	p->path_flip = -1;
	p->position = -1;
	p->sig_request = RID;
	p->napprovals = 2;
	p->sig_time = T0 + 100;
	p->stmt_kind = -1;
}

/* The files of one case. */
struct world {
	char *artifact;              /* path of the artifact file */
	char *sig;                   /* path of the raw signature */
	char *proof;
	char *policy;
	char *vkey;
	char manifest_root[SG_SHA256_HEX_SIZE];
	char line[SG_ARTIFACT_LINE_MAX + 1];
};

static void
world_free(struct world *w)
{
	free(w->artifact);
	free(w->sig);
	free(w->proof);
	free(w->policy);
	free(w->vkey);
	memset(w, 0, sizeof(*w));
}

static void
digest_of(const char *content, uint8_t out[32])
{
	SHA256((const unsigned char *)content, strlen(content), out);
}

/* The artifacts' contents; the target's is what is signed. */
static char *
content(size_t i)
{
	return xasprintf("artifact number %zu\n", i);
}

static char *
statement(const struct params *p, const struct sg_policy *pol,
    const char *root)
{
	struct sg_statement s;
	char *text = NULL;
	size_t len;

	memset(&s, 0, sizeof(s));
	s.kind = p->stmt_kind >= 0 ? (enum sg_kind)p->stmt_kind : p->kind;
	snprintf(s.request, sizeof(s.request), "%s", RID);
	snprintf(s.key, sizeof(s.key), "release");
	sg_fx_spki_hex(signkey, s.spki_sha256);
	snprintf(s.format, sizeof(s.format), "raw");
	snprintf(s.requester, sizeof(s.requester), "ci");
	snprintf(s.policy_name, sizeof(s.policy_name), "%s",
	    sg_policy_name(pol));
	s.policy_version = sg_policy_version(pol);
	snprintf(s.policy_sha256, sizeof(s.policy_sha256), "%s",
	    sg_policy_sha256_hex(pol));
	s.expires = EXPIRES;
	if (s.kind == SG_KIND_RELEASE) {
		s.count = NART;
		snprintf(s.manifest_root, sizeof(s.manifest_root), "%s", root);
	} else if (s.kind == SG_KIND_GRANT) {
		s.count = GRANT_COUNT;
		snprintf(s.pattern, sizeof(s.pattern), PATTERN);
	} else {
		uint8_t d[32];
		char *c = content(p->target);

		digest_of(c, d);
		free(c);
		snprintf(s.digest_alg, sizeof(s.digest_alg), "sha256");
		sg_hex_encode(d, 32, s.digest_hex);
	}
	if (sg_statement_build(&s, &text, &len) != 0)
		abort();
	return text;
}

static char *
envelope(const char *stmt, EVP_PKEY *k, const char *keyid)
{
	uint8_t *body = NULL, *pae = NULL, sig[256];
	size_t body_len, pae_len, sig_len = sizeof(sig);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	char *json = NULL;

	if (sg_body_build(stmt, strlen(stmt), 1, &body, &body_len) != 0 ||
	    sg_dsse_pae(SG_DSSE_TYPE, body, body_len, &pae, &pae_len) != 0 ||
	    EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k) != 1 ||
	    EVP_DigestSign(ctx, sig, &sig_len, pae, pae_len) != 1 ||
	    sg_envelope_build(SG_DSSE_TYPE, body, body_len, keyid, sig,
	    sig_len, &json) != 0)
		abort();
	EVP_MD_CTX_free(ctx);
	free(body);
	free(pae);
	return json;
}

/* ECDSA P-256 over a SHA-256 digest, DER. */
static size_t
sign_digest(const uint8_t d[32], uint8_t *sig, size_t cap)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(signkey, NULL);
	size_t len = cap;

	if (c == NULL || EVP_PKEY_sign_init(c) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) != 1 ||
	    EVP_PKEY_sign(c, sig, &len, d, 32) != 1)
		abort();
	EVP_PKEY_CTX_free(c);
	return len;
}

/* The artifact line of artifact i (by hand, not by the code under
 * test). */
static void
line_of(const struct params *p, size_t i, char *out, size_t cap)
{
	uint8_t d[32];
	char hex[65], *c = content(i), name[32];

	digest_of(c, d);
	free(c);
	sg_hex_encode(d, 32, hex);
	if (p->kind == SG_KIND_GRANT)
		snprintf(name, sizeof(name), "%s", p->name);
	else
		snprintf(name, sizeof(name), "app-%zu.bin", i + 1);
	snprintf(out, cap, "sha256:%s raw %s", hex, name);
}

/* A signed note over the checkpoint of (size, root). */
static char *
checkpoint_note(uint64_t size, const uint8_t root[32])
{
	uint8_t pub[32], sig[64];
	size_t plen = sizeof(pub), slen = sizeof(sig);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	char *b64 = sg_b64_encode(root, 32), *text, *line = NULL, *note;

	text = xasprintf("%s\n%llu\n%s\n", ORIGIN, (unsigned long long)size,
	    b64);
	if (EVP_PKEY_get_raw_public_key(logkey, pub, &plen) != 1 ||
	    EVP_DigestSignInit(ctx, NULL, NULL, NULL, logkey) != 1 ||
	    EVP_DigestSign(ctx, sig, &slen, (const uint8_t *)text,
	    strlen(text)) != 1 ||
	    sg_note_signature_line(ORIGIN, sg_note_key_id(ORIGIN, pub), sig,
	    &line) != 0)
		abort();
	note = xasprintf("%s\n%s", text, line);
	EVP_MD_CTX_free(ctx);
	free(b64);
	free(text);
	free(line);
	return note;
}

static char *
bundle_text(const char *entry, size_t elen, uint64_t index,
    uint8_t (*leaves)[32], size_t n, const char *note)
{
	struct sg_tlog_proof tp;
	char *out = NULL;

	memset(&tp, 0, sizeof(tp));
	tp.extra = (uint8_t *)(uintptr_t)entry;
	tp.extra_len = elen;
	tp.index = index;
	tp.nhashes = path(leaves, n, (size_t)index, tp.hashes);
	tp.note = (char *)(uintptr_t)note;
	tp.note_len = strlen(note);
	if (sg_tlog_proof_format(&tp, &out) != 0)
		abort();
	return out;
}

/* The manifest of the release: its lines' leaves, root and the target's
 * path. */
static void
manifest(const struct params *p, uint8_t path_out[][32], size_t *npath,
    char root_hex[SG_SHA256_HEX_SIZE])
{
	uint8_t leaves[NART][32], root[32];
	char l[SG_ARTIFACT_LINE_MAX + 1];
	size_t i;

	for (i = 0; i < NART; i++) {
		line_of(p, i, l, sizeof(l));
		leaf_hash(l, strlen(l), leaves[i]);
	}
	mth(leaves, NART, root);
	sg_hex_encode(root, 32, root_hex);
	*npath = path(leaves, NART, p->target, path_out);
}

/* The signature entry of the target (artifact-signature, or signature
 * for a single request). */
static int
sig_entry(const struct params *p, const char *stmt, char **envs,
    uint64_t approved_index, uint8_t mpath[][32], size_t npath,
    char **ret, size_t *ret_len, struct world *w)
{
	struct sg_entry e;
	uint8_t d[32], sig[128], *der = NULL;
	char *c = content(p->target);
	size_t i;
	int derlen, r;

	memset(&e, 0, sizeof(e));
	digest_of(c, d);
	free(c);
	e.time = p->sig_time;
	snprintf(e.request, sizeof(e.request), "%s", p->sig_request);
	if ((derlen = i2d_PUBKEY(signkey, &der)) <= 0)
		abort();
	e.public_key = der;
	e.public_key_len = (size_t)derlen;
	snprintf(e.algorithm, sizeof(e.algorithm), "ecdsa-p256");
	e.signature = sig;
	e.signature_len = sign_digest(d, sig, sizeof(sig));
	snprintf(e.hsm_serial, sizeof(e.hsm_serial), SERIAL);
	snprintf(e.hsm_country, sizeof(e.hsm_country), "CH");
	if (p->kind == SG_KIND_REQUEST) {
		e.type = SG_ENTRY_SIGNATURE;
		e.statement = (char *)(uintptr_t)stmt;
		e.statement_len = strlen(stmt);
		for (i = 0; i < p->napprovals; i++) {
			e.approvals[i] = envs[i];
			e.approval_lens[i] = strlen(envs[i]);
		}
		e.napprovals = p->napprovals;
	} else {
		e.type = SG_ENTRY_ARTIFACT_SIGNATURE;
		e.approved_index = approved_index + (uint64_t)p->approved_delta;
		e.position = p->position >= 0 ? (uint64_t)p->position :
		    p->target;
		e.line = p->line != NULL ? (char *)(uintptr_t)p->line :
		    w->line;
		e.line_len = strlen(e.line);
		memcpy(e.path, mpath, npath * 32);
		e.npath = npath;
		if (p->path_flip >= 0)
			((uint8_t *)e.path)[p->path_flip] ^= 0x01;
	}
	r = sg_entry_build(&e, ret, ret_len);
	OPENSSL_free(der);
	/* The signature as `sign` saves it. */
	if (r == 0 && sg_fx_write_bytes(w->sig, e.signature,
	    e.signature_len) != 0)
		abort();
	return r;
}

static char *
approved_entry(const char *stmt, char **envs, size_t n, size_t *ret_len)
{
	struct sg_entry e;
	char *out = NULL;
	size_t i;

	memset(&e, 0, sizeof(e));
	e.type = SG_ENTRY_APPROVED;
	e.time = T0 + 50;
	snprintf(e.request, sizeof(e.request), RID);
	e.statement = (char *)(uintptr_t)stmt;
	e.statement_len = strlen(stmt);
	for (i = 0; i < n; i++) {
		e.approvals[i] = envs[i];
		e.approval_lens[i] = strlen(envs[i]);
	}
	e.napprovals = n;
	if (sg_entry_build(&e, &out, ret_len) != 0)
		return NULL;
	return out;
}

/*
 * Builds the files of one case.  The log: filler, the approved entry (1),
 * filler, the signature entry (3), filler; 5 entries, or 6 for the "other
 * checkpoint".  Returns 0, or -1 when the entry cannot even be built (a
 * mutated line the entry grammar refuses).
 */
static int
build(const struct params *p, struct world *w)
{
	struct sg_policy *pol = NULL;
	uint8_t mpath[SG_MANIFEST_PATH_MAX][32], leaves[6][32], root[32];
	uint8_t root6[32];
	char *ptext, *stmt, *envs[3], *appr = NULL, *sige = NULL, *note,
	    *note6, *b1, *b2, *c, err[256], *fill[3];
	size_t npath = 0, alen = 0, slen = 0, i, nenv;
	int r = -1;

	memset(w, 0, sizeof(*w));
	ptext = policy_text();
	if (sg_policy_parse("verify.policy", ptext, strlen(ptext), &pol, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "policy: %s\n", err);
		abort();
	}
	w->policy = sg_fx_file(dir, "policy", ptext);
	w->sig = xasprintf("%s/app.sig", dir);
	c = content(p->target);
	w->artifact = sg_fx_file(dir, "app-2.bin", c);
	free(c);
	if (p->kind == SG_KIND_RELEASE || p->stmt_kind == SG_KIND_RELEASE)
		manifest(p, mpath, &npath, w->manifest_root);
	line_of(p, p->target, w->line, sizeof(w->line));
	stmt = statement(p, pol, w->manifest_root);
	nenv = p->napprovals;
	for (i = 0; i < nenv; i++)
		envs[i] = envelope(stmt, officers[i], officer_names[i]);
	if (p->kind != SG_KIND_REQUEST &&
	    (appr = approved_entry(stmt, envs, nenv, &alen)) == NULL)
		goto out;
	if (sig_entry(p, stmt, envs, 1, mpath, npath, &sige, &slen, w) != 0)
		goto out;
	for (i = 0; i < 3; i++)
		fill[i] = xasprintf("filler entry %zu", i);
	leaf_hash(fill[0], strlen(fill[0]), leaves[0]);
	if (appr != NULL)
		leaf_hash(appr, alen, leaves[1]);
	else
		leaf_hash(fill[1], strlen(fill[1]), leaves[1]);
	leaf_hash(fill[1], strlen(fill[1]), leaves[2]);
	leaf_hash(sige, slen, leaves[3]);
	leaf_hash(fill[2], strlen(fill[2]), leaves[4]);
	leaf_hash(fill[0], strlen(fill[0]), leaves[5]);
	mth(leaves, 5, root);
	mth(leaves, 6, root6);
	note = checkpoint_note(5, root);
	note6 = checkpoint_note(6, root6);
	b1 = bundle_text(sige, slen, 3, leaves, 5, note);
	if (appr == NULL)
		b2 = strdup("");
	else if (p->other_checkpoint)
		b2 = bundle_text(appr, alen, 1, leaves, 6, note6);
	else
		b2 = bundle_text(appr, alen, 1, leaves, 5, note);
	if (p->single)
		b2[0] = '\0';
	c = p->reorder ? xasprintf("%s%s", b2, b1) :
	    xasprintf("%s%s", b1, b2);
	w->proof = sg_fx_file(dir, "app.sig.proof", c);
	free(c);
	{
		uint8_t pub[32];
		size_t plen = sizeof(pub);
		char *vk = NULL;

		if (EVP_PKEY_get_raw_public_key(logkey, pub, &plen) != 1 ||
		    sg_note_vkey_format(ORIGIN, pub, &vk) != 0)
			abort();
		w->vkey = sg_fx_file(dir, "log.vkey", vk);
		free(vk);
	}
	free(b1);
	free(b2);
	free(note);
	free(note6);
	for (i = 0; i < 3; i++)
		free(fill[i]);
	r = 0;
out:
	for (i = 0; i < nenv; i++)
		free(envs[i]);
	free(stmt);
	free(appr);
	free(sige);
	free(ptext);
	sg_policy_free(pol);
	return r;
}

/* ---- running the command ---- */

static char out_text[16384], err_text[16384];

static void
slurp(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;

	if (f != NULL) {
		n = fread(buf, 1, cap - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
}

/* Runs `signgate verify` on the world's files (FILE, or the given
 * artifact), capturing stdout and stderr. */
static int
run_verify(const struct world *w, const char *artifact)
{
	char *argv[12], *o = xasprintf("%s/out", dir), *e;
	struct sg_cli_conf conf;
	int so, se, fo, fe, ex;

	e = xasprintf("%s/err", dir);
	argv[0] = "verify";
	argv[1] = "--key-file";
	argv[2] = w->vkey;
	argv[3] = "--policy";
	argv[4] = w->policy;
	argv[5] = "--proof";
	argv[6] = w->proof;
	argv[7] = "--signature";
	argv[8] = w->sig;
	argv[9] = (char *)(uintptr_t)(artifact != NULL ? artifact :
	    w->artifact);
	argv[10] = NULL;
	memset(&conf, 0, sizeof(conf));
	fflush(stdout);
	fflush(stderr);
	so = dup(1);
	se = dup(2);
	fo = open(o, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	fe = open(e, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (so < 0 || se < 0 || fo < 0 || fe < 0)
		abort();
	dup2(fo, 1);
	dup2(fe, 2);
	ex = sg_cli_cmd_verify(10, argv, &conf);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	close(fo);
	close(fe);
	slurp(o, out_text, sizeof(out_text));
	slurp(e, err_text, sizeof(err_text));
	free(o);
	free(e);
	return ex;
}

/* Expects exit 5 with "verify: <link>" on stderr (link NULL: any). */
static int
refused(int ex, const char *link, const char *what)
{
	char want[64];

	snprintf(want, sizeof(want), "verify: %s", link != NULL ? link : "");
	if (ex == SG_EXIT_VERIFY && strstr(err_text, want) != NULL)
		return 1;
	fprintf(stderr, "  %s: exit %d, want 5 and \"%s\"; stderr: %s", what,
	    ex, want, err_text);
	return 0;
}

static void
setup(void)
{
	keys_init();
	if (dir[0] == '\0' && sg_fx_tmpdir("cli-verify", dir,
	    sizeof(dir)) != 0)
		abort();
}

/* ---- good evidence ---- */

static void
test_release_ok(void)
{
	struct params p;
	struct world w;
	char want[SG_ARTIFACT_LINE_MAX + 64];

	setup();
	params_default(&p, SG_KIND_RELEASE);
	CHECK_EQ_INT(build(&p, &w), 0);
	CHECK_EQ_INT(run_verify(&w, NULL), 0);
	if (err_text[0] != '\0')
		fprintf(stderr, "  %s", err_text);
	snprintf(want, sizeof(want), "relation: artifact 2 of 3 (position 1) "
	    "of release " RID ", manifest sha256:%s\n", w.manifest_root);
	CHECK(strstr(out_text, want) != NULL);
	snprintf(want, sizeof(want), "artifact: %s\n", w.line);
	CHECK(strstr(out_text, want) != NULL);
	CHECK(strstr(out_text, "approvers: alice bob\n") != NULL);
	CHECK(strstr(out_text, "log: index 3, approved index 1, checkpoint "
	    ORIGIN " size 5") != NULL);
	CHECK(strstr(out_text, "release: " RID " requester ci manifest "
	    "sha256:") != NULL);
	/* Every other position of the manifest verifies too. */
	p.target = 0;
	world_free(&w);
	CHECK_EQ_INT(build(&p, &w), 0);
	CHECK_EQ_INT(run_verify(&w, NULL), 0);
	CHECK(strstr(out_text, "artifact 1 of 3 (position 0)") != NULL);
	p.target = 2;
	world_free(&w);
	CHECK_EQ_INT(build(&p, &w), 0);
	CHECK_EQ_INT(run_verify(&w, NULL), 0);
	CHECK(strstr(out_text, "artifact 3 of 3 (position 2)") != NULL);
	world_free(&w);
}

static void
test_grant_ok(void)
{
	struct params p;
	struct world w;

	setup();
	params_default(&p, SG_KIND_GRANT);
	CHECK_EQ_INT(build(&p, &w), 0);
	CHECK_EQ_INT(run_verify(&w, NULL), 0);
	if (err_text[0] != '\0')
		fprintf(stderr, "  %s", err_text);
	CHECK(strstr(out_text, "relation: signature 3 of 50 under grant " RID
	    ", for names matching " PATTERN ", until ") != NULL);
	CHECK(strstr(out_text, "grant: " RID " requester ci count 50 artifact "
	    PATTERN " until ") != NULL);
	world_free(&w);
}

/* The single-request path is unchanged: one bundle, a signature entry. */
static void
test_request_ok(void)
{
	struct params p;
	struct world w;

	setup();
	params_default(&p, SG_KIND_REQUEST);
	CHECK_EQ_INT(build(&p, &w), 0);
	CHECK_EQ_INT(run_verify(&w, NULL), 0);
	if (err_text[0] != '\0')
		fprintf(stderr, "  %s", err_text);
	CHECK(strstr(out_text, "request: " RID " requester ci\n") != NULL);
	CHECK(strstr(out_text, "relation:") == NULL);
	CHECK(strstr(out_text, "log: index 3, checkpoint") != NULL);
	world_free(&w);
}

/* ---- attacks ---- */

/* Every single changed byte of the file and of the signature. */
static void
test_file_and_signature_bytes(void)
{
	struct params p;
	struct world w;
	char *c, *path, *sig = NULL;
	size_t i, n, slen = 0;
	int bad = 0;

	setup();
	params_default(&p, SG_KIND_RELEASE);
	CHECK_EQ_INT(build(&p, &w), 0);
	c = content(p.target);
	n = strlen(c);
	path = xasprintf("%s/mutant.bin", dir);
	for (i = 0; i < n; i++) {
		c[i] ^= 0x01;
		if (sg_fx_write_bytes(path, c, n) != 0)
			abort();
		bad += !refused(run_verify(&w, path), "digest", "file byte");
		c[i] ^= 0x01;
	}
	CHECK_EQ_INT(bad, 0);
	if (sg_read_file(w.sig, 4096, &sig, &slen) != 0)
		abort();
	for (i = 0; i < slen; i++) {
		sig[i] ^= 0x01;
		if (sg_fx_write_bytes(w.sig, sig, slen) != 0)
			abort();
		bad += !refused(run_verify(&w, NULL), "signature",
		    "signature byte");
		sig[i] ^= 0x01;
	}
	CHECK_EQ_INT(bad, 0);
	/* Truncated signature. */
	if (sg_fx_write_bytes(w.sig, sig, slen - 1) != 0)
		abort();
	CHECK(refused(run_verify(&w, NULL), "signature", "short signature"));
	free(sig);
	free(path);
	free(c);
	world_free(&w);
}

/* Every single changed byte of the proof file. */
static void
test_proof_bytes(void)
{
	struct params p;
	struct world w;
	char *proof = NULL;
	size_t i, len = 0;
	int bad = 0, ex;

	setup();
	params_default(&p, SG_KIND_RELEASE);
	CHECK_EQ_INT(build(&p, &w), 0);
	if (sg_read_file(w.proof, 1024 * 1024, &proof, &len) != 0)
		abort();
	for (i = 0; i < len; i++) {
		proof[i] ^= 0x01;
		if (sg_fx_write_bytes(w.proof, proof, len) != 0)
			abort();
		ex = run_verify(&w, NULL);
		if (ex != SG_EXIT_VERIFY) {
			fprintf(stderr, "  proof byte %zu: exit %d\n", i, ex);
			bad++;
		}
		proof[i] ^= 0x01;
	}
	CHECK_EQ_INT(bad, 0);
	free(proof);
	world_free(&w);
}

/*
 * A log that records a signature over a line the officers did not
 * approve, or at a path that does not lead to the approved root: every
 * changed byte of the line and of the path, logged and checkpointed as if
 * honestly, is refused.
 */
static void
test_line_and_path_bytes(void)
{
	struct params p;
	struct world w;
	char line[SG_ARTIFACT_LINE_MAX + 1];
	size_t i, n, logged = 0;
	int bad = 0;

	setup();
	params_default(&p, SG_KIND_RELEASE);
	line_of(&p, p.target, line, sizeof(line));
	n = strlen(line);
	for (i = 0; i < n; i++) {
		line[i] ^= 0x01;
		p.line = line;
		if (build(&p, &w) == 0) {
			logged++;
			bad += !refused(run_verify(&w, NULL), "artifact",
			    "line byte");
		}
		world_free(&w);
		line[i] ^= 0x01;
	}
	CHECK_EQ_INT(bad, 0);
	CHECK(logged > n / 2);        /* most mutants are loggable lines */
	p.line = NULL;
	/* Two hashes of path for position 1 of 3. */
	for (i = 0; i < 2 * 32; i++) {
		p.path_flip = (int)i;
		CHECK_EQ_INT(build(&p, &w), 0);
		bad += !refused(run_verify(&w, NULL), "artifact", "path byte");
		world_free(&w);
	}
	CHECK_EQ_INT(bad, 0);
	/* The true line of another artifact, at this position. */
	line_of(&p, 0, line, sizeof(line));
	p.path_flip = -1;
	p.line = line;
	CHECK_EQ_INT(build(&p, &w), 0);
	CHECK(refused(run_verify(&w, NULL), "artifact", "other line"));
	world_free(&w);
}

static void
test_position_and_links(void)
{
	static const long long positions[] = { 0, 2, 3, 1000 };
	struct params p;
	struct world w;
	size_t i;

	setup();
	for (i = 0; i < sizeof(positions) / sizeof(positions[0]); i++) {
		params_default(&p, SG_KIND_RELEASE);
		p.position = positions[i];
		CHECK_EQ_INT(build(&p, &w), 0);
		CHECK(refused(run_verify(&w, NULL), "artifact", "position"));
		world_free(&w);
	}
	/* The signature names another approved entry. */
	params_default(&p, SG_KIND_RELEASE);
	p.approved_delta = 1;
	CHECK_EQ_INT(build(&p, &w), 0);
	CHECK(refused(run_verify(&w, NULL), "entry", "approved index"));
	world_free(&w);
	/* The signature is for another release. */
	params_default(&p, SG_KIND_RELEASE);
	p.sig_request = OTHER_ID;
	CHECK_EQ_INT(build(&p, &w), 0);
	CHECK(refused(run_verify(&w, NULL), "entry", "request id"));
	world_free(&w);
	/* One approval: no quorum. */
	params_default(&p, SG_KIND_RELEASE);
	p.napprovals = 1;
	CHECK_EQ_INT(build(&p, &w), 0);
	CHECK(refused(run_verify(&w, NULL), "quorum", "one approval"));
	world_free(&w);
	/* Signed after the release's expiry. */
	params_default(&p, SG_KIND_RELEASE);
	p.sig_time = EXPIRES;
	CHECK_EQ_INT(build(&p, &w), 0);
	CHECK(refused(run_verify(&w, NULL), NULL, "after expiry"));
	world_free(&w);
}

static void
test_bundles(void)
{
	struct params p;
	struct world w;
	char *proof = NULL, *cut;
	size_t len = 0, first = 0, k;
	int bad = 0;

	setup();
	params_default(&p, SG_KIND_RELEASE);
	p.reorder = 1;
	CHECK_EQ_INT(build(&p, &w), 0);
	CHECK(refused(run_verify(&w, NULL), "entry", "reordered"));
	world_free(&w);
	params_default(&p, SG_KIND_RELEASE);
	p.single = 1;
	CHECK_EQ_INT(build(&p, &w), 0);
	CHECK(refused(run_verify(&w, NULL), "entry", "alone"));
	CHECK(strstr(err_text, "approved entry's bundle") != NULL);
	world_free(&w);
	params_default(&p, SG_KIND_RELEASE);
	p.other_checkpoint = 1;
	CHECK_EQ_INT(build(&p, &w), 0);
	CHECK(refused(run_verify(&w, NULL), "proof", "two checkpoints"));
	CHECK(strstr(err_text, "same checkpoint") != NULL);
	world_free(&w);

	/* Truncated anywhere in the second bundle (or just after the first
	 * one's signature line, which leaves it alone). */
	params_default(&p, SG_KIND_RELEASE);
	CHECK_EQ_INT(build(&p, &w), 0);
	if (sg_read_file(w.proof, 1024 * 1024, &proof, &len) != 0 ||
	    sg_cli_proof_split(proof, len, &first) != 0)
		abort();
	CHECK(first < len);
	cut = xasprintf("%s.cut", w.proof);
	for (k = first; k < len; k += (k < first + 64 || k + 64 > len) ? 1 :
	    37) {
		struct world w2 = w;

		if (sg_fx_write_bytes(cut, proof, k) != 0)
			abort();
		w2.proof = cut;
		bad += !refused(run_verify(&w2, NULL), NULL, "truncated");
	}
	CHECK_EQ_INT(bad, 0);
	/* A third bundle after the two. */
	{
		char *three = xasprintf("%.*s%s", (int)len, proof,
		    proof + first);
		struct world w2 = w;

		if (sg_fx_write_bytes(cut, three, strlen(three)) != 0)
			abort();
		w2.proof = cut;
		CHECK(refused(run_verify(&w2, NULL), NULL, "three bundles"));
		free(three);
	}
	free(cut);
	free(proof);
	world_free(&w);

	/* A single request's proof with a second bundle behind it. */
	params_default(&p, SG_KIND_REQUEST);
	CHECK_EQ_INT(build(&p, &w), 0);
	if (sg_read_file(w.proof, 1024 * 1024, &proof, &len) != 0)
		abort();
	cut = xasprintf("%s%s", proof, proof);
	if (sg_fx_write_bytes(w.proof, cut, strlen(cut)) != 0)
		abort();
	CHECK(refused(run_verify(&w, NULL), "entry", "request + bundle"));
	free(cut);
	free(proof);
	world_free(&w);
}

static void
test_grant_attacks(void)
{
	struct params p;
	struct world w;

	setup();
	/* A name outside the pattern. */
	params_default(&p, SG_KIND_GRANT);
	p.name = "other-2.bin";
	CHECK_EQ_INT(build(&p, &w), 0);
	CHECK(refused(run_verify(&w, NULL), "artifact", "pattern"));
	world_free(&w);
	/* Sequence numbers 0 and past the count. */
	params_default(&p, SG_KIND_GRANT);
	p.position = 0;
	CHECK_EQ_INT(build(&p, &w), 0);
	CHECK(refused(run_verify(&w, NULL), "artifact", "sequence 0"));
	world_free(&w);
	params_default(&p, SG_KIND_GRANT);
	p.position = GRANT_COUNT + 1;
	CHECK_EQ_INT(build(&p, &w), 0);
	CHECK(refused(run_verify(&w, NULL), "artifact", "sequence N+1"));
	world_free(&w);
	/* The last allowed one verifies. */
	params_default(&p, SG_KIND_GRANT);
	p.position = GRANT_COUNT;
	CHECK_EQ_INT(build(&p, &w), 0);
	CHECK_EQ_INT(run_verify(&w, NULL), 0);
	CHECK(strstr(out_text, "signature 50 of 50 under grant") != NULL);
	world_free(&w);
	/* Signed at the grant's end. */
	params_default(&p, SG_KIND_GRANT);
	p.sig_time = EXPIRES;
	CHECK_EQ_INT(build(&p, &w), 0);
	CHECK(refused(run_verify(&w, NULL), NULL, "after the end"));
	world_free(&w);
	/* No quorum. */
	params_default(&p, SG_KIND_GRANT);
	p.napprovals = 1;
	CHECK_EQ_INT(build(&p, &w), 0);
	CHECK(refused(run_verify(&w, NULL), "quorum", "grant quorum"));
	world_free(&w);
}

/* A statement of another kind behind the signature entry: a release's or
 * a grant's approval never stands behind a single request's signature,
 * nor a request's behind an artifact's, nor a grant's behind a release
 * artifact's entry (it carries a manifest path).  (An artifact-signature
 * entry has one grammar for both kinds: what it is depends on the
 * approved statement, whose rules sg_artifact_allowed applies.) */
static void
test_kind_mixups(void)
{
	static const struct {
		enum sg_kind entry, stmt;
	} mix[] = {
		{ SG_KIND_RELEASE, SG_KIND_REQUEST },
		{ SG_KIND_RELEASE, SG_KIND_GRANT },
		{ SG_KIND_GRANT, SG_KIND_REQUEST },
		{ SG_KIND_REQUEST, SG_KIND_RELEASE },
		{ SG_KIND_REQUEST, SG_KIND_GRANT },
	};
	struct params p;
	struct world w;
	size_t i, ran = 0;

	setup();
	for (i = 0; i < sizeof(mix) / sizeof(mix[0]); i++) {
		params_default(&p, mix[i].entry);
		p.stmt_kind = (int)mix[i].stmt;
		if (build(&p, &w) != 0) {
			/* The entry grammar already refuses the mix. */
			world_free(&w);
			continue;
		}
		ran++;
		if (!refused(run_verify(&w, NULL), NULL, "kind mix-up")) {
			fprintf(stderr, "  entry %d, statement %d\n",
			    (int)mix[i].entry, (int)mix[i].stmt);
			CHECK(!"kind mix-up refused");
		}
		world_free(&w);
	}
	CHECK(ran >= 3);
}

static void
test_cleanup(void)
{
	size_t i;

	CHECK_EQ_INT(sg_fx_rm_tree(dir), 0);
	for (i = 0; i < 3; i++)
		EVP_PKEY_free(officers[i]);
	EVP_PKEY_free(signkey);
	EVP_PKEY_free(logkey);
}

SG_TEST_MAIN("cli_verify",
    T(test_release_ok),
    T(test_grant_ok),
    T(test_request_ok),
    T(test_file_and_signature_bytes),
    T(test_proof_bytes),
    T(test_line_and_path_bytes),
    T(test_position_and_links),
    T(test_bundles),
    T(test_grant_attacks),
    T(test_kind_mixups),
    T(test_cleanup))
