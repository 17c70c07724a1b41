// What `mlops artifacts list|show|verify|export` return: records, manifests and verification reports of a project's store.
import {join, resolve} from 'node:path'

import {type AuthMode, authSettings} from '../auth/config.js'
import {readGoldenCases} from '../checks/golden.js'
import {artifactOpenApi} from '../serve/openapi.js'
import {projectStore} from './project.js'
import type {ExportResult, VerifyReport} from './store.js'
import type {ArtifactManifest, ArtifactRecord} from './types.js'

export interface ListResult {
  artifacts: ArtifactRecord[]
}

export async function listArtifacts(options: {dir: string; name?: string}): Promise<ListResult> {
  const {store} = await projectStore(options.dir)
  return {artifacts: await store.list(options.name)}
}

export interface ShowResult {
  record: ArtifactRecord
  manifest: ArtifactManifest
}

export async function showArtifact(options: {dir: string; ref?: string}): Promise<ShowResult> {
  const {store, name} = await projectStore(options.dir)
  const opened = await store.open(options.ref, {name})
  return {record: opened.record, manifest: opened.manifest}
}

/**
 * The OpenAPI document `mlops serve` gives for this artifact at /openapi.json: with the security the project's
 * serving.auth sets (or `authMode`, as serve's --auth), since the artifact itself does not say who may call.
 */
export async function artifactOpenApiDocument(options: {
  dir: string
  ref?: string
  authMode?: AuthMode
}): Promise<Record<string, unknown>> {
  const {store, name, loaded} = await projectStore(options.dir)
  const {manifest, dir} = await store.open(options.ref, {name})
  const cases = manifest.golden ? await readGoldenCases(join(dir, manifest.golden.path)) : []
  const auth = authSettings(loaded?.config.serving?.auth, loaded?.dir ?? resolve(options.dir), options.authMode)
  return artifactOpenApi(manifest, cases, auth)
}

export async function verifyArtifact(options: {dir: string; ref?: string}): Promise<VerifyReport> {
  const {store, name} = await projectStore(options.dir)
  return store.verify(options.ref, {name})
}

/** The newest stored version of the project's artifact: what a command given no REF acts on. */
export async function newestVersion(dir: string): Promise<string> {
  const {store, name} = await projectStore(dir)
  return (await store.resolve(undefined, {name})).version
}

export async function exportArtifact(options: {dir: string; ref?: string; output: string}): Promise<ExportResult> {
  const {store, name} = await projectStore(options.dir)
  return store.export(options.ref, options.output, {name})
}
