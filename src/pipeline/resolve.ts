// Checks a pipeline against the model signature and fits what mlops.yaml leaves out on the reference data: the frozen pipeline an artifact carries.
import {ConfigError, type ConfigIssue, UsageError} from '../errors.js'
import {type ModelSignature, type TensorSpec, formatShape, isDynamic} from '../model/signature.js'
import {INVALID, MISSING, describeValue, toBoolean, toInteger, toNumber, toText} from './coerce.js'
import {categoriesOf, mean, median, minMax, mostFrequent, std} from './fit.js'
import {
  FLOAT_DTYPES,
  INTEGER_DTYPES,
  encodeCategories,
  featureWidth,
  feedsNumbers,
  isFixed,
  isTextFeature,
  tensorLayout,
  transformsOf,
} from './layout.js'
import type {
  FeatureSpec,
  InputAssembly,
  OutputPostprocess,
  PipelineSpec,
  ResolvedPipeline,
  Scalar,
  Transform,
} from './spec.js'
import {checkImageSteps, imageShape} from './image.js'
import {checkOutputImage} from './image-output.js'
import {compileClip, compileTransform} from './steps.js'
import type {InputRecord} from './types.js'

const FILE = 'mlops.yaml'
/** Bad reference values listed before giving up: enough to see the pattern. */
const SHOWN_BAD_VALUES = 5

export type ReferenceRecords = AsyncIterable<InputRecord> | Iterable<InputRecord>

/** A feature value coerced as createPipeline coerces it: a number (NaN when missing), a string, MISSING or INVALID. */
function coerceFeatureValue(feature: FeatureSpec, value: unknown): number | string | typeof MISSING | typeof INVALID {
  switch (feature.type) {
    case 'number':
      return toNumber(value)
    case 'integer':
      return toInteger(value)
    case 'boolean':
      return toBoolean(value)
    case 'string':
    case 'category':
      return toText(value)
    default:
      return INVALID
  }
}

export async function resolvePipeline(
  spec: PipelineSpec,
  signature: ModelSignature,
  reference?: ReferenceRecords,
): Promise<ResolvedPipeline> {
  const issues: ConfigIssue[] = []
  const generic = !spec.features || spec.features.length === 0
  // Generic tensor mode: one tensor feature per model input, named after it.
  const features: FeatureSpec[] = generic
    ? signature.inputs.map((i) => ({name: i.name, type: 'tensor'}))
    : structuredClone(spec.features!)
  if (!generic) features.forEach((f, i) => issues.push(...checkFeature(f, `pipeline.features[${i}]`)))
  const seen = new Set<string>()
  features.forEach((f, i) => {
    if (seen.has(f.name))
      issues.push({
        path: `pipeline.features[${i}].name`,
        message: `"${f.name}" is listed twice; feature names must be unique`,
      })
    seen.add(f.name)
  })

  const inputs = spec.inputs ? structuredClone(spec.inputs) : deriveInputs(features, signature, issues)
  if (spec.inputs) issues.push(...checkAssemblies(spec.inputs, features, signature))
  issues.push(...checkOutputs(spec.outputs ?? [], signature))

  const fits = features.map((f, i) => fitNeeds(f, `pipeline.features[${i}]`))
  if (!reference)
    for (const need of fits.flat())
      issues.push({
        path: need,
        message:
          'is fitted on reference data, and there is none: set data.reference in mlops.yaml, or give the value here',
      })
  if (issues.length > 0) throw new ConfigError(FILE, issues)

  // The reference data is read only when something is fitted on it.
  if (fits.some((f) => f.length > 0)) await fitFeatures(features, fits, reference!)
  for (const f of features) fillEncodeCategories(f)

  const byName = new Map(features.map((f) => [f.name, f]))
  inputs.forEach((assembly, i) => {
    const input = signature.inputs.find((s) => s.name === assembly.input)
    if (input) issues.push(...checkInputFeeds(assembly, input, byName, features, `pipeline.inputs[${i}]`, !spec.inputs))
  })
  if (issues.length > 0) throw new ConfigError(FILE, issues)

  const resolved: ResolvedPipeline = {features, inputs, resolved: true}
  if (spec.outputs) resolved.outputs = structuredClone(spec.outputs)
  if (spec.module) resolved.module = spec.module
  return deepFreeze(resolved)
}

// ---------- per feature ----------

function checkFeature(f: FeatureSpec, path: string): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  const not = (key: keyof FeatureSpec, what: string) => {
    if (f[key] !== undefined)
      issues.push({path: `${path}.${key}`, message: `does not apply to ${f.type} features (${what})`})
  }
  if (f.type === 'tensor') {
    for (const key of ['default', 'impute', 'clip', 'transform', 'encode', 'categories'] as const)
      not(key, 'a tensor feature is fed as it is')
    if (f.min_shape && f.shape && f.min_shape.length !== f.shape.length)
      issues.push({path: `${path}.min_shape`, message: `has ${f.min_shape.length} sizes; shape has ${f.shape.length}`})
    return issues
  }
  if (f.type === 'image') {
    for (const key of ['default', 'impute', 'clip', 'transform', 'encode', 'categories', 'shape', 'dtype'] as const)
      not(key, 'an image feature is what its image steps make of the picture')
    issues.push(...checkImageSteps(f.image ?? {}, `${path}.image`))
    // The tensor the steps make: checked against the model input like a tensor feature's shape.
    f.shape = imageShape(f.image ?? {})
    return issues
  }
  not('image', 'only image features have image steps')
  not('shape', 'only tensor features have a shape')
  not('min_shape', 'only tensor features have a shape')
  if (f.type !== 'number') not('allow_non_finite', 'only number and tensor features hold floats')
  not('dtype', 'only tensor features have a dtype')
  if (isTextFeature(f)) {
    not('clip', 'only number and integer features')
    not('transform', 'only number and integer features')
    if (f.impute === 'mean' || f.impute === 'median')
      issues.push({
        path: `${path}.impute`,
        message: `"${f.impute}" needs numbers; use most_frequent or {value: …} for ${f.type} features`,
      })
    if (f.categories && f.encode) {
      const extra = (encodeCategories(f) ?? []).filter((c) => !f.categories!.includes(c))
      if (extra.length > 0)
        issues.push({path: `${path}.encode`, message: `categories ${extra.join(', ')} are not in ${path}.categories`})
    }
  } else {
    not('encode', 'only category and string features are encoded')
    not('categories', 'only category and string features')
    if (f.type === 'boolean') {
      not('clip', 'only number and integer features')
      not('transform', 'only number and integer features')
      if (f.impute === 'mean' || f.impute === 'median')
        issues.push({
          path: `${path}.impute`,
          message: `"${f.impute}" needs numbers; use most_frequent or {value: …} for boolean features`,
        })
    }
  }
  if (f.default !== undefined && !isValidScalar(f, f.default))
    issues.push({path: `${path}.default`, message: `${describeValue(f.default)} is not a valid ${f.type} value`})
  if (typeof f.impute === 'object' && !isValidScalar(f, f.impute.value))
    issues.push({
      path: `${path}.impute.value`,
      message: `${describeValue(f.impute.value)} is not a valid ${f.type} value`,
    })
  if (f.clip?.min !== undefined && f.clip.max !== undefined && f.clip.min > f.clip.max)
    issues.push({path: `${path}.clip`, message: `min ${f.clip.min} is above max ${f.clip.max}`})
  transformsOf(f).forEach((t, j) => {
    if (
      typeof t === 'object' &&
      'minmax' in t &&
      t.minmax.min !== undefined &&
      t.minmax.max !== undefined &&
      t.minmax.min >= t.minmax.max
    ) {
      issues.push({
        path: `${transformPath(f, path, j)}.minmax`,
        message: `min ${t.minmax.min} must be below max ${t.minmax.max}`,
      })
    }
  })
  return issues
}

function isValidScalar(f: FeatureSpec, value: Scalar): boolean {
  const v = coerceFeatureValue(f, value)
  if (v === INVALID || v === MISSING || (typeof v === 'number' && Number.isNaN(v))) return false
  return !(f.categories && typeof v === 'string' && !f.categories.includes(v))
}

function transformPath(f: FeatureSpec, path: string, j: number): string {
  return Array.isArray(f.transform) ? `${path}.transform[${j}]` : `${path}.transform`
}

/** Field paths of the statistics this feature leaves to the reference data. */
function fitNeeds(f: FeatureSpec, path: string): string[] {
  const needs: string[] = []
  if (typeof f.impute === 'string') needs.push(`${path}.impute`)
  transformsOf(f).forEach((t, j) => {
    if (typeof t !== 'object') return
    if ('standardize' in t && (t.standardize.mean === undefined || t.standardize.std === undefined))
      needs.push(`${transformPath(f, path, j)}.standardize`)
    if ('minmax' in t && (t.minmax.min === undefined || t.minmax.max === undefined))
      needs.push(`${transformPath(f, path, j)}.minmax`)
  })
  if (isTextFeature(f) && f.encode && !encodeCategories(f) && !f.categories) needs.push(`${path}.encode`)
  return needs
}

/** Reads the reference records once, keeping only the columns something is fitted on. */
async function fitFeatures(features: FeatureSpec[], fits: string[][], reference: ReferenceRecords): Promise<void> {
  const targets = features.map((f, i) => ({f, i})).filter(({i}) => fits[i].length > 0)
  const columns = targets.map(() => [] as (number | string)[])
  const bad: string[] = []
  let row = 0
  for await (const record of reference as AsyncIterable<InputRecord>) {
    for (let t = 0; t < targets.length; t++) {
      const {f} = targets[t]
      const value = coerceFeatureValue(f, record[f.name])
      if (value === INVALID) {
        if (bad.length < SHOWN_BAD_VALUES)
          bad.push(`record ${row}, ${f.name}: ${describeValue(record[f.name])} is not a ${f.type}`)
      } else if (value !== MISSING) {
        // NaN (a missing number) is kept: imputation fills it before later steps are fitted.
        columns[t].push(value)
      }
    }
    row++
  }
  if (bad.length > 0)
    throw new UsageError(
      'REFERENCE_INVALID',
      `The reference data has values the pipeline cannot read:\n  ${bad.join('\n  ')}`,
      {
        hint: 'Fix those values in the data.reference file (or the feature types in mlops.yaml), then run "mlops package" again.',
      },
    )
  const empty: ConfigIssue[] = []
  targets.forEach(({f, i}, t) => {
    const path = `pipeline.features[${i}]`
    if (columns[t].every((v) => typeof v === 'number' && Number.isNaN(v)))
      empty.push({
        path,
        message: `the reference data has no values of "${f.name}" to fit ${fits[i].map((p) => p.slice(path.length + 1)).join(', ')} on`,
      })
    else fitFeature(f, columns[t])
  })
  if (empty.length > 0) throw new ConfigError(FILE, empty)
}

/** An encoding without its own categories uses the feature's (or the fitted) ones, so the artifact spells them out. */
function fillEncodeCategories(f: FeatureSpec, fitted?: string[]): void {
  const categories = f.categories ?? fitted
  if (!f.encode || !categories) return
  if ('onehot' in f.encode) f.encode.onehot.categories ??= categories
  else f.encode.index.categories ??= categories
}

/** Fills the feature's statistics in place, each step on the values after the steps before it (impute, clip, transforms). */
function fitFeature(f: FeatureSpec, column: (number | string)[]): void {
  if (isTextFeature(f)) {
    const texts = column as string[]
    if (f.impute === 'most_frequent') f.impute = {value: mostFrequent(texts), from: 'most_frequent'}
    if (f.encode && !encodeCategories(f)) fillEncodeCategories(f, categoriesOf(texts))
    return
  }
  let xs = column as number[]
  if (typeof f.impute === 'string') {
    const present = xs.filter((x) => !Number.isNaN(x))
    const value = f.impute === 'mean' ? mean(present) : f.impute === 'median' ? median(present) : mostFrequent(present)
    f.impute = {value, from: f.impute}
  }
  if (typeof f.impute === 'object') {
    const fill = f.impute.value as number
    xs = xs.map((x) => (Number.isNaN(x) ? fill : x))
  }
  const clip = compileClip(f.clip)
  if (clip) xs = xs.map(clip)
  const transforms = transformsOf(f)
  transforms.forEach((t, j) => {
    let filled: Transform = t
    if (typeof t === 'object' && 'standardize' in t)
      filled = {standardize: {mean: t.standardize.mean ?? mean(xs), std: t.standardize.std ?? std(xs)}}
    if (typeof t === 'object' && 'minmax' in t) {
      const range = minMax(xs)
      filled = {minmax: {min: t.minmax.min ?? range.min, max: t.minmax.max ?? range.max}}
    }
    transforms[j] = filled
    xs = xs.map(compileTransform(filled))
  })
  if (transforms.length > 0) f.transform = Array.isArray(f.transform) ? transforms : transforms[0]
}

// ---------- assemblies ----------

/** One [N,k] input takes every feature in order; several inputs take the feature of the same name. */
function deriveInputs(features: FeatureSpec[], signature: ModelSignature, issues: ConfigIssue[]): InputAssembly[] {
  if (signature.inputs.length === 1) return [{input: signature.inputs[0].name, features: features.map((f) => f.name)}]
  const names = signature.inputs.map((i) => i.name)
  features.forEach((f, i) => {
    if (!names.includes(f.name))
      issues.push({
        path: `pipeline.features[${i}].name`,
        message: `matches no model input (the model takes ${names.join(', ')}); add pipeline.inputs to say which input "${f.name}" feeds`,
      })
  })
  for (const input of signature.inputs) {
    if (!features.some((f) => f.name === input.name))
      issues.push({
        path: 'pipeline.features',
        message: `no feature feeds model input "${input.name}" (${input.dtype}${formatShape(input.shape)}); add a feature named "${input.name}", or pipeline.inputs`,
      })
  }
  return signature.inputs
    .filter((i) => features.some((f) => f.name === i.name))
    .map((i) => ({input: i.name, features: [i.name]}))
}

function checkAssemblies(
  assemblies: InputAssembly[],
  features: FeatureSpec[],
  signature: ModelSignature,
): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  const inputNames = signature.inputs.map((i) => i.name)
  const featureNames = new Set(features.map((f) => f.name))
  const fed = new Map<string, number>()
  const used = new Set<string>()
  assemblies.forEach((a, i) => {
    if (!inputNames.includes(a.input))
      issues.push({
        path: `pipeline.inputs[${i}].input`,
        message: `"${a.input}" is not a model input; the model takes ${inputNames.join(', ')}`,
      })
    else if (fed.has(a.input))
      issues.push({
        path: `pipeline.inputs[${i}].input`,
        message: `"${a.input}" is already fed by pipeline.inputs[${fed.get(a.input)}]; a model input takes one entry`,
      })
    else fed.set(a.input, i)
    a.features.forEach((name, j) => {
      if (!featureNames.has(name))
        issues.push({
          path: `pipeline.inputs[${i}].features[${j}]`,
          message: `"${name}" is not a feature; pipeline.features has ${[...featureNames].join(', ') || 'none'}`,
        })
      used.add(name)
    })
  })
  for (const input of signature.inputs) {
    if (!fed.has(input.name))
      issues.push({
        path: 'pipeline.inputs',
        message: `model input "${input.name}" (${input.dtype}${formatShape(input.shape)}) is fed by no entry`,
      })
  }
  features.forEach((f, i) => {
    if (!used.has(f.name))
      issues.push({
        path: `pipeline.features[${i}]`,
        message: `"${f.name}" feeds no model input; list it in pipeline.inputs or remove it`,
      })
  })
  return issues
}

/** Dtype and width of one assembly against its model input; fills tensor features' dtype and shape from the model. */
function checkInputFeeds(
  assembly: InputAssembly,
  input: TensorSpec,
  byName: Map<string, FeatureSpec>,
  all: FeatureSpec[],
  path: string,
  derived: boolean,
): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  const members = assembly.features.map((name) => byName.get(name)).filter((f): f is FeatureSpec => f !== undefined)
  const featurePath = (f: FeatureSpec) =>
    derived ? `pipeline.features[${all.indexOf(f)}]` : `${path}.features[${assembly.features.indexOf(f.name)}]`
  const listPath = derived ? 'pipeline.features' : `${path}.features`
  const model = `model input "${input.name}" (${input.dtype}${formatShape(input.shape)})`
  const tensors = members.filter((f) => f.type === 'tensor' || f.type === 'image')
  if (tensors.length > 0) {
    if (members.length > 1)
      return [{path: listPath, message: `tensor feature "${tensors[0].name}" must be the only feature of ${model}`}]
    return checkTensorFeature(tensors[0], input, `pipeline.features[${all.indexOf(tensors[0])}]`)
  }
  const rank = input.shape.length
  if (rank !== 1 && rank !== 2)
    return [
      {
        path: derived ? 'pipeline.features' : `${path}.input`,
        message: `${model} is not a table ([N] or [N,k]); feed it with one feature of type tensor`,
      },
    ]
  for (const f of members) {
    if (input.dtype === 'string') {
      if (!isTextFeature(f) || f.encode)
        issues.push({
          path: featurePath(f),
          message: `"${f.name}" (${f.type}${f.encode ? ', encoded' : ''}) cannot feed ${model}: a string input takes string or category features without encode`,
        })
    } else if (!feedsNumbers(f)) {
      issues.push({
        path: featurePath(f),
        message: `"${f.name}" (${f.type}) cannot feed ${model}: encode it (onehot or index), or feed a string input`,
      })
    } else if (input.dtype === 'bool' && f.type !== 'boolean') {
      issues.push({
        path: featurePath(f),
        message: `"${f.name}" (${f.type}) cannot feed ${model}: a bool input takes boolean features`,
      })
    } else if (INTEGER_DTYPES.has(input.dtype) && (f.type === 'number' || transformsOf(f).length > 0)) {
      issues.push({
        path: featurePath(f),
        message: `"${f.name}" gives fractional values but ${model} takes integers: use type integer and no transform`,
      })
    } else if (!FLOAT_DTYPES.has(input.dtype) && !INTEGER_DTYPES.has(input.dtype) && input.dtype !== 'bool') {
      issues.push({path: featurePath(f), message: `${model} has a dtype the pipeline cannot fill from features`})
    }
  }
  const widths = members.map(featureWidth)
  if (widths.some((w) => w === undefined)) return issues
  const k = (widths as number[]).reduce((a, b) => a + b, 0)
  const expected = rank === 1 ? 1 : input.shape[1]
  if (isFixed(expected) && k !== expected) {
    const parts = members.map((f, i) => (widths[i] === 1 ? f.name : `${f.name} one-hot: ${widths[i]}`)).join(', ')
    issues.push({
      path: listPath,
      message: `the features give ${k} column${k === 1 ? '' : 's'} (${parts}) but ${model} takes ${expected}`,
    })
  }
  return issues
}

function checkTensorFeature(f: FeatureSpec, input: TensorSpec, path: string): ConfigIssue[] {
  if (f.dtype !== undefined && f.dtype !== input.dtype)
    return [{path: `${path}.dtype`, message: `is ${f.dtype} but model input "${input.name}" is ${input.dtype}`}]
  const layout = tensorLayout(input)
  if (f.shape !== undefined) {
    const where =
      layout.mode === 'whole' && input.shape.length > 0
        ? ` (the first dimension, ${String(input.shape[0])}, is not a batch: a record holds the whole input)`
        : " (the model input's shape without the batch dimension)"
    const mismatch =
      f.shape.length !== layout.shape.length ||
      f.shape.some((d, i) => isFixed(d) && isFixed(layout.shape[i]) && d !== layout.shape[i])
    if (mismatch)
      return [
        {path: `${path}.shape`, message: `${formatShape(f.shape)} does not match ${formatShape(layout.shape)}${where}`},
      ]
  }
  f.dtype = input.dtype
  // A size the user fixed where the model allows any stays fixed: it is checked on every record.
  f.shape = layout.shape.map((d, i) => (isDynamic(d) && f.shape && isFixed(f.shape[i]) ? f.shape[i] : d))
  return []
}

// ---------- outputs ----------

function checkOutputs(outputs: OutputPostprocess[], signature: ModelSignature): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  const names = signature.outputs.map((o) => o.name)
  const keys = new Map<string, string>()
  const claim = (o: OutputPostprocess, path: string, classes: number | undefined) => {
    for (const key of outputKeys(o, classes)) {
      if (keys.get(key) === path)
        issues.push({path, message: `writes both the score and the label under "${key}"; set "as" to name the score`})
      else if (keys.has(key))
        issues.push({
          path,
          message: `writes "${key}" into each prediction, as ${keys.get(key)} does; set "as" on one of them`,
        })
      else keys.set(key, path)
    }
  }
  outputs.forEach((o, i) => {
    const path = `pipeline.outputs[${i}]`
    const spec = signature.outputs.find((s) => s.name === o.output)
    if (!spec) {
      issues.push({
        path: `${path}.output`,
        message: `"${o.output}" is not a model output; the model returns ${names.join(', ')}`,
      })
      return
    }
    if (!spec.isTensor) {
      issues.push({
        path: `${path}.output`,
        message: `"${o.output}" is a map or sequence (ZipMap) that onnxruntime-node cannot return; re-convert the model with zipmap=False, or post-process another output`,
      })
      return
    }
    if (o.image) {
      const decides = o.labels !== undefined || o.threshold !== undefined || o.top_k !== undefined
      issues.push(...checkOutputImage(o.image, spec, `${path}.image`, decides || (o.activation ?? 'none') !== 'none'))
      claim({output: o.output, as: o.as}, path, undefined)
      return
    }
    // Scores per record: everything after the batch dim ([N,1000,1,1] has 1000), when the model fixes it.
    const rest = (spec.shape ?? []).slice(1)
    const classes =
      spec.shape && spec.shape.length > 0 && rest.every(isFixed) ? rest.reduce((a, b) => a * b, 1) : undefined
    if (o.threshold !== undefined) {
      if (o.labels && o.labels.length !== 2)
        issues.push({
          path: `${path}.labels`,
          message: `a threshold decides between two labels [below, at or above]; got ${o.labels.length}`,
        })
      if (classes !== undefined && classes > 2)
        issues.push({
          path: `${path}.threshold`,
          message: `"${o.output}" has ${classes} scores per record; a threshold needs one score (or two classes)`,
        })
      if (o.top_k !== undefined)
        issues.push({path: `${path}.top_k`, message: 'does not go with threshold; use one of them'})
    } else if (o.labels && classes !== undefined && o.labels.length !== classes) {
      issues.push({
        path: `${path}.labels`,
        message: `"${o.output}" has ${classes} scores per record but ${o.labels.length} labels`,
      })
    }
    if (o.top_k !== undefined && classes !== undefined && o.top_k > classes)
      issues.push({path: `${path}.top_k`, message: `is ${o.top_k} but "${o.output}" has ${classes} scores per record`})
    claim(o, path, classes)
  })
  for (const s of signature.outputs) {
    if (!s.isTensor || outputs.some((o) => o.output === s.name)) continue
    if (keys.has(s.name))
      issues.push({
        path: keys.get(s.name)!,
        message: `writes "${s.name}", the name of another model output that passes through; set "as"`,
      })
  }
  return issues
}

/** Keys an output writes into each prediction (see postprocess.ts). */
function outputKeys(o: OutputPostprocess, classes: number | undefined): string[] {
  const key = o.as ?? o.output
  const decides = o.labels !== undefined || o.threshold !== undefined || o.top_k !== undefined
  if (!decides) return [key]
  if (o.threshold !== undefined && classes === 1) return [key, 'label']
  if (o.as !== undefined) return [o.as]
  return o.top_k === undefined ? ['label', 'score', 'probabilities'] : ['label', 'score', 'top_k']
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}
