// Batch prediction bench: the bundled example scored by `mlops predict` from Parquet and from CSV (1e6 rows by default),
// printing rows per second and peak RSS of each run, the Parquet/CSV ratios, and the peak RSS at a tenth of the rows
// (memory must not grow with the file). Run: npx tsx bench/predict/run.ts   (BENCH_ROWS=100000 for a quick look)
import {cp, mkdtemp, rm} from 'node:fs/promises'
import {createWriteStream, statSync, writeFileSync} from 'node:fs'
import {once} from 'node:events'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import {ByteWriter, ParquetWriter, schemaFromColumnData} from 'hyparquet-writer'

import {packageRoot} from '../../src/paths.js'
import {BIN} from '../../test/support/cli.js'

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000)
const GROUP = 65_536
const REGIONS = ['north', 'south', 'east', 'west']
const JOBS = ['employed', 'self_employed', 'unemployed', 'student']

/** A small xorshift: the same rows every run. */
function random(seed: number): () => number {
  let x = seed
  return () => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) / 0x1_0000_0000
  }
}

interface Columns {
  id: bigint[]
  age: number[]
  income: (number | null)[]
  debt_ratio: number[]
  credit_history_months: number[]
  region: string[]
  employment: string[]
  has_prior_default: boolean[]
}

function rows(start: number, count: number, next: () => number): Columns {
  const c: Columns = {
    id: [],
    age: [],
    income: [],
    debt_ratio: [],
    credit_history_months: [],
    region: [],
    employment: [],
    has_prior_default: [],
  }
  for (let i = 0; i < count; i++) {
    c.id.push(BigInt(start + i))
    c.age.push(18 + Math.floor(next() * 60))
    c.income.push(next() < 0.05 ? null : Math.round(10_000 + next() * 120_000))
    c.debt_ratio.push(Math.round(next() * 1000) / 1000)
    c.credit_history_months.push(Math.floor(next() * 400))
    c.region.push(REGIONS[Math.floor(next() * 4)])
    c.employment.push(JOBS[Math.floor(next() * 4)])
    c.has_prior_default.push(next() < 0.1)
  }
  return c
}

async function writeInputs(dir: string, total: number): Promise<{csv: string; parquet: string}> {
  const csv = join(dir, `rows-${total}.csv`)
  const parquet = join(dir, `rows-${total}.parquet`)
  const text = createWriteStream(csv)
  text.write('id,age,income,debt_ratio,credit_history_months,region,employment,has_prior_default\n')
  const bytes = new ByteWriter()
  let writer: ParquetWriter | undefined
  const next = random(42)
  for (let start = 0; start < total; start += GROUP) {
    const c = rows(start, Math.min(GROUP, total - start), next)
    const types = {id: 'INT64', credit_history_months: 'INT32', age: 'DOUBLE', income: 'DOUBLE', debt_ratio: 'DOUBLE'}
    const columnData = Object.entries(c).map(([name, data]) => ({
      name,
      data: data as unknown[],
      type: (types as Record<string, 'INT64'>)[name] ?? (name === 'has_prior_default' ? 'BOOLEAN' : 'STRING'),
    }))
    writer ??= new ParquetWriter({writer: bytes, schema: schemaFromColumnData({columnData})})
    await writer.write({columnData, rowGroupSize: GROUP})
    const lines = c.id.map(
      (id, i) =>
        `${id},${c.age[i]},${c.income[i] ?? ''},${c.debt_ratio[i]},${c.credit_history_months[i]},${c.region[i]},${c.employment[i]},${c.has_prior_default[i]}\n`,
    )
    if (!text.write(lines.join(''))) await once(text, 'drain')
  }
  await writer!.finish()
  writeFileSync(parquet, bytes.getBytes())
  text.end()
  await once(text, 'finish')
  return {csv, parquet}
}

/** One `mlops predict` run under /usr/bin/time: wall seconds and peak RSS (MiB) of the CLI process. */
async function predict(project: string, input: string, output: string): Promise<{seconds: number; rssMiB: number}> {
  const args = ['-f', '%e %M', 'node', BIN, 'predict', '--input', input, '--output', output, '--keep', 'id']
  const result = await execa('/usr/bin/time', [...args, '--json', '--dir', project], {reject: false, env: {CI: '1'}})
  if (result.exitCode !== 0) throw new Error(`predict failed: ${String(result.stderr).slice(-2000)}`)
  const [seconds, kib] = String(result.stderr).trim().split('\n').at(-1)!.split(' ').map(Number)
  return {seconds, rssMiB: kib / 1024}
}

const tmp = await mkdtemp(join(tmpdir(), 'mlops-bench-predict-'))
try {
  const project = join(tmp, 'credit-risk')
  await cp(join(packageRoot, 'examples', 'credit-risk'), project, {recursive: true})
  await execa('node', [BIN, 'package', '--dir', project], {env: {CI: '1'}})
  const results: Record<string, {seconds: number; rssMiB: number; rows: number}> = {}
  for (const total of [Math.round(ROWS / 10), ROWS]) {
    const inputs = await writeInputs(tmp, total)
    const mb = (path: string) => (statSync(path).size / 2 ** 20).toFixed(1)
    console.log(`${total} rows: CSV ${mb(inputs.csv)} MiB, Parquet ${mb(inputs.parquet)} MiB`)
    for (const [name, input, output] of [
      ['parquet', inputs.parquet, join(tmp, 'out.parquet')],
      ['csv', inputs.csv, join(tmp, 'out.csv')],
    ]) {
      const run = await predict(project, input, output)
      results[`${name}@${total}`] = {...run, rows: total}
      console.log(
        `  ${name.padEnd(8)} → ${name}: ${Math.round(total / run.seconds)} rows/s, ${run.seconds.toFixed(1)} s, peak RSS ${run.rssMiB.toFixed(0)} MiB`,
      )
    }
  }
  const big = (name: string) => results[`${name}@${ROWS}`]
  const small = (name: string) => results[`${name}@${Math.round(ROWS / 10)}`]
  console.log(`Parquet/CSV at ${ROWS} rows: throughput ${(big('csv').seconds / big('parquet').seconds).toFixed(2)}x,`)
  console.log(`  peak RSS ${(big('parquet').rssMiB / big('csv').rssMiB).toFixed(2)}x`)
  for (const name of ['parquet', 'csv'])
    console.log(
      `${name} peak RSS at ${ROWS} rows over ${ROWS / 10}: ${(big(name).rssMiB / small(name).rssMiB).toFixed(2)}x`,
    )
} finally {
  await rm(tmp, {recursive: true, force: true})
}
