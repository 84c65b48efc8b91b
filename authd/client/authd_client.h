/*
 * libauthd-client: talk to authd over its Unix socket (DESIGN.md section 4)
 * from C. One connection per struct; not thread-safe per connection (use
 * one per thread). Requests may be pipelined: send several, then receive
 * the replies in order.
 */
#ifndef AUTHD_CLIENT_H
#define AUTHD_CLIENT_H

#include <stddef.h>

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

struct authd_client;

/* Errors: 0 ok; negative values as in authd/err.h (e.g. -10 unavailable, -8 too large). */

/* $AUTHD_SOCKET, else /run/authd/authd.sock. Lent. */
const char *authd_client_default_socket(void);

/*
 * Connects; timeout_ms bounds connect and every later send/receive (0: 30 s).
 * A full listen backlog (the daemon busy accepting) is retried until then;
 * a missing socket or a refused connection fails at once (-10).
 */
int authd_client_connect(const char *path, int timeout_ms, struct authd_client **out);
void authd_client_free(struct authd_client **c);

/* Sends one request; adds "v":1 and an "id" when missing. */
int authd_client_send(struct authd_client *c, json_t *req);
/* Receives the next reply; caller decrefs *reply. */
int authd_client_recv(struct authd_client *c, json_t **reply);
/* send + recv. */
int authd_client_call(struct authd_client *c, json_t *req, json_t **reply);

/* Raw frames, for tools that craft their own bytes (tests, bench). */
int authd_client_send_raw(struct authd_client *c, const void *buf, size_t len);
int authd_client_fd(const struct authd_client *c);

#ifdef __cplusplus
}
#endif

#endif
