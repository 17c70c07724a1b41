// Which target a command drives (--target, else deploy.target, else local) and its store: files or the cluster.
import {resolve} from 'node:path'

import {type LoadedConfig, loadConfig} from '../config/load.js'
import {type UsageError} from '../errors.js'
import {deployPaths} from '../rollout/state.js'
import {FileStore, type RolloutStore} from '../rollout/store.js'
import {Cluster} from './kubernetes/client.js'
import {type KubernetesFlags, workloadSettings} from './kubernetes/config.js'
import {KubernetesTarget} from './kubernetes/index.js'
import {ClusterStore} from './kubernetes/store.js'
import {LocalTarget} from './local/index.js'
import type {DeployTarget} from './types.js'

export type TargetKind = 'local' | 'kubernetes'

export interface TargetChoice extends KubernetesFlags {
  kind?: TargetKind
  /** Server-side apply takes over fields another manager set. */
  forceConflicts?: boolean
}

export interface OpenedTarget {
  kind: TargetKind
  store: RolloutStore
  target: DeployTarget
  config?: LoadedConfig
}

/**
 * `fresh`: the workload settings come from mlops.yaml and the flags (a rollout begins); otherwise those the current
 * rollout began with, kept in the cluster, so a later command on another machine drives it the same way.
 */
export async function openTarget(dir: string, choice: TargetChoice = {}, fresh = false): Promise<OpenedTarget> {
  const config = await loadConfig(dir).catch((error: UsageError) => {
    // The local target's status, history and down need no mlops.yaml; the cluster's needs the model's name from it.
    if (error.code === 'CONFIG_NOT_FOUND' && choice.kind !== 'kubernetes') return undefined
    throw error
  })
  const kind = choice.kind ?? config?.config.deploy?.target ?? 'local'
  if (kind === 'local') {
    const paths = deployPaths(dir)
    return {kind, store: new FileStore(paths), target: new LocalTarget(paths, resolve(dir)), config}
  }
  const deploy = config!.config.deploy ?? {}
  const section = deploy.kubernetes ?? {}
  const cluster = new Cluster({
    context: choice.context ?? section.context,
    namespace: choice.namespace ?? section.namespace,
    kubeconfig: choice.kubeconfig,
  })
  const store = new ClusterStore(cluster, config!.config.name)
  const settings = (fresh ? undefined : await store.readSettings()) ?? workloadSettings(section, choice)
  const target = new KubernetesTarget({
    cluster,
    store,
    model: config!.config.name,
    settings,
    prometheus: deploy.analysis?.prometheus,
    forceConflicts: choice.forceConflicts,
  })
  return {kind, store, target, config}
}
