/*
 * The module's configuration.
 *
 * Where it comes from, first found wins: the file SIGNGATE_PKCS11_CONF
 * names (which must then be readable), $XDG_CONFIG_HOME/signgate/
 * pkcs11.conf (or ~/.config/signgate/pkcs11.conf), /etc/signgate/
 * pkcs11.conf, and last the CLI's variables SIGNGATE_URL, SIGNGATE_CERT,
 * SIGNGATE_KEY and SIGNGATE_CACERT.  A file is lines of `name = value`,
 * `#` comments and blank lines; an unknown name, a duplicate, a bad value
 * or a file that cannot be read is an error naming the file, the line and
 * the field, because a module that silently signs with half a
 * configuration is worse than one that refuses to start.
 *
 * Relative paths in a file are relative to the file's directory (a file
 * means the same thing whoever loads it); in the environment, relative to
 * the working directory, as for the CLI.
 *
 * Messages go to stderr and to syslog.  glibc's syslog() would need
 * openlog() to carry our ident, which would change the host program's
 * own; the module writes its few lines to /dev/log itself instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "sg_cli.h"
#include "sg_err.h"
#include "sg_text.h"
#include "sg_util.h"
#include "p11mod_int.h"

#define MSG_MAX 2048

static void
to_syslog(const char *msg)
{
	struct sockaddr_un sun;
	char line[MSG_MAX + 128], stamp[32];
	struct tm tm;
	time_t now = time(NULL);
	int fd, n;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "/dev/log");
	if (localtime_r(&now, &tm) == NULL ||
	    strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm) == 0)
		return;
	/* <11> is LOG_USER|LOG_ERR; RFC 3164 framing. */
	n = snprintf(line, sizeof(line), "<11>%s signgate-pkcs11[%ld]: %s",
	    stamp, (long)getpid(), msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return;
	(void)sendto(fd, line, (size_t)n, MSG_NOSIGNAL,
	    (struct sockaddr *)&sun, sizeof(sun));
	close(fd);
}

void
p11m_msg(const char *fmt, ...)
{
	char raw[MSG_MAX], esc[MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	/* Whatever a message quotes (a server's problem detail, a path)
	 * cannot forge a line: control and non-ASCII bytes are escaped. */
	sg_escape(raw, strlen(raw), esc, sizeof(esc));
	fprintf(stderr, "signgate-pkcs11: %s\n", esc);
	to_syslog(esc);
}

void
p11m_conf_clear(struct p11m_conf *c)
{
	if (c == NULL)
		return;
	free(c->url);
	free(c->cert);
	free(c->key);
	free(c->cacert);
	free(c->grant);
	free(c->artifact);
	free(c->evidence_dir);
	free(c->source);
	memset(c, 0, sizeof(*c));
}

static void
conf_defaults(struct p11m_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->timeout = P11M_DEFAULT_TIMEOUT;
	c->connect_timeout = P11M_DEFAULT_CONNECT_TIMEOUT;
	snprintf(c->token_label, sizeof(c->token_label), "%s",
	    P11M_DEFAULT_LABEL);
}

static int
dup_or_null(const char *s, char **ret)
{
	*ret = NULL;
	if (s == NULL)
		return 0;
	return (*ret = strdup(s)) == NULL ? SG_ERR_NOMEM : 0;
}

int
p11m_conf_dup(const struct p11m_conf *c, struct p11m_conf *ret)
{
	struct p11m_conf d;

	memset(&d, 0, sizeof(d));
	d.timeout = c->timeout;
	d.connect_timeout = c->connect_timeout;
	memcpy(d.token_label, c->token_label, sizeof(d.token_label));
	if (dup_or_null(c->url, &d.url) != 0 ||
	    dup_or_null(c->cert, &d.cert) != 0 ||
	    dup_or_null(c->key, &d.key) != 0 ||
	    dup_or_null(c->cacert, &d.cacert) != 0 ||
	    dup_or_null(c->grant, &d.grant) != 0 ||
	    dup_or_null(c->artifact, &d.artifact) != 0 ||
	    dup_or_null(c->evidence_dir, &d.evidence_dir) != 0 ||
	    dup_or_null(c->source, &d.source) != 0) {
		p11m_conf_clear(&d);
		return SG_ERR_NOMEM;
	}
	*ret = d;
	return 0;
}

/* Free text the gateway accepts as an artifact value. */
static int
artifact_ok(const char *s, char *why, size_t whylen)
{
	struct sg_text_fault f;
	size_t n = strlen(s);

	if (n == 0 || n > P11M_ARTIFACT_MAX) {
		snprintf(why, whylen, "must be 1 to %d bytes",
		    P11M_ARTIFACT_MAX);
		return 0;
	}
	if (sg_text_ok(s, n, &f) != 0) {
		sg_text_fault_describe(&f, why, whylen);
		return 0;
	}
	return 1;
}

static int
label_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > SG_TOKEN_LABEL_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

/* The file is there and readable by us now (the TLS library reads it
 * later, where its error would be far less clear). */
static int
file_readable(const char *path, char *why, size_t whylen)
{
	struct stat st;

	if (stat(path, &st) != 0 || access(path, R_OK) != 0) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return 0;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "%s: not a regular file", path);
		return 0;
	}
	return 1;
}

static int
dir_writable(const char *path, char *why, size_t whylen)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return 0;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, whylen, "%s: not a directory", path);
		return 0;
	}
	if (access(path, W_OK | X_OK) != 0) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return 0;
	}
	return 1;
}

/* Where a configuration value came from, for messages. */
struct origin {
	const char *file;            /* NULL: the environment */
	size_t line;
	const char *field;           /* the name or the variable */
};

static int
conf_err(char *err, size_t errlen, const struct origin *o, int code,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int
conf_err(char *err, size_t errlen, const struct origin *o, int code,
    const char *fmt, ...)
{
	char why[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (o->file != NULL && o->line > 0)
		return sg_err_set(err, errlen, code, "%s:%zu: %s: %s",
		    o->file, o->line, o->field, why);
	if (o->file != NULL)
		return sg_err_set(err, errlen, code, "%s: %s: %s", o->file,
		    o->field, why);
	return sg_err_set(err, errlen, code, "%s: %s", o->field, why);
}

/* path resolved against base_dir (NULL: as it is), malloc'd. */
static int
resolve_path(const char *base_dir, const char *v, char **ret)
{
	char *p = base_dir != NULL ? sg_path_join(base_dir, v) : strdup(v);

	if (p == NULL)
		return SG_ERR_NOMEM;
	*ret = p;
	return 0;
}

enum field {
	F_URL, F_CERT, F_KEY, F_CACERT, F_TIMEOUT, F_CONNECT_TIMEOUT,
	F_TOKEN_LABEL, F_GRANT, F_ARTIFACT, F_EVIDENCE_DIR, F_COUNT,
};
static const char *const field_names[F_COUNT] = {
	"url", "cert", "key", "cacert", "timeout", "connect_timeout",
	"token_label", "grant", "artifact", "evidence_dir",
};

/* One value into c; base_dir anchors relative paths. */
static int
set_field(struct p11m_conf *c, enum field f, const char *v,
    const char *base_dir, const struct origin *o, char *err, size_t errlen)
{
	char why[512];
	char **slot = NULL;

	if (*v == '\0')
		return conf_err(err, errlen, o, SG_ERR_INVALID, "empty value");
	switch (f) {
	case F_URL:
		if (!sg_cli_url_ok(v))
			return conf_err(err, errlen, o, SG_ERR_INVALID,
			    "must be https://HOST[:PORT] (http:// only to "
			    "127.0.0.1, localhost or [::1])");
		return dup_or_null(v, &c->url);
	case F_CERT:
		slot = &c->cert;
		break;
	case F_KEY:
		slot = &c->key;
		break;
	case F_CACERT:
		slot = &c->cacert;
		break;
	case F_TIMEOUT:
		if (sg_parse_u64(v, 1, P11M_MAX_TIMEOUT, &c->timeout) != 0)
			return conf_err(err, errlen, o, SG_ERR_INVALID,
			    "must be 1 to %d seconds", P11M_MAX_TIMEOUT);
		return 0;
	case F_CONNECT_TIMEOUT:
		if (sg_parse_u64(v, 1, P11M_MAX_CONNECT_TIMEOUT,
		    &c->connect_timeout) != 0)
			return conf_err(err, errlen, o, SG_ERR_INVALID,
			    "must be 1 to %d seconds",
			    P11M_MAX_CONNECT_TIMEOUT);
		return 0;
	case F_TOKEN_LABEL:
		if (!label_ok(v))
			return conf_err(err, errlen, o, SG_ERR_INVALID,
			    "must be 1 to %d printable ASCII characters",
			    SG_TOKEN_LABEL_MAX);
		snprintf(c->token_label, sizeof(c->token_label), "%s", v);
		return 0;
	case F_GRANT:
		if (!sg_request_id_ok(v))
			return conf_err(err, errlen, o, SG_ERR_INVALID,
			    "must be a grant id (%d lower-case hex digits)",
			    SG_REQUEST_ID_LEN);
		return dup_or_null(v, &c->grant);
	case F_ARTIFACT:
		if (!artifact_ok(v, why, sizeof(why)))
			return conf_err(err, errlen, o, SG_ERR_INVALID, "%s",
			    why);
		return dup_or_null(v, &c->artifact);
	case F_EVIDENCE_DIR:
		if (resolve_path(base_dir, v, &c->evidence_dir) != 0)
			return SG_ERR_NOMEM;
		if (!dir_writable(c->evidence_dir, why, sizeof(why)))
			return conf_err(err, errlen, o, SG_ERR_INVALID, "%s",
			    why);
		return 0;
	case F_COUNT:
		break;
	}
	if (slot == NULL)
		return SG_ERR_INTERNAL;
	if (resolve_path(base_dir, v, slot) != 0)
		return SG_ERR_NOMEM;
	if (!file_readable(*slot, why, sizeof(why)))
		return conf_err(err, errlen, o, SG_ERR_INVALID, "%s", why);
	return 0;
}

/* What every configuration needs, whatever its source. */
static int
conf_complete(const struct p11m_conf *c, const char *file,
    const char *url_name, const char *cert_name, char *err, size_t errlen)
{
	struct origin o = { file, 0, url_name };

	if (c->url == NULL)
		return conf_err(err, errlen, &o, SG_ERR_INVALID,
		    "missing: the gateway's URL is required");
	if (c->key != NULL && c->cert == NULL) {
		o.field = cert_name;
		return conf_err(err, errlen, &o, SG_ERR_INVALID,
		    "missing: a client key needs its certificate");
	}
	return 0;
}

static int
is_space(int ch)
{
	return ch == ' ' || ch == '\t';
}

int
p11m_conf_parse(const char *path, const char *text, size_t len,
    struct p11m_conf *ret, char *err, size_t errlen)
{
	struct p11m_conf c;
	size_t seen[F_COUNT];
	size_t lineno = 0, off = 0, n, i;
	char line[P11M_CONF_LINE_MAX + 1];
	char *dir = NULL, *name, *value, *eq, *end;
	struct origin o = { path, 0, "" };
	int r = SG_ERR_INVALID;

	conf_defaults(&c);
	memset(seen, 0, sizeof(seen));
	if (len > P11M_CONF_FILE_MAX) {
		o.field = "file";
		r = conf_err(err, errlen, &o, SG_ERR_TOO_LARGE,
		    "larger than %d bytes", P11M_CONF_FILE_MAX);
		goto out;
	}
	if ((dir = sg_dirname(path)) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	while (off < len) {
		const char *nl = memchr(text + off, '\n', len - off);

		n = nl != NULL ? (size_t)(nl - (text + off)) : len - off;
		o.line = ++lineno;
		o.field = "line";
		if (n > P11M_CONF_LINE_MAX) {
			r = conf_err(err, errlen, &o, SG_ERR_INVALID,
			    "longer than %d bytes", P11M_CONF_LINE_MAX);
			goto out;
		}
		if (memchr(text + off, '\0', n) != NULL) {
			r = conf_err(err, errlen, &o, SG_ERR_INVALID,
			    "contains a NUL byte");
			goto out;
		}
		memcpy(line, text + off, n);
		line[n] = '\0';
		off += n + (nl != NULL ? 1 : 0);
		if (n > 0 && line[n - 1] == '\r')
			line[--n] = '\0';
		for (name = line; is_space(*name); name++)
			;
		if (*name == '\0' || *name == '#')
			continue;
		if ((eq = strchr(name, '=')) == NULL) {
			r = conf_err(err, errlen, &o, SG_ERR_INVALID,
			    "expected `name = value`");
			goto out;
		}
		for (end = eq; end > name && is_space(end[-1]); end--)
			;
		*end = '\0';
		for (value = eq + 1; is_space(*value); value++)
			;
		for (end = value + strlen(value); end > value &&
		    is_space(end[-1]); end--)
			;
		*end = '\0';
		for (i = 0; i < F_COUNT; i++)
			if (strcmp(name, field_names[i]) == 0)
				break;
		o.field = name;
		if (i == F_COUNT) {
			r = conf_err(err, errlen, &o, SG_ERR_INVALID,
			    "unknown setting");
			goto out;
		}
		if (seen[i] != 0) {
			r = conf_err(err, errlen, &o, SG_ERR_INVALID,
			    "set twice (first on line %zu)", seen[i]);
			goto out;
		}
		seen[i] = lineno;
		if ((r = set_field(&c, (enum field)i, value, dir, &o, err,
		    errlen)) != 0)
			goto out;
	}
	if ((r = conf_complete(&c, path, "url", "cert", err, errlen)) != 0)
		goto out;
	if ((c.source = strdup(path)) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	*ret = c;
	memset(&c, 0, sizeof(c));
	r = 0;
out:
	free(dir);
	p11m_conf_clear(&c);
	return r;
}

static const char *
env_nonempty(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : NULL;
}

int
p11m_conf_from_env(struct p11m_conf *ret, char *err, size_t errlen)
{
	static const struct {
		const char *var;
		enum field f;
	} vars[] = {
		{ "SIGNGATE_URL", F_URL },
		{ "SIGNGATE_CERT", F_CERT },
		{ "SIGNGATE_KEY", F_KEY },
		{ "SIGNGATE_CACERT", F_CACERT },
	};
	struct p11m_conf c;
	struct origin o = { NULL, 0, "" };
	const char *v;
	size_t i;
	int r;

	if (env_nonempty("SIGNGATE_URL") == NULL)
		return sg_err_set(err, errlen, P11M_CONF_NONE, "no "
		    "configuration: set SIGNGATE_PKCS11_CONF, write "
		    "~/.config/signgate/pkcs11.conf or %s, or set "
		    "SIGNGATE_URL", P11M_SYSTEM_CONF);
	conf_defaults(&c);
	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		if ((v = env_nonempty(vars[i].var)) == NULL)
			continue;
		o.field = vars[i].var;
		if ((r = set_field(&c, vars[i].f, v, NULL, &o, err,
		    errlen)) != 0)
			goto out;
	}
	if ((r = conf_complete(&c, NULL, "SIGNGATE_URL", "SIGNGATE_CERT",
	    err, errlen)) != 0)
		goto out;
	if ((c.source = strdup("the environment")) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	*ret = c;
	memset(&c, 0, sizeof(c));
	r = 0;
out:
	p11m_conf_clear(&c);
	return r;
}

/*
 * Reads a configuration file: SG_ERR_NOT_FOUND when it does not exist
 * (the next place is tried), another error with err when it exists but
 * cannot be read.  Symbolic links are followed (the file holds no
 * secret).  O_NONBLOCK: a FIFO or a device is refused after fstat()
 * instead of hanging C_Initialize in open() (it changes nothing for a
 * regular file).
 */
static int
read_conf_file(const char *path, char **ret, size_t *ret_len, char *err,
    size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	int fd, r = SG_ERR_IO;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK)) < 0) {
		if (errno == ENOENT)
			return SG_ERR_NOT_FOUND;
		return sg_err_set(err, errlen, SG_ERR_IO, "%s: %s", path,
		    strerror(errno));
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		r = sg_err_set(err, errlen, SG_ERR_IO, "%s: not a regular "
		    "file (a configuration file must be one)", path);
		goto out;
	}
	if (st.st_size > P11M_CONF_FILE_MAX) {
		r = sg_err_set(err, errlen, SG_ERR_TOO_LARGE, "%s: larger "
		    "than %d bytes", path, P11M_CONF_FILE_MAX);
		goto out;
	}
	if ((buf = malloc(P11M_CONF_FILE_MAX + 2)) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	for (;;) {
		n = read(fd, buf + len, P11M_CONF_FILE_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = sg_err_set(err, errlen, SG_ERR_IO, "%s: %s", path,
			    strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > P11M_CONF_FILE_MAX) {
			r = sg_err_set(err, errlen, SG_ERR_TOO_LARGE, "%s: "
			    "larger than %d bytes", path, P11M_CONF_FILE_MAX);
			goto out;
		}
	}
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	buf = NULL;
	r = 0;
out:
	free(buf);
	close(fd);
	return r;
}

static int
load_file(const char *path, struct p11m_conf *ret, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	int r;

	if ((r = read_conf_file(path, &text, &len, err, errlen)) != 0)
		return r;
	r = p11m_conf_parse(path, text, len, ret, err, errlen);
	free(text);
	return r;
}

int
p11m_conf_load(struct p11m_conf *ret, char *err, size_t errlen)
{
	const char *v, *home;
	char *user = NULL;
	int r;

	if ((v = env_nonempty("SIGNGATE_PKCS11_CONF")) != NULL) {
		r = load_file(v, ret, err, errlen);
		if (r == SG_ERR_NOT_FOUND)
			r = sg_err_set(err, errlen, SG_ERR_IO, "%s: %s (named "
			    "by SIGNGATE_PKCS11_CONF)", v, strerror(ENOENT));
		return r;
	}
	if ((v = env_nonempty("XDG_CONFIG_HOME")) != NULL && v[0] == '/') {
		if (asprintf(&user, "%s/signgate/pkcs11.conf", v) < 0)
			return SG_ERR_NOMEM;
	} else if ((home = env_nonempty("HOME")) != NULL && home[0] == '/') {
		if (asprintf(&user, "%s/.config/signgate/pkcs11.conf",
		    home) < 0)
			return SG_ERR_NOMEM;
	}
	if (user != NULL) {
		r = load_file(user, ret, err, errlen);
		free(user);
		if (r != SG_ERR_NOT_FOUND)
			return r;
	}
	r = load_file(P11M_SYSTEM_CONF, ret, err, errlen);
	if (r != SG_ERR_NOT_FOUND)
		return r;
	return p11m_conf_from_env(ret, err, errlen);
}

void
p11m_sign_env_clear(struct p11m_sign_env *e)
{
	if (e == NULL)
		return;
	free(e->evidence_dir);
	memset(e, 0, sizeof(*e));
}

/* The host program's short name as an artifact value ("unknown" when it
 * is not text the gateway takes). */
static void
host_name(char *out, size_t cap)
{
	const char *p = program_invocation_short_name;
	char why[256];

	if (p == NULL || !artifact_ok(p, why, sizeof(why)))
		p = "unknown";
	snprintf(out, cap, "%s", p);
}

int
p11m_sign_env_load(const struct p11m_conf *c, struct p11m_sign_env *ret,
    char *err, size_t errlen)
{
	struct p11m_sign_env e;
	struct origin o = { NULL, 0, "" };
	char why[512];
	const char *v;
	int r;

	memset(&e, 0, sizeof(e));
	host_name(e.tool, sizeof(e.tool));
	if ((v = env_nonempty("SIGNGATE_PKCS11_ARTIFACT")) != NULL) {
		o.field = "SIGNGATE_PKCS11_ARTIFACT";
		if (!artifact_ok(v, why, sizeof(why))) {
			r = conf_err(err, errlen, &o, SG_ERR_INVALID, "%s",
			    why);
			goto out;
		}
	} else
		v = c->artifact;
	if (v != NULL)
		snprintf(e.artifact, sizeof(e.artifact), "%s", v);
	else
		snprintf(e.artifact, sizeof(e.artifact), "%s", e.tool);
	if ((v = env_nonempty("SIGNGATE_PKCS11_GRANT")) != NULL) {
		o.field = "SIGNGATE_PKCS11_GRANT";
		if (!sg_request_id_ok(v)) {
			r = conf_err(err, errlen, &o, SG_ERR_INVALID,
			    "must be a grant id (%d lower-case hex digits)",
			    SG_REQUEST_ID_LEN);
			goto out;
		}
	} else
		v = c->grant;
	if (v != NULL)
		snprintf(e.grant, sizeof(e.grant), "%s", v);
	if ((v = env_nonempty("SIGNGATE_PKCS11_EVIDENCE_DIR")) != NULL) {
		o.field = "SIGNGATE_PKCS11_EVIDENCE_DIR";
		if (!dir_writable(v, why, sizeof(why))) {
			r = conf_err(err, errlen, &o, SG_ERR_INVALID, "%s",
			    why);
			goto out;
		}
	} else
		v = c->evidence_dir;
	if (v != NULL && (e.evidence_dir = strdup(v)) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	*ret = e;
	memset(&e, 0, sizeof(e));
	r = 0;
out:
	p11m_sign_env_clear(&e);
	return r;
}
