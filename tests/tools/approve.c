/*
 * approve: one officer's approvals of many requests over one connection,
 * for the concurrency tests.
 *
 *   approve OFFICER FILE...
 *
 * Each FILE is a request as the API answered it (the JSON of POST
 * /v1/requests or GET /v1/requests/{id}).  For each, in order, the
 * officer's DSSE envelope is built as docs/API.md (POST
 * /v1/requests/{id}/approvals) and tests/integration/lib.sh's
 * approve_with_openssl build it, with OpenSSL alone and not the
 * project's DSSE code: the body is the statement followed by "decision
 * approve", the PAE "DSSEv1 <len> <type> <len> <body>" is signed with
 * SHA-256 by SG_DEV/officers/OFFICER.key.  It is posted over one
 * kept-alive TLS connection with the officer's client certificate
 * (SG_DEV/tls/OFFICER.pem), to SIGNGATE_URL.
 *
 * Prints one line per FILE, in order: the HTTP status of its approval, or
 * "curl-error" when no answer came.  Exits 0 when every FILE was read and
 * signed (whatever the statuses), 1 otherwise.  Bounded: loopback URLs
 * only, 30 s per call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "sg_fixture.h"
#include "sg_util.h"

#define HTTP_TIMEOUT_S  30
#define PAYLOAD_TYPE    "application/vnd.signgate.approval.v1+text"

/*
 * The envelope for the request in FILE (malloc'd JSON) and the request's
 * id in id.  Returns 0, or -1 after saying why on stderr.
 */
static int
build_envelope(EVP_PKEY *key, const char *officer, const char *file,
    char id[128], char **ret)
{
	static const char decision[] = "decision approve\n";
	json_t *req = NULL, *env = NULL;
	json_error_t jerr;
	const char *rid, *stmt;
	char *body = NULL, *pae = NULL, *b64body = NULL, *b64sig = NULL;
	unsigned char sig[1024];
	size_t stmt_len, body_len, pae_len, sig_len = sizeof(sig);
	EVP_MD_CTX *md = NULL;
	int n, r = -1;

	*ret = NULL;
	if ((req = json_load_file(file, 0, &jerr)) == NULL) {
		fprintf(stderr, "approve: %s: %s\n", file, jerr.text);
		goto out;
	}
	rid = json_string_value(json_object_get(req, "id"));
	stmt = json_string_value(json_object_get(req, "statement"));
	if (rid == NULL || stmt == NULL || strlen(rid) >= 128) {
		fprintf(stderr, "approve: %s: no id or statement\n", file);
		goto out;
	}
	snprintf(id, 128, "%s", rid);
	stmt_len = strlen(stmt);
	body_len = stmt_len + sizeof(decision) - 1;
	if ((body = malloc(body_len + 1)) == NULL)
		goto out;
	memcpy(body, stmt, stmt_len);
	memcpy(body + stmt_len, decision, sizeof(decision));
	pae_len = body_len + sizeof(PAYLOAD_TYPE) + 64;
	if ((pae = malloc(pae_len)) == NULL)
		goto out;
	n = snprintf(pae, pae_len, "DSSEv1 %zu %s %zu ",
	    sizeof(PAYLOAD_TYPE) - 1, PAYLOAD_TYPE, body_len);
	if (n < 0 || (size_t)n + body_len >= pae_len)
		goto out;
	memcpy(pae + n, body, body_len);
	pae_len = (size_t)n + body_len;
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, sig, &sig_len, (unsigned char *)pae,
	    pae_len) != 1) {
		fprintf(stderr, "approve: %s: signing failed\n", file);
		goto out;
	}
	if ((b64body = sg_b64_encode((uint8_t *)body, body_len)) == NULL ||
	    (b64sig = sg_b64_encode(sig, sig_len)) == NULL)
		goto out;
	env = json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "payloadType",
	    PAYLOAD_TYPE, "payload", b64body, "signatures", "keyid", officer,
	    "sig", b64sig);
	if (env == NULL || (*ret = json_dumps(env, JSON_COMPACT)) == NULL)
		goto out;
	r = 0;
 out:
	EVP_MD_CTX_free(md);
	json_decref(env);
	json_decref(req);
	free(b64sig);
	free(b64body);
	free(pae);
	free(body);
	return r;
}

int
main(int argc, char **argv)
{
	const char *officer, *url, *dev;
	char path[1024], id[128];
	struct curl_slist *hdrs = NULL;
	struct sg_fx_body answer = { NULL, 0 };
	EVP_PKEY *key = NULL;
	CURL *h = NULL;
	char *env;
	long status;
	int i, r = 1;

	if (argc < 3) {
		fprintf(stderr, "usage: approve OFFICER FILE...\n");
		return 2;
	}
	officer = argv[1];
	url = getenv("SIGNGATE_URL");
	dev = getenv("SG_DEV");
	if (url == NULL || strncmp(url, "https://127.", 12) != 0 ||
	    dev == NULL) {
		fprintf(stderr, "approve: SIGNGATE_URL (a loopback https URL) "
		    "and SG_DEV must be set\n");
		return 2;
	}
	if (strspn(officer, "abcdefghijklmnopqrstuvwxyz0123456789-") !=
	    strlen(officer)) {
		fprintf(stderr, "approve: %s: not an officer's name\n",
		    officer);
		return 2;
	}
	snprintf(path, sizeof(path), "%s/officers/%s.key", dev, officer);
	if ((key = sg_fx_read_key(path)) == NULL) {
		fprintf(stderr, "approve: %s: cannot read the key\n", path);
		return 1;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 ||
	    (h = curl_easy_init()) == NULL ||
	    (hdrs = curl_slist_append(NULL,
	    "Content-Type: application/json")) == NULL)
		goto out;
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)HTTP_TIMEOUT_S);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sg_fx_body_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &answer);
	snprintf(path, sizeof(path), "%s/tls/ca.pem", dev);
	curl_easy_setopt(h, CURLOPT_CAINFO, path);
	snprintf(path, sizeof(path), "%s/tls/%s.pem", dev, officer);
	curl_easy_setopt(h, CURLOPT_SSLCERT, path);
	snprintf(path, sizeof(path), "%s/tls/%s.key", dev, officer);
	curl_easy_setopt(h, CURLOPT_SSLKEY, path);
	r = 0;
	for (i = 2; i < argc; i++) {
		if (build_envelope(key, officer, argv[i], id, &env) != 0) {
			printf("no-envelope\n");
			r = 1;
			continue;
		}
		snprintf(path, sizeof(path), "%s/v1/requests/%s/approvals",
		    url, id);
		answer.len = 0;
		curl_easy_setopt(h, CURLOPT_URL, path);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, env);
		status = 0;
		if (curl_easy_perform(h) == CURLE_OK)
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		free(env);
		if (status > 0)
			printf("%ld\n", status);
		else
			printf("curl-error\n");
	}
 out:
	if (h != NULL)
		curl_easy_cleanup(h);
	curl_slist_free_all(hdrs);
	free(answer.p);
	EVP_PKEY_free(key);
	if (fflush(stdout) != 0)
		r = 1;
	return r;
}
