// Human output shared by the rollout commands: a status block and ledger lines.
import {formatNumber, table} from '../system/format.js'
import {type Colors, MARK, PLAIN} from '../system/terminal.js'
import {renderManifests} from '../targets/kubernetes/render.js'
import type {RolloutPlan, StatusResult} from './deploy.js'
import type {Analysis, LedgerEntry, Phase, StagePoint, VersionStats} from './types.js'
import type {WatchFrame} from './watch.js'

/** The status block: phase and why, step n of m, a row per role, and each gate with its figures. */
export function renderStatus(status: StatusResult, c: Colors = PLAIN): string {
  const lines = [`${phase(status.phase, c)}  ${status.reason}`]
  const where = [
    ...(status.step ? [c.bold(`step ${status.step.index}/${status.step.count}: ${status.step.name}`)] : []),
    status.url,
    `revision ${status.revision}`,
    ...(status.auto && status.candidate ? ['--auto'] : []),
  ]
  lines.push(`  ${where.join('  ')}`)
  if (status.target?.namespace)
    lines.push(`  kubernetes: namespace ${status.target.namespace}, context ${status.target.context}`)
  if (status.target?.warning) lines.push(`  ${c.yellow(`warning: ${status.target.warning}`)}`)
  if (!status.gateway.running) {
    const what = `${status.target ? 'routing' : 'gateway'}: not running`
    lines.push(`  ${c.red(what)}${status.gateway.error ? ` (${status.gateway.error})` : ''}`)
  }
  lines.push('', indent(rolesTable(status, c)))
  const shadow = status.metrics?.shadow
  if (shadow && status.candidate)
    lines.push(
      `  shadow: ${shadow.compared} compared, ${shadow.agreed} agree, ${shadow.labelFlips} label flips, max score diff ${shadow.maxScoreDiff.toPrecision(3)}, ${shadow.dropped} dropped`,
    )
  const agreement = status.target?.shadowAgreement
  if (agreement && !agreement.available && status.stage === 'shadow' && status.candidate)
    lines.push(`  ${c.yellow(`shadow agreement: unavailable on the Kubernetes target: ${agreement.reason}`)}`)
  if (status.analysis) lines.push('', renderGates(status.analysis, c))
  return lines.join('\n')
}

/** One row per role: stable, and the candidate as canary or shadow, with what it answered in this step. */
function rolesTable(status: StatusResult, c: Colors): string {
  const m = status.metrics
  const row = (role: string, version: string, share: string, s: VersionStats | undefined) => [
    role,
    version,
    share,
    s ? formatNumber(s.requests) : '-',
    s?.requests ? `${((s.errors / s.requests) * 100).toFixed(2)}%` : '-',
    s?.p50Ms === undefined ? '-' : s.p50Ms.toFixed(2),
    s?.p99Ms === undefined ? '-' : s.p99Ms.toFixed(2),
  ]
  const rows = [row('stable', status.stable.version, `${status.stable.weight}%`, m?.stable)]
  const candidate = status.candidate
  if (candidate) {
    const shadow = status.stage === 'shadow'
    const share = shadow ? `mirror ${Math.round((candidate.mirrored ?? 0) * 100)}%` : `${candidate.weight}%`
    const errors = m && m.candidate.errors > 0
    const cells = row(shadow ? 'shadow' : 'canary', candidate.version, share, m?.candidate)
    if (errors) cells[4] = c.red(cells[4])
    rows.push(cells)
  }
  return table(['role', 'version', 'traffic', 'requests', 'errors', 'p50 ms', 'p99 ms'], rows, {right: [3, 4, 5, 6]})
}

/** Each gate by name, marked, with its state and figures; the header never says "inconclusive" beside passing gates. */
export function renderGates(
  analysis: Pick<Analysis, 'verdict' | 'gates'> & {reason?: string},
  c: Colors = PLAIN,
): string {
  const nameWidth = Math.max(...analysis.gates.map((g) => g.gate.length))
  const rows = analysis.gates.map((g) => {
    const detail = g.message.replace(/^[a-z ]+: /i, (prefix) => (prefix.startsWith('waiting') ? prefix : ''))
    const name = g.gate.padEnd(nameWidth)
    if (g.verdict === 'pass') return `  ${c.green(MARK.pass)} ${name}  ${c.green('passing')}  ${detail}`
    if (g.verdict === 'fail') return `  ${c.red(MARK.fail)} ${c.bold(name)}  ${c.red(c.bold('failing'))}  ${detail}`
    return `  ${c.yellow(MARK.wait)} ${name}  ${c.yellow(g.message)}`
  })
  return [`  gates: ${analysisWord(analysis, c)}`, ...rows].join('\n')
}

function analysisWord(analysis: Pick<Analysis, 'verdict' | 'gates'> & {reason?: string}, c: Colors): string {
  if (analysis.verdict === 'pass') return c.green('all passed')
  if (analysis.verdict === 'fail') return c.red('failed')
  const baking = analysis.gates.every((g) => g.verdict === 'pass')
  return c.yellow(baking ? (analysis.reason ?? 'baking') : 'waiting for data')
}

const PHASE_COLOR: Record<Phase, keyof Colors> = {
  Healthy: 'green',
  Progressing: 'cyan',
  Paused: 'yellow',
  Degraded: 'red',
  RolledBack: 'magenta',
}

export function phase(name: Phase, c: Colors = PLAIN): string {
  const paint = c[PHASE_COLOR[name]] as (text: string) => string
  return c.bold(paint(name))
}

/** `status --watch`: a header with the time, the status (or a wait for the first deploy), and the steps of the rollout. */
export function renderWatch(frame: WatchFrame, c: Colors = PLAIN): string {
  const header = c.dim(`mlops status --watch  ${clock(frame.at)}  (Ctrl-C to stop)`)
  const lines = [header, '']
  if (frame.error) lines.push(`${c.red('cannot read the status:')} ${frame.error} (trying again)`)
  else if (!frame.status) lines.push(c.yellow('waiting for a deploy: nothing is deployed in this project yet'))
  else lines.push(renderStatus(frame.status, c))
  if (frame.rollout.length > 0) lines.push('', renderRollout(frame.rollout, c))
  return lines.join('\n')
}

/** The steps of a rollout from the ledger, and the gates of its last entry when that entry ended it. */
export function renderRollout(entries: readonly LedgerEntry[], c: Colors = PLAIN): string {
  const version = entries[0].version
  const lines = [`  rollout of ${version}:`]
  for (const e of entries) {
    const to = e.to ? point(e.to) : 'stopped'
    const mark = e.action === 'rollback' ? c.red(MARK.fail) : e.to?.stage === 'full' ? c.green(MARK.pass) : '→'
    lines.push(
      `  ${mark} ${clock(new Date(e.at))}  ${e.automatic ? `${e.action} (auto)` : e.action} → ${to}: ${e.reason}`,
    )
  }
  const last = entries.at(-1)!
  if (entries.length > 1 && last.analysis && (last.action === 'rollback' || last.to?.stage === 'full'))
    lines.push(`  at the ${last.action === 'rollback' ? 'rollback' : 'promotion'}:`, renderGates(last.analysis, c))
  return lines.join('\n')
}

/** A dry run: the change, then what runs now. */
export function renderPlan(plan: RolloutPlan): string {
  const verb = plan.action === 'rollback' ? 'roll back' : plan.action
  const change = plan.plan
  const lines = [
    change
      ? `would ${verb} ${plan.version}: ${change.from ? point(change.from) : 'nothing deployed'} → ${change.to ? point(change.to) : 'nothing'} (${change.reason})`
      : `${plan.version} already serves all traffic; nothing would change`,
  ]
  lines.push('dry run: nothing was started, locked or written')
  if (plan.status) lines.push('', renderStatus(plan.status))
  if (plan.manifests) lines.push('', 'manifests after the change:', renderManifests(plan.manifests).trimEnd())
  return lines.join('\n')
}

export function renderLedger(entries: LedgerEntry[]): string {
  return table(
    ['when', 'who', 'action', 'version', 'from', 'to', 'reason'],
    entries.map((e) => [
      e.at.replace('T', ' ').slice(0, 19),
      e.actor,
      e.automatic ? `${e.action} (auto)` : e.action,
      e.version,
      e.from ? point(e.from) : '-',
      e.to ? point(e.to) : '-',
      e.reason,
    ]),
  )
}

function point(p: StagePoint): string {
  return p.stage === 'full'
    ? `${p.stable} full`
    : p.stage === 'shadow'
      ? `${p.candidate} shadow`
      : `${p.candidate} ${p.weight}%`
}

function clock(at: Date): string {
  return at.toLocaleTimeString('en-GB')
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n')
}
