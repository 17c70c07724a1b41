// What the checks need to know about the artifact under test: its signature, features, golden cases, profile and limits.
import {join, resolve} from 'node:path'

import {projectStore} from '../artifact/project.js'
import type {ReferenceProfile} from '../artifact/types.js'
import type {ChecksConfig} from './config.js'
import type {ModelSignature} from '../model/signature.js'
import type {FeatureSpec} from '../pipeline/spec.js'
import {type ServeSettings, serveSettings} from '../serve/config.js'
import {readGoldenCases} from './golden.js'
import type {GoldenCase} from './golden.types.js'

export interface Subject {
  name: string
  version: string
  digest: string
  signature: ModelSignature
  /** The pipeline's features; undefined for a bare model, whose records hold one row of each input. */
  features?: FeatureSpec[]
  /** A preprocess module decides what a record is: the server cannot refuse unknown fields for it. */
  module: boolean
  golden: GoldenCase[]
  profile?: ReferenceProfile
  /** The project's reference data (CSV or JSONL), when mlops.yaml names one. */
  reference?: string
  /** The serving limits of the project (body size, records per request). */
  serving: ServeSettings
  checks?: ChecksConfig
  /** The project directory, for starting servers. */
  dir: string
}

export async function loadSubject(dir: string, ref?: string): Promise<Subject> {
  const {store, name, loaded} = await projectStore(dir)
  const opened = await store.open(ref, {name})
  const {manifest} = opened
  const config = loaded?.config
  return {
    name: manifest.name,
    version: manifest.version,
    digest: opened.record.digest,
    signature: manifest.model.signature,
    features: manifest.pipeline?.spec.features,
    module: Boolean(manifest.pipeline?.module),
    golden: manifest.golden ? await readGoldenCases(join(opened.dir, manifest.golden.path)) : [],
    profile: manifest.profile,
    reference: config?.data?.reference && loaded ? resolve(loaded.dir, config.data.reference) : undefined,
    serving: serveSettings(config?.serving),
    checks: config?.checks,
    dir: loaded?.dir ?? resolve(dir),
  }
}
