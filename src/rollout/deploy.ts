// What deploy, promote, rollback, status, history and down do: plan under the lock, prepare the target, commit, reconcile.
import {createHash} from 'node:crypto'
import {existsSync, statSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {resolve} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {verifyArtifact} from '../artifact/inspect.js'
import {verificationError} from '../artifact/verification.js'
import {type AuthMode, authSettings} from '../auth/config.js'
import type {TlsSettings} from '../http/tls.js'
import {loadConfig} from '../config/load.js'
import {requestLogPath} from '../monitor/performance.js'
import {ExitCode, MlopsError, UsageError} from '../errors.js'
import {gitUser} from '../system/git.js'
import {imageFor} from '../targets/kubernetes/config.js'
import {resolveImage} from '../targets/kubernetes/image.js'
import {type OpenedTarget, type TargetChoice, openTarget} from '../targets/select.js'
import {type DeployTarget, type TargetRuntime, serversOf} from '../targets/types.js'
import {deploySettings} from './config.js'
import {calculatePhase, stageLabel} from './phase.js'
import {type Transition, decideAuto, planDeploy, planPromote, planRollback, planUnavailable} from './plan.js'
import type {RolloutStore} from './store.js'
import type {
  Analysis,
  Change,
  LedgerEntry,
  Measurement,
  Outcome,
  Phase,
  Release,
  RolloutState,
  Stage,
  StepMetrics,
} from './types.js'

interface Common {
  dir: string
  /** Recorded in the ledger; default the git user, then the OS user. */
  actor?: string
  now?: () => Date
  /** Which target (--target, else deploy.target, else local) and the cluster flags. */
  where?: TargetChoice
}

export interface DeployOptions extends Common {
  /** An artifact ref (version, name@version, digest, .tar path); with `model`, the version to call it. */
  ref: string
  stage: Stage
  weight?: number
  auto?: boolean
  port?: number
  /** In place of serving.auth's mode, for the gateway's client port. */
  authMode?: AuthMode
  /** In place of serving.tls, for the gateway's client port. */
  tls?: TlsSettings
  /** A bare .onnx file served as `ref` (development and tests): no artifact, so no verification. */
  model?: string
  env?: Record<string, string>
  /** A `mlops test` report (JSON with digest and passed) for the artifact. */
  testReport?: string
}

/** What every rollout command returns: the change made (if any) and where the rollout stands now. */
export interface RolloutResult {
  action: 'deploy' | 'promote' | 'rollback'
  changed: boolean
  version: string
  entry?: LedgerEntry
  status: StatusResult
}

/** What a dry run returns: the change the command would make (none: nothing to do), and the status of what runs now. */
export interface RolloutPlan {
  action: RolloutResult['action']
  dryRun: true
  changed: boolean
  version: string
  plan?: Change
  /** Absent before the first release. */
  status?: StatusResult
  /** Kubernetes target: every object the state after the change needs (what --output yaml writes). */
  manifests?: unknown[]
}

export interface StatusResult {
  phase: Phase
  reason: string
  revision: number
  stage: Stage
  /** Where a rollout stands among its steps (shadow, then each canary weight): absent when one release serves alone. */
  step?: RolloutStep
  auto: boolean
  url: string
  stable: {version: string; digest?: string; weight: number}
  candidate?: {version: string; digest?: string; weight: number; mirrored?: number}
  analysis?: Analysis
  metrics?: StepMetrics
  target?: {
    kind: 'local' | 'kubernetes'
    namespace?: string
    context?: string
    warning?: string
    /** Whether shadow answers are compared on this target, and why not. */
    shadowAgreement?: {available: boolean; reason?: string}
  }
  gateway: {running: boolean; error?: string; pid?: number; revision?: number; servers?: TargetRuntime['servers']}
  outcome?: Outcome
}

export interface RolloutStep {
  /** 1-based. */
  index: number
  count: number
  /** `shadow` or `canary 25%`. */
  name: string
}

/** Shadow is step 1 and each of deploy.steps one more; a weight off the plan (--canary 7, promote --to) adds its own. */
export function rolloutStep(state: Pick<RolloutState, 'stage' | 'weight' | 'steps'>): RolloutStep | undefined {
  if (state.stage === 'full') return undefined
  const planned = state.steps.filter((w) => w < 100)
  const offPlan = state.stage === 'canary' && !planned.includes(state.weight) ? 1 : 0
  const index = state.stage === 'shadow' ? 1 : 2 + planned.filter((w) => w < state.weight).length
  return {index, count: 1 + planned.length + offPlan, name: stageLabel(state)}
}

export async function deploy(options: DeployOptions): Promise<RolloutResult> {
  const {ctx, release, plan} = await deployPlanner(options)
  return ctx.store.withLock(
    `mlops deploy ${release.version}${options.stage === 'full' ? ' --full' : ` --${options.stage}`}`,
    async () => {
      const current = await ctx.store.readState()
      const transition = plan(current)
      if (!transition) {
        // Already the desired state; make sure it is also what runs (the gateway may have been killed).
        await ctx.target.prepare(Object.values(serversOf(current!)), current!.port, current!.tls)
        await ctx.target.reconcile()
        return {action: 'deploy', changed: false, version: release.version, status: await statusOf(ctx, current!)}
      }
      const entry = await commit(ctx, transition, current)
      return {
        action: 'deploy',
        changed: true,
        version: release.version,
        entry,
        status: await statusOf(ctx, transition.state),
      }
    },
  )
}

/** Everything deploy decides before it takes the lock: the config, the release (verified), and how to plan from a state. */
async function deployPlanner(options: DeployOptions): Promise<{ctx: Context; release: Release; plan: Planner}> {
  const ctx = await context(options, true)
  const loaded = ctx.opened.config ?? (await loadConfig(options.dir))
  const settings = deploySettings(loaded.config.deploy)
  if (options.port !== undefined) settings.port = options.port
  settings.auth = authSettings(loaded.config.serving?.auth, loaded.dir, options.authMode)
  const tls = loaded.config.serving?.tls
  settings.tls =
    options.tls ??
    (tls && {
      cert: resolve(loaded.dir, tls.cert),
      key: resolve(loaded.dir, tls.key),
      ...(tls.client_ca ? {clientCa: resolve(loaded.dir, tls.client_ca)} : {}),
      ...(tls.upstream_ca ? {upstreamCa: resolve(loaded.dir, tls.upstream_ca)} : {}),
    })
  // The outcome gate reads both versions' predictions from the request log, and the feedback beside it.
  if (settings.analysis.outcome)
    settings.analysis.outcome.requestLog = requestLogPath(undefined, loaded, 'deploy.analysis.gates.outcome')
  const resolved = await resolveRelease(options, loaded.dir, settings.analysis.requireTest)
  const release =
    ctx.opened.kind === 'kubernetes'
      ? {
          ...resolved,
          image: await resolveImage({
            reference: imageFor(resolved.version, loaded.config.deploy?.kubernetes, options.where?.image),
            artifactDigest: resolved.digest,
            allowUnverified: options.where?.allowUnverifiedImage,
          }),
        }
      : resolved
  return {
    ctx,
    release,
    plan: (current) =>
      planDeploy(
        current,
        {
          release,
          stage: options.stage,
          weight: options.weight,
          auto: Boolean(options.auto),
          settings,
          actor: ctx.actor,
        },
        ctx.now(),
      ),
  }
}

type Planner = (current: RolloutState | undefined) => Transition | undefined

export interface PromoteOptions extends Common {
  to?: number
}

export async function promote(options: PromoteOptions): Promise<RolloutResult> {
  const ctx = await context(options)
  return ctx.store.withLock(`mlops promote${options.to === undefined ? '' : ` --to ${options.to}`}`, async () => {
    const current = await ctx.store.readState()
    const transition = promotePlanner(options, ctx)(current)
    const entry = await commit(ctx, transition, current)
    return {
      action: 'promote',
      changed: true,
      version: transition.change.version,
      entry,
      status: await statusOf(ctx, transition.state),
    }
  })
}

export interface RollbackOptions extends Common {
  reason?: string
}

export async function rollback(options: RollbackOptions): Promise<RolloutResult> {
  const ctx = await context(options)
  return ctx.store.withLock('mlops rollback', async () => {
    const current = await ctx.store.readState()
    const transition = rollbackPlanner(options, ctx)(current)
    const entry = await commit(ctx, transition, current)
    return {
      action: 'rollback',
      changed: true,
      version: transition.change.version,
      entry,
      status: await statusOf(ctx, transition.state),
    }
  })
}

function promotePlanner(options: PromoteOptions, ctx: Context): (current: RolloutState | undefined) => Transition {
  return (current) => planPromote(current, {to: options.to}, ctx.now())
}

function rollbackPlanner(options: RollbackOptions, ctx: Context): (current: RolloutState | undefined) => Transition {
  return (current) => planRollback(current, {reason: options.reason ?? `rolled back by ${ctx.actor}`}, ctx.now())
}

export type DryRunRequest =
  | {action: 'deploy'; options: DeployOptions}
  | {action: 'promote'; options: PromoteOptions}
  | {action: 'rollback'; options: RollbackOptions}

/**
 * `--dry-run`: the same planning function on the state on disk, so a dry run refuses what the command would refuse (and a
 * deploy verifies its artifact). Nothing is started, locked or written; the state file is replaced whole, so this reads
 * one state or the next.
 */
export async function dryRun(request: DryRunRequest): Promise<RolloutPlan> {
  if (request.action === 'deploy') {
    const {ctx, release, plan} = await deployPlanner(request.options)
    return planned(ctx, 'deploy', release.version, plan)
  }
  const ctx = await context(request.options)
  return planned(
    ctx,
    request.action,
    undefined,
    request.action === 'promote' ? promotePlanner(request.options, ctx) : rollbackPlanner(request.options, ctx),
  )
}

async function planned(
  ctx: Context,
  action: RolloutResult['action'],
  version: string | undefined,
  plan: Planner,
): Promise<RolloutPlan> {
  const current = await ctx.store.readState()
  const transition = plan(current)
  const next = transition?.state ?? current
  const manifests = next && ctx.target.manifests ? ctx.target.manifests(next) : undefined
  return {
    action,
    dryRun: true,
    changed: transition !== undefined,
    version: transition?.change.version ?? version ?? current!.stable.version,
    ...(transition ? {plan: transition.change} : {}),
    ...(current ? {status: await statusOf(ctx, current)} : {}),
    ...(manifests ? {manifests} : {}),
  }
}

export async function status(options: Common): Promise<StatusResult> {
  const ctx = await context(options)
  const state = await ctx.store.readState()
  if (!state) throw notDeployed()
  return statusOf(ctx, state)
}

export interface HistoryResult {
  entries: LedgerEntry[]
  /** Ledger lines that were not readable (a write torn by a crash). */
  skipped: number
}

export async function history(options: {dir: string; limit?: number; where?: TargetChoice}): Promise<HistoryResult> {
  const {store} = await openTarget(requireDirectory(options.dir), options.where)
  const {entries, skipped} = await store.readLedger()
  return {entries: options.limit === undefined ? entries : entries.slice(-options.limit), skipped}
}

export interface DownResult {
  stopped: boolean
  pid?: number
  entry?: LedgerEntry
}

export async function down(options: Common): Promise<DownResult> {
  const ctx = await context(options)
  // The gateway holds the lock for an automatic step (a promotion, a rollback) for moments: down waits it out.
  return ctx.store.withLock(
    'mlops down',
    async () => {
      // A damaged state must not keep the gateway running: down is the way out its error points to.
      const state = await ctx.store.readState().catch((error: unknown) => {
        if ((error as MlopsError).code !== 'STATE_CORRUPT') throw error
        return undefined
      })
      const stopped = await ctx.target.stop()
      // Absent or damaged, the state goes (removing an absent one is a no-op); only a readable one is recorded.
      await ctx.store.removeState()
      if (!state) return stopped
      const entry: LedgerEntry = {
        action: 'down',
        automatic: false,
        version: state.stable.version,
        ...(state.stable.digest ? {digest: state.stable.digest} : {}),
        from: {
          stage: state.stage,
          weight: state.weight,
          stable: state.stable.version,
          ...(state.candidate ? {candidate: state.candidate.version} : {}),
        },
        reason: state.candidate ? `stopped during the rollout of ${state.candidate.version}` : 'stopped',
        at: ctx.now().toISOString(),
        actor: ctx.actor,
        revision: state.revision + 1,
      }
      await ctx.store.append(entry)
      return {...stopped, entry}
    },
    {waitMs: 30_000},
  )
}

export interface WaitOptions {
  dir: string
  version: string
  /** Only outcomes after this revision count. */
  revision: number
  timeoutMs?: number
  pollMs?: number
  onUpdate?: (status: StatusResult) => void
  where?: TargetChoice
  now?: () => Date
}

/** Blocks until the rollout of `version` ends; throws ROLLED_BACK (exit 1) naming the gate, or IN_PROGRESS (exit 3) past the timeout. */
export async function waitForOutcome(options: WaitOptions): Promise<Outcome> {
  const ctx = await context(options)
  const deadline = options.timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + options.timeoutMs
  for (;;) {
    // A cluster has no mlops controller: under --auto this command judges each step and moves it on.
    if (ctx.target.drivesRollout) await autoStep(ctx)
    const state = await ctx.store.readState()
    if (!state)
      throw new MlopsError('STOPPED', `the deployment was stopped while waiting for ${options.version}`, {
        hint: 'See "mlops history".',
      })
    const outcome = state.outcome
    // An outcome for this version may be written before the gateway has applied it: keep polling until it has.
    const ended = state.revision > options.revision && outcome?.version === options.version && !state.candidate
    if (ended && (await applied(ctx, state))) {
      if (outcome.result === 'promoted') return outcome
      throw new MlopsError(
        'ROLLED_BACK',
        `${options.version} was rolled back${outcome.gate ? ` by the ${outcome.gate} gate` : ''}: ${outcome.reason}`,
        {
          hint: 'See "mlops history" for the figures; fix the model, package a new version and deploy it.',
          details: outcome,
        },
      )
    }
    if (!ended && state.candidate?.version !== options.version) {
      throw new MlopsError(
        'SUPERSEDED',
        `the rollout of ${options.version} ended without an outcome for it (now: ${state.candidate?.version ?? state.stable.version})`,
        {hint: 'See "mlops history".'},
      )
    }
    if (options.onUpdate) {
      const status = await statusOf(ctx, state)
      // Between a state written and the gateway following it, the figures are another step's: nothing new to say yet.
      if (status.gateway.revision === undefined || status.gateway.revision === state.revision) options.onUpdate(status)
    }
    if (Date.now() >= deadline) {
      throw new MlopsError(
        'IN_PROGRESS',
        `${options.version} is still rolling out after ${Math.round(options.timeoutMs! / 1000)}s`,
        {
          exitCode: ExitCode.inProgress,
          hint: 'Run "mlops status --watch" to follow it, or "mlops deploy … --wait" again.',
        },
      )
    }
    await sleep(options.pollMs ?? 500)
  }
}

/** Whether the target runs the state on disk: an outcome counts once routing follows it. */
async function applied(ctx: Context, state: RolloutState): Promise<boolean> {
  const {runtime} = await ctx.target.observe()
  return runtime === undefined || (runtime.revision ?? 0) >= state.revision
}

/** A mistyped --dir is an error, not an empty deployment (status, history and down would report nothing and carry on). */
function requireDirectory(dir: string): string {
  if (!statSync(dir, {throwIfNoEntry: false})?.isDirectory())
    throw new UsageError('DIR_NOT_FOUND', `the project directory ${resolve(dir)} does not exist`, {
      hint: 'Check --dir (or MLOPS_DIR): it names the folder where mlops.yaml lives.',
    })
  return dir
}

interface Context {
  store: RolloutStore
  target: DeployTarget
  opened: OpenedTarget
  actor: string
  now: () => Date
}

/** `fresh`: a rollout may begin, so a cluster's workload settings come from mlops.yaml and the flags, not the cluster. */
async function context(
  options: {dir: string; actor?: string; now?: () => Date; where?: TargetChoice},
  fresh = false,
): Promise<Context> {
  const projectDir = requireDirectory(options.dir)
  const opened = await openTarget(projectDir, options.where, fresh)
  // An empty --actor (an unset variable in CI) is no name: the ledger falls back as if none was given.
  const actor =
    options.actor?.trim() || ((await gitUser(projectDir)) ?? process.env.USER ?? process.env.USERNAME ?? 'unknown')
  return {store: opened.store, target: opened.target, opened, actor, now: options.now ?? (() => new Date())}
}

/**
 * One judgement of an --auto rollout by the command itself (targets without a controller): under the lock, the same
 * phase and decision the local gateway's loop makes, committed the same way.
 */
async function autoStep(ctx: Context): Promise<void> {
  const state = await ctx.store.readState()
  if (!state?.auto || !state.candidate) return
  const {measurement} = await ctx.target.observe()
  const now = ctx.now()
  const phase = calculatePhase(state, measurement, now)
  const transition = decideAuto(state, phase, now)
  if (!transition) return
  await ctx.store
    .withLock(`mlops deploy --wait (automatic ${transition.change.action})`, async () => {
      if ((await ctx.store.readState())?.revision !== state.revision) return
      await commit(ctx, transition, state, {
        actor: `mlops --auto${state.startedBy ? `, started by ${state.startedBy}` : ''}`,
      })
    })
    .catch((error: MlopsError) => {
      // Another command is changing the rollout right now: judge again at the next poll.
      if (error.code !== 'DEPLOY_LOCKED') throw error
    })
}

/**
 * The one way a change lands: the new servers ready first (the gateway restarted if it died), then the desired state and
 * its ledger entry written (the commit point), then the gateway told to follow. A crash after the commit is picked up by
 * the gateway's own loop, which re-reads the state.
 */
async function commit(
  ctx: Context,
  transition: Transition,
  current: RolloutState | undefined,
  record: {actor?: string} = {},
): Promise<LedgerEntry> {
  const {state, change} = transition
  const before = current ? await ctx.target.observe() : undefined
  try {
    await ctx.target.prepare(Object.values(serversOf(state)), state.port, state.tls)
  } catch (error) {
    if ((error as MlopsError).code === 'RELEASE_UNAVAILABLE' && current) await rollBackUnavailable(ctx, current, error)
    throw error
  }
  await ctx.target.preflight?.(state)
  const analysis =
    current?.candidate && before ? calculatePhase(current, before.measurement, ctx.now()).analysis : undefined
  const entry = await ctx.store.commit(transition, {
    at: ctx.now(),
    actor: record.actor ?? ctx.actor,
    analysis,
    metrics: before?.measurement.metrics,
    testReport: deployedReport(state, change),
  })
  await ctx.target.reconcile()
  return entry
}

/**
 * A release that never became available (its pods cannot pull the image, or crash) is rolled back: recorded with the
 * reason read from its pods, and its resources removed by the reconcile of the state without it. Stable's own pods being
 * unavailable roll nothing back; the command fails with the state and the ledger as they were.
 */
async function rollBackUnavailable(ctx: Context, current: RolloutState, error: unknown): Promise<void> {
  const {version, reason} = (error as MlopsError).details as {version: string; reason: string}
  const transition = planUnavailable(current, version, reason, ctx.now())
  if (!transition) return
  await ctx.store.commit(transition, {at: ctx.now(), actor: ctx.actor})
  await ctx.target.reconcile()
}

/** The test report behind a deploy: the candidate's, or the stable's when the release went straight to full. */
function deployedReport(state: RolloutState, change: Transition['change']): string | undefined {
  if (change.action !== 'deploy') return undefined
  return state.candidate?.testReport ?? (state.stable.version === change.version ? state.stable.testReport : undefined)
}

async function statusOf(ctx: Context, state: RolloutState): Promise<StatusResult> {
  const {measurement, runtime} = await ctx.target.observe()
  const phase = calculatePhase(state, measurement, ctx.now())
  const candidateWeight = state.stage === 'canary' ? state.weight : 0
  const step = rolloutStep(state)
  return {
    phase: phase.phase,
    reason: phase.reason,
    revision: state.revision,
    stage: state.stage,
    ...(state.candidate && step ? {step} : {}),
    auto: state.auto,
    url: ctx.target.url?.() ?? `${state.tls ? 'https' : 'http'}://127.0.0.1:${state.port}`,
    stable: {
      version: state.stable.version,
      ...(state.stable.digest ? {digest: state.stable.digest} : {}),
      weight: 100 - candidateWeight,
    },
    ...(state.candidate && state.stage !== 'full'
      ? {
          candidate: {
            version: state.candidate.version,
            ...(state.candidate.digest ? {digest: state.candidate.digest} : {}),
            weight: candidateWeight,
            ...(state.stage === 'shadow' ? {mirrored: state.shadowShare} : {}),
          },
        }
      : {}),
    ...(phase.analysis ? {analysis: phase.analysis} : {}),
    ...(measurement.metrics ? {metrics: measurement.metrics} : {}),
    ...(ctx.opened.kind === 'kubernetes' ? {target: targetView(ctx, state)} : {}),
    gateway: gatewayView(measurement, runtime),
    ...(state.outcome ? {outcome: state.outcome} : {}),
  }
}

function targetView(ctx: Context, state: RolloutState): NonNullable<StatusResult['target']> {
  const {namespace, context} = ctx.target.where?.() ?? {}
  const unavailable = ctx.target.shadowAgreementUnavailable
  // A tag kept as given (--allow-unverified-image): whatever the registry points it at later is what new pods run.
  const unpinned = [state.stable, ...(state.candidate ? [state.candidate] : [])]
    .filter((r) => r.image && !r.image.includes('@sha256:'))
    .map((r) => `${r.version} runs the tag ${r.image}, not pinned by digest: new pods pull whatever it points at then`)
  const warnings = [...(ctx.target.warning ? [ctx.target.warning] : []), ...unpinned]
  return {
    kind: ctx.opened.kind,
    ...(namespace ? {namespace} : {}),
    ...(context ? {context} : {}),
    ...(warnings.length > 0 ? {warning: warnings.join('; ')} : {}),
    ...(unavailable ? {shadowAgreement: {available: false, reason: unavailable}} : {}),
  }
}

function gatewayView(measurement: Measurement, runtime: TargetRuntime | undefined): StatusResult['gateway'] {
  if (!runtime) return {running: false, ...(measurement.error ? {error: measurement.error} : {})}
  return {
    running: true,
    ...(runtime.pid === undefined ? {} : {pid: runtime.pid}),
    ...(runtime.revision === undefined ? {} : {revision: runtime.revision}),
    servers: runtime.servers,
  }
}

async function resolveRelease(options: DeployOptions, projectDir: string, requireTest: boolean): Promise<Release> {
  const env = options.env && Object.keys(options.env).length > 0 ? {env: options.env} : {}
  if (options.model) {
    const model = resolve(projectDir, options.model)
    if (!existsSync(model))
      throw new UsageError('MODEL_NOT_FOUND', `the model file ${options.model} does not exist`, {
        hint: 'Pass the path of an .onnx file, or deploy a packaged artifact by version.',
      })
    if (requireTest)
      throw new UsageError(
        'TEST_REQUIRED',
        'deploy.analysis.gates.test.required is set, and a bare model file has no test report',
        {hint: 'Package it ("mlops package"), test it ("mlops test"), then deploy the artifact.'},
      )
    return {version: options.ref, model, ...env}
  }
  const report = await verifyArtifact({dir: projectDir, ref: options.ref})
  if (!report.ok) throw verificationError(report)
  const path = resolve(projectDir, options.ref)
  const ref = options.ref.endsWith('.tar') && existsSync(path) ? path : report.digest
  const testReport = await checkTestReport(
    options.testReport,
    report.digest,
    requireTest,
    report.version ?? options.ref,
  )
  return {
    version: report.version ?? options.ref,
    ref,
    digest: report.digest,
    ...(testReport ? {testReport} : {}),
    ...env,
  }
}

/** The test gate at deploy time: a report for this very digest that passed; its own sha256 goes into the ledger. */
async function checkTestReport(
  path: string | undefined,
  digest: string,
  required: boolean,
  version: string,
): Promise<string | undefined> {
  if (!path) {
    if (required)
      throw new MlopsError(
        'TEST_REQUIRED',
        `deploy.analysis.gates.test.required is set and no "mlops test" report was given for ${version}`,
        {hint: `Run "mlops test ${version} --json > report.json", then deploy with --test-report report.json.`},
      )
    return undefined
  }
  const text = await readFile(path, 'utf8').catch(() => {
    throw new UsageError('TEST_REPORT_NOT_FOUND', `cannot read the test report ${path}`, {
      hint: 'Pass the file "mlops test --json" wrote.',
    })
  })
  // `mlops test --json` names the artifact under `artifact.digest`.
  let report: {artifact?: {digest?: string}; digest?: string; passed?: boolean; ok?: boolean}
  try {
    report = JSON.parse(text) as typeof report
  } catch {
    throw new UsageError('TEST_REPORT_INVALID', `the test report ${path} is not JSON`, {
      hint: 'Pass the file "mlops test --json" wrote.',
    })
  }
  const tested = report.artifact?.digest ?? report.digest
  if (tested !== digest)
    throw new MlopsError(
      'TEST_REPORT_MISMATCH',
      `the test report ${path} is for ${tested ?? 'no digest'}, not ${version} (${digest})`,
      {hint: `Run "mlops test ${version}" and pass its report.`},
    )
  if (report.passed !== true && report.ok !== true)
    throw new MlopsError('TEST_FAILED', `"mlops test" did not pass for ${version} (${path})`, {
      hint: 'Fix what the report lists, package a new version, test and deploy it.',
    })
  return `sha256:${createHash('sha256').update(text).digest('hex')}`
}

function notDeployed(): UsageError {
  return new UsageError('NOT_DEPLOYED', 'nothing is deployed in this project', {
    hint: 'Deploy a first release with "mlops deploy VERSION --full".',
  })
}
