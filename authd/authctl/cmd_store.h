/*
 * authctl store migrate | check | copy: offline store tools. They link the
 * store layer directly and need no daemon.
 *
 *   store migrate --url URL            apply missing schema migrations
 *   store check --url URL              schema version and audit chain verify
 *   store copy --from URL --to URL     copy every table (audit verbatim) into
 *                                      an empty target, then verify its chain
 *
 * URL: sqlite:PATH, postgresql://..., postgres://... or a libpq keyword
 * string. Exit status: 0 ok, 1 failure, 2 usage. Main thread only.
 */
#ifndef AUTHD_CMD_STORE_H
#define AUTHD_CMD_STORE_H

/* argv[0] is "store". */
int cmd_store(int argc, char **argv);

#endif
