/*
 * Work that waits without a thread: the steps of a request that is
 * signed and committed while its HTTP connection is suspended.
 *
 * A step is queued here by whoever finished what the step waited for
 * (the signer's reply thread, the store's writer) and runs on one of a
 * few executor threads, so that neither of those threads does the
 * service's work, and no thread waits for the HSM or the disk on a
 * request's behalf.  A step may compute, read the store and queue the
 * next wait; it never blocks for long, with one exception said where it
 * is: a key with a time-stamping authority asks it on the executor.
 *
 * Operations in flight are counted.  A reload first waits until none is
 * left (each began under the policy it replaces, and the signer must not
 * change its policy under one); meanwhile new ones are done the waiting
 * way, on their caller's thread under the policy lock as before.  Only
 * then does it take the policy lock for writing, so a step may take it
 * for reading (briefly: never across a wait).  Stopping refuses new
 * ones, waits for the rest, then stops the threads.
 *
 * Locks: alock guards the queue, the count and the flags; it is never
 * held while a step runs.
 */
#include <pthread.h>
#include <stdlib.h>

#include "sg_err.h"
#include "sg_util.h"
#include "service_int.h"

#define SVC_EXEC_MAX_THREADS 16

static void *
exec_main(void *arg)
{
	struct sg_service *s = arg;
	struct svc_step *st;

	pthread_mutex_lock(&s->alock);
	for (;;) {
		while (s->ahead == NULL && !s->astop)
			pthread_cond_wait(&s->acond, &s->alock);
		if (s->ahead == NULL)
			break;
		st = s->ahead;
		if ((s->ahead = st->next) == NULL)
			s->atail = NULL;
		pthread_mutex_unlock(&s->alock);
		st->fn(st->arg);
		pthread_mutex_lock(&s->alock);
	}
	pthread_mutex_unlock(&s->alock);
	return NULL;
}

int
svc_async_start(struct sg_service *s)
{
	unsigned i, n = s->cfg->threads;

	if (n < 2)
		n = 2;
	if (n > SVC_EXEC_MAX_THREADS)
		n = SVC_EXEC_MAX_THREADS;
	if ((s->athreads = calloc(n, sizeof(*s->athreads))) == NULL)
		return SG_ERR_NOMEM;
	for (i = 0; i < n; i++) {
		if (pthread_create(&s->athreads[i], NULL, exec_main, s) != 0)
			break;
		s->nathreads++;
	}
	return s->nathreads == n ? 0 : SG_ERR_INTERNAL;
}

/* Refuses new operations, waits for those in flight to finish, then
 * stops the executor. */
void
svc_async_stop(struct sg_service *s)
{
	unsigned i;

	pthread_mutex_lock(&s->alock);
	s->aclosing = 1;
	while (s->ainflight > 0)
		pthread_cond_wait(&s->aidle, &s->alock);
	s->astop = 1;
	pthread_cond_broadcast(&s->acond);
	pthread_mutex_unlock(&s->alock);
	for (i = 0; i < s->nathreads; i++)
		pthread_join(s->athreads[i], NULL);
	pthread_mutex_lock(&s->alock);
	s->nathreads = 0;
	pthread_mutex_unlock(&s->alock);
	free(s->athreads);
	s->athreads = NULL;
}

void
svc_exec(struct sg_service *s, struct svc_step *st, void (*fn)(void *),
    void *arg)
{
	st->fn = fn;
	st->arg = arg;
	st->next = NULL;
	pthread_mutex_lock(&s->alock);
	if (s->atail != NULL)
		s->atail->next = st;
	else
		s->ahead = st;
	s->atail = st;
	pthread_cond_signal(&s->acond);
	pthread_mutex_unlock(&s->alock);
}

/* 0: an operation begins (svc_async_leave when it ends); 1: a reload is
 * under way, do it the waiting way; SG_ERR_UNAVAILABLE when stopping (or
 * before the executor runs). */
int
svc_async_enter(struct sg_service *s)
{
	int r = 0;

	pthread_mutex_lock(&s->alock);
	if (s->aclosing || s->nathreads == 0)
		r = SG_ERR_UNAVAILABLE;
	else if (s->apaused)
		r = 1;
	else
		s->ainflight++;
	pthread_mutex_unlock(&s->alock);
	return r;
}

void
svc_async_leave(struct sg_service *s)
{
	pthread_mutex_lock(&s->alock);
	if (--s->ainflight == 0)
		pthread_cond_broadcast(&s->aidle);
	pthread_mutex_unlock(&s->alock);
}

/* A reload: no new operation, then until none is in flight.  Without
 * plock (a step may need it to finish).  One reload at a time. */
void
svc_async_pause(struct sg_service *s)
{
	pthread_mutex_lock(&s->alock);
	s->apaused = 1;
	while (s->ainflight > 0)
		pthread_cond_wait(&s->aidle, &s->alock);
	pthread_mutex_unlock(&s->alock);
}

void
svc_async_unpause(struct sg_service *s)
{
	pthread_mutex_lock(&s->alock);
	s->apaused = 0;
	pthread_mutex_unlock(&s->alock);
}
