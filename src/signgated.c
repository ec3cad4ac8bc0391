/*
 * signgated: the signing gateway daemon.
 *
 *   signgated -c CONFIG [-p PORT] [-v]
 *
 * Runs in the foreground (systemd's Type=notify: READY=1 is sent once the
 * listener is up).  SIGTERM/SIGINT stop it cleanly: waiting connections
 * are resumed, the HTTP front stops, then the service closes the store and
 * the PKCS#11 module.
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
#include "sg_config.h"
#include "sg_err.h"
#include "sg_http.h"
#include "sg_service.h"
#include "sg_util.h"

static void
usage(FILE *f)
{
	fprintf(f, "usage: signgated -c CONFIG [-p PORT] [-v]\n"
	    "  -c CONFIG  the JSON configuration file\n"
	    "  -p PORT    listen on this port instead of the configured one\n"
	    "             (0: any free port; the log line says which)\n"
	    "  -v         verbose (debug) logging\n");
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

static void
on_change(void *arg, const char *id)
{
	sg_http_notify(arg, id);
}

int
main(int argc, char **argv)
{
	struct sg_config *cfg = NULL;
	struct sg_service *svc = NULL;
	struct sg_api *api = NULL;
	struct sg_http *http = NULL;
	struct sg_http_config hc;
	const char *config_path = NULL;
	char err[1024];
	uint64_t port = 0;
	int port_set = 0;
	sigset_t set;
	int ch, sig, r, rc = 1;

	while ((ch = getopt(argc, argv, "c:p:vh")) != -1) {
		switch (ch) {
		case 'c':
			config_path = optarg;
			break;
		case 'p':
			if (sg_parse_u64(optarg, 0, 65535, &port) != 0) {
				fprintf(stderr, "signgated: -p: not a port "
				    "number\n");
				return 2;
			}
			port_set = 1;
			break;
		case 'v':
			sg_log_set_verbose(1);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (config_path == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}

	/* Block the signals we wait for before any thread starts. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	json_object_seed(0);
	/* libcurl (the time-stamping client) must be set up before threads. */
	curl_global_init(CURL_GLOBAL_DEFAULT);

	if (sg_config_load(config_path, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "signgated: %s\n", err);
		goto out;
	}
	if (port_set)
		cfg->port = (uint16_t)port;
	if ((r = sg_service_open(cfg, &svc, err, sizeof(err))) != 0) {
		fprintf(stderr, "signgated: %s\n", err);
		goto out;
	}
	if (sg_api_new(svc, cfg->plain_http, cfg->rate_per_second,
	    cfg->rate_burst, &api) != 0)
		goto out;
	sg_api_set_anonymous_rate(api, cfg->anon_rate_per_second,
	    cfg->anon_rate_burst);
	memset(&hc, 0, sizeof(hc));
	hc.address = cfg->listen_address;
	hc.port = cfg->port;
	hc.plain_http = cfg->plain_http;
	hc.cert_file = cfg->tls_certificate;
	hc.key_file = cfg->tls_private_key;
	hc.client_ca_file = cfg->tls_client_ca;
	hc.threads = cfg->threads;
	hc.connection_limit = cfg->connection_limit;
	hc.per_ip_connection_limit = cfg->per_ip_connection_limit;
	hc.connection_timeout = cfg->connection_timeout;
	hc.unauth_connection_limit = cfg->unauth_connection_limit;
	hc.per_ip_unauth_limit = cfg->per_ip_unauth_limit;
	hc.handshake_timeout = cfg->handshake_timeout;
	hc.first_request_timeout = cfg->first_request_timeout;
	hc.request_timeout = cfg->request_timeout;
	if (sg_http_start(&hc, sg_api_handle, api, &http, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "signgated: %s\n", err);
		goto out;
	}
	sg_service_set_notify(svc, on_change, http);
	sg_log_info("listening on %s://%s%s%s:%u", cfg->plain_http ? "http" :
	    "https", strchr(cfg->listen_address, ':') ? "[" : "",
	    cfg->listen_address, strchr(cfg->listen_address, ':') ? "]" : "",
	    sg_http_port(http));
	notify_ready();

	for (;;) {
		if (sigwait(&set, &sig) != 0)
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
	rc = 0;
out:
	/* Stop the front first so no handler runs while the service goes. */
	sg_http_stop(http);
	sg_api_free(api);
	sg_service_free(svc);
	sg_config_free(cfg);
	curl_global_cleanup();
	return rc;
}
