// The gateway's client port under serving.auth: it checks callers and names them to its model servers, which log them.
import assert from 'node:assert/strict'
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {Pool} from 'undici'

import {createKey} from '../../src/auth/keys.js'
import {deploy} from '../../src/rollout/deploy.js'
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
})
