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

#include "sg_err.h"
#include "sg_fixture.h"
#include "sg_util.h"

#define ORIGIN "log-fill.invalid/throwaway"
#define BATCH 5000

/* Entry i: "expired", or every seventh "failed" with a long reason. */
static int
fill_entry(uint64_t i, char *buf, size_t cap)
{
	char reason[700];
	size_t k, rlen;

	if (i % 7 != 3)
		return snprintf(buf, cap, "signgate-log-entry v1\ntype expired"
		    "\ntime %llu\nrequest %032llx\n",
		    (unsigned long long)(1700000000 + i), (unsigned long long)i);
	rlen = 200 + (size_t)(i * 37 % 480);
	for (k = 0; k < rlen; k++)
		reason[k] = (char)('a' + (i + k) % 26);
	reason[rlen] = '\0';
	return snprintf(buf, cap, "signgate-log-entry v1\ntype failed\ntime "
	    "%llu\nrequest %032llx\nreason %s\n",
	    (unsigned long long)(1700000000 + i), (unsigned long long)i, reason);
}

int
main(int argc, char **argv)
{
	struct sg_fx_log l;
	uint64_t total, done;
	int r;

	if (argc != 3 || sg_parse_u64(argv[2], 1, 10000000, &total) != 0) {
		fprintf(stderr, "usage: log_fill DIR N\n");
		return 2;
	}
	if (sg_fx_log_open(&l, argv[1], ORIGIN) != 0)
		return 1;
	for (done = 0; done < total; done += BATCH) {
		if ((r = sg_fx_log_append(&l, done, done + BATCH < total ?
		    done + BATCH : total, fill_entry)) != 0) {
			fprintf(stderr, "log_fill: append failed: %s\n",
			    sg_strerror(r));
			return 1;
		}
	}
	sg_fx_log_close(&l);
	printf("log_fill: %llu entries in %s\n", (unsigned long long)total,
	    argv[1]);
	return 0;
}
