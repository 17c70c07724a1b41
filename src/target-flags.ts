// The flags that pick the target and the cluster, shared by deploy, promote, rollback, status, history and down.
import {Flags} from '@oclif/core'

import type {TargetChoice} from './targets/select.js'

export const targetFlags = {
  target: Flags.option({
    options: ['local', 'kubernetes'] as const,
    description: 'Where releases run. Default: deploy.target in mlops.yaml, else local.',
    env: 'MLOPS_TARGET',
  })(),
  context: Flags.string({
    description: 'Kubernetes: the kubeconfig context. Default: deploy.kubernetes.context, else the current one.',
  }),
  namespace: Flags.string({
    description: "Kubernetes: the namespace. Default: deploy.kubernetes.namespace, else the context's, else default.",
  }),
}

/** Deploy only: what the first rollout on a cluster needs without editing mlops.yaml. */
export const clusterDeployFlags = {
  image: Flags.string({
    description:
      'Kubernetes: the model server image as "mlops build --push" printed it; a tag is resolved to its digest, and the image\'s artifact label must match.',
  }),
  'allow-unverified-image': Flags.boolean({
    description:
      'Kubernetes: when the registry cannot be reached, deploy --image as given (a tag is not pinned, the artifact label not checked).',
  }),
  gateway: Flags.string({description: 'Kubernetes: the Gateway the HTTPRoute attaches to, NAME or NAME/NAMESPACE.'}),
  'allow-no-gateway': Flags.boolean({
    description:
      'Kubernetes without the Gateway API: one Service over every version (traffic splits by ready pods, not weights).',
  }),
}

export const forceConflictsFlag = {
  'force-conflicts': Flags.boolean({
    description: 'Kubernetes: take over fields another field manager (kubectl edit, GitOps) set on mlops resources.',
  }),
}

export function targetChoice(flags: {
  target?: 'local' | 'kubernetes'
  context?: string
  namespace?: string
  image?: string
  gateway?: string
  'allow-no-gateway'?: boolean
  'allow-unverified-image'?: boolean
  'force-conflicts'?: boolean
}): TargetChoice {
  return {
    ...(flags.target ? {kind: flags.target} : {}),
    ...(flags.context ? {context: flags.context} : {}),
    ...(flags.namespace ? {namespace: flags.namespace} : {}),
    ...(flags.image ? {image: flags.image} : {}),
    ...(flags.gateway ? {gateway: flags.gateway} : {}),
    ...(flags['allow-no-gateway'] ? {allowNoGateway: true} : {}),
    ...(flags['allow-unverified-image'] ? {allowUnverifiedImage: true} : {}),
    ...(flags['force-conflicts'] ? {forceConflicts: true} : {}),
  }
}
