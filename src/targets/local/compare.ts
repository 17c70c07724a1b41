// Compares the stable and candidate answers to one mirrored request: do they agree, did a label flip, how far apart are scores.
export interface AnswerComparison {
  agree: boolean
  /** A string, boolean or integer output differs, or the answers differ in shape or status. */
  labelFlip: boolean
  /** Largest absolute difference between two float outputs. */
  scoreDiff: number
}

const FLOAT_TYPES = new Set(['FP16', 'FP32', 'FP64', 'BF16'])

/**
 * `tolerance` is relative: two scores agree when |a - b| <= tolerance * max(1, |a|, |b|). Bodies are the JSON texts of
 * /v1/predict ({predictions}) or /v2 infer ({outputs}) answers; anything else is compared as JSON values.
 */
export function compareAnswers(
  stable: {status: number; body: string},
  candidate: {status: number; body: string},
  tolerance: number,
): AnswerComparison {
  if (stable.status !== candidate.status) return {agree: false, labelFlip: true, scoreDiff: 0}
  let a: unknown
  let b: unknown
  try {
    a = JSON.parse(stable.body)
    b = JSON.parse(candidate.body)
  } catch {
    const same = stable.body === candidate.body
    return {agree: same, labelFlip: !same, scoreDiff: 0}
  }
  const state = {labelFlip: false, scoreDiff: 0, disagree: false, tolerance}
  const outputsA = (a as {outputs?: unknown})?.outputs
  const outputsB = (b as {outputs?: unknown})?.outputs
  if (Array.isArray(outputsA) && Array.isArray(outputsB)) compareV2(outputsA, outputsB, state)
  else walk(pick(a), pick(b), false, state)
  return {agree: !state.disagree, labelFlip: state.labelFlip, scoreDiff: state.scoreDiff}
}

interface Walk {
  labelFlip: boolean
  scoreDiff: number
  disagree: boolean
  tolerance: number
}

/** The predictions of a v1 answer; the rest (model name, version) differs between versions by design. */
function pick(value: unknown): unknown {
  const predictions = (value as {predictions?: unknown})?.predictions
  return predictions === undefined ? value : predictions
}

function compareV2(a: unknown[], b: unknown[], state: Walk): void {
  const byName = new Map(b.map((o) => [(o as {name?: string}).name, o as {datatype?: string; data?: unknown}]))
  for (const output of a as {name?: string; datatype?: string; data?: unknown}[]) {
    const other = byName.get(output.name)
    if (!other || other.datatype !== output.datatype) {
      flip(state)
      continue
    }
    walk(output.data, other.data, !FLOAT_TYPES.has(output.datatype ?? ''), state)
  }
  if (b.length !== a.length) flip(state)
}

function walk(a: unknown, b: unknown, label: boolean, state: Walk): void {
  if (typeof a === 'number' && typeof b === 'number') {
    if (label || (Number.isInteger(a) && Number.isInteger(b))) {
      if (a !== b) flip(state)
      return
    }
    const diff = Math.abs(a - b)
    state.scoreDiff = Math.max(state.scoreDiff, diff)
    if (diff > state.tolerance * Math.max(1, Math.abs(a), Math.abs(b))) state.disagree = true
    return
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return flip(state)
    for (let i = 0; i < a.length; i++) walk(a[i], b[i], label, state)
    return
  }
  if (
    a !== null &&
    b !== null &&
    typeof a === 'object' &&
    typeof b === 'object' &&
    !Array.isArray(a) &&
    !Array.isArray(b)
  ) {
    const keys = Object.keys(a)
    if (keys.length !== Object.keys(b).length) return flip(state)
    for (const key of keys) {
      if (!(key in b)) return flip(state)
      walk((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key], label, state)
    }
    return
  }
  if (a !== b) flip(state)
}

function flip(state: Walk): void {
  state.labelFlip = true
  state.disagree = true
}
