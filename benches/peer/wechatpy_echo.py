"""The Python peer `kaitong-dev load` is compared against (BENCHMARKS.md, issue 13).

A WSGI app that does what kaitong's echo baseline does and nothing more: verify the signature,
decrypt the callback with wechatpy, parse the message, answer its text back encrypted and signed.
No store, no dialog. Run it with two sync workers (one per core of the benchmark box):

    python3 -m venv /tmp/peervenv && /tmp/peervenv/bin/pip install wechatpy gunicorn cryptography
    /tmp/peervenv/bin/gunicorn -w 2 -b 127.0.0.1:8091 --chdir benches/peer wechatpy_echo:app

The credentials are config/default.toml's demo values, which `kaitong-dev load` signs with.
"""

from urllib.parse import parse_qs

from wechatpy.enterprise import create_reply, parse_message
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException

TOKEN = "kaitongDemoToken"
AES_KEY = "cM8CbiWBsoQQZOgGR1c1IBS7Wnh1i56lbpPkDqdEv08"
CORP_ID = "ww_kaitong_demo"

CRYPTO = WeChatCrypto(TOKEN, AES_KEY, CORP_ID)


def app(environ, start_response):
    query = parse_qs(environ.get("QUERY_STRING", ""))
    arg = lambda name: query.get(name, [""])[0]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    try:
        plain = CRYPTO.decrypt_message(body, arg("msg_signature"), arg("timestamp"), arg("nonce"))
    except InvalidSignatureException:
        start_response("401 Unauthorized", [("Content-Type", "text/plain")])
        return [b"unauthorized"]
    msg = parse_message(plain)
    reply = create_reply(getattr(msg, "content", ""), msg).render()
    out = CRYPTO.encrypt_message(reply, arg("nonce"), arg("timestamp")).encode("utf-8")
    start_response(
        "200 OK",
        [("Content-Type", "application/xml; charset=utf-8"), ("Content-Length", str(len(out)))],
    )
    return [out]
