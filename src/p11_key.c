/*
 * PKCS#11 key lookup.
 *
 * - Keys are found by attributes (CKA_CLASS + CKA_LABEL and/or CKA_ID), never
 *   by enumerating every object, so objects we cannot parse (other people's
 *   Ed448 or secret keys) are never even looked at.
 * - Keys with CKA_ALWAYS_AUTHENTICATE (common on smart cards) get a
 *   context-specific login after each C_SignInit.
 * - This layer does not verify signatures: the signer does, against the
 *   public key built here from the token's own public-key (or certificate)
 *   object, with OpenSSL 3 APIs only.  So a key found again after a token
 *   reset that is not the key we started with cannot release a signature.
 *
 * A key is looked up by CKA_LABEL and/or CKA_ID; exactly one private key
 * must match, and its public half comes from a public-key object with the
 * same label/id, or else a certificate.  Attributes are read with bounded
 * sizes (P11_MAX_*), and only the curves and key types listed here are
 * accepted.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include <p11-kit/pkcs11.h>

#include "sg_err.h"
#include "sg_limits.h"
#include "sg_p11.h"
#include "sg_util.h"
#include "p11_int.h"

/* CKA_EC_PARAMS values we accept: DER namedCurve OIDs, or (for Edwards
 * curves, PKCS#11 3.0) a PrintableString with the curve name. */
static const uint8_t PARAMS_P256[] = {	/* 1.2.840.10045.3.1.7 */
	0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
};
static const uint8_t PARAMS_P384[] = {	/* 1.3.132.0.34 */
	0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22,
};
static const uint8_t PARAMS_ED25519[] = {	/* 1.3.101.112 */
	0x06, 0x03, 0x2b, 0x65, 0x70,
};
static const uint8_t PARAMS_ED25519_GNU[] = {	/* 1.3.6.1.4.1.11591.15.1 */
	0x06, 0x09, 0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01,
};
static const uint8_t PARAMS_ED25519_NAME[] = {	/* "edwards25519" */
	0x13, 0x0c, 'e', 'd', 'w', 'a', 'r', 'd', 's', '2', '5', '5', '1', '9',
};

#define ED25519_PUB_LEN 32
#define ED25519_SIG_LEN 64

/* ---- objects and attributes ---- */

/* Finds up to `max` objects; *ret_n says how many (so max = 2 tells
 * "exactly one" from "more than one"). */
static CK_RV
find_objects(struct sg_p11_token *t, CK_SESSION_HANDLE s,
    CK_ATTRIBUTE *tmpl, CK_ULONG ntmpl, CK_OBJECT_HANDLE *out, CK_ULONG max,
    CK_ULONG *ret_n)
{
	CK_FUNCTION_LIST *f = t->p11->f;
	CK_ULONG n = 0;
	CK_RV rv, rv2;

	if ((rv = p11_note_rv(f->C_FindObjectsInit(s, tmpl, ntmpl))) != CKR_OK)
		return rv;
	rv = p11_note_rv(f->C_FindObjects(s, out, max, &n));
	rv2 = p11_note_rv(f->C_FindObjectsFinal(s));
	if (rv == CKR_OK)
		rv = rv2;
	if (rv == CKR_OK && n > max)
		rv = CKR_GENERAL_ERROR;
	if (rv == CKR_OK)
		*ret_n = n;
	return rv;
}

/* Reads a variable-length attribute.  SG_ERR_NOT_FOUND if the object has
 * no such attribute or will not show it. */
static int
get_attr(struct sg_p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
    CK_ATTRIBUTE_TYPE type, size_t max, uint8_t **ret, size_t *ret_len)
{
	CK_FUNCTION_LIST *f = t->p11->f;
	CK_ATTRIBUTE a = { type, NULL, 0 };
	uint8_t *buf = NULL;
	size_t want;
	CK_RV rv;

	rv = p11_note_rv(f->C_GetAttributeValue(s, o, &a, 1));
	if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ||
	    (rv == CKR_OK && a.ulValueLen == CK_UNAVAILABLE_INFORMATION))
		return SG_ERR_NOT_FOUND;
	if (rv != CKR_OK)
		return p11_rv_to_err(rv);
	if (a.ulValueLen > max)
		return SG_ERR_TOO_LARGE;
	want = a.ulValueLen;
	if ((buf = malloc(want + 1)) == NULL)
		return SG_ERR_NOMEM;
	a.pValue = buf;
	rv = p11_note_rv(f->C_GetAttributeValue(s, o, &a, 1));
	if (rv != CKR_OK || a.ulValueLen > want) {
		free(buf);
		return rv == CKR_OK ? SG_ERR_HSM : p11_rv_to_err(rv);
	}
	*ret = buf;
	*ret_len = a.ulValueLen;
	return 0;
}

static int
get_ulong(struct sg_p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
    CK_ATTRIBUTE_TYPE type, CK_ULONG *ret)
{
	CK_ULONG v = 0;
	CK_ATTRIBUTE a = { type, &v, sizeof(v) };
	CK_RV rv;

	rv = p11_note_rv(t->p11->f->C_GetAttributeValue(s, o, &a, 1));
	if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE)
		return SG_ERR_NOT_FOUND;
	if (rv != CKR_OK)
		return p11_rv_to_err(rv);
	if (a.ulValueLen != sizeof(v))
		return SG_ERR_HSM;
	*ret = v;
	return 0;
}

/* A CK_BBOOL attribute; `dflt` when the object does not have it. */
static int
get_bool(struct sg_p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
    CK_ATTRIBUTE_TYPE type, int dflt, int *ret)
{
	CK_BBOOL v = CK_FALSE;
	CK_ATTRIBUTE a = { type, &v, sizeof(v) };
	CK_RV rv;

	rv = p11_note_rv(t->p11->f->C_GetAttributeValue(s, o, &a, 1));
	if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ||
	    (rv == CKR_OK && a.ulValueLen != sizeof(v))) {
		*ret = dflt;
		return 0;
	}
	if (rv != CKR_OK)
		return p11_rv_to_err(rv);
	*ret = v != CK_FALSE;
	return 0;
}

/* ---- public keys ---- */

static int
bytes_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

/*
 * CKA_EC_POINT should be a DER OCTET STRING around the encoded point, but
 * some modules store the bare point.  `ok` lists the bare lengths valid for
 * the curve; no wrapped length equals a bare one, so the two cannot be
 * confused.
 */
static int
point_unwrap(const uint8_t *b, size_t len, const size_t *ok, size_t nok,
    const uint8_t **ret, size_t *ret_len)
{
	size_t i, hdr, inner;

	for (i = 0; i < nok; i++) {
		if (len == ok[i]) {
			*ret = b;
			*ret_len = len;
			return 0;
		}
	}
	if (len < 2 || b[0] != 0x04)
		return SG_ERR_INVALID;
	if (b[1] < 0x80) {
		hdr = 2;
		inner = b[1];
	} else if (b[1] == 0x81 && len >= 3 && b[2] >= 0x80) {
		hdr = 3;
		inner = b[2];
	} else
		return SG_ERR_INVALID;
	if (hdr + inner != len)
		return SG_ERR_INVALID;
	for (i = 0; i < nok; i++) {
		if (inner == ok[i]) {
			*ret = b + hdr;
			*ret_len = inner;
			return 0;
		}
	}
	return SG_ERR_INVALID;
}

static int
pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld, EVP_PKEY **ret)
{
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pk = NULL;
	int r = SG_ERR_CRYPTO;

	if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1)
		goto out;
	/* Fails for a point that is not on the curve. */
	if (EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		r = SG_ERR_INVALID;
		goto out;
	}
	*ret = pk;
	r = 0;
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return r;
}

static int
pub_from_ec(const uint8_t *params, size_t plen, const uint8_t *pt,
    size_t ptlen, EVP_PKEY **ret)
{
	OSSL_PARAM_BLD *bld = NULL;
	const char *group;
	const uint8_t *raw;
	size_t rawlen, field, ok[2];
	int r;

	if (bytes_eq(params, plen, PARAMS_P256, sizeof(PARAMS_P256))) {
		group = "P-256";
		field = SG_EC_P256_FIELD_LEN;
	} else if (bytes_eq(params, plen, PARAMS_P384, sizeof(PARAMS_P384))) {
		group = "P-384";
		field = SG_EC_P384_FIELD_LEN;
	} else
		return SG_ERR_MECHANISM;
	ok[0] = 1 + 2 * field;	/* uncompressed */
	ok[1] = 1 + field;	/* compressed */
	if ((r = point_unwrap(pt, ptlen, ok, 2, &raw, &rawlen)) != 0)
		return r;
	if ((bld = OSSL_PARAM_BLD_new()) == NULL)
		return SG_ERR_NOMEM;
	if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
	    group, 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
	    raw, rawlen))
		r = SG_ERR_CRYPTO;
	else
		r = pkey_fromdata("EC", bld, ret);
	OSSL_PARAM_BLD_free(bld);
	return r;
}

static int
pub_from_ed(const uint8_t *params, size_t plen, const uint8_t *pt,
    size_t ptlen, EVP_PKEY **ret)
{
	static const size_t ok[1] = { ED25519_PUB_LEN };
	const uint8_t *raw;
	size_t rawlen;
	EVP_PKEY *pk;
	int r;

	if (!bytes_eq(params, plen, PARAMS_ED25519, sizeof(PARAMS_ED25519)) &&
	    !bytes_eq(params, plen, PARAMS_ED25519_GNU,
	    sizeof(PARAMS_ED25519_GNU)) &&
	    !bytes_eq(params, plen, PARAMS_ED25519_NAME,
	    sizeof(PARAMS_ED25519_NAME)))
		return SG_ERR_MECHANISM;	/* Ed448, or unknown */
	if ((r = point_unwrap(pt, ptlen, ok, 1, &raw, &rawlen)) != 0)
		return r;
	pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, rawlen);
	if (pk == NULL)
		return SG_ERR_INVALID;
	*ret = pk;
	return 0;
}

static int
pub_from_rsa(const uint8_t *mod, size_t modlen, const uint8_t *exp,
    size_t explen, EVP_PKEY **ret)
{
	OSSL_PARAM_BLD *bld = NULL;
	BIGNUM *n = NULL, *e = NULL;
	int r = SG_ERR_NOMEM;

	if ((n = BN_bin2bn(mod, (int)modlen, NULL)) == NULL ||
	    (e = BN_bin2bn(exp, (int)explen, NULL)) == NULL)
		goto out;
	if (BN_num_bits(n) < P11_RSA_MIN_BITS ||
	    BN_num_bits(n) > P11_RSA_MAX_BITS) {
		r = SG_ERR_MECHANISM;
		goto out;
	}
	if (!BN_is_odd(e) || BN_is_one(e) ||
	    BN_num_bits(e) > P11_RSA_MAX_EXP_BITS) {
		r = SG_ERR_INVALID;
		goto out;
	}
	if ((bld = OSSL_PARAM_BLD_new()) == NULL)
		goto out;
	if (!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e)) {
		r = SG_ERR_CRYPTO;
		goto out;
	}
	r = pkey_fromdata("RSA", bld, ret);
out:
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return r;
}

/* Builds the public key from a CKO_PUBLIC_KEY object. */
static int
pub_from_object(struct sg_p11_token *t, CK_SESSION_HANDLE s,
    CK_OBJECT_HANDLE o, CK_KEY_TYPE type, EVP_PKEY **ret)
{
	uint8_t *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	int r;

	switch (type) {
	case CKK_EC:
	case CKK_EC_EDWARDS:
		if ((r = get_attr(t, s, o, CKA_EC_PARAMS, P11_MAX_ATTR, &a,
		    &alen)) != 0 ||
		    (r = get_attr(t, s, o, CKA_EC_POINT, P11_MAX_ATTR, &b,
		    &blen)) != 0)
			break;
		r = type == CKK_EC ? pub_from_ec(a, alen, b, blen, ret) :
		    pub_from_ed(a, alen, b, blen, ret);
		break;
	case CKK_RSA:
		if ((r = get_attr(t, s, o, CKA_MODULUS, P11_MAX_ATTR, &a,
		    &alen)) != 0 ||
		    (r = get_attr(t, s, o, CKA_PUBLIC_EXPONENT, P11_MAX_ATTR,
		    &b, &blen)) != 0)
			break;
		r = pub_from_rsa(a, alen, b, blen, ret);
		break;
	default:
		r = SG_ERR_MECHANISM;
	}
	if (r == SG_ERR_NOT_FOUND)
		r = SG_ERR_INVALID;	/* a public key without its value */
	free(a);
	free(b);
	return r;
}

static int
pub_from_cert(struct sg_p11_token *t, CK_SESSION_HANDLE s,
    CK_OBJECT_HANDLE o, EVP_PKEY **ret)
{
	uint8_t *der = NULL;
	const unsigned char *p;
	size_t len = 0;
	X509 *x = NULL;
	EVP_PKEY *pk;
	int r;

	if ((r = get_attr(t, s, o, CKA_VALUE, P11_MAX_CERT, &der, &len)) != 0)
		return r == SG_ERR_NOT_FOUND ? SG_ERR_INVALID : r;
	p = der;
	if ((x = d2i_X509(NULL, &p, (long)len)) == NULL || p != der + len) {
		r = SG_ERR_INVALID;
		goto out;
	}
	if ((pk = X509_get_pubkey(x)) == NULL) {
		r = SG_ERR_INVALID;
		goto out;
	}
	*ret = pk;
	r = 0;
out:
	X509_free(x);
	free(der);
	return r;
}

static enum sg_key_alg
alg_of(EVP_PKEY *pub, CK_KEY_TYPE type)
{
	enum sg_key_alg alg = sg_pubkey_alg(pub);

	switch (alg) {
	case SG_ALG_ECDSA_P256:
	case SG_ALG_ECDSA_P384:
		return type == CKK_EC ? alg : SG_ALG_NONE;
	case SG_ALG_RSA:
		if (EVP_PKEY_get_bits(pub) > P11_RSA_MAX_BITS)
			return SG_ALG_NONE;
		return type == CKK_RSA ? alg : SG_ALG_NONE;
	case SG_ALG_ED25519:
		return type == CKK_EC_EDWARDS ? alg : SG_ALG_NONE;
	default:
		return SG_ALG_NONE;
	}
}

/*
 * The public half of a private key: the CKO_PUBLIC_KEY with its CKA_ID (and
 * label, if the ID alone is ambiguous), else with its label, else the X.509
 * certificate with its CKA_ID.  SG_ERR_NOT_FOUND when there is none.
 */
static int
find_public(struct sg_p11_token *t, CK_SESSION_HANDLE s, CK_KEY_TYPE type,
    const uint8_t *id, size_t id_len, const uint8_t *label, size_t label_len,
    EVP_PKEY **ret)
{
	CK_OBJECT_CLASS pubcls = CKO_PUBLIC_KEY, certcls = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE ctype = CKC_X_509;
	CK_ATTRIBUTE tmpl[4];
	CK_OBJECT_HANDLE h[2];
	CK_ULONG n, nt;
	CK_RV rv;
	int step;

	for (step = 0; step < 4; step++) {
		nt = 0;
		if (step < 3) {
			tmpl[nt++] = (CK_ATTRIBUTE){ CKA_CLASS, &pubcls,
			    sizeof(pubcls) };
			tmpl[nt++] = (CK_ATTRIBUTE){ CKA_KEY_TYPE, &type,
			    sizeof(type) };
		} else {
			tmpl[nt++] = (CK_ATTRIBUTE){ CKA_CLASS, &certcls,
			    sizeof(certcls) };
			tmpl[nt++] = (CK_ATTRIBUTE){ CKA_CERTIFICATE_TYPE,
			    &ctype, sizeof(ctype) };
		}
		if (step == 0 || step == 1 || step == 3) {
			if (id_len == 0)
				continue;
			tmpl[nt++] = (CK_ATTRIBUTE){ CKA_ID, (void *)id,
			    id_len };
		}
		if (step == 1 || step == 2) {
			if (label_len == 0)
				continue;
			tmpl[nt++] = (CK_ATTRIBUTE){ CKA_LABEL, (void *)label,
			    label_len };
		}
		if ((rv = find_objects(t, s, tmpl, nt, h, 2, &n)) != CKR_OK)
			return p11_rv_to_err(rv);
		if (n != 1)
			continue;
		return step < 3 ? pub_from_object(t, s, h[0], type, ret) :
		    pub_from_cert(t, s, h[0], ret);
	}
	return SG_ERR_NOT_FOUND;
}

/*
 * Finds the one private key matching the key's label and/or id.  On a
 * module error *ret_rv says which (else CKR_OK).
 */
int
p11_find_private(struct sg_p11_key *k, CK_SESSION_HANDLE s,
    CK_OBJECT_HANDLE *ret, CK_RV *ret_rv)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[3];
	CK_OBJECT_HANDLE h[2];
	CK_ULONG n = 0, nt = 0;
	CK_RV rv;

	*ret_rv = CKR_OK;
	tmpl[nt++] = (CK_ATTRIBUTE){ CKA_CLASS, &cls, sizeof(cls) };
	if (k->by_label)
		tmpl[nt++] = (CK_ATTRIBUTE){ CKA_LABEL, k->label,
		    k->label_len };
	if (k->id_len > 0)
		tmpl[nt++] = (CK_ATTRIBUTE){ CKA_ID, k->id, k->id_len };
	if ((rv = find_objects(k->token, s, tmpl, nt, h, 2, &n)) != CKR_OK) {
		*ret_rv = rv;
		return p11_rv_to_err(rv);
	}
	if (n == 0)
		return SG_ERR_NO_KEY;
	if (n > 1)
		return SG_ERR_INVALID;
	*ret = h[0];
	return 0;
}

/* A key record for what it is asked for by, not looked up yet. */
static struct sg_p11_key *
key_new(struct sg_p11_token *t, const char *label, const uint8_t *id,
    size_t id_len)
{
	struct sg_p11_key *k;

	if ((k = calloc(1, sizeof(*k))) == NULL)
		return NULL;
	k->token = t;
	if (label != NULL) {
		k->by_label = 1;
		k->label_len = strlen(label);
		memcpy(k->label, label, k->label_len);
	}
	if (id_len > 0)
		memcpy(k->id, id, id_len);
	k->id_len = id_len;
	return k;
}

/* The private key object h must be of a type we sign with, and allowed
 * to sign. */
static int
key_check_private(struct sg_p11_key *k, CK_SESSION_HANDLE s,
    CK_OBJECT_HANDLE h)
{
	struct sg_p11_token *t = k->token;
	CK_ULONG type = 0;
	int can_sign = 0, r;

	if ((r = get_ulong(t, s, h, CKA_KEY_TYPE, &type)) != 0)
		return r;
	k->ck_type = type;
	if (type != CKK_EC && type != CKK_RSA && type != CKK_EC_EDWARDS)
		return SG_ERR_MECHANISM;
	if ((r = get_bool(t, s, h, CKA_SIGN, 1, &can_sign)) != 0 ||
	    (r = get_bool(t, s, h, CKA_ALWAYS_AUTHENTICATE, 0,
	    &k->always_auth)) != 0)
		return r;
	return can_sign ? 0 : SG_ERR_MECHANISM;
}

/* The private key's own ID and label lead to its public half, even when
 * it was asked for by only one of them; both are kept in k. */
static int
key_find_public(struct sg_p11_key *k, CK_SESSION_HANDLE s,
    CK_OBJECT_HANDLE h)
{
	struct sg_p11_token *t = k->token;
	uint8_t *kid = NULL, *klabel = NULL;
	size_t kid_len = 0, klabel_len = 0;
	int r;

	r = get_attr(t, s, h, CKA_ID, P11_MAX_ID, &kid, &kid_len);
	if (r != 0 && r != SG_ERR_NOT_FOUND)
		goto out;
	r = get_attr(t, s, h, CKA_LABEL, P11_MAX_LABEL, &klabel,
	    &klabel_len);
	if (r != 0 && r != SG_ERR_NOT_FOUND)
		goto out;
	if ((r = find_public(t, s, k->ck_type, kid, kid_len, klabel,
	    klabel_len, &k->pub)) != 0)
		goto out;
	if (kid_len > 0)
		memcpy(k->own_id, kid, kid_len);
	k->own_id_len = kid_len;
	if (klabel_len > 0)
		memcpy(k->own_label, klabel, klabel_len);
	k->own_label_len = klabel_len;
out:
	free(kid);
	free(klabel);
	return r;
}

/* The bytes C_Sign returns for a key of this algorithm. */
static size_t
key_sig_len(const struct sg_p11_key *k)
{
	switch (k->alg) {
	case SG_ALG_ECDSA_P256:
		return 2 * SG_EC_P256_FIELD_LEN;	/* r||s */
	case SG_ALG_ECDSA_P384:
		return 2 * SG_EC_P384_FIELD_LEN;
	case SG_ALG_ED25519:
		return ED25519_SIG_LEN;
	default:
		return (size_t)EVP_PKEY_get_size(k->pub);
	}
}

/* Looks the key up in session s; 0 when k is complete but for its
 * handle (*ret_h). */
static int
key_lookup(struct sg_p11_key *k, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *ret_h,
    CK_RV *rv)
{
	int r;

	if ((r = p11_find_private(k, s, ret_h, rv)) != 0 ||
	    (r = key_check_private(k, s, *ret_h)) != 0 ||
	    (r = key_find_public(k, s, *ret_h)) != 0)
		return r;
	if ((k->alg = alg_of(k->pub, k->ck_type)) == SG_ALG_NONE)
		return SG_ERR_MECHANISM;
	k->sig_len = key_sig_len(k);
	return 0;
}

int
sg_p11_find_key(struct sg_p11_token *t, const char *label,
    const uint8_t *id, size_t id_len, struct sg_p11_key **ret)
{
	struct sg_p11_key *k = NULL;
	struct p11_sess s = { CK_INVALID_HANDLE, 0 };
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_RV rv;
	int r;

	p11_tl_last_rv = CKR_OK;
	if (t == NULL || ret == NULL || (label == NULL && id_len == 0) ||
	    (id == NULL && id_len != 0) || id_len > P11_MAX_ID ||
	    (label != NULL &&
	    strnlen(label, P11_MAX_LABEL + 1) > P11_MAX_LABEL))
		return SG_ERR_INVALID;
	if ((k = key_new(t, label, id, id_len)) == NULL)
		return SG_ERR_NOMEM;

	p11_gate_enter(t->p11);
	if ((r = p11_session_get(t, &s, &rv)) != 0 ||
	    (r = key_lookup(k, s.h, &h, &rv)) != 0)
		goto out;
	atomic_store(&k->handle, h);
	pthread_mutex_lock(&t->lock);
	k->next = t->keys;
	t->keys = k;
	pthread_mutex_unlock(&t->lock);
	*ret = k;
	k = NULL;  /* transferred */
out:
	if (s.h != CK_INVALID_HANDLE) {
		/* Only a failing module (which may leave a search open) is a
		 * reason to distrust the session; not finding a key is not. */
		if (r == SG_ERR_HSM || r == SG_ERR_UNAVAILABLE)
			p11_session_drop(t, s);
		else
			p11_session_put(t, s);
	}
	p11_gate_leave(t->p11);
	p11_key_free(k);
	return r;
}

enum sg_key_alg
sg_p11_key_alg(const struct sg_p11_key *k)
{
	return k == NULL ? SG_ALG_NONE : k->alg;
}

EVP_PKEY *
sg_p11_key_public(const struct sg_p11_key *k)
{
	return k == NULL ? NULL : k->pub;
}

int
sg_p11_key_same_object(const struct sg_p11_key *a,
    const struct sg_p11_key *b)
{
	return a != NULL && b != NULL && a->token == b->token &&
	    atomic_load(&a->handle) == atomic_load(&b->handle);
}

int
sg_p11_key_names(const struct sg_p11_key *k, const char *label,
    const uint8_t *id, size_t id_len)
{
	if (k == NULL)
		return 0;
	if (label != NULL && label[0] != '\0' && k->own_label_len > 0 &&
	    strlen(label) == k->own_label_len &&
	    memcmp(label, k->own_label, k->own_label_len) == 0)
		return 1;
	return id_len > 0 && id_len == k->own_id_len &&
	    memcmp(id, k->own_id, id_len) == 0;
}
