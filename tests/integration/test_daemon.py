"""Integration tests: a real authd in a temp dir, spoken to over its socket."""
import base64
import hashlib
import json
import os
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import unittest
import warnings

sys.path.insert(0, os.path.dirname(__file__))
from authd_harness import SLOW, Conn, Daemon, authctl_cmd, frame, txn  # noqa: E402

warnings.simplefilter("ignore", ResourceWarning)

ALLOW_CONF = "[policy]\nnew_device = off\n"


def b64url_dec(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def txn_hash(t):
    text = "\n".join(["authd-txn-v1", t["id"], t["customer"], t["account"], str(t["amount"]), t["currency"],
                      t["payee"]["account"], t["payee"]["bank"]])
    return hashlib.sha256(text.encode()).digest()


def verify_with_pyjwt(token, jwks, audience="bank-backend"):
    """Independent verification: PyJWT + cryptography, given only the jwks output."""
    import jwt
    from jwt import PyJWK
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks["keys"] if k["kid"] == kid)
    pk = PyJWK.from_dict(key)
    return jwt.decode(token, pk.key, algorithms=["ES256", "EdDSA"], audience=audience, issuer="authd")


class DaemonTest(unittest.TestCase):
    conf = ALLOW_CONF

    def setUp(self):
        self.d = Daemon(self.conf).start()

    def tearDown(self):
        self.d.cleanup()


class TestProtocol(DaemonTest):
    def test_health_and_jwks(self):
        c = self.d.conn()
        r = c.call("health")
        self.assertTrue(r["ok"])
        self.assertEqual(r["status"], "ok")
        self.assertEqual(r["id"], "r1")
        j = c.call("jwks")
        self.assertEqual(len(j["keys"]), 1)
        self.assertEqual(j["keys"][0]["kty"], "EC")

    def test_pipelining_in_order(self):
        c = self.d.conn()
        reqs = b"".join(frame({"v": 1, "id": "p%d" % i, "op": "assess", "txn": txn("TP-%d" % i)})
                        for i in range(64))
        c.s.sendall(reqs)
        for i in range(64):
            r = c.recv()
            self.assertEqual(r["id"], "p%d" % i)
            self.assertTrue(r["ok"], r)
            self.assertEqual(r["result"], "allow")

    def test_pipelined_mixed_ops_share_batches_in_order(self):
        """A worker takes a connection's queued frames together; their store work shares a batch but each
        request still sees the ones before it, and any other op runs between them in order."""
        self.d.cleanup()
        self.d = Daemon(ALLOW_CONF + "personal_daily = 10000000\n").start()
        c = self.d.conn()
        frames = [
            {"v": 1, "id": "m0", "op": "assess", "txn": txn("TM-1", amount=4000000)},
            {"v": 1, "id": "m1", "op": "assess", "txn": txn("TM-1", amount=4000000)},   # same transfer: replay
            {"v": 1, "id": "m2", "op": "assess", "txn": txn("TM-2", amount=4000000)},
            {"v": 1, "id": "m3", "op": "assess", "txn": txn("TM-3", amount=4000000)},   # over the daily limit
            {"v": 1, "id": "m4", "op": "nope"},
            {"v": 1, "id": "m5", "op": "freeze", "account": "0123456789", "reason": "test"},
            {"v": 1, "id": "m6", "op": "assess", "txn": txn("TM-4", amount=1000)},      # frozen now
            {"v": 1, "id": "m7", "op": "assess", "txn": {"id": "TM-5"}},                 # bad txn
        ]
        c.s.sendall(b"".join(frame(f) for f in frames) + frame(b"[1]"))
        got = [c.recv() for _ in range(len(frames) + 1)]
        self.assertEqual([g.get("id") for g in got[:-1]], [f["id"] for f in frames])
        self.assertEqual(got[0]["result"], "allow")
        self.assertEqual(got[1]["result"], "allow")
        self.assertNotEqual(got[0]["token"], got[1]["token"])
        self.assertEqual(got[2]["result"], "allow")
        self.assertNotEqual(got[3]["result"], "allow", got[3])
        self.assertEqual(got[4]["error"]["code"], "unsupported")
        self.assertTrue(got[5]["ok"], got[5])
        self.assertEqual(got[6]["result"], "deny")
        self.assertEqual(got[7]["error"]["code"], "bad_request")
        self.assertEqual(got[8]["error"]["code"], "bad_request")
        r = c.call("audit_verify")
        self.assertTrue(r["valid"])

    def test_concurrent_connections(self):
        errors = []

        def worker(k):
            try:
                c = self.d.conn()
                for i in range(20):
                    r = c.call("assess", txn=txn("TC-%d-%d" % (k, i), customer="CC-%d" % k, amount=10000))
                    if not r["ok"] or r["result"] != "allow":
                        errors.append(r)
                c.close()
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

        ts = [threading.Thread(target=worker, args=(k,)) for k in range(16)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        self.assertEqual(errors, [])
        r = self.d.conn().call("audit_verify")
        self.assertTrue(r["valid"])
        self.assertEqual(r["records"], 16 * 20)

    def bad(self, payload, code):
        c = self.d.conn()
        c.s.sendall(payload)
        r = c.recv()
        self.assertIsNotNone(r, "no reply")
        self.assertFalse(r["ok"])
        self.assertEqual(r["error"]["code"], code, r)
        return c

    def test_malformed_frames(self):
        self.bad(frame(b"\xff\xfe not utf8"), "bad_request")
        self.bad(frame(b"[1,2,3]"), "bad_request")
        self.bad(frame(b"{\"v\":1,"), "bad_request")
        # jansson's message quotes this input cut inside a multi-byte character: still exactly one reply
        c = self.bad(frame(b'{"v":1,"id":"pbAAAA\\\\\\\\\\\\\\\\\\\\\\\xd7\x9b\\\\\\\\\\\\\\\\\\\\\\\\\\R\\\\:\\\\geo_lookup\\\\\\\\\\\\\\\\\\\\\\\\\\\\15-.--,--------0\\\\\\\\\\\\\\\\\\\\AAAAAA","op":"approve"}'), "bad_request")
        self.assertTrue(c.call("health")["ok"])
        self.bad(frame({"v": 1, "op": "health"}), "bad_request")                # no id
        self.bad(frame({"v": 1, "id": 5, "op": "health"}), "bad_request")       # id wrong type
        self.bad(frame({"v": 2, "id": "a", "op": "health"}), "unsupported")     # wrong v
        self.bad(frame({"v": "1", "id": "a", "op": "health"}), "bad_request")
        self.bad(frame({"v": 1, "id": "a", "op": "nope"}), "unsupported")
        self.bad(frame({"v": 1, "id": "a"}), "bad_request")                      # no op
        self.bad(frame({"v": 1, "id": "x" * 200, "op": "health"}), "bad_request")
        self.bad(frame(b'{"v":1,"id":"a","id":"b","op":"health"}'), "bad_request")  # duplicate key
        # garbage after a bad frame: the connection keeps working
        c = self.bad(frame(b"garbage"), "bad_request")
        self.assertTrue(c.call("health")["ok"])
        # unknown fields are ignored
        r = self.d.conn().call("health", extra={"a": 1})
        self.assertTrue(r["ok"])

    def test_oversized_and_zero_length_close(self):
        c = self.d.conn()
        c.s.sendall(struct.pack(">I", 0x40000000))       # 1 GiB announced
        r = c.recv()
        self.assertEqual(r["error"]["code"], "too_large")
        self.assertIsNone(c.recv())                        # then closed
        c = self.d.conn()
        c.s.sendall(struct.pack(">I", 0))
        self.assertEqual(c.recv()["error"]["code"], "bad_request")
        self.assertIsNone(c.recv())

    def test_bad_txn_fields(self):
        c = self.d.conn()
        cases = [({"amount": -5}, "amount"), ({"amount": 1.5}, "amount"), ({"amount": 2 ** 60}, "amount"),
                 ({"account_type": "joint"}, "account_type"), ({"src_ip": None}, "src_ip"),
                 ({"customer": "C\u0001"}, "customer"), ({"id": "T" * 500}, "id"), ({"payee": 7}, "payee"),
                 ({"currency": "vnd"}, "currency"), ({"risk_flag": "yes"}, "risk_flag")]
        for over, field in cases:
            r = c.call("assess", txn=txn("TB-1", **over))
            self.assertFalse(r["ok"], over)
            self.assertEqual(r["error"]["code"], "bad_request")
            self.assertIn(field, r["error"]["message"])
        self.assertEqual(c.call("audit_verify")["records"], 0)   # nothing stored
        self.assertFalse(c.call("assess")["ok"])
        self.assertFalse(c.call("assess", txn="x")["ok"])

    def test_idle_and_partial_clients_hold_no_worker(self):
        idle = [socket.socket(socket.AF_UNIX) for _ in range(50)]
        for s in idle:
            s.connect(self.d.sock)
        half = self.d.conn()
        half.s.sendall(struct.pack(">I", 100) + b"{\"v\":")    # never finished
        t0 = time.time()
        r = self.d.conn().call("assess", txn=txn("TI-1"))
        self.assertTrue(r["ok"])
        self.assertLess(time.time() - t0, 2.0 * SLOW)
        half.close()                                            # vanishes mid-frame
        for s in idle:
            s.close()
        self.assertTrue(self.d.conn().call("health")["ok"])


class TestTokens(DaemonTest):
    def test_allow_token_verified_independently(self):
        c = self.d.conn()
        t = txn("T-1001")
        r = c.call("assess", txn=t)
        self.assertEqual(r["result"], "allow")
        jwks = c.call("jwks")
        claims = verify_with_pyjwt(r["token"], jwks)
        self.assertEqual(claims["sub"], "C-42")
        self.assertEqual(claims["acr"], "urn:authd:acr:none")
        self.assertEqual(claims["amr"], [])
        self.assertEqual(claims["txn"]["id"], "T-1001")
        self.assertEqual(b64url_dec(claims["txn"]["hash"]), txn_hash(t))
        self.assertEqual(claims["exp"] - claims["iat"], 120)
        self.assertEqual(len(b64url_dec(claims["jti"])), 16)
        hdr = json.loads(b64url_dec(r["token"].split(".")[0]))
        self.assertEqual(hdr["typ"], "authd-approval+jwt")
        self.assertEqual(hdr["alg"], "ES256")

    def test_txn_hash_fixed_vector(self):
        # DESIGN.md section 4 sample; expected value computed independently here.
        t = txn("T-1001", account_type="business", amount=250000000, device_id="dev-7")
        self.assertEqual(txn_hash(t).hex(),
                         hashlib.sha256(b"authd-txn-v1\nT-1001\nC-42\n0123456789\n250000000\nVND\n9876543210\nVCB")
                         .hexdigest())

    def test_rotate_key_keeps_old_tokens_verifiable(self):
        c = self.d.conn()
        old = c.call("assess", txn=txn("TR-1"))["token"]
        kid = c.call("rotate_key")["kid"]
        jwks = c.call("jwks")
        self.assertEqual(len(jwks["keys"]), 2)
        self.assertEqual(jwks["keys"][0]["kid"], kid)
        verify_with_pyjwt(old, jwks)
        new = c.call("assess", txn=txn("TR-2"))["token"]
        verify_with_pyjwt(new, jwks)
        self.assertTrue(c.call("redeem", token=old)["ok"])
        # the daemon restarted keeps both keys
        self.d.stop()
        self.d.start()
        self.assertEqual(len(self.d.conn().call("jwks")["keys"]), 2)

    def test_redeem_once(self):
        c = self.d.conn()
        tok = c.call("assess", txn=txn("TD-1"))["token"]
        self.assertEqual(c.call("redeem", token=tok)["result"], "redeemed")
        r = c.call("redeem", token=tok)
        self.assertEqual(r["error"]["code"], "conflict")
        bad = tok[:-4] + ("AAAA" if not tok.endswith("AAAA") else "BBBB")
        self.assertEqual(c.call("redeem", token=bad)["error"]["code"], "bad_request")
        self.assertEqual(c.call("redeem", token="x.y.z")["error"]["code"], "bad_request")

    def test_idempotent_assess(self):
        c = self.d.conn()
        t = txn("TID-1", amount=15000000)    # personal_amount -> step_up
        a = c.call("assess", txn=t)
        b = c.call("assess", txn=t)
        self.assertEqual(a["result"], "step_up")
        self.assertEqual(b["result"], "step_up")
        self.assertEqual(a["challenge"]["id"], b["challenge"]["id"])
        t2 = dict(t, amount=15000001)
        r = c.call("assess", txn=t2)
        self.assertEqual(r["error"]["code"], "conflict")
        # allowed twice: a fresh token, counted once in the day's total
        x = c.call("assess", txn=txn("TID-2", amount=9000000))
        y = c.call("assess", txn=txn("TID-2", amount=9000000))
        self.assertEqual(x["result"], "allow")
        self.assertEqual(y["result"], "allow")
        self.assertNotEqual(x["token"], y["token"])
        # both tokens name one transfer: it can be redeemed (executed) once
        self.assertTrue(c.call("redeem", token=x["token"])["ok"])
        self.assertEqual(c.call("redeem", token=y["token"])["error"]["code"], "conflict")
        z = c.call("policy_explain", txn=txn("TID-3", amount=1000))
        self.assertEqual(z["facts"]["approved_today"], 9000000)


class TestAdmin(DaemonTest):
    def test_freeze_denies_unfreeze_allows(self):
        c = self.d.conn()
        self.assertTrue(c.call("freeze", account="0123456789", reason="police request 42")["ok"])
        r = c.call("assess", txn=txn("TF-1"))
        self.assertEqual(r["result"], "deny")
        self.assertIn("account_frozen", r["reasons"])
        self.assertNotIn("token", r)
        self.assertTrue(c.call("unfreeze", account="0123456789")["ok"])
        self.assertEqual(c.call("assess", txn=txn("TF-2"))["result"], "allow")
        self.assertFalse(c.call("freeze", account="0123456789")["ok"])   # reason required

    def test_stats(self):
        c = self.d.conn()
        c.call("assess", txn=txn("TS-1"))
        s = c.call("stats")
        self.assertEqual(s["store"]["audit_records"], 1)
        self.assertGreaterEqual(s["process"]["allow"], 1)

    def test_audit_survives_restart_and_detects_tampering(self):
        c = self.d.conn()
        for i in range(10):
            c.call("assess", txn=txn("TA-%d" % i))
        c.call("freeze", account="A-1", reason="r")
        self.d.stop()
        self.d.start()
        r = self.d.conn().call("audit_verify")
        self.assertEqual((r["valid"], r["records"]), (True, 11))
        self.d.stop()
        db = sqlite3.connect(os.path.join(self.d.state, "authd.db"))
        db.execute("UPDATE audit SET result = 'allow' WHERE seq = 11")
        db.commit()
        db.close()
        self.d.start()
        r = self.d.conn().call("audit_verify")
        self.assertFalse(r["valid"])
        self.assertEqual(r["first_bad_seq"], 11)
        self.d.stop()
        db = sqlite3.connect(os.path.join(self.d.state, "authd.db"))
        db.execute("UPDATE audit SET result = 'done' WHERE seq = 11")
        db.execute("DELETE FROM audit WHERE seq = 5")
        db.commit()
        db.close()
        self.d.start()
        r = self.d.conn().call("audit_verify")
        self.assertEqual((r["valid"], r["first_bad_seq"]), (False, 5))
        p = self.d.authctl("audit", "verify")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("INVALID", p.stdout)

    def test_audit_export_checked_offline(self):
        c = self.d.conn()
        for i in range(5):
            c.call("assess", txn=txn("TE-%d" % i, customer="C-%d" % (i % 2)))
        self.assertTrue(c.call("unlock", customer="C-1", reason="mở khóa theo yêu cầu — chi nhánh Hà Nội")["ok"])
        bundle_path = os.path.join(self.d.tmp, "bundle.json")
        p = self.d.authctl("audit", "export", "--customer", "C-1", "-o", bundle_path)
        self.assertEqual(p.returncode, 0, p.stderr)
        b = json.load(open(bundle_path))
        self.assertEqual([r["customer"] for r in b["records"]], ["C-1", "C-1", "C-1"])
        self.assertIn("Hà Nội", b["records"][2]["reasons"][0])
        # each record's hash recomputes in Python from the documented canonical form
        for rec in b["records"]:
            body = {k: v for k, v in rec.items() if k not in ("prev", "hash")}
            canon = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
            self.assertEqual(hashlib.sha256(bytes.fromhex(rec["prev"]) + canon).hexdigest(), rec["hash"])
        self.d.stop()    # offline: no daemon needed
        p = self.d.authctl("audit", "check", bundle_path)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("VALID", p.stdout)
        # wrong types, truncated and garbage bundles: refused, never a crash
        bad = json.loads(json.dumps(b))
        bad["proof"]["links"][0][1] = 7
        for body in (json.dumps(bad), json.dumps(b)[:200], "[1,2]", "\x00garbage", json.dumps(dict(b, proof=3))):
            with open(bundle_path, "w") as f:
                f.write(body)
            p = self.d.authctl("audit", "check", bundle_path)
            self.assertIn(p.returncode, (1, 2), p.stdout + p.stderr)
            self.assertFalse(p.stdout.startswith("VALID"), p.stdout)
        b["records"][0]["result"] = "deny"
        json.dump(b, open(bundle_path, "w"))
        p = self.d.authctl("audit", "check", bundle_path)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("INVALID", p.stdout)

    def test_audit_bundle_signed_by_another_key_refused(self):
        """The bundle carries the key set it was signed with, so a forger can sign any bundle with a key of
        their own. A kid is its key's RFC 7638 thumbprint: a foreign key claiming the bank's kid is refused;
        one under its own kid is reported as such, and refused against the bank's keys (--jwks)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
        c = self.d.conn()
        c.call("assess", txn=txn("TF-1", customer="C-9"))
        bundle_path, bank_jwks = os.path.join(self.d.tmp, "b.json"), os.path.join(self.d.tmp, "bank.jwks")
        p = self.d.authctl("audit", "export", "--customer", "C-9", "-o", bundle_path)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(bank_jwks, "w") as f:
            json.dump(c.call("jwks"), f)
        b = json.load(open(bundle_path))
        bank_kid = b["proof"]["kid"]
        self.d.stop()

        def b64u(raw):
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        sk = ec.generate_private_key(ec.SECP256R1())
        n = sk.public_key().public_numbers()
        jwk = {"crv": "P-256", "kty": "EC", "x": b64u(n.x.to_bytes(32, "big")),
               "y": b64u(n.y.to_bytes(32, "big"))}
        thumb = json.dumps(jwk, sort_keys=True, separators=(",", ":")).encode()
        own_kid = b64u(hashlib.sha256(thumb).digest())

        def forge(kid):
            f = json.loads(json.dumps(b))
            f["proof"]["kid"] = kid
            f["jwks"] = {"keys": [dict(jwk, kid=kid, alg="ES256", use="sig")]}
            payload = json.dumps({"records": f["records"], "proof": f["proof"]}, sort_keys=True,
                                 separators=(",", ":"), ensure_ascii=False).encode()
            h = b64u(json.dumps({"alg": "ES256", "kid": kid, "typ": "authd-audit+jws"}).encode())
            der = sk.sign((h + "." + b64u(payload)).encode(), ec.ECDSA(hashes.SHA256()))
            r, s_ = decode_dss_signature(der)
            f["signature"] = h + ".." + b64u(r.to_bytes(32, "big") + s_.to_bytes(32, "big"))
            json.dump(f, open(bundle_path, "w"))
        forge(bank_kid)
        p = self.d.authctl("audit", "check", bundle_path)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("thumbprint", p.stdout)
        forge(own_kid)
        p = self.d.authctl("audit", "check", bundle_path)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)   # consistent in itself, and says whose it is
        self.assertIn("kid %s" % own_kid, p.stdout)
        self.assertIn("came with the bundle", p.stdout)
        p = self.d.authctl("audit", "check", bundle_path, "--jwks", bank_jwks)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("unknown kid", p.stdout)
        # a validly signed bundle with a link of the wrong type: refused, not a crash
        b["proof"]["links"][0][1] = 7
        forge(own_kid)
        p = self.d.authctl("audit", "check", bundle_path)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("does not sit in the chain links", p.stdout)

    def test_audit_cli_exit_codes_and_filters(self):
        """`authctl --json audit verify` exits 1 on a broken chain (scripts read the exit code), and an export
        filter that cannot be sent is refused instead of exporting everyone's records."""
        c = self.d.conn()
        for i in range(3):
            c.call("assess", txn=txn("TX-%d" % i, customer="C-%d" % i))
        self.assertEqual(self.d.authctl("--json", "audit", "verify").returncode, 0)
        p = self.d.authctl("audit", "export", "--customer", "C-\udcff")
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        p = self.d.authctl("audit", "export", "--since", "yesterday")
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.d.stop()
        db = sqlite3.connect(os.path.join(self.d.state, "authd.db"))
        db.execute("UPDATE audit SET result = 'deny' WHERE seq = 2")
        db.commit()
        db.close()
        self.d.start()
        p = self.d.authctl("--json", "audit", "verify")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertFalse(json.loads(p.stdout)["valid"])

    def test_freeze_reason_of_quotes_and_backslashes(self):
        """Every reason the 200-byte check accepts is audited: quotes and backslashes double in the record's
        JSON (a fixed buffer made a freeze with 148 quotes fail as "out of memory")."""
        c = self.d.conn()
        reasons = ['"' * 200, "\\" * 200, '"\\' * 100, "ạ" * 66 + "\\\\"]
        for i, reason in enumerate(reasons):
            self.assertEqual(len(reason.encode()), 200)
            r = c.call("freeze", account="A-Q%d" % i, reason=reason)
            self.assertTrue(r["ok"], r)
            self.assertTrue(r["changed"])
            r = c.call("unfreeze", account="A-Q%d" % i, reason=reason)
            self.assertTrue(r["ok"], r)
            e = c.call("audit_export", account="A-Q%d" % i)
            self.assertTrue(e["ok"], e)
            self.assertEqual([(x["type"], x["result"], x["reasons"]) for x in e["records"]],
                             [("freeze", "done", [reason]), ("unfreeze", "done", [reason])])
        self.assertEqual(c.call("freeze", account="A-Q", reason='"' * 201)["error"]["code"], "bad_request")
        self.assertTrue(c.call("audit_verify")["valid"])
        self.assertNotIn("internal error", self.d.log_text())

    def test_rotate_key_not_taken_when_its_audit_record_fails(self):
        """The store refuses rotate_key's audit record: an error, and the key ring (jwks, key files, the key
        tokens are signed with) stays as it was; a retry once the store works rotates from the same ring."""
        c = self.d.conn()
        keys = os.path.join(self.d.state, "keys")

        def key_files():
            out = {}
            for n in sorted(os.listdir(keys)):
                with open(os.path.join(keys, n), "rb") as f:
                    out[n] = f.read()
            return out

        old_tok = c.call("assess", txn=txn("TK-1"))["token"]
        jwks, files = c.call("jwks")["keys"], key_files()
        self.assertEqual(list(files), ["current.pem"])
        db = sqlite3.connect(os.path.join(self.d.state, "authd.db"), timeout=30)
        db.execute("CREATE TRIGGER audit_fails BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'no audit'); END")
        db.commit()
        for _ in range(2):   # a retry must not push the original key out either
            r = c.call("rotate_key")
            self.assertFalse(r["ok"], r)
            self.assertIn("not rotated", r["error"]["message"])
            self.assertEqual(c.call("jwks")["keys"], jwks)
            self.assertEqual(key_files(), files)
        db.execute("DROP TRIGGER audit_fails")
        db.commit()
        db.close()
        tok = c.call("assess", txn=txn("TK-2"))["token"]
        self.assertEqual(json.loads(b64url_dec(tok.split(".")[0]))["kid"], jwks[0]["kid"])
        kid = c.call("rotate_key")["kid"]
        after = c.call("jwks")
        self.assertEqual([k["kid"] for k in after["keys"]], [kid, jwks[0]["kid"]])
        verify_with_pyjwt(old_tok, after)
        self.assertEqual(sorted(key_files()), ["current.pem", "previous.pem"])
        self.assertEqual(key_files()["previous.pem"], files["current.pem"])
        e = c.call("audit_export")
        self.assertEqual([x["reasons"] for x in e["records"] if x["type"] == "rotate_key"], [["kid:" + kid]])
        self.assertTrue(c.call("audit_verify")["valid"])
        self.d.stop()
        self.d.start()
        self.assertEqual(self.d.conn().call("jwks")["keys"], after["keys"])

    def test_rotate_key_not_taken_when_the_new_key_cannot_be_saved(self):
        """The audit record is committed first; a key file that then cannot be written leaves the ring and the
        files as they were, and the record names a kid that never signed anything."""
        c = self.d.conn()
        keys = os.path.join(self.d.state, "keys")
        jwks = c.call("jwks")["keys"]
        with open(os.path.join(keys, "current.pem"), "rb") as f:
            current = f.read()
        blocker = os.path.join(keys, "current.pem.new.%d" % self.d.proc.pid)   # the rename onto it fails
        os.mkdir(blocker)
        r = c.call("rotate_key")
        self.assertEqual(r["error"]["code"], "internal", r)
        self.assertIn("cannot save the new key: I/O error; the key was not rotated", self.d.log_text())
        self.assertEqual(c.call("jwks")["keys"], jwks)
        self.assertEqual(sorted(os.listdir(keys)), ["current.pem", os.path.basename(blocker)])
        with open(os.path.join(keys, "current.pem"), "rb") as f:
            self.assertEqual(f.read(), current)
        rec = [x for x in c.call("audit_export")["records"] if x["type"] == "rotate_key"]
        self.assertEqual(len(rec), 1)
        self.assertNotIn(rec[0]["reasons"][0][4:], [k["kid"] for k in jwks])
        os.rmdir(blocker)
        kid = c.call("rotate_key")["kid"]
        self.assertEqual([k["kid"] for k in c.call("jwks")["keys"]], [kid, jwks[0]["kid"]])
        self.assertEqual(sorted(os.listdir(keys)), ["current.pem", "previous.pem"])
        c.close()

    def _fill_audit(self, rows):
        """Appends (ts, customer) records to the stopped daemon's chain, hashed as protocol.md section 8 says."""
        db = sqlite3.connect(os.path.join(self.d.state, "authd.db"), timeout=30)
        seq, prev = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone() or (0, "0" * 64)

        def records():
            nonlocal seq, prev
            for ts, customer in rows:
                seq += 1
                body = {"seq": seq, "ts": ts, "type": "unlock", "customer": customer, "account": None,
                        "txn_hash": None, "result": "unchanged", "reasons": [], "method": None, "jti": None,
                        "actor": "uid:0"}
                canon = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
                h = hashlib.sha256(bytes.fromhex(prev) + canon).hexdigest()
                yield seq, ts, "unlock", customer, None, None, "unchanged", "[]", None, None, "uid:0", prev, h
                prev = h

        with db:
            db.executemany("INSERT INTO audit VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", records())
        db.close()

    def test_audit_export_limits(self):
        """At most 100000 matching records, and 400000 chain links from the first exported record to the last:
        past either limit the export is too_large and nothing is signed (links used to stop at the limit while
        later records still went out, signed, so `audit check` refused the bundle). Links past the last
        exported record are not needed: a long chain after it is no reason to refuse."""
        self.d.stop()
        t0 = 1795425790
        # C-A at seqs 1 and 400001: 400001 links, one over the limit; C-X fills the chain
        self._fill_audit([(t0, "C-A")] + [(t0 + 1, "C-X")] * 399999 + [(t0 + 2, "C-A")] + [(t0 + 3, "C-X")] * 10)
        self.d.start()
        c = self.d.conn()
        c.s.settimeout(300 * SLOW)
        r = c.call("audit_export", customer="C-A")
        self.assertEqual(r["error"]["code"], "too_large", str(r)[:300])
        self.assertEqual(r["error"]["message"], "the matching records span more than 400000 chain records: "
                         "narrow since/until")
        self.assertNotIn("signature", r)
        r = c.call("audit_export", customer="C-X")
        self.assertEqual(r["error"]["code"], "too_large", str(r)[:300])
        self.assertEqual(r["error"]["message"], "more than 100000 records match: narrow since/until")
        self.assertNotIn("signature", r)
        # C-A's first record alone: its links stop there, however long the chain goes on after it
        r = c.call("audit_export", customer="C-A", until=t0)
        self.assertTrue(r["ok"], str(r)[:300])
        self.assertEqual([x["seq"] for x in r["records"]], [1])
        self.assertEqual(r["proof"]["links"], [[1, r["records"][0]["hash"]]])
        self.assertEqual(r["proof"]["head_seq"], 400011)
        c.close()
        bundle = os.path.join(self.d.tmp, "bundle.json")
        with open(bundle, "w") as f:
            json.dump({k: r[k] for k in ("records", "proof", "signature", "jwks")}, f)
        p = self.d.authctl("audit", "check", bundle)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("VALID", p.stdout)

    def test_authctl_commands(self):
        tf = os.path.join(self.d.tmp, "t.json")
        json.dump(txn("TCLI-1"), open(tf, "w"))
        p = self.d.authctl("health")
        self.assertEqual(p.returncode, 0)
        self.assertIn("status: ok", p.stdout)
        p = self.d.authctl("assess", tf)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("result: allow", p.stdout)
        tok = [l for l in p.stdout.splitlines() if l.startswith("token: ")][0][7:]
        p = self.d.authctl("token", "verify", tok)
        self.assertEqual(p.returncode, 0, p.stdout)
        p = self.d.authctl("--json", "audit", "verify")
        self.assertEqual(json.loads(p.stdout)["valid"], True)
        p = subprocess.run(authctl_cmd() + ["--socket", self.d.tmp + "/nope.sock", "health"], capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 3)
        self.assertIn("nope.sock", p.stderr)


class TestPeers(unittest.TestCase):
    """SO_PEERCRED roles: run clients as another uid (needs root, as in CI)."""

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to run a client under another uid")
        self.d = Daemon("[server]\nclients = 65534\nadmins = 0\n[policy]\nnew_device = off\n").start()

    def tearDown(self):
        self.d.cleanup()

    def as_uid(self, uid, op, **fields):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                os.setgid(uid)
                os.setuid(uid)
                try:
                    c = Conn(self.d.sock)
                    out = c.call(op, **fields)
                except OSError as e:
                    out = {"oserror": str(e)}
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

    def test_roles(self):
        r = self.as_uid(65534, "assess", txn=txn("TPEER-1"))
        self.assertTrue(r["ok"], r)
        r = self.as_uid(65534, "freeze", account="A", reason="x")
        self.assertEqual(r["error"]["code"], "unauthorized")
        r = self.d.conn().call("freeze", account="A", reason="x")     # root is admin
        self.assertTrue(r["ok"])
        r = self.d.conn().call("assess", txn=txn("TPEER-2"))           # root is not a client
        self.assertEqual(r["error"]["code"], "unauthorized")
        r = self.as_uid(12345, "health")                                # neither: closed before parsing
        self.assertTrue(r is None or "oserror" in r, r)


class TestPrivileges(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to start as root and drop privileges")

    def test_drops_to_service_user(self):
        d = Daemon("[server]\nuser = nobody\nclients = 0\nadmins = 0\n[policy]\nnew_device = off\n")
        try:
            os.makedirs(d.state)
            os.chown(d.state, 65534, 65534)
            d.start()
            status = open("/proc/%d/status" % d.proc.pid).read()
            uids = [l for l in status.splitlines() if l.startswith("Uid:")][0].split()[1:]
            self.assertEqual(uids, ["65534"] * 4)
            c = d.conn()
            self.assertEqual(c.call("assess", txn=txn("TPRIV-1"))["result"], "allow")
            self.assertTrue(c.call("audit_verify")["valid"])
            st = os.stat(os.path.join(d.state, "keys", "current.pem"))
            self.assertEqual((st.st_uid, st.st_mode & 0o777), (65534, 0o600))
        finally:
            d.cleanup()

    def test_refuses_state_dir_of_another_user(self):
        d = Daemon("[server]\nuser = nobody\n")
        os.makedirs(d.state)
        with self.assertRaises(RuntimeError) as e:
            d.start()
        self.assertIn("must be owned by nobody", str(e.exception))
        d.cleanup()


class TestLimits(unittest.TestCase):
    def test_connections_per_peer(self):
        d = Daemon("[server]\nmax_per_peer = 5\n").start()
        try:
            time.sleep(0.5 * SLOW)   # let the start-up probe's connection close
            conns, served = [d.conn() for _ in range(8)], 0
            for c in conns:
                try:
                    r = c.call("health")
                    served += 1 if r and r["ok"] else 0
                except OSError:
                    pass
            # never more than the cap at once (a just-closed probe may still count)
            self.assertIn(served, (4, 5))
            self.assertIn("refused connection from uid", open(d.log).read())
            for c in conns:
                c.close()
            time.sleep(0.3 * SLOW)
            self.assertTrue(d.conn().call("health")["ok"])
        finally:
            d.cleanup()


class TestLifecycle(unittest.TestCase):
    def test_unknown_config_key_stops_startup(self):
        d = Daemon("[policy]\nnew_device = off\nbogus_key = 1\n")
        with self.assertRaises(RuntimeError) as e:
            d.start()
        self.assertIn("bogus_key", str(e.exception))
        self.assertIn(":3:", str(e.exception))
        d.cleanup()

    def test_empty_unknown_section_stops_startup(self):
        d = Daemon("[policy]\nnew_device = off\n\n[polcy]\n")
        with self.assertRaises(RuntimeError) as e:
            d.start()
        self.assertIn("[polcy]", str(e.exception))
        self.assertIn(":4:", str(e.exception))
        d.cleanup()

    def test_sigterm_drains_and_sighup_reloads(self):
        d = Daemon(ALLOW_CONF).start()
        try:
            c = d.conn()
            self.assertEqual(c.call("assess", txn=txn("TL-1", amount=15000000))["result"], "step_up")
            with open(d.config, "w") as f:
                f.write("[policy]\nnew_device = off\npersonal_amount = 20000000\npersonal_daily = 90000000\n")
            d.proc.send_signal(1)
            time.sleep(0.5 * SLOW)
            self.assertEqual(c.call("assess", txn=txn("TL-2", amount=15000000))["result"], "allow")
            c.send({"v": 1, "id": "last", "op": "health"})
            self.assertEqual(d.stop(), 0)
            self.assertEqual(c.recv()["id"], "last")
            self.assertFalse(os.path.exists(d.sock))
        finally:
            d.cleanup()

    def test_retention_prunes_expired_rows(self):
        """[store] prune_interval / keep_expired on SQLite: expired challenges, enrollments and token ids and
        past days' totals go once keep_expired has passed; "txn:" entries, live rows and records stay."""
        d = Daemon(ALLOW_CONF + "\n[store]\nprune_interval = 1\nkeep_expired = 3600\n").start()
        try:
            c = d.conn()
            self.assertEqual(c.call("assess", txn=txn("TR-1", customer="C-RET"))["result"], "allow")
            first = c.call("assess", txn=txn("TR-2", customer="C-RET", amount=15000000))
            self.assertEqual(first["result"], "step_up", first)
            now = int(time.time())
            day = (now + 7 * 3600) // 86400
            db = sqlite3.connect(os.path.join(d.state, "authd.db"), timeout=30)
            self.assertEqual(db.execute("SELECT v FROM meta WHERE k = 'schema_version'").fetchone()[0], "5")
            with db:  # one transaction: a pass sees all of it or none
                db.executemany("INSERT INTO challenges VALUES (?, 'txn', 'C-RET', 'T-X', x'00', x'00', ?, ?, 0, 0,"
                               " '{}')", [("ch-old", now - 9000, now - 7200), ("ch-live", now, now + 600)])
                db.execute("INSERT INTO enrollments VALUES ('en-old', 'C-RET', x'00', ?)", (now - 7200,))
                db.executemany("INSERT INTO redeemed VALUES (?, ?, ?)", [("jti-old", now - 7200, now - 7300),
                               ("txn:T-OLD", now - 7200, now - 7300), ("jti-live", now + 60, now)])
                # days before the day of (now - keep_expired) go: day - 5 always, today never
                db.executemany("INSERT INTO daily_totals VALUES (?, ?, 1, 'VND', ?)", [("C-RET", day - 5, 5),
                               ("C-KEEP", day, 6)])
                # TR-2's step-up challenge as if it had expired long ago
                db.execute("UPDATE challenges SET expires = ? WHERE id = ?", (now - 7200, first["challenge"]["id"]))
            deadline = time.time() + 60 * SLOW
            while time.time() < deadline and "pruned" not in d.log_text():
                time.sleep(0.2)
            self.assertIn("store: pruned 2 challenges, 1 enrollments, 1 token ids and 1 daily totals",
                          d.log_text())
            self.assertEqual(db.execute("SELECT id FROM challenges").fetchall(), [("ch-live",)])
            # a retried assess of TR-2 (its decision is kept) gets the same decision and a fresh challenge
            again = c.call("assess", txn=txn("TR-2", customer="C-RET", amount=15000000))
            self.assertEqual(again["result"], "step_up", again)
            self.assertNotEqual(again["challenge"]["id"], first["challenge"]["id"])
            self.assertEqual(db.execute("SELECT COUNT(*) FROM enrollments").fetchone()[0], 0)
            self.assertEqual(db.execute("SELECT jti FROM redeemed ORDER BY jti").fetchall(),
                             [("jti-live",), ("txn:T-OLD",)])
            self.assertEqual(db.execute("SELECT customer, day - ? FROM daily_totals ORDER BY customer",
                                        (day,)).fetchall(), [("C-KEEP", 0), ("C-RET", 0)])
            self.assertEqual(db.execute("SELECT COUNT(*) FROM approvals").fetchone()[0], 1)
            db.close()
            self.assertTrue(c.call("audit_verify")["valid"])
            c.close()
        finally:
            d.cleanup()

    def test_backup_while_serving(self):
        """operations.md "Backups and restores": VACUUM INTO while assessments go on gives a copy whose
        schema and audit chain `authctl store check` accepts, made with the caller's umask."""
        d = Daemon(ALLOW_CONF).start()
        stop = threading.Event()
        errors = []

        def load():
            c = d.conn()
            i = 0
            while not stop.is_set():
                r = c.call("assess", txn=txn("TB-%d" % i, customer="C-B%d" % (i % 7), amount=1000))
                if r.get("result") != "allow":
                    errors.append(r)
                i += 1
            c.close()

        t = threading.Thread(target=load)
        t.start()
        try:
            time.sleep(0.5)
            copy = os.path.join(d.tmp, "backup.db")
            old = os.umask(0o077)
            try:
                db = sqlite3.connect(os.path.join(d.state, "authd.db"), timeout=30)
                db.execute("VACUUM INTO ?", (copy,))
                db.close()
            finally:
                os.umask(old)
            time.sleep(0.2)
        finally:
            stop.set()
            t.join(60)
        try:
            self.assertEqual(errors, [])
            self.assertEqual(os.stat(copy).st_mode & 0o077, 0)
            out = subprocess.run(authctl_cmd() + ["store", "check", "--url", "sqlite:" + copy], capture_output=True,
                                 text=True, timeout=60 * SLOW)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertIn("audit chain valid", out.stdout)
            n = int(sqlite3.connect(copy).execute("SELECT COUNT(*) FROM audit").fetchone()[0])
            self.assertGreater(n, 0)
        finally:
            d.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
