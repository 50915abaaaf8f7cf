"""A local OpenID Connect issuer for the sign-in tests: it signs JWTs (RS256)
with a key made at start, and publishes that key where API Gateway's JWT
authorizer looks for it (OIDC discovery, then the JWKS).

Usage: python identity_provider.py [--host 127.0.0.1] [--port 0] [--exit-with-stdin]

It prints "READY http://HOST:PORT" once listening; that URL is the issuer.
- GET  /.well-known/openid-configuration  {"issuer", "jwks_uri"}
- GET  /jwks.json                         the public key, kid "playground-test"
- POST /token {"claims": {...}, "audience": "...", "expires_in": 3600,
               "forged": false}           {"token": "..."}: iss, aud, iat and
  exp are set (a negative expires_in makes it expired); "forged" signs with
  another key under the same kid, as a forger would.
"""

import argparse
import base64
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from lifetime import end_with_stdin

KID = "playground-test"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def number(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def sign(key, claims: dict) -> str:
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": KID}).encode())
    payload = b64url(json.dumps(claims).encode())
    signed = f"{header}.{payload}".encode()
    signature = key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{payload}.{b64url(signature)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--exit-with-stdin", action="store_true")
    args = parser.parse_args()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_numbers()
    jwks = {"keys": [{"kty": "RSA", "kid": KID, "use": "sig", "alg": "RS256", "n": number(public.n), "e": number(public.e)}]}
    state = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_):
            pass

        def answer(self, payload: dict, status: int = 200):
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/.well-known/openid-configuration":
                self.answer({"issuer": state["issuer"], "jwks_uri": state["issuer"] + "/jwks.json"})
            elif self.path == "/jwks.json":
                self.answer(jwks)
            else:
                self.answer({"error": "not found"}, 404)

        def do_POST(self):
            if self.path != "/token":
                self.answer({"error": "not found"}, 404)
                return
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            now = int(time.time())
            claims = dict(request.get("claims") or {})
            claims.update(
                {"iss": state["issuer"], "aud": request.get("audience", ""), "iat": now - 60,
                 "exp": now + int(request.get("expires_in", 3600))}
            )
            if int(request.get("expires_in", 3600)) < 0:
                claims["iat"] = now - 7200
            self.answer({"token": sign(forger if request.get("forged") else key, claims)})

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    state["issuer"] = f"http://{args.host}:{server.server_port}"
    if args.exit_with_stdin:
        end_with_stdin()
    print(f"READY {state['issuer']}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
