/*
 * The PKCS#11 client module through its C_* functions, against a small
 * stand-in for the gateway on loopback (plain HTTP, which the module
 * allows to 127.0.0.1 only): every mechanism signed and checked with
 * OpenSSL, the length rules, multi-part, what the request carries, the
 * long-poll, a veto, the cancel at the timeout, retries with the same
 * Idempotency-Key, the refusals and failures (CKR_FUNCTION_REJECTED,
 * CKR_DEVICE_ERROR), a signature that does not verify, the evidence
 * files, threads, and a session after fork().  Every wait is bounded.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_util.h"
#include "p11mod_int.h"
#include "sg_test.h"
#include "sg_fixture.h"

#define REQ_ID "0123456789abcdef0123456789abcdef"
#define MAX_SEEN 64

enum post_mode {
	P_SIGN,          /* signed at once */
	P_PENDING,       /* pending; GETs say pending `polls` times, then
	                    final_state */
	P_REFUSE,        /* 403 with a problem document */
};

static struct fake {
	int lfd;
	int port;
	pthread_t th;
	volatile int stop;
	enum post_mode mode;
	const char *final_state;
	int polls;
	int fail_posts;           /* the first N POSTs get 503 */
	int sign_other;           /* sign another digest */
	int echo_other;           /* the request names another digest */
	int get_status;           /* GETs answer this status ... */
	int get_fails;            /* ... this many times */
	int hang_gets;            /* GETs are never answered */
	int cancel_conflict;      /* a cancel meets the signature: 409 */
	EVP_PKEY *ec, *rsa;
	pthread_mutex_t mu;
	/* What was seen. */
	int posts;
	int gets;
	int cancels;
	char idem[MAX_SEEN][80];
	char last_post[4096];
	char last_cancel[512];
	char last_get[256];
} fk;

/* ---- the stand-in gateway ---- */

static int
respond(int fd, int status, const char *body)
{
	char head[256];
	int n;

	n = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Type: %s"
	    "\r\nContent-Length: %zu\r\n\r\n", status, status < 300 ?
	    "application/json" : "application/problem+json", strlen(body));
	if (sg_fx_send_all(fd, head, (size_t)n) != 0)
		return -1;
	return sg_fx_send_all(fd, body, strlen(body));
}

static json_t *
key_obj(const char *name, const char *alg, EVP_PKEY *k)
{
	char spki[65], *pem = sg_fx_pubkey_pem(k);
	json_t *o;

	sg_fx_spki_hex(k, spki);
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:[s]}}", "name", name,
	    "algorithm", alg, "public_key_pem", pem, "spki_sha256", spki,
	    "state", "active", "policy", "requesters", "ci");
	free(pem);
	return o;
}

static char *
keys_body(void)
{
	json_t *o = json_pack("{s:s, s:[o, o, o]}", "principal", "ci", "keys",
	    key_obj("nightly", "ecdsa-p256", fk.ec),
	    key_obj("build-rsa", "rsa-pkcs1", fk.rsa),
	    key_obj("build-pss", "rsa-pss", fk.rsa));
	char *s = json_dumps(o, JSON_COMPACT);

	json_decref(o);
	return s;
}

/* The request the POST asked for, as the gateway keeps it. */
static struct {
	char key[64];
	char alg[32];
	char dalg[16];
	char hex[129];
} cur;

static char *
request_body(const char *state)
{
	uint8_t d[64], sig[1024];
	size_t dl = 0, sl = sizeof(sig);
	EVP_PKEY *k = strcmp(cur.key, "nightly") == 0 ? fk.ec : fk.rsa;
	EVP_PKEY_CTX *ctx;
	const EVP_MD *md = EVP_get_digestbyname(cur.dalg);
	char spki[65], *b64, *s;
	json_t *o;

	o = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:s}", "id", REQ_ID,
	    "state", state, "key", cur.key, "digest", "algorithm", cur.dalg,
	    "value", fk.echo_other ? "00" : cur.hex, "format", "raw");
	if (strcmp(state, "rejected") == 0)
		json_object_set_new(o, "approvals", json_pack("[{s:s, s:s}]",
		    "officer", "alice", "decision", "reject"));
	if (strcmp(state, "signed") == 0) {
		sg_hex_decode(cur.hex, strlen(cur.hex), d, sizeof(d), &dl);
		if (fk.sign_other)
			d[0] ^= 1;
		ctx = EVP_PKEY_CTX_new(k, NULL);
		EVP_PKEY_sign_init(ctx);
		EVP_PKEY_CTX_set_signature_md(ctx, md);
		if (strcmp(cur.alg, "rsa-pkcs1") == 0)
			EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING);
		if (strcmp(cur.alg, "rsa-pss") == 0) {
			EVP_PKEY_CTX_set_rsa_padding(ctx,
			    RSA_PKCS1_PSS_PADDING);
			EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md);
			EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx,
			    RSA_PSS_SALTLEN_DIGEST);
		}
		EVP_PKEY_sign(ctx, sig, &sl, d, dl);
		EVP_PKEY_CTX_free(ctx);
		b64 = sg_b64_encode(sig, sl);
		sg_fx_spki_hex(k, spki);
		json_object_set_new(o, "signature", json_pack("{s:s, s:s, s:s,"
		    " s:s, s:s, s:s, s:{s:i, s:s}}", "format", "raw",
		    "algorithm", cur.alg, "digest_algorithm", cur.dalg, "key",
		    cur.key, "spki_sha256", spki, "signature", b64, "log",
		    "index", 7, "proof", "c2sp.org/tlog-proof@v1\nindex 7\n"));
		free(b64);
	}
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

/* Answers nothing until the client goes away (or the stand-in stops). */
static int
hang(int fd)
{
	struct pollfd p;
	char c;

	while (!fk.stop) {
		p.fd = fd;
		p.events = POLLIN;
		if (poll(&p, 1, 100) > 0 && recv(fd, &c, 1, 0) <= 0)
			break;
	}
	return -1;
}

static int
handle(int fd, const char *method, const char *path, const char *head,
    const char *body)
{
	const char *h;
	char *out = NULL;
	int r;

	if (strcmp(path, "/v1/keys") == 0) {
		out = keys_body();
		r = respond(fd, 200, out);
		free(out);
		return r;
	}
	if (strcmp(method, "POST") == 0 && strcmp(path, "/v1/requests") == 0) {
		json_t *in = json_loads(body, 0, NULL);
		json_t *d = json_object_get(in, "digest");

		pthread_mutex_lock(&fk.mu);
		if ((h = strcasestr(head, "\r\nIdempotency-Key: ")) != NULL &&
		    fk.posts < MAX_SEEN)
			sscanf(h + 19, "%79[^\r]", fk.idem[fk.posts]);
		fk.posts++;
		snprintf(fk.last_post, sizeof(fk.last_post), "%s", body);
		pthread_mutex_unlock(&fk.mu);
		snprintf(cur.key, sizeof(cur.key), "%s",
		    json_string_value(json_object_get(in, "key")));
		snprintf(cur.alg, sizeof(cur.alg), "%s",
		    json_string_value(json_object_get(in, "algorithm")));
		snprintf(cur.dalg, sizeof(cur.dalg), "%s",
		    json_string_value(json_object_get(d, "algorithm")));
		snprintf(cur.hex, sizeof(cur.hex), "%s",
		    json_string_value(json_object_get(d, "value")));
		json_decref(in);
		if (fk.posts <= fk.fail_posts)
			return respond(fd, 503, "{\"title\":\"Service "
			    "Unavailable\",\"status\":503,\"detail\":\"the HSM "
			    "is away\"}");
		if (fk.mode == P_REFUSE)
			return respond(fd, 403, "{\"title\":\"Forbidden\","
			    "\"status\":403,\"detail\":\"grant 'x' is used up"
			    "\",\"field\":\"grant\"}");
		out = request_body(fk.mode == P_SIGN ? "signed" : "pending");
		r = respond(fd, 201, out);
		free(out);
		return r;
	}
	if (strcmp(method, "POST") == 0 &&
	    strcmp(path, "/v1/requests/" REQ_ID "/cancel") == 0) {
		fk.cancels++;
		snprintf(fk.last_cancel, sizeof(fk.last_cancel), "%s", body);
		if (fk.cancel_conflict) {
			fk.polls = 0;
			fk.final_state = "signed";
			return respond(fd, 409, "{\"title\":\"Conflict\","
			    "\"status\":409,\"detail\":\"the request is "
			    "signed\"}");
		}
		out = request_body("cancelled");
		r = respond(fd, 200, out);
		free(out);
		return r;
	}
	if (strncmp(path, "/v1/requests/" REQ_ID "?wait=", 51) == 0) {
		fk.gets++;
		snprintf(fk.last_get, sizeof(fk.last_get), "%s", path);
		if (fk.hang_gets)
			return hang(fd);
		if (fk.get_fails > 0) {
			char problem[128];

			fk.get_fails--;
			snprintf(problem, sizeof(problem), "{\"title\":\"Oops\","
			    "\"status\":%d,\"detail\":\"stand-in says %d\"}",
			    fk.get_status, fk.get_status);
			return respond(fd, fk.get_status, problem);
		}
		out = request_body(fk.polls-- > 0 ? "pending" :
		    fk.final_state);
		r = respond(fd, 200, out);
		free(out);
		return r;
	}
	return respond(fd, 404, "{\"status\":404}");
}

static void *
server(void *arg)
{
	static char buf[65536];
	char method[16], path[256];
	struct pollfd p;
	size_t head, len;
	int fd;

	while (!fk.stop) {
		p.fd = fk.lfd;
		p.events = POLLIN;
		if (poll(&p, 1, 50) <= 0)
			continue;
		if ((fd = accept(fk.lfd, NULL, NULL)) < 0)
			continue;
		while (!fk.stop && sg_fx_http_read(fd, buf, sizeof(buf), &head,
		    &len, &fk.stop, 0) == 1) {
			char save = buf[head - 1];
			if (sscanf(buf, "%15s %255s", method, path) != 2)
				break;
			buf[len] = '\0';
			buf[head - 1] = '\0';
			if (handle(fd, method, path, buf, buf + head) != 0)
				break;
			buf[head - 1] = save;
		}
		close(fd);
	}
	return NULL;
}

static int
fake_start(void)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	EVP_PKEY *ec = fk.ec, *rsa = fk.rsa;

	memset(&fk, 0, sizeof(fk));
	fk.ec = ec != NULL ? ec : EVP_EC_gen("P-256");
	fk.rsa = rsa != NULL ? rsa : EVP_RSA_gen(2048);
	fk.final_state = "signed";
	pthread_mutex_init(&fk.mu, NULL);
	fk.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fk.ec == NULL || fk.rsa == NULL || fk.lfd < 0 ||
	    bind(fk.lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(fk.lfd, 16) != 0 ||
	    getsockname(fk.lfd, (struct sockaddr *)&sa, &sl) != 0) {
		fprintf(stderr, "  cannot start the stand-in gateway\n");
		sg_test_failed_checks++;
		return -1;
	}
	fk.port = ntohs(sa.sin_port);
	if (pthread_create(&fk.th, NULL, server, NULL) != 0)
		return -1;
	return 0;
}

static void
fake_stop(void)
{
	fk.stop = 1;
	pthread_join(fk.th, NULL);
	close(fk.lfd);
	pthread_mutex_destroy(&fk.mu);
}

/* obj.a.b: the member b of the member a of obj. */
static const char *
jpath(const json_t *obj, const char *a, const char *b)
{
	const json_t *v = json_object_get(obj, a);

	if (b != NULL)
		v = json_object_get(v, b);
	return json_string_value(v);
}

/* ---- the module, set up against it ---- */

static char tmp[256];
static char conf_file[512];

/* Configures the module for the stand-in (timeout seconds), initializes
 * it, opens a session. */
static CK_SESSION_HANDLE
open_module(int timeout)
{
	CK_C_INITIALIZE_ARGS a;
	CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
	char text[256];
	char *f;

	if (tmp[0] == '\0')
		CHECK_EQ_INT(sg_fx_tmpdir("p11mod-gw", tmp, sizeof(tmp)), 0);
	unsetenv("SIGNGATE_URL");
	unsetenv("SIGNGATE_PKCS11_EVIDENCE_DIR");
	unsetenv("SIGNGATE_PKCS11_GRANT");
	unsetenv("XDG_CONFIG_HOME");
	setenv("HOME", tmp, 1);
	setenv("SIGNGATE_PKCS11_ARTIFACT", "unit-test.bin", 1);
	snprintf(text, sizeof(text), "url = http://127.0.0.1:%d\ntimeout = %d"
	    "\nconnect_timeout = 2\n", fk.port, timeout);
	f = sg_fx_file(tmp, "pkcs11.conf", text);
	snprintf(conf_file, sizeof(conf_file), "%s", f ? f : "");
	free(f);
	setenv("SIGNGATE_PKCS11_CONF", conf_file, 1);
	memset(&a, 0, sizeof(a));
	a.flags = CKF_OS_LOCKING_OK;
	CHECK_EQ_INT(C_Initialize(&a), CKR_OK);
	CHECK_EQ_INT(C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &h),
	    CKR_OK);
	return h;
}

static CK_OBJECT_HANDLE
find_key(CK_SESSION_HANDLE h, CK_OBJECT_CLASS cls, const char *name)
{
	CK_ATTRIBUTE t[2] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_ID, (void *)name, strlen(name) },
	};
	CK_OBJECT_HANDLE o[4];
	CK_ULONG n = 0;

	CHECK_EQ_INT(C_FindObjectsInit(h, t, 2), CKR_OK);
	CHECK_EQ_INT(C_FindObjects(h, o, 4, &n), CKR_OK);
	CHECK_EQ_INT(C_FindObjectsFinal(h), CKR_OK);
	CHECK_EQ_INT(n, 1);
	return n == 1 ? o[0] : CK_INVALID_HANDLE;
}

/* Checks a C_Sign output against OpenSSL's verdict. */
static int
verifies(EVP_PKEY *k, enum sg_sig_scheme scheme, enum sg_digest_alg da,
    const uint8_t *digest, const uint8_t *sig, size_t len)
{
	uint8_t der[256];
	size_t dl = 0;

	if (scheme == SG_SIG_ECDSA) {
		if (len != 64 || sg_ecdsa_raw_to_der(sig, len, der,
		    sizeof(der), &dl) != 0)
			return 0;
		return sg_fx_verify(k, scheme, da, digest,
		    sg_digest_len(da), der, dl, 0) == 1;
	}
	return sg_fx_verify(k, scheme, da, digest, sg_digest_len(da), sig,
	    len, RSA_PSS_SALTLEN_DIGEST) == 1;
}

static const uint8_t di_prefix[3][19] = {
	{ 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65,
	    0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 },
	{ 0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65,
	    0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30 },
	{ 0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65,
	    0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40 },
};

static const CK_MECHANISM_TYPE hash_mechs[3] = {
	CKM_SHA256, CKM_SHA384, CKM_SHA512 };
static const CK_RSA_PKCS_MGF_TYPE mgfs[3] = {
	CKG_MGF1_SHA256, CKG_MGF1_SHA384, CKG_MGF1_SHA512 };

/* One signature by mechanism `mech` over msg, single-part or in parts of
 * `chunk` bytes (0: single), checked; 1 when all went well. */
static int
sign_one(CK_SESSION_HANDLE h, const char *key, CK_MECHANISM_TYPE mech,
    int hi, const uint8_t *msg, size_t mlen, size_t chunk)
{
	const struct p11m_mech *m = p11m_mech_find(mech);
	enum sg_digest_alg da = (enum sg_digest_alg)(SG_DIGEST_SHA256 + hi);
	CK_RSA_PKCS_PSS_PARAMS pss = { hash_mechs[hi], mgfs[hi],
	    sg_digest_len(da) };
	CK_MECHANISM mk = { mech, NULL, 0 };
	uint8_t digest[64], data[128], sig[1024];
	CK_ULONG slen, dlen = 0, want;
	unsigned int ml = 0;
	size_t off;
	int posts, ok = 1;
	EVP_PKEY *k = strcmp(key, "nightly") == 0 ? fk.ec : fk.rsa;

	EVP_Digest(msg, mlen, digest, &ml, sg_digest_md(da), NULL);
	if (m->scheme == SG_SIG_RSA_PSS) {
		mk.pParameter = &pss;
		mk.ulParameterLen = sizeof(pss);
	}
	/* What the mechanism takes: the message, the digest, or a
	 * DigestInfo. */
	if (m->hash != SG_DIGEST_NONE) {
		/* msg as it is */
	} else if (mech == CKM_RSA_PKCS) {
		memcpy(data, di_prefix[hi], 19);
		memcpy(data + 19, digest, ml);
		msg = data;
		mlen = 19 + ml;
	} else {
		msg = digest;
		mlen = ml;
	}
	want = k == fk.ec ? 64 : 256;
	if (C_SignInit(h, &mk, find_key(h, CKO_PRIVATE_KEY, key)) != CKR_OK)
		return 0;
	/* The length query and a buffer too small ask nobody. */
	posts = fk.posts;
	slen = 0;
	if (chunk == 0) {
		ok &= C_Sign(h, (CK_BYTE_PTR)msg, mlen, NULL, &slen) == CKR_OK;
		ok &= slen == want;
		slen = 10;
		ok &= C_Sign(h, (CK_BYTE_PTR)msg, mlen, sig, &slen) ==
		    CKR_BUFFER_TOO_SMALL;
		ok &= slen == want;
		ok &= fk.posts == posts;
		slen = sizeof(sig);
		ok &= C_Sign(h, (CK_BYTE_PTR)msg, mlen, sig, &slen) == CKR_OK;
	} else {
		for (off = 0; off < mlen; off += chunk)
			ok &= C_SignUpdate(h, (CK_BYTE_PTR)msg + off,
			    mlen - off < chunk ? mlen - off : chunk) == CKR_OK;
		ok &= C_SignFinal(h, NULL, &slen) == CKR_OK && slen == want;
		ok &= fk.posts == posts;
		slen = sizeof(sig);
		ok &= C_SignFinal(h, sig, &slen) == CKR_OK;
	}
	ok &= fk.posts == posts + 1;
	ok &= slen == want;
	ok &= verifies(k, m->scheme, da, digest, sig, slen);
	/* The operation is over. */
	dlen = sizeof(sig);
	ok &= C_SignFinal(h, sig, &dlen) == CKR_OPERATION_NOT_INITIALIZED;
	if (!ok)
		fprintf(stderr, "  %s %s (chunk %zu) failed\n", key, m->name,
		    chunk);
	return ok;
}

static void
test_every_mechanism(void)
{
	static const struct {
		CK_MECHANISM_TYPE mech;
		const char *key;
		int hi;                /* -1: each hash */
	} cases[] = {
		{ CKM_ECDSA, "nightly", -1 },
		{ CKM_ECDSA_SHA256, "nightly", 0 },
		{ CKM_ECDSA_SHA384, "nightly", 1 },
		{ CKM_ECDSA_SHA512, "nightly", 2 },
		{ CKM_RSA_PKCS, "build-rsa", -1 },
		{ CKM_SHA256_RSA_PKCS, "build-rsa", 0 },
		{ CKM_SHA384_RSA_PKCS, "build-rsa", 1 },
		{ CKM_SHA512_RSA_PKCS, "build-rsa", 2 },
		{ CKM_RSA_PKCS_PSS, "build-pss", -1 },
		{ CKM_SHA256_RSA_PKCS_PSS, "build-pss", 0 },
		{ CKM_SHA384_RSA_PKCS_PSS, "build-pss", 1 },
		{ CKM_SHA512_RSA_PKCS_PSS, "build-pss", 2 },
	};
	uint8_t msg[3000];
	CK_SESSION_HANDLE h;
	json_t *body;
	size_t i;
	int hi;

	if (fake_start() != 0)
		return;
	h = open_module(10);
	for (i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 7);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (hi = 0; hi < 3; hi++) {
			if (cases[i].hi >= 0 && cases[i].hi != hi)
				continue;
			CHECK(sign_one(h, cases[i].key, cases[i].mech, hi, msg,
			    sizeof(msg), 0));
			if (cases[i].hi >= 0) {
				CHECK(sign_one(h, cases[i].key, cases[i].mech,
				    hi, msg, sizeof(msg), 1000));
				CHECK(sign_one(h, cases[i].key, cases[i].mech,
				    hi, msg, sizeof(msg), 1));
			}
		}
	}
	/* CKM_ECDSA in parts works too (the parts are the digest). */
	CHECK(sign_one(h, "nightly", CKM_ECDSA, 2, msg, sizeof(msg), 7));
	/* What the last request carried. */
	body = json_loads(fk.last_post, 0, NULL);
	CHECK_STR(json_string_value(json_object_get(body, "key")), "nightly");
	CHECK_STR(json_string_value(json_object_get(body, "algorithm")),
	    "ecdsa-p256");
	CHECK_STR(json_string_value(json_object_get(body, "format")), "raw");
	CHECK_STR(jpath(body, "digest", "algorithm"), "sha512");
	CHECK_STR(jpath(body, "artifact", "name"),
	    "unit-test.bin");
	CHECK_STR(jpath(body, "artifact", "tool"),
	    program_invocation_short_name);
	CHECK_STR(jpath(body, "artifact", "mechanism"), "CKM_ECDSA");
	CHECK(json_object_get(body, "grant") == NULL);
	json_decref(body);
	/* Each request had an Idempotency-Key of its own. */
	CHECK(fk.posts > 2 && strlen(fk.idem[0]) == 32 &&
	    strcmp(fk.idem[0], fk.idem[1]) != 0);
	CHECK_EQ_INT(C_Finalize(NULL), CKR_OK);
	fake_stop();
}

/* A PSS signature on the PKCS#1 key, RSA on the EC key, a public key, a
 * certificate: refused at C_SignInit, nobody asked. */
static void
test_refused_at_init(void)
{
	CK_RSA_PKCS_PSS_PARAMS pss = { CKM_SHA256, CKG_MGF1_SHA256, 32 };
	CK_MECHANISM m = { CKM_RSA_PKCS_PSS, &pss, sizeof(pss) };
	CK_MECHANISM e = { CKM_ECDSA, NULL, 0 };
	CK_MECHANISM r = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_MECHANISM bad = { CKM_SHA1_RSA_PKCS, NULL, 0 };
	CK_SESSION_HANDLE h;
	CK_OBJECT_HANDLE rsa, ec;
	uint8_t sig[512];
	CK_ULONG sl = sizeof(sig);

	if (fake_start() != 0)
		return;
	h = open_module(10);
	rsa = find_key(h, CKO_PRIVATE_KEY, "build-rsa");
	ec = find_key(h, CKO_PRIVATE_KEY, "nightly");
	CHECK_EQ_INT(C_SignInit(h, &m, rsa), CKR_KEY_FUNCTION_NOT_PERMITTED);
	CHECK_EQ_INT(C_SignInit(h, &e, rsa), CKR_KEY_TYPE_INCONSISTENT);
	CHECK_EQ_INT(C_SignInit(h, &r, ec), CKR_KEY_TYPE_INCONSISTENT);
	CHECK_EQ_INT(C_SignInit(h, &bad, rsa), CKR_MECHANISM_INVALID);
	CHECK_EQ_INT(C_SignInit(h, &r, find_key(h, CKO_PUBLIC_KEY,
	    "build-rsa")), CKR_KEY_FUNCTION_NOT_PERMITTED);
	CHECK_EQ_INT(C_SignInit(h, &r, 99999), CKR_KEY_HANDLE_INVALID);
	CHECK_EQ_INT(C_SignInit(h, NULL, rsa), CKR_ARGUMENTS_BAD);
	pss.sLen = 20;
	m.mechanism = CKM_SHA256_RSA_PKCS_PSS;
	CHECK_EQ_INT(C_SignInit(h, &m, find_key(h, CKO_PRIVATE_KEY,
	    "build-pss")), CKR_MECHANISM_PARAM_INVALID);
	/* A started operation: a second init is refused, the wrong data
	 * ends it. */
	CHECK_EQ_INT(C_SignInit(h, &e, ec), CKR_OK);
	CHECK_EQ_INT(C_SignInit(h, &e, ec), CKR_OPERATION_ACTIVE);
	CHECK_EQ_INT(C_Sign(h, sig, 33, sig, &sl), CKR_DATA_LEN_RANGE);
	CHECK_EQ_INT(C_Sign(h, sig, 32, sig, &sl),
	    CKR_OPERATION_NOT_INITIALIZED);
	CHECK_EQ_INT(C_Sign(h, sig, 32, sig, NULL), CKR_ARGUMENTS_BAD);
	CHECK_EQ_INT(C_Sign(h + 1000, sig, 32, sig, &sl),
	    CKR_SESSION_HANDLE_INVALID);
	CHECK_EQ_INT(fk.posts, 0);
	CHECK_EQ_INT(C_Finalize(NULL), CKR_OK);
	fake_stop();
}

/* One ECDSA signature on nightly over a digest of `fill` bytes; its
 * CK_RV. */
static CK_RV
sign_ecdsa(CK_SESSION_HANDLE h, int fill)
{
	CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
	uint8_t digest[32], sig[64];
	CK_ULONG sl = sizeof(sig);
	CK_RV rv;

	memset(digest, fill, sizeof(digest));
	if ((rv = C_SignInit(h, &m, find_key(h, CKO_PRIVATE_KEY,
	    "nightly"))) != CKR_OK)
		return rv;
	return C_Sign(h, digest, sizeof(digest), sig, &sl);
}

static void
test_long_poll(void)
{
	CK_SESSION_HANDLE h;

	if (fake_start() != 0)
		return;
	h = open_module(30);
	fk.mode = P_PENDING;
	fk.polls = 3;
	CHECK_EQ_INT(sign_ecdsa(h, 0x42), CKR_OK);
	CHECK_EQ_INT(fk.gets, 4);
	CHECK(strncmp(fk.last_get, "/v1/requests/" REQ_ID "?wait=", 51) == 0);
	/* Each wait asks for what is left of the timeout; the three
	 * "pending" answered at once were a second apart at least, so the
	 * fourth asks for 30 - 3 s at most (27 when the first exchanges
	 * took under a millisecond). */
	CHECK(atoi(fk.last_get + 51) <= 27);
	CHECK(atoi(fk.last_get + 51) >= 10);
	CHECK_EQ_INT(fk.cancels, 0);
	/* Vetoed, expired, cancelled, failed: CKR_FUNCTION_REJECTED. */
	fk.polls = 1;
	fk.final_state = "rejected";
	CHECK_EQ_INT(sign_ecdsa(h, 1), CKR_FUNCTION_REJECTED);
	fk.final_state = "expired";
	CHECK_EQ_INT(sign_ecdsa(h, 2), CKR_FUNCTION_REJECTED);
	fk.final_state = "cancelled";
	CHECK_EQ_INT(sign_ecdsa(h, 3), CKR_FUNCTION_REJECTED);
	fk.final_state = "failed";
	CHECK_EQ_INT(sign_ecdsa(h, 4), CKR_FUNCTION_REJECTED);
	/* A refusal (403). */
	fk.mode = P_REFUSE;
	CHECK_EQ_INT(sign_ecdsa(h, 5), CKR_FUNCTION_REJECTED);
	CHECK_EQ_INT(fk.cancels, 0);
	CHECK_EQ_INT(fk.posts, 6);
	/* The digest just refused is not asked for again in this session
	 * (pkcs11-tool retries a failed C_Sign in parts); another digest
	 * is, and so is the same one in a new session. */
	fk.mode = P_SIGN;
	CHECK_EQ_INT(sign_ecdsa(h, 5), CKR_FUNCTION_REJECTED);
	CHECK_EQ_INT(fk.posts, 6);
	CHECK_EQ_INT(sign_ecdsa(h, 6), CKR_OK);
	CHECK_EQ_INT(fk.posts, 7);
	{
		CK_SESSION_HANDLE h2;
		CHECK_EQ_INT(C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL,
		    &h2), CKR_OK);
		CHECK_EQ_INT(sign_ecdsa(h2, 5), CKR_OK);
		CHECK_EQ_INT(fk.posts, 8);
	}
	CHECK_EQ_INT(C_Finalize(NULL), CKR_OK);
	fake_stop();
}

static void
test_timeout_cancels(void)
{
	CK_SESSION_HANDLE h;
	int64_t t0, ms;
	json_t *c;

	if (fake_start() != 0)
		return;
	h = open_module(1);
	fk.mode = P_PENDING;
	fk.polls = 1000000;
	t0 = sg_mono_ms();
	CHECK_EQ_INT(sign_ecdsa(h, 0x42), CKR_FUNCTION_REJECTED);
	ms = sg_mono_ms() - t0;
	CHECK(ms >= 900);
	CHECK(ms < 5000);
	CHECK_EQ_INT(fk.cancels, 1);
	c = json_loads(fk.last_cancel, 0, NULL);
	CHECK_STR(json_string_value(json_object_get(c, "reason")),
	    "not approved within 1 s; the PKCS#11 caller gave up");
	json_decref(c);
	CHECK_EQ_INT(C_Finalize(NULL), CKR_OK);
	fake_stop();
}

/* A cancel that meets the signature: the signature is taken. */
static void
test_cancel_meets_signature(void)
{
	CK_SESSION_HANDLE h;

	if (fake_start() != 0)
		return;
	h = open_module(1);
	fk.mode = P_PENDING;
	fk.polls = 1000000;
	fk.cancel_conflict = 1;
	CHECK_EQ_INT(sign_ecdsa(h, 0x42), CKR_OK);
	CHECK_EQ_INT(fk.cancels, 1);
	CHECK_EQ_INT(C_Finalize(NULL), CKR_OK);
	fake_stop();
}

static const char *
cancel_reason(void)
{
	static char r[512];
	json_t *c = json_loads(fk.last_cancel, 0, NULL);

	snprintf(r, sizeof(r), "%s",
	    json_string_value(json_object_get(c, "reason")) ?
	    json_string_value(json_object_get(c, "reason")) : "");
	json_decref(c);
	return r;
}

/*
 * Giving up on a pending request for another reason than the timeout
 * cancels it too, saying why; 401/403/404 while waiting are the gateway's
 * failure (CKR_DEVICE_ERROR), not a refusal the session remembers.
 */
static void
test_lost_gateway_cancels(void)
{
	CK_SESSION_HANDLE h;
	int64_t t0;

	if (fake_start() != 0)
		return;
	h = open_module(30);
	fk.mode = P_PENDING;
	fk.polls = 1000000;
	fk.get_status = 404;
	fk.get_fails = 1;
	t0 = sg_mono_ms();
	CHECK_EQ_INT(sign_ecdsa(h, 0x42), CKR_DEVICE_ERROR);
	CHECK(sg_mono_ms() - t0 < 10000);
	CHECK_EQ_INT(fk.cancels, 1);
	CHECK(strncmp(cancel_reason(), "the PKCS#11 module lost the gateway "
	    "while waiting: ", 50) == 0);
	CHECK(strstr(cancel_reason(), "stand-in says 404") != NULL);
	/* Not remembered: the same digest is asked for again. */
	fk.get_fails = 0;
	fk.polls = 0;
	CHECK_EQ_INT(sign_ecdsa(h, 0x42), CKR_OK);
	CHECK_EQ_INT(fk.posts, 2);
	/* 503 on every poll: retried, then CKR_DEVICE_ERROR and a cancel. */
	fk.cancels = 0;
	fk.polls = 1000000;
	fk.get_status = 503;
	fk.get_fails = 1000000;
	fk.gets = 0;
	t0 = sg_mono_ms();
	CHECK_EQ_INT(sign_ecdsa(h, 0x43), CKR_DEVICE_ERROR);
	CHECK(sg_mono_ms() - t0 < 20000);
	CHECK(fk.gets >= 2);
	CHECK_EQ_INT(fk.cancels, 1);
	CHECK(strstr(cancel_reason(), "lost the gateway") != NULL);
	/* 429 then 408, then signed: transient, no cancel. */
	fk.cancels = 0;
	fk.polls = 0;
	fk.get_status = 429;
	fk.get_fails = 1;
	CHECK_EQ_INT(sign_ecdsa(h, 0x44), CKR_OK);
	fk.get_status = 408;
	fk.get_fails = 1;
	CHECK_EQ_INT(sign_ecdsa(h, 0x45), CKR_OK);
	CHECK_EQ_INT(fk.cancels, 0);
	CHECK_EQ_INT(C_Finalize(NULL), CKR_OK);
	fake_stop();
}

/*
 * C_Sign keeps to its timeout: a gateway that never answers a poll is
 * given up on at the timeout (the cancel, bounded by connect_timeout,
 * is the only overshoot), and one that answers "pending" at once is not
 * asked again in a tight loop.
 */
static void
test_timeout_is_kept(void)
{
	CK_SESSION_HANDLE h;
	int64_t t0, ms;

	if (fake_start() != 0)
		return;
	h = open_module(2);
	fk.mode = P_PENDING;
	fk.polls = 1000000;
	fk.hang_gets = 1;
	t0 = sg_mono_ms();
	CHECK_EQ_INT(sign_ecdsa(h, 0x42), CKR_DEVICE_ERROR);
	ms = sg_mono_ms() - t0;
	/* timeout 2 s + connect_timeout 2 s for the cancel + slack */
	CHECK(ms < 7000);
	CHECK(ms >= 1500);
	CHECK_EQ_INT(fk.cancels, 1);
	CHECK(strstr(cancel_reason(), "lost the gateway") != NULL);
	/* Always "pending" at once: about one poll a second. */
	fk.hang_gets = 0;
	fk.gets = 0;
	fk.cancels = 0;
	CHECK_EQ_INT(C_Finalize(NULL), CKR_OK);
	h = open_module(3);
	fk.mode = P_PENDING;
	fk.polls = 1000000;
	CHECK_EQ_INT(sign_ecdsa(h, 0x43), CKR_FUNCTION_REJECTED);
	CHECK(fk.gets >= 1);
	CHECK(fk.gets <= 4);
	CHECK_EQ_INT(fk.cancels, 1);
	/* POSTs that keep failing are not retried past the timeout. */
	fk.posts = 0;
	fk.fail_posts = 100;
	CHECK_EQ_INT(C_Finalize(NULL), CKR_OK);
	h = open_module(1);
	fk.fail_posts = 100;
	t0 = sg_mono_ms();
	CHECK_EQ_INT(sign_ecdsa(h, 0x44), CKR_DEVICE_ERROR);
	CHECK(sg_mono_ms() - t0 < 4000);
	CHECK(fk.posts <= 2);
	CHECK_EQ_INT(C_Finalize(NULL), CKR_OK);
	fake_stop();
}

static void
test_device_errors(void)
{
	CK_SESSION_HANDLE h;
	int64_t t0;

	if (fake_start() != 0)
		return;
	h = open_module(10);
	/* Two 503s, then signed: one request, its key kept. */
	fk.fail_posts = 2;
	CHECK_EQ_INT(sign_ecdsa(h, 0x42), CKR_OK);
	CHECK_EQ_INT(fk.posts, 3);
	CHECK(strlen(fk.idem[0]) == 32 && strcmp(fk.idem[0], fk.idem[1]) ==
	    0 && strcmp(fk.idem[1], fk.idem[2]) == 0);
	/* Always 503: CKR_DEVICE_ERROR after three tries. */
	fk.posts = 0;
	fk.fail_posts = 100;
	CHECK_EQ_INT(sign_ecdsa(h, 0x42), CKR_DEVICE_ERROR);
	CHECK_EQ_INT(fk.posts, 3);
	/* A signature that does not verify, or for another digest. */
	fk.fail_posts = 0;
	fk.posts = 0;
	fk.sign_other = 1;
	CHECK_EQ_INT(sign_ecdsa(h, 0x42), CKR_DEVICE_ERROR);
	fk.sign_other = 0;
	fk.echo_other = 1;
	CHECK_EQ_INT(sign_ecdsa(h, 0x42), CKR_DEVICE_ERROR);
	fk.echo_other = 0;
	CHECK_EQ_INT(sign_ecdsa(h, 0x42), CKR_OK);
	/* The gateway goes away: CKR_DEVICE_ERROR, at once. */
	fake_stop();
	t0 = sg_mono_ms();
	CHECK_EQ_INT(sign_ecdsa(h, 0x42), CKR_DEVICE_ERROR);
	CHECK(sg_mono_ms() - t0 < 5000);
	CHECK_EQ_INT(C_Finalize(NULL), CKR_OK);
}

/*
 * A gateway that cannot be reached when the session opens: the session
 * opens (libp11 0.4.12 waits forever when C_OpenSession fails), the
 * search says CKR_DEVICE_ERROR at once, and the next search asks again.
 */
static void
test_down_at_open(void)
{
	CK_ATTRIBUTE any[1];
	CK_TOKEN_INFO ti;
	CK_SESSION_HANDLE h;
	int64_t t0;

	if (fake_start() != 0)
		return;
	fake_stop();
	h = open_module(10);
	CHECK_EQ_INT(C_GetTokenInfo(1, &ti), CKR_OK);
	t0 = sg_mono_ms();
	CHECK_EQ_INT(C_FindObjectsInit(h, any, 0), CKR_DEVICE_ERROR);
	CHECK(sg_mono_ms() - t0 < 5000);
	CHECK_EQ_INT(C_FindObjects(h, NULL, 0, &(CK_ULONG){ 0 }),
	    CKR_OPERATION_NOT_INITIALIZED);
	CHECK_EQ_INT(C_FindObjectsInit(h, any, 0), CKR_DEVICE_ERROR);
	CHECK_EQ_INT(C_CloseSession(h), CKR_OK);
	CHECK_EQ_INT(C_Finalize(NULL), CKR_OK);
}

static void
test_evidence(void)
{
	CK_SESSION_HANDLE h;
	char dir[512], path[600], *text = NULL;
	uint8_t digest[32];
	size_t len = 0;
	json_t *req;

	if (fake_start() != 0)
		return;
	h = open_module(10);
	snprintf(dir, sizeof(dir), "%s/evidence", tmp);
	mkdir(dir, 0700);
	setenv("SIGNGATE_PKCS11_EVIDENCE_DIR", dir, 1);
	CHECK_EQ_INT(sign_ecdsa(h, 0x42), CKR_OK);
	snprintf(path, sizeof(path), "%s/%s.json", dir, REQ_ID);
	CHECK_EQ_INT(sg_read_file(path, 1 << 20, &text, &len), 0);
	req = text != NULL ? json_loads(text, 0, NULL) : NULL;
	CHECK_STR(json_string_value(json_object_get(req, "state")), "signed");
	free(text);
	text = NULL;
	snprintf(path, sizeof(path), "%s/%s.proof", dir, REQ_ID);
	CHECK_EQ_INT(sg_read_file(path, 1 << 20, &text, &len), 0);
	CHECK_STR(text, "c2sp.org/tlog-proof@v1\nindex 7\n");
	free(text);
	text = NULL;
	/* The signature as the gateway gave it: DER. */
	snprintf(path, sizeof(path), "%s/%s.sig", dir, REQ_ID);
	CHECK_EQ_INT(sg_read_file(path, 1 << 20, &text, &len), 0);
	memset(digest, 0x42, sizeof(digest));
	CHECK(text != NULL && sg_verify(fk.ec, SG_SIG_ECDSA, SG_DIGEST_SHA256,
	    digest, 32, (uint8_t *)text, len) == 0);
	free(text);
	json_decref(req);
	/* A directory that went away: the operation fails at C_SignInit. */
	snprintf(path, sizeof(path), "%s/gone", tmp);
	setenv("SIGNGATE_PKCS11_EVIDENCE_DIR", path, 1);
	CHECK_EQ_INT(sign_ecdsa(h, 0x42), CKR_FUNCTION_FAILED);
	unsetenv("SIGNGATE_PKCS11_EVIDENCE_DIR");
	CHECK_EQ_INT(C_Finalize(NULL), CKR_OK);
	fake_stop();
}

static void
test_sessions(void)
{
	CK_SESSION_HANDLE h, h2;
	CK_SESSION_INFO si;
	CK_TOKEN_INFO ti;
	CK_OBJECT_HANDLE objs[64];
	CK_ULONG n = 0, n2 = 0;
	CK_BYTE label[64];
	CK_ATTRIBUTE a = { CKA_LABEL, label, sizeof(label) };

	if (fake_start() != 0)
		return;
	h = open_module(10);
	CHECK_EQ_INT(C_GetTokenInfo(1, &ti), CKR_OK);
	CHECK(memcmp(ti.label, "signgate                        ", 32) == 0);
	CHECK_EQ_INT(ti.flags, CKF_TOKEN_INITIALIZED);
	CHECK_EQ_INT(ti.ulSessionCount, 1);
	CHECK_EQ_INT(C_OpenSession(1, 0, NULL, NULL, &h2),
	    CKR_SESSION_PARALLEL_NOT_SUPPORTED);
	CHECK_EQ_INT(C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, NULL),
	    CKR_ARGUMENTS_BAD);
	CHECK_EQ_INT(C_OpenSession(1, CKF_SERIAL_SESSION | CKF_RW_SESSION,
	    NULL, NULL, &h2), CKR_OK);
	CHECK_EQ_INT(C_GetSessionInfo(h2, &si), CKR_OK);
	CHECK_EQ_INT(si.state, CKS_RW_PUBLIC_SESSION);
	/* Any PIN; once. */
	CHECK_EQ_INT(C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)"x", 1), CKR_OK);
	CHECK_EQ_INT(C_Login(h2, CKU_USER, NULL, 0),
	    CKR_USER_ALREADY_LOGGED_IN);
	CHECK_EQ_INT(C_GetSessionInfo(h, &si), CKR_OK);
	CHECK_EQ_INT(si.state, CKS_RO_USER_FUNCTIONS);
	CHECK_EQ_INT(C_Logout(h), CKR_OK);
	CHECK_EQ_INT(C_GetSessionInfo(h, &si), CKR_OK);
	CHECK_EQ_INT(si.state, CKS_RO_PUBLIC_SESSION);
	CHECK_EQ_INT(C_Logout(h), CKR_OK);
	CHECK_EQ_INT(C_Login(h2, CKU_USER, NULL, 0), CKR_OK);
	CHECK_EQ_INT(C_Logout(h2), CKR_OK);
	/* All objects, in two batches; the search ends once. */
	CHECK_EQ_INT(C_FindObjectsInit(h, NULL, 0), CKR_OK);
	CHECK_EQ_INT(C_FindObjectsInit(h, NULL, 0), CKR_OPERATION_ACTIVE);
	CHECK_EQ_INT(C_FindObjects(h, objs, 4, &n), CKR_OK);
	CHECK_EQ_INT(n, 4);
	CHECK_EQ_INT(C_FindObjects(h, objs + 4, 60, &n2), CKR_OK);
	CHECK_EQ_INT(n + n2, 6);       /* 3 keys, no certificates */
	CHECK_EQ_INT(C_FindObjects(h, objs, 60, &n2), CKR_OK);
	CHECK_EQ_INT(n2, 0);
	CHECK_EQ_INT(C_FindObjectsFinal(h), CKR_OK);
	CHECK_EQ_INT(C_FindObjectsFinal(h), CKR_OPERATION_NOT_INITIALIZED);
	CHECK_EQ_INT(C_GetAttributeValue(h, objs[0], &a, 1), CKR_OK);
	CHECK_EQ_INT(C_GetAttributeValue(h, 12345, &a, 1),
	    CKR_OBJECT_HANDLE_INVALID);
	CHECK_EQ_INT(C_GetAttributeValue(h, objs[0], NULL, 1),
	    CKR_ARGUMENTS_BAD);
	/* The key list was read once, for the first session. */
	CHECK_EQ_INT(C_CloseSession(h), CKR_OK);
	CHECK_EQ_INT(C_CloseSession(h), CKR_SESSION_HANDLE_INVALID);
	CHECK_EQ_INT(C_CloseAllSessions(1), CKR_OK);
	CHECK_EQ_INT(C_GetSessionInfo(h2, &si), CKR_SESSION_HANDLE_INVALID);
	CHECK_EQ_INT(C_Finalize(NULL), CKR_OK);
	fake_stop();
}

struct worker {
	int ok;
};

static void *
sign_worker(void *arg)
{
	struct worker *w = arg;
	CK_SESSION_HANDLE h;
	int i;

	w->ok = C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &h) ==
	    CKR_OK;
	for (i = 0; w->ok && i < 4; i++)
		w->ok = sign_ecdsa(h, 0x42) == CKR_OK;
	if (C_CloseSession(h) != CKR_OK)
		w->ok = 0;
	return NULL;
}

static void
test_threads(void)
{
	struct worker w[6];
	size_t i;

	if (fake_start() != 0)
		return;
	open_module(30);
	memset(w, 0, sizeof(w));
	CHECK_EQ_INT(sg_fx_threads(6, sign_worker, w, sizeof(w[0]), 0, NULL), 6);
	for (i = 0; i < 6; i++)
		CHECK(w[i].ok);
	CHECK_EQ_INT(fk.posts, 24);
	CHECK_EQ_INT(C_Finalize(NULL), CKR_OK);
	fake_stop();
}

/* After fork() the child's sessions are gone with the module's state:
 * not initialized, then a fresh start that knows no old handle. */
static void
test_fork_session(void)
{
	CK_SESSION_HANDLE h;
	CK_SESSION_INFO si;
	pid_t pid;
	int status = -1;

	if (fake_start() != 0)
		return;
	h = open_module(10);
	fflush(NULL);
	if ((pid = fork()) == 0) {
		int bad = 0;
		bad |= C_GetSessionInfo(h, &si) !=
		    CKR_CRYPTOKI_NOT_INITIALIZED;
		bad |= (C_Initialize(NULL) != CKR_OK) << 1;
		bad |= (C_GetSessionInfo(h, &si) !=
		    CKR_SESSION_HANDLE_INVALID) << 2;
		bad |= (C_Finalize(NULL) != CKR_OK) << 3;
		_exit(bad);
	}
	CHECK(pid > 0);
	if (pid > 0) {
		CHECK(waitpid(pid, &status, 0) == pid);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	CHECK_EQ_INT(C_GetSessionInfo(h, &si), CKR_OK);
	CHECK_EQ_INT(sign_ecdsa(h, 0x42), CKR_OK);
	CHECK_EQ_INT(C_Finalize(NULL), CKR_OK);
	fake_stop();
}

static void
test_cleanup(void)
{
	EVP_PKEY_free(fk.ec);
	EVP_PKEY_free(fk.rsa);
	CHECK_EQ_INT(sg_fx_rm_tree(tmp), 0);
}

SG_TEST_MAIN("p11mod_gw",
    T(test_every_mechanism),
    T(test_refused_at_init),
    T(test_long_poll),
    T(test_timeout_cancels),
    T(test_cancel_meets_signature),
    T(test_lost_gateway_cancels),
    T(test_timeout_is_kept),
    T(test_device_errors),
    T(test_down_at_open),
    T(test_evidence),
    T(test_sessions),
    T(test_threads),
    T(test_fork_session),
    T(test_cleanup))
