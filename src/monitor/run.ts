// `mlops monitor`: current data (a batch file or the server's request log) against the artifact's baseline profile.
import {existsSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {resolve} from 'node:path'

import {DEFAULT_STORE, storeFor} from '../artifact/project.js'
import {ArtifactStore} from '../artifact/store.js'
import type {ReferenceProfile} from '../artifact/types.js'
import {type LoadedConfig, loadConfig} from '../config/load.js'
import {MlopsError, UsageError, isMlopsError} from '../errors.js'
import {shortPath, writeReports} from '../report/write.js'
import {DURATION_EXAMPLES, parseDuration} from '../system/duration.js'
import {DEFAULT_SINCE, driftSettings} from './config.js'
import {type CurrentSource, readBatch, readRequestLog} from './current.js'
import {NOT_IN_CURRENT, detectDrift} from './drift.js'
import {monitorHtml, monitorJunit} from './report.js'
import {artifactScorer} from './score.js'
import type {MonitorOptions, MonitorResult} from './types.js'

export async function runMonitor(options: MonitorOptions): Promise<MonitorResult> {
  const now = options.now ?? (() => new Date())
  if (options.input && options.since)
    throw new UsageError('MONITOR_FLAGS', '--input and --since do not go together: a batch file has no time window', {
      hint: 'Run "mlops monitor --input FILE" for a batch, or "mlops monitor --since 24h" for the request log.',
    })
  // Without mlops.yaml, a baseline file or an artifact ref (a .tar path) is still enough.
  const loaded = await loadProject(options.dir, options.baseline !== undefined || options.ref !== undefined)
  const settings = driftSettings(loaded?.config.monitor)
  const {profile, artifact} = await baselineOf(options, loaded)

  let current: CurrentSource
  let window: MonitorResult['current']['window']
  let ignoredColumns: string[] | undefined
  if (options.input) {
    // With the artifact at hand, the batch is scored too, so its predictions are compared with the baseline's.
    const scorer =
      artifact && Object.keys(profile.predictions ?? {}).length > 0
        ? await artifactScorer(options.dir, options.ref ?? `${artifact.name}@${artifact.version}`, options.strict)
        : undefined
    try {
      current = await readBatch(options.input, profile, scorer?.score)
      ignoredColumns = scorer?.ignoredColumns()
    } finally {
      await scorer?.release()
    }
  } else {
    const since = options.since ?? loaded?.config.monitor?.since ?? DEFAULT_SINCE
    const ms = parseDuration(since)
    if (ms === undefined)
      throw new UsageError('MONITOR_SINCE_INVALID', `--since ${since} is not a duration`, {
        hint: `Pass a number and a unit: ${DURATION_EXAMPLES}.`,
      })
    const to = now()
    const from = new Date(to.getTime() - ms)
    const path = logPath(options, loaded)
    current = await readRequestLog({path, from, to, model: artifact?.name ?? loaded?.config.name}, profile)
    window = {since, from: from.toISOString(), to: to.toISOString()}
  }
  if (current.records === 0) {
    const where = options.input
      ? `${options.input} has no records`
      : `no /v1/predict requests with logged inputs in ${current.files.join(', ')} over the last ${window!.since}`
    throw new MlopsError('MONITOR_NO_DATA', `Nothing to compare with the baseline: ${where}`, {
      hint: options.input
        ? 'Pass a CSV or JSONL file with records.'
        : 'Widen the window (e.g. "mlops monitor --since 7d"), or check serving.request_log.inputs is "all" or "sampled".',
      details: {skipped: current.skipped},
    })
  }

  const report = detectDrift(profile, current.data, settings)
  const absent = report.features.filter((c) => c.reasons.includes(NOT_IN_CURRENT))
  if (report.features.length > 0 && absent.length === report.features.length) {
    // Records, but none of the columns the model was trained on: the wrong file, not data too thin to judge.
    const names = absent.map((c) => c.name)
    throw new UsageError(
      'MONITOR_COLUMNS_MISSING',
      `none of the baseline's features (${names.slice(0, 8).join(', ')}${names.length > 8 ? ', …' : ''}) is in ${options.input ?? current.files.join(', ')}`,
      {
        hint: options.input
          ? 'Pass the records the model is fed, with the feature columns by name (the CSV header or JSONL keys).'
          : 'Check that the request log belongs to this model (serving.request_log.path).',
      },
    )
  }
  const result: MonitorResult = {
    verdict: report.verdict,
    drifted: report.drifted,
    artifact,
    baseline: {source: profile.source, rows: profile.rows},
    current: {
      source: options.input ? 'input' : 'request_log',
      files: current.files.map(shortPath),
      records: current.records,
      window,
      skipped: current.skipped,
      ...(ignoredColumns && ignoredColumns.length > 0 ? {ignoredColumns} : {}),
    },
    settings: {minSamples: settings.minSamples, largeSample: settings.largeSample, thresholds: settings.thresholds},
    features: report.features,
    predictions: report.predictions,
    reports: {},
  }
  result.reports = await writeReports(options, {
    junit: () => monitorJunit(result, now()),
    html: () => monitorHtml(result, now()),
  })
  return result
}

/** The project's config, or undefined when it is optional and absent (defaults apply). */
async function loadProject(dir: string, optional: boolean): Promise<LoadedConfig | undefined> {
  try {
    return await loadConfig(dir)
  } catch (error) {
    if (optional && isMlopsError(error) && error.code === 'CONFIG_NOT_FOUND') return undefined
    throw error
  }
}

async function baselineOf(
  options: MonitorOptions,
  loaded: LoadedConfig | undefined,
): Promise<{profile: ReferenceProfile; artifact?: MonitorResult['artifact']}> {
  if (typeof options.baseline === 'object') return {profile: options.baseline}
  if (typeof options.baseline === 'string') return {profile: await readProfile(options.baseline)}
  const store = loaded ? storeFor(loaded) : new ArtifactStore(resolve(options.dir, DEFAULT_STORE))
  const opened = await store.open(options.ref, {name: loaded?.config.name})
  const {manifest} = opened
  const artifact = {name: manifest.name, version: manifest.version, digest: opened.record.digest}
  if (!manifest.profile) {
    throw new UsageError(
      'ARTIFACT_NO_PROFILE',
      `artifact ${manifest.name}@${manifest.version} has no baseline profile: it was packaged without reference data`,
      {
        hint: 'Set data.reference in mlops.yaml to the training data, then run "mlops package --bump patch" and monitor the new version.',
      },
    )
  }
  return {profile: manifest.profile, artifact}
}

async function readProfile(path: string): Promise<ReferenceProfile> {
  let value: unknown
  try {
    value = JSON.parse(await readFile(path, 'utf8'))
  } catch (error) {
    throw new UsageError('BASELINE_INVALID', `--baseline ${path} cannot be read as JSON: ${(error as Error).message}`, {
      hint: 'Pass a profile as written in an artifact manifest (its "profile" field).',
    })
  }
  const profile = (value as {profile?: unknown}).profile ?? value
  if (profile === null || typeof profile !== 'object' || typeof (profile as ReferenceProfile).features !== 'object') {
    throw new UsageError('BASELINE_INVALID', `--baseline ${path} is not a profile: it needs a "features" object`, {
      hint: 'Pass a profile as written in an artifact manifest (its "profile" field), or the manifest itself.',
    })
  }
  return profile as ReferenceProfile
}

function logPath(options: MonitorOptions, loaded: LoadedConfig | undefined): string {
  const configured = loaded?.config.serving?.request_log?.path
  const path = options.log ?? (configured && loaded ? resolve(loaded.dir, configured) : undefined)
  if (!path) {
    throw new UsageError(
      'MONITOR_NO_LOG',
      'No request log to read: serving.request_log.path is not set in mlops.yaml',
      {
        hint: 'Pass --log PATH or --input FILE, or set serving.request_log.path and serve with "mlops serve" to record traffic.',
      },
    )
  }
  if (!existsSync(path) && !existsSync(`${path}.1`)) {
    throw new UsageError('MONITOR_NO_LOG', `The request log ${path} does not exist`, {
      hint: 'Serve the model with "mlops serve" (serving.request_log.path set) to record traffic, or pass --input FILE.',
    })
  }
  return path
}
