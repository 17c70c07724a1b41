// What an ONNX model takes and returns, read through onnxruntime-node, and whether Node can serve it.
import {statSync} from 'node:fs'

import * as ort from 'onnxruntime-node'

import {MlopsError, UsageError, errorMessage} from '../errors.js'
import {colorAllowed} from '../system/terminal.js'
import {optionalTensorInputs} from './onnx-inputs.js'
import {type Dim, type Dtype, type OrtTensor, elementCount, isSupportedDtype} from './tensor.js'

export type {Dim} from './tensor.js'

export interface TensorSpec {
  name: string
  dtype: Dtype
  shape: Dim[]
}

export interface OutputSpec {
  name: string
  isTensor: boolean
  dtype?: Dtype
  shape?: Dim[]
}

export interface ModelSignature {
  inputs: TensorSpec[]
  outputs: OutputSpec[]
}

export interface LoadedModel {
  session: ort.InferenceSession
  signature: ModelSignature
  /** Tensor outputs: what `session.run` is asked for, so non-tensor (ZipMap) outputs are skipped. */
  fetches: string[]
  warnings: string[]
  loadMs: number
}

export class ModelUnsupportedError extends MlopsError {
  constructor(message: string, hint: string) {
    super('MODEL_UNSUPPORTED', message, {exitCode: 1, hint})
  }
}

export function isDynamic(dim: Dim): boolean {
  return typeof dim !== 'number' || dim < 0
}

/** Every input and tensor output has a dynamic first dimension (and rank ≥ 1): requests can be stacked into one run. */
export function supportsBatching(signature: ModelSignature): boolean {
  const tensors: {shape?: Dim[]}[] = [...signature.inputs, ...signature.outputs.filter((o) => o.isTensor)]
  return tensors.every((t) => t.shape !== undefined && t.shape.length > 0 && isDynamic(t.shape[0]))
}

export function formatShape(shape: readonly Dim[]): string {
  return `[${shape.map((d) => (typeof d === 'number' ? String(d) : d || '?')).join(',')}]`
}

type Meta = {name: string; isTensor: boolean; type?: string; shape?: (number | string)[]}

function readSignature(session: ort.InferenceSession): ModelSignature {
  const inputs = (session.inputMetadata as unknown as Meta[]).map((m) => ({
    name: m.name,
    isTensor: m.isTensor,
    dtype: m.type,
    shape: m.shape,
  }))
  const outputs = (session.outputMetadata as unknown as Meta[]).map((m) => ({
    name: m.name,
    isTensor: m.isTensor,
    dtype: m.type,
    shape: m.shape,
  }))
  return {
    inputs: inputs.map((i) => ({name: i.name, dtype: i.dtype as Dtype, shape: i.shape ?? []})),
    outputs: outputs.map((o) =>
      o.isTensor
        ? {name: o.name, isTensor: true, dtype: o.dtype as Dtype, shape: o.shape ?? []}
        : {name: o.name, isTensor: false},
    ),
  }
}

/** Refuses what onnxruntime-node cannot feed or read back, and lists what it will leave out. */
export function servability(signature: ModelSignature, rawInputs: Meta[]): {errors: string[]; warnings: string[]} {
  const errors: string[] = []
  const warnings: string[] = []
  for (const input of rawInputs) {
    if (!input.isTensor)
      errors.push(`input "${input.name}" is a map or sequence: onnxruntime-node can only feed tensors`)
    else if (!isSupportedDtype(input.type ?? ''))
      errors.push(`input "${input.name}" has dtype ${input.type}, which onnxruntime-node cannot feed`)
  }
  for (const output of signature.outputs) {
    if (!output.isTensor)
      warnings.push(
        `output "${output.name}" is not a tensor (a ZipMap map/sequence): onnxruntime-node cannot return it, so it is left out. Re-convert the model with skl2onnx options {zipmap: False} to serve the probabilities.`,
      )
    else if (!isSupportedDtype(output.dtype ?? ''))
      errors.push(
        `output "${output.name}" has dtype ${output.dtype}: onnxruntime-node cannot return it (int4/uint4 outputs abort the process)`,
      )
  }
  if (signature.outputs.every((o) => !o.isTensor))
    errors.push('the model has no tensor outputs that onnxruntime-node can return')
  return {errors, warnings}
}

const LOAD_FAILURES: {pattern: RegExp; message: string; hint: string}[] = [
  {
    pattern: /Unsupported data type/i,
    message: 'uses a tensor type onnxruntime-node cannot represent (bfloat16, float8, float4, int2, uint2 or complex)',
    hint: 'Convert those inputs/outputs to float32 (or float16) before exporting.',
  },
  {
    pattern: /Failed to construct locale/i,
    message: 'needs the en_US.UTF-8 locale (a StringNormalizer op), which this machine lacks',
    hint: 'On Debian: apt-get install -y locales && sed -i "s/^# *en_US.UTF-8/en_US.UTF-8/" /etc/locale.gen && locale-gen',
  },
  {
    pattern: /Current official support for domain .* is till opset/i,
    message: 'uses an opset newer than onnxruntime-node supports',
    hint: 'Export the model with a lower opset (opset ≤ 26 for ai.onnx).',
  },
  {
    pattern: /Could not find an implementation for/i,
    message:
      'uses an operator version onnxruntime-node does not implement (very old opsets such as Add-6 are unsupported)',
    hint: 'Re-export the model with a newer opset, or run onnx.version_converter on it.',
  },
  {
    pattern: /is not a registered function\/op|No Op registered/i,
    message: 'uses a custom operator domain (e.g. onnxruntime-extensions) that onnxruntime-node does not have',
    hint: 'Move the custom pre-processing out of the graph into the mlops pipeline, or export without custom ops.',
  },
  {
    pattern: /protobuf parsing failed|Load model from .* failed|Failed to load model/i,
    message: 'is not a readable ONNX model (corrupt or not ONNX)',
    hint: 'Check that the file is the .onnx (or .ort) export of your model, not a pickle or a truncated copy.',
  },
]

export interface LoadOptions {
  intraOpThreads?: number
  interOpThreads?: number
  /**
   * Whether onnxruntime's idle pool threads spin waiting for the next run (its default): lower latency for a model that
   * uses the pool, at the price of cores kept busy between runs. Off where processes share the machine.
   */
  spinning?: boolean
}

export async function loadModel(path: string, options: LoadOptions = {}): Promise<LoadedModel> {
  // onnxruntime answers a folder with text about its "model package API": say what is wrong in our words.
  if (statSync(path, {throwIfNoEntry: false})?.isDirectory())
    throw new UsageError('MODEL_NOT_A_FILE', `the model ${path} is a directory, not an .onnx file`, {
      hint: 'Point model.path in mlops.yaml (or --model) at the .onnx file in it.',
    })
  const started = performance.now()
  let session: ort.InferenceSession
  try {
    // onnxruntime-node refuses an explicit undefined thread count, so only set what was given.
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      logSeverityLevel: ortLogSeverity(),
      graphOptimizationLevel: 'all',
    }
    if (options.intraOpThreads !== undefined) sessionOptions.intraOpNumThreads = options.intraOpThreads
    if (options.interOpThreads !== undefined) sessionOptions.interOpNumThreads = options.interOpThreads
    if (options.spinning === false)
      sessionOptions.extra = {session: {intra_op: {allow_spinning: '0'}, inter_op: {allow_spinning: '0'}}}
    session = await ort.InferenceSession.create(path, sessionOptions)
  } catch (error) {
    const text = errorMessage(error)
    const known = LOAD_FAILURES.find((f) => f.pattern.test(text))
    if (known) throw new ModelUnsupportedError(`The model ${path} ${known.message}: ${firstLine(text)}`, known.hint)
    if (/ENOENT|No such file|does not exist/i.test(text))
      throw new MlopsError('MODEL_NOT_FOUND', `The model file ${path} does not exist`, {
        exitCode: 2,
        hint: 'Check model.path in mlops.yaml.',
      })
    throw new ModelUnsupportedError(
      `onnxruntime-node could not load ${path}: ${firstLine(text)}`,
      'Check that the model loads in onnxruntime 1.30 (python -c "import onnxruntime as o; o.InferenceSession(PATH)").',
    )
  }
  const loadMs = performance.now() - started
  const signature = readSignature(session)
  const raw = [...(session.inputMetadata as unknown as Meta[])]
  if (raw.some((m) => !m.isTensor)) {
    // onnxruntime-node reports an optional(tensor) input without its type, yet feeds a plain tensor to it.
    const optional = await optionalTensorInputs(path)
    raw.forEach((meta, i) => {
      const tensor = optional.get(meta.name)
      if (meta.isTensor || !tensor) return
      raw[i] = {...meta, isTensor: true, type: tensor.dtype, shape: tensor.shape}
      signature.inputs[i] = {name: meta.name, dtype: tensor.dtype, shape: tensor.shape}
    })
  }
  const {errors, warnings} = servability(signature, raw)
  if (errors.length > 0) {
    await session.release().catch(() => undefined)
    throw new ModelUnsupportedError(
      `The model ${path} cannot be served from Node: ${errors.join('; ')}`,
      'Re-export the model with tensor inputs and outputs of supported types (float32, float16, float64, int8–int64, uint8–uint64, bool, string).',
    )
  }
  const fetches = signature.outputs.filter((o) => o.isTensor).map((o) => o.name)
  return {session, signature, fetches, warnings, loadMs}
}

/**
 * onnxruntime writes its log lines to stderr in red, terminal or not. Its errors come back as the exception too, which
 * mlops reports in its own words; so under NO_COLOR only fatal lines are left (3: errors, 4: fatal).
 */
function ortLogSeverity(): 3 | 4 {
  if (colorAllowed()) return 3
  // The environment's own logger (created with the first session) likewise.
  ort.env.logLevel = 'fatal'
  return 4
}

function firstLine(text: string): string {
  return text.split('\n')[0].slice(0, 400)
}

export interface FeedIssue {
  field: string
  message: string
}

/** Checks feeds against the signature before ORT sees them, so a client mistake becomes a 400 that names the input. */
export function checkFeeds(signature: ModelSignature, feeds: Record<string, OrtTensor>): FeedIssue[] {
  const issues: FeedIssue[] = []
  const names = new Set(signature.inputs.map((i) => i.name))
  for (const name of Object.keys(feeds))
    if (!names.has(name)) issues.push({field: name, message: `unknown input; the model takes ${[...names].join(', ')}`})
  for (const spec of signature.inputs) {
    const tensor = feeds[spec.name]
    if (!tensor) {
      issues.push({field: spec.name, message: `missing input (${spec.dtype}${formatShape(spec.shape)})`})
      continue
    }
    if (tensor.type !== spec.dtype)
      issues.push({field: spec.name, message: `dtype ${tensor.type} does not match the model's ${spec.dtype}`})
    if (tensor.dims.length !== spec.shape.length) {
      issues.push({
        field: spec.name,
        message: `rank ${tensor.dims.length} (shape [${tensor.dims.join(',')}]) does not match the model's ${formatShape(spec.shape)}`,
      })
      continue
    }
    spec.shape.forEach((dim, i) => {
      if (!isDynamic(dim) && tensor.dims[i] !== dim)
        issues.push({
          field: spec.name,
          message: `dimension ${i} is ${tensor.dims[i]} but the model needs ${dim} (shape ${formatShape(spec.shape)})`,
        })
    })
  }
  return issues
}

export async function runModel(
  model: LoadedModel,
  feeds: Record<string, OrtTensor>,
  runOptions?: ort.InferenceSession.RunOptions,
): Promise<Record<string, OrtTensor>> {
  return await model.session.run(feeds, model.fetches, runOptions)
}

export {elementCount}
