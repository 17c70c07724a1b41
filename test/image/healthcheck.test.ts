// The image's TLS from mounted files, on this machine: "mlops serve" with MLOPS_TLS_DIR (what the image sets) serves
// HTTPS when the folder holds tls.crt and tls.key and plain HTTP when it holds neither, and the image's healthcheck
// script (dist/image/healthcheck.js, run as the image runs it) follows it. The image itself: build.e2e.test.ts.
import assert from 'node:assert/strict'
import {copyFile, mkdir} from 'node:fs/promises'
import {join} from 'node:path'

import {execa} from 'execa'

import {packageRoot} from '../../src/paths.js'
import {which} from '../../src/system/exec.js'
import {certificates} from '../support/certificates.js'
import {MODELS_DIR, mlops, tempDir} from '../support/cli.js'
import {startServe} from '../support/serve.js'

const HEALTHCHECK = join(packageRoot, 'dist', 'image', 'healthcheck.js')
const MODEL = join(MODELS_DIR, 'xgboost_regressor.onnx')

describe('TLS from a mounted folder, and the image healthcheck', function () {
  this.timeout(120_000)
  let dir: Awaited<ReturnType<typeof tempDir>>
  const path = (...names: string[]) => join(dir.path, ...names)

  /** The healthcheck in an environment holding only `env` of the MLOPS_TLS_* variables. */
  async function healthcheck(port: number, env: Record<string, string> = {}): Promise<number> {
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('MLOPS_')))
    const result = await execa('node', [HEALTHCHECK, String(port)], {
      env: {...inherited, ...env},
      extendEnv: false,
      reject: false,
    })
    return result.exitCode ?? -1
  }

  before(async function () {
    for (const tool of ['openssl', 'curl']) {
      if (await which(tool)) continue
      if (process.env.CI) throw new Error(`${tool} is not installed`)
      console.log(`    skipped: ${tool} is not installed (apt-get install ${tool})`)
      this.skip()
    }
    dir = await tempDir()
    await certificates(dir.path)
    // A Kubernetes TLS Secret's layout; an empty mount; a half-written one.
    await mkdir(path('tls'))
    await copyFile(path('server.pem'), path('tls', 'tls.crt'))
    await copyFile(path('server.key'), path('tls', 'tls.key'))
    await mkdir(path('empty'))
    await mkdir(path('half'))
    await copyFile(path('server.pem'), path('half', 'tls.crt'))
  })
  after(() => dir?.remove())

  /** "mlops serve" with MLOPS_TLS_DIR=folder while `check` runs; then the healthcheck must fail, nothing serving. */
  async function servedFrom(
    folder: string,
    check: (url: string, port: number, env: Record<string, string>) => Promise<void>,
  ) {
    const env = {MLOPS_TLS_DIR: path(folder)}
    const server = await startServe(['--model', MODEL, '--dir', dir.path], env)
    const port = Number(new URL(server.url).port)
    try {
      await check(server.url, port, env)
    } finally {
      await server.stop()
    }
    assert.notEqual(await healthcheck(port, env), 0, 'passed with nothing serving')
  }

  it('serves HTTPS with tls.crt and tls.key of MLOPS_TLS_DIR, and the healthcheck passes over HTTPS', () =>
    servedFrom('tls', async (url, port, env) => {
      assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/)
      const curl = await execa('curl', ['-sS', '--cacert', path('ca.pem'), `${url}/v2/health/ready`], {reject: false})
      assert.equal(curl.exitCode, 0, curl.stderr)
      assert.match(curl.stdout, /"ready":true/)
      assert.equal(await healthcheck(port, env), 0)
      assert.notEqual(await healthcheck(port), 0, 'plain HTTP to an HTTPS port passed')
    }))

  it('serves plain HTTP when the folder holds neither file, and the healthcheck passes over HTTP', () =>
    servedFrom('empty', async (url, port, env) => {
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/)
      assert.equal((await fetch(`${url}/v2/health/ready`)).status, 200)
      assert.equal(await healthcheck(port, env), 0)
    }))

  it('a folder with the certificate but not its key is an error naming the missing file, not plain HTTP', async () => {
    const result = await mlops(['serve', '--model', MODEL, '--port', '0', '--tls-dir', path('half'), '--dir', dir.path])
    assert.equal(result.exitCode, 2, result.stderr)
    assert.match(result.stderr, /holds tls\.crt but not tls\.key/)
  })
})
