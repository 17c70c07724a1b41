// README command 1: the demo runs the whole flow on the bundled example and leaves only the deployed gateway running.
import assert from 'node:assert/strict'
import {readdirSync, readlinkSync} from 'node:fs'
import {rm} from 'node:fs/promises'
import {createServer} from 'node:net'
import {join} from 'node:path'

import {execa} from 'execa'

import {packageRoot} from '../../src/paths.js'
import {mlops, tempDir} from '../support/cli.js'

/** Pids of the processes whose working folder is in `dir`: what the demo left running there. */
function processesIn(dir: string): number[] {
  const pids: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const cwd = readlinkSync(join('/proc', name, 'cwd'))
      if (cwd === dir || cwd.startsWith(`${dir}/`)) pids.push(Number(name))
    } catch {
      // Gone meanwhile, or not ours to look at.
    }
  }
  return pids
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const {port} = server.address() as {port: number}
      server.close(() => resolve(port))
    })
  })
}

describe('the demo (README command 1)', function () {
  this.timeout(300_000)
  let work: string

  before(async () => {
    work = (await tempDir('mlops-demo-')).path
  })
  after(async () => {
    await mlops(['down', '--yes', '--dir', join(work, 'credit-risk')])
    // Whatever a failed run left behind.
    for (const pid of processesIn(work)) process.kill(pid, 'SIGKILL')
    await rm(work, {recursive: true, force: true})
  })

  it('packages, serves one prediction, tests, deploys 1.1.0 to full, and leaves only the gateway and its server running', async () => {
    const port = await freePort()
    const demo = await execa('bash', [join(packageRoot, 'scripts', 'demo.sh')], {
      env: {MLOPS_DEMO_DIR: work, MLOPS_DEMO_PORT: String(port), CI: 'true'},
      reject: false,
      timeout: 280_000,
    })
    assert.equal(demo.exitCode, 0, `${demo.stdout}\n${demo.stderr}`)
    assert.match(demo.stdout, /\{"predictions":\[\{.*\}\],"model":"credit-risk","version":"1\.0\.0"\}/)
    assert.match(demo.stdout, /promoted 1\.1\.0/)
    assert.match(demo.stdout, new RegExp(`serves credit-risk 1\\.1\\.0 at http://127\\.0\\.0\\.1:${port}/v1/predict`))

    const answer = await fetch(`http://127.0.0.1:${port}/v1/predict`, {
      method: 'POST',
      headers: {'content-type': 'application/json'},
      body: JSON.stringify({
        instances: [
          {
            age: 41,
            income: 52000,
            debt_ratio: 0.31,
            credit_history_months: 84,
            region: 'north',
            employment: 'employed',
            has_prior_default: false,
          },
        ],
      }),
    })
    assert.equal(answer.status, 200)
    assert.equal(answer.headers.get('x-model-version'), '1.1.0')

    const project = join(work, 'credit-risk')
    // The gateway and the one model server of 1.1.0: the demo's own `mlops serve` was stopped, not orphaned.
    assert.equal(processesIn(project).length, 2, `processes left in ${project}: ${processesIn(project).join(', ')}`)
    const down = await mlops(['down', '--yes', '--dir', project])
    assert.equal(down.exitCode, 0, down.stderr)
    assert.deepEqual(processesIn(project), [])
  })
})
