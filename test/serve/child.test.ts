// startServeChild, the one way mlops starts "mlops serve" as a child: a real server's ready line, and the errors a user
// sees when the child dies first, prints something else, never gets ready or floods its stderr.
import assert from 'node:assert/strict'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {startServer} from '../../src/checks/server.js'
import {isMlopsError} from '../../src/errors.js'
import {type ServeChildOptions, startServeChild} from '../../src/serve/child.js'
import {BIN, MODELS_DIR, tempDir} from '../support/cli.js'

const options = (script: string, extra: Partial<ServeChildOptions> = {}): ServeChildOptions => ({
  command: process.execPath,
  args: ['-e', script],
  timeoutMs: 60_000,
  name: 'the test server',
  hint: 'Run it alone.',
  ...extra,
})

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function refusal(options: ServeChildOptions): Promise<{code: string; message: string; hint?: string}> {
  const error: unknown = await startServeChild(options).then(
    () => assert.fail('the child was taken as ready'),
    (error: unknown) => error,
  )
  assert.ok(isMlopsError(error), String(error))
  return error
}

describe('startServeChild', function () {
  this.timeout(60_000)

  it('starts "mlops serve", reads its ready line, and stops it with SIGTERM', async () => {
    const dir = await tempDir()
    try {
      const lines: string[] = []
      const server = await startServeChild({
        command: process.execPath,
        args: [BIN, 'serve', '--model', join(MODELS_DIR, 'xgboost_regressor.onnx'), '--port', '0', '--json'],
        env: {...process.env, CI: 'true'},
        cwd: dir.path,
        timeoutMs: 60_000,
        name: 'the xgb server',
        hint: 'Run it alone.',
        onLine: (line) => lines.push(line),
      })
      assert.match(server.ready.url, /^http:\/\/127\.0\.0\.1:\d+$/)
      assert.equal(server.ready.version, '0.0.0')
      assert.equal((await fetch(`${server.ready.url}/v2/health/ready`)).status, 200)
      assert.equal(server.exit(), undefined)
      await server.stop(10_000)
      assert.deepEqual(server.exit(), {code: 0, signal: null}, 'it drains and exits 0 on SIGTERM')
    } finally {
      await dir.remove()
    }
  })

  it("the server of mlops test that cannot start fails with mlops serve's own error and hint (its --json error)", async () => {
    const dir = await tempDir()
    try {
      const error: unknown = await startServer({dir: dir.path, ref: 'absent@1.0.0'}).then(
        () => assert.fail('an absent artifact was served'),
        (error: unknown) => error,
      )
      assert.ok(isMlopsError(error), String(error))
      assert.equal(error.code, 'SERVER_START_FAILED')
      assert.match(
        error.message,
        /^"mlops serve absent@1\.0\.0" exited \(code 2\) before it was ready:\nno artifacts of absent are stored in /,
      )
      assert.equal(error.hint, 'Run "mlops package" first.')
    } finally {
      await dir.remove()
    }
  })

  it('a child that exits before its ready line fails with its exit code and its last stderr lines', async () => {
    const script = 'for (let i = 1; i <= 40; i++) console.error("line " + i); process.exit(3)'
    const error = await refusal(options(script))
    assert.equal(error.code, 'SERVER_START_FAILED')
    assert.match(error.message, /^the test server exited \(code 3\) before it was ready:\n/)
    assert.match(error.message, /line 11\nline 12\n[\s\S]*line 40$/, 'the last 30 lines')
    assert.doesNotMatch(error.message, /line 10\n/)
    assert.equal(error.hint, 'Run it alone.')
  })

  it('a child that prints something else than its JSON ready line is killed and named with what it printed', async () => {
    const error = await refusal(options('console.log("listening on 8080"); setInterval(() => {}, 1000)'))
    assert.equal(error.code, 'SERVER_START_FAILED')
    assert.match(error.message, /printed "listening on 8080" instead of its JSON ready line/)
  })

  it('a child that never gets ready is killed at the timeout', async () => {
    const error = await refusal(options('console.error("loading"); setInterval(() => {}, 1000)', {timeoutMs: 1000}))
    assert.equal(error.code, 'SERVER_START_TIMEOUT')
    assert.match(error.message, /^the test server was not ready within 1 s:\nloading$/)
  })

  it('a program that is not there fails as not started', async () => {
    const error = await refusal({...options(''), command: '/nonexistent/mlops'})
    assert.equal(error.code, 'SERVER_START_FAILED')
    assert.match(error.message, /could not be started: .*ENOENT/)
  })

  it('a start aborted before the ready line fails, and the child is killed', async () => {
    const controller = new AbortController()
    let pid = 0
    const error = await refusal(
      options('console.error("pid " + process.pid); setInterval(() => {}, 1000)', {
        signal: controller.signal,
        onLine: (line) => {
          pid = Number(line.slice('pid '.length))
          controller.abort()
        },
      }),
    )
    assert.match(error.message, /^the test server was stopped before it was ready/)
    assert.ok(pid > 0)
    let alive = true
    for (let i = 0; i < 100 && alive; i++) {
      alive = isRunning(pid)
      if (alive) await sleep(100)
    }
    assert.ok(!alive, `the child ${pid} still runs`)
  })

  it('keeps memory bounded when the child floods stderr with one endless line', async () => {
    const script = 'process.stderr.write("x".repeat(20 * 1024 * 1024), () => process.exit(1))'
    const error = await refusal(options(script))
    assert.equal(error.code, 'SERVER_START_FAILED')
    assert.ok(error.message.length < 1024 * 1024, `an error of ${error.message.length} characters`)
  })
})
