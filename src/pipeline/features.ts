// Per-feature functions compiled once: a record value to the numbers (or string) it writes into its model input, or a problem to report.
import {INVALID, MISSING, describeValue, toBoolean, toInteger, toNumber, toText} from './coerce.js'
import type {FeatureSpec} from './spec.js'
import {FLOAT32_MAX} from './layout.js'
import {compileSteps} from './steps.js'

export type NumberSink = {[index: number]: number}
export type TextSink = {[index: number]: string}

/** Writes the feature's columns at `offset`; returns a message when the value cannot be used (nothing else is reported). */
export type Writer<S> = (value: unknown, out: S, offset: number) => string | undefined

export type CompiledFeature =
  | {name: string; kind: 'numbers'; width: number; write: Writer<NumberSink>}
  | {name: string; kind: 'text'; width: 1; write: Writer<TextSink>}

/** Required unless a default or an imputed value stands in for a missing one. */
export function isRequired(f: FeatureSpec): boolean {
  return f.required ?? (f.default === undefined && f.impute === undefined)
}

/** The value a missing one becomes (impute wins over default), coerced to the feature type. */
function fillValue(f: FeatureSpec): unknown {
  return typeof f.impute === 'object' ? f.impute.value : f.default
}

const SHOWN_CATEGORIES = 12

function listOf(values: readonly string[]): string {
  const shown = values.slice(0, SHOWN_CATEGORIES).join(', ')
  return values.length > SHOWN_CATEGORIES ? `${shown}, … (${values.length} in all)` : shown
}

const EXPECTED: Record<string, string> = {
  number: 'a number (or null or "NaN" when missing)',
  integer: 'an integer',
  boolean: 'true or false',
}

/**
 * `nanAllowed` is false for features feeding integer or bool inputs, which have no NaN:
 * a missing value there needs a default or impute even when the feature is optional.
 */
export function compileFeature(f: FeatureSpec, nanAllowed: boolean): CompiledFeature {
  return f.type === 'string' || f.type === 'category'
    ? compileText(f)
    : {name: f.name, kind: 'numbers', width: 1, write: compileNumeric(f, nanAllowed)}
}

function compileNumeric(f: FeatureSpec, nanAllowed: boolean): Writer<NumberSink> {
  const coerce = f.type === 'integer' ? toInteger : f.type === 'boolean' ? toBoolean : toNumber
  const rawFill = fillValue(f)
  const fill = rawFill === undefined ? undefined : (coerce(rawFill) as number)
  const required = isRequired(f)
  const steps = compileSteps(f)
  const expected = EXPECTED[f.type]
  const finiteOnly = f.type === 'number' && f.allow_non_finite !== true
  const missing = required
    ? 'is required (null, "" and "NaN" count as missing)'
    : 'is missing, and the model input takes integers (no NaN): give the feature an impute or default'
  return (value, out, offset) => {
    let x = coerce(value)
    if (x === INVALID) return `expected ${expected}, got ${describeValue(value)}`
    if (finiteOnly && (x === Infinity || x === -Infinity || Math.abs(x) > FLOAT32_MAX))
      return `${describeValue(value)} is not a finite number within the float32 range (set allow_non_finite: true on the feature to take it)`
    if (x !== x) {
      if (fill !== undefined) x = fill
      else if (required || !nanAllowed) return missing
      else {
        out[offset] = Number.NaN
        return undefined
      }
    }
    if (steps) {
      const y = steps(x)
      if (y !== y)
        return `${x} is outside the domain of the transform (log of a negative number?); clip it in mlops.yaml`
      x = y
    }
    out[offset] = x
    return undefined
  }
}

function compileText(f: FeatureSpec): CompiledFeature {
  const rawFill = fillValue(f)
  const fill = rawFill === undefined ? undefined : (toText(rawFill) as string)
  const required = isRequired(f)
  const allowed = f.categories ? new Set(f.categories) : undefined
  const notAllowed = (s: string) => `${JSON.stringify(s)} is not one of the categories: ${listOf(f.categories!)}`
  /** The text, undefined for an allowed missing value, or a problem (as {problem}). */
  const read = (value: unknown): string | undefined | {problem: string} => {
    let s = toText(value)
    if (s === INVALID) return {problem: `expected a string, got ${describeValue(value)}`}
    if (s === MISSING) {
      if (fill === undefined) return required ? {problem: 'is required (null and "" count as missing)'} : undefined
      s = fill
    }
    if (allowed && !allowed.has(s)) return {problem: notAllowed(s)}
    return s
  }
  const encode = f.encode
  if (!encode) {
    return {
      name: f.name,
      kind: 'text',
      width: 1,
      write(value, out, offset) {
        const s = read(value)
        if (typeof s === 'object') return s.problem
        out[offset] = s ?? ''
        return undefined
      },
    }
  }
  const categories = ('onehot' in encode ? encode.onehot.categories : encode.index.categories) ?? []
  const codes = new Map(categories.map((c, i) => [c, i]))
  const unknownCategory = (s: string) => `${JSON.stringify(s)} is not a known category: ${listOf(categories)}`
  if ('onehot' in encode) {
    const width = categories.length
    const strict = encode.onehot.unknown === 'error'
    return {
      name: f.name,
      kind: 'numbers',
      width,
      write(value, out, offset) {
        const s = read(value)
        if (typeof s === 'object') return s.problem
        for (let j = 0; j < width; j++) out[offset + j] = 0
        if (s === undefined) return undefined
        const code = codes.get(s)
        if (code !== undefined) out[offset + code] = 1
        else if (strict) return unknownCategory(s)
        return undefined
      },
    }
  }
  const unknown = encode.index.unknown ?? -1
  return {
    name: f.name,
    kind: 'numbers',
    width: 1,
    write(value, out, offset) {
      const s = read(value)
      if (typeof s === 'object') return s.problem
      const code = s === undefined ? undefined : codes.get(s)
      if (code !== undefined) out[offset] = code
      else if (unknown === 'error')
        return s === undefined
          ? 'is missing, and index encoding with unknown: error has no code for it'
          : unknownCategory(s)
      else out[offset] = unknown
      return undefined
    },
  }
}
