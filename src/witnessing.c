/*
 * Submitting checkpoints to witnesses (include/sg_witnessing.h).
 *
 * One thread, never the store's writer: a checkpoint is stored first
 * (src/tlog.c), the writer only wakes this thread, and this thread does a
 * round:
 *
 *   1. in a read snapshot: the newest stored checkpoint (the log's note
 *      and the cosignature lines stored for it), the size each witness
 *      acknowledged last (table witness_sizes), and for each witness
 *      without a valid cosignature on that checkpoint yet, a consistency
 *      proof from that size;
 *   2. one POST add-checkpoint per such witness, all at once on a libcurl
 *      multi handle, the whole bounded by timeout_ms;
 *   3. a 200's cosignature lines are verified with the witness's key, a
 *      409's size (text/x.tlog.size) becomes the witness's size and the
 *      submission is made once more from there, in a second pass;
 *   4. in a write job: the new lines are merged into those stored (one
 *      line per witness; a line another gateway stored first is kept),
 *      with the number of distinct configured witnesses they come from,
 *      and the witnesses' sizes (only ever raised).
 *
 * Several gateways on one database may submit the same checkpoint: the
 * second gets a 409 naming the checkpoint's own size, submits again from
 * there (an empty proof, which a witness answers with its cosignature
 * once more), and the merge keeps one line per witness.  A 409 above the
 * newest stored checkpoint is first checked against the store (another
 * gateway may have stored a newer one meanwhile).
 *
 * Alarms.  A witness that has seen a larger tree than the store holds (a
 * 409 with a larger size), or that cannot verify the consistency of our
 * tree with the one it saw (422), or whose size we cannot prove
 * consistency from, has seen another log than the one this gateway now
 * holds: a restored backup or a fork.  That is logged as an error naming
 * the witness and the sizes, counted, and reported by
 * sg_witnessing_alarm() (and so /readyz) until that witness cosigns again.
 *
 * Rounds repeat while a witness lacks the newest checkpoint, after 1, 2,
 * 4 ... 30 seconds; a new checkpoint or a waiting answer starts one at
 * once.  Without anything to do, a round every 30 seconds notices the
 * checkpoints other gateways stored.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "sg_cosig.h"
#include "sg_curl.h"
#include "sg_db.h"
#include "sg_err.h"
#include "sg_util.h"
#include "sg_witnessing.h"

#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 30000
#define IDLE_MS 30000
#define CONNECT_MS 2000

/* One witness, as this gateway knows it. */
struct wit {
	const struct sg_witness_config *c;
	uint64_t size;                 /* acknowledged last (0: none known) */
	uint64_t cosignatures, failures, alarms;
	char alarm[256];               /* "" unless it reported a fork */
	char last_error[160];          /* the last failure logged */
};

struct sg_witnessing {
	const struct sg_witnesses_config *cfg;
	struct sg_store *st;
	struct sg_tlog *log;
	pthread_t thread;
	int started;
	pthread_mutex_t lock;
	pthread_cond_t wake;           /* the thread: something to do */
	pthread_cond_t done;           /* waiters: a round ended */
	int stop, kicked;
	int fresh;                     /* no round yet since the start */
	uint64_t rounds;               /* ended */
	uint64_t round_size;           /* the checkpoint the last round had */
	struct wit w[SG_WITNESSES_MAX];
};

/* --- pure parts --- */

int
sg_witness_submission(uint64_t old_size,
    const uint8_t (*proof)[SG_HASH_LEN], size_t nproof, const char *note,
    char **ret, size_t *ret_len)
{
	size_t cap, len, i, nl = strlen(note);
	char *buf, *b;
	int n;

	*ret = NULL;
	if (nproof > SG_MERKLE_MAX_PROOF || nl == 0 || nl > SG_NOTE_MAX)
		return SG_ERR_INVALID;
	/* "old " 20 digits LF, 44 base64 and LF a hash, LF, note, NUL */
	cap = 4 + 20 + 1 + nproof * 45 + 1 + nl + 1;
	if ((buf = malloc(cap)) == NULL)
		return SG_ERR_NOMEM;
	n = snprintf(buf, cap, "old %llu\n", (unsigned long long)old_size);
	len = (size_t)n;
	for (i = 0; i < nproof; i++) {
		if ((b = sg_b64_encode(proof[i], SG_HASH_LEN)) == NULL) {
			free(buf);
			return SG_ERR_NOMEM;
		}
		len += (size_t)snprintf(buf + len, cap - len, "%s\n", b);
		free(b);
	}
	buf[len++] = '\n';
	memcpy(buf + len, note, nl);
	len += nl;
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	return 0;
}

int
sg_witness_parse_size(const char *body, size_t len, uint64_t *ret)
{
	char digits[21];
	size_t n = len;

	if (n > 0 && body[n - 1] == '\n')
		n--;
	if (n == 0 || n >= sizeof(digits) || (n > 1 && body[0] == '0'))
		return SG_ERR_INVALID;
	memcpy(digits, body, n);
	digits[n] = '\0';
	if (strspn(digits, "0123456789") != n)
		return SG_ERR_INVALID;
	return sg_parse_u64(digits, 0, SG_MERKLE_MAX_SIZE, ret);
}

unsigned
sg_witness_count(const struct sg_witnesses_config *cfg, const char *note,
    const char *lines, uint8_t *which)
{
	const struct sg_witness_config *wc;
	char *both = NULL;
	unsigned count = 0;
	uint64_t t;
	size_t i;

	if (which != NULL)
		memset(which, 0, cfg->n);
	if (lines == NULL || lines[0] == '\0' ||
	    asprintf(&both, "%s%s", note, lines) < 0)
		return 0;
	for (i = 0; i < cfg->n; i++) {
		wc = &cfg->list[i];
		if (sg_cosig_verify(both, strlen(both), wc->name, wc->id,
		    wc->pub, &t) != 0)
			continue;
		count++;
		if (which != NULL)
			which[i] = 1;
	}
	free(both);
	return count;
}

int
sg_witness_merge(const struct sg_witnesses_config *cfg, const char *note,
    const char *stored, char *const *lines, char **ret, unsigned *ret_count)
{
	uint8_t had[SG_WITNESSES_MAX];
	char *merged, *next;
	size_t i;

	*ret = NULL;
	sg_witness_count(cfg, note, stored, had);
	if ((merged = strdup(stored)) == NULL)
		return SG_ERR_NOMEM;
	for (i = 0; i < cfg->n; i++) {
		if (lines[i] == NULL || had[i])
			continue;
		if (asprintf(&next, "%s%s", merged, lines[i]) < 0) {
			free(merged);
			return SG_ERR_NOMEM;
		}
		free(merged);
		merged = next;
	}
	*ret_count = sg_witness_count(cfg, note, merged, NULL);
	*ret = merged;
	return 0;
}

int
sg_witness_released(enum sg_witness_mode mode, uint64_t size,
    uint64_t quorum_size, uint64_t round_size)
{
	if (quorum_size >= size)
		return 1;
	return mode == SG_WITNESS_BEST_EFFORT && round_size >= size;
}

/* --- one round --- */

/* One submission in flight. */
struct sub {
	struct wit *wt;
	size_t i;                      /* its index in the configuration */
	uint64_t old;
	CURL *curl;
	char curl_err[CURL_ERROR_SIZE];
	struct curl_slist *hdrs;
	char *body;
	size_t body_len;
	char answer[SG_WITNESS_ANSWER_MAX + 1];
	size_t alen;
	int overflow;
	CURLcode cr;
	long status;
	char ctype[64];
	int active;
};

static size_t
collect(char *p, size_t size, size_t nmemb, void *arg)
{
	struct sub *s = arg;
	size_t n = size * nmemb;

	if (n > SG_WITNESS_ANSWER_MAX - s->alen) {
		s->overflow = 1;
		return 0;
	}
	memcpy(s->answer + s->alen, p, n);
	s->alen += n;
	s->answer[s->alen] = '\0';
	return n;
}

/* "<url>/add-checkpoint", the URL's trailing slashes dropped. */
static char *
endpoint(const char *url)
{
	size_t n = strlen(url);
	char *e = NULL;

	while (n > 0 && url[n - 1] == '/')
		n--;
	if (asprintf(&e, "%.*s/add-checkpoint", (int)n, url) < 0)
		return NULL;
	return e;
}

/* The client's handle (sg_curl_new: TLS, no redirects, the witness's CA
 * file), a connection in at most 2 s, the whole in timeout_ms. */
static int
sub_setup(struct sub *s, unsigned timeout_ms)
{
	char *url;
	struct curl_slist *nh;
	int r;

	if ((url = endpoint(s->wt->c->url)) == NULL)
		return SG_ERR_NOMEM;
	if ((nh = curl_slist_append(NULL, "Content-Type: text/plain")) ==
	    NULL || (s->hdrs = curl_slist_append(nh, "Expect:")) == NULL) {
		curl_slist_free_all(nh);
		free(url);
		return SG_ERR_NOMEM;
	}
	if ((r = sg_curl_new(s->wt->c->ca_file, CONNECT_MS / 1000,
	    s->curl_err, collect, s, &s->curl)) != 0) {
		free(url);
		return r;
	}
	r = SG_ERR_INTERNAL;
#define SET(opt, val)							\
	if (curl_easy_setopt(s->curl, (opt), (val)) != CURLE_OK)	\
		goto out
	SET(CURLOPT_URL, url);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout_ms < CONNECT_MS ?
	    timeout_ms : CONNECT_MS));
	SET(CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	SET(CURLOPT_HTTPHEADER, s->hdrs);
	SET(CURLOPT_POSTFIELDS, s->body);
	SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->body_len);
	SET(CURLOPT_PRIVATE, s);
#undef SET
	r = 0;
out:
	free(url);
	return r;
}

static void
sub_clear(CURLM *m, struct sub *s)
{
	if (s->curl != NULL) {
		if (s->active)
			curl_multi_remove_handle(m, s->curl);
		curl_easy_cleanup(s->curl);
	}
	curl_slist_free_all(s->hdrs);
	free(s->body);
	memset(s, 0, sizeof(*s));
}

static int
stopping(struct sg_witnessing *w)
{
	int stop;

	pthread_mutex_lock(&w->lock);
	stop = w->stop;
	pthread_mutex_unlock(&w->lock);
	return stop;
}

/* Runs the submissions at once until each ended, the deadline, or the
 * daemon stops (what is in flight is abandoned). */
static void
fly(struct sg_witnessing *w, struct sub *subs, size_t n, unsigned timeout_ms)
{
	CURLM *m;
	CURLMsg *msg;
	struct sub *s;
	int64_t deadline = sg_mono_ms() + timeout_ms;
	int running = 0, left;
	size_t i;
	char *ct;

	if ((m = curl_multi_init()) == NULL) {
		for (i = 0; i < n; i++)
			subs[i].cr = CURLE_OUT_OF_MEMORY;
		return;
	}
	for (i = 0; i < n; i++) {
		subs[i].cr = CURLE_OPERATION_TIMEDOUT;
		if (subs[i].curl == NULL)
			subs[i].cr = CURLE_FAILED_INIT;
		else if (curl_multi_add_handle(m, subs[i].curl) == CURLM_OK)
			subs[i].active = 1;
		else
			subs[i].cr = CURLE_FAILED_INIT;
	}
	do {
		if (curl_multi_perform(m, &running) != CURLM_OK)
			break;
		while ((msg = curl_multi_info_read(m, &left)) != NULL) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			s = NULL;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
			    (char **)&s);
			if (s == NULL)
				continue;
			s->cr = msg->data.result;
			curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE,
			    &s->status);
			ct = NULL;
			if (curl_easy_getinfo(s->curl, CURLINFO_CONTENT_TYPE,
			    &ct) == CURLE_OK && ct != NULL)
				snprintf(s->ctype, sizeof(s->ctype), "%s", ct);
		}
		if (running > 0)
			curl_multi_poll(m, NULL, 0, 100, NULL);
	} while (running > 0 && sg_mono_ms() < deadline && !stopping(w));
	for (i = 0; i < n; i++)
		if (subs[i].active) {
			curl_multi_remove_handle(m, subs[i].curl);
			subs[i].active = 0;
		}
	curl_multi_cleanup(m);
}

/* What a round works from, read in one snapshot. */
struct snap {
	uint64_t size;                 /* the newest stored checkpoint */
	char *note;
	char *cosigs;
	uint8_t have[SG_WITNESSES_MAX]; /* a valid cosignature stored */
	uint64_t acked[SG_WITNESSES_MAX];
};

static void
snap_clear(struct snap *sn)
{
	free(sn->note);
	free(sn->cosigs);
	memset(sn, 0, sizeof(*sn));
}

static int
read_sizes(struct sg_txn *t, const struct sg_witnesses_config *cfg,
    uint64_t *acked)
{
	struct sg_db_stmt *s = NULL;
	size_t i;
	int rc;

	if (sg_db_prepare(sg_store_txn_db(t), "SELECT size FROM "
	    "witness_sizes WHERE vkey = ?1", &s) != 0)
		return SG_ERR_IO;
	for (i = 0; i < cfg->n; i++) {
		sg_db_reset(s);
		sg_db_bind_text(s, 1, cfg->list[i].vkey);
		rc = sg_db_step(s);
		if (rc == SG_DB_ROW)
			acked[i] = (uint64_t)sg_db_column_int64(s, 0);
		else if (rc != SG_DB_DONE) {
			sg_db_finalize(s);
			return SG_ERR_IO;
		}
	}
	sg_db_finalize(s);
	return 0;
}

static int
snapshot(struct sg_witnessing *w, struct snap *sn)
{
	struct sg_txn *t;
	int r;

	memset(sn, 0, sizeof(*sn));
	if (sg_store_read_begin(w->st, &t) != 0)
		return SG_ERR_UNAVAILABLE;
	if ((r = sg_tlog_latest(t, &sn->size, &sn->note, &sn->cosigs)) == 0)
		r = read_sizes(t, w->cfg, sn->acked);
	sg_store_read_end(t);
	if (r != 0) {
		snap_clear(sn);
		return r;
	}
	sg_witness_count(w->cfg, sn->note, sn->cosigs, sn->have);
	return 0;
}

/* The submission to witness i of the snapshot's checkpoint, from old. */
static int
prepare(struct sg_witnessing *w, const struct snap *sn, size_t i,
    uint64_t old, struct sub *s)
{
	uint8_t (*proof)[SG_HASH_LEN] = NULL;
	struct sg_txn *t;
	size_t np = 0;
	int r = 0;

	memset(s, 0, sizeof(*s));
	s->wt = &w->w[i];
	s->i = i;
	s->old = old;
	if (old > 0 && old < sn->size) {
		if ((proof = calloc(SG_MERKLE_MAX_PROOF, SG_HASH_LEN)) == NULL)
			return SG_ERR_NOMEM;
		if (sg_store_read_begin(w->st, &t) != 0)
			r = SG_ERR_UNAVAILABLE;
		else {
			r = sg_tlog_consistency_latest(t, old, sn->size, proof,
			    SG_MERKLE_MAX_PROOF, &np);
			sg_store_read_end(t);
		}
	}
	if (r == 0)
		r = sg_witness_submission(old, (const uint8_t (*)[SG_HASH_LEN])
		    proof, np, sn->note, &s->body, &s->body_len);
	free(proof);
	return r;
}

static void
failure(struct sg_witnessing *w, struct wit *wt, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A submission without a cosignature: counted; logged when the reason
 * changes, not every round. */
static void
failure(struct sg_witnessing *w, struct wit *wt, const char *fmt, ...)
{
	char why[sizeof(wt->last_error)];
	va_list ap;
	int changed;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&w->lock);
	wt->failures++;
	changed = strcmp(wt->last_error, why) != 0;
	if (changed)
		snprintf(wt->last_error, sizeof(wt->last_error), "%s", why);
	pthread_mutex_unlock(&w->lock);
	if (changed)
		sg_log_warn("witness %s: no cosignature: %s", wt->c->name, why);
}

/* The log this gateway holds is not the one the witness saw. */
static void
alarm_raise(struct sg_witnessing *w, struct wit *wt, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
alarm_raise(struct sg_witnessing *w, struct wit *wt, const char *fmt, ...)
{
	char why[sizeof(wt->alarm)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	sg_log_error("witness %s: THE LOG WAS ROLLED BACK OR FORKED: %s.  "
	    "No checkpoint is cosigned by this witness until an operator "
	    "acts: see \"Witnesses\" in OPERATIONS.md", wt->c->name, why);
	pthread_mutex_lock(&w->lock);
	wt->alarms++;
	wt->failures++;
	snprintf(wt->alarm, sizeof(wt->alarm), "%s", why);
	snprintf(wt->last_error, sizeof(wt->last_error), "%s", "alarm");
	pthread_mutex_unlock(&w->lock);
}

/* The size of the newest checkpoint with at least `quorum` cosignatures
 * (0: the newest stored), 0 if none or it cannot be read. */
static uint64_t
newest_size(struct sg_witnessing *w, unsigned quorum)
{
	struct sg_txn *t;
	uint64_t size = 0;

	if (sg_store_read_begin(w->st, &t) != 0)
		return 0;
	if (sg_tlog_quorum_size(t, quorum, &size) != 0)
		size = 0;
	sg_store_read_end(t);
	return size;
}

/* The outcome of one submission; *again set when it is to be made once
 * more from the witness's size (a 409 we can prove from). */
struct outcome {
	char *lines;                   /* verified cosignature lines */
	int acked;                     /* acked size learned */
	uint64_t size;
	int again;
};

/* The lines of a 200, checked: every one a cosignature by this witness
 * over the note, verified. */
static int
check_lines(const struct sg_witness_config *wc, const char *note,
    const char *body, size_t len, char **ret)
{
	char *both = NULL;
	uint64_t t;
	size_t i, start;
	int r;

	*ret = NULL;
	if (len == 0 || body[len - 1] != '\n' || strlen(body) != len)
		return SG_ERR_INVALID;
	/* Each line "— <name> <base64>\n" of this witness's name. */
	for (start = 0, i = 0; i < len; i++) {
		if (body[i] != '\n')
			continue;
		if (i - start < 4 || memcmp(body + start, "\xe2\x80\x94 ",
		    4) != 0 || i - start <= 4 + strlen(wc->name) ||
		    memcmp(body + start + 4, wc->name, strlen(wc->name)) != 0 ||
		    body[start + 4 + strlen(wc->name)] != ' ')
			return SG_ERR_INVALID;
		start = i + 1;
	}
	if (asprintf(&both, "%s%s", note, body) < 0)
		return SG_ERR_NOMEM;
	r = sg_cosig_verify(both, strlen(both), wc->name, wc->id, wc->pub, &t);
	free(both);
	if (r != 0)
		return SG_ERR_VERIFY;
	if ((*ret = strdup(body)) == NULL)
		return SG_ERR_NOMEM;
	return 0;
}

static void
judge(struct sg_witnessing *w, const struct snap *sn, struct sub *s,
    int last_pass, struct outcome *o)
{
	struct wit *wt = s->wt;
	uint64_t size, have;
	char esc[128];

	if (s->cr != CURLE_OK) {
		failure(w, wt, "%s", s->overflow ? "the answer is too long" :
		    curl_easy_strerror(s->cr));
		return;
	}
	if (s->status == 200) {
		if (check_lines(wt->c, sn->note, s->answer, s->alen,
		    &o->lines) != 0) {
			sg_escape(s->answer, s->alen < 60 ? s->alen : 60, esc,
			    sizeof(esc));
			failure(w, wt, "its answer is not a valid cosignature "
			    "of the checkpoint: \"%s\"", esc);
			return;
		}
		o->acked = 1;
		o->size = sn->size;
		return;
	}
	if (s->status == 409) {
		if (strncmp(s->ctype, "text/x.tlog.size", 16) != 0 ||
		    sg_witness_parse_size(s->answer, s->alen, &size) != 0) {
			failure(w, wt, "409 without a size");
			return;
		}
		if (size > sn->size) {
			/* Another gateway may have stored a newer one. */
			if ((have = newest_size(w, 0)) >= size) {
				failure(w, wt, "it has seen %llu entries, a "
				    "checkpoint stored since", (unsigned long
				    long)size);
				return;
			}
			alarm_raise(w, wt, "it has cosigned a tree of %llu "
			    "entries, larger than the %llu this gateway "
			    "holds", (unsigned long long)size,
			    (unsigned long long)have);
			return;
		}
		if (size == s->old && size == sn->size) {
			alarm_raise(w, wt, "it cosigned another tree of the "
			    "same size, %llu entries", (unsigned long long)
			    size);
			return;
		}
		if (size == s->old || last_pass) {
			failure(w, wt, "409 with its size %llu after a "
			    "submission from %llu", (unsigned long long)size,
			    (unsigned long long)s->old);
			return;
		}
		o->acked = 1;
		o->size = size;
		o->again = 1;
		return;
	}
	if (s->status == 422) {
		alarm_raise(w, wt, "it cannot verify that the tree of %llu "
		    "entries extends the tree of %llu entries it saw",
		    (unsigned long long)sn->size, (unsigned long long)s->old);
		return;
	}
	sg_escape(s->answer, s->alen < 100 ? s->alen : 100, esc, sizeof(esc));
	failure(w, wt, "HTTP status %ld%s%s", s->status, esc[0] ? ": " : "",
	    esc);
}

/* What a round stores: the lines and sizes it obtained. */
struct store_job {
	const struct sg_witnesses_config *cfg;
	uint64_t size;
	const char *note;
	char *lines[SG_WITNESSES_MAX];
	int acked[SG_WITNESSES_MAX];
	uint64_t acked_size[SG_WITNESSES_MAX];
	unsigned count;                /* after the merge */
};

static int
job_store(struct sg_txn *t, void *arg)
{
	struct store_job *j = arg;
	struct sg_db_stmt *s = NULL;
	char *cur = NULL, *merged = NULL;
	size_t i;
	int r = 0, rc;

	if ((r = sg_tlog_cosignatures(t, j->size, &cur)) != 0 &&
	    r != SG_ERR_NOT_FOUND)
		return r;
	/* Read again here, under the write lock: another gateway may have
	 * stored lines meanwhile, and they are kept. */
	if (r == 0) {
		if ((r = sg_witness_merge(j->cfg, j->note, cur, j->lines,
		    &merged, &j->count)) != 0)
			goto out;
		if (strcmp(merged, cur) != 0 && (r = sg_tlog_set_cosignatures(t,
		    j->size, merged, j->count)) != 0)
			goto out;
	}
	r = 0;
	if (sg_db_prepare(sg_store_txn_db(t), "INSERT INTO witness_sizes "
	    "(vkey, size, updated_at) VALUES (?1, ?2, ?3) ON CONFLICT (vkey) "
	    "DO UPDATE SET size = excluded.size, updated_at = "
	    "excluded.updated_at WHERE witness_sizes.size < excluded.size",
	    &s) != 0) {
		r = SG_ERR_IO;
		goto out;
	}
	for (i = 0; i < j->cfg->n; i++) {
		if (!j->acked[i])
			continue;
		sg_db_reset(s);
		sg_db_bind_text(s, 1, j->cfg->list[i].vkey);
		sg_db_bind_int64(s, 2, (int64_t)j->acked_size[i]);
		sg_db_bind_int64(s, 3, (int64_t)time(NULL));
		if ((rc = sg_db_step(s)) != SG_DB_DONE) {
			r = SG_ERR_IO;
			break;
		}
	}
	sg_db_finalize(s);
out:
	free(cur);
	free(merged);
	return r;
}

/* One pass over the witnesses that lack the snapshot's checkpoint (only
 * those named in `only`, when not NULL); again[i] set for those to be
 * asked once more from the size they named. */
static void
pass(struct sg_witnessing *w, const struct snap *sn, struct store_job *j,
    const uint8_t *only, uint8_t *again, int last_pass)
{
	struct sub *subs;
	struct outcome o;
	size_t i, n = 0;
	uint64_t old;

	if ((subs = calloc(w->cfg->n, sizeof(*subs))) == NULL)
		return;
	for (i = 0; i < w->cfg->n; i++) {
		if (sn->have[i] || (only != NULL && !only[i]))
			continue;
		old = j->acked[i] ? j->acked_size[i] : sn->acked[i];
		if (old > sn->size)
			old = 0;        /* the witness will tell its size */
		if (prepare(w, sn, i, old, &subs[n]) != 0) {
			alarm_raise(w, &w->w[i], "no consistency proof from "
			    "its size %llu to %llu entries can be made",
			    (unsigned long long)old,
			    (unsigned long long)sn->size);
			sub_clear(NULL, &subs[n]);
			continue;
		}
		if (sub_setup(&subs[n], w->cfg->timeout_ms) != 0) {
			failure(w, &w->w[i], "cannot set up the request");
			sub_clear(NULL, &subs[n]);
			continue;
		}
		n++;
	}
	if (n > 0)
		fly(w, subs, n, w->cfg->timeout_ms);
	for (i = 0; i < n; i++) {
		memset(&o, 0, sizeof(o));
		judge(w, sn, &subs[i], last_pass, &o);
		if (o.acked) {
			j->acked[subs[i].i] = 1;
			j->acked_size[subs[i].i] = o.size;
		}
		if (o.lines != NULL) {
			free(j->lines[subs[i].i]);
			j->lines[subs[i].i] = o.lines;
		}
		if (o.again && again != NULL)
			again[subs[i].i] = 1;
		sub_clear(NULL, &subs[i]);
	}
	free(subs);
}

/* A round: returns 1 when every witness has cosigned the newest
 * checkpoint (nothing to retry). */
static int
round_once(struct sg_witnessing *w)
{
	struct store_job j;
	struct snap sn;
	uint8_t again[SG_WITNESSES_MAX], only[SG_WITNESSES_MAX];
	size_t i, nagain;
	int kept = 0, all = 0, r;

	if (snapshot(w, &sn) != 0)
		return 0;
	/* At the start, the newest checkpoint goes to every witness even if
	 * they cosigned it: one that has seen a larger tree since (this
	 * store was restored from an older copy) says so now, not at the
	 * next signature. */
	if (w->fresh) {
		memset(sn.have, 0, sizeof(sn.have));
		w->fresh = 0;
	}
	memset(&j, 0, sizeof(j));
	j.cfg = w->cfg;
	j.size = sn.size;
	j.note = sn.note;
	memset(again, 0, sizeof(again));
	pass(w, &sn, &j, NULL, again, 0);
	for (i = 0, nagain = 0; i < w->cfg->n; i++)
		nagain += again[i];
	if (nagain > 0) {
		memcpy(only, again, sizeof(only));
		memset(again, 0, sizeof(again));
		pass(w, &sn, &j, only, again, 1);
	}
	for (i = 0, nagain = 0; i < w->cfg->n; i++)
		nagain += j.acked[i];
	if (nagain > 0 && (r = sg_store_write_kept(w->st, job_store, &j,
	    &kept)) != 0 && !kept)
		sg_log_warn("witnesses: the cosignatures of the checkpoint of "
		    "%llu entries cannot be stored: %s",
		    (unsigned long long)sn.size, sg_strerror(r));
	pthread_mutex_lock(&w->lock);
	for (i = 0; i < w->cfg->n; i++) {
		if (j.acked[i] && j.acked_size[i] > w->w[i].size)
			w->w[i].size = j.acked_size[i];
		else if (sn.acked[i] > w->w[i].size)
			w->w[i].size = sn.acked[i];
		if (j.lines[i] != NULL) {
			w->w[i].cosignatures++;
			w->w[i].alarm[0] = '\0';
			w->w[i].last_error[0] = '\0';
		}
	}
	all = 1;
	for (i = 0; i < w->cfg->n; i++)
		if (!sn.have[i] && j.lines[i] == NULL)
			all = 0;
	w->rounds++;
	w->round_size = sn.size;
	pthread_cond_broadcast(&w->done);
	pthread_mutex_unlock(&w->lock);
	for (i = 0; i < w->cfg->n; i++)
		free(j.lines[i]);
	snap_clear(&sn);
	return all;
}

static void *
witnessing_main(void *arg)
{
	struct sg_witnessing *w = arg;
	struct timespec ts;
	int64_t wait_ms = 0, delay = RETRY_MIN_MS;
	int all;

	for (;;) {
		pthread_mutex_lock(&w->lock);
		if (wait_ms > 0 && !w->kicked && !w->stop) {
			sg_mono_deadline(&ts, wait_ms);
			while (!w->kicked && !w->stop &&
			    pthread_cond_timedwait(&w->wake, &w->lock,
			    &ts) != ETIMEDOUT)
				;
		}
		if (w->stop) {
			pthread_mutex_unlock(&w->lock);
			break;
		}
		if (w->kicked)
			delay = RETRY_MIN_MS;
		w->kicked = 0;
		pthread_mutex_unlock(&w->lock);
		all = round_once(w);
		if (all) {
			wait_ms = IDLE_MS;
			delay = RETRY_MIN_MS;
		} else {
			wait_ms = delay;
			delay = delay * 2 > RETRY_MAX_MS ? RETRY_MAX_MS :
			    delay * 2;
		}
	}
	return NULL;
}

int
sg_witnessing_open(const struct sg_witnesses_config *cfg,
    struct sg_store *st, struct sg_tlog *log, struct sg_witnessing **ret,
    char *errbuf, size_t errlen)
{
	struct sg_witnessing *w;
	pthread_condattr_t ca;
	size_t i;

	if (cfg->n == 0 || cfg->n > SG_WITNESSES_MAX)
		return SG_ERR_INVALID;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return SG_ERR_NOMEM;
	w->cfg = cfg;
	w->st = st;
	w->log = log;
	for (i = 0; i < cfg->n; i++)
		w->w[i].c = &cfg->list[i];
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->wake, &ca);
	pthread_cond_init(&w->done, &ca);
	pthread_condattr_destroy(&ca);
	w->kicked = 1;                  /* a first round at once */
	w->fresh = 1;
	if (pthread_create(&w->thread, NULL, witnessing_main, w) != 0) {
		snprintf(errbuf, errlen, "cannot start the witnesses' thread");
		sg_witnessing_free(w);
		return SG_ERR_INTERNAL;
	}
	w->started = 1;
	*ret = w;
	return 0;
}

void
sg_witnessing_free(struct sg_witnessing *w)
{
	if (w == NULL)
		return;
	if (w->started) {
		pthread_mutex_lock(&w->lock);
		w->stop = 1;
		pthread_cond_broadcast(&w->wake);
		pthread_cond_broadcast(&w->done);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->thread, NULL);
	}
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->wake);
	pthread_cond_destroy(&w->done);
	free(w);
}

void
sg_witnessing_kick(void *arg)
{
	struct sg_witnessing *w = arg;

	pthread_mutex_lock(&w->lock);
	w->kicked = 1;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
}

int
sg_witnessing_wait(struct sg_witnessing *w, uint64_t size)
{
	int64_t deadline = sg_mono_ms() + 2 * (int64_t)w->cfg->timeout_ms;
	struct timespec ts;
	uint64_t rounds, round_size;
	int64_t left;
	int kicked = 0;

	for (;;) {
		pthread_mutex_lock(&w->lock);
		rounds = w->rounds;
		round_size = w->round_size;
		pthread_mutex_unlock(&w->lock);
		/* The round's size first: best-effort, it may be enough
		 * without reading the store. */
		if (sg_witness_released(w->cfg->mode, size, 0, round_size) ||
		    sg_witness_released(w->cfg->mode, size,
		    newest_size(w, w->cfg->quorum), round_size))
			return 0;
		if ((left = deadline - sg_mono_ms()) <= 0)
			return SG_ERR_UNAVAILABLE;
		if (!kicked) {
			sg_witnessing_kick(w);
			kicked = 1;
		}
		sg_mono_deadline(&ts, left);
		pthread_mutex_lock(&w->lock);
		while (w->rounds == rounds && !w->stop &&
		    pthread_cond_timedwait(&w->done, &w->lock, &ts) !=
		    ETIMEDOUT)
			;
		if (w->stop) {
			pthread_mutex_unlock(&w->lock);
			return SG_ERR_UNAVAILABLE;
		}
		pthread_mutex_unlock(&w->lock);
	}
}

int
sg_witnessing_fail_closed(const struct sg_witnessing *w)
{
	return w->cfg->mode == SG_WITNESS_FAIL_CLOSED;
}

unsigned
sg_witnessing_quorum(const struct sg_witnessing *w)
{
	return w->cfg->quorum;
}

int
sg_witnessing_alarm(struct sg_witnessing *w, char *reason, size_t len)
{
	size_t i;
	int r = 0;

	pthread_mutex_lock(&w->lock);
	for (i = 0; i < w->cfg->n && r == 0; i++)
		if (w->w[i].alarm[0] != '\0') {
			snprintf(reason, len, "witness %s reports that the "
			    "log was rolled back or forked: %s",
			    w->w[i].c->name, w->w[i].alarm);
			r = SG_ERR_VERIFY;
		}
	pthread_mutex_unlock(&w->lock);
	return r;
}

size_t
sg_witnessing_stats(struct sg_witnessing *w, struct sg_witness_stats *out,
    size_t cap)
{
	size_t i;

	pthread_mutex_lock(&w->lock);
	for (i = 0; i < w->cfg->n && i < cap; i++) {
		snprintf(out[i].name, sizeof(out[i].name), "%s",
		    w->w[i].c->name);
		out[i].cosignatures = w->w[i].cosignatures;
		out[i].failures = w->w[i].failures;
		out[i].alarms = w->w[i].alarms;
		out[i].size = w->w[i].size;
	}
	pthread_mutex_unlock(&w->lock);
	return i;
}
