// A batch file with columns the model does not read (an id, the label): predict and monitor leave them out with one
// warning naming them, --strict refuses them, and predict's --json summary never mixes with the data on stdout.
import assert from 'node:assert/strict'
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {exampleProject, mlops} from '../support/cli.js'
import {assertMatchesSchema} from '../support/schema.js'

interface PredictJson {
  rows: number
  ok: number
  failed: number
  errors: {line: number; message: string}[]
  ignoredColumns?: string[]
}

interface MonitorJson {
  current: {skipped: Record<string, number>; ignoredColumns?: string[]}
  predictions: {name: string; verdict: string}[]
}

describe('extra columns in predict and monitor (e2e)', function () {
  this.timeout(180_000)
  let example: Awaited<ReturnType<typeof exampleProject>>
  let project: string
  let extra: string

  before(async () => {
    example = await exampleProject()
    project = example.project
    const packaged = await mlops(['package', '--json', '--dir', project])
    assert.equal(packaged.exitCode, 0, packaged.stderr)
    // An id in front and the outcome at the end, as a file exported from a database has them.
    const lines = readFileSync(join(project, 'data', 'applicants.csv'), 'utf8')
      .trim()
      .split('\n')
      .slice(0, 301)
    extra = join(project, 'extra.csv')
    writeFileSync(
      extra,
      lines.map((line, i) => (i === 0 ? `id,${line},default` : `${i},${line},${i % 3 === 0}`)).join('\n') + '\n',
    )
  })
  after(() => example.remove())

  it('predict leaves them out with one warning naming them; --strict refuses them', async () => {
    const out = join(project, 'out.jsonl')
    const ran = await mlops(['predict', '--input', extra, '--output', out, '--dir', project])
    assert.equal(ran.exitCode, 0, ran.stderr)
    assert.match(ran.stdout, /^300\/300 rows predicted/)
    const warnings = ran.stderr.match(/Warning:/g) ?? []
    assert.equal(warnings.length, 1, ran.stderr)
    assert.match(ran.stderr.replace(/\s*›\s*/g, ' '), /ignored 2 columns the model does not read: id, default/)

    const json = await mlops(['predict', '--input', extra, '--output', out, '--json', '--dir', project])
    assertMatchesSchema(json.json, 'predict')
    assert.deepEqual((json.json as PredictJson).ignoredColumns, ['id', 'default'])

    const strict = await mlops(['predict', '--input', extra, '--output', out, '--strict', '--json', '--dir', project])
    assert.equal(strict.exitCode, 1)
    const refused = strict.json as PredictJson
    assert.equal(refused.failed, 300)
    assert.match(refused.errors[0].message, /^id: unknown field/)
    assert.equal(refused.ignoredColumns, undefined)
  })

  it('predict --input - --output - --json: stdout holds the predictions only, the summary goes to stderr', async () => {
    const ran = await mlops(['predict', '--input', '-', '--output', '-', '--json', '--dir', project], {
      input:
        '{"age": 41, "income": 52000, "debt_ratio": 0.3, "credit_history_months": 120, "region": "north", "employment": "employed", "has_prior_default": false}\n{"age": "old"}\n',
    })
    assert.equal(ran.exitCode, 1, ran.stderr)
    const lines = ran.stdout.trim().split('\n')
    assert.equal(lines.length, 2, ran.stdout)
    const [good, bad] = lines.map((line) => JSON.parse(line) as {line: number; prediction?: unknown; error?: string})
    assert.equal(good.line, 1)
    assert.ok(good.prediction)
    assert.equal(bad.line, 2)
    assert.ok(bad.error)
    const summary = JSON.parse(ran.stderr) as PredictJson
    assertMatchesSchema(summary, 'predict')
    assert.deepEqual([summary.rows, summary.ok, summary.failed], [2, 1, 1])
  })

  it('monitor scores the records without them, and says in its table why prediction drift was not checked', async () => {
    const ran = await mlops(['monitor', '--input', extra, '--json', '--dir', project])
    assertMatchesSchema(ran.json, 'monitor')
    const result = ran.json as MonitorJson
    assert.deepEqual(result.current.ignoredColumns, ['id', 'default'])
    assert.deepEqual(result.current.skipped, {})
    assert.ok(result.predictions.length > 0)
    for (const column of result.predictions) assert.notEqual(column.verdict, 'not_enough_data', column.name)

    const strict = await mlops(['monitor', '--input', extra, '--strict', '--dir', project])
    assert.equal(strict.exitCode, 0, strict.stderr)
    assert.match(strict.stdout, /^ {2}300 records left out: refused by the pipeline \(inputs only\)$/m)
    assert.match(strict.stdout, /^prediction:label .* no predictions: the pipeline refused every record$/m)
    assert.doesNotMatch(strict.stderr, /Warning/)
  })
})
