// The release gate between `mlops test` and `mlops deploy`, on the real CLI: a passing report for this very digest, or no deploy.
import assert from 'node:assert/strict'
import {readFileSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:net'
import {join} from 'node:path'

import {exampleProject, mlops} from '../support/cli.js'

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as {port: number}
  await new Promise((resolve) => server.close(resolve))
  return port
}

describe('deploy requires a passing mlops test report for the digest (e2e)', function () {
  this.timeout(120_000)
  let example: Awaited<ReturnType<typeof exampleProject>>
  let report: string
  before(async () => {
    example = await exampleProject()
    assert.equal((await mlops(['package', '--dir', example.project])).exitCode, 0)
    const tested = await mlops(['test', '--only', 'regression', '--json', '--dir', example.project])
    assert.equal(tested.exitCode, 0, tested.stderr)
    report = join(example.tmp, 'report.json')
    writeFileSync(report, tested.stdout)
  })
  after(async () => {
    await mlops(['down', '--yes', '--dir', example.project])
    await example.remove()
  })

  it('refuses a report made for another artifact', async () => {
    const forged = join(example.tmp, 'forged.json')
    const json = JSON.parse(readFileSync(report, 'utf8')) as {artifact: {digest: string}}
    json.artifact.digest = `sha256:${'0'.repeat(64)}`
    writeFileSync(forged, JSON.stringify(json))
    const result = await mlops([
      'deploy',
      '1.0.0',
      '--full',
      '--port',
      String(await freePort()),
      '--test-report',
      forged,
      '--dir',
      example.project,
    ])
    assert.equal(result.exitCode, 1, result.stderr)
    assert.match(result.stderr, /is for sha256:0{64}, not 1\.0\.0/)
  })

  it('deploys with the passing report and records its digest in the ledger', async () => {
    const result = await mlops([
      'deploy',
      '1.0.0',
      '--full',
      '--port',
      String(await freePort()),
      '--test-report',
      report,
      '--json',
      '--dir',
      example.project,
    ])
    assert.equal(result.exitCode, 0, result.stderr + result.stdout)
    const history = await mlops(['history', '--json', '--dir', example.project])
    assert.match(history.stdout, /"testReport": "sha256:[0-9a-f]{64}"/)
  })
})
