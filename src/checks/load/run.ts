// Runs one load phase in a forked generator process and turns its histograms into percentiles, error rates and saturation.
import {fileURLToPath} from 'node:url'

import * as hdr from 'hdr-histogram-js'

import {MlopsError} from '../../errors.js'
import {start} from '../../system/exec.js'
import {type LoadJob, type LoadOutcome, type LoadProgress, type WorkerMessage} from './protocol.js'

export interface Percentiles {
  p50: number
  p90: number
  p95: number
  p99: number
  'p99.9': number
  max: number
  mean: number
}

export interface LoadPhase {
  mode: 'open' | 'closed'
  /** Requests per second asked for (open model). */
  rate?: number
  concurrency: number
  durationS: number
  /** Requests whose send time fell in the measured window. */
  requests: number
  completed: number
  ok: number
  errorRate: number
  statuses: Record<string, number>
  /** Answered requests per second over the window (and the tail that drained after it). */
  throughput: number
  /** From the intended send time (open model) or the send (closed model): what a user waits. ms. */
  latencyMs: Percentiles
  /** From when the generator dispatched the request, its own schedule lag left out: the server's part (and connection queueing). ms. */
  serviceMs: Percentiles
  histogram: {edgesMs: number[]; counts: number[]}
  client: ClientHealth
  samples: string[]
}

/** Whether the generator kept up: a late schedule or a busy event loop means the client, not the server, set the pace. */
export interface ClientHealth {
  lagP99Ms: number
  lagMaxMs: number
  elu: number
  saturated: boolean
  reason?: string
}

/** Past these the generator is the bottleneck: sends 5 ms late (p99), or its event loop busy 85% of the time. */
export const SATURATION = {lagP99Ms: 5, elu: 0.85}

export interface RunLoadOptions {
  onProgress?: (progress: LoadProgress) => void
}

/** The generator runs from the same tree as this module: TypeScript through tsx in development, the build otherwise. */
function workerEntry(): {path: string; execArgv: string[]} {
  const self = fileURLToPath(import.meta.url)
  const ts = self.endsWith('.ts')
  // A larger young generation: fewer scavenges, so fewer pauses of the generator landing in the measured tail.
  return {
    path: self.replace(/run\.(ts|js)$/, ts ? 'worker.ts' : 'worker.js'),
    execArgv: [...(ts ? ['--import', 'tsx'] : []), '--max-semi-space-size=64'],
  }
}

export async function runLoadPhase(job: LoadJob, options: RunLoadOptions = {}): Promise<LoadPhase> {
  const outcome = await runWorker(job, options)
  return summarize(job, outcome)
}

function runWorker(job: LoadJob, options: RunLoadOptions): Promise<LoadOutcome> {
  const {path, execArgv} = workerEntry()
  const child = start(process.execPath, [...execArgv, path], {stdout: 'ignore', ipc: true})
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-4000)
  })
  return new Promise((resolve, reject) => {
    let result: LoadOutcome | undefined
    let failure: string | undefined
    child.on('message', (message: WorkerMessage) => {
      if (message.type === 'progress') options.onProgress?.(message)
      else if (message.type === 'result') result = message
      else failure = message.message
    })
    child.once('error', (error) =>
      reject(new MlopsError('LOAD_GENERATOR_FAILED', `the load generator could not start: ${error.message}`)),
    )
    child.once('exit', (code, signal) => {
      if (result) resolve(result)
      else
        reject(
          new MlopsError(
            'LOAD_GENERATOR_FAILED',
            `the load generator ${failure ? `failed: ${failure}` : `exited with ${signal ?? `code ${code}`}`}${stderr ? `\n${stderr.trim()}` : ''}`,
            {hint: 'Run again with DEBUG=* for details; if it persists, report it with the output.'},
          ),
        )
    })
    child.send(job)
  })
}

export function summarize(job: LoadJob, outcome: LoadOutcome): LoadPhase {
  const latency = hdr.decodeFromCompressedBase64(outcome.latency, 64, false)
  const service = hdr.decodeFromCompressedBase64(outcome.service, 64, false)
  const lag = hdr.decodeFromCompressedBase64(outcome.lag, 64, false)
  const lagP99Ms = lag.totalCount > 0 ? lag.getValueAtPercentile(99) / 1000 : 0
  const lagMaxMs = lag.totalCount > 0 ? lag.maxValue / 1000 : 0
  const reasons: string[] = []
  if (lagP99Ms > SATURATION.lagP99Ms) reasons.push(`it sent ${round(lagP99Ms)} ms behind schedule (p99)`)
  if (outcome.elu > SATURATION.elu)
    reasons.push(`its event loop was busy ${Math.round(outcome.elu * 100)}% of the time`)
  const failed = outcome.measured - outcome.ok
  const phase: LoadPhase = {
    mode: job.mode,
    ...(job.mode === 'open' ? {rate: job.rate} : {}),
    concurrency: job.concurrency,
    durationS: job.durationMs / 1000,
    requests: outcome.measured,
    completed: outcome.completed,
    ok: outcome.ok,
    errorRate: outcome.measured > 0 ? failed / outcome.measured : 0,
    statuses: outcome.statuses,
    throughput: outcome.completed / outcome.elapsedS,
    latencyMs: percentilesOf(latency),
    serviceMs: percentilesOf(service),
    histogram: histogramOf(latency),
    client: {
      lagP99Ms: round(lagP99Ms),
      lagMaxMs: round(lagMaxMs),
      elu: round(outcome.elu),
      saturated: reasons.length > 0,
      ...(reasons.length > 0 ? {reason: `the load generator could not keep up: ${reasons.join(', ')}`} : {}),
    },
    samples: outcome.samples,
  }
  for (const h of [latency, service, lag]) h.destroy()
  return phase
}

function percentilesOf(h: hdr.Histogram): Percentiles {
  const at = (p: number) => (h.totalCount > 0 ? round(h.getValueAtPercentile(p) / 1000) : 0)
  return {
    p50: at(50),
    p90: at(90),
    p95: at(95),
    p99: at(99),
    'p99.9': at(99.9),
    max: h.totalCount > 0 ? round(h.maxValue / 1000) : 0,
    mean: h.totalCount > 0 ? round(h.mean / 1000) : 0,
  }
}

/** Buckets between the fastest and the slowest request: close latencies still spread over many bars. */
const BUCKETS = 24

/**
 * The latency histogram of the report, from the HDR histogram: BUCKETS buckets from the fastest request to the slowest,
 * evenly spaced (log-spaced when the slowest is over 10x the fastest). `counts[0]` is below `edgesMs[0]`, `counts[i]`
 * between `edgesMs[i-1]` and `edgesMs[i]`, the last at or above the last edge. Exact to the histogram's 3 digits.
 */
function histogramOf(h: hdr.Histogram): LoadPhase['histogram'] {
  const total = h.totalCount
  if (total === 0) return {edgesMs: [], counts: []}
  const lo = h.minNonZeroValue / 1000
  const hi = h.maxValue / 1000
  const log = hi / lo > 10
  const at = (k: number) => (log ? lo * (hi / lo) ** (k / BUCKETS) : lo + ((hi - lo) * k) / BUCKETS)
  const edgesMs = [...new Set(Array.from({length: BUCKETS - 1}, (_, k) => round(at(k + 1))))].filter(
    (e) => e > lo && e < hi,
  )
  // The value of the k-th fastest request (1-based); (k - 0.5) keeps the rank exact through the percentile's rounding.
  const ranked = (k: number) => h.getValueAtPercentile(((k - 0.5) / total) * 100) / 1000
  const below = (edge: number) => {
    let [low, high] = [0, total]
    while (low < high) {
      const mid = Math.ceil((low + high) / 2)
      if (ranked(mid) < edge) low = mid
      else high = mid - 1
    }
    return low
  }
  const cumulative = [...edgesMs.map(below), total]
  return {edgesMs, counts: cumulative.map((c, i) => c - (i > 0 ? cumulative[i - 1] : 0))}
}

function round(v: number): number {
  return Number(v.toPrecision(4))
}
