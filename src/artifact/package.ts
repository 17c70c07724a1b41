// `mlops package`: checks the model, freezes the pipeline, runs golden cases, profiles reference data, and stores the artifact.
import {existsSync} from 'node:fs'
import {mkdir} from 'node:fs/promises'
import {basename, join, relative, resolve} from 'node:path'

import * as ort from 'onnxruntime-node'
import semver from 'semver'

import {type GoldenReport, predictRecords, readGoldenCases, runGoldenCases} from '../checks/golden.js'
import type {GoldenCase} from '../checks/golden.types.js'
import {type LoadedConfig, loadConfig} from '../config/load.js'
import {readRecords} from '../data/records.js'
import {MlopsError, UsageError, isMlopsError} from '../errors.js'
import {loadModel} from '../model/signature.js'
import {RecordProfiler, type ValueKind, flattenPrediction} from '../monitor/profile.js'
import {createPipeline, resolvePipeline} from '../pipeline/index.js'
import type {ResolvedPipeline} from '../pipeline/spec.js'
import type {InputRecord, Pipeline} from '../pipeline/types.js'
import {toolVersion} from '../paths.js'
import {createTag, gitInfo} from '../system/git.js'
import {writeArchive} from './archive.js'
import {storeFor} from './project.js'
import type {ArtifactStore, PutResult} from './store.js'
import type {ArtifactManifest, ArtifactRecord, ReferenceProfile} from './types.js'

export type Bump = 'major' | 'minor' | 'patch'

/** How the warning for a project without golden cases begins (the command says it louder). */
export const NO_GOLDEN_WARNING = 'no golden cases'

export interface PackageOptions {
  dir: string
  version?: string
  bump?: Bump
  gitTag?: boolean
  onProgress?: (step: string) => void
}

export interface PackageResult {
  name: string
  version: string
  digest: string
  size: number
  path: string
  /** False when the same content was already stored under this version. */
  created: boolean
  golden: {total: number; passed: number; failed: number}
  warnings: string[]
  git?: {commit?: string; branch?: string; dirty: boolean}
  tag?: string
}

const PROFILE_BATCH = 256

export async function packageProject(options: PackageOptions): Promise<PackageResult> {
  const progress = options.onProgress ?? (() => undefined)
  const loaded = await loadConfig(options.dir)
  const {config, dir} = loaded
  const store = storeFor(loaded)
  const {version, behind} = await chooseVersion(config.name, config.version, options, store)
  const warnings: string[] = []

  progress('loading the model')
  const modelPath = resolve(dir, config.model.path)
  if (!existsSync(modelPath))
    throw new UsageError('MODEL_NOT_FOUND', `model.path ${config.model.path} does not exist in ${dir}`, {
      hint: 'Fix model.path in mlops.yaml, or copy the .onnx file there.',
    })
  const model = await loadModel(modelPath, {intraOpThreads: config.model.threads})
  warnings.push(...model.warnings)

  try {
    progress('resolving the pipeline')
    const referencePath = config.data?.reference ? resolve(dir, config.data.reference) : undefined
    if (referencePath && !existsSync(referencePath))
      throw new UsageError('REFERENCE_NOT_FOUND', `data.reference ${config.data!.reference} does not exist`, {
        hint: 'Fix data.reference in mlops.yaml, or remove it to package without a drift baseline.',
      })
    const resolved = await resolvePipeline(
      config.pipeline ?? {},
      model.signature,
      referencePath ? recordsOf(referencePath) : undefined,
    )
    const pipeline = await createPipeline(resolved, model.signature, {moduleDir: dir})

    progress('running golden cases')
    const goldenPath = goldenFile(loaded)
    const cases: GoldenCase[] = goldenPath ? await readGoldenCases(goldenPath) : []
    const golden = await runGoldenCases(model, pipeline, cases)
    if (golden.failed > 0) throw goldenFailure(config.name, version, golden)
    if (cases.length === 0)
      warnings.push(`${NO_GOLDEN_WARNING}: regression checks will have no baseline (add data.golden to mlops.yaml)`)

    progress('profiling the reference data')
    const profile = referencePath ? await profileReference(referencePath, resolved, model, pipeline) : undefined
    if (!referencePath)
      warnings.push('no reference data: drift monitoring will have no baseline (add data.reference to mlops.yaml)')

    const git = await gitInfo(dir)
    if (git?.dirty) warnings.push('the git working tree has uncommitted changes: the artifact records dirty=true')

    progress('writing the archive')
    const modelEntry = `model/${basename(modelPath)}`
    const entries: {path: string; source: string | Buffer}[] = [
      {path: modelEntry, source: modelPath},
      {path: 'pipeline/pipeline.json', source: Buffer.from(JSON.stringify(resolved, null, 2) + '\n')},
    ]
    const modulePath = resolved.module ? resolve(dir, resolved.module) : undefined
    if (modulePath) entries.push({path: `pipeline/${basename(modulePath)}`, source: modulePath})
    if (goldenPath) entries.push({path: 'golden/golden.jsonl', source: goldenPath})

    const manifest: Omit<ArtifactManifest, 'files'> = {
      schemaVersion: 1,
      name: config.name,
      version,
      description: config.description,
      model: {
        path: modelEntry,
        sha256: '',
        size: 0,
        signature: model.signature,
        fetches: model.fetches,
        warnings: model.warnings,
      },
      pipeline: {
        path: 'pipeline/pipeline.json',
        spec: resolved,
        module: modulePath ? `pipeline/${basename(modulePath)}` : undefined,
      },
      golden: goldenPath ? {path: 'golden/golden.jsonl', count: cases.length} : undefined,
      profile,
      git,
      tool: {name: 'mlops', version: toolVersion()},
      runtime: {onnxruntime: onnxruntimeVersion(), node: process.versions.node.split('.')[0]},
    }
    await mkdir(store.root, {recursive: true})
    const put = async (version: string) => {
      const archive = await writeArchive({...manifest, version}, entries, {tmpDir: store.root})
      return store.put(archive.tmpPath, archive.manifest, archive)
    }
    const {record, created, repaired} = behind ? await putForward(put, version, behind, warnings) : await put(version)
    if (repaired)
      warnings.push(
        `the stored archive of ${config.name}@${version} was missing or damaged; this identical build replaced it`,
      )

    let tag: string | undefined
    if (options.gitTag) {
      if (!git)
        throw new UsageError('NOT_A_GIT_REPO', `--git-tag needs a git repository, and ${dir} is not in one`, {
          hint: 'Run "git init" first, or package without --git-tag.',
        })
      tag = `${config.name}-v${version}`
      await createTag(dir, tag, `${config.name} ${version} ${record.digest}`)
    }
    return toResult(record, created, golden, warnings, git, tag)
  } finally {
    await model.session.release().catch(() => undefined)
  }
}

/**
 * The version to package as. Without --version or --bump it is mlops.yaml's, unless the store already holds a newer one
 * (after a --bump, say): then it is the newest (`behind` names mlops.yaml's version), and putForward goes on from there.
 */
async function chooseVersion(
  name: string,
  configured: string | undefined,
  options: PackageOptions,
  store: ArtifactStore,
): Promise<{version: string; behind?: string}> {
  if (options.version !== undefined) {
    const valid = semver.valid(options.version)
    if (!valid)
      throw new UsageError('VERSION_INVALID', `--version ${options.version} is not a semantic version`, {
        hint: 'Use MAJOR.MINOR.PATCH, e.g. --version 1.2.0.',
      })
    return {version: valid}
  }
  if (options.bump) {
    const base = (await store.latestVersion(name)) ?? configured ?? '0.0.0'
    return {version: semver.inc(base, options.bump)!}
  }
  if (configured) {
    const newest = await store.latestVersion(name)
    const valid = semver.valid(configured)
    return newest && valid && semver.lt(valid, newest) ? {version: newest, behind: configured} : {version: configured}
  }
  const latest = await store.latestVersion(name)
  throw new UsageError('VERSION_MISSING', `No version to package ${name} as`, {
    hint: latest
      ? `The newest is ${latest}: run "mlops package --bump patch" (or --version X.Y.Z).`
      : 'Run "mlops package --version 0.1.0", or set version in mlops.yaml.',
  })
}

function goldenFile(loaded: LoadedConfig): string | undefined {
  if (loaded.config.data?.golden) return resolve(loaded.dir, loaded.config.data.golden)
  const fallback = join(loaded.dir, 'golden.jsonl')
  return existsSync(fallback) ? fallback : undefined
}

/**
 * Packaging from an mlops.yaml whose version is older than the newest stored: the same content as the newest is that
 * version again; other content takes the next patch version. Either way it says so, and never goes back.
 */
async function putForward(
  put: (version: string) => Promise<PutResult>,
  newest: string,
  configured: string,
  warnings: string[],
): Promise<PutResult> {
  const why = `mlops.yaml says version ${configured}, older than the newest stored ${newest}`
  try {
    const same = await put(newest)
    warnings.push(`${why}, which holds this same content: nothing new to package`)
    return same
  } catch (error) {
    if (!isMlopsError(error) || error.code !== 'VERSION_EXISTS') throw error
  }
  const next = semver.inc(newest, 'patch')!
  warnings.push(
    `${why}: packaged as ${next}, the next version. Set "version: ${next}" in mlops.yaml, or pass --bump or --version.`,
  )
  return put(next)
}

function goldenFailure(name: string, version: string, report: GoldenReport): MlopsError {
  const lines = report.results
    .filter((r) => !r.passed)
    .slice(0, 10)
    .map((r) => `  ${r.name}: ${r.error ?? r.mismatches.map((m) => `${m.field} ${m.message}`).join('; ')}`)
  return new MlopsError(
    'GOLDEN_FAILED',
    `${name}@${version} was not packaged: ${report.failed} of ${report.total} golden cases failed:\n${lines.join('\n')}`,
    {
      exitCode: 1,
      hint: 'Fix the model or the pipeline; if the new answers are the intended ones, update the expected values in the golden file.',
      details: report,
    },
  )
}

async function* recordsOf(path: string): AsyncIterable<InputRecord> {
  for await (const row of readRecords(path)) yield row.record
}

async function profileReference(
  path: string,
  resolved: ResolvedPipeline,
  model: Awaited<ReturnType<typeof loadModel>>,
  pipeline: Pipeline,
): Promise<ReferenceProfile> {
  const kinds: Record<string, ValueKind> = {}
  for (const f of resolved.features ?? [])
    if (f.type !== 'tensor' && f.type !== 'image')
      kinds[f.name] = f.type === 'number' || f.type === 'integer' ? 'numeric' : 'categorical'
  const inputs = new RecordProfiler(kinds)
  const predictions = new RecordProfiler()
  const names = Object.keys(kinds)
  const canPredict = names.length > 0
  let batch: InputRecord[] = []
  const flush = async () => {
    if (batch.length === 0) return
    const valid = batch.filter((_, i) => pipeline.validate([batch[i]]).length === 0)
    if (valid.length > 0)
      for (const p of await predictRecords(model, pipeline, valid)) predictions.add(flattenPrediction(p))
    batch = []
  }
  const seen = new Set<string>()
  for await (const {record} of readRecords(path)) {
    inputs.add(record)
    if (seen.size < names.length) for (const name of names) if (name in record) seen.add(name)
    if (!canPredict) continue
    batch.push(pick(record, kinds))
    if (batch.length >= PROFILE_BATCH) await flush()
  }
  await flush()
  // A baseline of nothing would make every later drift check "not enough data", never a warning: refuse it here.
  const hint =
    'Point data.reference in mlops.yaml at the training data (a CSV or JSONL with the feature columns by name), or remove it to package without a drift baseline.'
  if (inputs.rows === 0)
    throw new UsageError('REFERENCE_EMPTY', `data.reference ${basename(path)} has no records`, {hint})
  if (canPredict && seen.size === 0)
    throw new UsageError(
      'REFERENCE_COLUMNS_MISSING',
      `data.reference ${basename(path)} has none of the pipeline's features (${names.slice(0, 8).join(', ')})`,
      {hint},
    )
  return {
    rows: inputs.rows,
    source: basename(path),
    features: inputs.finish(),
    predictions: canPredict ? predictions.finish() : undefined,
  }
}

/** Only the pipeline's features: reference files usually carry the label and ids too. */
function pick(record: InputRecord, kinds: Record<string, ValueKind>): InputRecord {
  const out: InputRecord = {}
  for (const name of Object.keys(kinds)) if (name in record) out[name] = record[name]
  return out
}

function toResult(
  record: ArtifactRecord,
  created: boolean,
  golden: GoldenReport,
  warnings: string[],
  git: PackageResult['git'],
  tag?: string,
): PackageResult {
  return {
    name: record.name,
    version: record.version,
    digest: record.digest,
    size: record.size,
    path: relative(process.cwd(), record.path) || record.path,
    created,
    golden: {total: golden.total, passed: golden.passed, failed: golden.failed},
    warnings,
    git: git ? {commit: git.commit, branch: git.branch, dirty: git.dirty} : undefined,
    tag,
  }
}

export function onnxruntimeVersion(): string {
  return ort.env.versions.node ?? ort.env.versions.common
}
