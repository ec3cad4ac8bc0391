/*
 * Mechanisms: which ones the module offers, which key scheme each one
 * needs, what its parameter must be, and what digest the caller's data
 * stands for.  The gateway signs a digest, so every mechanism comes down
 * to (digest algorithm, digest): the *_SHA* ones hash in the module,
 * CKM_ECDSA takes the digest itself, CKM_RSA_PKCS a DigestInfo that is
 * parsed here, and the PSS ones a digest of the parameter's hash.
 *
 * The rsa-pss keys of the gateway sign with MGF1 of the same hash and a
 * salt of the hash's length; any other PSS parameter would yield a
 * signature the caller did not ask for, so it is refused
 * (CKR_MECHANISM_PARAM_INVALID) rather than quietly replaced.
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>

#include "sg_err.h"
#include "p11mod_int.h"

static const struct p11m_mech mechs[] = {
	{ CKM_ECDSA, "CKM_ECDSA", SG_SIG_ECDSA, SG_DIGEST_NONE },
	{ CKM_ECDSA_SHA256, "CKM_ECDSA_SHA256", SG_SIG_ECDSA,
	    SG_DIGEST_SHA256 },
	{ CKM_ECDSA_SHA384, "CKM_ECDSA_SHA384", SG_SIG_ECDSA,
	    SG_DIGEST_SHA384 },
	{ CKM_ECDSA_SHA512, "CKM_ECDSA_SHA512", SG_SIG_ECDSA,
	    SG_DIGEST_SHA512 },
	{ CKM_RSA_PKCS, "CKM_RSA_PKCS", SG_SIG_RSA_PKCS1, SG_DIGEST_NONE },
	{ CKM_SHA256_RSA_PKCS, "CKM_SHA256_RSA_PKCS", SG_SIG_RSA_PKCS1,
	    SG_DIGEST_SHA256 },
	{ CKM_SHA384_RSA_PKCS, "CKM_SHA384_RSA_PKCS", SG_SIG_RSA_PKCS1,
	    SG_DIGEST_SHA384 },
	{ CKM_SHA512_RSA_PKCS, "CKM_SHA512_RSA_PKCS", SG_SIG_RSA_PKCS1,
	    SG_DIGEST_SHA512 },
	{ CKM_RSA_PKCS_PSS, "CKM_RSA_PKCS_PSS", SG_SIG_RSA_PSS,
	    SG_DIGEST_NONE },
	{ CKM_SHA256_RSA_PKCS_PSS, "CKM_SHA256_RSA_PKCS_PSS", SG_SIG_RSA_PSS,
	    SG_DIGEST_SHA256 },
	{ CKM_SHA384_RSA_PKCS_PSS, "CKM_SHA384_RSA_PKCS_PSS", SG_SIG_RSA_PSS,
	    SG_DIGEST_SHA384 },
	{ CKM_SHA512_RSA_PKCS_PSS, "CKM_SHA512_RSA_PKCS_PSS", SG_SIG_RSA_PSS,
	    SG_DIGEST_SHA512 },
};
#define NMECHS (sizeof(mechs) / sizeof(mechs[0]))
_Static_assert(NMECHS <= P11M_MECH_MAX, "P11M_MECH_MAX holds every one");

const struct p11m_mech *
p11m_mech_find(CK_MECHANISM_TYPE t)
{
	size_t i;

	for (i = 0; i < NMECHS; i++)
		if (mechs[i].type == t)
			return &mechs[i];
	return NULL;
}

const struct p11m_mech *
p11m_mech_all(size_t *n)
{
	*n = NMECHS;
	return mechs;
}

size_t
p11m_mech_for_scheme(enum sg_sig_scheme s, CK_MECHANISM_TYPE *out,
    size_t cap)
{
	size_t i, n = 0;

	for (i = 0; i < NMECHS; i++)
		if (mechs[i].scheme == s && n < cap)
			out[n++] = mechs[i].type;
	return n;
}

static int
scheme_is_rsa(enum sg_sig_scheme s)
{
	return s == SG_SIG_RSA_PKCS1 || s == SG_SIG_RSA_PSS;
}

CK_RV
p11m_mech_key_check(const struct p11m_mech *m, enum sg_sig_scheme key)
{
	if (m->scheme == key)
		return CKR_OK;
	if (scheme_is_rsa(m->scheme) && scheme_is_rsa(key))
		return CKR_KEY_FUNCTION_NOT_PERMITTED;
	return CKR_KEY_TYPE_INCONSISTENT;
}

static CK_RSA_PKCS_MGF_TYPE
hash_mgf(enum sg_digest_alg a)
{
	switch (a) {
	case SG_DIGEST_SHA256: return CKG_MGF1_SHA256;
	case SG_DIGEST_SHA384: return CKG_MGF1_SHA384;
	case SG_DIGEST_SHA512: return CKG_MGF1_SHA512;
	default: return CK_UNAVAILABLE_INFORMATION;
	}
}

static enum sg_digest_alg
hash_from_mech(CK_MECHANISM_TYPE t)
{
	switch (t) {
	case CKM_SHA256: return SG_DIGEST_SHA256;
	case CKM_SHA384: return SG_DIGEST_SHA384;
	case CKM_SHA512: return SG_DIGEST_SHA512;
	default: return SG_DIGEST_NONE;
	}
}

CK_RV
p11m_mech_params(const struct p11m_mech *m, const void *param,
    CK_ULONG param_len, enum sg_digest_alg *ret_hash)
{
	CK_RSA_PKCS_PSS_PARAMS pss;
	enum sg_digest_alg h;

	if (m->scheme != SG_SIG_RSA_PSS) {
		if (param != NULL || param_len != 0)
			return CKR_MECHANISM_PARAM_INVALID;
		*ret_hash = m->hash;
		return CKR_OK;
	}
	if (param == NULL || param_len != sizeof(pss))
		return CKR_MECHANISM_PARAM_INVALID;
	memcpy(&pss, param, sizeof(pss));     /* no alignment assumed */
	if ((h = hash_from_mech(pss.hashAlg)) == SG_DIGEST_NONE)
		return CKR_MECHANISM_PARAM_INVALID;
	if (m->hash != SG_DIGEST_NONE && h != m->hash)
		return CKR_MECHANISM_PARAM_INVALID;
	if (pss.mgf != hash_mgf(h) || pss.sLen != sg_digest_len(h))
		return CKR_MECHANISM_PARAM_INVALID;
	*ret_hash = h;
	return CKR_OK;
}

/*
 * The DER prefixes of DigestInfo { AlgorithmIdentifier { OID, NULL },
 * OCTET STRING } for each hash (RFC 8017, section 9.2, note 1).  Only
 * these exact encodings are taken: a comparison of bytes leaves no
 * room for a lenient parser's surprises.
 */
static const struct {
	enum sg_digest_alg alg;
	uint8_t prefix[19];
} digestinfos[] = {
	{ SG_DIGEST_SHA256, { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86,
	    0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04,
	    0x20 } },
	{ SG_DIGEST_SHA384, { 0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86,
	    0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04,
	    0x30 } },
	{ SG_DIGEST_SHA512, { 0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86,
	    0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04,
	    0x40 } },
};
#define DIGESTINFO_PREFIX_LEN 19

CK_RV
p11m_digestinfo_parse(const uint8_t *in, size_t len,
    enum sg_digest_alg *ret_alg, const uint8_t **ret_digest)
{
	size_t i;

	if (in == NULL)
		return CKR_DATA_INVALID;
	for (i = 0; i < sizeof(digestinfos) / sizeof(digestinfos[0]); i++) {
		if (len != DIGESTINFO_PREFIX_LEN +
		    sg_digest_len(digestinfos[i].alg))
			continue;
		if (memcmp(in, digestinfos[i].prefix,
		    DIGESTINFO_PREFIX_LEN) != 0)
			continue;
		*ret_alg = digestinfos[i].alg;
		*ret_digest = in + DIGESTINFO_PREFIX_LEN;
		return CKR_OK;
	}
	return CKR_DATA_INVALID;
}

CK_RV
p11m_raw_digest(const struct p11m_mech *m, enum sg_digest_alg hash,
    const uint8_t *data, size_t len, enum sg_digest_alg *ret_alg,
    uint8_t *out, size_t *ret_len)
{
	const uint8_t *d = data;
	enum sg_digest_alg a = hash;
	CK_RV rv;

	if (data == NULL && len != 0)
		return CKR_ARGUMENTS_BAD;
	switch (m->scheme) {
	case SG_SIG_ECDSA:
		if (len == 32)
			a = SG_DIGEST_SHA256;
		else if (len == 48)
			a = SG_DIGEST_SHA384;
		else if (len == 64)
			a = SG_DIGEST_SHA512;
		else
			return CKR_DATA_LEN_RANGE;
		break;
	case SG_SIG_RSA_PKCS1:
		if ((rv = p11m_digestinfo_parse(data, len, &a, &d)) != CKR_OK)
			return rv;
		break;
	case SG_SIG_RSA_PSS:
		if (a == SG_DIGEST_NONE)
			return CKR_GENERAL_ERROR;
		if (len != sg_digest_len(a))
			return CKR_DATA_LEN_RANGE;
		break;
	default:
		return CKR_GENERAL_ERROR;
	}
	memcpy(out, d, sg_digest_len(a));
	*ret_alg = a;
	*ret_len = sg_digest_len(a);
	return CKR_OK;
}

int
p11m_ecdsa_der_to_raw(const uint8_t *der, size_t len, size_t field,
    uint8_t *out, size_t cap, size_t *ret_len)
{
	const unsigned char *p = der;
	const BIGNUM *r = NULL, *s = NULL;
	unsigned char *re = NULL;
	ECDSA_SIG *sig = NULL;
	int n, ret = SG_ERR_INVALID;

	if (der == NULL || len == 0 || len > SG_MAX_SIG || field == 0 ||
	    field > SG_EC_P521_FIELD_LEN)
		return SG_ERR_INVALID;
	if (cap < 2 * field)
		return SG_ERR_BUFFER;
	if ((sig = d2i_ECDSA_SIG(NULL, &p, (long)len)) == NULL ||
	    p != der + len)
		goto out;
	/* Strict DER: the encoding must be the one OpenSSL would write. */
	if ((n = i2d_ECDSA_SIG(sig, &re)) <= 0 || (size_t)n != len ||
	    memcmp(re, der, len) != 0)
		goto out;
	ECDSA_SIG_get0(sig, &r, &s);
	if (BN_is_negative(r) || BN_is_negative(s) || BN_is_zero(r) ||
	    BN_is_zero(s) || (size_t)BN_num_bytes(r) > field ||
	    (size_t)BN_num_bytes(s) > field)
		goto out;
	if (BN_bn2binpad(r, out, (int)field) != (int)field ||
	    BN_bn2binpad(s, out + field, (int)field) != (int)field)
		goto out;
	*ret_len = 2 * field;
	ret = 0;
out:
	OPENSSL_free(re);
	ECDSA_SIG_free(sig);
	return ret;
}
