/*
 * Every help text of the CLI, kept together because together they are the
 * CLI's contract with people and scripts: options, the lines printed on
 * stdout, the files written and the exit statuses.  Changing an output
 * line means changing it here too.
 */
#include <stdio.h>
#include <string.h>

#include "sg_cli.h"

static const char overview[] =
"usage: signgate [global options] <command> [options] [arguments]\n"
"\n"
"Commands:\n"
"  keys              list the signing keys, their HSM and certificate\n"
"  sign FILE         have FILE signed (conveyor)\n"
"  pending           list requests waiting for approval (officer)\n"
"  show ID           show exactly what request ID would sign\n"
"  approve ID        approve request ID with your approval key (officer)\n"
"  reject ID         reject request ID with your approval key (officer)\n"
"  cancel ID         cancel pending request ID (its requester, or an\n"
"                    officer who may approve it)\n"
"  verify FILE       check a signature offline: log proof, approvals,\n"
"                    policy (auditor)\n"
"  log key|checkpoint|monitor\n"
"                    the transparency log's key, its checkpoint, and a\n"
"                    monitor that detects forks and rollbacks (auditor)\n"
"  policy check|hash FILE\n"
"                    every problem of a policy file, and the line its\n"
"                    statements will carry (offline; policy authors)\n"
"  help [COMMAND]    this text, or a command's\n"
"\n"
"Global options (also accepted after the command, unless the command uses\n"
"the same name itself: `sign`, `pending`, `approve` and `reject` use --key\n"
"for something else, so give the TLS client key before the command or in\n"
"SIGNGATE_KEY):\n"
"  --url URL         server, https://HOST[:PORT]   (env SIGNGATE_URL)\n"
"  --cert FILE       client certificate, PEM       (env SIGNGATE_CERT)\n"
"  --key FILE        client private key, PEM       (env SIGNGATE_KEY)\n"
"  --cacert FILE     CA certificates to verify the server with\n"
"                                                  (env SIGNGATE_CACERT;\n"
"                                                  default: system store)\n"
"  --timeout S       seconds for each HTTP exchange (default 30)\n"
"  -v, --verbose     log each HTTP exchange to stderr\n"
"  -h, --help        help\n"
"  --version         print `signgate VERSION` (before the command only)\n"
"Options win over the environment.  TLS 1.2 or newer; the server's\n"
"certificate and host name are always verified.  http:// is accepted only\n"
"for 127.0.0.1, localhost and [::1].\n"
"\n"
"Output: results go to stdout as `name: value` lines or tables, errors to\n"
"stderr as `signgate: ...`.  Strings from the server are printed with\n"
"control and non-ASCII bytes escaped as \\xNN.\n"
"\n"
"Exit status:\n"
"  0  success\n"
"  1  local error (file I/O, bad key file, a local check failed, declined)\n"
"  2  usage error\n"
"  3  the server refused the request (4xx; the problem detail is printed),\n"
"     or the request is no longer pending when approving, rejecting or\n"
"     cancelling\n"
"  4  cannot reach the server, TLS failure, 5xx, or a malformed answer\n"
"  5  a returned signature does not verify (nothing is written); verify:\n"
"     a link of the evidence is broken; log monitor: fork, rollback or a\n"
"     changed log key\n"
"  6  the request ended without a signature (rejected, expired, failed,\n"
"     cancelled)\n"
"  7  timed out waiting (sign --wait)\n";

static const char keys_usage[] =
"usage: signgate keys [--json]\n"
"\n"
"Lists the keys the server can sign with (GET /v1/keys).\n"
"  --json            print the server's JSON document unchanged\n"
"\n"
"Output: a header line, then per key one line\n"
"  NAME ALGORITHM FORMATS STATE HSM\n"
"where HSM is `token/site/country`, followed by indented lines\n"
"  spki: sha256:<hex>\n"
"  certificate: <subject>, valid <notBefore> to <notAfter>\n"
"  policy: requesters ...; requires N of GROUP, ...; veto yes|no; ...\n"
"  reason: <why the key is unavailable>\n"
"(certificate, policy and reason only when present).\n"
"Exit 5 when a key's public key does not hash to its spki_sha256 or its\n"
"certificate is for another key.\n";

static const char sign_usage[] =
"usage: signgate sign --key NAME [options] FILE\n"
"\n"
"Hashes FILE locally, asks the server to sign the digest with key NAME,\n"
"waits for the approvals the key's policy requires, then checks the\n"
"signature against the key's public key (from GET /v1/keys) over the\n"
"LOCAL digest, and only then writes it.\n"
"  --key NAME              the signing key (see `signgate keys`)\n"
"  --digest ALG            sha256 (default), sha384 or sha512\n"
"  --format F              raw (default): the bare signature (DER ECDSA,\n"
"                          RSA bytes, Ed25519 bytes); cms: a detached\n"
"                          CMS SignedData (DER), checked too\n"
"  --out PATH              where to write (default FILE.sig, FILE.p7s for\n"
"                          cms); written atomically\n"
"  --artifact-name N       artifact.name (default: the file's base name)\n"
"  --artifact-version V    artifact.version\n"
"  --meta K=V              another artifact field (repeatable; names\n"
"                          [A-Za-z0-9._-]{1,64}, values <= 1024 bytes)\n"
"                          Values are UTF-8 text without control, format\n"
"                          (bidi overrides, zero width, ...) or line\n"
"                          separator characters\n"
"  --idempotency-key S     send this Idempotency-Key (1 to 128 printable\n"
"                          ASCII, no spaces); default: a random one.\n"
"                          Running sign again with the same key and the\n"
"                          same file and options resumes the same\n"
"                          request.\n"
"  --wait S                wait at most S seconds for approvals (default\n"
"                          3600); exit 7 when they pass\n"
"  --no-wait               do not wait: print the request and exit 0 while\n"
"                          it is pending\n"
"The request is POSTed again (same Idempotency-Key) up to 3 times after a\n"
"connection error or a 5xx.\n"
"\n"
"Output lines:\n"
"  request: <id>\n"
"  idempotency-key: <key>\n"
"  state: pending|signed|rejected|expired|failed|cancelled\n"
"                                         (again on each change)\n"
"  missing: <N of M GROUP, ...>                      (while pending)\n"
"  error: <reason>                                   (state failed)\n"
"  cancelled: by <principal> at <time>: <reason>     (state cancelled)\n"
"  verified: <algorithm> <digest alg>:<hex> key <name> spki sha256:<hex>\n"
"  signature: <path>\n"
"  proof: <path>.proof\n"
"When the server returns a transparency-log entry for the signature, its\n"
"tlog-proof text is written next to the signature as <out>.proof.\n"
"Exit 5 (nothing written) when the signature, the CMS or the key's SPKI\n"
"does not check out; 6 when the request is rejected, expires, fails or is\n"
"cancelled.\n";

static const char pending_usage[] =
"usage: signgate pending [--key NAME] [--json]\n"
"\n"
"Lists pending requests, newest first (GET /v1/requests?state=pending).\n"
"  --key NAME        only requests for this signing key\n"
"  --json            print {\"requests\": [...]} with every page merged\n"
"\n"
"Output: a header line, then one line per request:\n"
"  ID KEY ARTIFACT REQUESTER CREATED EXPIRES MISSING\n"
"where ARTIFACT is name[@version] and MISSING is `N of M GROUP, ...`.\n";

static const char show_usage[] =
"usage: signgate show ID [--json]\n"
"\n"
"Shows exactly what request ID would sign (GET /v1/requests/ID) and checks\n"
"that its statement (the text officers sign) agrees with the request: id,\n"
"key, digest, format, requester, policy and expiry.  Any disagreement is\n"
"printed on stderr as `signgate: error: ...` and the exit status is 1.\n"
"  --json            print the server's JSON unchanged (still checked)\n"
"\n"
"Output lines: request, state, key (with `spki sha256:<hex>`), digest,\n"
"format, artifact.<name> (one per field), requester, created, expires,\n"
"policy, error (state failed), cancelled (state cancelled: `by <principal>\n"
"at <time>: <reason>`), approval (one per decision: officer, decision,\n"
"time, and `(does not count)` when the officer may no longer approve it\n"
"under the policy in force), missing (counted under the request's own\n"
"policy), then `statement:` and the statement's lines indented by two\n"
"spaces.\n";

static const char cancel_usage[] =
"usage: signgate cancel ID --reason TEXT\n"
"\n"
"Cancels pending request ID (POST /v1/requests/ID/cancel): allowed to the\n"
"request's requester and to an officer who may approve it.  The request\n"
"ends in state cancelled, which the log records with who, when and why; a\n"
"waiting `signgate sign` for it ends with exit 6.\n"
"  --reason TEXT     why (required; 1 to 256 bytes of UTF-8 text without\n"
"                    control, format or line separator characters)\n"
"\n"
"Output lines:\n"
"  request: <id>\n"
"  state: cancelled\n"
"  cancelled: by <principal> at <time>: <reason>\n"
"Exit 3 when the server refuses: 403 for a principal who may not cancel\n"
"it, 409 (with its state) when the request is no longer pending.\n";

static const char approve_usage[] =
"usage: signgate approve|reject ID (--key FILE | --pkcs11 URI) [options]\n"
"\n"
"Fetches request ID, checks that it is pending, that its statement agrees\n"
"with the request, and that the statement's key SPKI digest is the key's\n"
"(GET /v1/keys); prints the statement, asks for confirmation, signs\n"
"SHA-256 of the DSSE PAE of statement + \"decision approve|reject\" with\n"
"your approval key, verifies that signature locally, and posts the DSSE\n"
"envelope.\n"
"  --key FILE        your approval private key, PEM (ECDSA or RSA; must not\n"
"                    be readable by group or others; an encrypted key asks\n"
"                    for its passphrase on the terminal)\n"
"  --pkcs11 URI      your key on a smart card or token, e.g.\n"
"                    'pkcs11:token=officer-cards;object=alice'\n"
"  --module PATH     PKCS#11 module (default $SIGNGATE_PKCS11_MODULE or\n"
"                    " SG_CLI_DEFAULT_MODULE ")\n"
"  --pin-file FILE   the token PIN (mode 0600); otherwise it is asked for\n"
"                    on the terminal without echo.  Never from the command\n"
"                    line or the environment.\n"
"  --as NAME         the keyid to sign as (default: the CN of --cert)\n"
"  --yes             do not ask for confirmation (required when stdin is\n"
"                    not a terminal)\n"
"\n"
"Output lines: the statement as in `show`, then\n"
"  decision: approve|reject\n"
"  posted: <officer> <decision>\n"
"  state: <state>\n"
"  missing: <N of M GROUP, ...>\n"
"Exit 3 when the request is not pending or the server refuses the\n"
"approval; 1 when a check fails or you decline.\n";

static const char verify_usage[] =
"usage: signgate verify (--key-file VKEY_FILE | --log-key VKEY)\n"
"           --policy POLICY_FILE --proof PROOF_FILE [--signature SIG_FILE]\n"
"           (FILE | --digest ALG:HEX)\n"
"\n"
"Checks one signature offline, with local files only (no server is\n"
"contacted):\n"
"  1. the checkpoint in the proof bundle is signed by the log key, and its\n"
"     origin is the key's name;\n"
"  2. the bundle's entry (its extra line) is a signature entry, included\n"
"     at its index in the tree of that checkpoint;\n"
"  3. SIG_FILE (when given) is the logged signature (for cms: the logged\n"
"     CMS, whose signer and messageDigest are checked too);\n"
"  4. the logged public key is the one the approved statement names, and\n"
"     the statement's artifact digest is FILE's (hashed here with the\n"
"     statement's algorithm) or the --digest given;\n"
"  5. the logged signature verifies over that digest with that key;\n"
"  6. the policy file is the one the statement names (name, version,\n"
"     SHA-256), the requester may request the key, it was signed before\n"
"     the request expired, every logged approval is a valid DSSE\n"
"     signature by a distinct officer allowed to decide, and together\n"
"     they meet the key's quorum (no veto); the signing token is in the\n"
"     policy's HSM inventory with the logged country, which the key\n"
"     allows.\n"
"  --key-file FILE   the log's verifier key (a file with the one line\n"
"                    `signgate log key` prints)\n"
"  --log-key VKEY    the verifier key itself\n"
"  --policy FILE     the policy file the signature was approved under\n"
"  --proof FILE      the tlog-proof bundle (`sign` writes <sig>.proof)\n"
"  --signature FILE  the signature `sign` wrote\n"
"  --digest ALG:HEX  the artifact's digest instead of FILE\n"
"\n"
"Output lines on success:\n"
"  verified: <FILE or digest>\n"
"  key: <name> sha256:<spki hex> <algorithm>\n"
"  digest: <alg>:<hex>\n"
"  request: <id> requester <principal>\n"
"  approvers: <officer ...> | none needed\n"
"  rejected-by: <officer ...>                    (when some rejected)\n"
"  policy: <name>@<version> sha256:<hex>\n"
"  signed: <RFC 3339 time>\n"
"  hsm: <token serial> <country> (<site>)\n"
"  log: index <N>, checkpoint <origin> size <S> root <base64>\n"
"A broken link prints `verify: <link>: <why>` on stderr and exits 5; the\n"
"links are: log key, proof, checkpoint, entry, inclusion, statement,\n"
"public key, digest, signature, policy, key, requester, expiry,\n"
"approval N, quorum, hsm.  A file that cannot be read exits 1.\n";

static const char log_usage[] =
"usage: signgate log key\n"
"       signgate log checkpoint\n"
"       signgate log monitor --state FILE [--vkey VKEY]\n"
"\n"
"The transparency log (no client certificate needed).\n"
"  key           prints the log's verifier key, one line\n"
"                <origin>+<key id>+<base64>, for `verify --key-file`\n"
"  checkpoint    prints the latest signed checkpoint (a C2SP signed note)\n"
"  monitor       checks that the log only ever grew: verifies the current\n"
"                checkpoint with the pinned key and a consistency proof\n"
"                from the checkpoint seen last time, then records it\n"
"    --state FILE  what the monitor remembers (created on the first run)\n"
"    --vkey VKEY   the key to trust on the first run (default: the one the\n"
"                  server advertises, trusted on first use); later runs\n"
"                  must give the same key or none\n"
"\n"
"The state file is text, written atomically, exactly these lines:\n"
"  signgate-log-monitor v1\n"
"  key <verifier key>\n"
"  size <number of entries>\n"
"  root <base64 root hash>\n"
"monitor output lines: key, previous (the size seen before; not on the\n"
"first run), size, root, consistent: yes|first checkpoint.\n"
"monitor exits 5, prints FORK, ROLLBACK, KEY CHANGED or BAD CHECKPOINT on\n"
"stderr and leaves the state file unchanged when the log shrank, shows\n"
"another root for a size already seen, cannot prove it extends what was\n"
"seen, is signed by another key, or advertises a key other than the\n"
"pinned one.\n";

static const char policy_usage[] =
"usage: signgate policy check FILE...\n"
"       signgate policy hash FILE\n"
"\n"
"Offline help for whoever writes a policy (policy/README.md); no server\n"
"is asked.\n"
"  check   parses each FILE as signgated would and prints every problem\n"
"          as `FILE:LINE: what` on standard error (after a failing\n"
"          statement it goes on with the next one; names that point at\n"
"          other blocks are checked once every block parses), then\n"
"          `N problems`; for a valid file it prints\n"
"            FILE: ok, policy NAME@VERSION sha256:HEX\n"
"          Exit 0 when every FILE is valid, 1 otherwise.\n"
"  hash    prints the line that approval statements made under FILE\n"
"          carry, `policy NAME@VERSION sha256:HEX`; exit 1 (with the\n"
"          problems) when FILE is not a valid policy.\n";

static const char command_footer[] =
"\n"
"Global options (--url, --cert, --key, --cacert, --timeout, -v) and exit\n"
"statuses: see `signgate --help`.\n";

int
sg_cli_usage(FILE *f, const char *cmd)
{
	if (cmd == NULL)
		fputs(overview, f);
	else if (strcmp(cmd, "keys") == 0)
		fputs(keys_usage, f);
	else if (strcmp(cmd, "sign") == 0)
		fputs(sign_usage, f);
	else if (strcmp(cmd, "pending") == 0)
		fputs(pending_usage, f);
	else if (strcmp(cmd, "show") == 0)
		fputs(show_usage, f);
	else if (strcmp(cmd, "approve") == 0 || strcmp(cmd, "reject") == 0)
		fputs(approve_usage, f);
	else if (strcmp(cmd, "cancel") == 0)
		fputs(cancel_usage, f);
	else if (strcmp(cmd, "verify") == 0)
		fputs(verify_usage, f);
	else if (strcmp(cmd, "log") == 0)
		fputs(log_usage, f);
	else if (strcmp(cmd, "policy") == 0)
		fputs(policy_usage, f);
	else if (strcmp(cmd, "help") == 0)
		fputs("usage: signgate help [COMMAND]\n", f);
	else
		return -1;
	if (cmd != NULL)
		fputs(command_footer, f);
	return 0;
}
