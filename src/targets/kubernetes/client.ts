// The cluster through @kubernetes/client-node: found like kubectl, server-side apply as field manager `mlops`, and the
// API's refusals turned into errors that name the fix.
import {
  ApiException,
  KubeConfig,
  KubernetesObjectApi,
  Observable,
  PatchStrategy,
  type KubernetesObject,
  type RequestContext,
} from '@kubernetes/client-node'

import {MlopsError, UsageError, errorMessage} from '../../errors.js'
import type {ClusterOptions} from './config.js'

export const FIELD_MANAGER = 'mlops'
/** Every API call ends by then: a server that accepts and never answers must not hold a command. */
export const REQUEST_TIMEOUT_MS = 30_000
/** Lists are read one page at most (by label or field selector, far above what one model has). */
const LIST_LIMIT = 500
export const GATEWAY_API_INSTALL =
  'kubectl apply --server-side -f https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.4.1/standard-install.yaml'

/** client-node's object API, with its discovery (which kinds a group/version serves) made reachable. */
class ObjectApi extends KubernetesObjectApi {
  kindServed(apiVersion: string, kind: string) {
    return this.resource(apiVersion, kind)
  }

  override setDefaultNamespace(kc: KubeConfig): string {
    return super.setDefaultNamespace(kc)
  }

  /** client-node sets no deadline of its own: each request gets an abort signal. */
  boundTime(ms: number): void {
    this.configuration.middleware.push({
      pre: (context: RequestContext) => {
        context.setSignal(AbortSignal.timeout(ms))
        return new Observable(Promise.resolve(context))
      },
      post: (response) => new Observable(Promise.resolve(response)),
    })
  }
}

export interface ObjectRef {
  apiVersion: string
  kind: string
  name: string
  namespace?: string
}

/** The API calls the Kubernetes target makes; one implementation, over client-node. */
export class Cluster {
  readonly namespace: string
  readonly server: string
  readonly context: string
  private readonly api: ObjectApi

  constructor(options: ClusterOptions & {defaultNamespace?: string}) {
    const kc = new KubeConfig()
    try {
      if (options.kubeconfig) kc.loadFromFile(options.kubeconfig)
      else kc.loadFromDefault()
    } catch (error) {
      throw new UsageError('KUBECONFIG_INVALID', `the kubeconfig cannot be read: ${errorMessage(error)}`, {
        hint: 'Check KUBECONFIG (or ~/.kube/config): "kubectl config view" shows what it holds.',
      })
    }
    if (options.context) {
      if (!kc.getContextObject(options.context))
        throw new UsageError('CONTEXT_NOT_FOUND', `the kubeconfig has no context ${options.context}`, {
          hint: `Pick one of: ${
            kc
              .getContexts()
              .map((c) => c.name)
              .join(', ') || '(none)'
          } ("kubectl config get-contexts").`,
        })
      kc.setCurrentContext(options.context)
    }
    const cluster = kc.getCurrentCluster()
    // Without any configuration client-node falls back to http://localhost:8080, which no cluster serves any more.
    if (!cluster || kc.getContexts().length === 0)
      throw new UsageError(
        'NO_CLUSTER',
        'no Kubernetes cluster is configured: no KUBECONFIG, ~/.kube/config or service account',
        {
          hint: "Point KUBECONFIG at your cluster's kubeconfig (or run inside the cluster), or pass --target local.",
        },
      )
    this.server = cluster.server
    this.context = kc.getCurrentContext()
    this.namespace =
      options.namespace ?? kc.getContextObject(this.context)?.namespace ?? options.defaultNamespace ?? 'default'
    this.api = kc.makeApiClient(ObjectApi)
    this.api.setDefaultNamespace(kc)
    this.api.boundTime(REQUEST_TIMEOUT_MS)
  }

  /**
   * Server-side apply: the fields mlops sets are its own; another manager's are a conflict unless `force`. `dryRun`:
   * the API server checks everything (conflicts included) and stores nothing.
   */
  async apply<T extends KubernetesObject>(object: T, force = false, dryRun = false): Promise<T> {
    return this.call('patch', object, () =>
      this.api.patch(
        object,
        undefined,
        dryRun ? 'All' : undefined,
        FIELD_MANAGER,
        force,
        PatchStrategy.ServerSideApply,
      ),
    )
  }

  async read<T extends KubernetesObject>(ref: ObjectRef): Promise<T | undefined> {
    try {
      return await this.call('get', ref, () =>
        this.api.read<T>({
          apiVersion: ref.apiVersion,
          kind: ref.kind,
          metadata: {name: ref.name, namespace: ref.namespace ?? this.namespace},
        }),
      )
    } catch (error) {
      if ((error as MlopsError).code === 'NOT_FOUND') return undefined
      throw error
    }
  }

  async create<T extends KubernetesObject>(object: T): Promise<T> {
    return this.call('create', object, () => this.api.create(object, undefined, undefined, FIELD_MANAGER))
  }

  /** Replaces the object; its metadata.resourceVersion makes it fail (CONFLICT) when someone wrote it meanwhile. */
  async replace<T extends KubernetesObject>(object: T): Promise<T> {
    return this.call('update', object, () => this.api.replace(object, undefined, undefined, FIELD_MANAGER))
  }

  async delete(ref: ObjectRef): Promise<boolean> {
    try {
      await this.call('delete', ref, () =>
        this.api.delete(
          {
            apiVersion: ref.apiVersion,
            kind: ref.kind,
            metadata: {name: ref.name, namespace: ref.namespace ?? this.namespace},
          },
          undefined,
          undefined,
          undefined,
          undefined,
          'Background',
        ),
      )
      return true
    } catch (error) {
      if ((error as MlopsError).code === 'NOT_FOUND') return false
      throw error
    }
  }

  async list<T extends KubernetesObject>(
    apiVersion: string,
    kind: string,
    selector: {labels?: string; fields?: string} = {},
  ): Promise<T[]> {
    const ref = {apiVersion, kind, name: '', namespace: this.namespace}
    const list = await this.call('list', ref, () =>
      this.api.list<T>(
        apiVersion,
        kind,
        this.namespace,
        undefined,
        undefined,
        undefined,
        selector.fields,
        selector.labels,
        LIST_LIMIT,
      ),
    )
    return list.items
  }

  /** Whether the API serves a group/version (the Gateway API CRDs, say). */
  async serves(apiVersion: string, kind: string): Promise<boolean> {
    try {
      return (await this.api.kindServed(apiVersion, kind)) !== undefined
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) return false
      throw this.failure('get', {apiVersion, kind, name: '', namespace: this.namespace}, error)
    }
  }

  private async call<T>(verb: string, ref: ObjectRef | KubernetesObject, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (error) {
      throw this.failure(verb, ref, error)
    }
  }

  private failure(verb: string, target: ObjectRef | KubernetesObject, error: unknown): MlopsError {
    const ref =
      'metadata' in target && target.metadata
        ? {kind: target.kind ?? '', name: target.metadata.name ?? '', namespace: target.metadata.namespace}
        : (target as ObjectRef)
    const what = `${ref.kind}${ref.name ? ` ${ref.name}` : 's'}`
    if (!(error instanceof ApiException)) return unreachable(this, error)
    const status = parseStatus(error.body)
    const message = status?.message ?? `HTTP ${error.code}`
    if (error.code === 401)
      return new UsageError(
        'CLUSTER_UNAUTHORIZED',
        `the cluster at ${this.server} does not accept these credentials: ${message}`,
        {
          hint: `Renew the credentials of context ${this.context} (e.g. your cloud CLI's get-credentials), then run the command again.`,
        },
      )
    if (error.code === 403) {
      const denied = /cannot (\w+) resource "([^"]+)" in API group "([^"]*)"/.exec(message)
      const [, deniedVerb = verb, resource = ref.kind.toLowerCase() + 's', group = ''] = denied ?? []
      return new MlopsError(
        'FORBIDDEN',
        `the cluster refuses to ${deniedVerb} ${resource}${group ? `.${group}` : ''} in namespace ${this.namespace}: ${message}`,
        {
          hint: `Ask an admin to bind the Role "mlops-deployer" (README, section Kubernetes) to you in namespace ${this.namespace}; "kubectl auth can-i ${deniedVerb} ${resource}${group ? `.${group}` : ''} -n ${this.namespace}" checks it.`,
          details: {verb: deniedVerb, resource, group, namespace: this.namespace},
        },
      )
    }
    if (error.code === 404) {
      if (status?.details?.kind === 'namespaces')
        return new UsageError(
          'NAMESPACE_NOT_FOUND',
          `the namespace ${this.namespace} does not exist in ${this.context}`,
          {
            hint: `Create it ("kubectl create namespace ${this.namespace}") or pass --namespace (deploy.kubernetes.namespace).`,
          },
        )
      return new MlopsError('NOT_FOUND', `${what} not found: ${message}`)
    }
    if (error.code === 409 && verb === 'patch') return conflictError(what, status, message)
    if (error.code === 409)
      return new MlopsError(verb === 'create' ? 'ALREADY_EXISTS' : 'CONFLICT', `${what}: ${message}`, {
        hint: 'Someone changed it meanwhile: run the command again.',
      })
    return new MlopsError('KUBERNETES_ERROR', `${verb} ${what} failed (HTTP ${error.code}): ${message}`, {
      hint: `See the API server's answer above; "kubectl get events -n ${this.namespace}" may say more.`,
    })
  }
}

/**
 * Server-side apply refused: other managers own fields mlops sets. The API names each field and manager in the
 * Status's causes ("conflict with \"kubectl\" using apps/v1", field ".spec.replicas").
 */
function conflictError(what: string, status: Status | undefined, message: string): MlopsError {
  const conflicts = (status?.details?.causes ?? [])
    .filter((c) => c.reason === 'FieldManagerConflict')
    .slice(0, 10)
    .map((c) => ({
      field: c.field ?? '?',
      manager: /conflict with "([^"]+)"/.exec(c.message ?? '')?.[1] ?? 'another manager',
    }))
  const managers = [...new Set(conflicts.map((c) => c.manager))]
  const listed = conflicts.map((c) => (managers.length > 1 ? `${c.field} (${c.manager})` : c.field)).join(', ')
  const who = managers.join(', ') || 'another manager'
  return new MlopsError(
    'FIELD_MANAGER_CONFLICT',
    `${what}: fields mlops sets are managed by ${who}: ${listed || message}; nothing was changed`,
    {
      hint: `${who} (kubectl edit/scale/apply, a controller or GitOps) changed them. Make it stop managing them, or run the same command again with --force-conflicts to take them over.`,
      details: {conflicts},
    },
  )
}

function unreachable(cluster: Cluster, error: unknown): MlopsError {
  const cause = error as Error & {code?: string; cause?: {code?: string}}
  const timedOut = cause.name === 'AbortError' || cause.name === 'TimeoutError'
  const code = cause.code ?? cause.cause?.code
  const why = timedOut
    ? `no answer within ${REQUEST_TIMEOUT_MS / 1000}s`
    : `${code ? `${code}: ` : ''}${errorMessage(error)}`
  return new MlopsError(
    'CLUSTER_UNREACHABLE',
    `the Kubernetes API at ${cluster.server} (context ${cluster.context}) cannot be reached: ${why}`,
    {
      hint: 'Check that the cluster is up and that KUBECONFIG or --context point at it ("kubectl cluster-info"), or pass --target local.',
    },
  )
}

interface Status {
  message?: string
  reason?: string
  details?: {
    kind?: string
    name?: string
    group?: string
    causes?: {reason?: string; message?: string; field?: string}[]
  }
}

function parseStatus(body: unknown): Status | undefined {
  if (typeof body === 'string') {
    try {
      return JSON.parse(body) as Status
    } catch {
      return {message: body.slice(0, 500)}
    }
  }
  return body && typeof body === 'object' ? body : undefined
}
