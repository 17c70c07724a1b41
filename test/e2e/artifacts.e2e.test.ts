// The bundled example through package and every `artifacts` subcommand, checked against the published --json schemas.
import assert from 'node:assert/strict'
import {existsSync} from 'node:fs'
import {join} from 'node:path'

import {exampleProject, mlops} from '../support/cli.js'
import {assertMatchesSchema} from '../support/schema.js'

describe('artifacts commands on the bundled example (e2e)', function () {
  this.timeout(120_000)
  let example: Awaited<ReturnType<typeof exampleProject>>
  let project: string
  let digest: string
  before(async () => {
    example = await exampleProject()
    project = example.project
    const packaged = await mlops(['package', '--json', '--dir', project])
    assert.equal(packaged.exitCode, 0, packaged.stderr)
    digest = (packaged.json as {digest: string}).digest
  })
  after(async () => example.remove())

  it('lists the packaged version', async () => {
    const result = await mlops(['artifacts', 'list', '--json', '--dir', project])
    assert.equal(result.exitCode, 0)
    assertMatchesSchema(result.json, 'artifacts-list')
    assert.deepEqual(
      (result.json as {artifacts: {version: string; digest: string}[]}).artifacts.map((a) => [a.version, a.digest]),
      [['1.0.0', digest]],
    )
  })

  it('shows the manifest: signature, frozen pipeline, golden cases and the reference profile', async () => {
    const result = await mlops(['artifacts', 'show', digest.slice(0, 15), '--json', '--dir', project])
    assert.equal(result.exitCode, 0, result.stderr)
    assertMatchesSchema(result.json, 'artifacts-show')
    const {manifest} = result.json as {
      manifest: {
        model: {signature: {inputs: {name: string}[]}}
        golden: {count: number}
        profile: {rows: number; features: Record<string, {kind: string}>}
      }
    }
    assert.equal(manifest.model.signature.inputs[0].name, 'features')
    assert.equal(manifest.golden.count, 20)
    assert.equal(manifest.profile.rows, 5000)
    assert.equal(manifest.profile.features.income.kind, 'numeric')
    assert.equal(manifest.profile.features.region.kind, 'categorical')
  })

  it('verifies and exports an archive that opens outside the project', async () => {
    const verify = await mlops(['artifacts', 'verify', '--json', '--dir', project])
    assert.equal(verify.exitCode, 0)
    assertMatchesSchema(verify.json, 'artifacts-verify')
    const out = join(example.tmp, 'exported')
    const exported = await mlops(['artifacts', 'export', '1.0.0', '--output', out + '.tar', '--json', '--dir', project])
    assert.equal(exported.exitCode, 0, exported.stderr)
    assertMatchesSchema(exported.json, 'artifacts-export')
    assert.ok(existsSync(out + '.tar'))
    const outside = await mlops(['artifacts', 'verify', out + '.tar', '--json', '--dir', example.tmp])
    assert.equal(outside.exitCode, 0, outside.stdout)
    assert.equal((outside.json as {digest: string}).digest, digest)
  })

  it('answers an unknown version with exit 2 and the versions there are', async () => {
    const result = await mlops(['artifacts', 'show', '9.9.9', '--dir', project])
    assert.equal(result.exitCode, 2, result.stderr)
    assert.match(result.stderr, /1\.0\.0/)
  })
})
