/*
 * The log monitor's two files (include/sg_monitor.h): the state file,
 * parsed strictly (v1 as written by older monitors, v2 as written now),
 * and the Prometheus textfile for node_exporter's textfile collector.
 * Both are replaced atomically (sg_write_file: a temporary file, fsync,
 * rename).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_cli.h"
#include "sg_err.h"
#include "sg_monitor.h"
#include "sg_text.h"
#include "sg_util.h"

#define STATE_MAGIC_V1 "signgate-log-monitor v1"
#define STATE_MAGIC_V2 "signgate-log-monitor v2"

/* --- state file --- */

static int
state_line(const char **p, const char *end, const char *name,
    const char **ret, size_t *ret_len)
{
	const char *nl;
	size_t n = strlen(name);

	if ((nl = memchr(*p, '\n', (size_t)(end - *p))) == NULL ||
	    (size_t)(nl - *p) <= n || memcmp(*p, name, n) != 0 ||
	    (*p)[n] != ' ')
		return SG_ERR_INVALID;
	*ret = *p + n + 1;
	*ret_len = (size_t)(nl - *ret);
	*p = nl + 1;
	return 0;
}

static int
num_parse(const char *s, size_t len, uint64_t max, uint64_t *ret)
{
	char num[24];

	if (len == 0 || len >= sizeof(num) || (len > 1 && s[0] == '0'))
		return SG_ERR_INVALID;
	memcpy(num, s, len);
	num[len] = '\0';
	return sg_parse_u64(num, 0, max, ret);
}

static int
state_num(const char **p, const char *end, const char *name, uint64_t *ret)
{
	const char *v;
	size_t n;

	if (state_line(p, end, name, &v, &n) != 0)
		return SG_ERR_INVALID;
	return num_parse(v, n, (uint64_t)INT64_MAX, ret);
}

/* "<request id> <index> <expires>" */
static int
pending_parse(const char *v, size_t n, struct sg_monitor_pending *ret)
{
	const char *sp, *end = v + n;
	uint64_t exp;

	memset(ret, 0, sizeof(*ret));
	if (n < SG_REQUEST_ID_LEN + 4 || v[SG_REQUEST_ID_LEN] != ' ')
		return SG_ERR_INVALID;
	memcpy(ret->request, v, SG_REQUEST_ID_LEN);
	if (!sg_request_id_ok(ret->request))
		return SG_ERR_INVALID;
	v += SG_REQUEST_ID_LEN + 1;
	if ((sp = memchr(v, ' ', (size_t)(end - v))) == NULL ||
	    num_parse(v, (size_t)(sp - v), SG_MERKLE_MAX_SIZE,
	    &ret->index) != 0 ||
	    num_parse(sp + 1, (size_t)(end - sp - 1), (uint64_t)INT64_MAX,
	    &exp) != 0)
		return SG_ERR_INVALID;
	ret->expires = (int64_t)exp;
	return 0;
}

int
sg_monitor_state_parse(const char *text, size_t len,
    struct sg_monitor_state *ret)
{
	struct sg_monitor_state s;
	struct sg_monitor_pending *pd;
	const char *p = text, *end = text + len, *v;
	uint8_t *root = NULL;
	uint64_t u;
	size_t n, rlen = 0;
	int r = SG_ERR_INVALID;

	memset(&s, 0, sizeof(s));
	n = strlen(STATE_MAGIC_V1);
	if (len > n && memcmp(p, STATE_MAGIC_V1 "\n", n + 1) == 0)
		s.version = 1;
	else if (len > n && memcmp(p, STATE_MAGIC_V2 "\n", n + 1) == 0)
		s.version = 2;
	else
		goto out;
	p += n + 1;
	if (state_line(&p, end, "key", &v, &n) != 0 ||
	    n > SG_MONITOR_VKEY_MAX || memchr(v, '\0', n) != NULL)
		goto out;
	memcpy(s.vkey, v, n);
	s.vkey[n] = '\0';
	if (state_num(&p, end, "size", &s.size) != 0)
		goto out;
	if (state_line(&p, end, "root", &v, &n) != 0 ||
	    sg_b64_decode(v, n, &root, &rlen) != 0 || rlen != SG_HASH_LEN)
		goto out;
	memcpy(s.root, root, SG_HASH_LEN);
	if (s.version == 1) {
		/* A v1 monitor never read entries: it starts at its size. */
		s.next = s.size;
	} else {
		/* next <= size as written; a state edited otherwise still
		 * reaches the checks of its size and root, and then fails
		 * in cli_log_monitor.c when it is past the log. */
		if (state_num(&p, end, "next", &s.next) != 0 ||
		    state_num(&p, end, "success", &u) != 0 ||
		    state_num(&p, end, "violations", &s.violations) != 0)
			goto out;
		s.success = (int64_t)u;
		while (p != end) {
			if (s.npending == SG_MONITOR_PENDING_MAX ||
			    state_line(&p, end, "pending", &v, &n) != 0)
				goto out;
			if (s.pending == NULL && (s.pending = calloc(
			    SG_MONITOR_PENDING_MAX, sizeof(*s.pending))) == NULL) {
				r = SG_ERR_NOMEM;
				goto out;
			}
			pd = &s.pending[s.npending];
			if (pending_parse(v, n, pd) != 0 || pd->index >= s.next ||
			    (s.npending > 0 && pd->index <=
			    s.pending[s.npending - 1].index))
				goto out;
			s.npending++;
		}
	}
	if (p != end)
		goto out;
	*ret = s;
	memset(&s, 0, sizeof(s));      /* transferred */
	r = 0;
out:
	free(s.pending);
	free(root);
	return r;
}

int
sg_monitor_state_format(const struct sg_monitor_state *s, char **ret,
    size_t *ret_len)
{
	char *root = NULL, *text = NULL, *t;
	size_t i, cap, len;
	int n, r = SG_ERR_NOMEM;

	if ((root = sg_b64_encode(s->root, SG_HASH_LEN)) == NULL)
		goto out;
	cap = 512 + strlen(s->vkey) + s->npending * 96;
	if ((text = malloc(cap)) == NULL)
		goto out;
	n = snprintf(text, cap, "%s\nkey %s\nsize %llu\nroot %s\nnext %llu\n"
	    "success %lld\nviolations %llu\n", STATE_MAGIC_V2, s->vkey,
	    (unsigned long long)s->size, root, (unsigned long long)s->next,
	    (long long)s->success, (unsigned long long)s->violations);
	if (n < 0 || (size_t)n >= cap) {
		r = SG_ERR_INTERNAL;
		goto out;
	}
	len = (size_t)n;
	for (i = 0; i < s->npending; i++) {
		t = text + len;
		n = snprintf(t, cap - len, "pending %s %llu %lld\n",
		    s->pending[i].request,
		    (unsigned long long)s->pending[i].index,
		    (long long)s->pending[i].expires);
		if (n < 0 || (size_t)n >= cap - len) {
			r = SG_ERR_INTERNAL;
			goto out;
		}
		len += (size_t)n;
	}
	*ret = text;
	*ret_len = len;
	text = NULL;
	r = 0;
out:
	free(text);
	free(root);
	return r;
}

void
sg_monitor_state_clear(struct sg_monitor_state *s)
{
	free(s->pending);
	memset(s, 0, sizeof(*s));
}

/* --- Prometheus textfile --- */

static void
metric(FILE *f, const char *name, const char *type, const char *help,
    const char *labels, unsigned long long v)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s%s %llu\n", name, help, name,
	    type, name, labels, v);
}

int
sg_monitor_prometheus_write(const char *path,
    const struct sg_monitor_metrics *m)
{
	const struct sg_monitor_run *run = m->run;
	char *buf = NULL;
	size_t len = 0, i;
	FILE *f;
	int r, key_seen = 0;

	if ((f = open_memstream(&buf, &len)) == NULL)
		return SG_ERR_NOMEM;
	metric(f, "signgate_log_monitor_last_run_timestamp_seconds", "gauge",
	    "When the log monitor last ran.", "",
	    (unsigned long long)m->now);
	metric(f, "signgate_log_monitor_last_success_timestamp_seconds",
	    "gauge", "When a log monitor run last completed (0: never).", "",
	    (unsigned long long)(m->last_success > 0 ? m->last_success : 0));
	metric(f, "signgate_log_monitor_up", "gauge", "1 if the last run "
	    "completed (exit 0 or 6), 0 if it failed.", "",
	    m->exit_status == 0 || m->exit_status == SG_MONITOR_EXIT_RULE);
	metric(f, "signgate_log_monitor_exit_status", "gauge", "The last "
	    "run's exit status (5: the log misbehaves, 6: a rule was broken).",
	    "", (unsigned long long)m->exit_status);
	metric(f, "signgate_log_monitor_alarm", "gauge", "1 if the last run "
	    "found a fork, a rollback, a changed key or a bad checkpoint.", "",
	    m->exit_status == SG_EXIT_VERIFY);
	metric(f, "signgate_log_monitor_log_size", "gauge", "Entries under "
	    "the newest verified checkpoint.", "",
	    (unsigned long long)m->log_size);
	metric(f, "signgate_log_monitor_violations_total", "counter", "Rule "
	    "violations found since the state file began.", "",
	    (unsigned long long)m->violations_total);
	if (run != NULL) {
		metric(f, "signgate_log_monitor_entries", "gauge", "Entries "
		    "the last run read.", "", (unsigned long long)run->entries);
		metric(f, "signgate_log_monitor_violations", "gauge", "Rule "
		    "violations the last run found.", "",
		    (unsigned long long)run->violations);
		metric(f, "signgate_log_monitor_policy_changes", "gauge",
		    "Policy entries the last run read.", "",
		    (unsigned long long)run->policy_changes);
		fprintf(f, "# HELP signgate_log_monitor_signatures Signatures "
		    "the last run read, per key.\n# TYPE "
		    "signgate_log_monitor_signatures gauge\n");
		for (i = 0; i < run->ncounts; i++) {
			fprintf(f, "signgate_log_monitor_signatures{key=\"%s\"}"
			    " %llu\n", run->counts[i].key,
			    (unsigned long long)run->counts[i].n);
			if (m->key != NULL &&
			    strcmp(run->counts[i].key, m->key) == 0)
				key_seen = 1;
		}
		if (m->key != NULL && !key_seen)
			fprintf(f, "signgate_log_monitor_signatures{key=\"%s\"}"
			    " 0\n", m->key);
	}
	if (fclose(f) != 0) {
		free(buf);
		return SG_ERR_NOMEM;
	}
	r = sg_write_file(path, buf, len, 0644);
	free(buf);
	return r;
}
