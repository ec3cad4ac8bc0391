/*
 * The log as c2sp.org/tlog-tiles, beside the JSON API: GET
 * /log/checkpoint, /log/tile/<L>/<N>[.p/<W>] and
 * /log/tile/entries/<N>[.p/<W>].  Anyone may read them (the router's
 * anonymous budget applies), and only what the newest checkpoint covers
 * is served, so a tile never changes once served: full tiles are
 * cacheable for ever, partial tiles and the checkpoint are revalidated.
 * One request reads at most one tile: 256 rows of the store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "sg_err.h"
#include "sg_tiles.h"

#define LOG_PREFIX "/log/"
#define CACHE_FOREVER "public, max-age=31536000, immutable"
#define CACHE_REVALIDATE "no-cache"

static void
get_checkpoint(struct call *c)
{
	char *note = NULL;
	uint64_t size;

	if (sg_service_log_checkpoint(c->a->svc, &note, &size) != 0) {
		api_problem(c->resp, 503, NULL, "the log cannot be read");
		return;
	}
	c->resp->status = 200;
	c->resp->content_type = "text/plain; charset=utf-8";
	c->resp->cache_control = CACHE_REVALIDATE;
	c->resp->body = note;
	c->resp->body_len = strlen(note);
}

static void
get_tile(struct call *c, const struct sg_tile *t)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	uint64_t bad = 0;
	int r;

	r = sg_service_log_tile(c->a->svc, t, &buf, &len, &bad);
	if (r == SG_ERR_NOT_FOUND) {
		api_problem(c->resp, 404, NULL, "the newest checkpoint does "
		    "not cover this tile");
		return;
	}
	if (r == SG_ERR_TOO_LARGE) {
		/* An older build stored it; a bundle cannot carry it, and a
		 * bundle without it would be a lie about the log. */
		api_problem(c->resp, 500, NULL, "entry %llu is longer than "
		    "%u bytes, more than an entry bundle can hold; read it "
		    "at /v1/log/entries/%llu", (unsigned long long)bad,
		    SG_TILE_ENTRY_MAX, (unsigned long long)bad);
		return;
	}
	if (r != 0) {
		api_problem(c->resp, 503, NULL, "the log cannot be read");
		return;
	}
	c->resp->status = 200;
	c->resp->content_type = "application/octet-stream";
	c->resp->cache_control = t->width == SG_TILE_WIDTH ? CACHE_FOREVER :
	    CACHE_REVALIDATE;
	c->resp->body = (char *)buf;
	c->resp->body_len = len;
}

/* GET /log/... */
void
api_get_log_tiles(struct call *c)
{
	const char *p = c->req->path + strlen(LOG_PREFIX);
	struct sg_tile t;

	if (strncmp(c->req->path, LOG_PREFIX, strlen(LOG_PREFIX)) != 0) {
		api_problem(c->resp, 404, NULL, "no such endpoint");
		return;
	}
	if (strcmp(p, "checkpoint") == 0)
		get_checkpoint(c);
	else if (sg_tile_path_parse(p, &t) == 0)
		get_tile(c, &t);
	else
		api_problem(c->resp, 404, NULL, "no such tile: the paths are "
		    "checkpoint, tile/<L>/<N>[.p/<W>] and "
		    "tile/entries/<N>[.p/<W>] (c2sp.org/tlog-tiles)");
}
