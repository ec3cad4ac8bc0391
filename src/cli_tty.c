/*
 * Prompts on the controlling terminal, never on stdin: stdin may be a pipe
 * that a script fills, and a PIN must come from a person.  A PIN is read
 * with echo off; the terminal's settings are restored on every path,
 * including an interrupt, after which the signal is delivered again with
 * its original disposition (what readpassphrase(3) does).  The caller owns
 * the buffer and wipes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <unistd.h>

#include "sg_cli.h"
#include "sg_err.h"

static volatile sig_atomic_t tty_signo;

static void
on_signal(int signo)
{
	tty_signo = signo;
}

static const int tty_signals[] = {
	SIGINT, SIGHUP, SIGQUIT, SIGTERM, SIGTSTP, SIGTTIN, SIGTTOU,
};
#define NSIG_TTY (sizeof(tty_signals) / sizeof(tty_signals[0]))

static void
write_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

int
sg_cli_tty_read(const char *prompt, int echo, char *buf, size_t cap,
    size_t *ret_len)
{
	struct sigaction sa, saved[NSIG_TTY];
	struct termios old, quiet;
	size_t len = 0, i;
	int fd, restore = 0, r = SG_ERR_IO, too_long = 0;
	char c;

	if (buf == NULL || cap < 2 || ret_len == NULL)
		return SG_ERR_INVALID;
	if ((fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0)
		return SG_ERR_IO;
	tty_signo = 0;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_signal;     /* no SA_RESTART: read() returns */
	for (i = 0; i < NSIG_TTY; i++)
		sigaction(tty_signals[i], &sa, &saved[i]);
	if (!echo) {
		if (tcgetattr(fd, &old) != 0)
			goto out;
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		if (tcsetattr(fd, TCSAFLUSH, &quiet) != 0)
			goto out;
		restore = 1;
	}
	write_all(fd, prompt, strlen(prompt));
	for (;;) {
		ssize_t n = read(fd, &c, 1);
		if (n < 0 && errno == EINTR) {
			if (tty_signo != 0)
				break;
			continue;
		}
		if (n <= 0 || c == '\n' || c == '\r')
			break;
		if (len + 1 < cap)
			buf[len++] = c;
		else
			too_long = 1;
	}
	c = 0;
	buf[len] = '\0';
	if (tty_signo != 0)
		r = SG_ERR_INVALID;
	else if (too_long)
		r = SG_ERR_TOO_LARGE;
	else
		r = 0;
out:
	if (restore) {
		tcsetattr(fd, TCSAFLUSH, &old);
		write_all(fd, "\n", 1);
	}
	close(fd);
	for (i = 0; i < NSIG_TTY; i++)
		sigaction(tty_signals[i], &saved[i], NULL);
	if (tty_signo != 0)
		raise(tty_signo);
	if (r != 0) {
		explicit_bzero(buf, cap);
		return r;
	}
	*ret_len = len;
	return 0;
}

int
sg_cli_tty_confirm(const char *prompt)
{
	char answer[16];
	size_t len = 0;
	int r;

	if ((r = sg_cli_tty_read(prompt, 1, answer, sizeof(answer),
	    &len)) != 0)
		return r;
	if (strcasecmp(answer, "y") == 0 || strcasecmp(answer, "yes") == 0)
		return 0;
	return SG_ERR_FORBIDDEN;
}
