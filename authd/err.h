/*
 * authd error space: every fallible function returns 0 or a negative
 * authd_err. One table maps each to text and to the wire error code of
 * DESIGN.md section 4. Thread-safe (pure functions).
 */
#ifndef AUTHD_ERR_H
#define AUTHD_ERR_H

enum authd_err {
	AUTHD_OK = 0,
	AUTHD_ERR_INTERNAL = -1,     /* bug or unexpected library failure */
	AUTHD_ERR_NOMEM = -2,
	AUTHD_ERR_BAD_REQUEST = -3,  /* malformed or invalid input */
	AUTHD_ERR_UNAUTHORIZED = -4, /* peer lacks the role for this op */
	AUTHD_ERR_NOT_FOUND = -5,
	AUTHD_ERR_EXPIRED = -6,      /* challenge expired or already used */
	AUTHD_ERR_CONFLICT = -7,     /* already redeemed, id reused, ... */
	AUTHD_ERR_TOO_LARGE = -8,
	AUTHD_ERR_UNSUPPORTED = -9,  /* unknown op, method or version */
	AUTHD_ERR_UNAVAILABLE = -10, /* store down, plugin missing, draining */
	AUTHD_ERR_IO = -11,          /* local file or socket error */
	AUTHD_ERR_CRYPTO = -12,      /* signature/key operation failed */
	AUTHD_ERR_CONFIG = -13,      /* invalid configuration */
	AUTHD_ERR_TRUNCATED = -14,   /* input ended early */
	AUTHD_ERR_TAMPERED = -15,    /* integrity check failed */
	AUTHD_ERR__MIN = -15,
};

/* Human-readable text for an authd_err; never NULL, caller does not free. */
const char *authd_strerror(int err);

/* Wire error code (DESIGN.md section 4) for an authd_err; never NULL. */
const char *authd_wire_code(int err);

#define AUTHD_WUR __attribute__((warn_unused_result))

/* Propagate an error in one line: TRY(foo(x)); inside a function returning int. */
#define TRY(expr)                         \
	do {                                  \
		int try_r_ = (expr);              \
		if (try_r_ < 0)                   \
			return try_r_;                \
	} while (0)

#endif
