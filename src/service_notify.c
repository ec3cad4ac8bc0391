/*
 * The service and the webhooks: the store's change hook, which turns
 * every change the store records into an event in the outbox, in the
 * change's own transaction (src/notify.c delivers them).
 *
 * The event is rendered here, not at delivery, so that it says what was
 * true when the change was made: the object as the transaction sees it
 * and, while it is pending, what its quorum still misses under its
 * policy and the policy in force.
 *
 * Locks: the hook runs on the store's writer thread inside a write job;
 * as every write job does, it relies on the policy not being swapped
 * under it (the job's caller holds plock for reading, or the operation is
 * one the executor counts, which a reload waits out).
 * Calls: notify, store, service_quorum.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_err.h"
#include "sg_notify.h"
#include "sg_util.h"
#include "service_int.h"

static int
notify_change(void *ctx, struct sg_txn *t, const struct sg_store_change *c)
{
	struct sg_service *s = ctx;
	struct sg_request *q = NULL;
	struct sg_request_quorum v;
	struct sg_notify_term terms[SG_POLICY_MAX_TERMS];
	struct sg_notify_event ev;
	char *body = NULL;
	size_t i;
	int r;

	if ((r = sg_store_get_request(t, c->id, &q)) != 0)
		return r;
	memset(&ev, 0, sizeof(ev));
	if ((r = sg_notify_event_type(q->kind, c, ev.type)) != 0 ||
	    (r = sg_notify_event_id(ev.id)) != 0)
		goto out;
	ev.at = svc_now(s);
	ev.gateway = sg_store_node(s->store);
	ev.object = q;
	ev.decision = c->what == SG_CHANGE_DECISION ? c->approve : -1;
	ev.officer = c->officer;
	ev.reason = c->reason;
	ev.terms = terms;
	if (q->state == SG_REQ_PENDING &&
	    svc_quorum_view_in(s, t, q, &v) == 0) {
		for (i = 0; i < v.res.nterms && i < v.nterms; i++) {
			if (v.res.missing[i] == 0)
				continue;
			terms[ev.nterms].group = v.terms[i].group;
			terms[ev.nterms].count = v.terms[i].count;
			terms[ev.nterms].missing = v.res.missing[i];
			ev.nterms++;
		}
	}
	if ((r = sg_notify_event_json(&ev, &body)) != 0)
		goto out;
	r = sg_notify_queue(s->notifier, t, &ev, body);
out:
	if (r != 0)
		sg_log_error("notify: the %s event of %s cannot be queued: %s",
		    ev.type[0] != '\0' ? ev.type : "change", c->id,
		    sg_strerror(r));
	free(body);
	sg_request_free(q);
	return r;
}

int
svc_notify_open(struct sg_service *s, char *errbuf, size_t errlen)
{
	int r;

	if (s->cfg->notify.nwebhooks == 0)
		return 0;
	if ((r = sg_notify_open(&s->cfg->notify, s->store,
	    sg_store_node(s->store), &s->notifier, errbuf, errlen)) != 0)
		return r;
	sg_store_set_change_hook(s->store, notify_change, s);
	return 0;
}

int
svc_notify_start(struct sg_service *s)
{
	return sg_notify_start(s->notifier);
}

void
svc_notify_stop(struct sg_service *s)
{
	sg_notify_stop(s->notifier);
}
