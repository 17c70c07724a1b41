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
        (f.shape ?? []).map((d) => (typeof d === 'number' && d >= 0 ? d : 4)),
        f.dtype === 'string' ? '' : f.dtype === 'bool' ? false : 0,
      )
  }
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
export function rawRecord(subject: Pick<Subject, 'signature'>, rng?: Rng): InputRecord {
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
  const golden = subject.golden.find((c) => c.records)?.records?.[0]
  if (golden) return golden
  if (!hasFeatures(subject)) return rawRecord(subject)
  return Object.fromEntries(subject.features.map((f) => [f.name, featureValue(f, subject)]))
}

export function hasFeatures(subject: Pick<Subject, 'features'>): subject is {features: FeatureSpec[]} {
  return subject.features !== undefined && subject.features.length > 0
}

export function generateRecords(subject: Subject, count: number, rng: Rng): InputRecord[] {
  return Array.from({length: count}, () =>
    hasFeatures(subject)
      ? Object.fromEntries(subject.features.map((f) => [f.name, featureValue(f, subject, rng)]))
      : rawRecord(subject, rng),
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
