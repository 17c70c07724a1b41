// Regression through the running server: golden cases with per-output tolerances, and per-example agreement with a baseline server.
import {Agent, request} from 'undici'

import {SUPPORTED_DTYPES, type TensorJson} from '../model/tensor.js'
import type {InputRecord, Prediction} from '../pipeline/types.js'
import {datatypeOf} from '../serve/v2.js'
import {type Mismatch, compareJson, compareTensor} from './compare.js'
import type {CheckSettings} from './config.js'
import type {GoldenCase, Tolerance} from './golden.types.js'
import {V1_PATH, generateRecords, referenceRecords, seededRng, v1Body, v2Body, v2Path} from './requests.js'
import type {Subject} from './subject.js'

export interface GoldenOutcome {
  name: string
  passed: boolean
  mismatches: Mismatch[]
  error?: string
}

export interface BaselineComparison {
  url: string
  version?: string
  /** Examples both servers answered. */
  examples: number
  /** Examples one server answered and the other refused (counted as disagreements). */
  refusedByOne: number
  /** Examples both refused (left out). */
  refusedByBoth: number
  agreement: number
  flipRate: number
  maxAbsDiff: number
  meanAbsDiff: number
  /** The first disagreements, for the report. */
  disagreements: {index: number; record: InputRecord; candidate?: Prediction; baseline?: Prediction; fields: string[]}[]
}

export interface RegressionResult {
  golden: {total: number; passed: number; failed: number; cases: GoldenOutcome[]}
  baseline?: BaselineComparison
}

type Settings = CheckSettings['regression']

/** A 5xx is retried: availability is the load check's to judge; regression judges the answers. */
const TRIES = 4
const BATCH = 50
const SHOWN_DISAGREEMENTS = 10

interface Answer {
  status: number
  body: unknown
}

async function post(agent: Agent, url: string, path: string, body: string): Promise<Answer> {
  let last: Answer = {status: 0, body: undefined}
  for (let i = 0; i < TRIES; i++) {
    const response = await request(`${url}${path}`, {
      dispatcher: agent,
      method: 'POST',
      headers: {'content-type': 'application/json'},
      body,
      signal: AbortSignal.timeout(30_000),
    })
    const text = await response.body.text()
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      parsed = text
    }
    last = {status: response.statusCode, body: parsed}
    if (response.statusCode < 500) return last
  }
  return last
}

function toleranceFor(field: string, golden: GoldenCase | undefined, settings: Settings): Tolerance {
  return golden?.tolerances?.[field] ?? settings.tolerances[field] ?? golden?.tolerance ?? settings.tolerance
}

/** Field by field, so each prediction field (or output) gets its own tolerance; labels and strings compare exactly. */
function comparePrediction(
  field: string,
  expected: Prediction,
  actual: unknown,
  golden: GoldenCase | undefined,
  settings: Settings,
): Mismatch[] {
  if (actual === null || typeof actual !== 'object' || Array.isArray(actual))
    return [{field, expected, actual, message: 'expected an object'}]
  return Object.keys(expected).flatMap((key) =>
    compareJson(`${field}.${key}`, expected[key], (actual as Prediction)[key], toleranceFor(key, golden, settings)),
  )
}

const TO_DTYPE = Object.fromEntries(SUPPORTED_DTYPES.map((d) => [datatypeOf(d), d])) as Record<
  string,
  TensorJson['dtype']
>

export async function runGoldenThroughServer(
  url: string,
  subject: Subject,
  settings: Settings,
): Promise<RegressionResult['golden']> {
  const agent = new Agent({connections: 2})
  const cases: GoldenOutcome[] = []
  try {
    for (const golden of subject.golden) cases.push(await goldenCase(agent, url, subject, golden, settings))
  } finally {
    await agent.close()
  }
  const passed = cases.filter((c) => c.passed).length
  return {total: cases.length, passed, failed: cases.length - passed, cases}
}

async function goldenCase(
  agent: Agent,
  url: string,
  subject: Subject,
  golden: GoldenCase,
  settings: Settings,
): Promise<GoldenOutcome> {
  const answer = golden.records
    ? await post(agent, url, V1_PATH, v1Body(golden.records))
    : await post(agent, url, v2Path(subject), v2Body(golden.inputs!))
  if (answer.status !== 200)
    return {
      name: golden.name,
      passed: false,
      mismatches: [],
      error: `the server answered ${answer.status}: ${JSON.stringify(answer.body).slice(0, 300)}`,
    }
  const mismatches: Mismatch[] = []
  if (golden.records) {
    const predictions = (answer.body as {predictions?: unknown[]}).predictions ?? []
    golden.expected.predictions!.forEach((expected, i) =>
      mismatches.push(...comparePrediction(`predictions[${i}]`, expected, predictions[i], golden, settings)),
    )
  } else {
    const outputs = new Map(
      (
        (answer.body as {outputs?: {name: string; datatype: string; shape: number[]; data: TensorJson['data']}[]})
          .outputs ?? []
      ).map((o) => [o.name, o]),
    )
    for (const [name, expected] of Object.entries(golden.expected.outputs ?? {})) {
      const actual = outputs.get(name)
      if (!actual) {
        mismatches.push({
          field: `outputs.${name}`,
          expected: 'a tensor',
          actual: undefined,
          message: 'the server returned no such output',
        })
        continue
      }
      mismatches.push(
        ...compareTensor(
          `outputs.${name}`,
          expected,
          {dtype: TO_DTYPE[actual.datatype], shape: actual.shape, data: actual.data},
          toleranceFor(name, golden, settings),
        ),
      )
    }
  }
  return {name: golden.name, passed: mismatches.length === 0, mismatches}
}

/** The records both servers are asked about: golden records, then reference data, then generated ones, up to `examples`. */
export async function comparisonRecords(subject: Subject, examples: number, seed: number): Promise<InputRecord[]> {
  const records = subject.golden.flatMap((c) => c.records ?? []).slice(0, examples)
  if (records.length < examples) records.push(...(await referenceRecords(subject, examples - records.length)))
  if (records.length < examples) records.push(...generateRecords(subject, examples - records.length, seededRng(seed)))
  return records
}

/** Predictions for each record, or undefined where the server refused it (a refused batch is retried one record at a time). */
async function predictAll(
  agent: Agent,
  url: string,
  records: readonly InputRecord[],
): Promise<(Prediction | undefined)[]> {
  const out: (Prediction | undefined)[] = []
  for (let i = 0; i < records.length; i += BATCH) {
    const chunk = records.slice(i, i + BATCH)
    const answer = await post(agent, url, V1_PATH, v1Body(chunk))
    if (answer.status === 200) {
      out.push(...(answer.body as {predictions: Prediction[]}).predictions)
      continue
    }
    for (const record of chunk) {
      const one = await post(agent, url, V1_PATH, v1Body([record]))
      out.push(one.status === 200 ? (one.body as {predictions: Prediction[]}).predictions[0] : undefined)
    }
  }
  return out
}

export async function compareWithBaseline(
  candidateUrl: string,
  baselineUrl: string,
  subject: Subject,
  settings: Settings,
  seed: number,
): Promise<BaselineComparison> {
  const records = await comparisonRecords(subject, settings.examples, seed)
  const agent = new Agent({connections: 2})
  let candidate: (Prediction | undefined)[]
  let baseline: (Prediction | undefined)[]
  let version: string | undefined
  try {
    ;[candidate, baseline] = await Promise.all([
      predictAll(agent, candidateUrl, records),
      predictAll(agent, baselineUrl, records),
    ])
    const probe = await request(`${baselineUrl}/v2/health/ready`, {dispatcher: agent})
    version = (probe.headers['x-model-version'] as string | undefined) ?? undefined
    await probe.body.dump()
  } finally {
    await agent.close()
  }
  return agreementOf(records, candidate, baseline, subject, settings, baselineUrl, version)
}

/** Pure: per-example agreement within tolerance, label flips, and score differences. */
export function agreementOf(
  records: readonly InputRecord[],
  candidate: readonly (Prediction | undefined)[],
  baseline: readonly (Prediction | undefined)[],
  subject: Pick<Subject, 'signature'>,
  settings: Settings,
  url: string,
  version?: string,
): BaselineComparison {
  const labelOutputs = new Set(
    subject.signature.outputs
      .filter((o) => o.dtype && (o.dtype === 'string' || o.dtype === 'bool' || o.dtype.includes('int')))
      .map((o) => o.name),
  )
  let examples = 0
  let refusedByOne = 0
  let refusedByBoth = 0
  let agreeing = 0
  let flips = 0
  let maxAbsDiff = 0
  let sumAbsDiff = 0
  const disagreements: BaselineComparison['disagreements'] = []
  records.forEach((record, index) => {
    const c = candidate[index]
    const b = baseline[index]
    if (!c && !b) {
      refusedByBoth++
      return
    }
    examples++
    if (!c || !b) {
      refusedByOne++
      if (disagreements.length < SHOWN_DISAGREEMENTS)
        disagreements.push({
          index,
          record,
          candidate: c,
          baseline: b,
          fields: [c ? 'refused by the baseline' : 'refused by the candidate'],
        })
      return
    }
    const mismatches = comparePrediction('', b, c, undefined, settings)
    const fields = [...new Set(mismatches.map((m) => m.field.replace(/^\./, '').split(/[.[]/)[0]))]
    if (mismatches.length === 0) agreeing++
    else if (disagreements.length < SHOWN_DISAGREEMENTS)
      disagreements.push({index, record, candidate: c, baseline: b, fields})
    let flipped = false
    let diff = 0
    for (const key of new Set([...Object.keys(b), ...Object.keys(c)])) {
      const [x, y] = [b[key], c[key]]
      if (labelOutputs.has(key) || isLabel(x) || isLabel(y)) flipped ||= JSON.stringify(x) !== JSON.stringify(y)
      else diff = Math.max(diff, maxAbs(x, y))
    }
    if (flipped) flips++
    maxAbsDiff = Math.max(maxAbsDiff, diff)
    sumAbsDiff += diff
  })
  const answered = examples - refusedByOne
  return {
    url,
    ...(version ? {version} : {}),
    examples,
    refusedByOne,
    refusedByBoth,
    agreement: examples > 0 ? agreeing / examples : 0,
    flipRate: examples > 0 ? (flips + refusedByOne) / examples : 0,
    maxAbsDiff,
    meanAbsDiff: answered > 0 ? sumAbsDiff / answered : 0,
    disagreements,
  }
}

function isLabel(value: unknown): boolean {
  return typeof value === 'string' || typeof value === 'boolean'
}

/** Largest |x − y| over matching numbers (nested arrays too); a non-finite difference counts as Infinity. */
function maxAbs(x: unknown, y: unknown): number {
  if (typeof x === 'number' && typeof y === 'number')
    return x === y ? 0 : Number.isFinite(x - y) ? Math.abs(x - y) : Infinity
  if (Array.isArray(x) && Array.isArray(y))
    return x.reduce((m: number, v, i) => Math.max(m, maxAbs(v, y[i])), x.length === y.length ? 0 : Infinity)
  if (x && y && typeof x === 'object' && typeof y === 'object')
    return Object.keys(x).reduce(
      (m, k) => Math.max(m, maxAbs((x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k])),
      0,
    )
  return JSON.stringify(x) === JSON.stringify(y) ? 0 : Infinity
}
