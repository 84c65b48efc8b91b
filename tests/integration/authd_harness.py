"""Starts a real authd in a temporary directory and talks to it over its socket.

Shared by the integration tests. Uses only Debian's python3 standard library
(plus PyJWT/cryptography where a test verifies tokens independently).
"""
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

BUILD = os.environ.get("AUTHD_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
AUTHD = os.path.join(BUILD, "bin", "authd")
AUTHCTL = os.path.join(BUILD, "bin", "authctl")


def frame(obj):
    data = json.dumps(obj).encode() if not isinstance(obj, (bytes, bytearray)) else bytes(obj)
    return struct.pack(">I", len(data)) + data


class Conn:
    def __init__(self, path, timeout=10):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.n = 0

    def send(self, obj):
        self.s.sendall(frame(obj))

    def recv(self):
        hdr = self._read(4)
        if hdr is None:
            return None
        (n,) = struct.unpack(">I", hdr)
        body = self._read(n)
        return json.loads(body) if body is not None else None

    def _read(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def call(self, op, **fields):
        self.n += 1
        req = {"v": 1, "id": "r%d" % self.n, "op": op}
        req.update(fields)
        self.send(req)
        return self.recv()

    def close(self):
        self.s.close()


class Daemon:
    def __init__(self, config=None, tmp=None, env=None):
        self.tmp = tmp or tempfile.mkdtemp(prefix="authd-it-")
        os.chmod(self.tmp, 0o755)
        self.state = os.path.join(self.tmp, "state")
        self.sock = os.path.join(self.tmp, "authd.sock")
        self.config = None
        if config is not None:
            self.config = os.path.join(self.tmp, "authd.conf")
            with open(self.config, "w") as f:
                f.write(config)
        self.env = dict(os.environ, **(env or {}))
        self.proc = None
        self.log = os.path.join(self.tmp, "authd.log")

    def start(self):
        args = [AUTHD, "--state-dir", self.state, "--socket", self.sock, "--foreground"]
        if self.config:
            args += ["--config", self.config]
        self.logf = open(self.log, "a")
        self.proc = subprocess.Popen(args, stdout=self.logf, stderr=self.logf, env=self.env)
        # The socket is bound before keys, store and plugins load: ready means
        # a health reply, not an accepted connection.
        for _ in range(1200):
            if os.path.exists(self.sock):
                try:
                    c = Conn(self.sock, timeout=30)
                    r = c.call("health")
                    c.close()
                    if r is not None:
                        return self
                except OSError:
                    pass
            if self.proc.poll() is not None:
                raise RuntimeError("authd exited: " + open(self.log).read())
            time.sleep(0.05)
        raise RuntimeError("authd did not start: " + open(self.log).read())

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode if self.proc else None
        self.proc = None
        if hasattr(self, "logf"):
            self.logf.close()
        return rc

    def conn(self):
        return Conn(self.sock)

    def authctl(self, *args, input=None):
        return subprocess.run([AUTHCTL, "--socket", self.sock] + list(args), capture_output=True, text=True,
                              input=input, timeout=60)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def txn(tid, **over):
    t = {"id": tid, "customer": "C-42", "account": "0123456789", "account_type": "personal",
         "account_opened": 1700000000, "amount": 250000, "currency": "VND",
         "payee": {"account": "9876543210", "bank": "VCB", "name": "Cong ty ABC"},
         "channel": "internet_banking", "src_ip": "203.0.113.9", "device_id": "dev-7", "risk_flag": False}
    t.update(over)
    return t
