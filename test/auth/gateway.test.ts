// The gateway's client port under serving.auth: it checks callers and names them to its model servers, which log them.
import assert from 'node:assert/strict'
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {Pool} from 'undici'

import {createKey} from '../../src/auth/keys.js'
import {deploy, status} from '../../src/rollout/deploy.js'
import {deployPaths} from '../../src/rollout/state.js'
import type {GatewayInfo} from '../../src/targets/local/gateway.js'
import {type Project, XGB, predict, project} from '../rollout/helpers.js'

describe('auth on the gateway', function () {
  this.timeout(120_000)
  let p: Project

  afterEach(async () => {
    await p?.cleanup()
  })

  it('refuses a client without a key (401), lets a key in, and the model server logs the caller the gateway names, not the one the client claims', async () => {
    p = await project()
    const config = JSON.parse(await readFile(join(p.dir, 'mlops.yaml'), 'utf8')) as Record<string, unknown>
    config.serving = {request_log: {path: 'logs/requests.jsonl'}}
    await writeFile(join(p.dir, 'mlops.yaml'), JSON.stringify(config))
    const {key} = await createKey(join(p.dir, '.mlops', 'keys.json'), {name: 'shop', scopes: ['predict']})
    await deploy({dir: p.dir, ref: '1.0.0', model: XGB, stage: 'full', authMode: 'keys'})
    const pool = new Pool(p.url)
    try {
      const refused = await predict(pool)
      assert.equal(refused.status, 401, refused.body)
      const spoofed = await predict(pool, {authorization: 'Bearer nope', 'x-mlops-caller': 'admin'})
      assert.equal(spoofed.status, 401)
      const ok = await predict(pool, {authorization: `Bearer ${key}`, 'x-mlops-caller': 'admin'})
      assert.equal(ok.status, 200, ok.body)
      // The model servers behind it run without auth; the document the gateway gives says what the gateway asks for.
      const doc = await pool.request({method: 'GET', path: '/openapi.json'})
      assert.equal(doc.statusCode, 200)
      const {components, paths} = (await doc.body.json()) as {
        components: {securitySchemes?: object}
        paths: Record<string, Record<string, {security?: object[]}>>
      }
      assert.deepEqual(Object.keys(components.securitySchemes ?? {}), ['apiKey'])
      assert.deepEqual(paths['/v1/predict'].post.security, [{apiKey: ['predict']}])
      assert.deepEqual(paths['/v2/health/ready'].get.security, [])
    } finally {
      await pool.close()
    }
    const log = join(p.dir, 'logs', 'requests.jsonl')
    let text = ''
    for (let i = 0; i < 50 && !text.includes('"caller"'); i++) {
      await sleep(100)
      text = await readFile(log, 'utf8').catch(() => '')
    }
    const entries = text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as {caller?: string})
    assert.deepEqual(
      entries.map((e) => e.caller),
      ['shop'],
    )
    assert.ok(!text.includes(key))
  })

  it("its model servers answer the gateway only: a direct request without the gateway's token, or with a wrong one, is 401", async () => {
    p = await project()
    await deploy({dir: p.dir, ref: '1.0.0', model: XGB, stage: 'full'})
    const info = JSON.parse(await readFile(deployPaths(p.dir).gateway, 'utf8')) as GatewayInfo
    const modelServer = (await status({dir: p.dir})).gateway.servers?.[0]?.url
    assert.ok(modelServer, 'the gateway names its model server')
    const direct = new Pool(modelServer)
    const gateway = new Pool(p.url)
    try {
      const refused = await predict(direct, {'x-mlops-caller': 'admin'})
      assert.equal(refused.status, 401, refused.body)
      assert.match(refused.body, /answers its deploy gateway only/)
      assert.equal((await predict(direct, {'x-mlops-gateway-token': 'guess'})).status, 401)
      assert.equal((await predict(direct, {'x-mlops-gateway-token': info.upstreamToken})).status, 200)
      // Through the gateway, whatever token the client adds is its own and dropped: the gateway sends its own.
      assert.equal((await predict(gateway, {'x-mlops-gateway-token': 'guess'})).status, 200)
    } finally {
      await direct.close()
      await gateway.close()
    }
    // The token is in the owner-only gateway file, never on a command line another user's ps would show.
    const {pid} = info
    const lines = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim().split(/\s+/)
    for (const child of lines.filter(Boolean))
      assert.ok(!(await readFile(`/proc/${child}/cmdline`, 'utf8')).includes(info.upstreamToken))
  })
})
