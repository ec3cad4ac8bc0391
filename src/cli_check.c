/*
 * The CLI's local checks of what the server returns.  The CLI never takes
 * the server's word for anything it writes to disk or signs:
 *
 *  - a key's public key must hash to the spki_sha256 the server claims;
 *  - a returned signature must name the key, format and digest algorithm
 *    that were asked for, carry that key's SPKI digest, and verify over the
 *    digest computed HERE from the local file; a CMS must additionally have
 *    exactly one signer whose certificate carries the same key, whose
 *    messageDigest attribute is that local digest, and whose signature over
 *    the signed attributes verifies;
 *  - a request's statement (what an officer signs) must parse strictly and
 *    agree, field by field, with the request object that is shown to the
 *    officer, so that what is displayed is what is signed.
 *
 * Every failure is SG_ERR_VERIFY with a reason for the user.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "sg_cli.h"
#include "sg_cms.h"
#include "sg_crypto.h"
#include "sg_dsse.h"
#include "sg_err.h"
#include "sg_text.h"
#include "sg_util.h"


/* Appends one line to err (for lists of disagreements). */
static void
add_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
add_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	size_t o;

	if (err == NULL || errlen == 0)
		return;
	o = strnlen(err, errlen);
	if (o + 1 >= errlen)
		return;
	if (o > 0) {
		err[o++] = '\n';
		err[o] = '\0';
	}
	va_start(ap, fmt);
	vsnprintf(err + o, errlen - o, fmt, ap);
	va_end(ap);
}

static int
streq(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

json_t *
sg_cli_find_key(const json_t *keys_doc, const char *name)
{
	const json_t *arr;
	json_t *k;
	size_t i;

	if (!json_is_object(keys_doc) || name == NULL)
		return NULL;
	arr = json_object_get(keys_doc, "keys");
	if (!json_is_array(arr))
		return NULL;
	json_array_foreach(arr, i, k)
		if (streq(sg_cli_jstr(k, "name"), name))
			return k;
	return NULL;
}

int
sg_cli_key_public(const json_t *key, EVP_PKEY **ret_pub,
    char ret_spki[SG_SHA256_HEX_SIZE],
    char *err, size_t errlen)
{
	const char *pem = sg_cli_jstr(key, "public_key_pem");
	const char *claimed = sg_cli_jstr(key, "spki_sha256");
	EVP_PKEY *pub = NULL;
	uint8_t spki[32];
	char hex[SG_SHA256_HEX_SIZE];
	int r = SG_ERR_VERIFY;

	if (pem == NULL || claimed == NULL) {
		return sg_err_set(err, errlen, SG_ERR_VERIFY, "key %s: "
		    "public_key_pem or spki_sha256 missing",
		    sg_cli_esc(sg_cli_jstr(key, "name")));
	}
	if (sg_pubkey_from_pem(pem, strlen(pem), &pub) != 0) {
		r = sg_err_set(err, errlen, SG_ERR_VERIFY, "key %s: "
		    "public_key_pem does not parse",
		    sg_cli_esc(sg_cli_jstr(key, "name")));
		goto out;
	}
	if (sg_pubkey_spki_sha256(pub, spki) != 0) {
		r = sg_err_set(err, errlen, SG_ERR_CRYPTO, "cannot hash the "
		    "public key");
		goto out;
	}
	sg_hex_encode(spki, sizeof(spki), hex);
	if (strcmp(hex, claimed) != 0) {
		r = sg_err_set(err, errlen, SG_ERR_VERIFY, "key %s: public key "
		    "hashes to sha256:%s, but spki_sha256 says %s",
		    sg_cli_esc(sg_cli_jstr(key, "name")), hex,
		    sg_cli_esc(claimed));
		goto out;
	}
	*ret_pub = pub;
	pub = NULL;
	memcpy(ret_spki, hex, sizeof(hex));
	r = 0;
out:
	EVP_PKEY_free(pub);
	return r;
}

int
sg_cli_check_cms(const uint8_t *der, size_t len, EVP_PKEY *pub,
    enum sg_digest_alg dalg, const uint8_t *digest, size_t dlen,
    char *err, size_t errlen)
{
	CMS_ContentInfo *cms = NULL;
	STACK_OF(CMS_SignerInfo) *sis;
	CMS_SignerInfo *si;
	X509 *signer = NULL;
	X509_ALGOR *pdig = NULL;
	const ASN1_OBJECT *dobj = NULL;
	const EVP_MD *md = sg_digest_md(dalg);
	ASN1_OCTET_STRING *mdattr;
	const unsigned char *p = der;
	int r = SG_ERR_VERIFY;

	if (der == NULL || len == 0 || len > SG_CLI_RESPONSE_MAX ||
	    md == NULL || dlen != sg_digest_len(dalg)) {
		return sg_err_set(err, errlen, SG_ERR_VERIFY, "cms: nothing to "
		    "check");
	}
	cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
	if (cms == NULL || p != der + len) {
		r = sg_err_set(err, errlen, SG_ERR_VERIFY, "cms: not one DER "
		    "ContentInfo");
		goto out;
	}
	if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed ||
	    CMS_is_detached(cms) != 1 ||
	    OBJ_obj2nid(CMS_get0_eContentType(cms)) != NID_pkcs7_data) {
		r = sg_err_set(err, errlen, SG_ERR_VERIFY, "cms: not a "
		    "detached SignedData of data");
		goto out;
	}
	sis = CMS_get0_SignerInfos(cms);
	if (sis == NULL || sk_CMS_SignerInfo_num(sis) != 1) {
		r = sg_err_set(err, errlen, SG_ERR_VERIFY, "cms: must have "
		    "exactly one signer");
		goto out;
	}
	si = sk_CMS_SignerInfo_value(sis, 0);
	/* Attaches the embedded certificate that matches the signer id. */
	if (CMS_set1_signers_certs(cms, NULL, 0) != 1) {
		r = sg_err_set(err, errlen, SG_ERR_VERIFY, "cms: the signer's "
		    "certificate is missing");
		goto out;
	}
	CMS_SignerInfo_get0_algs(si, NULL, &signer, &pdig, NULL);
	if (signer == NULL || X509_get0_pubkey(signer) == NULL ||
	    EVP_PKEY_eq(X509_get0_pubkey(signer), pub) != 1) {
		r = sg_err_set(err, errlen, SG_ERR_VERIFY, "cms: the signer's "
		    "certificate is not for the signing key");
		goto out;
	}
	if (pdig == NULL)
		goto out;
	X509_ALGOR_get0(&dobj, NULL, NULL, pdig);
	if (OBJ_obj2nid(dobj) != EVP_MD_get_type(md)) {
		r = sg_err_set(err, errlen, SG_ERR_VERIFY, "cms: signer digest "
		    "algorithm is not %s", sg_digest_name(dalg));
		goto out;
	}
	mdattr = CMS_signed_get0_data_by_OBJ(si,
	    OBJ_nid2obj(NID_pkcs9_messageDigest), -3, V_ASN1_OCTET_STRING);
	if (mdattr == NULL || (size_t)ASN1_STRING_length(mdattr) != dlen ||
	    memcmp(ASN1_STRING_get0_data(mdattr), digest, dlen) != 0) {
		r = sg_err_set(err, errlen, SG_ERR_VERIFY, "cms: messageDigest "
		    "is not the digest of the local file");
		goto out;
	}
	if (CMS_SignerInfo_verify(si) != 1) {
		r = sg_err_set(err, errlen, SG_ERR_VERIFY, "cms: the signature "
		    "over the signed attributes does not verify");
		goto out;
	}
	r = 0;
out:
	CMS_ContentInfo_free(cms);
	return r;
}

static int
b64_member(const json_t *obj, const char *name, uint8_t **ret,
    size_t *ret_len)
{
	const char *s = sg_cli_jstr(obj, name);

	if (s == NULL)
		return SG_ERR_INVALID;
	return sg_b64_decode(s, strlen(s), ret, ret_len);
}

/* The signature object is for what was asked: the key, the format, the
 * digest algorithm, and a signature algorithm that is the key's. */
static int
sig_claims(const json_t *sigobj, const json_t *key, const char *key_name,
    enum sg_format format, enum sg_digest_alg dalg, enum sg_key_alg *alg,
    enum sg_sig_scheme *scheme, char *err, size_t errlen)
{
	const char *alg_name = sg_cli_jstr(sigobj, "algorithm");
	enum sg_format got;

	if (!streq(sg_cli_jstr(sigobj, "key"), key_name) ||
	    !streq(sg_cli_jstr(key, "name"), key_name))
		return sg_err_set(err, errlen, SG_ERR_VERIFY, "the signature "
		    "is by key %s, not %s",
		    sg_cli_esc(sg_cli_jstr(sigobj, "key")),
		    sg_cli_esc(key_name));
	if (sg_format_parse(sg_cli_jstr(sigobj, "format"), &got) != 0 ||
	    got != format)
		return sg_err_set(err, errlen, SG_ERR_VERIFY, "the signature's "
		    "format is %s, not %s",
		    sg_cli_esc(sg_cli_jstr(sigobj, "format")),
		    sg_format_str(format));
	if (!streq(sg_cli_jstr(sigobj, "digest_algorithm"),
	    sg_digest_name(dalg)))
		return sg_err_set(err, errlen, SG_ERR_VERIFY, "the signature "
		    "is over %s, not %s",
		    sg_cli_esc(sg_cli_jstr(sigobj, "digest_algorithm")),
		    sg_digest_name(dalg));
	if (!streq(alg_name, sg_cli_jstr(key, "algorithm")) ||
	    sg_scheme_from_name(alg_name, alg, scheme) != 0)
		return sg_err_set(err, errlen, SG_ERR_VERIFY, "signature "
		    "algorithm %s does not match key %s (%s)",
		    sg_cli_esc(alg_name), sg_cli_esc(key_name),
		    sg_cli_esc(sg_cli_jstr(key, "algorithm")));
	return 0;
}

/* The key's public key: it hashes to the key's and the signature's SPKI
 * digest and is of the signature's algorithm. */
static int
sig_key(const json_t *sigobj, const json_t *key, const char *key_name,
    enum sg_key_alg alg, EVP_PKEY **ret, char *err, size_t errlen)
{
	char spki[SG_SHA256_HEX_SIZE];
	EVP_PKEY *pub = NULL;
	int r;

	if (sg_cli_key_public(key, &pub, spki, err, errlen) != 0)
		return SG_ERR_VERIFY;
	if (sg_pubkey_alg(pub) != alg)
		r = sg_err_set(err, errlen, SG_ERR_VERIFY, "key %s is not an "
		    "%s key", sg_cli_esc(key_name),
		    sg_cli_esc(sg_cli_jstr(sigobj, "algorithm")));
	else if (!streq(sg_cli_jstr(sigobj, "spki_sha256"), spki))
		r = sg_err_set(err, errlen, SG_ERR_VERIFY, "the signature "
		    "names spki sha256:%s, the key is sha256:%s",
		    sg_cli_esc(sg_cli_jstr(sigobj, "spki_sha256")), spki);
	else {
		*ret = pub;
		return 0;
	}
	EVP_PKEY_free(pub);
	return r;
}

/* A raw signature verifies over the local digest and comes alone. */
static int
sig_raw(const json_t *sigobj, EVP_PKEY *pub, enum sg_sig_scheme scheme,
    enum sg_digest_alg dalg, const uint8_t *digest, size_t dlen,
    const uint8_t *sig, size_t sig_len, const char *key_name, char *err,
    size_t errlen)
{
	if (sg_verify(pub, scheme, dalg, digest, dlen, sig, sig_len) != 0)
		return sg_err_set(err, errlen, SG_ERR_VERIFY, "the signature "
		    "does not verify over the local %s digest with key %s",
		    sg_digest_name(dalg), sg_cli_esc(key_name));
	if (json_object_get(sigobj, "cms") != NULL)
		return sg_err_set(err, errlen, SG_ERR_VERIFY, "a raw signature "
		    "must not carry cms");
	return 0;
}

/*
 * The CMS signs its signed attributes, which must hold the local digest;
 * "signature" is the CMS's signature value.  The DER CMS goes to *ret.
 */
static int
sig_cms(const json_t *sigobj, EVP_PKEY *pub, enum sg_digest_alg dalg,
    const uint8_t *digest, size_t dlen, const uint8_t *sig, size_t sig_len,
    uint8_t **ret, size_t *ret_len, char *err, size_t errlen)
{
	uint8_t *cms = NULL, *sv = NULL;
	size_t cms_len = 0, svlen = 0;
	int r = SG_ERR_VERIFY;

	if (b64_member(sigobj, "cms", &cms, &cms_len) != 0 || cms_len == 0) {
		r = sg_err_set(err, errlen, SG_ERR_VERIFY, "cms: missing or "
		    "not base64");
		goto out;
	}
	if (sg_cli_check_cms(cms, cms_len, pub, dalg, digest, dlen, err,
	    errlen) != 0)
		goto out;
	if (sg_cms_signature_value(cms, cms_len, &sv, &svlen) != 0 ||
	    svlen != sig_len || memcmp(sv, sig, sig_len) != 0) {
		r = sg_err_set(err, errlen, SG_ERR_VERIFY, "cms: its signature "
		    "value is not the signature reported");
		goto out;
	}
	*ret = cms;
	*ret_len = cms_len;
	cms = NULL;
	r = 0;
out:
	free(sv);
	free(cms);
	return r;
}

int
sg_cli_check_signature(const json_t *sigobj, const json_t *key,
    const char *key_name, enum sg_format format, enum sg_digest_alg dalg,
    const uint8_t *digest, size_t dlen, uint8_t **ret_sig,
    size_t *ret_sig_len, uint8_t **ret_cms, size_t *ret_cms_len,
    char *err, size_t errlen)
{
	EVP_PKEY *pub = NULL;
	enum sg_key_alg alg;
	enum sg_sig_scheme scheme;
	uint8_t *sig = NULL, *cms = NULL;
	size_t sig_len = 0, cms_len = 0;
	int r;

	if ((format != SG_FORMAT_RAW && format != SG_FORMAT_CMS) ||
	    dlen != sg_digest_len(dalg) || dlen == 0) {
		return sg_err_set(err, errlen, SG_ERR_INVALID, "nothing to "
		    "check");
	}
	if ((r = sig_claims(sigobj, key, key_name, format, dalg, &alg,
	    &scheme, err, errlen)) != 0 ||
	    (r = sig_key(sigobj, key, key_name, alg, &pub, err, errlen)) != 0)
		goto out;
	if (b64_member(sigobj, "signature", &sig, &sig_len) != 0 ||
	    sig_len == 0 || sig_len > SG_MAX_SIG) {
		r = sg_err_set(err, errlen, SG_ERR_VERIFY, "signature: missing "
		    "or not base64");
		goto out;
	}
	if (format == SG_FORMAT_CMS)
		r = sig_cms(sigobj, pub, dalg, digest, dlen, sig, sig_len, &cms,
		    &cms_len, err, errlen);
	else
		r = sig_raw(sigobj, pub, scheme, dalg, digest, dlen, sig,
		    sig_len, key_name, err, errlen);
	if (r != 0)
		goto out;
	*ret_sig = sig;
	*ret_sig_len = sig_len;
	sig = NULL;
	if (ret_cms != NULL && ret_cms_len != NULL) {
		*ret_cms = cms;
		*ret_cms_len = cms_len;
		cms = NULL;
	}
out:
	EVP_PKEY_free(pub);
	free(sig);
	free(cms);
	return r;
}

/* Adds "statement says WHAT SV, request says RV" to err unless obj's
 * member is sv; 1 when it is not. */
static int
disagree(const json_t *obj, const char *member, const char *what,
    const char *sv, char *err, size_t errlen)
{
	const char *rv = sg_cli_jstr(obj, member);

	if (streq(rv, sv))
		return 0;
	add_err(err, errlen, "statement says %s %s, request says %s", what,
	    sg_cli_esc(sv), sg_cli_esc(rv));
	return 1;
}

/* The statement's strings and where the request holds each, in the order
 * disagreements are listed. */
static const struct {
	const char *what;
	const char *obj;             /* a member object, NULL: the request */
	const char *member;
	size_t off;                  /* in struct sg_statement */
} agree_fields[] = {
	{ "request", NULL, "id", offsetof(struct sg_statement, request) },
	{ "key", NULL, "key", offsetof(struct sg_statement, key) },
	{ "digest algorithm", "digest", "algorithm",
	    offsetof(struct sg_statement, digest_alg) },
	{ "digest", "digest", "value",
	    offsetof(struct sg_statement, digest_hex) },
	{ "format", NULL, "format", offsetof(struct sg_statement, format) },
	{ "requester", NULL, "requester",
	    offsetof(struct sg_statement, requester) },
	{ "policy", "policy", "name",
	    offsetof(struct sg_statement, policy_name) },
};

/* Fields every kind shares: id, key, format, requester, policy; and the
 * digest when with_digest (a single request). */
static int
common_disagrees(const json_t *req, const struct sg_statement *st,
    int with_digest, char *err, size_t errlen)
{
	const json_t *pol = json_object_get(req, "policy"), *ver;
	size_t i;
	int bad = 0;

	for (i = 0; i < sizeof(agree_fields) / sizeof(agree_fields[0]); i++) {
		if (!with_digest && agree_fields[i].obj != NULL &&
		    strcmp(agree_fields[i].obj, "digest") == 0)
			continue;
		bad |= disagree(agree_fields[i].obj == NULL ? req :
		    json_object_get(req, agree_fields[i].obj),
		    agree_fields[i].member, agree_fields[i].what,
		    (const char *)st + agree_fields[i].off, err, errlen);
	}
	ver = json_is_object(pol) ? json_object_get(pol, "version") : NULL;
	if (!json_is_integer(ver) || json_integer_value(ver) < 0 ||
	    (unsigned long long)json_integer_value(ver) != st->policy_version) {
		add_err(err, errlen, "statement says policy version %llu, "
		    "request says %s", st->policy_version,
		    json_is_integer(ver) ? "another" : "none");
		bad = 1;
	}
	bad |= disagree(pol, "sha256", "policy sha256", st->policy_sha256,
	    err, errlen);
	return bad;
}

/* Every field of a request's statement against the request; 1 if any
 * differs. */
static int
statement_disagrees(const json_t *req, const struct sg_statement *st,
    char *err, size_t errlen)
{
	char when[32];
	int bad;

	bad = common_disagrees(req, st, 1, err, errlen);
	sg_time_rfc3339((time_t)st->expires, when, sizeof(when));
	bad |= disagree(req, "expires_at", "expiry", when, err, errlen);
	return bad;
}

/* An integer member against the statement's count. */
static int
count_disagrees(const json_t *obj, const char *what, uint64_t count,
    char *err, size_t errlen)
{
	const json_t *v = json_object_get(obj, "count");

	if (json_is_integer(v) && json_integer_value(v) >= 0 &&
	    (uint64_t)json_integer_value(v) == count)
		return 0;
	add_err(err, errlen, "statement says %s count %llu, request says %s",
	    what, (unsigned long long)count, json_is_integer(v) ? "another" :
	    "none");
	return 1;
}

/* A release's or grant's own fields against its "release" / "grant"
 * member. */
static int
kind_disagrees(const json_t *req, const struct sg_statement *st,
    char *err, size_t errlen)
{
	const json_t *obj;
	char when[32];
	int bad = 0;

	sg_time_rfc3339((time_t)st->expires, when, sizeof(when));
	if (st->kind == SG_KIND_RELEASE) {
		obj = json_object_get(req, "release");
		bad |= count_disagrees(obj, "release", st->count, err, errlen);
		bad |= disagree(obj, "manifest_sha256", "manifest",
		    st->manifest_root, err, errlen);
		bad |= disagree(req, "expires_at", "expiry", when, err,
		    errlen);
	} else {
		obj = json_object_get(req, "grant");
		bad |= count_disagrees(obj, "grant", st->count, err, errlen);
		bad |= disagree(obj, "artifact", "artifact pattern",
		    st->pattern, err, errlen);
		/* A grant's expiry is its end. */
		bad |= disagree(obj, "until", "grant end", when, err, errlen);
	}
	return bad;
}

int
sg_cli_kind_statement(const json_t *req, struct sg_statement *ret,
    char *err, size_t errlen)
{
	struct sg_statement st;
	const char *text = sg_cli_jstr(req, "statement");
	enum sg_kind kind;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (sg_cli_req_kind(req, &kind) != 0) {
		add_err(err, errlen, "the request's kind is not one of "
		    "request, release, grant");
		return SG_ERR_VERIFY;
	}
	if (text == NULL || sg_statement_parse(text, strlen(text),
	    &st) != 0) {
		add_err(err, errlen, "the statement is missing or does not "
		    "parse");
		return SG_ERR_VERIFY;
	}
	if (st.kind != kind) {
		add_err(err, errlen, "statement is for a %s, the request is a "
		    "%s", sg_kind_str(st.kind), sg_kind_str(kind));
		return SG_ERR_VERIFY;
	}
	if (kind == SG_KIND_REQUEST)
		return sg_cli_request_statement(req, ret, err, errlen);
	if (common_disagrees(req, &st, 0, err, errlen) |
	    kind_disagrees(req, &st, err, errlen))
		return SG_ERR_VERIFY;
	*ret = st;
	return 0;
}

int
sg_cli_request_statement(const json_t *req, struct sg_statement *ret,
    char *err, size_t errlen)
{
	struct sg_statement st;
	const char *text = sg_cli_jstr(req, "statement");
	enum sg_kind kind;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	/* Releases and grants have their own fields. */
	if (sg_cli_req_kind(req, &kind) == 0 && kind != SG_KIND_REQUEST)
		return sg_cli_kind_statement(req, ret, err, errlen);
	if (text == NULL) {
		add_err(err, errlen, "the request has no statement");
		return SG_ERR_VERIFY;
	}
	if (sg_statement_parse(text, strlen(text), &st) != 0) {
		add_err(err, errlen, "the statement does not parse");
		return SG_ERR_VERIFY;
	}
	if (st.kind != SG_KIND_REQUEST) {
		add_err(err, errlen, "statement is for a %s, the request is a "
		    "request", sg_kind_str(st.kind));
		return SG_ERR_VERIFY;
	}
	if (statement_disagrees(req, &st, err, errlen))
		return SG_ERR_VERIFY;
	*ret = st;
	return 0;
}

static void
asn1_time_str(const ASN1_TIME *t, char out[32])
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1 ||
	    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, 32, "?");
}

static int
load_cert(const char *pem, size_t len, X509 **ret)
{
	BIO *bio;
	X509 *x;

	if (len > SG_PEM_FILE_MAX || len > INT32_MAX)
		return SG_ERR_TOO_LARGE;
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL)
		return SG_ERR_NOMEM;
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (x == NULL)
		return SG_ERR_INVALID;
	*ret = x;
	return 0;
}

int
sg_cli_cert_summary(const char *pem, size_t len, char *subject,
    size_t subject_cap, char not_before[32], char not_after[32])
{
	X509 *x = NULL;
	BIO *mem = NULL;
	char *data;
	long n;
	int r;

	if ((r = load_cert(pem, len, &x)) != 0)
		return r;
	r = SG_ERR_CRYPTO;
	if ((mem = BIO_new(BIO_s_mem())) == NULL ||
	    X509_NAME_print_ex(mem, X509_get_subject_name(x), 0,
	    XN_FLAG_RFC2253) < 0)
		goto out;
	n = BIO_get_mem_data(mem, &data);
	if (n < 0)
		goto out;
	snprintf(subject, subject_cap, "%.*s", (int)n, data);
	asn1_time_str(X509_get0_notBefore(x), not_before);
	asn1_time_str(X509_get0_notAfter(x), not_after);
	r = 0;
out:
	BIO_free(mem);
	X509_free(x);
	return r;
}

int
sg_cli_cert_cn(const char *path, char *out, size_t cap)
{
	X509 *x = NULL;
	X509_NAME_ENTRY *e;
	unsigned char *utf8 = NULL;
	char *pem = NULL;
	size_t len = 0;
	int idx, n, r;

	if ((r = sg_read_file(path, SG_PEM_FILE_MAX, &pem, &len)) != 0)
		return r;
	if ((r = load_cert(pem, len, &x)) != 0)
		goto out;
	r = SG_ERR_INVALID;
	idx = X509_NAME_get_index_by_NID(X509_get_subject_name(x),
	    NID_commonName, -1);
	if (idx < 0 || (e = X509_NAME_get_entry(X509_get_subject_name(x),
	    idx)) == NULL)
		goto out;
	n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
	if (n <= 0 || (size_t)n >= cap || memchr(utf8, '\0', (size_t)n) ||
	    !sg_name_ok((const char *)utf8, cap - 1))
		goto out;
	memcpy(out, utf8, (size_t)n + 1);
	r = 0;
out:
	OPENSSL_free(utf8);
	X509_free(x);
	free(pem);
	return r;
}
