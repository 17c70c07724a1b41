// mlops predict on Parquet and CSV files of the bundled example: Parquet in (written here by hyparquet-writer, and by
// parquet-wasm with zstd), Parquet and CSV out with --keep id, each checked against a reference reader.
import assert from 'node:assert/strict'
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import * as arrow from 'apache-arrow'
import {parse} from 'csv-parse/sync'
import {parquetWriteBuffer} from 'hyparquet-writer'
import * as parquetWasm from 'parquet-wasm'

import {exampleProject, mlops} from '../support/cli.js'
import {assertMatchesSchema} from '../support/schema.js'

type Applicant = Record<string, string>

/** A Parquet file read by parquet-wasm (Rust's parquet crate) into Arrow: the reference for what mlops writes. */
function referenceRows(path: string): Record<string, unknown>[] {
  const table = arrow.tableFromIPC(parquetWasm.readParquet(readFileSync(path)).intoIPCStream())
  return table.toArray().map((row: {toJSON(): Record<string, unknown>}) => row.toJSON())
}

describe('mlops predict with Parquet and CSV (e2e)', function () {
  this.timeout(180_000)
  let example: Awaited<ReturnType<typeof exampleProject>>
  let applicants: Applicant[]
  /** Predictions of the CSV input as JSON lines: what every other format must agree with. */
  let expected: {probability: number; label: string}[]
  before(async () => {
    example = await exampleProject()
    const packaged = await mlops(['package', '--dir', example.project])
    assert.equal(packaged.exitCode, 0, packaged.stderr)
    const csvPath = join(example.project, 'data', 'applicants.csv')
    applicants = parse(readFileSync(csvPath, 'utf8'), {columns: true})
    const out = join(example.tmp, 'expected.jsonl')
    const run = await mlops(['predict', '--input', csvPath, '--output', out, '--dir', example.project])
    assert.equal(run.exitCode, 0, run.stderr)
    expected = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as {prediction: {probability: number; label: string}}).prediction)
    assert.equal(expected.length, applicants.length)
  })
  after(async () => example?.remove())

  function writeInput(path: string): void {
    const column = (name: string) => applicants.map((a) => a[name])
    const numbers = (name: string) => column(name).map((v) => (v === '' ? null : Number(v)))
    const bytes = parquetWriteBuffer({
      columnData: [
        {name: 'id', data: applicants.map((_, i) => BigInt(1000 + i)), type: 'INT64'},
        {name: 'age', data: numbers('age'), type: 'DOUBLE'},
        {name: 'income', data: numbers('income'), type: 'DOUBLE'},
        {name: 'debt_ratio', data: numbers('debt_ratio'), type: 'DOUBLE'},
        {name: 'credit_history_months', data: numbers('credit_history_months'), type: 'INT32'},
        {name: 'region', data: column('region'), type: 'STRING'},
        {name: 'employment', data: column('employment'), type: 'STRING'},
        {name: 'has_prior_default', data: column('has_prior_default').map((v) => v === 'true'), type: 'BOOLEAN'},
      ],
      rowGroupSize: 1000,
    })
    writeFileSync(path, new Uint8Array(bytes))
  }

  it('scores a Parquet file into Parquet, keeping the id column, as the CSV path scores it', async () => {
    const input = join(example.tmp, 'applicants.parquet')
    writeInput(input)
    const output = join(example.tmp, 'scores.parquet')
    const args = ['predict', '--input', input, '--output', output, '--keep', 'id', '--json', '--dir', example.project]
    const run = await mlops(args)
    assert.equal(run.exitCode, 0, run.stderr)
    assertMatchesSchema(run.json, 'predict')
    assert.equal((run.json as {ok: number}).ok, applicants.length)
    const rows = referenceRows(output)
    assert.equal(rows.length, applicants.length)
    assert.deepEqual(Object.keys(rows[0]), ['line', 'id', 'probability', 'label', 'error'])
    rows.forEach((row, i) => {
      assert.equal(row.line, BigInt(i + 1))
      assert.equal(row.id, 1000 + i)
      assert.equal(row.label, expected[i].label)
      assert.ok(Math.abs((row.probability as number) - expected[i].probability) < 1e-9, `row ${i + 1}`)
      assert.equal(row.error, null)
    })
  })

  it('reads Parquet written by another library with zstd, and writes CSV', async () => {
    const table = arrow.tableFromArrays({
      id: applicants.map((_, i) => `a-${i}`),
      age: Float64Array.from(applicants.map((a) => Number(a.age))),
      income: applicants.map((a) => (a.income === '' ? null : Number(a.income))),
      debt_ratio: Float64Array.from(applicants.map((a) => Number(a.debt_ratio))),
      credit_history_months: Int32Array.from(applicants.map((a) => Number(a.credit_history_months))),
      region: applicants.map((a) => a.region),
      employment: applicants.map((a) => a.employment),
      has_prior_default: applicants.map((a) => a.has_prior_default === 'true'),
    })
    const properties = new parquetWasm.WriterPropertiesBuilder()
      .setCompression(parquetWasm.Compression.ZSTD)
      .setMaxRowGroupSize(700)
      .build()
    const input = join(example.tmp, 'zstd.parquet')
    writeFileSync(
      input,
      parquetWasm.writeParquet(parquetWasm.Table.fromIPCStream(arrow.tableToIPC(table, 'stream')), properties),
    )
    const output = join(example.tmp, 'scores.csv')
    const run = await mlops(['predict', '--input', input, '--output', output, '--keep', 'id', '--dir', example.project])
    assert.equal(run.exitCode, 0, run.stderr)
    const rows = parse<Record<string, string>>(readFileSync(output, 'utf8'), {columns: true})
    assert.equal(rows.length, applicants.length)
    assert.deepEqual(Object.keys(rows[0]), ['line', 'id', 'probability', 'label', 'error'])
    rows.forEach((row, i) => {
      assert.equal(row.id, `a-${i}`)
      assert.equal(row.label, expected[i].label)
      assert.ok(Math.abs(Number(row.probability) - expected[i].probability) < 1e-9)
    })
  })

  it('refuses a damaged Parquet file, and a --keep column the input lacks, with exit 2', async () => {
    const input = join(example.tmp, 'applicants.parquet')
    writeInput(input)
    const torn = join(example.tmp, 'torn.parquet')
    writeFileSync(torn, readFileSync(input).subarray(0, 5000))
    const out = join(example.tmp, 'out.jsonl')
    const damaged = await mlops(['predict', '--input', torn, '--output', out, '--json', '--dir', example.project])
    assert.equal(damaged.exitCode, 2, damaged.stdout)
    assert.equal((damaged.json as {error: {code: string}}).error.code, 'RECORDS_INVALID')
    const keep = [
      'predict',
      '--input',
      input,
      '--output',
      out,
      '--keep',
      'customer',
      '--json',
      '--dir',
      example.project,
    ]
    const missing = await mlops(keep)
    assert.equal(missing.exitCode, 2)
    assert.equal((missing.json as {error: {code: string}}).error.code, 'KEEP_NOT_IN_INPUT')
    assert.match(missing.stdout, /id, age, income/)
  })
})
