// What serve and predict run: an artifact from the store (verified, with its pipeline and golden cases) or a bare .onnx file.
import {existsSync} from 'node:fs'
import {open} from 'node:fs/promises'
import {basename, dirname, extname, join, resolve} from 'node:path'

import {projectStore} from '../artifact/project.js'
import {Authenticator} from '../auth/authenticator.js'
import {type AuthMode, authSettings} from '../auth/config.js'
import {readGoldenCases} from '../checks/golden.js'
import {UsageError} from '../errors.js'
import {type LoadedModel, loadModel} from '../model/signature.js'
import {createPipeline} from '../pipeline/index.js'
import type {Pipeline} from '../pipeline/types.js'
import {driftSettings} from '../monitor/config.js'
import {LiveProfiles} from '../monitor/live.js'
import {makeDirectory} from '../system/atomic.js'
import {type ServeSettings, serveSettings} from './config.js'
import {artifactOpenApi} from './openapi.js'
import type {SharedServices, SharedSetup} from './shared.js'
import {type ModelIdentity, type ModelServer, createModelServer} from './server.js'
import type {Warmup} from './warmup.js'

export interface LoadServableOptions {
  /** Project directory: its mlops.yaml gives the store and the `serving` settings. */
  dir: string
  /** A version, name@version, digest or .tar path; default the newest artifact in the store. */
  ref?: string
  /** A bare .onnx file served without a pipeline (a record holds one row of each input). */
  modelPath?: string
  /** The version a bare model answers as (default 0.0.0): the release the deploy gateway serves it as. */
  modelVersion?: string
  settings?: Partial<ServeSettings>
  /** onnxruntime's idle threads spin (default) or sleep between runs: see LoadOptions.spinning. */
  spinning?: boolean
  /** In place of serving.auth's mode (--auth). */
  authMode?: AuthMode
  /** Plain HTTP whatever serving.tls says: a model server behind a gateway that has no CA to check it with. */
  plainHttp?: boolean
  /** Intra-op threads when model.threads is not set (a worker of several takes its share of the cores). */
  intraOpThreads?: number
  /** A worker of several: rate buckets, the request log, feedback, live profiles and /metrics go through its primary. */
  shared?: SharedServices
}

export interface Servable {
  model: LoadedModel
  /** Live profiles against the artifact's baseline, saved next to the request log (see src/monitor/live.ts). */
  live?: {profiles: LiveProfiles; path?: string}
  pipeline?: Pipeline
  identity: ModelIdentity
  settings: ServeSettings
  warmup?: Warmup
  /** Names of the pipeline's image features: `mlops predict` reads their files. */
  images?: string[]
  /** GET /openapi.json: the artifact's document (the bare model's is made from its signature by the server). */
  openapi?: Record<string, unknown>
  warnings: string[]
}

export async function loadServable(options: LoadServableOptions): Promise<Servable> {
  const {store, name, loaded} = await projectStore(options.dir)
  const config = loaded?.config
  const settings = serveSettings(config?.serving, options.settings)
  if (settings.requestLog && loaded)
    settings.requestLog = {...settings.requestLog, path: resolve(loaded.dir, settings.requestLog.path)}
  const tls = config?.serving?.tls
  const base = loaded?.dir ?? resolve(options.dir)
  if (tls && !settings.tls && !options.plainHttp)
    settings.tls = {
      cert: resolve(base, tls.cert),
      key: resolve(base, tls.key),
      ...(tls.client_ca ? {clientCa: resolve(base, tls.client_ca)} : {}),
    }
  settings.auth = authSettings(config?.serving?.auth, loaded?.dir ?? resolve(options.dir), options.authMode)
  if (settings.auth.mode !== 'none' && settings.auth.mode !== 'keys' && !settings.auth.jwt)
    throw new UsageError('AUTH_JWT_UNSET', `--auth ${settings.auth.mode} needs serving.auth.jwt in mlops.yaml`, {
      hint: 'Set serving.auth.jwt.jwks_url and serving.auth.jwt.audience, or pass --auth keys.',
    })
  const threads = {
    ...(config?.model.threads === undefined
      ? options.intraOpThreads === undefined
        ? {}
        : {intraOpThreads: options.intraOpThreads}
      : {intraOpThreads: config.model.threads}),
    ...(options.spinning === false ? {spinning: false} : {}),
  }

  if (options.modelPath) {
    const path = resolve(options.modelPath)
    if (!existsSync(path))
      throw new UsageError('MODEL_NOT_FOUND', `The model file ${options.modelPath} does not exist`, {
        hint: 'Pass the path of an .onnx file, or serve a packaged artifact: "mlops serve VERSION".',
      })
    const model = await loadModel(path, threads)
    return {
      model,
      identity: {name: basename(path, extname(path)), version: options.modelVersion ?? '0.0.0'},
      settings,
      warnings: model.warnings,
    }
  }

  // A store may be shared by several projects (artifacts.store): a version means this project's.
  const opened = await store.open(options.ref, {name})
  const {manifest} = opened
  const model = await loadModel(opened.modelPath, threads)
  const spec = manifest.pipeline?.spec
  // In the artifact the module sits next to pipeline.json, wherever it was in the project.
  const pipeline = spec
    ? await createPipeline(
        manifest.pipeline?.module ? {...spec, module: manifest.pipeline.module} : spec,
        model.signature,
        {moduleDir: opened.dir},
      )
    : undefined
  const cases = manifest.golden ? await readGoldenCases(join(opened.dir, manifest.golden.path)) : []
  const live = manifest.profile
    ? {
        profiles: new LiveProfiles(manifest.profile, {settings: driftSettings(config?.monitor)}),
        path: settings.requestLog ? `${settings.requestLog.path}.profiles.json` : undefined,
      }
    : undefined
  const restored = live?.path ? await live.profiles.load(live.path) : undefined
  return {
    model,
    live,
    pipeline,
    identity: {name: manifest.name, version: manifest.version, digest: opened.record.digest},
    settings,
    warmup: cases.length > 0 ? {cases} : undefined,
    openapi: artifactOpenApi(manifest, cases, settings.auth),
    images: spec?.features?.filter((f) => f.type === 'image').map((f) => f.name),
    warnings: restored ? [...model.warnings, restored] : model.warnings,
  }
}

/** What the primary of several workers needs to keep their shared files. */
export function sharedSetup({settings, live}: Servable): SharedSetup {
  return {
    ...(settings.requestLog ? {requestLog: settings.requestLog} : {}),
    ...(live?.path ? {live: {path: live.path, limits: live.profiles.limits}} : {}),
  }
}

export interface Serving {
  server: ModelServer
  url: string
  port: number
  servable: Servable
  /** Drains in-flight requests (up to `timeoutMs`), then releases the model. True when nothing was cut off. */
  stop(timeoutMs?: number): Promise<boolean>
}

/** Loads, verifies and warms the model up, and listens: resolves once the server is ready. */
export async function startServing(options: LoadServableOptions): Promise<Serving> {
  const servable = await loadServable(options)
  const {model, pipeline, identity, settings, warmup, openapi} = servable
  let server: ModelServer
  let url: string
  const {shared} = options
  const auth =
    settings.auth && settings.auth.mode !== 'none' ? new Authenticator(settings.auth, shared?.takeToken) : undefined
  try {
    if (settings.requestLog) await checkWritable(settings.requestLog.path)
    await auth?.start()
    server = createModelServer({
      auth,
      model,
      pipeline,
      identity,
      settings,
      warmup,
      openapi,
      processMetrics: true,
      live: servable.live?.profiles,
      shared,
    })
    url = await server.listen(settings.port, settings.host)
  } catch (error) {
    auth?.close()
    await model.session.release().catch(() => undefined)
    throw startError(error, settings)
  }
  // Live profiles reach the disk once a minute and at shutdown: a restarted server and `mlops monitor` pick them up.
  const live = servable.live
  const save = async () => {
    if (!live?.path) return
    await (shared ? shared.saveLive(live.profiles.ownSnapshot()) : live.profiles.save(live.path)).catch(
      (error: Error) =>
        process.stderr.write(
          `mlops serve: live drift windows cannot be saved to ${live.path} (${error.message}); drift history will not survive a restart\n`,
        ),
    )
  }
  const saver = live?.path ? setInterval(() => void save(), 60_000).unref() : undefined
  servable.warnings.push(...server.warnings)
  return {
    server,
    url,
    port: Number(new URL(url).port),
    servable,
    async stop(timeoutMs = 30_000) {
      const drained = await server.drain(timeoutMs)
      auth?.close()
      clearInterval(saver)
      await save()
      await model.session.release().catch(() => undefined)
      return drained
    },
  }
}

const HOST_HINT =
  'Pass --host (or set serving.host) to an address of this machine: 127.0.0.1, 0.0.0.0 for every interface, or ::.'

/** Why the server could not start listening, in the user's words where the cause is theirs. */
function startError(error: unknown, settings: ServeSettings): unknown {
  const code = (error as NodeJS.ErrnoException).code
  if (code === 'EADDRINUSE')
    return new UsageError('PORT_IN_USE', `Port ${settings.port} on ${settings.host} is already in use`, {
      hint: 'Pass another --port, or --port 0 to pick a free one.',
    })
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return new UsageError('HOST_INVALID', `the host ${settings.host} to listen on does not resolve to an address`, {
      hint: HOST_HINT,
    })
  if (code === 'EADDRNOTAVAIL')
    return new UsageError(
      'HOST_NOT_LOCAL',
      `${settings.host} is not an address of this machine, so nothing can listen on it`,
      {hint: HOST_HINT},
    )
  if (code === 'EACCES')
    return new UsageError('PORT_NOT_ALLOWED', `port ${settings.port} needs privileges this process does not have`, {
      hint: 'Pass a port above 1023, or --port 0 to pick a free one.',
    })
  return error
}

/** A request log that cannot be written is found at start, not as entries dropped for the server's whole life. */
async function checkWritable(path: string): Promise<void> {
  try {
    await makeDirectory(dirname(path))
    await (await open(path, 'a', 0o600)).close()
  } catch (error) {
    throw new UsageError(
      'REQUEST_LOG_UNWRITABLE',
      `serving.request_log.path ${path} cannot be written: ${(error as Error).message}`,
      {
        hint: 'Point serving.request_log.path in mlops.yaml at a writable file (relative to the project), or remove request_log.',
      },
    )
  }
}
