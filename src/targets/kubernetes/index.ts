// The Kubernetes target: each version a Deployment and Service applied server-side, one HTTPRoute whose weights and
// mirror follow the desired state, and nothing routed to a version before its Deployment reports available replicas.
import {setTimeout as sleep} from 'node:timers/promises'

import {MlopsError, UsageError} from '../../errors.js'
import type {Measurement, Release, RolloutState} from '../../rollout/types.js'
import type {DeployTarget, ServerSpec, TargetRuntime, TargetServer} from '../types.js'
import {type Cluster, GATEWAY_API_INSTALL} from './client.js'
import type {WorkloadSettings} from './config.js'
import {
  type HttpRoute,
  type Manifest,
  MANAGED_BY,
  type Naming,
  ROUTE_API,
  dnsLabel,
  routeFor,
  selectorLabels,
  sharedServiceFor,
  stateManifests,
  versionManifests,
  versionName,
} from './manifests.js'
import {type PrometheusSettings, measureFromPrometheus} from './prometheus.js'
import type {ClusterStore} from './store.js'

export interface KubernetesTargetOptions {
  cluster: Cluster
  store: ClusterStore
  model: string
  settings: WorkloadSettings
  prometheus?: PrometheusSettings
  /** Take over fields another field manager set (server-side apply's force). */
  forceConflicts?: boolean
  now?: () => Date
  pollMs?: number
}

interface DeploymentObject extends Manifest {
  metadata: Manifest['metadata'] & {generation?: number}
  spec?: {replicas?: number}
  status?: {
    observedGeneration?: number
    replicas?: number
    updatedReplicas?: number
    availableReplicas?: number
    conditions?: {type: string; status: string; reason?: string; message?: string}[]
  }
}

interface PodObject extends Manifest {
  status?: {
    phase?: string
    conditions?: {type: string; status: string; reason?: string; message?: string}[]
    containerStatuses?: {
      name: string
      restartCount?: number
      state?: {waiting?: {reason?: string; message?: string}}
      lastState?: {terminated?: {reason?: string; exitCode?: number; message?: string}}
    }[]
  }
}

interface EventObject extends Manifest {
  type?: string
  reason?: string
  message?: string
  count?: number
}

const REVISION_ANNOTATION = 'mlops.dev/revision'

export class KubernetesTarget implements DeployTarget {
  /** Nothing in the cluster advances an --auto rollout: the command that waits for it (--wait) does. */
  readonly drivesRollout = true
  private readonly naming: Naming
  private readonly now: () => Date

  constructor(private readonly options: KubernetesTargetOptions) {
    this.naming = {model: options.model, namespace: options.cluster.namespace}
    this.now = options.now ?? (() => new Date())
    options.store.settings = options.settings
  }

  get settings(): WorkloadSettings {
    return this.options.settings
  }

  where(): {namespace: string; context: string} {
    return {namespace: this.naming.namespace, context: this.options.cluster.context}
  }

  manifests(state: RolloutState): Manifest[] {
    return stateManifests(this.naming, state, this.settings)
  }

  url(): string {
    const {gateway, hostnames, servicePort} = this.settings
    if (hostnames[0]) return `http://${hostnames[0]}`
    if (gateway) return `http://${gateway.name}.${gateway.namespace ?? this.naming.namespace}`
    return `http://${dnsLabel(this.naming.model)}.${this.naming.namespace}.svc:${servicePort}`
  }

  /**
   * Why shadow answers are not compared here: the Gateway drops the mirror's answers, and mlops does not yet join the
   * two versions' request logs from their pods. A shadow step is judged on error rate and latency alone.
   */
  readonly shadowAgreementUnavailable =
    "the Gateway API's RequestMirror discards the candidate's answers and mlops does not read the pods' request logs, so stable's and the candidate's answers to the same requests are not compared; a shadow step is judged on error rate and latency only"

  /** The warning a user must see: without the Gateway API the split is not the weight. */
  get warning(): string | undefined {
    return this.settings.gateway
      ? undefined
      : 'no Gateway: one Service spans every version, so traffic splits by ready pods (replica ratio), not by the canary weight, and shadow mirrors nothing'
  }

  async prepare(servers: ServerSpec[]): Promise<void> {
    await this.requireGatewayApi()
    for (const {release} of servers)
      for (const manifest of versionManifests(this.naming, release, this.settings))
        await this.options.cluster.apply(manifest, this.options.forceConflicts)
    const deadline = Date.now() + this.settings.progressDeadlineMs
    for (const {release} of servers) {
      while (!(await this.available(release.version))) {
        if (Date.now() >= deadline) {
          const reason = await this.unavailableReason(release.version)
          throw new MlopsError(
            'RELEASE_UNAVAILABLE',
            `${release.version} has no available replicas after ${Math.round(this.settings.progressDeadlineMs / 1000)}s: ${reason}`,
            {
              hint: `Fix the image or the pods ("kubectl describe deployment ${versionName(this.naming.model, release.version)} -n ${this.naming.namespace}"), then run the command again.`,
              details: {version: release.version, reason},
            },
          )
        }
        await sleep(this.options.pollMs ?? 1000)
      }
    }
  }

  async reconcile(): Promise<void> {
    const state = await this.options.store.readState()
    if (!state) return
    await this.options.cluster.apply(await this.routingFor(state), this.options.forceConflicts)
    // A finished rollout: once routing no longer names them, the other versions' resources go.
    if (!state.candidate || state.stage === 'full') await this.removeVersionsBut([state.stable.version])
  }

  /**
   * The routing of the next state, applied as a dry run before the state is committed: a field another manager owns
   * (FIELD_MANAGER_CONFLICT) or anything else the API server refuses stops the command with nothing changed.
   */
  async preflight(state: RolloutState): Promise<void> {
    await this.options.cluster.apply(await this.routingFor(state), this.options.forceConflicts, true)
  }

  private async routingFor(state: RolloutState): Promise<Manifest> {
    const candidateAvailable = state.candidate ? await this.available(state.candidate.version) : false
    const {gateway} = this.settings
    return gateway
      ? withRevision(routeFor(this.naming, state, {...this.settings, gateway}, candidateAvailable), state.revision)
      : withRevision(sharedServiceFor(this.naming, this.settings), state.revision)
  }

  async observe(): Promise<{measurement: Measurement; runtime?: TargetRuntime}> {
    const state = await this.options.store.readState()
    if (!state) return {measurement: {error: 'nothing is deployed'}}
    const routing = await this.routing()
    const servers: TargetServer[] = [
      await this.server(state.stable, 'stable'),
      ...(state.candidate && state.stage !== 'full' ? [await this.server(state.candidate, 'candidate')] : []),
    ]
    const revision = Number(routing?.metadata.annotations?.[REVISION_ANNOTATION] ?? Number.NaN)
    const runtime: TargetRuntime = {
      port: this.settings.servicePort,
      startedAt: (routing?.metadata as {creationTimestamp?: string} | undefined)?.creationTimestamp ?? '',
      ...(Number.isInteger(revision) ? {revision} : {}),
      servers,
    }
    if (!routing)
      return {
        measurement: {
          error: `the ${this.settings.gateway ? 'HTTPRoute' : 'Service'} of ${this.naming.model} does not exist`,
        },
      }
    if (!servers[0].ready) return {measurement: {error: `${state.stable.version} has no available replicas`}, runtime}
    if (!state.candidate || state.stage === 'full') return {measurement: {}, runtime}
    if (!this.options.prometheus)
      return {
        measurement: {
          error:
            'no Prometheus is configured (deploy.analysis.prometheus.url), so the candidate cannot be judged; promote or roll back by hand',
        },
        runtime,
      }
    const measurement = await measureFromPrometheus(
      this.options.prometheus,
      state,
      servers[1]?.ready ?? false,
      this.now(),
    )
    return {
      measurement:
        state.stage === 'shadow'
          ? {...measurement, agreementUnavailable: this.shadowAgreementUnavailable}
          : measurement,
      runtime,
    }
  }

  async stop(): Promise<{stopped: boolean}> {
    const removed = await this.removeVersionsBut([])
    const routeGone =
      (this.settings.gateway && (await this.options.cluster.serves(ROUTE_API, 'HTTPRoute'))
        ? await this.options.cluster.delete({
            apiVersion: ROUTE_API,
            kind: 'HTTPRoute',
            name: dnsLabel(this.naming.model),
          })
        : false) ||
      (await this.options.cluster.delete({apiVersion: 'v1', kind: 'Service', name: dnsLabel(this.naming.model)}))
    return {stopped: removed > 0 || routeGone}
  }

  async requireGatewayApi(): Promise<void> {
    if (!this.settings.gateway) {
      if (this.settings.noGateway) return
      // Falling back to one Service unasked would turn every weight into a replica ratio without a word.
      throw new UsageError('GATEWAY_REQUIRED', 'the Kubernetes target needs the Gateway its HTTPRoute attaches to', {
        hint: 'Pass --gateway NAME[/NAMESPACE] (or set deploy.kubernetes.gateway), or --allow-no-gateway to route through one Service over every version (weights become replica ratios).',
      })
    }
    if (await this.options.cluster.serves(ROUTE_API, 'HTTPRoute')) return
    throw new UsageError(
      'GATEWAY_API_MISSING',
      `the cluster does not serve the Gateway API (${ROUTE_API} HTTPRoute): its CRDs are not installed`,
      {
        hint: `Install them ("${GATEWAY_API_INSTALL}") and a Gateway implementation, or pass --allow-no-gateway to route through one Service over both versions (weights become replica ratios).`,
      },
    )
  }

  private async routing(): Promise<Manifest | undefined> {
    const name = dnsLabel(this.naming.model)
    if (this.settings.gateway) {
      if (!(await this.options.cluster.serves(ROUTE_API, 'HTTPRoute'))) return undefined
      return this.options.cluster.read<HttpRoute>({apiVersion: ROUTE_API, kind: 'HTTPRoute', name})
    }
    return this.options.cluster.read<Manifest>({apiVersion: 'v1', kind: 'Service', name})
  }

  private async deployment(version: string): Promise<DeploymentObject | undefined> {
    return this.options.cluster.read<DeploymentObject>({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: versionName(this.naming.model, version),
    })
  }

  /** As `kubectl rollout status` judges it: the current generation observed, every wanted replica updated and available. */
  async available(version: string): Promise<boolean> {
    return isAvailable(await this.deployment(version))
  }

  private async server(release: Release, role: TargetServer['role']): Promise<TargetServer> {
    const deployment = await this.deployment(release.version)
    return {
      version: release.version,
      role,
      ready: isAvailable(deployment),
      restarts: 0,
      inFlight: 0,
    }
  }

  /** Why a version's pods are not available, from their status and events (image pull errors, crash loops). */
  async unavailableReason(version: string): Promise<string> {
    const {cluster} = this.options
    const labels = Object.entries(selectorLabels(this.naming.model, version))
      .map(([k, v]) => `${k}=${v}`)
      .join(',')
    const pods = await cluster.list<PodObject>('v1', 'Pod', {labels})
    const reasons: string[] = []
    for (const pod of pods) {
      for (const container of pod.status?.containerStatuses ?? []) {
        const waiting = container.state?.waiting
        const terminated = container.lastState?.terminated
        if (waiting?.reason)
          reasons.push(
            `${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}${terminated ? ` (last exit ${terminated.exitCode}${terminated.reason ? ` ${terminated.reason}` : ''}, ${container.restartCount ?? 0} restarts)` : ''} (pod ${pod.metadata.name})`,
          )
      }
      for (const condition of pod.status?.conditions ?? [])
        if (condition.type === 'PodScheduled' && condition.status === 'False')
          reasons.push(`${condition.reason ?? 'Unschedulable'}: ${condition.message ?? ''} (pod ${pod.metadata.name})`)
      const events = await cluster.list<EventObject>('v1', 'Event', {
        fields: `involvedObject.name=${pod.metadata.name},type=Warning`,
      })
      for (const event of events.slice(-2)) reasons.push(`event ${event.reason}: ${event.message}`)
    }
    if (reasons.length > 0) return [...new Set(reasons)].slice(0, 6).join('; ')
    const conditions = (await this.deployment(version))?.status?.conditions ?? []
    const failure = conditions.find((c) => c.status === 'False' || c.type === 'ReplicaFailure')
    if (failure) return `${failure.reason ?? failure.type}: ${failure.message ?? ''}`
    return pods.length === 0
      ? 'no pod was created or scheduled for it (no nodes, a quota, or an admission webhook?)'
      : 'its pods are not ready (readiness probe on /v2/health/ready)'
  }

  /** Deletes every version of the model not in `keep`: Deployment, Service, HPA and PDB. Returns how many versions. */
  private async removeVersionsBut(keep: string[]): Promise<number> {
    const {cluster} = this.options
    const labels = `app.kubernetes.io/name=${selectorLabels(this.naming.model)['app.kubernetes.io/name']},app.kubernetes.io/managed-by=${MANAGED_BY}`
    const kept = new Set(keep.map((version) => versionName(this.naming.model, version)))
    const names = new Set<string>()
    for (const kind of [
      ['apps/v1', 'Deployment'],
      ['v1', 'Service'],
    ] as const)
      for (const object of await cluster.list<Manifest>(kind[0], kind[1], {labels}))
        if (object.metadata.labels?.['app.kubernetes.io/version'] !== undefined && !kept.has(object.metadata.name))
          names.add(object.metadata.name)
    for (const name of names)
      for (const [apiVersion, kind] of [
        ['apps/v1', 'Deployment'],
        ['v1', 'Service'],
        ['autoscaling/v2', 'HorizontalPodAutoscaler'],
        ['policy/v1', 'PodDisruptionBudget'],
      ] as const)
        if (kind === 'Deployment' || kind === 'Service' || this.optionalKind(kind))
          await cluster.delete({apiVersion, kind, name}).catch((error: MlopsError) => {
            // An older cluster without autoscaling/v2 or policy/v1 has none of them to delete.
            if (!/Unrecognized API version/.test(error.message)) throw error
          })
    return names.size
  }

  private optionalKind(kind: string): boolean {
    return kind === 'HorizontalPodAutoscaler'
      ? this.settings.autoscaling !== undefined
      : this.settings.minAvailable !== undefined
  }
}

function isAvailable(deployment: DeploymentObject | undefined): boolean {
  if (!deployment) return false
  const want = deployment.spec?.replicas ?? 1
  const status = deployment.status ?? {}
  return (
    (status.observedGeneration ?? 0) >= (deployment.metadata.generation ?? 1) &&
    (status.updatedReplicas ?? 0) >= want &&
    (status.availableReplicas ?? 0) >= want
  )
}

function withRevision<T extends Manifest>(manifest: T, revision: number): T {
  return {
    ...manifest,
    metadata: {
      ...manifest.metadata,
      annotations: {...manifest.metadata.annotations, [REVISION_ANNOTATION]: String(revision)},
    },
  }
}
