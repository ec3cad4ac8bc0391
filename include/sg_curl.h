/*
 * The clients' libcurl easy handle (the CLI's, src/cli_http.c, and the
 * tile reader's, src/tile_client.c), with the security settings fixed in
 * one place: TLS 1.2 or newer, peer and host verified (against cafile when
 * given, else the system store), no redirects, only https and http.
 */
#ifndef SG_CURL_H
#define SG_CURL_H

#include <curl/curl.h>

/*
 * A new handle in *ret: those settings, no signals, TCP keep-alive, at most
 * connect_timeout seconds to connect, libcurl's errors in errbuf
 * (CURL_ERROR_SIZE bytes, which must outlive the handle), the response
 * body to write(data, size, nmemb, arg).  Returns SG_ERR_NOMEM when no
 * handle could be made, SG_ERR_INTERNAL when libcurl refused a setting.
 */
int sg_curl_new(const char *cafile, long connect_timeout, char *errbuf,
    curl_write_callback write, void *arg, CURL **ret);

#endif
