/*
 * `signgate log monitor`'s reading of the log (src/cli_monitor.c): the
 * state file, the walk over new entries, the rules that turn a signature
 * into a violation, and the Prometheus textfile (src/cli_monitor_files.c).
 * The checkpoint, its key and the consistency proof are
 * src/cli_log_monitor.c's; entries come through a callback that has
 * already proved each one included under the verified checkpoint.
 *
 * State file, version 2 (text, LF line ends, exactly these lines, in this
 * order; version 1 is its first four lines under the v1 header, and is
 * read as a state whose entries up to `size` were examined):
 *
 *     signgate-log-monitor v2
 *     key <verifier key>
 *     size <decimal>
 *     root <base64 of the 32-byte root hash>
 *     next <decimal>          entries [0, next) were examined
 *     success <unix seconds>  the last run that completed
 *     violations <decimal>    rule violations found since the state began
 *     pending <request id> <index> <expires>   (zero or more)
 *
 * A `pending` line remembers a request's `created` entry (its index and
 * the statement's expiry) until the request's signature, expiry, failure
 * or cancellation is read, so that a signature made runs after its
 * request was created still shows the artifact's name.
 */
#ifndef SG_MONITOR_H
#define SG_MONITOR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sg_limits.h"
#include "sg_merkle.h"
#include "sg_note.h"

/* The exit status of a run that found a rule violation (5 is the log's
 * misbehaviour, 4 the server, 1 a local error). */
#define SG_MONITOR_EXIT_RULE 6

#define SG_MONITOR_VKEY_MAX (SG_NOTE_NAME_MAX + 1 + 8 + 1 + 44)
/* Requests remembered between runs; past it the oldest are forgotten. */
#define SG_MONITOR_PENDING_MAX 4096
#define SG_MONITOR_STATE_MAX (4096 + SG_MONITOR_PENDING_MAX * 96)
/* --artifact-pattern given at most this many times. */
#define SG_MONITOR_PATTERNS_MAX 16

struct sg_monitor_pending {
	char request[SG_REQUEST_ID_SIZE];
	uint64_t index;
	int64_t expires;
};

struct sg_monitor_state {
	int version;                  /* as read: 1 or 2 */
	char vkey[SG_MONITOR_VKEY_MAX + 1];
	uint64_t size;
	uint8_t root[SG_HASH_LEN];
	uint64_t next;
	int64_t success;
	uint64_t violations;
	struct sg_monitor_pending *pending;   /* index ascending */
	size_t npending;
};

/* Strict parse of a v1 or v2 state; the key's text is not checked here. */
int sg_monitor_state_parse(const char *text, size_t len,
    struct sg_monitor_state *ret);
/* The v2 text (malloc'd). */
int sg_monitor_state_format(const struct sg_monitor_state *s, char **ret,
    size_t *ret_len);
void sg_monitor_state_clear(struct sg_monitor_state *s);

/* --hours HH-HH: UTC hours [start, end), wrapping midnight when
 * start > end ("22-06"); "00-24" is the whole day. */
struct sg_monitor_hours {
	int set;
	unsigned start;               /* 0..23 */
	unsigned end;                 /* 1..24, != start */
};
int sg_monitor_hours_parse(const char *s, struct sg_monitor_hours *ret);
/* 1 if unix time t falls inside the window (always, when not set). */
int sg_monitor_hours_contain(const struct sg_monitor_hours *h, int64_t t);

struct sg_monitor_rules {
	const char *patterns[SG_MONITOR_PATTERNS_MAX]; /* sg_pattern_valid */
	size_t npatterns;
	struct sg_monitor_hours hours;
	uint64_t max_per_run;         /* 0: no limit */
	int policy_changes_fail;
};

#define SG_MONITOR_BAD_NAME 0x1
#define SG_MONITOR_BAD_HOURS 0x2
/* The rules a signature at time t of artifact `name` (NULL when not
 * known: a pattern rule then fails) breaks, as SG_MONITOR_BAD_* bits. */
unsigned sg_monitor_check(const struct sg_monitor_rules *r, const char *name,
    int64_t t);

/*
 * Fetches entry `index`, proved included under the verified checkpoint;
 * the text (NUL-terminated, malloc'd) in *ret.  Returns an exit status
 * and has reported a failure itself.
 */
typedef int (*sg_monitor_get_fn)(void *ctx, uint64_t index, char **ret,
    size_t *ret_len);

struct sg_monitor_count {
	char key[SG_NAME_SIZE];
	uint64_t n;
};

struct sg_monitor_run {
	/* in */
	const char *key;              /* --key: its signatures are reported */
	const struct sg_monitor_rules *rules;
	sg_monitor_get_fn get;
	void *ctx;
	FILE *out;                    /* findings */
	/* out: what this run read */
	uint64_t entries;
	uint64_t signatures;          /* by run->key */
	uint64_t violations;
	uint64_t policy_changes;
	struct sg_monitor_count *counts;  /* signatures per key */
	size_t ncounts;
	/* the approved entry artifact-signatures point at, read once */
	uint64_t approved_index;
	char *approved;
	size_t approved_len;
	uint64_t first_sig, last_sig; /* of run->key, for --max-per-run */
};

/* Reads entries [from, to), updating st->pending; an exit status (0 also
 * when rules were broken: see run->violations). */
int sg_monitor_scan(struct sg_monitor_run *run, struct sg_monitor_state *st,
    uint64_t from, uint64_t to);
void sg_monitor_run_clear(struct sg_monitor_run *run);

/* --witness VKEY, at most this many; --witness-quorum K of them must have
 * cosigned the checkpoint (include/sg_cli_witness.h). */
#define SG_MONITOR_WITNESSES_MAX 16

/* What the Prometheus textfile says about a run. */
struct sg_monitor_metrics {
	int64_t now;
	int exit_status;
	int64_t last_success;         /* 0: never */
	uint64_t log_size;            /* the verified size, else the state's */
	uint64_t violations_total;
	const struct sg_monitor_run *run;   /* NULL when no entry was read */
	const char *key;
};
/* Written atomically (a temporary file renamed over FILE). */
int sg_monitor_prometheus_write(const char *path,
    const struct sg_monitor_metrics *m);

#endif
