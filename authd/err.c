#include "err.h"

static const struct {
	const char *text;
	const char *wire;
} err_table[] = {
	[0] = {"ok", "internal"},
	[1] = {"internal error", "internal"},
	[2] = {"out of memory", "internal"},
	[3] = {"bad request", "bad_request"},
	[4] = {"unauthorized", "unauthorized"},
	[5] = {"not found", "not_found"},
	[6] = {"expired", "expired"},
	[7] = {"conflict", "conflict"},
	[8] = {"too large", "too_large"},
	[9] = {"unsupported", "unsupported"},
	[10] = {"unavailable", "unavailable"},
	[11] = {"I/O error", "internal"},
	[12] = {"cryptographic operation failed", "internal"},
	[13] = {"invalid configuration", "internal"},
	[14] = {"truncated input", "bad_request"},
	[15] = {"integrity check failed", "internal"},
};

static unsigned
err_index(int err)
{
	if (err > 0 || err < AUTHD_ERR__MIN)
		return 1;
	return (unsigned)-err;
}

const char *
authd_strerror(int err)
{
	return err_table[err_index(err)].text;
}

const char *
authd_wire_code(int err)
{
	return err_table[err_index(err)].wire;
}
