/*
 * The fields of a JSON configuration file (see include/sg_cfgjson.h): the
 * checks signgated's configuration and the witness's share, so that both
 * refuse the same things with the same words.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sg_cfgjson.h"
#include "sg_err.h"
#include "sg_util.h"

/* The file as JSON, duplicate keys refused; c->dir set to its directory. */
static int
cfg_read(struct sg_cfg_ctx *c, size_t max, json_t **ret_root)
{
	json_error_t jerr;
	char *buf = NULL;
	size_t len;
	int r;

	*ret_root = NULL;
	if ((r = sg_read_file(c->file, max, &buf, &len)) != 0)
		return sg_err_set(c->err, c->errlen, r, "%s: cannot read: %s",
		    c->file, sg_strerror(r));
	if ((c->dir = sg_dirname(c->file)) == NULL)
		r = SG_ERR_NOMEM;
	else if ((*ret_root = json_loadb(buf, len, JSON_REJECT_DUPLICATES,
	    &jerr)) == NULL)
		r = sg_err_set(c->err, c->errlen, SG_ERR_INVALID,
		    "%s:%d: %s", c->file, jerr.line, jerr.text);
	free(buf);
	return r;
}

int
sg_cfg_load(const char *path, size_t max, sg_cfg_parse_fn parse, void *arg,
    char *err, size_t errlen)
{
	struct sg_cfg_ctx c = { path, NULL, err, errlen };
	json_t *root = NULL;
	int r;

	if ((r = cfg_read(&c, max, &root)) == 0)
		r = parse(&c, root, arg);
	json_decref(root);
	free(c.dir);
	return r;
}

int
sg_cfg_fail(struct sg_cfg_ctx *c, const char *field, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return sg_err_set(c->err, c->errlen, SG_ERR_INVALID, "%s: %s: %s",
	    c->file, field, msg);
}

int
sg_cfg_fields(struct sg_cfg_ctx *c, const char *where, json_t *obj,
    const char *const *allowed)
{
	const char *k;

	if ((k = sg_json_stranger(obj, allowed)) != NULL)
		return sg_cfg_fail(c, where, "unknown field '%s'", k);
	return 0;
}

int
sg_cfg_string(struct sg_cfg_ctx *c, json_t *obj, const char *name,
    const char *field, int required, const char **ret)
{
	json_t *v = json_object_get(obj, name);

	*ret = NULL;
	if (v == NULL) {
		if (required)
			return sg_cfg_fail(c, field, "is required");
		return 0;
	}
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return sg_cfg_fail(c, field, "must be a non-empty string");
	*ret = json_string_value(v);
	return 0;
}

int
sg_cfg_path(struct sg_cfg_ctx *c, json_t *obj, const char *name,
    const char *field, int required, char **ret)
{
	const char *s;
	int r;

	*ret = NULL;
	if ((r = sg_cfg_string(c, obj, name, field, required, &s)) != 0)
		return r;
	if (s == NULL)
		return 0;
	if ((*ret = sg_path_join(c->dir, s)) == NULL)
		return SG_ERR_NOMEM;
	return 0;
}

int
sg_cfg_uint(struct sg_cfg_ctx *c, json_t *obj, const char *name,
    const char *field, json_int_t min, json_int_t max, json_int_t def,
    unsigned *ret)
{
	json_t *v = json_object_get(obj, name);

	if (v == NULL) {
		*ret = (unsigned)def;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max)
		return sg_cfg_fail(c, field,
		    "must be an integer from %lld to %lld",
		    (long long)min, (long long)max);
	*ret = (unsigned)json_integer_value(v);
	return 0;
}
