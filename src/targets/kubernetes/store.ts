// The rollout's state and ledger in one ConfigMap of the namespace (one write commits both), and a coordination.k8s.io
// Lease as the deploy lock: every machine and CI job with access to the namespace sees the same rollout.
import {hostname} from 'node:os'
import {setTimeout as sleep} from 'node:timers/promises'

import {ExitCode, MlopsError} from '../../errors.js'
import type {Transition} from '../../rollout/plan.js'
import {type ChangeRecord, type Ledger, type LockHolder, ledgerEntry, parseLedger} from '../../rollout/state.js'
import {isAlive, processStart} from '../../system/process.js'
import type {RolloutStore} from '../../rollout/store.js'
import type {LedgerEntry, RolloutState} from '../../rollout/types.js'
import type {Cluster} from './client.js'
import type {WorkloadSettings} from './config.js'
import {MANAGED_BY, dnsLabel, selectorLabels} from './manifests.js'

/** A ConfigMap holds 1 MiB: past this the oldest ledger entries are dropped to make room for the newest. */
const LEDGER_LIMIT = 900_000
const LEASE_SECONDS = 30

interface ConfigMap {
  apiVersion: 'v1'
  kind: 'ConfigMap'
  metadata: {name: string; namespace: string; resourceVersion?: string; labels?: Record<string, string>}
  data?: Record<string, string>
}

interface Lease {
  apiVersion: 'coordination.k8s.io/v1'
  kind: 'Lease'
  metadata: {name: string; namespace: string; resourceVersion?: string}
  spec: {holderIdentity?: string; leaseDurationSeconds?: number; acquireTime?: Date | string; renewTime?: Date | string}
}

export class ClusterStore implements RolloutStore {
  private readonly name: string
  private readonly leaseName: string

  constructor(
    private readonly cluster: Cluster,
    private readonly model: string,
  ) {
    this.name = dnsLabel(`${model}-mlops-rollout`)
    this.leaseName = dnsLabel(`${model}-mlops-deploy`)
  }

  /** Where the state lives, for messages. */
  get location(): string {
    return `ConfigMap ${this.name} in namespace ${this.cluster.namespace}`
  }

  private async configMap(): Promise<ConfigMap | undefined> {
    return this.cluster.read<ConfigMap>({apiVersion: 'v1', kind: 'ConfigMap', name: this.name})
  }

  async readState(): Promise<RolloutState | undefined> {
    const text = (await this.configMap())?.data?.['state.json']
    if (!text) return undefined
    try {
      return JSON.parse(text) as RolloutState
    } catch {
      throw new MlopsError('STATE_CORRUPT', `the rollout state in ${this.location} is not JSON`, {
        hint: `Only mlops writes it: run "mlops down --yes --target kubernetes" and deploy again ("mlops history" keeps every release).`,
      })
    }
  }

  /** The workload settings the current rollout began with. */
  async readSettings(): Promise<WorkloadSettings | undefined> {
    const text = (await this.configMap())?.data?.['settings.json']
    return text ? (JSON.parse(text) as WorkloadSettings) : undefined
  }

  /** Set by the target before a commit: kept beside the state, so later commands and machines use the same. */
  settings?: WorkloadSettings

  async commit(transition: Transition, record: ChangeRecord): Promise<LedgerEntry> {
    const entry = ledgerEntry(transition, record)
    await this.update((data) => ({
      ...data,
      'state.json': JSON.stringify(transition.state),
      ...(this.settings ? {'settings.json': JSON.stringify(this.settings)} : {}),
      'ledger.jsonl': appended(data['ledger.jsonl'], entry),
    }))
    return entry
  }

  async append(entry: LedgerEntry): Promise<void> {
    await this.update((data) => ({...data, 'ledger.jsonl': appended(data['ledger.jsonl'], entry)}))
  }

  async removeState(): Promise<void> {
    await this.update(({'state.json': _, 'settings.json': __, ...rest}) => rest)
  }

  async readLedger(): Promise<Ledger> {
    return parseLedger((await this.configMap())?.data?.['ledger.jsonl'] ?? '')
  }

  /** Read, change, write with the resourceVersion read: a concurrent writer makes it fail rather than be lost. */
  private async update(change: (data: Record<string, string>) => Record<string, string>): Promise<void> {
    const current = await this.configMap()
    const data = change(current?.data ?? {})
    const metadata = {
      name: this.name,
      namespace: this.cluster.namespace,
      labels: {...selectorLabels(this.model), 'app.kubernetes.io/managed-by': MANAGED_BY},
    }
    if (!current) await this.cluster.create<ConfigMap>({apiVersion: 'v1', kind: 'ConfigMap', metadata, data})
    else
      await this.cluster.replace<ConfigMap>({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {...metadata, resourceVersion: current.metadata.resourceVersion},
        data,
      })
  }

  async withLock<T>(command: string, fn: () => Promise<T>, options: {waitMs?: number} = {}): Promise<T> {
    const deadline = Date.now() + (options.waitMs ?? 0)
    let holder: LockHolder
    for (;;) {
      try {
        holder = await this.acquire(command)
        break
      } catch (error) {
        if ((error as MlopsError).code !== 'DEPLOY_LOCKED' || Date.now() >= deadline) throw error
        await sleep(250)
      }
    }
    // Renewed while held: a holder that stops renewing (killed) loses it after LEASE_SECONDS even from another host.
    const renew = setInterval(() => void this.renew(holder).catch(() => undefined), (LEASE_SECONDS * 1000) / 3)
    renew.unref()
    try {
      return await fn()
    } finally {
      clearInterval(renew)
      await this.release(holder).catch(() => undefined)
    }
  }

  private lease(): Promise<Lease | undefined> {
    return this.cluster.read<Lease>({apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', name: this.leaseName})
  }

  private async acquire(command: string): Promise<LockHolder> {
    const started = processStart(process.pid)
    const holder: LockHolder = {
      pid: process.pid,
      command,
      since: new Date().toISOString(),
      host: hostname(),
      ...(started ? {started} : {}),
    }
    const now = microTime(new Date())
    const spec = {
      holderIdentity: JSON.stringify(holder),
      leaseDurationSeconds: LEASE_SECONDS,
      acquireTime: now,
      renewTime: now,
    }
    const metadata = {name: this.leaseName, namespace: this.cluster.namespace}
    const current = await this.lease()
    try {
      if (!current)
        await this.cluster.create<Lease>({apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata, spec})
      else {
        const held = holderOf(current)
        if (held && !stale(current, held))
          throw new MlopsError(
            'DEPLOY_LOCKED',
            `another mlops command is changing this deployment: pid ${held.pid} on ${held.host} (${held.command}) since ${held.since}`,
            {
              exitCode: ExitCode.inProgress,
              hint: `Wait for it to finish (see "mlops status"), then run the command again; the lock is Lease ${this.leaseName} in ${this.cluster.namespace}.`,
              details: {holder: held},
            },
          )
        await this.cluster.replace<Lease>({
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: {...metadata, resourceVersion: current.metadata.resourceVersion},
          spec,
        })
      }
    } catch (error) {
      const code = (error as MlopsError).code
      if (code === 'CONFLICT' || code === 'ALREADY_EXISTS')
        throw new MlopsError('DEPLOY_LOCKED', 'another mlops command took the deploy lock at the same moment', {
          exitCode: ExitCode.inProgress,
          hint: 'Run the command again.',
        })
      throw error
    }
    return holder
  }

  private async renew(holder: LockHolder): Promise<void> {
    const current = await this.lease()
    if (!current || current.spec.holderIdentity !== JSON.stringify(holder)) return
    await this.cluster.replace<Lease>({...current, spec: {...times(current.spec), renewTime: microTime(new Date())}})
  }

  private async release(holder: LockHolder): Promise<void> {
    const current = await this.lease()
    if (!current || current.spec.holderIdentity !== JSON.stringify(holder)) return
    const {holderIdentity: _, ...spec} = times(current.spec)
    await this.cluster.replace<Lease>({...current, spec})
  }
}

/**
 * A Lease's times are MicroTime, six fractional digits; client-node reads them as Date and writes a Date back with
 * three, which the API server refuses. Written as strings, they pass through as they are.
 */
function microTime(time: Date | string): string {
  return new Date(time).toISOString().replace(/Z$/, '000Z')
}

function times(spec: Lease['spec']): Lease['spec'] {
  return {
    ...spec,
    ...(spec.acquireTime ? {acquireTime: microTime(spec.acquireTime)} : {}),
    ...(spec.renewTime ? {renewTime: microTime(spec.renewTime)} : {}),
  }
}

function holderOf(lease: Lease): LockHolder | undefined {
  if (!lease.spec.holderIdentity) return undefined
  try {
    return JSON.parse(lease.spec.holderIdentity) as LockHolder
  } catch {
    // Held by something that is not mlops: respected until it expires.
    return {pid: 0, command: lease.spec.holderIdentity, since: '?', host: '?'}
  }
}

/** Expired (not renewed in time), or held by a process of this host that is gone (a kill -9). */
function stale(lease: Lease, holder: LockHolder): boolean {
  const renewed = lease.spec.renewTime ? new Date(lease.spec.renewTime).getTime() : 0
  if (renewed + (lease.spec.leaseDurationSeconds ?? LEASE_SECONDS) * 1000 < Date.now()) return true
  return holder.host === hostname() && holder.pid > 0 && !isAlive(holder)
}

function appended(ledger: string | undefined, entry: LedgerEntry): string {
  let text = (ledger ?? '') + JSON.stringify(entry) + '\n'
  while (text.length > LEDGER_LIMIT) text = text.slice(text.indexOf('\n') + 1)
  return text
}
