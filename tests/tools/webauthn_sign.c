/*
 * webauthn_sign: a software security key for tests.  It makes WebAuthn
 * credentials and approval envelopes whose signature is an assertion, as
 * a browser and a FIDO2 key would (docs/API.md, "Approvals made with a
 * security key").
 *
 *   webauthn_sign keygen [--rsa] KEYFILE RP_ID ORIGIN [user-verification]
 *   webauthn_sign approve [options] KEYFILE OFFICER
 *       (REQUEST_JSON | --body FILE)
 *
 * keygen writes the credential's private key to KEYFILE (PEM, mode 0600)
 * and its id, RP ID and origin to KEYFILE.cred, and prints the policy's
 * lines for it: "webauthn-key <id> rp-id <rp-id> origin <origin>
 * [user-verification]" and the PEM public key, indented.  The key is
 * P-256 (ES256), or RSA 2048 (RS256) with --rsa.
 *
 * approve reads the statement of a request object (its "statement"), or a
 * whole body (statement and decision lines) with --body, and prints the
 * DSSE envelope by OFFICER: the challenge is SHA-256 of the PAE of the
 * body, the client data JSON is what a browser at the credential's origin
 * writes, the authenticator data has the RP ID's hash and the flags.
 * Options:
 *   --reject             decision reject (default approve)
 *   --reason TEXT        a reject's reason line
 *   --origin ORIGIN      the browser's origin instead of the credential's
 *   --cred-id ID         another credential id (base64url) in the envelope
 *   --tamper             change a byte of the client data after signing
 *   --no-up              clear the user-present flag
 *   --uv                 set the user-verified flag
 * Private keys are read from files only, never from the command line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "sg_crypto.h"
#include "sg_dsse.h"
#include "sg_webauthn.h"

#include "sg_fixture.h"

struct cred_file {
	char id[2 * SG_WEBAUTHN_CRED_ID_MAX];
	char rp_id[SG_WEBAUTHN_RP_ID_SIZE];
	char origin[SG_WEBAUTHN_ORIGIN_SIZE];
};

static int
usage(void)
{
	fprintf(stderr, "usage: webauthn_sign keygen [--rsa] KEYFILE RP_ID "
	    "ORIGIN [user-verification]\n"
	    "       webauthn_sign approve [--reject] [--reason TEXT] "
	    "[--origin O] [--cred-id ID]\n"
	    "           [--tamper] [--no-up] [--uv] KEYFILE OFFICER "
	    "(REQUEST_JSON | --body FILE)\n");
	return 2;
}

static void
print_indented(const char *pem)
{
	const char *l, *nl;

	for (l = pem; *l != '\0'; l = nl + 1) {
		if ((nl = strchr(l, '\n')) == NULL)
			break;
		printf("    %.*s\n", (int)(nl - l), l);
	}
}

static int
keygen(int argc, char **argv)
{
	EVP_PKEY *k = NULL;
	uint8_t id[16];
	char *id64 = NULL, *pem = NULL, path[4096];
	FILE *f = NULL;
	int rsa = 0, uv, ex = 1;

	if (argc > 0 && strcmp(argv[0], "--rsa") == 0) {
		rsa = 1;
		argc--;
		argv++;
	}
	if (argc < 3 || argc > 4 ||
	    (argc == 4 && strcmp(argv[3], "user-verification") != 0))
		return usage();
	uv = argc == 4;
	k = rsa ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048) :
	    EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (k == NULL || RAND_bytes(id, sizeof(id)) != 1 ||
	    (id64 = sg_fx_b64url(id, sizeof(id))) == NULL ||
	    (pem = sg_fx_pubkey_pem(k)) == NULL)
		goto out;
	if (sg_fx_write_key(argv[0], k) != 0) {
		fprintf(stderr, "webauthn_sign: cannot write %s\n", argv[0]);
		goto out;
	}
	snprintf(path, sizeof(path), "%s.cred", argv[0]);
	if ((f = fopen(path, "w")) == NULL ||
	    fprintf(f, "%s\n%s\n%s\n", id64, argv[1], argv[2]) < 0 ||
	    fclose(f) != 0) {
		fprintf(stderr, "webauthn_sign: cannot write %s\n", path);
		goto out;
	}
	printf("    webauthn-key %s rp-id %s origin %s%s\n", id64, argv[1],
	    argv[2], uv ? " user-verification" : "");
	print_indented(pem);
	ex = 0;
out:
	EVP_PKEY_free(k);
	free(id64);
	free(pem);
	return ex;
}

static int
read_cred(const char *keyfile, struct cred_file *c)
{
	char path[4096];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s.cred", keyfile);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	ok = fscanf(f, "%2045s %255s %319s", c->id, c->rp_id, c->origin) == 3;
	fclose(f);
	return ok ? 0 : -1;
}

/* The whole of a file (NUL-terminated), or NULL. */
static char *
slurp(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0, r;

	if (f == NULL)
		return NULL;
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = (n + 4096 + 1) * 2;
			if ((buf = realloc(buf, cap)) == NULL)
				break;
		}
		if ((r = fread(buf + n, 1, 4096, f)) == 0)
			break;
		n += r;
	}
	fclose(f);
	if (buf != NULL) {
		buf[n] = '\0';
		*ret_len = n;
	}
	return buf;
}

struct approve_opts {
	int approve;
	const char *reason;
	const char *origin;
	const char *cred_id;
	const char *body_file;
	int tamper;
	uint8_t flags;
};

/* The body to sign: a body file as it is, or the request's statement and
 * the decision. */
static int
make_body(const char *request_file, const struct approve_opts *o,
    uint8_t **ret, size_t *ret_len)
{
	json_t *req = NULL, *st;
	char *text;
	size_t len = 0;
	int r = -1;

	if ((text = slurp(o->body_file != NULL ? o->body_file : request_file,
	    &len)) == NULL)
		return -1;
	if (o->body_file != NULL) {
		*ret = (uint8_t *)text;
		*ret_len = len;
		return 0;
	}
	if ((req = json_loadb(text, len, 0, NULL)) != NULL &&
	    json_is_string(st = json_object_get(req, "statement")) &&
	    sg_body_build_reason(json_string_value(st),
	    json_string_length(st), o->approve, o->reason, ret,
	    ret_len) == 0)
		r = 0;
	json_decref(req);
	free(text);
	return r;
}

static int
approve(int argc, char **argv)
{
	struct approve_opts o = { 1, NULL, NULL, NULL, NULL, 0,
	    SG_WEBAUTHN_FLAG_UP };
	struct sg_fx_wa_opts fo;
	struct sg_fx_wa_assertion a;
	struct sg_envelope_webauthn w;
	struct cred_file c;
	EVP_PKEY *k = NULL;
	uint8_t *body = NULL, *pae = NULL, hash[32];
	uint8_t id[SG_WEBAUTHN_CRED_ID_MAX];
	size_t body_len = 0, pae_len = 0, id_len = 0;
	char *json = NULL;
	int i, ex = 1;

	memset(&a, 0, sizeof(a));
	for (i = 0; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--reject") == 0)
			o.approve = 0;
		else if (strcmp(argv[i], "--tamper") == 0)
			o.tamper = 1;
		else if (strcmp(argv[i], "--no-up") == 0)
			o.flags &= (uint8_t)~SG_WEBAUTHN_FLAG_UP;
		else if (strcmp(argv[i], "--uv") == 0)
			o.flags |= SG_WEBAUTHN_FLAG_UV;
		else if (i + 1 < argc && strcmp(argv[i], "--reason") == 0)
			o.reason = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--origin") == 0)
			o.origin = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--cred-id") == 0)
			o.cred_id = argv[++i];
		else
			return usage();
	}
	argc -= i;
	argv += i;
	if (argc == 4 && strcmp(argv[2], "--body") == 0)
		o.body_file = argv[3];
	else if (argc != 3)
		return usage();
	if (read_cred(argv[0], &c) != 0 || (k = sg_fx_read_key(argv[0])) == NULL) {
		fprintf(stderr, "webauthn_sign: cannot read the credential "
		    "%s (and %s.cred)\n", argv[0], argv[0]);
		return 1;
	}
	if (make_body(argv[2], &o, &body, &body_len) != 0) {
		fprintf(stderr, "webauthn_sign: no statement or body to "
		    "sign\n");
		goto out;
	}
	if (sg_dsse_pae(SG_DSSE_TYPE, body, body_len, &pae, &pae_len) != 0)
		goto out;
	sg_sha256(pae, pae_len, hash);
	memset(&fo, 0, sizeof(fo));
	fo.rp_id = c.rp_id;
	fo.origin = o.origin != NULL ? o.origin : c.origin;
	fo.flags = o.flags;
	fo.cross_origin = 1;
	if (sg_fx_wa_sign(k, &fo, hash, sizeof(hash), &a) != 0)
		goto out;
	if (o.tamper)                   /* inside the challenge's value */
		a.client_data[40] ^= 0x01;
	if (sg_b64url_decode(o.cred_id != NULL ? o.cred_id : c.id,
	    strlen(o.cred_id != NULL ? o.cred_id : c.id), id, sizeof(id),
	    &id_len) != 0 || id_len == 0) {
		fprintf(stderr, "webauthn_sign: not a credential id\n");
		goto out;
	}
	w.cred_id = id;
	w.cred_id_len = id_len;
	w.authdata = a.authdata;
	w.authdata_len = a.authdata_len;
	w.client_data = (uint8_t *)a.client_data;
	w.client_data_len = a.client_data_len;
	if (sg_envelope_build_webauthn(SG_DSSE_TYPE, body, body_len, argv[1],
	    a.sig, a.sig_len, &w, &json) != 0) {
		fprintf(stderr, "webauthn_sign: cannot build the envelope\n");
		goto out;
	}
	printf("%s\n", json);
	ex = 0;
out:
	EVP_PKEY_free(k);
	sg_fx_wa_free(&a);
	free(body);
	free(pae);
	free(json);
	return ex;
}

int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "keygen") == 0)
		return keygen(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "approve") == 0)
		return approve(argc - 2, argv + 2);
	return usage();
}
