// Drift statistics that match SciPy: two-sample KS (ks_2samp, method 'auto'), chi-square (chisquare), Jensen–Shannon distance, PSI.
import binomcoefln from '@stdlib/math-base-special-binomcoefln'
import gammainc from '@stdlib/math-base-special-gammainc'

/** Population stability index: proportions below this are raised to it, so an empty bin costs a bounded amount (0.01 %). */
export const PSI_EPSILON = 1e-4

/** SciPy's ks_2samp 'auto' computes the exact distribution while both samples are at most this large. */
const KS_EXACT_MAX_N = 10_000

export interface KsResult {
  statistic: number
  pValue: number
  method: 'exact' | 'asymp'
}

/**
 * Two-sided two-sample Kolmogorov–Smirnov test, as scipy.stats.ks_2samp(a, b) with method='auto' (SciPy 1.10): the
 * exact null distribution (Hodges' lattice paths) when both samples have at most 10 000 values, else the one-sample
 * Kolmogorov distribution of size round(n·m/(n+m)) (scipy.stats.kstwo, Simard & L'Ecuyer's choice of algorithms).
 * Written by hand because no npm package gives SciPy's exact p-values.
 */
export function ks2Samp(a: readonly number[], b: readonly number[]): KsResult {
  if (a.length === 0 || b.length === 0) throw new RangeError('ks2Samp needs two non-empty samples')
  const x = [...a].sort((p, q) => p - q)
  const y = [...b].sort((p, q) => p - q)
  const n1 = x.length
  const n2 = y.length
  // max and min of F1 - F2 over every observed value, both ECDFs taken right-continuous (ties move together).
  let maxS = 0
  let minS = 0
  let i = 0
  let j = 0
  while (i < n1 || j < n2) {
    const v = j >= n2 || (i < n1 && x[i] <= y[j]) ? x[i] : y[j]
    while (i < n1 && x[i] <= v) i++
    while (j < n2 && y[j] <= v) j++
    const diff = i / n1 - j / n2
    if (diff > maxS) maxS = diff
    if (diff < minS) minS = diff
  }
  const below = Math.min(Math.max(-minS, 0), 1)
  let d = below > maxS ? below : maxS
  if (Math.max(n1, n2) <= KS_EXACT_MAX_N) {
    const exact = exactKs2(n1, n2, d)
    if (exact) return {statistic: exact.d, pValue: clip01(exact.p), method: 'exact'}
  }
  const [m, n] = n1 >= n2 ? [n1, n2] : [n2, n1]
  const en = (m * n) / (m + n)
  d = Math.min(d, 1)
  return {statistic: d, pValue: clip01(kolmogorovSf(roundHalfEven(en), d)), method: 'asymp'}
}

function exactKs2(n1: number, n2: number, d: number): {d: number; p: number} | undefined {
  const g = gcd(n1, n2)
  const lcm = (n1 / g) * n2
  const h = roundHalfEven(d * lcm)
  const dd = h / lcm
  if (h === 0) return {d: dd, p: 1}
  const p = n1 === n2 ? probOutsideSquare(n1, h) : probOutsideBand(n1, n2, g, h)
  return Number.isFinite(p) && p >= 0 && p <= 1 ? {d: dd, p} : undefined
}

/** P(D ≥ h/n) for two samples of size n: 2·Σ(−1)^{k+1}·C(2n, n−kh)/C(2n, n), evaluated Horner-like to avoid cancellation. */
function probOutsideSquare(n: number, h: number): number {
  let p = 0
  for (let k = Math.floor(n / h); k >= 0; k--) {
    let term = 1
    for (let j = 0; j < h; j++) term = ((n - k * h - j) * term) / (n + k * h + j + 1)
    p = term * (1 - p)
  }
  return 2 * p
}

/**
 * The share of lattice paths from (0,0) to (m,n) that leave the band |x/m − y/n| < h/lcm(m,n), computed column by
 * column as a probability of leaving (Viehmann's stable form of Hodges' inside method), over a sliding window.
 */
function probOutsideBand(m0: number, n0: number, g: number, h: number): number {
  const [m, n] = m0 >= n0 ? [m0, n0] : [n0, m0]
  const mg = m / g
  const ng = n / g
  let minj = 0
  let maxj = Math.min(Math.ceil(h / mg), n + 1)
  let curlen = maxj - minj
  const A = new Float64Array(Math.min(2 * maxj + 2, n + 1)).fill(1)
  A.fill(0, minj, maxj)
  for (let i = 1; i <= m; i++) {
    const lastminj = minj
    const lastlen = curlen
    minj = Math.min(Math.max(Math.floor((ng * i - h) / mg) + 1, 0), n)
    maxj = Math.min(Math.ceil((ng * i + h) / mg), n + 1)
    if (maxj <= minj) return 1
    let val = minj === 0 ? 0 : 1
    for (let jj = 0; jj < maxj - minj; jj++) {
      const j = jj + minj
      val = (A[jj + minj - lastminj] * i + val * j) / (i + j)
      A[jj] = val
    }
    curlen = maxj - minj
    if (lastlen > curlen) A.fill(1, curlen, curlen + (lastlen - curlen))
  }
  return A[maxj - minj - 1]
}

/** P(D_n ≥ x) for the one-sample two-sided KS statistic: scipy.stats.kstwo.sf, same algorithm for each region. */
export function kolmogorovSf(n: number, x: number): number {
  if (x >= 1) return 0
  if (x <= 0) return 1
  const t = n * x
  if (t <= 1) {
    // Ruben–Gambino: for 1/2n ≤ x ≤ 1/n the CDF is n!/n^n·(2t−1)^n.
    if (t <= 0.5) return 1
    let cdf: number
    if (n <= 140) {
      cdf = 1
      for (let i = 1; i <= n; i++) cdf *= (i / n) * (2 * t - 1)
    } else cdf = Math.exp(logFactorialOverPower(n) + n * Math.log(2 * t - 1))
    return clip01(1 - cdf)
  }
  if (t >= n - 1) return clip01(2 * (1 - x) ** n)
  if (x >= 0.5) return clip01(2 * smirnovSf(n, x))
  const nxx = t * x
  if (n <= 140) {
    if (nxx <= 0.754693) return clip01(1 - durbinCdf(n, x))
    if (nxx <= 4) return clip01(1 - pomeranzCdf(n, x))
    return clip01(2 * smirnovSf(n, x))
  }
  if (nxx >= 370) return 0
  if (nxx >= 2.2) return clip01(2 * smirnovSf(n, x))
  const cdf = n <= 100_000 && n * x ** 1.5 <= 1.4 ? durbinCdf(n, x) : pelzGoodCdf(n, x)
  return clip01(1 - cdf)
}

/** One-sided P(D+_n ≥ x), Birnbaum–Tingey's sum; every term is positive, taken in logs so large n does not overflow. */
function smirnovSf(n: number, x: number): number {
  const last = Math.floor(n * (1 - x))
  let p = 0
  for (let v = 0; v <= last; v++) {
    const evn = x + v / n
    const omevn = 1 - evn
    if (omevn <= 0 && n - v > 0) continue
    const log = binomcoefln(n, v) + (v - 1) * Math.log(evn) + (n - v === 0 ? 0 : (n - v) * Math.log(omevn))
    p += Math.exp(log)
  }
  return p * x
}

const LOG_2PI = Math.log(2 * Math.PI)
const STIRLING = [
  -0.029550653594771242, 0.00641025641025641, -0.0019175269175269176, 0.0008417508417508417, -0.0005952380952380953,
  0.0007936507936507937, -0.002777777777777778, 0.08333333333333333,
]

/** log(n!/n^n) by Stirling's series with n·log(n) removed up front, as SciPy does. */
function logFactorialOverPower(n: number): number {
  const rn = 1 / n
  let poly = 0
  for (const c of STIRLING) poly = poly * (rn / n) + c
  return Math.log(n) / 2 - n + LOG_2PI / 2 + rn * poly
}

const SCALE = 2 ** 128
const UNSCALE = 2 ** -128

/** P(D_n ≤ d) by Durbin's matrix method with Marsaglia–Tsang–Wang's scaling: the k-th diagonal entry of H^n·n!/n^n. */
function durbinCdf(n: number, d: number): number {
  const nd = n * d
  if (nd <= 0.5) return 0
  const k = Math.ceil(nd)
  const h = k - nd
  const m = 2 * k - 1
  const v = new Array<number>(m)
  const w = new Array<number>(m)
  let fac = 1
  for (let j = 1; j <= m; j++) {
    w[j - 1] = fac
    fac /= j
    v[j - 1] = (1 - h ** j) * fac
  }
  v[m - 1] = (1 + (Math.max(2 * h - 1, 0) ** m - 2 * h ** m)) * fac
  let H: number[][] = Array.from({length: m}, () => new Array<number>(m).fill(0))
  for (let i = 1; i < m; i++) for (let r = i - 1; r < m; r++) H[r][i] = w[r - i + 1]
  for (let r = 0; r < m; r++) H[r][0] = v[r]
  for (let c = 0; c < m; c++) H[m - 1][c] = v[m - 1 - c]
  let power: number[][] = Array.from({length: m}, (_, r) => Array.from({length: m}, (_, c) => (r === c ? 1 : 0)))
  let exponent = 0
  let hExponent = 0
  for (let nn = n; nn > 0; nn = Math.floor(nn / 2)) {
    if (nn % 2) {
      power = matmul(power, H)
      exponent += hExponent
    }
    H = matmul(H, H)
    hExponent *= 2
    if (Math.abs(H[k - 1][k - 1]) > SCALE) {
      for (const row of H) for (let c = 0; c < m; c++) row[c] *= UNSCALE
      hExponent += 128
    }
  }
  let p = power[k - 1][k - 1]
  for (let i = 1; i <= n; i++) {
    p = (i * p) / n
    if (Math.abs(p) < UNSCALE) {
      p *= SCALE
      exponent -= 128
    }
  }
  return clip01(p * 2 ** exponent)
}

function matmul(a: number[][], b: number[][]): number[][] {
  const m = a.length
  const out = Array.from({length: m}, () => new Array<number>(m).fill(0))
  for (let i = 0; i < m; i++)
    for (let l = 0; l < m; l++) {
      const ail = a[i][l]
      if (ail === 0) continue
      for (let j = 0; j < m; j++) out[i][j] += ail * b[l][j]
    }
  return out
}

/** P(D_n ≤ x) by Pomeranz's recursion: rows of Poisson convolutions, only the non-zero window of two rows kept. */
function pomeranzCdf(n: number, x: number): number {
  const t = n * x
  const ll = Math.floor(t)
  const f = t - ll
  const g = Math.min(f, 1 - f)
  const ceilf = f > 0 ? 1 : 0
  const roundf = f > 0.5 ? 1 : 0
  const npwrs = 2 * (ll + 1)
  const gpower = new Float64Array(npwrs)
  const twogpower = new Float64Array(npwrs)
  const onem2gpower = new Float64Array(npwrs)
  gpower[0] = twogpower[0] = onem2gpower[0] = 1
  for (let m = 1; m < npwrs; m++) {
    gpower[m] = (gpower[m - 1] * (g / n)) / m
    twogpower[m] = (twogpower[m - 1] * ((2 * g) / n)) / m
    onem2gpower[m] = (onem2gpower[m - 1] * ((1 - 2 * g) / n)) / m
  }
  const bounds = (i: number): [number, number] => {
    let j1: number
    let j2: number
    if (i === 0) [j1, j2] = [-ll - ceilf - 1, ll + ceilf - 1]
    else {
      const half = Math.floor((i + 1) / 2)
      if ((i + 1) % 2 === 0) {
        if (half === n + 1) [j1, j2] = [n - ll - ceilf - 1, n + ll + ceilf - 1]
        else [j1, j2] = [half - 1 - ll - roundf - 1, half + ll - 1 + ceilf - 1]
      } else [j1, j2] = [half - 1 - ll - 1, half + ll + roundf - 1]
    }
    return [Math.max(j1 + 2, 0), Math.min(j2, n)]
  }
  let V0 = new Float64Array(npwrs)
  let V1 = new Float64Array(npwrs)
  V1[0] = 1
  let V0s = 0
  let V1s = 0
  let exponent = 0
  let [j1, j2] = bounds(0)
  for (let i = 1; i < 2 * n + 2; i++) {
    const k1 = j1
    ;[V0, V1] = [V1, V0]
    ;[V0s, V1s] = [V1s, V0s]
    V1.fill(0)
    ;[j1, j2] = bounds(i)
    const pwrs = i === 1 || i === 2 * n + 1 ? gpower : i % 2 ? twogpower : onem2gpower
    const ln2 = j2 - k1 + 1
    if (ln2 > 0) {
      const start = k1 - V0s
      const convStart = j1 - k1
      const convLen = j2 - j1 + 1
      let max = 0
      for (let c = 0; c < convLen; c++) {
        // Entry (convStart + c) of the full convolution of V0[start…start+ln2) with pwrs[0…ln2).
        const idx = convStart + c
        let s = 0
        for (let a = Math.max(0, idx - ln2 + 1); a <= Math.min(idx, ln2 - 1); a++) s += V0[start + a] * pwrs[idx - a]
        V1[c] = s
        if (s > max) max = s
      }
      if (max > 0 && max < UNSCALE) {
        for (let c = 0; c < convLen; c++) V1[c] *= SCALE
        exponent -= 128
      }
      V1s = V0s + j1 - k1
    }
  }
  let ans = V1[n - V1s]
  for (let m = 1; m <= n; m++) {
    if (Math.abs(ans) > SCALE) {
      ans *= UNSCALE
      exponent += 128
    }
    ans *= m
  }
  return clip01(ans * 2 ** exponent)
}

/** Pelz–Good's asymptotic series for P(D_n ≤ x), for larger n where the matrix method would be slow. */
function pelzGoodCdf(n: number, x: number): number {
  if (x <= 0) return 0
  if (x >= 1) return 1
  const z = Math.sqrt(n) * x
  const z2 = z ** 2
  const z3 = z ** 3
  const z4 = z ** 4
  const z6 = z ** 6
  const pi2 = Math.PI ** 2
  const pi4 = Math.PI ** 4
  const pi6 = Math.PI ** 6
  const qlog = -pi2 / 8 / z2
  if (qlog < -708) return 0
  let q = Math.exp(qlog)
  const k1a = -z2
  const k1b = pi2 / 4
  const k2a = 6 * z6 + 2 * z4
  const k2b = ((2 * z4 - 5 * z2) * pi2) / 4
  const k2c = (pi4 * (1 - 2 * z2)) / 16
  const k3d = (pi6 * (5 - 30 * z2)) / 64
  const k3c = (pi4 * (-60 * z2 + 212 * z4)) / 16
  const k3b = (pi2 * (135 * z4 - 96 * z6)) / 4
  const k3a = -30 * z6 - 90 * z ** 8
  const K = [0, 0, 0, 0]
  const maxk = Math.ceil((16 * z) / Math.PI)
  for (let k = maxk; k > 0; k--) {
    const m = 2 * k - 1
    const m2 = m ** 2
    const m4 = m ** 4
    const m6 = m ** 6
    const qpower = q ** (8 * k)
    const coeffs = [1, k1a + k1b * m2, k2a + k2b * m2 + k2c * m4, k3a + k3b * m2 + k3c * m4 + k3d * m6]
    for (let i = 0; i < 4; i++) K[i] = K[i] * qpower + coeffs[i]
  }
  const sqrt2pi = Math.sqrt(2 * Math.PI)
  const divisors = [z, 6 * z4, 72 * z ** 7, 6480 * z ** 10]
  for (let i = 0; i < 4; i++) K[i] = (K[i] * q * sqrt2pi) / divisors[i]
  q = Math.exp(-pi2 / 2 / z2)
  let k2extra = 0
  let k3extra = 0
  const sqrt3z = Math.sqrt(3) * z
  for (let k = maxk; k > 0; k--) {
    const k2 = k * k
    const qk = q ** k2
    k2extra += k2 * qk
    k3extra += (sqrt3z + Math.PI * k) * (sqrt3z - Math.PI * k) * k2 * qk
  }
  K[2] += (k2extra * pi2 * sqrt2pi) / (-36 * z3)
  K[3] += (k3extra * pi2 * sqrt2pi) / (216 * z6)
  let sum = 0
  for (let i = 0; i < 4; i++) sum += K[i] / n ** (i / 2)
  return sum
}

export interface ChiSquareResult {
  statistic: number
  pValue: number
  /** Degrees of freedom: cells − 1. */
  df: number
  /** Categories seen now that the baseline never saw (not folded into `__other__`). */
  unseen: string[]
}

/**
 * Pearson's chi-square of current category counts against the baseline frequencies, as
 * scipy.stats.chisquare(observed, expected) with expected = baseline frequency × n. SciPy would divide by zero for a
 * category the baseline never saw, so unseen categories are pooled into one cell whose baseline frequency is
 * `unseenFrequency` (half an observation of the reference data is a fair choice), and the expected frequencies are
 * renormalized to sum to one. Categories the baseline had but the current data lacks count as observed 0.
 */
export function chiSquareTest(
  observed: Record<string, number>,
  baseline: Record<string, number>,
  unseenFrequency: number,
): ChiSquareResult {
  const {cells, unseen} = categoryCells(observed, baseline, unseenFrequency)
  const n = cells.reduce((s, c) => s + c.observed, 0)
  const total = cells.reduce((s, c) => s + c.expected, 0)
  let statistic = 0
  for (const c of cells) {
    const e = (c.expected / total) * n
    statistic += (c.observed - e) ** 2 / e
  }
  const df = cells.length - 1
  return {statistic, pValue: df > 0 ? chiSquareSf(statistic, df) : 1, df, unseen}
}

export interface CategoryCell {
  name: string
  observed: number
  /** Baseline frequency (unnormalized when an unseen cell was added). */
  expected: number
}

/** The cells a categorical comparison runs on: the baseline's categories, then one pooled cell for unseen ones. */
export function categoryCells(
  observed: Record<string, number>,
  baseline: Record<string, number>,
  unseenFrequency: number,
): {cells: CategoryCell[]; unseen: string[]} {
  const cells: CategoryCell[] = Object.entries(baseline)
    .filter(([, f]) => f > 0)
    .map(([name, f]) => ({name, observed: 0, expected: f}))
  const byName = new Map(cells.map((c) => [c.name, c]))
  const other = byName.get('__other__')
  const unseen: string[] = []
  let unseenCount = 0
  for (const [name, count] of Object.entries(observed)) {
    if (count <= 0) continue
    const cell = byName.get(name)
    if (cell) cell.observed += count
    else if (other) other.observed += count
    else {
      unseen.push(name)
      unseenCount += count
    }
  }
  if (unseenCount > 0) cells.push({name: '(unseen)', observed: unseenCount, expected: unseenFrequency})
  return {cells, unseen: unseen.sort()}
}

/** Survival function of the chi-square distribution: the regularized upper incomplete gamma Q(df/2, x/2). */
export function chiSquareSf(x: number, df: number): number {
  if (x <= 0) return 1
  return gammainc(x / 2, df / 2, true, true)
}

/**
 * Jensen–Shannon distance between two distributions (each normalized to sum to one), as
 * scipy.spatial.distance.jensenshannon(p, q): the square root of the JS divergence, natural logarithm unless `base`.
 */
export function jensenShannon(p: readonly number[], q: readonly number[], base?: number): number {
  const sp = p.reduce((s, v) => s + v, 0)
  const sq = q.reduce((s, v) => s + v, 0)
  let js = 0
  for (let i = 0; i < p.length; i++) {
    const a = p[i] / sp
    const b = q[i] / sq
    const m = (a + b) / 2
    if (a > 0) js += a * Math.log(a / m)
    if (b > 0) js += b * Math.log(b / m)
  }
  if (base !== undefined) js /= Math.log(base)
  return Math.sqrt(Math.max(js, 0) / 2)
}

/** PSI = Σ (actual − expected)·ln(actual / expected) over proportions, each raised to PSI_EPSILON when smaller. */
export function psi(expected: readonly number[], actual: readonly number[], epsilon = PSI_EPSILON): number {
  const se = expected.reduce((s, v) => s + v, 0)
  const sa = actual.reduce((s, v) => s + v, 0)
  let total = 0
  for (let i = 0; i < expected.length; i++) {
    const e = Math.max(expected[i] / se, epsilon)
    const a = Math.max(actual[i] / sa, epsilon)
    total += (a - e) * Math.log(a / e)
  }
  return total
}

/**
 * Bins for comparing numeric samples: right-closed intervals between the baseline's distinct interior deciles, so
 * a value tied with a decile (integer features) falls in one bin for both samples. Returns each bin's count.
 */
export function binCounts(sorted: readonly number[], edges: readonly number[]): number[] {
  const counts = new Array<number>(edges.length + 1).fill(0)
  for (const v of sorted) counts[upperBound(edges, v)]++
  return counts
}

/** The index of the first edge ≥ v (so v lands in the bin (edge[i−1], edge[i]]). */
function upperBound(edges: readonly number[], v: number): number {
  let lo = 0
  let hi = edges.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (edges[mid] < v) lo = mid + 1
    else hi = mid
  }
  return lo
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b]
  return a
}

/** numpy.round: halves go to the even neighbour. */
function roundHalfEven(v: number): number {
  const r = Math.round(v)
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r
}

function clip01(p: number): number {
  return Math.min(1, Math.max(0, p))
}
