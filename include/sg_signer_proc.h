/*
 * Privilege separation: the signer runs in its own process, the only one
 * that loads the PKCS#11 module, reads PINs and holds sessions.  The
 * network front talks to it over socket pairs (SOCK_SEQPACKET) with a fixed
 * set of messages, each size-checked exactly on receipt (the formats and
 * their table: sg_signer_wire.h).
 *
 * The signer does not trust the front: before it signs a request's digest
 * it checks the approval evidence itself (the statement, every DSSE
 * envelope, and the quorum under a policy file it read itself), so a
 * compromised front cannot obtain a signature without a valid quorum.  For
 * CMS it builds the signed attributes itself around the approved digest.
 *
 * Nor for the log: the front names a tree (size, root) and proves it
 * extends the tree the signer signed last; the signer formats the
 * checkpoint text itself, with the origin of its own configuration, and
 * keeps its record of the last tree in a directory only it writes
 * (sg_witness.h).  A compromised front can neither have arbitrary bytes
 * signed with the log key nor fork or roll back the log.
 */
#ifndef SG_SIGNER_PROC_H
#define SG_SIGNER_PROC_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "sg_limits.h"
#include "sg_signer.h"
#include "sg_types.h"
#include "sg_witness.h"

/* Messages must fit a SOCK_SEQPACKET buffer under the kernel's default
 * net.core.wmem_max (212992, doubled by the kernel). */
#define SG_SIGNER_MAX_EVIDENCE (192 * 1024)  /* statement + envelopes */
#define SG_SIGNER_MAX_CMS (128 * 1024)
#define SG_SIGNER_ERR_MAX 256

struct sg_signer_client;

/* What the officers approved, sent with every signing request. */
struct sg_sign_evidence {
	const char *statement;
	size_t statement_len;
	const char *const *envelopes;  /* every decision recorded */
	const size_t *envelope_lens;
	size_t n;
	enum sg_format format;
};

/*
 * Releases and grants: one item of a batch signed under a release or grant
 * statement (sg_evidence_check() and sg_artifact_allowed() decide it in
 * the signer).  The digest and the format are the artifact line's.
 */
#define SG_SIGNER_BATCH_MAX 64
struct sg_batch_item {
	uint64_t position;             /* release: from 0; grant: from 1 */
	const char *line;              /* the artifact line, no LF */
	size_t line_len;
	const uint8_t (*path)[SG_HASH_LEN]; /* release: inclusion path */
	size_t npath;
};

struct sg_batch_result {
	int status;                    /* 0, SG_ERR_BUFFER (not attempted: the
	                                  reply was full; send it again) or the
	                                  item's refusal */
	uint8_t sig[SG_MAX_SIG];
	size_t sig_len;
	uint8_t *cms;                  /* malloc'd DER, or NULL */
	size_t cms_len;
};
void sg_batch_results_clear(struct sg_batch_result *r, size_t n);

/*
 * Forks the signer process.  It opens the module, tokens and keys as
 * sg_signer_open() does, reads and parses the policy file itself, opens
 * its record of signatures in state_dir (created 0700 when missing; see
 * sg_sigrec.h) and its checkpoint record for the log `log_origin` there
 * (sg_witness_open), and then serves `channels` connections (socket
 * pairs), answering up to `concurrency` requests at once (0:
 * SG_SIGNER_CONCURRENCY_DEFAULT; at most SG_SIGNER_CONCURRENCY_MAX).  Call
 * before starting any thread.
 *
 * Each connection carries many requests at once: the client tags each
 * (sg_signer_wire.h), sends it on the next connection in turn, and its
 * reply thread (one per client) hands each answer to its caller.  The
 * client's calls are thread-safe.
 */
int sg_signer_spawn(const char *module_path,
    const struct sg_signer_token_spec *tokens, size_t ntokens,
    const struct sg_signer_key_spec *keys, size_t nkeys,
    const char *policy_path, const char *log_origin, const char *state_dir,
    unsigned channels, unsigned concurrency, struct sg_signer_client **ret,
    char *errbuf, size_t errlen);
/*
 * Closes the channels (the signer exits) and reaps the process.  Every
 * sg_signer_client_sign_async() still outstanding has its done called
 * with SG_ERR_UNAVAILABLE before this returns.  Not from a done.
 */
void sg_signer_client_free(struct sg_signer_client *c);
/*
 * A client over channels fds[0..n) already open to a signer that serves
 * them (a forked one, pid, reaped at free; or -1): it waits (bounded) for
 * the signer's READY on fds[0], starts its reply thread, and fetches the
 * key facts.  The client owns the descriptors from the call on, also when
 * it fails.  sg_signer_spawn() is socket pairs, a fork and this; tests
 * use it over a signer of their own (sg_signer_child_serve()).
 */
int sg_signer_client_adopt(pid_t pid, const int *fds, unsigned n,
    const struct sg_signer_key_spec *keys, size_t nkeys,
    struct sg_signer_client **ret, char *errbuf, size_t errlen);

/*
 * The signer on its own (`signgated --signer`, its own systemd unit):
 * becomes the signer's user (sg_privdrop.h), opens what the forked signer
 * opens (its records in state_dir for the log log_origin), with the keys of
 * the policy it reads itself plus the log key, and listens on a
 * SOCK_SEQPACKET socket at socket_path.  Each connection from the front's
 * user (SO_PEERCRED) is served as one channel; any other peer is closed
 * unanswered.  Up to `concurrency` requests are answered at once, from all
 * connections together (0: SG_SIGNER_CONCURRENCY_DEFAULT).  Returns once
 * listening (serving goes on in its own threads); signals must be blocked
 * by then.
 */
int sg_signer_listen(const char *socket_path, const char *module_path,
    const struct sg_signer_token_spec *tokens, size_t ntokens,
    const char *policy_path, const char *log_origin, const char *state_dir,
    const char *log_token, const char *log_key, unsigned concurrency,
    char *errbuf, size_t errlen);
/*
 * The front's side: `channels` connections to a listening signer, which
 * must be served by the signer's user.  The signer then re-reads its
 * policy file and must find policy_sha256_hex (what the front read) before
 * the key facts are fetched.  The client is used as a spawned one.
 */
int sg_signer_connect(const char *socket_path, const char *policy_sha256_hex,
    const struct sg_signer_key_spec *keys, size_t nkeys, unsigned channels,
    struct sg_signer_client **ret, char *errbuf, size_t errlen);

/* The keys a signer opens for a policy: each policy key, then the log
 * key (SG_SIGNER_LOG_KEY).  *ret is malloc'd. */
struct sg_policy;
int sg_signer_key_specs(const struct sg_policy *p, const char *log_token,
    const char *log_key, struct sg_signer_key_spec **ret, size_t *ret_n);

/*
 * Signs msg's digest with msg->key after the signer has checked the
 * evidence.  For format "cms", *ret_cms receives the DER SignedData
 * (malloc'd) and reply->sig the signature inside it.  errbuf gets the
 * signer's reason when it refuses.  The signer signs a request (the id
 * its statement names) once per format: asked again with the same
 * statement, it returns the same bytes; with another statement, it
 * refuses (SG_ERR_FORBIDDEN).
 */
int sg_signer_client_sign(struct sg_signer_client *c,
    const struct sg_sign_msg *msg, const struct sg_sign_evidence *ev,
    struct sg_sign_reply *reply, uint8_t **ret_cms, size_t *ret_cms_len,
    char *errbuf, size_t errlen);
/*
 * The same, without waiting: sends the request and returns.  When it
 * returns 0, done is called exactly once, later, on the client's reply
 * thread (or, when another call's send finds the signer gone, on that
 * call's thread; never within this call): r 0 with reply holding the signature
 * and cms (malloc'd, now the callee's; NULL for a raw signature), or an
 * error with err saying why ("" when there is nothing to add): the
 * signer's refusal, SG_ERR_TIMEOUT when no answer came within 120 s (a
 * late one is dropped), SG_ERR_UNAVAILABLE when the signer is gone or the
 * client is freed.  done must not block, nor call the client (the reply
 * thread would wait on itself): it hands its work on.  An error return
 * means done will not be called (the message did not fit, the signer is
 * gone, or the channel took no message within 120 s: SG_ERR_TIMEOUT).
 * Many may be outstanding at once; the signer runs them in parallel.
 * The synchronous calls send the same way and wait for their answer.
 */
typedef void (*sg_signer_sign_done)(void *arg, int r,
    const struct sg_sign_reply *reply, uint8_t *cms, size_t cms_len,
    const char *err);
int sg_signer_client_sign_async(struct sg_signer_client *c,
    const struct sg_sign_msg *msg, const struct sg_sign_evidence *ev,
    sg_signer_sign_done done, void *arg);
/*
 * Signs items[0..n) (1 <= n <= SG_SIGNER_BATCH_MAX) with key under the
 * release or grant evidence ev (the statement, the envelopes that count;
 * ev->format the statement's).  0 when the signer answered item by item
 * (res[i] each); an error for the whole batch otherwise: the evidence
 * refused (SG_ERR_VERIFY or SG_ERR_FORBIDDEN, errbuf says why), the
 * message too large (SG_ERR_TOO_LARGE: send fewer items), or the signer
 * gone.  Free res with sg_batch_results_clear().
 */
int sg_signer_client_sign_batch(struct sg_signer_client *c, const char *key,
    const struct sg_sign_evidence *ev, const struct sg_batch_item *items,
    size_t n, struct sg_batch_result *res, char *errbuf, size_t errlen);
/*
 * Asks for the checkpoint of the tree req->size, req->root with a
 * consistency proof from req->old_size.  0: ret->sig signs the signer's
 * checkpoint text for that tree.  SG_ERR_CONFLICT: the proof must start
 * elsewhere (ret->rec says where).  SG_ERR_VERIFY: refused as a fork or a
 * rollback (ret->err says which).  ret->rec is the signer's record after
 * the request whenever the signer answered.
 */
int sg_signer_client_checkpoint(struct sg_signer_client *c,
    const struct sg_witness_request *req, struct sg_witness_reply *ret);
/* A test signature over a fixed probe digest, verified by the signer; the
 * signature itself is not returned. */
int sg_signer_client_probe(struct sg_signer_client *c, const char *key);
/* Facts fetched once at start; pub is owned by the client. */
int sg_signer_client_key_public(struct sg_signer_client *c,
    const char *name, EVP_PKEY **ret_pub, enum sg_key_alg *ret_alg,
    struct sg_token_info *ret_token);
/* Asks the signer to re-read its policy file; it must then have the
 * SHA-256 the front expects. */
int sg_signer_client_reload(struct sg_signer_client *c,
    const char *expect_sha256_hex, char *errbuf, size_t errlen);

/*
 * A raw channel, for tests that forge messages: the client's last channel,
 * which the client stops using (it waits for the answers still due on it)
 * and its reply thread no longer reads, so that the caller alone sends and
 * receives there.  Owned by the client; -1 when the client has a single
 * channel or the signer is gone.
 */
int sg_signer_client_fd(struct sg_signer_client *c);

/* The messages on the channels: sg_signer_wire.h. */

#endif
