// Numeric steps compiled once to plain functions: clip and the transforms, in the order the feature lists them.
import type {FeatureSpec, Transform} from './spec.js'
import {transformsOf} from './layout.js'

export type Step = (x: number) => number

/** Needs every statistic filled in (a resolved pipeline). */
export function compileTransform(transform: Transform): Step {
  if (transform === 'log') return Math.log
  if (transform === 'log1p') return Math.log1p
  if ('standardize' in transform) {
    const {mean = 0, std = 1} = transform.standardize
    return (x) => (x - mean) / std
  }
  const {min = 0, max = 1} = transform.minmax
  const range = max - min || 1
  return (x) => (x - min) / range
}

export function compileClip(clip: FeatureSpec['clip']): Step | undefined {
  if (!clip) return undefined
  const lo = clip.min ?? Number.NEGATIVE_INFINITY
  const hi = clip.max ?? Number.POSITIVE_INFINITY
  return (x) => (x < lo ? lo : x > hi ? hi : x)
}

/** Clip then transforms, as one function; undefined when the feature has none. */
export function compileSteps(feature: FeatureSpec): Step | undefined {
  const steps: Step[] = []
  const clip = compileClip(feature.clip)
  if (clip) steps.push(clip)
  for (const t of transformsOf(feature)) steps.push(compileTransform(t))
  if (steps.length === 0) return undefined
  if (steps.length === 1) return steps[0]
  return (x) => {
    for (const step of steps) x = step(x)
    return x
  }
}
