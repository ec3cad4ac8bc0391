/*
 * Private to the policy module: the parsed policy's records, shared by the
 * parser (policy.c) and the queries and quorum evaluator (policy_eval.c).
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
};

/* Look-ups by name (an HSM by serial): the index, or -1. */
ssize_t policy_principal_index(const struct sg_policy *, const char *);
ssize_t policy_key_index(const struct sg_policy *, const char *);
ssize_t policy_hsm_index(const struct sg_policy *, const char *);
const struct group_ent *policy_group_find(const struct sg_policy *,
    const char *);
int policy_group_has(const struct group_ent *, size_t principal);

#endif
