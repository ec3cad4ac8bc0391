/*
 * The witness's server (see include/sg_witnessd.h): the HTTP front
 * (sg_http.h, the gateway's own, in plain HTTP or TLS without client
 * certificates), one record per log, and the cosigning key.
 *
 * Records.  Each log has its own directory under state_dir,
 * "log-<the first 32 hex digits of SHA-256(origin)>", holding the
 * checkpoint last cosigned in the signer's record format (sg_witness.h:
 * checkpoint text, written to a temporary file, fsync'd, renamed over the
 * record and the directory fsync'd, under flock(2)).  The record names
 * its origin, so a directory given to another log is refused.
 *
 * Order.  A request takes its log's mutex, reads the record, decides
 * (sg_wd_decide), makes the new checkpoint the record durably, and only
 * then signs and answers; concurrent requests for one log are therefore
 * decided one after the other, each against the record the previous one
 * left (the race c2sp.org/tlog-witness warns of cannot happen).  The
 * record module checks again under its own lock that the new tree extends
 * the recorded one, so even a second process on the same directory cannot
 * roll it back.  Requests for different logs do not wait for each other.
 *
 * Beside the record: the note last cosigned, and the evidence of a fork
 * (keep_fork below).
 *
 * Every decision is logged on one line: the log's origin (escaped), the
 * sizes, the status and why.  Key material never is.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sg_cosig.h"
#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_http.h"
#include "sg_util.h"
#include "sg_witness.h"
#include "sg_witnessd.h"

#define ADD_CHECKPOINT "/add-checkpoint"
#define TYPE_TEXT "text/plain; charset=utf-8"
#define TYPE_SIZE "text/x.tlog.size"

struct wd_log {
	struct sg_wd_log log;
	struct sg_witness *rec;
	char *dir;                     /* its directory under state_dir */
	pthread_mutex_t lock;
};

struct sg_wd {
	char *name;
	struct sg_wd_key *key;
	struct wd_log *logs;
	size_t nlogs;
	struct sg_http *http;
};

/* state_dir: created 0700 if missing; a directory of ours that group and
 * others cannot write. */
static int
check_state_dir(const char *dir, char *err, size_t errlen)
{
	struct stat sb;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return sg_err_set(err, errlen, SG_ERR_IO, "state_dir %s: "
		    "cannot create: %s", dir, strerror(errno));
	if (lstat(dir, &sb) != 0)
		return sg_err_set(err, errlen, SG_ERR_IO, "state_dir %s: %s",
		    dir, strerror(errno));
	if (!S_ISDIR(sb.st_mode))
		return sg_err_set(err, errlen, SG_ERR_IO, "state_dir %s: not "
		    "a directory", dir);
	if (sb.st_uid != geteuid())
		return sg_err_set(err, errlen, SG_ERR_PERMISSIONS, "state_dir "
		    "%s: owned by uid %u, not by the witness's user (uid %u)",
		    dir, (unsigned)sb.st_uid, (unsigned)geteuid());
	if ((sb.st_mode & 022) != 0)
		return sg_err_set(err, errlen, SG_ERR_PERMISSIONS, "state_dir "
		    "%s: group or others may write it (mode %04o); it must be "
		    "the witness's alone", dir, (unsigned)(sb.st_mode & 07777));
	return 0;
}

static int
open_record(const char *state_dir, struct wd_log *l, char *err,
    size_t errlen)
{
	uint8_t h[32];
	char hex[65], *dir = NULL;
	int r;

	sg_sha256(l->log.origin, strlen(l->log.origin), h);
	sg_hex_encode(h, 16, hex);
	if (asprintf(&dir, "%s/log-%s", state_dir, hex) < 0)
		return SG_ERR_NOMEM;
	r = sg_witness_open(dir, l->log.origin, &l->rec, err, errlen);
	l->dir = dir;
	return r;
}

static void
wd_free(struct sg_wd *w)
{
	size_t i;

	if (w == NULL)
		return;
	for (i = 0; w->logs != NULL && i < w->nlogs; i++) {
		sg_witness_free(w->logs[i].rec);
		free(w->logs[i].dir);
		pthread_mutex_destroy(&w->logs[i].lock);
	}
	free(w->logs);
	free(w->name);
	sg_wd_key_free(w->key);
	free(w);
}

static void
log_decision(const char *origin, const struct sg_wd_request *q, int status,
    const char *why)
{
	char o[2 * SG_NOTE_NAME_MAX + 8], e[600];

	sg_escape(origin, strlen(origin), o, sizeof(o));
	sg_escape(why, strlen(why), e, sizeof(e));
	if (status == 200 || status == 409)
		sg_log_info("add-checkpoint: log '%s' old %llu size %llu: %d: "
		    "%s", o, (unsigned long long)q->old_size,
		    (unsigned long long)q->cp.size, status, e);
	else
		sg_log_warn("add-checkpoint: log '%s' old %llu size %llu: %d: "
		    "%s", o, (unsigned long long)q->old_size,
		    (unsigned long long)q->cp.size, status, e);
}

static int
answer(int status, const char *type, char **ret_body, const char **ret_type,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int
answer(int status, const char *type, char **ret_body, const char **ret_type,
    const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	*ret_body = s;
	*ret_type = type;
	return s != NULL ? status : 500;
}

/*
 * Evidence.  The signed note last cosigned is kept beside the record
 * ("note", informational: the record is what counts).  A checkpoint of
 * the recorded size with another root, validly signed by the log, proves
 * a fork: both notes are kept in "fork-<size>", once per size (only the
 * log's key can make more), and the journal names the file.
 */
static void
keep_note(struct wd_log *l, const struct sg_wd_request *q)
{
	char *path = NULL;

	if (asprintf(&path, "%s/note", l->dir) < 0)
		return;
	if (sg_write_file(path, q->note, q->note_len, 0600) != 0)
		sg_log_warn("add-checkpoint: cannot keep the note in %s", path);
	free(path);
}

static void
keep_fork(struct wd_log *l, const struct sg_wd_request *q)
{
	char *path = NULL, *ours = NULL, *both = NULL;
	size_t olen = 0;
	int fd = -1, n;

	if (asprintf(&path, "%s/note", l->dir) < 0)
		return;
	if (sg_read_file(path, SG_NOTE_MAX, &ours, &olen) != 0) {
		ours = NULL;
		olen = 0;
	}
	free(path);
	path = NULL;
	n = asprintf(&both, "The checkpoint cosigned:\n\n%.*s\nThe fork "
	    "submitted:\n\n%.*s", (int)olen, ours != NULL ? ours : "",
	    (int)q->note_len, q->note);
	if (n < 0 || asprintf(&path, "%s/fork-%llu", l->dir,
	    (unsigned long long)q->cp.size) < 0)
		goto out;
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) < 0)
		goto out;              /* kept already */
	if (write(fd, both, (size_t)n) == n && fsync(fd) == 0)
		sg_log_error("add-checkpoint: FORK of log '%s' at %llu "
		    "entries: both signed checkpoints are kept in %s",
		    l->log.origin, (unsigned long long)q->cp.size, path);
out:
	if (fd >= 0)
		close(fd);
	free(both);
	free(ours);
	free(path);
}

/* The request for the log, decided and recorded under its lock. */
static int
handle_log(struct sg_wd *w, struct wd_log *l, const struct sg_wd_request *q,
    uint64_t now, char **ret_body, const char **ret_type)
{
	struct sg_witness_record rec, after;
	struct sg_witness_request wr;
	char why[512], *line = NULL;
	int status, r;

	pthread_mutex_lock(&l->lock);
	if ((r = sg_witness_get(l->rec, &rec, why, sizeof(why))) != 0) {
		sg_log_error("add-checkpoint: %s", why);
		status = answer(500, TYPE_TEXT, ret_body, ret_type,
		    "the witness cannot read its record\n");
		goto out;
	}
	status = sg_wd_decide(&l->log, &rec, q, why, sizeof(why));
	log_decision(l->log.origin, q, status, why);
	if (status == 409 && rec.present && q->old_size == rec.size &&
	    q->cp.size == rec.size)
		keep_fork(l, q);
	if (status == 409) {
		status = answer(409, TYPE_SIZE, ret_body, ret_type, "%llu\n",
		    rec.present ? (unsigned long long)rec.size : 0ULL);
		goto out;
	}
	if (status != 200) {
		status = answer(status, TYPE_TEXT, ret_body, ret_type, "%s\n",
		    why);
		goto out;
	}
	memset(&wr, 0, sizeof(wr));
	wr.size = q->cp.size;
	memcpy(wr.root, q->cp.root, SG_HASH_LEN);
	wr.old_size = q->old_size;
	memcpy(wr.proof, q->proof, q->nproof * SG_HASH_LEN);
	wr.nproof = q->nproof;
	if ((r = sg_witness_advance(l->rec, &wr, &after, why,
	    sizeof(why))) != 0) {
		/* The record changed under us (another process), or the disk
		 * failed: nothing is cosigned. */
		sg_log_error("add-checkpoint: not recorded: %s", why);
		if (r == SG_ERR_IO)
			status = answer(500, TYPE_TEXT, ret_body, ret_type,
			    "the witness cannot write its record\n");
		else
			status = answer(409, TYPE_SIZE, ret_body, ret_type,
			    "%llu\n", after.present ?
			    (unsigned long long)after.size : 0ULL);
		goto out;
	}
	if ((r = sg_wd_key_cosign(w->key, w->name, q->note, q->text_len, now,
	    &line)) != 0) {
		sg_log_error("add-checkpoint: cannot cosign: %s",
		    sg_strerror(r));
		status = answer(500, TYPE_TEXT, ret_body, ret_type,
		    "the witness cannot sign\n");
		goto out;
	}
	if (!rec.present || rec.size != q->cp.size)
		keep_note(l, q);
	*ret_body = line;
	*ret_type = TYPE_TEXT;
	status = 200;
out:
	pthread_mutex_unlock(&l->lock);
	return status;
}

int
sg_wd_handle(struct sg_wd *w, const char *body, size_t len, uint64_t now,
    char **ret_body, const char **ret_type)
{
	struct sg_wd_request *q;
	char why[512];
	size_t i;
	int r, status;

	*ret_body = NULL;
	*ret_type = TYPE_TEXT;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return answer(500, TYPE_TEXT, ret_body, ret_type, "out of "
		    "memory\n");
	if ((r = sg_wd_parse(body, len, q, why, sizeof(why))) != 0) {
		sg_log_info("add-checkpoint: malformed: %s", why);
		status = answer(r == SG_ERR_TOO_LARGE ? 413 : 400, TYPE_TEXT,
		    ret_body, ret_type, "%s\n", why);
		goto out;
	}
	for (i = 0; i < w->nlogs; i++)
		if (strcmp(w->logs[i].log.origin, q->cp.origin) == 0)
			break;
	if (i == w->nlogs) {
		log_decision(q->cp.origin, q, 404, "unknown log");
		status = answer(404, TYPE_TEXT, ret_body, ret_type,
		    "unknown log\n");
		goto out;
	}
	status = handle_log(w, &w->logs[i], q, now, ret_body, ret_type);
out:
	free(q);
	return status;
}

static void
handler(void *ctx, const struct sg_http_request *req,
    struct sg_http_response *resp)
{
	struct sg_wd *w = ctx;
	const char *type = TYPE_TEXT;
	char *body = NULL;
	int status;

	if (strcmp(req->path, ADD_CHECKPOINT) != 0) {
		status = answer(404, TYPE_TEXT, &body, &type, "not found: "
		    "POST %s\n", ADD_CHECKPOINT);
	} else if (strcmp(req->method, "POST") != 0) {
		status = answer(405, TYPE_TEXT, &body, &type, "POST only\n");
	} else {
		status = sg_wd_handle(w, req->body, req->body_len,
		    (uint64_t)time(NULL), &body, &type);
	}
	resp->status = status;
	resp->content_type = type;
	resp->body = body;
	resp->body_len = body != NULL ? strlen(body) : 0;
}

int
sg_wd_open(const struct sg_wd_config *cfg, struct sg_wd_key *key,
    struct sg_wd **ret, char *err, size_t errlen)
{
	struct sg_wd *w;
	size_t i;
	int r;

	if ((w = calloc(1, sizeof(*w))) == NULL) {
		sg_wd_key_free(key);
		return SG_ERR_NOMEM;
	}
	w->key = key;
	if ((w->name = strdup(cfg->name)) == NULL ||
	    (w->logs = calloc(cfg->nlogs, sizeof(*w->logs))) == NULL) {
		r = SG_ERR_NOMEM;
		goto fail;
	}
	if ((r = check_state_dir(cfg->state_dir, err, errlen)) != 0)
		goto fail;
	for (i = 0; i < cfg->nlogs; i++) {
		w->logs[i].log = cfg->logs[i];
		pthread_mutex_init(&w->logs[i].lock, NULL);
		w->nlogs = i + 1;
		if ((r = open_record(cfg->state_dir, &w->logs[i], err,
		    errlen)) != 0)
			goto fail;
	}
	*ret = w;
	return 0;
fail:
	wd_free(w);
	return r;
}

int
sg_wd_listen(struct sg_wd *w, const struct sg_wd_config *cfg, char *err,
    size_t errlen)
{
	struct sg_http_config hc;

	memset(&hc, 0, sizeof(hc));
	hc.address = cfg->listen_address;
	hc.port = cfg->port;
	hc.plain_http = cfg->plain_http;
	hc.cert_file = cfg->tls_certificate;
	hc.key_file = cfg->tls_private_key;
	/* Anyone may submit: the log's signature is the authentication. */
	hc.no_client_cert = 1;
	hc.threads = cfg->threads;
	hc.connection_limit = 256;
	hc.per_ip_connection_limit = 64;
	hc.connection_timeout = 30;
	hc.handshake_timeout = 10;
	hc.first_request_timeout = 10;
	hc.request_timeout = 30;
	return sg_http_start(&hc, handler, w, &w->http, err, errlen);
}

uint16_t
sg_wd_port(const struct sg_wd *w)
{
	return sg_http_port(w->http);
}

void
sg_wd_stop(struct sg_wd *w)
{
	if (w == NULL)
		return;
	/* The front first: no handler runs once it has stopped. */
	sg_http_stop(w->http);
	w->http = NULL;
	wd_free(w);
}
