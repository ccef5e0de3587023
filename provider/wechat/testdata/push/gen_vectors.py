#!/usr/bin/env python3
"""Independent test vectors for wechat message push (push_test.go).

Written from WeChat's published algorithm (wechat-api.md §15.2.2, §15.3),
not from the Go code under test: signature = hex(sha1(concat(sorted(parts)))),
AES key = b64decode(EncodingAESKey + "="), AES-256-CBC with IV = key[:16],
plaintext = random(16) || len(msg) (4 bytes BE) || msg || appid, PKCS#7 to 32.

Run: python3 gen_vectors.py > vectors.json   (needs the `cryptography` package)
"""
import base64, hashlib, json, struct
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def sig(*parts):
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def key_of(encoding_aes_key):
    return base64.b64decode(encoding_aes_key + "=")  # lenient, as WeChat's SDKs


def encrypt(encoding_aes_key, appid, random, msg):
    key = key_of(encoding_aes_key)
    pt = random + struct.pack(">I", len(msg)) + msg + appid.encode()
    pad = 32 - len(pt) % 32
    pt += bytes([pad]) * pad
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(pt) + enc.finalize()).decode()


out = {"signatures": [], "ciphers": []}

# URL-check signatures: WeChat's documented example and a published one.
for token, ts, nonce, want in [
    ("AAAAA", "1714037059", "486452656", "899cf89e464efb63f54ddac96b0a0a235f53aa78"),
    ("Topevery", "1405665299", "42752994", "a948c4f99d23c1b6ef78204c1eb867166e2276e8"),
    ("devpushtoken", "1764680000", "nonce123", None),
]:
    got = sig(token, ts, nonce)
    assert want is None or got == want, (token, got, want)
    out["signatures"].append({"parts": [token, ts, nonce], "signature": got})

# Tencent's sample (WxJava WxCryptUtilTest): key with non-zero trailing bits.
sample = encrypt("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wxb11529c136998cb6",
                 b"aaaabbbbccccdddd", "我是中文abcd123".encode())
assert sample == "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==", sample
out["ciphers"].append({"name": "tencent-sample", "appid": "wxb11529c136998cb6",
                       "encoding_aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
                       "random": "aaaabbbbccccdddd", "msg": "我是中文abcd123", "encrypt": sample})

# A full safe-mode push of a subscribe event (wechat-api.md §15.3.4) and its reply.
token, ts, nonce = "simToken2024", "1700000000", "1234567890"
appid, eak = "wx0123456789abcdef", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
msg = ("<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><FromUserName><![CDATA[oSIMu1a2b3c4d5e6f7g8h9i0j1k2]]>"
       "</FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]>"
       "</Event><EventKey><![CDATA[qrscene_login_7f3a9c]]></EventKey><Ticket><![CDATA[gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGl"
       "uLnFxLmNvbS9xL2taZ2Z3TVRtNzJXV1Brb3ZhYmJJAAIEZ23sUwMEmm3sUw==]]></Ticket></xml>")
enc = encrypt(eak, appid, b"RANDOM0123456789", msg.encode())
assert enc.startswith("n4pk3fdtRJ/oJkto2LzI3+Tn") and enc.endswith("GYK"), enc
msig = sig(token, ts, nonce, enc)
assert msig == "a8df44e0d89baa58b482662da0e25182d660b934", msig
out["ciphers"].append({"name": "subscribe-push", "appid": appid, "encoding_aes_key": eak,
                       "random": "RANDOM0123456789", "msg": msg, "encrypt": enc})
out["push"] = {
    "appid": appid, "token": token, "encoding_aes_key": eak,
    "query": {"signature": sig(token, ts, nonce), "timestamp": ts, "nonce": nonce,
              "openid": "oSIMu1a2b3c4d5e6f7g8h9i0j1k2", "encrypt_type": "aes", "msg_signature": msig},
    "body": "<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><Encrypt><![CDATA[" + enc + "]]></Encrypt></xml>",
    "from": "oSIMu1a2b3c4d5e6f7g8h9i0j1k2", "scene": "login_7f3a9c",
}
reply = ("<xml><ToUserName><![CDATA[oSIMu1a2b3c4d5e6f7g8h9i0j1k2]]></ToUserName><FromUserName><![CDATA[gh_0123456789ab]]>"
         "</FromUserName><CreateTime>1700000001</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[登录成功 / "
         "login confirmed]]></Content></xml>")
renc = encrypt(eak, appid, b"REPLYRANDOM01234", reply.encode())
rsig = sig(token, "1700000001", "987654321", renc)
assert rsig == "c38a9a8fd537c5d88ec88588ea9ee518e7ac903f", rsig
out["ciphers"].append({"name": "text-reply", "appid": appid, "encoding_aes_key": eak,
                       "random": "REPLYRANDOM01234", "msg": reply, "encrypt": renc})
out["reply"] = {"token": token, "encoding_aes_key": eak, "appid": appid, "msg": reply,
                "envelope": "<xml><Encrypt><![CDATA[" + renc + "]]></Encrypt><MsgSignature><![CDATA[" + rsig +
                            "]]></MsgSignature><TimeStamp>1700000001</TimeStamp><Nonce><![CDATA[987654321]]></Nonce></xml>"}

# Padding edge: a message whose plaintext fills whole blocks gets a full 32-byte pad block.
appid2, eak2 = "wxd0000000000000c3", "Zm9yd3hvaWRjdGVzdHNvbmx5MDEyMzQ1Njc4OWFiY2Q"
m2 = b"x" * (64 - 20 - len(appid2))
out["ciphers"].append({"name": "full-pad-block", "appid": appid2, "encoding_aes_key": eak2,
                       "random": "0123456789abcdef", "msg": m2.decode(),
                       "encrypt": encrypt(eak2, appid2, b"0123456789abcdef", m2)})
print(json.dumps(out, ensure_ascii=False, indent=1))
