"""The installed layout (docs/deploy/README.md) and the plugin directory checks.

    /usr/bin/python3 tests/integration/test_install.py InstallLayout    # ctest install_layout
    /usr/bin/python3 tests/integration/test_install.py PluginDir        # ctest integration_plugin_dir

InstallLayout runs `cmake --install BUILD --prefix /usr` into a temporary
DESTDIR, checks every file the deploy guide names, and starts the staged
authd on the staged plugins: the installed files must pass plugin.c's owner
and mode checks. PluginDir checks what authd does with a plugin directory
that is missing (warning, no plugins) or cannot be opened (exit 1).
"""
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest
import warnings

sys.path.insert(0, os.path.dirname(__file__))
from authd_harness import AUTHD, BUILD, SLOW, VALGRIND, Daemon, vg  # noqa: E402

warnings.simplefilter("ignore", ResourceWarning)

CMAKE = os.environ.get("AUTHD_CMAKE", "cmake")
PAMDIR = os.environ.get("AUTHD_INSTALL_PAMDIR", "lib/x86_64-linux-gnu/security")
MODELS = ("fr_detect.onnx", "fr_landmark.onnx", "fr_feature.onnx", "fr_liveness.onnx")


def health(d):
    c = d.conn()
    r = c.call("health")
    c.close()
    return r


def run_authd(tmp, conf):
    """authd with conf until it exits (startup failures); (exit status, log)."""
    path = os.path.join(tmp, "authd.conf")
    with open(path, "w") as f:
        f.write(conf)
    r = subprocess.run(vg("authd") + [AUTHD, "--state-dir", os.path.join(tmp, "state"), "--socket",
                                      os.path.join(tmp, "authd.sock"), "--foreground", "--config", path],
                       capture_output=True, text=True, timeout=120 * SLOW)
    return r.returncode, r.stdout + r.stderr


class InstallLayout(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stage = tempfile.mkdtemp(prefix="authd-stage-")
        r = subprocess.run([CMAKE, "--install", BUILD, "--prefix", "/usr"], capture_output=True, text=True,
                           env=dict(os.environ, DESTDIR=cls.stage), timeout=300)
        cls.out = r.stdout + r.stderr
        if r.returncode != 0:
            shutil.rmtree(cls.stage, ignore_errors=True)
            raise AssertionError("cmake --install failed:\n" + cls.out)
        cls.usr = os.path.join(cls.stage, "usr")
        cls.models_built = all(os.path.isfile(os.path.join(BUILD, "share/authd/models", m)) for m in MODELS)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.stage, ignore_errors=True)

    def path(self, rel):
        if rel.startswith("/"):   # an absolute install directory (AUTHD_INSTALL_PAMDIR=/lib/...)
            return self.stage + rel
        return os.path.join(self.usr, rel)

    def test_files(self):
        for rel in ("sbin/authd", "bin/authctl", "lib/authd/plugins/fido2.so", "include/authd_client.h",
                    PAMDIR + "/pam_authd.so", "share/authd/authd.conf",
                    "share/doc/authd/security.md", "share/doc/authd/deploy/authd.service"):
            self.assertTrue(os.path.isfile(self.path(rel)), rel + " not installed:\n" + self.out)
        for rel in ("sbin/authd", "bin/authctl"):
            self.assertTrue(os.access(self.path(rel), os.X_OK), rel)
        libdir = [d for d in ("lib", "lib/x86_64-linux-gnu")
                  if os.path.isfile(self.path(d + "/libauthd-client.so.1"))]
        self.assertTrue(libdir, "libauthd-client.so.1 not installed:\n" + self.out)
        self.assertTrue(os.path.islink(self.path(libdir[0] + "/libauthd-client.so")))
        if os.path.isfile(os.path.join(BUILD, "lib/authd/plugins/face.so")):
            self.assertTrue(os.path.isfile(self.path("lib/authd/plugins/face.so")))
        if os.path.isfile(os.path.join(BUILD, "bin/authd-capture")):
            self.assertTrue(os.path.isfile(self.path("libexec/authd/authd-capture")))

    def test_plugin_modes(self):
        """What plugin.c's safe_file demands, and a directory nobody else can write."""
        d = self.path("lib/authd/plugins")
        for p in [d] + [os.path.join(d, n) for n in os.listdir(d)]:
            st = os.stat(p)
            self.assertEqual(st.st_mode & (stat.S_IWGRP | stat.S_IWOTH), 0, p)
            self.assertIn(st.st_uid, (0, os.geteuid()), p)

    def test_models(self):
        for m in MODELS:
            self.assertEqual(os.path.isfile(self.path("share/authd/models/" + m)), self.models_built, m)
        if not self.models_built:
            out = " ".join(self.out.split())   # cmake wraps warnings
            self.assertIn("fetch-models.sh " + self.stage + "/usr/share/authd/models", out)

    def test_config_names_installed_dirs(self):
        with open(self.path("share/authd/authd.conf")) as f:
            conf = f.read()
        self.assertIn("\ndir = /usr/lib/authd/plugins\n", conf)
        self.assertIn("\nmodels_dir = /usr/share/authd/models\n", conf)
        r = subprocess.run(vg("authd") + [self.path("sbin/authd"), "--config", self.path("share/authd/authd.conf"),
                                          "--check-config"], capture_output=True, text=True, timeout=60 * SLOW)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("configuration OK", r.stdout + r.stderr)

    @unittest.skipIf(VALGRIND, "the staged binary is not the one valgrind.sh checks")
    def test_installed_daemon_loads_installed_plugins(self):
        """The staged authd with the installed config, its /usr paths pointed into the stage."""
        with open(self.path("share/authd/authd.conf")) as f:
            conf = f.read().replace("= /usr/", "= " + self.usr + "/")
        d = Daemon(conf, launch=["/bin/sh", "-c", 'shift; exec "$0" "$@"', self.path("sbin/authd")])
        try:
            d.start()
            r = health(d)
            self.assertTrue(r["ok"], r)
            want = {"fido2", "face"} if self.models_built else {"fido2"}
            self.assertTrue(want <= set(r["plugins"]), (r, d.log_text()))
            self.assertIn("plugin fido2 loaded from " + self.path("lib/authd/plugins/fido2.so"), d.log_text())
        finally:
            d.cleanup()


class PluginDir(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="authd-plugdir-")
        os.chmod(self.tmp, 0o755)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_missing_dir_warns_and_starts(self):
        missing = os.path.join(self.tmp, "no-such-dir")
        d = Daemon("[plugins]\ndir = %s\n" % missing)
        try:
            d.start()
            self.assertEqual(health(d)["plugins"], [])
            self.assertIn("plugin directory %s does not exist: no authenticator plugins loaded" % missing,
                          d.log_text())
        finally:
            d.cleanup()

    def test_not_a_directory_stops_startup(self):
        f = os.path.join(self.tmp, "plugins")
        open(f, "w").close()
        rc, log = run_authd(self.tmp, "[plugins]\ndir = %s\n" % f)
        self.assertEqual(rc, 1, log)
        self.assertIn("plugin directory %s cannot be opened: Not a directory" % f, log)
        self.assertIn("cannot load plugins from %s" % f, log)

    def test_unreadable_dir_stops_startup(self):
        """The ProtectHome= case: the directory exists, the daemon's user cannot open it."""
        home = os.path.join(self.tmp, "home")   # a private home: 0700, not the daemon's
        plugins = os.path.join(home, "plugins")
        os.makedirs(plugins)
        shutil.copy(os.path.join(BUILD, "lib/authd/plugins/fido2.so"), plugins)
        os.chmod(home, 0o700)
        conf = "[plugins]\ndir = %s\n" % plugins
        if os.geteuid() == 0:
            # root opens anything: run as nobody ([server] user), which cannot enter home.
            try:
                nobody = pwd.getpwnam("nobody")
            except KeyError:
                self.skipTest("no user nobody to drop to")
            state = os.path.join(self.tmp, "state")
            os.mkdir(state, 0o700)
            os.chown(state, nobody.pw_uid, nobody.pw_gid)
            conf = "[server]\nuser = nobody\n" + conf
        else:
            os.chmod(home, 0o000)
        try:
            rc, log = run_authd(self.tmp, conf)
        finally:
            os.chmod(home, 0o700)
        self.assertEqual(rc, 1, log)
        self.assertIn("plugin directory %s cannot be opened: Permission denied" % plugins, log)
        self.assertNotIn("listening on", log)


if __name__ == "__main__":
    unittest.main()
