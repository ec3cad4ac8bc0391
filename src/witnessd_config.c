/*
 * The witness's configuration and key (see include/sg_witnessd.h).
 *
 * A small JSON file, checked like signgated's: every field for type and
 * range, unknown fields and duplicate keys refused, errors naming the file
 * and the field.  Relative paths are relative to the file's directory.
 *
 *   {
 *     "name": "witness.example.org/w1",
 *     "listen": { "address": "127.0.0.1", "port": 7380 },
 *     "tls": { "certificate": "tls/cert.pem", "private_key": "tls/key.pem" },
 *     "plain_http": true,
 *     "key_file": "witness.key",
 *     "pkcs11": { "module": "/usr/lib/softhsm/libsofthsm2.so",
 *                 "token": "witness", "key": "cosign",
 *                 "pin_file": "witness.pin" },
 *     "state_dir": "/var/lib/signgate-witness",
 *     "threads": 2,
 *     "logs": [ { "vkey": "signgate.example/log+1a2b3c4d+AQ...",
 *                 "origin": "signgate.example/log" } ]
 *   }
 *
 * Without "tls" the witness speaks plain HTTP, which needs "plain_http":
 * true unless it listens on a loopback address (behind a reverse proxy).
 * A log's origin defaults to its key's name.  The key is either
 * "key_file" or "pkcs11", not both.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sg_cfgjson.h"
#include "sg_cosig.h"
#include "sg_err.h"
#include "sg_note.h"
#include "sg_util.h"
#include "sg_witnessd.h"

#define CONFIG_MAX_SIZE (64 * 1024)
#define DEFAULT_PORT 7380
#define THREADS_MAX 64

/* Errors name the file and the field (include/sg_cfgjson.h). */
#define fail sg_cfg_fail

static int
is_loopback(const char *addr)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (inet_pton(AF_INET, addr, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, addr, &a6) == 1 &&
	    IN6_IS_ADDR_LOOPBACK(&a6);
}

static int
parse_listen(struct sg_cfg_ctx *c, json_t *root, struct sg_wd_config *cfg)
{
	static const char *const fields[] = { "address", "port", NULL };
	static const char *const tls_fields[] = { "certificate",
	    "private_key", NULL };
	json_t *listen, *tls, *v;
	const char *addr = "127.0.0.1";
	unsigned char tmp[16];
	unsigned port = DEFAULT_PORT;
	int r;

	if ((listen = json_object_get(root, "listen")) != NULL) {
		if (!json_is_object(listen))
			return fail(c, "listen", "must be an object");
		if ((r = sg_cfg_fields(c, "listen", listen, fields)) != 0 ||
		    (r = sg_cfg_string(c, listen, "address",
		    "listen.address", 0, &addr)) != 0 ||
		    (r = sg_cfg_uint(c, listen, "port", "listen.port", 0, 65535,
		    DEFAULT_PORT, &port)) != 0)
			return r;
		if (addr == NULL)
			addr = "127.0.0.1";
	}
	if (inet_pton(AF_INET, addr, tmp) != 1 &&
	    inet_pton(AF_INET6, addr, tmp) != 1)
		return fail(c, "listen.address",
		    "must be a numeric IPv4 or IPv6 address");
	if ((cfg->listen_address = strdup(addr)) == NULL)
		return SG_ERR_NOMEM;
	cfg->port = (uint16_t)port;
	if ((v = json_object_get(root, "plain_http")) != NULL &&
	    !json_is_boolean(v))
		return fail(c, "plain_http", "must be true or false");
	tls = json_object_get(root, "tls");
	if (tls == NULL) {
		/* A witness's answers are signed, but a public listener
		 * should be meant. */
		if (!is_loopback(addr) && (v == NULL || !json_is_true(v)))
			return fail(c, "tls", "is required to listen on %s "
			    "(or set \"plain_http\": true)", addr);
		cfg->plain_http = 1;
		return 0;
	}
	if (v != NULL && json_is_true(v))
		return fail(c, "plain_http", "cannot be true with \"tls\"");
	if (!json_is_object(tls))
		return fail(c, "tls", "must be an object");
	if ((r = sg_cfg_fields(c, "tls", tls, tls_fields)) != 0 ||
	    (r = sg_cfg_path(c, tls, "certificate", "tls.certificate", 1,
	    &cfg->tls_certificate)) != 0 ||
	    (r = sg_cfg_path(c, tls, "private_key", "tls.private_key", 1,
	    &cfg->tls_private_key)) != 0)
		return r;
	return 0;
}

static int
parse_logs(struct sg_cfg_ctx *c, json_t *root, struct sg_wd_config *cfg)
{
	static const char *const fields[] = { "vkey", "origin", NULL };
	char field[64];
	const char *vkey, *origin;
	json_t *arr, *e;
	size_t i, j;
	int r;

	if ((arr = json_object_get(root, "logs")) == NULL)
		return fail(c, "logs", "is required");
	if (!json_is_array(arr) || json_array_size(arr) == 0)
		return fail(c, "logs", "must be a non-empty array");
	if (json_array_size(arr) > SG_WD_MAX_LOGS)
		return fail(c, "logs", "at most %d logs", SG_WD_MAX_LOGS);
	json_array_foreach(arr, i, e) {
		struct sg_wd_log *l = &cfg->logs[i];

		snprintf(field, sizeof(field), "logs[%zu]", i);
		if (!json_is_object(e))
			return fail(c, field, "must be an object");
		if ((r = sg_cfg_fields(c, field, e, fields)) != 0)
			return r;
		snprintf(field, sizeof(field), "logs[%zu].vkey", i);
		if ((r = sg_cfg_string(c, e, "vkey", field, 1, &vkey)) != 0)
			return r;
		r = sg_note_vkey_parse(vkey, l->key_name, &l->key_id, l->pub);
		if (r == SG_ERR_MECHANISM)
			return fail(c, field, "not an Ed25519 log key (type "
			    "0x01)");
		if (r != 0)
			return fail(c, field, "not a verifier key "
			    "\"<name>+<8 hex key ID>+<base64 key>\" (or the "
			    "key ID does not match)");
		snprintf(field, sizeof(field), "logs[%zu].origin", i);
		if ((r = sg_cfg_string(c, e, "origin", field, 0, &origin)) != 0)
			return r;
		if (origin == NULL)
			origin = l->key_name;
		if (!sg_checkpoint_origin_ok(origin))
			return fail(c, field, "not a checkpoint origin "
			    "(printable ASCII, at most %d bytes)",
			    SG_NOTE_NAME_MAX);
		snprintf(l->origin, sizeof(l->origin), "%s", origin);
		for (j = 0; j < i; j++)
			if (strcmp(cfg->logs[j].origin, l->origin) == 0)
				return fail(c, field, "the origin '%s' is "
				    "already logs[%zu]'s", l->origin, j);
		cfg->nlogs = i + 1;
	}
	return 0;
}

/* "pkcs11": the key on a token instead of "key_file". */
static int
parse_pkcs11(struct sg_cfg_ctx *c, json_t *root, struct sg_wd_config *cfg)
{
	static const char *const fields[] = { "module", "token", "key",
	    "pin_file", NULL };
	json_t *p = json_object_get(root, "pkcs11");
	const char *s;
	int r;

	if (p == NULL) {
		if (cfg->key_file == NULL)
			return fail(c, "key_file", "is required (or \"pkcs11\")");
		return 0;
	}
	if (cfg->key_file != NULL)
		return fail(c, "pkcs11", "cannot be used with \"key_file\"");
	if (!json_is_object(p))
		return fail(c, "pkcs11", "must be an object");
	if ((r = sg_cfg_fields(c, "pkcs11", p, fields)) != 0 ||
	    (r = sg_cfg_path(c, p, "module", "pkcs11.module", 1,
	    &cfg->p11_module)) != 0 ||
	    (r = sg_cfg_path(c, p, "pin_file", "pkcs11.pin_file", 1,
	    &cfg->p11_pin_file)) != 0)
		return r;
	if ((r = sg_cfg_string(c, p, "token", "pkcs11.token", 1, &s)) != 0)
		return r;
	if (strlen(s) > 32)
		return fail(c, "pkcs11.token", "a token label has at most 32 "
		    "bytes");
	if ((cfg->p11_token = strdup(s)) == NULL)
		return SG_ERR_NOMEM;
	if ((r = sg_cfg_string(c, p, "key", "pkcs11.key", 1, &s)) != 0)
		return r;
	if ((cfg->p11_key = strdup(s)) == NULL)
		return SG_ERR_NOMEM;
	return 0;
}

static int
parse_root(struct sg_cfg_ctx *c, json_t *root, void *arg)
{
	struct sg_wd_config *cfg = arg;
	static const char *const fields[] = { "name", "listen", "tls",
	    "plain_http", "key_file", "pkcs11", "state_dir", "threads", "logs",
	    NULL };
	const char *name;
	uint8_t zero[SG_ED25519_PUB];
	char *vkey = NULL;
	int r;

	if (!json_is_object(root))
		return fail(c, "(top level)", "must be an object");
	if ((r = sg_cfg_fields(c, "(top level)", root, fields)) != 0 ||
	    (r = sg_cfg_string(c, root, "name", "name", 1, &name)) != 0)
		return r;
	/* The name must make a vkey: printable ASCII, no space or '+'. */
	memset(zero, 0, sizeof(zero));
	if (sg_cosig_vkey_format(name, zero, &vkey) != 0)
		return fail(c, "name", "must be printable ASCII without "
		    "spaces or '+', at most %d bytes (a URL without its "
		    "scheme, like witness.example.org/w1)", SG_NOTE_NAME_MAX);
	free(vkey);
	if ((cfg->name = strdup(name)) == NULL)
		return SG_ERR_NOMEM;
	if ((r = parse_listen(c, root, cfg)) != 0 ||
	    (r = sg_cfg_path(c, root, "key_file", "key_file", 0,
	    &cfg->key_file)) != 0 ||
	    (r = parse_pkcs11(c, root, cfg)) != 0 ||
	    (r = sg_cfg_path(c, root, "state_dir", "state_dir", 1,
	    &cfg->state_dir)) != 0 ||
	    (r = sg_cfg_uint(c, root, "threads", "threads", 1, THREADS_MAX, 2,
	    &cfg->threads)) != 0 ||
	    (r = parse_logs(c, root, cfg)) != 0)
		return r;
	return 0;
}

int
sg_wd_config_load(const char *path, struct sg_wd_config **ret, char *err,
    size_t errlen)
{
	struct sg_wd_config *cfg;
	int r;

	if ((cfg = calloc(1, sizeof(*cfg))) == NULL)
		return SG_ERR_NOMEM;
	if ((cfg->path = strdup(path)) == NULL)
		r = SG_ERR_NOMEM;
	else
		r = sg_cfg_load(path, CONFIG_MAX_SIZE, parse_root, cfg, err,
		    errlen);
	if (r != 0) {
		sg_wd_config_free(cfg);
		return r;
	}
	*ret = cfg;
	return 0;
}

void
sg_wd_config_free(struct sg_wd_config *c)
{
	if (c == NULL)
		return;
	free(c->path);
	free(c->name);
	free(c->listen_address);
	free(c->tls_certificate);
	free(c->tls_private_key);
	free(c->key_file);
	free(c->p11_module);
	free(c->p11_token);
	free(c->p11_key);
	free(c->p11_pin_file);
	free(c->state_dir);
	free(c);
}
