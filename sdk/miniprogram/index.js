'use strict'
// wxoidc-miniprogram: sign a WeChat Mini Program in with wxoidc and call
// APIs with its access token. No dependencies; CommonJS for the Mini Program
// runtime. See README.md.

const GRANT_WECHAT = 'urn:wxoidc:params:oauth:grant-type:wechat-jscode'

const PATHS = {
  token: '/oauth2/token',
  revoke: '/oauth2/revoke',
  phone: '/wechat/phone',
  deviceVerify: '/oauth2/device/verify',
  accountDelete: '/account/delete',
}

/** An OAuth error from wxoidc or a failure of the transport. */
class WxoidcError extends Error {
  constructor (code, description, props) {
    super(description ? `${code}: ${description}` : code)
    this.name = 'WxoidcError'
    /** RFC 6749 error code (invalid_grant, temporarily_unavailable, …), or network_error / not_signed_in / login_failed. */
    this.code = code
    this.description = description || ''
    /** HTTP status, 0 when no answer came. */
    this.status = (props && props.status) || 0
    /** Seconds from Retry-After on 429/503, else undefined. */
    this.retryAfter = props && props.retryAfter
  }
}

/** Token storage over wx.getStorageSync / wx.setStorageSync / wx.removeStorageSync. */
function wxStorage (wx) {
  return {
    get: (key) => wx.getStorageSync(key) || null,
    set: (key, value) => wx.setStorageSync(key, value),
    remove: (key) => wx.removeStorageSync(key),
  }
}

function formEncode (params) {
  return Object.keys(params)
    .filter((k) => params[k] !== undefined && params[k] !== null && params[k] !== '')
    .map((k) => encodeURIComponent(k) + '=' + encodeURIComponent(params[k]))
    .join('&')
}

function headerValue (headers, name) {
  if (!headers) return undefined
  const want = name.toLowerCase()
  for (const k of Object.keys(headers)) {
    if (k.toLowerCase() === want) return headers[k]
  }
  return undefined
}

/** Retry-After (RFC 9110 §10.2.3) in milliseconds: delay-seconds or an HTTP-date; undefined if absent or unreadable. */
function retryAfterMs (value, now) {
  if (value === undefined || value === null || value === '') return undefined
  const s = String(value).trim()
  if (/^\d+$/.test(s)) return Number(s) * 1000
  const t = Date.parse(s)
  return Number.isNaN(t) ? undefined : Math.max(0, t - now)
}

function parseBody (data) {
  if (typeof data !== 'string') return data
  try { return JSON.parse(data) } catch (_) { return data }
}

function sleep (ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/** Decodes base64url to a UTF-8 string (Mini Programs have no atob or TextDecoder everywhere). */
function base64urlDecode (s) {
  const bytes = []
  let buf = 0
  let bits = 0
  for (const c of s.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_')) {
    const v = B64.indexOf(c)
    if (v < 0) throw new Error('not base64url')
    buf = (buf << 6) | v
    bits += 6
    if (bits >= 8) {
      bits -= 8
      bytes.push((buf >> bits) & 0xff)
    }
  }
  let out = ''
  for (let i = 0; i < bytes.length;) {
    const b = bytes[i]
    let cp
    let n
    if (b < 0x80) { cp = b; n = 1 } else if (b < 0xe0) { cp = b & 0x1f; n = 2 } else if (b < 0xf0) { cp = b & 0x0f; n = 3 } else { cp = b & 0x07; n = 4 }
    for (let j = 1; j < n; j++) cp = (cp << 6) | (bytes[i + j] & 0x3f)
    out += String.fromCodePoint(cp)
    i += n
  }
  return out
}

/**
 * A wxoidc client for one Mini Program. Create one per app (in app.js) and
 * share it: it serialises sign-in and refresh, so however many requests
 * wait for a fresh token, at most one refresh is in flight, and the
 * rotating refresh token is never presented twice.
 */
class Client {
  /**
   * @param {object} options see index.d.ts (ClientOptions)
   */
  constructor (options) {
    const o = options || {}
    if (!o.issuer) throw new TypeError('wxoidc: issuer is required')
    if (!o.clientId) throw new TypeError('wxoidc: clientId is required')
    this.issuer = String(o.issuer).replace(/\/+$/, '')
    this.clientId = o.clientId
    this.scope = o.scope || 'openid offline_access'
    this.audience = o.audience
    this.wx = o.wx || (typeof wx !== 'undefined' ? wx : undefined) // eslint-disable-line no-undef
    if (!this.wx) throw new TypeError('wxoidc: no wx object (pass options.wx outside a Mini Program)')
    this.storage = o.storage || wxStorage(this.wx)
    this.storageKey = o.storageKey || 'wxoidc.tokens'
    this.refreshMargin = o.refreshMargin !== undefined ? o.refreshMargin : 60
    this.maxRetryAfter = o.maxRetryAfter !== undefined ? o.maxRetryAfter : 10
    this.retries = o.retries !== undefined ? o.retries : 1
    this.autoSignIn = o.autoSignIn !== false
    this.timeout = o.timeout || 10000
    this.now = o.now || Date.now
    this.onTokens = o.onTokens

    this._tokens = undefined // cache of the stored record; undefined = not read yet
    this._lock = Promise.resolve() // tail of the queue of sign-ins and refreshes
    this._renewal = null // {stale, promise}: the renewal joiners share
  }

  // --- tokens -------------------------------------------------------------

  /** The stored token record ({access_token, refresh_token, id_token, scope, expires_at}), or null. */
  tokens () {
    if (this._tokens === undefined) this._tokens = this.storage.get(this.storageKey) || null
    return this._tokens
  }

  /** True when tokens are stored (they may need a refresh). */
  isSignedIn () {
    return this.tokens() !== null
  }

  /** The ID token's claims, decoded but NOT verified: for display only. Your backend verifies access tokens. */
  claims () {
    const t = this.tokens()
    if (!t || !t.id_token) return null
    try {
      return JSON.parse(base64urlDecode(t.id_token.split('.')[1]))
    } catch (_) {
      return null
    }
  }

  _fresh (t) {
    return t && t.access_token && t.expires_at - this.refreshMargin * 1000 > this.now()
  }

  _save (resp, previous) {
    const t = {
      access_token: resp.access_token,
      token_type: resp.token_type,
      // A refresh answer may omit the refresh token; the old one then stays valid.
      refresh_token: resp.refresh_token || (previous && previous.refresh_token) || undefined,
      id_token: resp.id_token || (previous && previous.id_token) || undefined,
      scope: resp.scope,
      expires_at: this.now() + (Number(resp.expires_in) || 0) * 1000,
    }
    this._tokens = t
    this.storage.set(this.storageKey, t)
    if (this.onTokens) this.onTokens(t)
    return t
  }

  _clear () {
    this._tokens = null
    this.storage.remove(this.storageKey)
  }

  /**
   * A valid access token: the stored one, or a refreshed one when it expires
   * within refreshMargin seconds, or (autoSignIn) one from a new sign-in.
   */
  async getAccessToken () {
    const t = this.tokens()
    if (this._fresh(t)) return t.access_token
    return (await this._renew(t ? t.access_token : null)).access_token
  }

  /**
   * Renews the tokens that carried the access token stale (null: none).
   * Callers renewing the same stale token share one renewal; a renewal that
   * finds the token already replaced by a fresh one returns that.
   */
  _renew (stale, signIn) {
    if (signIn === undefined) signIn = this.autoSignIn
    if (this._renewal && this._renewal.stale === stale) return this._renewal.promise
    const promise = this._exclusive(async () => {
      const t = this.tokens()
      if (t && t.access_token !== stale && this._fresh(t)) return t
      if (t && t.refresh_token) {
        try {
          return await this._refresh(t)
        } catch (e) {
          // The refresh token is spent, revoked or expired: sign in afresh.
          if (!(e instanceof WxoidcError) || e.code !== 'invalid_grant') throw e
          this._clear()
        }
      }
      if (!signIn) throw new WxoidcError('not_signed_in', 'call signIn() first')
      return this._signIn({})
    })
    const renewal = { stale, promise }
    this._renewal = renewal
    const done = () => { if (this._renewal === renewal) this._renewal = null }
    promise.then(done, done)
    return promise
  }

  /** Runs fn after every sign-in or refresh queued before it. */
  _exclusive (fn) {
    const run = this._lock.then(fn, fn)
    this._lock = run.then(() => {}, () => {})
    return run
  }

  async _refresh (t) {
    const resp = await this._tokenRequest({
      grant_type: 'refresh_token',
      client_id: this.clientId,
      refresh_token: t.refresh_token,
    })
    return this._save(resp, t)
  }

  // --- sign-in and sign-out ------------------------------------------------

  /**
   * Signs in with wx.login() and wxoidc's WeChat grant.
   * @param {{phoneCode?: string, scope?: string}} [options] phoneCode: the code
   *   from a getPhoneNumber button (binds the phone number at sign-in).
   */
  signIn (options) {
    return this._exclusive(() => this._signIn(options || {}))
  }

  async _signIn (o) {
    const params = {
      grant_type: GRANT_WECHAT,
      client_id: this.clientId,
      scope: o.scope || this.scope,
      audience: this.audience,
      phone_code: o.phoneCode,
    }
    // Each attempt takes a fresh wx.login() code: a code is single-use.
    const resp = await this._tokenRequest(params, async () => { params.js_code = await this._wxLogin() })
    return this._save(resp, null)
  }

  _wxLogin () {
    return new Promise((resolve, reject) => {
      this.wx.login({
        timeout: this.timeout,
        success: (res) => res && res.code ? resolve(res.code) : reject(new WxoidcError('login_failed', (res && res.errMsg) || 'wx.login gave no code')),
        fail: (err) => reject(new WxoidcError('login_failed', (err && err.errMsg) || 'wx.login failed')),
      })
    })
  }

  /**
   * Signs out: revokes the refresh token (RFC 7009; wxoidc then revokes the
   * access tokens issued with it) and forgets the tokens. The tokens are
   * forgotten even when revocation fails; the answer says whether it worked.
   * @returns {Promise<{revoked: boolean}>}
   */
  signOut () {
    return this._exclusive(async () => {
      const t = this.tokens()
      if (!t) return { revoked: true }
      let revoked = true
      try {
        for (const [token, hint] of [[t.refresh_token, 'refresh_token'], [t.access_token, 'access_token']]) {
          if (!token) continue
          const res = await this._send({
            url: this.issuer + PATHS.revoke,
            method: 'POST',
            header: { 'content-type': 'application/x-www-form-urlencoded' },
            data: formEncode({ token, token_type_hint: hint, client_id: this.clientId }),
          })
          if (res.statusCode !== 200) revoked = false
        }
      } catch (_) {
        revoked = false
      } finally {
        this._clear()
      }
      return { revoked }
    })
  }

  /**
   * Erases the signed-in person's account at wxoidc (POST /account/delete):
   * the user, their WeChat identities, tokens, consents and sessions; the
   * same WeChat user signing in later is a new user with a new sub. On
   * success the stored tokens are forgotten. It never signs in by itself
   * unless asked: wxoidc wants a recent sign-in (10 minutes by default), and
   * an older one is refused with code login_required (status 403); with
   * signInAgain the SDK then signs in with wx.login() and tries once more.
   * Other errors: not_signed_in (no tokens, or they can no longer be
   * refreshed: also when the account is already gone, whose tokens went
   * with it; the tokens are then forgotten), insufficient_scope,
   * temporarily_unavailable (503), network_error.
   * @param {{signInAgain?: boolean}} [options]
   * @returns {Promise<void>}
   */
  async deleteAccount (options) {
    const o = options || {}
    try {
      await this._deleteAccount()
    } catch (e) {
      if (!o.signInAgain || !(e instanceof WxoidcError) || e.code !== 'login_required') throw e
      await this.signIn()
      await this._deleteAccount()
    }
  }

  async _deleteAccount () {
    const t = this.tokens()
    if (!t) throw new WxoidcError('not_signed_in', 'call signIn() first')
    // Renewing may refresh, never sign in: a sign-in here would create a
    // user only to erase it when the account is already gone.
    let token = this._fresh(t) ? t.access_token : (await this._renew(t.access_token, false)).access_token
    const req = () => this._send({
      url: this.issuer + PATHS.accountDelete,
      method: 'POST',
      header: { 'content-type': 'application/x-www-form-urlencoded', Authorization: 'Bearer ' + token },
      data: '',
    })
    let res = await req()
    if (res.statusCode === 401) {
      token = (await this._renew(token, false)).access_token
      res = await req()
    }
    okOrThrow(res, this.now())
    // After any sign-in or refresh already queued, so none stores tokens again.
    await this._exclusive(() => this._clear())
  }

  // --- calls ------------------------------------------------------------------

  /**
   * wx.request with the bearer access token. A 401 answer (the token was
   * revoked or expired early) refreshes the tokens and retries once; 429 and
   * 503 with a Retry-After of at most maxRetryAfter seconds are retried
   * after waiting. Resolves with wx.request's success result
   * ({statusCode, data, header}) whatever the status; rejects with a
   * WxoidcError when no answer came or no token could be had.
   */
  async request (options) {
    let token = await this.getAccessToken()
    let res = await this._send(this._withBearer(options, token))
    if (res.statusCode === 401) {
      token = (await this._renew(token)).access_token
      res = await this._send(this._withBearer(options, token))
    }
    return res
  }

  _withBearer (options, token) {
    const header = Object.assign({}, options.header)
    for (const k of Object.keys(header)) if (k.toLowerCase() === 'authorization') delete header[k]
    header.Authorization = 'Bearer ' + token
    return Object.assign({}, options, { header })
  }

  /**
   * Binds a phone number to the signed-in user (POST /wechat/phone) with the
   * code from a getPhoneNumber button. Needs the phone scope.
   * @returns {Promise<{phone_number: string, phone_number_verified: boolean}>}
   */
  bindPhone (phoneCode) {
    return this._call(PATHS.phone, 'POST', { phone_code: phoneCode })
  }

  // --- scan to sign in (RFC 8628 device and desktop logins) ----------------

  /**
   * The pending device or desktop login a user code (or a scanned Mini
   * Program code's scene) names, to show the person before they decide:
   * GET /oauth2/device/verify.
   * @returns {Promise<{client_id: string, client_name: string, scope: string, user_code: string, kind: string, expires_in: number}>}
   */
  getDeviceLogin (userCode) {
    return this._call(PATHS.deviceVerify, 'GET', { user_code: userCodeOf(userCode) })
  }

  /** Approves the login for the signed-in person (POST /oauth2/device/verify, action=approve). */
  async approveDeviceLogin (userCode) {
    await this._call(PATHS.deviceVerify, 'POST', { user_code: userCodeOf(userCode), action: 'approve' })
  }

  /** Denies the login (POST /oauth2/device/verify, action=deny). */
  async denyDeviceLogin (userCode) {
    await this._call(PATHS.deviceVerify, 'POST', { user_code: userCodeOf(userCode), action: 'deny' })
  }

  /** An authenticated form call to a wxoidc endpoint; resolves the JSON answer, rejects with WxoidcError. */
  async _call (path, method, params) {
    const data = formEncode(params || {})
    const res = await this.request(method === 'GET'
      ? { url: this.issuer + path + (data ? '?' + data : ''), method }
      : { url: this.issuer + path, method, header: { 'content-type': 'application/x-www-form-urlencoded' }, data })
    return okOrThrow(res, this.now())
  }

  /**
   * POSTs to the token endpoint, retrying 429/503 per Retry-After; before
   * each attempt, prepare (if given) fills in single-use parameters.
   */
  async _tokenRequest (params, prepare) {
    const res = await this._send({
      url: this.issuer + PATHS.token,
      method: 'POST',
      header: { 'content-type': 'application/x-www-form-urlencoded' },
    }, async (req) => {
      if (prepare) await prepare()
      req.data = formEncode(params)
    })
    return okOrThrow(res, this.now())
  }

  /**
   * wx.request as a promise, retrying a 429 or 503 answer whose Retry-After
   * is at most maxRetryAfter seconds, up to `retries` times.
   */
  async _send (req, prepare) {
    for (let attempt = 0; ; attempt++) {
      if (prepare) await prepare(req)
      const res = await this._wxRequest(req)
      if ((res.statusCode === 429 || res.statusCode === 503) && attempt < this.retries) {
        const wait = retryAfterMs(headerValue(res.header, 'Retry-After'), this.now())
        if (wait !== undefined && wait <= this.maxRetryAfter * 1000) {
          await sleep(wait)
          continue
        }
      }
      return res
    }
  }

  _wxRequest (req) {
    return new Promise((resolve, reject) => {
      this.wx.request(Object.assign({ timeout: this.timeout }, req, {
        success: (res) => resolve(res),
        fail: (err) => reject(new WxoidcError('network_error', (err && err.errMsg) || 'wx.request failed')),
      }))
    })
  }
}

/**
 * A user code from what the person typed or a scanned code's scene (the
 * page's options.scene, URL-encoded, the code without its dash).
 */
function userCodeOf (codeOrScene) {
  let s = String(codeOrScene || '')
  try { s = decodeURIComponent(s) } catch (_) {}
  return s.trim()
}

/** The JSON body of a 2xx answer, or a WxoidcError from the RFC 6749/6750 error. */
function okOrThrow (res, now) {
  const body = parseBody(res.data)
  if (res.statusCode >= 200 && res.statusCode < 300) return body === '' ? {} : body
  let code = body && typeof body === 'object' && body.error
  let description = body && typeof body === 'object' ? body.error_description : ''
  if (!code) {
    // RFC 6750 §3: a resource server's error is in WWW-Authenticate.
    const wa = headerValue(res.header, 'WWW-Authenticate') || ''
    const m = /error="([^"]*)"/.exec(wa)
    const d = /error_description="([^"]*)"/.exec(wa)
    code = m ? m[1] : 'http_' + res.statusCode
    description = d ? d[1] : description
  }
  const ra = retryAfterMs(headerValue(res.header, 'Retry-After'), now)
  throw new WxoidcError(code, description, { status: res.statusCode, retryAfter: ra === undefined ? undefined : Math.ceil(ra / 1000) })
}

function createClient (options) {
  return new Client(options)
}

module.exports = { createClient, Client, WxoidcError, wxStorage, GRANT_WECHAT }
