/*
 * Tests for CMS signatures built from a digest.  Keys, a throwaway CA
 * (with an intermediate), code-signing leaves and a time-stamping
 * authority are all made in-process; the sign callback signs with the
 * in-process private key, as the HSM would.  Each CMS is checked twice:
 * by sg_cms_verify_digest and by the openssl command line over a real
 * file, so that our encoding is judged by an independent reader:
 *
 *   openssl cms -verify -binary -inform DER -in F.p7s -content F \
 *       -CAfile ca.pem -purpose any -out /dev/null
 *
 * (-purpose any: OpenSSL 3.0's default purpose for cms -verify is
 * smimesign, which refuses a certificate whose extended key usage is
 * codeSigning only; 3.0 has no code-signing purpose.  A test below shows
 * the default purpose failing, so this note stays true.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/ts.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "sg_cms.h"
#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_util.h"
#include "sg_test.h"
#include "sg_fixture.h"

#define SIGNING_TIME ((time_t)1764417600)   /* 2025-11-29T12:00:00Z */
#define CERT_DAYS 365

static struct sg_fx_pki pki;       /* files go to its directory */

/* A signing identity: key pair, leaf, chain PEM (leaf, intermediate). */
struct ident {
	EVP_PKEY *key;
	EVP_PKEY *pub;             /* public half only, as the gateway has */
	X509 *leaf;
	char *chain;
};

struct signer_ctx {
	EVP_PKEY *key;
	enum sg_sig_scheme scheme;
	int calls;
	int fail;                  /* return this error instead */
	uint8_t last_sig[SG_MAX_SIG];
	size_t last_len;
};

static EVP_PKEY *
gen_ec(const char *curve)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
}

static EVP_PKEY *
gen_rsa(void)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
}

/* A certificate of the test PKI; the test cannot go on without it. */
static X509 *
cert(const char *cn, EVP_PKEY *pub, X509 *issuer, EVP_PKEY *issuer_key,
    enum sg_fx_cert_kind kind)
{
	X509 *x = sg_fx_cert(cn, pub, issuer, issuer_key, kind, CERT_DAYS);

	if (x == NULL)
		exit(2);
	return x;
}

static void
ident_make(struct ident *id, EVP_PKEY *key)
{
	id->key = key;
	id->pub = sg_fx_public_only(key);
	id->leaf = cert("test code signer", key, pki.inter, pki.inter_key,
	    SG_FX_CERT_CODESIGN);
	id->chain = sg_fx_certs_pem(id->leaf, pki.inter);
}

static void
ident_free(struct ident *id)
{
	EVP_PKEY_free(id->key);
	EVP_PKEY_free(id->pub);
	X509_free(id->leaf);
	free(id->chain);
}

/* The HSM's part: sign a digest with the scheme's padding. */
static int
sign_cb(void *arg, enum sg_digest_alg alg, const uint8_t *digest,
    size_t len, uint8_t *sig, size_t cap, size_t *ret_len)
{
	struct signer_ctx *sc = arg;
	EVP_PKEY_CTX *pctx;
	const EVP_MD *md = sg_digest_md(alg);
	size_t n = cap;
	int ok;

	sc->calls++;
	if (sc->fail != 0)
		return sc->fail;
	if (md == NULL || len != sg_digest_len(alg))
		return SG_ERR_INVALID;
	if ((pctx = EVP_PKEY_CTX_new(sc->key, NULL)) == NULL)
		return SG_ERR_NOMEM;
	ok = EVP_PKEY_sign_init(pctx) == 1 &&
	    EVP_PKEY_CTX_set_signature_md(pctx, md) == 1;
	if (ok && sc->scheme == SG_SIG_RSA_PKCS1)
		ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1;
	if (ok && sc->scheme == SG_SIG_RSA_PSS)
		ok = EVP_PKEY_CTX_set_rsa_padding(pctx,
		    RSA_PKCS1_PSS_PADDING) == 1 &&
		    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) == 1 &&
		    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, (int)len) == 1;
	ok = ok && EVP_PKEY_sign(pctx, sig, &n, digest, len) == 1;
	EVP_PKEY_CTX_free(pctx);
	if (!ok)
		return SG_ERR_CRYPTO;
	if (n <= sizeof(sc->last_sig)) {
		memcpy(sc->last_sig, sig, n);
		sc->last_len = n;
	}
	*ret_len = n;
	return 0;
}

/* An artifact and its digest. */
struct artifact {
	char path[512];
	uint8_t digest[SG_MAX_DIGEST];
	size_t digest_len;
};

static void
artifact_make(struct artifact *a, const char *name, const char *content,
    enum sg_digest_alg alg)
{
	snprintf(a->path, sizeof(a->path), "%s/%s", pki.dir, name);
	if (sg_fx_write_bytes(a->path, content, strlen(content)) != 0 ||
	    sg_digest_file(a->path, alg, a->digest, &a->digest_len) != 0) {
		fprintf(stderr, "cannot make artifact %s\n", a->path);
		exit(2);
	}
}

static int
build(struct ident *id, struct signer_ctx *sc, enum sg_sig_scheme scheme,
    enum sg_digest_alg alg, const struct artifact *a, time_t t,
    uint8_t **der, size_t *len)
{
	memset(sc, 0, sizeof(*sc));
	sc->key = id->key;
	sc->scheme = scheme;
	return sg_cms_build(id->chain, strlen(id->chain), id->pub, scheme, alg,
	    a->digest, a->digest_len, t, sign_cb, sc, der, len);
}

/* Exit status of `openssl cms -verify` over the file; purpose NULL keeps
 * openssl's default. */
static int
openssl_cms_verify(const uint8_t *der, size_t len, const char *content,
    const char *ca_pem, const char *purpose)
{
	char cms_path[600], ca_path[600], cmd[2400];
	int st;

	snprintf(cms_path, sizeof(cms_path), "%s/sig.p7s", pki.dir);
	snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", pki.dir);
	if (sg_fx_write_bytes(cms_path, der, len) != 0 ||
	    sg_fx_write_bytes(ca_path, ca_pem, strlen(ca_pem)) != 0)
		return -1;
	snprintf(cmd, sizeof(cmd), "openssl cms -verify -binary -inform DER "
	    "-in '%s' -content '%s' -CAfile '%s'%s%s -out /dev/null "
	    ">/dev/null 2>&1", cms_path, content, ca_path,
	    purpose != NULL ? " -purpose " : "", purpose != NULL ? purpose : "");
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Sign, then verify both ways, and against another file. */
static void
roundtrip(EVP_PKEY *key, enum sg_sig_scheme scheme, enum sg_digest_alg alg)
{
	struct ident id;
	struct signer_ctx sc;
	struct artifact a, other;
	uint8_t *der = NULL, *sig = NULL;
	size_t len = 0, sig_len = 0;

	ident_make(&id, key);
	artifact_make(&a, "artifact.bin", "release 1.2.3\n", alg);
	artifact_make(&other, "other.bin", "release 1.2.4\n", alg);
	CHECK_EQ_INT(build(&id, &sc, scheme, alg, &a, SIGNING_TIME, &der,
	    &len), 0);
	CHECK_EQ_INT(sc.calls, 1);
	if (der == NULL)
		goto out;
	CHECK(len > 0 && len <= SG_CMS_MAX);
	CHECK_EQ_INT(sg_cms_verify_digest(der, len, alg, a.digest,
	    a.digest_len, pki.root_pem, strlen(pki.root_pem)), 0);
	CHECK_EQ_INT(openssl_cms_verify(der, len, a.path, pki.root_pem, "any"),
	    0);
	/* The same CMS for another file. */
	CHECK_EQ_INT(sg_cms_verify_digest(der, len, alg, other.digest,
	    other.digest_len, pki.root_pem, strlen(pki.root_pem)),
	    SG_ERR_VERIFY);
	CHECK(openssl_cms_verify(der, len, other.path, pki.root_pem,
	    "any") != 0);
	/* The signature value is the one the signer made. */
	CHECK_EQ_INT(sg_cms_signature_value(der, len, &sig, &sig_len), 0);
	CHECK_EQ_INT(sig_len, sc.last_len);
	CHECK(sig != NULL && memcmp(sig, sc.last_sig, sig_len) == 0);
out:
	free(sig);
	free(der);
	ident_free(&id);
}

static void
test_ecdsa_p256(void)
{
	roundtrip(gen_ec("P-256"), SG_SIG_ECDSA, SG_DIGEST_SHA256);
	roundtrip(gen_ec("P-256"), SG_SIG_ECDSA, SG_DIGEST_SHA512);
}

static void
test_ecdsa_p384(void)
{
	roundtrip(gen_ec("P-384"), SG_SIG_ECDSA, SG_DIGEST_SHA384);
	roundtrip(gen_ec("P-384"), SG_SIG_ECDSA, SG_DIGEST_SHA256);
}

static void
test_rsa_pkcs1(void)
{
	roundtrip(gen_rsa(), SG_SIG_RSA_PKCS1, SG_DIGEST_SHA256);
	roundtrip(gen_rsa(), SG_SIG_RSA_PKCS1, SG_DIGEST_SHA384);
	roundtrip(gen_rsa(), SG_SIG_RSA_PKCS1, SG_DIGEST_SHA512);
}

static void
test_rsa_pss(void)
{
	roundtrip(gen_rsa(), SG_SIG_RSA_PSS, SG_DIGEST_SHA256);
	roundtrip(gen_rsa(), SG_SIG_RSA_PSS, SG_DIGEST_SHA384);
	roundtrip(gen_rsa(), SG_SIG_RSA_PSS, SG_DIGEST_SHA512);
}

static CMS_SignerInfo *
only_signer(CMS_ContentInfo *cms)
{
	STACK_OF(CMS_SignerInfo) *sis = CMS_get0_SignerInfos(cms);

	if (sis == NULL || sk_CMS_SignerInfo_num(sis) != 1)
		return NULL;
	return sk_CMS_SignerInfo_value(sis, 0);
}

static CMS_ContentInfo *
parse(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;

	return d2i_CMS_ContentInfo(NULL, &p, (long)len);
}

/* The RSASSA-PSS-params the CMS names, as RFC 4055 wants them. */
static void
test_pss_parameters(void)
{
	const enum sg_digest_alg algs[] = {
		SG_DIGEST_SHA256, SG_DIGEST_SHA384, SG_DIGEST_SHA512
	};
	struct ident id;
	struct signer_ctx sc;
	struct artifact a;
	size_t i;

	ident_make(&id, gen_rsa());
	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		const EVP_MD *md = sg_digest_md(algs[i]);
		CMS_ContentInfo *cms = NULL;
		CMS_SignerInfo *si;
		X509_ALGOR *sigalg = NULL, *mgf_md = NULL;
		const ASN1_OBJECT *obj = NULL;
		const void *pval = NULL;
		int ptype = 0;
		RSA_PSS_PARAMS *pss = NULL;
		uint8_t *der = NULL;
		size_t len = 0;

		artifact_make(&a, "pss.bin", "pss\n", algs[i]);
		CHECK_EQ_INT(build(&id, &sc, SG_SIG_RSA_PSS, algs[i], &a,
		    SIGNING_TIME, &der, &len), 0);
		if (der == NULL || (cms = parse(der, len)) == NULL ||
		    (si = only_signer(cms)) == NULL) {
			CHECK(0);
			goto next;
		}
		CMS_SignerInfo_get0_algs(si, NULL, NULL, NULL, &sigalg);
		X509_ALGOR_get0(&obj, &ptype, &pval, sigalg);
		CHECK_EQ_INT(OBJ_obj2nid(obj), NID_rsassaPss);
		CHECK_EQ_INT(ptype, V_ASN1_SEQUENCE);
		if (ptype != V_ASN1_SEQUENCE)
			goto next;
		pss = ASN1_item_unpack(pval, ASN1_ITEM_rptr(RSA_PSS_PARAMS));
		CHECK(pss != NULL);
		if (pss == NULL)
			goto next;
		X509_ALGOR_get0(&obj, NULL, NULL, pss->hashAlgorithm);
		CHECK_EQ_INT(OBJ_obj2nid(obj), EVP_MD_get_type(md));
		X509_ALGOR_get0(&obj, &ptype, &pval, pss->maskGenAlgorithm);
		CHECK_EQ_INT(OBJ_obj2nid(obj), NID_mgf1);
		CHECK_EQ_INT(ptype, V_ASN1_SEQUENCE);
		if (ptype == V_ASN1_SEQUENCE)
			mgf_md = ASN1_item_unpack(pval,
			    ASN1_ITEM_rptr(X509_ALGOR));
		CHECK(mgf_md != NULL);
		if (mgf_md != NULL) {
			X509_ALGOR_get0(&obj, NULL, NULL, mgf_md);
			CHECK_EQ_INT(OBJ_obj2nid(obj), EVP_MD_get_type(md));
		}
		CHECK_EQ_INT(ASN1_INTEGER_get(pss->saltLength),
		    EVP_MD_get_size(md));
		CHECK(pss->trailerField == NULL);   /* the default, 1 */
next:
		X509_ALGOR_free(mgf_md);
		RSA_PSS_PARAMS_free(pss);
		CMS_ContentInfo_free(cms);
		free(der);
	}
	ident_free(&id);
}

/* Algorithms OpenSSL chose for ECDSA and PKCS#1, and our attributes. */
static void
test_structure(void)
{
	struct ident id;
	struct signer_ctx sc;
	struct artifact a;
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	X509_ALGOR *sigalg = NULL, *digalg = NULL;
	const ASN1_OBJECT *obj = NULL;
	ASN1_OCTET_STRING *md_attr;
	ASN1_OBJECT *ct;
	ASN1_TIME *t;
	STACK_OF(X509) *certs = NULL;
	uint8_t *der = NULL;
	size_t len = 0;

	ident_make(&id, gen_ec("P-384"));
	artifact_make(&a, "s.bin", "structure\n", SG_DIGEST_SHA384);
	CHECK_EQ_INT(build(&id, &sc, SG_SIG_ECDSA, SG_DIGEST_SHA384, &a,
	    SIGNING_TIME, &der, &len), 0);
	if (der == NULL || (cms = parse(der, len)) == NULL ||
	    (si = only_signer(cms)) == NULL) {
		CHECK(0);
		goto out;
	}
	CHECK_EQ_INT(OBJ_obj2nid(CMS_get0_type(cms)), NID_pkcs7_signed);
	CHECK_EQ_INT(CMS_is_detached(cms), 1);
	CHECK_EQ_INT(OBJ_obj2nid(CMS_get0_eContentType(cms)), NID_pkcs7_data);
	CMS_SignerInfo_get0_algs(si, NULL, NULL, &digalg, &sigalg);
	X509_ALGOR_get0(&obj, NULL, NULL, digalg);
	CHECK_EQ_INT(OBJ_obj2nid(obj), NID_sha384);
	X509_ALGOR_get0(&obj, NULL, NULL, sigalg);
	CHECK_EQ_INT(OBJ_obj2nid(obj), NID_ecdsa_with_SHA384);
	/* Exactly our three signed attributes, nothing else (no S/MIME
	 * capabilities). */
	CHECK_EQ_INT(CMS_signed_get_attr_count(si), 3);
	ct = CMS_signed_get0_data_by_OBJ(si, OBJ_nid2obj(NID_pkcs9_contentType),
	    -3, V_ASN1_OBJECT);
	CHECK(ct != NULL && OBJ_obj2nid(ct) == NID_pkcs7_data);
	md_attr = CMS_signed_get0_data_by_OBJ(si,
	    OBJ_nid2obj(NID_pkcs9_messageDigest), -3, V_ASN1_OCTET_STRING);
	CHECK(md_attr != NULL && (size_t)ASN1_STRING_length(md_attr) ==
	    a.digest_len && memcmp(ASN1_STRING_get0_data(md_attr), a.digest,
	    a.digest_len) == 0);
	t = CMS_signed_get0_data_by_OBJ(si,
	    OBJ_nid2obj(NID_pkcs9_signingTime), -3, V_ASN1_UTCTIME);
	CHECK(t != NULL && ASN1_TIME_cmp_time_t(t, SIGNING_TIME) == 0);
	/* The whole chain: leaf and intermediate. */
	certs = CMS_get1_certs(cms);
	CHECK_EQ_INT(sk_X509_num(certs), 2);
out:
	sk_X509_pop_free(certs, X509_free);
	CMS_ContentInfo_free(cms);
	free(der);
	ident_free(&id);
}

/* After 2049 signingTime is a GeneralizedTime (RFC 5652 11.3). */
static void
test_signing_time_2050(void)
{
	struct ident id;
	struct signer_ctx sc;
	struct artifact a;
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	ASN1_TIME *t;
	uint8_t *der = NULL;
	size_t len = 0;
	const time_t t2050 = (time_t)2556143999;   /* 2050-12-31T23:59:59Z */

	ident_make(&id, gen_ec("P-256"));
	artifact_make(&a, "t.bin", "time\n", SG_DIGEST_SHA256);
	CHECK_EQ_INT(build(&id, &sc, SG_SIG_ECDSA, SG_DIGEST_SHA256, &a,
	    t2050, &der, &len), 0);
	if (der == NULL || (cms = parse(der, len)) == NULL ||
	    (si = only_signer(cms)) == NULL) {
		CHECK(0);
		goto out;
	}
	t = CMS_signed_get0_data_by_OBJ(si,
	    OBJ_nid2obj(NID_pkcs9_signingTime), -3, V_ASN1_GENERALIZEDTIME);
	CHECK(t != NULL && ASN1_TIME_cmp_time_t(t, t2050) == 0);
	CHECK_EQ_INT(sg_cms_verify_digest(der, len, SG_DIGEST_SHA256, a.digest,
	    a.digest_len, pki.root_pem, strlen(pki.root_pem)), 0);
	CHECK_EQ_INT(openssl_cms_verify(der, len, a.path, pki.root_pem, "any"),
	    0);
out:
	CMS_ContentInfo_free(cms);
	free(der);
	ident_free(&id);
}

/* Flips one byte of the messageDigest value inside the DER. */
static void
test_tampered_message_digest(void)
{
	struct ident id;
	struct signer_ctx sc;
	struct artifact a;
	uint8_t *der = NULL, *at, forged[SG_MAX_DIGEST];
	size_t len = 0;

	ident_make(&id, gen_ec("P-256"));
	artifact_make(&a, "m.bin", "message digest\n", SG_DIGEST_SHA256);
	CHECK_EQ_INT(build(&id, &sc, SG_SIG_ECDSA, SG_DIGEST_SHA256, &a,
	    SIGNING_TIME, &der, &len), 0);
	if (der == NULL)
		goto out;
	at = memmem(der, len, a.digest, a.digest_len);
	CHECK(at != NULL);
	if (at == NULL)
		goto out;
	at[0] ^= 0x01;
	memcpy(forged, a.digest, a.digest_len);
	forged[0] ^= 0x01;
	/* Neither the original digest nor the forged one verifies: the
	 * attribute is covered by the signature. */
	CHECK_EQ_INT(sg_cms_verify_digest(der, len, SG_DIGEST_SHA256, a.digest,
	    a.digest_len, pki.root_pem, strlen(pki.root_pem)), SG_ERR_VERIFY);
	CHECK_EQ_INT(sg_cms_verify_digest(der, len, SG_DIGEST_SHA256, forged,
	    a.digest_len, pki.root_pem, strlen(pki.root_pem)), SG_ERR_VERIFY);
	CHECK(openssl_cms_verify(der, len, a.path, pki.root_pem, "any") != 0);
out:
	free(der);
	ident_free(&id);
}

static void
test_verify_refusals(void)
{
	struct ident id;
	struct signer_ctx sc;
	struct artifact a;
	EVP_PKEY *other_root_key = gen_ec("P-256");
	X509 *other_root = cert("test root CA", other_root_key, NULL,
	    other_root_key, SG_FX_CERT_CA);
	char *other_pem = sg_fx_certs_pem(other_root, NULL);
	uint8_t *der = NULL, *longer = NULL;
	size_t len = 0;

	ident_make(&id, gen_ec("P-256"));
	artifact_make(&a, "r.bin", "refusals\n", SG_DIGEST_SHA256);
	CHECK_EQ_INT(build(&id, &sc, SG_SIG_ECDSA, SG_DIGEST_SHA256, &a,
	    SIGNING_TIME, &der, &len), 0);
	if (der == NULL)
		goto out;
	/* Another CA with the same name. */
	CHECK_EQ_INT(sg_cms_verify_digest(der, len, SG_DIGEST_SHA256, a.digest,
	    a.digest_len, other_pem, strlen(other_pem)), SG_ERR_VERIFY);
	CHECK(openssl_cms_verify(der, len, a.path, other_pem, "any") != 0);
	/* Right digest value, wrong algorithm name. */
	CHECK(sg_cms_verify_digest(der, len, SG_DIGEST_SHA384, a.digest,
	    a.digest_len, pki.root_pem, strlen(pki.root_pem)) != 0);
	/* Trailing bytes, truncation, nothing. */
	longer = malloc(len + 1);
	memcpy(longer, der, len);
	longer[len] = 0;
	CHECK_EQ_INT(sg_cms_verify_digest(longer, len + 1, SG_DIGEST_SHA256,
	    a.digest, a.digest_len, pki.root_pem, strlen(pki.root_pem)),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(sg_cms_verify_digest(der, len - 1, SG_DIGEST_SHA256,
	    a.digest, a.digest_len, pki.root_pem, strlen(pki.root_pem)),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(sg_cms_verify_digest(der, 0, SG_DIGEST_SHA256,
	    a.digest, a.digest_len, pki.root_pem, strlen(pki.root_pem)),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(sg_cms_verify_digest(der, SG_CMS_MAX + 1,
	    SG_DIGEST_SHA256, a.digest, a.digest_len, pki.root_pem,
	    strlen(pki.root_pem)), SG_ERR_TOO_LARGE);
	/* No usable trust anchor. */
	CHECK(sg_cms_verify_digest(der, len, SG_DIGEST_SHA256, a.digest,
	    a.digest_len, "junk", 4) != 0);
out:
	free(longer);
	free(der);
	free(other_pem);
	X509_free(other_root);
	EVP_PKEY_free(other_root_key);
	ident_free(&id);
}

/* OpenSSL's default purpose refuses our code-signing leaf: the reason
 * for -purpose any in the documented command. */
static void
test_openssl_default_purpose(void)
{
	struct ident id;
	struct signer_ctx sc;
	struct artifact a;
	uint8_t *der = NULL;
	size_t len = 0;

	ident_make(&id, gen_ec("P-256"));
	artifact_make(&a, "p.bin", "purpose\n", SG_DIGEST_SHA256);
	CHECK_EQ_INT(build(&id, &sc, SG_SIG_ECDSA, SG_DIGEST_SHA256, &a,
	    SIGNING_TIME, &der, &len), 0);
	if (der != NULL) {
		CHECK(openssl_cms_verify(der, len, a.path, pki.root_pem,
		    NULL) != 0);
		CHECK_EQ_INT(openssl_cms_verify(der, len, a.path,
		    pki.root_pem, "any"), 0);
	}
	free(der);
	ident_free(&id);
}

static void
test_build_refusals(void)
{
	struct ident id, other;
	struct signer_ctx sc;
	struct artifact a;
	uint8_t *der = NULL;
	size_t len = 0;
	char *bad_chain;

	ident_make(&id, gen_ec("P-256"));
	ident_make(&other, gen_ec("P-256"));
	artifact_make(&a, "b.bin", "build\n", SG_DIGEST_SHA256);
	memset(&sc, 0, sizeof(sc));
	sc.key = id.key;
	sc.scheme = SG_SIG_ECDSA;

	/* pub is not the leaf's key. */
	CHECK_EQ_INT(sg_cms_build(id.chain, strlen(id.chain), other.pub,
	    SG_SIG_ECDSA, SG_DIGEST_SHA256, a.digest, a.digest_len,
	    SIGNING_TIME, sign_cb, &sc, &der, &len), SG_ERR_INVALID);
	/* A scheme that does not fit the key. */
	CHECK_EQ_INT(sg_cms_build(id.chain, strlen(id.chain), id.pub,
	    SG_SIG_RSA_PSS, SG_DIGEST_SHA256, a.digest, a.digest_len,
	    SIGNING_TIME, sign_cb, &sc, &der, &len), SG_ERR_MECHANISM);
	CHECK_EQ_INT(sg_cms_build(id.chain, strlen(id.chain), id.pub,
	    SG_SIG_EDDSA, SG_DIGEST_SHA256, a.digest, a.digest_len,
	    SIGNING_TIME, sign_cb, &sc, &der, &len), SG_ERR_MECHANISM);
	/* Digest length must match its algorithm. */
	CHECK_EQ_INT(sg_cms_build(id.chain, strlen(id.chain), id.pub,
	    SG_SIG_ECDSA, SG_DIGEST_SHA384, a.digest, a.digest_len,
	    SIGNING_TIME, sign_cb, &sc, &der, &len), SG_ERR_INVALID);
	/* No certificate; a damaged one. */
	CHECK_EQ_INT(sg_cms_build("", 0, id.pub, SG_SIG_ECDSA,
	    SG_DIGEST_SHA256, a.digest, a.digest_len, SIGNING_TIME, sign_cb,
	    &sc, &der, &len), SG_ERR_INVALID);
	bad_chain = strdup(id.chain);
	bad_chain[100] = '!';      /* not base64 */
	CHECK(sg_cms_build(bad_chain, strlen(bad_chain), id.pub, SG_SIG_ECDSA,
	    SG_DIGEST_SHA256, a.digest, a.digest_len, SIGNING_TIME, sign_cb,
	    &sc, &der, &len) != 0);
	free(bad_chain);
	CHECK_EQ_INT(sc.calls, 0);
	CHECK(der == NULL);

	/* The signer fails: its error comes back. */
	sc.fail = SG_ERR_HSM;
	CHECK_EQ_INT(sg_cms_build(id.chain, strlen(id.chain), id.pub,
	    SG_SIG_ECDSA, SG_DIGEST_SHA256, a.digest, a.digest_len,
	    SIGNING_TIME, sign_cb, &sc, &der, &len), SG_ERR_HSM);
	/* The signer uses another key: caught before anything leaves. */
	sc.fail = 0;
	sc.key = other.key;
	CHECK_EQ_INT(sg_cms_build(id.chain, strlen(id.chain), id.pub,
	    SG_SIG_ECDSA, SG_DIGEST_SHA256, a.digest, a.digest_len,
	    SIGNING_TIME, sign_cb, &sc, &der, &len), SG_ERR_VERIFY);
	/* PKCS#1 padding where PSS is named: also caught. */
	{
		struct ident rsa;

		ident_make(&rsa, gen_rsa());
		sc.key = rsa.key;
		sc.scheme = SG_SIG_RSA_PKCS1;
		CHECK_EQ_INT(sg_cms_build(rsa.chain, strlen(rsa.chain),
		    rsa.pub, SG_SIG_RSA_PSS, SG_DIGEST_SHA256, a.digest,
		    a.digest_len, SIGNING_TIME, sign_cb, &sc, &der, &len),
		    SG_ERR_VERIFY);
		ident_free(&rsa);
	}
	CHECK(der == NULL);
	ident_free(&id);
	ident_free(&other);
}

/* An RFC 3161 token over `data`, made by the in-process TSA. */
static int
make_token(const uint8_t *data, size_t len, uint8_t **ret, size_t *ret_len)
{
	return sg_fx_ts_token(pki.tsa, pki.tsa_key, data, len, ret, ret_len);
}

static void
test_timestamp(void)
{
	struct ident id;
	struct signer_ctx sc;
	struct artifact a;
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	X509_ATTRIBUTE *attr;
	ASN1_TYPE *v;
	uint8_t *der = NULL, *sig = NULL, *tok = NULL, *stamped = NULL;
	uint8_t *wrong = NULL, *twice = NULL, *sig2 = NULL;
	size_t len = 0, sig_len = 0, tok_len = 0, stamped_len = 0;
	size_t wrong_len = 0, twice_len = 0, sig2_len = 0;

	ident_make(&id, gen_rsa());
	artifact_make(&a, "ts.bin", "timestamped\n", SG_DIGEST_SHA256);
	CHECK_EQ_INT(build(&id, &sc, SG_SIG_RSA_PSS, SG_DIGEST_SHA256, &a,
	    SIGNING_TIME, &der, &len), 0);
	if (der == NULL ||
	    sg_cms_signature_value(der, len, &sig, &sig_len) != 0) {
		CHECK(0);
		goto out;
	}
	CHECK_EQ_INT(make_token(sig, sig_len, &tok, &tok_len), 0);
	CHECK_EQ_INT(sg_cms_add_timestamp(der, len, tok, tok_len, &stamped,
	    &stamped_len), 0);
	if (stamped == NULL)
		goto out;
	CHECK(stamped_len > len);
	/* The token is there, byte for byte, as the unsigned attribute. */
	if ((cms = parse(stamped, stamped_len)) == NULL ||
	    (si = only_signer(cms)) == NULL) {
		CHECK(0);
		goto out;
	}
	CHECK_EQ_INT(CMS_unsigned_get_attr_count(si), 1);
	attr = CMS_unsigned_get_attr(si, CMS_unsigned_get_attr_by_NID(si,
	    NID_id_smime_aa_timeStampToken, -1));
	CHECK(attr != NULL);
	if (attr != NULL) {
		CHECK_EQ_INT(X509_ATTRIBUTE_count(attr), 1);
		v = X509_ATTRIBUTE_get0_type(attr, 0);
		CHECK(v != NULL && v->type == V_ASN1_SEQUENCE &&
		    (size_t)v->value.sequence->length == tok_len &&
		    memcmp(v->value.sequence->data, tok, tok_len) == 0);
	}
	/* The signature is unchanged and still verifies. */
	CHECK_EQ_INT(sg_cms_signature_value(stamped, stamped_len, &sig2,
	    &sig2_len), 0);
	CHECK(sig2_len == sig_len && sig2 != NULL &&
	    memcmp(sig, sig2, sig_len) == 0);
	CHECK_EQ_INT(sg_cms_verify_digest(stamped, stamped_len,
	    SG_DIGEST_SHA256, a.digest, a.digest_len, pki.root_pem,
	    strlen(pki.root_pem)), 0);
	CHECK_EQ_INT(openssl_cms_verify(stamped, stamped_len, a.path,
	    pki.root_pem, "any"), 0);
	/* A second token is refused. */
	CHECK_EQ_INT(sg_cms_add_timestamp(stamped, stamped_len, tok, tok_len,
	    &twice, &twice_len), SG_ERR_CONFLICT);
	/* A token over something else than this signature is refused. */
	free(tok);
	tok = NULL;
	CHECK_EQ_INT(make_token((const uint8_t *)"other", 5, &tok, &tok_len),
	    0);
	CHECK_EQ_INT(sg_cms_add_timestamp(der, len, tok, tok_len, &wrong,
	    &wrong_len), SG_ERR_VERIFY);
	/* Not a token; a token with trailing bytes. */
	CHECK_EQ_INT(sg_cms_add_timestamp(der, len, (const uint8_t *)"\x30\x00",
	    2, &wrong, &wrong_len), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_cms_add_timestamp(der, len, der, len, &wrong,
	    &wrong_len), SG_ERR_INVALID);
	CHECK(wrong == NULL && twice == NULL);
out:
	CMS_ContentInfo_free(cms);
	free(sig);
	free(sig2);
	free(tok);
	free(stamped);
	free(der);
	ident_free(&id);
}

static const struct sg_test tests[] = {
	T(test_ecdsa_p256),
	T(test_ecdsa_p384),
	T(test_rsa_pkcs1),
	T(test_rsa_pss),
	T(test_pss_parameters),
	T(test_structure),
	T(test_signing_time_2050),
	T(test_tampered_message_digest),
	T(test_verify_refusals),
	T(test_openssl_default_purpose),
	T(test_build_refusals),
	T(test_timestamp),
};

int
main(void)
{
	int rc;

	if (sg_fx_pki_make(&pki, "cms") != 0)
		exit(2);
	rc = sg_test_run("cms", tests, sizeof(tests) / sizeof(tests[0]));
	sg_fx_pki_free(&pki);
	return rc;
}
