/*
 * LD_PRELOAD shim: unmodified libfido2 programs (pam_authd inside sshd or
 * pamtester, authctl) see one soft security key.
 *
 *   AUTHD_SOFTDEV_STATE=/tmp/key.json LD_PRELOAD=build/lib/libsoftdev_preload.so prog
 *
 * The state file (softdev_save format) is created when missing. Overrides:
 * fido_dev_info_manifest (lists only the soft key), fido_dev_open (a
 * "softdev:" path gets the soft io functions), fido_dev_close (saves the
 * state: new credentials and counters). Test and demo use only.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <fido.h>

#include "softdev.h"

static pthread_once_t shim_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t shim_lock = PTHREAD_MUTEX_INITIALIZER;
static struct softdev *shim_dev;
static const char *shim_state;

static void
shim_init(void)
{
	shim_state = getenv("AUTHD_SOFTDEV_STATE");
	if (shim_state != NULL && *shim_state != '\0')
		shim_dev = softdev_load(shim_state);
}

static void *
real(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

int
fido_dev_info_manifest(fido_dev_info_t *devlist, size_t ilen, size_t *olen)
{
	pthread_once(&shim_once, shim_init);
	if (shim_dev == NULL) {
		int (*f)(fido_dev_info_t *, size_t, size_t *) =
		    (int (*)(fido_dev_info_t *, size_t, size_t *))real("fido_dev_info_manifest");
		return f != NULL ? f(devlist, ilen, olen) : FIDO_ERR_INTERNAL;
	}
	*olen = 0;
	if (ilen == 0)
		return FIDO_OK;
	if (softdev_info_set(shim_dev, devlist, 0) != 0)
		return FIDO_ERR_INTERNAL;
	*olen = 1;
	return FIDO_OK;
}

int
fido_dev_open(fido_dev_t *dev, const char *path)
{
	int (*f)(fido_dev_t *, const char *) = (int (*)(fido_dev_t *, const char *))real("fido_dev_open");
	int r;

	pthread_once(&shim_once, shim_init);
	if (f == NULL)
		return FIDO_ERR_INTERNAL;
	if (shim_dev != NULL && path != NULL && strncmp(path, "softdev:", 8) == 0) {
		if (strcmp(path, softdev_path(shim_dev)) != 0)
			return FIDO_ERR_INVALID_ARGUMENT;
		if ((r = fido_dev_set_io_functions(dev, softdev_io())) != FIDO_OK)
			return r;
	}
	return f(dev, path);
}

int
fido_dev_close(fido_dev_t *dev)
{
	int (*f)(fido_dev_t *) = (int (*)(fido_dev_t *))real("fido_dev_close");
	int r = f != NULL ? f(dev) : FIDO_ERR_INTERNAL;

	pthread_once(&shim_once, shim_init);
	if (shim_dev != NULL) {
		pthread_mutex_lock(&shim_lock);
		(void)softdev_save(shim_dev, shim_state);
		pthread_mutex_unlock(&shim_lock);
	}
	return r;
}
