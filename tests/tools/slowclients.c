/*
 * slowclients: a slowloris on loopback, for the limits test.
 *
 *   slowclients HOST PORT FROM_ADDR COUNT SECONDS
 *
 * Opens COUNT TCP connections from FROM_ADDR (a loopback address such as
 * 127.0.0.2) to HOST:PORT and trickles one byte of a TLS record header on
 * each every 500 ms, never completing a handshake, for SECONDS.  Prints
 * how many connections the server accepted, refused outright, and closed
 * while they trickled.  Bounded in count (<= 1000) and time (<= 120 s).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sg_util.h"

#define MAX_CONN 1000
#define MAX_SECONDS 120

int
main(int argc, char **argv)
{
	static const unsigned char hello[] = { 0x16, 0x03, 0x01, 0x02, 0x00 };
	struct sockaddr_in to, from;
	uint64_t port, count, seconds;
	int fds[MAX_CONN], closed[MAX_CONN];
	size_t sent[MAX_CONN];
	size_t i, accepted = 0, refused = 0, nclosed = 0;
	time_t end;

	if (argc != 6 || sg_parse_u64(argv[2], 1, 65535, &port) != 0 ||
	    sg_parse_u64(argv[4], 1, MAX_CONN, &count) != 0 ||
	    sg_parse_u64(argv[5], 1, MAX_SECONDS, &seconds) != 0) {
		fprintf(stderr, "usage: slowclients HOST PORT FROM COUNT "
		    "SECONDS\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	memset(&to, 0, sizeof(to));
	memset(&from, 0, sizeof(from));
	to.sin_family = from.sin_family = AF_INET;
	to.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1 ||
	    inet_pton(AF_INET, argv[3], &from.sin_addr) != 1 ||
	    (ntohl(to.sin_addr.s_addr) >> 24) != 127 ||
	    (ntohl(from.sin_addr.s_addr) >> 24) != 127) {
		fprintf(stderr, "slowclients: loopback addresses only\n");
		return 2;
	}
	for (i = 0; i < count; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		closed[i] = 0;
		sent[i] = 0;
		if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&from,
		    sizeof(from)) != 0 || connect(fds[i],
		    (struct sockaddr *)&to, sizeof(to)) != 0) {
			refused++;
			closed[i] = 1;
			continue;
		}
		accepted++;
	}
	end = time(NULL) + (time_t)seconds;
	while (time(NULL) < end) {
		for (i = 0; i < count; i++) {
			struct pollfd p = { fds[i], POLLIN, 0 };
			char buf[256];
			if (closed[i])
				continue;
			/* The server closing (EOF, reset, or an alert) ends
			 * this connection. */
			if (poll(&p, 1, 0) > 0 && (read(fds[i], buf,
			    sizeof(buf)) <= 0 || (p.revents & POLLHUP))) {
				closed[i] = 1;
				nclosed++;
				continue;
			}
			if (sent[i] < sizeof(hello) &&
			    write(fds[i], &hello[sent[i]], 1) == 1)
				sent[i]++;
			else if (sent[i] >= sizeof(hello) &&
			    write(fds[i], "\0", 1) < 0) {
				closed[i] = 1;
				nclosed++;
			}
		}
		usleep(500 * 1000);
	}
	printf("accepted %zu refused %zu closed %zu open %zu\n", accepted,
	    refused, nclosed, accepted - nclosed);
	for (i = 0; i < count; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return 0;
}
