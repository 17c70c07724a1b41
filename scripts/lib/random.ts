// Seeded random draws for the synthetic example: the same seed gives the same applicants on every run.
import {uniformFloat64} from 'pure-rand/distribution/uniformFloat64'
import {xoroshiro128plus} from 'pure-rand/generator/xoroshiro128plus'
import type {JumpableRandomGenerator} from 'pure-rand/types/JumpableRandomGenerator'

export class Random {
  private readonly rng: JumpableRandomGenerator

  /** Each stream of one seed is a separate, non-overlapping sequence (2^64 draws apart). */
  constructor(seed: number, stream = 0) {
    this.rng = xoroshiro128plus(seed)
    for (let i = 0; i < stream; i++) this.rng.jump()
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return uniformFloat64(this.rng)
  }

  between(low: number, high: number): number {
    return low + (high - low) * this.uniform()
  }

  /** Box–Muller; 1 - u keeps the logarithm away from 0. */
  normal(mean = 0, sd = 1): number {
    const u = 1 - this.uniform()
    const v = this.uniform()
    return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
  }

  chance(p: number): boolean {
    return this.uniform() < p
  }

  /** One of `choices`, drawn with the given (not necessarily normalised) weights. */
  pick<T>(choices: readonly T[], weights: readonly number[]): T {
    const total = weights.reduce((a, b) => a + b, 0)
    let u = this.uniform() * total
    for (let i = 0; i < choices.length - 1; i++) {
      u -= weights[i]
      if (u < 0) return choices[i]
    }
    return choices[choices.length - 1]
  }

  /** A Fisher–Yates permutation of 0..n-1. */
  permutation(n: number): Uint32Array {
    const order = Uint32Array.from({length: n}, (_, i) => i)
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(this.uniform() * (i + 1))
      const swap = order[i]
      order[i] = order[j]
      order[j] = swap
    }
    return order
  }
}
