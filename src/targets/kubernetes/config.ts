// The `deploy.kubernetes` section of mlops.yaml and the flags over it, resolved into the settings a rollout keeps.
import {UsageError} from '../../errors.js'

// A type, not an interface: it must fit the API's {[resource]: quantity}.
export type ResourceAmounts = {
  cpu?: string | number
  memory?: string
}

export interface KubernetesConfig {
  namespace?: string
  context?: string
  image?: string
  replicas?: number
  resources?: {requests?: ResourceAmounts; limits?: ResourceAmounts}
  autoscaling?: {min_replicas?: number; max_replicas: number; cpu_utilization?: number}
  disruption_budget?: {min_available?: number | string}
  gateway?: {name: string; namespace?: string; section?: string}
  hostnames?: string[]
  service_port?: number
  progress_deadline_seconds?: number
  termination_grace_seconds?: number
}

/** Where the cluster is: found like kubectl, then narrowed by --context and --namespace. */
export interface ClusterOptions {
  context?: string
  namespace?: string
  /** A kubeconfig file; default KUBECONFIG, then ~/.kube/config, then the in-cluster service account. */
  kubeconfig?: string
}

export interface GatewayRef {
  name: string
  namespace?: string
  section?: string
}

/** How each version runs; fixed when a rollout begins and kept in the cluster with the state. */
export interface WorkloadSettings {
  replicas: number
  resources?: {requests?: ResourceAmounts; limits?: ResourceAmounts}
  autoscaling?: {minReplicas: number; maxReplicas: number; cpuUtilization: number}
  minAvailable?: number | string
  /** Absent with --allow-no-gateway: one Service over both versions instead of an HTTPRoute. */
  gateway?: GatewayRef
  /** --allow-no-gateway was given: without a Gateway, one Service is what the user asked for, not an omission. */
  noGateway?: boolean
  hostnames: string[]
  servicePort: number
  progressDeadlineMs: number
  terminationGraceSeconds: number
}

/** Flags that override the section for one command. */
export interface KubernetesFlags extends ClusterOptions {
  image?: string
  /** When the registry cannot be reached, deploy --image as given (a tag stays a tag, the label unchecked). */
  allowUnverifiedImage?: boolean
  /** NAME or NAME/NAMESPACE. */
  gateway?: string
  allowNoGateway?: boolean
}

export function workloadSettings(config: KubernetesConfig = {}, flags: KubernetesFlags = {}): WorkloadSettings {
  const gateway = flags.gateway ? parseGatewayFlag(flags.gateway) : config.gateway
  const replicas = config.replicas ?? 2
  const a = config.autoscaling
  return {
    replicas,
    ...(config.resources ? {resources: config.resources} : {}),
    ...(a
      ? {
          autoscaling: {
            minReplicas: a.min_replicas ?? replicas,
            maxReplicas: a.max_replicas,
            cpuUtilization: a.cpu_utilization ?? 70,
          },
        }
      : {}),
    ...(config.disruption_budget?.min_available === undefined
      ? {}
      : {minAvailable: config.disruption_budget.min_available}),
    ...(gateway && !flags.allowNoGateway ? {gateway} : {}),
    ...(flags.allowNoGateway ? {noGateway: true} : {}),
    hostnames: config.hostnames ?? [],
    servicePort: config.service_port ?? 80,
    progressDeadlineMs: (config.progress_deadline_seconds ?? 300) * 1000,
    terminationGraceSeconds: config.termination_grace_seconds ?? 30,
  }
}

/** `--gateway NAME[/NAMESPACE]`. */
export function parseGatewayFlag(value: string): GatewayRef {
  const [name, namespace, ...rest] = value.split('/')
  const dns = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/
  if (rest.length > 0 || !dns.test(name ?? '') || (namespace !== undefined && !dns.test(namespace)))
    throw new UsageError('GATEWAY_FLAG_INVALID', `--gateway ${value} is not NAME or NAME/NAMESPACE`, {
      hint: 'Pass the Gateway the HTTPRoute attaches to, e.g. --gateway public or --gateway public/infra.',
    })
  return {name, ...(namespace ? {namespace} : {})}
}

/**
 * The image reference of a version as the user gave it: --image, or deploy.kubernetes.image with {version} replaced.
 * A tag is resolved to its digest before anything is applied (image.ts).
 */
export function imageFor(version: string, config: KubernetesConfig = {}, flag?: string): string {
  const image = flag ?? config.image?.replaceAll('{version}', version)
  if (!image)
    throw new UsageError('IMAGE_REQUIRED', `the Kubernetes target needs the image of ${version}`, {
      hint: 'Pass --image REF (the reference "mlops build --push" printed, a tag or a digest), or set deploy.kubernetes.image.',
    })
  return image
}
