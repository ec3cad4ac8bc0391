/*
 * bench_log: inclusion and consistency proof time, and process memory, as
 * the transparency log grows.  Builds a log of N entries in a fresh store
 * (through the same store, group-commit writer and tlog code the daemon
 * uses; checkpoints are signed with an in-process Ed25519 key, since the
 * HSM is not what is measured here), then times proofs for random indexes.
 *
 *   bench_log DIR N [SAMPLES]
 *
 * Prints human lines and, last, one "RESULT" line of key=value pairs for
 * scripts (scripts/bench.sh): entries, append_s, rss_kib_half,
 * rss_kib_end, inclusion_p50_us, inclusion_p99_us, inclusion_max_us,
 * consistency_p50_us, consistency_p99_us.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "sg_err.h"
#include "sg_fixture.h"
#include "sg_merkle.h"
#include "sg_note.h"
#include "sg_store.h"
#include "sg_tlog.h"
#include "sg_util.h"

#define BATCH 20000

#define ORIGIN "bench.example/log"

/* The log is filled with "expired" entries of made-up requests (the
 * checkpoints' in-process signing is not what is measured). */
static int
fill_entry(uint64_t i, char *buf, size_t cap)
{
	return snprintf(buf, cap, "signgate-log-entry v1\ntype expired\n"
	    "time %llu\nrequest %032llx\n",
	    (unsigned long long)(1700000000 + i), (unsigned long long)i);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long
rss_kib(void)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return v;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	uint8_t hashes[SG_MERKLE_MAX_PROOF][SG_HASH_LEN];
	size_t n, i, samples = 2000;
	struct sg_fx_log l;
	struct sg_txn *t = NULL;
	uint64_t total, done, size, v;
	double t0, t1, *times, append_s, incl[3];
	long rss_mid = 0, rss_end;
	char *note = NULL;

	if (argc < 3 || sg_parse_u64(argv[2], 1, 100000000, &total) != 0) {
		fprintf(stderr, "usage: bench_log DIR N [SAMPLES]\n");
		return 2;
	}
	if (argc > 3) {
		if (sg_parse_u64(argv[3], 100, 1000000, &v) != 0) {
			fprintf(stderr, "bench_log: SAMPLES must be 100 to "
			    "1000000\n");
			return 2;
		}
		samples = (size_t)v;
	}
	if (sg_fx_log_open(&l, argv[1], ORIGIN) != 0)
		return 1;
	t0 = now_s();
	for (done = 0; done < total; done += BATCH) {
		if (sg_fx_log_append(&l, done, done + BATCH < total ?
		    done + BATCH : total, fill_entry) != 0) {
			fprintf(stderr, "bench_log: append failed\n");
			return 1;
		}
		if (done <= total / 2 && total / 2 < done + BATCH)
			rss_mid = rss_kib();
	}
	t1 = now_s();
	append_s = t1 - t0;
	rss_end = rss_kib();
	printf("log entries: %llu appended in %.1f s (%.0f/s, batches of %d)\n",
	    (unsigned long long)total, append_s, total / append_s, BATCH);
	printf("memory: VmRSS %ld KiB at half, %ld KiB at the end\n", rss_mid,
	    rss_end);

	if ((times = calloc(samples, sizeof(*times))) == NULL ||
	    sg_store_read_begin(l.st, &t) != 0 ||
	    sg_tlog_checkpoint(t, &note, &size) != 0)
		return 1;
	srand(42);
	for (i = 0; i < samples; i++) {
		uint64_t idx = ((uint64_t)rand() << 31 ^ (uint64_t)rand()) %
		    size;
		t0 = now_s();
		if (sg_tlog_inclusion(t, idx, size, hashes,
		    SG_MERKLE_MAX_PROOF, &n) != 0)
			return 1;
		times[i] = now_s() - t0;
	}
	qsort(times, samples, sizeof(*times), cmp_double);
	incl[0] = times[samples / 2] * 1e6;
	incl[1] = times[samples * 99 / 100] * 1e6;
	incl[2] = times[samples - 1] * 1e6;
	printf("inclusion proof at size %llu: p50 %.1f us, p99 %.1f us, "
	    "max %.1f us (%zu samples, %zu hashes)\n",
	    (unsigned long long)size, incl[0], incl[1], incl[2], samples, n);
	for (i = 0; i < samples; i++) {
		uint64_t old = 1 + ((uint64_t)rand() << 31 ^ (uint64_t)rand()) %
		    size;
		t0 = now_s();
		if (sg_tlog_consistency(t, old, size, hashes,
		    SG_MERKLE_MAX_PROOF, &n) != 0)
			return 1;
		times[i] = now_s() - t0;
	}
	qsort(times, samples, sizeof(*times), cmp_double);
	printf("consistency proof to size %llu: p50 %.1f us, p99 %.1f us\n",
	    (unsigned long long)size, times[samples / 2] * 1e6,
	    times[samples * 99 / 100] * 1e6);
	printf("RESULT mode=log entries=%llu append_s=%.1f rss_kib_half=%ld "
	    "rss_kib_end=%ld inclusion_p50_us=%.1f inclusion_p99_us=%.1f "
	    "inclusion_max_us=%.1f consistency_p50_us=%.1f "
	    "consistency_p99_us=%.1f\n", (unsigned long long)size, append_s,
	    rss_mid, rss_end, incl[0], incl[1], incl[2],
	    times[samples / 2] * 1e6, times[samples * 99 / 100] * 1e6);
	free(note);
	free(times);
	sg_store_read_end(t);
	sg_fx_log_close(&l);
	return 0;
}
