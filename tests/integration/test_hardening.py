"""Hardening tests against a real authd (issue 9): token misuse (RFC 8725),
peer and resource limits (a 10,000-connection flood among them), crash
safety under SIGKILL (SQLite here; the PostgreSQL mode runs in test_pg.py).

    /usr/bin/python3 tests/integration/test_hardening.py            # the ctest case
    /usr/bin/python3 tests/integration/test_hardening.py crash-loop N [--seed S] [--store sqlite|pg]
                                                                   [--instances K]
    /usr/bin/python3 tests/integration/test_hardening.py soak MINUTES

The crash loop and the soak are what scripts/crash-loop.sh and
scripts/soak.sh run. Tokens are forged here with python3-cryptography and
checked twice: by `authctl token verify` (authd's own verifier) and by
PyJWT (independent), and the daemon's redeem must refuse them too.
"""
import base64
import hashlib
import hmac
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import warnings

sys.path.insert(0, os.path.dirname(__file__))
from authd_harness import SANITIZED, SLOW, VALGRIND, Conn, Daemon, authctl_cmd, frame, txn  # noqa: E402
from test_daemon import txn_hash  # noqa: E402
from test_stepup import Key, b64u, business_txn  # noqa: E402

warnings.simplefilter("ignore", ResourceWarning)

TYP = "authd-approval+jwt"
ISSUER = "authd"
AUDIENCE = "bank-backend"


def cjson(o):
    return json.dumps(o, separators=(",", ":")).encode()


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def proc_usage(pid):
    """(VmRSS kB, open fds) of a process."""
    rss = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return rss, len(os.listdir("/proc/%d/fd" % pid))


def read_all(fd):
    """Everything a pipe gives until EOF; closes it."""
    data = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    os.close(fd)
    return data


class Child:
    """fn() in a forked child (under uid, gid = uid, when given); result() waits for it and returns what fn
    returned (JSON-able), or {"exception": ...}."""

    def __init__(self, fn, uid=None):
        self.r, w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(self.r)
            try:
                if uid is not None:
                    os.setgroups([])
                    os.setgid(uid)
                    os.setuid(uid)
                try:
                    out = fn()
                except Exception as e:  # noqa: BLE001 - reported to the parent
                    out = {"exception": "%s: %s" % (type(e).__name__, e)}
                os.write(w, json.dumps(out).encode())
            finally:
                os._exit(0)
        os.close(w)

    def result(self):
        data = read_all(self.r)
        os.waitpid(self.pid, 0)
        return json.loads(data) if data else None


def run_as(uid, fn):
    """Runs fn() in a forked child under uid (gid = uid); returns its JSON-able result."""
    return Child(fn, uid).result()


# ---------------------------------------------------------------- tokens

class Forger:
    """Signs tokens with the daemon's own key (read from its state dir, as an attacker who stole it could)."""

    def __init__(self, d):
        from cryptography.hazmat.primitives import serialization
        # authd binds its socket before it loads (or makes) its keys: ask first, so it is up.
        c = d.conn()
        self.jwks = c.call("jwks")
        c.close()
        path = os.path.join(d.state, "keys", "current.pem")
        if not os.path.exists(path):
            raise RuntimeError("no %s: tmp %s, state %s, log:\n%s" % (
                path, os.listdir(d.tmp) if os.path.isdir(d.tmp) else "gone",
                os.listdir(d.state) if os.path.isdir(d.state) else "gone",
                open(d.log).read() if os.path.exists(d.log) else "gone"))
        with open(path, "rb") as f:
            self.sk = serialization.load_pem_private_key(f.read(), None)
        self.kid = self.jwks["keys"][0]["kid"]

    def sign(self, header, claims):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
        body = b64u(cjson(header)) + "." + b64u(cjson(claims))
        if isinstance(self.sk, ec.EllipticCurvePrivateKey):
            r, s = decode_dss_signature(self.sk.sign(body.encode(), ec.ECDSA(hashes.SHA256())))
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        else:
            sig = self.sk.sign(body.encode())
        return body + "." + b64u(sig)

    def header(self, **over):
        h = {"alg": "ES256", "typ": TYP, "kid": self.kid}
        h.update(over)
        return h


def pyjwt_refuses(token, jwks):
    """True when PyJWT (with the checks a relying party should make) refuses the token."""
    import jwt
    from jwt import PyJWK
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        key = next(k for k in jwks["keys"] if k["kid"] == kid)
        hdr = jwt.get_unverified_header(token)
        if hdr.get("typ") != TYP:
            return True
        claims = jwt.decode(token, PyJWK.from_dict(key).key, algorithms=["ES256", "EdDSA"], audience=AUDIENCE,
                            issuer=ISSUER, options={"require": ["exp", "iat", "jti", "aud", "iss"]})
        # RFC 8725 3.10 / RFC 7519 4.1.6: an iat in the future is not a valid token either.
        if claims["iat"] > time.time() + 60:
            return True
        return False
    except StopIteration:
        return True
    except jwt.PyJWTError:
        return True


class TokenMisuseTest(unittest.TestCase):
    """RFC 8725 misuse: each token is refused by authctl, by PyJWT and by the daemon's redeem."""

    def setUp(self):
        self.d = Daemon("[policy]\nnew_device = off\n")
        self.addCleanup(self.d.cleanup)   # also when setUp fails
        self.d.start()
        self.c = self.d.conn()
        self.f = Forger(self.d)
        self.jwks_file = os.path.join(self.d.tmp, "jwks.json")
        with open(self.jwks_file, "w") as fh:
            json.dump(self.f.jwks, fh)
        r = self.c.call("assess", txn=txn("TM-base"))
        self.assertEqual(r["result"], "allow", r)
        self.good = r["token"]
        self.claims = json.loads(b64d(self.good.split(".")[1]))

    def authctl_verify(self, token):
        p = subprocess.run(authctl_cmd() + ["--socket", self.d.sock, "token", "verify", token, "--jwks", self.jwks_file],
                           capture_output=True, text=True, timeout=30 * SLOW)
        return p.returncode, p.stdout + p.stderr

    def assert_refused(self, token, redeem=True):
        rc, out = self.authctl_verify(token)
        self.assertNotEqual(rc, 0, "authctl token verify accepted it: " + out)
        self.assertTrue(pyjwt_refuses(token, self.f.jwks), "PyJWT accepted it")
        if redeem:
            r = self.c.call("redeem", token=token)
            self.assertFalse(r["ok"], "redeem accepted it: %r" % r)

    def claims_with(self, **over):
        c = dict(self.claims)
        c.update(over)
        return c

    def test_genuine_token_is_accepted(self):
        rc, out = self.authctl_verify(self.good)
        self.assertEqual(rc, 0, out)
        self.assertFalse(pyjwt_refuses(self.good, self.f.jwks))

    def test_alg_none(self):
        for alg in ("none", "None", "NONE"):
            tok = b64u(cjson(self.f.header(alg=alg))) + "." + b64u(cjson(self.claims)) + "."
            self.assert_refused(tok)

    def test_hs256_with_public_key_as_secret(self):
        from cryptography.hazmat.primitives import serialization
        body = b64u(cjson(self.f.header(alg="HS256"))) + "." + b64u(cjson(self.claims))
        pub = self.f.sk.public_key()
        secrets = [pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
                   pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
                   cjson(self.f.jwks["keys"][0])]
        for secret in secrets:
            tok = body + "." + b64u(hmac.new(secret, body.encode(), hashlib.sha256).digest())
            self.assert_refused(tok)

    def test_wrong_kid(self):
        for kid in ("nope", "", None, "../keys/current"):
            h = self.f.header(kid=kid)
            if kid is None:
                del h["kid"]
            self.assert_refused(self.f.sign(h, self.claims))

    def test_wrong_typ(self):
        for typ in ("JWT", "at+jwt", None):
            h = self.f.header(typ=typ)
            if typ is None:
                del h["typ"]
            self.assert_refused(self.f.sign(h, self.claims))

    def test_wrong_aud_redeem(self):
        tok = self.f.sign(self.f.header(), self.claims_with(aud="another-backend", jti="j-aud"))
        self.assertTrue(pyjwt_refuses(tok, self.f.jwks))
        self.assertFalse(self.c.call("redeem", token=tok)["ok"])

    def test_wrong_aud_authctl(self):
        tok = self.f.sign(self.f.header(), self.claims_with(aud="another-backend", jti="j-aud2"))
        self.assertNotEqual(self.authctl_verify(tok)[0], 0)

    def test_expired(self):
        now = int(time.time())
        self.assert_refused(self.f.sign(self.f.header(), self.claims_with(iat=now - 600, exp=now - 300)))
        self.assert_refused(self.f.sign(self.f.header(), self.claims_with(exp=now)))

    def test_not_yet_valid_pyjwt(self):
        now = int(time.time())
        tok = self.f.sign(self.f.header(), self.claims_with(iat=now + 3600, nbf=now + 3600, exp=now + 7200,
                                                            jti="j-future"))
        self.assertTrue(pyjwt_refuses(tok, self.f.jwks))

    def test_not_yet_valid_authd(self):
        now = int(time.time())
        tok = self.f.sign(self.f.header(), self.claims_with(iat=now + 3600, nbf=now + 3600, exp=now + 7200,
                                                            jti="j-future2"))
        self.assert_refused(tok)

    def test_altered_payload(self):
        h, p, s = self.good.split(".")
        for over in ({"sub": "C-666"}, {"exp": self.claims["exp"] + 86400},
                     {"txn": dict(self.claims["txn"], hash=b64u(b"\0" * 32))}):
            self.assert_refused(h + "." + b64u(cjson(self.claims_with(**over))) + "." + s)
        # a bit flip in the signature, and the signature of another token
        sig = bytearray(b64d(s))
        sig[5] ^= 1
        self.assert_refused(h + "." + p + "." + b64u(bytes(sig)))
        other = self.c.call("assess", txn=txn("TM-other"))["token"]
        self.assert_refused(h + "." + p + "." + other.split(".")[2])

    def test_replayed_jti_at_redeem(self):
        self.assertEqual(self.c.call("redeem", token=self.good)["result"], "redeemed")
        r = self.c.call("redeem", token=self.good)
        self.assertFalse(r["ok"])
        self.assertEqual(r["error"]["code"], "conflict", r)
        # same jti on a freshly signed token for another transfer
        tok = self.f.sign(self.f.header(), self.claims_with(txn=dict(self.claims["txn"], id="TM-other-2")))
        self.assertFalse(self.c.call("redeem", token=tok)["ok"])
        # and after a restart
        self.d.stop()
        self.d.start()
        self.c = self.d.conn()
        self.assertFalse(self.c.call("redeem", token=self.good)["ok"])


# ---------------------------------------------------------------- limits

LIMIT_CONF = "[server]\nclients = 0, 65534\nadmins = 0\nidle_timeout = 3\n[policy]\nnew_device = off\n"


class LimitsTest(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root (clients under another uid)")
        self.d = Daemon(LIMIT_CONF)
        self.addCleanup(self.d.cleanup)
        self.d.start()
        c = self.d.conn()   # authd binds before it finishes starting: wait until it answers
        self.assertTrue(c.call("health")["ok"])
        c.close()

    def requests(self):
        return self.d.conn().call("stats")["process"]["requests"]

    def test_unlisted_uid_refused_before_parsing(self):
        before = self.requests()
        sock = self.d.sock

        def probe():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5 * SLOW)
            try:
                s.connect(sock)
                s.sendall(struct.pack(">I", 40) + b'{"v":1,"id":"x","op":"health"}' + b" " * 10)
                data = s.recv(4096)
                return {"reply": data.decode("latin1")}
            except OSError as e:
                return {"oserror": str(e)}
            finally:
                s.close()
        r = run_as(12345, probe)
        self.assertTrue("oserror" in r or r.get("reply") == "", r)
        self.assertEqual(self.requests(), before + 1)   # only our own stats call was counted
        self.assertIn("refused connection from uid 12345", open(self.d.log).read())
        # a refusing loop does not flood the log: one line a minute, with a count
        for _ in range(30):
            run_as(12345, probe)
        self.assertEqual(open(self.d.log).read().count("refused connection from uid 12345"), 1)
        # an allowed uid is served
        r = run_as(65534, lambda: Conn(sock).call("health"))
        self.assertTrue(r["ok"], r)

    def test_huge_prefix_gets_error_and_close(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5 * SLOW)
        s.connect(self.d.sock)
        s.sendall(struct.pack(">I", 1 << 30) + b"{")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        self.assertGreater(len(data), 4)
        r = json.loads(data[4:])
        self.assertFalse(r["ok"])
        self.assertEqual(r["error"]["code"], "too_large", r)

    def test_slowloris_partial_frame_closed(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30 * SLOW)
        s.connect(self.d.sock)
        t0 = time.time()
        s.sendall(struct.pack(">I", 100) + b'{"v":1,')
        try:
            # a byte now and then does not keep a partial frame alive
            for _ in range(20):
                time.sleep(1)
                s.sendall(b" ")
        except OSError:
            pass
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
        took = time.time() - t0
        s.close()
        self.assertGreater(took, 8)
        self.assertLess(took, 15 * SLOW, "partial frame held for %.1f s" % took)

    def test_replies_never_read_closed(self):
        """A peer that pipelines requests and never reads the replies: once its socket buffer is full and
        nothing more can be sent for idle_timeout (3 s here), authd closes the connection instead of holding
        it and its buffered replies forever."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(30 * SLOW)
        s.connect(self.d.sock)
        body = json.dumps({"v": 1, "id": "j", "op": "jwks"}).encode()
        s.sendall((struct.pack(">I", len(body)) + body) * 3000)
        time.sleep(3 + 2 + 2 * SLOW)        # idle_timeout + the 1 s sweep + slack
        self.assertIn("replies not read for 3s", open(self.d.log).read())
        data, t0 = b"", time.time()
        while time.time() - t0 < 20 * SLOW:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            data += chunk
        s.close()
        self.assertGreater(len(data), 0)          # what was already in the socket buffer
        self.assertTrue(self.d.conn().call("health")["ok"])

    def test_idle_timeout(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(20 * SLOW)
        s.connect(self.d.sock)
        t0 = time.time()
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        took = time.time() - t0
        s.close()
        self.assertEqual(data, b"")
        self.assertGreater(took, 2)
        self.assertLess(took, 8 * SLOW, "idle connection held for %.1f s (idle_timeout = 3)" % took)


class QueueLimitTest(unittest.TestCase):
    def test_queued_request_bytes_are_bounded(self):
        """Clients that send big frames faster than the workers parse them: authd stops reading once the
        requests waiting for workers hold 16 MiB on a connection or 256 MiB in all, instead of queueing up
        to 256 frames of up to max_frame (8 MiB) on every connection. Every request is still answered."""
        d = Daemon("[server]\nworkers = 1\n[policy]\nnew_device = off\n")
        self.addCleanup(d.cleanup)
        d.start()
        pid = d.proc.pid
        rss0, _ = proc_usage(pid)
        n_conns, n_frames = 24, 12
        pad = "\\u00e9" * (600 * 1024)         # 3.6 MiB of JSON escapes: slow to parse
        if VALGRIND:                            # the same paths, on a scale valgrind gets through
            n_conns, n_frames, pad = 4, 3, "\\u00e9" * (20 * 1024)
        frames = [frame(('{"v":1,"id":"q%d","op":"health","pad":"%s"}' % (i, pad)).encode()) for i in range(n_frames)]
        peak = [rss0]
        done = threading.Event()

        def watch():
            while not done.is_set():
                try:
                    peak[0] = max(peak[0], proc_usage(pid)[0])
                except OSError:
                    return
                time.sleep(0.02)
        w = threading.Thread(target=watch)
        w.start()

        # one process per connection: in one Python process the GIL shared by 48 threads made the clients
        # themselves too slow to finish a frame within authd's 10 s partial-frame limit
        def client():
            c = Conn(d.sock, timeout=300)
            t = threading.Thread(target=lambda: [c.s.sendall(f) for f in frames])
            t.start()
            got = [c.recv() for _ in range(n_frames)]
            t.join()
            return [g.get("id") for g in got if g and g.get("ok")]
        children = [Child(client) for _ in range(n_conns)]
        results = [ch.result() for ch in children]
        done.set()
        w.join()
        sent = n_conns * n_frames * len(frames[0]) >> 20
        print("\nqueued bytes: %d connections x %d frames of %.1f MiB (%d MiB sent) with one worker: authd RSS "
              "%d -> peak %d kB (+%d MiB)" % (n_conns, n_frames, len(frames[0]) / 1048576, sent, rss0, peak[0],
                                                (peak[0] - rss0) >> 10), file=sys.stderr)
        log = open(d.log).read()
        for r in results:
            self.assertEqual(r, ["q%d" % i for i in range(n_frames)], log[-3000:])
        if not VALGRIND:
            # 256 MiB of queue, plus each connection's read buffer and the frame being parsed
            bound = (256 + n_conns * 4 + 96) * 1024
            if SANITIZED:
                bound += 256 * 1024       # ASan's quarantine of freed memory
            self.assertLess(peak[0] - rss0, bound)
        if not VALGRIND:
            self.assertIn("requests waiting for workers hold", log)


def cpu_seconds(pid):
    """User + system CPU time of a process so far, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ConnectionEndTest(unittest.TestCase):
    def test_half_closed_peer_with_replies_waiting_costs_no_cpu(self):
        """A client pipelines more than authd queues, shuts its write side and reads nothing for a while:
        the connection is paused with replies blocked. Its end-of-input must not wake the I/O thread in a
        loop (epoll reports it for as long as it is watched), and every reply still arrives once the client
        reads."""
        d = Daemon()
        self.addCleanup(d.cleanup)
        d.start()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(60 * SLOW)
        s.connect(d.sock)
        n = 3000
        s.sendall(b"".join(frame({"v": 1, "id": "j%d" % i, "op": "jwks"}) for i in range(n)))
        s.shutdown(socket.SHUT_WR)
        time.sleep(1 * SLOW)                  # the workers answer what was read; replies back up
        cpu0 = cpu_seconds(d.proc.pid)
        time.sleep(2)
        used = cpu_seconds(d.proc.pid) - cpu0
        self.assertLess(used, 0.4 * SLOW, "authd used %.2f s of CPU in 2 s with one idle peer" % used)
        got, buf = [], b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
                ln = struct.unpack(">I", buf[:4])[0]
                got.append(json.loads(buf[4:4 + ln])["id"])
                buf = buf[4 + ln:]
        s.close()
        self.assertEqual(got, ["j%d" % i for i in range(n)])

    def test_socket_activation_leaves_systemds_socket_file(self):
        """With the socket passed by systemd (LISTEN_FDS), stopping authd must not remove the socket's file:
        the socket unit still holds the listening socket, and the next authd it starts must be reachable
        by path. A socket authd bound itself is still removed."""
        tmp = tempfile.mkdtemp(prefix="authd-it-")
        self.addCleanup(shutil.rmtree, tmp, True)
        sock_path = os.path.join(tmp, "authd.sock")
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(lsock.close)
        lsock.bind(sock_path)
        os.chmod(sock_path, 0o666)
        lsock.listen(64)
        fd = lsock.fileno()
        # LISTEN_PID must be authd's own pid: the shell sets it to its own and execs authd in place
        launch = ["sh", "-c", 'LISTEN_PID=$$ exec "$@"', "sh"]
        for run in range(2):
            d = Daemon(tmp=tempfile.mkdtemp(dir=tmp), env={"LISTEN_FDS": "1"}, launch=launch, pass_fds=(3,),
                       preexec=lambda: os.dup2(fd, 3))
            d.sock = sock_path
            d.start()
            self.assertTrue(d.conn().call("health")["ok"])
            self.assertIn("using the socket passed by systemd", d.log_text())
            self.assertEqual(d.stop(), 0, d.log_text()[-2000:])
            self.assertTrue(os.path.exists(sock_path), "run %d removed systemd's socket file" % run)
        d = Daemon()
        d.start()
        sock = d.sock
        self.assertEqual(d.stop(), 0)
        self.assertFalse(os.path.exists(sock))
        d.cleanup()


# ---------------------------------------------------------------- connection flood

FLOOD_N = int(os.environ.get("AUTHD_FLOOD_CONNECTIONS", "10000"))
FLOOD_UNLISTED = FLOOD_N // 10        # of them from a uid in no allowlist (closed at accept)
FLOOD_CONF = "[server]\nclients = 0, 65534\nadmins = 0\n[policy]\nnew_device = off\n"   # idle_timeout 60 s


class Flooder:
    """A forked child (as uid, when given) that opens n connections to sock and holds them.

    Each child raises its RLIMIT_NOFILE soft limit to the hard one; the
    caller splits a flood across children so each stays within it. Every
    second connection announces a 1 GiB frame and sends a few bytes of it;
    the others send two bytes of a length prefix and stall. A connect that
    finds the backlog full (EAGAIN) is retried until the deadline.
    """

    def __init__(self, sock, n, uid=None, deadline=60.0):
        self.n = n
        r1, w1 = os.pipe()    # child -> parent: JSON lines
        r2, w2 = os.pipe()    # parent -> child: release
        self.pid = os.fork()
        if self.pid == 0:
            os.close(r1)
            os.close(w2)
            try:
                self._child(sock, n, uid, deadline, w1, r2)
            finally:
                os._exit(0)
        os.close(w1)
        os.close(r2)
        self.rf = os.fdopen(r1, "r")
        self.release_fd = w2

    @staticmethod
    def _child(sock, n, uid, deadline, w, release):
        out = {"opened": 0, "failed": 0}
        held = []
        try:
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
            end = time.monotonic() + deadline
            for i in range(n):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.setblocking(False)
                while True:
                    try:
                        s.connect(sock)
                        held.append(s)
                        break
                    except BlockingIOError:       # backlog full: authd is behind, wait a moment
                        if time.monotonic() > end:
                            out["failed"] += 1
                            s.close()
                            break
                        time.sleep(0.001)
                    except OSError:
                        out["failed"] += 1
                        s.close()
                        break
            for i, s in enumerate(held):
                try:
                    s.send(struct.pack(">I", 1 << 30) + b'{"v":1' if i % 2 == 0 else b"\0\0")
                except OSError:
                    pass
            out["opened"] = len(held)
        except Exception as e:  # noqa: BLE001 - reported to the parent
            out["exception"] = "%s: %s" % (type(e).__name__, e)
        os.write(w, (json.dumps(out) + "\n").encode())
        os.read(release, 1)
        # how many the daemon has closed (refused at accept, or after too_large) by now
        closed = 0
        for s in held:
            try:
                while True:
                    if not s.recv(65536):
                        closed += 1
                        break
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
            s.close()
        os.write(w, (json.dumps({"closed_by_authd": closed}) + "\n").encode())

    def opened(self):
        return json.loads(self.rf.readline() or "{}")

    def release(self):
        os.write(self.release_fd, b"x")
        os.close(self.release_fd)
        r = json.loads(self.rf.readline() or "{}")
        self.rf.close()
        os.waitpid(self.pid, 0)
        return r


class GoodClient:
    """A forked child as uid 65534 (another peer than the flood) that opens a fresh connection and
    asks one assess every 50 ms until stopped; reports each call's latency."""

    def __init__(self, sock, tag):
        r1, w1 = os.pipe()
        r2, w2 = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(r1)
            os.close(w2)
            try:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
                os.set_blocking(r2, False)
                calls, i = [], 0
                while True:
                    try:
                        if os.read(r2, 1) is not None:
                            break
                    except BlockingIOError:
                        pass
                    i += 1
                    t0 = time.monotonic()
                    try:
                        c = Conn(sock, timeout=10)
                        r = c.call("assess", txn=txn("TGOOD-%s-%d" % (tag, i), customer="C-good", amount=1000))
                        c.close()
                        calls.append([bool(r and r.get("result") == "allow"), time.monotonic() - t0, t0])
                    except OSError as e:
                        calls.append([str(e), time.monotonic() - t0, t0])
                    time.sleep(0.05)
                os.write(w1, json.dumps(calls).encode())
            finally:
                os._exit(0)
        os.close(w1)
        os.close(r2)
        self.r, self.stop_fd = r1, w2

    def stop(self):
        os.write(self.stop_fd, b"x")
        os.close(self.stop_fd)
        data = read_all(self.r)
        os.waitpid(self.pid, 0)
        return json.loads(data or b"[]")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class FloodTest(unittest.TestCase):
    """Issue 9: a flood of 10,000 connections (AUTHD_FLOOD_CONNECTIONS) does not exhaust authd's memory or
    file descriptors, does not make it spin, and a client of another uid keeps being served during it."""

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root (clients under other uids)")

    def flood(self, d, per_peer):
        pid = d.proc.pid
        c = d.conn()
        self.assertTrue(c.call("health")["ok"])
        c.close()
        time.sleep(0.3 * SLOW)                      # the start-up probes' connections are gone
        rss0, fd0 = proc_usage(pid)
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        # connections one child process may hold (each raises its soft limit to the hard one)
        budget = FLOOD_N if hard == resource.RLIM_INFINITY else max(256, hard - 64)
        good = GoodClient(d.sock, "%d-%d" % (os.getpid(), pid))
        time.sleep(0.5 * SLOW)                       # a few calls before the flood
        t0 = time.monotonic()
        floods = []
        for uid, n in ((None, FLOOD_N - FLOOD_UNLISTED), (12345, FLOOD_UNLISTED)):
            while n > 0:
                floods.append(Flooder(d.sock, min(n, budget), uid=uid, deadline=60 * SLOW))
                n -= min(n, budget)
        opened = [f.opened() for f in floods]
        t_open = time.monotonic() - t0
        time.sleep(1.0)
        rss1, fd1 = proc_usage(pid)
        cpu0 = cpu_seconds(pid)
        time.sleep(2.0)                              # the flood holds still: authd must sit idle
        cpu_idle = cpu_seconds(pid) - cpu0
        rss2, fd2 = proc_usage(pid)
        t_release = time.monotonic()
        closed = [f.release() for f in floods]
        time.sleep(1.5 * SLOW)
        calls = good.stop()
        rss3, fd3 = proc_usage(pid)
        total = sum(o.get("opened", 0) for o in opened)
        during = [x for x in calls if t0 <= x[2] <= t_release]
        lat = sorted(x[1] for x in during)
        print("\nflood: %d connections held at once (%d child processes, %.1f s to open, %d closed by authd at "
              "release); authd fds %d -> %d -> %d, RSS %d -> %d -> %d kB, %.2f s CPU while the flood sat still "
              "for 2 s; uid 65534: %d assess calls, all ok: %s, latency median %.1f ms, max %.1f ms"
              % (total, len(floods), t_open, sum(c.get("closed_by_authd", 0) for c in closed), fd0, max(fd1, fd2),
                 fd3, rss0, max(rss1, rss2), rss3, cpu_idle, len(during), all(x[0] is True for x in during),
                 1000 * lat[len(lat) // 2] if lat else -1, 1000 * lat[-1] if lat else -1), file=sys.stderr)
        self.assertEqual([o for o in opened if "exception" in o or o.get("failed")], [], opened)
        self.assertEqual(total, FLOOD_N, opened)
        # file descriptors: the per-peer cap holds the flood's share; the unlisted uid holds none
        self.assertLessEqual(max(fd1, fd2), fd0 + per_peer + 32, "authd fds %d -> %d" % (fd0, max(fd1, fd2)))
        self.assertLessEqual(fd3, fd0 + 8, "fds not released: %d -> %d" % (fd0, fd3))
        # memory: the 1 GiB prefixes are refused, not buffered (valgrind's own memory hides authd's)
        if not VALGRIND:
            self.assertLess(max(rss1, rss2) - rss0, 256 * 1024, "RSS grew %d kB" % (max(rss1, rss2) - rss0))
        # no busy loop while nothing happens
        self.assertLess(cpu_idle, 0.5 * SLOW * (2 if SANITIZED else 1),
                        "authd used %.2f s of CPU in 2 s of a still flood" % cpu_idle)
        # the other peer was served throughout, promptly
        self.assertGreaterEqual(len(during), 5, calls)
        self.assertEqual([x for x in calls if x[0] is not True], [], calls)
        # (a new connection waits in the backlog behind the flood's: the bound covers accepting those)
        bound = 2.0 * SLOW * (4 if SANITIZED else 1)
        self.assertLess(lat[-1], bound, "slowest assess during the flood: %.2f s" % lat[-1])

    def test_flood_10000_connections(self):
        d = Daemon(FLOOD_CONF)
        self.addCleanup(d.cleanup)
        d.start()
        self.flood(d, 1024)      # max_per_peer default

    def test_flood_with_a_low_fd_limit(self):
        """authd started with RLIMIT_NOFILE 1024/1024 (a shell's or a unit's default soft limit, here also the
        hard one): it lowers its connection caps to fit, instead of running out of fds at accept."""
        d = Daemon(FLOOD_CONF, preexec=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024)))
        self.addCleanup(d.cleanup)
        d.start()
        c = d.conn()
        self.assertTrue(c.call("health")["ok"])
        c.close()
        m = re.search(r"open file limit (\d+) \(hard (\d+)\) is too low for max_connections 4096: serving at most "
                      r"(\d+) connections, (\d+) per peer", open(d.log).read())
        limit, fit, per_peer = (int(m.group(1)), int(m.group(3)), int(m.group(4))) if m else (1024, 4096, 1024)
        self.flood(d, per_peer)
        self.assertTrue(m, open(d.log).read()[-2000:])
        self.assertLessEqual(fit, limit - 64)
        self.assertLess(per_peer, fit)

    def test_out_of_descriptors_pauses_accept(self):
        """The fd limit lowered on the running daemon (prlimit), below what its connections hold: accept4
        fails with EMFILE. authd must not spin on the still-readable listening socket; it pauses accepting,
        says so in its log, and serves the waiting peers once descriptors are free again."""
        d = Daemon(FLOOD_CONF)
        self.addCleanup(d.cleanup)
        d.start()
        pid = d.proc.pid
        time.sleep(0.3 * SLOW)
        _, fd0 = proc_usage(pid)
        held = []
        for _ in range(40):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(d.sock)
            held.append(s)
        time.sleep(0.5 * SLOW)
        old = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        try:
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (fd0 + 20, old[1]))   # below the fds it holds now
            waiting = []
            for _ in range(20):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.setblocking(False)
                try:
                    s.connect(d.sock)         # into the backlog: authd cannot accept it
                except BlockingIOError:
                    pass
                waiting.append(s)
            time.sleep(0.5 * SLOW)
            cpu0 = cpu_seconds(pid)
            time.sleep(2.0)
            cpu_idle = cpu_seconds(pid) - cpu0
            print("\nout of descriptors: %.2f s of CPU in 2 s" % cpu_idle, file=sys.stderr)
            self.assertLess(cpu_idle, 0.3 * SLOW * (2 if SANITIZED else 1),
                            "authd used %.2f s of CPU in 2 s while out of descriptors" % cpu_idle)
            self.assertIn("cannot accept connections: Too many open files", open(d.log).read())
            # descriptors free again: the waiting peers are accepted and served
            for s in held:
                s.close()
            t0 = time.time()
            c = waiting[0]
            c.setblocking(True)
            c.settimeout(10 * SLOW)
            body = json.dumps({"v": 1, "id": "w", "op": "health"}).encode()
            c.sendall(struct.pack(">I", len(body)) + body)
            hdr = b""
            while len(hdr) < 4:
                chunk = c.recv(4 - len(hdr))
                self.assertTrue(chunk, "closed without a reply")
                hdr += chunk
            (n,) = struct.unpack(">I", hdr)
            data = b""
            while len(data) < n:
                data += c.recv(n - len(data))
            self.assertTrue(json.loads(data)["ok"])
            self.assertLess(time.time() - t0, 5 * SLOW)
            for s in waiting:
                s.close()
        finally:
            resource.prlimit(pid, resource.RLIMIT_NOFILE, old)
        self.assertTrue(d.conn().call("health")["ok"])


# ---------------------------------------------------------------- crash safety

CRASH_CONF = "[policy]\nnew_device = off\n"
N_CUSTOMERS = 4
HERE = os.path.dirname(os.path.abspath(__file__))
PG_CLUSTER = os.path.join(HERE, "pg_cluster.sh")


class Ledger:
    """What the clients saw: every txn sent, every token received, every redeem that succeeded."""

    def __init__(self):
        self.mu = threading.Lock()
        self.sent = {}          # txn_id -> txn
        self.tokens = {}        # jti -> (token, txn_id, kind)
        self.redeemed = set()   # jti
        self.challenges = {}    # challenge id -> number of tokens received for it

    def add_token(self, token, txn_id, kind, challenge=None):
        claims = json.loads(b64d(token.split(".")[1]))
        with self.mu:
            self.tokens[claims["jti"]] = (token, txn_id, kind)
            if challenge is not None:
                self.challenges[challenge] = self.challenges.get(challenge, 0) + 1


class SqliteDB:
    """Read-only queries on the SQLite store of a state dir (the checks read the store directly)."""

    def __init__(self, path):
        self.path = path

    def rows(self, sql, *types):
        db = sqlite3.connect("file:%s?mode=ro" % self.path, uri=True, timeout=30)
        try:
            return [tuple(r) for r in db.execute(sql)]
        finally:
            db.close()


def pg_bin(name):
    dirs = sorted(os.listdir("/usr/lib/postgresql"), key=lambda v: [int(x) for x in v.split(".") if x.isdigit()]) \
        if os.path.isdir("/usr/lib/postgresql") else []
    return os.path.join("/usr/lib/postgresql", dirs[-1], "bin", name) if dirs else name


class PgDB:
    """The same queries through psql on a PostgreSQL store (host = the cluster's socket directory)."""

    def __init__(self, host, dbname="authd"):
        self.host, self.dbname = host, dbname

    def psql(self, sql, db=None):
        out = subprocess.run([pg_bin("psql"), "-h", self.host, "-U", "authd", "-d", db or self.dbname, "-AtqX",
                              "-F", "\t", "-c", sql], capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError("psql failed: " + out.stderr)
        return out.stdout

    def rows(self, sql, *types):
        """types: one converter per column (psql prints text; NULL prints as an empty field)."""
        rows = []
        for line in self.psql(sql).splitlines():
            vals = line.split("\t")
            rows.append(tuple(None if v == "" else t(v) for t, v in zip(types, vals)))
        return rows


class PgCluster:
    """A throwaway PostgreSQL cluster (pg_cluster.sh) for the crash loop's PostgreSQL mode."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="authd-pg-crash-")
        out = subprocess.run([PG_CLUSTER, "start", self.dir], capture_output=True, text=True, timeout=180)
        if out.returncode != 0:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise RuntimeError("PostgreSQL could not be started: " + out.stderr)
        self.url = out.stdout.strip().splitlines()[-1]

    def database(self, name):
        """A fresh database in the cluster: (url, PgDB)."""
        PgDB(self.dir).psql("CREATE DATABASE %s" % name, db="postgres")
        return self.url.replace("/authd?", "/%s?" % name), PgDB(self.dir, name)

    def stop(self):
        subprocess.run([PG_CLUSTER, "stop", self.dir], capture_output=True, text=True, timeout=120)
        shutil.rmtree(self.dir, ignore_errors=True)


def enroll_keys(d):
    keys = {}
    c = d.conn()
    for k in range(N_CUSTOMERS):
        cust = "CK-%d" % k
        key = Key()
        b = c.call("enroll_fido2_begin", customer=cust, display_name="Crash %d" % k)
        f = c.call("enroll_fido2_finish", enrollment_id=b["enrollment_id"],
                   fido2=key.register(b["registration"]["challenge"]))
        if not f.get("ok"):
            raise RuntimeError("enroll failed: %r" % f)
        keys[cust] = key
    c.close()
    return keys


def load_worker(d, ledger, keys, k, it, stop, other=None):
    """assess / verify (fido2) / redeem against d until stopped or d dies; a verified assertion is replayed,
    on the other instance when there is one (it must never approve twice)."""
    cust = "CK-%d" % k
    key = keys[cust]
    n = 0
    oc = None
    try:
        c = Conn(d.sock, timeout=10)
        if other is not None:
            try:
                oc = Conn(other.sock, timeout=10)
            except OSError:
                oc = None
        while not stop.is_set():
            n += 1
            tid = "CR-%d-%d-%d" % (it, k, n)
            if n % 2:
                t = txn(tid, customer=cust, amount=1000 + n)
                with ledger.mu:
                    ledger.sent[tid] = t
                r = c.call("assess", txn=t)
                if r is None or not r.get("ok"):
                    break
                if r.get("token"):
                    ledger.add_token(r["token"], tid, "allow")
                    tok = r["token"]
                else:
                    continue
            else:
                t = business_txn(tid, customer=cust, amount=250000000 + n)
                with ledger.mu:
                    ledger.sent[tid] = t
                r = c.call("assess", txn=t)
                if r is None or not r.get("ok"):
                    break
                if r.get("result") != "step_up":
                    continue
                ch = r["challenge"]
                with key_lock(key):
                    a = key.assert_(ch["fido2"]["challenge"])
                r = c.call("verify", challenge_id=ch["id"], method="fido2", fido2=a)
                if r is None or not r.get("ok"):
                    break
                if r.get("result") != "approved":
                    continue
                ledger.add_token(r["token"], tid, "verify", ch["id"])
                tok = r["token"]
                # replaying the assertion must never approve again
                r2 = None
                if oc is not None:
                    try:
                        r2 = oc.call("verify", challenge_id=ch["id"], method="fido2", fido2=a)
                    except (OSError, ValueError):
                        r2 = None
                    if r2 is None:
                        oc = None     # the other instance was killed: replay here instead
                if r2 is None:
                    r2 = c.call("verify", challenge_id=ch["id"], method="fido2", fido2=a)
                    if r2 is None:
                        break
                if r2.get("ok") and r2.get("token"):
                    ledger.add_token(r2["token"], tid, "verify", ch["id"])
            r = c.call("redeem", token=tok)
            if r is None:
                break
            if r.get("ok"):
                with ledger.mu:
                    ledger.redeemed.add(json.loads(b64d(tok.split(".")[1]))["jti"])
    except (OSError, ValueError):
        pass   # the daemon was killed under us


_key_locks = {}


def key_lock(key):
    return _key_locks.setdefault(id(key), threading.Lock())


def check_state(ds, db, ledger, it):
    """The invariants after a SIGKILL and a restart, through every instance in ds and the store db. Returns a
    list of problems."""
    problems = []
    cs = [d.conn() for d in ds]
    for i, c in enumerate(cs):
        av = c.call("audit_verify")
        if not av.get("valid"):
            problems.append("audit chain invalid after restart (instance %d): %r" % (i, av))
    audit_jti = {row[0] for row in db.rows("SELECT jti FROM audit WHERE jti IS NOT NULL", str)}
    with ledger.mu:
        tokens = dict(ledger.tokens)
        redeemed = set(ledger.redeemed)
        challenges = dict(ledger.challenges)
        sent = dict(ledger.sent)
    for jti in tokens:
        if jti not in audit_jti:
            problems.append("token %s (%s) was received but has no audit record" % (jti, tokens[jti][1]))
    for ch, n in challenges.items():
        if n > 1:
            problems.append("challenge %s approved %d times" % (ch, n))
    # approvals: one per transfer, each with an audit record, amounts as sent
    hashes = {}
    for tid, t in sent.items():
        hashes[tid] = txn_hash(t).hex()
    approved_hashes = {}
    for h, n in db.rows("SELECT txn_hash, count(*) FROM audit WHERE (type='assess' AND result='allow') OR "
                        "(type='verify' AND result='approved') GROUP BY txn_hash", str, int):
        approved_hashes[h] = n
        if n > 1:
            problems.append("txn_hash %s approved %d times in the audit log" % (h, n))
    approvals = db.rows("SELECT txn_id, amount, customer FROM approvals", str, int, str)
    for tid, amount, cust in approvals:
        if tid in sent:
            if sent[tid]["amount"] != amount or sent[tid]["customer"] != cust:
                problems.append("approval %s: amount/customer %s/%s, sent %s/%s"
                                % (tid, amount, cust, sent[tid]["amount"], sent[tid]["customer"]))
            if hashes[tid] not in approved_hashes:
                problems.append("approval %s counted in daily totals but no approval in the audit log" % tid)
    approved_tids = {row[0] for row in approvals}
    for jti, (_, tid, _) in tokens.items():
        if tid not in approved_tids:
            problems.append("token %s for %s issued but the transfer is not in the daily totals" % (jti, tid))
    # with every approvals row matched to an approval in the audit log and to the amount the client sent
    # (above), approvals == audit approvals and daily_totals == the approvals' sums (totals_match), the
    # totals the policy reads equal the sum of the approved transfers.
    # every redeemed token stays redeemed; every token redeems at most once (across instances)
    for i, (jti, (tok, tid, _)) in enumerate(tokens.items()):
        c, c2 = cs[i % len(cs)], cs[(i + 1) % len(cs)]
        r = c.call("redeem", token=tok)
        if jti in redeemed and r.get("ok"):
            problems.append("token %s redeemed again after restart" % jti)
        if r.get("ok"):
            r = c2.call("redeem", token=tok)
            if r.get("ok"):
                problems.append("token %s redeemable twice" % jti)
    for c in cs:
        c.close()
    return problems


KEY = ("t.customer = a.customer AND t.day = a.day AND t.account_type = a.account_type AND"
       " t.currency = a.currency")


def totals_match(db):
    """Daily totals seen by the policy (daily_totals) equal the sums of the approved transfers (approvals
    table). Returns (approvals, their sum, approvals in the audit log, daily_totals rows that disagree)."""
    n, total = db.rows("SELECT count(*), coalesce(sum(amount), 0) FROM approvals", int, int)[0]
    audit = db.rows("SELECT count(DISTINCT txn_hash) FROM audit WHERE (type='assess' AND result='allow') OR "
                    "(type='verify' AND result='approved')", int)[0][0]
    wrong = db.rows("SELECT count(*) FROM (SELECT customer, day, account_type, currency, sum(amount) AS s"
                    " FROM approvals GROUP BY customer, day, account_type, currency) a LEFT JOIN daily_totals t"
                    " ON " + KEY + " WHERE t.amount IS NULL OR t.amount <> a.s", int)[0][0]
    wrong += db.rows("SELECT count(*) FROM daily_totals t WHERE NOT EXISTS (SELECT 1 FROM approvals a WHERE "
                     + KEY + ")", int)[0][0]
    return n, total, audit, wrong


def crash_loop(iterations, seed=1, threads=4, verbose=True, store=None, instances=1):
    """SIGKILL under load, restart, check (issue 9). store: None for SQLite in the state dir, else
    (url, PgDB) of a PostgreSQL database; instances > 1 share that store (and the keys), and each
    iteration kills one of them or both, each at its own random moment."""
    if threads > N_CUSTOMERS:
        # each thread is one customer: its txn ids and its soft key's sign counter are its own
        raise ValueError("crash_loop: at most %d threads (N_CUSTOMERS)" % N_CUSTOMERS)
    rng = random.Random(seed)
    conf = CRASH_CONF + ("[store]\nurl = %s\n" % store[0] if store else "")
    ds = [Daemon(conf)]
    problems, stats = [], {"tokens": 0, "redeemed": 0, "kills": 0}
    try:
        ds[0].start()
        for _ in range(1, instances):
            # B, C... get a copy of A's state dir: the same signing and template keys (docs/operations.md)
            b = Daemon(conf)
            ds.append(b)
            shutil.copytree(ds[0].state, b.state, dirs_exist_ok=True)
            b.start()
        db = store[1] if store else SqliteDB(os.path.join(ds[0].state, "authd.db"))
        keys = enroll_keys(ds[0])
        for it in range(iterations):
            ledger = Ledger()
            stop = threading.Event()
            ws = [threading.Thread(target=load_worker,
                                   args=(ds[k % len(ds)], ledger, keys, k % N_CUSTOMERS, it, stop,
                                         ds[(k + 1) % len(ds)] if len(ds) > 1 else None))
                  for k in range(threads)]
            for w in ws:
                w.start()
            victims = [0] if len(ds) == 1 else rng.choice([[0], [1], [0, 1]])
            t0 = time.monotonic()
            for when, v in sorted((rng.uniform(0.05, 1.5), v) for v in victims):
                time.sleep(max(0.0, t0 + when - time.monotonic()))
                ds[v].stop(signal.SIGKILL)
                stats["kills"] += 1
            stop.set()
            for w in ws:
                w.join(30 * SLOW)
            for v in victims:
                ds[v].start()
            p = check_state(ds, db, ledger, it)
            n, total, audit, wrong = totals_match(db)
            if n != audit:
                p.append("approvals table has %d transfers, audit log %d approvals" % (n, audit))
            if wrong:
                p.append("%d daily totals differ from the sum of their approvals" % wrong)
            stats["tokens"] += len(ledger.tokens)
            stats["redeemed"] += len(ledger.redeemed)
            if verbose:
                print("iteration %d: killed %s; %d txns, %d tokens, %d redeemed, %d approvals (sum %d) %s"
                      % (it + 1, "+".join("AB"[v] for v in victims) if len(ds) > 1 else "authd", len(ledger.sent),
                         len(ledger.tokens), len(ledger.redeemed), n, total, "OK" if not p else "PROBLEMS"),
                      flush=True)
            for x in p:
                print("  " + x, flush=True)
            problems += ["iteration %d: %s" % (it + 1, x) for x in p]
        return problems, stats
    finally:
        for d in ds:
            d.cleanup()


class CrashSafetyTest(unittest.TestCase):
    def test_sigkill_under_load(self):
        problems, stats = crash_loop(int(os.environ.get("AUTHD_CRASH_ITERATIONS", "4")), seed=1, verbose=False)
        self.assertEqual(problems, [])
        self.assertGreater(stats["tokens"], 0)


# ---------------------------------------------------------------- soak

def soak(minutes, report_every=10):
    """Mixed load (assess, verify fido2, verify face, redeem, admin); prints RSS and fds every 10 s."""
    faces = os.environ.get("AUTHD_FACES_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared",
                                                           "faces", "dev"))
    d = Daemon(CRASH_CONF).start()
    counts = {"assess": 0, "verify_fido2": 0, "verify_face": 0, "redeem": 0, "admin": 0, "errors": 0}
    mu = threading.Lock()
    stop = threading.Event()
    samples = []
    try:
        keys = enroll_keys(d)
        c = d.conn()
        face_img = None
        img = os.path.join(faces, "obama_1.jpg")
        if os.path.exists(img) and "face" in c.call("health").get("plugins", []):
            with open(img, "rb") as f:
                face_img = b64u(f.read())
            r = c.call("enroll_face", customer="CF-0", images=[face_img])
            if not r.get("ok"):
                face_img = None
        img2 = os.path.join(faces, "obama_2.jpg")
        if face_img and os.path.exists(img2):
            with open(img2, "rb") as f:
                face_img = b64u(f.read())

        def bump(k, ok=True):
            with mu:
                counts[k] += 1
                if not ok:
                    counts["errors"] += 1

        def worker(k):
            cust = "CK-%d" % k
            key = keys[cust]
            cc = Conn(d.sock, timeout=60)
            n = 0
            while not stop.is_set():
                n += 1
                r = cc.call("assess", txn=txn("SK-%d-%d" % (k, n), customer=cust, amount=1000))
                bump("assess", r["ok"])
                if r.get("token"):
                    bump("redeem", cc.call("redeem", token=r["token"])["ok"])
                r = cc.call("assess", txn=business_txn("SB-%d-%d" % (k, n), customer=cust))
                bump("assess", r["ok"])
                if r.get("result") == "step_up":
                    with key_lock(key):
                        a = key.assert_(r["challenge"]["fido2"]["challenge"])
                    v = cc.call("verify", challenge_id=r["challenge"]["id"], method="fido2", fido2=a)
                    bump("verify_fido2", v.get("result") == "approved")
                    if v.get("token"):
                        bump("redeem", cc.call("redeem", token=v["token"])["ok"])

        def face_worker():
            cc = Conn(d.sock, timeout=120)
            n = 0
            while not stop.is_set() and face_img:
                n += 1
                r = cc.call("assess", txn=business_txn("SF-%d" % n, customer="CF-0"))
                if r.get("result") != "step_up":
                    continue
                v = cc.call("verify", challenge_id=r["challenge"]["id"], method="face", face={"images": [face_img]})
                bump("verify_face", v.get("ok", False))

        def admin_worker():
            cc = Conn(d.sock, timeout=120)
            n = 0
            while not stop.is_set():
                n += 1
                ops = [("stats", {}), ("list_credentials", {"customer": "CK-0"}),
                       ("freeze", {"account": "ACC-%d" % n, "reason": "soak"}),
                       ("unfreeze", {"account": "ACC-%d" % n}), ("geo_lookup", {"ip": "14.160.1.1"}),
                       ("policy_explain", {"txn": txn("SE-%d" % n)})]
                for op, f in ops:
                    r = cc.call(op, **f)
                    bump("admin", r is not None and r.get("ok", False))
                if n % 20 == 0:
                    bump("admin", cc.call("audit_verify").get("valid", False))
                time.sleep(0.2)

        ws = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(N_CUSTOMERS)]
        ws += [threading.Thread(target=face_worker, daemon=True), threading.Thread(target=admin_worker, daemon=True)]
        for w in ws:
            w.start()
        t0 = time.time()
        print("   t(s)   RSS(kB)  fds  assess verify_fido2 verify_face redeem admin errors", flush=True)
        while time.time() - t0 < minutes * 60:
            time.sleep(report_every)
            rss, fds = proc_usage(d.proc.pid)
            with mu:
                cs = dict(counts)
            samples.append((time.time() - t0, rss, fds))
            print("%7.0f %9d %4d %7d %12d %11d %6d %5d %6d" % (time.time() - t0, rss, fds, cs["assess"],
                  cs["verify_fido2"], cs["verify_face"], cs["redeem"], cs["admin"], cs["errors"]), flush=True)
        stop.set()
        for w in ws:
            w.join(120)
        av = d.conn().call("audit_verify")
        print("audit_verify: %s, %s records" % (av.get("valid"), av.get("records")), flush=True)
        if len(samples) >= 4:
            q = len(samples) // 4
            first = sum(s[1] for s in samples[:q]) / q
            last = sum(s[1] for s in samples[-q:]) / q
            print("RSS first quarter avg %.0f kB, last quarter avg %.0f kB (%+.1f%%); fds %d..%d"
                  % (first, last, 100.0 * (last - first) / first, min(s[2] for s in samples),
                     max(s[2] for s in samples)), flush=True)
        return 0 if av.get("valid") else 1
    finally:
        stop.set()
        d.cleanup()


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "crash-loop":
        n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
        seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else int(time.time())
        store = sys.argv[sys.argv.index("--store") + 1] if "--store" in sys.argv else "sqlite"
        instances = int(sys.argv[sys.argv.index("--instances") + 1]) if "--instances" in sys.argv else 1
        if store not in ("sqlite", "pg") or instances < 1 or (store == "sqlite" and instances != 1):
            print("crash loop: --store sqlite|pg, --instances N (N > 1 only with pg)", file=sys.stderr)
            return 2
        print("crash loop: %d iterations, seed %d, store %s, %d instance(s)" % (n, seed, store, instances),
              flush=True)
        cluster = PgCluster() if store == "pg" else None
        try:
            t0 = time.time()
            problems, stats = crash_loop(n, seed=seed, store=cluster.database("crash") if cluster else None,
                                         instances=instances)
        finally:
            if cluster:
                cluster.stop()
        print("crash loop: %d iterations (%d SIGKILLs) in %.0f s, %d tokens, %d redeemed, %d problems"
              % (n, stats["kills"], time.time() - t0, stats["tokens"], stats["redeemed"], len(problems)))
        return 1 if problems else 0
    if len(sys.argv) >= 2 and sys.argv[1] == "soak":
        return soak(float(sys.argv[2]) if len(sys.argv) > 2 else 10)
    unittest.main(warnings="ignore")
    return 0


if __name__ == "__main__":
    sys.exit(main())
