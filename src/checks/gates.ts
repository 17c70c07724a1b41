// A gate: one measured value against one threshold, with a verdict; too little data is "inconclusive", never "passed".
import type {CheckName} from './config.js'

export type GateVerdict = 'passed' | 'failed' | 'inconclusive'

export interface Gate {
  check: CheckName
  /** Stable within a check, e.g. `error_rate`, `p99 <= 50ms at 200 rps`, `golden`. */
  name: string
  verdict: GateVerdict
  /** null when nothing could be measured. */
  measured: number | null
  threshold: number
  comparison: '<=' | '>='
  unit: string
  /** One line: the measured value against the threshold, or why there is no verdict. */
  message: string
}

export interface GateInput {
  check: CheckName
  name: string
  measured: number | null
  threshold: number
  comparison: '<=' | '>='
  unit: string
  /** Set when the data is too thin for a verdict: the reason. */
  inconclusive?: string
  /** Set when a failed measurement may be the client's doing: the reason (a failure becomes inconclusive). */
  doubt?: string
}

export function gate(input: GateInput): Gate {
  const {check, name, measured, threshold, comparison, unit} = input
  const shown = (v: number) => `${formatValue(v, unit)}`
  if (input.inconclusive !== undefined || measured === null) {
    return {
      check,
      name,
      verdict: 'inconclusive',
      measured,
      threshold,
      comparison,
      unit,
      message: `inconclusive: ${input.inconclusive ?? 'nothing was measured'}`,
    }
  }
  const ok = comparison === '<=' ? measured <= threshold : measured >= threshold
  const relation = `${shown(measured)} ${ok ? comparison : comparison === '<=' ? '>' : '<'} ${shown(threshold)}`
  if (ok) return {check, name, verdict: 'passed', measured, threshold, comparison, unit, message: relation}
  if (input.doubt)
    return {
      check,
      name,
      verdict: 'inconclusive',
      measured,
      threshold,
      comparison,
      unit,
      message: `inconclusive: ${relation}, but ${input.doubt}`,
    }
  return {check, name, verdict: 'failed', measured, threshold, comparison, unit, message: relation}
}

export function formatValue(value: number, unit: string): string {
  if (unit === 'ratio') return `${Number((value * 100).toPrecision(3))}%`
  const v = Number(value.toPrecision(4))
  return unit === '' ? String(v) : unit === 'ms' ? `${v} ms` : `${v} ${unit}`
}

/** Every gate passed: the one rule behind exit code 0. Inconclusive and failed gates both make it false. */
export function allPassed(gates: readonly Gate[]): boolean {
  return gates.length > 0 && gates.every((g) => g.verdict === 'passed')
}
