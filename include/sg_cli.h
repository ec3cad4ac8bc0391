/*
 * Internals of the `signgate` CLI, split into modules:
 *
 *   cli_usage.c     every help text, in one place (the documented contract
 *                   for scripts: output lines, files written, exit codes)
 *   cli_common.c    the option loop every command runs (sg_cli_getopt),
 *                   options and environment, escaping of server strings,
 *                   problem details, API calls turned into exit statuses,
 *                   request-object helpers
 *   cli_http.c      the libcurl client (mutual TLS, keep-alive, size cap)
 *   cli_check.c     local verification: key SPKI, returned signatures, CMS,
 *                   the statement against the request
 *   cli_tty.c       terminal prompts (PIN without echo, confirmation)
 *   cli_keys.c      `keys`
 *   cli_sign.c      `sign` (also `sign --grant`)
 *   cli_release.c   `release create`, and the pure pieces of releases the
 *                   other commands share (manifest, statement cross-checks)
 *   cli_grant.c     `grant request`, `grant revoke`
 *   cli_requests.c  `pending`, `show`, `cancel`
 *   cli_watch.c     `watch` (an officer's queue as it changes)
 *   cli_approve.c   `approve`, `reject`
 *   cli_verify.c    `verify` (offline: signature, log proof, approvals;
 *                   one bundle for a request, two for a release or grant)
 *   cli_log.c       `log key`, `log checkpoint`, and the JSON API's
 *                   /v1/log/ for `log monitor` (cli_log_int.h)
 *   cli_log_monitor.c  `log monitor`: key, checkpoint, witnesses,
 *                   consistency, from the API or tiles (--log), a run
 *   cli_monitor.c   the monitor's walk over entries: findings, rules,
 *                   policy changes (sg_monitor.h)
 *   cli_monitor_files.c  its state file and Prometheus textfile
 *   cli_policy.c    `policy check`, `policy hash` (offline)
 *
 * Two conventions meet here.  Helpers return 0 or a negative SG_ERR_* code
 * like the rest of the project.  Command-level functions (sg_cli_cmd_*,
 * sg_cli_api and the argument parsers) return an exit status SG_EXIT_*
 * instead, because the status is what the user sees and it is decided
 * where the failure is understood (a 4xx is not a local error).
 */
#ifndef SG_CLI_H
#define SG_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <getopt.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "sg_crypto.h"
#include "sg_dsse.h"
#include "sg_limits.h"
#include "sg_types.h"

enum {
	SG_EXIT_OK = 0,
	SG_EXIT_LOCAL = 1,       /* local error: file I/O, a check failed */
	SG_EXIT_USAGE = 2,
	SG_EXIT_REFUSED = 3,     /* the server refused (4xx) */
	SG_EXIT_SERVER = 4,      /* unreachable, TLS failure, 5xx, bad answer */
	SG_EXIT_VERIFY = 5,      /* a returned signature does not verify */
	SG_EXIT_NOT_SIGNED = 6,  /* rejected, expired, failed or cancelled */
	SG_EXIT_TIMEOUT = 7,     /* --wait passed */
};

#define SG_CLI_RESPONSE_MAX (8u * 1024 * 1024)
#define SG_CLI_DEFAULT_TIMEOUT 30
#define SG_CLI_MAX_TIMEOUT 3600
#define SG_CLI_POLL_WAIT 30          /* ?wait= of one long-poll */
#define SG_CLI_DEFAULT_MODULE "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"

/* Connection settings: options first, then the environment. */
struct sg_cli_conf {
	const char *url;
	const char *cert;
	const char *key;
	const char *cacert;
	uint64_t timeout;          /* seconds; 0 = not given */
	int verbose;
};

/* Long-option codes of the global options (accepted by every command). */
enum {
	SG_OPT_URL = 1000,
	SG_OPT_CERT,
	SG_OPT_KEY,
	SG_OPT_CACERT,
	SG_OPT_TIMEOUT,
	SG_OPT_HELP,
	SG_OPT_CMD = 1100,         /* first code free for commands */
};

#define SG_CLI_MAX_OPTIONS 40

/*
 * Fills out[] (cap entries including the terminator) with the command's own
 * options followed by every global option whose name the command does not
 * use itself (`sign --key` names the signing key, not the TLS key).
 */
int sg_cli_options(const struct option *own, struct option *out, size_t cap);
/* Handles a global option; SG_EXIT_USAGE on a bad value, 1 if `opt` is not
 * a global option. */
int sg_cli_global_option(struct sg_cli_conf *c, int opt, const char *arg);

/*
 * A command's own options: fn(arg, opt, val) returns 0 when it took the
 * option, an exit status when the value is wrong (its message printed), or
 * 1 when the option is not its own.
 */
typedef int (*sg_cli_opt_fn)(void *arg, int opt, const char *val);
struct sg_cli_cmdline {
	const char *cmd;             /* "see: signgate CMD --help" */
	const struct option *own;    /* NULL: global options only */
	const char *shortopts;       /* NULL: "hv" */
	sg_cli_opt_fn fn;            /* NULL: no own options */
	void *arg;
};
/*
 * The option loop of every command: own options to cl->fn, -h/--help to
 * *ret_help, the rest to sg_cli_global_option().  An unknown option or a
 * bad global value says "see: signgate CMD --help".  Returns an exit
 * status; on SG_EXIT_OK optind indexes the first operand.
 */
int sg_cli_getopt(int argc, char **argv, const struct sg_cli_cmdline *cl,
    struct sg_cli_conf *conf, int *ret_help);
/* An sg_cli_opt_fn for commands whose only own option is --json
 * (SG_OPT_CMD): sets *(int *)arg. */
int sg_cli_opt_json(void *arg, int opt, const char *val);
/* The one operand of `show ID` and `cancel ID`: the request ID, or NULL
 * after "signgate: usage: signgate CMD ID (…)REST" on stderr. */
const char *sg_cli_id_operand(int argc, char **argv, const char *cmd,
    const char *rest);
/* Fills what options left open from SIGNGATE_URL, SIGNGATE_CERT,
 * SIGNGATE_KEY, SIGNGATE_CACERT and the default timeout; checks the URL
 * (https://, or http:// to a loopback address only).  SG_EXIT_USAGE with a
 * message on stderr when something is missing or wrong. */
int sg_cli_conf_resolve(struct sg_cli_conf *c);

/* Escapes a server-provided string for the terminal (control and
 * non-ASCII bytes as \xNN).  Returns one of a few rotating static buffers:
 * valid until the 8th next call.  NULL prints as "-". */
const char *sg_cli_esc(const char *s);
/* A member's string value, or NULL when absent or not a string. */
const char *sg_cli_jstr(const json_t *obj, const char *name);
struct sg_cli_http_resp;
/* The request's state as the server wrote it; SG_REQ_NONE if missing or
 * not one. */
enum sg_req_state sg_cli_req_state(const json_t *req);
/* SG_EXIT_OK when req is the request `id`, else SG_EXIT_SERVER after
 * "the server answered with another request". */
int sg_cli_expect_request(const json_t *req, const char *id);
/* Writes a raw response body to stdout, ending in a newline (--json). */
void sg_cli_print_raw(const struct sg_cli_http_resp *r);
/* Each line of a list of disagreements as "signgate: error: LINE". */
void sg_cli_print_errors(const char *lines);
/* The exit status once stdout is flushed: a failed write turns success
 * into SG_EXIT_LOCAL. */
int sg_cli_flush(int ex);

/* Free text from the server (artifact values) for the terminal: allowed
 * text (sg_text.h) as it is, anything else escaped (sg_text_escape).
 * Rotating static buffers as for sg_cli_esc(). */
const char *sg_cli_text(const char *s);

struct sg_problem {
	long status;
	char title[128];
	char detail[512];
	char field[128];
};
/* Parses an application/problem+json body; absent members stay empty.
 * SG_ERR_INVALID when the body is not a JSON object. */
int sg_problem_parse(const char *body, size_t len, struct sg_problem *ret);
/* The exit status for an HTTP status of a completed exchange. */
int sg_cli_status_exit(long status);

/* "1 of 2 security-officers, 1 of 1 release-managers" or "none", from a
 * request's "required" array. */
void sg_cli_missing(const json_t *req, char *out, size_t cap);

/* The HTTP client (cli_http.c). */
struct sg_cli_http;
struct sg_cli_http_resp {
	long status;
	char *body;          /* NUL-terminated, malloc'd */
	size_t len;
	char content_type[128];
};
/* The gateway URL rule (https, or http to loopback only), shared by the
 * CLI and the PKCS#11 module. */
int sg_cli_url_ok(const char *url);
int sg_cli_http_new(const struct sg_cli_conf *c, struct sg_cli_http **ret);
void sg_cli_http_free(struct sg_cli_http *h);
/* One exchange.  0 when a response arrived (whatever its status);
 * SG_ERR_UNAVAILABLE (transport or TLS), SG_ERR_TIMEOUT or
 * SG_ERR_TOO_LARGE otherwise, with sg_cli_http_error() saying why.
 * extra_timeout adds to the configured timeout (long-polls). */
int sg_cli_http_request(struct sg_cli_http *h, const char *method, const char *path,
    const char *body, size_t body_len, const char *idempotency_key,
    long extra_timeout, struct sg_cli_http_resp *ret);
int sg_cli_http_request_ms(struct sg_cli_http *h, const char *method,
    const char *path, const char *body, size_t body_len,
    const char *idempotency_key, long total_ms, struct sg_cli_http_resp *ret);
const char *sg_cli_http_error(const struct sg_cli_http *h);
void sg_cli_http_resp_clear(struct sg_cli_http_resp *r);

/*
 * One API call, its outcome as an exit status, messages on stderr.  On
 * SG_EXIT_OK *ret_json holds the parsed 2xx body (a JSON object) and, when
 * ret_raw is not NULL, the raw response is handed over too.
 */
int sg_cli_api(struct sg_cli_http *h, const char *method, const char *path,
    const char *body, const char *idempotency_key, long extra_timeout,
    json_t **ret_json, struct sg_cli_http_resp *ret_raw);
/* Opens the HTTP client from a resolved configuration (exit status). */
int sg_cli_connect(struct sg_cli_conf *c, struct sg_cli_http **ret);

/* Local checks (cli_check.c). */

/* The key object named `name` in a GET /v1/keys document, or NULL. */
json_t *sg_cli_find_key(const json_t *keys_doc, const char *name);
/* Loads the key's public_key_pem and checks that its SPKI digest equals the
 * key's spki_sha256 member; the hex digest goes to ret_spki. */
int sg_cli_key_public(const json_t *key, EVP_PKEY **ret_pub,
    char ret_spki[SG_SHA256_HEX_SIZE], char *err, size_t errlen);
/*
 * Checks a signature object (GET …/signature) against what was asked
 * (key name, format, digest algorithm, LOCAL digest) and the key object
 * from /v1/keys: same key, same SPKI, scheme fits the key, the raw
 * signature verifies over the local digest, and for cms the CMS verifies
 * too (sg_cli_check_cms).  SG_ERR_VERIFY with a reason otherwise.  On
 * success the raw signature and, for cms, the DER CMS are returned.
 */
int sg_cli_check_signature(const json_t *sigobj, const json_t *key,
    const char *key_name, enum sg_format format, enum sg_digest_alg dalg,
    const uint8_t *digest, size_t dlen, uint8_t **ret_sig,
    size_t *ret_sig_len, uint8_t **ret_cms, size_t *ret_cms_len,
    char *err, size_t errlen);
/*
 * A detached CMS SignedData with exactly one signer: the signer's
 * certificate carries `pub`, the messageDigest attribute equals `digest`
 * (of dalg, the signer's digest algorithm), and the signature over the
 * signed attributes verifies.
 */
int sg_cli_check_cms(const uint8_t *der, size_t len, EVP_PKEY *pub,
    enum sg_digest_alg dalg, const uint8_t *digest, size_t dlen,
    char *err, size_t errlen);
/*
 * Parses a request's statement and checks that it agrees with the request
 * object (id, key, digest, format, requester, policy, expiry).  Every
 * disagreement is appended to err as a line; SG_ERR_VERIFY if any.
 */
int sg_cli_request_statement(const json_t *req, struct sg_statement *ret,
    char *err, size_t errlen);

/* Prints a request as `show` does; st is the parsed statement when it
 * agreed with the request (its SPKI digest is shown), else NULL. */
void sg_cli_print_request(const json_t *req, const struct sg_statement *st);
/* "statement:" and the statement's lines indented by two spaces,
 * escaped. */
void sg_cli_print_statement(const char *text);
/* `cancelled: by <who> at <time>: <reason>` when the request has a
 * "cancelled" member. */
void sg_cli_print_cancelled(const json_t *req);

/* Certificate subject (RFC 2253) and validity (RFC 3339) from a PEM. */
int sg_cli_cert_summary(const char *pem, size_t len, char *subject,
    size_t subject_cap, char not_before[32], char not_after[32]);
/* The CN of the first certificate in a PEM file ([A-Za-z0-9._-] only). */
int sg_cli_cert_cn(const char *path, char *out, size_t cap);

/* Officer signatures over SHA-256(PAE) (cli_approve.c). */
struct sg_cli_signer;
/* A PEM private key file (mode 0600; an encrypted one asks for its
 * passphrase on the terminal).  ECDSA and RSA (PKCS#1 v1.5) only. */
int sg_cli_signer_file(const char *path, struct sg_cli_signer **ret,
    char *err, size_t errlen);
int sg_cli_signer_pkcs11(const char *module, const char *uri,
    const char *pin_file, struct sg_cli_signer **ret, char *err,
    size_t errlen);
void sg_cli_signer_free(struct sg_cli_signer *s);
/*
 * Builds the body (statement + decision), signs SHA-256(PAE(type, body)),
 * verifies the signature with the public key, and returns the envelope
 * JSON for keyid.
 */
int sg_cli_approval_envelope(struct sg_cli_signer *s, const char *statement,
    size_t len, int approve, const char *keyid, char **ret_json,
    char *err, size_t errlen);
/* The same; a reject may sign a reason line (reason NULL: none). */
int sg_cli_approval_envelope_reason(struct sg_cli_signer *s,
    const char *statement, size_t len, int approve, const char *reason,
    const char *keyid, char **ret_json, char *err, size_t errlen);

/* Terminal prompts (cli_tty.c): read one line from /dev/tty into buf (cap
 * bytes incl. NUL; the caller wipes secrets), with or without echo.
 * SG_ERR_IO without a terminal, SG_ERR_TOO_LARGE for a longer line,
 * SG_ERR_INVALID when interrupted. */
int sg_cli_tty_read(const char *prompt, int echo, char *buf, size_t cap,
    size_t *ret_len);
/* 0 when the user answers y or yes. */
int sg_cli_tty_confirm(const char *prompt);

/* `sign` arguments, parsed without side effects (tested directly). */
struct sg_cli_sign_args {
	const char *key;
	const char *file;
	const char *out;              /* NULL: FILE.sig / FILE.p7s */
	const char *artifact_name;    /* NULL: basename(FILE) */
	const char *artifact_version;
	const char *meta[SG_ARTIFACT_FIELDS_MAX]; /* "k=v" */
	size_t nmeta;
	const char *idempotency_key;  /* NULL: generated */
	const char *grant;            /* --grant ID: sign under that grant */
	enum sg_digest_alg digest;
	enum sg_format format;
	int format_given;             /* --format was on the command line */
	uint64_t wait;
	int no_wait;
	int help;
};
int sg_cli_sign_parse(int argc, char **argv, struct sg_cli_conf *conf,
    struct sg_cli_sign_args *ret);
/* POSTs body to path with Idempotency-Key idem, again with the same key
 * after a connection error or a 5xx (up to 3 times); an exit status. */
int sg_cli_post_retry(struct sg_cli_http *h, const char *path,
    const char *body, const char *idem, json_t **ret);
/* Writes a file atomically (mode 0644); SG_EXIT_LOCAL with a message. */
int sg_cli_write_out(const char *path, const void *buf, size_t len);
/* Writes a signature object's log.proof to OUT.proof ("proof: PATH" on
 * stdout); nothing when it has none. */
int sg_cli_write_proof(const json_t *sigobj, const char *out);
/* A random Idempotency-Key (hex), and the rule for a given one. */
#define SG_CLI_IDEM_SIZE 33
int sg_cli_idem_random(char out[SG_CLI_IDEM_SIZE]);
int sg_cli_idem_valid(const char *s);
/* The artifact object the request will carry (validated). */
int sg_cli_sign_artifact(const struct sg_cli_sign_args *a, json_t **ret,
    char *err, size_t errlen);

/*
 * Releases and grants (cli_release.c): the pure pieces, tested directly.
 */

/* One file of `release create`: its path, base name and SHA-256, and the
 * artifact line the manifest will hold for it. */
struct sg_cli_release_file {
	const char *path;
	const char *name;             /* points into path */
	uint8_t digest[32];
	char line[SG_ARTIFACT_LINE_MAX + 1];
	size_t line_len;
};
/*
 * Names every file by its base name and checks the names: the artifact
 * line's name rule (1..255 bytes of 0x21..0x7e) and no two alike (err
 * names both paths).  Nothing is read.  SG_ERR_INVALID with err.
 */
int sg_cli_release_names(struct sg_cli_release_file *f, size_t n,
    char *err, size_t errlen);
/* Fills each file's line from its digest (already set), the format and
 * its name. */
int sg_cli_release_lines(struct sg_cli_release_file *f, size_t n,
    enum sg_format format, char *err, size_t errlen);
/* The POST /v1/releases body (compact JSON, malloc'd): key, format,
 * release {name, version} when name is given, artifacts in file order. */
int sg_cli_release_body(const char *key, enum sg_format format,
    const char *name, const char *version,
    const struct sg_cli_release_file *f, size_t n, char **ret);
/* The manifest root (lower-case hex) of the lines, in order. */
int sg_cli_manifest_root(const char *const *lines, const size_t *lens,
    size_t n, char hex[SG_SHA256_HEX_SIZE]);
/*
 * The statement the server answered for a release we asked for: it
 * parses, is a release statement for request `id` on `key` in `format`,
 * and names the manifest root and count computed here.  SG_ERR_VERIFY
 * with err saying which field differs; *ret the parsed statement.
 */
int sg_cli_release_statement_check(const char *stmt, const char *id,
    const char *key, enum sg_format format,
    const char root[SG_SHA256_HEX_SIZE], uint64_t count,
    struct sg_statement *ret, char *err, size_t errlen);
/*
 * A manifest as GET /v1/releases/{id}/manifest serves it (lines, each
 * with its LF): every line parses as an artifact line, names are unique,
 * and the tree root and count equal the statement's.  On success
 * *ret_lines (one malloc'd array of pointers into a copy, free with
 * free()) and *ret_n hold the lines, NUL-terminated.
 */
int sg_cli_manifest_check(const char *text, size_t len,
    const struct sg_statement *st, char ***ret_lines, size_t *ret_n,
    char *err, size_t errlen);
/*
 * Splits the proof of an artifact signature: two c2sp.org/tlog-proof@v1
 * bundles, concatenated.  *ret_first is the length of the first; the
 * second is text[*ret_first..len).  0 for a single bundle too, with
 * *ret_first == len.  SG_ERR_INVALID when the text is not one or two
 * bundles (a truncated second one included).
 */
int sg_cli_proof_split(const char *text, size_t len, size_t *ret_first);
/* GET /v1/releases/ID/manifest for the release statement st, checked
 * with sg_cli_manifest_check (an exit status; the reason on stderr). */
int sg_cli_fetch_manifest(struct sg_cli_http *h,
    const struct sg_statement *st, char ***ret_lines, size_t *ret_n);
/* "2h", "30m", "7d", "45s" or plain seconds; 0 or SG_ERR_INVALID. */
int sg_cli_duration(const char *s, uint64_t *ret);
/* The kind of a request object ("kind" absent: a request). */
int sg_cli_req_kind(const json_t *req, enum sg_kind *ret);
/*
 * A release's or grant's statement against its request object (id, key,
 * format, requester, policy, expiry, and the release's count and root or
 * the grant's count, pattern and end).  Disagreements appended to err as
 * lines; SG_ERR_VERIFY if any.  Requests go to sg_cli_request_statement.
 */
int sg_cli_kind_statement(const json_t *req, struct sg_statement *ret,
    char *err, size_t errlen);
/* Fetches GET path as text (the manifest); an exit status, *ret the body
 * (malloc'd, NUL-terminated). */
int sg_cli_api_text(struct sg_cli_http *h, const char *path, char **ret,
    size_t *ret_len);

/* Help texts (cli_usage.c).  cmd NULL: the overview.  -1 if unknown. */
int sg_cli_usage(FILE *f, const char *cmd);

/* Commands: argv[0] is the command name; they return an exit status. */
int sg_cli_cmd_keys(int argc, char **argv, struct sg_cli_conf *conf);
int sg_cli_cmd_sign(int argc, char **argv, struct sg_cli_conf *conf);
int sg_cli_cmd_pending(int argc, char **argv, struct sg_cli_conf *conf);
int sg_cli_cmd_show(int argc, char **argv, struct sg_cli_conf *conf);
int sg_cli_cmd_approve(int argc, char **argv, struct sg_cli_conf *conf);
int sg_cli_cmd_cancel(int argc, char **argv, struct sg_cli_conf *conf);
int sg_cli_cmd_verify(int argc, char **argv, struct sg_cli_conf *conf);
int sg_cli_cmd_release(int argc, char **argv, struct sg_cli_conf *conf);
int sg_cli_cmd_grant(int argc, char **argv, struct sg_cli_conf *conf);
int sg_cli_cmd_log(int argc, char **argv, struct sg_cli_conf *conf);
int sg_cli_cmd_policy(int argc, char **argv, struct sg_cli_conf *conf);
int sg_cli_cmd_watch(int argc, char **argv, struct sg_cli_conf *conf);
/* `log mirror` (cli_mirror.c). */
int sg_cli_cmd_mirror(int argc, char **argv, struct sg_cli_conf *conf);

/* `verify --log SOURCE` (cli_mirror.c): the proof's checkpoint cp must be
 * a prefix of the source's (a tlog-tiles URL or directory), and each
 * entry the proof carries the source's entry at its index.  Returns an
 * exit status (SG_EXIT_VERIFY when it is not so, with the reason on
 * stderr); the source's size in *ret_size. */
struct sg_checkpoint;
struct sg_cli_logged {
	uint64_t index;
	const uint8_t *entry;
	size_t len;
};
int sg_cli_check_log_source(const char *source, const char *cacert,
    const char *vkey, const struct sg_checkpoint *cp,
    const struct sg_cli_logged *entries, size_t n, uint64_t *ret_size);

/* Shared by `pending` and `watch` (cli_requests.c): every page of pending
 * requests, releases and grants (of key, if not NULL) appended to all
 * (an exit status); and "name@version" of a request's artifact (a
 * release: release(<n>)[:name[@version]], a grant: grant(<n>):<pattern>),
 * escaped as text. */
int sg_cli_fetch_pending(struct sg_cli_http *h, const char *key, json_t *all);
void sg_cli_artifact_label(const json_t *req, char *out, size_t cap);

#endif
