/*
 * signgate-witness: a C2SP tlog-witness (c2sp.org/tlog-witness) that
 * cosigns the checkpoints of the logs it is configured for with
 * cosignature/v1 (sg_cosig.h), after checking that each one extends the
 * last it cosigned.
 *
 * This header has three parts: the request (the add-checkpoint body,
 * parsed strictly), the decision (pure: the log, its record and the
 * request in, an HTTP status and a reason out), and the configuration and
 * server (src/witnessd_config.c, src/witnessd_serve.c).
 */
#ifndef SG_WITNESSD_H
#define SG_WITNESSD_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "sg_merkle.h"
#include "sg_note.h"
#include "sg_witness.h"

/* The spec's bound on proof lines. */
#define SG_WD_PROOF_MAX 63
/* A body: the old line, 63 proof lines and a note; the HTTP front's own
 * limit (SG_HTTP_MAX_BODY) is the same. */
#define SG_WD_BODY_MAX (64 * 1024)
#define SG_WD_MAX_LOGS 64

/* The add-checkpoint body: "old <n>\n", proof lines, "\n", a signed note.
 * note points into the body it was parsed from. */
struct sg_wd_request {
	uint64_t old_size;
	uint8_t proof[SG_WD_PROOF_MAX][SG_HASH_LEN];
	size_t nproof;
	const char *note;
	size_t note_len;
	size_t text_len;               /* the checkpoint text, with its LF */
	struct sg_checkpoint cp;       /* the text, parsed */
};

/*
 * Parses an add-checkpoint body.  0, or SG_ERR_TOO_LARGE past
 * SG_WD_BODY_MAX, or SG_ERR_INVALID (err says what): a malformed old line
 * (decimal without leading zeroes), a proof line that is not the base64 of
 * 32 bytes, more than 63 of them, no blank line, a note that is not a
 * signed note, or checkpoint text that is not origin, size and root.
 */
int sg_wd_parse(const char *body, size_t len, struct sg_wd_request *ret,
    char *err, size_t errlen) __attribute__((warn_unused_result));

/* A log the witness cosigns: its origin and its key (the checkpoint's
 * signature line by name and key ID must verify with pub). */
struct sg_wd_log {
	char origin[SG_NOTE_NAME_MAX + 1];
	char key_name[SG_NOTE_NAME_MAX + 1];
	uint32_t key_id;
	uint8_t pub[SG_ED25519_PUB];
};

/*
 * The decision, pure.  log is the configured log of the request's origin
 * (NULL: unknown), rec the witness's record of it (present 0: never
 * cosigned).  Returns the HTTP status: 200 when the checkpoint is to be
 * cosigned (and become the record), 404 unknown log, 403 no valid
 * signature by its key, 400 old size above the checkpoint's or a proof
 * with old size 0, 409 old size not the recorded one or another root for
 * the recorded size (a fork), 422 a consistency proof that does not
 * verify.  err says why, in one line naming the sizes.
 */
int sg_wd_decide(const struct sg_wd_log *log,
    const struct sg_witness_record *rec, const struct sg_wd_request *req,
    char *err, size_t errlen);

/* ---- configuration ------------------------------------------------------ */

struct sg_wd_config {
	char *path;
	char *name;                    /* the witness's key name */
	char *listen_address;
	uint16_t port;
	int plain_http;
	char *tls_certificate, *tls_private_key;
	char *key_file;                /* Ed25519 private key, PEM, 0600 */
	/* or a key on a PKCS#11 token (key_file NULL) */
	char *p11_module, *p11_token, *p11_key, *p11_pin_file;
	char *state_dir;
	unsigned threads;
	struct sg_wd_log logs[SG_WD_MAX_LOGS];
	size_t nlogs;
};

/* Loads and checks the JSON configuration; errors name the file and the
 * field. */
int sg_wd_config_load(const char *path, struct sg_wd_config **ret,
    char *err, size_t errlen);
void sg_wd_config_free(struct sg_wd_config *c);

/* ---- the key (src/witnessd_key.c) ------------------------------------- */

/* The witness's private key: a PEM Ed25519 private key in a file of mode
 * 0600 owned by us (or root); the file's bytes are wiped after parsing. */
int sg_wd_load_key(const char *path, EVP_PKEY **ret, char *err,
    size_t errlen);

/* The cosigning key, from a file or a token. */
struct sg_wd_key;
/* Opens the configured key (key_file, or pkcs11: module, token, PIN file
 * of mode 0600, key label), with errors naming the field. */
int sg_wd_key_open(const struct sg_wd_config *cfg, struct sg_wd_key **ret,
    char *err, size_t errlen);
/* A key from an Ed25519 EVP_PKEY (a reference is taken). */
int sg_wd_key_from_pkey(EVP_PKEY *pkey, struct sg_wd_key **ret);
void sg_wd_key_public(const struct sg_wd_key *k,
    uint8_t pub[SG_ED25519_PUB]);
/* The cosignature line of the witness named name over text at time t. */
int sg_wd_key_cosign(struct sg_wd_key *k, const char *name,
    const char *text, size_t len, uint64_t t, char **ret);
void sg_wd_key_free(struct sg_wd_key *k);

/* ---- the server --------------------------------------------------------- */

struct sg_wd;

/* Opens the state: state_dir (created 0700 if missing; refused unless it
 * is ours and group and others cannot write it) and one record per log
 * in it.  Takes key, also on failure. */
int sg_wd_open(const struct sg_wd_config *cfg, struct sg_wd_key *key,
    struct sg_wd **ret, char *err, size_t errlen);
/* Starts serving POST /add-checkpoint on the configured listener. */
int sg_wd_listen(struct sg_wd *w, const struct sg_wd_config *cfg,
    char *err, size_t errlen);
uint16_t sg_wd_port(const struct sg_wd *w);
/* Stops the listener, then frees everything.  NULL is fine. */
void sg_wd_stop(struct sg_wd *w);

/*
 * One add-checkpoint request, as the HTTP handler runs it (exposed for
 * tests): parse, decide under the log's lock, record durably, cosign at
 * time now.  Returns the status; *ret_body (malloc'd) is the cosignature
 * line for 200, "<size>\n" for 409, a message otherwise; *ret_type its
 * content type.
 */
int sg_wd_handle(struct sg_wd *w, const char *body, size_t len, uint64_t now,
    char **ret_body, const char **ret_type);

#endif
