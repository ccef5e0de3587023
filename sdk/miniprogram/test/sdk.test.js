'use strict'
// Tests of wxoidc-miniprogram against a real `wxoidc dev` through the wx shim.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { createClient, WxoidcError } = require('..')
const { createWx, tokenCalls } = require('./wx-shim')
const { startDev, counter } = require('./harness')

const APPID = 'wxd0000000000000a1' // the dev Mini Program (SPEC §9)
let dev
let users = 0

before(async () => { dev = await startDev() })
after(async () => { if (dev) await dev.stop() })

/** A client for a new simulator user, with a clock the test can move. */
function setup (options) {
  const wx = createWx({ simBase: dev.simBase, appid: APPID, user: `sdk-user-${process.pid}-${++users}` })
  const clock = { skew: 0 }
  const auth = createClient(Object.assign({
    issuer: dev.issuer,
    clientId: 'demo-miniprogram',
    scope: 'openid offline_access phone',
    wx,
    now: () => Date.now() + clock.skew,
  }, options))
  return { wx, auth, clock }
}

const userinfo = (auth) => auth.request({ url: dev.issuer + '/userinfo', method: 'GET' })

async function simCode (p, form) {
  const r = await fetch(dev.simBase + p, { method: 'POST', body: new URLSearchParams(form) })
  assert.equal(r.status, 200, p)
  return (await r.json()).code
}

async function form (p, params) {
  const r = await fetch(dev.issuer + p, { method: 'POST', body: new URLSearchParams(params) })
  return { status: r.status, body: await r.json().catch(() => null) }
}

test('signIn trades wx.login for tokens kept in wx storage; request sends the bearer', async () => {
  const { wx, auth } = setup()
  assert.equal(auth.isSignedIn(), false)
  const t = await auth.signIn()
  assert.equal(wx.calls.login, 1)
  assert.ok(t.access_token && t.refresh_token && t.id_token)
  assert.deepEqual(wx.getStorageSync('wxoidc.tokens'), t)
  const sub = auth.claims().sub
  assert.match(sub, /^.{10,}$/)

  const res = await userinfo(auth)
  assert.equal(res.statusCode, 200)
  assert.equal(res.data.sub, sub)
  assert.equal(wx.calls.requests.at(-1).header.Authorization, 'Bearer ' + t.access_token)

  // Another client on the same storage (the app restarted) needs no login.
  const again = createClient({ issuer: dev.issuer, clientId: 'demo-miniprogram', wx })
  assert.equal((await userinfo(again)).data.sub, sub)
  assert.equal(wx.calls.login, 1)
})

test('signIn with a phone code binds the phone number', async () => {
  const { wx, auth } = setup()
  const phoneCode = await simCode('/sim/phone-code', { appid: APPID, user: wx.user, phone: '13800138001' })
  await auth.signIn({ phoneCode })
  const res = await userinfo(auth)
  assert.equal(res.data.phone_number, '+8613800138001')
  assert.equal(res.data.phone_number_verified, true)
})

test('bindPhone binds a phone number later', async () => {
  const { wx, auth } = setup()
  await auth.signIn()
  const phoneCode = await simCode('/sim/phone-code', { appid: APPID, user: wx.user, phone: '13900139002' })
  assert.deepEqual(await auth.bindPhone(phoneCode), { phone_number: '+8613900139002', phone_number_verified: true })
  assert.equal((await userinfo(auth)).data.phone_number, '+8613900139002')
  // A phone code issued to someone else binds nothing (WeChat checks it
  // against this user's openid).
  const othersCode = await simCode('/sim/phone-code', { appid: APPID, user: 'someone-else', phone: '13900139003' })
  await assert.rejects(auth.bindPhone(othersCode), (e) => e instanceof WxoidcError && e.code === 'invalid_request' && e.status === 400)
  assert.equal((await userinfo(auth)).data.phone_number, '+8613900139002')
  await assert.rejects(auth.bindPhone('forged'), (e) => e instanceof WxoidcError && e.code === 'invalid_request' && e.status === 400)
})

test('20 concurrent requests at token expiry cause exactly one refresh', async () => {
  const { wx, auth, clock } = setup()
  const first = await auth.signIn()
  const before = await counter(dev, 'wxoidc_tokens_issued_total', { grant_type: 'refresh_token', client_id: 'demo-miniprogram' })

  clock.skew = first.expires_at - Date.now() + 1000 // the access token has just expired
  const results = await Promise.all(Array.from({ length: 20 }, () => userinfo(auth)))

  assert.deepEqual(results.map((r) => r.statusCode), Array(20).fill(200))
  assert.equal(tokenCalls(wx, 'refresh_token').length, 1, 'refresh calls the SDK made')
  const after = await counter(dev, 'wxoidc_tokens_issued_total', { grant_type: 'refresh_token', client_id: 'demo-miniprogram' })
  assert.equal(after - before, 1, 'refreshes the server counted')
  const t = auth.tokens()
  assert.notEqual(t.access_token, first.access_token)
  assert.notEqual(t.refresh_token, first.refresh_token, 'the refresh token rotated')
  for (const r of wx.calls.requests.filter((r) => r.url.endsWith('/userinfo'))) {
    assert.equal(r.header.Authorization, 'Bearer ' + t.access_token)
  }
  assert.equal(wx.calls.login, 1)
})

test('the token is refreshed ahead of expiry (refreshMargin)', async () => {
  const { wx, auth, clock } = setup({ refreshMargin: 60 })
  const first = await auth.signIn()
  clock.skew = first.expires_at - Date.now() - 30 * 1000 // 30 s left, inside the margin
  assert.notEqual(await auth.getAccessToken(), first.access_token)
  assert.equal(tokenCalls(wx, 'refresh_token').length, 1)
})

test('request refreshes once and retries on 401', async () => {
  const { wx, auth } = setup()
  const first = await auth.signIn()
  let refused = 0
  // The API refuses the first token once (say, its clock runs ahead).
  wx.intercept = (req) => {
    if (req.url.endsWith('/userinfo') && req.header.Authorization === 'Bearer ' + first.access_token && refused++ === 0) {
      return { statusCode: 401, data: '', header: { 'WWW-Authenticate': 'Bearer error="invalid_token"' } }
    }
  }
  const res = await userinfo(auth)
  assert.equal(res.statusCode, 200)
  assert.equal(tokenCalls(wx, 'refresh_token').length, 1)
  assert.equal(wx.calls.requests.filter((r) => r.url.endsWith('/userinfo')).length, 2)

  // A second 401 after the retry is the caller's answer: no loop.
  wx.intercept = (req) => req.url.endsWith('/userinfo') ? { statusCode: 401, data: '' } : undefined
  assert.equal((await userinfo(auth)).statusCode, 401)
  assert.equal(tokenCalls(wx, 'refresh_token').length, 2)
})

test('a revoked grant (invalid_grant on refresh) signs in again', async () => {
  const { wx, auth } = setup()
  const first = await auth.signIn()
  const sub = auth.claims().sub
  // Revoking the refresh token revokes its grant's access tokens too (RFC 7009 §2.1).
  assert.equal((await form('/oauth2/revoke', { token: first.refresh_token, client_id: 'demo-miniprogram' })).status, 200)

  const res = await userinfo(auth) // 401 → refresh → invalid_grant → wx.login → retry
  assert.equal(res.statusCode, 200)
  assert.equal(res.data.sub, sub, 'the same person signs in again')
  assert.equal(wx.calls.login, 2)
  const refreshes = tokenCalls(wx, 'refresh_token')
  assert.equal(refreshes.length, 1)
  assert.equal(refreshes[0].statusCode, 400)
})

test('signOut revokes the tokens and forgets them', async () => {
  const { wx, auth } = setup()
  const t = await auth.signIn()
  assert.deepEqual(await auth.signOut(), { revoked: true })
  assert.equal(auth.isSignedIn(), false)
  assert.equal(wx.getStorageSync('wxoidc.tokens'), '')
  const refresh = await form('/oauth2/token', { grant_type: 'refresh_token', client_id: 'demo-miniprogram', refresh_token: t.refresh_token })
  assert.equal(refresh.status, 400)
  assert.equal(refresh.body.error, 'invalid_grant')
  const r = await fetch(dev.issuer + '/userinfo', { headers: { authorization: 'Bearer ' + t.access_token } })
  assert.equal(r.status, 401)
  assert.deepEqual(await auth.signOut(), { revoked: true }, 'signing out twice is fine')
})

test('without autoSignIn, a signed-out client says not_signed_in', async () => {
  const { wx, auth } = setup({ autoSignIn: false })
  await assert.rejects(auth.getAccessToken(), (e) => e instanceof WxoidcError && e.code === 'not_signed_in')
  await assert.rejects(userinfo(auth), (e) => e.code === 'not_signed_in')
  assert.equal(wx.calls.login, 0)
})

test('with autoSignIn (the default), the first request signs in, once for many callers', async () => {
  const { wx, auth } = setup()
  const results = await Promise.all(Array.from({ length: 5 }, () => userinfo(auth)))
  assert.deepEqual(results.map((r) => r.statusCode), Array(5).fill(200))
  assert.equal(wx.calls.login, 1)
})

test('WeChat busy: 503 temporarily_unavailable is retried after Retry-After', async () => {
  const { wx, auth } = setup()
  // Three busy answers use up the provider's own retries of one grant.
  const r = await fetch(dev.simBase + '/sim/faults', { method: 'POST', body: new URLSearchParams({ busy: '3', path: '/sns/jscode2session' }) })
  assert.equal(r.status, 200)
  const started = Date.now()
  await auth.signIn()
  const grants = tokenCalls(wx, 'urn:wxoidc:params:oauth:grant-type:wechat-jscode')
  assert.deepEqual(grants.map((g) => g.statusCode), [503, 200])
  assert.equal(wx.calls.login, 2, 'a fresh wx.login code for the retry')
  assert.ok(Date.now() - started >= 1000 * Number(5) - 100, 'waited Retry-After')
})

test('429 with Retry-After from an API: retried after the wait; a long wait is left to the caller', async () => {
  const { wx, auth } = setup()
  await auth.signIn()
  let n = 0
  wx.intercept = (req) => req.url.endsWith('/userinfo') && n++ === 0 ? { statusCode: 429, data: 'slow down', header: { 'retry-after': '1' } } : undefined
  const started = Date.now()
  assert.equal((await userinfo(auth)).statusCode, 200)
  assert.ok(Date.now() - started >= 950)

  wx.intercept = (req) => req.url.endsWith('/userinfo') ? { statusCode: 503, data: '', header: { 'Retry-After': '3600' } } : undefined
  const res = await userinfo(auth)
  assert.equal(res.statusCode, 503)
  assert.equal(wx.calls.requests.filter((r) => r.url.endsWith('/userinfo')).length, 3)
})

test('network failures reject with network_error', async () => {
  const wx = createWx({ simBase: dev.simBase, appid: APPID, user: 'netfail' })
  const auth = createClient({ issuer: 'http://127.0.0.1:1', clientId: 'demo-miniprogram', wx })
  await assert.rejects(auth.signIn(), (e) => e instanceof WxoidcError && e.code === 'network_error')
})

async function deviceAuthorize () {
  const r = await fetch(dev.issuer + '/oauth2/device/authorize', { method: 'POST', body: new URLSearchParams({ client_id: 'demo-device', scope: 'openid' }) })
  assert.equal(r.status, 200)
  return r.json()
}

async function pollDevice (deviceCode) {
  return form('/oauth2/token', { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', client_id: 'demo-device', device_code: deviceCode })
}

test('scan to sign in: the Mini Program sees, approves or denies a device login', async () => {
  const { auth } = setup()
  await auth.signIn()
  const d = await deviceAuthorize()

  // The scanned Mini Program code carries the user code without its dash.
  const scene = encodeURIComponent(d.user_code.replace('-', ''))
  const info = await auth.getDeviceLogin(scene)
  assert.equal(info.client_id, 'demo-device')
  assert.equal(info.user_code, d.user_code)
  assert.equal(info.scope, 'openid')

  await auth.approveDeviceLogin(d.user_code)
  const tok = await pollDevice(d.device_code)
  assert.equal(tok.status, 200, JSON.stringify(tok.body))
  const idClaims = JSON.parse(Buffer.from(tok.body.id_token.split('.')[1], 'base64url'))
  assert.equal(idClaims.sub, auth.claims().sub, 'the device is signed in as the Mini Program user')
  await assert.rejects(auth.approveDeviceLogin(d.user_code), (e) => e instanceof WxoidcError && e.code === 'invalid_grant')

  const denied = await deviceAuthorize()
  await auth.denyDeviceLogin(denied.user_code)
  const res = await pollDevice(denied.device_code)
  assert.equal(res.status, 400)
  assert.equal(res.body.error, 'access_denied')
})

test('deleteAccount erases the account and forgets the tokens; signing in again is a new sub', async () => {
  const { wx, auth } = setup()
  const t = await auth.signIn()
  const sub = auth.claims().sub
  await auth.deleteAccount()
  assert.equal(auth.isSignedIn(), false)
  assert.equal(wx.getStorageSync('wxoidc.tokens'), '')
  assert.equal(wx.calls.login, 1, 'deleting signed nobody in')
  // The tokens went with the account.
  const r = await fetch(dev.issuer + '/userinfo', { headers: { authorization: 'Bearer ' + t.access_token } })
  assert.equal(r.status, 401)
  const refresh = await form('/oauth2/token', { grant_type: 'refresh_token', client_id: 'demo-miniprogram', refresh_token: t.refresh_token })
  assert.equal(refresh.body.error, 'invalid_grant')
  await assert.rejects(auth.deleteAccount(), (e) => e instanceof WxoidcError && e.code === 'not_signed_in')

  // The same WeChat user signing in again is a new user.
  await auth.signIn()
  assert.notEqual(auth.claims().sub, sub)
  assert.equal((await userinfo(auth)).data.sub, auth.claims().sub)
})

test('deleteAccount after the account is gone: not_signed_in, tokens forgotten, nobody signed in', async () => {
  const { wx, auth } = setup()
  await auth.signIn()
  await dev.adminRequest('DELETE', '/admin/users/' + encodeURIComponent(auth.claims().sub))
  await assert.rejects(auth.deleteAccount(), (e) => e instanceof WxoidcError && e.code === 'not_signed_in')
  assert.equal(auth.isSignedIn(), false)
  assert.equal(wx.calls.login, 1)
})

test('deleteAccount with a too-old sign-in is refused with login_required; signInAgain signs in and erases', async () => {
  // A provider that wants a sign-in within 3 seconds, and a sign-in older than that.
  const short = await startDev({ config: 'users:\n  account_delete_max_age: 3s\n' })
  try {
    const wx = createWx({ simBase: short.simBase, appid: APPID, user: `sdk-old-${process.pid}` })
    const auth = createClient({ issuer: short.issuer, clientId: 'demo-miniprogram', wx })
    await auth.signIn()
    const sub = auth.claims().sub
    const stale = auth.tokens()
    await new Promise((resolve) => setTimeout(resolve, 3500))

    await assert.rejects(auth.deleteAccount(), (e) => e instanceof WxoidcError && e.code === 'login_required' &&
      e.status === 403 && /within the last 3 seconds/.test(e.description) && /wx\.login/.test(e.description))
    assert.deepEqual(auth.tokens(), stale, 'a refused deletion keeps the tokens')
    const me = await auth.request({ url: short.issuer + '/userinfo', method: 'GET' })
    assert.equal(me.data.sub, sub, 'and the account')
    assert.equal(wx.calls.login, 1)

    await auth.deleteAccount({ signInAgain: true })
    assert.equal(wx.calls.login, 2, 'a fresh sign-in')
    assert.equal(auth.isSignedIn(), false)
    await auth.signIn()
    assert.notEqual(auth.claims().sub, sub)
  } finally {
    await short.stop()
  }
})

test('deleteAccount when signed out: not_signed_in, no sign-in', async () => {
  const { wx, auth } = setup()
  await assert.rejects(auth.deleteAccount(), (e) => e instanceof WxoidcError && e.code === 'not_signed_in')
  assert.equal(wx.calls.login, 0)
})
