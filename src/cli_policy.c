/*
 * `signgate policy check FILE...` and `signgate policy hash FILE`: the
 * policy author's view, fully offline.  check reports every problem of a
 * policy file with its file and line (sg_policy_check), the way
 * `signgated -t` does for a whole configuration; hash prints the line that
 * approval statements made under the file will carry, so that an author
 * can announce it before the gateway loads the file.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_cli.h"
#include "sg_err.h"
#include "sg_policy.h"
#include "sg_util.h"

struct report {
	unsigned n;
};

static void
report_problem(void *arg, const char *file, int line, const char *msg)
{
	struct report *rep = arg;

	rep->n++;
	/* The parser quotes only printable ASCII; the path is the user's. */
	fprintf(stderr, "%s:%d: %s\n", sg_cli_esc(file), line, msg);
}

/* Reads and checks one file; 0 and *ret when it is a valid policy. */
static int
check_file(const char *path, struct sg_policy **ret, unsigned *nproblems)
{
	struct report rep = { 0 };
	char *text = NULL;
	size_t len;
	int r;

	*ret = NULL;
	if ((r = sg_read_file(path, SG_POLICY_FILE_MAX + 1, &text,
	    &len)) != 0) {
		fprintf(stderr, "%s: %s\n", sg_cli_esc(path),
		    r == SG_ERR_TOO_LARGE ? "larger than the largest policy" :
		    sg_strerror(r));
		*nproblems = 1;
		return r;
	}
	r = sg_policy_check(path, text, len, report_problem, &rep, ret);
	free(text);
	if (r == SG_ERR_NOMEM && rep.n == 0) {
		fprintf(stderr, "%s: out of memory\n", sg_cli_esc(path));
		rep.n = 1;
	}
	*nproblems = rep.n;
	return r;
}

static void
print_hash_line(const struct sg_policy *p)
{
	printf("policy %s@%llu sha256:%s\n", sg_policy_name(p),
	    (unsigned long long)sg_policy_version(p), sg_policy_sha256_hex(p));
}

/* Who approves this policy's successor, when anyone must. */
static void
print_change_terms(const struct sg_policy *p)
{
	const struct sg_term *t;
	size_t i, n = 0;

	t = sg_policy_change_terms(p, &n);
	if (n == 0)
		return;
	printf("  policy-change:");
	for (i = 0; i < n; i++)
		printf("%s require %s %u", i > 0 ? "," : "", t[i].group,
		    t[i].count);
	printf("\n");
}

static int
cmd_check(int argc, char **argv)
{
	struct sg_policy *p;
	unsigned n, total = 0;
	int i, bad = 0;

	if (argc < 1) {
		sg_cli_usage(stderr, "policy");
		return SG_EXIT_USAGE;
	}
	for (i = 0; i < argc; i++) {
		if (check_file(argv[i], &p, &n) == 0) {
			printf("%s: ok, ", sg_cli_esc(argv[i]));
			print_hash_line(p);
			print_change_terms(p);
			sg_policy_free(p);
			continue;
		}
		bad = 1;
		total += n;
	}
	if (bad)
		fprintf(stderr, "%u problem%s\n", total, total == 1 ? "" : "s");
	return bad ? SG_EXIT_LOCAL : SG_EXIT_OK;
}

static int
cmd_hash(int argc, char **argv)
{
	struct sg_policy *p;
	unsigned n;

	if (argc != 1) {
		sg_cli_usage(stderr, "policy");
		return SG_EXIT_USAGE;
	}
	if (check_file(argv[0], &p, &n) != 0)
		return SG_EXIT_LOCAL;
	print_hash_line(p);
	sg_policy_free(p);
	return SG_EXIT_OK;
}

int
sg_cli_cmd_policy(int argc, char **argv, struct sg_cli_conf *conf)
{
	static const struct option own[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	(void)conf;
	if (argc < 2) {
		sg_cli_usage(stderr, "policy");
		return SG_EXIT_USAGE;
	}
	/* The subcommand stands where getopt expects the program name. */
	argc--;
	argv++;
	optind = 0;
	while ((c = getopt_long(argc, argv, "+h", own, NULL)) != -1) {
		if (c == 'h') {
			sg_cli_usage(stdout, "policy");
			return SG_EXIT_OK;
		}
		sg_cli_usage(stderr, "policy");
		return SG_EXIT_USAGE;
	}
	if (strcmp(argv[0], "check") == 0)
		return cmd_check(argc - optind, argv + optind);
	if (strcmp(argv[0], "hash") == 0)
		return cmd_hash(argc - optind, argv + optind);
	fprintf(stderr, "signgate policy: no such subcommand: %s\n",
	    sg_cli_esc(argv[0]));
	sg_cli_usage(stderr, "policy");
	return SG_EXIT_USAGE;
}
