// Records and request bodies for the checks: from golden cases, the reference data (typed as JSON clients send it), or generated from the features.
import {uniformFloat64} from 'pure-rand/distribution/uniformFloat64'
import {uniformInt} from 'pure-rand/distribution/uniformInt'
import {xoroshiro128plus} from 'pure-rand/generator/xoroshiro128plus'

import {readRecords} from '../data/records.js'
import {UsageError} from '../errors.js'
import {type TensorSpec, isDynamic, supportsBatching} from '../model/signature.js'
import {type TensorJson, tensorFromJson, tensorToJson} from '../model/tensor.js'
import {encodeCategories} from '../pipeline/layout.js'
import type {FeatureSpec} from '../pipeline/spec.js'
import type {InputRecord} from '../pipeline/types.js'
import {datatypeOf} from '../serve/v2.js'
import type {RequestSource} from './config.js'
import type {LoadRequest} from './load/protocol.js'
import type {Subject} from './subject.js'

export interface Rng {
  /** Uniform in [0, 1). */
  float(): number
  /** Uniform integer in [from, to]. */
  int(from: number, to: number): number
  pick<T>(values: readonly T[]): T
}

export function seededRng(seed: number): Rng {
  const rng = xoroshiro128plus(seed)
  const int = (from: number, to: number) => uniformInt(rng, from, to)
  return {float: () => uniformFloat64(rng), int, pick: (values) => values[int(0, values.length - 1)]}
}

export const V1_PATH = '/v1/predict'

export function v2Path(subject: Pick<Subject, 'name'>): string {
  return `/v2/models/${encodeURIComponent(subject.name)}/infer`
}

/** A v2 inference body from tensors as stored in golden cases (base64 data decoded to a list). */
export function v2Body(inputs: Record<string, TensorJson>): string {
  return JSON.stringify({
    inputs: Object.entries(inputs).map(([name, json]) => {
      const t = json.data_b64 === undefined ? json : tensorToJson(tensorFromJson(json, `inputs.${name}`))
      return {name, shape: t.shape, datatype: datatypeOf(t.dtype), data: t.data}
    }),
  })
}

export function v1Body(records: readonly InputRecord[]): string {
  return JSON.stringify({instances: records})
}

/** The categories a category feature takes: listed, from its encoding, or seen in the reference data. */
export function categoriesOf(feature: FeatureSpec, subject: Pick<Subject, 'profile'>): string[] {
  const listed = feature.categories ?? encodeCategories(feature)
  if (listed && listed.length > 0) return listed
  const profile = subject.profile?.features[feature.name]
  if (profile?.kind === 'categorical') return Object.keys(profile.frequencies).filter((c) => c !== '__other__')
  return []
}

/** The range a numeric feature took in the reference data; [0, 1] when unknown. */
export function rangeOf(feature: FeatureSpec, subject: Pick<Subject, 'profile'>): {min: number; max: number} {
  const profile = subject.profile?.features[feature.name]
  if (profile?.kind === 'numeric' && Number.isFinite(profile.min) && Number.isFinite(profile.max))
    return {min: profile.min, max: profile.max}
  return {min: 0, max: 1}
}

/** A CSV row (all strings) as a JSON client would send it: numbers, booleans, null for empty cells. */
export function typedRecord(record: InputRecord, features: readonly FeatureSpec[]): InputRecord {
  const out: InputRecord = {}
  for (const f of features) {
    if (!(f.name in record)) continue
    const v = record[f.name]
    if (typeof v !== 'string') out[f.name] = v
    else if (v === '') out[f.name] = null
    else if (f.type === 'number' || f.type === 'integer') out[f.name] = Number.isFinite(Number(v)) ? Number(v) : v
    else if (f.type === 'boolean')
      out[f.name] =
        v === 'true' || v === 'True' || v === '1' ? true : v === 'false' || v === 'False' || v === '0' ? false : v
    else out[f.name] = v
  }
  return out
}

/** One valid value for a feature; `rng` spreads values over the reference range and categories. */
export function featureValue(f: FeatureSpec, subject: Pick<Subject, 'profile'>, rng?: Rng): unknown {
  switch (f.type) {
    case 'number': {
      const {min, max} = rangeOf(f, subject)
      return rng ? Number((min + rng.float() * (max - min)).toPrecision(6)) : min
    }
    case 'integer': {
      const {min, max} = rangeOf(f, subject)
      return rng ? rng.int(Math.ceil(min), Math.floor(max)) : Math.ceil(min)
    }
    case 'boolean':
      return rng ? rng.int(0, 1) === 1 : false
    case 'category':
    case 'string': {
      const categories = categoriesOf(f, subject)
      if (categories.length === 0) return 'text'
      return rng ? rng.pick(categories) : categories[0]
    }
    default:
      return zeros(
        (f.shape ?? []).map((d, i) => (typeof d === 'number' && d >= 0 ? d : Math.max(4, f.min_shape?.[i] ?? 0))),
        f.dtype === 'string' ? '' : f.dtype === 'bool' ? false : 0,
      )
  }
}

/**
 * A valid value for a tensor feature: the golden record's own (its shape and values ran in the model at init), with
 * floats spread by `rng` so requests differ. Made-up shapes and integers may not suit the model (a minimum length, an
 * index into a small table).
 */
function tensorValue(f: FeatureSpec, golden: InputRecord | undefined, subject: Pick<Subject, 'profile'>, rng?: Rng) {
  const value = golden?.[f.name]
  if (value === undefined) return featureValue(f, subject, rng)
  if (!rng || !f.dtype?.startsWith('float')) return value
  const spread = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(spread)
      : typeof v === 'number'
        ? Number((v * (0.9 + 0.2 * rng.float())).toPrecision(6))
        : v
  return spread(value)
}

/** One generated record: every feature, tensors from the golden record where there is one. */
function featureRecord(subject: Subject & {features: FeatureSpec[]}, rng?: Rng): InputRecord {
  const golden = goldenRecord(subject)
  return Object.fromEntries(
    subject.features.map((f) => [
      f.name,
      f.type === 'tensor' ? tensorValue(f, golden, subject, rng) : featureValue(f, subject, rng),
    ]),
  )
}

/**
 * The first golden record; for golden cases of tensors (what init writes), each input's first row as a nested array
 * under the input's name, which is what a tensor feature (or a bare model) of that name takes.
 */
function goldenRecord(subject: Pick<Subject, 'golden'> & Partial<Pick<Subject, 'features' | 'signature'>>) {
  const records = subject.golden.find((c) => c.records)?.records?.[0]
  if (records) return records
  const inputs = subject.golden.find((c) => c.inputs)?.inputs
  if (!inputs) return undefined
  const record: InputRecord = {}
  const batchable = subject.signature ? supportsBatching(subject.signature) : true
  for (const [name, json] of Object.entries(inputs)) {
    const feature = subject.features?.find((f) => f.name === name)
    if (subject.features?.length && feature?.type !== 'tensor') return undefined
    const tensor = tensorToJson(tensorFromJson(json, `inputs.${name}`))
    const rank = feature?.shape?.length ?? (batchable ? tensor.shape.length - 1 : tensor.shape.length)
    const rowShape = rank < tensor.shape.length ? tensor.shape.slice(1) : tensor.shape
    record[name] = nestRow(tensor.data ?? [], rowShape)
  }
  return record
}

/** The first row of flat values as nested arrays of `shape` (a scalar for rank 0). */
function nestRow(values: readonly unknown[], shape: readonly number[], start = 0): unknown {
  if (shape.length === 0) return values[start]
  const inner = shape.slice(1).reduce((a, b) => a * b, 1)
  return Array.from({length: shape[0]}, (_, i) => nestRow(values, shape.slice(1), start + i * inner))
}

function zeros(shape: readonly number[], leaf: unknown): unknown {
  if (shape.length === 0) return leaf
  return Array.from({length: shape[0]}, () => zeros(shape.slice(1), leaf))
}

/** The shape of one record's row of an input of a bare model: the input without its batch dim (when it batches). */
export function rowShape(spec: TensorSpec, batchable: boolean): number[] {
  return (batchable ? spec.shape.slice(1) : spec.shape).map((d) => (isDynamic(d) ? 8 : (d as number)))
}

/** A record of the model's own inputs for a bare model: zeros of each row shape (dynamic dims as 8). */
export function rawRecord(subject: Pick<Subject, 'signature' | 'golden'>, rng?: Rng): InputRecord {
  const golden = goldenRecord(subject)
  if (golden) return golden
  const batchable = supportsBatching(subject.signature)
  const record: InputRecord = {}
  for (const spec of subject.signature.inputs) {
    const leaf =
      spec.dtype === 'string'
        ? 'a'
        : spec.dtype === 'bool'
          ? false
          : spec.dtype.startsWith('float') && rng
            ? Number(rng.float().toFixed(4))
            : 0
    record[spec.name] = zeros(rowShape(spec, batchable), leaf)
  }
  return record
}

/** A valid record: the first golden record when there is one, else one built from the features (or the model's inputs). */
export function baseRecord(subject: Subject): InputRecord {
  const golden = goldenRecord(subject)
  if (golden) return golden
  if (!hasFeatures(subject)) return rawRecord(subject)
  return featureRecord(subject)
}

export function hasFeatures(subject: Pick<Subject, 'features'>): subject is {features: FeatureSpec[]} {
  return subject.features !== undefined && subject.features.length > 0
}

export function generateRecords(subject: Subject, count: number, rng: Rng): InputRecord[] {
  return Array.from({length: count}, () =>
    hasFeatures(subject) ? featureRecord(subject, rng) : rawRecord(subject, rng),
  )
}

/** Up to `limit` records of the reference data, typed as JSON; none when there is no reference data or no features. */
export async function referenceRecords(subject: Subject, limit: number): Promise<InputRecord[]> {
  if (!subject.reference || !hasFeatures(subject)) return []
  const out: InputRecord[] = []
  const names = new Set(subject.features.map((f) => f.name))
  for await (const {record} of readRecords(subject.reference, {onBadRow: () => undefined})) {
    const picked = Object.fromEntries(Object.entries(record).filter(([k]) => names.has(k)))
    out.push(typedRecord(picked, subject.features))
    if (out.length >= limit) break
  }
  return out
}

/** The requests load sends, round-robin: golden cases as they are, or records batched `batch` to a request. */
export async function loadRequests(
  subject: Subject,
  source: RequestSource,
  batch: number,
  rng: Rng,
): Promise<{source: Exclude<RequestSource, 'auto'>; requests: LoadRequest[]}> {
  const pick =
    source === 'auto'
      ? subject.reference && hasFeatures(subject)
        ? 'reference'
        : subject.golden.length > 0
          ? 'golden'
          : 'generated'
      : source
  let records: InputRecord[] = []
  if (pick === 'golden') {
    if (subject.golden.length === 0)
      throw new UsageError(
        'CHECKS_NO_GOLDEN',
        `checks.load.requests is golden, but ${subject.name}@${subject.version} has no golden cases`,
        {hint: 'Set data.golden in mlops.yaml and package again, or set checks.load.requests to generated.'},
      )
    const tensorCases = subject.golden.filter((c) => c.inputs)
    records = subject.golden.flatMap((c) => c.records ?? [])
    if (records.length === 0)
      return {source: pick, requests: tensorCases.map((c) => ({path: v2Path(subject), body: v2Body(c.inputs!)}))}
  } else if (pick === 'reference') {
    records = await referenceRecords(subject, 1000)
    if (records.length === 0)
      throw new UsageError(
        'CHECKS_NO_REFERENCE',
        `checks.load.requests is reference, but ${subject.name} has no reference data with its features`,
        {hint: 'Set data.reference in mlops.yaml, or set checks.load.requests to golden or generated.'},
      )
  } else {
    records = generateRecords(subject, 200, rng)
  }
  const requests: LoadRequest[] = []
  for (let i = 0; i < records.length; i += batch) {
    const chunk = records.slice(i, i + batch)
    while (chunk.length < batch) chunk.push(records[chunk.length % records.length])
    requests.push({path: V1_PATH, body: v1Body(chunk)})
  }
  return {source: pick, requests}
}
