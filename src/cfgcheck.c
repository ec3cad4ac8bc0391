/*
 * `signgated -t`: checks a configuration and everything it names as the
 * daemon would use them, and changes nothing: no port is bound, no store
 * opened, no signer process started, no file written, no directory made.
 *
 * What is checked, each problem printed on stderr as "FILE[:LINE]: reason"
 * and counted; a problem stops only what depends on it:
 *   - the configuration file (sg_config_load; its first problem ends all);
 *   - the two users (sg_privdrop_init);
 *   - the policy, every problem with its line (sg_policy_check);
 *   - as the front: the TLS certificate, key and client CA load, and the
 *     key is the certificate's (sg_http_check_tls); the policy can be read
 *     (a reload does); each webhook's secret file (sg_notify_open);
 *     each witness's CA file (the witnesses themselves are not called);
 *   - as the signer: the policy can be read, the PKCS#11 module loads,
 *     each token opens with its PIN, each policy key and the log key are
 *     found on their tokens and sign (sg_signer_open with one token, then
 *     one key at a time, so that each problem is named; the keys of a
 *     token that failed are not tried, so a wrong PIN is tried once and a
 *     check never uses up a token's PIN tries), the HSM key is of the
 *     policy's type, and then all keys together, for the rules across keys
 *     (no policy key may reach the log key).
 * What the daemon only warns about (a key outside the HSM inventory, a
 * certificate that is not the key's: the key will not be used) is printed
 * as a warning and does not fail the check.  Not checked: whether the
 * port is free, and the state directories, which the daemon creates or
 * takes over at start.
 *
 * Users.  Started as root, the front's part runs in a child process that
 * has become users.front, and the signer's part in one that has become
 * users.signer before it loads the module or reads a PIN: a token library
 * may create files in its token directory (SoftHSM's lock files), and
 * none may ever belong to root.  The children's counts come back over a
 * pipe.  Started as anyone else, both parts run in this process as that
 * user, and whatever that user cannot do is reported as it fails.  A PIN
 * given as a systemd credential can be read only inside the signer's unit:
 * that token and its keys are reported as not checked.
 *
 * PINs are read and wiped by the signer module only; no message quotes
 * one.  Every line printed is escaped (sg_escape).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "sg_cfgcheck.h"
#include "sg_config.h"
#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_limits.h"
#include "sg_http.h"
#include "sg_notify.h"
#include "sg_policy.h"
#include "sg_privdrop.h"
#include "sg_signer.h"
#include "sg_signer_proc.h"
#include "sg_util.h"

struct tally {
	unsigned problems;
	unsigned warnings;
	unsigned unchecked;             /* tokens whose PIN cannot be read */
};

struct check {
	const char *path;               /* the configuration file */
	struct sg_config *cfg;
	char *policy_text;              /* NULL: could not be read */
	size_t policy_len;
	struct sg_policy *policy;       /* NULL: it has problems */
	int token_ok[SG_CONFIG_MAX_TOKENS];
	struct tally t;
};

typedef void (*part_fn)(struct check *c);

/* ---- output -------------------------------------------------------- */

static void vsay(const char *where, const char *kind, const char *fmt,
    va_list ap) __attribute__((format(printf, 3, 0)));

static void
vsay(const char *where, const char *kind, const char *fmt, va_list ap)
{
	char msg[2048], line[3072], esc[4 * sizeof(line) + 1];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	snprintf(line, sizeof(line), "%s: %s%s", where, kind, msg);
	sg_escape(line, strlen(line), esc, sizeof(esc));
	fprintf(stderr, "%s\n", esc);
}

static void problem(struct check *c, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void warning(struct check *c, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void unchecked(struct check *c, const char *where, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

static void
problem(struct check *c, const char *where, const char *fmt, ...)
{
	va_list ap;

	c->t.problems++;
	va_start(ap, fmt);
	vsay(where, "", fmt, ap);
	va_end(ap);
}

static void
warning(struct check *c, const char *where, const char *fmt, ...)
{
	va_list ap;

	c->t.warnings++;
	va_start(ap, fmt);
	vsay(where, "warning: ", fmt, ap);
	va_end(ap);
}

static void
unchecked(struct check *c, const char *where, const char *fmt, ...)
{
	va_list ap;

	c->t.unchecked++;
	va_start(ap, fmt);
	vsay(where, "not checked: ", fmt, ap);
	va_end(ap);
}

static void note(const char *where, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Neither a problem nor a warning: how the check was made. */
static void
note(const char *where, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(where, "note: ", fmt, ap);
	va_end(ap);
}

static const char *
read_error(int r, int saved_errno)
{
	if (r == SG_ERR_IO && saved_errno != 0)
		return strerror(saved_errno);
	if (r == SG_ERR_TOO_LARGE)
		return "larger than 1 MiB";
	return sg_strerror(r);
}

/* ---- the policy ---------------------------------------------------- */

static void
policy_report(void *arg, const char *file, int line, const char *msg)
{
	struct check *c = arg;
	char where[1024];

	snprintf(where, sizeof(where), "%s:%d", file, line);
	problem(c, where, "%s", msg);
}

static void
load_policy(struct check *c)
{
	const char *path = c->cfg->policy_path;
	unsigned before = c->t.problems;
	int r, e;

	errno = 0;
	r = sg_read_file(path, SG_POLICY_MAX_SIZE + 1, &c->policy_text,
	    &c->policy_len);
	e = errno;
	if (r != 0) {
		problem(c, path, "cannot read: %s", read_error(r, e));
		return;
	}
	r = sg_policy_check(path, c->policy_text, c->policy_len,
	    policy_report, c, &c->policy);
	if (r != 0 && c->t.problems == before)
		problem(c, path, "%s", sg_strerror(r));
}

/* Where a problem of a policy key is: "FILE:LINE" of its 'key NAME' line
 * (the policy parsed, so the first such line is the block's). */
static void
key_location(const struct check *c, const char *name, char *out, size_t cap)
{
	const char *p = c->policy_text, *end = p + c->policy_len, *nl, *q;
	size_t n = strlen(name);
	int line;

	for (line = 1; p != NULL && p < end; p = nl + 1, line++) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		while (p < nl && (*p == ' ' || *p == '\t'))
			p++;
		if (nl - p <= 3 || memcmp(p, "key", 3) != 0 ||
		    (p[3] != ' ' && p[3] != '\t'))
			continue;
		for (q = p + 3; q < nl && (*q == ' ' || *q == '\t'); q++)
			;
		if ((size_t)(nl - q) < n || memcmp(q, name, n) != 0)
			continue;
		for (q += n; q < nl && (*q == ' ' || *q == '\t'); q++)
			;
		if (q == nl) {
			snprintf(out, cap, "%s:%d", c->cfg->policy_path, line);
			return;
		}
	}
	snprintf(out, cap, "%s", c->cfg->policy_path);
}

/* As the role's user: can it read the policy file (which it does)? */
static void
policy_readable(struct check *c, enum sg_priv_role role)
{
	const struct sg_priv_user *u = sg_privdrop_user(role);
	char *text = NULL;
	size_t len;
	int r, e;

	if (c->policy_text == NULL || u == NULL)
		return;
	errno = 0;
	r = sg_read_file(c->cfg->policy_path, SG_POLICY_MAX_SIZE + 1, &text,
	    &len);
	e = errno;
	free(text);
	if (r != 0)
		problem(c, c->cfg->policy_path, "cannot be read by %s '%s': %s",
		    role == SG_PRIV_FRONT ? "users.front" : "users.signer",
		    u->name, read_error(r, e));
}

/* ---- the front's part ---------------------------------------------- */

static void
tls_report(void *arg, const char *msg)
{
	struct check *c = arg;

	problem(c, c->path, "tls: %s", msg);
}

/* As the front: each webhook's secret file (owner, mode, length), read
 * as the daemon reads it, then wiped. */
static void
notify_secrets(struct check *c)
{
	struct sg_notify *n = NULL;
	char err[1024];

	if (c->cfg->notify.nwebhooks == 0)
		return;
	if (sg_notify_open(&c->cfg->notify, NULL, "check", &n, err,
	    sizeof(err)) != 0)
		problem(c, c->path, "%s", err);
	sg_notify_free(n);
}

/* As the front: each witness's CA file loads as certificates. */
static void
witness_ca_files(struct check *c)
{
	const struct sg_witness_config *w;
	STACK_OF(X509_INFO) *info;
	size_t i;
	FILE *f;

	for (i = 0; i < c->cfg->witnesses.n; i++) {
		w = &c->cfg->witnesses.list[i];
		if (w->ca_file == NULL)
			continue;
		if ((f = fopen(w->ca_file, "re")) == NULL) {
			problem(c, w->ca_file, "witnesses.list[%zu].ca_file: "
			    "cannot read: %s", i, strerror(errno));
			continue;
		}
		info = PEM_X509_INFO_read(f, NULL, NULL, NULL);
		fclose(f);
		if (info == NULL || sk_X509_INFO_num(info) == 0)
			problem(c, w->ca_file, "witnesses.list[%zu].ca_file: "
			    "holds no PEM certificate", i);
		sk_X509_INFO_pop_free(info, X509_INFO_free);
	}
}

/*
 * The officers' console is served with the API's certificate: it must
 * name the console's host (the origin's), as browsers refuse security
 * keys on a page with a certificate error.  A certificate that does not
 * load was reported by the TLS check.
 */
static void
console_part(struct check *c)
{
	const struct sg_console_config *cc = &c->cfg->console;
	char host[SG_CONSOLE_ORIGIN_SIZE], *colon;
	X509 *x;
	FILE *f;

	if (!cc->enabled)
		return;
	snprintf(host, sizeof(host), "%s", cc->origin + strlen("https://"));
	if ((colon = strchr(host, ':')) != NULL)
		*colon = '\0';
	if ((f = fopen(c->cfg->tls_certificate, "re")) == NULL)
		return;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL)
		return;
	if (X509_check_host(x, host, strlen(host), 0, NULL) != 1)
		problem(c, c->path, "console.origin: the TLS certificate %s "
		    "does not name '%s': browsers refuse security keys on a "
		    "page with a certificate error", c->cfg->tls_certificate,
		    host);
	X509_free(x);
}

static void
front_part(struct check *c)
{
	struct sg_http_config hc;

	if (!c->cfg->plain_http) {
		memset(&hc, 0, sizeof(hc));
		hc.cert_file = c->cfg->tls_certificate;
		hc.key_file = c->cfg->tls_private_key;
		hc.client_ca_file = c->cfg->tls_client_ca;
		/* Each problem is counted as it is reported. */
		(void)sg_http_check_tls(&hc, tls_report, c);
	}
	console_part(c);
	policy_readable(c, SG_PRIV_FRONT);
	notify_secrets(c);
	witness_ca_files(c);
}

/* ---- the signer's part --------------------------------------------- */

static void
check_tokens(struct check *c)
{
	const struct sg_config *cfg = c->cfg;
	struct sg_signer *s = NULL;
	char err[1024];
	size_t i;

	for (i = 0; i < cfg->ntokens; i++) {
		c->token_ok[i] = 0;
		if (cfg->tokens[i].pin_file[0] == '\0') {
			unchecked(c, c->path, "pkcs11.tokens[%zu] '%s': its "
			    "pin_credential is only there in the signer's "
			    "systemd unit ($CREDENTIALS_DIRECTORY)", i,
			    cfg->tokens[i].label);
			continue;
		}
		if (sg_signer_open(cfg->pkcs11_module, &cfg->tokens[i], 1,
		    NULL, 0, &s, err, sizeof(err)) != 0) {
			problem(c, c->path, "pkcs11.tokens[%zu]: %s", i, err);
			continue;
		}
		sg_signer_free(s);
		s = NULL;
		c->token_ok[i] = 1;
	}
}

static int
token_index(const struct sg_config *cfg, const char *label)
{
	size_t i;

	for (i = 0; i < cfg->ntokens; i++)
		if (strcmp(cfg->tokens[i].label, label) == 0)
			return (int)i;
	return -1;
}

/* What the daemon checks once a policy key is open: its type is fatal,
 * the inventory and the certificate make it unusable (a warning). */
static void
key_facts(struct check *c, struct sg_signer *s,
    const struct sg_signer_key_spec *ks, const char *where)
{
	const struct sg_policy_key *pk = sg_policy_key(c->policy, ks->name);
	struct sg_token_info ti;
	EVP_PKEY *pub, *certkey = NULL;
	enum sg_key_alg alg;
	char why[512], *dir = NULL, *path = NULL, *pem = NULL;
	size_t len;
	int r;

	if (pk == NULL || sg_signer_key_public(s, ks->name, &pub, &alg,
	    &ti) != 0)
		return;
	if (alg != pk->alg) {
		problem(c, where, "key '%s': the HSM key is not %s", pk->name,
		    sg_scheme_name(pk->alg, pk->scheme));
		return;
	}
	if (sg_policy_token_allowed(c->policy, pk, ti.label, ti.serial,
	    ti.manufacturer, ti.model, NULL, why, sizeof(why)) != 0)
		warning(c, where, "key '%s' will not be used: %s", pk->name,
		    why);
	if (pk->certificate[0] == '\0')
		return;
	if ((dir = sg_dirname(c->cfg->policy_path)) == NULL ||
	    (path = sg_path_join(dir, pk->certificate)) == NULL)
		problem(c, where, "out of memory");
	else if ((r = sg_read_file(path, SG_PEM_FILE_MAX, &pem, &len)) != 0)
		warning(c, where, "key '%s' will not be used: certificate %s: "
		    "%s", pk->name, path, read_error(r, errno));
	else if (sg_pubkey_from_pem(pem, len, &certkey) != 0 ||
	    EVP_PKEY_eq(certkey, pub) != 1)
		warning(c, where, "key '%s' will not be used: certificate %s: "
		    "the certificate's public key is not the HSM key's",
		    pk->name, path);
	EVP_PKEY_free(certkey);
	free(pem);
	free(path);
	free(dir);
}

/* One key on its own token.  0: found and signs; -1: a problem. */
static int
check_key(struct check *c, const struct sg_signer_key_spec *ks)
{
	const struct sg_config *cfg = c->cfg;
	int log = strcmp(ks->name, SG_SIGNER_LOG_KEY) == 0;
	static const char log_prefix[] = "key '" SG_SIGNER_LOG_KEY "': ";
	struct sg_signer *s = NULL;
	char where[1024], err[1024];
	const char *msg = err;
	int t;

	if (log)
		snprintf(where, sizeof(where), "%s", c->path);
	else
		key_location(c, ks->name, where, sizeof(where));
	if ((t = token_index(cfg, ks->token)) < 0) {
		problem(c, where, "%s '%s': token '%s' is not one of "
		    "pkcs11.tokens", log ? "log.key" : "key", log ?
		    cfg->log_key : ks->name, ks->token);
		return -1;
	}
	if (!c->token_ok[t])
		return 0;       /* reported, or not checked, with its token */
	if (sg_signer_open(cfg->pkcs11_module, &cfg->tokens[t], 1, ks, 1, &s,
	    err, sizeof(err)) != 0) {
		if (log && strncmp(err, log_prefix, strlen(log_prefix)) == 0)
			msg = err + strlen(log_prefix);
		problem(c, where, "%s%s", log ? "log.key: " : "", msg);
		return -1;
	}
	if (!log)
		key_facts(c, s, ks, where);
	sg_signer_free(s);
	return 0;
}

/* Every checked key at once, on every checked token: the rules across
 * keys (sg_signer_open refuses a policy key that reaches the log key). */
static void
check_together(struct check *c, const struct sg_signer_key_spec *specs,
    size_t nspecs)
{
	const struct sg_config *cfg = c->cfg;
	struct sg_signer_token_spec toks[SG_CONFIG_MAX_TOKENS];
	struct sg_signer_key_spec *keys;
	struct sg_signer *s = NULL;
	char err[1024], name[SG_NAME_MAX], where[1024];
	size_t i, ntoks = 0, nkeys = 0;
	int t;

	if ((keys = calloc(nspecs + 1, sizeof(*keys))) == NULL) {
		problem(c, c->path, "out of memory");
		return;
	}
	for (i = 0; i < cfg->ntokens; i++)
		if (c->token_ok[i])
			toks[ntoks++] = cfg->tokens[i];
	for (i = 0; i < nspecs; i++)
		if ((t = token_index(cfg, specs[i].token)) >= 0 &&
		    c->token_ok[t])
			keys[nkeys++] = specs[i];
	if (sg_signer_open(cfg->pkcs11_module, toks, ntoks, keys, nkeys, &s,
	    err, sizeof(err)) != 0) {
		/* "key 'NAME' ...": the line of that key's block. */
		if (sscanf(err, "key '%63[A-Za-z0-9._-]'", name) == 1)
			key_location(c, name, where, sizeof(where));
		else
			snprintf(where, sizeof(where), "%s", cfg->policy_path);
		problem(c, where, "%s", err);
	}
	sg_signer_free(s);
	free(keys);
}

static void
check_keys(struct check *c)
{
	struct sg_signer_key_spec *specs = NULL;
	size_t i, n = 0;
	int bad = 0;

	if (sg_signer_key_specs(c->policy, c->cfg->log_token, c->cfg->log_key,
	    &specs, &n) != 0) {
		problem(c, c->path, "out of memory");
		return;
	}
	for (i = 0; i < n; i++)
		if (check_key(c, &specs[i]) != 0)
			bad = 1;
	if (!bad)
		check_together(c, specs, n);
	free(specs);
}

static void
signer_part(struct check *c)
{
	struct sg_signer *s = NULL;
	char err[1024];

	policy_readable(c, SG_PRIV_SIGNER);
	if (sg_signer_open(c->cfg->pkcs11_module, NULL, 0, NULL, 0, &s, err,
	    sizeof(err)) != 0) {
		problem(c, c->path, "pkcs11.module: %s", err);
		return;
	}
	sg_signer_free(s);
	check_tokens(c);
	/* Without a valid policy, which keys to look for is unknown. */
	if (c->policy != NULL)
		check_keys(c);
}

/* ---- running a part as its user ------------------------------------ */

/* Started as the other role's user (one of the two systemd units). */
static int
started_as_other(enum sg_priv_role role)
{
	enum sg_priv_start st = sg_privdrop_start();

	return (role == SG_PRIV_FRONT && st == SG_PRIV_START_SIGNER) ||
	    (role == SG_PRIV_SIGNER && st == SG_PRIV_START_FRONT);
}

/* The child: becomes the role's user, runs the part, sends its tally. */
static void
part_child(struct check *c, enum sg_priv_role role, part_fn fn, int fd)
{
	char err[512];
	ssize_t n;

	memset(&c->t, 0, sizeof(c->t));
	if (sg_privdrop_enter(role, err, sizeof(err)) != 0)
		problem(c, c->path, "%s", err);
	else
		fn(c);
	fflush(stdout);
	fflush(stderr);
	n = write(fd, &c->t, sizeof(c->t));
	_exit(n == (ssize_t)sizeof(c->t) ? 0 : 1);
}

/*
 * Started as root: runs the part in a child that has become the role's
 * user and adds its tally.  Otherwise here, as whoever started; but never
 * the signer's part as root (the users could not be resolved: said).
 */
static void
run_as(struct check *c, enum sg_priv_role role, part_fn fn)
{
	const char *name = role == SG_PRIV_FRONT ? "users.front" :
	    "users.signer";
	struct tally t;
	ssize_t n;
	pid_t pid;
	int p[2], st = 0;

	if (sg_privdrop_start() != SG_PRIV_START_ROOT) {
		if (role == SG_PRIV_SIGNER && geteuid() == 0) {
			unchecked(c, c->path, "pkcs11: the tokens are opened "
			    "as users.signer only, never as root");
			return;
		}
		if (started_as_other(role))
			note(c->path, "the part of %s is checked as the user "
			    "started, %s", name, role == SG_PRIV_FRONT ?
			    "users.signer" : "users.front");
		fn(c);
		return;
	}
	fflush(stdout);
	fflush(stderr);
	if (pipe2(p, O_CLOEXEC) != 0) {
		problem(c, c->path, "pipe: %s", strerror(errno));
		return;
	}
	if ((pid = fork()) < 0) {
		problem(c, c->path, "cannot check as %s: fork: %s", name,
		    strerror(errno));
		close(p[0]);
		close(p[1]);
		return;
	}
	if (pid == 0) {
		close(p[0]);
		part_child(c, role, fn, p[1]);  /* does not return */
	}
	close(p[1]);
	memset(&t, 0, sizeof(t));
	do
		n = read(p[0], &t, sizeof(t));
	while (n < 0 && errno == EINTR);
	close(p[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(t) || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0) {
		problem(c, c->path, "the check as %s ended abnormally", name);
		return;
	}
	c->t.problems += t.problems;
	c->t.warnings += t.warnings;
	c->t.unchecked += t.unchecked;
}

/* ---- the whole check ----------------------------------------------- */

static void
plural(unsigned n, const char *what, char *out, size_t cap)
{
	snprintf(out, cap, "%u %s%s", n, what, n == 1 ? "" : "s");
}

static int
summary(const struct check *c)
{
	char esc[4 * 1024 + 1], keys[64], toks[64], more[128] = "";
	size_t len = strlen(c->path);

	sg_escape(c->path, len < 1024 ? len : 1024, esc, sizeof(esc));
	if (c->t.problems > 0) {
		plural(c->t.problems, "problem", more, sizeof(more));
		fprintf(stderr, "signgated: %s: %s\n", esc, more);
		return 1;
	}
	plural((unsigned)sg_policy_nkeys(c->policy), "key", keys,
	    sizeof(keys));
	plural((unsigned)c->cfg->ntokens, "token", toks, sizeof(toks));
	if (c->t.unchecked > 0)
		snprintf(more, sizeof(more), ", %u not checked",
		    c->t.unchecked);
	if (c->t.warnings > 0) {
		len = strlen(more);
		snprintf(more + len, sizeof(more) - len, ", ");
		plural(c->t.warnings, "warning", more + len + 2,
		    sizeof(more) - len - 2);
	}
	printf("signgated: configuration OK: %s (policy %s@%llu, %s, %s%s)\n",
	    esc, sg_policy_name(c->policy),
	    (unsigned long long)sg_policy_version(c->policy), keys, toks,
	    more);
	return fflush(stdout) == 0 ? 0 : 1;
}

int
sg_cfgcheck_run(const char *config_path)
{
	struct check c;
	char err[1024], esc[4 * sizeof(err) + 1];
	int rc;

	memset(&c, 0, sizeof(c));
	c.path = config_path;
	if (sg_config_load(config_path, &c.cfg, err, sizeof(err)) != 0) {
		/* "<file>: <field>: <reason>" */
		sg_escape(err, strlen(err), esc, sizeof(esc));
		fprintf(stderr, "%s\n", esc);
		c.t.problems = 1;
		return summary(&c);
	}
	if (sg_privdrop_init(c.cfg->front_user, c.cfg->signer_user, err,
	    sizeof(err)) != 0)
		problem(&c, config_path, "%s", err);
	load_policy(&c);
	run_as(&c, SG_PRIV_FRONT, front_part);
	run_as(&c, SG_PRIV_SIGNER, signer_part);
	rc = summary(&c);
	sg_policy_free(c.policy);
	free(c.policy_text);
	sg_config_free(c.cfg);
	return rc;
}
