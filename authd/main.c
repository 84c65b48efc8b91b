/*
 * authd: flags, startup and shutdown. A request's path from here:
 * server.c (socket, framing, workers) -> ops.c (envelope, role check,
 * dispatch table) -> ops_*.c -> policy.c / plugin / token.c / store ->
 * audit -> reply.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <jansson.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "prune.h"
#include "server.h"
#include "util.h"

static struct authd *g_daemon; /* for the plugin host's config callback */

/*
 * Connections must never take the file descriptors the store, the plugins
 * and the log need: once accept() fails with EMFILE the pending connection
 * stays in the backlog, every peer (well-behaved or not) waits behind it and
 * the listening socket stays readable. So make the open-file limit cover
 * max_connections plus a reserve, raising the soft limit towards the hard one
 * (systemd and shells start services at a soft limit of 1024), and when the
 * hard limit is too low, lower max_connections to what fits and max_per_peer
 * in the same proportion, so one peer still cannot take every slot.
 */
static void
fit_fd_limit(struct server_opts *so)
{
	struct rlimit rl;
	rlim_t reserve = 64 + 4 * (rlim_t)so->workers; /* store connections, plugins, log, signalfd... */
	rlim_t want = (rlim_t)so->max_connections + reserve;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
		return;
	struct rlimit raised = {rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max,
	                        rl.rlim_max};
	if (raised.rlim_cur > rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &raised) == 0)
		rl.rlim_cur = raised.rlim_cur;
	if (rl.rlim_cur >= want)
		return;
	unsigned fit = rl.rlim_cur > 2 * reserve ? (unsigned)(rl.rlim_cur - reserve) : (unsigned)(rl.rlim_cur / 2);
	if (fit == 0)
		fit = 1;
	unsigned per_peer = so->max_per_peer;
	if (per_peer > 1) {
		unsigned long long scaled = (unsigned long long)per_peer * fit / so->max_connections;
		per_peer = scaled < 1 ? 1 : scaled < per_peer ? (unsigned)scaled : per_peer;
	}
	log_msg(LOG_WARNING,
	        "open file limit %llu (hard %llu) is too low for max_connections %u: serving at most %u connections, "
	        "%u per peer (raise LimitNOFILE or ulimit -n to %llu)",
	        (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max, so->max_connections, fit, per_peer,
	        (unsigned long long)want);
	so->max_connections = fit;
	so->max_per_peer = per_peer;
}

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: authd [options]\n"
	        "  -c, --config FILE     INI configuration (default: none, built-in defaults)\n"
	        "  -s, --socket PATH     Unix socket to listen on ([server] socket;\n"
	        "                        default /run/authd/authd.sock)\n"
	        "  -d, --state-dir DIR   state directory: store, signing keys, template key\n"
	        "                        ([server] state_dir; default /var/lib/authd)\n"
	        "  -p, --plugin-dir DIR  authenticator plugins ([plugins] dir; default: the build tree)\n"
	        "  -f, --foreground      stay in the foreground and log to stderr\n"
	        "  -w, --workers N       worker threads ([server] workers; default 8 x cores)\n"
	        "      --debug           log debug messages\n"
	        "      --check-config    load the configuration, report problems and exit\n"
	        "  -V, --version         print the version and exit\n"
	        "  -h, --help            this help\n"
	        "Signals: SIGHUP reloads the configuration, geolocation data and signing keys;\n"
	        "SIGTERM/SIGINT stop accepting, finish in-flight requests and exit.\n");
}

static void
host_log(int prio, const char *msg)
{
	log_msg(prio, "plugin: %s", msg);
}

static const char *
host_config(const char *section, const char *key)
{
	/* Plugins read config during init (main thread) only; the first snapshot lives as long as they do. */
	return g_daemon && g_daemon->snap ? config_get(g_daemon->snap->cfg, section, key) : NULL;
}

static const struct authd_plugin_host plugin_host = {
	.abi = AUTHD_PLUGIN_ABI,
	.size = sizeof(struct authd_plugin_host),
	.log = host_log,
	.config = host_config,
};

/*
 * No core file, ever: a crash of a worker would write the face images and
 * templates it holds, the template key and the signing keys to disk. Also
 * keeps same-uid processes from ptrace and from /proc/<pid>/mem, environ and
 * fd (root still reads them). A change of uid resets the flag to
 * fs.suid_dumpable, so drop_privileges calls this again.
 */
static int
no_core_dumps(void)
{
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		log_msg(LOG_ERR, "prctl(PR_SET_DUMPABLE, 0): %s", strerror(errno));
		return AUTHD_ERR_INTERNAL;
	}
	return 0;
}

/*
 * Started as root to bind a socket in a root-owned directory: become the
 * configured user for good before the first request is read.
 */
static int
drop_privileges(const char *user, const char *state_dir)
{
	if (user == NULL || geteuid() != 0)
		return 0;
	struct passwd *pw = getpwnam(user);
	if (pw == NULL) {
		log_msg(LOG_ERR, "[server] user: no such user '%s'", user);
		return AUTHD_ERR_CONFIG;
	}
	/* The state dir belongs to the service user: it holds the store and keys. */
	if (mkdir(state_dir, 0700) != 0 && errno != EEXIST) {
		log_msg(LOG_ERR, "cannot create state dir %s: %s", state_dir, strerror(errno));
		return AUTHD_ERR_CONFIG;
	}
	struct stat st;
	if (stat(state_dir, &st) != 0 || st.st_uid != pw->pw_uid) {
		log_msg(LOG_ERR, "state dir %s must be owned by %s (chown -R %s %s)", state_dir, user, user, state_dir);
		return AUTHD_ERR_CONFIG;
	}
	if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
		log_msg(LOG_ERR, "cannot drop privileges to %s: %s", user, strerror(errno));
		return AUTHD_ERR_CONFIG;
	}
	if (setuid(0) == 0) {
		log_msg(LOG_ERR, "privileges could be regained after dropping to %s", user);
		return AUTHD_ERR_CONFIG;
	}
	if (no_core_dumps() < 0)
		return AUTHD_ERR_CONFIG;
	log_msg(LOG_INFO, "running as %s (uid %u)", user, (unsigned)pw->pw_uid);
	return 0;
}

struct flags {
	const char *config, *socket, *state_dir, *plugin_dir;
	int foreground, debug, check, workers;
};

static int
load_config(const struct flags *fl, struct config **out, struct geo **geo)
{
	char err[512];
	int r = config_load(fl->config, out, err, sizeof err);
	if (r < 0) {
		log_msg(LOG_ERR, "%s", err);
		return r;
	}
	struct config *c = *out;
	/* Flags override the file. */
	if (fl->socket && (free(c->server.socket), c->server.socket = strdup(fl->socket)) == NULL)
		return AUTHD_ERR_NOMEM;
	if (fl->state_dir && (free(c->server.state_dir), c->server.state_dir = strdup(fl->state_dir)) == NULL)
		return AUTHD_ERR_NOMEM;
	if (fl->plugin_dir && (free(c->plugins.dir), c->plugins.dir = strdup(fl->plugin_dir)) == NULL)
		return AUTHD_ERR_NOMEM;
	if (fl->workers > 0)
		c->server.workers = (unsigned)fl->workers;
	if ((r = geo_load(c->geo.rir_file, c->geo.mmdb, geo, err, sizeof err)) < 0) {
		log_msg(LOG_ERR, "geolocation: %s", err);
		config_free(out);
		return r;
	}
	return 0;
}

static struct flags g_flags;

static void
reload(struct authd *d)
{
	struct config *c = NULL;
	struct geo *g = NULL;
	char err[512];
	if (load_config(&g_flags, &c, &g) < 0) {
		log_msg(LOG_ERR, "reload failed; keeping the running configuration");
		return;
	}
	if (token_keyring_reload(d->keys, c->token.alg, err, sizeof err) < 0)
		log_msg(LOG_ERR, "reload of signing keys failed (%s); keeping the loaded keys", err);
	authd_snap_set(d, c, g);
	log_msg(LOG_INFO, "configuration reloaded");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},   {"socket", required_argument, NULL, 's'},
		{"state-dir", required_argument, NULL, 'd'}, {"plugin-dir", required_argument, NULL, 'p'},
		{"foreground", no_argument, NULL, 'f'},      {"workers", required_argument, NULL, 'w'},
		{"debug", no_argument, NULL, 1},             {"check-config", no_argument, NULL, 2},
		{"version", no_argument, NULL, 'V'},         {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct authd d = {0};
	struct config *cfg = NULL;
	struct geo *geo = NULL;
	struct pruner *pruner = NULL;
	char err[512];
	int c, rc = 1, lfd = -1, lfd_bound = 0;

	/*
	 * Before any thread and any JSON: jansson frees through this, so the
	 * request strings (base64 face images) and the lexer's copies of them
	 * are wiped, in the plugins too (one libjansson per process).
	 */
	json_set_alloc_funcs(malloc, util_json_free_wipe);

	while ((c = getopt_long(argc, argv, "c:s:d:p:fw:Vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': g_flags.config = optarg; break;
		case 's': g_flags.socket = optarg; break;
		case 'd': g_flags.state_dir = optarg; break;
		case 'p': g_flags.plugin_dir = optarg; break;
		case 'f': g_flags.foreground = 1; break;
		case 'w':
			g_flags.workers = atoi(optarg);
			if (g_flags.workers < 1 || g_flags.workers > 1024) {
				fprintf(stderr, "authd: --workers takes 1 to 1024\n");
				return 2;
			}
			break;
		case 1: g_flags.debug = 1; break;
		case 2: g_flags.check = 1; break;
		case 'V': printf("authd %s\n", AUTHD_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	log_init("authd", g_flags.foreground || g_flags.check || getenv("INVOCATION_ID") != NULL, g_flags.debug);
	if (no_core_dumps() < 0)
		return 1;
	if (util_crypto_init() < 0) {
		log_msg(LOG_ERR, "OpenSSL has no SHA-256");
		return 1;
	}
	if (load_config(&g_flags, &cfg, &geo) < 0)
		return 1;
	if (g_flags.check) {
		printf("configuration OK\n");
		config_free(&cfg);
		geo_free(&geo);
		return 0;
	}
	/* Signals are taken through a signalfd in the server's I/O thread. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	pthread_mutex_init(&d.snap_mu, NULL);
	d.started = util_now();
	g_daemon = &d;
	authd_snap_set(&d, cfg, geo);
	cfg = d.snap->cfg;

	/* Bind first (may need root), then drop privileges, then open state. */
	if (server_listen(cfg->server.socket, &lfd, &lfd_bound) < 0 ||
	    drop_privileges(cfg->server.user, cfg->server.state_dir) < 0)
		goto out;
	if (mkdir(cfg->server.state_dir, 0700) != 0 && errno != EEXIST) {
		log_msg(LOG_ERR, "cannot create state dir %s: %s", cfg->server.state_dir, strerror(errno));
		goto out;
	}
	if (token_keyring_load(cfg->server.state_dir, cfg->token.alg, &d.keys, err, sizeof err) < 0 ||
	    tmpl_key_load(cfg->server.state_dir, &d.tmpl, err, sizeof err) < 0 ||
	    store_open(cfg, &d.store, err, sizeof err) < 0) {
		log_msg(LOG_ERR, "%s", err);
		goto out;
	}
	if (pruner_start(d.store, cfg->store.prune_interval, cfg->store.keep_expired, &pruner) < 0) {
		log_msg(LOG_ERR, "cannot start the store's retention thread");
		goto out;
	}
	const char *pdir = cfg->plugins.dir ? cfg->plugins.dir : AUTHD_BUILD_PLUGIN_DIR;
	if (plugin_load_dir(pdir, &plugin_host, &d.plugins) < 0) {
		log_msg(LOG_ERR, "cannot load plugins from %s", pdir);
		goto out;
	}
	for (size_t i = 0; i < d.plugins->n; i++)
		log_msg(LOG_INFO, "plugin %s loaded from %s", d.plugins->p[i].api->name, d.plugins->p[i].path);
	if (d.plugins->skipped[0])
		log_msg(LOG_WARNING, "plugins skipped: %s", d.plugins->skipped);

	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	/* A reload replaces cfg: the server keeps its own copy of what it needs. */
	char socket_path[4096];
	snprintf(socket_path, sizeof socket_path, "%s", cfg->server.socket);
	struct server_opts so = {
		.socket_path = socket_path,
		.workers = cfg->server.workers ? cfg->server.workers : (unsigned)(cores > 0 ? cores : 2) * 8,
		.max_frame = cfg->server.max_frame,
		.idle_timeout = cfg->server.idle_timeout,
		.frame_timeout = 10,
		.max_connections = cfg->server.max_connections,
		.max_inflight = 256,
		.max_per_peer = cfg->server.max_per_peer,
		.listen_fd = lfd,
		.socket_bound = lfd_bound,
		.reload = reload,
	};
	fit_fd_limit(&so);
	log_msg(LOG_INFO, "authd %s: state %s, store %s, token %s, config %s", AUTHD_VERSION, cfg->server.state_dir,
	        store_kind(d.store), cfg->token.alg, cfg->path ? cfg->path : "(built-in defaults)");
	if (server_run(&d, &so) == 0)
		rc = 0;
	lfd = -1; /* closed by server_run */
	log_msg(LOG_INFO, "stopped");
out:
	if (lfd >= 0) {
		close(lfd);
		if (lfd_bound)
			unlink(cfg->server.socket);
	}
	plugin_set_free(&d.plugins);
	pruner_stop(&pruner);
	store_close(&d.store);
	token_keyring_free(&d.keys);
	tmpl_key_free(&d.tmpl);
	struct authd_snap *s = d.snap;
	d.snap = NULL;
	authd_snap_put(&s);
	pthread_mutex_destroy(&d.snap_mu);
	util_crypto_done();
	return rc;
}
