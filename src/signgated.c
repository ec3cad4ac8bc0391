/*
 * signgated: the signing gateway daemon.
 *
 *   signgated -c CONFIG [-p PORT] [-v]
 *   signgated --signer -c CONFIG [-v]
 *   signgated -t -c CONFIG [-v]         check only (src/cfgcheck.c)
 *   signgated --copy-store FROM TO [--password-file FILE]
 *                                       copy a store to another backend
 *                                       (src/store_copy.c)
 *
 * Runs in the foreground (systemd's Type=notify: READY=1 is sent once the
 * listener is up).  SIGTERM/SIGINT stop it cleanly: waiting connections
 * are resumed, the HTTP front stops, then the service closes the store and
 * the PKCS#11 module.
 *
 * Two processes, two users (sg_privdrop.h).  Without signer_socket in the
 * configuration the front forks its signer; started as root, each then
 * drops to its own user.  With it, the signer is started on its own
 * (--signer, the signgated-signer unit) and listens there, and the front
 * connects to it; each is started as its user (the systemd units) or as
 * root, and drops.  Started as any other user, both share that uid: a
 * development setting, said so once in the log.
 *
 * Started as root, the state directories are created or taken over for
 * their users (state_dir for the front, signer_state_dir for the signer)
 * before anything opens a file in them.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "sg_api.h"
#include "sg_cfgcheck.h"
#include "sg_config.h"
#include "sg_err.h"
#include "sg_console.h"
#include "sg_http.h"
#include "sg_privdrop.h"
#include "sg_service.h"
#include "sg_signer_proc.h"
#include "sg_store.h"
#include "sg_util.h"

#ifndef SG_VERSION
#error "SG_VERSION comes from the Makefile (VERSION)"
#endif

static void
usage(FILE *f)
{
	fprintf(f, "usage: signgated -c CONFIG [-p PORT] [-v]\n"
	    "       signgated --signer -c CONFIG [-v]\n"
	    "       signgated -t -c CONFIG [-v]\n"
	    "       signgated --copy-store FROM TO [--password-file FILE]\n"
	    "       signgated --help | --version\n"
	    "  -c CONFIG    the JSON configuration file\n"
	    "  -p PORT      listen on this port instead of the configured one\n"
	    "               (0: any free port; the log line says which)\n"
	    "  -v           verbose (debug) logging\n"
	    "  --signer     run the signer alone, listening on signer_socket\n"
	    "  -t, --check  check the configuration and what it names (TLS\n"
	    "               files, policy, PKCS#11 module, tokens, PINs, keys)\n"
	    "               without starting: every problem is printed; exit 0\n"
	    "               with \"configuration OK\", or 1\n"
	    "  --copy-store FROM TO\n"
	    "               copy the store FROM into the empty store TO,\n"
	    "               each sqlite:DIR (the state directory) or\n"
	    "               postgresql:CONNINFO (a libpq conninfo without\n"
	    "               a password), then check that TO holds every\n"
	    "               row and a log that matches FROM's signed\n"
	    "               checkpoint; claims are not copied.  A TO that\n"
	    "               holds any row is refused; a failed copy leaves\n"
	    "               TO empty.  Run it as any user that can open\n"
	    "               both, with every gateway on FROM stopped; then\n"
	    "               point \"store\" in the configuration at TO.\n"
	    "               Prints a report; exit 0, or 1 with the reason\n"
	    "  --password-file FILE\n"
	    "               the PostgreSQL password (mode 0600, owned by\n"
	    "               the caller or root), for the postgresql side(s)\n"
	    "  -h, --help   this text\n"
	    "  --version    print the version\n");
}

/* Tells systemd we are ready, when started as Type=notify. */
static void
notify_ready(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	int fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@') ||
	    strlen(path) >= sizeof(sun.sun_path))
		return;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0';
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return;
	(void)sendto(fd, "READY=1", 7, 0, (struct sockaddr *)&sun,
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path)));
	close(fd);
}

/*
 * The signer on its own.  It ends with _exit(), as the forked signer does:
 * its serving threads hold the module to the end, and a non-dumpable
 * process cannot be scanned by LeakSanitizer anyway.
 */
static void
run_signer(const char *config_path, struct sg_config *cfg,
    const sigset_t *set)
{
	char err[1024];
	size_t i;
	int sig;

	if (cfg->signer_socket == NULL) {
		fprintf(stderr, "signgated: %s: signer_socket: needed with "
		    "--signer\n", config_path);
		_exit(1);
	}
	for (i = 0; i < cfg->ntokens; i++)
		if (cfg->tokens[i].pin_file[0] == '\0') {
			fprintf(stderr, "signgated: %s: pkcs11.tokens[%zu]: "
			    "pin_credential needs $CREDENTIALS_DIRECTORY "
			    "(systemd LoadCredential=)\n", config_path, i);
			_exit(1);
		}
	if (sg_privdrop_prepare_dir("signer_state_dir", cfg->signer_state_dir,
	    SG_PRIV_SIGNER, err, sizeof(err)) != 0 ||
	    sg_signer_listen(cfg->signer_socket, cfg->pkcs11_module,
	    cfg->tokens, cfg->ntokens, cfg->policy_path, cfg->log_origin,
	    cfg->signer_state_dir, cfg->log_token, cfg->log_key,
	    cfg->pkcs11_concurrency, err, sizeof(err)) != 0) {
		fprintf(stderr, "signgated: %s\n", err);
		_exit(1);
	}
	notify_ready();
	sig = sg_signal_wait(set, "SIGHUP: the signer re-reads its policy "
	    "when the front reloads");
	sg_log_info("signal %d: signer stopping", sig);
	(void)unlink(cfg->signer_socket);
	_exit(0);
}

/* Which process may run as which user, before anything is opened. */
static int
check_start(const char *config_path, const struct sg_config *cfg,
    int signer_mode)
{
	switch (sg_privdrop_start()) {
	case SG_PRIV_START_FRONT:
		if (signer_mode) {
			fprintf(stderr, "signgated: %s: users.signer: the "
			    "signer runs as users.front '%s'; start it as "
			    "'%s' or as root\n", config_path, cfg->front_user,
			    cfg->signer_user);
			return -1;
		}
		if (cfg->signer_socket == NULL) {
			fprintf(stderr, "signgated: %s: signer_socket: started "
			    "as users.front '%s' without one, the forked "
			    "signer would run as '%s' too; start as root, or "
			    "run the signer on its own (signgated --signer)\n",
			    config_path, cfg->front_user, cfg->front_user);
			return -1;
		}
		return 0;
	case SG_PRIV_START_SIGNER:
		if (!signer_mode) {
			fprintf(stderr, "signgated: %s: users.front: the front "
			    "runs as users.signer '%s'; start it as '%s' or as "
			    "root\n", config_path, cfg->signer_user,
			    cfg->front_user);
			return -1;
		}
		return 0;
	default:
		return 0;
	}
}

/* The front, the API and the service, as the front runs them; the
 * console and its listener when configured. */
struct front {
	struct sg_service *svc;
	struct sg_api *api;
	struct sg_http *http;
	struct sg_console *console;
	struct sg_http *console_http;
};

static void
on_change(void *arg, const char *id)
{
	struct front *f = arg;

	sg_http_notify(f->http, id);
	sg_console_changed(f->console, id);
}

/* What the command line asked for. */
struct opts {
	const char *config_path;
	uint64_t port;
	int port_set;
	int signer_mode;
	int check_mode;
	int copy_mode;
	const char *copy_from, *copy_to;
	const char *password_file;
};

#define OPTS_GO_ON (-1)

/* OPTS_GO_ON, or the exit status (--help, --version, a usage error). */
static int
parse_options(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "signer", no_argument, NULL, 'S' },
		{ "check", no_argument, NULL, 't' },
		{ "copy-store", no_argument, NULL, 'C' },
		{ "password-file", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	memset(o, 0, sizeof(*o));
	while ((ch = getopt_long(argc, argv, "c:p:vht", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'S':
			o->signer_mode = 1;
			break;
		case 't':
			o->check_mode = 1;
			break;
		case 'C':
			o->copy_mode = 1;
			break;
		case 'P':
			o->password_file = optarg;
			break;
		case 'c':
			o->config_path = optarg;
			break;
		case 'p':
			if (sg_parse_u64(optarg, 0, 65535, &o->port) != 0) {
				fprintf(stderr, "signgated: -p: not a port "
				    "number\n");
				return 2;
			}
			o->port_set = 1;
			break;
		case 'v':
			sg_log_set_verbose(1);
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("signgated %s\n", SG_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (o->copy_mode) {
		if (optind + 2 != argc || o->config_path != NULL ||
		    o->signer_mode || o->check_mode || o->port_set) {
			usage(stderr);
			return 2;
		}
		o->copy_from = argv[optind];
		o->copy_to = argv[optind + 1];
		return OPTS_GO_ON;
	}
	if (o->config_path == NULL || optind != argc ||
	    o->password_file != NULL ||
	    (o->signer_mode && o->port_set) ||
	    (o->check_mode && (o->signer_mode || o->port_set))) {
		usage(stderr);
		return 2;
	}
	return OPTS_GO_ON;
}

/* sqlite:DIR or postgresql:CONNINFO (which must hold no password).
 * The argument is not repeated in a message: it may hold a password. */
static int
store_arg(const char *what, const char *arg, struct sg_store_conf *ret)
{
	char why[512];
	int r;

	memset(ret, 0, sizeof(*ret));
	if (strncmp(arg, "sqlite:", 7) == 0 && arg[7] != '\0') {
		ret->backend = SG_DB_SQLITE;
		ret->dir = arg + 7;
		return 0;
	}
	if (strncmp(arg, "postgresql:", 11) != 0) {
		fprintf(stderr, "signgated: --copy-store: %s: must be "
		    "sqlite:DIR or postgresql:CONNINFO\n", what);
		return -1;
	}
	ret->backend = SG_DB_POSTGRESQL;
	ret->conninfo = arg + 11;
	if ((r = sg_conninfo_check(ret->conninfo, why, sizeof(why))) != 0) {
		fprintf(stderr, "signgated: --copy-store: %s: the conninfo "
		    "%s%s\n", what, why, r == SG_ERR_FORBIDDEN ? ": give it in a file "
		    "with --password-file" : "");
		return -1;
	}
	return 0;
}

/* signgated --copy-store: 0 once the copy is made and checked, else 1. */
static int
run_copy(const struct opts *o)
{
	struct sg_store_conf from, to;
	char err[1024], *password = NULL;
	size_t plen = 0;
	int r;

	if (store_arg("FROM", o->copy_from, &from) != 0 ||
	    store_arg("TO", o->copy_to, &to) != 0)
		return 1;
	if (o->password_file != NULL) {
		if (from.backend != SG_DB_POSTGRESQL &&
		    to.backend != SG_DB_POSTGRESQL) {
			fprintf(stderr, "signgated: --password-file: neither "
			    "side is postgresql\n");
			return 1;
		}
		if ((r = sg_read_secret_file(o->password_file, &password,
		    &plen)) != 0) {
			fprintf(stderr, "signgated: --password-file %s: %s%s\n",
			    o->password_file, sg_strerror(r),
			    r == SG_ERR_PERMISSIONS ? " (it must be mode 0600 "
			    "and owned by this user or root)" : "");
			return 1;
		}
		if (from.backend == SG_DB_POSTGRESQL)
			from.password = password;
		if (to.backend == SG_DB_POSTGRESQL)
			to.password = password;
	}
	r = sg_store_copy(&from, &to, stdout, err, sizeof(err));
	sg_freezero(password, plen);
	if (r != 0) {
		fprintf(stderr, "signgated: --copy-store: %s\n", err);
		return 1;
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

/*
 * Started as root: the directories first, then, with a signer of its own,
 * the front's user before it connects (the signer accepts no other); a
 * forked signer is started as root and drops itself.
 */
static int
prepare_front(const struct sg_config *cfg)
{
	char err[1024];

	if (sg_privdrop_prepare_dir("state_dir", cfg->state_dir,
	    SG_PRIV_FRONT, err, sizeof(err)) != 0 ||
	    (cfg->signer_socket == NULL && sg_privdrop_prepare_dir(
	    "signer_state_dir", cfg->signer_state_dir, SG_PRIV_SIGNER, err,
	    sizeof(err)) != 0) ||
	    (cfg->signer_socket != NULL && sg_privdrop_enter(SG_PRIV_FRONT,
	    err, sizeof(err)) != 0)) {
		fprintf(stderr, "signgated: %s\n", err);
		return -1;
	}
	return 0;
}

/* What both listeners share: the TLS certificate and the limits and
 * deadlines of connections (hc is cleared first). */
static void
front_limits(const struct sg_config *cfg, struct sg_http_config *hc)
{
	memset(hc, 0, sizeof(*hc));
	hc->cert_file = cfg->tls_certificate;
	hc->key_file = cfg->tls_private_key;
	hc->connection_limit = cfg->connection_limit;
	hc->per_ip_connection_limit = cfg->per_ip_connection_limit;
	hc->connection_timeout = cfg->connection_timeout;
	hc->unauth_connection_limit = cfg->unauth_connection_limit;
	hc->per_ip_unauth_limit = cfg->per_ip_unauth_limit;
	hc->handshake_timeout = cfg->handshake_timeout;
	hc->first_request_timeout = cfg->first_request_timeout;
	hc->request_timeout = cfg->request_timeout;
}

static int
start_http(const struct sg_config *cfg, struct front *f)
{
	struct sg_http_config hc;
	char err[1024];

	front_limits(cfg, &hc);
	hc.address = cfg->listen_address;
	hc.port = cfg->port;
	hc.plain_http = cfg->plain_http;
	hc.client_ca_file = cfg->tls_client_ca;
	hc.threads = cfg->threads;
	if (sg_http_start(&hc, sg_api_handle, f->api, &f->http, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "signgated: %s\n", err);
		return -1;
	}
	return 0;
}

/*
 * The officers' console: a second front on its own listener, with the
 * API's TLS certificate and limits but no client certificate asked for
 * (src/console.c).
 */
static int
start_console(const struct sg_config *cfg, struct front *f)
{
	const struct sg_console_config *cc = &cfg->console;
	struct sg_console_conf conf;
	struct sg_http_config hc;
	char err[1024];

	memset(&conf, 0, sizeof(conf));
	conf.rp_id = cc->rp_id;
	conf.origin = cc->origin;
	conf.svc = f->svc;
	conf.api = f->api;
	conf.anon_per_second = cfg->anon_rate_per_second;
	conf.anon_burst = cfg->anon_rate_burst;
	if (sg_console_new(&conf, &f->console) != 0) {
		fprintf(stderr, "signgated: cannot set up the console\n");
		return -1;
	}
	front_limits(cfg, &hc);
	hc.address = cc->listen_address;
	hc.port = cc->port;
	hc.no_client_cert = 1;
	hc.headers = sg_console_headers;
	/* A few officers at a time: two polling threads are plenty. */
	hc.threads = cfg->threads > 2 ? 2 : cfg->threads;
	if (sg_http_start(&hc, sg_console_handle, f->console, &f->console_http,
	    err, sizeof(err)) != 0) {
		fprintf(stderr, "signgated: console: %s\n", err);
		return -1;
	}
	sg_console_set_front(f->console, f->console_http);
	sg_log_info("console on https://%s%s%s:%u (origin %s)",
	    strchr(cc->listen_address, ':') ? "[" : "", cc->listen_address,
	    strchr(cc->listen_address, ':') ? "]" : "",
	    sg_http_port(f->console_http), cc->origin);
	return 0;
}

/* Opens the service (and with it the signer), then listens. */
static int
start_front(const struct sg_config *cfg, struct front *f)
{
	char err[1024];

	if (prepare_front(cfg) != 0)
		return -1;
	if (sg_service_open(cfg, &f->svc, err, sizeof(err)) != 0) {
		fprintf(stderr, "signgated: %s\n", err);
		return -1;
	}
	if (sg_api_new(f->svc, cfg->plain_http, cfg->rate_per_second,
	    cfg->rate_burst, &f->api) != 0)
		return -1;
	sg_api_set_anonymous_rate(f->api, cfg->anon_rate_per_second,
	    cfg->anon_rate_burst);
	if (start_http(cfg, f) != 0)
		return -1;
	if (cfg->console.enabled && start_console(cfg, f) != 0)
		return -1;
	sg_service_set_notify(f->svc, on_change, f);
	sg_log_info("listening on %s://%s%s%s:%u", cfg->plain_http ? "http" :
	    "https", strchr(cfg->listen_address, ':') ? "[" : "",
	    cfg->listen_address, strchr(cfg->listen_address, ':') ? "]" : "",
	    sg_http_port(f->http));
	notify_ready();
	return 0;
}

/* Until SIGTERM or SIGINT; SIGHUP reloads the policy. */
static void
wait_signals(struct sg_service *svc, const sigset_t *set)
{
	char err[1024];
	int sig;

	for (;;) {
		if (sigwait(set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			if (sg_service_reload(svc, err, sizeof(err)) == 0)
				sg_log_info("SIGHUP: policy %s version %llu "
				    "in force", sg_policy_name(
				    sg_service_policy(svc)),
				    (unsigned long long)sg_policy_version(
				    sg_service_policy(svc)));
			else
				sg_log_error("SIGHUP: policy not reloaded, the "
				    "running one stays in force: %s", err);
			continue;
		}
		sg_log_info("signal %d: stopping", sig);
		break;
	}
}

/* The daemon (or, with --signer, the signer alone): 0 after a clean stop. */
static int
run_daemon(const struct opts *o, const sigset_t *set)
{
	struct sg_config *cfg = NULL;
	struct front f;
	char err[1024];
	int rc = 1;

	memset(&f, 0, sizeof(f));
	if (sg_config_load(o->config_path, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "signgated: %s\n", err);
		goto out;
	}
	if (sg_privdrop_init(cfg->front_user, cfg->signer_user, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "signgated: %s: %s\n", o->config_path, err);
		goto out;
	}
	if (check_start(o->config_path, cfg, o->signer_mode) != 0)
		goto out;
	if (o->signer_mode)
		run_signer(o->config_path, cfg, set);   /* does not return */
	if (o->port_set)
		cfg->port = (uint16_t)o->port;
	if (start_front(cfg, &f) != 0)
		goto out;
	wait_signals(f.svc, set);
	rc = 0;
out:
	/* The service's own threads first (they wake long-polls in the
	 * front), then the front, so no handler runs while the service
	 * goes. */
	sg_service_quiesce(f.svc);
	sg_http_stop(f.console_http);
	sg_console_free(f.console);
	sg_http_stop(f.http);
	sg_api_free(f.api);
	sg_service_free(f.svc);
	sg_config_free(cfg);
	return rc;
}

int
main(int argc, char **argv)
{
	struct opts o;
	sigset_t set;
	int rc;

	if ((rc = parse_options(argc, argv, &o)) != OPTS_GO_ON)
		return rc;
	if (o.check_mode) {
		json_object_seed(0);
		return sg_cfgcheck_run(o.config_path);
	}
	if (o.copy_mode)
		return run_copy(&o);
	/* Block the signals we wait for before any thread starts. */
	sg_signal_block(&set);
	json_object_seed(0);
	/* libcurl (the time-stamping client) must be set up before threads. */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = run_daemon(&o, &set);
	curl_global_cleanup();
	return rc;
}
