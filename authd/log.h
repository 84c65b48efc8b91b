/* Logging to stderr (foreground) or syslog. Thread-safe. Never pass secrets, tokens or images. */
#ifndef AUTHD_LOG_H
#define AUTHD_LOG_H

#include <syslog.h>

void log_init(const char *ident, int to_stderr, int debug);
void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
