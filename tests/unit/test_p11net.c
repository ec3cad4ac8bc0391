/*
 * p11net.so (tests/p11wrap/p11net.c), the network-HSM model of the
 * benchmark: SoftHSM behind a fixed latency per signature and a bounded
 * number of signatures in flight.  32 threads sign at once through the
 * PKCS#11 layer with room for 8: every signature verifies, the module
 * counted each of them, and never more (nor fewer) than 8 were in flight
 * at once.  C_Sign's size query goes through without counting, and the
 * stats file another process would read says the same as the module.
 * Then more callers than the layer's session pool holds: the device's
 * latency keeps each of them in C_Sign, so they overlap whatever else the
 * machine is doing, and the pool opens no more sessions than its bound.
 * No timing is asserted: the latency only makes the calls overlap.
 */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <p11-kit/pkcs11.h>

#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_p11.h"
#include "sg_util.h"
#include "sg_test.h"
#include "sg_fixture.h"

#define LABEL           "sg-test-net"
#define NTHREADS        32
#define IN_FLIGHT       8
/* More callers than the pool's bound (sg_p11.h: 64 sessions a token
 * unless sg_p11_set_concurrency() asks for more). */
#define POOL_THREADS    80
#define POOL_LIMIT      64
/* Long enough that the calls overlap on a busy machine; never timed. */
#define LATENCY_MS      "100"

SG_FX_SOFTHSM_SANITIZER_DEFAULTS

static char tmpdir[PATH_MAX];
static char wrapper[PATH_MAX];
static char stats[PATH_MAX + 16];
static struct sg_p11 *g_p11;
static struct sg_p11_token *g_tok;
static struct sg_p11_key *g_p256;
static unsigned long (*signatures_fn)(void);
static unsigned long (*peak_fn)(void);
static pthread_barrier_t start;

struct worker {
	int signed_ok;          /* signed, and the signature verifies */
	int result;             /* sg_p11_sign's answer */
};

static void
test_setup(void)
{
	char path[PATH_MAX + 32];
	char *pin = NULL;
	size_t pin_len = 0;
	void *h;

	if (sg_fx_tmpdir("p11-net", tmpdir, sizeof(tmpdir)) != 0) {
		CHECK(!"no scratch directory");
		return;
	}
	snprintf(path, sizeof(path), "%s/fx", tmpdir);
	if (sg_fx_p11_token(path, LABEL) != 0) {
		CHECK(!"the SoftHSM fixture could not be built");
		return;
	}
	if (sg_fx_build_file("p11wrap/p11net.so", R_OK, wrapper,
	    sizeof(wrapper)) != 0) {
		CHECK(!"p11net.so not built (make unit builds it)");
		return;
	}
	snprintf(stats, sizeof(stats), "%s/stats", tmpdir);
	setenv("SG_P11NET_MODULE", SG_FX_SOFTHSM_MODULE, 1);
	setenv("SG_P11NET_LATENCY_MS", LATENCY_MS, 1);
	setenv("SG_P11NET_IN_FLIGHT", "8", 1);
	setenv("SG_P11NET_STATS", stats, 1);
	CHECK_EQ_INT(sg_p11_load(wrapper, &g_p11), 0);
	if (g_p11 == NULL)
		return;
	/* Every signature on its caller's thread, in its own session. */
	CHECK_EQ_INT(sg_p11_set_deadline(g_p11, 0), 0);
	if ((h = dlopen(wrapper, RTLD_NOW | RTLD_NOLOAD)) != NULL) {
		signatures_fn = (unsigned long (*)(void))dlsym(h,
		    "p11net_signatures");
		peak_fn = (unsigned long (*)(void))dlsym(h,
		    "p11net_peak_in_flight");
		dlclose(h);
	}
	CHECK(signatures_fn != NULL && peak_fn != NULL);
	snprintf(path, sizeof(path), "%s/fx/user.pin", tmpdir);
	CHECK_EQ_INT(sg_read_secret_file(path, &pin, &pin_len), 0);
	CHECK_EQ_INT(sg_p11_open_token(g_p11, LABEL, pin, pin_len, &g_tok), 0);
	sg_freezero(pin, pin_len + 1);
	if (g_tok == NULL)
		return;
	CHECK_EQ_INT(sg_p11_find_key(g_tok, "p256", NULL, 0, &g_p256), 0);
}

/* The size query through the module's own table: no count, no slot; the
 * signature that follows counts once. */
static void
test_size_query(void)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_LABEL, (void *)"p256", 4 },
	};
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	CK_FUNCTION_LIST *f = NULL;
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	CK_OBJECT_HANDLE key;
	CK_SLOT_ID slot;
	CK_ULONG n = 0, len = 0;
	uint8_t digest[32], sig[SG_MAX_SIG], der[SG_MAX_SIG];
	size_t derlen = 0;
	void *h;

	if (g_p256 == NULL || signatures_fn == NULL) {
		CHECK(!"no key");
		return;
	}
	if ((h = dlopen(wrapper, RTLD_NOW | RTLD_NOLOAD)) == NULL ||
	    sg_fx_p11_slot(h, LABEL, &f, &slot) != 0) {
		CHECK(!"the wrapper's slot");
		goto out;
	}
	CHECK(RAND_bytes(digest, sizeof(digest)) == 1);
	/* The layer logged in: a new session of the process is too. */
	CHECK_EQ_INT(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL,
	    &s), CKR_OK);
	CHECK_EQ_INT(f->C_FindObjectsInit(s, tmpl, 2), CKR_OK);
	CHECK_EQ_INT(f->C_FindObjects(s, &key, 1, &n), CKR_OK);
	CHECK_EQ_INT(f->C_FindObjectsFinal(s), CKR_OK);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(f->C_SignInit(s, &mech, key), CKR_OK);
	CHECK_EQ_INT(f->C_Sign(s, digest, sizeof(digest), NULL, &len),
	    CKR_OK);
	CHECK_EQ_INT(len, 64);
	CHECK_EQ_INT(signatures_fn(), 0);
	CHECK_EQ_INT(peak_fn(), 0);
	len = sizeof(sig);
	CHECK_EQ_INT(f->C_Sign(s, digest, sizeof(digest), sig, &len), CKR_OK);
	CHECK_EQ_INT(signatures_fn(), 1);
	CHECK_EQ_INT(peak_fn(), 1);
	/* PKCS#11 answers r || s; the verifier takes DER. */
	CHECK_EQ_INT(sg_ecdsa_raw_to_der(sig, len, der, sizeof(der), &derlen),
	    0);
	CHECK(sg_fx_verify(sg_p11_key_public(g_p256), SG_SIG_ECDSA,
	    SG_DIGEST_SHA256, digest, sizeof(digest), der, derlen, 0));
	CHECK_EQ_INT(f->C_CloseSession(s), CKR_OK);
 out:
	if (h != NULL)
		dlclose(h);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	uint8_t digest[32], sig[SG_MAX_SIG];
	size_t siglen = 0;

	if (RAND_bytes(digest, sizeof(digest)) != 1) {
		w->result = SG_ERR_INTERNAL;
		return NULL;
	}
	(void)pthread_barrier_wait(&start);
	w->result = sg_p11_sign(g_p256, SG_SIG_ECDSA, SG_DIGEST_SHA256,
	    digest, sizeof(digest), sig, sizeof(sig), &siglen);
	if (w->result == 0)
		w->signed_ok = sg_fx_verify(sg_p11_key_public(g_p256),
		    SG_SIG_ECDSA, SG_DIGEST_SHA256, digest, sizeof(digest),
		    sig, siglen, 0);
	return NULL;
}

/* n threads sign at once (released together by a barrier): every one
 * signs, and its signature verifies. */
static void
sign_at_once(struct worker *w, int n)
{
	int i, started, ok = 0, failed = 0;

	memset(w, 0, sizeof(*w) * (size_t)n);
	if (pthread_barrier_init(&start, NULL, (unsigned)n) != 0) {
		CHECK(!"pthread_barrier_init");
		return;
	}
	started = sg_fx_threads(n, worker_main, w, sizeof(w[0]), 0, NULL);
	pthread_barrier_destroy(&start);
	CHECK_EQ_INT(started, n);
	for (i = 0; i < started; i++) {
		if (w[i].result != 0 && failed++ == 0)
			fprintf(stderr, "  thread %d: %s\n", i,
			    sg_strerror(w[i].result));
		ok += w[i].signed_ok;
	}
	CHECK_EQ_INT(failed, 0);
	CHECK_EQ_INT(ok, n);
}

/* 32 signatures from 32 threads at once, 8 in flight at most. */
static void
test_in_flight(void)
{
	struct worker w[NTHREADS];
	char *text = NULL;
	size_t len = 0;

	if (g_p256 == NULL || signatures_fn == NULL) {
		CHECK(!"no key");
		return;
	}
	sign_at_once(w, NTHREADS);
	CHECK_EQ_INT(signatures_fn(), NTHREADS + 1);
	CHECK_EQ_INT(peak_fn(), IN_FLIGHT);
	/* What another process would read. */
	CHECK_EQ_INT(sg_read_file(stats, 256, &text, &len), 0);
	if (text != NULL) {
		char want[64];

		snprintf(want, sizeof(want), "signatures %d peak %d\n",
		    NTHREADS + 1, IN_FLIGHT);
		CHECK_STR(text, want);
		free(text);
	}
}

/*
 * SoftHSM does not fill CK_TOKEN_INFO.ulSessionCount, but its handles are
 * small integers: count the live sessions on the slot by probing them
 * through the wrapper's table (the same SoftHSM instance as the layer's).
 */
static long
token_sessions(void)
{
	CK_FUNCTION_LIST *f = NULL;
	CK_SLOT_ID slot = 0;
	CK_SESSION_HANDLE h;
	CK_SESSION_INFO si;
	long count = -1;
	void *dl;

	if ((dl = dlopen(wrapper, RTLD_NOW | RTLD_NOLOAD)) == NULL)
		return -1;
	if (sg_fx_p11_slot(dl, LABEL, &f, &slot) != 0)
		goto out;
	count = 0;
	for (h = 1; h <= 65536; h++)
		if (f->C_GetSessionInfo(h, &si) == CKR_OK &&
		    si.slotID == slot)
			count++;
out:
	dlclose(dl);
	return count;
}

/*
 * 80 callers at once, each in C_Sign for at least the device's latency and
 * 8 at a time: the rest wait for the device holding their session, so the
 * pool fills up to its bound, and the callers beyond it wait for a
 * session rather than open one.  Idle sessions are never closed, so the
 * count afterwards is the most the pool ever held.
 */
static void
test_pool_bound(void)
{
	struct worker w[POOL_THREADS];
	long sessions;

	if (g_p256 == NULL) {
		CHECK(!"no key");
		return;
	}
	sign_at_once(w, POOL_THREADS);
	sessions = token_sessions();
	fprintf(stderr, "  %d concurrent callers used %ld sessions\n",
	    POOL_THREADS, sessions);
	CHECK(sessions <= POOL_LIMIT);
	/* Otherwise this test did not test the bound. */
	CHECK(sessions > POOL_LIMIT / 2);
}

static void
test_teardown(void)
{
	sg_p11_free(g_p11);
	g_p11 = NULL;
	g_tok = NULL;
	g_p256 = NULL;
	CHECK_EQ_INT(sg_fx_rm_tree(tmpdir), 0);
}

SG_TEST_MAIN("p11net",
    T(test_setup),
    T(test_size_query),
    T(test_in_flight),
    T(test_pool_bound),
    T(test_teardown))
