// The step's figures per version from Prometheus: the model servers' own mlops_requests_total and request-duration
// histogram, labelled by version, over the time since the step began. The same StepMetrics the local gateway counts.
import {request} from 'undici'

import {errorMessage} from '../../errors.js'
import type {Measurement, RolloutState, VersionStats} from '../../rollout/types.js'

const PREDICTION_ROUTES = '/v1/predict|/v2/models/infer'
const MAX_BODY = 1 << 20

export interface PrometheusSettings {
  url: string
  /** Extra label matchers, e.g. namespace="ml". */
  selector?: string
}

/** The PromQL for one version over a window, pure so it can be read in a test table. */
export function versionQueries(version: string, windowSeconds: number, selector?: string) {
  const labels = `version="${version.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}",route=~"${PREDICTION_ROUTES}"${selector ? `,${selector}` : ''}`
  const window = `[${Math.max(1, Math.round(windowSeconds))}s]`
  return {
    requests: `sum(increase(mlops_requests_total{${labels}}${window}))`,
    errors: `sum(increase(mlops_requests_total{${labels},status=~"5.."}${window}))`,
    p50: `histogram_quantile(0.5, sum by (le) (increase(mlops_request_duration_seconds_bucket{${labels}}${window})))`,
    p99: `histogram_quantile(0.99, sum by (le) (increase(mlops_request_duration_seconds_bucket{${labels}}${window})))`,
  }
}

export async function measureFromPrometheus(
  settings: PrometheusSettings,
  state: RolloutState,
  candidateReady: boolean,
  now: Date,
): Promise<Measurement> {
  if (!state.candidate) return {error: 'no candidate to measure'}
  const windowSeconds = (now.getTime() - Date.parse(state.stepStartedAt)) / 1000
  try {
    const [stable, candidate] = await Promise.all([
      versionStats(settings, state.stable.version, windowSeconds, now),
      versionStats(settings, state.candidate.version, windowSeconds, now),
    ])
    return {metrics: {since: state.stepStartedAt, stable, candidate, candidateReady}}
  } catch (error) {
    return {error: `Prometheus at ${settings.url} gave no figures: ${errorMessage(error)}`}
  }
}

async function versionStats(
  settings: PrometheusSettings,
  version: string,
  windowSeconds: number,
  now: Date,
): Promise<VersionStats> {
  const q = versionQueries(version, windowSeconds, settings.selector)
  const [requests, errors, p50, p99] = await Promise.all(
    [q.requests, q.errors, q.p50, q.p99].map((query) => scalar(settings.url, query, now)),
  )
  // increase() extrapolates to the window's edges: counts are rounded to whole requests.
  return {
    requests: Math.round(requests ?? 0),
    errors: Math.round(errors ?? 0),
    ...(p50 === undefined ? {} : {p50Ms: p50 * 1000}),
    ...(p99 === undefined ? {} : {p99Ms: p99 * 1000}),
  }
}

/** One instant query: its single value, or undefined when there is no series or it is NaN. */
async function scalar(base: string, query: string, now: Date): Promise<number | undefined> {
  const url = new URL('api/v1/query', base.endsWith('/') ? base : `${base}/`)
  url.searchParams.set('query', query)
  url.searchParams.set('time', String(now.getTime() / 1000))
  const response = await request(url, {headersTimeout: 10_000, bodyTimeout: 10_000})
  let text = ''
  for await (const chunk of response.body) {
    text += String(chunk)
    if (text.length > MAX_BODY) {
      response.body.destroy()
      throw new Error('the answer is over 1 MiB')
    }
  }
  const body = JSON.parse(text) as {status?: string; error?: string; data?: {result?: {value?: [number, string]}[]}}
  if (response.statusCode !== 200 || body.status !== 'success')
    throw new Error(`HTTP ${response.statusCode}: ${body.error ?? text.slice(0, 200)}`)
  const value = body.data?.result?.[0]?.value?.[1]
  const number = value === undefined ? Number.NaN : Number(value)
  return Number.isFinite(number) ? number : undefined
}
