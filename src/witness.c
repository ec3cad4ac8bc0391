/*
 * The signer's checkpoint record (see include/sg_witness.h).
 *
 * Why: the log key's signature on a checkpoint is the log's promise that
 * this tree is the log.  If the signer signed whatever tree the front
 * named, a compromised front could obtain two checkpoints of one size with
 * different roots (a fork: one shown to the victim, one to everybody
 * else) or go back to a smaller tree.  So the signer keeps the last
 * (size, root) it agreed to sign and signs a new tree only when the
 * front proves, with an RFC 6962 consistency proof verified here, that the
 * new tree extends that one -- what a C2SP tlog-witness checks before it
 * cosigns, done by the log's own key.  A compromised front can still
 * append entries; it can no longer rewrite what was signed.
 *
 * The rules (sg_witness_check), for a tree (size, root) with a proof from
 * old_size:
 * - no record yet: trust on first use, whatever the tree (the empty tree
 *   must have the empty root); it becomes the record;
 * - size below the record: refused, a rollback;
 * - size equal to the record: only the recorded root, without a proof (the
 *   same checkpoint signed again: a checkpoint the front lost); another
 *   root is a fork;
 * - size above the record: the proof must start at the recorded size
 *   (SG_ERR_CONFLICT otherwise, and the reply tells the front the record
 *   so that it can build the right proof) and must verify from the
 *   recorded root to the new root; from the empty tree any tree follows.
 *
 * The record is the checkpoint text itself (c2sp.org/tlog-checkpoint,
 * "<origin>\n<size>\n<base64 root>\n"), in the file `checkpoint` of the
 * signer's state directory, mode 0600, written before the signature
 * leaves the signer: a temporary file, fsync, rename over the record,
 * fsync of the directory.  An unchanged record is not written again.
 * Writing before signing means the record may name a tree whose signature
 * never left (the HSM failed after the write); that is harmless, because
 * the front sends only trees it has already committed durably, so its
 * next request names that tree or extends it.
 *
 * Every request re-reads the record under an exclusive lock: a mutex
 * between this process's threads and flock(2) on the directory between
 * processes (a restarted daemon's signer can overlap with the old one
 * while it exits).  So two requests can never both extend one record to
 * different trees.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sg_err.h"
#include "sg_note.h"
#include "sg_util.h"
#include "sg_witness.h"

#define RECORD "checkpoint"
#define RECORD_TMP "checkpoint.tmp"
#define RECORD_MAX 1024

struct sg_witness {
	char *dir;
	char *origin;
	int dirfd;
	pthread_mutex_t lock;
};

int
sg_witness_check(const struct sg_witness_record *rec,
    const struct sg_witness_request *req, char *err, size_t errlen)
{
	unsigned long long size, have;
	int r;

	if (rec == NULL || req == NULL || req->size > SG_MERKLE_MAX_SIZE ||
	    req->old_size > SG_MERKLE_MAX_SIZE || req->nproof > SG_MERKLE_MAX_PROOF) {
		return sg_err_set(err, errlen, SG_ERR_INVALID, "malformed "
		    "checkpoint request");
	}
	size = (unsigned long long)req->size;
	if (req->size == 0 && memcmp(req->root, sg_merkle_empty_root,
	    SG_HASH_LEN) != 0) {
		return sg_err_set(err, errlen, SG_ERR_VERIFY, "fork: that is "
		    "not the root of the empty tree");
	}
	if (!rec->present) {
		/* Trust on first use: the first tree is taken as it is. */
		if (req->old_size != 0 || req->nproof != 0) {
			return sg_err_set(err, errlen, SG_ERR_CONFLICT, "no "
			    "checkpoint was signed yet: send the tree without "
			    "a proof");
		}
		return 0;
	}
	have = (unsigned long long)rec->size;
	if (req->size < rec->size) {
		return sg_err_set(err, errlen, SG_ERR_VERIFY, "rollback: a "
		    "tree of %llu entries after one of %llu was signed", size,
		    have);
	}
	if (req->size == rec->size) {
		if (memcmp(req->root, rec->root, SG_HASH_LEN) != 0) {
			return sg_err_set(err, errlen, SG_ERR_VERIFY, "fork: "
			    "another root for the tree of %llu entries that "
			    "was signed", size);
		}
		if (req->nproof != 0) {
			return sg_err_set(err, errlen, SG_ERR_INVALID, "the "
			    "signed tree of %llu entries needs no proof", size);
		}
		return 0;
	}
	if (req->old_size != rec->size) {
		return sg_err_set(err, errlen, SG_ERR_CONFLICT, "the proof "
		    "must start at %llu entries, the tree signed last", have);
	}
	if (rec->size == 0) {
		/* Every tree extends the empty one. */
		if (req->nproof != 0) {
			return sg_err_set(err, errlen, SG_ERR_INVALID, "a tree "
			    "after the empty one needs no proof");
		}
		return 0;
	}
	r = sg_merkle_verify_consistency(rec->size, req->size, rec->root,
	    req->root, (const uint8_t (*)[SG_HASH_LEN])req->proof,
	    req->nproof);
	if (r == SG_ERR_VERIFY)
		sg_err_set(err, errlen, SG_ERR_VERIFY, "fork: the tree of %llu "
		    "entries does not extend the one of %llu that was signed "
		    "(the consistency proof fails)", size, have);
	else if (r != 0)
		sg_err_set(err, errlen, r, "the consistency proof cannot be "
		    "checked: %s", sg_strerror(r));
	return r;
}

/* The record on disk; present 0 if there is none.  Lock held. */
static int
read_record(struct sg_witness *w, struct sg_witness_record *ret, char *err,
    size_t errlen)
{
	struct sg_checkpoint cp;
	struct stat sb;
	char buf[RECORD_MAX + 1];
	size_t len = 0;
	ssize_t n;
	int fd, r;

	memset(ret, 0, sizeof(*ret));
	if ((fd = openat(w->dirfd, RECORD, O_RDONLY | O_CLOEXEC |
	    O_NOFOLLOW)) < 0) {
		if (errno == ENOENT)
			return 0;
		return sg_err_set(err, errlen, SG_ERR_IO, "%s/%s: %s", w->dir,
		    RECORD, strerror(errno));
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return sg_err_set(err, errlen, SG_ERR_IO, "%s/%s: not a "
		    "regular file", w->dir, RECORD);
	}
	while (len < sizeof(buf) && (n = read(fd, buf + len,
	    sizeof(buf) - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = errno;
			close(fd);
			return sg_err_set(err, errlen, SG_ERR_IO, "%s/%s: %s",
			    w->dir, RECORD, strerror(r));
		}
		len += (size_t)n;
	}
	close(fd);
	if (len > RECORD_MAX || sg_checkpoint_parse(buf, len, &cp) != 0) {
		return sg_err_set(err, errlen, SG_ERR_INVALID, "%s/%s: not a "
		    "checkpoint record", w->dir, RECORD);
	}
	if (strcmp(cp.origin, w->origin) != 0) {
		char o[2 * SG_NOTE_NAME_MAX];
		sg_escape(cp.origin, strlen(cp.origin), o, sizeof(o));
		return sg_err_set(err, errlen, SG_ERR_INVALID, "%s/%s: the "
		    "record is of the log '%s', not of the configured log "
		    "origin", w->dir, RECORD, o);
	}
	ret->present = 1;
	ret->size = cp.size;
	memcpy(ret->root, cp.root, SG_HASH_LEN);
	return 0;
}

static int
write_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, p, len)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Replaces the record, durably.  Lock held. */
static int
write_record(struct sg_witness *w, uint64_t size,
    const uint8_t root[SG_HASH_LEN], char *err, size_t errlen)
{
	struct sg_checkpoint cp;
	char *text = NULL;
	const char *what = "write";
	int fd = -1, r;

	memset(&cp, 0, sizeof(cp));
	snprintf(cp.origin, sizeof(cp.origin), "%s", w->origin);
	cp.size = size;
	memcpy(cp.root, root, SG_HASH_LEN);
	if ((r = sg_checkpoint_format(&cp, &text)) != 0) {
		return sg_err_set(err, errlen, r, "cannot format the record: "
		    "%s", sg_strerror(r));
	}
	r = SG_ERR_IO;
	if ((fd = openat(w->dirfd, RECORD_TMP, O_WRONLY | O_CREAT | O_TRUNC |
	    O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
		what = "create";
		goto fail;
	}
	if (fchmod(fd, 0600) != 0 || write_all(fd, text, strlen(text)) != 0)
		goto fail;
	what = "fsync";
	if (fsync(fd) != 0)
		goto fail;
	what = "close";
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	what = "rename";
	if (renameat(w->dirfd, RECORD_TMP, w->dirfd, RECORD) != 0)
		goto fail;
	/* The rename itself must be on disk before anything is signed. */
	what = "fsync the directory";
	if (fsync(w->dirfd) != 0) {
		sg_err_set(err, errlen, SG_ERR_IO, "%s: %s: %s", w->dir, what,
		    strerror(errno));
		free(text);
		return SG_ERR_IO;
	}
	free(text);
	return 0;
fail:
	r = sg_err_set(err, errlen, SG_ERR_IO, "%s/%s: %s: %s", w->dir,
	    RECORD_TMP, what, strerror(errno));
	if (fd >= 0)
		close(fd);
	unlinkat(w->dirfd, RECORD_TMP, 0);
	free(text);
	return r;
}

static int
lock_record(struct sg_witness *w, char *err, size_t errlen)
{
	pthread_mutex_lock(&w->lock);
	while (flock(w->dirfd, LOCK_EX) != 0) {
		if (errno == EINTR)
			continue;
		sg_err_set(err, errlen, SG_ERR_IO, "%s: cannot lock: %s",
		    w->dir, strerror(errno));
		pthread_mutex_unlock(&w->lock);
		return SG_ERR_IO;
	}
	return 0;
}

static void
unlock_record(struct sg_witness *w)
{
	flock(w->dirfd, LOCK_UN);
	pthread_mutex_unlock(&w->lock);
}

int
sg_witness_open(const char *dir, const char *origin, struct sg_witness **ret,
    char *err, size_t errlen)
{
	struct sg_witness *w;
	struct sg_witness_record rec;
	struct stat sb;
	size_t olen;
	int r;

	if (dir == NULL || origin == NULL || (olen = strlen(origin)) == 0 ||
	    olen > SG_NOTE_NAME_MAX) {
		return sg_err_set(err, errlen, SG_ERR_INVALID, "no signer "
		    "state directory or log origin");
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		return sg_err_set(err, errlen, SG_ERR_IO, "%s: cannot create: "
		    "%s", dir, strerror(errno));
	}
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return SG_ERR_NOMEM;
	pthread_mutex_init(&w->lock, NULL);
	w->dirfd = -1;
	if ((w->dir = strdup(dir)) == NULL ||
	    (w->origin = strdup(origin)) == NULL) {
		r = SG_ERR_NOMEM;
		goto fail;
	}
	r = SG_ERR_IO;
	if ((w->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOFOLLOW)) < 0) {
		r = sg_err_set(err, errlen, SG_ERR_IO, "%s: %s", dir,
		    strerror(errno));
		goto fail;
	}
	if (fstat(w->dirfd, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		r = sg_err_set(err, errlen, SG_ERR_IO, "%s: not a directory",
		    dir);
		goto fail;
	}
	/* Only the signer may write the record, or it guards nothing. */
	if ((sb.st_mode & 022) != 0) {
		r = sg_err_set(err, errlen, SG_ERR_PERMISSIONS, "%s: group or "
		    "others may write it (mode %04o); it must be the signer's "
		    "alone", dir, (unsigned)(sb.st_mode & 07777));
		goto fail;
	}
	if ((r = lock_record(w, err, errlen)) != 0)
		goto fail;
	r = read_record(w, &rec, err, errlen);
	unlock_record(w);
	if (r != 0)
		goto fail;
	*ret = w;
	return 0;
fail:
	sg_witness_free(w);
	return r;
}

void
sg_witness_free(struct sg_witness *w)
{
	if (w == NULL)
		return;
	if (w->dirfd >= 0)
		close(w->dirfd);
	pthread_mutex_destroy(&w->lock);
	free(w->dir);
	free(w->origin);
	free(w);
}

int
sg_witness_get(struct sg_witness *w, struct sg_witness_record *ret,
    char *err, size_t errlen)
{
	int r;

	memset(ret, 0, sizeof(*ret));
	if ((r = lock_record(w, err, errlen)) != 0)
		return r;
	r = read_record(w, ret, err, errlen);
	unlock_record(w);
	return r;
}

int
sg_witness_advance(struct sg_witness *w, const struct sg_witness_request *req,
    struct sg_witness_record *ret_rec, char *err, size_t errlen)
{
	struct sg_witness_record rec;
	int r;

	memset(ret_rec, 0, sizeof(*ret_rec));
	if ((r = lock_record(w, err, errlen)) != 0)
		return r;
	if ((r = read_record(w, &rec, err, errlen)) != 0)
		goto out;
	*ret_rec = rec;
	if ((r = sg_witness_check(&rec, req, err, errlen)) != 0)
		goto out;
	if (rec.present && rec.size == req->size)
		goto out;              /* the same tree: nothing to write */
	if ((r = write_record(w, req->size, req->root, err, errlen)) != 0)
		goto out;
	ret_rec->present = 1;
	ret_rec->size = req->size;
	memcpy(ret_rec->root, req->root, SG_HASH_LEN);
out:
	unlock_record(w);
	return r;
}
