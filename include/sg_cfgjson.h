/*
 * Reading the fields of a JSON configuration file, shared by signgated's
 * configuration (src/config.c) and the witness's (src/witnessd_config.c):
 * every error names the file and the field, and a relative path is taken
 * relative to the file's directory.
 */
#ifndef SG_CFGJSON_H
#define SG_CFGJSON_H

#include <stddef.h>

#include <jansson.h>

/* The file being read. */
struct sg_cfg_ctx {
	const char *file;               /* named in every error */
	char *dir;                      /* its directory */
	char *err;                      /* where the error is written */
	size_t errlen;
};

/*
 * Reads the file at path (at most max bytes) as JSON, duplicate keys
 * refused, and hands its root to parse with arg, the context naming the
 * file and its directory; returns what parse returns.  Errors of the
 * file itself: "FILE: cannot read: reason", "FILE:LINE: reason".
 */
typedef int (*sg_cfg_parse_fn)(struct sg_cfg_ctx *c, json_t *root,
    void *arg);
int sg_cfg_load(const char *path, size_t max, sg_cfg_parse_fn parse,
    void *arg, char *err, size_t errlen);

/* Writes "FILE: FIELD: reason" to c->err; returns SG_ERR_INVALID. */
int sg_cfg_fail(struct sg_cfg_ctx *c, const char *field, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

/* Refuses members of obj not named in allowed (NULL-terminated). */
int sg_cfg_fields(struct sg_cfg_ctx *c, const char *where, json_t *obj,
    const char *const *allowed);

/*
 * obj's member name, a non-empty string without a NUL, in *ret (owned by
 * obj); NULL when absent and not required.  field names it in errors.
 */
int sg_cfg_string(struct sg_cfg_ctx *c, json_t *obj, const char *name,
    const char *field, int required, const char **ret);

/* As sg_cfg_string, joined to the file's directory (*ret is the caller's). */
int sg_cfg_path(struct sg_cfg_ctx *c, json_t *obj, const char *name,
    const char *field, int required, char **ret);

/* An integer from min to max, def when absent. */
int sg_cfg_uint(struct sg_cfg_ctx *c, json_t *obj, const char *name,
    const char *field, json_int_t min, json_int_t max, json_int_t def,
    unsigned *ret);

#endif
