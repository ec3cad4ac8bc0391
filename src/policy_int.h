/*
 * Private to the policy module: the parsed policy's records, shared by the
 * parser (policy.c), its keyword handlers (policy_kw.c) and the queries and
 * quorum evaluator (policy_eval.c); and the parser's state and helpers,
 * shared by the parser and the keyword handlers.
 * The public view is include/sg_policy.h; each record here wraps the public
 * struct with the lines the parser blames in its messages.
 */
#ifndef SG_POLICY_INT_H
#define SG_POLICY_INT_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "sg_policy.h"

#define POLICY_MAX_PRINCIPALS 1024
#define POLICY_MAX_MEMBERS 64

struct principal_ent {
	struct sg_principal pub;
	int line;
	int cn_line;
	int sha_line;
	int key_line;
	int wa_line[SG_POLICY_MAX_WEBAUTHN];	/* each webauthn-key */
};

struct group_ent {
	char name[SG_NAME_SIZE];
	char member_names[POLICY_MAX_MEMBERS][SG_NAME_SIZE];
	size_t members[POLICY_MAX_MEMBERS];	/* principal indices */
	size_t nmembers;
	int line;
	int members_line;
};

struct key_ent {
	struct sg_policy_key pub;
	int line;
	int requesters_line;
	int term_line[SG_POLICY_MAX_TERMS];
	int grant_term_line[SG_POLICY_MAX_TERMS];
};

struct hsm_ent {
	struct sg_hsm pub;
	int line;
};

struct sg_policy {
	char name[SG_NAME_SIZE];
	uint64_t version;
	char sha256_hex[SG_SHA256_HEX_SIZE];
	struct principal_ent *principals;
	size_t nprincipals, principals_cap;
	struct group_ent *groups;
	size_t ngroups, groups_cap;
	struct key_ent *keys;
	size_t nkeys, keys_cap;
	struct hsm_ent *hsms;
	size_t nhsms, hsms_cap;
	/* policy-change require: who approves this policy's successor */
	struct sg_term change_terms[SG_POLICY_MAX_TERMS];
	size_t nchange_terms;
	int change_term_line[SG_POLICY_MAX_TERMS];
};

/* Look-ups by name (an HSM by serial): the index, or -1. */
ssize_t policy_principal_index(const struct sg_policy *, const char *);
ssize_t policy_key_index(const struct sg_policy *, const char *);
ssize_t policy_hsm_index(const struct sg_policy *, const char *);
const struct group_ent *policy_group_find(const struct sg_policy *,
    const char *);
int policy_group_has(const struct group_ent *, size_t principal);

/* --- the parser (policy.c) and the keyword handlers (policy_kw.c) --- */

#define POLICY_LINE_MAX 4096
#define POLICY_MAX_TOKENS (POLICY_LINE_MAX / 2 + 1)
#define POLICY_PEM_MAX (16 * 1024)

enum block {
	BLK_TOP = 0,
	BLK_PRINCIPAL,
	BLK_GROUP,
	BLK_HSM,
	BLK_KEY,
};

struct parser;
typedef int (*kw_fn)(struct parser *);

struct keyword {
	const char *name;
	kw_fn fn;
	int repeatable;
};

#define KW_MAX 24

struct parser {
	const char *file;
	const char *buf;
	size_t len;
	size_t off;
	int lineno;
	int is_comment;
	char *errbuf;
	size_t errlen;
	/* Check mode (sg_policy_check): every error is reported here and
	 * parsing goes on; errbuf keeps the first. */
	sg_policy_report_fn report;
	void *report_arg;
	unsigned nerrors;
	int skip_block;				/* skipping to 'end' */
	struct sg_policy *p;

	enum block blk;
	int blk_line;
	char ctx[SG_NAME_SIZE + 32];	/* "key 'release'" */
	const struct keyword *kws;		/* the current block's table */
	int kwline[KW_MAX];			/* where each keyword was seen */
	int policy_line;
	int version_line;

	char line[POLICY_LINE_MAX + 1];
	size_t linelen;
	char tokbuf[POLICY_LINE_MAX + 1];
	char *tok[POLICY_MAX_TOKENS];
	size_t ntok;
	char pem[POLICY_PEM_MAX + 1];
};

/* The keyword tables of the blocks (policy_kw.c). */
extern const struct keyword pol_principal_kws[];
extern const struct keyword pol_group_kws[];
extern const struct keyword pol_hsm_kws[];
extern const struct keyword pol_key_kws[];

/* `policy-change require <group> <count>` (policy_kw.c). */
int pol_policy_change(struct parser *);

/* An error on `line`: SG_ERR_INVALID, reported (check mode) or kept. */
int pol_perr(struct parser *, int line, const char *, ...)
    __attribute__((format(printf, 3, 4)));
/* An error in the statement on the current line, prefixed with its block
 * and keyword: "key 'release': require: ...". */
int pol_serr(struct parser *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
void pol_copy_str(char *dst, const char *src, size_t cap);
const char *pol_strip_blanks(char *);
int pol_next_line(struct parser *);
int pol_want_args(struct parser *, size_t n);
int pol_want_some(struct parser *, size_t max, const char *what);
int pol_take_token(struct parser *, char *dst, size_t max,
    const char *what);
int pol_take_rest(struct parser *, char *dst, size_t max);
int pol_find_dup(char *const *tok, size_t i);

static inline int
is_blank(int c)
{
	return c == ' ' || c == '\t';
}

/* The record of the block being parsed. */
static inline struct principal_ent *
cur_principal(struct parser *st)
{
	return &st->p->principals[st->p->nprincipals - 1];
}

static inline struct group_ent *
cur_group(struct parser *st)
{
	return &st->p->groups[st->p->ngroups - 1];
}

static inline struct hsm_ent *
cur_hsm(struct parser *st)
{
	return &st->p->hsms[st->p->nhsms - 1];
}

static inline struct key_ent *
cur_key(struct parser *st)
{
	return &st->p->keys[st->p->nkeys - 1];
}

#endif
