// Human output shared by the rollout commands: a status block and ledger lines.
import {table} from '../system/format.js'
import {renderManifests} from '../targets/kubernetes/render.js'
import type {RolloutPlan, StatusResult} from './deploy.js'
import type {LedgerEntry, StagePoint} from './types.js'

export function renderStatus(status: StatusResult): string {
  const lines = [`${status.phase}: ${status.reason}`]
  const weights = status.candidate
    ? `${status.stable.version} ${status.stable.weight}%, ${status.candidate.version} ${status.candidate.weight}%${status.candidate.mirrored === undefined ? '' : ` (+ ${Math.round(status.candidate.mirrored * 100)}% mirrored)`}`
    : `${status.stable.version} 100%`
  lines.push(
    `  ${status.url}  ${weights}${status.auto && status.candidate ? '  (--auto)' : ''}  revision ${status.revision}`,
  )
  if (status.target?.namespace)
    lines.push(`  kubernetes: namespace ${status.target.namespace}, context ${status.target.context}`)
  if (status.target?.warning) lines.push(`  warning: ${status.target.warning}`)
  if (!status.gateway.running)
    lines.push(
      `  ${status.target ? 'routing' : 'gateway'}: not running${status.gateway.error ? ` (${status.gateway.error})` : ''}`,
    )
  const m = status.metrics
  if (m && status.candidate) {
    const row = (name: string, s: typeof m.stable) => [
      name,
      String(s.requests),
      s.requests ? `${((s.errors / s.requests) * 100).toFixed(2)}%` : '-',
      s.p50Ms === undefined ? '-' : s.p50Ms.toFixed(2),
      s.p99Ms === undefined ? '-' : s.p99Ms.toFixed(2),
    ]
    lines.push(
      '',
      indent(
        table(
          ['version', 'requests', 'errors', 'p50 ms', 'p99 ms'],
          [
            row(status.stable.version, m.stable),
            row(`${status.candidate.version}${m.shadow ? ' (shadow)' : ''}`, m.candidate),
          ],
        ),
      ),
    )
    if (m.shadow)
      lines.push(
        `  shadow: ${m.shadow.compared} compared, ${m.shadow.agreed} agree, ${m.shadow.labelFlips} label flips, max score diff ${m.shadow.maxScoreDiff.toPrecision(3)}, ${m.shadow.dropped} dropped`,
      )
  }
  if (status.analysis) {
    lines.push('', `  analysis: ${status.analysis.verdict}`)
    for (const gate of status.analysis.gates) lines.push(`    ${gate.verdict.padEnd(12)} ${gate.message}`)
  }
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

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n')
}
