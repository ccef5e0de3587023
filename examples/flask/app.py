"""An API server that accepts wxoidc access tokens.

A Flask decorator verifies RFC 9068 JWT access tokens offline with PyJWT
against the provider's JWKS and answers RFC 6750 errors.

    sudo apt-get install python3-flask python3-jwt python3-cryptography
    WXOIDC_ISSUER=http://127.0.0.1:8080 API_AUDIENCE=orders-api PORT=8002 python3 app.py
    curl -H "Authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:8002/api/orders

A token is accepted only with a signature by a key of the issuer's JWKS
(PyJWKClient caches the key set and fetches it again for an unknown kid),
alg ES256, RS256 or EdDSA, the header typ at+jwt (RFC 9068 section 4: an ID
token, signed by the same keys, must not pass as an access token), iss the
issuer, aud including this API, exp in the future, and for /api/orders the
scope orders:read.
"""

import functools
import logging
import os
import re

import jwt
from flask import Flask, g, jsonify, request

ISSUER = os.environ.get("WXOIDC_ISSUER", "http://127.0.0.1:8080").rstrip("/")
AUDIENCE = os.environ.get("API_AUDIENCE", "orders-api")
ALGORITHMS = ["ES256", "RS256", "EdDSA"]

# wxoidc serves its JWKS at <issuer>/.well-known/jwks.json. One client for
# the process: it keeps the key set for `lifespan` seconds.
jwks = jwt.PyJWKClient(ISSUER + "/.well-known/jwks.json", cache_jwk_set=True, lifespan=300)

app = Flask(__name__)
log = logging.getLogger("orders-api")
BEARER = re.compile(r"^Bearer ([A-Za-z0-9\-._~+/]+=*)$", re.IGNORECASE)


def challenge(status, error=None, description=None, scope=None):
    """An RFC 6750 section 3 error: WWW-Authenticate and a JSON body."""
    c = 'Bearer realm="orders-api"'
    if error:
        c += f', error="{error}", error_description="{description}"'
    if scope:
        c += f', scope="{scope}"'
    body = {"error": error, "error_description": description} if error else {}
    resp = jsonify(body)
    resp.status_code = status
    resp.headers["WWW-Authenticate"] = c
    resp.headers["Cache-Control"] = "no-store"
    return resp


def verify(token):
    """The claims of a valid access token for this API; raises jwt.PyJWTError otherwise."""
    key = jwks.get_signing_key_from_jwt(token)
    decoded = jwt.api_jwt.decode_complete(
        token,
        key.key,
        algorithms=ALGORITHMS,
        audience=AUDIENCE,
        issuer=ISSUER,
        options={"require": ["exp", "iss", "aud", "sub"]},
    )
    typ = str(decoded["header"].get("typ", "")).lower()
    if typ not in ("at+jwt", "application/at+jwt"):  # RFC 9068 section 4
        raise jwt.InvalidTokenError(f"not an access token (typ {typ!r})")
    return decoded["payload"]


def require_scope(scope):
    """Decorator: a valid access token with scope, or an RFC 6750 error."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            header = request.headers.get("Authorization")
            if header is None:
                return challenge(401)
            m = BEARER.match(header)
            if not m:
                return challenge(400, "invalid_request", "Send one Authorization: Bearer <token> header.")
            try:
                claims = verify(m.group(1))
            except (jwt.PyJWTError, jwt.PyJWKClientError) as e:
                log.warning("token refused: %s", e)  # the reason; never the token
                return challenge(401, "invalid_token", "The access token is invalid or expired.")
            if scope not in str(claims.get("scope", "")).split():
                return challenge(403, "insufficient_scope", f"The access token lacks the scope {scope}.", scope)
            g.claims = claims
            return view(*args, **kwargs)

        return wrapped

    return decorator


@app.get("/api/orders")
@require_scope("orders:read")
def orders():
    resp = jsonify(sub=g.claims["sub"], client_id=g.claims.get("client_id"), orders=[])
    resp.headers["Cache-Control"] = "no-store"
    return resp


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    # Flask's development server; behind a WSGI server (gunicorn, uwsgi) in production.
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "8002")))
