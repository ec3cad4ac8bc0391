/*
 * Small helpers shared by the daemon and the CLI: encodings, checked number
 * parsing, time (one monotonic clock), error messages, and careful file
 * reading (size caps, O_NOFOLLOW, secret files that must be mode 0600).
 * All functions that produce output set it only on success.
 */
#ifndef SG_UTIL_H
#define SG_UTIL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SG_MAX_FILE_SIZE (16u * 1024 * 1024)  /* default cap for sg_read_file */
#define SG_MAX_SECRET_SIZE 256u               /* PINs and the like */

/* Lower-case hex of len bytes into out (2*len+1 bytes incl. NUL). */
void sg_hex_encode(const uint8_t *in, size_t len, char *out);
/* The value of one hex digit (either case), or -1 if c is not one. */
int sg_hex_digit(int c);
/* Decodes exactly 2*n hex chars (either case) into out (cap bytes).
 * Returns SG_ERR_INVALID on odd length or a non-hex char, SG_ERR_BUFFER if
 * it does not fit. */
int sg_hex_decode(const char *in, size_t inlen, uint8_t *out, size_t cap,
    size_t *ret_len);

/* Standard base64 with padding.  sg_b64_encode returns a malloc'd NUL
 * terminated string or NULL.  sg_b64_decode is strict: no whitespace, correct
 * padding, canonical trailing bits; returns malloc'd bytes. */
char *sg_b64_encode(const uint8_t *in, size_t len);
int sg_b64_decode(const char *in, size_t inlen, uint8_t **ret, size_t *ret_len);

/* Parses a whole decimal string into [min,max]; no sign, spaces or junk. */
int sg_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/* RFC 3339 UTC "2026-11-29T12:00:00Z" into out (at least 21 bytes). */
void sg_time_rfc3339(time_t t, char *out, size_t outlen);

/* Reads a regular file (O_NOFOLLOW|O_CLOEXEC), at most max bytes, into a
 * NUL-terminated malloc'd buffer.  SG_ERR_TOO_LARGE past max. */
int sg_read_file(const char *path, size_t max, char **ret, size_t *ret_len);

/* Reads a secret (a PIN): the file must be a regular file owned by us or
 * root and not accessible by group or others (SG_ERR_PERMISSIONS).  Trailing
 * CR/LF are removed.  The caller wipes and frees with sg_freezero(). */
int sg_read_secret_file(const char *path, char **ret, size_t *ret_len);

/* Writes a whole file atomically (tmp + fsync + rename) with the mode. */
int sg_write_file(const char *path, const void *buf, size_t len, int mode);

/* explicit_bzero then free; NULL is fine. */
void sg_freezero(void *p, size_t len);

/* Constant-time comparison; 0 when equal. */
int sg_memeq_ct(const void *a, const void *b, size_t len);

/* Joins dir and path unless path is absolute.  malloc'd. */
char *sg_path_join(const char *dir, const char *path);
/* The directory part of path ("." if none).  malloc'd. */
char *sg_dirname(const char *path);

/* Writes s into out (cap bytes) with control and non-ASCII bytes escaped as
 * \xNN, so that hostile strings cannot forge log lines. */
void sg_escape(const char *s, size_t len, char *out, size_t cap);

/* CLOCK_MONOTONIC: the one clock for durations and deadlines, which
 * setting the date cannot move.  sg_mono_ns() is the base; the others are
 * it divided down. */
int64_t sg_mono_ns(void);
int64_t sg_mono_us(void);
int64_t sg_mono_ms(void);
/* The CLOCK_MONOTONIC time ms milliseconds from now, for
 * pthread_cond_timedwait() on a condition variable whose clock attribute
 * is CLOCK_MONOTONIC. */
void sg_mono_deadline(struct timespec *ret, int64_t ms);

/* Formats an error message into buf (len bytes, always NUL-terminated;
 * nothing happens when buf is NULL or len is 0) and returns code, so that
 * a failure is described and returned in one statement:
 *     return sg_err_set(err, errlen, SG_ERR_INVALID, "...", ...); */
int sg_err_set(char *buf, size_t len, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The first member of the JSON object obj (a jansson json_t) whose name
 * is not in allowed (NULL-terminated), or NULL when every one is: the one
 * rule by which the configuration, the API and the envelope parser refuse
 * unknown fields, each reporting it in its own way. */
struct json_t;
const char *sg_json_stranger(struct json_t *obj,
    const char *const *allowed);

/* Logging to stderr (journald picks it up).  Never pass secrets. */
void sg_log_set_verbose(int on);
void sg_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sg_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sg_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sg_log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A daemon's signals: blocks SIGTERM, SIGINT and SIGHUP (in set, for
 * sg_signal_wait) and ignores SIGPIPE.  Call before any thread starts, so
 * that every thread inherits the mask. */
void sg_signal_block(sigset_t *set);

/* Waits for a signal of set; a SIGHUP logs hup_note and waits on.  Returns
 * the signal that stops the daemon. */
int sg_signal_wait(const sigset_t *set, const char *hup_note);

/* As sg_read_secret_file() (same ownership and mode checks) with a caller
 * chosen cap, for secrets larger than a PIN such as PEM private keys.  The
 * content is returned unchanged.  Wipe and free with sg_freezero(). */
int sg_read_secret_file_max(const char *path, size_t max, char **ret,
    size_t *ret_len);

#endif
