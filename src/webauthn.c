/*
 * WebAuthn assertions checked against a credential of the policy (see
 * include/sg_webauthn.h and docs/API.md, "Approvals made with a security
 * key").
 *
 * Design: the browser's client data JSON is the one part of an assertion
 * whose layout the relying party does not control, so it is read the way
 * the envelope is: jansson with JSON_REJECT_DUPLICATES after a size cap,
 * one object, and each member we rely on compared byte for byte with what
 * it must be (the challenge as the exact base64url text, not decoded and
 * compared, so that there is one spelling).  Members we do not use are
 * allowed, as WebAuthn requires ("tokenBinding", extensions of browsers).
 *
 * The checks run in a fixed order, cheapest and most telling first (the
 * credential, the client data, the authenticator data, then the
 * signature), and the first failure is the answer: `why` names the part,
 * so that an officer whose browser sent another origin is told that and
 * not merely that a signature failed.
 *
 * The signature counter is not checked (see the header).  Nothing here
 * does I/O or keeps state: the gateway, the signer process and the offline
 * verifier all call sg_webauthn_verify() with the credential the policy
 * file holds.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_util.h"
#include "sg_webauthn.h"

#define RP_ID_HASH_LEN 32
#define AUTHDATA_MIN 37          /* rpIdHash, flags, signCount */
#define CHALLENGE_MAX 64         /* bytes; ours are 32 */

/*
 * base64url without padding is standard base64 with two letters swapped
 * and the padding dropped: both directions go through sg_b64_encode()
 * and sg_b64_decode() (strict, canonical trailing bits), so there is one
 * codec.
 */
int
sg_b64url_encode(const uint8_t *in, size_t len, char **ret)
{
	char *out;
	size_t i;

	if ((in == NULL && len != 0) || ret == NULL)
		return SG_ERR_INVALID;
	if ((out = sg_b64_encode(in, len)) == NULL)
		return SG_ERR_NOMEM;
	for (i = 0; out[i] != '\0' && out[i] != '='; i++)
		if (out[i] == '+')
			out[i] = '-';
		else if (out[i] == '/')
			out[i] = '_';
	out[i] = '\0';
	*ret = out;
	return 0;
}

int
sg_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap,
    size_t *ret_len)
{
	char *std;
	uint8_t *buf = NULL;
	size_t i, n = 0;
	int r;

	if ((in == NULL && len != 0) || (out == NULL && cap != 0) ||
	    ret_len == NULL)
		return SG_ERR_INVALID;
	/* One character left over carries only 6 bits: never a whole
	 * byte, so no encoder writes it. */
	if (len % 4 == 1 || len > SIZE_MAX - 4)
		return SG_ERR_INVALID;
	if (len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1) > cap)
		return SG_ERR_BUFFER;
	if ((std = malloc(len + 4)) == NULL)
		return SG_ERR_NOMEM;
	for (i = 0; i < len; i++) {
		/* The standard alphabet's two letters and padding are not
		 * base64url's. */
		if (in[i] == '+' || in[i] == '/' || in[i] == '=') {
			free(std);
			return SG_ERR_INVALID;
		}
		std[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
	}
	while (i % 4 != 0)
		std[i++] = '=';
	r = len == 0 ? 0 : sg_b64_decode(std, i, &buf, &n);
	free(std);
	if (r != 0)
		return SG_ERR_INVALID;
	if (n > cap) {
		free(buf);
		return SG_ERR_BUFFER;
	}
	if (n > 0)
		memcpy(out, buf, n);
	free(buf);
	*ret_len = n;
	return 0;
}

static int fail(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return SG_ERR_VERIFY;
}

/* The member `name` of the client data as a string, or NULL. */
static const char *
member_string(json_t *root, const char *name, size_t *ret_len)
{
	json_t *v = json_object_get(root, name);

	if (v == NULL || !json_is_string(v))
		return NULL;
	*ret_len = json_string_length(v);
	return json_string_value(v);
}

static int
check_string(json_t *root, const char *name, const char *want,
    char *why, size_t whylen)
{
	const char *s;
	size_t n = 0, wl = strlen(want);
	char esc[96];

	if (json_object_get(root, name) == NULL)
		return fail(why, whylen, "clientDataJSON.%s: missing", name);
	if ((s = member_string(root, name, &n)) == NULL)
		return fail(why, whylen, "clientDataJSON.%s: must be a string",
		    name);
	if (n != wl || memcmp(s, want, wl) != 0) {
		sg_escape(s, n, esc, sizeof(esc));
		return fail(why, whylen, "clientDataJSON.%s: '%s', expected "
		    "'%s'", name, esc, want);
	}
	return 0;
}

static int
check_client_data(const struct sg_webauthn_cred *cred,
    const uint8_t *challenge, size_t challenge_len,
    const struct sg_webauthn_assertion *a, char *why, size_t whylen)
{
	json_error_t jerr;
	json_t *root = NULL, *v;
	char *want = NULL, esc[96];
	int r;

	if (a->client_data == NULL || a->client_data_len == 0)
		return fail(why, whylen, "clientDataJSON: missing");
	if (a->client_data_len > SG_WEBAUTHN_CLIENT_DATA_MAX)
		return fail(why, whylen, "clientDataJSON: larger than %d bytes",
		    SG_WEBAUTHN_CLIENT_DATA_MAX);
	if ((root = json_loadb((const char *)a->client_data,
	    a->client_data_len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		sg_escape(jerr.text, strlen(jerr.text), esc, sizeof(esc));
		return fail(why, whylen, "clientDataJSON: not valid JSON: %s",
		    esc);
	}
	if (!json_is_object(root)) {
		r = fail(why, whylen, "clientDataJSON: must be a JSON object");
		goto out;
	}
	if ((r = check_string(root, "type", "webauthn.get", why,
	    whylen)) != 0)
		goto out;
	if (sg_b64url_encode(challenge, challenge_len, &want) != 0) {
		r = fail(why, whylen, "challenge: out of memory");
		goto out;
	}
	if ((r = check_string(root, "challenge", want, why, whylen)) != 0)
		goto out;
	if ((r = check_string(root, "origin", cred->origin, why,
	    whylen)) != 0)
		goto out;
	if ((v = json_object_get(root, "crossOrigin")) != NULL &&
	    !json_is_false(v)) {
		r = fail(why, whylen, "clientDataJSON.crossOrigin: must be "
		    "false or absent (the assertion was made in a frame of "
		    "another origin)");
		goto out;
	}
	r = 0;
out:
	free(want);
	json_decref(root);
	return r;
}

static int
check_authdata(const struct sg_webauthn_cred *cred,
    const struct sg_webauthn_assertion *a, char *why, size_t whylen)
{
	uint8_t rp_hash[RP_ID_HASH_LEN], flags;

	if (a->authdata == NULL || a->authdata_len < AUTHDATA_MIN)
		return fail(why, whylen, "authenticatorData: shorter than %d "
		    "bytes", AUTHDATA_MIN);
	if (a->authdata_len > SG_WEBAUTHN_AUTHDATA_MAX)
		return fail(why, whylen, "authenticatorData: larger than %d "
		    "bytes", SG_WEBAUTHN_AUTHDATA_MAX);
	sg_sha256(cred->rp_id, strlen(cred->rp_id), rp_hash);
	if (CRYPTO_memcmp(a->authdata, rp_hash, sizeof(rp_hash)) != 0)
		return fail(why, whylen, "authenticatorData.rpIdHash: not the "
		    "SHA-256 of the RP ID '%s'", cred->rp_id);
	flags = a->authdata[RP_ID_HASH_LEN];
	if (!(flags & SG_WEBAUTHN_FLAG_UP))
		return fail(why, whylen, "authenticatorData.flags: the user "
		    "was not present (UP not set)");
	if (cred->require_uv && !(flags & SG_WEBAUTHN_FLAG_UV))
		return fail(why, whylen, "authenticatorData.flags: the user "
		    "was not verified (UV not set) and the credential "
		    "requires it");
	return 0;
}

/* ES256 needs a P-256 key, RS256 an RSA one: the scheme, or NONE. */
static enum sg_sig_scheme
cred_scheme(EVP_PKEY *pub)
{
	switch (sg_pubkey_alg(pub)) {
	case SG_ALG_ECDSA_P256:
		return SG_SIG_ECDSA;
	case SG_ALG_RSA:
		return SG_SIG_RSA_PKCS1;
	default:
		return SG_SIG_NONE;
	}
}

static int
check_signature(const struct sg_webauthn_cred *cred,
    const struct sg_webauthn_assertion *a, char *why, size_t whylen)
{
	enum sg_sig_scheme scheme;
	uint8_t *signed_data = NULL, hash[32];
	size_t n;
	int r;

	if ((scheme = cred_scheme(cred->pub)) == SG_SIG_NONE)
		return fail(why, whylen, "sig: the credential's key is neither "
		    "P-256 (ES256) nor RSA (RS256)");
	if (a->sig == NULL || a->sig_len == 0 || a->sig_len > SG_MAX_SIG)
		return fail(why, whylen, "sig: must be 1 to %d bytes",
		    SG_MAX_SIG);
	/* authenticatorData || SHA-256(clientDataJSON), hashed again by the
	 * signature scheme. */
	n = a->authdata_len + 32;
	if ((signed_data = malloc(n)) == NULL)
		return fail(why, whylen, "sig: out of memory");
	memcpy(signed_data, a->authdata, a->authdata_len);
	sg_sha256(a->client_data, a->client_data_len,
	    signed_data + a->authdata_len);
	sg_sha256(signed_data, n, hash);
	free(signed_data);
	if (sg_verify(cred->pub, scheme, SG_DIGEST_SHA256, hash, sizeof(hash),
	    a->sig, a->sig_len) != 0)
		r = fail(why, whylen, "sig: the assertion's signature does not "
		    "verify under the credential's public key (%s)",
		    scheme == SG_SIG_ECDSA ? "ES256" : "RS256");
	else
		r = 0;
	OPENSSL_cleanse(hash, sizeof(hash));
	return r;
}

int
sg_webauthn_verify(const struct sg_webauthn_cred *cred,
    const uint8_t *challenge, size_t challenge_len,
    const struct sg_webauthn_assertion *a, char *why, size_t whylen)
{
	int r;

	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (cred == NULL || a == NULL || cred->pub == NULL ||
	    cred->id_len == 0 || cred->id_len > SG_WEBAUTHN_CRED_ID_MAX ||
	    memchr(cred->rp_id, '\0', sizeof(cred->rp_id)) == NULL ||
	    memchr(cred->origin, '\0', sizeof(cred->origin)) == NULL ||
	    cred->rp_id[0] == '\0' || cred->origin[0] == '\0')
		return fail(why, whylen, "credential: not a usable credential");
	if (challenge == NULL || challenge_len == 0 ||
	    challenge_len > CHALLENGE_MAX)
		return fail(why, whylen, "challenge: must be 1 to %d bytes",
		    CHALLENGE_MAX);
	if (a->cred_id == NULL || a->cred_id_len != cred->id_len ||
	    CRYPTO_memcmp(a->cred_id, cred->id, cred->id_len) != 0)
		return fail(why, whylen, "credentialId: not the credential's "
		    "id");
	/* Every failure, out of memory included, is SG_ERR_VERIFY: the
	 * assertion was not shown to hold. */
	if ((r = check_client_data(cred, challenge, challenge_len, a, why,
	    whylen)) != 0 ||
	    (r = check_authdata(cred, a, why, whylen)) != 0 ||
	    (r = check_signature(cred, a, why, whylen)) != 0)
		return SG_ERR_VERIFY;
	return 0;
}
