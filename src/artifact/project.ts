// The artifact store of a project: configured in mlops.yaml, or the default folder when a command runs outside a project.
import {resolve} from 'node:path'

import {type LoadedConfig, loadConfig} from '../config/load.js'
import {MlopsError} from '../errors.js'
import {ArtifactStore} from './store.js'

export const DEFAULT_STORE = '.mlops/artifacts'

export function storeFor(loaded: LoadedConfig): ArtifactStore {
  return new ArtifactStore(resolve(loaded.dir, loaded.config.artifacts?.store ?? DEFAULT_STORE))
}

export interface ProjectStore {
  store: ArtifactStore
  /** The project's artifact name, so a bare version means a version of this model. */
  name?: string
  loaded?: LoadedConfig
}

/** The store for commands that also work on a bare .tar outside any project (show, verify, serve). */
export async function projectStore(dir: string): Promise<ProjectStore> {
  try {
    const loaded = await loadConfig(dir)
    return {store: storeFor(loaded), name: loaded.config.name, loaded}
  } catch (error) {
    if (error instanceof MlopsError && error.code === 'CONFIG_NOT_FOUND')
      return {store: new ArtifactStore(resolve(dir, DEFAULT_STORE))}
    throw error
  }
}
