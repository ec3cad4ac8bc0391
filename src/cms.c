/*
 * Detached CMS SignedData built from a digest, with the signature made
 * outside this process.
 *
 * OpenSSL 3.0 has no CMS_final_digest() and wants a private EVP_PKEY to
 * sign, while our private keys live in the HSM.  So the SignedData is
 * assembled with OpenSSL's CMS objects in "partial" mode, with the signer's
 * PUBLIC key (CMS_add1_signer only compares public halves), and the
 * signature step is done here:
 *
 *   1. CMS_sign(PARTIAL|DETACHED|BINARY) gives an empty SignedData that
 *      carries the rest of the chain; CMS_add1_signer adds the SignerInfo,
 *      its digest algorithm and the signer's certificate.  OpenSSL picks the
 *      signature algorithm (ecdsa-with-SHAxxx, rsaEncryption); RSA-PSS is
 *      set by hand, since OpenSSL only derives it from a signing context.
 *   2. The signed attributes are ours: contentType id-data, messageDigest
 *      (the artifact digest we were given: the content is never seen) and
 *      signingTime.
 *   3. The signature covers the DER of the attributes as a SET OF (RFC 5652
 *      5.4).  CMS and PKCS#7 signed attributes are the same ASN.1, and
 *      OpenSSL's public PKCS7_ATTR_SIGN item is exactly that DER encoding,
 *      sorted as DER requires.  Its hash goes to the sign callback.
 *   4. The signature value is stored, and the SignerInfo is verified with
 *      OpenSSL's own CMS code before anything is returned.  That one check
 *      covers a faulty signer, a callback that used another key, and any
 *      difference between the bytes we had signed and the bytes OpenSSL
 *      encodes into the SignerInfo.
 *
 * Every DER input is parsed whole (no trailing bytes) and capped at
 * SG_CMS_MAX.  Only the shape we produce is accepted back: a detached
 * SignedData of id-data with exactly one SignerInfo.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/rsa.h>
#include <openssl/ts.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "sg_cms.h"
#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_util.h"

#define CMS_MAX_CERTS 16    /* a leaf, intermediates and a root, with room */

/* Certificates of a PEM bundle, in order; at least one, at most `max`. */
static int
load_certs(const char *pem, size_t len, int max, STACK_OF(X509) **ret)
{
	STACK_OF(X509) *sk = NULL;
	BIO *bio = NULL;
	X509 *x;
	unsigned long e;
	int r = SG_ERR_INVALID;

	if (pem == NULL || len == 0)
		return SG_ERR_INVALID;
	if (len > SG_CMS_MAX)
		return SG_ERR_TOO_LARGE;
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL ||
	    (sk = sk_X509_new_null()) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	ERR_set_mark();
	for (;;) {
		if ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL) {
			/* Only "no more PEM blocks" ends the bundle cleanly;
			 * a damaged certificate must not be skipped. */
			e = ERR_peek_last_error();
			if (ERR_GET_LIB(e) == ERR_LIB_PEM &&
			    ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
				break;
			ERR_pop_to_mark();
			goto out;
		}
		if (sk_X509_num(sk) >= max) {
			X509_free(x);
			ERR_pop_to_mark();
			r = SG_ERR_TOO_LARGE;
			goto out;
		}
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			ERR_pop_to_mark();
			r = SG_ERR_NOMEM;
			goto out;
		}
	}
	ERR_pop_to_mark();
	if (sk_X509_num(sk) == 0)
		goto out;
	*ret = sk;
	sk = NULL;
	r = 0;
out:
	sk_X509_pop_free(sk, X509_free);
	BIO_free(bio);
	return r;
}

/*
 * id-RSASSA-PSS with RSASSA-PSS-params (RFC 4055): the digest, MGF1 over
 * the same digest, salt as long as the digest, trailer 1 (the default, so
 * omitted).  This is what the signer produces and what sg_verify accepts.
 */
static int
set_pss_algorithm(CMS_SignerInfo *si, const EVP_MD *md)
{
	RSA_PSS_PARAMS *pss = NULL;
	X509_ALGOR *mgf1_md = NULL, *sigalg = NULL;
	ASN1_STRING *mgf1_der = NULL, *pss_der = NULL;
	int r = SG_ERR_CRYPTO;

	if ((pss = RSA_PSS_PARAMS_new()) == NULL ||
	    (pss->hashAlgorithm = X509_ALGOR_new()) == NULL ||
	    (pss->maskGenAlgorithm = X509_ALGOR_new()) == NULL ||
	    (pss->saltLength = ASN1_INTEGER_new()) == NULL ||
	    (mgf1_md = X509_ALGOR_new()) == NULL)
		goto out;
	X509_ALGOR_set_md(pss->hashAlgorithm, md);
	X509_ALGOR_set_md(mgf1_md, md);
	if (ASN1_item_pack(mgf1_md, ASN1_ITEM_rptr(X509_ALGOR),
	    &mgf1_der) == NULL)
		goto out;
	if (!X509_ALGOR_set0(pss->maskGenAlgorithm, OBJ_nid2obj(NID_mgf1),
	    V_ASN1_SEQUENCE, mgf1_der))
		goto out;
	mgf1_der = NULL;  /* transferred */
	if (!ASN1_INTEGER_set(pss->saltLength, EVP_MD_get_size(md)) ||
	    ASN1_item_pack(pss, ASN1_ITEM_rptr(RSA_PSS_PARAMS),
	    &pss_der) == NULL)
		goto out;
	CMS_SignerInfo_get0_algs(si, NULL, NULL, NULL, &sigalg);
	if (sigalg == NULL || !X509_ALGOR_set0(sigalg,
	    OBJ_nid2obj(NID_rsassaPss), V_ASN1_SEQUENCE, pss_der))
		goto out;
	pss_der = NULL;  /* transferred */
	r = 0;
out:
	ASN1_STRING_free(mgf1_der);
	ASN1_STRING_free(pss_der);
	X509_ALGOR_free(mgf1_md);
	RSA_PSS_PARAMS_free(pss);
	return r;
}

static int
add_signed_attributes(CMS_SignerInfo *si, const uint8_t *digest,
    size_t digest_len, time_t signing_time)
{
	ASN1_TIME *t = NULL;
	int r = SG_ERR_CRYPTO;

	/* ASN1_TIME_set picks UTCTime for 1950-2049, GeneralizedTime
	 * otherwise: the rule RFC 5652 11.3 sets for signingTime. */
	if ((t = ASN1_TIME_set(NULL, signing_time)) == NULL)
		goto out;
	if (!CMS_signed_add1_attr_by_NID(si, NID_pkcs9_contentType,
	    V_ASN1_OBJECT, OBJ_nid2obj(NID_pkcs7_data), -1) ||
	    !CMS_signed_add1_attr_by_NID(si, NID_pkcs9_signingTime,
	    ASN1_STRING_type(t), t, -1) ||
	    !CMS_signed_add1_attr_by_NID(si, NID_pkcs9_messageDigest,
	    V_ASN1_OCTET_STRING, digest, (int)digest_len))
		goto out;
	r = 0;
out:
	ASN1_TIME_free(t);
	return r;
}

/* Hash of the DER SET OF signed attributes: what the signature covers. */
static int
hash_signed_attributes(CMS_SignerInfo *si, const EVP_MD *md, uint8_t *out,
    unsigned int *ret_len)
{
	STACK_OF(X509_ATTRIBUTE) *attrs = NULL;
	X509_ATTRIBUTE *a;
	unsigned char *der = NULL;
	unsigned int olen = 0;
	int i, n, r = SG_ERR_CRYPTO;

	/* A view of the SignerInfo's attributes (not owned): the item sorts
	 * the stack it encodes, and the SignerInfo's own must not move. */
	if ((attrs = sk_X509_ATTRIBUTE_new_null()) == NULL)
		return SG_ERR_NOMEM;
	n = CMS_signed_get_attr_count(si);
	for (i = 0; i < n; i++) {
		if ((a = CMS_signed_get_attr(si, i)) == NULL)
			goto out;
		if (!sk_X509_ATTRIBUTE_push(attrs, a)) {
			r = SG_ERR_NOMEM;
			goto out;
		}
	}
	if ((n = ASN1_item_i2d((ASN1_VALUE *)attrs, &der,
	    ASN1_ITEM_rptr(PKCS7_ATTR_SIGN))) <= 0)
		goto out;
	if (!EVP_Digest(der, (size_t)n, out, &olen, md, NULL))
		goto out;
	*ret_len = olen;
	r = 0;
out:
	OPENSSL_free(der);
	sk_X509_ATTRIBUTE_free(attrs);
	return r;
}

/* A malloc'd copy of the n > 0 bytes at p. */
static int
copy_out(const unsigned char *p, int n, uint8_t **ret, size_t *ret_len)
{
	uint8_t *out;

	if ((out = malloc((size_t)n)) == NULL)
		return SG_ERR_NOMEM;
	memcpy(out, p, (size_t)n);
	*ret = out;
	*ret_len = (size_t)n;
	return 0;
}

/* DER of a CMS, capped, into a malloc'd buffer. */
static int
encode_cms(CMS_ContentInfo *cms, uint8_t **ret, size_t *ret_len)
{
	unsigned char *der = NULL;
	int n, r;

	if ((n = i2d_CMS_ContentInfo(cms, &der)) <= 0)
		return SG_ERR_CRYPTO;
	if ((size_t)n > SG_CMS_MAX)
		r = SG_ERR_TOO_LARGE;
	else
		r = copy_out(der, n, ret, ret_len);
	OPENSSL_free(der);
	return r;
}

/*
 * The chain for `pub`: its first certificate must be pub's.  `rest` gets
 * the others (not owned: views into `chain`), since the leaf is added by
 * CMS_add1_signer and OpenSSL 3.0 refuses to add the same certificate
 * twice.
 */
static int
signer_chain(const char *chain_pem, size_t chain_len, EVP_PKEY *pub,
    STACK_OF(X509) **ret_chain, STACK_OF(X509) **ret_rest)
{
	STACK_OF(X509) *chain;
	X509 *leaf;
	int i, r;

	if ((r = load_certs(chain_pem, chain_len, CMS_MAX_CERTS, &chain)) != 0)
		return r;
	*ret_chain = chain;
	leaf = sk_X509_value(chain, 0);
	if (X509_get0_pubkey(leaf) == NULL ||
	    EVP_PKEY_eq(X509_get0_pubkey(leaf), pub) != 1) {
		sg_log_debug("cms: the chain's first certificate is not for "
		    "the signing key");
		return SG_ERR_INVALID;
	}
	if ((*ret_rest = sk_X509_new_null()) == NULL)
		return SG_ERR_NOMEM;
	for (i = 1; i < sk_X509_num(chain); i++)
		if (!sk_X509_push(*ret_rest, sk_X509_value(chain, i)))
			return SG_ERR_NOMEM;
	return 0;
}

/* Steps 3 and 4: the signature over the signed attributes, checked. */
static int
sign_attributes(CMS_SignerInfo *si, const EVP_MD *md,
    enum sg_digest_alg digest_alg, sg_cms_sign_fn sign, void *sign_ctx)
{
	ASN1_OCTET_STRING *sigval;
	uint8_t h[EVP_MAX_MD_SIZE], sig[SG_MAX_SIG];
	unsigned int hlen = 0;
	size_t sig_len = 0;
	int r;

	if ((r = hash_signed_attributes(si, md, h, &hlen)) != 0)
		goto out;
	if ((r = sign(sign_ctx, digest_alg, h, hlen, sig, sizeof(sig),
	    &sig_len)) != 0)
		goto out;
	if (sig_len == 0 || sig_len > sizeof(sig)) {
		r = SG_ERR_INTERNAL;
		goto out;
	}
	r = SG_ERR_CRYPTO;
	if ((sigval = CMS_SignerInfo_get0_signature(si)) == NULL ||
	    !ASN1_STRING_set(sigval, sig, (int)sig_len))
		goto out;
	if (CMS_SignerInfo_verify(si) != 1) {
		sg_log_error("cms: the signature from the signer does not "
		    "verify over the signed attributes");
		r = SG_ERR_VERIFY;
		goto out;
	}
	r = 0;
out:
	explicit_bzero(h, sizeof(h));
	return r;
}

int
sg_cms_build(const char *chain_pem, size_t chain_len, EVP_PKEY *pub,
    enum sg_sig_scheme scheme, enum sg_digest_alg digest_alg,
    const uint8_t *digest, size_t digest_len, time_t signing_time,
    sg_cms_sign_fn sign, void *sign_ctx, uint8_t **ret_der, size_t *ret_len)
{
	STACK_OF(X509) *chain = NULL, *rest = NULL;
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	const EVP_MD *md = sg_digest_md(digest_alg);
	int r;

	if (pub == NULL || md == NULL || digest == NULL ||
	    digest_len != sg_digest_len(digest_alg) || sign == NULL ||
	    signing_time < 0 || ret_der == NULL || ret_len == NULL)
		return SG_ERR_INVALID;
	/* A CMS here signs a digest: never EdDSA. */
	if (scheme == SG_SIG_EDDSA ||
	    !sg_scheme_fits(sg_pubkey_alg(pub), scheme))
		return SG_ERR_MECHANISM;
	if ((r = signer_chain(chain_pem, chain_len, pub, &chain, &rest)) != 0)
		goto out;
	r = SG_ERR_CRYPTO;
	if ((cms = CMS_sign(NULL, NULL, rest, NULL,
	    CMS_PARTIAL | CMS_DETACHED | CMS_BINARY)) == NULL)
		goto out;
	if ((si = CMS_add1_signer(cms, sk_X509_value(chain, 0), pub, md,
	    CMS_PARTIAL | CMS_NOSMIMECAP | CMS_BINARY)) == NULL)
		goto out;
	if (scheme == SG_SIG_RSA_PSS && (r = set_pss_algorithm(si, md)) != 0)
		goto out;
	if ((r = add_signed_attributes(si, digest, digest_len,
	    signing_time)) != 0)
		goto out;
	if ((r = sign_attributes(si, md, digest_alg, sign, sign_ctx)) != 0)
		goto out;
	r = encode_cms(cms, ret_der, ret_len);
out:
	ERR_clear_error();
	CMS_ContentInfo_free(cms);
	sk_X509_free(rest);
	sk_X509_pop_free(chain, X509_free);
	return r;
}

/* A detached SignedData of id-data with exactly one SignerInfo. */
static int
parse_cms(const uint8_t *der, size_t len, CMS_ContentInfo **ret_cms,
    CMS_SignerInfo **ret_si)
{
	CMS_ContentInfo *cms;
	STACK_OF(CMS_SignerInfo) *sis;
	const unsigned char *p = der;

	if (der == NULL || len == 0)
		return SG_ERR_INVALID;
	if (len > SG_CMS_MAX)
		return SG_ERR_TOO_LARGE;
	cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
	if (cms == NULL || p != der + len ||
	    OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed ||
	    CMS_is_detached(cms) != 1 ||
	    OBJ_obj2nid(CMS_get0_eContentType(cms)) != NID_pkcs7_data ||
	    (sis = CMS_get0_SignerInfos(cms)) == NULL ||
	    sk_CMS_SignerInfo_num(sis) != 1) {
		CMS_ContentInfo_free(cms);
		ERR_clear_error();
		return SG_ERR_INVALID;
	}
	*ret_si = sk_CMS_SignerInfo_value(sis, 0);
	*ret_cms = cms;
	return 0;
}

int
sg_cms_signature_value(const uint8_t *der, size_t len, uint8_t **ret,
    size_t *ret_len)
{
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	ASN1_OCTET_STRING *sig;
	int n, r;

	if (ret == NULL || ret_len == NULL)
		return SG_ERR_INVALID;
	if ((r = parse_cms(der, len, &cms, &si)) != 0)
		return r;
	if ((sig = CMS_SignerInfo_get0_signature(si)) == NULL ||
	    (n = ASN1_STRING_length(sig)) <= 0)
		r = SG_ERR_INVALID;
	else
		r = copy_out(ASN1_STRING_get0_data(sig), n, ret, ret_len);
	CMS_ContentInfo_free(cms);
	return r;
}

TS_TST_INFO *
sg_cms_token_info(const uint8_t *token, size_t len)
{
	PKCS7 *p7;
	TS_TST_INFO *tst = NULL;
	const unsigned char *p = token;

	if (token == NULL || len == 0 || len > SG_CMS_MAX)
		return NULL;
	p7 = d2i_PKCS7(NULL, &p, (long)len);
	if (p7 != NULL && p == token + len)
		tst = PKCS7_to_TS_TST_INFO(p7);
	PKCS7_free(p7);
	return tst;
}

/*
 * Checks that a TimeStampToken is one DER ContentInfo holding a TSTInfo
 * whose message imprint is the hash of `sig`: a token over anything else
 * would date a different signature.
 */
static int
token_covers(const uint8_t *token, size_t token_len, const uint8_t *sig,
    size_t sig_len)
{
	TS_TST_INFO *tst = NULL;
	TS_MSG_IMPRINT *imp;
	X509_ALGOR *alg;
	ASN1_OCTET_STRING *msg;
	const ASN1_OBJECT *obj = NULL;
	const EVP_MD *md;
	uint8_t h[EVP_MAX_MD_SIZE];
	unsigned int hlen = 0;
	int r = SG_ERR_INVALID;

	if ((tst = sg_cms_token_info(token, token_len)) == NULL ||
	    (imp = TS_TST_INFO_get_msg_imprint(tst)) == NULL ||
	    (alg = TS_MSG_IMPRINT_get_algo(imp)) == NULL ||
	    (msg = TS_MSG_IMPRINT_get_msg(imp)) == NULL)
		goto out;
	X509_ALGOR_get0(&obj, NULL, NULL, alg);
	switch (OBJ_obj2nid(obj)) {
	case NID_sha256: md = EVP_sha256(); break;
	case NID_sha384: md = EVP_sha384(); break;
	case NID_sha512: md = EVP_sha512(); break;
	default:
		r = SG_ERR_MECHANISM;
		goto out;
	}
	if (!EVP_Digest(sig, sig_len, h, &hlen, md, NULL)) {
		r = SG_ERR_CRYPTO;
		goto out;
	}
	if ((size_t)ASN1_STRING_length(msg) != hlen ||
	    memcmp(ASN1_STRING_get0_data(msg), h, hlen) != 0) {
		r = SG_ERR_VERIFY;
		goto out;
	}
	r = 0;
out:
	ERR_clear_error();
	TS_TST_INFO_free(tst);
	return r;
}

int
sg_cms_add_timestamp(const uint8_t *der, size_t len, const uint8_t *token,
    size_t token_len, uint8_t **ret, size_t *ret_len)
{
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	ASN1_OCTET_STRING *sig;
	int r;

	if (token == NULL || token_len == 0 || ret == NULL || ret_len == NULL)
		return SG_ERR_INVALID;
	if (token_len > SG_CMS_MAX)
		return SG_ERR_TOO_LARGE;
	if ((r = parse_cms(der, len, &cms, &si)) != 0)
		return r;
	if ((sig = CMS_SignerInfo_get0_signature(si)) == NULL ||
	    ASN1_STRING_length(sig) <= 0) {
		r = SG_ERR_INVALID;
		goto out;
	}
	if ((r = token_covers(token, token_len, ASN1_STRING_get0_data(sig),
	    (size_t)ASN1_STRING_length(sig))) != 0)
		goto out;
	if (CMS_unsigned_get_attr_by_NID(si, NID_id_smime_aa_timeStampToken,
	    -1) >= 0) {
		r = SG_ERR_CONFLICT;
		goto out;
	}
	/* V_ASN1_SEQUENCE with a length stores the bytes as the whole
	 * encoding: the token goes in exactly as the authority signed it. */
	if (!CMS_unsigned_add1_attr_by_NID(si, NID_id_smime_aa_timeStampToken,
	    V_ASN1_SEQUENCE, token, (int)token_len)) {
		r = SG_ERR_CRYPTO;
		goto out;
	}
	r = encode_cms(cms, ret, ret_len);
out:
	ERR_clear_error();
	CMS_ContentInfo_free(cms);
	return r;
}

int
sg_cms_get_timestamp(const uint8_t *der, size_t len, uint8_t **ret,
    size_t *ret_len)
{
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	X509_ATTRIBUTE *attr;
	ASN1_TYPE *t;
	unsigned char *out = NULL;
	int i, n, r;

	if ((r = parse_cms(der, len, &cms, &si)) != 0)
		return r;
	r = SG_ERR_NOT_FOUND;
	if ((i = CMS_unsigned_get_attr_by_NID(si,
	    NID_id_smime_aa_timeStampToken, -1)) < 0 ||
	    (attr = CMS_unsigned_get_attr(si, i)) == NULL ||
	    X509_ATTRIBUTE_count(attr) != 1 ||
	    (t = X509_ATTRIBUTE_get0_type(attr, 0)) == NULL)
		goto out;
	if ((n = i2d_ASN1_TYPE(t, &out)) <= 0) {
		r = SG_ERR_CRYPTO;
		goto out;
	}
	r = copy_out(out, n, ret, ret_len);
out:
	OPENSSL_free(out);
	ERR_clear_error();
	CMS_ContentInfo_free(cms);
	return r;
}

/* The signer's certificate chains to one of the CAs (any purpose: which
 * extended key usage a relying party wants is its own decision). */
static int
verify_chain(CMS_ContentInfo *cms, X509 *signer, const char *ca_pem,
    size_t ca_len)
{
	STACK_OF(X509) *cas = NULL, *untrusted = NULL;
	X509_STORE *store = NULL;
	X509_STORE_CTX *vctx = NULL;
	int i, r;

	if ((r = load_certs(ca_pem, ca_len, CMS_MAX_CERTS, &cas)) != 0)
		return r;
	r = SG_ERR_NOMEM;
	if ((store = X509_STORE_new()) == NULL ||
	    (vctx = X509_STORE_CTX_new()) == NULL)
		goto out;
	for (i = 0; i < sk_X509_num(cas); i++)
		if (!X509_STORE_add_cert(store, sk_X509_value(cas, i)))
			goto out;
	untrusted = CMS_get1_certs(cms);
	r = SG_ERR_CRYPTO;
	if (!X509_STORE_CTX_init(vctx, store, signer, untrusted) ||
	    !X509_STORE_CTX_set_purpose(vctx, X509_PURPOSE_ANY))
		goto out;
	if (X509_verify_cert(vctx) != 1) {
		sg_log_debug("cms: signer certificate: %s",
		    X509_verify_cert_error_string(
		    X509_STORE_CTX_get_error(vctx)));
		r = SG_ERR_VERIFY;
		goto out;
	}
	r = 0;
out:
	X509_STORE_CTX_free(vctx);
	X509_STORE_free(store);
	sk_X509_pop_free(untrusted, X509_free);
	sk_X509_pop_free(cas, X509_free);
	return r;
}

int
sg_cms_verify_digest(const uint8_t *der, size_t len,
    enum sg_digest_alg digest_alg, const uint8_t *digest, size_t digest_len,
    const char *ca_pem, size_t ca_len)
{
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	X509 *signer = NULL;
	X509_ALGOR *digalg = NULL;
	const ASN1_OBJECT *obj = NULL;
	ASN1_OCTET_STRING *md_attr;
	const EVP_MD *md = sg_digest_md(digest_alg);
	int r;

	if (md == NULL || digest == NULL ||
	    digest_len != sg_digest_len(digest_alg))
		return SG_ERR_INVALID;
	if ((r = parse_cms(der, len, &cms, &si)) != 0)
		return r;
	r = SG_ERR_VERIFY;
	/* Finds the signer's certificate among those the CMS carries. */
	if (CMS_set1_signers_certs(cms, NULL, 0) != 1) {
		sg_log_debug("cms: the signer's certificate is missing");
		goto out;
	}
	CMS_SignerInfo_get0_algs(si, NULL, &signer, &digalg, NULL);
	if (signer == NULL || digalg == NULL)
		goto out;
	X509_ALGOR_get0(&obj, NULL, NULL, digalg);
	if (OBJ_obj2nid(obj) != EVP_MD_get_type(md)) {
		sg_log_debug("cms: digest algorithm is not %s",
		    sg_digest_name(digest_alg));
		goto out;
	}
	md_attr = CMS_signed_get0_data_by_OBJ(si,
	    OBJ_nid2obj(NID_pkcs9_messageDigest), -3, V_ASN1_OCTET_STRING);
	if (md_attr == NULL ||
	    (size_t)ASN1_STRING_length(md_attr) != digest_len ||
	    memcmp(ASN1_STRING_get0_data(md_attr), digest, digest_len) != 0) {
		sg_log_debug("cms: messageDigest differs from the digest");
		goto out;
	}
	if (CMS_SignerInfo_verify(si) != 1) {
		sg_log_debug("cms: signature over the signed attributes does "
		    "not verify");
		goto out;
	}
	r = verify_chain(cms, signer, ca_pem, ca_len);
out:
	ERR_clear_error();
	CMS_ContentInfo_free(cms);
	return r;
}
