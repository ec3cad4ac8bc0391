/*
 * `signgate verify`: the auditor's offline check of one signature.
 *
 * Inputs are local files only (the artifact or its digest, the signature,
 * the tlog-proof bundle `sign` saved next to it, the policy file and the
 * log's verifier key); nothing is fetched, so the answer cannot depend on
 * what a server says today.  The proof's extra line carries the signature
 * log entry itself, which is self-contained evidence (see sg_entry.h), and
 * the chain is walked from the one thing the auditor trusts, the log key,
 * to the artifact:
 *
 *   log key -> checkpoint signature -> checkpoint (origin, size, root)
 *   -> inclusion of the entry at its index -> the entry (statement,
 *   envelopes, public key, signature, HSM) -> the statement's SPKI digest
 *   and artifact digest -> the signature over that digest -> the approvals
 *   under the policy file the statement names -> the HSM's country.
 *
 * With --witness (or --witness-file), the checkpoint must also carry
 * valid cosignatures (c2sp.org/tlog-cosignature) from at least
 * --witness-quorum of the witnesses given (all of them by default):
 * the link "witness", right after the checkpoint's own signature.
 *
 * The policy is the one the proof's last bundle carries (the `policy`
 * entry of the policy the statement names, under the same checkpoint),
 * or the file --policy names; with both, they must be the same file.
 * Proofs from before policies were logged have no policy bundle and
 * need --policy.  A policy logged pending must come with how it took
 * effect (the link "policy approval", after the policy entry): the
 * bundles of its policy-effective entry, of the policy-decision entries
 * that lists and of the previous policy's entry, the decisions meeting
 * the previous policy's policy-change terms.
 *
 * Every link is checked, in that order, and the first broken one is
 * reported as "verify: <link>: <why>" with exit 5; nothing after it is
 * trusted.  Files that cannot be read are a local error (exit 1).
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "sg_cli.h"
#include "sg_cli_witness.h"
#include "sg_cms.h"
#include "sg_crypto.h"
#include "sg_dsse.h"
#include "sg_entry.h"
#include "sg_err.h"
#include "sg_evidence.h"
#include "sg_manifest.h"
#include "sg_merkle.h"
#include "sg_note.h"
#include "sg_policy.h"
#include "sg_policy_change.h"
#include "sg_util.h"

#define VKEY_FILE_MAX 1024
/* Generous: sg_tlog_proof_parse() enforces the format's own limit. */
#define PROOF_FILE_MAX (1024 * 1024)
/* A raw signature or a DER CMS (SG_CMS_MAX). */
#define SIG_FILE_MAX (1024 * 1024)

enum {
	OPT_KEY_FILE = SG_OPT_CMD,
	OPT_LOG_KEY,
	OPT_POLICY,
	OPT_PROOF,
	OPT_SIGNATURE,
	OPT_DIGEST,
	OPT_WITNESS,
	OPT_WITNESS_FILE,
	OPT_WITNESS_QUORUM,
	OPT_LOG_SOURCE,
	OPT_EACH,
};

#define WITNESS_MAX SG_CLI_WITNESSES_MAX
/* After a policy entry logged pending: its policy-effective entry's
 * bundle, one per approval that counted, the previous policy's. */
#define TAIL_MAX (SG_QUORUM_MAX + 2)
#define WITNESS_FILE_MAX (64 * 1024)

struct verify_args {
	const char *vkey_file;
	const char *vkey;
	const char *policy;
	const char *proof;
	const char *signature;
	const char *digest;          /* ALG:HEX */
	const char *file;
	/* --each: the files, each with its signature and proof beside it */
	char **files;
	size_t nfiles;
	int each;
	const char *witness[WITNESS_MAX];
	size_t nwitness;
	const char *witness_file;
	const char *witness_quorum;
	const char *log_source;      /* --log: a tlog-tiles URL or directory */
	int help;
	int too_many_witnesses;
};

struct verify {
	char vkey_name[SG_NOTE_NAME_MAX + 1];
	uint32_t vkey_id;
	uint8_t vkey_pub[SG_ED25519_PUB];
	struct sg_tlog_proof proof;
	struct sg_checkpoint cp;
	struct sg_entry entry;       /* signature or artifact-signature */
	/* A release's or grant's artifact: the approved entry's bundle. */
	int two;
	struct sg_tlog_proof proof2;
	struct sg_entry approved;
	/* The policy entry's bundle, last in the proof (when it is there). */
	int has_policy;
	struct sg_tlog_proof proof3;
	struct sg_entry pentry;
	/* A policy logged pending: the bundles after the policy entry's
	 * (policy-effective, the policy-decision entries it lists, the
	 * previous policy), their entries, and the officers who approved. */
	struct sg_tlog_proof tail[TAIL_MAX];
	struct sg_entry tentry[TAIL_MAX];
	size_t ntail;
	struct sg_policy *prev;
	char approved_by[SG_QUORUM_MAX * SG_NAME_SIZE];
	struct sg_artifact_line line;
	char line_hex[2 * SG_MAX_DIGEST + 1];
	const struct sg_entry *ev;   /* the entry with the statement and
	                              * the approvals */
	struct sg_statement st;
	enum sg_format format;       /* the statement's */
	EVP_PKEY *pub;
	enum sg_sig_scheme scheme;
	enum sg_digest_alg dalg;
	uint8_t digest[SG_MAX_DIGEST];
	size_t dlen;
	struct sg_policy *policy;
	const struct sg_hsm *hsm;
	char witnessed[1100];        /* "" without --witness */
};

static int fail(const char *link, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Reports a broken link; always returns SG_EXIT_VERIFY. */
static int
fail(const char *link, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "verify: %s: ", link);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return SG_EXIT_VERIFY;
}

static int
read_input(const char *what, const char *path, size_t max, char **ret,
    size_t *ret_len)
{
	int r;

	if ((r = sg_read_file(path, max, ret, ret_len)) != 0) {
		fprintf(stderr, "signgate: cannot read %s %s: %s\n", what,
		    path, sg_strerror(r));
		return SG_EXIT_LOCAL;
	}
	return 0;
}

static int
verify_option(void *arg, int opt, const char *v)
{
	struct verify_args *a = arg;

	switch (opt) {
	case OPT_KEY_FILE:
		a->vkey_file = v;
		return 0;
	case OPT_LOG_KEY:
		a->vkey = v;
		return 0;
	case OPT_POLICY:
		a->policy = v;
		return 0;
	case OPT_PROOF:
		a->proof = v;
		return 0;
	case OPT_SIGNATURE:
		a->signature = v;
		return 0;
	case OPT_DIGEST:
		a->digest = v;
		return 0;
	case OPT_WITNESS:
		if (a->nwitness == WITNESS_MAX)
			a->too_many_witnesses = 1;
		else
			a->witness[a->nwitness++] = v;
		return 0;
	case OPT_WITNESS_FILE:
		a->witness_file = v;
		return 0;
	case OPT_WITNESS_QUORUM:
		a->witness_quorum = v;
		return 0;
	case OPT_LOG_SOURCE:
		a->log_source = v;
		return 0;
	case OPT_EACH:
		a->each = 1;
		return 0;
	}
	return 1;
}

/* What the options say together: every input named once. */
static int
verify_check(int argc, char **argv, struct verify_args *a)
{
	if ((a->vkey_file == NULL) == (a->vkey == NULL)) {
		fprintf(stderr, "signgate: verify needs one of --key-file FILE "
		    "and --log-key VKEY\n");
		return SG_EXIT_USAGE;
	}
	if (a->each) {
		if (a->proof != NULL || a->signature != NULL ||
		    a->digest != NULL || argc - optind < 1) {
			fprintf(stderr, "signgate: verify --each takes FILE... "
			    "(each with FILE.sig or FILE.p7s and its .proof "
			    "beside it), and no --proof, --signature or "
			    "--digest\n");
			return SG_EXIT_USAGE;
		}
		a->files = argv + optind;
		a->nfiles = (size_t)(argc - optind);
	} else if (a->proof == NULL) {
		fprintf(stderr, "signgate: verify needs --proof FILE\n");
		return SG_EXIT_USAGE;
	} else if (argc - optind > 1 ||
	    (argc - optind == 1) == (a->digest != NULL)) {
		fprintf(stderr, "signgate: verify needs exactly one of FILE "
		    "and --digest ALG:HEX\n");
		return SG_EXIT_USAGE;
	}
	if (!a->each && argc - optind == 1)
		a->file = argv[optind];
	if (a->too_many_witnesses) {
		fprintf(stderr, "signgate: verify takes at most %d --witness\n",
		    WITNESS_MAX);
		return SG_EXIT_USAGE;
	}
	if (a->witness_quorum != NULL && a->nwitness == 0 &&
	    a->witness_file == NULL) {
		fprintf(stderr, "signgate: --witness-quorum needs --witness "
		    "VKEY or --witness-file FILE\n");
		return SG_EXIT_USAGE;
	}
	return 0;
}

static int
parse_args(int argc, char **argv, struct sg_cli_conf *conf,
    struct verify_args *ret)
{
	static const struct option own[] = {
		{ "key-file", required_argument, NULL, OPT_KEY_FILE },
		{ "log-key", required_argument, NULL, OPT_LOG_KEY },
		{ "policy", required_argument, NULL, OPT_POLICY },
		{ "proof", required_argument, NULL, OPT_PROOF },
		{ "signature", required_argument, NULL, OPT_SIGNATURE },
		{ "digest", required_argument, NULL, OPT_DIGEST },
		{ "witness", required_argument, NULL, OPT_WITNESS },
		{ "witness-file", required_argument, NULL, OPT_WITNESS_FILE },
		{ "witness-quorum", required_argument, NULL,
		  OPT_WITNESS_QUORUM },
		{ "log", required_argument, NULL, OPT_LOG_SOURCE },
		{ "each", no_argument, NULL, OPT_EACH },
		{ NULL, 0, NULL, 0 },
	};
	struct verify_args a;
	const struct sg_cli_cmdline cl = { "verify", own, NULL,
	    verify_option, &a };
	int ex;

	memset(&a, 0, sizeof(a));
	/* Connection options mean nothing offline; they are accepted so that
	 * a shared environment does not break scripts. */
	if ((ex = sg_cli_getopt(argc, argv, &cl, conf, &a.help)) != 0)
		return ex;
	if (!a.help && (ex = verify_check(argc, argv, &a)) != 0)
		return ex;
	*ret = a;
	return 0;
}

/* The verifier key, from the command line or a file holding one line. */
static int
load_vkey(const struct verify_args *a, struct verify *v)
{
	char *buf = NULL;
	const char *key = a->vkey;
	size_t len = 0;
	int ex;

	if (a->vkey_file != NULL) {
		if ((ex = read_input("log key file", a->vkey_file,
		    VKEY_FILE_MAX, &buf, &len)) != 0)
			return ex;
		if (len > 0 && buf[len - 1] == '\n')
			buf[--len] = '\0';
		key = buf;
	}
	/* An embedded NUL would hide whatever follows it from the parser. */
	if ((buf != NULL && strlen(buf) != len) ||
	    sg_note_vkey_parse(key, v->vkey_name, &v->vkey_id,
	    v->vkey_pub) != 0)
		ex = fail("log key", "not a valid verifier key "
		    "(<name>+<key id>+<base64 Ed25519 key>, one line)");
	else
		ex = 0;
	free(buf);
	return ex;
}

int
sg_cli_proof_split(const char *text, size_t len, size_t *ret_first)
{
	static const char magic[] = "c2sp.org/tlog-proof@v1\n";
	static const char dash[] = "\xe2\x80\x94 ";
	const char *p, *end = text + len, *nl;

	if (len < sizeof(magic) - 1 ||
	    memcmp(text, magic, sizeof(magic) - 1) != 0)
		return SG_ERR_INVALID;
	/* The first bundle: header lines up to the blank line, then the
	 * checkpoint text up to its blank line, then signature lines. */
	if ((p = memmem(text, len, "\n\n", 2)) == NULL)
		return SG_ERR_INVALID;
	p += 2;
	if ((p = memmem(p, (size_t)(end - p), "\n\n", 2)) == NULL)
		return SG_ERR_INVALID;
	p += 2;
	while (p < end && (size_t)(end - p) >= sizeof(dash) - 1 &&
	    memcmp(p, dash, sizeof(dash) - 1) == 0) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			return SG_ERR_INVALID;
		p = nl + 1;
	}
	if (p != end && ((size_t)(end - p) < sizeof(magic) - 1 ||
	    memcmp(p, magic, sizeof(magic) - 1) != 0))
		return SG_ERR_INVALID;
	*ret_first = (size_t)(p - text);
	return 0;
}

/* The entry a bundle carries, at its index under the checkpoint, a
 * failure reported on `link` (NULL: on `what`, and "inclusion" for one
 * not in the tree).  `what` names the entry: "entry", "approved entry"
 * and so on. */
static int
bundle_entry_on(const struct sg_tlog_proof *p,
    const struct sg_checkpoint *cp, const char *link, const char *what,
    struct sg_entry *e)
{
	uint8_t leaf[SG_HASH_LEN];
	char *root;

	if (p->extra == NULL)
		return fail(link != NULL ? link : what, "the %s's bundle "
		    "carries no log entry (extra line)", what);
	if (sg_entry_parse((const char *)p->extra, p->extra_len, e) != 0)
		return fail(link != NULL ? link : what, "the %s's bundle: its "
		    "extra data is not a valid log entry", what);
	sg_merkle_leaf_hash(p->extra, p->extra_len, leaf);
	if (sg_merkle_verify_inclusion(leaf, p->index, cp->size,
	    (const uint8_t (*)[SG_HASH_LEN])p->hashes, p->nhashes,
	    cp->root) != 0) {
		root = sg_b64_encode(cp->root, sizeof(cp->root));
		fail(link != NULL ? link : "inclusion", "the %s is not at "
		    "index %llu of the log of "
		    "size %llu with root %s", what,
		    (unsigned long long)p->index, (unsigned long long)cp->size,
		    root ? root : "?");
		free(root);
		return SG_EXIT_VERIFY;
	}
	return 0;
}

static int
bundle_entry(const struct sg_tlog_proof *p, const struct sg_checkpoint *cp,
    const char *what, struct sg_entry *e)
{
	return bundle_entry_on(p, cp, NULL, what, e);
}

/* One more bundle of the proof file, from text + *off: it must be under
 * the first bundle's checkpoint. */
static int
next_bundle(const struct verify_args *a, const char *text, size_t len,
    size_t *off, const struct verify *v, struct sg_tlog_proof *p)
{
	size_t n = 0;

	if (sg_cli_proof_split(text + *off, len - *off, &n) != 0 ||
	    sg_tlog_proof_parse(text + *off, n, p) != 0)
		return fail("proof", "%s: bundle after the first is not a "
		    "c2sp.org/tlog-proof@v1 bundle", a->proof);
	*off += n;
	if (p->note_len != v->proof.note_len ||
	    memcmp(p->note, v->proof.note, v->proof.note_len) != 0)
		return fail("proof", "the bundles are not under the same "
		    "checkpoint");
	return 0;
}

/* Whether a bundle carries a policy entry (by its type line; the entry
 * itself is checked with the others). */
static int
is_policy_bundle(const struct sg_tlog_proof *p)
{
	static const char head[] = "signgate-log-entry v1\ntype policy\n";

	return p->extra != NULL && p->extra_len >= sizeof(head) - 1 &&
	    memcmp(p->extra, head, sizeof(head) - 1) == 0;
}

/* The bundles of the proof file: the signature's; for an artifact, the
 * approved entry's; then, from gateways that log their policies, the
 * policy entry's, and for a policy logged pending the bundles of how it
 * took effect (the tail); all under one checkpoint. */
static int
parse_bundles(const struct verify_args *a, const char *text, size_t len,
    struct verify *v)
{
	size_t first = 0, off;
	int ex;

	if (sg_cli_proof_split(text, len, &first) != 0 ||
	    sg_tlog_proof_parse(text, first, &v->proof) != 0)
		return fail("proof", "%s is not a c2sp.org/tlog-proof@v1 "
		    "bundle, nor several of them", a->proof);
	off = first;
	if (off == len)
		return 0;
	if ((ex = next_bundle(a, text, len, &off, v, &v->proof2)) != 0)
		return ex;
	/* An approved entry is never a policy entry. */
	if (is_policy_bundle(&v->proof2)) {
		v->proof3 = v->proof2;
		memset(&v->proof2, 0, sizeof(v->proof2));
	} else {
		v->two = 1;
		if (off == len)
			return 0;
		if ((ex = next_bundle(a, text, len, &off, v,
		    &v->proof3)) != 0)
			return ex;
	}
	v->has_policy = 1;
	while (off < len) {
		if (v->ntail == TAIL_MAX)
			return fail("proof", "%s holds more bundles than a "
			    "signature's proof has", a->proof);
		if ((ex = next_bundle(a, text, len, &off, v,
		    &v->tail[v->ntail])) != 0)
			return ex;
		v->ntail++;
	}
	return 0;
}

/* The policy entry's bundle: a policy entry, in the tree, before the
 * signature. */
static int
check_policy_entry(struct verify *v)
{
	int ex;

	if (!v->has_policy)
		return 0;
	if ((ex = bundle_entry(&v->proof3, &v->cp, "policy entry",
	    &v->pentry)) != 0)
		return ex;
	if (v->pentry.type != SG_ENTRY_POLICY)
		return fail("policy entry", "the policy bundle's entry is not a "
		    "policy entry");
	if (v->proof3.index >= v->proof.index)
		return fail("policy entry", "the policy entry %llu does not "
		    "come before the signature %llu",
		    (unsigned long long)v->proof3.index,
		    (unsigned long long)v->proof.index);
	return 0;
}

/* Links 1 and 2: the checkpoint is signed by the log key, and the entry
 * (and, for an artifact, the approved entry) is in the tree that
 * checkpoint commits to. */
static int
check_log(const struct verify_args *a, struct verify *v)
{
	char *text = NULL;
	size_t len = 0, text_len = 0;
	int ex;

	if ((ex = read_input("proof", a->proof, PROOF_FILE_MAX, &text,
	    &len)) != 0)
		return ex;
	if ((ex = parse_bundles(a, text, len, v)) != 0)
		goto out;
	ex = SG_EXIT_VERIFY;
	if (sg_note_verify(v->proof.note, v->proof.note_len, v->vkey_name,
	    v->vkey_id, v->vkey_pub, &text_len) != 0) {
		fail("checkpoint", "the checkpoint's signature does not verify "
		    "with log key %s+%08x", v->vkey_name, v->vkey_id);
		goto out;
	}
	if (sg_checkpoint_parse(v->proof.note, text_len, &v->cp) != 0) {
		fail("checkpoint", "the signed text is not a checkpoint");
		goto out;
	}
	if (strcmp(v->cp.origin, v->vkey_name) != 0) {
		fail("checkpoint", "origin %s is not the log key's name %s",
		    sg_cli_esc(v->cp.origin), v->vkey_name);
		goto out;
	}
	if ((ex = bundle_entry(&v->proof, &v->cp, "entry", &v->entry)) != 0 ||
	    (ex = check_policy_entry(v)) != 0)
		goto out;
	ex = SG_EXIT_VERIFY;
	v->ev = &v->entry;
	if (!v->two) {
		if (v->entry.type == SG_ENTRY_ARTIFACT_SIGNATURE)
			fail("entry", "an artifact signature's proof needs the "
			    "approved entry's bundle after its own");
		else if (v->entry.type != SG_ENTRY_SIGNATURE)
			fail("entry", "the logged entry is not a signature "
			    "entry");
		else
			ex = 0;
		goto out;
	}
	if (v->entry.type != SG_ENTRY_ARTIFACT_SIGNATURE) {
		fail("entry", "the first bundle's entry is not an "
		    "artifact-signature entry");
		goto out;
	}
	if ((ex = bundle_entry(&v->proof2, &v->cp, "approved entry",
	    &v->approved)) != 0)
		goto out;
	ex = SG_EXIT_VERIFY;
	if (v->approved.type != SG_ENTRY_APPROVED) {
		fail("approved entry", "the second bundle's entry is not an "
		    "approved entry");
		goto out;
	}
	v->ev = &v->approved;
	ex = 0;
out:
	free(text);
	return ex;
}

/* Adds the witness vkey s (a line of a file, or an argument). */
static int
witness_add(struct sg_cli_witnesses *set, const char *s)
{
	switch (sg_cli_witness_add(set, s)) {
	case 0:
		return 0;
	case SG_ERR_TOO_LARGE:
		fprintf(stderr, "signgate: verify takes at most %d witnesses\n",
		    WITNESS_MAX);
		return SG_EXIT_USAGE;
	case SG_ERR_CONFLICT:
		fprintf(stderr, "signgate: --witness: the same key as another "
		    "witness under another name (one key is one witness): "
		    "%s\n", sg_cli_esc(s));
		return SG_EXIT_USAGE;
	default:
		fprintf(stderr, "signgate: --witness: not a witness verifier "
		    "key (<name>+<key id>+<base64 of 0x04 and an Ed25519 "
		    "key>): %s\n", sg_cli_esc(s));
		return SG_EXIT_USAGE;
	}
}

/* The witnesses of --witness-file: one vkey a line; blank lines and
 * lines starting with '#' are skipped. */
static int
witness_file(const char *path, struct sg_cli_witnesses *set)
{
	char *buf = NULL, *line, *next;
	size_t len;
	int ex;

	if ((ex = read_input("witness file", path, WITNESS_FILE_MAX, &buf,
	    &len)) != 0)
		return ex;
	if (strlen(buf) != len) {
		fprintf(stderr, "signgate: %s: holds a NUL byte\n", path);
		free(buf);
		return SG_EXIT_USAGE;
	}
	for (line = buf; line != NULL && *line != '\0'; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (*line == '\0' || *line == '#')
			continue;
		if ((ex = witness_add(set, line)) != 0)
			break;
	}
	free(buf);
	return ex;
}

/* Link 1b: the checkpoint carries cosignatures from at least the quorum
 * of the witnesses given. */
static int
check_witnesses(const struct verify_args *a, struct verify *v)
{
	struct sg_cli_witnesses set;
	char names[1024];
	size_t i, got, got2;
	int ex;

	if (a->nwitness == 0 && a->witness_file == NULL)
		return 0;
	memset(&set, 0, sizeof(set));
	for (i = 0; i < a->nwitness; i++)
		if ((ex = witness_add(&set, a->witness[i])) != 0)
			return ex;
	if (a->witness_file != NULL &&
	    (ex = witness_file(a->witness_file, &set)) != 0)
		return ex;
	if (set.n == 0) {
		fprintf(stderr, "signgate: %s: no witness key\n",
		    a->witness_file);
		return SG_EXIT_USAGE;
	}
	set.quorum = set.n;
	if (a->witness_quorum != NULL && sg_parse_u64(a->witness_quorum, 1,
	    WITNESS_MAX, &set.quorum) != 0) {
		fprintf(stderr, "signgate: --witness-quorum: must be a number "
		    "from 1 to %d\n", WITNESS_MAX);
		return SG_EXIT_USAGE;
	}
	if (sg_cli_witness_check(&set, v->proof.note, v->proof.note_len, &got,
	    names, sizeof(names)) != 0)
		return fail("witness", "the checkpoint carries valid "
		    "cosignatures from %zu of the %zu witnesses given (%s), "
		    "%llu required", got, set.n, names[0] ? names : "none",
		    (unsigned long long)set.quorum);
	/* An artifact's second bundle is under the same checkpoint. */
	if (v->two && sg_cli_witness_check(&set, v->proof2.note,
	    v->proof2.note_len, &got2, NULL, 0) != 0)
		return fail("witness", "the approved entry's checkpoint lacks "
		    "the witnesses' cosignatures");
	snprintf(v->witnessed, sizeof(v->witnessed), "%zu of %zu witnesses "
	    "(%s), %llu required", got, set.n, names,
	    (unsigned long long)set.quorum);
	return 0;
}

/* Link 4 (first half): the logged key is the one the statement names. */
static int
check_key(struct verify *v)
{
	const unsigned char *p = v->entry.public_key;
	uint8_t h[32];
	char hex[SG_SHA256_HEX_SIZE];
	enum sg_key_alg alg;

	if (sg_statement_parse(v->ev->statement, v->ev->statement_len,
	    &v->st) != 0 || sg_format_parse(v->st.format, &v->format) != 0)
		return fail("statement", "the logged statement does not parse");
	if (v->two != (v->st.kind != SG_KIND_REQUEST))
		return fail("statement", "a %s statement cannot stand behind "
		    "a%s signature entry", sg_kind_str(v->st.kind),
		    v->two ? "n artifact" : "");
	if (strcmp(v->st.request, v->ev->request) != 0)
		return fail("entry", "the entry is for request %s, its "
		    "statement for request %s", v->ev->request,
		    v->st.request);
	if (v->two && strcmp(v->entry.request, v->approved.request) != 0)
		return fail("entry", "the signature is for %s %s, the approved "
		    "entry for %s", sg_kind_str(v->st.kind), v->entry.request,
		    v->approved.request);
	sg_sha256(v->entry.public_key, v->entry.public_key_len, h);
	sg_hex_encode(h, sizeof(h), hex);
	if (strcmp(hex, v->st.spki_sha256) != 0)
		return fail("public key", "the logged key is sha256:%s, the "
		    "approved statement names sha256:%s", hex,
		    v->st.spki_sha256);
	if ((v->pub = d2i_PUBKEY(NULL, &p,
	    (long)v->entry.public_key_len)) == NULL ||
	    p != v->entry.public_key + v->entry.public_key_len)
		return fail("public key", "the logged key is not a DER "
		    "SubjectPublicKeyInfo");
	if (sg_scheme_from_name(v->entry.algorithm, &alg, &v->scheme) != 0 ||
	    sg_pubkey_alg(v->pub) != alg)
		return fail("public key", "the logged key is not an %s key",
		    v->entry.algorithm);
	return 0;
}

/*
 * An artifact of a release or grant: the signature entry points at this
 * approved entry, comes after it, and its line is one the statement
 * allows (sg_artifact_allowed: the format; a release's line at its
 * position in the manifest by its path; a grant's sequence number within
 * the count, name matching the pattern, signed before the end).
 */
static int
check_artifact(struct verify *v)
{
	char err[512];

	if (!v->two)
		return 0;
	if (v->entry.approved_index != v->proof2.index)
		return fail("entry", "the signature names approved entry %llu, "
		    "the proof carries entry %llu",
		    (unsigned long long)v->entry.approved_index,
		    (unsigned long long)v->proof2.index);
	if (v->proof2.index >= v->proof.index)
		return fail("entry", "the approved entry %llu does not come "
		    "before the signature %llu",
		    (unsigned long long)v->proof2.index,
		    (unsigned long long)v->proof.index);
	if (sg_artifact_allowed(&v->st, v->entry.line, v->entry.line_len,
	    v->entry.position, (const uint8_t (*)[SG_HASH_LEN])v->entry.path,
	    v->entry.npath, v->entry.time, &v->line, err, sizeof(err)) != 0)
		return fail("artifact", "%s", err);
	sg_hex_encode(v->line.digest, v->line.digest_len, v->line_hex);
	return 0;
}

/* Link 4 (second half): the signed digest (the statement's, or the
 * artifact line's) is the local one. */
static int
check_digest(const struct verify_args *a, struct verify *v)
{
	uint8_t want[SG_MAX_DIGEST];
	const char *colon, *alg = v->st.digest_alg, *whex = v->st.digest_hex;
	const char *whose = v->two ? "artifact line" : "signed statement";
	char hex[2 * SG_MAX_DIGEST + 1];
	size_t wlen = 0;
	int r;

	if (v->two) {
		alg = sg_digest_name(v->line.digest_alg);
		whex = v->line_hex;
	}
	if ((v->dalg = sg_digest_from_name(alg)) == SG_DIGEST_NONE)
		return fail("statement", "unknown digest algorithm");
	if (sg_hex_decode(whex, strlen(whex), want,
	    sizeof(want), &wlen) != 0 || wlen != sg_digest_len(v->dalg))
		return fail("statement", "malformed artifact digest");
	if (a->file != NULL) {
		if ((r = sg_digest_file(a->file, v->dalg, v->digest,
		    &v->dlen)) != 0) {
			fprintf(stderr, "signgate: cannot hash %s: %s\n",
			    a->file, sg_strerror(r));
			return SG_EXIT_LOCAL;
		}
	} else {
		colon = strchr(a->digest, ':');
		if (colon == NULL || (size_t)(colon - a->digest) !=
		    strlen(alg) || strncmp(a->digest,
		    alg, (size_t)(colon - a->digest)) != 0)
			return fail("digest", "the signature is over a %s "
			    "digest; give --digest %s:HEX", alg,
			    alg);
		if (sg_hex_decode(colon + 1, strlen(colon + 1), v->digest,
		    sizeof(v->digest), &v->dlen) != 0 ||
		    v->dlen != sg_digest_len(v->dalg)) {
			fprintf(stderr, "signgate: --digest: %s:HEX with %zu "
			    "hex digits\n", alg,
			    2 * sg_digest_len(v->dalg));
			return SG_EXIT_USAGE;
		}
	}
	if (v->dlen != wlen || memcmp(v->digest, want, wlen) != 0) {
		sg_hex_encode(v->digest, v->dlen, hex);
		return fail("digest", "the artifact's %s is %s, the %s names "
		    "%s", alg, hex, whose, whex);
	}
	return 0;
}

/* Links 3 and 5: the signature file is the logged signature, and that
 * signature verifies over the digest with the logged key. */
static int
check_signature(const struct verify_args *a, struct verify *v)
{
	char *buf = NULL, err[512];
	uint8_t h[32];
	size_t len = 0;
	int ex;

	if (a->signature != NULL) {
		if ((ex = read_input("signature", a->signature, SIG_FILE_MAX,
		    &buf, &len)) != 0)
			return ex;
		ex = SG_EXIT_VERIFY;
		if (v->format == SG_FORMAT_CMS) {
			sg_sha256(buf, len, h);
			if (!v->entry.has_cms || memcmp(h, v->entry.cms_sha256,
			    sizeof(h)) != 0) {
				fail("signature", "%s is not the logged CMS "
				    "signature", a->signature);
				goto out;
			}
			if (sg_cli_check_cms((const uint8_t *)buf, len, v->pub,
			    v->dalg, v->digest, v->dlen, err,
			    sizeof(err)) != 0) {
				fail("signature", "the CMS does not verify: %s",
				    err);
				goto out;
			}
		} else if (len != v->entry.signature_len ||
		    memcmp(buf, v->entry.signature, len) != 0) {
			fail("signature", "%s is not the logged signature",
			    a->signature);
			goto out;
		}
	}
	if (v->format == SG_FORMAT_CMS) {
		/* A CMS signature is over its signed attributes, which hold
		 * the digest: the CMS itself is what verifies (above), and
		 * its signature value must be the logged one. */
		uint8_t *sv = NULL;
		size_t svlen = 0;
		ex = SG_EXIT_VERIFY;
		if (buf == NULL) {
			fail("signature", "a CMS signature needs --signature "
			    "FILE.p7s to be checked");
			goto out;
		}
		if (sg_cms_signature_value((const uint8_t *)buf, len, &sv,
		    &svlen) != 0 || svlen != v->entry.signature_len ||
		    memcmp(sv, v->entry.signature, svlen) != 0) {
			free(sv);
			fail("signature", "the CMS's signature value is not "
			    "the logged one");
			goto out;
		}
		free(sv);
	} else if (sg_verify(v->pub, v->scheme, v->dalg, v->digest, v->dlen,
	    v->entry.signature, v->entry.signature_len) != 0) {
		fail("signature", "the logged signature does not verify over "
		    "the %s digest with the logged %s key", v->st.digest_alg,
		    v->entry.algorithm);
		ex = SG_EXIT_VERIFY;
		goto out;
	}
	ex = 0;
out:
	free(buf);
	return ex;
}

/*
 * The policy the statement names, from the policy entry: its SHA-256 is
 * the statement's, and the text it carries has that SHA-256.  With
 * --policy as well, the file must be that policy.
 */
static int
logged_policy(const struct verify_args *a, struct verify *v, char **text,
    size_t *len)
{
	const struct sg_entry *pe = &v->pentry;
	char hex[SG_SHA256_HEX_SIZE];
	uint8_t h[32];

	if (!v->has_policy) {
		if (a->policy == NULL)
			return fail("policy", "the proof carries no policy "
			    "entry (a proof from before the gateway logged its "
			    "policies): give --policy FILE");
		return read_input("policy", a->policy, SG_POLICY_FILE_MAX,
		    text, len);
	}
	if (strcmp(pe->policy_sha256, v->st.policy_sha256) != 0)
		return fail("policy entry", "the logged policy is sha256:%s, "
		    "the statement names sha256:%s", pe->policy_sha256,
		    v->st.policy_sha256);
	sg_sha256(pe->text, pe->text_len, h);
	sg_hex_encode(h, sizeof(h), hex);
	if (strcmp(hex, pe->policy_sha256) != 0)
		return fail("policy entry", "the logged text is sha256:%s, not "
		    "the sha256:%s the entry names", hex, pe->policy_sha256);
	if (a->policy != NULL) {
		int ex;
		if ((ex = read_input("policy", a->policy, SG_POLICY_FILE_MAX,
		    text, len)) != 0)
			return ex;
		sg_sha256(*text, *len, h);
		sg_hex_encode(h, sizeof(h), hex);
		if (strcmp(hex, pe->policy_sha256) != 0)
			return fail("policy", "%s is sha256:%s, not the logged "
			    "policy sha256:%s the statement names", a->policy,
			    hex, pe->policy_sha256);
		return 0;
	}
	if ((*text = malloc(pe->text_len + 1)) == NULL) {
		fprintf(stderr, "signgate: out of memory\n");
		return SG_EXIT_LOCAL;
	}
	memcpy(*text, pe->text, pe->text_len + 1);
	*len = pe->text_len;
	return 0;
}

#define PA "policy approval"

/* The policy-effective entry (the tail's first): for the policy entry's
 * policy, after it and before the signature, listing as many approvals
 * as the tail holds between it and the previous policy's entry. */
static int
check_effective(struct verify *v, const struct sg_entry *eff)
{
	const struct sg_entry *pe = &v->pentry;
	uint64_t at = v->tail[0].index;

	if (eff->type != SG_ENTRY_POLICY_EFFECTIVE)
		return fail(PA, "the bundle after the policy entry's is not a "
		    "policy-effective entry");
	if (strcmp(eff->policy_sha256, pe->policy_sha256) != 0 ||
	    strcmp(eff->policy_name, pe->policy_name) != 0 ||
	    eff->policy_version != pe->policy_version)
		return fail(PA, "the policy-effective entry %llu names %s@%llu "
		    "sha256:%s, not the logged policy %s@%llu sha256:%s",
		    (unsigned long long)at, eff->policy_name,
		    (unsigned long long)eff->policy_version,
		    eff->policy_sha256, pe->policy_name,
		    (unsigned long long)pe->policy_version,
		    pe->policy_sha256);
	if (at <= v->proof3.index || at >= v->proof.index)
		return fail(PA, "the policy-effective entry %llu does not come "
		    "between the policy entry %llu and the signature %llu",
		    (unsigned long long)at,
		    (unsigned long long)v->proof3.index,
		    (unsigned long long)v->proof.index);
	if (v->ntail != eff->napproval_entries + 2)
		return fail(PA, "the policy-effective entry lists %zu "
		    "approvals; the proof carries %zu bundles after it (the "
		    "approvals', then the previous policy's)",
		    eff->napproval_entries, v->ntail - 1);
	return 0;
}

/* Approval i: the policy-decision entry the effective entry lists, for
 * this policy, between its policy entry and the effective entry. */
static int
check_decision(struct verify *v, const struct sg_entry *eff, size_t i)
{
	const struct sg_tlog_proof *p = &v->tail[1 + i];
	const struct sg_entry *d = &v->tentry[1 + i];

	if (p->index != eff->approval_entries[i])
		return fail(PA, "approval %zu: the policy-effective entry "
		    "lists entry %llu, the proof carries entry %llu", i + 1,
		    (unsigned long long)eff->approval_entries[i],
		    (unsigned long long)p->index);
	if (d->type != SG_ENTRY_POLICY_DECISION)
		return fail(PA, "approval %zu: entry %llu is not a "
		    "policy-decision entry", i + 1,
		    (unsigned long long)p->index);
	if (strcmp(d->request, v->pentry.request) != 0)
		return fail(PA, "approval %zu: entry %llu is for policy %s, not "
		    "%s", i + 1, (unsigned long long)p->index, d->request,
		    v->pentry.request);
	if (p->index <= v->proof3.index || p->index >= v->tail[0].index)
		return fail(PA, "approval %zu: entry %llu does not come "
		    "between the policy entry and the policy-effective entry",
		    i + 1, (unsigned long long)p->index);
	return 0;
}

/* The previous policy (the last bundle): the one the policy entry's
 * previous line names, its text that SHA-256, parsed. */
static int
check_previous(struct verify *v)
{
	const struct sg_entry *e = &v->tentry[v->ntail - 1];
	char hex[SG_SHA256_HEX_SIZE], err[1024];
	uint8_t h[32];

	if (e->type != SG_ENTRY_POLICY)
		return fail(PA, "the last bundle is not the previous policy's "
		    "entry");
	if (strcmp(e->policy_sha256, v->pentry.previous_sha256) != 0)
		return fail(PA, "the last bundle is policy sha256:%s, the "
		    "policy entry's previous is sha256:%s", e->policy_sha256,
		    v->pentry.previous_sha256);
	sg_sha256(e->text, e->text_len, h);
	sg_hex_encode(h, sizeof(h), hex);
	if (strcmp(hex, e->policy_sha256) != 0)
		return fail(PA, "the previous policy's logged text is "
		    "sha256:%s, not the sha256:%s its entry names", hex,
		    e->policy_sha256);
	if (sg_policy_parse("previous policy", e->text, e->text_len,
	    &v->prev, err, sizeof(err)) != 0)
		return fail(PA, "the previous policy does not parse: %s", err);
	return 0;
}

/*
 * The link "policy approval": a policy logged pending (its predecessor
 * asked for officers' approval of a change) was in force only if the
 * proof shows it: its policy-effective entry, the policy-decision
 * entries that lists and the previous policy's entry, all in the tree;
 * each decision's envelope over the policy approval statement for this
 * policy and that predecessor, by distinct officers, meeting the
 * predecessor's policy-change terms.  A policy logged effective needs
 * nothing more.
 */
static int
check_policy_approval(struct verify *v)
{
	const struct sg_entry *pe = &v->pentry;
	const char *officers[SG_QUORUM_MAX], *envs[SG_QUORUM_MAX];
	size_t lens[SG_QUORUM_MAX], i, n;
	char err[1024];
	int ex;

	if (!v->has_policy)
		return 0;
	if (!pe->pending) {
		if (v->ntail > 0)
			return fail("proof", "the policy was logged effective; "
			    "the proof holds %zu bundles after its entry",
			    v->ntail);
		return 0;
	}
	if (v->ntail == 0)
		return fail(PA, "policy %s@%llu sha256:%s was logged pending "
		    "(awaiting officers' approval) and the proof carries no "
		    "policy-effective entry: nothing shows it was ever in "
		    "force", pe->policy_name,
		    (unsigned long long)pe->policy_version,
		    pe->policy_sha256);
	if (!pe->has_previous)
		return fail(PA, "the pending policy entry names no previous "
		    "policy");
	if ((ex = bundle_entry_on(&v->tail[0], &v->cp, PA,
	    "policy-effective entry", &v->tentry[0])) != 0 ||
	    (ex = check_effective(v, &v->tentry[0])) != 0)
		return ex;
	n = v->tentry[0].napproval_entries;
	for (i = 0; i < n; i++) {
		if ((ex = bundle_entry_on(&v->tail[1 + i], &v->cp, PA,
		    "policy-decision entry", &v->tentry[1 + i])) != 0 ||
		    (ex = check_decision(v, &v->tentry[0], i)) != 0)
			return ex;
		officers[i] = v->tentry[1 + i].officer;
		envs[i] = v->tentry[1 + i].envelope;
		lens[i] = v->tentry[1 + i].envelope_len;
	}
	if ((ex = bundle_entry_on(&v->tail[v->ntail - 1], &v->cp, PA,
	    "previous policy entry", &v->tentry[v->ntail - 1])) != 0 ||
	    (ex = check_previous(v)) != 0)
		return ex;
	if (sg_policy_approvals_check(v->policy, v->prev, officers, envs,
	    lens, n, v->approved_by, sizeof(v->approved_by), err,
	    sizeof(err)) != 0)
		return fail(PA, "policy %s@%llu in place of %s@%llu: %s",
		    pe->policy_name, (unsigned long long)pe->policy_version,
		    sg_policy_name(v->prev),
		    (unsigned long long)sg_policy_version(v->prev), err);
	return 0;
}

/* Link 6 and the HSM: approvals under the policy (logged, or the file),
 * then where the signing token stands. */
static int
check_policy(const struct verify_args *a, struct verify *v)
{
	const struct sg_policy_key *k;
	const char *name = a->policy != NULL ? a->policy : "logged policy";
	char *text = NULL, err[1024];
	size_t len = 0;
	int ex;

	if ((ex = logged_policy(a, v, &text, &len)) != 0)
		goto out;
	ex = SG_EXIT_VERIFY;
	if (sg_policy_parse(name, text, len, &v->policy, err,
	    sizeof(err)) != 0) {
		fail("policy", "%s", err);
		goto out;
	}
	if ((ex = check_policy_approval(v)) != 0)
		goto out;
	ex = SG_EXIT_VERIFY;
	if (sg_evidence_check(v->policy, v->ev->statement,
	    v->ev->statement_len, (const char *const *)v->ev->approvals,
	    v->ev->approval_lens, v->ev->napprovals, v->entry.time, NULL,
	    err, sizeof(err)) != 0) {
		fprintf(stderr, "verify: %s\n", err);
		goto out;
	}
	k = sg_policy_key(v->policy, v->st.key);
	/* The daemon never signs on a token outside the inventory, nor in a
	 * country the key does not allow (the same rule, sg_policy.h): an
	 * entry saying so contradicts the policy it names. */
	if (sg_policy_hsm_allowed(v->policy, k, v->entry.hsm_serial, &v->hsm,
	    err, sizeof(err)) != 0) {
		fail("hsm", "%s", err);
		goto out;
	}
	if (strcmp(v->hsm->country, v->entry.hsm_country) != 0) {
		fail("hsm", "the entry says token %s stands in %s, the policy "
		    "says %s", v->entry.hsm_serial, v->entry.hsm_country,
		    v->hsm->country);
		goto out;
	}
	ex = 0;
out:
	free(text);
	return ex;
}

/* The decisions, already verified by sg_evidence_check(), for display. */
static void
print_decisions(const struct verify *v)
{
	struct sg_envelope env;
	char err[256], approvers[1024] = "", rejecters[1024] = "";
	size_t i, stmt_len, ao = 0, ro = 0;
	int approve, n;

	for (i = 0; i < v->ev->napprovals; i++) {
		memset(&env, 0, sizeof(env));
		if (sg_envelope_parse(v->ev->approvals[i],
		    v->ev->approval_lens[i], &env, err, sizeof(err)) != 0)
			continue;
		if (sg_body_split(env.payload, env.payload_len, &stmt_len,
		    &approve) == 0) {
			char *out = approve ? approvers : rejecters;
			size_t *o = approve ? &ao : &ro;

			n = snprintf(out + *o, sizeof(approvers) - *o, "%s%s",
			    *o > 0 ? " " : "", sg_cli_esc(env.keyid));
			if (n > 0 && (size_t)n < sizeof(approvers) - *o)
				*o += (size_t)n;
		}
		sg_envelope_clear(&env);
	}
	printf("approvers: %s\n", ao > 0 ? approvers : "none needed");
	if (ro > 0)
		printf("rejected-by: %s\n", rejecters);
}

/* What a release or grant approved, and where this signature stands in
 * it. */
static void
print_relation(const struct verify *v)
{
	char until[32];

	if (v->st.kind == SG_KIND_RELEASE) {
		printf("release: %s requester %s manifest sha256:%s %llu "
		    "artifacts\n", v->st.request, v->st.requester,
		    v->st.manifest_root, (unsigned long long)v->st.count);
		printf("relation: artifact %llu of %llu (position %llu) of "
		    "release %s, manifest sha256:%s\n",
		    (unsigned long long)v->entry.position + 1,
		    (unsigned long long)v->st.count,
		    (unsigned long long)v->entry.position, v->st.request,
		    v->st.manifest_root);
		return;
	}
	sg_time_rfc3339((time_t)v->st.expires, until, sizeof(until));
	printf("grant: %s requester %s count %llu artifact %s until %s\n",
	    v->st.request, v->st.requester, (unsigned long long)v->st.count,
	    v->st.pattern, until);
	printf("relation: signature %llu of %llu under grant %s, for names "
	    "matching %s, until %s\n", (unsigned long long)v->entry.position,
	    (unsigned long long)v->st.count, v->st.request, v->st.pattern,
	    until);
}

static void
print_summary(const struct verify_args *a, const struct verify *v)
{
	char when[32], *root;

	printf("verified: %s\n", a->file != NULL ? a->file : "digest");
	printf("key: %s sha256:%s %s\n", v->st.key, v->st.spki_sha256,
	    v->entry.algorithm);
	if (v->two) {
		printf("artifact: %s\n", sg_cli_esc(v->entry.line));
		printf("digest: %s:%s\n", sg_digest_name(v->line.digest_alg),
		    v->line_hex);
		print_relation(v);
	} else {
		printf("digest: %s:%s\n", v->st.digest_alg,
		    v->st.digest_hex);
		printf("request: %s requester %s\n", v->st.request,
		    v->st.requester);
	}
	print_decisions(v);
	printf("policy: %s@%llu sha256:%s\n", v->st.policy_name,
	    v->st.policy_version, v->st.policy_sha256);
	if (v->has_policy)
		printf("policy-entry: index %llu\n",
		    (unsigned long long)v->proof3.index);
	if (v->approved_by[0] != '\0') {
		printf("policy-effective: index %llu\n",
		    (unsigned long long)v->tail[0].index);
		printf("policy approved by: %s\n", v->approved_by);
	}
	sg_time_rfc3339((time_t)v->entry.time, when, sizeof(when));
	printf("signed: %s\n", when);
	printf("hsm: %s %s (%s)\n", v->entry.hsm_serial, v->entry.hsm_country,
	    v->hsm->site);
	root = sg_b64_encode(v->cp.root, sizeof(v->cp.root));
	if (v->two)
		printf("log: index %llu, approved index %llu, checkpoint %s "
		    "size %llu root %s\n", (unsigned long long)v->proof.index,
		    (unsigned long long)v->proof2.index, v->cp.origin,
		    (unsigned long long)v->cp.size, root != NULL ? root : "?");
	else
		printf("log: index %llu, checkpoint %s size %llu root %s\n",
		    (unsigned long long)v->proof.index, v->cp.origin,
		    (unsigned long long)v->cp.size, root != NULL ? root : "?");
	free(root);
	if (v->witnessed[0] != '\0')
		printf("witnessed: %s\n", v->witnessed);
}

/* --log SOURCE: the log as a source publishes it holds the proof's
 * checkpoint and the very entries the proof carries (their number in
 * *ret_n). */
static int
check_source(const struct verify_args *a, const struct verify *v,
    const struct sg_cli_conf *conf, uint64_t *ret_size, size_t *ret_n)
{
	const struct sg_tlog_proof *p[3 + TAIL_MAX];
	struct sg_cli_logged e[3 + TAIL_MAX];
	char *vkey = NULL;
	size_t i, n = 0;
	int ex;

	if (a->log_source == NULL)
		return SG_EXIT_OK;
	if (sg_note_vkey_format(v->vkey_name, v->vkey_pub, &vkey) != 0)
		return SG_EXIT_LOCAL;
	/* Every entry the proof carries: the signature's, the approved
	 * entry's, the policy entry's and those of how it took effect. */
	p[n++] = &v->proof;
	if (v->two)
		p[n++] = &v->proof2;
	if (v->has_policy)
		p[n++] = &v->proof3;
	for (i = 0; i < v->ntail; i++)
		p[n++] = &v->tail[i];
	for (i = 0; i < n; i++) {
		e[i].index = p[i]->index;
		e[i].entry = p[i]->extra;
		e[i].len = p[i]->extra_len;
	}
	/* Offline otherwise, verify resolves no connection settings. */
	ex = sg_cli_check_log_source(a->log_source, conf->cacert != NULL ?
	    conf->cacert : getenv("SIGNGATE_CACERT"), vkey, &v->cp, e, n,
	    ret_size);
	free(vkey);
	*ret_n = n;
	return ex;
}

static void
verify_clear(struct verify *v)
{
	size_t i;

	sg_policy_free(v->policy);
	EVP_PKEY_free(v->pub);
	sg_entry_clear(&v->entry);
	sg_entry_clear(&v->approved);
	sg_entry_clear(&v->pentry);
	sg_tlog_proof_clear(&v->proof);
	sg_tlog_proof_clear(&v->proof2);
	sg_tlog_proof_clear(&v->proof3);
	for (i = 0; i < TAIL_MAX; i++) {
		sg_entry_clear(&v->tentry[i]);
		sg_tlog_proof_clear(&v->tail[i]);
	}
	sg_policy_free(v->prev);
	memset(v, 0, sizeof(*v));
}

/* Every link for one signature; v holds the log key.  quiet: no summary
 * (--each prints a line a file). */
static int
verify_one(const struct verify_args *a, struct verify *v,
    struct sg_cli_conf *conf, int quiet)
{
	uint64_t source_size = 0;
	size_t source_n = 0;
	int ex;

	if ((ex = check_log(a, v)) != 0 ||
	    (ex = check_witnesses(a, v)) != 0 ||
	    (ex = check_key(v)) != 0 ||
	    (ex = check_artifact(v)) != 0 ||
	    (ex = check_digest(a, v)) != 0 ||
	    (ex = check_signature(a, v)) != 0 ||
	    (ex = check_policy(a, v)) != 0 ||
	    (ex = check_source(a, v, conf, &source_size, &source_n)) != 0)
		return ex;
	if (quiet) {
		printf("verified: %s (key %s, log index %llu)\n",
		    sg_cli_esc(a->file), v->st.key,
		    (unsigned long long)v->proof.index);
		return SG_EXIT_OK;
	}
	print_summary(a, v);
	/* The entries compared: a policy entry and how it took effect come
	 * with a signature's bundle, so even a request's may be several. */
	if (a->log_source != NULL)
		printf("log source: %s size %llu, consistent with the proof's "
		    "checkpoint, the same entr%s\n", sg_cli_esc(a->log_source),
		    (unsigned long long)source_size, source_n > 1 ? "ies" :
		    "y");
	return SG_EXIT_OK;
}

/*
 * --each: every file with the signature `signgate release` (or `sign`)
 * wrote beside it, FILE.sig or else FILE.p7s, and that signature's proof;
 * a line a file verified, the links that broke for one that is not.  The
 * exit status is the first failure's.
 */
/* FILE's signature as `signgate release` and `sign` write it beside
 * FILE: FILE.sig, or else FILE.p7s; and that signature's proof. */
static int
beside(const char *file, char **ret_sig, char **ret_proof)
{
	char *sig = NULL;

	*ret_sig = *ret_proof = NULL;
	if (asprintf(&sig, "%s.sig", file) < 0)
		return SG_EXIT_LOCAL;
	if (access(sig, F_OK) != 0) {
		free(sig);
		if (asprintf(&sig, "%s.p7s", file) < 0)
			return SG_EXIT_LOCAL;
	}
	if (asprintf(ret_proof, "%s.proof", sig) < 0) {
		free(sig);
		*ret_proof = NULL;
		return SG_EXIT_LOCAL;
	}
	*ret_sig = sig;
	return 0;
}

/*
 * --each: every file with its signature and proof beside it (beside());
 * a line a file verified, and for one that is not the links that broke
 * and its name.  The exit status is the first failure's.
 */
static int
verify_each(const struct verify_args *a, const struct verify *key,
    struct sg_cli_conf *conf)
{
	struct verify_args one = *a;
	struct verify v;
	char *sig, *proof;
	size_t i, ok = 0;
	int ex, first = SG_EXIT_OK;

	for (i = 0; i < a->nfiles; i++) {
		if ((ex = beside(a->files[i], &sig, &proof)) == 0) {
			one.file = a->files[i];
			one.signature = sig;
			one.proof = proof;
			memset(&v, 0, sizeof(v));
			memcpy(v.vkey_name, key->vkey_name,
			    sizeof(v.vkey_name));
			v.vkey_id = key->vkey_id;
			memcpy(v.vkey_pub, key->vkey_pub, sizeof(v.vkey_pub));
			ex = verify_one(&one, &v, conf, 1);
			verify_clear(&v);
			free(sig);
			free(proof);
		}
		if (ex == SG_EXIT_OK) {
			ok++;
			continue;
		}
		fprintf(stderr, "signgate: %s: not verified\n",
		    sg_cli_esc(a->files[i]));
		if (first == SG_EXIT_OK)
			first = ex;
	}
	printf("%zu of %zu verified\n", ok, a->nfiles);
	return first;
}

int
sg_cli_cmd_verify(int argc, char **argv, struct sg_cli_conf *conf)
{
	struct verify_args a;
	struct verify v;
	int ex;

	if ((ex = parse_args(argc, argv, conf, &a)) != 0)
		return ex;
	if (a.help) {
		sg_cli_usage(stdout, "verify");
		return SG_EXIT_OK;
	}
	memset(&v, 0, sizeof(v));
	if ((ex = load_vkey(&a, &v)) == 0)
		ex = a.each ? verify_each(&a, &v, conf) :
		    verify_one(&a, &v, conf, 0);
	ex = sg_cli_flush(ex);
	verify_clear(&v);
	return ex;
}
