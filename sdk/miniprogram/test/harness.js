'use strict'
// Starts a real `wxoidc dev` for tests: the binary is built once per test
// process (or taken from $WXOIDC_BIN), each server gets free ports and its
// own data directory, and stop() ends it.

const { spawn, execFileSync } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const crypto = require('node:crypto')

const REPO = path.resolve(__dirname, '../../..')
let binary

/** The wxoidc binary: $WXOIDC_BIN, or built from this checkout (once per process). */
function wxoidcBinary () {
  if (process.env.WXOIDC_BIN) return process.env.WXOIDC_BIN
  if (!binary) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wxoidc-bin-'))
    binary = path.join(dir, 'wxoidc')
    execFileSync('go', ['build', '-o', binary, './cmd/wxoidc'], { cwd: REPO, stdio: ['ignore', 'inherit', 'inherit'] })
    process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }))
  }
  return binary
}

function freePort () {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.unref()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/**
 * Starts `wxoidc dev`. config (a YAML string) is overlaid with --config.
 * @returns {Promise<{issuer: string, simBase: string, admin: string, adminToken: string, log: () => string, adminRequest: Function, stop: () => Promise<void>}>}
 */
async function startDev ({ config } = {}) {
  const bin = wxoidcBinary()
  for (let attempt = 1; ; attempt++) {
    const data = fs.mkdtempSync(path.join(os.tmpdir(), 'wxoidc-dev-'))
    const [port, adminPort] = [await freePort(), await freePort()]
    const adminToken = crypto.randomBytes(24).toString('hex')
    const args = ['dev', '--addr', `127.0.0.1:${port}`, '--data', data,
      '--admin-addr', `127.0.0.1:${adminPort}`, '--admin-token', adminToken]
    if (config) {
      fs.writeFileSync(path.join(data, 'overlay.yaml'), config)
      args.push('--config', path.join(data, 'overlay.yaml'))
    }
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (b) => { output += b })
    child.stderr.on('data', (b) => { output += b })
    const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)))
    const issuer = `http://127.0.0.1:${port}`
    const ready = await waitReady(issuer + '/readyz', exited)
    if (!ready) {
      child.kill('SIGKILL')
      await exited
      fs.rmSync(data, { recursive: true, force: true })
      if (attempt < 3 && /address already in use/.test(output)) continue
      throw new Error('wxoidc dev did not become ready:\n' + output)
    }
    const admin = `http://127.0.0.1:${adminPort}`
    return {
      issuer,
      simBase: issuer + '/wechat-sim',
      admin,
      adminToken,
      log: () => output,
      /** A JSON call to the admin API. */
      async adminRequest (method, p, body) {
        const r = await fetch(admin + p, {
          method,
          headers: { authorization: 'Bearer ' + adminToken, 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
        })
        const text = await r.text()
        if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${text}`)
        return text ? JSON.parse(text) : null
      },
      async stop () {
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), 10000)
        await exited
        clearTimeout(timer)
        fs.rmSync(data, { recursive: true, force: true })
      },
    }
  }
}

async function waitReady (url, exited) {
  let gone = false
  exited.then(() => { gone = true })
  const deadline = Date.now() + 60000
  while (Date.now() < deadline && !gone) {
    try {
      const r = await fetch(url)
      if (r.status === 200) return true
    } catch (_) {}
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return false
}

/** The value of a Prometheus counter with the given labels, from /metrics (public listener, else admin). */
async function counter (dev, name, labels) {
  for (const base of [dev.issuer, dev.admin]) {
    const r = await fetch(base + '/metrics', { headers: { authorization: 'Bearer ' + dev.adminToken } })
    if (r.status !== 200) continue
    const text = await r.text()
    let sum = 0
    for (const line of text.split('\n')) {
      if (!line.startsWith(name + '{')) continue
      if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.split(' ').pop())
    }
    return sum
  }
  throw new Error('no /metrics on the public or the admin listener')
}

module.exports = { startDev, wxoidcBinary, freePort, counter, REPO }
