// The bundled example: the committed files are what the script writes, the ONNX file agrees with the
// TypeScript forward pass through the statistics in mlops.yaml, and the "live" data drifts as the monitor demo needs.
import assert from 'node:assert/strict'
import {mkdtemp, readFile, readdir, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join, relative} from 'node:path'

import {execa} from 'execa'
import {parse as parseYaml} from 'yaml'

import type {GoldenCase} from '../../src/checks/golden.types.js'
import {loadModel, runModel} from '../../src/model/signature.js'
import {makeTensor} from '../../src/model/tensor.js'
import {packageRoot} from '../../src/paths.js'
import type {Applicant} from '../../scripts/lib/applicants.js'
import {accuracy, rocAuc} from '../../scripts/lib/logistic.js'
import {COLUMNS, type FittedPreprocessing, NUMERIC_FEATURES, encodeApplicants} from '../../scripts/lib/preprocess.js'

const EXAMPLE = join(packageRoot, 'examples', 'credit-risk')
const SCRIPT = join(packageRoot, 'scripts', 'train-example.ts')
/** Hand-written, not generated. */
const NOT_GENERATED = new Set(['README.md'])
/** Explicit thread counts: loadModel passes undefined through when they are omitted, which onnxruntime-node 1.30 rejects. */
const SINGLE_THREAD = {intraOpThreads: 1, interOpThreads: 1}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, {recursive: true, withFileTypes: true})
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort()
}

async function trainInto(args: string[]): Promise<string> {
  const out = await mkdtemp(join(tmpdir(), 'mlops-example-'))
  await execa('node', ['--import', 'tsx', SCRIPT, '--out', out, ...args], {cwd: packageRoot})
  return out
}

/** The example's CSVs hold no quotes or commas inside values; an empty income cell is a missing income. */
async function readApplicants(file: string): Promise<{columns: string[]; applicants: Applicant[]; labels: number[]}> {
  const [header, ...lines] = (await readFile(join(EXAMPLE, file), 'utf8')).trimEnd().split('\n')
  const columns = header.split(',')
  const rows = lines.map((line) => Object.fromEntries(line.split(',').map((cell, i) => [columns[i], cell])))
  const applicants = rows.map((r) => ({
    age: Number(r.age),
    income: r.income === '' ? null : Number(r.income),
    debt_ratio: Number(r.debt_ratio),
    credit_history_months: Number(r.credit_history_months),
    region: r.region,
    employment: r.employment,
    has_prior_default: r.has_prior_default === 'true',
  }))
  return {columns, applicants, labels: rows.map((r) => Number(r.default))}
}

/** The statistics as serving reads them from mlops.yaml, not as the script computed them. */
async function preprocessingFromConfig(): Promise<FittedPreprocessing> {
  type Feature = {name: string; impute?: {value: number}; transform?: unknown}
  const config = parseYaml(await readFile(join(EXAMPLE, 'mlops.yaml'), 'utf8')) as {pipeline: {features: Feature[]}}
  const byName = new Map(config.pipeline.features.map((f) => [f.name, f]))
  const standardize = (name: string) => {
    const transforms = [byName.get(name)!.transform].flat() as ({standardize?: {mean: number; std: number}} | string)[]
    const step = transforms.find((t) => typeof t === 'object' && t.standardize) as {
      standardize: {mean: number; std: number}
    }
    return step.standardize
  }
  const scale = Object.fromEntries(NUMERIC_FEATURES.map((f) => [f, standardize(f)])) as FittedPreprocessing['scale']
  return {incomeMedian: byName.get('income')!.impute!.value, scale}
}

async function score(applicants: readonly Applicant[]): Promise<Float32Array> {
  const model = await loadModel(join(EXAMPLE, 'model', 'model.onnx'), SINGLE_THREAD)
  try {
    const x = Float32Array.from(encodeApplicants(applicants, await preprocessingFromConfig()))
    const outputs = await runModel(model, {features: makeTensor('float32', x, [applicants.length, COLUMNS.length])})
    assert.deepEqual(outputs.probability.dims, [applicants.length, 1])
    return outputs.probability.data as Float32Array
  } finally {
    await model.session.release()
  }
}

async function readGolden(): Promise<GoldenCase[]> {
  return (await readFile(join(EXAMPLE, 'golden.jsonl'), 'utf8'))
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as GoldenCase)
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length

describe('bundled credit-risk example', () => {
  it('is exactly what a fresh run of scripts/train-example.ts writes', async () => {
    const out = await trainInto([])
    try {
      const committed = (await listFiles(EXAMPLE)).filter((f) => !NOT_GENERATED.has(f))
      assert.deepEqual(await listFiles(out), committed)
      for (const file of committed)
        assert.ok(
          (await readFile(join(out, file))).equals(await readFile(join(EXAMPLE, file))),
          `${file} differs from a fresh run`,
        )
    } finally {
      await rm(out, {recursive: true, force: true})
    }
  })

  it('trains a different model, with the same set of files, for another --seed', async () => {
    const out = await trainInto(['--seed', '7'])
    try {
      assert.deepEqual(
        await listFiles(out),
        (await listFiles(EXAMPLE)).filter((f) => !NOT_GENERATED.has(f)),
      )
      for (const file of ['model/model.onnx', 'data/reference.csv', 'golden.jsonl'])
        assert.ok(
          !(await readFile(join(out, file))).equals(await readFile(join(EXAMPLE, file))),
          `${file} is the same as seed 42's`,
        )
    } finally {
      await rm(out, {recursive: true, force: true})
    }
  })

  it('has a model onnxruntime-node loads, with a dynamic batch dimension', async () => {
    const model = await loadModel(join(EXAMPLE, 'model', 'model.onnx'), SINGLE_THREAD)
    await model.session.release()
    assert.deepEqual(model.signature.inputs, [{name: 'features', dtype: 'float32', shape: ['N', COLUMNS.length]}])
    assert.deepEqual(model.signature.outputs, [
      {name: 'probability', isTensor: true, dtype: 'float32', shape: ['N', 1]},
    ])
  })

  it('gives every golden probability through onnxruntime and the mlops.yaml statistics, within 1e-5', async () => {
    const golden = await readGolden()
    assert.ok(golden.length >= 20, `only ${golden.length} golden cases`)
    const records = golden.map((c) => {
      assert.equal(c.records?.length, 1, c.name)
      return c.records[0] as unknown as Applicant
    })
    assert.ok(
      records.some((r) => r.income === null),
      'no golden case has a missing income',
    )
    const probabilities = await score(records)
    golden.forEach((c, i) => {
      const expected = c.expected.predictions![0] as {probability: number; label: string}
      assert.ok(
        Math.abs(probabilities[i] - expected.probability) <= 1e-5,
        `${c.name}: onnxruntime gives ${probabilities[i]}, golden ${expected.probability}`,
      )
      assert.ok(
        Math.abs(expected.probability - 0.5) >= 1e-3,
        `${c.name}: ${expected.probability} is too close to the threshold`,
      )
      assert.equal(expected.label, probabilities[i] >= 0.5 ? 'default' : 'repaid', c.name)
    })
  })

  it('ranks its own reference rows well (AUC > 0.75) and beats always answering "repaid"', async () => {
    const {columns, applicants, labels} = await readApplicants('data/reference.csv')
    assert.equal(columns.at(-1), 'default')
    assert.ok(labels.every((l) => l === 0 || l === 1))
    const probabilities = await score(applicants)
    const auc = rocAuc(probabilities, labels)
    assert.ok(auc > 0.75, `AUC ${auc}`)
    assert.ok(accuracy(probabilities, labels) > 1 - mean(labels), 'no better than the majority class')
  })

  it('ships live data that drifts: lower income, higher debt, an unseen region', async () => {
    const reference = (await readApplicants('data/reference.csv')).applicants
    const shifted = await readApplicants('data/current-shifted.csv')
    assert.ok(!shifted.columns.includes('default'), 'live data has no labels')
    const incomes = (rows: Applicant[]) => rows.flatMap((r) => (r.income === null ? [] : [r.income]))
    const incomeRatio = mean(incomes(shifted.applicants)) / mean(incomes(reference))
    assert.ok(incomeRatio < 0.85, `income mean only ${((1 - incomeRatio) * 100).toFixed(1)}% lower`)
    assert.ok(
      mean(shifted.applicants.map((r) => r.debt_ratio)) > mean(reference.map((r) => r.debt_ratio)) * 1.1,
      'debt_ratio did not rise',
    )
    assert.ok(
      shifted.applicants.some((r) => r.region === 'central'),
      'no applicant from central',
    )
    assert.ok(!reference.some((r) => r.region === 'central'), 'training saw central')
    const ageRatio = mean(shifted.applicants.map((r) => r.age)) / mean(reference.map((r) => r.age))
    assert.ok(Math.abs(ageRatio - 1) < 0.05, `age moved by ${ageRatio}`)
  })

  it('ships unlabelled applicants for batch prediction', async () => {
    const {columns, applicants} = await readApplicants('data/applicants.csv')
    assert.ok(!columns.includes('default'))
    assert.equal(applicants.length, 1000)
    assert.ok(applicants.every((a) => Number.isFinite(a.age) && Number.isFinite(a.debt_ratio)))
  })
})
