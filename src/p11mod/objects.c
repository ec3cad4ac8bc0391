/*
 * The token's objects, built once from the gateway's GET /v1/keys.
 *
 * For each key the principal may use, three or more objects share
 * CKA_ID = the key name's bytes and CKA_LABEL = the key name: the private
 * key (never extractable: it is a name for "ask the gateway"), its public
 * key, and the leaf certificate of its chain when the policy names one.
 * Every CA certificate of the chains appears once, with CKA_ID the SHA-1
 * of its public key (the usual key identifier), so that tools that build
 * a chain from the token find it.
 *
 * Keys are left out when they are not active, when the principal is not
 * among their requesters (the gateway would refuse them anyway), and when
 * they sign with Ed25519: the module serves signatures over a digest, and
 * libp11 0.4.12 loses every key of a token that shows an Ed25519 one.
 *
 * An object is a flat list of attributes holding their PKCS#11 encodings
 * (CK_BBOOL, CK_ULONG in host order, DER byte strings), so that
 * C_GetAttributeValue and C_FindObjects are plain byte comparisons.  The
 * table is immutable once built; module.c replaces it whole.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "sg_cli.h"
#include "sg_err.h"
#include "sg_text.h"
#include "sg_util.h"
#include "p11mod_int.h"

#define MAX_KEYS 256
#define MAX_CHAIN 8
/* CKA_CERTIFICATE_CATEGORY values (PKCS#11 v2.40, 4.6.2), which
 * p11-kit's header does not name. */
#define CERT_CATEGORY_TOKEN_USER 1
#define CERT_CATEGORY_AUTHORITY 2

struct builder {
	struct p11m_token *t;
	size_t kcap;
	size_t ocap;
};

void
p11m_token_free(struct p11m_token *t)
{
	size_t i, j;

	if (t == NULL)
		return;
	for (i = 0; i < t->nkeys; i++)
		EVP_PKEY_free(t->keys[i].pub);
	for (i = 0; i < t->nobjs; i++) {
		for (j = 0; j < t->objs[i].nattrs; j++)
			free(t->objs[i].attrs[j].value);
		free(t->objs[i].attrs);
	}
	free(t->keys);
	free(t->objs);
	free(t);
}

const struct p11m_obj *
p11m_obj_get(const struct p11m_token *t, CK_OBJECT_HANDLE h)
{
	if (t == NULL || h < P11M_HANDLE_BASE ||
	    h - P11M_HANDLE_BASE >= t->nobjs)
		return NULL;
	return &t->objs[h - P11M_HANDLE_BASE];
}

static const struct p11m_attr *
attr_find(const struct p11m_obj *o, CK_ATTRIBUTE_TYPE type)
{
	size_t i;

	for (i = 0; i < o->nattrs; i++)
		if (o->attrs[i].type == type)
			return &o->attrs[i];
	return NULL;
}

/* Attributes a private key has but never reveals. */
static int
attr_sensitive(const struct p11m_obj *o, CK_ATTRIBUTE_TYPE type)
{
	static const CK_ATTRIBUTE_TYPE secret[] = {
		CKA_VALUE, CKA_PRIVATE_EXPONENT, CKA_PRIME_1, CKA_PRIME_2,
		CKA_EXPONENT_1, CKA_EXPONENT_2, CKA_COEFFICIENT,
	};
	size_t i;

	if (o->cls != CKO_PRIVATE_KEY)
		return 0;
	for (i = 0; i < sizeof(secret) / sizeof(secret[0]); i++)
		if (secret[i] == type)
			return 1;
	return 0;
}

/*
 * PKCS#11 v2.40, C_GetAttributeValue: every attribute of the template is
 * processed; a sensitive, unknown or too small one gets
 * CK_UNAVAILABLE_INFORMATION and its error, which is returned once all
 * are done (the last one seen: the standard lets any of them win).
 */
CK_RV
p11m_obj_get_attrs(const struct p11m_obj *o, CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	const struct p11m_attr *a;
	CK_RV rv = CKR_OK;
	CK_ULONG i;

	for (i = 0; i < n; i++) {
		if (attr_sensitive(o, tmpl[i].type)) {
			tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			rv = CKR_ATTRIBUTE_SENSITIVE;
			continue;
		}
		if ((a = attr_find(o, tmpl[i].type)) == NULL) {
			tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			rv = CKR_ATTRIBUTE_TYPE_INVALID;
			continue;
		}
		if (tmpl[i].pValue == NULL) {
			tmpl[i].ulValueLen = a->len;
			continue;
		}
		if (tmpl[i].ulValueLen < a->len) {
			tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			rv = CKR_BUFFER_TOO_SMALL;
			continue;
		}
		if (a->len > 0)
			memcpy(tmpl[i].pValue, a->value, a->len);
		tmpl[i].ulValueLen = a->len;
	}
	return rv;
}

int
p11m_obj_match(const struct p11m_obj *o, const CK_ATTRIBUTE *tmpl,
    CK_ULONG n)
{
	const struct p11m_attr *a;
	CK_ULONG i;

	for (i = 0; i < n; i++) {
		if ((a = attr_find(o, tmpl[i].type)) == NULL ||
		    a->len != tmpl[i].ulValueLen)
			return 0;
		if (a->len > 0 && (tmpl[i].pValue == NULL ||
		    memcmp(a->value, tmpl[i].pValue, a->len) != 0))
			return 0;
	}
	return 1;
}

/* ---- building ---- */

static int
attr_add(struct p11m_obj *o, CK_ATTRIBUTE_TYPE type, const void *v,
    size_t len)
{
	struct p11m_attr *na;
	void *copy = NULL;
	size_t ncap;

	if (attr_find(o, type) != NULL)
		return SG_ERR_INTERNAL;
	if (o->nattrs == o->cap) {
		ncap = o->cap == 0 ? 32 : o->cap * 2;
		if ((na = reallocarray(o->attrs, ncap, sizeof(*na))) == NULL)
			return SG_ERR_NOMEM;
		o->attrs = na;
		o->cap = ncap;
	}
	/* Even an empty value gets a buffer: NULL means nothing here. */
	if ((copy = malloc(len > 0 ? len : 1)) == NULL)
		return SG_ERR_NOMEM;
	if (len > 0)
		memcpy(copy, v, len);
	o->attrs[o->nattrs].type = type;
	o->attrs[o->nattrs].value = copy;
	o->attrs[o->nattrs].len = (CK_ULONG)len;
	o->nattrs++;
	return 0;
}

static int
attr_bool(struct p11m_obj *o, CK_ATTRIBUTE_TYPE type, int v)
{
	CK_BBOOL b = v ? CK_TRUE : CK_FALSE;

	return attr_add(o, type, &b, sizeof(b));
}

static int
attr_ulong(struct p11m_obj *o, CK_ATTRIBUTE_TYPE type, CK_ULONG v)
{
	return attr_add(o, type, &v, sizeof(v));
}

static int
attr_bn(struct p11m_obj *o, CK_ATTRIBUTE_TYPE type, const BIGNUM *bn)
{
	unsigned char buf[2048];
	int n = BN_num_bytes(bn);

	if (n <= 0 || (size_t)n > sizeof(buf) || BN_bn2bin(bn, buf) != n)
		return SG_ERR_CRYPTO;
	return attr_add(o, type, buf, (size_t)n);
}

/* An i2d result as an attribute. */
static int
attr_der(struct p11m_obj *o, CK_ATTRIBUTE_TYPE type, unsigned char *der,
    int n)
{
	int r;

	if (n <= 0 || der == NULL)
		return SG_ERR_CRYPTO;
	r = attr_add(o, type, der, (size_t)n);
	OPENSSL_free(der);
	return r;
}

static struct p11m_obj *
obj_new(struct builder *b, CK_OBJECT_CLASS cls, size_t key)
{
	struct p11m_token *t = b->t;
	struct p11m_obj *no, *o;
	size_t ncap;

	if (t->nobjs == b->ocap) {
		ncap = b->ocap == 0 ? 16 : b->ocap * 2;
		if ((no = reallocarray(t->objs, ncap, sizeof(*no))) == NULL)
			return NULL;
		t->objs = no;
		b->ocap = ncap;
	}
	o = &t->objs[t->nobjs];
	memset(o, 0, sizeof(*o));
	o->handle = P11M_HANDLE_BASE + t->nobjs;
	o->cls = cls;
	o->key = key;
	if (attr_ulong(o, CKA_CLASS, cls) != 0 ||
	    attr_bool(o, CKA_TOKEN, 1) != 0 ||
	    attr_bool(o, CKA_PRIVATE, 0) != 0 ||
	    attr_bool(o, CKA_MODIFIABLE, 0) != 0 ||
	    attr_bool(o, CKA_COPYABLE, 0) != 0 ||
	    attr_bool(o, CKA_DESTROYABLE, 0) != 0) {
		free(o->attrs);
		return NULL;
	}
	t->nobjs++;
	return o;
}

/* The public parts every key object carries: type, size, point. */
static int
key_public_attrs(struct p11m_obj *o, const struct p11m_key *k, int pubobj)
{
	BIGNUM *n = NULL, *e = NULL;
	ASN1_OCTET_STRING *os = NULL;
	ASN1_OBJECT *oid;
	unsigned char point[256], *der = NULL;
	char group[64];
	size_t plen = 0, glen = 0;
	int r = SG_ERR_CRYPTO, len;

	if (k->alg == SG_ALG_RSA) {
		if (attr_ulong(o, CKA_KEY_TYPE, CKK_RSA) != 0 ||
		    !EVP_PKEY_get_bn_param(k->pub, OSSL_PKEY_PARAM_RSA_N, &n) ||
		    !EVP_PKEY_get_bn_param(k->pub, OSSL_PKEY_PARAM_RSA_E, &e) ||
		    attr_bn(o, CKA_MODULUS, n) != 0 ||
		    attr_bn(o, CKA_PUBLIC_EXPONENT, e) != 0)
			goto out;
		if (pubobj && attr_ulong(o, CKA_MODULUS_BITS,
		    (CK_ULONG)BN_num_bits(n)) != 0)
			goto out;
	} else {
		if (attr_ulong(o, CKA_KEY_TYPE, CKK_EC) != 0 ||
		    !EVP_PKEY_get_utf8_string_param(k->pub,
		    OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen) ||
		    (oid = OBJ_nid2obj(OBJ_sn2nid(group))) == NULL)
			goto out;
		der = NULL;
		if ((len = i2d_ASN1_OBJECT(oid, &der)) <= 0 ||
		    attr_der(o, CKA_EC_PARAMS, der, len) != 0)
			goto out;
		/* CKA_EC_POINT: the point as a DER OCTET STRING. */
		if (!EVP_PKEY_get_octet_string_param(k->pub,
		    OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point, sizeof(point),
		    &plen) || (os = ASN1_OCTET_STRING_new()) == NULL ||
		    !ASN1_OCTET_STRING_set(os, point, (int)plen))
			goto out;
		der = NULL;
		if ((len = i2d_ASN1_OCTET_STRING(os, &der)) <= 0 ||
		    attr_der(o, CKA_EC_POINT, der, len) != 0)
			goto out;
	}
	der = NULL;
	if ((len = i2d_PUBKEY(k->pub, &der)) <= 0 ||
	    attr_der(o, CKA_PUBLIC_KEY_INFO, der, len) != 0)
		goto out;
	r = 0;
out:
	ASN1_OCTET_STRING_free(os);
	BN_free(n);
	BN_free(e);
	return r;
}

static int
key_common_attrs(struct p11m_obj *o, const struct p11m_key *k,
    const X509 *leaf)
{
	CK_MECHANISM_TYPE mechs[P11M_MECH_MAX];
	unsigned char *der = NULL;
	size_t nm;
	int len;

	nm = p11m_mech_for_scheme(k->scheme, mechs, P11M_MECH_MAX);
	if (attr_add(o, CKA_LABEL, k->name, strlen(k->name)) != 0 ||
	    attr_add(o, CKA_ID, k->name, strlen(k->name)) != 0 ||
	    attr_add(o, CKA_ALLOWED_MECHANISMS, mechs,
	    nm * sizeof(mechs[0])) != 0 ||
	    attr_bool(o, CKA_DERIVE, 0) != 0 ||
	    attr_bool(o, CKA_LOCAL, 0) != 0 ||
	    attr_add(o, CKA_START_DATE, "", 0) != 0 ||
	    attr_add(o, CKA_END_DATE, "", 0) != 0)
		return SG_ERR_NOMEM;
	if (leaf != NULL) {
		if ((len = i2d_X509_NAME(X509_get_subject_name(leaf),
		    &der)) <= 0)
			return SG_ERR_CRYPTO;
		return attr_der(o, CKA_SUBJECT, der, len);
	}
	return attr_add(o, CKA_SUBJECT, "", 0);
}

static int
add_private(struct builder *b, size_t ki, const X509 *leaf)
{
	const struct p11m_key *k = &b->t->keys[ki];
	struct p11m_obj *o;

	if ((o = obj_new(b, CKO_PRIVATE_KEY, ki)) == NULL)
		return SG_ERR_NOMEM;
	if (key_common_attrs(o, k, leaf) != 0 ||
	    key_public_attrs(o, k, 0) != 0 ||
	    attr_bool(o, CKA_SIGN, 1) != 0 ||
	    attr_bool(o, CKA_SIGN_RECOVER, 0) != 0 ||
	    attr_bool(o, CKA_DECRYPT, 0) != 0 ||
	    attr_bool(o, CKA_UNWRAP, 0) != 0 ||
	    attr_bool(o, CKA_SENSITIVE, 1) != 0 ||
	    attr_bool(o, CKA_ALWAYS_SENSITIVE, 1) != 0 ||
	    attr_bool(o, CKA_EXTRACTABLE, 0) != 0 ||
	    attr_bool(o, CKA_NEVER_EXTRACTABLE, 1) != 0 ||
	    attr_bool(o, CKA_WRAP_WITH_TRUSTED, 0) != 0 ||
	    attr_bool(o, CKA_ALWAYS_AUTHENTICATE, 0) != 0)
		return SG_ERR_CRYPTO;
	return 0;
}

static int
add_public(struct builder *b, size_t ki, const X509 *leaf)
{
	const struct p11m_key *k = &b->t->keys[ki];
	struct p11m_obj *o;

	if ((o = obj_new(b, CKO_PUBLIC_KEY, ki)) == NULL)
		return SG_ERR_NOMEM;
	if (key_common_attrs(o, k, leaf) != 0 ||
	    key_public_attrs(o, k, 1) != 0 ||
	    attr_bool(o, CKA_VERIFY, 1) != 0 ||
	    attr_bool(o, CKA_VERIFY_RECOVER, 0) != 0 ||
	    attr_bool(o, CKA_ENCRYPT, 0) != 0 ||
	    attr_bool(o, CKA_WRAP, 0) != 0 ||
	    attr_bool(o, CKA_TRUSTED, 0) != 0)
		return SG_ERR_CRYPTO;
	return 0;
}

/* 1 when the token already holds a certificate with this DER. */
static int
cert_present(const struct p11m_token *t, const unsigned char *der,
    size_t len)
{
	const struct p11m_attr *a;
	size_t i;

	for (i = 0; i < t->nobjs; i++) {
		if (t->objs[i].cls != CKO_CERTIFICATE)
			continue;
		a = attr_find(&t->objs[i], CKA_VALUE);
		if (a != NULL && a->len == len && memcmp(a->value, der,
		    len) == 0)
			return 1;
	}
	return 0;
}

/* The CN of a CA certificate as its label, else "CA <id hex>". */
static void
ca_label(X509 *x, const unsigned char *id, size_t idlen, char *out,
    size_t cap)
{
	char cn[SG_NAME_SIZE * 4], hex[2 * EVP_MAX_MD_SIZE + 1];
	int n;

	n = X509_NAME_get_text_by_NID(X509_get_subject_name(x),
	    NID_commonName, cn, sizeof(cn));
	if (n > 0 && sg_text_ok(cn, (size_t)n, NULL) == 0) {
		snprintf(out, cap, "%s", cn);
		return;
	}
	sg_hex_encode(id, idlen > 8 ? 8 : idlen, hex);
	snprintf(out, cap, "CA %s", hex);
}

/* leaf: CKA_ID and CKA_LABEL of the key; otherwise a CA's own. */
static int
add_cert(struct builder *b, size_t ki, X509 *x, int leaf)
{
	const struct p11m_key *k = &b->t->keys[ki];
	unsigned char id[EVP_MAX_MD_SIZE], *der = NULL, *vder = NULL;
	unsigned int idlen = 0;
	char label[256];
	struct p11m_obj *o;
	int len, r = SG_ERR_CRYPTO;

	if ((len = i2d_X509(x, &vder)) <= 0)
		return SG_ERR_CRYPTO;
	if (!leaf && cert_present(b->t, vder, (size_t)len)) {
		OPENSSL_free(vder);
		return 0;
	}
	if ((o = obj_new(b, CKO_CERTIFICATE, ki)) == NULL) {
		OPENSSL_free(vder);
		return SG_ERR_NOMEM;
	}
	if (attr_der(o, CKA_VALUE, vder, len) != 0)
		return SG_ERR_NOMEM;
	if (leaf) {
		if (attr_add(o, CKA_LABEL, k->name, strlen(k->name)) != 0 ||
		    attr_add(o, CKA_ID, k->name, strlen(k->name)) != 0)
			return SG_ERR_NOMEM;
	} else {
		if (!X509_pubkey_digest(x, EVP_sha1(), id, &idlen))
			return SG_ERR_CRYPTO;
		ca_label(x, id, idlen, label, sizeof(label));
		if (attr_add(o, CKA_LABEL, label, strlen(label)) != 0 ||
		    attr_add(o, CKA_ID, id, idlen) != 0)
			return SG_ERR_NOMEM;
	}
	if (attr_ulong(o, CKA_CERTIFICATE_TYPE, CKC_X_509) != 0 ||
	    attr_ulong(o, CKA_CERTIFICATE_CATEGORY, leaf ?
	    CERT_CATEGORY_TOKEN_USER :
	    CERT_CATEGORY_AUTHORITY) != 0 ||
	    attr_bool(o, CKA_TRUSTED, 0) != 0)
		return SG_ERR_NOMEM;
	if ((len = i2d_X509_NAME(X509_get_subject_name(x), &der)) <= 0 ||
	    attr_der(o, CKA_SUBJECT, der, len) != 0)
		goto out;
	der = NULL;
	if ((len = i2d_X509_NAME(X509_get_issuer_name(x), &der)) <= 0 ||
	    attr_der(o, CKA_ISSUER, der, len) != 0)
		goto out;
	der = NULL;
	if ((len = i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &der)) <= 0 ||
	    attr_der(o, CKA_SERIAL_NUMBER, der, len) != 0)
		goto out;
	r = 0;
out:
	return r;
}

/* The certificates of a PEM chain, leaf first (at most MAX_CHAIN). */
static int
read_chain(const char *pem, X509 **chain, size_t *ret_n)
{
	BIO *bio;
	X509 *x;
	size_t n = 0;

	if ((bio = BIO_new_mem_buf(pem, -1)) == NULL)
		return SG_ERR_NOMEM;
	while (n < MAX_CHAIN &&
	    (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		chain[n++] = x;
	BIO_free(bio);
	*ret_n = n;
	return n > 0 ? 0 : SG_ERR_INVALID;
}

static int
requester_ok(const json_t *key, const char *principal)
{
	const json_t *pol, *req, *v;
	size_t i;

	if (principal[0] == '\0')
		return 1;        /* a gateway that does not say who we are */
	pol = json_object_get(key, "policy");
	req = json_is_object(pol) ? json_object_get(pol, "requesters") : NULL;
	if (!json_is_array(req))
		return 0;
	json_array_foreach(req, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v),
		    principal) == 0)
			return 1;
	return 0;
}

/* Takes out what a key that failed half-way added. */
static void
rollback(struct p11m_token *t, size_t nkeys, size_t nobjs)
{
	size_t i, j;

	for (i = nobjs; i < t->nobjs; i++) {
		for (j = 0; j < t->objs[i].nattrs; j++)
			free(t->objs[i].attrs[j].value);
		free(t->objs[i].attrs);
		memset(&t->objs[i], 0, sizeof(t->objs[i]));
	}
	t->nobjs = nobjs;
	for (i = nkeys; i < t->nkeys; i++)
		EVP_PKEY_free(t->keys[i].pub);
	t->nkeys = nkeys;
}

/*
 * One key of the list into the token, with all its objects or none:
 * SG_ERR_NOT_FOUND for a key that
 * is simply not shown, another error (with a message) for one that
 * cannot be read.
 */
static int
add_key(struct builder *b, const json_t *jk)
{
	struct p11m_token *t = b->t;
	struct p11m_key k, *nk;
	X509 *chain[MAX_CHAIN];
	EVP_PKEY *cpub = NULL;
	const char *name, *alg, *pem, *spki, *state, *cert;
	uint8_t d[32];
	char hex[SG_SHA256_HEX_SIZE];
	size_t nchain = 0, i, ki, ncap;
	size_t nkeys0 = t->nkeys, nobjs0 = t->nobjs;
	int r = SG_ERR_NOT_FOUND;

	memset(&k, 0, sizeof(k));
	name = sg_cli_jstr(jk, "name");
	alg = sg_cli_jstr(jk, "algorithm");
	pem = sg_cli_jstr(jk, "public_key_pem");
	spki = sg_cli_jstr(jk, "spki_sha256");
	state = sg_cli_jstr(jk, "state");
	cert = sg_cli_jstr(jk, "certificate_pem");
	if (name == NULL || !sg_name_ok(name, SG_NAME_LEN_MAX)) {
		p11m_msg("GET /v1/keys: a key without a valid name is left "
		    "out");
		return SG_ERR_INVALID;
	}
	if (state == NULL || strcmp(state, "active") != 0 ||
	    !requester_ok(jk, t->principal))
		return SG_ERR_NOT_FOUND;
	if (sg_scheme_from_name(alg, &k.alg, &k.scheme) != 0) {
		p11m_msg("key '%s': unknown algorithm '%s': left out", name,
		    alg != NULL ? alg : "");
		return SG_ERR_INVALID;
	}
	if (k.scheme == SG_SIG_EDDSA)
		return SG_ERR_NOT_FOUND;
	k.algorithm = sg_scheme_name(k.alg, k.scheme);
	snprintf(k.name, sizeof(k.name), "%s", name);
	if (pem == NULL || sg_pubkey_from_pem(pem, strlen(pem), &k.pub) != 0 ||
	    sg_pubkey_alg(k.pub) != k.alg) {
		p11m_msg("key '%s': public_key_pem is not a %s key: left out",
		    name, k.algorithm);
		r = SG_ERR_INVALID;
		goto out;
	}
	if (sg_pubkey_spki_sha256(k.pub, d) != 0) {
		r = SG_ERR_CRYPTO;
		goto out;
	}
	sg_hex_encode(d, sizeof(d), hex);
	if (spki == NULL || strcmp(spki, hex) != 0) {
		p11m_msg("key '%s': spki_sha256 does not match its public "
		    "key: left out", name);
		r = SG_ERR_INVALID;
		goto out;
	}
	if (k.alg == SG_ALG_RSA) {
		k.sig_len = (size_t)EVP_PKEY_get_size(k.pub);
		if (k.sig_len > SG_MAX_SIG) {
			p11m_msg("key '%s': a %d-bit RSA key, more than this "
			    "module signs with (%d bytes): left out", name,
			    EVP_PKEY_get_bits(k.pub), SG_MAX_SIG);
			r = SG_ERR_INVALID;
			goto out;
		}
	} else {
		k.field_len = k.alg == SG_ALG_ECDSA_P256 ?
		    SG_EC_P256_FIELD_LEN : SG_EC_P384_FIELD_LEN;
		k.sig_len = 2 * k.field_len;
	}
	if (cert != NULL) {
		if (read_chain(cert, chain, &nchain) != 0 ||
		    (cpub = X509_get0_pubkey(chain[0])) == NULL ||
		    EVP_PKEY_eq(cpub, k.pub) != 1) {
			p11m_msg("key '%s': its certificate is not for its "
			    "public key: shown without certificates", name);
			for (i = 0; i < nchain; i++)
				X509_free(chain[i]);
			nchain = 0;
		}
	}
	if (t->nkeys == b->kcap) {
		ncap = b->kcap == 0 ? 8 : b->kcap * 2;
		if ((nk = reallocarray(t->keys, ncap, sizeof(*nk))) == NULL) {
			r = SG_ERR_NOMEM;
			goto out;
		}
		t->keys = nk;
		b->kcap = ncap;
	}
	ki = t->nkeys++;
	t->keys[ki] = k;
	k.pub = NULL;          /* transferred */
	if ((r = add_private(b, ki, nchain > 0 ? chain[0] : NULL)) != 0 ||
	    (r = add_public(b, ki, nchain > 0 ? chain[0] : NULL)) != 0)
		goto out;
	for (i = 0; i < nchain; i++)
		if ((r = add_cert(b, ki, chain[i], i == 0)) != 0)
			goto out;
	r = 0;
out:
	if (r != 0 && t->nkeys > nkeys0) {
		p11m_msg("key '%s': cannot build its objects (%s): left out",
		    name, sg_strerror(r));
		rollback(t, nkeys0, nobjs0);
	}
	for (i = 0; i < nchain; i++)
		X509_free(chain[i]);
	EVP_PKEY_free(k.pub);
	return r;
}

int
p11m_token_from_keys(const char *body, size_t len, struct p11m_token **ret,
    char *err, size_t errlen)
{
	struct builder b;
	json_error_t jerr;
	json_t *root, *keys, *jk, *p;
	size_t i;
	int r = SG_ERR_INVALID;

	memset(&b, 0, sizeof(b));
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(root)) {
		r = sg_err_set(err, errlen, SG_ERR_INVALID, "GET /v1/keys: "
		    "not a JSON object");
		goto out;
	}
	keys = json_object_get(root, "keys");
	if (!json_is_array(keys) || json_array_size(keys) > MAX_KEYS) {
		r = sg_err_set(err, errlen, SG_ERR_INVALID, "GET /v1/keys: "
		    "\"keys\" is not a list of at most %d keys", MAX_KEYS);
		goto out;
	}
	if ((b.t = calloc(1, sizeof(*b.t))) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	if ((p = json_object_get(root, "principal")) != NULL) {
		if (!json_is_string(p) || !sg_name_ok(json_string_value(p),
		    SG_NAME_LEN_MAX)) {
			r = sg_err_set(err, errlen, SG_ERR_INVALID,
			    "GET /v1/keys: \"principal\" is not a name");
			goto out;
		}
		snprintf(b.t->principal, sizeof(b.t->principal), "%s",
		    json_string_value(p));
	}
	json_array_foreach(keys, i, jk) {
		if (!json_is_object(jk))
			continue;
		r = add_key(&b, jk);
		if (r == SG_ERR_NOMEM)
			goto out;
	}
	*ret = b.t;
	b.t = NULL;
	r = 0;
out:
	p11m_token_free(b.t);
	json_decref(root);
	return r;
}
