/*
 * The console's sessions and challenges, in memory only.
 *
 * A session is a random 256-bit token the browser holds in a __Host-
 * cookie (Secure, HttpOnly, SameSite=Strict, Path=/); the table keeps
 * only its SHA-256, so that a memory dump or a log line of the table
 * hands no one a usable cookie, and compares hashes in constant time.  A
 * session ends at sign-out, after SG_CONSOLE_IDLE_MS without a request,
 * or SG_CONSOLE_ABSOLUTE_MS after sign-in, whichever comes first.  The
 * table is bounded: when it is full the least recently used session
 * goes (only officers can fill it, each with a security key in hand).
 *
 * A challenge is 256 random bits the browser has an authenticator sign
 * (WebAuthn's clientDataJSON.challenge).  Each is for one purpose (a
 * sign-in; or a cancel, bound to one session and one request), expires
 * after SG_CONSOLE_CHALLENGE_MS and is taken at its first use, whether
 * the assertion then verifies or not: an assertion can never be
 * replayed.  When the table is full the challenge nearest its expiry is
 * dropped (anonymous requests are rate-limited before they get here).
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "console_int.h"
#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_util.h"
#include "sg_webauthn.h"

static int
session_live(const struct console_session *s, int64_t now)
{
	return s->used && now - s->last_ms < SG_CONSOLE_IDLE_MS &&
	    now - s->created_ms < SG_CONSOLE_ABSOLUTE_MS;
}

int
console_challenge_new(struct sg_console *c, enum console_purpose p,
    const uint8_t session[32], const char *request,
    uint8_t out[CONSOLE_CHALLENGE_LEN])
{
	struct console_challenge *ch = NULL;
	int64_t now = c->now_ms();
	size_t i;

	if (RAND_bytes(out, CONSOLE_CHALLENGE_LEN) != 1)
		return SG_ERR_CRYPTO;
	pthread_mutex_lock(&c->lock);
	for (i = 0; i < SG_CONSOLE_MAX_CHALLENGES; i++) {
		struct console_challenge *x = &c->challenges[i];
		if (!x->used || x->expires_ms <= now) {
			ch = x;
			break;
		}
		if (ch == NULL || x->expires_ms < ch->expires_ms)
			ch = x;
	}
	memset(ch, 0, sizeof(*ch));
	ch->used = 1;
	ch->purpose = p;
	memcpy(ch->value, out, CONSOLE_CHALLENGE_LEN);
	ch->expires_ms = now + SG_CONSOLE_CHALLENGE_MS;
	if (session != NULL)
		memcpy(ch->session, session, sizeof(ch->session));
	if (request != NULL)
		snprintf(ch->request, sizeof(ch->request), "%s", request);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/*
 * Takes the challenge `value` for purpose p (and, for a cancel, this
 * session and request): 0 if it was there and not expired; it is gone
 * afterwards in any case.  SG_ERR_FORBIDDEN otherwise.
 */
int
console_challenge_take(struct sg_console *c, enum console_purpose p,
    const uint8_t session[32], const char *request,
    const uint8_t *value, size_t len)
{
	int64_t now = c->now_ms();
	int r = SG_ERR_FORBIDDEN;
	size_t i;

	if (len != CONSOLE_CHALLENGE_LEN)
		return r;
	pthread_mutex_lock(&c->lock);
	for (i = 0; i < SG_CONSOLE_MAX_CHALLENGES; i++) {
		struct console_challenge *x = &c->challenges[i];
		if (!x->used || CRYPTO_memcmp(x->value, value, len) != 0)
			continue;
		if (x->purpose == p && x->expires_ms > now &&
		    (p != PURPOSE_CANCEL || (CRYPTO_memcmp(x->session,
		    session, sizeof(x->session)) == 0 &&
		    strcmp(x->request, request) == 0)))
			r = 0;
		OPENSSL_cleanse(x, sizeof(*x));
		break;
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* A new session for officer: its Set-Cookie value in cookie. */
int
console_session_new(struct sg_console *c, const char *officer, char *cookie,
    size_t cookie_len)
{
	uint8_t token[CONSOLE_TOKEN_LEN];
	struct console_session *s = NULL;
	int64_t now = c->now_ms();
	char *b64 = NULL;
	size_t i;
	int r = SG_ERR_CRYPTO;

	if (RAND_bytes(token, sizeof(token)) != 1)
		goto out;
	if ((r = sg_b64url_encode(token, sizeof(token), &b64)) != 0)
		goto out;
	if ((size_t)snprintf(cookie, cookie_len, "%s=%s; Path=/; Secure; "
	    "HttpOnly; SameSite=Strict; Max-Age=%lld", SG_CONSOLE_COOKIE, b64,
	    (long long)(SG_CONSOLE_ABSOLUTE_MS / 1000)) >= cookie_len) {
		r = SG_ERR_BUFFER;
		goto out;
	}
	pthread_mutex_lock(&c->lock);
	for (i = 0; i < SG_CONSOLE_MAX_SESSIONS; i++) {
		struct console_session *x = &c->sessions[i];
		if (!session_live(x, now)) {
			s = x;
			break;
		}
		if (s == NULL || x->last_ms < s->last_ms)
			s = x;
	}
	memset(s, 0, sizeof(*s));
	s->used = 1;
	sg_sha256(token, sizeof(token), s->token_hash);
	snprintf(s->officer, sizeof(s->officer), "%s", officer);
	s->created_ms = s->last_ms = now;
	pthread_mutex_unlock(&c->lock);
	r = 0;
out:
	OPENSSL_cleanse(token, sizeof(token));
	if (b64 != NULL) {
		OPENSSL_cleanse(b64, strlen(b64));
		free(b64);
	}
	return r;
}

/* The token in a Cookie header ("a=b; NAME=TOKEN; c=d"), or -1. */
static int
cookie_token(const char *header, uint8_t token[CONSOLE_TOKEN_LEN])
{
	const char *p = header, *v, *end;
	size_t nlen = strlen(SG_CONSOLE_COOKIE), n;

	while (p != NULL && *p != '\0') {
		while (*p == ' ' || *p == ';')
			p++;
		end = strchr(p, ';');
		if (strncmp(p, SG_CONSOLE_COOKIE, nlen) == 0 && p[nlen] == '=') {
			v = p + nlen + 1;
			n = end != NULL ? (size_t)(end - v) : strlen(v);
			return sg_b64url_decode(v, n, token, CONSOLE_TOKEN_LEN,
			    &n) == 0 && n == CONSOLE_TOKEN_LEN ? 0 : -1;
		}
		p = end;
	}
	return -1;
}

/*
 * The session of a request's Cookie header (NULL: none): 0 with its
 * officer and token hash, the session touched; SG_ERR_NOT_FOUND when
 * there is none, or it expired (then it is gone).
 */
int
console_session_find(struct sg_console *c, const char *cookie_header,
    char officer[CONSOLE_OFFICER_SIZE], uint8_t ret_hash[32])
{
	uint8_t token[CONSOLE_TOKEN_LEN], hash[32];
	int64_t now = c->now_ms();
	int r = SG_ERR_NOT_FOUND;
	size_t i;

	if (cookie_header == NULL || cookie_token(cookie_header, token) != 0)
		return r;
	sg_sha256(token, sizeof(token), hash);
	OPENSSL_cleanse(token, sizeof(token));
	pthread_mutex_lock(&c->lock);
	for (i = 0; i < SG_CONSOLE_MAX_SESSIONS; i++) {
		struct console_session *s = &c->sessions[i];
		if (!s->used || CRYPTO_memcmp(s->token_hash, hash,
		    sizeof(hash)) != 0)
			continue;
		if (!session_live(s, now)) {
			memset(s, 0, sizeof(*s));
			break;
		}
		s->last_ms = now;
		snprintf(officer, CONSOLE_OFFICER_SIZE, "%s", s->officer);
		memcpy(ret_hash, hash, sizeof(hash));
		r = 0;
		break;
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

void
console_session_end(struct sg_console *c, const uint8_t hash[32])
{
	size_t i;

	pthread_mutex_lock(&c->lock);
	for (i = 0; i < SG_CONSOLE_MAX_SESSIONS; i++)
		if (c->sessions[i].used && CRYPTO_memcmp(
		    c->sessions[i].token_hash, hash, 32) == 0)
			memset(&c->sessions[i], 0, sizeof(c->sessions[i]));
	pthread_mutex_unlock(&c->lock);
}
