/*
 * p11bench: the raw in-process signing rate of one PKCS#11 key, the
 * denominator of the gateway's throughput target (docs/BENCHMARKS.md).
 *
 *   p11bench [-m MODULE] [-t TOKEN] [-p PIN_FILE] [-k KEY] [-T THREADS]
 *            [-s SECONDS] [-d DEADLINE_MS] [-b BATCH]
 *
 * Loads the module, logs in to the token with the PIN file's PIN, finds
 * the key by label and has THREADS threads call sg_p11_sign (ECDSA over a
 * SHA-256 digest, RSA PKCS#1 v1.5, or Ed25519 over a 32-byte message, by
 * key type) back to back for
 * SECONDS.  Each thread signs its own distinct digests.  The first
 * signature of every thread, and every 1000th after it, is verified
 * against the key's public half, so that a module answering garbage
 * cannot look fast.
 *
 * The deadline is the layer's own (sg_p11_set_deadline): 0 signs on the
 * calling thread, which is the plain C_SignInit + C_Sign rate; the
 * daemon's default (5000 ms) hands every call to a worker thread, and the
 * difference between the two is that hand-over's cost.  -b BATCH (2 to
 * SG_P11_MANY_MAX) calls sg_p11_sign_many with BATCH digests instead: one
 * hand-over per batch, as the signer signs a release's artifacts.  SOFTHSM2_CONF
 * must be set for SoftHSM (var/dev/env.sh).
 *
 * The module can be any PKCS#11 module (-m), e.g. tests/p11wrap/p11net.so
 * for a network HSM's latency: each thread borrows a session of its own
 * from the layer's pool, so THREADS signatures can be in flight at once.
 *
 * Prints one human line and one "RESULT" line of key=value pairs for
 * scripts, with the process's CPU time (user + system, getrusage) over the
 * measured interval and per signature: run alone, that is what one
 * C_SignInit + C_Sign costs in CPU.  Bounded: at most 64 threads and 600 seconds.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_p11.h"
#include "sg_util.h"

#define MAX_THREADS 64
#define MAX_SECONDS 600
#define VERIFY_EVERY 1000

struct worker {
	pthread_t tid;
	unsigned idx;
	struct sg_p11_key *key;
	enum sg_sig_scheme scheme;
	EVP_PKEY *pub;
	int64_t end_us;
	uint64_t count;
	uint64_t verified;
	uint64_t errors;
	int first_error;
	size_t batch;                  /* 1: sg_p11_sign */
};

static atomic_int go;

/* Item i of round `count` of thread idx: its own digest. */
static void
bench_digest(unsigned idx, uint64_t count, uint8_t digest[32])
{
	char seed[64];

	snprintf(seed, sizeof(seed), "p11bench %u %llu", idx,
	    (unsigned long long)count);
	sg_sha256(seed, strlen(seed), digest);
}

/* Notes an error of w's. */
static void
bench_error(struct worker *w, int r)
{
	if (w->errors++ == 0)
		w->first_error = r;
}

/* Batches of w->batch digests through sg_p11_sign_many; the first
 * signature of every batch whose count crosses VERIFY_EVERY is verified. */
static void
run_batches(struct worker *w, enum sg_digest_alg dalg)
{
	static const size_t cap = SG_MAX_SIG;
	struct sg_p11_item items[SG_P11_MANY_MAX];
	uint8_t digest[SG_P11_MANY_MAX][32];
	uint8_t *sigs;
	size_t i;

	if ((sigs = malloc(SG_P11_MANY_MAX * cap)) == NULL) {
		bench_error(w, SG_ERR_NOMEM);
		return;
	}
	while (sg_mono_us() < w->end_us) {
		memset(items, 0, sizeof(items));
		for (i = 0; i < w->batch; i++) {
			bench_digest(w->idx, w->count + i, digest[i]);
			items[i].data = digest[i];
			items[i].data_len = sizeof(digest[i]);
			items[i].sig = sigs + i * cap;
			items[i].cap = cap;
		}
		(void)sg_p11_sign_many(w->key, w->scheme, dalg, items,
		    w->batch);
		for (i = 0; i < w->batch; i++) {
			if (items[i].status != 0) {
				bench_error(w, items[i].status);
				continue;
			}
			if (w->count % VERIFY_EVERY == 0) {
				if (sg_verify(w->pub, w->scheme, dalg,
				    digest[i], sizeof(digest[i]), items[i].sig,
				    items[i].sig_len) != 0) {
					bench_error(w, SG_ERR_VERIFY);
					continue;
				}
				w->verified++;
			}
			w->count++;
		}
	}
	free(sigs);
}

static void *
run_worker(void *arg)
{
	struct worker *w = arg;
	/* Ed25519 signs the message itself: a 32-byte one here. */
	enum sg_digest_alg dalg = w->scheme == SG_SIG_EDDSA ?
	    SG_DIGEST_NONE : SG_DIGEST_SHA256;
	uint8_t digest[32], sig[SG_MAX_SIG];
	size_t siglen;
	int r;

	while (!atomic_load(&go))
		usleep(100);
	if (w->batch > 1) {
		run_batches(w, dalg);
		return NULL;
	}
	while (sg_mono_us() < w->end_us) {
		bench_digest(w->idx, w->count, digest);
		r = sg_p11_sign(w->key, w->scheme, dalg, digest,
		    sizeof(digest), sig, sizeof(sig), &siglen);
		if (r != 0) {
			bench_error(w, r);
			continue;
		}
		if (w->count % VERIFY_EVERY == 0) {
			if (sg_verify(w->pub, w->scheme, dalg,
			    digest, sizeof(digest), sig, siglen) != 0) {
				bench_error(w, SG_ERR_VERIFY);
				continue;
			}
			w->verified++;
		}
		w->count++;
	}
	return NULL;
}

/* The process's CPU time so far (user + system), in seconds. */
static double
cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void
usage(void)
{
	fprintf(stderr, "usage: p11bench [-m module] [-t token] [-p pin_file] "
	    "[-k key] [-T threads] [-s seconds] [-d deadline_ms] [-b batch]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *module = "/usr/lib/softhsm/libsofthsm2.so";
	const char *token = "signgate-dev", *pin_file = NULL, *label = "nightly";
	struct worker w[MAX_THREADS];
	struct sg_p11 *p = NULL;
	struct sg_p11_token *tok = NULL;
	struct sg_p11_key *key = NULL;
	enum sg_sig_scheme scheme;
	uint64_t threads = 1, seconds = 5, deadline = 0, batch = 1;
	uint64_t total = 0, verified = 0, errors = 0;
	int64_t t0, t1;
	double cpu0, cpu1;
	char *pin = NULL;
	size_t pin_len = 0, i, started = 0;
	int ch, r, rc = 1, first_error = 0;

	while ((ch = getopt(argc, argv, "m:t:p:k:T:s:d:b:")) != -1) {
		switch (ch) {
		case 'm': module = optarg; break;
		case 't': token = optarg; break;
		case 'p': pin_file = optarg; break;
		case 'k': label = optarg; break;
		case 'T':
			if (sg_parse_u64(optarg, 1, MAX_THREADS, &threads) != 0)
				usage();
			break;
		case 's':
			if (sg_parse_u64(optarg, 1, MAX_SECONDS, &seconds) != 0)
				usage();
			break;
		case 'd':
			if (sg_parse_u64(optarg, 0, 600000, &deadline) != 0)
				usage();
			break;
		case 'b':
			if (sg_parse_u64(optarg, 1, SG_P11_MANY_MAX,
			    &batch) != 0)
				usage();
			break;
		default:
			usage();
		}
	}
	if (optind != argc || pin_file == NULL)
		usage();

	if ((r = sg_read_secret_file(pin_file, &pin, &pin_len)) != 0) {
		fprintf(stderr, "p11bench: %s: %s\n", pin_file, sg_strerror(r));
		goto out;
	}
	if ((r = sg_p11_load(module, &p)) != 0 ||
	    (r = sg_p11_set_deadline(p, (unsigned)deadline)) != 0 ||
	    (r = sg_p11_open_token(p, token, pin, pin_len, &tok)) != 0 ||
	    (r = sg_p11_find_key(tok, label, NULL, 0, &key)) != 0) {
		fprintf(stderr, "p11bench: %s/%s: %s (%s)\n", token, label,
		    sg_strerror(r), sg_p11_rv_name(sg_p11_last_rv()));
		goto out;
	}
	sg_freezero(pin, pin_len);
	pin = NULL;
	switch (sg_p11_key_alg(key)) {
	case SG_ALG_ECDSA_P256:
	case SG_ALG_ECDSA_P384:
		scheme = SG_SIG_ECDSA;
		break;
	case SG_ALG_RSA:
		scheme = SG_SIG_RSA_PKCS1;
		break;
	case SG_ALG_ED25519:
		scheme = SG_SIG_EDDSA;
		break;
	default:
		fprintf(stderr, "p11bench: %s: unsupported key type\n",
		    label);
		goto out;
	}

	memset(w, 0, sizeof(w));
	atomic_store(&go, 0);
	for (i = 0; i < threads; i++) {
		w[i].idx = (unsigned)i;
		w[i].key = key;
		w[i].scheme = scheme;
		w[i].pub = sg_p11_key_public(key);
		w[i].end_us = INT64_MAX;
		w[i].batch = (size_t)batch;
		if (pthread_create(&w[i].tid, NULL, run_worker, &w[i]) != 0) {
			fprintf(stderr, "p11bench: pthread_create failed\n");
			break;
		}
		started++;
	}
	/* Every thread gets the same end time, set before they start. */
	cpu0 = cpu_seconds();
	t0 = sg_mono_us();
	for (i = 0; i < started; i++)
		w[i].end_us = t0 + (int64_t)seconds * 1000000;
	atomic_store(&go, 1);
	for (i = 0; i < started; i++) {
		pthread_join(w[i].tid, NULL);
		total += w[i].count;
		verified += w[i].verified;
		if (w[i].errors > 0 && errors == 0)
			first_error = w[i].first_error;
		errors += w[i].errors;
	}
	t1 = sg_mono_us();
	cpu1 = cpu_seconds();
	if (started != threads)
		goto out;

	printf("p11bench: %s/%s %s, %llu threads, batch %llu, deadline %llu ms: "
	    "%llu signatures in %.2f s = %.0f/s, CPU %.2f s (%.0f us each; "
	    "%llu verified, %llu errors%s%s)\n",
	    token, label, scheme == SG_SIG_ECDSA ? "ECDSA SHA-256" :
	    scheme == SG_SIG_EDDSA ? "Ed25519" : "RSA PKCS#1 SHA-256",
	    (unsigned long long)threads, (unsigned long long)batch,
	    (unsigned long long)deadline, (unsigned long long)total,
	    (t1 - t0) / 1e6, total / ((t1 - t0) / 1e6), cpu1 - cpu0,
	    total > 0 ? (cpu1 - cpu0) / total * 1e6 : 0,
	    (unsigned long long)verified, (unsigned long long)errors,
	    errors > 0 ? ", first: " : "",
	    errors > 0 ? sg_strerror(first_error) : "");
	printf("RESULT mode=p11 threads=%llu batch=%llu deadline_ms=%llu "
	    "signatures=%llu errors=%llu seconds=%.3f rate=%.1f cpu_s=%.3f "
	    "cpu_us_per_sig=%.1f\n",
	    (unsigned long long)threads, (unsigned long long)batch,
	    (unsigned long long)deadline, (unsigned long long)total,
	    (unsigned long long)errors, (t1 - t0) / 1e6,
	    total / ((t1 - t0) / 1e6), cpu1 - cpu0,
	    total > 0 ? (cpu1 - cpu0) / total * 1e6 : 0);
	rc = errors == 0 && total > 0 ? 0 : 1;
 out:
	if (pin != NULL)
		sg_freezero(pin, pin_len);
	/* Keys and tokens belong to the module handle. */
	sg_p11_free(p);
	return rc;
}
