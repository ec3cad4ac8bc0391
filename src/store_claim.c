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
 * Locks: nlock guards the announcing connection and the listener's stop
 * flag; the listener has its own connection, on its own thread.
 */
#include <poll.h>
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

/* One notice on the announcing connection (nlock held), opened first if
 * it is not. */
static int
notify_once(struct sg_store *st, const char *payload)
{
	struct sg_db_stmt *s = NULL;
	int r;

	if (st->announcer == NULL &&
	    (r = sg_db_open(&st->dbconf, 1, &st->announcer)) != 0)
		return r;
	if (sg_db_broken(st->announcer) &&
	    (r = sg_db_reconnect(st->announcer)) != 0)
		return r;
	if ((r = sg_db_prepare(st->announcer, "SELECT pg_notify('"
	    CHANGES_CHANNEL "', ?1)", &s)) != 0)
		return r;
	sg_db_bind_text(s, 1, payload);
	r = sg_db_step(s) == SG_DB_ROW ? 0 : SG_ERR_UNAVAILABLE;
	sg_db_finalize(s);
	return r;
}

void
sg_store_announce(struct sg_store *st, const char *id)
{
	char payload[SG_REQUEST_ID_SIZE + SG_NAME_SIZE + 2];
	int r;

	if (st->dbconf.backend != SG_DB_POSTGRESQL)
		return;
	snprintf(payload, sizeof(payload), "%s %s", id, st->node);
	pthread_mutex_lock(&st->nlock);
	/* A connection the server closed since the last notice is found
	 * closed only now: once more, on a new one. */
	if ((r = notify_once(st, payload)) != 0 && st->announcer != NULL &&
	    sg_db_broken(st->announcer))
		r = notify_once(st, payload);
	pthread_mutex_unlock(&st->nlock);
	/* Not fatal: the other gateways' long-polls also wake at their
	 * deadline, and their readers see the change at once. */
	if (r != 0)
		sg_log_debug("store: the other gateways were not told of %s",
		    id);
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
	struct pollfd pfd;
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
				sleep(1);
				continue;
			}
			if (down)
				sg_log_info("store: listening for the other "
				    "gateways' changes again");
			down = 0;
		}
		memset(&pfd, 0, sizeof(pfd));
		pfd.fd = sg_db_socket(db);
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 250) > 0)
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
	if (pthread_create(&st->listener, NULL, listen_main, st) != 0)
		return SG_ERR_INTERNAL;
	st->listener_started = 1;
	return 0;
}

void
store_listen_stop(struct sg_store *st)
{
	if (!st->listener_started)
		return;
	pthread_mutex_lock(&st->nlock);
	st->listener_stop = 1;
	pthread_mutex_unlock(&st->nlock);
	pthread_join(st->listener, NULL);
	st->listener_started = 0;
}
