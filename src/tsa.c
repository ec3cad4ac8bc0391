/*
 * RFC 3161 time-stamping client.
 *
 * The request asks for a token over SHA-256 of the data (for CMS, the
 * signature value), with a fresh random 64-bit nonce and certReq set, so
 * that the token carries the TSA's certificate and a relying party needs
 * only the TSA's CA.  Nothing here trusts the TSA: which authorities count
 * is the relying party's decision.  What is checked is that the answer is
 * the answer to *this* request and is intact:
 *
 *   - HTTP 200 with a time-stamp reply content type, at most
 *     TSA_RESPONSE_MAX bytes, within timeout_ms for the whole exchange;
 *   - one DER TimeStampResp, status granted or grantedWithMods;
 *   - version 1, our message imprint and our nonce (OpenSSL's
 *     TS_RESP_verify_response, without TS_VFY_SIGNATURE, which needs a
 *     trust store);
 *   - the token's signature verifies with the certificate it carries (no
 *     chain check), so a corrupted token is refused now, not by a relying
 *     party months later.
 *
 * Errors: SG_ERR_INVALID for bad arguments; SG_ERR_UNAVAILABLE for
 * anything the authority (or the network to it) did wrong, timeouts
 * included; SG_ERR_NOMEM or SG_ERR_CRYPTO for local failures.  errbuf
 * names the cause as "TSA <url>: <cause>".  The URL in messages has any
 * user:password@ part cut out.  One libcurl easy handle per call: tokens
 * are requested once per signature, rarely enough that connection reuse is
 * not worth shared state between threads.  Programs should call
 * curl_global_init() before starting threads.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/ts.h>
#include <openssl/x509.h>

#include "sg_cms.h"
#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_tsa.h"
#include "sg_util.h"

#define TSA_RESPONSE_MAX (64 * 1024)
#define TSA_URL_MAX 2048
#define TSA_TIMEOUT_MAX_MS (10u * 60 * 1000)
#define TSA_NONCE_BYTES 8

struct response {
	uint8_t *buf;
	size_t len;
	size_t cap;
	int too_large;
};

static void
tsa_err(char *errbuf, size_t errlen, const char *url, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* sg_err_set() with the authority named first: "TSA <url>: <cause>". */
static void
tsa_err(char *errbuf, size_t errlen, const char *url, const char *fmt, ...)
{
	char cause[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cause, sizeof(cause), fmt, ap);
	va_end(ap);
	sg_err_set(errbuf, errlen, 0, "TSA %s: %s", url, cause);
}

/*
 * The URL as it may appear in messages and logs: escaped, and without
 * credentials in the authority part.
 */
static void
url_for_messages(const char *url, char *out, size_t cap)
{
	const char *scheme_end, *auth, *auth_end, *at;
	char tmp[TSA_URL_MAX + 8];

	scheme_end = strstr(url, "://");
	if (scheme_end == NULL) {
		sg_escape(url, strlen(url), out, cap);
		return;
	}
	auth = scheme_end + 3;
	auth_end = auth + strcspn(auth, "/?#");
	at = memchr(auth, '@', (size_t)(auth_end - auth));
	if (at == NULL) {
		sg_escape(url, strlen(url), out, cap);
		return;
	}
	snprintf(tmp, sizeof(tmp), "%.*s%s", (int)(auth - url), url, at + 1);
	sg_escape(tmp, strlen(tmp), out, cap);
}

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct response *resp = arg;
	size_t n = size * nmemb, ncap;
	uint8_t *nb;

	if (size != 0 && n / size != nmemb)
		return 0;
	if (n > TSA_RESPONSE_MAX - resp->len) {
		resp->too_large = 1;
		return 0;                /* aborts the transfer */
	}
	if (resp->len + n > resp->cap) {
		ncap = resp->cap == 0 ? 4096 : resp->cap;
		while (ncap < resp->len + n)
			ncap *= 2;
		if (ncap > TSA_RESPONSE_MAX)
			ncap = TSA_RESPONSE_MAX;
		if ((nb = realloc(resp->buf, ncap)) == NULL)
			return 0;
		resp->buf = nb;
		resp->cap = ncap;
	}
	memcpy(resp->buf + resp->len, data, n);
	resp->len += n;
	return n;
}

/* TimeStampReq: SHA-256 imprint, random nonce, certReq. */
static int
make_request(const uint8_t *data, size_t len, TS_REQ **ret_req,
    unsigned char **ret_der, size_t *ret_der_len)
{
	TS_REQ *req = NULL;
	TS_MSG_IMPRINT *imp = NULL;
	X509_ALGOR *alg = NULL;
	ASN1_INTEGER *nonce = NULL;
	BIGNUM *bn = NULL;
	uint8_t h[32], rnd[TSA_NONCE_BYTES];
	unsigned char *der = NULL;
	int n, r = SG_ERR_CRYPTO;

	sg_sha256(data, len, h);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		goto out;
	if ((req = TS_REQ_new()) == NULL ||
	    (imp = TS_MSG_IMPRINT_new()) == NULL ||
	    (alg = X509_ALGOR_new()) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	X509_ALGOR_set_md(alg, EVP_sha256());
	/* The bytes are unsigned, so the nonce is a non-negative INTEGER. */
	if ((bn = BN_bin2bn(rnd, sizeof(rnd), NULL)) == NULL ||
	    (nonce = BN_to_ASN1_INTEGER(bn, NULL)) == NULL)
		goto out;
	if (!TS_MSG_IMPRINT_set_algo(imp, alg) ||
	    !TS_MSG_IMPRINT_set_msg(imp, h, sizeof(h)) ||
	    !TS_REQ_set_version(req, 1) ||
	    !TS_REQ_set_msg_imprint(req, imp) ||
	    !TS_REQ_set_nonce(req, nonce) ||
	    !TS_REQ_set_cert_req(req, 1))
		goto out;
	if ((n = i2d_TS_REQ(req, &der)) <= 0)
		goto out;
	*ret_req = req;
	req = NULL;
	*ret_der = der;
	*ret_der_len = (size_t)n;
	r = 0;
out:
	BN_free(bn);
	ASN1_INTEGER_free(nonce);
	X509_ALGOR_free(alg);
	TS_MSG_IMPRINT_free(imp);
	TS_REQ_free(req);
	return r;
}

/* POSTs the request; on success resp holds an HTTP 200 body. */
static int
post(const char *url, const char *murl, const unsigned char *der,
    size_t der_len, unsigned timeout_ms, struct response *resp,
    char *errbuf, size_t errlen)
{
	static const char *const headers[] = {
		"Content-Type: application/timestamp-query",
		"Accept: application/timestamp-reply",
		"Expect:",               /* no 100-continue round trip */
	};
	CURL *curl = NULL;
	struct curl_slist *hdrs = NULL, *nh;
	size_t i;
	char curl_err[CURL_ERROR_SIZE] = "", ctype_esc[128];
	char *ctype = NULL;
	long status = 0, os_errno = 0;
	CURLcode cr;
	int r = SG_ERR_INTERNAL;

	if ((curl = curl_easy_init()) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		if ((nh = curl_slist_append(hdrs, headers[i])) == NULL) {
			r = SG_ERR_NOMEM;
			goto out;
		}
		hdrs = nh;
	}
#define SET(opt, val) do {						\
	if (curl_easy_setopt(curl, (opt), (val)) != CURLE_OK)		\
		goto out;						\
} while (0)
	SET(CURLOPT_ERRORBUFFER, curl_err);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_URL, url);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)TSA_RESPONSE_MAX);
	SET(CURLOPT_USERAGENT, "signgate/1");
	SET(CURLOPT_HTTPHEADER, hdrs);
	SET(CURLOPT_POST, 1L);
	SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)der_len);
	SET(CURLOPT_POSTFIELDS, der);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, resp);
#undef SET

	cr = curl_easy_perform(curl);
	r = SG_ERR_UNAVAILABLE;
	if (cr != CURLE_OK) {
		curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno);
		if (resp->too_large || cr == CURLE_FILESIZE_EXCEEDED)
			tsa_err(errbuf, errlen, murl,
			    "response larger than %u bytes",
			    (unsigned)TSA_RESPONSE_MAX);
		else if (cr == CURLE_OPERATION_TIMEDOUT)
			tsa_err(errbuf, errlen, murl, "no answer within %u ms",
			    timeout_ms);
		else if (cr == CURLE_COULDNT_CONNECT && os_errno != 0)
			tsa_err(errbuf, errlen, murl, "cannot connect: %s",
			    strerror((int)os_errno));
		else if (cr == CURLE_COULDNT_CONNECT)
			tsa_err(errbuf, errlen, murl, "cannot connect: %s",
			    curl_err[0] != '\0' ? curl_err :
			    curl_easy_strerror(cr));
		else
			tsa_err(errbuf, errlen, murl, "%s%s%s",
			    curl_easy_strerror(cr), curl_err[0] ? ": " : "",
			    curl_err);
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		tsa_err(errbuf, errlen, murl, "HTTP status %ld", status);
		goto out;
	}
	/* RFC 3161 3.4 names application/timestamp-reply; some authorities
	 * answer timestamp-response.  Anything else is an error page. */
	if (curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ctype) !=
	    CURLE_OK || ctype == NULL ||
	    (strncasecmp(ctype, "application/timestamp-reply", 27) != 0 &&
	    strncasecmp(ctype, "application/timestamp-response", 30) != 0)) {
		sg_escape(ctype != NULL ? ctype : "none",
		    strlen(ctype != NULL ? ctype : "none"), ctype_esc,
		    sizeof(ctype_esc));
		tsa_err(errbuf, errlen, murl, "unexpected content type %s",
		    ctype_esc);
		goto out;
	}
	r = 0;
out:
	if (curl != NULL)
		curl_easy_cleanup(curl);
	curl_slist_free_all(hdrs);
	return r;
}

static const char *
status_name(long s)
{
	switch (s) {
	case TS_STATUS_GRANTED: return "granted";
	case TS_STATUS_GRANTED_WITH_MODS: return "grantedWithMods";
	case TS_STATUS_REJECTION: return "rejection";
	case TS_STATUS_WAITING: return "waiting";
	case TS_STATUS_REVOCATION_WARNING: return "revocationWarning";
	case TS_STATUS_REVOCATION_NOTIFICATION: return "revocationNotification";
	default: return "unknown";
	}
}

/* "rejection: text (badAlg, ...)" for a status that is not granted. */
static void
describe_status(TS_STATUS_INFO *si, long status, char *out, size_t cap)
{
	static const struct {
		int bit;
		const char *name;
	} infos[] = {
		{ TS_INFO_BAD_ALG, "badAlg" },
		{ TS_INFO_BAD_REQUEST, "badRequest" },
		{ TS_INFO_BAD_DATA_FORMAT, "badDataFormat" },
		{ TS_INFO_TIME_NOT_AVAILABLE, "timeNotAvailable" },
		{ TS_INFO_UNACCEPTED_POLICY, "unacceptedPolicy" },
		{ TS_INFO_UNACCEPTED_EXTENSION, "unacceptedExtension" },
		{ TS_INFO_ADD_INFO_NOT_AVAILABLE, "addInfoNotAvailable" },
		{ TS_INFO_SYSTEM_FAILURE, "systemFailure" },
	};
	const STACK_OF(ASN1_UTF8STRING) *text;
	const ASN1_BIT_STRING *fi;
	const ASN1_UTF8STRING *t;
	char esc[256], fail[256] = "";
	size_t i, used = 0;

	esc[0] = '\0';
	text = TS_STATUS_INFO_get0_text(si);
	if (text != NULL && sk_ASN1_UTF8STRING_num(text) > 0 &&
	    (t = sk_ASN1_UTF8STRING_value(text, 0)) != NULL)
		sg_escape((const char *)ASN1_STRING_get0_data(t),
		    (size_t)ASN1_STRING_length(t), esc, sizeof(esc));
	if ((fi = TS_STATUS_INFO_get0_failure_info(si)) != NULL) {
		for (i = 0; i < sizeof(infos) / sizeof(infos[0]); i++) {
			if (!ASN1_BIT_STRING_get_bit(fi, infos[i].bit))
				continue;
			used += (size_t)snprintf(fail + used,
			    used < sizeof(fail) ? sizeof(fail) - used : 0,
			    "%s%s", used > 0 ? ", " : "", infos[i].name);
			if (used >= sizeof(fail))
				break;
		}
	}
	snprintf(out, cap, "status %s%s%s%s%s%s%s", status_name(status),
	    esc[0] != '\0' ? ": \"" : "", esc, esc[0] != '\0' ? "\"" : "",
	    fail[0] != '\0' ? " (" : "", fail, fail[0] != '\0' ? ")" : "");
}

/* Why TS_RESP_verify_response refused, from OpenSSL's error queue. */
static const char *
verify_failure(void)
{
	unsigned long e;
	const char *why = "response does not match the request";

	while ((e = ERR_get_error()) != 0) {
		if (ERR_GET_LIB(e) != ERR_LIB_TS)
			continue;
		switch (ERR_GET_REASON(e)) {
		case TS_R_MESSAGE_IMPRINT_MISMATCH:
			why = "imprint mismatch";
			break;
		case TS_R_NONCE_MISMATCH:
			why = "nonce mismatch";
			break;
		case TS_R_NONCE_NOT_RETURNED:
			why = "nonce not returned";
			break;
		case TS_R_UNSUPPORTED_VERSION:
			why = "unsupported TSTInfo version";
			break;
		case TS_R_TOKEN_NOT_PRESENT:
			why = "no token in a granted response";
			break;
		}
	}
	return why;
}

/* The token's SignedData verifies with the certificate inside it. */
static int
token_self_signed_ok(PKCS7 *token)
{
	X509_STORE *store;
	int ok;

	if ((store = X509_STORE_new()) == NULL)
		return 0;
	ok = PKCS7_verify(token, NULL, store, NULL, NULL,
	    PKCS7_NOVERIFY) == 1;
	X509_STORE_free(store);
	return ok;
}

static int
check_response(const char *murl, TS_REQ *req, const uint8_t *buf,
    size_t len, uint8_t **ret_token, size_t *ret_len, char *errbuf,
    size_t errlen)
{
	TS_RESP *resp = NULL;
	TS_VERIFY_CTX *vctx = NULL;
	TS_STATUS_INFO *si;
	PKCS7 *token;
	const unsigned char *p = buf;
	unsigned char *der = NULL;
	uint8_t *out;
	char why[700];
	long status;
	int n, r = SG_ERR_UNAVAILABLE;

	resp = d2i_TS_RESP(NULL, &p, (long)len);
	if (resp == NULL || p != buf + len) {
		tsa_err(errbuf, errlen, murl, "malformed time-stamp response");
		goto out;
	}
	if ((si = TS_RESP_get_status_info(resp)) == NULL ||
	    TS_STATUS_INFO_get0_status(si) == NULL) {
		tsa_err(errbuf, errlen, murl, "response without a status");
		goto out;
	}
	status = ASN1_INTEGER_get(TS_STATUS_INFO_get0_status(si));
	if (status != TS_STATUS_GRANTED &&
	    status != TS_STATUS_GRANTED_WITH_MODS) {
		describe_status(si, status, why, sizeof(why));
		tsa_err(errbuf, errlen, murl, "%s", why);
		goto out;
	}
	if ((vctx = TS_REQ_to_TS_VERIFY_CTX(req, NULL)) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	TS_VERIFY_CTX_set_flags(vctx,
	    TS_VFY_VERSION | TS_VFY_IMPRINT | TS_VFY_NONCE);
	ERR_clear_error();
	if (TS_RESP_verify_response(vctx, resp) != 1) {
		tsa_err(errbuf, errlen, murl, "%s", verify_failure());
		goto out;
	}
	if ((token = TS_RESP_get_token(resp)) == NULL) {
		tsa_err(errbuf, errlen, murl, "no token in a granted response");
		goto out;
	}
	if (!token_self_signed_ok(token)) {
		tsa_err(errbuf, errlen, murl, "the token's signature does not "
		    "verify with the certificate it carries");
		goto out;
	}
	if ((n = i2d_PKCS7(token, &der)) <= 0) {
		r = SG_ERR_CRYPTO;
		goto out;
	}
	if ((out = malloc((size_t)n)) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	memcpy(out, der, (size_t)n);
	*ret_token = out;
	*ret_len = (size_t)n;
	r = 0;
out:
	ERR_clear_error();
	OPENSSL_free(der);
	TS_VERIFY_CTX_free(vctx);
	TS_RESP_free(resp);
	return r;
}

int
sg_tsa_timestamp(const char *url, const uint8_t *data, size_t len,
    unsigned timeout_ms, uint8_t **ret_token, size_t *ret_len,
    char *errbuf, size_t errlen)
{
	TS_REQ *req = NULL;
	unsigned char *der = NULL;
	size_t der_len = 0;
	struct response resp;
	char murl[3 * 256];
	int r;

	memset(&resp, 0, sizeof(resp));
	if (errbuf != NULL && errlen > 0)
		errbuf[0] = '\0';
	if (url == NULL || strnlen(url, TSA_URL_MAX + 1) > TSA_URL_MAX) {
		tsa_err(errbuf, errlen, "(none)", "no URL, or one too long");
		return SG_ERR_INVALID;
	}
	url_for_messages(url, murl, sizeof(murl));
	if (strncasecmp(url, "http://", 7) != 0 &&
	    strncasecmp(url, "https://", 8) != 0) {
		tsa_err(errbuf, errlen, murl, "not an http or https URL");
		return SG_ERR_INVALID;
	}
	if ((data == NULL && len > 0) || timeout_ms == 0 ||
	    timeout_ms > TSA_TIMEOUT_MAX_MS || ret_token == NULL ||
	    ret_len == NULL) {
		tsa_err(errbuf, errlen, murl, "invalid arguments");
		return SG_ERR_INVALID;
	}
	if ((r = make_request(data != NULL ? data : (const uint8_t *)"", len,
	    &req, &der, &der_len)) != 0) {
		tsa_err(errbuf, errlen, murl, "cannot make the request: %s",
		    sg_strerror(r));
		goto out;
	}
	if ((r = post(url, murl, der, der_len, timeout_ms, &resp, errbuf,
	    errlen)) != 0)
		goto out;
	r = check_response(murl, req, resp.buf, resp.len, ret_token, ret_len,
	    errbuf, errlen);
out:
	if (r != 0 && errbuf != NULL && errlen > 0 && errbuf[0] == '\0')
		tsa_err(errbuf, errlen, murl, "%s", sg_strerror(r));
	free(resp.buf);
	OPENSSL_free(der);
	TS_REQ_free(req);
	return r;
}

int
sg_tsa_token_time(const uint8_t *token, size_t len, int64_t *ret)
{
	TS_TST_INFO *tst = NULL;
	const ASN1_GENERALIZEDTIME *gt;
	struct tm tm;
	time_t t;
	int r = SG_ERR_INVALID;

	if (token == NULL || len == 0 || ret == NULL)
		return SG_ERR_INVALID;
	if (len > TSA_RESPONSE_MAX)
		return SG_ERR_TOO_LARGE;
	if ((tst = sg_cms_token_info(token, len)) == NULL ||
	    (gt = TS_TST_INFO_get_time(tst)) == NULL)
		goto out;
	memset(&tm, 0, sizeof(tm));
	if (!ASN1_TIME_to_tm(gt, &tm))
		goto out;
	if ((t = timegm(&tm)) == (time_t)-1)
		goto out;
	*ret = (int64_t)t;
	r = 0;
out:
	ERR_clear_error();
	TS_TST_INFO_free(tst);
	return r;
}
