// The cluster objects a desired state needs, as pure functions: per version a Deployment and a Service (and an HPA and a
// PDB when configured), one HTTPRoute per model whose weights and mirror follow the stage.
import {createHash} from 'node:crypto'

import {Deployment} from 'kubernetes-models/apps/v1'
import {HorizontalPodAutoscaler} from 'kubernetes-models/autoscaling/v2'
import {Service} from 'kubernetes-models/v1'
import {PodDisruptionBudget} from 'kubernetes-models/policy/v1'

import type {Release, RolloutState} from '../../rollout/types.js'
import {serversOf} from '../types.js'
import type {GatewayRef, WorkloadSettings} from './config.js'

export const CONTAINER_PORT = 8080
export const MANAGED_BY = 'mlops'
export const DIGEST_ANNOTATION = 'mlops.dev/artifact-digest'
export const ROUTE_API = 'gateway.networking.k8s.io/v1'

export interface Manifest {
  apiVersion: string
  kind: string
  metadata: {name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>}
  [field: string]: unknown
}

/** The Gateway API's HTTPRoute, typed here: @kubernetes-models/gateway-api 2.x needs Node 22 and 0.5 is Gateway API v0.5. */
export interface HttpRoute extends Manifest {
  spec: {
    parentRefs?: {name: string; namespace?: string; sectionName?: string}[]
    hostnames?: string[]
    rules: {
      backendRefs: {name: string; port: number; weight: number}[]
      filters?: {type: 'RequestMirror'; requestMirror: {backendRef: {name: string; port: number}}}[]
    }[]
  }
}

export interface Naming {
  /** The model's name (mlops.yaml `name`). */
  model: string
  namespace: string
}

/** A DNS-1035 label: lower case, at most 63 characters, a letter first; over-long names keep a hash of the whole. */
export function dnsLabel(value: string): string {
  let name = value
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^[^a-z]+/, '')
    .replace(/-+$/, '')
  if (name === '') name = 'm'
  if (name.length <= 63) return name
  const hash = createHash('sha256').update(value).digest('hex').slice(0, 8)
  return `${name.slice(0, 54).replace(/-+$/, '')}-${hash}`
}

export function versionName(model: string, version: string): string {
  return dnsLabel(`${model}-${version}`)
}

/** Label values: at most 63 characters of [A-Za-z0-9._-], alphanumeric at both ends. */
function labelValue(value: string): string {
  const cleaned = value.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 63)
  return cleaned.replace(/^[^A-Za-z0-9]+/, '').replace(/[^A-Za-z0-9]+$/, '')
}

export function selectorLabels(model: string, version?: string): Record<string, string> {
  return {
    'app.kubernetes.io/name': labelValue(model),
    ...(version === undefined ? {} : {'app.kubernetes.io/version': labelValue(version)}),
  }
}

function versionMetadata(naming: Naming, release: Release) {
  return {
    name: versionName(naming.model, release.version),
    namespace: naming.namespace,
    labels: {
      ...selectorLabels(naming.model, release.version),
      'app.kubernetes.io/managed-by': MANAGED_BY,
      // A label value holds 63 characters, a sha256 64: the label carries a prefix to select by, the annotation the whole.
      ...(release.digest ? {[DIGEST_ANNOTATION]: release.digest.replace('sha256:', '').slice(0, 63)} : {}),
    },
    ...(release.digest ? {annotations: {[DIGEST_ANNOTATION]: release.digest}} : {}),
  }
}

export function deploymentFor(naming: Naming, release: Release, settings: WorkloadSettings): Manifest {
  if (!release.image) throw new Error(`release ${release.version} has no image`)
  const probe = (path: string, periodSeconds: number) => ({
    httpGet: {path, port: 'http'},
    periodSeconds,
    timeoutSeconds: 3,
    failureThreshold: 3,
  })
  const deployment = new Deployment({
    metadata: versionMetadata(naming, release),
    spec: {
      // An autoscaler owns replicas: applying a number would fight it at every rollout step.
      ...(settings.autoscaling ? {} : {replicas: settings.replicas}),
      selector: {matchLabels: selectorLabels(naming.model, release.version)},
      progressDeadlineSeconds: Math.ceil(settings.progressDeadlineMs / 1000),
      template: {
        metadata: {labels: versionMetadata(naming, release).labels},
        spec: {
          terminationGracePeriodSeconds: settings.terminationGraceSeconds,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 1000,
            runAsGroup: 1000,
            seccompProfile: {type: 'RuntimeDefault'},
          },
          containers: [
            {
              name: 'model-server',
              image: release.image,
              ports: [{name: 'http', containerPort: CONTAINER_PORT, protocol: 'TCP'}],
              env: Object.entries(release.env ?? {}).map(([name, value]) => ({name, value})),
              readinessProbe: probe('/v2/health/ready', 5),
              livenessProbe: probe('/v2/health/live', 10),
              ...(settings.resources ? {resources: settings.resources} : {}),
              securityContext: {
                readOnlyRootFilesystem: true,
                allowPrivilegeEscalation: false,
                capabilities: {drop: ['ALL']},
              },
              volumeMounts: [{name: 'tmp', mountPath: '/tmp'}],
            },
          ],
          // The root filesystem is read-only; the model server's scratch space is this.
          volumes: [{name: 'tmp', emptyDir: {sizeLimit: '256Mi'}}],
        },
      },
    },
  })
  return deployment.toJSON() as Manifest
}

export function serviceFor(naming: Naming, release: Release, settings: WorkloadSettings): Manifest {
  return new Service({
    metadata: versionMetadata(naming, release),
    spec: {
      selector: selectorLabels(naming.model, release.version),
      ports: [{name: 'http', port: settings.servicePort, targetPort: 'http', protocol: 'TCP', appProtocol: 'http'}],
    },
  }).toJSON() as Manifest
}

export function autoscalerFor(naming: Naming, release: Release, settings: WorkloadSettings): Manifest | undefined {
  const a = settings.autoscaling
  if (!a) return undefined
  const metadata = versionMetadata(naming, release)
  return new HorizontalPodAutoscaler({
    metadata,
    spec: {
      scaleTargetRef: {apiVersion: 'apps/v1', kind: 'Deployment', name: metadata.name},
      minReplicas: a.minReplicas,
      maxReplicas: a.maxReplicas,
      metrics: [
        {
          type: 'Resource',
          resource: {name: 'cpu', target: {type: 'Utilization', averageUtilization: a.cpuUtilization}},
        },
      ],
    },
  }).toJSON() as Manifest
}

export function disruptionBudgetFor(
  naming: Naming,
  release: Release,
  settings: WorkloadSettings,
): Manifest | undefined {
  if (settings.minAvailable === undefined) return undefined
  return new PodDisruptionBudget({
    metadata: versionMetadata(naming, release),
    spec: {minAvailable: settings.minAvailable, selector: {matchLabels: selectorLabels(naming.model, release.version)}},
  }).toJSON() as Manifest
}

/** Everything one version runs on, in the order it is applied. */
export function versionManifests(naming: Naming, release: Release, settings: WorkloadSettings): Manifest[] {
  return [
    deploymentFor(naming, release, settings),
    serviceFor(naming, release, settings),
    autoscalerFor(naming, release, settings),
    disruptionBudgetFor(naming, release, settings),
  ].filter((m): m is Manifest => m !== undefined)
}

/**
 * The model's HTTPRoute for a state. Until the candidate's Deployment reports available replicas it gets no weight and
 * no mirror: the route then sends everything to stable, whatever the stage says.
 */
export function routeFor(
  naming: Naming,
  state: Pick<RolloutState, 'stable' | 'candidate' | 'stage' | 'weight'>,
  settings: WorkloadSettings & {gateway: GatewayRef},
  candidateAvailable: boolean,
): HttpRoute {
  const port = settings.servicePort
  const stable = versionName(naming.model, state.stable.version)
  const candidate =
    state.candidate && candidateAvailable ? versionName(naming.model, state.candidate.version) : undefined
  const canary = candidate !== undefined && state.stage === 'canary' && state.weight > 0
  const shadow = candidate !== undefined && state.stage === 'shadow'
  const {gateway} = settings
  return {
    apiVersion: ROUTE_API,
    kind: 'HTTPRoute',
    metadata: {
      name: dnsLabel(naming.model),
      namespace: naming.namespace,
      labels: {...selectorLabels(naming.model), 'app.kubernetes.io/managed-by': MANAGED_BY},
    },
    spec: {
      parentRefs: [
        {
          name: gateway.name,
          ...(gateway.namespace ? {namespace: gateway.namespace} : {}),
          ...(gateway.section ? {sectionName: gateway.section} : {}),
        },
      ],
      ...(settings.hostnames.length > 0 ? {hostnames: settings.hostnames} : {}),
      rules: [
        {
          backendRefs: canary
            ? [
                {name: stable, port, weight: 100 - state.weight},
                {name: candidate, port, weight: state.weight},
              ]
            : [{name: stable, port, weight: 100}],
          ...(shadow ? {filters: [{type: 'RequestMirror', requestMirror: {backendRef: {name: candidate, port}}}]} : {}),
        },
      ],
    },
  }
}

/**
 * Without the Gateway API (--allow-no-gateway): one Service over every version of the model, so the split follows
 * the ratio of ready pods, not the canary weight, and shadow has no mirror.
 */
export function sharedServiceFor(naming: Naming, settings: WorkloadSettings): Manifest {
  return new Service({
    metadata: {
      name: dnsLabel(naming.model),
      namespace: naming.namespace,
      labels: {...selectorLabels(naming.model), 'app.kubernetes.io/managed-by': MANAGED_BY},
    },
    spec: {
      selector: selectorLabels(naming.model),
      ports: [{name: 'http', port: settings.servicePort, targetPort: 'http', protocol: 'TCP', appProtocol: 'http'}],
    },
  }).toJSON() as Manifest
}

/** Every object a state needs once its candidate is available: what `--dry-run` prints and `--output yaml` writes. */
export function stateManifests(naming: Naming, state: RolloutState, settings: WorkloadSettings): Manifest[] {
  const {stable, candidate} = serversOf(state)
  const versions = [stable, ...(candidate ? [candidate] : [])].flatMap((s) =>
    versionManifests(naming, s.release, settings),
  )
  const gateway = settings.gateway
  return [
    ...versions,
    gateway ? routeFor(naming, state, {...settings, gateway}, true) : sharedServiceFor(naming, settings),
  ]
}
