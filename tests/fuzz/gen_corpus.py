#!/usr/bin/python3
"""Generates the committed seed corpora under tests/fuzz/corpus/<target>/.

Small valid examples of each input (and a few near misses), made from the
formats in DESIGN.md and the fixed test keys in fuzz_fido2.h. Deterministic
except for ECDSA signatures (random nonces): regenerating changes signature
bytes only. Needs Debian's
python3 with python3-cryptography and python3-cbor2. No images: the
face_decode seeds are made at test time by the target itself
(AUTHD_FUZZ_MKSEEDS, tests/fuzz/CMakeLists.txt, scripts/fuzz.sh).

    /usr/bin/python3 tests/fuzz/gen_corpus.py [OUTDIR]
"""
import base64
import hashlib
import json
import os
import shutil
import struct
import sys

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus")
FACES = os.path.join(HERE, "..", "..", "..", "shared", "faces", "dev")

RP_ID = "bank.example"
ORIGIN = "https://bank.example"
SUBJECT = "cust-1"
CHALLENGE = b"authd-fuzz-challenge-0123456789!"
CRED_ID = b"fuzz-cred"
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
KEY = ec.derive_private_key(int.from_bytes(hashlib.sha256(b"authd-fuzz-key").digest(), "big") % _N,
                            ec.SECP256R1())


def b64u(b):
    if isinstance(b, str):
        b = b.encode()
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def cjson(o):
    return json.dumps(o, separators=(",", ":"), ensure_ascii=False).encode()


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, (bytes, bytearray)) else data.encode())


def txn(tid="T-1001", **over):
    t = {"id": tid, "customer": "C-42", "account": "0123456789", "account_type": "business",
         "account_opened": 1700000000, "amount": 250000000, "currency": "VND",
         "payee": {"account": "9876543210", "bank": "VCB", "name": "Cong ty ABC"},
         "channel": "internet_banking", "src_ip": "203.0.113.9", "device_id": "dev-7", "risk_flag": True,
         "ts": 1763881200}
    t.update(over)
    return t


def cose_es256(key=KEY):
    n = key.public_key().public_numbers()
    return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: n.x.to_bytes(32, "big"), -3: n.y.to_bytes(32, "big")})


def auth_data(flags, count=7, attested=False, rp=RP_ID, cred=CRED_ID, cose=None):
    ad = hashlib.sha256(rp.encode()).digest() + bytes([flags]) + struct.pack(">I", count)
    if attested:
        ad += b"\x11" * 16 + struct.pack(">H", len(cred)) + cred + (cose or cose_es256())
    return ad


def client_data(typ, challenge=CHALLENGE, origin=ORIGIN, **extra):
    d = {"type": typ, "challenge": b64u(challenge), "origin": origin, "crossOrigin": False}
    d.update(extra)
    return cjson(d)


def gen_txn():
    put("txn", "business", cjson(txn()))
    put("txn", "personal", cjson(txn(account_type="personal", amount=5000000, risk_flag=False)))
    put("txn", "usd_v6", cjson(txn(currency="USD", amount=4000, src_ip="2405:4800::1")))
    put("txn", "minimal", cjson({k: v for k, v in txn().items() if k not in ("account_opened", "risk_flag")}))
    put("txn", "facts_frozen", cjson(txn()) + b"\0\x01")
    put("txn", "facts_overseas", cjson(txn(account_type="personal")) + b"\0\xa4")
    put("txn", "bad_amount", cjson(txn(amount=-1)))
    put("txn", "unicode_name", cjson(txn(payee={"account": "1", "bank": "VCB", "name": "Ngân hàng Ví dụ"})))


def gen_rir():
    put("rir", "apnic", "2|apnic|20250101|4|19830613|20250101|+1000\n"
                        "apnic|*|ipv4|*|2|summary\n"
                        "apnic|*|ipv6|*|1|summary\n"
                        "apnic|VN|ipv4|14.160.0.0|65536|20000101|allocated\n"
                        "apnic|JP|ipv4|1.0.16.0|4096|20110412|allocated\n"
                        "apnic|VN|ipv6|2405:4800::|32|20080101|allocated\n")
    put("rir", "extended", "2.3|ripencc|1700000000|3|19830705|20250101|+0100\n"
                           "ripencc|FR|ipv4|2.0.0.0|1048576|20100712|allocated|abc123\n"
                           "ripencc||ipv4|5.0.0.0|256||available|\n"
                           "ripencc|DE|asn|3320|1|19930901|allocated|x\n"
                           "# comment\n"
                           "ripencc|NL|ipv6|2001:610::|32|19990819|assigned|y|e1|e2\n")
    put("rir", "nonaligned", "arin|US|ipv4|8.8.8.0|300|19920101|assigned\n")
    put("rir", "bad_status", "arin|US|ipv4|8.8.8.0|256|19920101|stolen\n")


def gen_config():
    put("config", "full", """[server]
socket = /run/authd/authd.sock
state_dir = /var/lib/authd
clients = 1000, 1001
admins = 0
max_frame = 8M
idle_timeout = 30
workers = 4

[token]
alg = EdDSA
issuer = authd.bank.example.vn
audience = ib-backend
ttl = 120

[policy]
home_country = VN
personal_amount = 10000000
personal_daily = 20000000
personal_overseas = step_up
lockout_after = 5

[geo]
rir_file = /var/lib/authd/geo/delegated-apnic-extended-latest

[fido2]
rp_id = bank.example.vn
rp_name = Ngân hàng Ví dụ
origins = https://ib.bank.example.vn, https://m.bank.example.vn
user_verification = required

[face]
max_images = 3
threshold = 0.42
""")
    put("config", "minimal", "[token]\nalg = ES256\n")
    put("config", "currencies", "[policy]\npersonal_amount.USD = 40000\npersonal_daily.USD = 80000\n")
    put("config", "bad_key", "[server]\nnope = 1\n")
    put("config", "continuation", "[fido2]\norigins = https://a.example,\n  https://b.example\n; c\n# d\n")


def gen_jws():
    hdr = {"alg": "ES256", "kid": "@K0", "typ": "authd-approval+jwt"}
    claims = {"iss": "authd", "aud": "ib-backend", "sub": "C-42", "jti": "j1", "iat": 1763881200,
              "exp": 1763881320, "txn_hash": "ab" * 32}
    # mode 1: header NUL payload, signed by the harness
    put("jws", "signed_es256", b"\x01" + cjson(hdr) + b"\0" + cjson(claims))
    put("jws", "signed_eddsa", b"\x05" + cjson(dict(hdr, alg="EdDSA", kid="@K1")) + b"\0" + cjson(claims))
    put("jws", "signed_wrong_alg", b"\x01" + cjson(dict(hdr, alg="EdDSA")) + b"\0" + cjson(claims))
    put("jws", "signed_crit", b"\x01" + cjson(dict(hdr, crit=["exp"])) + b"\0" + cjson(claims))
    put("jws", "signed_payload_array", b"\x01" + cjson(hdr) + b"\0[1,2]")
    # mode 0: compact text (signature cannot match, parsing up to the check)
    fake = b64u(cjson(hdr)) + "." + b64u(cjson(claims)) + "." + b64u(b"\0" * 64)
    put("jws", "compact", b"\x00" + fake.encode())
    put("jws", "alg_none", b"\x00" + (b64u(cjson({"alg": "none"})) + "." + b64u(cjson(claims)) + ".").encode())
    # mode 2: detached
    put("jws", "detached", b"\x02" + (b64u(cjson(hdr)) + ".." + b64u(b"\1" * 64)).encode())
    # mode 3: own JWKS
    n = KEY.public_key().public_numbers()
    jwks = {"keys": [{"kty": "EC", "crv": "P-256", "x": b64u(n.x.to_bytes(32, "big")),
                      "y": b64u(n.y.to_bytes(32, "big")), "kid": "k1", "alg": "ES256", "use": "sig"},
                     {"kty": "OKP", "crv": "Ed25519", "x": b64u(b"\2" * 32), "kid": "k2"}]}
    body = b64u(cjson(dict(hdr, kid="k1"))) + "." + b64u(cjson(claims))
    sig = KEY.sign(body.encode(), ec.ECDSA(hashes.SHA256()))
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    r, s = decode_dss_signature(sig)
    tok = body + "." + b64u(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    put("jws", "own_jwks_valid", b"\x03" + cjson(jwks) + b"\0" + tok.encode())


def audit_record(seq, prev, **over):
    r = {"seq": seq, "ts": 1763881200 + seq, "type": "assess", "customer": "C-42", "account": "0123456789",
         "txn_hash": "ab" * 32, "result": "step_up", "reasons": ["business_high_risk"], "method": None,
         "jti": None, "actor": "uid:0"}
    r.update(over)
    h = hashlib.sha256(bytes.fromhex(prev) + cjson(dict(sorted(r.items())))).hexdigest()
    return dict(r, prev=prev, hash=h)


def gen_audit():
    g = "0" * 64
    a = audit_record(1, g)
    b = audit_record(2, a["hash"], type="verify", result="approved", method="fido2", jti="j-1", reasons=[])
    c = audit_record(3, b["hash"], type="freeze", customer=None, account="01234", txn_hash=None,
                     result="frozen", reasons=["fraud report ngân hàng"])
    put("audit_json", "one", cjson(a))
    put("audit_json", "chain", cjson([a, b, c]))
    put("audit_json", "tampered", cjson(dict(a, result="allow")))
    put("audit_json", "extra_field", cjson(dict(a, extra=1)))


def gen_clientdata():
    put("clientdata", "get", b"\x00" + client_data("webauthn.get"))
    put("clientdata", "create", b"\x01" + client_data("webauthn.create"))
    put("clientdata", "origin2", b"\x00" + client_data("webauthn.get", origin="https://app.bank.example"))
    put("clientdata", "cross", b"\x00" + client_data("webauthn.get", crossOrigin=True,
                                                     topOrigin="https://evil.example"))
    put("clientdata", "wrong_chal", b"\x00" + client_data("webauthn.get", challenge=b"x" * 32))
    put("clientdata", "tokenbinding", b"\x02" + client_data("webauthn.get", tokenBinding={"status": "present"}))


def assertion(flags=0x05, count=9, cd=None):
    cd = cd or client_data("webauthn.get")
    ad = auth_data(flags, count)
    sig = KEY.sign(ad + hashlib.sha256(cd).digest(), ec.ECDSA(hashes.SHA256()))
    return {"credential_id": b64u(CRED_ID), "authenticator_data": b64u(ad), "client_data_json": b64u(cd),
            "signature": b64u(sig)}


def record(flags=0, fmt=0, alg=-7, count=5, raw=None):
    n = KEY.public_key().public_numbers()
    raw = raw if raw is not None else n.x.to_bytes(32, "big") + n.y.to_bytes(32, "big")
    return (bytes([1, flags, fmt]) + struct.pack(">iI", alg, count) + b"\0" * 16 + struct.pack(">H", len(raw))
            + raw)


def gen_authdata():
    put("authdata", "assert_up_uv", b"\x00" + auth_data(0x05))
    put("authdata", "assert_ext", b"\x00" + auth_data(0x85) + cbor2.dumps({"credProtect": 2}))
    put("authdata", "reg_es256", b"\x01" + auth_data(0x45, attested=True))
    ed = cbor2.dumps({1: 1, 3: -8, -1: 6, -2: b"\3" * 32})
    put("authdata", "reg_eddsa", b"\x01" + auth_data(0x45, attested=True, cose=ed))
    put("authdata", "reg_bs_no_be", b"\x01" + auth_data(0x55, attested=True))
    put("authdata", "cose_es256", b"\x02" + cose_es256())
    put("authdata", "cose_eddsa", b"\x02" + ed)
    rsa = cbor2.dumps({1: 3, 3: -257, -1: b"\xc1" + b"\x01" * 255, -2: b"\x01\x00\x01"})
    put("authdata", "cose_rs256", b"\x02" + rsa)
    put("authdata", "record", b"\x03" + record())
    put("authdata", "record_rsa", b"\x03" + record(alg=-257, raw=b"\xc1" + b"\1" * 255 + b"\1\0\1"))
    put("authdata", "verify_ok", b"\x04" + cjson(assertion()))
    put("authdata", "verify_uv", b"\x0c" + cjson(assertion()))
    put("authdata", "verify_replayed_count", b"\x04" + cjson(assertion(count=5)))
    put("authdata", "verify_user_handle", b"\x04" + cjson(dict(assertion(), user_handle=b64u(SUBJECT))))
    put("authdata", "verify_bad_sig", b"\x04" + cjson(dict(assertion(), signature=b64u(b"\x30\x06\x02\x01\x01\x02\x01\x01"))))


def gen_attestation():
    cd = client_data("webauthn.create")
    ad = auth_data(0x45, attested=True)
    none = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": ad})
    sig = KEY.sign(ad + hashlib.sha256(cd).digest(), ec.ECDSA(hashes.SHA256()))
    packed = cbor2.dumps({"fmt": "packed", "attStmt": {"alg": -7, "sig": sig}, "authData": ad})
    put("attestation", "none", b"\x00" + none)
    put("attestation", "none_uv", b"\x01" + none)
    put("attestation", "packed_self", b"\x00" + packed)
    put("attestation", "packed_x5c_junk", b"\x00" + cbor2.dumps(
        {"fmt": "packed", "attStmt": {"alg": -7, "sig": sig, "x5c": [b"\x30\x03\x02\x01\x01"]}, "authData": ad}))
    put("attestation", "tpm", b"\x00" + cbor2.dumps({"fmt": "tpm", "attStmt": {}, "authData": ad}))
    req = {"credential_id": b64u(CRED_ID), "client_data_json": b64u(cd), "attestation_object": b64u(packed)}
    put("attestation", "request_json", b"\x02" + cjson(req))


def frame(obj):
    b = cjson(obj)
    return struct.pack(">I", len(b)) + b


def gen_frame():
    reqs = {
        "health": {"op": "health"},
        "jwks": {"op": "jwks"},
        "assess": {"op": "assess", "txn": txn()},
        "assess_personal": {"op": "assess", "txn": txn("T-2", account_type="personal", amount=100000)},
        "verify_fido2": {"op": "verify", "challenge_id": "ch_AAAAAAAAAAAAAAAAAAAAAA", "method": "fido2",
                         "fido2": assertion()},
        "verify_face": {"op": "verify", "challenge_id": "ch_AAAAAAAAAAAAAAAAAAAAAA", "method": "face",
                        "face": {"images": [b64u(b"\xff\xd8\xff\xe0" + b"\0" * 16)]}},
        "redeem": {"op": "redeem", "token": "eyJhbGciOiJFUzI1NiJ9.e30.AAAA"},
        "enroll_begin": {"op": "enroll_fido2_begin", "customer": "C-42", "display_name": "Nguyen Van A"},
        "enroll_finish": {"op": "enroll_fido2_finish", "enrollment_id": "en_AAAAAAAAAAAAAAAAAAAAAA",
                          "fido2": {"credential_id": b64u(CRED_ID), "client_data_json": "", "attestation_object": ""}},
        "enroll_face": {"op": "enroll_face", "customer": "C-7", "images": ["AAAA"]},
        "delete_face": {"op": "delete_face", "customer": "C-7"},
        "freeze": {"op": "freeze", "account": "0123456789", "reason": "fraud"},
        "unfreeze": {"op": "unfreeze", "account": "0123456789"},
        "unlock": {"op": "unlock", "customer": "C-42"},
        "list_credentials": {"op": "list_credentials", "customer": "C-42"},
        "revoke_credential": {"op": "revoke_credential", "customer": "C-42", "credential_id": b64u(CRED_ID)},
        "stats": {"op": "stats"},
        "policy_explain": {"op": "policy_explain", "txn": txn()},
        "geo_lookup": {"op": "geo_lookup", "ip": "14.160.1.1"},
        "login_begin": {"op": "login_begin", "user": "alice", "service": "sshd", "rhost": "10.0.0.1",
                        "tty": "pts/0"},
        "login_verify": {"op": "login_verify", "challenge_id": "lc_AAAAAAAAAAAAAAAAAAAAAA", "method": "fido2",
                         "fido2": assertion()},
        "login_status": {"op": "login_status", "user": "alice"},
        "approve": {"op": "approve", "id": "pa_AAAAAAAAAAAAAAAAAAAAAA"},
        "pending_show": {"op": "pending_show"},
        "unknown_op": {"op": "nope"},
        "v2": {"op": "health", "v": 2},
    }
    for name, r in reqs.items():
        r = dict({"v": 1, "id": "r-" + name}, **r)
        put("frame", name, b"\x00" + cjson(r))
    # framed streams: two requests; a zero length; an oversized prefix
    put("frame", "stream_two", b"\x01" + frame({"v": 1, "id": "a", "op": "health"}) +
        frame({"v": 1, "id": "b", "op": "assess", "txn": txn("T-9")}))
    put("frame", "stream_zero", b"\x01" + b"\0\0\0\0")
    put("frame", "stream_1gib", b"\x01" + b"\x40\0\0\0" + b"{")
    put("frame", "stream_partial", b"\x01" + b"\0\0\0\x10{\"v\":1")


def gen_pam():
    put("pam_args", "default", b"")
    put("pam_args", "full", b"\0".join([b"socket=/run/authd/authd.sock", b"methods=fido2,face", b"timeout=20",
                                        b"cue", b"cue_prompt=Touch your key", b"face_source=camera:0",
                                        b"rp_id=pam://host", b"debug"]))
    put("pam_args", "file", b"methods=face\nface_source=file:/tmp/x.jpg\ncapture=/usr/libexec/authd/authd-capture")
    put("pam_args", "nouserok", b"nouserok\nmethods=fido2")
    put("pam_args", "repeat", b"debug\ndebug")
    put("pam_args", "bad_timeout", b"timeout=0")


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    gen_txn()
    gen_rir()
    gen_config()
    gen_jws()
    gen_audit()
    gen_clientdata()
    gen_authdata()
    gen_attestation()
    gen_frame()
    gen_pam()
    total = 0
    for root, _, files in os.walk(OUT):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    print("corpus in %s: %d bytes" % (OUT, total))


if __name__ == "__main__":
    main()
