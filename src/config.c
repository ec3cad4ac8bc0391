/*
 * Configuration loading.  The file is small JSON; every field is checked
 * for type and range, unknown fields and duplicate keys are refused, and
 * errors name the file and the field.  Numeric settings are read from one
 * table (numbers[] below: default, range, and the rules between them), which
 * the documentation is checked against.  PINs are never in this file: a token
 * names a PIN file (mode 0600) or a systemd credential, which is resolved
 * here to a path under $CREDENTIALS_DIRECTORY.  With signer_socket (the
 * signer in its own unit) the front reads the same file without the
 * credentials, which only the signer's unit has: a credential is then left
 * unresolved (an empty pin_file) for the signer's start to refuse.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "sg_config.h"
#include "sg_cfgjson.h"
#include "sg_cosig.h"
#include "sg_err.h"
#include "sg_limits.h"
#include "sg_store.h"
#include "sg_util.h"

#define CONFIG_MAX_SIZE (256 * 1024)
/* sun_path, with its NUL. */
#define SUN_PATH_SIZE sizeof(((struct sockaddr_un *)NULL)->sun_path)

/* Errors name the file and the field (include/sg_cfgjson.h). */
#define fail sg_cfg_fail

static int
parse_tokens(struct sg_cfg_ctx *c, json_t *arr, struct sg_config *cfg)
{
	static const char *const fields[] = { "label", "pin_file",
	    "pin_credential", NULL };
	char field[64];
	json_t *t;
	size_t i;
	int r;

	if (!json_is_array(arr) || json_array_size(arr) == 0)
		return fail(c, "pkcs11.tokens", "must be a non-empty array");
	if (json_array_size(arr) > SG_CONFIG_MAX_TOKENS)
		return fail(c, "pkcs11.tokens", "at most %d tokens",
		    SG_CONFIG_MAX_TOKENS);
	json_array_foreach(arr, i, t) {
		struct sg_signer_token_spec *ts = &cfg->tokens[i];
		const char *label, *pin_file, *cred;
		char *path = NULL;

		snprintf(field, sizeof(field), "pkcs11.tokens[%zu]", i);
		if (!json_is_object(t))
			return fail(c, field, "must be an object");
		if ((r = sg_cfg_fields(c, field, t, fields)) != 0)
			return r;
		snprintf(field, sizeof(field), "pkcs11.tokens[%zu].label", i);
		if ((r = sg_cfg_string(c, t, "label", field, 1, &label)) != 0)
			return r;
		if (strlen(label) >= sizeof(ts->label))
			return fail(c, field, "longer than %d bytes",
			    SG_TOKEN_LABEL_MAX);
		snprintf(field, sizeof(field), "pkcs11.tokens[%zu]", i);
		if ((r = sg_cfg_string(c, t, "pin_file", field, 0,
		    &pin_file)) != 0 ||
		    (r = sg_cfg_string(c, t, "pin_credential", field, 0,
		    &cred)) != 0)
			return r;
		if ((pin_file == NULL) == (cred == NULL))
			return fail(c, field,
			    "needs exactly one of pin_file, pin_credential");
		if (cred != NULL) {
			const char *cd = getenv("CREDENTIALS_DIRECTORY");
			if (strchr(cred, '/') != NULL)
				return fail(c, field,
				    "pin_credential is a name, not a path");
			if (cd == NULL && cfg->signer_socket == NULL)
				return fail(c, field, "pin_credential needs "
				    "$CREDENTIALS_DIRECTORY (systemd "
				    "LoadCredential=)");
			path = cd != NULL ? sg_path_join(cd, cred) :
			    strdup("");
		} else
			path = sg_path_join(c->dir, pin_file);
		if (path == NULL)
			return SG_ERR_NOMEM;
		if (strlen(path) >= sizeof(ts->pin_file)) {
			free(path);
			return fail(c, field, "PIN path too long");
		}
		snprintf(ts->label, sizeof(ts->label), "%s", label);
		snprintf(ts->pin_file, sizeof(ts->pin_file), "%s", path);
		free(path);
		cfg->ntokens++;
	}
	return 0;
}

/* A user name for the front or the signer: what useradd accepts. */
static int
user_name_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n >= SG_CONFIG_USER_MAX || s[0] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '_' || s[i] == '-' || s[i] == '.'))
			return 0;
	return 1;
}

/* "users": {"front": NAME, "signer": NAME} and "signer_state_dir". */
static int
parse_users(struct sg_cfg_ctx *c, json_t *root, struct sg_config *cfg)
{
	static const char *const users_f[] = { "front", "signer", NULL };
	const char *front = "signgate", *signer = "signgate-hsm";
	json_t *us;
	size_t n;
	int r;

	if ((us = json_object_get(root, "users")) != NULL) {
		if (!json_is_object(us))
			return fail(c, "users", "must be an object with front "
			    "and signer");
		if ((r = sg_cfg_fields(c, "users", us, users_f)) != 0 ||
		    (r = sg_cfg_string(c, us, "front", "users.front", 0,
		    &front)) != 0 ||
		    (r = sg_cfg_string(c, us, "signer", "users.signer", 0,
		    &signer)) != 0)
			return r;
		if (front == NULL)
			front = "signgate";
		if (signer == NULL)
			signer = "signgate-hsm";
	}
	if (!user_name_ok(front))
		return fail(c, "users.front", "not a valid user name");
	if (!user_name_ok(signer))
		return fail(c, "users.signer", "not a valid user name");
	if (strcmp(front, signer) == 0)
		return fail(c, "users", "front and signer must be two "
		    "different users");
	snprintf(cfg->front_user, sizeof(cfg->front_user), "%s", front);
	snprintf(cfg->signer_user, sizeof(cfg->signer_user), "%s", signer);

	if ((r = sg_cfg_path(c, root, "signer_state_dir", "signer_state_dir", 0,
	    &cfg->signer_state_dir)) != 0)
		return r;
	if (cfg->signer_state_dir == NULL) {
		n = strlen(cfg->state_dir);
		while (n > 1 && cfg->state_dir[n - 1] == '/')
			n--;
		if (asprintf(&cfg->signer_state_dir, "%.*s-hsm", (int)n,
		    cfg->state_dir) < 0) {
			cfg->signer_state_dir = NULL;
			return SG_ERR_NOMEM;
		}
	}
	n = strlen(cfg->state_dir);
	while (n > 1 && cfg->state_dir[n - 1] == '/')
		n--;
	if (strncmp(cfg->signer_state_dir, cfg->state_dir, n) == 0 &&
	    (cfg->signer_state_dir[n] == '\0' ||
	    cfg->signer_state_dir[n] == '/'))
		return fail(c, "signer_state_dir", "must not be state_dir or "
		    "inside it (the front owns state_dir)");
	return 0;
}

/*
 * Every numeric setting, in the order they are read: where it is in the
 * file ("object.member" or "member"), where it goes, its default and
 * range, and how it relates to another setting.  docs/OPERATIONS.md lists
 * the same defaults and ranges (tests/unit/test_config.c compares them).
 * "timestamping[].timeout_ms" is read per array element, into struct
 * sg_tsa_config.
 */
#define CFG(f) offsetof(struct sg_config, f)
static const struct sg_config_number numbers[] = {
	{ "listen.port", SG_CONFIG_U16, CFG(port), 8443, 1, 65535, "",
	  NULL, NULL, NULL },
	{ "threads", SG_CONFIG_UINT, CFG(threads), 4, 1, 64, "threads",
	  NULL, NULL, NULL },
	{ "pkcs11.concurrency", SG_CONFIG_UINT, CFG(pkcs11_concurrency),
	  SG_SIGNER_CONCURRENCY_DEFAULT, 1, SG_SIGNER_CONCURRENCY_MAX,
	  "signatures", NULL, NULL, NULL },
	{ "connection_limit", SG_CONFIG_UINT, CFG(connection_limit), 1024, 1,
	  100000, "connections", NULL, NULL, NULL },
	{ "per_ip_connection_limit", SG_CONFIG_UINT,
	  CFG(per_ip_connection_limit), 64, 0, 100000, "connections", NULL,
	  NULL, NULL },
	{ "connection_timeout", SG_CONFIG_UINT, CFG(connection_timeout), 30,
	  1, 3600, "s", NULL, NULL, NULL },
	{ "max_pending_per_requester", SG_CONFIG_UINT, CFG(max_pending), 1000,
	  1, 1000000, "requests", NULL, NULL, NULL },
	{ "unauthenticated_connection_limit", SG_CONFIG_UINT,
	  CFG(unauth_connection_limit), 256, 1, 100000, "connections",
	  "connection_limit", "connection_limit", NULL },
	{ "per_ip_unauthenticated_limit", SG_CONFIG_UINT,
	  CFG(per_ip_unauth_limit), 32, 0, 100000, "connections", NULL, NULL,
	  NULL },
	{ "handshake_timeout", SG_CONFIG_UINT, CFG(handshake_timeout), 3, 1,
	  60, "s", NULL, NULL, NULL },
	{ "first_request_timeout", SG_CONFIG_UINT, CFG(first_request_timeout),
	  5, 1, 300, "s", NULL, NULL, "handshake_timeout" },
	{ "request_timeout", SG_CONFIG_UINT, CFG(request_timeout), 10, 1, 3600,
	  "s", NULL, NULL, NULL },
	{ "anonymous_rate_limit.per_second", SG_CONFIG_UINT,
	  CFG(anon_rate_per_second), 100, 0, 1000000, "requests/s", NULL, NULL,
	  NULL },
	{ "anonymous_rate_limit.burst", SG_CONFIG_UINT, CFG(anon_rate_burst),
	  200, 1, 1000000, "requests", NULL, NULL, NULL },
	{ "rate_limit.per_second", SG_CONFIG_UINT, CFG(rate_per_second), 100,
	  0, 1000000, "requests/s", NULL, NULL, NULL },
	{ "rate_limit.burst", SG_CONFIG_UINT, CFG(rate_burst), 200, 1, 1000000,
	  "requests", NULL, NULL, NULL },
	{ "timestamping[].timeout_ms", SG_CONFIG_UINT,
	  offsetof(struct sg_tsa_config, timeout_ms), 10000, 100, 60000, "ms",
	  NULL, NULL, NULL },
};
#undef CFG
#define NNUMBERS (sizeof(numbers) / sizeof(numbers[0]))

/* The objects of the file, with their members and what a wrong one is
 * told.  users is read by parse_users(), timestamping is an array. */
static const struct object_rule {
	const char *name;
	const char *const *members;     /* NULL-terminated */
	const char *shape;              /* "must be ..." */
} objects[] = {
	{ "listen", (const char *const[]){ "address", "port", NULL },
	  "must be an object" },
	{ "tls", (const char *const[]){ "certificate", "private_key",
	  "client_ca", NULL }, "must be an object" },
	{ "pkcs11", (const char *const[]){ "module", "tokens", "concurrency",
	  NULL },
	  "must be an object" },
	{ "anonymous_rate_limit", (const char *const[]){ "per_second",
	  "burst", NULL }, "must be an object with per_second and burst" },
	{ "rate_limit", (const char *const[]){ "per_second", "burst", NULL },
	  "must be an object with per_second and burst" },
	{ "log", (const char *const[]){ "origin", "token", "key", NULL },
	  "must be an object with origin, token and key (the transparency "
	  "log is not optional)" },
	{ "store", (const char *const[]){ "backend", "conninfo",
	  "password_file", "node", "claim_seconds", NULL },
	  "must be an object with backend (\"sqlite\" or \"postgresql\")" },
	{ "notify", (const char *const[]){ "webhooks", "retry_max_seconds",
	  NULL }, "must be an object with webhooks" },
	{ "console", (const char *const[]){ "listen", "rp_id", "origin",
	  NULL }, "must be an object with listen, rp_id and origin" },
	{ "witnesses", (const char *const[]){ "quorum", "mode", "timeout_ms",
	  "list", NULL }, "must be an object with quorum and list" },
};

const struct sg_config_number *
sg_config_numbers(size_t *ret_n)
{
	*ret_n = NNUMBERS;
	return numbers;
}

static const struct sg_config_number *
number(const char *name)
{
	size_t i;

	for (i = 0; i < NNUMBERS; i++)
		if (strcmp(numbers[i].name, name) == 0)
			return &numbers[i];
	return NULL;
}

static unsigned
number_get(const struct sg_config_number *n, const void *base)
{
	const char *p = (const char *)base + n->offset;

	if (n->type == SG_CONFIG_U16)
		return *(const uint16_t *)(const void *)p;
	return *(const unsigned *)(const void *)p;
}

static void
number_set(const struct sg_config_number *n, void *base, unsigned v)
{
	char *p = (char *)base + n->offset;

	if (n->type == SG_CONFIG_U16)
		*(uint16_t *)(void *)p = (uint16_t)v;
	else
		*(unsigned *)(void *)p = v;
}

/* The object called name in obj: NULL if absent and not required; its
 * members checked. */
static int
get_object(struct sg_cfg_ctx *c, json_t *obj, const char *name, int required,
    json_t **ret)
{
	const struct object_rule *o = NULL;
	json_t *v = json_object_get(obj, name);
	size_t i;

	*ret = NULL;
	for (i = 0; i < sizeof(objects) / sizeof(objects[0]); i++)
		if (strcmp(objects[i].name, name) == 0)
			o = &objects[i];
	if (o == NULL)
		return SG_ERR_INTERNAL;
	if (v == NULL && !required)
		return 0;
	if (!json_is_object(v))
		return fail(c, name, "%s", o->shape);
	*ret = v;
	return sg_cfg_fields(c, name, v, o->members);
}

/* Reads one numeric setting from obj (member `member`, or its default)
 * into base; field names it in messages. */
static int
get_number(struct sg_cfg_ctx *c, json_t *obj, const char *member,
    const char *field, const struct sg_config_number *n, void *base,
    const void *cfg)
{
	const struct sg_config_number *cap;
	unsigned v = 0;
	int r;

	if ((r = sg_cfg_uint(c, obj, member, field, n->min, n->max, n->def,
	    &v)) != 0)
		return r;
	if (json_object_get(obj, member) == NULL && n->def_at_most != NULL &&
	    (cap = number(n->def_at_most)) != NULL &&
	    number_get(cap, cfg) < v)
		v = number_get(cap, cfg);
	number_set(n, base, v);
	return 0;
}

/* Every numeric setting of the top level and its objects, then the rules
 * that tie one to another. */
static int
parse_numbers(struct sg_cfg_ctx *c, json_t *root, struct sg_config *cfg)
{
	const struct sg_config_number *n, *other;
	char parent[64];
	const char *dot;
	json_t *obj;
	size_t i;
	int r;

	for (i = 0; i < NNUMBERS; i++) {
		n = &numbers[i];
		if (strchr(n->name, '[') != NULL ||
		    strcmp(n->name, "listen.port") == 0)
			continue;       /* read where their object is */
		obj = root;
		if ((dot = strchr(n->name, '.')) != NULL) {
			snprintf(parent, sizeof(parent), "%.*s",
			    (int)(dot - n->name), n->name);
			if ((r = get_object(c, root, parent, 0, &obj)) != 0)
				return r;
		}
		if ((r = get_number(c, obj, dot != NULL ? dot + 1 : n->name,
		    n->name, n, cfg, cfg)) != 0)
			return r;
	}
	for (i = 0; i < NNUMBERS; i++) {
		n = &numbers[i];
		if (n->at_most != NULL && (other = number(n->at_most)) !=
		    NULL && number_get(n, cfg) > number_get(other, cfg))
			return fail(c, n->name, "must not exceed %s (%u)",
			    other->name, number_get(other, cfg));
		if (n->at_least != NULL && (other = number(n->at_least)) !=
		    NULL && number_get(n, cfg) < number_get(other, cfg))
			return fail(c, n->name, "must be at least %s (%u)",
			    other->name, number_get(other, cfg));
	}
	return 0;
}

/* "listen": a numeric address and a port; "plain_http" and "tls". */
static int
parse_listen(struct sg_cfg_ctx *c, json_t *root, struct sg_config *cfg)
{
	json_t *listen, *tls, *v;
	const char *addr;
	unsigned char tmp[16];
	int r;

	if ((r = get_object(c, root, "listen", 1, &listen)) != 0 ||
	    (r = sg_cfg_string(c, listen, "address", "listen.address", 1,
	    &addr)) != 0 ||
	    (r = get_number(c, listen, "port", "listen.port",
	    number("listen.port"), cfg, cfg)) != 0)
		return r;
	if (inet_pton(AF_INET, addr, tmp) != 1 &&
	    inet_pton(AF_INET6, addr, tmp) != 1)
		return fail(c, "listen.address",
		    "must be a numeric IPv4 or IPv6 address");
	if ((cfg->listen_address = strdup(addr)) == NULL)
		return SG_ERR_NOMEM;
	if ((v = json_object_get(root, "plain_http")) != NULL) {
		if (!json_is_boolean(v))
			return fail(c, "plain_http", "must be true or false");
		cfg->plain_http = json_is_true(v);
		if (cfg->plain_http && strcmp(addr, "127.0.0.1") != 0)
			return fail(c, "plain_http", "allowed only with "
			    "listen.address 127.0.0.1");
	}
	if (cfg->plain_http) {
		if (json_object_get(root, "tls") != NULL)
			return fail(c, "tls", "not used with plain_http");
		return 0;
	}
	if ((r = get_object(c, root, "tls", 1, &tls)) != 0 ||
	    (r = sg_cfg_path(c, tls, "certificate", "tls.certificate", 1,
	    &cfg->tls_certificate)) != 0 ||
	    (r = sg_cfg_path(c, tls, "private_key", "tls.private_key", 1,
	    &cfg->tls_private_key)) != 0 ||
	    (r = sg_cfg_path(c, tls, "client_ca", "tls.client_ca", 1,
	    &cfg->tls_client_ca)) != 0)
		return r;
	return 0;
}

/* The outbound URLs (timestamping, webhooks, witnesses): http:// or
 * https://, which libcurl is restricted to. */
static int
url_scheme_ok(const char *url)
{
	return strncmp(url, "https://", 8) == 0 ||
	    strncmp(url, "http://", 7) == 0;
}

/* Why url is not an http:// or https:// URL of at most 2048 bytes without
 * spaces or control characters, or NULL when it is one. */
static const char *
url_fault(const char *url)
{
	size_t i;

	if (!url_scheme_ok(url))
		return "must be http:// or https://";
	if (strlen(url) > 2048)
		return "longer than 2048 bytes";
	for (i = 0; url[i] != '\0'; i++)
		if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f)
			return "holds a space or a control character";
	return NULL;
}

/* "timestamping": at most SG_CONFIG_MAX_TSA authorities. */
static int
parse_timestamping(struct sg_cfg_ctx *c, json_t *root, struct sg_config *cfg)
{
	static const char *const tsa_f[] = { "key", "url", "required",
	    "timeout_ms", NULL };
	const struct sg_config_number *ms = number("timestamping[].timeout_ms");
	json_t *ts, *e, *req;
	const char *k, *u;
	char f[64];
	size_t i;
	int r;

	if ((ts = json_object_get(root, "timestamping")) == NULL)
		return 0;
	if (!json_is_array(ts) || json_array_size(ts) > SG_CONFIG_MAX_TSA)
		return fail(c, "timestamping", "must be an array of at most %d "
		    "objects", SG_CONFIG_MAX_TSA);
	json_array_foreach(ts, i, e) {
		struct sg_tsa_config *t = &cfg->tsa[i];

		snprintf(f, sizeof(f), "timestamping[%zu]", i);
		if (!json_is_object(e))
			return fail(c, f, "must be an object");
		if ((r = sg_cfg_fields(c, f, e, tsa_f)) != 0 ||
		    (r = sg_cfg_string(c, e, "key", f, 1, &k)) != 0 ||
		    (r = sg_cfg_string(c, e, "url", f, 1, &u)) != 0 ||
		    (r = get_number(c, e, "timeout_ms", f, ms, t, cfg)) != 0)
			return r;
		if (strlen(k) >= sizeof(t->key) || strlen(u) >= sizeof(t->url))
			return fail(c, f, "key or url too long");
		if (!url_scheme_ok(u))
			return fail(c, f, "url must be http:// or https://");
		req = json_object_get(e, "required");
		if (req != NULL && !json_is_boolean(req))
			return fail(c, f, "required must be true or false");
		snprintf(t->key, sizeof(t->key), "%s", k);
		snprintf(t->url, sizeof(t->url), "%s", u);
		t->required = req == NULL || json_is_true(req);
		cfg->ntsa++;
	}
	return 0;
}

/* "log": the checkpoint origin, and the token and label of its key. */
static int
parse_log(struct sg_cfg_ctx *c, json_t *root, struct sg_config *cfg)
{
	const char *origin, *ltoken, *lkey;
	json_t *lg;
	size_t i;
	int r;

	if ((r = get_object(c, root, "log", 1, &lg)) != 0 ||
	    (r = sg_cfg_string(c, lg, "origin", "log.origin", 1,
	    &origin)) != 0 ||
	    (r = sg_cfg_string(c, lg, "token", "log.token", 1, &ltoken)) != 0 ||
	    (r = sg_cfg_string(c, lg, "key", "log.key", 1, &lkey)) != 0)
		return r;
	/* A signed-note key name: printable ASCII, no spaces, no '+'. */
	if (strlen(origin) > 255)
		return fail(c, "log.origin", "longer than 255 bytes");
	for (i = 0; origin[i] != '\0'; i++)
		if (origin[i] <= ' ' || origin[i] >= 0x7f || origin[i] == '+')
			return fail(c, "log.origin", "must be printable ASCII "
			    "without spaces or '+'");
	if (strlen(ltoken) > SG_TOKEN_LABEL_MAX)
		return fail(c, "log.token", "longer than %d bytes",
		    SG_TOKEN_LABEL_MAX);
	if (strlen(lkey) > SG_NAME_LEN_MAX)
		return fail(c, "log.key", "longer than %d bytes",
		    SG_NAME_LEN_MAX);
	for (i = 0; i < cfg->ntokens; i++)
		if (strcmp(cfg->tokens[i].label, ltoken) == 0)
			break;
	if (i == cfg->ntokens)
		return fail(c, "log.token", "'%s' is not one of "
		    "pkcs11.tokens", ltoken);
	if ((cfg->log_origin = strdup(origin)) == NULL)
		return SG_ERR_NOMEM;
	snprintf(cfg->log_token, sizeof(cfg->log_token), "%s", ltoken);
	snprintf(cfg->log_key, sizeof(cfg->log_key), "%s", lkey);
	return 0;
}

/* A gateway's name in the claims of a shared store. */
static int
node_ok(const char *s)
{
	size_t i;

	if (s[0] == '\0' || strlen(s) > SG_NAME_LEN_MAX)
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if (!isalnum((unsigned char)s[i]) && strchr("._:-", s[i]) == NULL)
			return 0;
	return 1;
}

int
sg_conninfo_check(const char *conninfo, char *errbuf, size_t errlen)
{
	PQconninfoOption *opts, *o;
	char *err = NULL;
	size_t n;
	int r = 0;

	if ((opts = PQconninfoParse(conninfo, &err)) == NULL) {
		/* libpq's messages end with a newline. */
		n = err != NULL ? strlen(err) : 0;
		while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
			err[--n] = '\0';
		r = sg_err_set(errbuf, errlen, SG_ERR_INVALID, "does not "
		    "parse: %s", err != NULL ? err : "out of memory");
		PQfreemem(err);
		return r;
	}
	for (o = opts; o->keyword != NULL; o++)
		if (o->val != NULL && (strcmp(o->keyword, "password") == 0 ||
		    strcmp(o->keyword, "passfile") == 0 ||
		    strcmp(o->keyword, "sslpassword") == 0)) {
			r = sg_err_set(errbuf, errlen, SG_ERR_FORBIDDEN,
			    "must not hold a %s", o->keyword);
			break;
		}
	PQconninfoFree(opts);
	return r;
}

/* A libpq conninfo that parses and holds no password (that one comes
 * from password_file, so that it is never in the configuration). */
static int
conninfo_ok(struct sg_cfg_ctx *c, const char *conninfo)
{
	char why[512];
	int r;

	if ((r = sg_conninfo_check(conninfo, why, sizeof(why))) == 0)
		return 0;
	return fail(c, "store.conninfo", "%s%s", why, r == SG_ERR_FORBIDDEN ?
	    ": name a file in store.password_file" : "");
}

/* "store": {"backend": "sqlite"} (the default, in state_dir) or
 * {"backend": "postgresql", "conninfo", "password_file", "node",
 * "claim_seconds"}. */
static int
parse_store(struct sg_cfg_ctx *c, json_t *root, struct sg_config *cfg)
{
	struct sg_store_config *sc = &cfg->store;
	const char *backend = NULL, *conninfo = NULL, *node = NULL;
	json_t *so;
	int r;

	sc->backend = SG_DB_SQLITE;
	sc->claim_seconds = SG_STORE_CLAIM_SECONDS;
	if (gethostname(sc->node, sizeof(sc->node)) != 0 ||
	    !node_ok(sc->node))
		snprintf(sc->node, sizeof(sc->node), "gateway");
	if ((r = get_object(c, root, "store", 0, &so)) != 0 || so == NULL)
		return r;
	if ((r = sg_cfg_string(c, so, "backend", "store.backend", 1,
	    &backend)) != 0 ||
	    (r = sg_cfg_string(c, so, "conninfo", "store.conninfo", 0,
	    &conninfo)) != 0 ||
	    (r = sg_cfg_path(c, so, "password_file", "store.password_file", 0,
	    &sc->password_file)) != 0 ||
	    (r = sg_cfg_string(c, so, "node", "store.node", 0, &node)) != 0 ||
	    (r = sg_cfg_uint(c, so, "claim_seconds", "store.claim_seconds", 2,
	    3600, SG_STORE_CLAIM_SECONDS, &sc->claim_seconds)) != 0)
		return r;
	if (strcmp(backend, "sqlite") == 0) {
		if (conninfo != NULL || sc->password_file != NULL ||
		    node != NULL || json_object_get(so, "claim_seconds"))
			return fail(c, "store", "conninfo, password_file, node "
			    "and claim_seconds are for backend \"postgresql\"");
		return 0;
	}
	if (strcmp(backend, "postgresql") != 0)
		return fail(c, "store.backend", "must be \"sqlite\" or "
		    "\"postgresql\"");
	sc->backend = SG_DB_POSTGRESQL;
	if (conninfo == NULL)
		return fail(c, "store.conninfo", "is required for backend "
		    "\"postgresql\"");
	if ((r = conninfo_ok(c, conninfo)) != 0)
		return r;
	if (node != NULL) {
		if (!node_ok(node))
			return fail(c, "store.node", "must be 1 to %d letters, "
			    "digits, '.', '_', ':' or '-'", SG_NAME_LEN_MAX);
		snprintf(sc->node, sizeof(sc->node), "%s", node);
	}
	if ((sc->conninfo = strdup(conninfo)) == NULL)
		return SG_ERR_NOMEM;
	return 0;
}

/* ---- "notify": webhooks (src/notify.c) ---- */

static void
notify_config_free(struct sg_notify_config *n)
{
	size_t i;

	for (i = 0; i < n->nwebhooks; i++) {
		free(n->webhooks[i].url);
		free(n->webhooks[i].secret_file);
		free(n->webhooks[i].ca_file);
	}
	memset(n, 0, sizeof(*n));
}

/* An event filter: "request.created", "release.*", "*.signed" or "*". */
static int
event_filter_ok(const char *f)
{
	const char *dot;
	size_t i;

	if (strcmp(f, "*") == 0)
		return 1;
	if ((dot = strchr(f, '.')) == NULL || dot == f || dot[1] == '\0' ||
	    strlen(f) >= SG_NOTIFY_FILTER_SIZE)
		return 0;
	for (i = 0; f[i] != '\0'; i++)
		if (!((f[i] >= 'a' && f[i] <= 'z') || f[i] == '.' ||
		    f[i] == '*'))
			return 0;
	return 1;
}

static int
parse_webhook(struct sg_cfg_ctx *c, json_t *e, const char *f,
    struct sg_notify_config *n)
{
	static const char *const wh_f[] = { "name", "url", "secret_file",
	    "format", "events", "ca_file", NULL };
	struct sg_webhook_config *w = &n->webhooks[n->nwebhooks];
	const char *name, *url, *format = NULL, *why;
	char ff[96];
	json_t *ev, *v;
	size_t i, j;
	int r;

	if (!json_is_object(e))
		return fail(c, f, "must be an object");
	n->nwebhooks++;                 /* owned from here: freed with n */
	if ((r = sg_cfg_fields(c, f, e, wh_f)) != 0 ||
	    (r = sg_cfg_string(c, e, "name", f, 1, &name)) != 0 ||
	    (r = sg_cfg_string(c, e, "url", f, 1, &url)) != 0 ||
	    (r = sg_cfg_path(c, e, "secret_file", f, 1,
	    &w->secret_file)) != 0 ||
	    (r = sg_cfg_path(c, e, "ca_file", f, 0, &w->ca_file)) != 0 ||
	    (r = sg_cfg_string(c, e, "format", f, 0, &format)) != 0)
		return r;
	if (!node_ok(name))
		return fail(c, f, "name must be 1 to %d letters, digits, '.', "
		    "'_', ':' or '-'", SG_NAME_LEN_MAX);
	for (i = 0; i + 1 < n->nwebhooks; i++)
		if (strcmp(n->webhooks[i].name, name) == 0)
			return fail(c, f, "name '%s' is used twice", name);
	snprintf(w->name, sizeof(w->name), "%s", name);
	if ((why = url_fault(url)) != NULL)
		return fail(c, f, "url %s", why);
	if ((w->url = strdup(url)) == NULL)
		return SG_ERR_NOMEM;
	if (format == NULL || strcmp(format, "json") == 0)
		w->format = SG_WEBHOOK_JSON;
	else if (strcmp(format, "slack") == 0)
		w->format = SG_WEBHOOK_SLACK;
	else
		return fail(c, f, "format must be \"json\" or \"slack\"");
	if ((ev = json_object_get(e, "events")) == NULL)
		return 0;
	if (!json_is_array(ev) || json_array_size(ev) == 0 ||
	    json_array_size(ev) > SG_NOTIFY_MAX_FILTERS)
		return fail(c, f, "events must be an array of 1 to %d event "
		    "types", SG_NOTIFY_MAX_FILTERS);
	json_array_foreach(ev, j, v) {
		snprintf(ff, sizeof(ff), "%s.events[%zu]", f, j);
		if (!json_is_string(v) || !event_filter_ok(json_string_value(v)))
			return fail(c, ff, "must be an event type such as "
			    "\"request.created\", \"release.*\" or \"*\"");
		snprintf(w->events[j], sizeof(w->events[j]), "%s",
		    json_string_value(v));
		w->nevents++;
	}
	return 0;
}

/* "notify": {"webhooks": [...], "retry_max_seconds": N}. */
static int
parse_notify(struct sg_cfg_ctx *c, json_t *root, struct sg_config *cfg)
{
	struct sg_notify_config *n = &cfg->notify;
	json_t *no, *hooks, *e;
	char f[64];
	size_t i;
	int r;

	n->retry_max_seconds = 300;
	if ((r = get_object(c, root, "notify", 0, &no)) != 0 || no == NULL)
		return r;
	if ((r = sg_cfg_uint(c, no, "retry_max_seconds",
	    "notify.retry_max_seconds", 1, 3600, 300,
	    &n->retry_max_seconds)) != 0)
		return r;
	hooks = json_object_get(no, "webhooks");
	if (hooks == NULL || !json_is_array(hooks) ||
	    json_array_size(hooks) == 0 ||
	    json_array_size(hooks) > SG_NOTIFY_MAX_WEBHOOKS)
		return fail(c, "notify.webhooks", "must be an array of 1 to %d "
		    "objects", SG_NOTIFY_MAX_WEBHOOKS);
	json_array_foreach(hooks, i, e) {
		snprintf(f, sizeof(f), "notify.webhooks[%zu]", i);
		if ((r = parse_webhook(c, e, f, n)) != 0)
			return r;
	}
	return 0;
}

/* An RP ID: a lower-case domain name (letters, digits, '-', '.'). */
static int
rp_id_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n >= SG_CONSOLE_RP_ID_SIZE || s[0] == '.' ||
	    s[n - 1] == '.' || strstr(s, "..") != NULL)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '.'))
			return 0;
	return 1;
}

/*
 * An origin as browsers serialise it: "https://" host [":" port], the
 * host the RP ID or a name below it (WebAuthn's rule), the port
 * decimal without leading zeros, nothing after.
 */
static int
origin_ok(const char *origin, const char *rp_id)
{
	const char *host, *colon;
	size_t hlen, rlen = strlen(rp_id);
	uint64_t port;

	if (strncmp(origin, "https://", 8) != 0 ||
	    strlen(origin) >= SG_CONSOLE_ORIGIN_SIZE)
		return 0;
	host = origin + 8;
	colon = strchr(host, ':');
	hlen = colon != NULL ? (size_t)(colon - host) : strlen(host);
	if (colon != NULL && (colon[1] == '0' ||
	    sg_parse_u64(colon + 1, 1, 65535, &port) != 0))
		return 0;
	if (hlen < rlen || memcmp(host + hlen - rlen, rp_id, rlen) != 0 ||
	    (hlen > rlen && host[hlen - rlen - 1] != '.'))
		return 0;
	return 1;
}

/* "console": {"listen": "ADDRESS:PORT", "rp_id": ..., "origin": ...}. */
static int
parse_console(struct sg_cfg_ctx *c, json_t *root, struct sg_config *cfg)
{
	struct sg_console_config *cc = &cfg->console;
	const char *listen, *rp_id, *origin, *colon;
	unsigned char tmp[16];
	uint64_t port;
	json_t *co;
	char *addr;
	int r;

	if ((r = get_object(c, root, "console", 0, &co)) != 0 || co == NULL)
		return r;
	if ((r = sg_cfg_string(c, co, "listen", "console.listen", 1,
	    &listen)) != 0 ||
	    (r = sg_cfg_string(c, co, "rp_id", "console.rp_id", 1,
	    &rp_id)) != 0 ||
	    (r = sg_cfg_string(c, co, "origin", "console.origin", 1,
	    &origin)) != 0)
		return r;
	if (cfg->plain_http)
		return fail(c, "console", "needs TLS (not with plain_http)");
	/* "127.0.0.1:8444" or "[::1]:8444". */
	if ((colon = strrchr(listen, ':')) == NULL ||
	    sg_parse_u64(colon + 1, 0, 65535, &port) != 0)
		return fail(c, "console.listen", "must be ADDRESS:PORT");
	if (listen[0] == '[') {
		if (colon == listen || colon[-1] != ']')
			return fail(c, "console.listen", "must be "
			    "[IPV6]:PORT for an IPv6 address");
		addr = strndup(listen + 1, (size_t)(colon - listen) - 2);
	} else
		addr = strndup(listen, (size_t)(colon - listen));
	if (addr == NULL)
		return SG_ERR_NOMEM;
	cc->listen_address = addr;
	if (inet_pton(AF_INET, addr, tmp) != 1 &&
	    (listen[0] != '[' || inet_pton(AF_INET6, addr, tmp) != 1))
		return fail(c, "console.listen", "the address must be a "
		    "numeric IPv4 or [IPv6] address");
	cc->port = (uint16_t)port;
	if (port != 0 && port == cfg->port &&
	    strcmp(addr, cfg->listen_address) == 0)
		return fail(c, "console.listen", "is the API's listen address "
		    "and port: the console needs a listener of its own");
	if (!rp_id_ok(rp_id))
		return fail(c, "console.rp_id", "must be a lower-case domain "
		    "name of at most %d bytes", SG_CONSOLE_RP_ID_SIZE - 1);
	if (!origin_ok(origin, rp_id))
		return fail(c, "console.origin", "must be https://HOST[:PORT] "
		    "with HOST the rp_id or a name below it");
	snprintf(cc->rp_id, sizeof(cc->rp_id), "%s", rp_id);
	snprintf(cc->origin, sizeof(cc->origin), "%s", origin);
	cc->enabled = 1;
	return 0;
}

/* ---- "witnesses": C2SP tlog-witness (src/witnessing.c) ---- */

static void
witnesses_config_free(struct sg_witnesses_config *w)
{
	size_t i;

	for (i = 0; i < w->n; i++) {
		free(w->list[i].url);
		free(w->list[i].vkey);
		free(w->list[i].ca_file);
	}
	memset(w, 0, sizeof(*w));
}

static int
parse_witness(struct sg_cfg_ctx *c, json_t *e, const char *f,
    struct sg_witnesses_config *w)
{
	static const char *const wf[] = { "name", "url", "vkey", "ca_file",
	    NULL };
	struct sg_witness_config *wc = &w->list[w->n];
	const char *name, *url, *vkey;
	char ff[96];
	size_t i;
	int r;

	if (!json_is_object(e))
		return fail(c, f, "must be an object with name, url and vkey");
	w->n++;                         /* owned from here: freed with w */
	if ((r = sg_cfg_fields(c, f, e, wf)) != 0 ||
	    (r = sg_cfg_string(c, e, "name", f, 1, &name)) != 0 ||
	    (r = sg_cfg_string(c, e, "url", f, 1, &url)) != 0 ||
	    (r = sg_cfg_string(c, e, "vkey", f, 1, &vkey)) != 0 ||
	    (r = sg_cfg_path(c, e, "ca_file", f, 0, &wc->ca_file)) != 0)
		return r;
	snprintf(ff, sizeof(ff), "%s.vkey", f);
	if (sg_cosig_vkey_parse(vkey, wc->name, &wc->id, wc->pub) != 0)
		return fail(c, ff, "must be a witness verifier key "
		    "\"<name>+<8 hex digits>+<base64 of 0x04 and an Ed25519 "
		    "key>\"");
	snprintf(ff, sizeof(ff), "%s.name", f);
	/* It labels metrics: no quote, backslash or control character. */
	for (i = 0; name[i] != '\0'; i++)
		if ((unsigned char)name[i] < 0x21 || name[i] == 0x7f ||
		    name[i] == '"' || name[i] == '\\')
			return fail(c, ff, "may not hold a quote, a backslash, "
			    "a space or a control character");
	if (strcmp(wc->name, name) != 0)
		return fail(c, ff, "'%s' is not the name in the vkey ('%s')",
		    name, wc->name);
	for (i = 0; i + 1 < w->n; i++) {
		if (strcmp(w->list[i].name, name) == 0)
			return fail(c, ff, "'%s' is used twice", name);
		if (memcmp(w->list[i].pub, wc->pub, sizeof(wc->pub)) == 0)
			return fail(c, f, "the key of '%s' is also the key of "
			    "'%s'", name, w->list[i].name);
	}
	snprintf(ff, sizeof(ff), "%s.url", f);
	if (url_fault(url) != NULL)
		return fail(c, ff, "must be an http:// or https:// URL of at "
		    "most 2048 bytes without spaces");
	if ((wc->url = strdup(url)) == NULL ||
	    (wc->vkey = strdup(vkey)) == NULL)
		return SG_ERR_NOMEM;
	return 0;
}

/* "witnesses": {"quorum": K, "mode": ..., "timeout_ms": N, "list": [...]}. */
static int
parse_witnesses(struct sg_cfg_ctx *c, json_t *root, struct sg_config *cfg)
{
	struct sg_witnesses_config *w = &cfg->witnesses;
	const char *mode = NULL;
	json_t *wo, *list, *e;
	char f[64];
	size_t i;
	int r;

	if ((r = get_object(c, root, "witnesses", 0, &wo)) != 0 || wo == NULL)
		return r;
	list = json_object_get(wo, "list");
	if (list == NULL || !json_is_array(list) ||
	    json_array_size(list) == 0 ||
	    json_array_size(list) > SG_WITNESSES_MAX)
		return fail(c, "witnesses.list", "must be an array of 1 to %d "
		    "objects", SG_WITNESSES_MAX);
	json_array_foreach(list, i, e) {
		snprintf(f, sizeof(f), "witnesses.list[%zu]", i);
		if ((r = parse_witness(c, e, f, w)) != 0)
			return r;
	}
	if (json_object_get(wo, "quorum") == NULL)
		return fail(c, "witnesses.quorum", "is required");
	if ((r = sg_cfg_uint(c, wo, "quorum", "witnesses.quorum", 1,
	    (json_int_t)w->n, 1, &w->quorum)) != 0 ||
	    (r = sg_cfg_uint(c, wo, "timeout_ms", "witnesses.timeout_ms", 100,
	    60000, 5000, &w->timeout_ms)) != 0 ||
	    (r = sg_cfg_string(c, wo, "mode", "witnesses.mode", 0, &mode)) != 0)
		return r;
	if (mode == NULL || strcmp(mode, "fail-closed") == 0)
		w->mode = SG_WITNESS_FAIL_CLOSED;
	else if (strcmp(mode, "best-effort") == 0)
		w->mode = SG_WITNESS_BEST_EFFORT;
	else
		return fail(c, "witnesses.mode", "must be \"fail-closed\" or "
		    "\"best-effort\"");
	return 0;
}

static int
parse_root(struct sg_cfg_ctx *c, json_t *root, void *arg)
{
	static const char *const top[] = { "listen", "tls", "plain_http",
	    "pkcs11", "policy", "state_dir", "threads", "connection_limit",
	    "per_ip_connection_limit", "connection_timeout", "log",
	    "rate_limit", "max_pending_per_requester",
	    "timestamping", "users", "signer_state_dir", "signer_socket",
	    "unauthenticated_connection_limit", "per_ip_unauthenticated_limit",
	    "handshake_timeout", "first_request_timeout", "request_timeout",
	    "anonymous_rate_limit", "store", "notify", "console", "witnesses",
	    NULL };
	struct sg_config *cfg = arg;
	json_t *p11;
	int r;

	if (!json_is_object(root))
		return fail(c, "(top)", "must be a JSON object");
	if ((r = sg_cfg_fields(c, "(top)", root, top)) != 0 ||
	    (r = parse_listen(c, root, cfg)) != 0 ||
	    (r = sg_cfg_path(c, root, "signer_socket", "signer_socket", 0,
	    &cfg->signer_socket)) != 0)
		return r;
	if (cfg->signer_socket != NULL &&
	    strlen(cfg->signer_socket) >= SUN_PATH_SIZE)
		return fail(c, "signer_socket", "longer than %zu bytes",
		    SUN_PATH_SIZE - 1);
	if ((r = get_object(c, root, "pkcs11", 1, &p11)) != 0 ||
	    (r = sg_cfg_path(c, p11, "module", "pkcs11.module", 1,
	    &cfg->pkcs11_module)) != 0 ||
	    (r = parse_tokens(c, json_object_get(p11, "tokens"), cfg)) != 0 ||
	    (r = sg_cfg_path(c, root, "policy", "policy", 1,
	    &cfg->policy_path)) != 0 ||
	    (r = sg_cfg_path(c, root, "state_dir", "state_dir", 1,
	    &cfg->state_dir)) != 0 ||
	    (r = parse_store(c, root, cfg)) != 0 ||
	    (r = parse_numbers(c, root, cfg)) != 0 ||
	    (r = parse_users(c, root, cfg)) != 0 ||
	    (r = parse_timestamping(c, root, cfg)) != 0 ||
	    (r = parse_log(c, root, cfg)) != 0 ||
	    (r = parse_notify(c, root, cfg)) != 0 ||
	    (r = parse_console(c, root, cfg)) != 0 ||
	    (r = parse_witnesses(c, root, cfg)) != 0)
		return r;
	return 0;
}

int
sg_config_load(const char *path, struct sg_config **ret, char *errbuf,
    size_t errlen)
{
	struct sg_config *cfg;
	int r;

	if ((cfg = calloc(1, sizeof(*cfg))) == NULL)
		return SG_ERR_NOMEM;
	if ((cfg->path = strdup(path)) == NULL)
		r = SG_ERR_NOMEM;
	else
		r = sg_cfg_load(path, CONFIG_MAX_SIZE, parse_root, cfg, errbuf,
		    errlen);
	if (r != 0) {
		sg_config_free(cfg);
		return r;
	}
	*ret = cfg;
	return 0;
}

void
sg_config_free(struct sg_config *c)
{
	if (c == NULL)
		return;
	free(c->path);
	free(c->listen_address);
	free(c->tls_certificate);
	free(c->tls_private_key);
	free(c->tls_client_ca);
	free(c->pkcs11_module);
	free(c->policy_path);
	free(c->state_dir);
	free(c->store.conninfo);
	free(c->store.password_file);
	free(c->signer_state_dir);
	free(c->signer_socket);
	free(c->log_origin);
	notify_config_free(&c->notify);
	free(c->console.listen_address);
	witnesses_config_free(&c->witnesses);
	free(c);
}
