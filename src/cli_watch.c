/*
 * `signgate watch`: the signed-in officer's queue in the terminal, as it
 * changes: the pending requests, releases and grants that still miss
 * approvals and that this officer neither asked for nor decided yet.
 * (Whether the officer belongs to a group that may decide is the
 * gateway's to say when the decision is posted; the queue does not
 * guess.)
 *
 * How it follows changes: the list (GET /v1/requests?state=pending, every
 * page) is read again every --interval seconds; in between, while the
 * queue holds something, the wait is a long-poll on its oldest item
 * (GET /v1/requests/{id}?wait=), so that a decision on it shows at once.
 * Each difference between two readings is an event: `new` (an item
 * joined), `changed` (its state, decisions or what it misses changed),
 * `gone` (it left the queue: decided by this officer, signed, rejected,
 * expired, cancelled...; the item then is the request as it is now).
 *
 * --exec CMD runs /bin/sh -c CMD once per event, the event's JSON on its
 * standard input and SG_EVENT_TYPE, SG_REQUEST_ID in its environment:
 * nothing from the server is ever put into the command line itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "sg_cli.h"
#include "sg_err.h"
#include "sg_text.h"
#include "sg_util.h"

#define WATCH_INTERVAL_DEFAULT 5
#define WATCH_INTERVAL_MAX 60

struct watch_args {
	const char *exec;
	const char *key;
	uint64_t interval;
	int once;
};

static int
watch_option(void *arg, int opt, const char *val)
{
	struct watch_args *w = arg;

	switch (opt) {
	case SG_OPT_CMD:
		w->exec = val;
		return 0;
	case SG_OPT_CMD + 1:
		w->once = 1;
		return 0;
	case SG_OPT_CMD + 2:
		if (sg_parse_u64(val, 1, WATCH_INTERVAL_MAX, &w->interval) !=
		    0) {
			fprintf(stderr, "signgate: --interval: must be 1 to %d "
			    "seconds\n", WATCH_INTERVAL_MAX);
			return SG_EXIT_USAGE;
		}
		return 0;
	case SG_OPT_CMD + 3:
		w->key = val;
		return 0;
	}
	return 1;
}

/* SG_EXIT_OK to go on, -1 after --help, or an exit status. */
static int
watch_options(int argc, char **argv, struct sg_cli_conf *conf,
    struct watch_args *w)
{
	static const struct option own[] = {
		{ "exec", required_argument, NULL, SG_OPT_CMD },
		{ "once", no_argument, NULL, SG_OPT_CMD + 1 },
		{ "interval", required_argument, NULL, SG_OPT_CMD + 2 },
		{ "key", required_argument, NULL, SG_OPT_CMD + 3 },
		{ NULL, 0, NULL, 0 },
	};
	const struct sg_cli_cmdline cl = { "watch", own, NULL, watch_option,
	    w };
	int ex, help;

	memset(w, 0, sizeof(*w));
	w->interval = WATCH_INTERVAL_DEFAULT;
	if ((ex = sg_cli_getopt(argc, argv, &cl, conf, &help)) != 0)
		return ex;
	if (help) {
		sg_cli_usage(stdout, "watch");
		return -1;
	}
	if (optind != argc || (w->key != NULL && !sg_name_ok(w->key, 63)) ||
	    (w->exec != NULL && *w->exec == '\0')) {
		fprintf(stderr, "signgate: usage: signgate watch [--once] "
		    "[--exec CMD] [--interval S] [--key NAME]\n");
		return SG_EXIT_USAGE;
	}
	return SG_EXIT_OK;
}

/* Whether req waits for `me`: some term still misses officers, me did
 * not ask for it and has not decided it. */
static int
waits_for(const json_t *req, const char *me)
{
	const json_t *apps = json_object_get(req, "approvals");
	const json_t *terms = json_object_get(req, "required");
	const json_t *v;
	const char *who;
	size_t i;
	int missing = 0;

	if (!sg_request_id_ok(sg_cli_jstr(req, "id")) ||
	    sg_cli_req_state(req) != SG_REQ_PENDING)
		return 0;
	if ((who = sg_cli_jstr(req, "requester")) != NULL &&
	    strcmp(who, me) == 0)
		return 0;
	json_array_foreach(apps, i, v)
		if ((who = sg_cli_jstr(v, "officer")) != NULL &&
		    strcmp(who, me) == 0)
			return 0;
	json_array_foreach(terms, i, v) {
		const json_t *m = json_object_get(v, "missing");

		if (json_is_integer(m) && json_integer_value(m) > 0)
			missing = 1;
	}
	return missing;
}

/* What a change is judged by: state, decisions, what is missing. */
static char *
fingerprint(const json_t *req)
{
	json_t *f;
	char *s;

	f = json_pack("{s:O?, s:O?, s:O?}", "state",
	    json_object_get(req, "state"), "approvals",
	    json_object_get(req, "approvals"), "required",
	    json_object_get(req, "required"));
	if (f == NULL)
		return NULL;
	s = json_dumps(f, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(f);
	return s;
}

/* The queue now: id -> request, oldest first in `order`. */
static int
read_queue(struct sg_cli_http *h, const struct watch_args *w,
    const char *me, json_t **ret_map, json_t **ret_order)
{
	json_t *all, *map = NULL, *order = NULL, *req;
	size_t i;
	int ex;

	*ret_map = *ret_order = NULL;
	if ((all = json_array()) == NULL)
		return SG_EXIT_LOCAL;
	if ((ex = sg_cli_fetch_pending(h, w->key, all)) != SG_EXIT_OK)
		goto out;
	ex = SG_EXIT_LOCAL;
	if ((map = json_object()) == NULL || (order = json_array()) == NULL)
		goto out;
	/* The list is newest first. */
	for (i = json_array_size(all); i-- > 0; ) {
		req = json_array_get(all, i);
		if (!waits_for(req, me))
			continue;
		if (json_object_set(map, sg_cli_jstr(req, "id"), req) != 0 ||
		    json_array_append(order, req) != 0)
			goto out;
	}
	*ret_map = map;
	*ret_order = order;
	map = order = NULL;
	ex = SG_EXIT_OK;
out:
	json_decref(all);
	json_decref(map);
	json_decref(order);
	return ex;
}

static void
now_utc(char out[32])
{
	sg_time_rfc3339(time(NULL), out, 32);
}

static void
print_item(const char *event, const json_t *req)
{
	char art[256], missing[1024], at[32];
	enum sg_kind kind = SG_KIND_REQUEST;

	(void)sg_cli_req_kind(req, &kind);
	sg_cli_artifact_label(req, art, sizeof(art));
	sg_cli_missing(req, missing, sizeof(missing));
	now_utc(at);
	printf("%s %-7s %s %-7s %-12s %-24s %-10s %-9s missing: %s\n", at,
	    event, sg_cli_esc(sg_cli_jstr(req, "id")), sg_kind_str(kind),
	    sg_cli_esc(sg_cli_jstr(req, "key")), art,
	    sg_cli_esc(sg_cli_jstr(req, "requester")),
	    sg_cli_esc(sg_cli_jstr(req, "state")),
	    missing[0] != '\0' ? missing : "none");
}

static void
print_queue(const json_t *order, const char *me)
{
	const json_t *req;
	size_t i;

	printf("queue of %s: %zu waiting\n", sg_cli_esc(me),
	    json_array_size(order));
	json_array_foreach(order, i, req)
		print_item("waiting", req);
}

/* Writes all of buf to fd; the reader may go away (EPIPE: ignored). */
static void
write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

/* Runs /bin/sh -c cmd with the event on stdin and in the environment;
 * waits for it.  Its failure is said, and watching goes on. */
static void
run_exec(const char *cmd, const char *type, const char *id,
    const char *json)
{
	int fds[2], status = 0;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	if (pipe2(fds, O_CLOEXEC) != 0) {
		fprintf(stderr, "signgate: --exec: pipe: %s\n",
		    strerror(errno));
		return;
	}
	if ((pid = fork()) < 0) {
		fprintf(stderr, "signgate: --exec: fork: %s\n",
		    strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return;
	}
	if (pid == 0) {
		if (dup2(fds[0], STDIN_FILENO) < 0 ||
		    setenv("SG_EVENT_TYPE", type, 1) != 0 ||
		    setenv("SG_REQUEST_ID", id, 1) != 0)
			_exit(127);
		signal(SIGPIPE, SIG_DFL);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(fds[0]);
	write_all(fds[1], json, strlen(json));
	close(fds[1]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fprintf(stderr, "signgate: --exec: the command for %s %s "
		    "exited with %d\n", type, id, WIFEXITED(status) ?
		    WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

static void
event(const struct watch_args *w, const char *type, const json_t *req)
{
	json_t *ev;
	char *s;

	print_item(type, req);
	fflush(stdout);
	if (w->exec == NULL)
		return;
	if ((ev = json_pack("{s:s, s:O}", "type", type, "request", req)) ==
	    NULL || (s = json_dumps(ev, JSON_COMPACT)) == NULL) {
		json_decref(ev);
		fprintf(stderr, "signgate: --exec: out of memory\n");
		return;
	}
	json_decref(ev);
	run_exec(w->exec, type, sg_cli_jstr(req, "id"), s);
	free(s);
}

/* The events between two readings of the queue. */
static void
compare(struct sg_cli_http *h, const struct watch_args *w,
    const json_t *before, const json_t *order, const json_t *now)
{
	const json_t *old, *req;
	json_t *latest = NULL;
	const char *id;
	char path[128], *fa, *fb;
	size_t i;

	json_array_foreach(order, i, req) {
		id = sg_cli_jstr(req, "id");
		if ((old = json_object_get(before, id)) == NULL) {
			event(w, "new", req);
			continue;
		}
		fa = fingerprint(old);
		fb = fingerprint(req);
		if (fa == NULL || fb == NULL || strcmp(fa, fb) != 0)
			event(w, "changed", req);
		free(fa);
		free(fb);
	}
	json_object_foreach((json_t *)before, id, old) {
		if (json_object_get(now, id) != NULL)
			continue;
		/* As it is now, if it can be read; else as last seen. */
		snprintf(path, sizeof(path), "/v1/requests/%s", id);
		latest = NULL;
		if (sg_cli_api(h, "GET", path, NULL, NULL, 0, &latest,
		    NULL) != SG_EXIT_OK || sg_cli_expect_request(latest, id) !=
		    SG_EXIT_OK) {
			json_decref(latest);
			latest = NULL;
		}
		event(w, "gone", latest != NULL ? latest : old);
		json_decref(latest);
	}
}

/* Until the next reading: a long-poll on the oldest item, else a
 * plain wait. */
static void
pause_for(struct sg_cli_http *h, const struct watch_args *w,
    const json_t *order)
{
	const char *id = json_array_size(order) > 0 ?
	    sg_cli_jstr(json_array_get(order, 0), "id") : NULL;
	struct sg_cli_http_resp r;
	struct timespec ts;
	char path[128];

	if (id != NULL) {
		memset(&r, 0, sizeof(r));
		snprintf(path, sizeof(path), "/v1/requests/%s?wait=%llu", id,
		    (unsigned long long)w->interval);
		/* A refusal or an error comes back at once: then wait. */
		if (sg_cli_http_request(h, "GET", path, NULL, 0, NULL,
		    (long)w->interval, &r) == 0 && r.status == 200) {
			sg_cli_http_resp_clear(&r);
			return;
		}
		sg_cli_http_resp_clear(&r);
	}
	ts.tv_sec = (time_t)w->interval;
	ts.tv_nsec = 0;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int
sg_cli_cmd_watch(int argc, char **argv, struct sg_cli_conf *conf)
{
	struct watch_args w;
	struct sg_cli_http *h = NULL;
	json_t *keys = NULL, *map = NULL, *order = NULL, *prev = NULL;
	char me[SG_NAME_SIZE];
	const char *p;
	int ex;

	if ((ex = watch_options(argc, argv, conf, &w)) != 0)
		return ex < 0 ? SG_EXIT_OK : ex;
	if ((ex = sg_cli_connect(conf, &h)) != 0)
		return ex;
	/* Who the certificate makes us: GET /v1/keys names the principal. */
	if ((ex = sg_cli_api(h, "GET", "/v1/keys", NULL, NULL, 0, &keys,
	    NULL)) != SG_EXIT_OK)
		goto out;
	if ((p = sg_cli_jstr(keys, "principal")) == NULL ||
	    strlen(p) >= sizeof(me)) {
		fprintf(stderr, "signgate: the server does not name a "
		    "principal for this certificate\n");
		ex = SG_EXIT_REFUSED;
		goto out;
	}
	snprintf(me, sizeof(me), "%s", p);
	if ((ex = read_queue(h, &w, me, &prev, &order)) != SG_EXIT_OK)
		goto out;
	print_queue(order, me);
	if (w.once)
		goto out;
	fflush(stdout);
	/* An --exec command that stops reading its input is no reason to
	 * stop watching. */
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		pause_for(h, &w, order);
		json_decref(order);
		order = NULL;
		if ((ex = read_queue(h, &w, me, &map, &order)) != SG_EXIT_OK) {
			/* The gateway away for a while: try again. */
			fprintf(stderr, "signgate: the queue cannot be read; "
			    "trying again\n");
			pause_for(h, &w, NULL);
			if ((order = json_array()) == NULL) {
				ex = SG_EXIT_LOCAL;
				goto out;
			}
			continue;
		}
		compare(h, &w, prev, order, map);
		fflush(stdout);
		json_decref(prev);
		prev = map;
		map = NULL;
	}
out:
	ex = sg_cli_flush(ex);
	json_decref(keys);
	json_decref(map);
	json_decref(order);
	json_decref(prev);
	sg_cli_http_free(h);
	return ex;
}
