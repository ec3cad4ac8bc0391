/*
 * The CLI's HTTP client: one libcurl easy handle per command, so that every
 * call of a command reuses the same TLS connection (keep-alive).
 *
 * Security settings are fixed in one place (src/curl_client.c, shared with
 * the tile reader): TLS 1.2 or newer, peer and host verified (against
 * --cacert when given, else the system store), no redirects, only https
 * (and http, which sg_cli_conf_resolve allows to loopback only); here, the
 * client certificate and key for mutual TLS.
 * A response larger than SG_CLI_RESPONSE_MAX is abandoned mid-transfer,
 * so a hostile or broken server cannot make the CLI allocate without bound.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "sg_cli.h"
#include "sg_curl.h"
#include "sg_err.h"
#include "sg_util.h"

struct sg_cli_http {
	CURL *curl;
	char *base;                  /* URL without a trailing '/' */
	long timeout;
	char curl_err[CURL_ERROR_SIZE];
	char err[CURL_ERROR_SIZE + 128];
	/* The response being received. */
	char *buf;
	size_t len;
	size_t cap;
	int too_large;
};

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct sg_cli_http *h = arg;
	size_t n = size * nmemb, ncap;
	char *nb;

	if (size != 0 && n / size != nmemb)
		return 0;
	if (n > SG_CLI_RESPONSE_MAX - h->len) {
		h->too_large = 1;
		return 0;                /* aborts the transfer */
	}
	if (h->len + n + 1 > h->cap) {
		ncap = h->cap == 0 ? 16384 : h->cap;
		while (ncap < h->len + n + 1)
			ncap *= 2;
		if ((nb = realloc(h->buf, ncap)) == NULL)
			return 0;
		h->buf = nb;
		h->cap = ncap;
	}
	memcpy(h->buf + h->len, data, n);
	h->len += n;
	h->buf[h->len] = '\0';
	return n;
}

void
sg_cli_http_free(struct sg_cli_http *h)
{
	if (h == NULL)
		return;
	if (h->curl != NULL)
		curl_easy_cleanup(h->curl);
	free(h->base);
	free(h->buf);
	free(h);
}

int
sg_cli_http_new(const struct sg_cli_conf *c, struct sg_cli_http **ret)
{
	struct sg_cli_http *h;
	size_t n;
	int r = SG_ERR_INTERNAL;

	if (c == NULL || c->url == NULL || ret == NULL)
		return SG_ERR_INVALID;
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return SG_ERR_NOMEM;
	if ((h->base = strdup(c->url)) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	n = strlen(h->base);
	while (n > 0 && h->base[n - 1] == '/')
		h->base[--n] = '\0';
	h->timeout = c->timeout > 0 ? (long)c->timeout : SG_CLI_DEFAULT_TIMEOUT;
	if (sg_curl_new(c->cacert, h->timeout, h->curl_err, on_body, h,
	    &h->curl) != 0)
		goto out;
#define SET(opt, val) do {						\
	if (curl_easy_setopt(h->curl, (opt), (val)) != CURLE_OK)	\
		goto out;						\
} while (0)
	if (c->cert != NULL) {
		SET(CURLOPT_SSLCERT, c->cert);
		SET(CURLOPT_SSLCERTTYPE, "PEM");
		/* Without --key the certificate file holds the key too. */
		SET(CURLOPT_SSLKEY, c->key != NULL ? c->key : c->cert);
		SET(CURLOPT_SSLKEYTYPE, "PEM");
	}
#undef SET
	*ret = h;
	h = NULL;
	r = 0;
out:
	sg_cli_http_free(h);
	return r;
}

const char *
sg_cli_http_error(const struct sg_cli_http *h)
{
	return h->err[0] != '\0' ? h->err : "unknown error";
}

void
sg_cli_http_resp_clear(struct sg_cli_http_resp *r)
{
	if (r == NULL)
		return;
	free(r->body);
	memset(r, 0, sizeof(*r));
}

int
sg_cli_http_request(struct sg_cli_http *h, const char *method, const char *path,
    const char *body, size_t body_len, const char *idempotency_key,
    long extra_timeout, struct sg_cli_http_resp *ret)
{
	if (extra_timeout < 0 || extra_timeout > SG_CLI_MAX_TIMEOUT)
		return SG_ERR_INVALID;
	return sg_cli_http_request_ms(h, method, path, body, body_len,
	    idempotency_key, (h->timeout + extra_timeout) * 1000L, ret);
}

/* As sg_cli_http_request(), the whole transfer (connection included)
 * bounded by total_ms milliseconds. */
int
sg_cli_http_request_ms(struct sg_cli_http *h, const char *method,
    const char *path, const char *body, size_t body_len,
    const char *idempotency_key, long total_ms, struct sg_cli_http_resp *ret)
{
	struct curl_slist *hdrs = NULL, *nh;
	char *url = NULL, *idem = NULL, *ct = NULL;
	struct sg_cli_http_resp resp;
	CURLcode cr;
	int64_t t0;
	int r = SG_ERR_INTERNAL, post;

	memset(&resp, 0, sizeof(resp));
	h->err[0] = h->curl_err[0] = '\0';
	h->len = 0;
	h->too_large = 0;
	if (method == NULL || path == NULL || path[0] != '/' || ret == NULL ||
	    total_ms <= 0)
		return SG_ERR_INVALID;
	post = strcmp(method, "POST") == 0;
	if (!post && strcmp(method, "GET") != 0)
		return SG_ERR_INVALID;
	if (asprintf(&url, "%s%s", h->base, path) < 0) {
		url = NULL;
		r = SG_ERR_NOMEM;
		goto out;
	}
#define ADD(s) do {							\
	if ((nh = curl_slist_append(hdrs, (s))) == NULL) {		\
		r = SG_ERR_NOMEM;					\
		goto out;						\
	}								\
	hdrs = nh;							\
} while (0)
	ADD("Accept: application/json, application/problem+json");
	/* Bodies are small; no 100-continue round trip. */
	ADD("Expect:");
	if (post)
		ADD("Content-Type: application/json");
	if (idempotency_key != NULL) {
		if (asprintf(&idem, "Idempotency-Key: %s", idempotency_key) < 0) {
			idem = NULL;
			r = SG_ERR_NOMEM;
			goto out;
		}
		ADD(idem);
	}
#undef ADD
	if (curl_easy_setopt(h->curl, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, total_ms) !=
	    CURLE_OK)
		goto out;
	if (post) {
		if (curl_easy_setopt(h->curl, CURLOPT_POST, 1L) != CURLE_OK ||
		    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)body_len) != CURLE_OK ||
		    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS,
		    body != NULL ? body : "") != CURLE_OK)
			goto out;
	} else if (curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L) != CURLE_OK)
		goto out;

	t0 = sg_mono_us();
	cr = curl_easy_perform(h->curl);
	if (cr != CURLE_OK) {
		if (h->too_large) {
			snprintf(h->err, sizeof(h->err),
			    "response larger than %u bytes", SG_CLI_RESPONSE_MAX);
			r = SG_ERR_TOO_LARGE;
		} else {
			snprintf(h->err, sizeof(h->err), "%s%s%s",
			    curl_easy_strerror(cr),
			    h->curl_err[0] ? ": " : "", h->curl_err);
			r = cr == CURLE_OPERATION_TIMEDOUT ?
			    SG_ERR_TIMEOUT : SG_ERR_UNAVAILABLE;
		}
		goto out;
	}
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &resp.status);
	if (curl_easy_getinfo(h->curl, CURLINFO_CONTENT_TYPE, &ct) ==
	    CURLE_OK && ct != NULL)
		snprintf(resp.content_type, sizeof(resp.content_type), "%s", ct);
	sg_log_debug("%s %s -> %ld, %zu bytes, %.1f ms", method, path,
	    resp.status, h->len, (double)(sg_mono_us() - t0) / 1e3);
	if ((resp.body = malloc(h->len + 1)) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	if (h->len > 0)
		memcpy(resp.body, h->buf, h->len);
	resp.body[h->len] = '\0';
	resp.len = h->len;
	*ret = resp;
	memset(&resp, 0, sizeof(resp));
	r = 0;
out:
	/* The handle must not keep pointers to what is freed here. */
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, NULL);
	if (r != 0 && h->err[0] == '\0')
		snprintf(h->err, sizeof(h->err), "%s", sg_strerror(r));
	curl_slist_free_all(hdrs);
	sg_cli_http_resp_clear(&resp);
	free(url);
	free(idem);
	return r;
}
