/*
 * signgate-witness: a transparency-log witness (c2sp.org/tlog-witness).
 *
 *   signgate-witness --config FILE [-v]
 *   signgate-witness --print-vkey FILE
 *
 * Runs in the foreground; SIGTERM or SIGINT stop it cleanly (the listener
 * stops, requests in progress finish, every record is already on disk).
 * The configuration is described in src/witnessd_config.c and
 * docs/OPERATIONS.md ("Running a witness").
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include "sg_cosig.h"
#include "sg_err.h"
#include "sg_util.h"
#include "sg_witnessd.h"

#ifndef SG_VERSION
#error "SG_VERSION comes from the Makefile (VERSION)"
#endif

static void
usage(FILE *f)
{
	fprintf(f, "usage: signgate-witness --config FILE [-v]\n"
	    "       signgate-witness --print-vkey FILE\n"
	    "       signgate-witness --help | --version\n"
	    "  --config FILE      run the witness with this JSON configuration\n"
	    "  --print-vkey FILE  print the witness's verifier key (its name,\n"
	    "                     key ID and public key), which logs and\n"
	    "                     verifiers configure, and exit\n"
	    "  -v                 verbose (debug) logging\n");
}

static int
print_vkey(const char *path)
{
	struct sg_wd_config *cfg = NULL;
	struct sg_wd_key *key = NULL;
	uint8_t pub[SG_ED25519_PUB];
	char err[1024], *vkey = NULL;
	int rc = 1;

	if (sg_wd_config_load(path, &cfg, err, sizeof(err)) != 0 ||
	    sg_wd_key_open(cfg, &key, err, sizeof(err)) != 0) {
		fprintf(stderr, "signgate-witness: %s\n", err);
		goto out;
	}
	sg_wd_key_public(key, pub);
	if (sg_cosig_vkey_format(cfg->name, pub, &vkey) != 0) {
		fprintf(stderr, "signgate-witness: cannot format the "
		    "verifier key\n");
		goto out;
	}
	printf("%s\n", vkey);
	rc = 0;
out:
	free(vkey);
	sg_wd_key_free(key);
	sg_wd_config_free(cfg);
	return rc;
}

static int
run(const char *path, const sigset_t *set)
{
	struct sg_wd_config *cfg = NULL;
	struct sg_wd *w = NULL;
	struct sg_wd_key *key = NULL;
	char err[1024];
	int sig, rc = 1;

	if (sg_wd_config_load(path, &cfg, err, sizeof(err)) != 0 ||
	    sg_wd_key_open(cfg, &key, err, sizeof(err)) != 0) {
		fprintf(stderr, "signgate-witness: %s\n", err);
		goto out;
	}
	if (sg_wd_open(cfg, key, &w, err, sizeof(err)) != 0) {
		key = NULL;    /* taken */
		fprintf(stderr, "signgate-witness: %s: %s\n", path, err);
		goto out;
	}
	key = NULL;            /* taken */
	if (sg_wd_listen(w, cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "signgate-witness: %s: %s\n", path, err);
		goto out;
	}
	sg_log_info("signgate-witness %s: %s witnessing %zu log%s on %s "
	    "port %u (%s)", SG_VERSION, cfg->name, cfg->nlogs,
	    cfg->nlogs == 1 ? "" : "s", cfg->listen_address,
	    (unsigned)sg_wd_port(w), cfg->plain_http ? "plain HTTP" : "TLS");
	sig = sg_signal_wait(set, "SIGHUP: the configuration is read only at "
	    "start; restart to change it");
	sg_log_info("signal %d: stopping", sig);
	rc = 0;
out:
	sg_wd_stop(w);
	sg_wd_key_free(key);
	sg_wd_config_free(cfg);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "print-vkey", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	const char *config = NULL, *vkey_config = NULL;
	sigset_t set;
	int ch;

	while ((ch = getopt_long(argc, argv, "c:hv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case 'P':
			vkey_config = optarg;
			break;
		case 'v':
			sg_log_set_verbose(1);
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("signgate-witness %s\n", SG_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || (config == NULL) == (vkey_config == NULL)) {
		usage(stderr);
		return 2;
	}
	json_object_seed(0);
	if (vkey_config != NULL)
		return print_vkey(vkey_config);
	/* Block the signals we wait for before any thread starts. */
	sg_signal_block(&set);
	return run(config, &set);
}
