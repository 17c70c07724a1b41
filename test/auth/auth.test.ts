// Who may call the model server: API keys (made, listed and revoked by the CLI), JWTs from a JWKS on 127.0.0.1, scopes, rates.
import assert from 'node:assert/strict'
import {readFileSync, statSync} from 'node:fs'
import {type webcrypto} from 'node:crypto'
import {type Server, createServer} from 'node:http'
import type {AddressInfo} from 'node:net'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {type JWK, SignJWT, exportJWK, generateKeyPair} from 'jose'

import {Authenticator} from '../../src/auth/authenticator.js'
import {type AuthConfig, authSettings} from '../../src/auth/config.js'
import {mlops, tempDir} from '../support/cli.js'
import {assertMatchesSchema} from '../support/schema.js'
import {logEverything, post, start} from '../serve/helpers.js'

const RECORD = {instances: [{X: [5.1, 3.5, 1.4, 0.2]}]}

async function serverWith(dir: string, config: AuthConfig, requestLog?: string) {
  const auth = new Authenticator(authSettings(config, dir))
  await auth.start()
  const running = await start('xgboost_regressor', requestLog ? {requestLog: logEverything(requestLog)} : {}, {auth})
  return {
    ...running,
    close: async () => {
      auth.close()
      await running.server.close()
    },
  }
}

const bearer = (token: string) => ({authorization: `Bearer ${token}`})

describe('auth: API keys', function () {
  this.timeout(120_000)

  it('makes a key shown once, stored hashed (0600); the server takes it, refuses others (401), and a revoked one within seconds', async () => {
    const tmp = await tempDir()
    const made = await mlops(['keys', 'create', 'billing', '--scope', 'predict', '--json', '--dir', tmp.path])
    assert.equal(made.exitCode, 0, made.stderr)
    assertMatchesSchema(made.json, 'keys-create')
    const key = (made.json as {key: string}).key
    const file = join(tmp.path, '.mlops', 'keys.json')
    assert.equal(statSync(file).mode & 0o777, 0o600)
    assert.ok(!readFileSync(file, 'utf8').includes(key.split('_')[2]), 'the secret is in the key file')
    const log = join(tmp.path, 'requests.jsonl')
    const {url, close} = await serverWith(tmp.path, {mode: 'keys'}, log)
    try {
      const missing = await post(`${url}/v1/predict`, RECORD)
      assert.equal(missing.status, 401)
      assert.match(missing.headers.get('www-authenticate') ?? '', /^Bearer realm="mlops"$/)
      const wrong = await post(`${url}/v1/predict`, RECORD, bearer(key.slice(0, -2) + 'AA'))
      assert.equal(wrong.status, 401)
      assert.match(wrong.headers.get('www-authenticate') ?? '', /error="invalid_token"/)
      assert.equal((await post(`${url}/v1/predict`, RECORD, bearer(key))).status, 200)
      assert.equal((await fetch(`${url}/v2/health/ready`)).status, 200, 'health is open')
      const metrics = await fetch(`${url}/metrics`, {headers: bearer(key)})
      assert.equal(metrics.status, 403, 'a predict key may not read /metrics')
      assert.match(metrics.headers.get('www-authenticate') ?? '', /insufficient_scope/)

      const list = await mlops(['keys', 'list', '--json', '--dir', tmp.path])
      assertMatchesSchema(list.json, 'keys-list')
      assert.ok(!list.stdout.includes(key.split('_')[2]))
      const revoked = await mlops(['keys', 'revoke', 'billing', '--json', '--dir', tmp.path])
      assert.equal(revoked.exitCode, 0, revoked.stderr)
      assertMatchesSchema(revoked.json, 'keys-revoke')
      let status = 200
      for (let i = 0; i < 50 && status === 200; i++) {
        await sleep(200)
        status = (await post(`${url}/v1/predict`, RECORD, bearer(key))).status
      }
      assert.equal(status, 401, 'the running server still takes the revoked key')
    } finally {
      await close()
    }
    const entries = readFileSync(log, 'utf8').trim().split('\n')
    assert.equal(JSON.parse(entries[0]).caller, 'billing')
    assert.ok(!readFileSync(log, 'utf8').includes(key), 'the key is in the request log')
    await tmp.remove()
  })

  it("answers 429 with Retry-After past a key's rate, and refuses a bad scope name (exit 2)", async () => {
    const tmp = await tempDir()
    const made = await mlops([
      'keys',
      'create',
      'bot',
      '--scope',
      'predict,metrics',
      '--rate-limit',
      '1',
      '--json',
      '--dir',
      tmp.path,
    ])
    const key = (made.json as {key: string}).key
    const ops = await mlops(['keys', 'create', 'ops', '--scope', 'metrics', '--json', '--dir', tmp.path])
    const bad = await mlops(['keys', 'create', 'x', '--scope', 'predict,admin', '--dir', tmp.path])
    assert.equal(bad.exitCode, 2)
    assert.match(bad.stderr, /unknown scope "admin"/)
    const {url, close} = await serverWith(tmp.path, {mode: 'keys'})
    try {
      assert.equal((await post(`${url}/v1/predict`, RECORD, bearer(key))).status, 200)
      const limited = await post(`${url}/v1/predict`, RECORD, bearer(key))
      assert.equal(limited.status, 429)
      assert.ok(Number(limited.headers.get('retry-after')) >= 1)
      const opsKey = (ops.json as {key: string}).key
      const metrics = await (await fetch(`${url}/metrics`, {headers: bearer(opsKey)})).text()
      assert.match(metrics, /mlops_caller_requests_total\{caller="bot"\} 1/)
    } finally {
      await close()
      await tmp.remove()
    }
  })
})

describe('auth: JWTs against a JWKS on 127.0.0.1', function () {
  this.timeout(60_000)
  let jwks: Server
  let jwksUrl = ''
  let signer: webcrypto.CryptoKey
  let stranger: webcrypto.CryptoKey

  before(async () => {
    const pair = await generateKeyPair('ES256')
    signer = pair.privateKey
    stranger = (await generateKeyPair('ES256')).privateKey
    const jwk: JWK = {...(await exportJWK(pair.publicKey)), kid: 'test-1', alg: 'ES256', use: 'sig'}
    const body = JSON.stringify({keys: [jwk]})
    jwks = createServer((_req, res) => res.writeHead(200, {'content-type': 'application/json'}).end(body))
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve))
    jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`
  })
  after(() => jwks.close())

  function token(
    claims: Record<string, unknown>,
    options: {key?: webcrypto.CryptoKey; audience?: string; expires?: number} = {},
  ) {
    const now = Math.floor(Date.now() / 1000)
    return new SignJWT(claims)
      .setProtectedHeader({alg: 'ES256', kid: 'test-1'})
      .setIssuer('https://issuer.test')
      .setSubject('alice@example.com')
      .setAudience(options.audience ?? 'mlops-api')
      .setIssuedAt(now - 600)
      .setExpirationTime(options.expires ?? now + 600)
      .sign(options.key ?? signer)
  }

  it('lets a valid token in under its subject, refuses expired, wrong-audience and wrong-key tokens (401) and a missing scope (403)', async () => {
    const tmp = await tempDir()
    const config: AuthConfig = {
      mode: 'jwt',
      jwt: {jwks_url: jwksUrl, issuer: 'https://issuer.test', audience: 'mlops-api', clock_skew_seconds: 30},
    }
    const log = join(tmp.path, 'requests.jsonl')
    const {url, close} = await serverWith(tmp.path, config, log)
    const now = Math.floor(Date.now() / 1000)
    try {
      assert.equal((await post(`${url}/v1/predict`, RECORD, bearer(await token({scope: 'predict'})))).status, 200)
      // Within the clock skew: still valid.
      assert.equal((await post(`${url}/v1/predict`, RECORD, bearer(await token({}, {expires: now - 10})))).status, 200)
      const cases: [string, string, RegExp][] = [
        ['expired', await token({}, {expires: now - 120}), /expired/],
        ['wrong audience', await token({}, {audience: 'someone-else'}), /"aud" claim/],
        ['wrong key', await token({}, {key: stranger}), /signature/],
        ['not a JWT', 'a.b.c', /not a valid JWT/],
      ]
      for (const [what, jwt, message] of cases) {
        const answer = await post(`${url}/v1/predict`, RECORD, bearer(jwt))
        assert.equal(answer.status, 401, `${what}: ${answer.text}`)
        assert.match(answer.json.error.message, message, what)
        assert.match(answer.headers.get('www-authenticate') ?? '', /invalid_token/)
      }
      const forbidden = await fetch(`${url}/metrics`, {headers: bearer(await token({scope: 'predict'}))})
      assert.equal(forbidden.status, 403)
      assert.equal((await fetch(`${url}/metrics`, {headers: bearer(await token({scp: ['metrics']}))})).status, 200)
    } finally {
      await close()
    }
    assert.equal(JSON.parse(readFileSync(log, 'utf8').split('\n')[0]).caller, 'alice@example.com')
    await tmp.remove()
  })
})
