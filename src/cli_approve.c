/*
 * `signgate approve` / `signgate reject`: an officer's decision, signed
 * with the officer's own key, as a DSSE envelope.
 *
 * Before anything is signed the command re-checks what the officer is
 * about to bind themselves to: the request is pending, its statement
 * parses and agrees with the request object printed on the screen, and the
 * statement's SPKI digest is the digest of the signing key's public key as
 * published by /v1/keys.  The officer then confirms (or passes --yes).
 *
 * The approval key is either a PEM file (mode 0600 enforced, like every
 * secret file) or a key on a PKCS#11 token such as a smart card, used
 * through the same thin layer as the daemon (sg_p11).  The PIN comes from a
 * 0600 file or from the terminal with echo off; never from argv or the
 * environment, where other users and logs could see it.  It is wiped as
 * soon as the token has it.  The card is opened only after confirmation, so
 * a PIN is never entered for a statement the officer has not seen.
 *
 * Whatever signs, the signature is verified locally with the public key
 * before it is posted: a faulty card or a wrong key is caught here, not as
 * a 422 from the server.
 *
 * `signgate approve --policy SHA256` approves a pending policy version
 * the same way: the version's text is fetched and its SHA-256 checked
 * here, and the statement signed is the one this side builds from that
 * text and the policy in force (include/sg_policy_change.h), never the
 * server's; both must agree.  Approvals are signed with key files and
 * smart cards (a security key approves through the console, which has no
 * policy changes yet).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "sg_cli.h"
#include "sg_crypto.h"
#include "sg_dsse.h"
#include "sg_err.h"
#include "sg_evidence.h"
#include "sg_p11.h"
#include "sg_p11_uri.h"
#include "sg_policy_change.h"
#include "sg_text.h"
#include "sg_util.h"

#define KEY_FILE_MAX (64 * 1024)
#define P11_OBJECT_MAX 256
/* Manifest lines shown before a release is approved. */
#define SUMMARY_LINES 10

struct sg_cli_signer {
	EVP_PKEY *key;               /* file key, private */
	struct sg_p11 *p11;
	struct sg_p11_key *p11_key;  /* owned by p11 */
	EVP_PKEY *pub;               /* owned by this struct */
	enum sg_sig_scheme scheme;
};

enum {
	OPT_KEY = SG_OPT_CMD,
	OPT_PKCS11,
	OPT_MODULE,
	OPT_PIN_FILE,
	OPT_AS,
	OPT_YES,
	OPT_REASON,
	OPT_POLICY,
};

void
sg_cli_signer_free(struct sg_cli_signer *s)
{
	if (s == NULL)
		return;
	EVP_PKEY_free(s->key);
	EVP_PKEY_free(s->pub);
	sg_p11_free(s->p11);
	free(s);
}

/* A copy of only the public half. */
static EVP_PKEY *
public_copy(EVP_PKEY *k)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	EVP_PKEY *pub = NULL;
	int n;

	if ((n = i2d_PUBKEY(k, &der)) <= 0)
		return NULL;
	p = der;
	pub = d2i_PUBKEY(NULL, &p, n);
	OPENSSL_free(der);
	return pub;
}

#define P11_URI_HELP "--pkcs11: a URI such as " \
    "'pkcs11:token=LABEL;object=LABEL' (token and object or id required, " \
    "no pin-value)"

/* A PKCS#11 URI that names a token and a key (label or id); 0 if so. */
static int
p11_uri_split(const char *uri, char token[SG_TOKEN_LABEL_SIZE],
    char object[P11_OBJECT_MAX], uint8_t id[SG_P11_ID_MAX], size_t *id_len)
{
	*id_len = 0;
	if (sg_p11_uri_parse(uri, token, object, P11_OBJECT_MAX, id,
	    SG_P11_ID_MAX, id_len) != 0 || token[0] == '\0' ||
	    (object[0] == '\0' && *id_len == 0))
		return SG_ERR_INVALID;
	return 0;
}

static int
passphrase_cb(char *buf, int size, int rwflag, void *arg)
{
	char prompt[512];
	size_t len = 0;

	if (size < 2)
		return -1;
	snprintf(prompt, sizeof(prompt), "Passphrase for %s: ",
	    (const char *)arg);
	if (sg_cli_tty_read(prompt, 0, buf, (size_t)size, &len) != 0)
		return -1;
	return (int)len;
}

int
sg_cli_signer_file(const char *path, struct sg_cli_signer **ret,
    char *err, size_t errlen)
{
	struct sg_cli_signer *s = NULL;
	char *pem = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	int r;

	if ((r = sg_read_secret_file_max(path, KEY_FILE_MAX, &pem,
	    &len)) != 0) {
		if (r == SG_ERR_PERMISSIONS)
			snprintf(err, errlen, "%s: must be yours and not "
			    "readable by group or others (chmod 600)", path);
		else
			snprintf(err, errlen, "%s: %s", path, sg_strerror(r));
		return r;
	}
	r = SG_ERR_NOMEM;
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (bio = BIO_new_mem_buf(pem, (int)len)) == NULL)
		goto out;
	s->key = PEM_read_bio_PrivateKey(bio, NULL, passphrase_cb,
	    (void *)path);
	if (s->key == NULL) {
		snprintf(err, errlen, "%s: not a PEM private key, or a wrong "
		    "passphrase", path);
		r = SG_ERR_INVALID;
		goto out;
	}
	if ((s->scheme = sg_approval_scheme(sg_pubkey_alg(s->key))) == SG_SIG_NONE) {
		snprintf(err, errlen, "%s: approval keys are ECDSA P-256/P-384 "
		    "or RSA >= 2048", path);
		r = SG_ERR_MECHANISM;
		goto out;
	}
	if ((s->pub = public_copy(s->key)) == NULL) {
		snprintf(err, errlen, "%s: cannot extract the public key", path);
		r = SG_ERR_CRYPTO;
		goto out;
	}
	*ret = s;
	s = NULL;
	r = 0;
out:
	BIO_free(bio);
	sg_freezero(pem, len);
	sg_cli_signer_free(s);
	return r;
}

/*
 * The token's PIN, from a 0600 file (*ret_file, to be wiped and freed) or
 * from the terminal without echo (into buf).  *ret points at it.
 */
static int
read_pin(const char *pin_file, const char *token, char *buf, size_t cap,
    char **ret_file, const char **ret, size_t *ret_len, char *err,
    size_t errlen)
{
	char prompt[128];
	int r;

	if (pin_file != NULL) {
		if ((r = sg_read_secret_file(pin_file, ret_file,
		    ret_len)) != 0) {
			snprintf(err, errlen, "--pin-file %s: %s", pin_file,
			    r == SG_ERR_PERMISSIONS ? "must be yours and "
			    "mode 0600" : sg_strerror(r));
			return r;
		}
		*ret = *ret_file;
		return 0;
	}
	snprintf(prompt, sizeof(prompt), "PIN for token %s: ",
	    sg_cli_esc(token));
	if ((r = sg_cli_tty_read(prompt, 0, buf, cap, ret_len)) != 0) {
		snprintf(err, errlen, "cannot read the PIN from the terminal "
		    "(use --pin-file): %s", sg_strerror(r));
		return SG_ERR_PIN;
	}
	*ret = buf;
	return 0;
}

/* The key (object label or id) on an open token, fit for approvals. */
static int
p11_signer_key(struct sg_cli_signer *s, struct sg_p11_token *t,
    const char *token, const char *object, const uint8_t *id,
    size_t id_len, char *err, size_t errlen)
{
	int r;

	if ((r = sg_p11_find_key(t, object[0] != '\0' ? object : NULL, id,
	    id_len, &s->p11_key)) != 0) {
		snprintf(err, errlen, "token %s: no single private key %s%s: %s",
		    sg_cli_esc(token), object[0] ? "labelled " : "with that id",
		    object[0] ? sg_cli_esc(object) : "", sg_strerror(r));
		return r;
	}
	if ((s->scheme = sg_approval_scheme(sg_p11_key_alg(s->p11_key))) ==
	    SG_SIG_NONE) {
		snprintf(err, errlen, "the card's key is neither ECDSA nor RSA");
		return SG_ERR_MECHANISM;
	}
	if ((s->pub = public_copy(sg_p11_key_public(s->p11_key))) == NULL) {
		snprintf(err, errlen, "the card's key has no usable public key");
		return SG_ERR_CRYPTO;
	}
	return 0;
}

int
sg_cli_signer_pkcs11(const char *module, const char *uri,
    const char *pin_file, struct sg_cli_signer **ret, char *err,
    size_t errlen)
{
	struct sg_cli_signer *s = NULL;
	struct sg_p11_token *t = NULL;
	char token[SG_TOKEN_LABEL_SIZE], object[P11_OBJECT_MAX];
	char pin_buf[SG_MAX_SECRET_SIZE + 1], *pin_file_buf = NULL;
	uint8_t id[SG_P11_ID_MAX];
	size_t id_len = 0, pin_len = 0;
	const char *pin;
	int r;

	if (p11_uri_split(uri, token, object, id, &id_len) != 0) {
		snprintf(err, errlen, "%s", P11_URI_HELP);
		return SG_ERR_INVALID;
	}
	if ((r = read_pin(pin_file, token, pin_buf, sizeof(pin_buf),
	    &pin_file_buf, &pin, &pin_len, err, errlen)) != 0)
		goto out;       /* wipes what a failed prompt left */
	r = SG_ERR_NOMEM;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		goto out;
	if ((r = sg_p11_load(module, &s->p11)) != 0) {
		snprintf(err, errlen, "cannot load PKCS#11 module %s: %s",
		    module, sg_strerror(r));
		goto out;
	}
	r = sg_p11_open_token(s->p11, token, pin, pin_len, &t);
	/* The token has the PIN now (or refused it); we keep no copy. */
	explicit_bzero(pin_buf, sizeof(pin_buf));
	sg_freezero(pin_file_buf, pin_len);
	pin_file_buf = NULL;
	if (r != 0) {
		snprintf(err, errlen, "token %s: %s (%s)", sg_cli_esc(token),
		    sg_strerror(r), sg_p11_rv_name(sg_p11_last_rv()));
		goto out;
	}
	if ((r = p11_signer_key(s, t, token, object, id, id_len, err,
	    errlen)) != 0)
		goto out;
	*ret = s;
	s = NULL;
out:
	explicit_bzero(pin_buf, sizeof(pin_buf));
	sg_freezero(pin_file_buf, pin_len);
	sg_cli_signer_free(s);
	return r;
}

static int
sign_pae(struct sg_cli_signer *s, const uint8_t *pae, size_t pae_len,
    uint8_t *sig, size_t cap, size_t *ret_len)
{
	uint8_t digest[32];
	EVP_MD_CTX *md = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	size_t len = cap;
	int r = SG_ERR_CRYPTO;

	if (s->p11_key != NULL) {
		sg_sha256(pae, pae_len, digest);
		return sg_p11_sign(s->p11_key, s->scheme, SG_DIGEST_SHA256,
		    digest, sizeof(digest), sig, cap, ret_len);
	}
	if ((md = EVP_MD_CTX_new()) == NULL)
		return SG_ERR_NOMEM;
	if (EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, s->key) != 1)
		goto out;
	if (s->scheme == SG_SIG_RSA_PKCS1 &&
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)
		goto out;
	if (EVP_DigestSign(md, NULL, &len, pae, pae_len) != 1 || len > cap)
		goto out;
	if (EVP_DigestSign(md, sig, &len, pae, pae_len) != 1)
		goto out;
	*ret_len = len;
	r = 0;
out:
	EVP_MD_CTX_free(md);
	return r;
}

int
sg_cli_approval_envelope(struct sg_cli_signer *s, const char *statement,
    size_t len, int approve, const char *keyid, char **ret_json,
    char *err, size_t errlen)
{
	return sg_cli_approval_envelope_reason(s, statement, len, approve,
	    NULL, keyid, ret_json, err, errlen);
}

int
sg_cli_approval_envelope_reason(struct sg_cli_signer *s,
    const char *statement, size_t len, int approve, const char *reason,
    const char *keyid, char **ret_json, char *err, size_t errlen)
{
	uint8_t *body = NULL, *pae = NULL, sig[SG_MAX_SIG], digest[32];
	size_t body_len = 0, pae_len = 0, sig_len = 0;
	int r;

	if ((r = sg_body_build_reason(statement, len, approve, reason, &body,
	    &body_len)) != 0) {
		snprintf(err, errlen, "cannot build the approval body");
		goto out;
	}
	if ((r = sg_dsse_pae(SG_DSSE_TYPE, body, body_len, &pae,
	    &pae_len)) != 0) {
		snprintf(err, errlen, "cannot build the PAE");
		goto out;
	}
	if ((r = sign_pae(s, pae, pae_len, sig, sizeof(sig), &sig_len)) != 0) {
		snprintf(err, errlen, "signing failed: %s", sg_strerror(r));
		goto out;
	}
	sg_sha256(pae, pae_len, digest);
	if (sg_verify(s->pub, s->scheme, SG_DIGEST_SHA256, digest,
	    sizeof(digest), sig, sig_len) != 0) {
		snprintf(err, errlen, "the signature just made does not verify "
		    "with the key's public key; nothing posted");
		r = SG_ERR_VERIFY;
		goto out;
	}
	if ((r = sg_envelope_build(SG_DSSE_TYPE, body, body_len, keyid, sig,
	    sig_len, ret_json)) != 0) {
		snprintf(err, errlen, "cannot build the envelope: %s",
		    sg_strerror(r));
		goto out;
	}
	r = 0;
out:
	free(body);
	free(pae);
	return r;
}

struct approve_args {
	const char *id;
	const char *key_file;
	const char *uri;
	const char *module;
	const char *pin_file;
	const char *as;
	const char *reason;          /* reject only: signed with it */
	const char *policy;          /* --policy SHA256: a pending policy */
	int yes;
	int help;
};

static int
approve_option(void *arg, int opt, const char *v)
{
	struct approve_args *a = arg;

	switch (opt) {
	case OPT_KEY:
		a->key_file = v;
		return 0;
	case OPT_PKCS11:
		a->uri = v;
		return 0;
	case OPT_MODULE:
		a->module = v;
		return 0;
	case OPT_PIN_FILE:
		a->pin_file = v;
		return 0;
	case OPT_AS:
		a->as = v;
		return 0;
	case OPT_REASON:
		a->reason = v;
		return 0;
	case OPT_POLICY:
		a->policy = v;
		return 0;
	case 'y':
	case OPT_YES:
		a->yes = 1;
		return 0;
	}
	return 1;
}

/* The choice of key: exactly one of a file and a token, and a usable URI
 * for the token. */
static int
approve_check_key(const char *cmd, const struct approve_args *a)
{
	char token[SG_TOKEN_LABEL_SIZE], object[P11_OBJECT_MAX];
	uint8_t id[SG_P11_ID_MAX];
	size_t id_len;

	if ((a->key_file == NULL) == (a->uri == NULL)) {
		fprintf(stderr, "signgate: %s needs exactly one of --key FILE "
		    "and --pkcs11 URI\n", cmd);
		return SG_EXIT_USAGE;
	}
	if (a->uri == NULL && (a->module != NULL || a->pin_file != NULL)) {
		fprintf(stderr, "signgate: --module and --pin-file go with "
		    "--pkcs11\n");
		return SG_EXIT_USAGE;
	}
	if (a->uri != NULL && p11_uri_split(a->uri, token, object, id,
	    &id_len) != 0) {
		fprintf(stderr, "signgate: %s\n", P11_URI_HELP);
		return SG_EXIT_USAGE;
	}
	return 0;
}

/* A reason goes with a reject, and is text as every process reads it
 * (sg_text_ok(), 1 to SG_REJECT_REASON_MAX bytes, one line). */
static int
approve_check_reason(const char *cmd, const struct approve_args *a)
{
	struct sg_text_fault tf;
	char why[128];
	size_t n;

	if (a->reason == NULL)
		return 0;
	if (strcmp(cmd, "reject") != 0) {
		fprintf(stderr, "signgate: --reason goes with reject\n");
		return SG_EXIT_USAGE;
	}
	n = strlen(a->reason);
	if (n == 0 || n > SG_REJECT_REASON_MAX) {
		fprintf(stderr, "signgate: --reason: 1 to %d bytes\n",
		    SG_REJECT_REASON_MAX);
		return SG_EXIT_USAGE;
	}
	if (sg_text_ok(a->reason, n, &tf) != 0) {
		sg_text_fault_describe(&tf, why, sizeof(why));
		fprintf(stderr, "signgate: --reason: %s\n", why);
		return SG_EXIT_USAGE;
	}
	return 0;
}

/* What the options say together, once parsed. */
static int
approve_check(int argc, char **argv, struct approve_args *a)
{
	const char *env;
	int ex;

	if (a->policy != NULL) {
		if (strcmp(argv[0], "approve") != 0 || argc - optind != 0 ||
		    !sg_lower_hex_ok(a->policy, SG_SHA256_HEX_LEN)) {
			fprintf(stderr, "signgate: approve --policy SHA256 (%d "
			    "lower-case hex characters) and no ID; a policy "
			    "change is approved or left pending, not "
			    "rejected\n", SG_SHA256_HEX_LEN);
			return SG_EXIT_USAGE;
		}
		a->id = a->policy;
	} else if (argc - optind != 1 || !sg_request_id_ok(argv[optind])) {
		fprintf(stderr, "signgate: %s needs one ID (%d "
		    "lower-case hex characters)\n", argv[0], SG_REQUEST_ID_LEN);
		return SG_EXIT_USAGE;
	} else
		a->id = argv[optind];
	if ((ex = approve_check_key(argv[0], a)) != 0)
		return ex;
	if ((ex = approve_check_reason(argv[0], a)) != 0)
		return ex;
	if (a->as != NULL && !sg_name_ok(a->as, SG_NAME_LEN_MAX)) {
		fprintf(stderr, "signgate: --as: a principal name "
		    "([A-Za-z0-9._-])\n");
		return SG_EXIT_USAGE;
	}
	if (!a->yes && !isatty(STDIN_FILENO)) {
		fprintf(stderr, "signgate: stdin is not a terminal: confirm "
		    "with --yes\n");
		return SG_EXIT_USAGE;
	}
	if (a->uri != NULL && a->module == NULL) {
		env = getenv("SIGNGATE_PKCS11_MODULE");
		a->module = env != NULL && *env != '\0' ? env :
		    SG_CLI_DEFAULT_MODULE;
	}
	return 0;
}

static int
approve_parse(int argc, char **argv, struct sg_cli_conf *conf,
    struct approve_args *ret)
{
	static const struct option own[] = {
		{ "key", required_argument, NULL, OPT_KEY },
		{ "pkcs11", required_argument, NULL, OPT_PKCS11 },
		{ "module", required_argument, NULL, OPT_MODULE },
		{ "pin-file", required_argument, NULL, OPT_PIN_FILE },
		{ "as", required_argument, NULL, OPT_AS },
		{ "yes", no_argument, NULL, OPT_YES },
		{ "reason", required_argument, NULL, OPT_REASON },
		{ "policy", required_argument, NULL, OPT_POLICY },
		{ NULL, 0, NULL, 0 },
	};
	struct approve_args a;
	const struct sg_cli_cmdline cl = { argv[0], own, "hvy",
	    approve_option, &a };
	int ex;

	memset(&a, 0, sizeof(a));
	if ((ex = sg_cli_getopt(argc, argv, &cl, conf, &a.help)) != 0)
		return ex;
	if (!a.help && (ex = approve_check(argc, argv, &a)) != 0)
		return ex;
	*ret = a;
	return 0;
}

/*
 * Everything that must hold before the officer is even asked: pending,
 * not expired, statement agrees with the request, statement names the
 * key's real SPKI.  Returns an exit status.
 */
static int
precheck(struct sg_cli_http *h, const char *id, json_t **ret_req,
    struct sg_statement *ret_st)
{
	json_t *req = NULL, *keys = NULL, *key;
	struct sg_statement st;
	EVP_PKEY *pub = NULL;
	char path[128], err[2048], spki[SG_SHA256_HEX_SIZE];
	int ex;

	snprintf(path, sizeof(path), "/v1/requests/%s", id);
	if ((ex = sg_cli_api(h, "GET", path, NULL, NULL, 0, &req, NULL)) != 0)
		goto out;
	if (sg_cli_req_state(req) != SG_REQ_PENDING) {
		fprintf(stderr, "signgate: request %s is %s, not pending: "
		    "nothing to decide\n", id,
		    sg_cli_esc(sg_cli_jstr(req, "state")));
		ex = SG_EXIT_REFUSED;
		goto out;
	}
	ex = SG_EXIT_LOCAL;
	if (sg_cli_request_statement(req, &st, err, sizeof(err)) != 0 ||
	    strcmp(st.request, id) != 0) {
		if (strcmp(err, "") == 0)
			snprintf(err, sizeof(err), "asked for request %s", id);
		sg_cli_print_errors(err);
		fprintf(stderr, "signgate: refusing to sign a statement that "
		    "disagrees with the request\n");
		goto out;
	}
	if ((long long)time(NULL) >= st.expires) {
		fprintf(stderr, "signgate: request %s has expired\n", id);
		ex = SG_EXIT_REFUSED;
		goto out;
	}
	if ((ex = sg_cli_api(h, "GET", "/v1/keys", NULL, NULL, 0, &keys,
	    NULL)) != 0)
		goto out;
	ex = SG_EXIT_LOCAL;
	if ((key = sg_cli_find_key(keys, st.key)) == NULL) {
		fprintf(stderr, "signgate: key %s is not in /v1/keys\n", st.key);
		goto out;
	}
	if (sg_cli_key_public(key, &pub, spki, err, sizeof(err)) != 0) {
		fprintf(stderr, "signgate: %s\n", err);
		goto out;
	}
	if (strcmp(spki, st.spki_sha256) != 0) {
		fprintf(stderr, "signgate: the statement names key %s with "
		    "spki sha256:%s, but the key's public key is sha256:%s\n",
		    st.key, st.spki_sha256, spki);
		goto out;
	}
	*ret_req = req;
	req = NULL;
	*ret_st = st;
	ex = SG_EXIT_OK;
out:
	EVP_PKEY_free(pub);
	json_decref(keys);
	json_decref(req);
	return ex;
}

/*
 * A release: the officer approves what she can read.  The manifest is
 * fetched and its root and count recomputed here; a statement naming any
 * other manifest is not signed.  A rejection goes on without it (a
 * manifest that cannot be read is a reason to reject, not to be stuck).
 */
static int
release_summary(struct sg_cli_http *h, const struct sg_statement *st,
    int approve)
{
	char **lines = NULL;
	size_t n = 0, i;
	int ex;

	if ((ex = sg_cli_fetch_manifest(h, st, &lines, &n)) != 0) {
		if (!approve)
			return SG_EXIT_OK;
		fprintf(stderr, "signgate: refusing to approve release %s: "
		    "its manifest does not check out\n", st->request);
		return ex;
	}
	printf("manifest: sha256:%s %zu (matches the statement)\n",
	    st->manifest_root, n);
	for (i = 0; i < n && i < SUMMARY_LINES; i++)
		printf("  %s\n", sg_cli_esc(lines[i]));
	if (n > SUMMARY_LINES)
		printf("  ... %zu more (signgate show %s --manifest)\n",
		    n - SUMMARY_LINES, st->request);
	free(lines);
	return SG_EXIT_OK;
}

/* The officer's name (the envelope's keyid): --as, else the client
 * certificate's CN. */
static int
officer_name(const struct sg_cli_conf *conf, const struct approve_args *a,
    char keyid[SG_NAME_SIZE])
{
	if (a->as != NULL) {
		snprintf(keyid, SG_NAME_SIZE, "%s", a->as);
		return 0;
	}
	if (conf->cert == NULL ||
	    sg_cli_cert_cn(conf->cert, keyid, SG_NAME_SIZE) != 0) {
		fprintf(stderr, "signgate: cannot take the officer name from "
		    "the client certificate's CN: give --as NAME\n");
		return SG_EXIT_USAGE;
	}
	return 0;
}

/* The officer's yes, unless --yes gave it already; an exit status. */
static int
confirm(const struct approve_args *a, int approve, const char *keyid,
    enum sg_kind kind)
{
	char prompt[256];
	int r;

	if (a->yes)
		return 0;
	snprintf(prompt, sizeof(prompt), "%s %s %s as %s? [y/N] ",
	    approve ? "Approve" : "Reject", a->policy != NULL ? "policy" :
	    sg_kind_str(kind), a->id, keyid);
	if ((r = sg_cli_tty_confirm(prompt)) != 0) {
		fprintf(stderr, "signgate: %s\n", r == SG_ERR_FORBIDDEN ?
		    "declined; nothing posted" :
		    "no answer from the terminal; nothing posted");
		return SG_EXIT_LOCAL;
	}
	return 0;
}

/*
 * Signs the decision on the statement with the officer's key (the token
 * is opened here, after confirmation), then frees the key: the envelope
 * is all that is needed afterwards.
 */
static int
sign_decision(const struct approve_args *a, struct sg_cli_signer **signer,
    const json_t *req, int approve, const char *keyid, char **ret)
{
	const char *stmt = sg_cli_jstr(req, "statement");
	char err[1024];
	int r = 0;

	if (a->uri != NULL)
		r = sg_cli_signer_pkcs11(a->module, a->uri, a->pin_file, signer,
		    err, sizeof(err));
	if (r == 0)
		r = sg_cli_approval_envelope_reason(*signer, stmt,
		    strlen(stmt), approve, a->reason, keyid, ret, err,
		    sizeof(err));
	sg_cli_signer_free(*signer);
	*signer = NULL;
	if (r != 0) {
		fprintf(stderr, "signgate: %s\n", err);
		return SG_EXIT_LOCAL;
	}
	return 0;
}

/* Posts the envelope and prints where the request stands after it. */
static int
post_decision(struct sg_cli_http *h, const char *id, const char *envelope,
    const char *keyid, const char *decision)
{
	json_t *after = NULL;
	char path[160], missing[1024];
	int ex;

	snprintf(path, sizeof(path), "/v1/requests/%s/approvals", id);
	if ((ex = sg_cli_api(h, "POST", path, envelope, NULL, 0, &after,
	    NULL)) != 0)
		return ex;
	printf("posted: %s %s\n", keyid, decision);
	printf("state: %s\n", sg_cli_esc(sg_cli_jstr(after, "state")));
	sg_cli_missing(after, missing, sizeof(missing));
	printf("missing: %s\n", missing);
	json_decref(after);
	return SG_EXIT_OK;
}

/* A policy's text by SHA-256, which must be its SHA-256; parsed. */
static int
fetch_policy(struct sg_cli_http *h, const char *sha, struct sg_policy **ret)
{
	char path[128], hex[SG_SHA256_HEX_SIZE], err[1024], *text = NULL;
	uint8_t d[32];
	size_t len = 0;
	int ex;

	snprintf(path, sizeof(path), "/v1/policies/%s", sha);
	if ((ex = sg_cli_api_text(h, path, &text, &len)) != 0)
		return ex;
	sg_sha256(text, len, d);
	sg_hex_encode(d, sizeof(d), hex);
	ex = SG_EXIT_LOCAL;
	if (strcmp(hex, sha) != 0)
		fprintf(stderr, "signgate: the gateway's text of policy "
		    "sha256:%s is sha256:%s\n", sha, hex);
	else if (sg_policy_parse(sha, text, len, ret, err, sizeof(err)) != 0)
		fprintf(stderr, "signgate: policy sha256:%s: %s\n", sha, err);
	else
		ex = 0;
	free(text);
	return ex;
}

/*
 * A pending policy: the version the gateway says is pending is this one,
 * both texts (it and the policy in force) have the SHA-256 they are
 * named by, and the statement built here from them is the one the
 * gateway shows.  *ret the statement (malloc'd).
 */
static int
policy_precheck(struct sg_cli_http *h, const char *sha, char **ret)
{
	struct sg_policy *next = NULL, *prev = NULL;
	json_t *pend = NULL, *prevj;
	const char *psha, *shown;
	char *stmt = NULL;
	size_t len = 0;
	int ex;

	if ((ex = sg_cli_api(h, "GET", "/v1/policies/pending", NULL, NULL, 0,
	    &pend, NULL)) != 0)
		goto out;
	ex = SG_EXIT_REFUSED;
	if (strcmp(sg_cli_jstr(pend, "sha256"), sha) != 0) {
		fprintf(stderr, "signgate: policy sha256:%s is not pending "
		    "(sha256:%s is)\n", sha,
		    sg_cli_esc(sg_cli_jstr(pend, "sha256")));
		goto out;
	}
	prevj = json_object_get(pend, "previous");
	psha = json_is_object(prevj) ? json_string_value(json_object_get(prevj,
	    "sha256")) : NULL;
	ex = SG_EXIT_LOCAL;
	if (psha == NULL || !sg_lower_hex_ok(psha, SG_SHA256_HEX_LEN)) {
		fprintf(stderr, "signgate: the pending policy names no valid "
		    "previous policy\n");
		goto out;
	}
	if ((ex = fetch_policy(h, sha, &next)) != 0 ||
	    (ex = fetch_policy(h, psha, &prev)) != 0)
		goto out;
	ex = SG_EXIT_LOCAL;
	if (sg_policy_approval_statement(next, prev, &stmt, &len) != 0)
		goto out;
	shown = sg_cli_jstr(pend, "statement");
	if (strcmp(shown, stmt) != 0) {
		fprintf(stderr, "signgate: the gateway shows another statement "
		    "than the one built from the two policies; refusing to "
		    "sign\n");
		goto out;
	}
	printf("policy: %s@%llu sha256:%s\n", sg_policy_name(next),
	    (unsigned long long)sg_policy_version(next), sha);
	printf("replaces: %s@%llu sha256:%s\n", sg_policy_name(prev),
	    (unsigned long long)sg_policy_version(prev), psha);
	*ret = stmt;
	stmt = NULL;
	ex = 0;
out:
	free(stmt);
	sg_policy_free(next);
	sg_policy_free(prev);
	json_decref(pend);
	return ex;
}

/* approve --policy: the statement checked, signed and posted. */
static int
approve_policy(struct sg_cli_http *h, const struct approve_args *a,
    struct sg_cli_signer **signer, const char *keyid)
{
	json_t *after = NULL;
	char *stmt = NULL, *envelope = NULL, path[160], err[1024];
	int ex, r = 0;

	if ((ex = policy_precheck(h, a->policy, &stmt)) != 0)
		goto out;
	printf("decision: approve\n");
	fflush(stdout);
	if ((ex = confirm(a, 1, keyid, SG_KIND_REQUEST)) != 0)
		goto out;
	if (a->uri != NULL)
		r = sg_cli_signer_pkcs11(a->module, a->uri, a->pin_file, signer,
		    err, sizeof(err));
	if (r == 0)
		r = sg_cli_approval_envelope(*signer, stmt, strlen(stmt), 1,
		    keyid, &envelope, err, sizeof(err));
	sg_cli_signer_free(*signer);
	*signer = NULL;
	if (r != 0) {
		fprintf(stderr, "signgate: %s\n", err);
		ex = SG_EXIT_LOCAL;
		goto out;
	}
	snprintf(path, sizeof(path), "/v1/policies/%s/approvals", a->policy);
	if ((ex = sg_cli_api(h, "POST", path, envelope, NULL, 0, &after,
	    NULL)) != 0)
		goto out;
	printf("posted: %s approve\n", keyid);
	printf("status: %s\n", sg_cli_esc(sg_cli_jstr(after, "status")));
	ex = SG_EXIT_OK;
out:
	json_decref(after);
	free(envelope);
	free(stmt);
	return ex;
}

int
sg_cli_cmd_approve(int argc, char **argv, struct sg_cli_conf *conf)
{
	struct approve_args a;
	struct sg_cli_signer *signer = NULL;
	struct sg_cli_http *h = NULL;
	struct sg_statement st;
	json_t *req = NULL;
	const char *decision;
	char keyid[SG_NAME_SIZE], err[1024], *envelope = NULL;
	int ex, approve;

	approve = strcmp(argv[0], "approve") == 0;
	decision = approve ? "approve" : "reject";
	if ((ex = approve_parse(argc, argv, conf, &a)) != 0)
		return ex;
	if (a.help) {
		sg_cli_usage(stdout, argv[0]);
		return SG_EXIT_OK;
	}
	/* Sets up the client only; nothing goes over the network yet. */
	if ((ex = sg_cli_connect(conf, &h)) != 0)
		return ex;
	if ((ex = officer_name(conf, &a, keyid)) != 0)
		goto out;
	/* A file key fails early (permissions, format) before any network. */
	if (a.key_file != NULL && sg_cli_signer_file(a.key_file, &signer, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "signgate: %s\n", err);
		ex = SG_EXIT_LOCAL;
		goto out;
	}
	if (a.policy != NULL) {
		ex = approve_policy(h, &a, &signer, keyid);
		goto out;
	}
	if ((ex = precheck(h, a.id, &req, &st)) != 0)
		goto out;
	sg_cli_print_request(req, &st);
	if (st.kind == SG_KIND_RELEASE &&
	    (ex = release_summary(h, &st, approve)) != 0)
		goto out;
	printf("decision: %s\n", decision);
	if (a.reason != NULL)
		printf("reason: %s\n", sg_cli_esc(a.reason));
	fflush(stdout);
	if ((ex = confirm(&a, approve, keyid, st.kind)) != 0 ||
	    (ex = sign_decision(&a, &signer, req, approve, keyid,
	    &envelope)) != 0)
		goto out;
	ex = post_decision(h, a.id, envelope, keyid, decision);
out:
	ex = sg_cli_flush(ex);
	free(envelope);
	sg_cli_signer_free(signer);
	json_decref(req);
	sg_cli_http_free(h);
	return ex;
}
