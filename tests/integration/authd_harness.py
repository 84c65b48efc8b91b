"""Starts a real authd in a temporary directory and talks to it over its socket.

Shared by the integration tests. Uses only Debian's python3 standard library
(plus PyJWT/cryptography where a test verifies tokens independently).

Under valgrind (scripts/valgrind.sh): AUTHD_VALGRIND=1 runs every authd this
harness starts, and every authctl / pamtester (with the PAM module and the
authd-capture helper it runs) the tests start through vg(), under
`valgrind --tool=memcheck`, one log per process in AUTHD_VALGRIND_DIR
(default: a fresh temp dir). Timeouts and latency bounds are multiplied by
SLOW (AUTHD_TIMEOUT_SCALE, default 20 under valgrind, else 1).
"""
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("AUTHD_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
AUTHD = os.path.join(BUILD, "bin", "authd")
AUTHCTL = os.path.join(BUILD, "bin", "authctl")

VALGRIND = os.environ.get("AUTHD_VALGRIND", "") not in ("", "0")
SLOW = float(os.environ.get("AUTHD_TIMEOUT_SCALE") or (20 if VALGRIND else 1))
# An ASan+UBSan build (build-asan) is several times slower: latency bounds allow for it.
try:
    SANITIZED = "libasan" in subprocess.run(["ldd", AUTHD], capture_output=True, text=True, timeout=60).stdout
except (OSError, subprocess.SubprocessError):
    SANITIZED = False
VG_EXIT = 97   # valgrind's exit status when it found an error (not one authd or authctl use)
VG_SUPP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "valgrind.supp")
_vg_dir = []


def vg_dir():
    """Where the valgrind logs go (created on first use)."""
    if not _vg_dir:
        d = os.environ.get("AUTHD_VALGRIND_DIR") or tempfile.mkdtemp(prefix="authd-vg-")
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o1777)   # programs the tests run under other uids (staff, peers) log here too
        _vg_dir.append(d)
    return _vg_dir[0]


def vg(name, children=False):
    """The command prefix that runs a program under valgrind memcheck when AUTHD_VALGRIND is set, else [].

    name labels its log: <test file>.<name>.<pid>.log. children: follow exec (the
    PAM module's authd-capture helper), but not into shell scripts or system tools.
    """
    if not VALGRIND:
        return []
    test = os.path.splitext(os.path.basename(sys.argv[0] or "python"))[0]
    args = ["valgrind", "--tool=memcheck", "--leak-check=full", "--errors-for-leak-kinds=definite",
            "--show-leak-kinds=definite", "--error-exitcode=%d" % VG_EXIT, "--num-callers=40",
            "--suppressions=" + VG_SUPP, "--log-file=" + os.path.join(vg_dir(), "%s.%s.%%p.log" % (test, name))]
    if children:
        args += ["--trace-children=yes", "--trace-children-skip=*.sh,/bin/*,/usr/bin/*,/usr/sbin/*"]
    else:
        args += ["--trace-children=no"]
    return args


def authctl_cmd():
    """argv prefix for authctl (under valgrind with AUTHD_VALGRIND, then with a longer reply timeout)."""
    return vg("authctl") + [AUTHCTL] + (["--timeout", str(int(30000 * SLOW))] if SLOW > 1 else [])


def frame(obj):
    data = json.dumps(obj).encode() if not isinstance(obj, (bytes, bytearray)) else bytes(obj)
    return struct.pack(">I", len(data)) + data


class Conn:
    def __init__(self, path, timeout=10):
        timeout *= SLOW
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        # EAGAIN: the daemon's backlog is full, nothing connected; retry like libauthd-client does
        deadline, pause = time.monotonic() + timeout, 0.001
        while True:
            try:
                self.s.connect(path)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.05)
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
    def __init__(self, config=None, tmp=None, env=None, preexec=None, launch=(), pass_fds=()):
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
        self.preexec = preexec   # run in the child before exec (e.g. resource limits)
        self.launch = list(launch)   # a command authd is started through (it must exec authd in place)
        self.pass_fds = tuple(pass_fds)
        self.proc = None
        self.log = os.path.join(self.tmp, "authd.log")

    def start(self):
        args = self.launch + vg("authd") + [AUTHD, "--state-dir", self.state, "--socket", self.sock, "--foreground"]
        if self.config:
            args += ["--config", self.config]
        self.logf = open(self.log, "a")
        self.proc = subprocess.Popen(args, stdout=self.logf, stderr=self.logf, env=self.env, preexec_fn=self.preexec,
                                     pass_fds=self.pass_fds)
        # The socket is bound before keys, store and plugins load: ready means
        # a health reply, not an accepted connection.
        deadline = time.monotonic() + 60 * SLOW
        while time.monotonic() < deadline:
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
        self.stop(signal.SIGKILL)   # not left running behind a failed setUp
        raise RuntimeError("authd did not start: " + open(self.log).read())

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20 * SLOW)
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

    def log_text(self):
        with open(self.log) as f:
            return f.read()

    def authctl(self, *args, input=None):
        return subprocess.run(authctl_cmd() + ["--socket", self.sock] + list(args), capture_output=True, text=True,
                              input=input, timeout=60 * SLOW)

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
