/*
 * The witnesses a client trusts (src/cli_witness.c): a set of cosigner
 * verifier keys (c2sp.org/tlog-cosignature) and how many of them must
 * have cosigned a checkpoint.  `signgate verify` and `signgate log
 * monitor` both hold a checkpoint to it; each words its own refusals.
 */
#ifndef SG_CLI_WITNESS_H
#define SG_CLI_WITNESS_H

#include <stddef.h>
#include <stdint.h>

#include "sg_note.h"

/* The most witnesses a set holds; a command may allow fewer. */
#define SG_CLI_WITNESSES_MAX 32

struct sg_cli_witness {
	char name[SG_NOTE_NAME_MAX + 1];
	uint32_t id;
	uint8_t pub[SG_ED25519_PUB];
};

struct sg_cli_witnesses {
	struct sg_cli_witness w[SG_CLI_WITNESSES_MAX];
	size_t n;
	uint64_t quorum;              /* how many must have cosigned */
};

/*
 * Adds a cosigner verifier key unless the same witness (name and key) is
 * in the set already: distinct witnesses count, not mentions.
 * SG_ERR_INVALID if vkey is not a cosigner key (a log key is not one),
 * SG_ERR_CONFLICT if its key is in the set under another name (a
 * cosignature does not sign the name, so one key is one witness),
 * SG_ERR_TOO_LARGE when the set is full.
 */
int sg_cli_witness_add(struct sg_cli_witnesses *set, const char *vkey);

/*
 * Counts the witnesses of the set with a valid cosignature on the signed
 * note into *ret_got, and names them in names (when not NULL: ", "
 * between, "" for none, cut to cap).  0 if at least set->quorum did,
 * SG_ERR_VERIFY otherwise.
 */
int sg_cli_witness_check(const struct sg_cli_witnesses *set,
    const char *note, size_t len, size_t *ret_got, char *names, size_t cap);

#endif
