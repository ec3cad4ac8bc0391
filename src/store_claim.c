/*
 * Gateways that share one database: claims (which gateway signs what),
 * and the news of changes (PostgreSQL NOTIFY / LISTEN) that wakes the
 * long-polls of the other gateways.
 *
 * A claim is a row (object, owner, until).  Taking one succeeds when the
 * object is unclaimed, claimed by this gateway already (extended), or its
 * claim has run out (taken over: its gateway is presumed gone).  Every
 * write that records a signature checks, in its own transaction, that
 * this gateway still holds the claim (store_claim_fence), so that of two
 * gateways that both came to sign one request (the first one paused past
 * its claim, say), only one records it, and only a recorded signature is
 * ever handed out or logged.
 *
 * Locks: nlock guards the queue of changes to tell and the listener's
 * stop flag; the listener has its own connection, on its own thread,
 * which both sends and receives the notices.
 */
#include <poll.h>
#include <sys/eventfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sg_db.h"
#include "sg_err.h"
#include "sg_store.h"
#include "sg_util.h"
#include "store_int.h"

#define CHANGES_CHANNEL "signgate_changes"

struct claim_job {
	const char *id;
	const char *owner;
	int64_t now, until;
	int got;
};

static int
job_claim(struct sg_txn *t, void *arg)
{
	struct claim_job *c = arg;
	struct sg_db_stmt *s = NULL;
	int r;

	if ((r = store_prepare(t, "INSERT INTO claims (object_id, owner, "
	    "until) VALUES (?1, ?2, ?3) ON CONFLICT (object_id) DO UPDATE SET "
	    "owner = excluded.owner, until = excluded.until WHERE "
	    "claims.owner = excluded.owner OR claims.until <= ?4", &s)) != 0)
		return r;
	sg_db_bind_text(s, 1, c->id);
	sg_db_bind_text(s, 2, c->owner);
	sg_db_bind_int64(s, 3, c->until);
	sg_db_bind_int64(s, 4, c->now);
	r = sg_db_step(s);
	if (r == SG_DB_DONE) {
		c->got = sg_db_changes(s) == 1;
		r = 0;
	} else
		r = store_db_err(t->db, r);
	sg_db_finalize(s);
	return r;
}

int
sg_store_claim(struct sg_store *st, const char *id, int *ret_got)
{
	struct claim_job c;
	int r;

	*ret_got = 0;
	if (!st->shared) {
		*ret_got = 1;
		return 0;
	}
	memset(&c, 0, sizeof(c));
	c.id = id;
	c.owner = st->node;
	c.now = (int64_t)time(NULL);
	c.until = c.now + st->claim_seconds;
	if ((r = sg_store_write(st, job_claim, &c)) != 0)
		return r;
	*ret_got = c.got;
	return 0;
}

static int
job_unclaim(struct sg_txn *t, void *arg)
{
	struct claim_job *c = arg;
	struct sg_db_stmt *s = NULL;
	int r;

	if ((r = store_prepare(t, "DELETE FROM claims WHERE object_id = ?1 "
	    "AND owner = ?2", &s)) != 0)
		return r;
	sg_db_bind_text(s, 1, c->id);
	sg_db_bind_text(s, 2, c->owner);
	r = sg_db_step(s);
	r = r == SG_DB_DONE ? 0 : store_db_err(t->db, r);
	sg_db_finalize(s);
	return r;
}

/* A claim left behind (the database unreachable) runs out by itself. */
void
sg_store_unclaim(struct sg_store *st, const char *id)
{
	struct claim_job c;

	if (!st->shared)
		return;
	memset(&c, 0, sizeof(c));
	c.id = id;
	c.owner = st->node;
	if (sg_store_write(st, job_unclaim, &c) != 0)
		sg_log_debug("store: the claim on %s runs out by itself", id);
}

int
store_claim_fence(struct sg_txn *t, const char *id)
{
	struct sg_store *st = t->st;
	struct sg_db_stmt *s = NULL;
	int r;

	if (!st->shared)
		return 0;
	if ((r = store_prepare(t, "UPDATE claims SET until = ?3 WHERE "
	    "object_id = ?1 AND owner = ?2", &s)) != 0)
		return r;
	sg_db_bind_text(s, 1, id);
	sg_db_bind_text(s, 2, st->node);
	sg_db_bind_int64(s, 3, (int64_t)time(NULL) + st->claim_seconds);
	r = store_changed_one(t, s);
	sg_db_finalize(s);
	if (r == SG_ERR_CONFLICT)
		sg_log_warn("store: %s is no longer claimed by this gateway "
		    "(%s): its signature is not recorded", id, st->node);
	return r;
}

/* ---- news of changes ---- */

/*
 * A change is announced by the listener thread, never by the caller: a
 * handler that wakes its own long-polls only queues the id (bounded;
 * dropped when full, the other gateways' long-polls then end at their
 * deadline), so that no HTTP worker waits for the database, least of all
 * while it is away.  The thread sends the queue with pg_notify (each
 * delivered once committed) and hands every other gateway's notice to
 * the callback.
 */
void
sg_store_announce(struct sg_store *st, const char *id)
{
	uint64_t one = 1;

	if (!st->listener_started || strlen(id) >= SG_REQUEST_ID_SIZE)
		return;
	pthread_mutex_lock(&st->nlock);
	if (st->nnotices < STORE_MAX_NOTICES)
		memcpy(st->notices[st->nnotices++], id, strlen(id) + 1);
	else
		st->notices_dropped++;
	pthread_mutex_unlock(&st->nlock);
	if (write(st->wake_fd, &one, sizeof(one)) < 0)
		sg_log_debug("store: cannot wake the listener");
}

/* Puts back what could not be sent, ahead of what came meanwhile, as far
 * as the queue holds it. */
static void
requeue(struct sg_store *st, char (*v)[SG_REQUEST_ID_SIZE], size_t n)
{
	size_t room;

	pthread_mutex_lock(&st->nlock);
	room = STORE_MAX_NOTICES - st->nnotices;
	if (n > room) {
		st->notices_dropped += n - room;
		n = room;
	}
	memmove(st->notices[n], st->notices[0],
	    st->nnotices * sizeof(st->notices[0]));
	memcpy(st->notices[0], v, n * sizeof(st->notices[0]));
	st->nnotices += n;
	pthread_mutex_unlock(&st->nlock);
}

/* Sends what is queued.  When the connection turns out to be closed
 * (the server restarted, a reaper ended it while idle), the rest waits
 * for the next one; when the database is away, it waits as long as the
 * queue has room. */
static void
send_notices(struct sg_store *st, struct sg_db *db)
{
	char (*batch)[SG_REQUEST_ID_SIZE] = st->sending;
	char payload[SG_REQUEST_ID_SIZE + SG_NAME_SIZE + 2];
	struct sg_db_stmt *s = NULL;
	size_t i, n;
	int r;

	pthread_mutex_lock(&st->nlock);
	n = st->nnotices;
	memcpy(batch, st->notices, n * sizeof(batch[0]));
	st->nnotices = 0;
	pthread_mutex_unlock(&st->nlock);
	if (n == 0)
		return;
	if (db == NULL || sg_db_prepare(db, "SELECT pg_notify('"
	    CHANGES_CHANNEL "', ?1)", &s) != 0) {
		requeue(st, batch, n);
		return;
	}
	for (i = 0; i < n; i++) {
		snprintf(payload, sizeof(payload), "%.*s %s",
		    SG_REQUEST_ID_SIZE - 1, batch[i], st->node);
		sg_db_reset(s);
		sg_db_bind_text(s, 1, payload);
		if ((r = sg_db_step(s)) != SG_DB_ROW)
			break;
	}
	sg_db_finalize(s);
	if (i < n) {
		sg_log_debug("store: %zu changes wait to be told to the "
		    "other gateways", n - i);
		requeue(st, &batch[i], n - i);
	}
}

static int
listen_stopping(struct sg_store *st)
{
	int stop;

	pthread_mutex_lock(&st->nlock);
	stop = st->listener_stop;
	pthread_mutex_unlock(&st->nlock);
	return stop;
}

/* Hands each notification of another gateway to the callback. */
static void
deliver(struct sg_store *st, struct sg_db *db)
{
	char *payload, *sp;

	while (sg_db_notification(db, CHANGES_CHANNEL, &payload) == 0) {
		sp = strchr(payload, ' ');
		if (sp != NULL) {
			*sp = '\0';
			if (strcmp(sp + 1, st->node) != 0 &&
			    strlen(payload) < SG_REQUEST_ID_SIZE) {
				pthread_mutex_lock(&st->nlock);
				st->remote_changes++;
				pthread_mutex_unlock(&st->nlock);
				st->on_change(st->on_change_arg, payload);
			}
		}
		free(payload);
	}
}

static void *
listen_main(void *arg)
{
	struct sg_store *st = arg;
	struct sg_db *db = NULL;
	struct pollfd pfd[2];
	uint64_t n;
	int down = 0;

	while (!listen_stopping(st)) {
		if (db == NULL || sg_db_broken(db)) {
			sg_db_close(db);
			db = NULL;
			if (sg_db_open(&st->dbconf, 1, &db) != 0 ||
			    sg_db_exec(db, "LISTEN " CHANGES_CHANNEL) != 0) {
				sg_db_close(db);
				db = NULL;
				if (!down)
					sg_log_warn("store: cannot listen for "
					    "the other gateways' changes; "
					    "trying again every second");
				down = 1;
			} else {
				if (down)
					sg_log_info("store: listening for the "
					    "other gateways' changes again");
				down = 0;
			}
		}
		memset(pfd, 0, sizeof(pfd));
		pfd[0].fd = st->wake_fd;
		pfd[0].events = POLLIN;
		pfd[1].fd = db != NULL ? sg_db_socket(db) : -1;
		pfd[1].events = POLLIN;
		if (poll(pfd, 2, 1000) < 0)
			continue;
		if ((pfd[0].revents & POLLIN) &&
		    read(st->wake_fd, &n, sizeof(n)) < 0)
			n = 0;         /* nothing to read after all */
		send_notices(st, db);
		if (db != NULL)
			deliver(st, db);
	}
	sg_db_close(db);
	return NULL;
}

int
sg_store_listen(struct sg_store *st, void (*fn)(void *, const char *),
    void *arg)
{
	if (st->dbconf.backend != SG_DB_POSTGRESQL || st->listener_started)
		return 0;
	st->on_change = fn;
	st->on_change_arg = arg;
	if ((st->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		return SG_ERR_INTERNAL;
	if (pthread_create(&st->listener, NULL, listen_main, st) != 0) {
		close(st->wake_fd);
		st->wake_fd = -1;
		return SG_ERR_INTERNAL;
	}
	st->listener_started = 1;
	return 0;
}

void
sg_store_unlisten(struct sg_store *st)
{
	uint64_t one = 1;

	if (st == NULL || !st->listener_started)
		return;
	pthread_mutex_lock(&st->nlock);
	st->listener_stop = 1;
	pthread_mutex_unlock(&st->nlock);
	if (write(st->wake_fd, &one, sizeof(one)) < 0)
		sg_log_debug("store: cannot wake the listener");
	pthread_join(st->listener, NULL);
	st->listener_started = 0;
	close(st->wake_fd);
	st->wake_fd = -1;
}
