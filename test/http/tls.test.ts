// HTTPS on the model server with certificates made by openssl: curl and undici as clients, mutual TLS, renewal, a wrong key.
import assert from 'node:assert/strict'
import {readFileSync, renameSync} from 'node:fs'
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {connect} from 'node:tls'

import {execa} from 'execa'
import {Agent, fetch as undiciFetch} from 'undici'

import {type TlsSettings} from '../../src/http/tls.js'
import {MODELS_DIR, mlops, tempDir} from '../support/cli.js'
import {deploy, status} from '../../src/rollout/deploy.js'
import {XGB, project} from '../rollout/helpers.js'
import {start} from '../serve/helpers.js'
import {certificates} from '../support/certificates.js'

const BODY = JSON.stringify({instances: [{X: [5.1, 3.5, 1.4, 0.2]}]})

function serialOf(port: number, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({host: '127.0.0.1', port, ca}, () => {
      resolve(socket.getPeerCertificate().serialNumber)
      socket.end()
    })
    socket.on('error', reject)
  })
}

describe('TLS on the model server', function () {
  this.timeout(120_000)
  let dir: {path: string; remove: () => Promise<void>}

  before(async function () {
    const missing = []
    for (const tool of ['openssl', 'curl'])
      if ((await execa('sh', ['-c', `command -v ${tool}`], {reject: false})).exitCode !== 0) missing.push(tool)
    if (missing.length > 0) {
      if (process.env.CI) throw new Error(`${missing.join(' and ')} missing`)
      console.log(`    skipped: ${missing.join(' and ')} not installed`)
      this.skip()
    }
    dir = await tempDir()
    await certificates(dir.path)
  })
  after(() => dir?.remove())

  const file = (name: string) => join(dir.path, name)

  it('serves HTTPS to curl and undici trusting the CA, and picks up a renewed certificate without a restart', async () => {
    const tls: TlsSettings = {cert: file('server.pem'), key: file('server.key')}
    const {server, url} = await start('xgboost_regressor', {tls})
    try {
      assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/)
      const curl = await execa(
        'curl',
        ['-sS', '--cacert', file('ca.pem'), '-H', 'content-type: application/json', '-d', BODY, `${url}/v1/predict`],
        {reject: false},
      )
      assert.equal(curl.exitCode, 0, curl.stderr)
      assert.match(curl.stdout, /"predictions":\[/)
      const untrusted = await execa('curl', ['-sS', `${url}/v2/health/ready`], {reject: false})
      assert.notEqual(untrusted.exitCode, 0, 'curl trusted a certificate from an unknown CA')
      const dispatcher = new Agent({connect: {ca: readFileSync(file('ca.pem'))}})
      const answer = await undiciFetch(`${url}/v1/predict`, {
        method: 'POST',
        body: BODY,
        headers: {'content-type': 'application/json'},
        dispatcher,
      })
      assert.equal(answer.status, 200)
      await dispatcher.close()

      const port = Number(new URL(url).port)
      const ca = readFileSync(file('ca.pem'))
      const before = await serialOf(port, ca)
      renameSync(file('renewed.key'), file('server.key.new'))
      renameSync(file('renewed.pem'), file('server.pem.new'))
      renameSync(file('server.key.new'), file('server.key'))
      renameSync(file('server.pem.new'), file('server.pem'))
      let after = before
      for (let i = 0; i < 40 && after === before; i++) {
        await sleep(250)
        after = await serialOf(port, ca)
      }
      assert.notEqual(after, before, 'the renewed certificate was not served')
    } finally {
      await server.close()
    }
  })

  it('with client_ca (mutual TLS) refuses clients without a certificate the CA signed, and serves those with one', async () => {
    const tls: TlsSettings = {cert: file('server.pem'), key: file('server.key'), clientCa: file('ca.pem')}
    const {server, url} = await start('xgboost_regressor', {tls})
    try {
      const health = `${url}/v2/health/ready`
      const refused = await execa('curl', ['-sS', '--cacert', file('ca.pem'), health], {reject: false})
      assert.notEqual(refused.exitCode, 0, 'served a client without a certificate')
      const admitted = await execa(
        'curl',
        ['-sS', '--cacert', file('ca.pem'), '--cert', file('client.pem'), '--key', file('client.key'), health],
        {reject: false},
      )
      assert.equal(admitted.exitCode, 0, admitted.stderr)
      assert.match(admitted.stdout, /"ready":true/)
      const anonymous = new Agent({connect: {ca: readFileSync(file('ca.pem'))}})
      await assert.rejects(undiciFetch(health, {dispatcher: anonymous}))
      await anonymous.close()
      const holder = new Agent({
        connect: {
          ca: readFileSync(file('ca.pem')),
          cert: readFileSync(file('client.pem')),
          key: readFileSync(file('client.key')),
        },
      })
      assert.equal((await undiciFetch(health, {dispatcher: holder})).status, 200)
      await holder.close()
    } finally {
      await server.close()
    }
  })

  it('mlops serve with a key that does not match its certificate exits 2 saying so', async () => {
    const result = await mlops([
      'serve',
      '--model',
      join(MODELS_DIR, 'xgboost_regressor.onnx'),
      '--port',
      '0',
      '--tls-cert',
      file('ca.pem'),
      '--tls-key',
      file('other.key'),
      '--dir',
      dir.path,
    ])
    assert.equal(result.exitCode, 2, result.stderr)
    assert.match(result.stderr, /the key .*other\.key does not match the certificate .*ca\.pem/)
  })

  for (const upstream of [false, true])
    it(`the gateway's client port speaks HTTPS from serving.tls, to its model servers ${upstream ? 'too (upstream_ca)' : 'plain HTTP'}: curl with the CA gets a prediction, plain HTTP does not`, async () => {
      const p = await project()
      try {
        const config = JSON.parse(await readFile(join(p.dir, 'mlops.yaml'), 'utf8')) as Record<string, unknown>
        const tls = {
          cert: file('server.pem'),
          key: file('server.key'),
          ...(upstream ? {upstream_ca: file('ca.pem')} : {}),
        }
        config.serving = {tls}
        await writeFile(join(p.dir, 'mlops.yaml'), JSON.stringify(config))
        const deployed = await deploy({dir: p.dir, ref: '1.0.0', model: XGB, stage: 'full'})
        assert.equal(deployed.status.url, `https://127.0.0.1:${p.port}`)
        const servers = (await status({dir: p.dir})).gateway.servers ?? []
        assert.match(servers[0]?.url ?? '', upstream ? /^https:/ : /^http:/)
        const url = `https://127.0.0.1:${p.port}/v1/predict`
        const curl = await execa(
          'curl',
          ['-sS', '--cacert', file('ca.pem'), '-H', 'content-type: application/json', '-d', BODY, url],
          {reject: false},
        )
        assert.equal(curl.exitCode, 0, curl.stderr)
        assert.match(curl.stdout, /"predictions":\[/)
        const plain = await execa('curl', ['-sS', '-d', BODY, `http://127.0.0.1:${p.port}/v1/predict`], {reject: false})
        assert.ok(plain.exitCode !== 0 || !plain.stdout.includes('predictions'), 'the gateway answered plain HTTP')
      } finally {
        await p.cleanup()
      }
    })
})
