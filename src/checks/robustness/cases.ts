// Hostile and odd requests generated from the signature and the pipeline, each with the answer a sound server gives; seeded, so a run can be repeated.
import {isRequired} from '../../pipeline/features.js'
import type {FeatureSpec} from '../../pipeline/spec.js'
import type {InputRecord} from '../../pipeline/types.js'
import {isDynamic} from '../../model/signature.js'
import type {TensorJson} from '../../model/tensor.js'
import {datatypeOf} from '../../serve/v2.js'
import {
  type Rng,
  V1_PATH,
  baseRecord,
  categoriesOf,
  generateRecords,
  hasFeatures,
  rangeOf,
  seededRng,
  v2Body,
  v2Path,
} from '../requests.js'
import type {Subject} from '../subject.js'

/**
 * reject: a 4xx with a JSON error body. predict: a 200 whose predictions are all finite.
 * handled: either of those (the input is odd but a server may reasonably take it or refuse it).
 * answered: any answer but a 5xx (a raw tensor API passes NaN through to the model, and NaN in may be NaN out).
 * Whatever is expected, a 5xx, no answer in time, a crash or an unhealthy server afterwards is a failure.
 */
export type Expectation = 'reject' | 'predict' | 'handled' | 'answered'

export interface RobustnessCase {
  name: string
  kind: string
  expect: Expectation
  method: 'POST' | 'GET'
  path: string
  contentType: string
  body: string | Buffer
  /** The server may close the connection instead of answering (an over-limit body: it need not read it all). */
  mayClose?: boolean
}

export interface CaseOptions {
  seed: number
  /** Total cases: the systematic ones, then seeded random mutations up to this count. */
  count: number
}

const JSON_TYPE = 'application/json'

/** A required feature has no value to stand in for a missing one; tensors never do. */
function mustHave(f: FeatureSpec): boolean {
  return f.type === 'tensor' || (isRequired(f) && f.default === undefined && f.impute === undefined)
}

export function robustnessCases(subject: Subject, options: CaseOptions): RobustnessCase[] {
  const rng = seededRng(options.seed)
  const base = baseRecord(subject)
  const cases: RobustnessCase[] = []
  const v1 = (name: string, kind: string, expect: Expectation, instances: unknown) =>
    cases.push({
      name,
      kind,
      expect,
      method: 'POST',
      path: V1_PATH,
      contentType: JSON_TYPE,
      body: JSON.stringify({instances}),
    })
  const raw = (
    name: string,
    kind: string,
    expect: Expectation,
    body: string | Buffer,
    contentType = JSON_TYPE,
    path = V1_PATH,
  ) => cases.push({name, kind, expect, method: 'POST', path, contentType, body})
  // With a preprocess module the record format is the module's: extra or odd fields may be fine there.
  const strict: Expectation = subject.module ? 'handled' : 'reject'

  v1('a valid record', 'valid', 'predict', [base])
  if (hasFeatures(subject) && !subject.module) featureCases(subject, base, v1)
  else rawInputCases(base, v1, strict)

  v1('an unknown extra field', 'extra_field', strict, [{...base, unexpected_field: 1}])
  v1('a field name in odd unicode', 'unicode', strict, [{...base, 'ａｇｅ\u200b🙂': 1}])
  v1('a record that is a number', 'wrong_type', 'reject', [42])
  v1('a record that is an array', 'wrong_type', 'reject', [[1, 2, 3]])
  v1('a record that is null', 'null_field', 'reject', [null])
  v1('an empty batch', 'empty_batch', 'reject', [])
  raw('instances is a string', 'wrong_type', 'reject', JSON.stringify({instances: 'abc'}))
  raw('no instances field', 'missing_field', 'reject', JSON.stringify({records: [base]}))
  batchCases(subject, base, v1)
  raw(
    `a body of ${subject.serving.maxBodyBytes + 1024} bytes, over serving.max_body_mb`,
    'oversized_body',
    'reject',
    `{"instances":[${JSON.stringify(base)}],"pad":"${'x'.repeat(subject.serving.maxBodyBytes)}"}`,
  )
  cases[cases.length - 1].mayClose = true
  raw(
    'arrays nested 100000 deep',
    'deep_nesting',
    'reject',
    `{"instances":[{"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}]}`,
  )
  raw(
    'objects nested 5000 deep',
    'deep_nesting',
    'reject',
    `{"instances":[${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}]}`,
  )
  raw('truncated JSON', 'not_json', 'reject', JSON.stringify({instances: [base]}).slice(0, -3))
  raw('plain text', 'not_json', 'reject', 'hello, model')
  raw('an empty body', 'not_json', 'reject', '')
  raw('the JSON literal null', 'not_json', 'reject', 'null')
  raw('a JSON array body', 'not_json', 'reject', JSON.stringify([base]))
  raw('JSON followed by garbage', 'not_json', 'reject', `${JSON.stringify({instances: [base]})}}}garbage`)
  raw('512 random bytes', 'not_json', 'reject', Buffer.from(Array.from({length: 512}, () => rng.int(0, 255))))
  raw(
    'invalid UTF-8',
    'not_json',
    'handled',
    Buffer.concat([Buffer.from('{"instances":[{"x":"'), Buffer.from([0xc3, 0x28, 0xff, 0xfe]), Buffer.from('"}]}')]),
  )
  raw('a byte-order mark before the JSON', 'not_json', 'handled', `\ufeff${JSON.stringify({instances: [base]})}`)
  raw('a text/plain content type', 'content_type', 'reject', JSON.stringify({instances: [base]}), 'text/plain')
  raw(
    'a duplicated "instances" key',
    'duplicate_key',
    'handled',
    `{"instances":[${JSON.stringify(base)}],"instances":[${JSON.stringify(base)}]}`,
  )
  v2Cases(subject, raw)

  for (let i = 0; cases.length < options.count; i++) {
    const mutated = mutate(subject, base, rng)
    v1(`random ${i + 1}: ${mutated.what}`, 'random', mutated.expect, [mutated.record])
  }
  return cases
}

type V1 = (name: string, kind: string, expect: Expectation, instances: unknown) => void

/**
 * A large valid batch and one over serving.max_instances. Records of large tensors (an image is megabytes as JSON) would
 * make bodies of gigabytes: the valid batch shrinks to what fits the body limit, and the count case is built from an
 * empty record (refused either way) so it tests the count, not the memory of the test.
 */
/** The most JSON a valid large batch holds. */
const LARGE_BATCH_BYTES = 4_000_000

function batchCases(subject: Subject, base: InputRecord, v1: V1): void {
  const {maxInstances, maxBodyBytes} = subject.serving
  const recordBytes = JSON.stringify(base).length + 1
  // A batch of images is seconds of inference on a small machine: a few megabytes of records make the point.
  const fitting = Math.floor(Math.min(maxBodyBytes * 0.9, LARGE_BATCH_BYTES) / recordBytes)
  const batch = Math.min(1000, maxInstances, fitting)
  if (batch >= 2)
    v1(
      `a batch of ${batch} valid records${batch < Math.min(1000, maxInstances) ? ` (as many as fit ${LARGE_BATCH_BYTES / 1e6} MB)` : ''}`,
      'large_batch',
      'predict',
      Array.from({length: batch}, () => base),
    )
  const small = recordBytes * (maxInstances + 1) <= maxBodyBytes
  v1(
    `a batch of ${maxInstances + 1} ${small ? '' : 'empty '}records, one over serving.max_instances`,
    'huge_batch',
    'reject',
    Array.from({length: maxInstances + 1}, () => (small ? base : {})),
  )
}

function featureCases(subject: Subject & {features: FeatureSpec[]}, base: InputRecord, v1: V1): void {
  for (const f of subject.features) {
    const without = Object.fromEntries(Object.entries(base).filter(([k]) => k !== f.name))
    v1(`missing field ${f.name}`, 'missing_field', mustHave(f) ? 'reject' : 'predict', [without])
    v1(`${f.name} is null`, 'null_field', mustHave(f) ? 'reject' : 'predict', [{...base, [f.name]: null}])
    const set = (value: unknown) => [{...base, [f.name]: value}]
    if (f.type === 'number' || f.type === 'integer') {
      const {min, max} = rangeOf(f, subject)
      v1(`${f.name} is a word`, 'wrong_type', 'reject', set('abc'))
      v1(`${f.name} is a boolean`, 'wrong_type', 'reject', set(true))
      v1(`${f.name} is an object`, 'wrong_type', 'reject', set({value: 1}))
      v1(`${f.name} is "NaN"`, 'non_finite', mustHave(f) || f.type === 'integer' ? 'reject' : 'predict', set('NaN'))
      v1(`${f.name} is "Infinity"`, 'non_finite', 'handled', set('Infinity'))
      v1(`${f.name} is "-Infinity"`, 'non_finite', 'handled', set('-Infinity'))
      v1(
        `${f.name} at its reference minimum ${min}`,
        'extreme_value',
        'predict',
        set(f.type === 'integer' ? Math.ceil(min) : min),
      )
      v1(
        `${f.name} at its reference maximum ${max}`,
        'extreme_value',
        'predict',
        set(f.type === 'integer' ? Math.floor(max) : max),
      )
      const far = Math.max(1e6, Math.abs(max) * 1000)
      v1(`${f.name} far above its range (${far})`, 'extreme_value', 'handled', set(far))
      v1(`${f.name} far below its range (${-far})`, 'extreme_value', 'handled', set(-far))
      if (f.type === 'integer') v1(`${f.name} is 1.5, not an integer`, 'wrong_type', 'reject', set(1.5))
    } else if (f.type === 'boolean') {
      v1(`${f.name} is "maybe"`, 'wrong_type', 'reject', set('maybe'))
      v1(`${f.name} is 7`, 'wrong_type', 'reject', set(7))
    } else if (f.type === 'category' || f.type === 'string') {
      const known = categoriesOf(f, subject)
      v1(`${f.name} is a number`, 'wrong_type', 'reject', set(12345))
      v1(`${f.name} is an array`, 'wrong_type', 'reject', set(['a']))
      v1(`${f.name} is a category never seen`, 'unknown_category', 'handled', set('never-seen-category'))
      v1(
        `${f.name} in odd unicode (RTL, zero-width, emoji)`,
        'unicode',
        'handled',
        set(`\u202e${known[0] ?? 'x'}\u200b🙂`),
      )
      v1(`${f.name} holds a lone surrogate`, 'unicode', 'handled', set('\ud800'))
      v1(`${f.name} holds a NUL character`, 'unicode', 'handled', set('a\u0000b'))
      v1(`${f.name} is 100000 characters long`, 'extreme_value', 'handled', set('x'.repeat(100_000)))
      if (known.length > 0) v1(`${f.name} is its last category`, 'extreme_value', 'predict', set(known.at(-1)))
    } else {
      v1(`${f.name} is a string`, 'wrong_type', 'reject', set('abc'))
      v1(`${f.name} has one level of nesting too many`, 'wrong_shape', 'reject', set([base[f.name]]))
    }
  }
}

/** A bare model: each record holds one row of each input. */
function rawInputCases(base: InputRecord, v1: V1, strict: Expectation): void {
  for (const name of Object.keys(base)) {
    const without = Object.fromEntries(Object.entries(base).filter(([k]) => k !== name))
    v1(`missing input ${name}`, 'missing_field', strict, [without])
    v1(`input ${name} is a word`, 'wrong_type', strict, [{...base, [name]: 'abc'}])
    v1(`input ${name} is an object`, 'wrong_type', strict, [{...base, [name]: {a: 1}}])
    v1(`input ${name} is wrapped in one array too many`, 'wrong_shape', 'handled', [{...base, [name]: [[base[name]]]}])
  }
}

type Raw = (
  name: string,
  kind: string,
  expect: Expectation,
  body: string | Buffer,
  contentType?: string,
  path?: string,
) => void

/** The Open Inference Protocol route: wrong shapes and datatypes, missing and unknown inputs. */
function v2Cases(subject: Subject, raw: Raw): void {
  const path = v2Path(subject)
  if (subject.signature.inputs.length === 0) {
    // A model without inputs (a constant, a generator) is called with none.
    raw('v2: no inputs, as the model takes none', 'valid', 'predict', '{"inputs":[]}', undefined, path)
    const stray = {name: 'x', shape: [1], datatype: 'FP32', data: [1]}
    raw(
      'v2: an input the model does not take',
      'unknown_input',
      'reject',
      JSON.stringify({inputs: [stray]}),
      undefined,
      path,
    )
    return
  }
  const golden = subject.golden.find((c) => c.inputs)?.inputs
  const inputs: Record<string, TensorJson> =
    golden ??
    Object.fromEntries(
      subject.signature.inputs.map((spec) => {
        const shape = spec.shape.map((d, i) => (isDynamic(d) ? (i === 0 ? 1 : 8) : (d as number)))
        const count = shape.reduce((a, b) => a * b, 1)
        return [
          spec.name,
          {
            dtype: spec.dtype,
            shape,
            data: Array.from({length: count}, () =>
              spec.dtype === 'string' ? 'a' : spec.dtype === 'bool' ? false : 0,
            ),
          },
        ]
      }),
    )
  const body = JSON.parse(v2Body(inputs)) as {
    inputs: {name: string; shape: number[]; datatype: string; data: unknown[]}[]
  }
  const first = body.inputs[0]
  const withFirst = (change: Record<string, unknown>) =>
    JSON.stringify({inputs: [{...first, ...change}, ...body.inputs.slice(1)]})
  // Only a request known to be valid (from a golden case) may be expected to predict: made-up dims may not suit the model.
  if (golden) raw('v2: a valid request', 'valid', 'predict', JSON.stringify(body), undefined, path)
  raw('v2: one dimension too many', 'wrong_shape', 'reject', withFirst({shape: [...first.shape, 1]}), undefined, path)
  raw(
    'v2: shape and data length disagree',
    'wrong_shape',
    'reject',
    withFirst({shape: first.shape.map((d, i) => (i === first.shape.length - 1 ? d + 1 : d))}),
    undefined,
    path,
  )
  raw(
    'v2: a negative dimension',
    'wrong_shape',
    'reject',
    withFirst({shape: first.shape.map((d, i) => (i === 0 ? -1 : d))}),
    undefined,
    path,
  )
  const wrong = first.datatype === 'BYTES' ? 'FP32' : first.datatype === 'INT8' ? 'FP32' : 'INT8'
  raw(
    `v2: datatype ${wrong} instead of ${first.datatype}`,
    'wrong_dtype',
    'reject',
    withFirst({datatype: wrong}),
    undefined,
    path,
  )
  raw('v2: an unknown datatype', 'wrong_dtype', 'reject', withFirst({datatype: 'FP128'}), undefined, path)
  raw('v2: data is a string', 'wrong_type', 'reject', withFirst({data: 'abc'}), undefined, path)
  raw('v2: an unknown input name', 'unknown_input', 'reject', withFirst({name: 'no_such_input'}), undefined, path)
  raw('v2: no inputs', 'missing_field', 'reject', JSON.stringify({inputs: []}), undefined, path)
  if (datatypeOf(subject.signature.inputs[0].dtype).startsWith('FP'))
    raw('v2: "NaN" values', 'non_finite', 'answered', withFirst({data: first.data.map(() => 'NaN')}), undefined, path)
  raw(
    'v2: a model that is not served here',
    'unknown_model',
    'reject',
    JSON.stringify(body),
    undefined,
    '/v2/models/no-such-model/infer',
  )
}

const NASTY: readonly unknown[] = [
  null,
  '',
  'NaN',
  'Infinity',
  -1e308,
  1e308,
  true,
  false,
  [],
  {},
  '🙂',
  -0,
  2 ** 53 + 1,
  '0x1f',
  ' 12 ',
  '1e999',
  'null',
  '<script>',
  [null],
  {'': null},
]

/** One random change to a valid record: a field replaced by an odd value, dropped, or a field added. */
function mutate(
  subject: Subject,
  base: InputRecord,
  rng: Rng,
): {record: InputRecord; what: string; expect: Expectation} {
  const keys = Object.keys(base)
  const choice = rng.int(0, 9)
  if (choice === 0 && hasFeatures(subject)) {
    const [record] = generateRecords(subject, 1, rng)
    return {record, what: 'a record with random valid values', expect: 'predict'}
  }
  if (choice === 1 && keys.length > 1) {
    const key = rng.pick(keys)
    const record = Object.fromEntries(Object.entries(base).filter(([k]) => k !== key))
    return {record, what: `without ${key}`, expect: 'handled'}
  }
  const key = rng.pick(keys)
  const value = rng.pick(NASTY)
  return {
    record: {...base, [key]: value},
    what: `${key} = ${JSON.stringify(value) ?? String(value)}`,
    expect: 'handled',
  }
}
