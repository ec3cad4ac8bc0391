/*
 * log_fill: a fresh store holding a log of N entries, made in a second,
 * for tests that need a log of thousands of entries without making
 * thousands of requests (tests/integration/77-tiles.sh).  The entries go
 * through the same store, writer and log code the gateway uses; their
 * checkpoints are signed with a throwaway key, and the gateway started on
 * the store afterwards has its own signer sign the tree (a new signer
 * state takes the stored tree on first use) and serves that checkpoint.
 *
 *   log_fill DIR N
 *
 * Entries are "expired" and "failed" entries of a made-up request each;
 * every seventh is a "failed" one whose reason runs to a few hundred
 * bytes, so that entry lengths take both bytes of a bundle's prefix.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "sg_err.h"
#include "sg_fixture.h"
#include "sg_note.h"
#include "sg_store.h"
#include "sg_tlog.h"
#include "sg_util.h"

#define ORIGIN "log-fill.invalid/throwaway"
#define BATCH 5000

static EVP_PKEY *logkey;

static int
sign_cb(void *ctx, const struct sg_witness_request *req,
    struct sg_witness_reply *ret)
{
	(void)ctx;
	return sg_fx_log_sign(logkey, ORIGIN, req, ret);
}

struct fill {
	struct sg_tlog *log;
	uint64_t from, to;
};

static int
job_fill(struct sg_txn *t, void *arg)
{
	struct fill *f = arg;
	char entry[1024], reason[700];
	uint64_t i, idx;
	size_t k, rlen;
	int n, r;

	for (i = f->from; i < f->to; i++) {
		if (i % 7 == 3) {
			rlen = 200 + (size_t)(i * 37 % 480);
			for (k = 0; k < rlen; k++)
				reason[k] = (char)('a' + (i + k) % 26);
			reason[rlen] = '\0';
			n = snprintf(entry, sizeof(entry), "signgate-log-entry "
			    "v1\ntype failed\ntime %llu\nrequest %032llx\n"
			    "reason %s\n", (unsigned long long)(1700000000 + i),
			    (unsigned long long)i, reason);
		} else
			n = snprintf(entry, sizeof(entry), "signgate-log-entry "
			    "v1\ntype expired\ntime %llu\nrequest %032llx\n",
			    (unsigned long long)(1700000000 + i),
			    (unsigned long long)i);
		if (n < 0 || (size_t)n >= sizeof(entry))
			return SG_ERR_INTERNAL;
		if ((r = sg_tlog_append(f->log, t, entry, (size_t)n,
		    &idx)) != 0)
			return r;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	uint8_t pub[SG_ED25519_PUB];
	size_t publen = sizeof(pub);
	struct sg_store *st = NULL;
	struct sg_tlog *log = NULL;
	uint64_t total, done;
	char err[256];
	int r;

	if (argc != 3 || sg_parse_u64(argv[2], 1, 10000000, &total) != 0) {
		fprintf(stderr, "usage: log_fill DIR N\n");
		return 2;
	}
	if ((logkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL ||
	    EVP_PKEY_get_raw_public_key(logkey, pub, &publen) != 1)
		return 1;
	if (sg_store_open(argv[1], &st) != 0 ||
	    sg_tlog_open(st, ORIGIN, pub, sign_cb, NULL, &log, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "log_fill: cannot open the store in %s\n",
		    argv[1]);
		return 1;
	}
	for (done = 0; done < total; done += BATCH) {
		struct fill f = { log, done, done + BATCH < total ?
		    done + BATCH : total };
		if ((r = sg_store_write(st, job_fill, &f)) != 0) {
			fprintf(stderr, "log_fill: append failed: %s\n",
			    sg_strerror(r));
			return 1;
		}
	}
	sg_store_close(st);
	sg_tlog_free(log);
	EVP_PKEY_free(logkey);
	printf("log_fill: %llu entries in %s\n", (unsigned long long)total,
	    argv[1]);
	return 0;
}
