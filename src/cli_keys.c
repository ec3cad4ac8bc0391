/*
 * `signgate keys`: what the server can sign with, where the HSM stands,
 * which certificate goes with each key and what its policy demands.  The
 * public key of every key is checked against its claimed SPKI digest, and
 * a certificate that is not for the key is flagged: the listing is what
 * conveyors and auditors pin, so it must not quietly show a wrong key.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sg_cli.h"
#include "sg_crypto.h"
#include "sg_err.h"

/* Joins a JSON array of strings with sep, escaped. */
static void
join_strings(const json_t *arr, const char *sep, char *out, size_t cap)
{
	const json_t *v;
	size_t i, o = 0;
	int n;

	out[0] = '\0';
	if (!json_is_array(arr))
		return;
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v))
			continue;
		n = snprintf(out + o, cap - o, "%s%s", o > 0 ? sep : "",
		    sg_cli_esc(json_string_value(v)));
		if (n < 0 || (size_t)n >= cap - o)
			return;
		o += (size_t)n;
	}
}

static void
print_policy(const json_t *pol)
{
	const json_t *req, *t, *v;
	char buf[1024], members[512];
	size_t i, o = 0;
	int n;

	if (!json_is_object(pol))
		return;
	join_strings(json_object_get(pol, "requesters"), " ", buf, sizeof(buf));
	printf("    policy: requesters %s", buf[0] ? buf : "none");
	req = json_object_get(pol, "require");
	buf[0] = '\0';
	if (json_is_array(req)) {
		json_array_foreach(req, i, t) {
			v = json_object_get(t, "count");
			join_strings(json_object_get(t, "members"), " ",
			    members, sizeof(members));
			n = snprintf(buf + o, sizeof(buf) - o,
			    "%s%lld of %s%s%s%s", o > 0 ? ", " : "",
			    json_is_integer(v) ?
			    (long long)json_integer_value(v) : 0LL,
			    sg_cli_esc(sg_cli_jstr(t, "group")),
			    members[0] ? " (" : "", members,
			    members[0] ? ")" : "");
			if (n < 0 || (size_t)n >= sizeof(buf) - o)
				break;
			o += (size_t)n;
		}
	}
	printf("; requires %s", buf[0] ? buf : "no approval");
	v = json_object_get(pol, "veto");
	if (json_is_boolean(v))
		printf("; veto %s", json_is_true(v) ? "yes" : "no");
	v = json_object_get(pol, "lifetime");
	if (json_is_integer(v))
		printf("; lifetime %llds", (long long)json_integer_value(v));
	join_strings(json_object_get(pol, "countries"), " ", buf, sizeof(buf));
	if (buf[0] != '\0')
		printf("; countries %s", buf);
	putchar('\n');
}

/* Earlier keys of this name, kept listed after a rotation so that old
 * signatures can be checked. */
static void
print_retired(const json_t *arr)
{
	char subject[512], nb[32], na[32];
	const json_t *r;
	size_t i;

	if (!json_is_array(arr))
		return;
	json_array_foreach(arr, i, r) {
		const char *cert = sg_cli_jstr(r, "certificate_pem");
		const char *why = sg_cli_jstr(r, "reason");

		printf("    retired %s: ", sg_cli_esc(sg_cli_jstr(r,
		    "retired_at")));
		if (why != NULL)
			printf("%s\n", sg_cli_esc(why));
		else if (cert != NULL && sg_cli_cert_summary(cert,
		    strlen(cert), subject, sizeof(subject), nb, na) == 0)
			printf("spki sha256:%s, %s, valid %s to %s\n",
			    sg_cli_esc(sg_cli_jstr(r, "spki_sha256")),
			    sg_cli_esc(subject), nb, na);
		else
			printf("spki sha256:%s\n",
			    sg_cli_esc(sg_cli_jstr(r, "spki_sha256")));
	}
}

/* Returns 1 when a check fails (the key or certificate is not what the
 * server claims), 0 otherwise. */
static int
print_key(const json_t *k, int namew)
{
	const json_t *hsm = json_object_get(k, "hsm");
	const char *cert = sg_cli_jstr(k, "certificate_pem");
	const char *reason = sg_cli_jstr(k, "reason");
	char formats[64], spki[SG_SHA256_HEX_SIZE], err[512], subject[512];
	char nb[32], na[32];
	EVP_PKEY *pub = NULL, *cpub = NULL;
	int bad = 0;

	join_strings(json_object_get(k, "formats"), ",", formats,
	    sizeof(formats));
	printf("%-*s %-11s %-8s %-12s %s/%s/%s\n", namew,
	    sg_cli_esc(sg_cli_jstr(k, "name")),
	    sg_cli_esc(sg_cli_jstr(k, "algorithm")),
	    formats[0] ? formats : "-",
	    sg_cli_esc(sg_cli_jstr(k, "state")),
	    sg_cli_esc(sg_cli_jstr(hsm, "token")),
	    sg_cli_esc(sg_cli_jstr(hsm, "site")),
	    sg_cli_esc(sg_cli_jstr(hsm, "country")));
	if (sg_cli_key_public(k, &pub, spki, err, sizeof(err)) == 0) {
		printf("    spki: sha256:%s\n", spki);
	} else {
		fprintf(stderr, "signgate: %s\n", err);
		printf("    spki: does not match the public key\n");
		bad = 1;
	}
	if (cert != NULL) {
		if (sg_cli_cert_summary(cert, strlen(cert), subject,
		    sizeof(subject), nb, na) != 0) {
			printf("    certificate: does not parse\n");
			bad = 1;
		} else {
			printf("    certificate: %s, valid %s to %s\n",
			    sg_cli_esc(subject), nb, na);
			if (pub != NULL && (sg_pubkey_from_pem(cert,
			    strlen(cert), &cpub) != 0 ||
			    EVP_PKEY_eq(cpub, pub) != 1)) {
				fprintf(stderr, "signgate: key %s: the "
				    "certificate is not for this key\n",
				    sg_cli_esc(sg_cli_jstr(k, "name")));
				printf("    certificate: NOT FOR THIS KEY\n");
				bad = 1;
			}
		}
	}
	print_policy(json_object_get(k, "policy"));
	if (reason != NULL)
		printf("    reason: %s\n", sg_cli_esc(reason));
	print_retired(json_object_get(k, "retired"));
	EVP_PKEY_free(pub);
	EVP_PKEY_free(cpub);
	return bad;
}

/* The NAME column's width: the longest escaped name, at least 4. */
static int
name_width(const json_t *arr)
{
	const json_t *k;
	const char *name;
	size_t i;
	int w = 4;

	json_array_foreach(arr, i, k) {
		name = sg_cli_jstr(k, "name");
		if (name != NULL && (int)strlen(sg_cli_esc(name)) > w)
			w = (int)strlen(sg_cli_esc(name));
	}
	return w;
}

/* The table of keys; an exit status (SG_EXIT_VERIFY when a check failed). */
static int
print_keys(const json_t *doc)
{
	const json_t *arr = json_object_get(doc, "keys"), *k;
	size_t i;
	int bad = 0, namew;

	if (!json_is_array(arr)) {
		fprintf(stderr, "signgate: malformed response: no keys\n");
		return SG_EXIT_SERVER;
	}
	namew = name_width(arr);
	printf("%-*s %-11s %-8s %-12s %s\n", namew, "NAME", "ALGORITHM",
	    "FORMATS", "STATE", "HSM");
	json_array_foreach(arr, i, k)
		bad |= print_key(k, namew);
	return bad ? SG_EXIT_VERIFY : SG_EXIT_OK;
}

int
sg_cli_cmd_keys(int argc, char **argv, struct sg_cli_conf *conf)
{
	static const struct option own[] = {
		{ "json", no_argument, NULL, SG_OPT_CMD },
		{ NULL, 0, NULL, 0 },
	};
	struct sg_cli_http *h = NULL;
	struct sg_cli_http_resp raw;
	json_t *doc = NULL;
	int json = 0, help, ex;
	const struct sg_cli_cmdline cl = { "keys", own, NULL, sg_cli_opt_json,
	    &json };

	memset(&raw, 0, sizeof(raw));
	if ((ex = sg_cli_getopt(argc, argv, &cl, conf, &help)) != 0)
		return ex;
	if (help) {
		sg_cli_usage(stdout, "keys");
		return SG_EXIT_OK;
	}
	if (optind != argc) {
		fprintf(stderr, "signgate: keys takes no arguments\n");
		return SG_EXIT_USAGE;
	}
	if ((ex = sg_cli_connect(conf, &h)) != 0)
		return ex;
	if ((ex = sg_cli_api(h, "GET", "/v1/keys", NULL, NULL, 0, &doc,
	    &raw)) != 0)
		goto out;
	if (json)
		sg_cli_print_raw(&raw);
	else
		ex = print_keys(doc);
out:
	ex = sg_cli_flush(ex);
	sg_cli_http_resp_clear(&raw);
	json_decref(doc);
	sg_cli_http_free(h);
	return ex;
}
