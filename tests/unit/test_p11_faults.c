/*
 * HSM failures and recovery in the PKCS#11 layer.  The layer loads
 * p11fault.so (tests/p11wrap/p11fault.c), which forwards to SoftHSM with a
 * throwaway token from p11_fixture.sh and fails the calls a control file
 * names.  For every code a token answers when it is reset, removed or
 * broken, on every call of the signing and re-open paths, this checks that
 * one failure is recovered within the call (and the signature verifies,
 * with OpenSSL directly), that a lasting failure gives a clean error and
 * the layer comes back by itself once it ends, that a hanging call returns
 * SG_ERR_TIMEOUT at the deadline, and that a token whose files vanish and
 * come back is used again without reloading anything.  Each test also
 * asks the fault module how many faults it injected, so that "recovered"
 * can never mean "never failed".
 */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <p11-kit/pkcs11.h>

#include "sg_err.h"
#include "sg_p11.h"
#include "sg_util.h"
#include "sg_test.h"
#include "sg_fixture.h"

#define REAL_MODULE SG_FX_SOFTHSM_MODULE
#define LABEL "sg-test-faults"
#define NTHREADS 4
#define PER_THREAD 60

SG_FX_SOFTHSM_SANITIZER_DEFAULTS

static char tmpdir[PATH_MAX];
static char control[PATH_MAX + 16];
static char wrapper[PATH_MAX];
static struct sg_p11 *g_p11;
static struct sg_p11_token *g_tok;
static struct sg_p11_key *g_p256, *g_ed, *g_rsa;
static unsigned long (*fired_fn)(const char *);
static unsigned long (*hanging_fn)(void);

/* The calls of the signing and re-open paths, and what a reset, removed
 * or broken token answers. */
static const char *const functions[] = {
	"C_Sign", "C_SignInit", "C_OpenSession", "C_Login", "C_FindObjectsInit",
};
static const struct {
	const char *name;
	CK_RV rv;
} codes[] = {
	{ "CKR_SESSION_HANDLE_INVALID", CKR_SESSION_HANDLE_INVALID },
	{ "CKR_SESSION_CLOSED", CKR_SESSION_CLOSED },
	{ "CKR_DEVICE_REMOVED", CKR_DEVICE_REMOVED },
	{ "CKR_DEVICE_ERROR", CKR_DEVICE_ERROR },
	{ "CKR_TOKEN_NOT_PRESENT", CKR_TOKEN_NOT_PRESENT },
	{ "CKR_USER_NOT_LOGGED_IN", CKR_USER_NOT_LOGGED_IN },
};
#define NFUNCS (sizeof(functions) / sizeof(functions[0]))
#define NCODES (sizeof(codes) / sizeof(codes[0]))

/* ---- helpers ---- */

static double
now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int
wrapper_path(char *out, size_t cap)
{
	const char *env = getenv("SG_TEST_P11FAULT");

	if (env != NULL) {
		snprintf(out, cap, "%s", env);
		return access(out, R_OK) == 0 ? 0 : -1;
	}
	return sg_fx_build_file("p11wrap/p11fault.so", R_OK, out, cap);
}

/* Runs a shell command built from paths that hold no quote. */
static int
shell(const char *cmd)
{
	return system(cmd) == 0 ? 0 : -1;
}

/*
 * The token's files vanish at once: its directory is renamed away (rm -rf
 * could race with SoftHSM re-creating lock files, and leave half a token).
 */
static int
token_files_gone(void)
{
	static int n;
	char cmd[5 * PATH_MAX];

	n++;
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s/gone.%d' && "
	    "mv '%s/fx/tokens'/*/ '%s/gone.%d/'", tmpdir, n, tmpdir, tmpdir, n);
	return shell(cmd);
}

/* A fresh copy of the token's files appears at once. */
static int
token_files_back(void)
{
	char cmd[6 * PATH_MAX];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s/stage' && "
	    "cp -a '%s/tokens.orig' '%s/stage' && "
	    "mv '%s/stage'/*/ '%s/fx/tokens/'", tmpdir, tmpdir, tmpdir, tmpdir,
	    tmpdir);
	return shell(cmd);
}

static int
make_token(void)
{
	char fx[PATH_MAX + 8], cmd[3 * PATH_MAX];

	if (sg_fx_tmpdir("p11-faults", tmpdir, sizeof(tmpdir)) != 0)
		return -1;
	snprintf(fx, sizeof(fx), "%s/fx", tmpdir);
	if (sg_fx_p11_token(fx, LABEL) != 0)
		return -1;
	/* A pristine copy of the token files, to put back after a reset. */
	snprintf(cmd, sizeof(cmd), "cp -a '%s/fx/tokens' '%s/tokens.orig'",
	    tmpdir, tmpdir);
	return shell(cmd);
}

/* Replaces the control file at once (a new inode: the module always sees
 * the change, and never half of it). */
static int
rules(const char *text)
{
	char tmp[PATH_MAX + 32];
	FILE *fp;
	int ok;

	snprintf(tmp, sizeof(tmp), "%s.new", control);
	if ((fp = fopen(tmp, "w")) == NULL)
		return -1;
	ok = fputs(text, fp) >= 0;
	ok = fclose(fp) == 0 && ok;
	if (!ok || rename(tmp, control) != 0)
		return -1;
	return 0;
}

static unsigned long
fired(const char *fn)
{
	return fired_fn == NULL ? 0 : fired_fn(fn);
}

/* Waits (at most 5 s) until no call sleeps in a hang any more, so that
 * such a call cannot take the rules armed for the next test. */
static int
hangs_over(void)
{
	int i;

	for (i = 0; i < 500; i++) {
		if (hanging_fn == NULL || hanging_fn() == 0)
			return 1;
		sleep_ms(10);
	}
	return 0;
}

/* Which key signs in round i: all three mechanisms take turns. */
static struct sg_p11_key *
key_for(size_t i, enum sg_sig_scheme *scheme, enum sg_digest_alg *da)
{
	switch (i % 3) {
	case 0:
		*scheme = SG_SIG_ECDSA;
		*da = SG_DIGEST_SHA256;
		return g_p256;
	case 1:
		*scheme = SG_SIG_EDDSA;
		*da = SG_DIGEST_NONE;
		return g_ed;
	default:
		*scheme = SG_SIG_RSA_PSS;
		*da = SG_DIGEST_SHA384;
		return g_rsa;
	}
}

/* Signs fresh random data; returns the layer's answer and, on success,
 * whether OpenSSL accepts the signature (-1 if not). */
static int
sign_check(size_t round)
{
	enum sg_sig_scheme scheme;
	enum sg_digest_alg da;
	struct sg_p11_key *k = key_for(round, &scheme, &da);
	uint8_t data[48], sig[SG_MAX_SIG];
	size_t len = da == SG_DIGEST_SHA384 ? 48 : 32, siglen = 0;
	int r;

	if (k == NULL || RAND_bytes(data, (int)len) != 1)
		return SG_ERR_INTERNAL;
	r = sg_p11_sign(k, scheme, da, data, len, sig, sizeof(sig), &siglen);
	if (r != 0)
		return r;
	return sg_fx_verify(sg_p11_key_public(k), scheme, da, data, len, sig,
	    siglen, RSA_PSS_SALTLEN_DIGEST) ? 0 : -1;
}

/* A batch for sg_p11_sign_many: the items and the memory they point
 * into (the caller's, which an abandoned batch must never touch). */
struct many {
	struct sg_p11_item it[SG_P11_MANY_MAX];
	uint8_t data[SG_P11_MANY_MAX][32];
	uint8_t sig[SG_P11_MANY_MAX][SG_MAX_SIG];
};
static struct many g_many;

#define CANARY 0xa5

/* n fresh ECDSA P-256 digests signed in one batch; every signature
 * buffer starts as CANARY bytes. */
static int
many_sign(struct many *m, size_t n)
{
	size_t i;

	memset(m, 0, sizeof(*m));
	memset(m->sig, CANARY, sizeof(m->sig));
	if (g_p256 == NULL || RAND_bytes(&m->data[0][0],
	    (int)sizeof(m->data)) != 1)
		return SG_ERR_INTERNAL;
	for (i = 0; i < n; i++) {
		m->it[i].data = m->data[i];
		m->it[i].data_len = sizeof(m->data[i]);
		m->it[i].sig = m->sig[i];
		m->it[i].cap = sizeof(m->sig[i]);
		m->it[i].status = 12345;
	}
	return sg_p11_sign_many(g_p256, SG_SIG_ECDSA, SG_DIGEST_SHA256, m->it,
	    n);
}

/* How many of the first n items were signed and verify with OpenSSL;
 * -1 if a signed one does not verify. */
static int
many_good(const struct many *m, size_t n)
{
	size_t i;
	int good = 0;

	for (i = 0; i < n; i++) {
		if (m->it[i].status != 0)
			continue;
		if (!sg_fx_verify(sg_p11_key_public(g_p256), SG_SIG_ECDSA,
		    SG_DIGEST_SHA256, m->data[i], sizeof(m->data[i]),
		    m->sig[i], m->it[i].sig_len, 0))
			return -1;
		good++;
	}
	return good;
}

/* Whether item i's signature buffer still holds nothing but CANARY. */
static int
many_untouched(const struct many *m, size_t i)
{
	size_t j;

	for (j = 0; j < sizeof(m->sig[i]); j++)
		if (m->sig[i][j] != CANARY)
			return 0;
	return 1;
}

/* The calls only recovery makes need a first fault that starts one. */
static int
needs_trigger(const char *fn)
{
	return strcmp(fn, "C_Sign") != 0 && strcmp(fn, "C_SignInit") != 0;
}

#define TRIGGER "C_Sign CKR_SESSION_HANDLE_INVALID count 1\n"

/* ---- tests ---- */

static void
test_setup(void)
{
	char *pin = NULL;
	size_t pin_len = 0;
	char path[PATH_MAX + 32];
	void *h;

	if (make_token() != 0) {
		CHECK(!"the SoftHSM fixture could not be built");
		return;
	}
	if (wrapper_path(wrapper, sizeof(wrapper)) != 0) {
		CHECK(!"p11fault.so not built (make unit builds it)");
		return;
	}
	snprintf(control, sizeof(control), "%s/control", tmpdir);
	setenv("SG_P11FAULT_MODULE", REAL_MODULE, 1);
	setenv("SG_P11FAULT_CONTROL", control, 1);
	CHECK_EQ_INT(rules(""), 0);

	/* The deadline comes from the environment, else 5 s. */
	setenv("SG_P11_DEADLINE_MS", "2500", 1);
	CHECK_EQ_INT(sg_p11_load(wrapper, &g_p11), 0);
	unsetenv("SG_P11_DEADLINE_MS");
	if (g_p11 == NULL)
		return;
	CHECK_EQ_INT(sg_p11_deadline(g_p11), 2500);
	CHECK_EQ_INT(sg_p11_set_deadline(g_p11, 600001), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_p11_set_deadline(g_p11, 5000), 0);
	CHECK_EQ_INT(sg_p11_deadline(g_p11), 5000);

	/* The layer loaded the wrapper: ask it what it injected. */
	if ((h = dlopen(wrapper, RTLD_NOW | RTLD_NOLOAD)) != NULL) {
		fired_fn = (unsigned long (*)(const char *))dlsym(h,
		    "p11fault_fired");
		hanging_fn = (unsigned long (*)(void))dlsym(h,
		    "p11fault_hanging");
		dlclose(h);
	}
	CHECK(fired_fn != NULL && hanging_fn != NULL);

	snprintf(path, sizeof(path), "%s/fx/user.pin", tmpdir);
	CHECK_EQ_INT(sg_read_secret_file(path, &pin, &pin_len), 0);
	CHECK_EQ_INT(sg_p11_open_token(g_p11, LABEL, pin, pin_len, &g_tok), 0);
	sg_freezero(pin, pin_len + 1);
	if (g_tok == NULL)
		return;
	CHECK_EQ_INT(sg_p11_find_key(g_tok, "p256", NULL, 0, &g_p256), 0);
	CHECK_EQ_INT(sg_p11_find_key(g_tok, "ed25519", NULL, 0, &g_ed), 0);
	CHECK_EQ_INT(sg_p11_find_key(g_tok, "rsa2048", NULL, 0, &g_rsa), 0);
	CHECK(sg_p11_key_token(g_p256) == g_tok);
	CHECK_EQ_INT(sg_p11_token_healthy(g_tok), 1);
	CHECK_EQ_INT(sign_check(0), 0);
	CHECK_EQ_INT(sign_check(1), 0);
	CHECK_EQ_INT(sign_check(2), 0);
	CHECK_EQ_INT(fired(NULL), 0);
}

/* The control file itself: hex codes, re-arming, malformed files. */
static void
test_control_file(void)
{
	unsigned long before;

	if (g_tok == NULL) {
		CHECK(!"no token");
		return;
	}
	/* 0x30 is CKR_DEVICE_ERROR; one failure, recovered. */
	before = fired("C_Sign");
	CHECK_EQ_INT(rules("# a comment\n\nC_Sign 0x30 count 1\n"), 0);
	CHECK_EQ_INT(sign_check(0), 0);
	CHECK_EQ_INT(fired("C_Sign"), before + 1);
	CHECK_STR(sg_p11_rv_name(sg_p11_last_rv()), "CKR_DEVICE_ERROR");
	/* The count is used up... */
	CHECK_EQ_INT(sign_check(0), 0);
	CHECK_EQ_INT(fired("C_Sign"), before + 1);
	CHECK_STR(sg_p11_rv_name(sg_p11_last_rv()), "CKR_OK");
	/* ...and writing the same rule again arms it again. */
	CHECK_EQ_INT(rules("# a comment\n\nC_Sign 0x30 count 1\n"), 0);
	CHECK_EQ_INT(sign_check(0), 0);
	CHECK_EQ_INT(fired("C_Sign"), before + 2);
	/* A file with a bad line is ignored as a whole. */
	CHECK_EQ_INT(rules("C_Sign CKR_DEVICE_ERROR always\nC_Sign CKR_NOPE\n"),
	    0);
	CHECK_EQ_INT(sign_check(1), 0);
	CHECK_EQ_INT(rules("C_Sign CKR_DEVICE_ERROR always\nC_Nope CKR_OK\n"),
	    0);
	CHECK_EQ_INT(sign_check(1), 0);
	CHECK_EQ_INT(fired("C_Sign"), before + 2);
	CHECK_EQ_INT(rules(""), 0);
}

/* One failure of any call on the way: the call itself recovers. */
static void
test_one_failure(void)
{
	char text[256];
	size_t f, c, round = 0;
	unsigned long before;
	int r;

	if (g_tok == NULL) {
		CHECK(!"no token");
		return;
	}
	for (f = 0; f < NFUNCS; f++) {
		for (c = 0; c < NCODES; c++, round++) {
			snprintf(text, sizeof(text), "%s%s %s count 1\n",
			    needs_trigger(functions[f]) ? TRIGGER : "",
			    functions[f], codes[c].name);
			CHECK_EQ_INT(rules(text), 0);
			before = fired(functions[f]);
			r = sign_check(round);
			if (r != 0)
				fprintf(stderr, "  %s %s count 1: %s\n",
				    functions[f], codes[c].name,
				    sg_strerror(r));
			CHECK_EQ_INT(r, 0);
			/* It failed, and the call got over it. */
			CHECK_EQ_INT(fired(functions[f]), before + 1);
			CHECK_EQ_INT(sg_p11_last_rv(), codes[c].rv);
			CHECK_EQ_INT(sg_p11_token_healthy(g_tok), 1);
		}
	}
	CHECK_EQ_INT(rules(""), 0);
	CHECK_EQ_INT(sign_check(0), 0);
	CHECK_EQ_INT(sg_p11_last_rv(), CKR_OK);
}

/* A failure that lasts: clean errors, then recovery once it ends. */
static void
test_lasting_failure(void)
{
	char text[256];
	size_t f, c, round = 0;
	unsigned long before;
	int r, r2;

	if (g_tok == NULL) {
		CHECK(!"no token");
		return;
	}
	for (f = 0; f < NFUNCS; f++) {
		for (c = 0; c < NCODES; c++, round++) {
			snprintf(text, sizeof(text), "%s%s %s always\n",
			    needs_trigger(functions[f]) ? TRIGGER : "",
			    functions[f], codes[c].name);
			CHECK_EQ_INT(rules(text), 0);
			before = fired(functions[f]);
			r = sign_check(round);
			/* The next call tries again, and fails cleanly too. */
			r2 = sign_check(round);
			if (r != SG_ERR_UNAVAILABLE || r2 != SG_ERR_UNAVAILABLE)
				fprintf(stderr, "  %s %s always: %s, then %s\n",
				    functions[f], codes[c].name,
				    sg_strerror(r), sg_strerror(r2));
			CHECK_EQ_INT(r, SG_ERR_UNAVAILABLE);
			CHECK_EQ_INT(r2, SG_ERR_UNAVAILABLE);
			CHECK(fired(functions[f]) >= before + 2);
			CHECK_EQ_INT(sg_p11_token_healthy(g_tok), 0);
			/* The device is back: no reload, no restart. */
			CHECK_EQ_INT(rules(""), 0);
			before = fired(NULL);
			r = sign_check(round + 1);
			if (r != 0)
				fprintf(stderr, "  %s %s: not back: %s\n",
				    functions[f], codes[c].name, sg_strerror(r));
			CHECK_EQ_INT(r, 0);
			CHECK_EQ_INT(fired(NULL), before);
			CHECK_EQ_INT(sg_p11_token_healthy(g_tok), 1);
		}
	}
}

/* A C_Sign that never returns: SG_ERR_TIMEOUT at the deadline. */
static void
test_hang_sign(void)
{
	unsigned long before;
	double t0, dt;
	int r;

	if (g_tok == NULL) {
		CHECK(!"no token");
		return;
	}
	CHECK_EQ_INT(sg_p11_set_deadline(g_p11, 1000), 0);
	before = fired("C_Sign");
	CHECK_EQ_INT(rules("C_Sign hang 10000\n"), 0);
	t0 = now_sec();
	r = sign_check(0);
	dt = now_sec() - t0;
	fprintf(stderr, "  hung C_Sign: %s after %.2f s\n", sg_strerror(r), dt);
	CHECK_EQ_INT(r, SG_ERR_TIMEOUT);
	CHECK(dt >= 0.95 && dt < 2.5);
	CHECK_EQ_INT(fired("C_Sign"), before + 1);
	CHECK_EQ_INT(sg_p11_token_healthy(g_tok), 0);
	/* The device answers again; the next call works, without waiting
	 * for the abandoned one (still asleep until it sees the rule go). */
	CHECK_EQ_INT(sg_p11_set_deadline(g_p11, 5000), 0);
	CHECK_EQ_INT(rules(""), 0);
	t0 = now_sec();
	CHECK_EQ_INT(sign_check(1), 0);
	CHECK(now_sec() - t0 < 3.0);
	CHECK_EQ_INT(sg_p11_token_healthy(g_tok), 1);
	CHECK_EQ_INT(sign_check(2), 0);
	/* The abandoned call wakes up once the hang rule is gone. */
	CHECK(hangs_over());
}

/* The re-open path has the same deadline. */
static void
test_hang_reopen(void)
{
	unsigned long before;
	double t0, dt;
	int r;

	if (g_tok == NULL) {
		CHECK(!"no token");
		return;
	}
	CHECK_EQ_INT(sg_p11_set_deadline(g_p11, 1000), 0);
	before = fired("C_OpenSession");
	CHECK_EQ_INT(rules(TRIGGER "C_OpenSession hang 10000\n"), 0);
	t0 = now_sec();
	r = sign_check(0);
	dt = now_sec() - t0;
	fprintf(stderr, "  hung C_OpenSession: %s after %.2f s\n",
	    sg_strerror(r), dt);
	CHECK_EQ_INT(r, SG_ERR_TIMEOUT);
	CHECK(dt >= 0.95 && dt < 2.5);
	CHECK_EQ_INT(fired("C_OpenSession"), before + 1);
	CHECK_EQ_INT(sg_p11_set_deadline(g_p11, 5000), 0);
	CHECK_EQ_INT(rules(""), 0);
	CHECK_EQ_INT(sign_check(0), 0);
	CHECK_EQ_INT(sg_p11_token_healthy(g_tok), 1);
	CHECK(hangs_over());
}

/*
 * Calls stuck in the module are bounded: past a limit (16), new calls
 * fail at once instead of tying up another thread each.  They all come
 * back when the device does.  (A slow machine may time a call out before
 * it reaches the hang; such a call does not stay stuck, so the bound may
 * be reached a little later.)
 */
static void
test_stuck_bound(void)
{
	int i, timeouts = 0, refused = 0, other = 0, r;
	double t0, dt;

	if (g_tok == NULL) {
		CHECK(!"no token");
		return;
	}
	CHECK_EQ_INT(sg_p11_set_deadline(g_p11, 150), 0);
	CHECK_EQ_INT(rules("C_Sign hang 20000\n"), 0);
	for (i = 0; i < 40; i++) {
		t0 = now_sec();
		r = sign_check((size_t)i);
		dt = now_sec() - t0;
		if (r == SG_ERR_TIMEOUT)
			timeouts++;
		else if (r == SG_ERR_UNAVAILABLE && dt < 0.1)
			refused++;
		else
			other++;
		/* Before the bound, every call times out. */
		if (i < 16 && r != SG_ERR_TIMEOUT)
			fprintf(stderr, "  call %d: %s\n", i, sg_strerror(r));
	}
	fprintf(stderr, "  40 calls on a hung token: %d timed out, %d refused "
	    "at once\n", timeouts, refused);
	CHECK(timeouts >= 16);
	CHECK(refused >= 1);
	CHECK_EQ_INT(timeouts + refused, 40);
	CHECK_EQ_INT(other, 0);
	CHECK_EQ_INT(sg_p11_set_deadline(g_p11, 5000), 0);
	CHECK_EQ_INT(rules(""), 0);
	CHECK(hangs_over());
	/* The stuck calls return (the hang ends with the rule) and their
	 * workers are free again. */
	r = -1;
	for (i = 0; i < 50 && r != 0; i++) {
		if ((r = sign_check((size_t)i)) != 0)
			sleep_ms(100);
	}
	CHECK_EQ_INT(r, 0);
	for (i = 0; i < 30; i++)
		if (sign_check((size_t)i) != 0)
			other++;
	CHECK_EQ_INT(other, 0);
}

/* A batch whose sixth signature meets a dead session: that item
 * recovers (new session, login, retry) like a single call, and the batch
 * goes on. */
static void
test_many_one_failure(void)
{
	unsigned long before = fired("C_Sign");

	CHECK_EQ_INT(rules("C_Sign CKR_DEVICE_ERROR after 5 count 1\n"), 0);
	CHECK_EQ_INT(many_sign(&g_many, 10), 0);
	CHECK_EQ_INT(fired("C_Sign"), before + 1);
	CHECK_EQ_INT(many_good(&g_many, 10), 10);
	CHECK_EQ_INT(sg_p11_token_healthy(g_tok), 1);
	CHECK_EQ_INT(rules(""), 0);
}

/* A failure that lasts from the sixth signature on: the five before it
 * are good, the sixth fails after its one recovery, the rest are not
 * attempted; then the token comes back. */
static void
test_many_failure_mid(void)
{
	size_t i;

	CHECK_EQ_INT(rules("C_Sign CKR_DEVICE_ERROR after 5 always\n"), 0);
	CHECK_EQ_INT(many_sign(&g_many, 10), SG_ERR_UNAVAILABLE);
	CHECK_EQ_INT(many_good(&g_many, 10), 5);
	for (i = 0; i < 5; i++)
		CHECK_EQ_INT(g_many.it[i].status, 0);
	CHECK_EQ_INT(g_many.it[5].status, SG_ERR_UNAVAILABLE);
	for (i = 6; i < 10; i++) {
		CHECK_EQ_INT(g_many.it[i].status, SG_ERR_BUFFER);
		CHECK_EQ_INT(g_many.it[i].sig_len, 0);
		CHECK(many_untouched(&g_many, i));
	}
	CHECK_EQ_INT(sg_p11_token_healthy(g_tok), 0);
	/* An error the layer does not recover from, in the middle. */
	CHECK_EQ_INT(rules("C_Sign CKR_FUNCTION_FAILED after 2 count 1\n"), 0);
	CHECK(many_sign(&g_many, 6) != 0);
	CHECK_EQ_INT(many_good(&g_many, 6), 2);
	CHECK(g_many.it[2].status != 0 && g_many.it[2].status != SG_ERR_BUFFER);
	for (i = 3; i < 6; i++)
		CHECK_EQ_INT(g_many.it[i].status, SG_ERR_BUFFER);
	CHECK_EQ_INT(rules(""), 0);
	CHECK_EQ_INT(many_sign(&g_many, 10), 0);
	CHECK_EQ_INT(many_good(&g_many, 10), 10);
	CHECK_EQ_INT(sg_p11_token_healthy(g_tok), 1);
}

/*
 * The device hangs in the middle of a batch: the caller gets
 * SG_ERR_TIMEOUT at the batch's deadline (the per-call one plus at most
 * 250 ms per further item) and no signature; the abandoned worker, which
 * finishes the batch once the device answers, never writes into the
 * caller's buffers; the token is marked broken and later calls work.
 */
static void
test_many_hang(void)
{
	double t0, dt;
	size_t i;
	int r;

	CHECK_EQ_INT(sg_p11_set_deadline(g_p11, 300), 0);
	CHECK_EQ_INT(rules("C_Sign hang 10000 after 3 count 1\n"), 0);
	t0 = now_sec();
	r = many_sign(&g_many, 8);
	dt = now_sec() - t0;
	fprintf(stderr, "  batch of 8 hung at its fourth: %s after %.2f s\n",
	    sg_strerror(r), dt);
	CHECK_EQ_INT(r, SG_ERR_TIMEOUT);
	/* 300 ms + 7 * 250 ms. */
	CHECK(dt >= 2.0 && dt < 3.5);
	CHECK_EQ_INT(g_many.it[0].status, SG_ERR_TIMEOUT);
	for (i = 1; i < 8; i++)
		CHECK_EQ_INT(g_many.it[i].status, SG_ERR_BUFFER);
	CHECK_EQ_INT(sg_p11_token_healthy(g_tok), 0);
	/* The device answers again; the worker finishes the batch (its
	 * own copy) and the caller's memory stays as it was. */
	CHECK_EQ_INT(rules(""), 0);
	CHECK(hangs_over());
	sleep_ms(200);
	for (i = 0; i < 8; i++) {
		CHECK_EQ_INT(g_many.it[i].sig_len, 0);
		CHECK(many_untouched(&g_many, i));
	}
	CHECK_EQ_INT(sg_p11_set_deadline(g_p11, 5000), 0);
	CHECK_EQ_INT(many_sign(&g_many, 8), 0);
	CHECK_EQ_INT(many_good(&g_many, 8), 8);
	CHECK_EQ_INT(sg_p11_token_healthy(g_tok), 1);
	CHECK_EQ_INT(sign_check(0), 0);
	/* One item: the per-call deadline, nothing added. */
	CHECK_EQ_INT(sg_p11_set_deadline(g_p11, 300), 0);
	CHECK_EQ_INT(rules("C_Sign hang 10000 count 1\n"), 0);
	t0 = now_sec();
	CHECK_EQ_INT(many_sign(&g_many, 1), SG_ERR_TIMEOUT);
	dt = now_sec() - t0;
	CHECK(dt >= 0.28 && dt < 1.5);
	CHECK_EQ_INT(rules(""), 0);
	CHECK(hangs_over());
	CHECK_EQ_INT(sg_p11_set_deadline(g_p11, 5000), 0);
	CHECK_EQ_INT(many_sign(&g_many, SG_P11_MANY_MAX), 0);
	CHECK_EQ_INT(many_good(&g_many, SG_P11_MANY_MAX), SG_P11_MANY_MAX);
}

/* Sessions closed behind the layer's back (a token reset): recovered. */
static void
test_sessions_reset(void)
{
	CK_FUNCTION_LIST *f = NULL;
	CK_SLOT_ID slot = 0;
	void *dl;
	int found;

	if (g_tok == NULL) {
		CHECK(!"no token");
		return;
	}
	CHECK_EQ_INT(sign_check(0), 0);
	if ((dl = dlopen(REAL_MODULE, RTLD_NOW | RTLD_NOLOAD)) == NULL) {
		CHECK(!"SoftHSM is not loaded");
		return;
	}
	found = sg_fx_p11_slot(dl, LABEL, &f, &slot) == 0 &&
	    f->C_CloseAllSessions(slot) == CKR_OK;
	CHECK(found);
	dlclose(dl);
	/* Every key recovers, each on its first use. */
	CHECK_EQ_INT(sign_check(0), 0);
	CHECK(sg_p11_last_rv() != CKR_OK);
	CHECK_EQ_INT(sign_check(1), 0);
	CHECK_EQ_INT(sign_check(2), 0);
	CHECK_EQ_INT(sg_p11_token_healthy(g_tok), 1);
}

/*
 * The token's files vanish under the running module and come back (as
 * when an HSM is re-initialised from a backup).  SoftHSM gives such a
 * token up until it is initialised again: the layer must do that itself.
 */
static void
test_token_files_replaced(void)
{
	int r;

	if (g_tok == NULL) {
		CHECK(!"no token");
		return;
	}
	CHECK_EQ_INT(sg_p11_set_deadline(g_p11, 5000), 0);
	CHECK_EQ_INT(sign_check(0), 0);
	CHECK_EQ_INT(token_files_gone(), 0);
	r = sign_check(0);
	fprintf(stderr, "  token files gone: %s (%s)\n", sg_strerror(r),
	    sg_p11_rv_name(sg_p11_last_rv()));
	CHECK_EQ_INT(r, SG_ERR_UNAVAILABLE);
	CHECK_EQ_INT(sg_p11_token_healthy(g_tok), 0);
	CHECK_EQ_INT(token_files_back(), 0);
	/* Re-initialisations are spaced out; let the last one age. */
	sleep_ms(1100);
	r = sign_check(0);
	fprintf(stderr, "  token files back: %s\n", sg_strerror(r));
	CHECK_EQ_INT(r, 0);
	CHECK_EQ_INT(sg_p11_token_healthy(g_tok), 1);
	CHECK_EQ_INT(sign_check(1), 0);
	CHECK_EQ_INT(sign_check(2), 0);
}

struct loader {
	atomic_int *stop;
	int ok, unavailable, timeout, bad;
};

static void *
loader_main(void *arg)
{
	struct loader *l = arg;
	size_t i;
	int r;

	for (i = 0; !atomic_load(l->stop) && i < 100000; i++) {
		r = sign_check(i);
		if (r == 0)
			l->ok++;
		else if (r == SG_ERR_UNAVAILABLE)
			l->unavailable++;
		else if (r == SG_ERR_TIMEOUT)
			l->timeout++;
		else {
			fprintf(stderr, "  under load: %s\n", sg_strerror(r));
			l->bad++;
		}
		if (r != 0)
			sleep_ms(20);
	}
	return NULL;
}

/*
 * The token's files vanish and come back three times while four threads
 * keep signing: nothing but verified signatures and clean errors, no call
 * stuck, and signing comes back each time.
 */
static void
test_reset_under_load(void)
{
	pthread_t th[NTHREADS];
	struct loader l[NTHREADS];
	atomic_int stop;
	int i, cycle, started = 0, ok = 0, bad = 0, unavail = 0, timeout = 0;
	int r;

	if (g_tok == NULL) {
		CHECK(!"no token");
		return;
	}
	CHECK_EQ_INT(sg_p11_set_deadline(g_p11, 5000), 0);
	atomic_init(&stop, 0);
	memset(l, 0, sizeof(l));
	for (i = 0; i < NTHREADS; i++) {
		l[i].stop = &stop;
		if (pthread_create(&th[i], NULL, loader_main, &l[i]) != 0)
			break;
		started++;
	}
	CHECK_EQ_INT(started, NTHREADS);
	for (cycle = 0; cycle < 3; cycle++) {
		sleep_ms(200);
		CHECK_EQ_INT(token_files_gone(), 0);
		sleep_ms(300);
		CHECK_EQ_INT(token_files_back(), 0);
		sleep_ms(1500);
	}
	atomic_store(&stop, 1);
	for (i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		ok += l[i].ok;
		unavail += l[i].unavailable;
		timeout += l[i].timeout;
		bad += l[i].bad;
	}
	fprintf(stderr, "  3 resets under %d signing threads: %d verified, %d "
	    "unavailable, %d timed out\n", NTHREADS, ok, unavail, timeout);
	CHECK_EQ_INT(bad, 0);
	CHECK(ok > 0);
	/* Back for good, without reloading anything. */
	r = -1;
	for (i = 0; i < 25 && r != 0; i++)
		if ((r = sign_check((size_t)i)) != 0)
			sleep_ms(200);
	CHECK_EQ_INT(r, 0);
	CHECK_EQ_INT(sign_check(0), 0);
	CHECK_EQ_INT(sign_check(1), 0);
	CHECK_EQ_INT(sign_check(2), 0);
	CHECK_EQ_INT(sg_p11_token_healthy(g_tok), 1);
}

struct worker {
	int ok, unavailable, bad;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	size_t i;
	int r;

	for (i = 0; i < PER_THREAD; i++) {
		r = sign_check(i);
		if (r == 0)
			w->ok++;
		else if (r == SG_ERR_UNAVAILABLE)
			w->unavailable++;
		else {
			fprintf(stderr, "  concurrent: %s\n", sg_strerror(r));
			w->bad++;
		}
	}
	return NULL;
}

/* Faults under concurrent signing: every answer is a signature that
 * verifies or a clean SG_ERR_UNAVAILABLE. */
static void
test_concurrent_faults(void)
{
	struct worker w[NTHREADS];
	int i, started, ok = 0, unavailable = 0, bad = 0;
	unsigned long before;

	if (g_tok == NULL) {
		CHECK(!"no token");
		return;
	}
	before = fired(NULL);
	CHECK_EQ_INT(rules("C_Sign CKR_DEVICE_ERROR count 15\n"
	    "C_SignInit CKR_SESSION_HANDLE_INVALID count 10\n"
	    "C_Sign CKR_USER_NOT_LOGGED_IN count 10\n"
	    "C_OpenSession CKR_TOKEN_NOT_PRESENT count 3\n"
	    "C_Login CKR_DEVICE_REMOVED count 3\n"
	    "C_FindObjectsInit CKR_DEVICE_ERROR count 3\n"), 0);
	memset(w, 0, sizeof(w));
	started = sg_fx_threads(NTHREADS, worker_main, w, sizeof(w[0]), 0,
	    NULL);
	CHECK_EQ_INT(started, NTHREADS);
	for (i = 0; i < started; i++) {
		ok += w[i].ok;
		unavailable += w[i].unavailable;
		bad += w[i].bad;
	}
	fprintf(stderr, "  %d threads x %d signatures, %lu faults: %d "
	    "verified, %d unavailable\n", NTHREADS, PER_THREAD,
	    fired(NULL) - before, ok, unavailable);
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(ok + unavailable, NTHREADS * PER_THREAD);
	/* Every fault was met... */
	CHECK_EQ_INT(fired(NULL) - before, 44);
	/* ...and a call fails only on a second fault (its own, or that of
	 * the call that marked the token broken). */
	CHECK(unavailable <= 44);
	CHECK(ok >= NTHREADS * PER_THREAD - 44);
	CHECK_EQ_INT(rules(""), 0);
	CHECK_EQ_INT(sign_check(0), 0);
	CHECK_EQ_INT(sign_check(1), 0);
	CHECK_EQ_INT(sign_check(2), 0);
	CHECK_EQ_INT(sg_p11_token_healthy(g_tok), 1);
}

static void
test_teardown(void)
{
	double t0 = now_sec();

	sg_p11_free(g_p11);
	/* Nothing was left stuck in the module. */
	CHECK(now_sec() - t0 < 2.0);
	g_p11 = NULL;
	g_tok = NULL;
	g_p256 = g_ed = g_rsa = NULL;
	CHECK_EQ_INT(sg_fx_rm_tree(tmpdir), 0);
}

SG_TEST_MAIN("p11_faults",
    T(test_setup),
    T(test_control_file),
    T(test_one_failure),
    T(test_lasting_failure),
    T(test_hang_sign),
    T(test_hang_reopen),
    T(test_stuck_bound),
    T(test_many_one_failure),
    T(test_many_failure_mid),
    T(test_many_hang),
    T(test_sessions_reset),
    T(test_token_files_replaced),
    T(test_reset_under_load),
    T(test_concurrent_faults),
    T(test_teardown))
