// What a model accepts, learned by running it: sizes of dynamic dimensions, integer ranges, which columns take a missing value.
import type {LoadedModel, ModelSignature, TensorSpec} from './signature.js'
import {isDynamic} from './signature.js'
import {type Dtype, type OrtTensor, elementCount, makeTensor, tensorNumbers} from './tensor.js'

/** Generates seeded inputs for the given shapes with integers drawn from [0, intMax]. */
export type FeedMaker = (shapes: Record<string, number[]>, intMax: number) => Record<string, OrtTensor>

export interface AxisFinding {
  input: string
  axis: number
  /** The smallest size that ran (of those tried). */
  min: number
  /** Whether larger sizes than the base ran too; false with min equal to the base means the model takes one size only. */
  larger: boolean
}

export interface ProbeFindings {
  /** Inputs that ran, and what the model answered to them; undefined when nothing tried ran. */
  working?: {shapes: Record<string, number[]>; intMax: number; feeds: Record<string, OrtTensor>}
  outputs: Record<string, OrtTensor>
  /** The first error of the first attempt, when nothing ran. */
  error?: string
  /** Whether a batch of two ran (only asked when the first dimension is dynamic). */
  batchOfTwo?: boolean
  axes: AxisFinding[]
  /** Float columns (input → per column) that take NaN with finite answers; string columns that take "". */
  missingOk: Record<string, boolean[]>
  /** What was tried, for the user: "sizes 64 → 512 for input", "integers 0–0 for idx". */
  notes: string[]
}

const INTEGER_DTYPES = new Set<Dtype>(['int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64'])
const FLOAT_DTYPES = new Set<Dtype>(['float16', 'float32', 'float64'])
/**
 * Sizes tried for dynamic dimensions when the defaults do not run: 1 for a dimension that is a batch in disguise (a
 * recurrent state), longer ones for audio and sequence models that need a minimum length. undefined is the default.
 */
const SIZES = [undefined, 1, 128, 256, 512, 1024, 2048, 4096, 16_000]
/** Past this many free axes only the same size for all is tried (the combinations grow as 9^axes). */
const MAX_COMBINED_AXES = 3
/** Sizes 2…this many are tried one by one when no size above runs. */
const SCANNED_SIZES = 512

/** Size choices per free axis, simplest first: defaults, then one axis changed, then more, smaller sizes first. */
function sizeCombinations(axes: number): (number | undefined)[][] {
  if (axes === 0) return [[]]
  const uniform = (size: number | undefined) => Array.from({length: axes}, () => size)
  // A dimension that must be one exact size (a model needing 20 columns) is found by trying every small size.
  const scan = Array.from({length: SCANNED_SIZES}, (_, i) => uniform(i + 2))
  if (axes > MAX_COMBINED_AXES) return [...SIZES.map(uniform), ...scan]
  let combos: number[][] = [[]]
  for (let a = 0; a < axes; a++) combos = combos.flatMap((c) => SIZES.map((_, i) => [...c, i]))
  const cost = (c: number[]) => c.reduce((sum, i) => sum + i, 0) * 100 + Math.max(...c)
  return [...combos.sort((a, b) => cost(a) - cost(b)).map((c) => c.map((i) => SIZES[i])), ...scan]
}
/** Past this many elements per attempt probing stops growing: a golden case holds every value. */
const MAX_ELEMENTS = 4_000_000
/** A bound on the time probing may take, so a slow model still gets a project. */
const BUDGET_MS = 20_000

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0].slice(0, 300)
}

function finite(outputs: Record<string, OrtTensor>): boolean {
  for (const tensor of Object.values(outputs)) {
    if (!FLOAT_DTYPES.has(tensor.type as Dtype)) continue
    for (const v of tensorNumbers(tensor)) if (!Number.isFinite(v)) return false
  }
  return true
}

/** The dynamic, non-batch axes the caller did not fix, by input: these are the ones probing may resize. */
function freeAxes(signature: ModelSignature, fixed: ReadonlySet<string>): {input: TensorSpec; axis: number}[] {
  const axes: {input: TensorSpec; axis: number}[] = []
  for (const input of signature.inputs) {
    if (fixed.has(input.name)) continue
    input.shape.forEach((dim, axis) => {
      if (axis > 0 && isDynamic(dim)) axes.push({input, axis})
    })
  }
  return axes
}

/** Shapes with every axis sharing a dimension name (or the given axis itself) set to `size`. */
function resized(
  signature: ModelSignature,
  shapes: Record<string, number[]>,
  targets: readonly {input: TensorSpec; axis: number}[],
  size: number,
): Record<string, number[]> {
  const out = Object.fromEntries(Object.entries(shapes).map(([k, v]) => [k, [...v]]))
  for (const {input, axis} of targets) {
    out[input.name][axis] = size
    const name = input.shape[axis]
    if (typeof name === 'string' && name)
      for (const other of signature.inputs)
        other.shape.forEach((d, i) => {
          if (d === name) out[other.name][i] = size
        })
  }
  return out
}

function totalElements(shapes: Record<string, number[]>): number {
  return Object.values(shapes).reduce((sum, s) => sum + elementCount(s), 0)
}

/** Copies a feed with one column (rank-2 inputs) or the whole of a rank-1 input set to NaN or "". */
function withMissing(tensor: OrtTensor, column: number): OrtTensor {
  const dims = [...tensor.dims]
  const width = dims.length === 2 ? dims[1] : 1
  if (tensor.type === 'string') {
    const data = [...(tensor.data as string[])]
    for (let i = column; i < data.length; i += width) data[i] = ''
    return makeTensor('string', data, dims)
  }
  const data = (tensor.data as Float32Array).slice()
  for (let i = column; i < data.length; i += width) data[i] = Number.NaN
  return makeTensor(tensor.type as Dtype, data, dims)
}

export interface ProbeOptions {
  /** Shapes to start from (batch included): the defaults, or the user's --shape. */
  shapes: Record<string, number[]>
  /** Inputs whose shape the user gave: never resized. */
  fixed: ReadonlySet<string>
  makeFeeds: FeedMaker
  /** Real inputs (from --sample) to try first: what they answer is what the user's data looks like. */
  base?: Record<string, OrtTensor>
  now?: () => number
}

/**
 * Runs the model on generated inputs until something runs (fewer integer values, longer dynamic dimensions), then on
 * neighbours of what ran (a batch of two, smaller and larger sizes of each dynamic dimension, a missing value per column).
 */
export async function probeModel(model: LoadedModel, options: ProbeOptions): Promise<ProbeFindings> {
  const now = options.now ?? (() => performance.now())
  const started = now()
  const signature = model.signature
  const findings: ProbeFindings = {outputs: {}, axes: [], missingOk: {}, notes: []}
  const run = async (feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor> | string> => {
    try {
      return await model.session.run(feeds, model.fetches, {logSeverityLevel: 4})
    } catch (error) {
      return firstLine(error)
    }
  }
  const hasIntegers = signature.inputs.some((i) => INTEGER_DTYPES.has(i.dtype))
  const intMaxes = hasIntegers ? [9, 1, 0] : [9]
  const free = freeAxes(signature, options.fixed)
  const base = options.base && (await run(options.base))
  if (options.base && base && typeof base !== 'string') {
    const shapes = Object.fromEntries(Object.entries(options.base).map(([k, t]) => [k, [...t.dims]]))
    findings.working = {shapes, intMax: 9, feeds: options.base}
    findings.outputs = base
  }
  search: for (const combo of findings.working ? [] : sizeCombinations(free.length)) {
    let shapes = options.shapes
    combo.forEach((size, i) => {
      if (size !== undefined) shapes = resized(signature, shapes, [free[i]], size)
    })
    if (totalElements(shapes) > MAX_ELEMENTS) continue
    for (const intMax of intMaxes) {
      const feeds = options.makeFeeds(shapes, intMax)
      const answer = await run(feeds)
      if (typeof answer === 'string') {
        findings.error ??= answer
        if (now() - started > BUDGET_MS) break search
        continue
      }
      findings.working = {shapes, intMax, feeds}
      findings.outputs = answer
      if (combo.some((size) => size !== undefined))
        findings.notes.push('dynamic dimensions resized: the model did not run on the default sizes')
      if (intMax < 9) findings.notes.push(`integer inputs kept within 0–${intMax} (the model refused 0–9)`)
      break search
    }
  }
  const working = findings.working
  if (!working) return findings
  const within = () => now() - started <= BUDGET_MS
  const runs = async (shapes: Record<string, number[]>) =>
    totalElements(shapes) <= MAX_ELEMENTS && typeof (await run(options.makeFeeds(shapes, working.intMax))) !== 'string'

  if (signature.inputs.length > 0 && signature.inputs.every((i) => i.shape.length > 0 && isDynamic(i.shape[0]))) {
    const two = Object.fromEntries(Object.entries(working.shapes).map(([k, s]) => [k, [2, ...s.slice(1)]]))
    findings.batchOfTwo = await runs(two)
  }

  for (const target of free) {
    if (!within()) break
    const base = working.shapes[target.input.name][target.axis]
    let min = base
    for (let size = Math.floor(base / 2); size >= 1 && within(); size = Math.floor(size / 2)) {
      if (!(await runs(resized(signature, working.shapes, [target], size)))) break
      min = size
    }
    // Between the last size that failed and the smallest that ran: halve the gap a few times.
    let failed = Math.floor(min / 2)
    for (let step = 0; step < 6 && failed + 1 < min && within(); step++) {
      const mid = Math.floor((failed + min) / 2)
      if (await runs(resized(signature, working.shapes, [target], mid))) min = mid
      else failed = mid
    }
    // Too large to try is not evidence of a fixed size.
    const bigger = resized(signature, working.shapes, [target], base * 2)
    const larger = totalElements(bigger) > MAX_ELEMENTS || (await runs(bigger))
    findings.axes.push({input: target.input.name, axis: target.axis, min, larger})
  }

  for (const input of signature.inputs) {
    const missingFits = FLOAT_DTYPES.has(input.dtype) || input.dtype === 'string'
    if (!missingFits || input.shape.length < 1 || input.shape.length > 2) continue
    const tensor = working.feeds[input.name]
    const columns = tensor.dims.length === 2 ? tensor.dims[1] : 1
    if (columns > 256) continue
    const ok: boolean[] = []
    for (let column = 0; column < columns; column++) {
      if (!within()) {
        ok.push(false)
        continue
      }
      const answer = await run({...working.feeds, [input.name]: withMissing(tensor, column)})
      ok.push(typeof answer !== 'string' && finite(answer))
    }
    findings.missingOk[input.name] = ok
  }
  return findings
}
