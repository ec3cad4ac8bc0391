/*
 * Tests for the PKCS#11 client module's own logic, without a gateway:
 * DigestInfo parsing, PSS parameters, the digest a mechanism's data
 * stands for, ECDSA DER to r||s, the configuration file and environment
 * (every error names file, line and field), the object model and
 * C_GetAttributeValue's rules, which mechanism fits which key, and the
 * rules of C_Initialize, C_Finalize and fork().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_util.h"
#include "p11mod_int.h"
#include "sg_test.h"
#include "sg_fixture.h"

static const uint8_t di256[] = { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
    0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 };
static const uint8_t di384[] = { 0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60,
    0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30 };
static const uint8_t di512[] = { 0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60,
    0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40 };

/* prefix || n bytes of 0xa0, 0xa1, ... into out; its length. */
static size_t
digestinfo(const uint8_t *prefix, size_t plen, size_t n, uint8_t *out)
{
	size_t i;

	memcpy(out, prefix, plen);
	for (i = 0; i < n; i++)
		out[plen + i] = (uint8_t)(0xa0 + i);
	return plen + n;
}

static void
test_digestinfo_accepted(void)
{
	static const struct {
		const uint8_t *prefix;
		enum sg_digest_alg alg;
	} cases[] = {
		{ di256, SG_DIGEST_SHA256 },
		{ di384, SG_DIGEST_SHA384 },
		{ di512, SG_DIGEST_SHA512 },
	};
	uint8_t buf[128];
	const uint8_t *d;
	enum sg_digest_alg a;
	size_t i, len;

	for (i = 0; i < 3; i++) {
		len = digestinfo(cases[i].prefix, 19,
		    sg_digest_len(cases[i].alg), buf);
		a = SG_DIGEST_NONE;
		d = NULL;
		CHECK_EQ_INT(p11m_digestinfo_parse(buf, len, &a, &d), CKR_OK);
		CHECK_EQ_INT(a, cases[i].alg);
		CHECK(d == buf + 19);
	}
}

static void
test_digestinfo_refused(void)
{
	static const uint8_t sha1[] = { 0x30, 0x21, 0x30, 0x09, 0x06, 0x05,
	    0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14 };
	/* SHA-256 without the NULL parameters (RFC 8017 allows it; we do
	 * not). */
	static const uint8_t nonull[] = { 0x30, 0x2f, 0x30, 0x0b, 0x06, 0x09,
	    0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x04, 0x20 };
	uint8_t buf[160], bad[160];
	const uint8_t *d;
	enum sg_digest_alg a;
	size_t len, i;

	/* Every truncation of a good one. */
	len = digestinfo(di512, 19, 64, buf);
	for (i = 0; i < len; i++)
		CHECK_EQ_INT(p11m_digestinfo_parse(buf, i, &a, &d),
		    CKR_DATA_INVALID);
	/* A trailing byte. */
	len = digestinfo(di256, 19, 32, buf);
	buf[len] = 0;
	CHECK_EQ_INT(p11m_digestinfo_parse(buf, len + 1, &a, &d),
	    CKR_DATA_INVALID);
	/* The SHA-256 OID with a SHA-384 sized digest (and the lengths
	 * fixed up), and SHA-384's with 32 bytes. */
	len = digestinfo(di256, 19, 48, buf);
	buf[1] = 0x41;
	buf[18] = 0x30;
	CHECK_EQ_INT(p11m_digestinfo_parse(buf, len, &a, &d), CKR_DATA_INVALID);
	len = digestinfo(di384, 19, 32, buf);
	CHECK_EQ_INT(p11m_digestinfo_parse(buf, len, &a, &d), CKR_DATA_INVALID);
	/* Wrong OIDs: SHA-224 (…04 02 04), SHA-1. */
	len = digestinfo(di256, 19, 32, buf);
	buf[14] = 0x04;
	CHECK_EQ_INT(p11m_digestinfo_parse(buf, len, &a, &d), CKR_DATA_INVALID);
	len = digestinfo(sha1, sizeof(sha1), 20, buf);
	CHECK_EQ_INT(p11m_digestinfo_parse(buf, len, &a, &d), CKR_DATA_INVALID);
	/* Missing NULL. */
	len = digestinfo(nonull, sizeof(nonull), 32, buf);
	CHECK_EQ_INT(p11m_digestinfo_parse(buf, len, &a, &d), CKR_DATA_INVALID);
	/* Any single byte of the prefix changed. */
	len = digestinfo(di384, 19, 48, buf);
	for (i = 0; i < 19; i++) {
		memcpy(bad, buf, len);
		bad[i] ^= 0x01;
		CHECK_EQ_INT(p11m_digestinfo_parse(bad, len, &a, &d),
		    CKR_DATA_INVALID);
	}
	/* A bare digest, and nothing. */
	CHECK_EQ_INT(p11m_digestinfo_parse(buf + 19, 32, &a, &d),
	    CKR_DATA_INVALID);
	CHECK_EQ_INT(p11m_digestinfo_parse(NULL, 0, &a, &d), CKR_DATA_INVALID);
}

static CK_RSA_PKCS_PSS_PARAMS
pss(CK_MECHANISM_TYPE h, CK_RSA_PKCS_MGF_TYPE mgf, CK_ULONG slen)
{
	CK_RSA_PKCS_PSS_PARAMS p;

	p.hashAlg = h;
	p.mgf = mgf;
	p.sLen = slen;
	return p;
}

static void
test_pss_params(void)
{
	const struct p11m_mech *raw = p11m_mech_find(CKM_RSA_PKCS_PSS);
	const struct p11m_mech *m384 = p11m_mech_find(CKM_SHA384_RSA_PKCS_PSS);
	const struct p11m_mech *pk1 = p11m_mech_find(CKM_SHA256_RSA_PKCS);
	CK_RSA_PKCS_PSS_PARAMS p;
	enum sg_digest_alg h;

	CHECK(raw != NULL && m384 != NULL && pk1 != NULL);
	if (raw == NULL || m384 == NULL || pk1 == NULL)
		return;
	p = pss(CKM_SHA256, CKG_MGF1_SHA256, 32);
	CHECK_EQ_INT(p11m_mech_params(raw, &p, sizeof(p), &h), CKR_OK);
	CHECK_EQ_INT(h, SG_DIGEST_SHA256);
	p = pss(CKM_SHA384, CKG_MGF1_SHA384, 48);
	CHECK_EQ_INT(p11m_mech_params(raw, &p, sizeof(p), &h), CKR_OK);
	CHECK_EQ_INT(h, SG_DIGEST_SHA384);
	CHECK_EQ_INT(p11m_mech_params(m384, &p, sizeof(p), &h), CKR_OK);
	CHECK_EQ_INT(h, SG_DIGEST_SHA384);
	p = pss(CKM_SHA512, CKG_MGF1_SHA512, 64);
	CHECK_EQ_INT(p11m_mech_params(raw, &p, sizeof(p), &h), CKR_OK);
	CHECK_EQ_INT(h, SG_DIGEST_SHA512);
	/* The mechanism's hash wins: SHA-512 parameters for SHA384_PSS. */
	CHECK_EQ_INT(p11m_mech_params(m384, &p, sizeof(p), &h),
	    CKR_MECHANISM_PARAM_INVALID);
	/* MGF of another hash, salt lengths around the right one. */
	p = pss(CKM_SHA256, CKG_MGF1_SHA1, 32);
	CHECK_EQ_INT(p11m_mech_params(raw, &p, sizeof(p), &h),
	    CKR_MECHANISM_PARAM_INVALID);
	p = pss(CKM_SHA256, CKG_MGF1_SHA384, 32);
	CHECK_EQ_INT(p11m_mech_params(raw, &p, sizeof(p), &h),
	    CKR_MECHANISM_PARAM_INVALID);
	p = pss(CKM_SHA256, CKG_MGF1_SHA256, 31);
	CHECK_EQ_INT(p11m_mech_params(raw, &p, sizeof(p), &h),
	    CKR_MECHANISM_PARAM_INVALID);
	p = pss(CKM_SHA256, CKG_MGF1_SHA256, 33);
	CHECK_EQ_INT(p11m_mech_params(raw, &p, sizeof(p), &h),
	    CKR_MECHANISM_PARAM_INVALID);
	p = pss(CKM_SHA256, CKG_MGF1_SHA256, 0);
	CHECK_EQ_INT(p11m_mech_params(raw, &p, sizeof(p), &h),
	    CKR_MECHANISM_PARAM_INVALID);
	/* Hashes the gateway does not sign with. */
	p = pss(CKM_SHA_1, CKG_MGF1_SHA1, 20);
	CHECK_EQ_INT(p11m_mech_params(raw, &p, sizeof(p), &h),
	    CKR_MECHANISM_PARAM_INVALID);
	p = pss(CKM_SHA224, CKG_MGF1_SHA224, 28);
	CHECK_EQ_INT(p11m_mech_params(raw, &p, sizeof(p), &h),
	    CKR_MECHANISM_PARAM_INVALID);
	/* No parameter, a short one, a long one. */
	p = pss(CKM_SHA256, CKG_MGF1_SHA256, 32);
	CHECK_EQ_INT(p11m_mech_params(raw, NULL, 0, &h),
	    CKR_MECHANISM_PARAM_INVALID);
	CHECK_EQ_INT(p11m_mech_params(raw, &p, sizeof(p) - 1, &h),
	    CKR_MECHANISM_PARAM_INVALID);
	CHECK_EQ_INT(p11m_mech_params(m384, NULL, 0, &h),
	    CKR_MECHANISM_PARAM_INVALID);
	/* The others take none. */
	CHECK_EQ_INT(p11m_mech_params(pk1, NULL, 0, &h), CKR_OK);
	CHECK_EQ_INT(h, SG_DIGEST_SHA256);
	CHECK_EQ_INT(p11m_mech_params(pk1, &p, sizeof(p), &h),
	    CKR_MECHANISM_PARAM_INVALID);
}

static void
test_raw_digest(void)
{
	const struct p11m_mech *ec = p11m_mech_find(CKM_ECDSA);
	const struct p11m_mech *pk = p11m_mech_find(CKM_RSA_PKCS);
	const struct p11m_mech *ps = p11m_mech_find(CKM_RSA_PKCS_PSS);
	uint8_t data[128], out[SG_MAX_DIGEST];
	enum sg_digest_alg a;
	size_t n, len;

	for (n = 0; n < sizeof(data); n++)
		data[n] = (uint8_t)n;
	for (n = 0; n <= 100; n++) {
		CK_RV want = n == 32 || n == 48 || n == 64 ? CKR_OK :
		    CKR_DATA_LEN_RANGE;
		CHECK_EQ_INT(p11m_raw_digest(ec, SG_DIGEST_NONE, data, n, &a,
		    out, &len), want);
		if (want == CKR_OK) {
			CHECK_EQ_INT(len, n);
			CHECK_EQ_INT(sg_digest_len(a), n);
			CHECK(memcmp(out, data, n) == 0);
		}
	}
	len = digestinfo(di384, 19, 48, data);
	CHECK_EQ_INT(p11m_raw_digest(pk, SG_DIGEST_NONE, data, len, &a, out,
	    &n), CKR_OK);
	CHECK_EQ_INT(a, SG_DIGEST_SHA384);
	CHECK_EQ_INT(n, 48);
	CHECK(memcmp(out, data + 19, 48) == 0);
	CHECK_EQ_INT(p11m_raw_digest(pk, SG_DIGEST_NONE, data + 19, 48, &a,
	    out, &n), CKR_DATA_INVALID);
	/* PSS: exactly the parameter's hash length. */
	CHECK_EQ_INT(p11m_raw_digest(ps, SG_DIGEST_SHA512, data, 64, &a, out,
	    &n), CKR_OK);
	CHECK_EQ_INT(a, SG_DIGEST_SHA512);
	CHECK_EQ_INT(p11m_raw_digest(ps, SG_DIGEST_SHA512, data, 32, &a, out,
	    &n), CKR_DATA_LEN_RANGE);
	CHECK_EQ_INT(p11m_raw_digest(ps, SG_DIGEST_SHA256, data, 48, &a, out,
	    &n), CKR_DATA_LEN_RANGE);
	CHECK_EQ_INT(p11m_raw_digest(ec, SG_DIGEST_NONE, NULL, 32, &a, out,
	    &n), CKR_ARGUMENTS_BAD);
}

/* DER of SEQUENCE { INTEGER r, INTEGER s } from the integers' contents. */
static size_t
der_sig(const uint8_t *r, size_t rl, const uint8_t *s, size_t sl,
    uint8_t *out)
{
	size_t n = 0;

	out[n++] = 0x30;
	out[n++] = (uint8_t)(4 + rl + sl);
	out[n++] = 0x02;
	out[n++] = (uint8_t)rl;
	memcpy(out + n, r, rl);
	n += rl;
	out[n++] = 0x02;
	out[n++] = (uint8_t)sl;
	memcpy(out + n, s, sl);
	return n + sl;
}

static void
test_ecdsa_der_raw(void)
{
	static const uint8_t one[] = { 0x01 };
	static const uint8_t high[] = { 0x00, 0x80, 0x11 };  /* needs its 0 */
	static const uint8_t pad01[] = { 0x00, 0x01 };       /* not minimal */
	static const uint8_t neg[] = { 0x80 };
	static const uint8_t zero[] = { 0x00 };
	uint8_t big[34], der[256], raw[2 * SG_EC_P521_FIELD_LEN], back[256];
	EVP_PKEY *k = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	uint8_t digest[32], sig[128];
	size_t n, rl = 0, bl = 0, sl, i;

	/* Short r and s: padded on the left to the field. */
	n = der_sig(one, 1, high, 3, der);
	CHECK_EQ_INT(p11m_ecdsa_der_to_raw(der, n, 32, raw, sizeof(raw), &rl),
	    0);
	CHECK_EQ_INT(rl, 64);
	for (i = 0; i < 31; i++)
		CHECK(raw[i] == 0);
	CHECK(raw[31] == 1);
	for (i = 32; i < 62; i++)
		CHECK(raw[i] == 0);
	CHECK(raw[62] == 0x80 && raw[63] == 0x11);
	/* And back: the DER with the leading zero OpenSSL writes. */
	CHECK_EQ_INT(sg_ecdsa_raw_to_der(raw, rl, back, sizeof(back), &bl), 0);
	CHECK(bl == n && memcmp(back, der, n) == 0);
	/* P-384's field. */
	CHECK_EQ_INT(p11m_ecdsa_der_to_raw(der, n, 48, raw, sizeof(raw), &rl),
	    0);
	CHECK_EQ_INT(rl, 96);
	CHECK(raw[47] == 1 && raw[94] == 0x80);
	/* Malformed: not minimal, negative, zero, longer than the field,
	 * truncated, trailing bytes, another tag, too small a buffer. */
	n = der_sig(pad01, 2, one, 1, der);
	CHECK(p11m_ecdsa_der_to_raw(der, n, 32, raw, sizeof(raw), &rl) != 0);
	n = der_sig(neg, 1, one, 1, der);
	CHECK(p11m_ecdsa_der_to_raw(der, n, 32, raw, sizeof(raw), &rl) != 0);
	n = der_sig(zero, 1, one, 1, der);
	CHECK(p11m_ecdsa_der_to_raw(der, n, 32, raw, sizeof(raw), &rl) != 0);
	memset(big, 0x7f, sizeof(big));
	n = der_sig(big, 33, one, 1, der);
	CHECK(p11m_ecdsa_der_to_raw(der, n, 32, raw, sizeof(raw), &rl) != 0);
	CHECK_EQ_INT(p11m_ecdsa_der_to_raw(der, n, 48, raw, sizeof(raw), &rl),
	    0);
	n = der_sig(one, 1, high, 3, der);
	for (i = 0; i < n; i++)
		CHECK(p11m_ecdsa_der_to_raw(der, i, 32, raw, sizeof(raw),
		    &rl) != 0);
	der[n] = 0;
	CHECK(p11m_ecdsa_der_to_raw(der, n + 1, 32, raw, sizeof(raw), &rl) !=
	    0);
	der[0] = 0x31;
	CHECK(p11m_ecdsa_der_to_raw(der, n, 32, raw, sizeof(raw), &rl) != 0);
	der[0] = 0x30;
	CHECK_EQ_INT(p11m_ecdsa_der_to_raw(der, n, 32, raw, 63, &rl),
	    SG_ERR_BUFFER);
	/* Long-form length where the short form fits (BER, not DER). */
	{
		uint8_t ber[16] = { 0x30, 0x81, 0x06, 0x02, 0x01, 0x01, 0x02,
		    0x01, 0x01 };
		CHECK(p11m_ecdsa_der_to_raw(ber, 9, 32, raw, sizeof(raw),
		    &rl) != 0);
	}
	/* Real signatures: r||s verifies once made DER again. */
	memset(digest, 0x5a, sizeof(digest));
	k = EVP_EC_gen("P-256");
	CHECK(k != NULL);
	for (i = 0; k != NULL && i < 32; i++) {
		digest[0] = (uint8_t)i;
		sl = sizeof(sig);
		ctx = EVP_PKEY_CTX_new(k, NULL);
		CHECK(ctx != NULL && EVP_PKEY_sign_init(ctx) == 1 &&
		    EVP_PKEY_sign(ctx, sig, &sl, digest, 32) == 1);
		EVP_PKEY_CTX_free(ctx);
		CHECK_EQ_INT(p11m_ecdsa_der_to_raw(sig, sl, 32, raw,
		    sizeof(raw), &rl), 0);
		CHECK_EQ_INT(sg_ecdsa_raw_to_der(raw, rl, back, sizeof(back),
		    &bl), 0);
		CHECK(bl == sl && memcmp(back, sig, sl) == 0);
		CHECK_EQ_INT(sg_verify(k, SG_SIG_ECDSA, SG_DIGEST_SHA256,
		    digest, 32, back, bl), 0);
	}
	EVP_PKEY_free(k);
}

/* ---- configuration ---- */

static char tmp[256];

static char *
conf_path(const char *name)
{
	static char p[512];

	snprintf(p, sizeof(p), "%s/%s", tmp, name);
	return p;
}

static void
unset_all(void)
{
	static const char *const vars[] = {
		"SIGNGATE_PKCS11_CONF", "SIGNGATE_URL", "SIGNGATE_CERT",
		"SIGNGATE_KEY", "SIGNGATE_CACERT", "SIGNGATE_PKCS11_ARTIFACT",
		"SIGNGATE_PKCS11_GRANT", "SIGNGATE_PKCS11_EVIDENCE_DIR",
		"XDG_CONFIG_HOME",
	};
	size_t i;

	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	setenv("HOME", tmp, 1);      /* no ~/.config/signgate here */
}

/* Parses text as the file tmp/NAME; the return code, err filled. */
static int
parse(const char *name, const char *text, struct p11m_conf *c, char *err,
    size_t errlen)
{
	err[0] = '\0';
	memset(c, 0, sizeof(*c));
	return p11m_conf_parse(conf_path(name), text, strlen(text), c, err,
	    errlen);
}

static void
conf_setup(void)
{
	char *f;

	if (tmp[0] != '\0')
		return;
	CHECK_EQ_INT(sg_fx_tmpdir("p11mod", tmp, sizeof(tmp)), 0);
	free(sg_fx_file(tmp, "ci.pem", "cert\n"));
	free(sg_fx_file(tmp, "ci.key", "key\n"));
	free(sg_fx_file(tmp, "ca.pem", "ca\n"));
	mkdir(conf_path("ev"), 0700);
	mkdir(conf_path("sub"), 0700);
	f = sg_fx_file(tmp, "sub/only.pem", "x\n");
	free(f);
}

static void
test_conf_good(void)
{
	struct p11m_conf c;
	char err[512], text[2048];
	int r;

	conf_setup();
	unset_all();
	snprintf(text, sizeof(text),
	    "# a comment\n"
	    "\n"
	    "   url   =   https://gate.example:8443/  \n"
	    "cert=ci.pem\r\n"
	    "key = %s/ci.key\n"
	    "cacert = ca.pem\n"
	    "\t# indented comment\n"
	    "timeout = 86400\n"
	    "connect_timeout = 3\n"
	    "token_label = build farm token #1\n"
	    "grant = 0123456789abcdef0123456789abcdef\n"
	    "artifact = release 1.2 (Zürich)\n"
	    "evidence_dir = ev\n", tmp);
	r = parse("good.conf", text, &c, err, sizeof(err));
	CHECK_EQ_INT(r, 0);
	if (r != 0) {
		fprintf(stderr, "  %s\n", err);
		return;
	}
	CHECK_STR(c.url, "https://gate.example:8443/");
	CHECK_STR(c.cert, conf_path("ci.pem"));       /* relative to the file */
	CHECK_STR(c.key, conf_path("ci.key"));        /* absolute as given */
	CHECK_STR(c.cacert, conf_path("ca.pem"));
	CHECK_EQ_INT(c.timeout, 86400);
	CHECK_EQ_INT(c.connect_timeout, 3);
	CHECK_STR(c.token_label, "build farm token #1");
	CHECK_STR(c.grant, "0123456789abcdef0123456789abcdef");
	CHECK_STR(c.artifact, "release 1.2 (Zürich)");
	CHECK_STR(c.evidence_dir, conf_path("ev"));
	CHECK_STR(c.source, conf_path("good.conf"));
	p11m_conf_clear(&c);
	/* The defaults. */
	CHECK_EQ_INT(parse("min.conf", "url = http://127.0.0.1:9\n", &c, err,
	    sizeof(err)), 0);
	CHECK_EQ_INT(c.timeout, P11M_DEFAULT_TIMEOUT);
	CHECK_EQ_INT(c.connect_timeout, P11M_DEFAULT_CONNECT_TIMEOUT);
	CHECK_STR(c.token_label, "signgate");
	CHECK(c.cert == NULL && c.grant == NULL && c.evidence_dir == NULL);
	p11m_conf_clear(&c);
}

static void
test_conf_errors(void)
{
	static const struct {
		const char *text;
		const char *want;       /* err after "<tmp>/bad.conf" */
	} cases[] = {
		{ "url = https://a\ncolour = blue\n",
		    ":2: colour: unknown setting" },
		{ "url = https://a\n\nurl = https://b\n",
		    ":3: url: set twice (first on line 1)" },
		{ "url =\n", ":1: url: empty value" },
		{ "url\n", ":1: line: expected `name = value`" },
		{ "url = ftp://a\n", ":1: url: must be https://HOST[:PORT] "
		    "(http:// only to 127.0.0.1, localhost or [::1])" },
		{ "url = http://gate.example\n", ":1: url: must be https://" },
		{ "url = http://localhost:@192.0.2.1:80\n",
		    ":1: url: must be https://" },
		{ "url = http://127.0.0.1@192.0.2.1\n",
		    ":1: url: must be https://" },
		{ "url = http://[::1]:x@192.0.2.1/\n",
		    ":1: url: must be https://" },
		{ "url = https://user:pw@gate.example\n",
		    ":1: url: must be https://" },
		{ "url = HTTP://192.0.2.1/#http://localhost\n",
		    ":1: url: must be https://" },
		{ "url = https://\n", ":1: url: must be https://" },
		{ "url = https://a b\n", ":1: url: must be https://" },
		{ "url = https://a\ntimeout = 0\n",
		    ":2: timeout: must be 1 to 86400 seconds" },
		{ "url = https://a\ntimeout = 86401\n",
		    ":2: timeout: must be 1 to 86400 seconds" },
		{ "url = https://a\ntimeout = 10s\n",
		    ":2: timeout: must be 1 to 86400 seconds" },
		{ "url = https://a\ntimeout = -1\n",
		    ":2: timeout: must be 1 to 86400 seconds" },
		{ "url = https://a\nconnect_timeout = 301\n",
		    ":2: connect_timeout: must be 1 to 300 seconds" },
		{ "url = https://a\ntoken_label = "
		    "123456789012345678901234567890123\n",
		    ":2: token_label: must be 1 to 32 printable ASCII" },
		{ "url = https://a\ngrant = 0123\n",
		    ":2: grant: must be a grant id (32 lower-case hex digits)" },
		{ "url = https://a\ngrant = 0123456789ABCDEF0123456789abcdef\n",
		    ":2: grant: must be a grant id" },
		{ "url = https://a\nartifact = a\x1b[31mred\n",
		    ":2: artifact: U+001B" },
		{ "url = https://a\nartifact = \xc3\x28\n",
		    ":2: artifact: " },
		{ "url = https://a\nevidence_dir = missing\n",
		    ":2: evidence_dir: " },
		{ "url = https://a\nevidence_dir = ci.pem\n",
		    ":2: evidence_dir: " },
		{ "url = https://a\ncert = missing.pem\n",
		    ":2: cert: " },
		{ "url = https://a\ncacert = sub\n",
		    ":2: cacert: " },
		{ "url = https://a\nkey = ci.key\n",
		    ": cert: missing: a client key needs its certificate" },
		{ "timeout = 5\n", ": url: missing: the gateway's URL is required" },
		{ "", ": url: missing" },
	};
	struct p11m_conf c;
	char err[1024], want[1024];
	size_t i;

	conf_setup();
	unset_all();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK(parse("bad.conf", cases[i].text, &c, err, sizeof(err)) <
		    0);
		snprintf(want, sizeof(want), "%s%s", conf_path("bad.conf"),
		    cases[i].want);
		if (strncmp(err, want, strlen(want)) != 0) {
			fprintf(stderr, "  case %zu: got \"%s\", want \"%s...\"\n",
			    i, err, want);
			sg_test_failed_checks++;
		}
		CHECK(c.url == NULL);     /* nothing half-filled comes back */
	}
	/* The missing file is named with its reason. */
	CHECK(parse("bad.conf", "url = https://a\ncert = nope.pem\n", &c, err,
	    sizeof(err)) < 0);
	CHECK(strstr(err, "nope.pem: No such file or directory") != NULL);
	/* A NUL byte, a line too long, a file too large. */
	{
		char nul[] = "url = https://a\nkey\0 = x\n";
		char *longline = malloc(P11M_CONF_LINE_MAX + 64);
		char *huge = malloc(P11M_CONF_FILE_MAX + 2);

		CHECK(p11m_conf_parse(conf_path("bad.conf"), nul,
		    sizeof(nul) - 1, &c, err, sizeof(err)) < 0);
		snprintf(want, sizeof(want), "%s:2: line: contains a NUL byte",
		    conf_path("bad.conf"));
		CHECK_STR(err, want);
		if (longline != NULL) {
			memset(longline, 'a', P11M_CONF_LINE_MAX + 63);
			longline[P11M_CONF_LINE_MAX + 63] = '\0';
			memcpy(longline, "url = https://", 14);
			CHECK(parse("bad.conf", longline, &c, err,
			    sizeof(err)) < 0);
			CHECK(strstr(err, ":1: line: longer than") != NULL);
		}
		if (huge != NULL) {
			memset(huge, '\n', P11M_CONF_FILE_MAX + 1);
			huge[P11M_CONF_FILE_MAX + 1] = '\0';
			CHECK_EQ_INT(parse("bad.conf", huge, &c, err,
			    sizeof(err)), SG_ERR_TOO_LARGE);
		}
		free(longline);
		free(huge);
	}
}

/* A configuration path that is a FIFO is refused, not waited on (in a
 * child, so that a hang is caught by the alarm, not by the suite). */
static void
test_conf_fifo(void)
{
	struct p11m_conf c;
	char err[1024];
	int status = 0;
	pid_t pid;

	conf_setup();
	unset_all();
	CHECK_EQ_INT(mkfifo(conf_path("fifo.conf"), 0600), 0);
	if ((pid = fork()) == 0) {
		alarm(20);
		memset(&c, 0, sizeof(c));
		setenv("SIGNGATE_PKCS11_CONF", conf_path("fifo.conf"), 1);
		if (p11m_conf_load(&c, err, sizeof(err)) >= 0)
			_exit(2);
		_exit(strstr(err, "fifo.conf: not a regular file") != NULL ?
		    0 : 3);
	}
	CHECK(pid > 0);
	if (pid > 0) {
		CHECK(waitpid(pid, &status, 0) == pid);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	unlink(conf_path("fifo.conf"));
}

static void
test_conf_sources(void)
{
	struct p11m_conf c;
	char err[1024], xdg[512], *f;
	int r;

	conf_setup();
	unset_all();
	/* Nothing at all: P11M_CONF_NONE, saying where it looked (the
	 * system file /etc/signgate/pkcs11.conf must not exist here). */
	memset(&c, 0, sizeof(c));
	if (access(P11M_SYSTEM_CONF, F_OK) == 0) {
		fprintf(stderr, "  skipping the no-configuration case: %s "
		    "exists\n", P11M_SYSTEM_CONF);
	} else {
		CHECK_EQ_INT(p11m_conf_load(&c, err, sizeof(err)),
		    P11M_CONF_NONE);
		CHECK(strstr(err, "SIGNGATE_PKCS11_CONF") != NULL);
		CHECK(strstr(err, "SIGNGATE_URL") != NULL);
	}
	/* The CLI's variables. */
	setenv("SIGNGATE_URL", "http://localhost:8443", 1);
	setenv("SIGNGATE_CERT", conf_path("ci.pem"), 1);
	setenv("SIGNGATE_KEY", conf_path("ci.key"), 1);
	CHECK_EQ_INT(p11m_conf_load(&c, err, sizeof(err)), 0);
	CHECK_STR(c.url, "http://localhost:8443");
	CHECK_STR(c.key, conf_path("ci.key"));
	CHECK_STR(c.source, "the environment");
	p11m_conf_clear(&c);
	/* A bad variable is named. */
	setenv("SIGNGATE_CACERT", conf_path("nope.pem"), 1);
	CHECK(p11m_conf_load(&c, err, sizeof(err)) < 0);
	CHECK(strncmp(err, "SIGNGATE_CACERT: ", 17) == 0);
	unsetenv("SIGNGATE_CACERT");
	setenv("SIGNGATE_URL", "http://10.0.0.1", 1);
	CHECK(p11m_conf_load(&c, err, sizeof(err)) < 0);
	CHECK(strncmp(err, "SIGNGATE_URL: must be https://", 30) == 0);
	unsetenv("SIGNGATE_CERT");
	setenv("SIGNGATE_URL", "https://a", 1);
	CHECK(p11m_conf_load(&c, err, sizeof(err)) < 0);
	CHECK(strncmp(err, "SIGNGATE_CERT: missing", 22) == 0);
	/* A user's file wins over the variables. */
	snprintf(xdg, sizeof(xdg), "%s/xdg", tmp);
	mkdir(xdg, 0700);
	mkdir(conf_path("xdg/signgate"), 0700);
	f = sg_fx_file(conf_path("xdg/signgate"), "pkcs11.conf",
	    "url = https://from-xdg\n");
	free(f);
	setenv("XDG_CONFIG_HOME", xdg, 1);
	r = p11m_conf_load(&c, err, sizeof(err));
	CHECK_EQ_INT(r, 0);
	if (r == 0)
		CHECK_STR(c.url, "https://from-xdg");
	p11m_conf_clear(&c);
	/* Without XDG_CONFIG_HOME: ~/.config/signgate/pkcs11.conf. */
	unsetenv("XDG_CONFIG_HOME");
	mkdir(conf_path(".config"), 0700);
	mkdir(conf_path(".config/signgate"), 0700);
	f = sg_fx_file(conf_path(".config/signgate"), "pkcs11.conf",
	    "url = https://from-home\n");
	free(f);
	r = p11m_conf_load(&c, err, sizeof(err));
	CHECK_EQ_INT(r, 0);
	if (r == 0)
		CHECK_STR(c.url, "https://from-home");
	p11m_conf_clear(&c);
	/* SIGNGATE_PKCS11_CONF wins over all, and must be there. */
	f = sg_fx_file(tmp, "named.conf", "url = https://named\n");
	setenv("SIGNGATE_PKCS11_CONF", f, 1);
	CHECK_EQ_INT(p11m_conf_load(&c, err, sizeof(err)), 0);
	CHECK_STR(c.url, "https://named");
	p11m_conf_clear(&c);
	free(f);
	setenv("SIGNGATE_PKCS11_CONF", conf_path("absent.conf"), 1);
	CHECK(p11m_conf_load(&c, err, sizeof(err)) < 0);
	CHECK(strstr(err, conf_path("absent.conf")) != NULL);
	CHECK(strstr(err, "SIGNGATE_PKCS11_CONF") != NULL);
	/* A directory where the file should be. */
	setenv("SIGNGATE_PKCS11_CONF", conf_path("sub"), 1);
	CHECK(p11m_conf_load(&c, err, sizeof(err)) < 0);
	CHECK(strstr(err, "not a regular file") != NULL);
	unlink(conf_path(".config/signgate/pkcs11.conf"));
	unset_all();
}

static void
test_sign_env(void)
{
	struct p11m_conf c;
	struct p11m_sign_env e;
	char err[1024];

	conf_setup();
	unset_all();
	CHECK_EQ_INT(parse("e.conf", "url = https://a\nartifact = from-file\n"
	    "grant = 0123456789abcdef0123456789abcdef\nevidence_dir = ev\n",
	    &c, err, sizeof(err)), 0);
	CHECK_EQ_INT(p11m_sign_env_load(&c, &e, err, sizeof(err)), 0);
	CHECK_STR(e.artifact, "from-file");
	CHECK_STR(e.tool, program_invocation_short_name);
	CHECK_STR(e.grant, "0123456789abcdef0123456789abcdef");
	CHECK_STR(e.evidence_dir, conf_path("ev"));
	p11m_sign_env_clear(&e);
	setenv("SIGNGATE_PKCS11_ARTIFACT", "app-1.0.tar.gz", 1);
	setenv("SIGNGATE_PKCS11_GRANT", "ffffffffffffffffffffffffffffffff", 1);
	setenv("SIGNGATE_PKCS11_EVIDENCE_DIR", tmp, 1);
	CHECK_EQ_INT(p11m_sign_env_load(&c, &e, err, sizeof(err)), 0);
	CHECK_STR(e.artifact, "app-1.0.tar.gz");
	CHECK_STR(e.grant, "ffffffffffffffffffffffffffffffff");
	CHECK_STR(e.evidence_dir, tmp);
	p11m_sign_env_clear(&e);
	setenv("SIGNGATE_PKCS11_GRANT", "nope", 1);
	CHECK(p11m_sign_env_load(&c, &e, err, sizeof(err)) < 0);
	CHECK(strncmp(err, "SIGNGATE_PKCS11_GRANT: must be a grant id", 41) ==
	    0);
	unsetenv("SIGNGATE_PKCS11_GRANT");
	setenv("SIGNGATE_PKCS11_ARTIFACT", "tab\there", 1);
	CHECK(p11m_sign_env_load(&c, &e, err, sizeof(err)) < 0);
	CHECK(strncmp(err, "SIGNGATE_PKCS11_ARTIFACT: U+0009", 32) == 0);
	unsetenv("SIGNGATE_PKCS11_ARTIFACT");
	setenv("SIGNGATE_PKCS11_EVIDENCE_DIR", conf_path("no-such-dir"), 1);
	CHECK(p11m_sign_env_load(&c, &e, err, sizeof(err)) < 0);
	CHECK(strncmp(err, "SIGNGATE_PKCS11_EVIDENCE_DIR: ", 30) == 0);
	p11m_conf_clear(&c);
	/* Without an artifact anywhere: the program's name. */
	unset_all();
	CHECK_EQ_INT(parse("e.conf", "url = https://a\n", &c, err,
	    sizeof(err)), 0);
	CHECK_EQ_INT(p11m_sign_env_load(&c, &e, err, sizeof(err)), 0);
	CHECK_STR(e.artifact, program_invocation_short_name);
	CHECK_STR(e.grant, "");
	CHECK(e.evidence_dir == NULL);
	p11m_sign_env_clear(&e);
	p11m_conf_clear(&c);
}

/* ---- the object model ---- */

static EVP_PKEY *ec_key, *rsa_key, *ed_key, *ca_key;
static X509 *ca_cert, *leaf_cert;

static void
keys_setup(void)
{
	if (ec_key != NULL)
		return;
	ec_key = EVP_EC_gen("P-256");
	rsa_key = EVP_RSA_gen(2048);
	ed_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	ca_key = EVP_EC_gen("P-384");
	CHECK(ec_key && rsa_key && ed_key && ca_key);
	ca_cert = sg_fx_cert("test code-signing CA", ca_key, NULL, ca_key,
	    SG_FX_CERT_CA, 30);
	leaf_cert = sg_fx_cert("test nightly", ec_key, ca_cert, ca_key,
	    SG_FX_CERT_CODESIGN, 30);
	CHECK(ca_cert && leaf_cert);
}

static json_t *
key_json(const char *name, const char *alg, EVP_PKEY *k, const char *state,
    const char *requester, const char *certs)
{
	char spki[65], *pem = sg_fx_pubkey_pem(k);
	json_t *o;

	sg_fx_spki_hex(k, spki);
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:[s]}}", "name", name,
	    "algorithm", alg, "public_key_pem", pem, "spki_sha256", spki,
	    "state", state, "policy", "requesters", requester);
	if (certs != NULL)
		json_object_set_new(o, "certificate_pem", json_string(certs));
	free(pem);
	return o;
}

/* The keys document of a gateway: what `ci` sees. */
static char *
keys_doc(void)
{
	char *chain = sg_fx_certs_pem(leaf_cert, ca_cert), *s;
	char *wrong = sg_fx_certs_pem(leaf_cert, NULL);
	json_t *keys = json_array(), *doc, *bad;

	json_array_append_new(keys, key_json("nightly", "ecdsa-p256", ec_key,
	    "active", "ci", chain));
	json_array_append_new(keys, key_json("build-rsa", "rsa-pkcs1",
	    rsa_key, "active", "ci", NULL));
	json_array_append_new(keys, key_json("build-pss", "rsa-pss", rsa_key,
	    "active", "ci", NULL));
	json_array_append_new(keys, key_json("log-like", "ed25519", ed_key,
	    "active", "ci", NULL));
	json_array_append_new(keys, key_json("for-bob", "ecdsa-p256", ec_key,
	    "active", "bob", NULL));
	json_array_append_new(keys, key_json("away", "ecdsa-p256", ec_key,
	    "unavailable", "ci", NULL));
	/* A certificate for another key: shown without certificates. */
	json_array_append_new(keys, key_json("ca-mismatch", "ecdsa-p384",
	    ca_key, "active", "ci", wrong));
	bad = key_json("bad-spki", "ecdsa-p256", ec_key, "active", "ci", NULL);
	json_object_set_new(bad, "spki_sha256", json_string("00"));
	json_array_append_new(keys, bad);
	json_array_append_new(keys, key_json("wrong-alg", "rsa-pkcs1", ec_key,
	    "active", "ci", NULL));
	doc = json_pack("{s:s, s:o}", "principal", "ci", "keys", keys);
	s = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	free(chain);
	free(wrong);
	return s;
}

static const struct p11m_obj *
find1(const struct p11m_token *t, CK_OBJECT_CLASS cls, const char *id)
{
	CK_ATTRIBUTE tmpl[2] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_ID, (void *)id, strlen(id) },
	};
	const struct p11m_obj *found = NULL;
	size_t i, n = 0;

	for (i = 0; i < t->nobjs; i++)
		if (p11m_obj_match(&t->objs[i], tmpl, 2)) {
			found = &t->objs[i];
			n++;
		}
	return n == 1 ? found : NULL;
}

static void
test_token_objects(void)
{
	struct p11m_token *t = NULL;
	const struct p11m_obj *pk, *pub, *cert, *o;
	char err[256], *doc;
	size_t i, nprivate = 0, ncert = 0;

	keys_setup();
	doc = keys_doc();
	CHECK_EQ_INT(p11m_token_from_keys(doc, strlen(doc), &t, err,
	    sizeof(err)), 0);
	free(doc);
	if (t == NULL)
		return;
	CHECK_STR(t->principal, "ci");
	/* nightly, build-rsa, build-pss, ca-mismatch; not the Ed25519 key,
	 * bob's, the unavailable one, a wrong SPKI or algorithm. */
	CHECK_EQ_INT(t->nkeys, 4);
	for (i = 0; i < t->nobjs; i++) {
		if (t->objs[i].cls == CKO_PRIVATE_KEY)
			nprivate++;
		if (t->objs[i].cls == CKO_CERTIFICATE)
			ncert++;
		CHECK_EQ_INT(t->objs[i].handle, P11M_HANDLE_BASE + i);
		CHECK(p11m_obj_get(t, t->objs[i].handle) == &t->objs[i]);
	}
	CHECK_EQ_INT(nprivate, 4);
	CHECK_EQ_INT(ncert, 2);               /* nightly's leaf and the CA */
	CHECK(p11m_obj_get(t, 0) == NULL);
	CHECK(p11m_obj_get(t, P11M_HANDLE_BASE + t->nobjs) == NULL);
	CHECK(find1(t, CKO_PRIVATE_KEY, "log-like") == NULL);
	CHECK(find1(t, CKO_PRIVATE_KEY, "for-bob") == NULL);
	CHECK(find1(t, CKO_PRIVATE_KEY, "away") == NULL);
	CHECK(find1(t, CKO_PRIVATE_KEY, "bad-spki") == NULL);
	CHECK(find1(t, CKO_PRIVATE_KEY, "wrong-alg") == NULL);
	CHECK(find1(t, CKO_CERTIFICATE, "ca-mismatch") == NULL);
	pk = find1(t, CKO_PRIVATE_KEY, "nightly");
	pub = find1(t, CKO_PUBLIC_KEY, "nightly");
	cert = find1(t, CKO_CERTIFICATE, "nightly");
	CHECK(pk != NULL && pub != NULL && cert != NULL);
	CHECK(find1(t, CKO_PRIVATE_KEY, "build-pss") != NULL);
	if (pk == NULL || pub == NULL || cert == NULL)
		goto out;

	/* The key's public point: a DER OCTET STRING of the encoded point. */
	{
		uint8_t pt[256], got[256], params[64];
		size_t ptlen = 0;
		CK_ATTRIBUTE a[2] = {
			{ CKA_EC_POINT, got, sizeof(got) },
			{ CKA_EC_PARAMS, params, sizeof(params) },
		};
		static const uint8_t p256_oid[] = { 0x06, 0x08, 0x2a, 0x86,
		    0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };

		CHECK(EVP_PKEY_get_octet_string_param(ec_key,
		    "encoded-pub-key", pt, sizeof(pt), &ptlen) == 1);
		CHECK_EQ_INT(p11m_obj_get_attrs(pk, a, 2), CKR_OK);
		CHECK_EQ_INT(a[0].ulValueLen, ptlen + 2);
		CHECK(got[0] == 0x04 && got[1] == ptlen &&
		    memcmp(got + 2, pt, ptlen) == 0);
		CHECK_EQ_INT(a[1].ulValueLen, sizeof(p256_oid));
		CHECK(memcmp(params, p256_oid, sizeof(p256_oid)) == 0);
	}
	/* The certificate is the leaf, category token user; the CA is an
	 * authority with an ID of its own. */
	{
		uint8_t der[4096], want[4096], *p = want;
		CK_ULONG cat = 0, ctype = 0;
		CK_ATTRIBUTE a[3] = {
			{ CKA_VALUE, der, sizeof(der) },
			{ CKA_CERTIFICATE_CATEGORY, &cat, sizeof(cat) },
			{ CKA_CERTIFICATE_TYPE, &ctype, sizeof(ctype) },
		};
		int n = i2d_X509(leaf_cert, &p);

		CHECK_EQ_INT(p11m_obj_get_attrs(cert, a, 3), CKR_OK);
		CHECK_EQ_INT(a[0].ulValueLen, n);
		CHECK(n > 0 && memcmp(der, want, (size_t)n) == 0);
		CHECK_EQ_INT(cat, 1);
		CHECK_EQ_INT(ctype, CKC_X_509);
		for (i = 0; i < t->nobjs; i++) {
			o = &t->objs[i];
			cat = 0;
			a[1].ulValueLen = sizeof(cat);
			if (o->cls != CKO_CERTIFICATE || o == cert)
				continue;
			CHECK_EQ_INT(p11m_obj_get_attrs(o, &a[1], 1), CKR_OK);
			CHECK_EQ_INT(cat, 2);
		}
	}
out:
	p11m_token_free(t);
}

/* C_GetAttributeValue's rules, each attribute of the template on its
 * own. */
static void
test_get_attribute_rules(void)
{
	struct p11m_token *t = NULL;
	const struct p11m_obj *pk, *pub;
	char err[256], *doc, label[64], small[2];
	CK_BBOOL sign = 0, never = 1, aa = 1;
	CK_ULONG kt = 0;
	CK_MECHANISM_TYPE mechs[P11M_MECH_MAX];
	CK_ATTRIBUTE a[6];

	keys_setup();
	doc = keys_doc();
	CHECK_EQ_INT(p11m_token_from_keys(doc, strlen(doc), &t, err,
	    sizeof(err)), 0);
	free(doc);
	if (t == NULL)
		return;
	pk = find1(t, CKO_PRIVATE_KEY, "build-rsa");
	pub = find1(t, CKO_PUBLIC_KEY, "build-rsa");
	CHECK(pk != NULL && pub != NULL);
	if (pk == NULL || pub == NULL)
		goto out;
	/* Length queries. */
	a[0] = (CK_ATTRIBUTE){ CKA_LABEL, NULL, 0 };
	a[1] = (CK_ATTRIBUTE){ CKA_MODULUS, NULL, 0 };
	CHECK_EQ_INT(p11m_obj_get_attrs(pk, a, 2), CKR_OK);
	CHECK_EQ_INT(a[0].ulValueLen, 9);
	CHECK_EQ_INT(a[1].ulValueLen, 256);
	/* Good, too small, unknown and sensitive together: every one is
	 * processed. */
	memset(label, 0, sizeof(label));
	a[0] = (CK_ATTRIBUTE){ CKA_LABEL, label, sizeof(label) };
	a[1] = (CK_ATTRIBUTE){ CKA_ID, small, sizeof(small) };
	a[2] = (CK_ATTRIBUTE){ CKA_VALUE_LEN, NULL, 0 };
	a[3] = (CK_ATTRIBUTE){ CKA_PRIVATE_EXPONENT, NULL, 0 };
	a[4] = (CK_ATTRIBUTE){ CKA_SIGN, &sign, sizeof(sign) };
	a[5] = (CK_ATTRIBUTE){ CKA_KEY_TYPE, &kt, sizeof(kt) };
	{
		CK_RV rv = p11m_obj_get_attrs(pk, a, 6);
		CHECK(rv == CKR_BUFFER_TOO_SMALL ||
		    rv == CKR_ATTRIBUTE_TYPE_INVALID ||
		    rv == CKR_ATTRIBUTE_SENSITIVE);
	}
	CHECK_EQ_INT(a[0].ulValueLen, 9);
	CHECK(memcmp(label, "build-rsa", 9) == 0);
	CHECK(a[1].ulValueLen == CK_UNAVAILABLE_INFORMATION);
	CHECK(a[2].ulValueLen == CK_UNAVAILABLE_INFORMATION);
	CHECK(a[3].ulValueLen == CK_UNAVAILABLE_INFORMATION);
	CHECK_EQ_INT(a[4].ulValueLen, sizeof(CK_BBOOL));
	CHECK_EQ_INT(sign, CK_TRUE);
	CHECK_EQ_INT(kt, CKK_RSA);
	/* One error alone is that error. */
	a[0] = (CK_ATTRIBUTE){ CKA_PRIME_1, NULL, 0 };
	CHECK_EQ_INT(p11m_obj_get_attrs(pk, a, 1), CKR_ATTRIBUTE_SENSITIVE);
	a[0] = (CK_ATTRIBUTE){ CKA_VALUE, label, sizeof(label) };
	CHECK_EQ_INT(p11m_obj_get_attrs(pk, a, 1), CKR_ATTRIBUTE_SENSITIVE);
	a[0] = (CK_ATTRIBUTE){ CKA_ID, small, sizeof(small) };
	CHECK_EQ_INT(p11m_obj_get_attrs(pk, a, 1), CKR_BUFFER_TOO_SMALL);
	a[0] = (CK_ATTRIBUTE){ CKA_VENDOR_DEFINED, NULL, 0 };
	CHECK_EQ_INT(p11m_obj_get_attrs(pk, a, 1), CKR_ATTRIBUTE_TYPE_INVALID);
	/* What tools look for on the private key. */
	a[0] = (CK_ATTRIBUTE){ CKA_NEVER_EXTRACTABLE, &never, sizeof(never) };
	a[1] = (CK_ATTRIBUTE){ CKA_ALWAYS_AUTHENTICATE, &aa, sizeof(aa) };
	a[2] = (CK_ATTRIBUTE){ CKA_ALLOWED_MECHANISMS, mechs, sizeof(mechs) };
	CHECK_EQ_INT(p11m_obj_get_attrs(pk, a, 3), CKR_OK);
	CHECK_EQ_INT(never, CK_TRUE);
	CHECK_EQ_INT(aa, CK_FALSE);
	CHECK_EQ_INT(a[2].ulValueLen, 4 * sizeof(CK_MECHANISM_TYPE));
	CHECK(mechs[0] == CKM_RSA_PKCS && mechs[1] == CKM_SHA256_RSA_PKCS);
	/* The public key reveals its value's parts, not CKA_SIGN. */
	a[0] = (CK_ATTRIBUTE){ CKA_VALUE, NULL, 0 };
	CHECK_EQ_INT(p11m_obj_get_attrs(pub, a, 1), CKR_ATTRIBUTE_TYPE_INVALID);
	a[0] = (CK_ATTRIBUTE){ CKA_SIGN, &sign, sizeof(sign) };
	CHECK_EQ_INT(p11m_obj_get_attrs(pub, a, 1), CKR_ATTRIBUTE_TYPE_INVALID);
	kt = 0;
	a[0] = (CK_ATTRIBUTE){ CKA_MODULUS_BITS, &kt, sizeof(kt) };
	CHECK_EQ_INT(p11m_obj_get_attrs(pub, a, 1), CKR_OK);
	CHECK_EQ_INT(kt, 2048);
	/* An empty template is fine. */
	CHECK_EQ_INT(p11m_obj_get_attrs(pub, a, 0), CKR_OK);
	/* Matching: a value of another length never matches. */
	{
		CK_OBJECT_CLASS c = CKO_PRIVATE_KEY;
		CK_BBOOL yes = CK_TRUE;
		CK_ULONG wide = CK_TRUE;
		CK_ATTRIBUTE m[2] = {
			{ CKA_CLASS, &c, sizeof(c) },
			{ CKA_SIGN, &yes, sizeof(yes) },
		};
		CHECK(p11m_obj_match(pk, m, 2));
		CHECK(!p11m_obj_match(pub, m, 2));
		m[1].pValue = &wide;
		m[1].ulValueLen = sizeof(wide);
		CHECK(!p11m_obj_match(pk, m, 2));
		CHECK(p11m_obj_match(pk, m, 0));
	}
out:
	p11m_token_free(t);
}

/* An RSA public key of `bits` bits (its modulus need not factor). */
static EVP_PKEY *
big_rsa_pub(int bits)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	EVP_PKEY *k = NULL;
	BIGNUM *n = BN_new(), *e = BN_new();

	if (bld == NULL || ctx == NULL || n == NULL || e == NULL ||
	    !BN_set_bit(n, bits - 1) || !BN_set_bit(n, 0) ||
	    !BN_set_word(e, 65537) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		k = NULL;
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	BN_free(n);
	BN_free(e);
	return k;
}

/* An RSA key whose signatures do not fit SG_MAX_SIG is left out; 8192
 * bits is kept. */
static void
test_token_rsa_too_large(void)
{
	EVP_PKEY *big = big_rsa_pub(8200), *ok = big_rsa_pub(8192);
	struct p11m_token *t = NULL;
	json_t *keys = json_array(), *doc;
	char err[256], *s;

	keys_setup();
	CHECK(big != NULL && ok != NULL);
	if (big == NULL || ok == NULL)
		goto out;
	json_array_append_new(keys, key_json("huge", "rsa-pkcs1", big,
	    "active", "ci", NULL));
	json_array_append_new(keys, key_json("large", "rsa-pkcs1", ok,
	    "active", "ci", NULL));
	json_array_append_new(keys, key_json("nightly", "ecdsa-p256", ec_key,
	    "active", "ci", NULL));
	doc = json_pack("{s:s, s:O}", "principal", "ci", "keys", keys);
	s = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	CHECK_EQ_INT(p11m_token_from_keys(s, strlen(s), &t, err,
	    sizeof(err)), 0);
	free(s);
	CHECK(t != NULL && t->nkeys == 2);
	if (t != NULL) {
		CHECK(find1(t, CKO_PRIVATE_KEY, "huge") == NULL);
		CHECK(find1(t, CKO_PUBLIC_KEY, "huge") == NULL);
		CHECK(find1(t, CKO_PRIVATE_KEY, "large") != NULL);
		CHECK(find1(t, CKO_PRIVATE_KEY, "nightly") != NULL);
		CHECK_EQ_INT(t->nobjs, 4);
	}
out:
	p11m_token_free(t);
	json_decref(keys);
	EVP_PKEY_free(big);
	EVP_PKEY_free(ok);
}

static void
test_token_refused_docs(void)
{
	static const char *const docs[] = {
		"[]", "{}", "{\"keys\": {}}", "not json",
		"{\"keys\": [], \"principal\": 7}",
		"{\"keys\": [], \"principal\": \"a b\"}",
		"{\"keys\": [], \"keys\": []}",
	};
	struct p11m_token *t = NULL;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		CHECK_EQ_INT(p11m_token_from_keys(docs[i], strlen(docs[i]), &t,
		    err, sizeof(err)), SG_ERR_INVALID);
		CHECK(t == NULL);
	}
	/* No principal (an older gateway): every active key is shown. */
	CHECK_EQ_INT(p11m_token_from_keys("{\"keys\": []}", 12, &t, err,
	    sizeof(err)), 0);
	CHECK(t != NULL && t->nkeys == 0 && t->principal[0] == '\0');
	p11m_token_free(t);
}

/* ---- mechanisms against keys ---- */

static void
test_mech_matrix(void)
{
	static const enum sg_sig_scheme schemes[] = {
		SG_SIG_ECDSA, SG_SIG_RSA_PKCS1, SG_SIG_RSA_PSS,
	};
	const struct p11m_mech *all;
	size_t n, i, j;
	CK_RV want;

	all = p11m_mech_all(&n);
	CHECK_EQ_INT(n, 12);
	for (i = 0; i < n; i++) {
		for (j = 0; j < 3; j++) {
			if (all[i].scheme == schemes[j])
				want = CKR_OK;
			else if (all[i].scheme == SG_SIG_ECDSA ||
			    schemes[j] == SG_SIG_ECDSA)
				want = CKR_KEY_TYPE_INCONSISTENT;
			else
				want = CKR_KEY_FUNCTION_NOT_PERMITTED;
			CHECK_EQ_INT(p11m_mech_key_check(&all[i], schemes[j]),
			    want);
		}
		CHECK(p11m_mech_find(all[i].type) == &all[i]);
	}
	/* A few by name, so that a table edit cannot shift them all. */
	CHECK_EQ_INT(p11m_mech_key_check(p11m_mech_find(CKM_RSA_PKCS_PSS),
	    SG_SIG_RSA_PKCS1), CKR_KEY_FUNCTION_NOT_PERMITTED);
	CHECK_EQ_INT(p11m_mech_key_check(p11m_mech_find(CKM_SHA256_RSA_PKCS),
	    SG_SIG_RSA_PSS), CKR_KEY_FUNCTION_NOT_PERMITTED);
	CHECK_EQ_INT(p11m_mech_key_check(p11m_mech_find(CKM_ECDSA_SHA384),
	    SG_SIG_RSA_PKCS1), CKR_KEY_TYPE_INCONSISTENT);
	CHECK_EQ_INT(p11m_mech_key_check(p11m_mech_find(CKM_SHA512_RSA_PKCS),
	    SG_SIG_ECDSA), CKR_KEY_TYPE_INCONSISTENT);
	CHECK_EQ_INT(p11m_mech_find(CKM_SHA256_RSA_PKCS_PSS)->hash,
	    SG_DIGEST_SHA256);
	CHECK(p11m_mech_find(CKM_EDDSA) == NULL);
	CHECK(p11m_mech_find(CKM_SHA1_RSA_PKCS) == NULL);
	CHECK(p11m_mech_find(CKM_ECDSA_SHA1) == NULL);
}

/* ---- C_Initialize, C_Finalize, fork ---- */

static CK_RV
fake_create(void **m)
{
	*m = NULL;
	return CKR_OK;
}

static CK_RV
fake_mutex(void *m)
{
	return CKR_OK;
}

static void
test_initialize_rules(void)
{
	CK_C_INITIALIZE_ARGS a;
	CK_INFO info;
	CK_ULONG n = 9;
	int dummy;

	conf_setup();
	unset_all();
	CHECK_EQ_INT(C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
	CHECK_EQ_INT(C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
	CHECK_EQ_INT(C_GetSlotList(CK_FALSE, NULL, &n),
	    CKR_CRYPTOKI_NOT_INITIALIZED);
	memset(&a, 0, sizeof(a));
	a.pReserved = &dummy;
	CHECK_EQ_INT(C_Initialize(&a), CKR_ARGUMENTS_BAD);
	/* Some mutex functions but not all. */
	memset(&a, 0, sizeof(a));
	a.CreateMutex = fake_create;
	a.LockMutex = fake_mutex;
	CHECK_EQ_INT(C_Initialize(&a), CKR_ARGUMENTS_BAD);
	a.flags = CKF_OS_LOCKING_OK;
	CHECK_EQ_INT(C_Initialize(&a), CKR_ARGUMENTS_BAD);
	/* All of them, and no permission to lock our own way. */
	a.DestroyMutex = fake_mutex;
	a.UnlockMutex = fake_mutex;
	a.flags = 0;
	CHECK_EQ_INT(C_Initialize(&a), CKR_CANT_LOCK);
	a.flags = CKF_LIBRARY_CANT_CREATE_OS_THREADS;
	CHECK_EQ_INT(C_Initialize(&a), CKR_CANT_LOCK);
	CHECK_EQ_INT(C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
	/* With OS locking allowed, the callbacks are not needed. */
	a.flags = CKF_OS_LOCKING_OK;
	CHECK_EQ_INT(C_Initialize(&a), CKR_OK);
	CHECK_EQ_INT(C_Initialize(&a), CKR_CRYPTOKI_ALREADY_INITIALIZED);
	CHECK_EQ_INT(C_GetInfo(&info), CKR_OK);
	CHECK_EQ_INT(info.cryptokiVersion.major, 2);
	CHECK_EQ_INT(info.cryptokiVersion.minor, 40);
	CHECK_EQ_INT(C_Finalize(&dummy), CKR_ARGUMENTS_BAD);
	CHECK_EQ_INT(C_Finalize(NULL), CKR_OK);
	/* No arguments; only OS locking flags. */
	CHECK_EQ_INT(C_Initialize(NULL), CKR_OK);
	CHECK_EQ_INT(C_Finalize(NULL), CKR_OK);
	memset(&a, 0, sizeof(a));
	a.flags = CKF_OS_LOCKING_OK;
	CHECK_EQ_INT(C_Initialize(&a), CKR_OK);
	CHECK_EQ_INT(C_Finalize(NULL), CKR_OK);
	memset(&a, 0, sizeof(a));
	CHECK_EQ_INT(C_Initialize(&a), CKR_OK);
	CHECK_EQ_INT(C_Finalize(NULL), CKR_OK);
	CHECK_EQ_INT(C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
}

static void
test_unconfigured(void)
{
	CK_SLOT_ID slots[2];
	CK_INFO info;
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	CK_SESSION_HANDLE h;
	CK_ULONG n;

	conf_setup();
	unset_all();
	if (access(P11M_SYSTEM_CONF, F_OK) == 0) {
		fprintf(stderr, "  skipped: %s exists\n", P11M_SYSTEM_CONF);
		return;
	}
	CHECK_EQ_INT(C_Initialize(NULL), CKR_OK);
	n = 2;
	CHECK_EQ_INT(C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	CHECK_EQ_INT(n, 0);
	n = 2;
	CHECK_EQ_INT(C_GetSlotList(CK_FALSE, slots, &n), CKR_OK);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(slots[0], 1);
	n = 0;
	CHECK_EQ_INT(C_GetSlotList(CK_FALSE, slots, &n), CKR_BUFFER_TOO_SMALL);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(C_GetSlotList(CK_FALSE, slots, NULL), CKR_ARGUMENTS_BAD);
	CHECK_EQ_INT(C_GetSlotInfo(1, &si), CKR_OK);
	CHECK_EQ_INT(si.flags & CKF_TOKEN_PRESENT, 0);
	CHECK_EQ_INT(C_GetSlotInfo(2, &si), CKR_SLOT_ID_INVALID);
	CHECK_EQ_INT(C_GetTokenInfo(1, &ti), CKR_TOKEN_NOT_PRESENT);
	CHECK_EQ_INT(C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &h),
	    CKR_TOKEN_NOT_PRESENT);
	CHECK_EQ_INT(C_GetInfo(NULL), CKR_ARGUMENTS_BAD);
	CHECK_EQ_INT(C_Finalize(NULL), CKR_OK);
	/* A file that is there but wrong: C_Initialize fails. */
	setenv("SIGNGATE_PKCS11_CONF", conf_path("bad-init.conf"), 1);
	free(sg_fx_file(tmp, "bad-init.conf", "url = https://a\nbogus = 1\n"));
	CHECK_EQ_INT(C_Initialize(NULL), CKR_GENERAL_ERROR);
	CHECK_EQ_INT(C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
	unset_all();
}

static void
test_fork(void)
{
	CK_INFO info;
	pid_t pid;
	int status = -1;

	conf_setup();
	unset_all();
	CHECK_EQ_INT(C_Initialize(NULL), CKR_OK);
	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		/* The child: not initialized until it says so. */
		int bad = 0;
		bad |= C_GetInfo(&info) != CKR_CRYPTOKI_NOT_INITIALIZED;
		bad |= C_Finalize(NULL) != CKR_CRYPTOKI_NOT_INITIALIZED;
		bad |= (C_Initialize(NULL) != CKR_OK) << 1;
		bad |= (C_GetInfo(&info) != CKR_OK) << 2;
		bad |= (C_Finalize(NULL) != CKR_OK) << 3;
		_exit(bad);
	}
	if (pid > 0) {
		CHECK(waitpid(pid, &status, 0) == pid);
		CHECK(WIFEXITED(status));
		CHECK_EQ_INT(WEXITSTATUS(status), 0);
	}
	/* The parent is still initialized. */
	CHECK_EQ_INT(C_GetInfo(&info), CKR_OK);
	CHECK_EQ_INT(C_Finalize(NULL), CKR_OK);
}

static void
test_cleanup(void)
{
	EVP_PKEY_free(ec_key);
	EVP_PKEY_free(rsa_key);
	EVP_PKEY_free(ed_key);
	EVP_PKEY_free(ca_key);
	X509_free(ca_cert);
	X509_free(leaf_cert);
	CHECK_EQ_INT(sg_fx_rm_tree(tmp), 0);
}

SG_TEST_MAIN("p11mod",
    T(test_digestinfo_accepted),
    T(test_digestinfo_refused),
    T(test_pss_params),
    T(test_raw_digest),
    T(test_ecdsa_der_raw),
    T(test_conf_good),
    T(test_conf_errors),
    T(test_conf_sources),
    T(test_conf_fifo),
    T(test_sign_env),
    T(test_token_objects),
    T(test_get_attribute_rules),
    T(test_token_rsa_too_large),
    T(test_token_refused_docs),
    T(test_mech_matrix),
    T(test_initialize_rules),
    T(test_unconfigured),
    T(test_fork),
    T(test_cleanup))
