"""End-to-end step-up through the socket: assess -> step_up -> verify -> token.

FIDO2 credentials and assertions are made here with Python's cryptography and
cbor2 (an authenticator independent of authd's code and of tests/softkey);
face step-up uses the labelled photos in ../shared/faces/dev.
"""
import base64
import hashlib
import json
import os
import struct
import sys
import unittest
import warnings

sys.path.insert(0, os.path.dirname(__file__))
from authd_harness import Daemon, txn  # noqa: E402
from test_daemon import b64url_dec, txn_hash, verify_with_pyjwt  # noqa: E402

warnings.simplefilter("ignore", ResourceWarning)
FACES = os.environ.get("AUTHD_FACES_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared",
                                                       "faces", "dev"))
ORIGIN = "https://localhost"
RP_ID = "localhost"


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def img(name):
    with open(os.path.join(FACES, name), "rb") as f:
        return b64u(f.read())


def business_txn(tid, **over):
    t = txn(tid, account_type="business", amount=250000000, risk_flag=True, account_opened=1600000000)
    t.update(over)
    return t


class Key:
    """A P-256 FIDO2 credential, as a browser's authenticator would use it."""

    def __init__(self):
        from cryptography.hazmat.primitives.asymmetric import ec
        self.sk = ec.generate_private_key(ec.SECP256R1())
        self.cred_id = os.urandom(32)
        self.count = 0

    def cose(self):
        import cbor2
        n = self.sk.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: n.x.to_bytes(32, "big"), -3: n.y.to_bytes(32, "big")})

    def auth_data(self, flags, attested=False):
        self.count += 1
        ad = hashlib.sha256(RP_ID.encode()).digest() + bytes([flags]) + struct.pack(">I", self.count)
        if attested:
            ad += b"\0" * 16 + struct.pack(">H", len(self.cred_id)) + self.cred_id + self.cose()
        return ad

    def register(self, challenge_b64):
        import cbor2
        cd = json.dumps({"type": "webauthn.create", "challenge": challenge_b64, "origin": ORIGIN,
                         "crossOrigin": False}, separators=(",", ":")).encode()
        att = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": self.auth_data(0x45, attested=True)})
        return {"credential_id": b64u(self.cred_id), "client_data_json": b64u(cd), "attestation_object": b64u(att)}

    def assert_(self, challenge_b64, flags=0x05, typ="webauthn.get", origin=ORIGIN):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        cd = json.dumps({"type": typ, "challenge": challenge_b64, "origin": origin, "crossOrigin": False},
                        separators=(",", ":")).encode()
        ad = self.auth_data(flags)
        sig = self.sk.sign(ad + hashlib.sha256(cd).digest(), ec.ECDSA(hashes.SHA256()))
        return {"credential_id": b64u(self.cred_id), "authenticator_data": b64u(ad),
                "client_data_json": b64u(cd), "signature": b64u(sig)}


class StepUp(unittest.TestCase):
    def setUp(self):
        self.d = Daemon("[policy]\nnew_device = off\n").start()
        self.c = self.d.conn()
        h = self.c.call("health")
        self.plugins = h["plugins"]

    def tearDown(self):
        self.d.cleanup()

    def step_up(self, t):
        r = self.c.call("assess", txn=t)
        self.assertEqual(r["result"], "step_up", r)
        return r["challenge"]

    def test_fido2_step_up(self):
        if "fido2" not in self.plugins:
            self.fail("fido2 plugin not loaded: " + open(self.d.log).read())
        key = Key()
        b = self.c.call("enroll_fido2_begin", customer="C-42", display_name="Nguyen Van A")
        self.assertTrue(b["ok"], b)
        f = self.c.call("enroll_fido2_finish", enrollment_id=b["enrollment_id"],
                        fido2=key.register(b["registration"]["challenge"]))
        self.assertTrue(f["ok"], f)
        self.assertEqual(f["result"], "enrolled", f)
        t = business_txn("TF2-1")
        ch = self.step_up(t)
        self.assertEqual(ch["fido2"]["allow_credentials"], [b64u(key.cred_id)])
        # the challenge is bound to this transfer
        a = key.assert_(ch["fido2"]["challenge"])
        r = self.c.call("verify", challenge_id=ch["id"], method="fido2", fido2=a)
        self.assertEqual(r["result"], "approved", r)
        claims = verify_with_pyjwt(r["token"], self.c.call("jwks"))
        self.assertEqual(claims["amr"], ["hwk", "user"])
        self.assertEqual(claims["acr"], "urn:authd:acr:stepup")
        self.assertEqual(b64url_dec(claims["txn"]["hash"]), txn_hash(t))
        self.assertIn("business_high_risk", claims["rsn"])
        # replaying the same assertion: the challenge is used
        r = self.c.call("verify", challenge_id=ch["id"], method="fido2", fido2=a)
        self.assertEqual(r["error"]["code"], "expired")
        # the assertion made for transfer 1 cannot approve transfer 2
        ch2 = self.step_up(business_txn("TF2-2", amount=260000000))
        r = self.c.call("verify", challenge_id=ch2["id"], method="fido2", fido2=a)
        self.assertEqual(r["result"], "rejected", r)
        # wrong origin, UV missing: rejected with attempts counted, then locked after 5
        r = self.c.call("verify", challenge_id=ch2["id"], method="fido2",
                        fido2=key.assert_(ch2["fido2"]["challenge"], origin="https://evil.example"))
        self.assertEqual(r["result"], "rejected")
        r = self.c.call("verify", challenge_id=ch2["id"], method="fido2",
                        fido2=key.assert_(ch2["fido2"]["challenge"], flags=0x01))
        self.assertEqual(r["result"], "rejected")
        self.assertEqual(r["attempts_left"], 2)
        self.c.call("verify", challenge_id=ch2["id"], method="fido2", fido2={"credential_id": "AA"})
        r = self.c.call("verify", challenge_id=ch2["id"], method="fido2", fido2={"garbage": 1})
        self.assertEqual(r["result"], "locked", r)
        r = self.c.call("assess", txn=business_txn("TF2-3"))
        self.assertEqual(r["result"], "deny")
        self.assertTrue(self.c.call("unlock", customer="C-42")["ok"])
        self.assertTrue(self.c.call("audit_verify")["valid"])

    def test_freeze_stops_a_transfer_at_every_later_step(self):
        """A freeze of the account while its transfer is under way: the pending challenge cannot be approved
        (even with a valid assertion, and without counting against the customer's lockout), a retried assess
        gets no fresh token or challenge, and a token issued before the freeze cannot be redeemed. After
        unfreeze the same transfer can go on."""
        if "fido2" not in self.plugins:
            self.fail("fido2 plugin not loaded: " + open(self.d.log).read())
        key = Key()
        b = self.c.call("enroll_fido2_begin", customer="C-42", display_name="Nguyen Van A")
        self.assertTrue(self.c.call("enroll_fido2_finish", enrollment_id=b["enrollment_id"],
                                    fido2=key.register(b["registration"]["challenge"]))["ok"])
        t = business_txn("TFZ-1")
        account = t["account"]
        ch = self.step_up(t)
        self.assertTrue(self.c.call("freeze", account=account, reason="fraud team: coached victim")["ok"])
        r = self.c.call("verify", challenge_id=ch["id"], method="fido2",
                        fido2=key.assert_(ch["fido2"]["challenge"]))
        self.assertEqual((r["result"], r["reasons"], r["attempts_left"]), ("rejected", ["account_frozen"], 0),
                         r)
        self.assertNotIn("token", r)
        r = self.c.call("verify", challenge_id=ch["id"], method="fido2",
                        fido2=key.assert_(ch["fido2"]["challenge"]))
        self.assertEqual(r["error"]["code"], "expired", r)      # the challenge died with the freeze
        r = self.c.call("assess", txn=t)                        # a retry: deny, no new challenge
        self.assertEqual((r["result"], r["reasons"]), ("deny", ["account_frozen"]), r)
        self.assertNotIn("challenge", r)
        self.assertTrue(self.c.call("unfreeze", account=account, reason="cleared")["ok"])
        # the customer was not locked out by the frozen attempt: the retry gets a new challenge and passes
        ch2 = self.step_up(t)
        self.assertNotEqual(ch2["id"], ch["id"])
        r = self.c.call("verify", challenge_id=ch2["id"], method="fido2",
                        fido2=key.assert_(ch2["fido2"]["challenge"]))
        self.assertEqual(r["result"], "approved", r)
        token = r["token"]
        small = txn("TFZ-2", account=account, amount=500000)
        self.assertEqual(self.c.call("assess", txn=small)["result"], "allow")
        # approved, then frozen before the backend moves the money: redeem refuses and keeps the token unused
        self.assertTrue(self.c.call("freeze", account=account, reason="second report")["ok"])
        r = self.c.call("redeem", token=token)
        self.assertEqual(r["error"]["code"], "conflict", r)
        self.assertIn("is frozen", r["error"]["message"])
        # an allowed transfer's retry after the freeze gets no fresh token
        r = self.c.call("assess", txn=small)
        self.assertEqual((r["result"], r["reasons"]), ("deny", ["account_frozen"]), r)
        self.assertNotIn("token", r)
        self.assertTrue(self.c.call("unfreeze", account=account, reason="cleared again")["ok"])
        self.assertEqual(self.c.call("redeem", token=token)["result"], "redeemed")
        self.assertTrue(self.c.call("audit_verify")["valid"])

    def test_face_step_up(self):
        if "face" not in self.plugins:
            self.fail("face plugin not loaded: " + open(self.d.log).read())
        r = self.c.call("enroll_face", customer="C-7", images=[img("obama_1.jpg")])
        self.assertEqual(r["result"], "enrolled", r)
        t = business_txn("TFACE-1", customer="C-7")
        ch = self.step_up(t)
        r = self.c.call("verify", challenge_id=ch["id"], method="face", face={"images": [img("biden_1.jpg")]})
        self.assertEqual(r["result"], "rejected", r)
        self.assertEqual(r["attempts_left"], 4)
        r = self.c.call("verify", challenge_id=ch["id"], method="face", face={"images": [img("obama_2.jpg")]})
        self.assertEqual(r["result"], "approved", r)
        claims = verify_with_pyjwt(r["token"], self.c.call("jwks"))
        self.assertEqual(claims["amr"], ["face"])
        self.assertEqual(b64url_dec(claims["txn"]["hash"]), txn_hash(t))
        # a template cannot be used for another customer, and erasure works
        self.assertEqual(self.c.call("delete_face", customer="C-7")["deleted"], 1)
        ch = self.step_up(business_txn("TFACE-2", customer="C-7"))
        r = self.c.call("verify", challenge_id=ch["id"], method="face", face={"images": [img("obama_2.jpg")]})
        self.assertEqual(r["result"], "rejected")


if __name__ == "__main__":
    unittest.main(verbosity=2)
