"""pam_authd.so against a real authd, through real libpam, without root.

cwrap's pam_wrapper (LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1
PAM_WRAPPER_SERVICE_DIR=DIR) makes libpam read service files from a temp
directory; pamtester drives pam_authenticate / pam_acct_mgmt. The face
source is a file (face_source=file:PATH) from ../shared/faces/dev.

FIDO2 logins use the soft CTAPHID security key of tests/softkey
(build/lib/libsoftdev_preload.so, state in a file): preloaded into
`authctl staff enroll-fido2` to register it and into pamtester to log in,
so the module's unmodified libfido2 calls (fido_dev_info_manifest,
fido_dev_get_assert) talk to it.

Four-eyes tests run two staff members as two uids (daemon=1, bin=2) and so
need root, as CI has; they skip otherwise.
"""
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import warnings

sys.path.insert(0, os.path.dirname(__file__))
from authd_harness import BUILD, SLOW, Conn, Daemon, authctl_cmd, vg  # noqa: E402

warnings.simplefilter("ignore", ResourceWarning)
FACES = os.environ.get("AUTHD_FACES_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared",
                                                       "faces", "dev"))
MODULE = os.path.abspath(os.path.join(BUILD, "lib", "security", "pam_authd.so"))
SOFTDEV = os.path.abspath(os.path.join(BUILD, "lib", "libsoftdev_preload.so"))
RP_ID = "pam://authd-test"

# pam_strerror() texts pamtester prints for each code.
MSG = {
    "AUTH_ERR": "Authentication failure",
    "MAXTRIES": "Have exhausted maximum number of retries for service",
    "USER_UNKNOWN": "User not known to the underlying authentication module",
    "AUTHINFO_UNAVAIL": "Authentication service cannot retrieve authentication info",
    "ABORT": "Critical error - immediate abort",
    "PERM_DENIED": "Permission denied",
}

# 203.0.113.0/24 abroad, 198.51.100.0/24 at home: a tiny RIR delegated-statistics file.
RIR = ("2|test|20240101|2|19700101|20240101|+0000\n"
       "arin|US|ipv4|203.0.113.0|256|20100101|allocated\n"
       "apnic|VN|ipv4|198.51.100.0|256|20100101|allocated\n")


def find_lib(name):
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"):
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    return None


def asan_runtime():
    """With an ASan build the module needs libasan loaded first in pamtester."""
    try:
        out = subprocess.run(["ldd", MODULE], capture_output=True, text=True).stdout
    except OSError:
        return None
    for line in out.splitlines():
        if "libasan" in line and "=>" in line:
            return line.split("=>")[1].split()[0]
    return None


def tmo(seconds):
    """A PAM module timeout= value; under valgrind scaled, and long enough for a face verification."""
    if SLOW > 1:
        seconds = max(seconds * SLOW, 120)
    return max(1, min(600, int(seconds)))


def subdir(tmp):
    d = os.path.join(tmp, "d")
    os.makedirs(d, exist_ok=True)
    return d


def audit(d, **what):
    c = d.conn()
    r = c.call("audit_export", **what)
    c.close()
    assert r["ok"], r
    return r["records"]


def stop_clean(test, d):
    """Stops authd and fails the test on a non-zero exit or a sanitizer report in its log."""
    rc = d.stop()
    with open(d.log, errors="replace") as f:
        log = f.read()
    for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
        test.assertNotIn(bad, log, log[-4000:])
    test.assertEqual(rc, 0, log[-2000:])


def face(name):
    return os.path.join(FACES, name)


class PamEnv:
    """A pam_wrapper service directory and pamtester runs against it."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "pam.d")
        os.makedirs(self.dir, exist_ok=True)
        self.wrapper = find_lib("libpam_wrapper.so")
        pre = [self.wrapper]
        asan = asan_runtime()
        if asan:
            pre.insert(0, asan)
        self.env = dict(os.environ, LD_PRELOAD=":".join(pre), PAM_WRAPPER="1", PAM_WRAPPER_SERVICE_DIR=self.dir)
        if asan:
            # pamtester itself is not instrumented; leaks in libpam are not ours.
            self.env["ASAN_OPTIONS"] = "detect_leaks=0"

    def service(self, name, args, account_args=None):
        assert name == name.lower(), "libpam lower-cases service names"
        with open(os.path.join(self.dir, name), "w") as f:
            f.write("auth required %s %s\n" % (MODULE, args))
            f.write("account required %s %s\n" % (MODULE, account_args if account_args is not None else args))
        return name

    def pamtester(self, service, user, op="authenticate", items=(), timeout=60):
        timeout *= SLOW
        cmd = vg("pamtester", children=True) + ["pamtester", "-v"]
        for it in items:
            cmd += ["-I", it]
        cmd += [service, user, op]
        t0 = time.monotonic()
        p = subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=timeout, stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout + p.stderr, time.monotonic() - t0


@unittest.skipUnless(shutil.which("pamtester") and find_lib("libpam_wrapper.so"), "needs pamtester and pam_wrapper")
class TestPamFace(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="authd-pam-")
        os.chmod(cls.tmp, 0o755)
        rir = os.path.join(cls.tmp, "rir.txt")
        with open(rir, "w") as f:
            f.write(RIR)
        cls.d = Daemon("[policy]\nnew_device = off\nlockout_after = 3\n[geo]\nrir_file = %s\n[pam]\nrp_id = %s\n"
                       % (rir, RP_ID), tmp=subdir(cls.tmp)).start()
        try:
            cls.pam = PamEnv(cls.tmp)
            for user, imgs in (("alice", ["obama_1.jpg", "obama_3.jpg"]), ("bob", ["biden_1.jpg"]),
                               ("carol", ["leslie_1.jpg"])):
                r = cls.d.authctl("staff", "enroll-face", "--user", user, *[face(i) for i in imgs])
                assert r.returncode == 0, r.stderr + r.stdout
        except BaseException:
            cls.d.cleanup()
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            stop_clean(unittest.TestCase(), cls.d)
        finally:
            cls.d.cleanup()
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def svc(self, name, img, extra=""):
        return self.pam.service(name, "socket=%s methods=face face_source=file:%s timeout=%d %s"
                                % (self.d.sock, face(img), tmo(20), extra))

    def audit(self, subject):
        return audit(self.d, customer=subject)

    def test_face_approved(self):
        rc, out, _ = self.pam.pamtester(self.svc("face-ok", "obama_2.jpg"), "alice",
                                        items=("rhost=198.51.100.7", "tty=pts/3"))
        self.assertEqual(rc, 0, out)
        self.assertIn("successfully authenticated", out)
        recs = [r for r in self.audit("staff:alice") if r["type"] == "login_verify"]
        self.assertEqual(recs[-1]["result"], "approved")
        self.assertEqual(recs[-1]["method"], "face")

    def test_camera_source_through_helper(self):
        # A stand-in for authd-capture: the module runs it and reads one image from its stdout.
        cam = os.path.join(self.tmp, "fakecam.sh")
        with open(cam, "w") as f:
            f.write("#!/bin/sh\n[ \"$1\" = --camera ] && [ \"$2\" = 2 ] || exit 1\nexec cat '%s'\n"
                    % face("obama_2.jpg"))
        os.chmod(cam, 0o755)
        svc = self.pam.service("camera-ok", "socket=%s methods=face face_source=camera:2 capture=%s cue timeout=%d"
                               % (self.d.sock, cam, tmo(30)))
        rc, out, _ = self.pam.pamtester(svc, "alice")
        self.assertEqual(rc, 0, out)
        self.assertIn("Please look at the camera.", out)
        # No camera: the real helper fails, so there is no proof and no success.
        helper = os.path.join(BUILD, "bin", "authd-capture")
        if os.path.exists(helper):
            svc = self.pam.service("camera-none", "socket=%s methods=face face_source=camera:63 capture=%s timeout=%d"
                                   % (self.d.sock, os.path.abspath(helper), tmo(3)))
            rc, out, _ = self.pam.pamtester(svc, "alice")
            self.assertNotEqual(rc, 0)
            self.assertIn(MSG["AUTH_ERR"], out)

    def test_face_wrong_person_rejected(self):
        rc, out, _ = self.pam.pamtester(self.svc("face-wrong", "biden_2.jpg"), "carol")
        self.assertNotEqual(rc, 0)
        self.assertIn(MSG["AUTH_ERR"], out)

    def test_lockout_gives_maxtries(self):
        svc = self.svc("face-lock", "obama_2.jpg")
        rc, out, _ = self.pam.pamtester(svc, "bob")                  # obama is not bob: 1st failure
        self.assertIn(MSG["AUTH_ERR"], out)
        rc, out, _ = self.pam.pamtester(svc, "bob")                  # 2nd
        self.assertIn(MSG["AUTH_ERR"], out)
        rc, out, _ = self.pam.pamtester(svc, "bob")                  # 3rd reaches lockout_after = 3
        self.assertIn(MSG["MAXTRIES"], out)
        ok = self.svc("face-lock-ok", "biden_2.jpg")
        rc, out, _ = self.pam.pamtester(ok, "bob")                   # even the right face: locked
        self.assertNotEqual(rc, 0)
        self.assertIn(MSG["MAXTRIES"], out)
        rc, out, _ = self.pam.pamtester(ok, "bob", op="acct_mgmt")   # account: denied while locked
        self.assertNotEqual(rc, 0)
        self.assertIn(MSG["PERM_DENIED"], out)
        self.assertEqual(self.d.authctl("unlock", "staff:bob").returncode, 0)
        rc, out, _ = self.pam.pamtester(ok, "bob")
        self.assertEqual(rc, 0, out)

    def test_unknown_user(self):
        rc, out, _ = self.pam.pamtester(self.svc("face-unknown", "obama_2.jpg"), "mallory")
        self.assertNotEqual(rc, 0)
        self.assertIn(MSG["USER_UNKNOWN"], out)
        rc, out, _ = self.pam.pamtester(self.svc("face-unknown-acct", "obama_2.jpg"), "mallory", op="acct_mgmt")
        self.assertIn(MSG["USER_UNKNOWN"], out)

    def test_nouserok_passes_only_unenrolled(self):
        svc = self.svc("face-nouserok", "obama_2.jpg", "nouserok")
        rc, out, _ = self.pam.pamtester(svc, "mallory")
        self.assertEqual(rc, 0, out)
        rc, out, _ = self.pam.pamtester(self.svc("face-nouserok-wrong", "biden_2.jpg", "nouserok"), "carol")
        self.assertIn(MSG["AUTH_ERR"], out)                       # enrolled users still have to pass

    def test_account_frozen_staff_denied(self):
        svc = self.svc("face-acct", "obama_2.jpg")
        rc, out, _ = self.pam.pamtester(svc, "alice", op="acct_mgmt")
        self.assertEqual(rc, 0, out)
        self.assertEqual(self.d.authctl("freeze", "staff:alice", "--reason", "investigation").returncode, 0)
        try:
            rc, out, _ = self.pam.pamtester(svc, "alice", op="acct_mgmt")
            self.assertIn(MSG["PERM_DENIED"], out)
            rc, out, _ = self.pam.pamtester(svc, "alice")
            self.assertIn(MSG["AUTH_ERR"], out)
        finally:
            self.assertEqual(self.d.authctl("unfreeze", "staff:alice").returncode, 0)

    def test_frozen_between_begin_and_verify_no_login(self):
        """A staff member frozen after login_begin: login_verify with a matching face is rejected
        (staff_frozen), the challenge dies, and the staff lockout counter does not move."""
        c = self.d.conn()
        try:
            r = c.call("login_begin", user="alice", service="sshd")
            self.assertEqual(r.get("result"), "step_up", r)
            self.assertEqual(self.d.authctl("freeze", "staff:alice", "--reason", "investigation").returncode, 0)
            with open(face("obama_2.jpg"), "rb") as f:
                img = base64.urlsafe_b64encode(f.read()).rstrip(b"=").decode()
            try:
                v = c.call("login_verify", challenge_id=r["challenge"]["id"], method="face", face={"images": [img]})
                self.assertEqual((v.get("result"), v.get("reasons"), v.get("attempts_left")),
                                 ("rejected", ["staff_frozen"], 0), v)
                v = c.call("login_verify", challenge_id=r["challenge"]["id"], method="face", face={"images": [img]})
                self.assertEqual(v["error"]["code"], "expired", v)
            finally:
                self.assertEqual(self.d.authctl("unfreeze", "staff:alice").returncode, 0)
        finally:
            c.close()
        rc, out, _ = self.pam.pamtester(self.svc("face-after-thaw", "obama_2.jpg"), "alice")
        self.assertEqual(rc, 0, out)

    def test_overseas_login_flagged_in_audit(self):
        rc, out, _ = self.pam.pamtester(self.svc("face-abroad", "obama_2.jpg"), "alice",
                                        items=("rhost=203.0.113.9", "tty=pts/7"))
        self.assertEqual(rc, 0, out)
        begins = [r for r in self.audit("staff:alice") if r["type"] == "login_begin"]
        rsn = begins[-1]["reasons"]
        self.assertIn("overseas", rsn)
        self.assertIn("country:US", rsn)
        self.assertIn("rhost:203.0.113.9", rsn)
        self.assertIn("service:face-abroad", rsn)
        self.assertIn("tty:pts/7", rsn)

    def test_garbage_arguments_abort_never_succeed(self):
        good = "socket=%s methods=face face_source=file:%s" % (self.d.sock, face("obama_2.jpg"))
        for i, extra in enumerate(["bogus", "timeout=abc", "timeout=0", "methods=fido2,sms", "methods=",
                                   "face_source=webcam", "face_source=file:relative.jpg", "socket=relative",
                                   "cue=yes", "debug debug", "alwaysok", "nouserok=1", "methods=face,face"]):
            svc = self.pam.service("garbage-%d" % i, good + " " + extra)
            rc, out, _ = self.pam.pamtester(svc, "alice")
            self.assertNotEqual(rc, 0, extra)
            self.assertIn(MSG["ABORT"], out, extra)
            rc, out, _ = self.pam.pamtester(svc, "alice", op="acct_mgmt")
            self.assertNotEqual(rc, 0, extra)

    def test_authd_down_fails_closed(self):
        svc = self.pam.service("down", "socket=%s/nothing.sock methods=face face_source=file:%s timeout=3"
                               % (self.tmp, face("obama_2.jpg")))
        rc, out, _ = self.pam.pamtester(svc, "alice")
        self.assertNotEqual(rc, 0)
        self.assertIn(MSG["AUTHINFO_UNAVAIL"], out)
        rc, out, _ = self.pam.pamtester(svc, "alice", op="acct_mgmt")
        self.assertNotEqual(rc, 0)
        self.assertIn(MSG["AUTHINFO_UNAVAIL"], out)

    def test_authd_hanging_times_out(self):
        path = os.path.join(self.tmp, "hang.sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(8)
        held, stop = [], threading.Event()

        def accept():
            srv.settimeout(0.2)
            while not stop.is_set():
                try:
                    held.append(srv.accept()[0])      # accept, read nothing, answer nothing
                except socket.timeout:
                    pass
        t = threading.Thread(target=accept, daemon=True)
        t.start()
        try:
            svc = self.pam.service("hang", "socket=%s methods=face face_source=file:%s timeout=2"
                                   % (path, face("obama_2.jpg")))
            rc, out, elapsed = self.pam.pamtester(svc, "alice", timeout=30)
            self.assertNotEqual(rc, 0)
            self.assertIn(MSG["AUTHINFO_UNAVAIL"], out)
            self.assertGreaterEqual(elapsed, 1.5)
            self.assertLess(elapsed, 10 * SLOW, "timeout=2 not honoured")
        finally:
            stop.set()
            t.join()
            for c in held:
                c.close()
            srv.close()


@unittest.skipUnless(shutil.which("pamtester") and find_lib("libpam_wrapper.so"), "needs pamtester and pam_wrapper")
class TestPamStopped(unittest.TestCase):
    """The module fails closed when the daemon it was using goes away."""

    def test_daemon_stopped(self):
        tmp = tempfile.mkdtemp(prefix="authd-pam-")
        os.chmod(tmp, 0o755)
        d = Daemon("[policy]\nnew_device = off\n", tmp=subdir(tmp)).start()
        try:
            self.assertEqual(d.authctl("staff", "enroll-face", "--user", "alice", face("obama_1.jpg")).returncode, 0)
            pam = PamEnv(tmp)
            svc = pam.service("stop", "socket=%s methods=face face_source=file:%s timeout=%d"
                              % (d.sock, face("obama_2.jpg"), tmo(3)))
            rc, out, _ = pam.pamtester(svc, "alice")
            self.assertEqual(rc, 0, out)
            d.stop()
            rc, out, _ = pam.pamtester(svc, "alice")
            self.assertNotEqual(rc, 0)
            self.assertIn(MSG["AUTHINFO_UNAVAIL"], out)
        finally:
            d.cleanup()
            shutil.rmtree(tmp, ignore_errors=True)


@unittest.skipUnless(os.path.exists(SOFTDEV) and shutil.which("pamtester") and find_lib("libpam_wrapper.so"),
                     "needs build/lib/libsoftdev_preload.so (tests/softkey), pamtester and pam_wrapper")
class TestPamFido2(unittest.TestCase):
    """FIDO2 through libfido2: the soft CTAPHID key of tests/softkey, preloaded into authctl and pamtester."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="authd-pam-")
        os.chmod(self.tmp, 0o755)
        self.d = Daemon("[policy]\nnew_device = off\nlockout_after = 3\n[pam]\nrp_id = %s\n" % RP_ID,
                        tmp=subdir(self.tmp)).start()
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.addCleanup(self.d.cleanup)          # also when setUp fails half-way
        self.pam = PamEnv(self.tmp)

    def tearDown(self):
        try:
            stop_clean(self, self.d)
        finally:
            self.d.cleanup()
            shutil.rmtree(self.tmp, ignore_errors=True)

    def key_env(self, key, base):
        env = dict(base, AUTHD_SOFTDEV_STATE=os.path.join(self.tmp, key + ".json"))
        pre = [p for p in env.get("LD_PRELOAD", "").split(":") if p]
        env["LD_PRELOAD"] = ":".join(pre + [SOFTDEV])
        return env

    def enroll(self, user, key):
        env = self.key_env(key, dict(os.environ))
        asan = asan_runtime()
        if asan:
            env["LD_PRELOAD"] = asan + ":" + env["LD_PRELOAD"]
        p = subprocess.run(authctl_cmd() + ["--socket", self.d.sock, "staff", "enroll-fido2", "--user", user],
                           capture_output=True, text=True, env=env, timeout=60 * SLOW)
        self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
        self.assertIn("enrolled staff:%s fido2 credential" % user, p.stdout)

    def login(self, user, key, extra=""):
        svc = self.pam.service("fido2-" + key.lower(), "socket=%s methods=fido2 timeout=%d cue %s"
                               % (self.d.sock, tmo(5), extra))
        saved = self.pam.env
        self.pam.env = self.key_env(key, saved)
        try:
            return self.pam.pamtester(svc, user)
        finally:
            self.pam.env = saved

    def test_fido2_login_with_any_enrolled_key(self):
        self.enroll("dave", "keyA")
        self.enroll("dave", "keyB")                                 # several keys per user
        rc, out, _ = self.login("dave", "keyA")
        self.assertEqual(rc, 0, out)
        self.assertIn("Please touch your security key.", out)      # the cue
        rc, out, _ = self.login("dave", "keyB", "[cue_prompt=Touch the bank key now]")
        self.assertEqual(rc, 0, out)
        self.assertIn("Touch the bank key now", out)
        rc, out, _ = self.login("dave", "keyA")                     # signCount moves on; still fine
        self.assertEqual(rc, 0, out)
        recs = [r for r in audit(self.d, customer="staff:dave") if r["type"] == "login_verify"]
        self.assertEqual([r["result"] for r in recs], ["approved"] * 3)
        self.assertTrue(all(r["method"] == "fido2" for r in recs))
        self.assertTrue(recs[-1]["jti"])

    def test_unenrolled_key_refused(self):
        self.enroll("erin", "keyA")
        rc, out, _ = self.login("erin", "keyC")                     # a key erin never registered
        self.assertNotEqual(rc, 0)
        self.assertIn(MSG["AUTH_ERR"], out)
        rc, out, _ = self.login("erin", "keyA", "rp_id=pam://elsewhere")   # module pinned to another rp_id
        self.assertNotEqual(rc, 0)
        rc, out, _ = self.login("frank", "keyA")                    # nothing enrolled for frank
        self.assertIn(MSG["USER_UNKNOWN"], out)

    def nouserok(self, user, key, op="authenticate"):
        svc = self.pam.service("nouserok-" + key.lower(), "socket=%s methods=fido2 timeout=%d nouserok"
                               % (self.d.sock, tmo(5)))
        saved = self.pam.env
        self.pam.env = self.key_env(key, saved)
        try:
            return self.pam.pamtester(svc, user, op=op)
        finally:
            self.pam.env = saved

    def test_nouserok_revoked_key_still_fails(self):
        self.enroll("ivan", "keyA")
        rc, out, _ = self.nouserok("ivan", "keyA")
        self.assertEqual(rc, 0, out)
        c = self.d.conn()
        cred = [x for x in c.call("list_credentials", customer="staff:ivan")["credentials"] if x["method"] == "fido2"]
        self.assertEqual(len(cred), 1)
        r = c.call("revoke_credential", customer="staff:ivan", credential_id=cred[0]["credential_id"])
        c.close()
        self.assertTrue(r["ok"], r)
        # His only key revoked: not "unknown" to authd, so nouserok does not let him through.
        rc, out, _ = self.nouserok("ivan", "keyA")
        self.assertNotEqual(rc, 0, out)
        self.assertIn(MSG["AUTH_ERR"], out)
        rc, out, _ = self.nouserok("ivan", "keyA", op="acct_mgmt")
        self.assertNotEqual(rc, 0, out)
        self.assertIn(MSG["PERM_DENIED"], out)
        begins = [r for r in audit(self.d, customer="staff:ivan") if r["type"] == "login_begin"]
        self.assertEqual(begins[-1]["result"], "deny")
        self.assertIn("no_active_credential", begins[-1]["reasons"])
        # Someone authd never enrolled still passes with nouserok (auth and account).
        rc, out, _ = self.nouserok("judy", "keyA")
        self.assertEqual(rc, 0, out)
        rc, out, _ = self.nouserok("judy", "keyA", op="acct_mgmt")
        self.assertEqual(rc, 0, out)

    def test_nouserok_plugin_missing_fails_closed(self):
        self.enroll("kim", "keyA")
        self.d.stop()
        empty = os.path.join(self.tmp, "no-plugins")
        os.makedirs(empty)
        # The same state, restarted with no plugin loaded: kim's key cannot be checked.
        self.d = Daemon("[policy]\nnew_device = off\n[pam]\nrp_id = %s\n[plugins]\ndir = %s\n" % (RP_ID, empty),
                        tmp=subdir(self.tmp)).start()
        rc, out, _ = self.nouserok("kim", "keyA")
        self.assertNotEqual(rc, 0, out)
        self.assertIn(MSG["AUTHINFO_UNAVAIL"], out)
        c = self.d.conn()
        r = c.call("login_begin", user="kim")
        c.close()
        self.assertEqual(r["error"]["code"], "unavailable", r)
        self.assertIn("plugin_missing:fido2", r["error"]["message"])


def cbor(v):
    """The little CBOR a "none" attestation needs: ints, bytes, text, maps."""
    def head(major, n):
        if n < 24:
            return bytes([major << 5 | n])
        for ai, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
            if n < 1 << (8 * size):
                return bytes([major << 5 | ai]) + n.to_bytes(size, "big")
        raise ValueError(n)
    if isinstance(v, int):
        return head(0, v) if v >= 0 else head(1, -1 - v)
    if isinstance(v, bytes):
        return head(2, len(v)) + v
    if isinstance(v, str):
        return head(3, len(v.encode())) + v.encode()
    if isinstance(v, dict):
        return head(5, len(v)) + b"".join(cbor(k) + cbor(x) for k, x in v.items())
    raise TypeError(type(v))


def staff_registration(challenge, rp_id):
    """A valid FIDO2 registration ("none" attestation, P-256) for a staff enrollment's challenge."""
    import base64
    import hashlib
    from cryptography.hazmat.primitives.asymmetric import ec

    def b64u(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    n = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    cose = cbor({1: 2, 3: -7, -1: 1, -2: n.x.to_bytes(32, "big"), -3: n.y.to_bytes(32, "big")})
    cred_id = os.urandom(32)
    ad = (hashlib.sha256(rp_id.encode()).digest() + bytes([0x45]) + (1).to_bytes(4, "big") + bytes(16)
          + len(cred_id).to_bytes(2, "big") + cred_id + cose)
    cd = json.dumps({"type": "webauthn.create", "challenge": challenge, "origin": rp_id, "crossOrigin": False},
                    separators=(",", ":")).encode()
    att = cbor({"fmt": "none", "attStmt": {}, "authData": ad})
    return {"credential_id": b64u(cred_id), "client_data_json": b64u(cd), "attestation_object": b64u(att)}


def as_uid(sock, uid, op, **fields):
    """One request from a forked child running as uid (needs root)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.setgid(uid)
            os.setuid(uid)
            c = Conn(sock)
            out = c.call(op, **fields)
            c.close()
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.waitpid(pid, 0)
    return json.loads(data) if data else None


@unittest.skipUnless(os.geteuid() == 0, "four-eyes needs two uids: run as root (CI does)")
@unittest.skipUnless(shutil.which("pamtester") and find_lib("libpam_wrapper.so"), "needs pamtester and pam_wrapper")
class TestFourEyes(unittest.TestCase):
    """Staff 'daemon' (uid 1) and 'bin' (uid 2) are admins, 'sys' (uid 3) a client only; authd runs as root."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="authd-4eyes-")
        os.chmod(self.tmp, 0o755)
        self.d = Daemon("[server]\nclients = 0, 3\nadmins = 0, 1, 2\n[policy]\nnew_device = off\n"
                        "[admin]\nstepup_window = 300\n", tmp=subdir(self.tmp)).start()
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.addCleanup(self.d.cleanup)          # also when setUp fails half-way
        self.pam = PamEnv(self.tmp)
        # The service account (root here) bootstraps staff enrollments directly.
        for user, img in (("daemon", "obama_1.jpg"), ("bin", "biden_1.jpg")):
            r = self.d.authctl("staff", "enroll-face", "--user", user, face(img))
            self.assertEqual(r.returncode, 0, r.stderr)
        c = self.d.conn()
        self.assertTrue(c.call("freeze", account="0123456789", reason="suspected mule")["ok"])
        c.close()

    def tearDown(self):
        try:
            stop_clean(self, self.d)
        finally:
            self.d.cleanup()
            shutil.rmtree(self.tmp, ignore_errors=True)

    def step_up(self, user, img):
        svc = self.pam.service("stepup-" + user, "socket=%s methods=face face_source=file:%s timeout=%d"
                               % (self.d.sock, face(img), tmo(20)))
        rc, out, _ = self.pam.pamtester(svc, user)
        self.assertEqual(rc, 0, out)

    def frozen(self):
        c = self.d.conn()
        r = c.call("policy_explain", txn={
            "id": "T-4E", "customer": "C-42", "account": "0123456789", "account_type": "personal",
            "account_opened": 1700000000, "amount": 1000, "currency": "VND",
            "payee": {"account": "9876543210", "bank": "VCB", "name": "x"}, "channel": "internet_banking",
            "src_ip": "198.51.100.7", "device_id": "dev-7", "risk_flag": False})
        c.close()
        return r["result"] == "deny"

    def test_same_staff_cannot_approve_own_action_second_can(self):
        r = as_uid(self.d.sock, 1, "unfreeze", account="0123456789", reason="customer called")
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["result"], "pending")
        pid = r["pending_id"]
        self.assertTrue(self.frozen(), "a pending unfreeze must not run")
        self.step_up("daemon", "obama_2.jpg")
        r = as_uid(self.d.sock, 1, "approve", id=pid)                # the proposer, even after step-up
        self.assertFalse(r["ok"])
        self.assertEqual(r["error"]["code"], "unauthorized")
        self.assertIn("own", r["error"]["message"])
        r = as_uid(self.d.sock, 2, "approve", id=pid)                # second person, no step-up yet
        self.assertFalse(r["ok"])
        self.assertIn("step-up", r["error"]["message"])
        self.assertTrue(self.frozen())
        r = as_uid(self.d.sock, 2, "pending_show", id=pid)           # what the approver is shown
        self.assertEqual(r["op"], "unfreeze")
        self.assertEqual(r["request"]["account"], "0123456789")
        self.assertEqual(r["proposer"], "daemon")
        self.step_up("bin", "biden_2.jpg")
        r = as_uid(self.d.sock, 2, "approve", id=pid)
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["result"], "executed")
        self.assertFalse(self.frozen())
        r = as_uid(self.d.sock, 2, "approve", id=pid)                # runs once
        self.assertEqual(r["error"]["code"], "expired")
        recs = audit(self.d, account="0123456789")
        kinds = [(x["type"], x["result"]) for x in recs]
        self.assertIn(("four_eyes_request", "pending"), kinds)
        self.assertIn(("four_eyes_approve", "refused"), kinds)
        self.assertIn(("four_eyes_approve", "approved"), kinds)
        unf = [x for x in recs if x["type"] == "unfreeze"]
        self.assertEqual(unf[-1]["actor"], "uid:1+uid:2")
        self.assertEqual(self.d.authctl("audit", "verify").returncode, 0)

    def test_staff_key_enrollment_pending_until_approved(self):
        if not os.path.exists(SOFTDEV):
            self.skipTest("needs build/lib/libsoftdev_preload.so")
        keydir = os.path.join(self.tmp, "keys")
        os.makedirs(keydir)
        os.chmod(keydir, 0o777)
        state = os.path.join(keydir, "bin.json")
        pre = [SOFTDEV]
        if asan_runtime():
            pre.insert(0, asan_runtime())
        env = dict(os.environ, AUTHD_SOFTDEV_STATE=state, LD_PRELOAD=":".join(pre))
        p = subprocess.run(authctl_cmd() + ["--socket", self.d.sock, "staff", "enroll-fido2", "--user", "bin"],
                           user=2, group=2, env=env, capture_output=True, text=True, timeout=60 * SLOW)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)      # bin may not add their own key alone
        m = re.search(r"pending action (pa_[A-Za-z0-9_-]+)", p.stderr)
        self.assertTrue(m, p.stderr)
        login = self.pam.service("f2-bin", "socket=%s methods=fido2 timeout=%d" % (self.d.sock, tmo(5)))
        penv = dict(self.pam.env, AUTHD_SOFTDEV_STATE=state, LD_PRELOAD=self.pam.env["LD_PRELOAD"] + ":" + SOFTDEV)
        saved, self.pam.env = self.pam.env, penv
        try:
            rc, out, _ = self.pam.pamtester(login, "bin")
            self.assertNotEqual(rc, 0, out)                            # not enrolled yet
            self.step_up_env(saved, "daemon", "obama_2.jpg")
            r = as_uid(self.d.sock, 1, "approve", id=m.group(1))
            self.assertTrue(r["ok"], r)
            self.assertEqual(r["reply"]["result"], "enrolled")
            rc, out, _ = self.pam.pamtester(login, "bin")
            self.assertEqual(rc, 0, out)
        finally:
            self.pam.env = saved

    def step_up_env(self, env, user, img):
        saved, self.pam.env = self.pam.env, env
        try:
            self.step_up(user, img)
        finally:
            self.pam.env = saved

    def creds(self, subject):
        c = self.d.conn()
        out = c.call("list_credentials", customer=subject)["credentials"]
        c.close()
        return out

    def test_staff_key_enrollment_finished_only_by_the_admin_who_began_it(self):
        b = as_uid(self.d.sock, 1, "enroll_fido2_begin", staff="bin")
        self.assertTrue(b["ok"], b)
        reg = b["registration"]
        fin = dict(enrollment_id=b["enrollment_id"], fido2=staff_registration(reg["challenge"], reg["rp"]["id"]))
        r = as_uid(self.d.sock, 3, "enroll_fido2_finish", **fin)      # a client-only peer
        self.assertFalse(r["ok"], r)
        self.assertEqual(r["error"]["code"], "unauthorized", r)
        r = as_uid(self.d.sock, 2, "enroll_fido2_finish", **fin)      # an admin, but not the one who began it
        self.assertEqual(r["error"]["code"], "unauthorized", r)
        self.assertEqual([x["method"] for x in self.creds("staff:bin")], ["face"])
        r = as_uid(self.d.sock, 1, "enroll_fido2_finish", **fin)      # its owner: four-eyes, as for any admin
        self.assertEqual(r.get("result"), "pending", r)
        self.assertEqual([x["method"] for x in self.creds("staff:bin")], ["face"])
        self.step_up("bin", "biden_2.jpg")                            # the registration itself was good
        r = as_uid(self.d.sock, 2, "approve", id=r["pending_id"])
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["reply"]["result"], "enrolled", r)
        self.assertEqual(sorted(x["method"] for x in self.creds("staff:bin")), ["face", "fido2", "stepup"])

    def test_frozen_approver_cannot_approve(self):
        r = as_uid(self.d.sock, 1, "unfreeze", account="0123456789", reason="customer called")
        self.assertEqual(r.get("result"), "pending", r)
        pid = r["pending_id"]
        self.step_up("bin", "biden_2.jpg")
        c = self.d.conn()
        self.assertTrue(c.call("freeze", account="staff:bin", reason="investigation")["ok"])
        c.close()
        r = as_uid(self.d.sock, 2, "approve", id=pid)                # step-up is recent, but bin is frozen now
        self.assertFalse(r["ok"], r)
        self.assertEqual(r["error"]["code"], "unauthorized")
        self.assertIn("frozen", r["error"]["message"])
        self.assertTrue(self.frozen(), "the pending unfreeze must not run")
        recs = [x for x in audit(self.d, account="0123456789") if x["type"] == "four_eyes_approve"]
        self.assertEqual(recs[-1]["result"], "refused")
        self.assertIn("approver_frozen", recs[-1]["reasons"])
        c = self.d.conn()                                             # root is exempt from four-eyes
        self.assertTrue(c.call("unfreeze", account="staff:bin")["ok"])
        c.close()
        r = as_uid(self.d.sock, 2, "approve", id=pid)                # still pending, and bin may approve again
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["result"], "executed")
        self.assertFalse(self.frozen())

    def test_customer_enrollment_change_is_pending(self):
        import base64
        with open(face("obama_4.jpg"), "rb") as f:
            b = base64.urlsafe_b64encode(f.read()).rstrip(b"=").decode()
        r = as_uid(self.d.sock, 2, "enroll_face", customer="C-77", images=[b])
        self.assertEqual(r.get("result"), "pending", r)
        enroll_id = r["pending_id"]
        r = as_uid(self.d.sock, 2, "delete_face", customer="C-77")
        self.assertEqual(r.get("result"), "pending", r)
        r = as_uid(self.d.sock, 1, "unlock", customer="C-77")
        self.assertEqual(r.get("result"), "pending", r)
        r = as_uid(self.d.sock, 1, "unlock", reason="no customer named")   # malformed: refused, not pending
        self.assertEqual(r["error"]["code"], "bad_request", r)
        r = as_uid(self.d.sock, 2, "enroll_face", customer="C-77", images=[b[:200]])   # junk: answered at once
        self.assertEqual(r.get("result"), "rejected", r)

        def creds():
            c = self.d.conn()
            out = c.call("list_credentials", customer="C-77")["credentials"]
            c.close()
            return out
        self.assertEqual(creds(), [])
        r = as_uid(self.d.sock, 1, "pending_show", id=enroll_id)
        self.assertEqual(r["request"]["images"], 1)                  # the approver sees no biometric data
        self.assertNotIn("held", r)
        for name in os.listdir(self.d.state):                        # nor does the database hold the image
            path = os.path.join(self.d.state, name)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    self.assertNotIn(b[100:160].encode(), f.read(), name)
        self.step_up("daemon", "obama_2.jpg")
        r = as_uid(self.d.sock, 1, "approve", id=enroll_id)
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["reply"]["result"], "enrolled")
        self.assertEqual([x["method"] for x in creds()], ["face"])

    def test_staff_namespace_closed_to_customers(self):
        c = self.d.conn()
        r = c.call("enroll_face", customer="staff:daemon", images=["AAAA"])
        self.assertEqual(r["error"]["code"], "bad_request")
        r = c.call("login_begin", user="daemon")                   # root is a pam peer by default
        c.close()
        self.assertTrue(r["ok"], r)
        r = as_uid(self.d.sock, 1, "login_begin", user="daemon")    # an admin is not a pam peer
        self.assertEqual(r["error"]["code"], "unauthorized")


if __name__ == "__main__":
    unittest.main(verbosity=2)
