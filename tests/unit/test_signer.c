/*
 * Tests for the signer against a throwaway SoftHSM token built by
 * p11_fixture.sh: start-up checks with their error messages, signing with
 * every scheme and digest (each signature verified here again, with the
 * public key pkcs11-tool exported), request-shape checks, and concurrency.
 */
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "sg_err.h"
#include "sg_signer.h"
#include "sg_util.h"
#include "sg_test.h"
#include "sg_fixture.h"

#define MODULE SG_FX_SOFTHSM_MODULE
#define LABEL "sg-test-signer"
#define NTHREADS 8
#define PER_THREAD 100

SG_FX_SOFTHSM_SANITIZER_DEFAULTS

static char tmpdir[256];
static int have_token;
static struct sg_signer *g_signer;

static void
token_spec(struct sg_signer_token_spec *ts, const char *label,
    const char *pin_file)
{
	memset(ts, 0, sizeof(*ts));
	snprintf(ts->label, sizeof(ts->label), "%s", label);
	snprintf(ts->pin_file, sizeof(ts->pin_file), "%s/%s", tmpdir,
	    pin_file);
}

static void
key_spec(struct sg_signer_key_spec *ks, const char *name, const char *label,
    uint8_t id, enum sg_sig_scheme scheme)
{
	memset(ks, 0, sizeof(*ks));
	snprintf(ks->name, sizeof(ks->name), "%s", name);
	snprintf(ks->token, sizeof(ks->token), "%s", LABEL);
	if (label != NULL)
		snprintf(ks->label, sizeof(ks->label), "%s", label);
	if (id != 0) {
		ks->id[0] = id;
		ks->id_len = 1;
	}
	ks->scheme = scheme;
}

/* The keys of a working configuration, with the pkcs11-tool export each
 * should equal. */
static const struct {
	const char *name, *label, *exported;
	uint8_t id;
	enum sg_sig_scheme scheme;
	enum sg_key_alg alg;
} good[] = {
	{ "release", "p256", "p256", 0, SG_SIG_ECDSA, SG_ALG_ECDSA_P256 },
	{ "p384", NULL, "p384", 0x02, SG_SIG_ECDSA, SG_ALG_ECDSA_P384 },
	{ "firmware", "rsa2048", "rsa2048", 0x03, SG_SIG_RSA_PKCS1,
	    SG_ALG_RSA },
	{ "firmware-pss", "rsa3072", "rsa3072", 0, SG_SIG_RSA_PSS,
	    SG_ALG_RSA },
	{ "log", "ed25519", "ed25519", 0, SG_SIG_EDDSA, SG_ALG_ED25519 },
	{ "certified", "certonly", "certonly", 0, SG_SIG_ECDSA,
	    SG_ALG_ECDSA_P256 },
};
#define NGOOD (sizeof(good) / sizeof(good[0]))

static int
open_with(const char *pin_file, const struct sg_signer_key_spec *keys,
    size_t nkeys, char *err, size_t errlen)
{
	struct sg_signer_token_spec ts;
	struct sg_signer *s = NULL;
	int r;

	token_spec(&ts, LABEL, pin_file);
	r = sg_signer_open(MODULE, &ts, 1, keys, nkeys, &s, err, errlen);
	CHECK((r == 0) == (s != NULL));
	sg_signer_free(s);
	return r;
}

static void
test_setup(void)
{
	char tool[PATH_MAX], pin[PATH_MAX];
	const char *argv[] = { tool, MODULE, LABEL, pin, "ed25519", "twin",
	    "44", NULL };

	if (sg_fx_tmpdir("signer", tmpdir, sizeof(tmpdir)) != 0) {
		CHECK(0);
		return;
	}
	if (sg_fx_p11_token(tmpdir, LABEL) != 0) {
		CHECK(!"the SoftHSM fixture could not be built");
		return;
	}
	have_token = 1;

	/* A second name for the ed25519 key pair: "twin", id 44. */
	if (sg_fx_build_file("tools/p11copy", X_OK, tool, sizeof(tool)) != 0) {
		CHECK(!"cannot find the p11copy tool (make unit builds it)");
		return;
	}
	snprintf(pin, sizeof(pin), "%s/user.pin", tmpdir);
	CHECK_EQ_INT(sg_fx_run(argv), 0);
}

static void
test_open_refused(void)
{
	struct sg_signer_key_spec ks[3];
	struct sg_signer_token_spec ts[2];
	struct sg_signer *s = NULL;
	char err[512], want[512];

	if (!have_token) {
		CHECK(!"no token");
		return;
	}
	key_spec(&ks[0], "release", "p256", 0, SG_SIG_ECDSA);

	/* The PIN file must not be readable by others. */
	CHECK_EQ_INT(open_with("open.pin", ks, 1, err, sizeof(err)),
	    SG_ERR_PERMISSIONS);
	CHECK(strstr(err, "must be mode 0600") != NULL);
	CHECK(strstr(err, "open.pin") != NULL);
	CHECK_EQ_INT(open_with("no-such.pin", ks, 1, err, sizeof(err)),
	    SG_ERR_NOT_FOUND);
	CHECK(strstr(err, "no-such.pin") != NULL);
	CHECK_EQ_INT(open_with("wrong.pin", ks, 1, err, sizeof(err)),
	    SG_ERR_PIN);
	CHECK(strstr(err, "refused the PIN") != NULL &&
	    strstr(err, "CKR_PIN_INCORRECT") != NULL);

	/* Tokens are found by label. */
	token_spec(&ts[0], "nope", "user.pin");
	CHECK_EQ_INT(sg_signer_open(MODULE, ts, 1, NULL, 0, &s, err,
	    sizeof(err)), SG_ERR_NOT_FOUND);
	CHECK_STR(err, "token 'nope' not found");
	CHECK(s == NULL);
	token_spec(&ts[0], LABEL, "user.pin");
	token_spec(&ts[1], LABEL, "user.pin");
	CHECK_EQ_INT(sg_signer_open(MODULE, ts, 2, NULL, 0, &s, err,
	    sizeof(err)), SG_ERR_INVALID);
	CHECK(strstr(err, "listed twice") != NULL);
	CHECK_EQ_INT(sg_signer_open("/nonexistent/pkcs11.so", ts, 1, NULL, 0,
	    &s, err, sizeof(err)), SG_ERR_UNAVAILABLE);
	CHECK(strstr(err, "/nonexistent/pkcs11.so") != NULL);

	/* Keys: missing, ambiguous, of the wrong type, or unproven. */
	key_spec(&ks[0], "release", "missing", 0, SG_SIG_ECDSA);
	CHECK_EQ_INT(open_with("user.pin", ks, 1, err, sizeof(err)),
	    SG_ERR_NO_KEY);
	snprintf(want, sizeof(want), "key 'release': token '%s' has no "
	    "private key labelled 'missing'", LABEL);
	CHECK_STR(err, want);
	key_spec(&ks[0], "release", NULL, 0x99, SG_SIG_ECDSA);
	CHECK_EQ_INT(open_with("user.pin", ks, 1, err, sizeof(err)),
	    SG_ERR_NO_KEY);
	CHECK(strstr(err, "with id 99") != NULL);
	key_spec(&ks[0], "release", "p256", 0x02, SG_SIG_ECDSA);
	CHECK_EQ_INT(open_with("user.pin", ks, 1, err, sizeof(err)),
	    SG_ERR_NO_KEY);
	CHECK(strstr(err, "labelled 'p256' with id 02") != NULL);
	key_spec(&ks[0], "twins", "dup", 0, SG_SIG_ECDSA);
	CHECK_EQ_INT(open_with("user.pin", ks, 1, err, sizeof(err)),
	    SG_ERR_INVALID);
	CHECK(strstr(err, "more than one private key") != NULL);
	key_spec(&ks[0], "release", "p256", 0, SG_SIG_RSA_PSS);
	CHECK_EQ_INT(open_with("user.pin", ks, 1, err, sizeof(err)),
	    SG_ERR_MECHANISM);
	CHECK(strstr(err, "key 'release'") != NULL &&
	    strstr(err, "ECDSA P-256") != NULL &&
	    strstr(err, "RSA-PSS") != NULL);
	key_spec(&ks[0], "firmware", "rsa2048", 0, SG_SIG_EDDSA);
	CHECK_EQ_INT(open_with("user.pin", ks, 1, err, sizeof(err)),
	    SG_ERR_MECHANISM);
	key_spec(&ks[0], "log", "ed25519", 0, SG_SIG_ECDSA);
	CHECK_EQ_INT(open_with("user.pin", ks, 1, err, sizeof(err)),
	    SG_ERR_MECHANISM);
	/* Its public-key object holds another key's public key: the test
	 * signature at start-up does not verify. */
	key_spec(&ks[0], "forged", "mismatch", 0, SG_SIG_ECDSA);
	CHECK_EQ_INT(open_with("user.pin", ks, 1, err, sizeof(err)),
	    SG_ERR_HSM);
	CHECK(strstr(err, "key 'forged'") != NULL &&
	    strstr(err, "does not verify") != NULL);

	/* Configuration mistakes. */
	key_spec(&ks[0], "release", "p256", 0, SG_SIG_ECDSA);
	key_spec(&ks[1], "release", "p384", 0, SG_SIG_ECDSA);
	CHECK_EQ_INT(open_with("user.pin", ks, 2, err, sizeof(err)),
	    SG_ERR_INVALID);
	CHECK(strstr(err, "'release' is listed twice") != NULL);
	key_spec(&ks[0], "release", "p256", 0, SG_SIG_ECDSA);
	snprintf(ks[0].token, sizeof(ks[0].token), "other-token");
	CHECK_EQ_INT(open_with("user.pin", ks, 1, err, sizeof(err)),
	    SG_ERR_INVALID);
	CHECK(strstr(err, "'other-token' is not configured") != NULL);
	key_spec(&ks[0], "release", NULL, 0, SG_SIG_ECDSA);
	CHECK_EQ_INT(open_with("user.pin", ks, 1, err, sizeof(err)),
	    SG_ERR_INVALID);
	key_spec(&ks[0], "release", "p256", 0, SG_SIG_ECDSA);
	memset(ks[0].name, 'a', sizeof(ks[0].name));
	CHECK_EQ_INT(open_with("user.pin", ks, 1, err, sizeof(err)),
	    SG_ERR_INVALID);
	/* A NULL error buffer is fine. */
	key_spec(&ks[0], "release", "missing", 0, SG_SIG_ECDSA);
	CHECK_EQ_INT(open_with("user.pin", ks, 1, NULL, 0), SG_ERR_NO_KEY);
}

/*
 * No key may reach a reserved key (the log key): not its HSM object by
 * label or by id, nor a copy of its key pair under another label.
 */
static void
test_reserved(void)
{
	static const struct {
		const char *label;
		uint8_t id;
		const char *why;
	} clash[] = {
		{ "ed25519", 0, "its HSM object" },
		{ NULL, 0x04, "its HSM object" },
		{ "ed25519", 0x04, "its HSM object" },
		{ "twin", 0, "public key is the same" },
		{ NULL, 0x44, "public key is the same" },
	};
	struct sg_signer_key_spec ks[3];
	struct sg_signer_token_spec ts;
	struct sg_signer *s = NULL;
	char err[512];
	size_t i;

	if (!have_token) {
		CHECK(!"no token");
		return;
	}
	for (i = 0; i < sizeof(clash) / sizeof(clash[0]); i++) {
		key_spec(&ks[0], "release", "p256", 0, SG_SIG_ECDSA);
		key_spec(&ks[1], "x", clash[i].label, clash[i].id,
		    SG_SIG_EDDSA);
		key_spec(&ks[2], SG_SIGNER_LOG_KEY, "ed25519", 0,
		    SG_SIG_EDDSA);
		err[0] = '\0';
		CHECK_EQ_INT(open_with("user.pin", ks, 3, err, sizeof(err)),
		    SG_ERR_FORBIDDEN);
		if (strstr(err, "key 'x' is the transparency log's key") ==
		    NULL || strstr(err, clash[i].why) == NULL)
			fprintf(stderr, "  case %zu: %s\n", i, err);
		CHECK(strstr(err, "key 'x' is the transparency log's key") !=
		    NULL);
		CHECK(strstr(err, clash[i].why) != NULL);
		/* Whatever the order of the specs. */
		key_spec(&ks[0], SG_SIGNER_LOG_KEY, "ed25519", 0,
		    SG_SIG_EDDSA);
		key_spec(&ks[2], "release", "p256", 0, SG_SIG_ECDSA);
		CHECK_EQ_INT(open_with("user.pin", ks, 3, err, sizeof(err)),
		    SG_ERR_FORBIDDEN);
		CHECK(strstr(err, "key 'x'") != NULL);
	}
	/* The log key reached through its copy, the policy key through the
	 * original: just as refused. */
	key_spec(&ks[0], "x", "ed25519", 0, SG_SIG_EDDSA);
	key_spec(&ks[1], SG_SIGNER_LOG_KEY, "twin", 0, SG_SIG_EDDSA);
	CHECK_EQ_INT(open_with("user.pin", ks, 2, err, sizeof(err)),
	    SG_ERR_FORBIDDEN);
	CHECK(strstr(err, "key 'x'") != NULL);

	/* Controls: another Ed25519 key is fine, and so is the log key's
	 * object under a name that is not reserved (as in test_open). */
	key_spec(&ks[0], "x", "unrelated-ed25519", 0, SG_SIG_EDDSA);
	key_spec(&ks[1], SG_SIGNER_LOG_KEY, "ed25519", 0, SG_SIG_EDDSA);
	token_spec(&ts, LABEL, "user.pin");
	err[0] = 'x';
	CHECK_EQ_INT(sg_signer_open(MODULE, &ts, 1, ks, 2, &s, err,
	    sizeof(err)), 0);
	CHECK_STR(err, "");
	if (s == NULL)
		return;

	/* Specs not opened (a reloaded policy's): by the reserved key's own
	 * label or id on its token. */
	key_spec(&ks[2], "y", "ed25519", 0, SG_SIG_EDDSA);
	CHECK_EQ_INT(sg_signer_spec_reserved(s, &ks[2], err, sizeof(err)),
	    SG_ERR_FORBIDDEN);
	CHECK(strstr(err, "key 'y' is the transparency log's key") != NULL);
	key_spec(&ks[2], "y", NULL, 0x04, SG_SIG_EDDSA);
	CHECK_EQ_INT(sg_signer_spec_reserved(s, &ks[2], err, sizeof(err)),
	    SG_ERR_FORBIDDEN);
	CHECK(strstr(err, "with id 04") != NULL);
	key_spec(&ks[2], "y", "unrelated-ed25519", 0, SG_SIG_EDDSA);
	CHECK_EQ_INT(sg_signer_spec_reserved(s, &ks[2], err, sizeof(err)),
	    0);
	key_spec(&ks[2], "y", NULL, 0x20, SG_SIG_EDDSA);
	CHECK_EQ_INT(sg_signer_spec_reserved(s, &ks[2], err, sizeof(err)),
	    0);
	/* The same label on another token is another key. */
	key_spec(&ks[2], "y", "ed25519", 0, SG_SIG_EDDSA);
	snprintf(ks[2].token, sizeof(ks[2].token), "other-token");
	CHECK_EQ_INT(sg_signer_spec_reserved(s, &ks[2], err, sizeof(err)),
	    0);
	sg_signer_free(s);
}

static void
test_open(void)
{
	struct sg_signer_key_spec ks[NGOOD];
	struct sg_signer_token_spec ts;
	struct sg_token_info ti;
	enum sg_key_alg alg;
	EVP_PKEY *pub, *ex;
	char err[512] = "untouched";
	size_t i;

	if (!have_token) {
		CHECK(!"no token");
		return;
	}
	for (i = 0; i < NGOOD; i++)
		key_spec(&ks[i], good[i].name, good[i].label, good[i].id,
		    good[i].scheme);
	token_spec(&ts, LABEL, "user.pin");
	CHECK_EQ_INT(sg_signer_open(MODULE, &ts, 1, ks, NGOOD, &g_signer, err,
	    sizeof(err)), 0);
	if (g_signer == NULL) {
		fprintf(stderr, "  %s\n", err);
		return;
	}
	CHECK_STR(err, "");
	for (i = 0; i < NGOOD; i++) {
		pub = NULL;
		alg = SG_ALG_NONE;
		memset(&ti, 0, sizeof(ti));
		CHECK_EQ_INT(sg_signer_key_public(g_signer, good[i].name, &pub,
		    &alg, &ti), 0);
		CHECK_EQ_INT(alg, good[i].alg);
		CHECK_STR(ti.label, LABEL);
		CHECK(ti.serial[0] != '\0');
		ex = sg_fx_p11_exported(tmpdir, good[i].exported);
		CHECK(pub != NULL && ex != NULL && EVP_PKEY_eq(pub, ex) == 1);
		EVP_PKEY_free(ex);
	}
	CHECK_EQ_INT(sg_signer_key_public(g_signer, "nope", &pub, &alg, &ti),
	    SG_ERR_NOT_FOUND);
	CHECK_EQ_INT(sg_signer_key_public(g_signer, "release", NULL, NULL,
	    NULL), 0);
}

static void
test_sign(void)
{
	static const enum sg_digest_alg digests[] = {
		SG_DIGEST_SHA256, SG_DIGEST_SHA384, SG_DIGEST_SHA512,
	};
	struct sg_sign_msg msg;
	struct sg_sign_reply reply;
	EVP_PKEY *ex;
	size_t i, d;

	if (g_signer == NULL) {
		CHECK(!"no signer");
		return;
	}
	for (i = 0; i < NGOOD; i++) {
		ex = sg_fx_p11_exported(tmpdir, good[i].exported);
		CHECK(ex != NULL);
		for (d = 0; d < 3; d++) {
			memset(&msg, 0, sizeof(msg));
			snprintf(msg.key, sizeof(msg.key), "%s", good[i].name);
			if (good[i].scheme == SG_SIG_EDDSA) {
				msg.digest_alg = SG_DIGEST_NONE;
				msg.data_len = sg_digest_len(digests[d]);
			} else {
				msg.digest_alg = digests[d];
				msg.data_len = sg_digest_len(digests[d]);
			}
			CHECK_EQ_INT(RAND_bytes(msg.data, (int)msg.data_len),
			    1);
			sg_signer_sign(g_signer, &msg, &reply);
			CHECK_EQ_INT(reply.status, 0);
			CHECK(reply.sig_len > 0);
			/* Against the key pkcs11-tool exported. */
			CHECK_EQ_INT(sg_verify(ex, good[i].scheme,
			    msg.digest_alg, msg.data, msg.data_len, reply.sig,
			    reply.sig_len), 0);
			msg.data[0] ^= 0x80;
			CHECK(sg_verify(ex, good[i].scheme, msg.digest_alg,
			    msg.data, msg.data_len, reply.sig,
			    reply.sig_len) != 0);
		}
		EVP_PKEY_free(ex);
	}
}

static void
test_sign_refused(void)
{
	struct sg_sign_msg msg;
	struct sg_sign_reply reply;

	if (g_signer == NULL) {
		CHECK(!"no signer");
		return;
	}
	memset(&msg, 0, sizeof(msg));
	snprintf(msg.key, sizeof(msg.key), "release");
	msg.digest_alg = SG_DIGEST_SHA256;
	msg.data_len = 32;

	/* A baseline that works, then one thing wrong at a time. */
	sg_signer_sign(g_signer, &msg, &reply);
	CHECK_EQ_INT(reply.status, 0);

	snprintf(msg.key, sizeof(msg.key), "unknown");
	memset(&reply, 0x55, sizeof(reply));
	sg_signer_sign(g_signer, &msg, &reply);
	CHECK_EQ_INT(reply.status, SG_ERR_NOT_FOUND);
	CHECK_EQ_INT(reply.sig_len, 0);
	snprintf(msg.key, sizeof(msg.key), "release");

	msg.data_len = 31;
	sg_signer_sign(g_signer, &msg, &reply);
	CHECK_EQ_INT(reply.status, SG_ERR_INVALID);
	msg.data_len = sizeof(msg.data) + 1;
	sg_signer_sign(g_signer, &msg, &reply);
	CHECK_EQ_INT(reply.status, SG_ERR_INVALID);
	msg.data_len = 32;

	msg.digest_alg = SG_DIGEST_NONE;
	sg_signer_sign(g_signer, &msg, &reply);
	CHECK_EQ_INT(reply.status, SG_ERR_INVALID);
	msg.digest_alg = SG_DIGEST_SHA512;
	sg_signer_sign(g_signer, &msg, &reply);
	CHECK_EQ_INT(reply.status, SG_ERR_INVALID);
	msg.digest_alg = (enum sg_digest_alg)42;
	sg_signer_sign(g_signer, &msg, &reply);
	CHECK_EQ_INT(reply.status, SG_ERR_INVALID);
	msg.digest_alg = SG_DIGEST_SHA256;

	/* Ed25519 takes bytes, not a digest algorithm. */
	snprintf(msg.key, sizeof(msg.key), "log");
	sg_signer_sign(g_signer, &msg, &reply);
	CHECK_EQ_INT(reply.status, SG_ERR_INVALID);
	msg.digest_alg = SG_DIGEST_NONE;
	msg.data_len = 0;
	sg_signer_sign(g_signer, &msg, &reply);
	CHECK_EQ_INT(reply.status, SG_ERR_INVALID);
	msg.data_len = 64;
	sg_signer_sign(g_signer, &msg, &reply);
	CHECK_EQ_INT(reply.status, 0);
	CHECK_EQ_INT(reply.sig_len, 64);

	/* An unterminated key name. */
	memset(msg.key, 'r', sizeof(msg.key));
	sg_signer_sign(g_signer, &msg, &reply);
	CHECK_EQ_INT(reply.status, SG_ERR_INVALID);
}

/* msgs[i] for key `name`, a fresh digest (or 32-byte message). */
static void
many_msg(struct sg_sign_msg *m, const char *name, enum sg_sig_scheme scheme)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->key, sizeof(m->key), "%s", name);
	m->digest_alg = scheme == SG_SIG_EDDSA ? SG_DIGEST_NONE :
	    SG_DIGEST_SHA256;
	m->data_len = 32;
	CHECK_EQ_INT(RAND_bytes(m->data, 32), 1);
}

/* How many of replies[0..n) are signed and verify with the exported
 * key of their message's key; -1 if a signed one does not. */
static int
many_good(const struct sg_sign_msg *msgs, const struct sg_sign_reply *reps,
    size_t n)
{
	EVP_PKEY *ex;
	size_t i, g;
	int ok = 0;

	for (i = 0; i < n; i++) {
		if (reps[i].status != 0)
			continue;
		for (g = 0; g < NGOOD; g++)
			if (strcmp(good[g].name, msgs[i].key) == 0)
				break;
		if (g == NGOOD ||
		    (ex = sg_fx_p11_exported(tmpdir, good[g].exported)) == NULL)
			return -1;
		if (reps[i].sig_len == 0 || sg_verify(ex, good[g].scheme,
		    msgs[i].digest_alg, msgs[i].data, msgs[i].data_len,
		    reps[i].sig, reps[i].sig_len) != 0) {
			EVP_PKEY_free(ex);
			return -1;
		}
		EVP_PKEY_free(ex);
		ok++;
	}
	return ok;
}

/*
 * sg_signer_sign_many: every key, one batch of 64 for one key, batches
 * that mix keys; every signature verifies with the exported key; the
 * first refused message ends the batch (the rest not attempted).
 */
static void
test_sign_many(void)
{
	static struct sg_sign_msg msgs[SG_P11_MANY_MAX + 2];
	static struct sg_sign_reply reps[SG_P11_MANY_MAX + 2];
	size_t i, g;

	if (g_signer == NULL) {
		CHECK(!"no signer");
		return;
	}
	for (g = 0; g < NGOOD; g++) {
		for (i = 0; i < 5; i++)
			many_msg(&msgs[i], good[g].name, good[g].scheme);
		sg_signer_sign_many(g_signer, msgs, 5, reps);
		CHECK_EQ_INT(many_good(msgs, reps, 5), 5);
	}
	/* A full batch, and two more than one hand-over takes. */
	for (i = 0; i < SG_P11_MANY_MAX + 2; i++)
		many_msg(&msgs[i], "release", SG_SIG_ECDSA);
	sg_signer_sign_many(g_signer, msgs, SG_P11_MANY_MAX, reps);
	CHECK_EQ_INT(many_good(msgs, reps, SG_P11_MANY_MAX), SG_P11_MANY_MAX);
	sg_signer_sign_many(g_signer, msgs, SG_P11_MANY_MAX + 2, reps);
	CHECK_EQ_INT(many_good(msgs, reps, SG_P11_MANY_MAX + 2),
	    SG_P11_MANY_MAX + 2);
	/* Keys and schemes taking turns. */
	for (i = 0; i < 12; i++)
		many_msg(&msgs[i], good[i % NGOOD].name,
		    good[i % NGOOD].scheme);
	sg_signer_sign_many(g_signer, msgs, 12, reps);
	CHECK_EQ_INT(many_good(msgs, reps, 12), 12);
	/* n = 1. */
	sg_signer_sign_many(g_signer, msgs, 1, reps);
	CHECK_EQ_INT(many_good(msgs, reps, 1), 1);
	/* A bad message in the middle: the ones before it are signed. */
	for (i = 0; i < 6; i++)
		many_msg(&msgs[i], "release", SG_SIG_ECDSA);
	msgs[3].data_len = 31;
	sg_signer_sign_many(g_signer, msgs, 6, reps);
	CHECK_EQ_INT(many_good(msgs, reps, 6), 3);
	CHECK_EQ_INT(reps[3].status, SG_ERR_INVALID);
	CHECK_EQ_INT(reps[4].status, SG_ERR_BUFFER);
	CHECK_EQ_INT(reps[5].status, SG_ERR_BUFFER);
	CHECK_EQ_INT(reps[5].sig_len, 0);
	/* An unknown key ends it the same way. */
	msgs[3].data_len = 32;
	snprintf(msgs[1].key, sizeof(msgs[1].key), "unknown");
	sg_signer_sign_many(g_signer, msgs, 6, reps);
	CHECK_EQ_INT(reps[0].status, 0);
	CHECK_EQ_INT(reps[1].status, SG_ERR_NOT_FOUND);
	CHECK_EQ_INT(reps[2].status, SG_ERR_BUFFER);
	CHECK_EQ_INT(many_good(msgs, reps, 6), 1);
}

/* The log key is refused by sg_signer_sign_many as by sg_signer_sign:
 * first in a batch, or in the middle of one.  (Before test_open: one
 * signer per module per process.) */
static void
test_sign_many_log_key(void)
{
	struct sg_signer_key_spec ks[2];
	struct sg_signer_token_spec ts;
	struct sg_signer *s = NULL;
	struct sg_sign_msg msgs[4];
	struct sg_sign_reply reps[4];
	char err[512];

	if (!have_token) {
		CHECK(!"no token");
		return;
	}
	key_spec(&ks[0], "release", "p256", 0, SG_SIG_ECDSA);
	key_spec(&ks[1], SG_SIGNER_LOG_KEY, "ed25519", 0, SG_SIG_EDDSA);
	token_spec(&ts, LABEL, "user.pin");
	CHECK_EQ_INT(sg_signer_open(MODULE, &ts, 1, ks, 2, &s, err,
	    sizeof(err)), 0);
	if (s == NULL)
		return;
	many_msg(&msgs[0], SG_SIGNER_LOG_KEY, SG_SIG_EDDSA);
	many_msg(&msgs[1], SG_SIGNER_LOG_KEY, SG_SIG_EDDSA);
	sg_signer_sign_many(s, msgs, 2, reps);
	CHECK_EQ_INT(reps[0].status, SG_ERR_NOT_FOUND);
	CHECK_EQ_INT(reps[0].sig_len, 0);
	CHECK_EQ_INT(reps[1].status, SG_ERR_BUFFER);
	CHECK_EQ_INT(reps[1].sig_len, 0);
	many_msg(&msgs[0], "release", SG_SIG_ECDSA);
	many_msg(&msgs[1], "release", SG_SIG_ECDSA);
	many_msg(&msgs[2], SG_SIGNER_LOG_KEY, SG_SIG_EDDSA);
	many_msg(&msgs[3], "release", SG_SIG_ECDSA);
	sg_signer_sign_many(s, msgs, 4, reps);
	CHECK_EQ_INT(reps[0].status, 0);
	CHECK_EQ_INT(reps[1].status, 0);
	CHECK_EQ_INT(reps[2].status, SG_ERR_NOT_FOUND);
	CHECK_EQ_INT(reps[2].sig_len, 0);
	CHECK_EQ_INT(reps[3].status, SG_ERR_BUFFER);
	/* Control: the same batch without the log key is signed. */
	many_msg(&msgs[2], "release", SG_SIG_ECDSA);
	sg_signer_sign_many(s, msgs, 4, reps);
	CHECK_EQ_INT(reps[2].status, 0);
	CHECK_EQ_INT(reps[3].status, 0);
	sg_signer_free(s);
}

struct worker {
	unsigned seed;
	int failures;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct sg_sign_msg msg;
	struct sg_sign_reply reply;
	EVP_PKEY *pub;
	size_t i, k;

	for (i = 0; i < PER_THREAD; i++) {
		/* Skip the slow RSA-3072 key (index 3) to keep this short. */
		k = (i + w->seed) % NGOOD;
		if (k == 3)
			k = 0;
		memset(&msg, 0, sizeof(msg));
		snprintf(msg.key, sizeof(msg.key), "%s", good[k].name);
		msg.digest_alg = good[k].scheme == SG_SIG_EDDSA ?
		    SG_DIGEST_NONE : SG_DIGEST_SHA256;
		msg.data_len = 32;
		if (RAND_bytes(msg.data, 32) != 1 ||
		    sg_signer_key_public(g_signer, msg.key, &pub, NULL,
		    NULL) != 0) {
			w->failures++;
			continue;
		}
		sg_signer_sign(g_signer, &msg, &reply);
		if (reply.status != 0 || sg_verify(pub, good[k].scheme,
		    msg.digest_alg, msg.data, msg.data_len, reply.sig,
		    reply.sig_len) != 0)
			w->failures++;
	}
	return NULL;
}

static void
test_threads(void)
{
	struct worker w[NTHREADS];
	int i, failures = 0;

	if (g_signer == NULL) {
		CHECK(!"no signer");
		return;
	}
	for (i = 0; i < NTHREADS; i++)
		w[i].seed = (unsigned)i;
	CHECK_EQ_INT(sg_fx_threads(NTHREADS, worker_main, w, sizeof(w[0]),
	    offsetof(struct worker, failures), &failures), NTHREADS);
	CHECK_EQ_INT(failures, 0);
}

static void
test_teardown(void)
{
	sg_signer_free(g_signer);
	g_signer = NULL;
	CHECK_EQ_INT(sg_fx_rm_tree(tmpdir), 0);
}

SG_TEST_MAIN("signer",
    T(test_setup),
    T(test_open_refused),
    T(test_reserved),
    T(test_sign_many_log_key),
    T(test_open),
    T(test_sign),
    T(test_sign_refused),
    T(test_sign_many),
    T(test_threads),
    T(test_teardown))
