#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static int log_stderr = 1;
static int log_debug;

void
log_init(const char *ident, int to_stderr, int debug)
{
	log_stderr = to_stderr;
	log_debug = debug;
	if (!to_stderr)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_AUTHPRIV);
}

void
log_msg(int prio, const char *fmt, ...)
{
	va_list ap;
	if (prio == LOG_DEBUG && !log_debug)
		return;
	va_start(ap, fmt);
	if (log_stderr) {
		char line[1024];
		vsnprintf(line, sizeof line, fmt, ap);
		static const char *const names[] = {"emerg", "alert", "crit", "error", "warning", "notice", "info", "debug"};
		fprintf(stderr, "authd[%s]: %s\n", names[prio & 7], line);
	} else
		vsyslog(prio, fmt, ap);
	va_end(ap);
}
