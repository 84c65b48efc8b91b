/*
 * libauthd-client: talk to authd over its Unix socket (DESIGN.md section 4)
 * from C. One connection per struct; not thread-safe per connection (use
 * one per thread). Requests may be pipelined: send several, then receive
 * the replies in order; a caller that pipelines matches each reply's "id"
 * to its request itself (authd_client_call does it for one request).
 *
 * A failed send or receive (timeout, peer closed, short or oversized
 * frame, a reply that is not a JSON object, a reply to another request)
 * leaves the connection dead: part of a frame may be on the wire or still
 * unread, so a later reply could answer an earlier request. A dead
 * connection is shut down and every later send/receive/call on it fails at
 * once with -11 (I/O error) without touching the socket: free it and
 * connect again. Retrying on the same connection never returns the reply
 * to the request that failed. Only a request refused before anything was
 * sent (not a JSON object: -3; out of memory: -2) leaves it usable.
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
 * Connects; timeout_ms bounds connect, each later send of a whole request
 * and each receive of a whole reply, however slowly its bytes arrive
 * (0: 30 s); a timeout is -10 and kills the connection (see above).
 * A full listen backlog (the daemon busy accepting) is retried until then;
 * a missing socket or a refused connection fails at once (-10).
 */
int authd_client_connect(const char *path, int timeout_ms, struct authd_client **out);
void authd_client_free(struct authd_client **c);

/* Sends one request; adds "v":1 and an "id" when missing (req is not stolen). */
int authd_client_send(struct authd_client *c, json_t *req);
/*
 * Receives the next reply, a JSON object, into *reply (caller decrefs; NULL
 * on error). Does not check its "id". A length over 64 MiB or 0 is -8,
 * a payload that is not a JSON object -3.
 */
int authd_client_recv(struct authd_client *c, json_t **reply);
/*
 * send + recv, then checks the reply answers req: its "id" must be req's,
 * else -15 (the connection is out of step and dies); a reply without "id"
 * is -15 too (authd always sends one). authd's "id":null error reply (ok
 * false) to a request whose id it could not read is returned as a reply;
 * "id":null with ok true is -15.
 * 0 means a reply was received, not that the request succeeded: check "ok".
 */
int authd_client_call(struct authd_client *c, json_t *req, json_t **reply);

/*
 * Raw frames, for tools that craft their own bytes (tests, bench).
 * authd_client_send_raw fails at once on a dead connection and a failure
 * kills it; the fd is lent (caller does not close it) and stays valid until
 * authd_client_free, shut down once the connection is dead.
 */
int authd_client_send_raw(struct authd_client *c, const void *buf, size_t len);
int authd_client_fd(const struct authd_client *c);

#ifdef __cplusplus
}
#endif

#endif
