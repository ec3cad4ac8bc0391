/*
 * What `signgate log` shares between src/cli_log.c (the JSON API's
 * /v1/log/ endpoints, `log key` and `log checkpoint`) and
 * src/cli_log_monitor.c (`log monitor`).  Every function that talks to a
 * server reports its failures on stderr and returns an exit status.
 */
#ifndef CLI_LOG_INT_H
#define CLI_LOG_INT_H

#include <stddef.h>
#include <stdint.h>

#include "sg_cli.h"
#include "sg_merkle.h"
#include "sg_monitor.h"
#include "sg_note.h"

/* A log verifier key, its text and its parts. */
struct sg_log_vkey {
	char text[SG_MONITOR_VKEY_MAX + 1];
	char name[SG_NOTE_NAME_MAX + 1];
	uint32_t id;
	uint8_t pub[SG_ED25519_PUB];
};

int sg_log_vkey_set(struct sg_log_vkey *k, const char *s, size_t len);
/* "signgate: log monitor: WHAT: ..." and that the state file was not
 * changed, on stderr; returns SG_EXIT_VERIFY. */
int sg_log_alarm(const char *what, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* GET /v1/log/key. */
int sg_log_api_vkey(struct sg_cli_http *h, struct sg_log_vkey *ret);
/* GET /v1/log/checkpoint, its signature verified with k when k is not
 * NULL (an alarm otherwise); the note in *ret_note when not NULL. */
int sg_log_api_checkpoint(struct sg_cli_http *h, const struct sg_log_vkey *k,
    struct sg_cli_http_resp *ret_note, struct sg_checkpoint *ret_cp);
/* The consistency proof from (old_size, old_root) to cp; FORK when it
 * does not verify.  old_size > 0 and < cp->size. */
int sg_log_api_consistency(struct sg_cli_http *h, uint64_t old_size,
    const uint8_t old_root[SG_HASH_LEN], const struct sg_checkpoint *cp);

/* sg_monitor_get_fn over GET /v1/log/entries/N and its inclusion proof
 * under cp (ctx: this). */
struct sg_log_api_src {
	struct sg_cli_http *h;
	const struct sg_checkpoint *cp;
};
int sg_log_api_entry(void *ctx, uint64_t index, char **ret, size_t *ret_len);

/* `signgate log monitor` (argv[0] is "monitor"). */
int sg_cli_log_monitor(int argc, char **argv, struct sg_cli_conf *conf);

#endif
