// Statistics fitted on reference data, as scikit-learn computes them, so a pipeline moved out of Python gives the same numbers.

/** Values that are not missing (NaN). */
function present(values: readonly number[]): number[] {
  return values.filter((v) => !Number.isNaN(v))
}

export function mean(values: readonly number[]): number {
  const xs = present(values)
  let sum = 0
  for (const x of xs) sum += x
  return sum / xs.length
}

/** Population standard deviation (ddof=0), like StandardScaler; 0 becomes 1 there too, so a constant column is only centred. */
export function std(values: readonly number[]): number {
  const xs = present(values)
  const m = mean(xs)
  let sum = 0
  for (const x of xs) sum += (x - m) ** 2
  const s = Math.sqrt(sum / xs.length)
  return s === 0 ? 1 : s
}

/** The middle value, or the mean of the two middle values (numpy.median). */
export function median(values: readonly number[]): number {
  const xs = present(values).sort((a, b) => a - b)
  const mid = xs.length >> 1
  return xs.length % 2 === 1 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2
}

/** The commonest value; ties go to the smallest, as SimpleImputer(strategy="most_frequent") does. */
export function mostFrequent<T extends number | string>(values: readonly T[]): T {
  const counts = new Map<T, number>()
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1)
  let best: T | undefined
  let bestCount = 0
  for (const [value, count] of counts) {
    if (count > bestCount || (count === bestCount && best !== undefined && value < best)) {
      best = value
      bestCount = count
    }
  }
  return best as T
}

export function minMax(values: readonly number[]): {min: number; max: number} {
  let min = Number.POSITIVE_INFINITY
  let max = Number.NEGATIVE_INFINITY
  for (const x of present(values)) {
    if (x < min) min = x
    if (x > max) max = x
  }
  return {min, max}
}

/** Distinct values, sorted as OneHotEncoder sorts its categories. */
export function categoriesOf(values: readonly string[]): string[] {
  return [...new Set(values)].sort()
}
