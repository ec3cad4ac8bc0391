/*
 * signgate: the command-line client of signgated, for all three roles
 * (conveyor, officer, auditor).  This file only parses the global options
 * that come before the command and dispatches; each command lives in its
 * own src/cli_*.c module (see include/sg_cli.h) and parses the rest of the
 * line itself, global options included, so that `signgate --url U keys`
 * and `signgate keys --url U` mean the same.  Help texts and the exit
 * statuses are documented in src/cli_usage.c.
 */
#include <getopt.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "sg_cli.h"
#include "sg_err.h"
#include "sg_util.h"

#ifndef SG_VERSION
#error "SG_VERSION comes from the Makefile (VERSION)"
#endif

/* Options of the program itself, before the command. */
#define OPT_VERSION SG_OPT_CMD

struct command {
	const char *name;
	int (*fn)(int, char **, struct sg_cli_conf *);
};

static const struct command commands[] = {
	{ "keys", sg_cli_cmd_keys },
	{ "sign", sg_cli_cmd_sign },
	{ "release", sg_cli_cmd_release },
	{ "grant", sg_cli_cmd_grant },
	{ "pending", sg_cli_cmd_pending },
	{ "show", sg_cli_cmd_show },
	{ "approve", sg_cli_cmd_approve },
	{ "reject", sg_cli_cmd_approve },
	{ "cancel", sg_cli_cmd_cancel },
	{ "verify", sg_cli_cmd_verify },
	{ "log", sg_cli_cmd_log },
	{ "policy", sg_cli_cmd_policy },
	{ "watch", sg_cli_cmd_watch },
};

static const struct command *
find_command(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static int
help(int argc, char **argv)
{
	if (argc < 2)
		return sg_cli_usage(stdout, NULL) == 0 ? SG_EXIT_OK :
		    SG_EXIT_LOCAL;
	if (argc > 2 || sg_cli_usage(stdout, argv[1]) != 0) {
		fprintf(stderr, "signgate: no such command: %s\n",
		    sg_cli_esc(argv[1]));
		return SG_EXIT_USAGE;
	}
	return SG_EXIT_OK;
}

int
main(int argc, char **argv)
{
	static const struct option own[] = {
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	struct option opts[SG_CLI_MAX_OPTIONS];
	struct sg_cli_conf conf;
	const struct command *cmd;
	int c, ex, show_help = 0;

	setlocale(LC_ALL, "C");
	memset(&conf, 0, sizeof(conf));
	if (sg_cli_options(own, opts, SG_CLI_MAX_OPTIONS) != 0)
		return SG_EXIT_LOCAL;
	/* '+': stop at the command name; the command parses the rest. */
	while ((c = getopt_long(argc, argv, "+hv", opts, NULL)) != -1) {
		if (c == 'h' || c == SG_OPT_HELP) {
			show_help = 1;
			continue;
		}
		if (c == OPT_VERSION) {
			printf("signgate %s\n", SG_VERSION);
			return fflush(stdout) == 0 ? SG_EXIT_OK : SG_EXIT_LOCAL;
		}
		if (sg_cli_global_option(&conf, c, optarg) != 0) {
			fprintf(stderr, "see: signgate --help\n");
			return SG_EXIT_USAGE;
		}
	}
	if (show_help) {
		sg_cli_usage(stdout, NULL);
		return SG_EXIT_OK;
	}
	if (optind >= argc) {
		sg_cli_usage(stderr, NULL);
		return SG_EXIT_USAGE;
	}
	if (strcmp(argv[optind], "help") == 0)
		return help(argc - optind, argv + optind);
	if ((cmd = find_command(argv[optind])) == NULL) {
		fprintf(stderr, "signgate: no such command: %s (see signgate "
		    "--help)\n", sg_cli_esc(argv[optind]));
		return SG_EXIT_USAGE;
	}
	json_object_seed(0);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "signgate: cannot initialise libcurl\n");
		return SG_EXIT_LOCAL;
	}
	ex = cmd->fn(argc - optind, argv + optind, &conf);
	curl_global_cleanup();
	return ex;
}
