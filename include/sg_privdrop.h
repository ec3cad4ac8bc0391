/*
 * Privilege separation by user.  signgated is two processes: the network
 * front and the signer (the only one that reads PINs and loads the PKCS#11
 * module).  Each runs as its own unprivileged user, `users.front` and
 * `users.signer` in the configuration, so that code running in the front
 * cannot read what only the signer may read.
 *
 * How a process gets there depends on how it was started:
 *
 *   root            each part drops to its user at start-up (the signer
 *                   before it loads the module or reads a PIN, the front
 *                   before it opens the store or accepts a connection) and
 *                   keeps neither root nor any capability;
 *   users.front,    already the right user: the two systemd units;
 *   users.signer
 *   anyone else     a development setting: both parts share that uid, and
 *                   the daemon says so once at start.
 *
 * The plan (who is who) is resolved once per process by sg_privdrop_init()
 * and is process-wide, as credentials are.  sg_privdrop_enter() changes
 * the calling process for good; it is checked afterwards (regaining root
 * must fail, no capability may be left) and the process aborts its start
 * if any check fails.
 */
#ifndef SG_PRIVDROP_H
#define SG_PRIVDROP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SG_PRIVDROP_NAME_MAX 33
#define SG_PRIVDROP_MAX_GROUPS 64

enum sg_priv_role {
	SG_PRIV_FRONT,
	SG_PRIV_SIGNER,
};

enum sg_priv_start {
	SG_PRIV_START_NONE,     /* sg_privdrop_init() not called */
	SG_PRIV_START_ROOT,     /* started as root: each part drops */
	SG_PRIV_START_FRONT,    /* started as users.front */
	SG_PRIV_START_SIGNER,   /* started as users.signer */
	SG_PRIV_START_DEV,      /* started as another user: both share it */
};

struct sg_priv_user {
	char name[SG_PRIVDROP_NAME_MAX];
	uid_t uid;
	gid_t gid;
	gid_t groups[SG_PRIVDROP_MAX_GROUPS];  /* supplementary, gid first */
	int ngroups;
};

/*
 * Resolves the two users (field names "users.front", "users.signer" in
 * errors) and records how this process was started.  Started as root, or
 * as one of the two users, both must exist, differ in uid, and be neither
 * uid 0 nor gid 0.  Started as anyone else, logs the development-setting
 * line once.  Refuses a set-user-ID or set-group-ID start.
 */
int sg_privdrop_init(const char *front_user, const char *signer_user,
    char *errbuf, size_t errlen);
enum sg_priv_start sg_privdrop_start(void);
/* The user of a role (NULL before init or in the development setting). */
const struct sg_priv_user *sg_privdrop_user(enum sg_priv_role role);

/*
 * Makes the calling process the role's user for good: supplementary
 * groups, gid, uid (real, effective, saved, file system), no capability in
 * any set, no new privileges.  The signer is made non-dumpable (its memory
 * is closed to everyone, its own user included); the front dumpable, as a
 * process started as that user is.  Idempotent for the same role.  Not
 * started as root: only no-new-privileges, after checking that the role
 * fits the user this process runs as.  Started as root without
 * sg_privdrop_init(): refused.
 */
int sg_privdrop_enter(enum sg_priv_role role, char *errbuf, size_t errlen);

/* The uid a peer process of that role must have (SO_PEERCRED). */
uid_t sg_privdrop_peer_uid(enum sg_priv_role role);

/*
 * Started as root: creates the directory (mode 0700) if missing, or else
 * takes it over, giving it to the role's user with mode 0700 (like Tor's
 * DataDirectory with User).  The directory itself must not be a symbolic
 * link; no directory above it may be owned by either user or be writable
 * by group or others without the sticky bit (or one of the users could
 * redirect the path); every entry directly inside must already belong to
 * the role's user.  Nothing is created inside.  Other starts: nothing.
 * field names the configuration field in errors.
 */
int sg_privdrop_prepare_dir(const char *field, const char *path,
    enum sg_priv_role role, char *errbuf, size_t errlen);

/* ---- the parts, exposed for tests ---------------------------------- */

/* Looks a user up (getpwnam_r, getgrouplist). */
int sg_privdrop_lookup(const char *field, const char *name,
    struct sg_priv_user *ret, char *errbuf, size_t errlen);
/* The rules two resolved users must satisfy. */
int sg_privdrop_check_pair(const struct sg_priv_user *front,
    const struct sg_priv_user *signer, char *errbuf, size_t errlen);
/* From the text of /proc/PID/status: the four uids (real, effective,
 * saved, fs) and gids, and the permitted, effective and ambient
 * capability sets. */
struct sg_priv_status {
	uid_t uid[4];
	gid_t gid[4];
	uint64_t cap_prm, cap_eff, cap_amb;
	int no_new_privs;
};
int sg_privdrop_parse_status(const char *text, size_t len,
    struct sg_priv_status *ret);
/* Drops to u and checks the result (the core of sg_privdrop_enter()). */
int sg_privdrop_become(const struct sg_priv_user *u, int dumpable,
    char *errbuf, size_t errlen);

#endif
