'use strict'
// An API server that accepts wxoidc access tokens: Express middleware that
// verifies RFC 9068 JWT access tokens offline with jose against the
// provider's JWKS, and answers RFC 6750 errors.
//
//   npm ci && WXOIDC_ISSUER=http://127.0.0.1:8080 API_AUDIENCE=orders-api PORT=8003 node server.js
//   curl -H "Authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:8003/api/orders
//
// A token is accepted only with a signature by a key of the issuer's JWKS
// (cached by createRemoteJWKSet, fetched again for an unknown kid), alg
// ES256, RS256 or EdDSA, the header typ at+jwt (RFC 9068 §4: an ID token,
// signed by the same keys, must not pass as an access token), iss the
// issuer, aud including this API, exp in the future, and for /api/orders
// the scope orders:read.
const express = require('express')

const ISSUER = (process.env.WXOIDC_ISSUER || 'http://127.0.0.1:8080').replace(/\/+$/, '')
const AUDIENCE = process.env.API_AUDIENCE || 'orders-api'

// jose is an ES module; load it once.
const joseReady = import('jose').then((jose) => ({
  jose,
  // wxoidc serves its JWKS at <issuer>/.well-known/jwks.json.
  jwks: jose.createRemoteJWKSet(new URL(ISSUER + '/.well-known/jwks.json')),
}))

function challenge (res, status, error, description, scope) {
  let c = 'Bearer realm="orders-api"'
  if (error) c += `, error="${error}", error_description="${description}"`
  if (scope) c += `, scope="${scope}"`
  res.set('WWW-Authenticate', c).set('Cache-Control', 'no-store')
  res.status(status).json(error ? { error, error_description: description } : {})
}

/** Middleware: a valid access token with scope, or an RFC 6750 §3 error. */
function requireScope (scope) {
  return async (req, res, next) => {
    const header = req.headers.authorization
    if (!header) return challenge(res, 401)
    const m = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i.exec(header)
    if (!m) return challenge(res, 400, 'invalid_request', 'Send one Authorization: Bearer <token> header.')
    const { jose, jwks } = await joseReady
    let payload
    try {
      ({ payload } = await jose.jwtVerify(m[1], jwks, {
        issuer: ISSUER,
        audience: AUDIENCE,
        typ: 'at+jwt', // RFC 9068 §4
        algorithms: ['ES256', 'RS256', 'EdDSA'],
        requiredClaims: ['exp', 'sub'],
      }))
    } catch (err) {
      console.warn('token refused:', err.code || err.name, err.message) // never the token itself
      return challenge(res, 401, 'invalid_token', 'The access token is invalid or expired.')
    }
    const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ') : []
    if (!scopes.includes(scope)) {
      return challenge(res, 403, 'insufficient_scope', `The access token lacks the scope ${scope}.`, scope)
    }
    req.auth = { sub: payload.sub, clientId: payload.client_id, scopes }
    next()
  }
}

const app = express()
app.disable('x-powered-by')
app.get('/api/orders', requireScope('orders:read'), (req, res) => {
  res.set('Cache-Control', 'no-store').json({ sub: req.auth.sub, client_id: req.auth.clientId, orders: [] })
})

const port = Number(process.env.PORT || 8003)
const host = process.env.HOST || '127.0.0.1'
app.listen(port, host, () => console.log(`orders API on http://${host}:${port} (issuer ${ISSUER})`))
