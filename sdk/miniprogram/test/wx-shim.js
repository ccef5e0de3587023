'use strict'
// A stand-in for the Mini Program's wx object, for tests under node:
// wx.login asks the WeChat simulator of `wxoidc dev` for a code, as the
// real wx.login asks WeChat; wx.request does real HTTP with fetch; the
// storage functions keep JSON copies in a Map, as WeChat's storage does.

/**
 * @param {{simBase: string, appid: string, user: string}} o
 */
function createWx (o) {
  const store = new Map()
  const calls = { login: 0, requests: [] }
  const wx = {
    calls,
    store,
    /** The simulator user wx.login signs in as. */
    user: o.user,
    /** When set, answers a request instead of the network: (req) => response or undefined. */
    intercept: null,

    login ({ success, fail }) {
      calls.login++
      fetch(o.simBase + '/sim/login', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ appid: o.appid, user: wx.user }),
      })
        .then(async (r) => {
          const body = await r.json()
          if (!r.ok || !body.code) throw new Error(JSON.stringify(body))
          success({ code: body.code, errMsg: 'login:ok' })
        })
        .catch((e) => fail({ errMsg: 'login:fail ' + e.message }))
    },

    request (req) {
      const { url, method = 'GET', data, header = {}, dataType = 'json', success, fail } = req
      const record = { url, method, header, data }
      calls.requests.push(record)
      const canned = wx.intercept && wx.intercept(record)
      if (canned) {
        setTimeout(() => success(Object.assign({ header: {}, errMsg: 'request:ok' }, canned)), 0)
        return
      }
      const headers = {}
      let contentType = ''
      for (const [k, v] of Object.entries(header)) {
        headers[k] = String(v)
        if (k.toLowerCase() === 'content-type') contentType = String(v)
      }
      let target = url
      let body
      // How WeChat sends data: a string as is; an object as the query for
      // GET, as a form for x-www-form-urlencoded, else as JSON.
      if (data !== undefined && data !== null) {
        if (method === 'GET') {
          if (typeof data === 'object') target += (url.includes('?') ? '&' : '?') + new URLSearchParams(data)
        } else if (typeof data === 'string') {
          body = data
        } else if (contentType.includes('application/x-www-form-urlencoded')) {
          body = new URLSearchParams(data).toString()
        } else {
          body = JSON.stringify(data)
          if (!contentType) headers['content-type'] = 'application/json'
        }
      }
      fetch(target, { method, headers, body })
        .then(async (r) => {
          const text = await r.text()
          let parsed = text
          if (dataType === 'json') {
            try { parsed = JSON.parse(text) } catch (_) {}
          }
          record.statusCode = r.status
          success({ statusCode: r.status, data: parsed, header: Object.fromEntries(r.headers), errMsg: 'request:ok' })
        })
        .catch((e) => fail({ errMsg: 'request:fail ' + e.message }))
    },

    getStorageSync (key) {
      return store.has(key) ? JSON.parse(store.get(key)) : ''
    },
    setStorageSync (key, value) {
      store.set(key, JSON.stringify(value))
    },
    removeStorageSync (key) {
      store.delete(key)
    },
  }
  return wx
}

/** The token-endpoint calls the SDK made, by grant_type. */
function tokenCalls (wx, grantType) {
  return wx.calls.requests.filter((r) => r.url.endsWith('/oauth2/token') &&
    new URLSearchParams(r.data).get('grant_type') === grantType)
}

module.exports = { createWx, tokenCalls }
