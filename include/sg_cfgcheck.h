/*
 * `signgated -t`: checks a configuration and everything it names (TLS
 * material, policy, PKCS#11 module, tokens, PINs, keys) as the daemon would
 * use them, without starting anything or writing anything.  See the design
 * comment in src/cfgcheck.c.
 */
#ifndef SG_CFGCHECK_H
#define SG_CFGCHECK_H

/*
 * Prints every problem on stderr ("FILE[:LINE]: reason"; PINs never), and
 * a one-line summary: "signgated: configuration OK: ..." on stdout, or the
 * number of problems on stderr.  Returns the exit status: 0 when the
 * daemon would start with this configuration, 1 otherwise.
 */
int sg_cfgcheck_run(const char *config_path);

#endif
