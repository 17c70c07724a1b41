// Shared by the monitor tests: seeded samples, SciPy through /usr/bin/python3, and profiles built the way `mlops package` builds them.
import {execa} from 'execa'

import type {ReferenceProfile} from '../../src/artifact/types.js'
import {RecordProfiler, type ValueKind} from '../../src/monitor/profile.js'

/** Debian's python3 has scipy; the first python3 on PATH may not. */
export async function scipy<T>(script: string, input: unknown): Promise<T> {
  const {stdout} = await execa('/usr/bin/python3', ['-c', script], {input: JSON.stringify(input)})
  return JSON.parse(stdout) as T
}

/** A seeded source of uniform (mulberry32), normal (Box–Muller) and weighted categorical values. */
export function random(seed: number): {
  uniform: () => number
  normal: () => number
  pick: <T>(items: readonly T[], weights: readonly number[]) => T
} {
  let a = seed >>> 0
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296
  }
  const normal = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform())
  const pick = <T>(items: readonly T[], weights: readonly number[]) => {
    let u = uniform() * weights.reduce((s, w) => s + w, 0)
    for (let i = 0; i < items.length; i++) if ((u -= weights[i]) <= 0) return items[i]
    return items.at(-1)!
  }
  return {uniform, normal, pick}
}

export function profileOf(
  records: Record<string, unknown>[],
  kinds: Record<string, ValueKind>,
  source = 'generated',
): ReferenceProfile {
  const profiler = new RecordProfiler(kinds)
  for (const r of records) profiler.add(r)
  return {rows: profiler.rows, source, features: profiler.finish()}
}

export function columnsOf(records: Record<string, unknown>[]): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {}
  for (const r of records) for (const [k, v] of Object.entries(r)) (out[k] ??= []).push(v)
  return out
}
