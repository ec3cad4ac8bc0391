/*
 * The daemon's configuration file (JSON).  Relative paths are resolved
 * against the directory of the configuration file.  Unknown fields are
 * refused so that a typo cannot silently disable a setting.
 */
#ifndef SG_CONFIG_H
#define SG_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "sg_db.h"
#include "sg_limits.h"
#include "sg_signer.h"

#define SG_CONFIG_MAX_TOKENS 16
#define SG_CONFIG_MAX_TSA 16
#define SG_CONFIG_USER_MAX 33          /* a user name (32) and its NUL */

/* An RFC 3161 time-stamping authority for a key's CMS signatures. */
struct sg_tsa_config {
	char key[SG_NAME_SIZE];
	char url[512];
	int required;                   /* fail the request if the TSA fails */
	unsigned timeout_ms;
};

/* "store": where requests and the log are kept. */
struct sg_store_config {
	enum sg_db_backend backend;     /* default SG_DB_SQLITE (state_dir) */
	char *conninfo;                 /* postgresql: libpq conninfo */
	char *password_file;            /* postgresql: NULL for none */
	char node[SG_NAME_SIZE];        /* this gateway (default: host name) */
	unsigned claim_seconds;         /* default SG_STORE_CLAIM_SECONDS */
};

/* "notify": webhooks told of every change (src/notify.c). */
#define SG_NOTIFY_MAX_WEBHOOKS 8
#define SG_NOTIFY_MAX_FILTERS 16
#define SG_NOTIFY_FILTER_SIZE 32       /* "release.cancelled", "request.*" */
enum sg_webhook_format {
	SG_WEBHOOK_JSON = 1,            /* the event as it is */
	SG_WEBHOOK_SLACK,               /* {"text": one line} */
};
struct sg_webhook_config {
	char name[SG_NAME_SIZE];
	char *url;                      /* http:// or https:// */
	char *secret_file;              /* the HMAC key, mode 0600 */
	char *ca_file;                  /* NULL: the system's */
	enum sg_webhook_format format;
	char events[SG_NOTIFY_MAX_FILTERS][SG_NOTIFY_FILTER_SIZE];
	size_t nevents;                 /* 0: every event */
};
struct sg_notify_config {
	struct sg_webhook_config webhooks[SG_NOTIFY_MAX_WEBHOOKS];
	size_t nwebhooks;
	unsigned retry_max_seconds;     /* the longest wait between tries */
};

/*
 * "console": the officers' console (src/console.c), on a listener of its
 * own with the API's TLS certificate and no client certificate.  Absent:
 * no console.
 */
#define SG_CONSOLE_RP_ID_SIZE 256       /* a domain name, NUL included */
#define SG_CONSOLE_ORIGIN_SIZE 320      /* "https://" host [":" port] */
struct sg_console_config {
	int enabled;
	char *listen_address;           /* numeric IPv4 or IPv6 */
	uint16_t port;
	char rp_id[SG_CONSOLE_RP_ID_SIZE];   /* the WebAuthn RP ID */
	char origin[SG_CONSOLE_ORIGIN_SIZE]; /* what browsers send as Origin */
};

/* "witnesses": C2SP tlog-witness witnesses that cosign each checkpoint
 * (src/witnessing.c; docs/OPERATIONS.md, "Witnesses"). */
#define SG_WITNESSES_MAX 16
#define SG_WITNESS_NAME_SIZE 256       /* a note key name and its NUL */
enum sg_witness_mode {
	SG_WITNESS_FAIL_CLOSED = 1,     /* nothing proved without the quorum */
	SG_WITNESS_BEST_EFFORT,         /* what cosignatures there are */
};
struct sg_witness_config {
	char name[SG_WITNESS_NAME_SIZE]; /* the vkey's name */
	char *url;                      /* http:// or https:// base */
	char *vkey;                     /* "<name>+<id>+<base64>" */
	char *ca_file;                  /* NULL: the system's */
	uint32_t id;
	uint8_t pub[32];
};
struct sg_witnesses_config {
	struct sg_witness_config list[SG_WITNESSES_MAX];
	size_t n;                       /* 0: no witnesses */
	unsigned quorum;
	enum sg_witness_mode mode;
	unsigned timeout_ms;
};

struct sg_config {
	char *path;
	char *listen_address;           /* numeric IPv4 or IPv6 */
	uint16_t port;
	char *tls_certificate;
	char *tls_private_key;
	char *tls_client_ca;
	int plain_http;                 /* demo only: 127.0.0.1, read-only */
	char *pkcs11_module;
	/* Signatures the signer asks of the HSM at once (its sessions). */
	unsigned pkcs11_concurrency;
	struct sg_signer_token_spec tokens[SG_CONFIG_MAX_TOKENS];
	size_t ntokens;
	char *policy_path;
	char *state_dir;
	struct sg_store_config store;
	/* Where only the signer process writes: its record of what it has
	 * signed.  Never inside state_dir (the front owns that directory and
	 * could swap a subdirectory).  Default: state_dir + "-hsm". */
	char *signer_state_dir;
	/* When started as root, the front and the signer drop to these two
	 * distinct unprivileged users (defaults "signgate", "signgate-hsm"). */
	char front_user[SG_CONFIG_USER_MAX];
	char signer_user[SG_CONFIG_USER_MAX];
	/* Where a signer started on its own (signgated --signer) listens;
	 * NULL: the front forks its signer.  With it, a token's
	 * pin_credential may stay unresolved (pin_file "") in a process
	 * without $CREDENTIALS_DIRECTORY: the front, which reads no PIN. */
	char *signer_socket;
	unsigned threads;
	unsigned connection_limit;
	unsigned per_ip_connection_limit;
	unsigned connection_timeout;    /* keep-alive idle, seconds */
	/* Peers without a verified client certificate (yet): caps, and the
	 * deadlines of every connection (seconds; see http.c). */
	unsigned unauth_connection_limit;
	unsigned per_ip_unauth_limit;   /* 0 = none */
	unsigned handshake_timeout;
	unsigned first_request_timeout;
	unsigned request_timeout;
	/* Requests without a certificate (public log, loopback operations):
	 * one budget for all of them; 0 = no limit. */
	unsigned anon_rate_per_second;
	unsigned anon_rate_burst;
	unsigned rate_per_second;       /* per principal; 0 = no limit */
	unsigned rate_burst;
	unsigned max_pending;           /* pending requests per requester */
	struct sg_tsa_config tsa[SG_CONFIG_MAX_TSA];
	size_t ntsa;
	char *log_origin;               /* checkpoint origin and key name */
	char log_token[SG_TOKEN_LABEL_SIZE]; /* holds the Ed25519 log key */
	char log_key[SG_NAME_SIZE];     /* its CKA_LABEL */
	struct sg_notify_config notify;
	struct sg_console_config console;
	struct sg_witnesses_config witnesses;
};

/* A numeric setting of the file, as the loader's table describes it. */
enum sg_config_type {
	SG_CONFIG_UINT = 1,             /* an unsigned */
	SG_CONFIG_U16,                  /* a uint16_t */
};
struct sg_config_number {
	const char *name;               /* "member" or "object.member" */
	enum sg_config_type type;
	size_t offset;                  /* in struct sg_config */
	unsigned def, min, max;
	const char *unit;               /* for people: "s", "connections" */
	const char *def_at_most;        /* the default is at most this one */
	const char *at_most;            /* the value may not exceed this one */
	const char *at_least;           /* the value is at least this one */
};
/* The table, in the order the settings are read; *ret_n entries. */
const struct sg_config_number *sg_config_numbers(size_t *ret_n);

/* Loads and validates.  errbuf receives "<file>: <field>: <reason>". */
int sg_config_load(const char *path, struct sg_config **ret, char *errbuf,
    size_t errlen);
void sg_config_free(struct sg_config *c);

/* A libpq conninfo as store.conninfo and `signgated --copy-store` take
 * it: it must parse (else SG_ERR_INVALID) and hold no password, passfile or
 * sslpassword (else SG_ERR_FORBIDDEN: the password comes from a file of its
 * own); errbuf says which, without the field's name. */
int sg_conninfo_check(const char *conninfo, char *errbuf, size_t errlen);

#endif
