// `mlops build`: an artifact into an OCI image that runs `mlops serve` on it, built by docker, podman or buildah, optionally pushed.
import {existsSync} from 'node:fs'
import {mkdir, readFile, rm, writeFile} from 'node:fs/promises'
import {join, resolve} from 'node:path'

import {projectStore} from '../artifact/project.js'
import type {ArtifactRecord} from '../artifact/types.js'
import {UsageError} from '../errors.js'
import {packageRoot, templatesDir, toolVersion} from '../paths.js'
import type {EngineName, ImageConfig} from './config.js'
import {DEFAULT_BASE_IMAGE, formatReference, imageLabels, parseReference, renderDockerfile} from './dockerfile.js'
import {detectEngine, type ImageEngine} from './engine.js'
import {copyRuntime, fixTimes, type RuntimeSummary} from './runtime.js'

export interface BuildOptions {
  /** Project directory (mlops.yaml, the artifact store); also where `.mlops/build/` goes. */
  dir: string
  /** Artifact: version, name@version, digest or .tar path; default the newest. */
  ref?: string
  engine?: EngineName
  /** Image references; without a tag the artifact version is the tag. Default image.repository or the artifact name. */
  tags?: string[]
  baseImage?: string
  /** A Dockerfile of the user's own, relative to `dir`; wins over image.dockerfile. Without either, mlops generates one. */
  dockerfile?: string
  /** Added to image.build_args, winning on the same key. */
  buildArgs?: Record<string, string>
  locale?: boolean
  push?: boolean
  tlsVerify?: boolean
  buildahVfs?: boolean
  /** CPU architecture of the image as Node names it; default this machine's (the engines build for it too). */
  arch?: string
  /** Each line the engine prints. */
  onLine?: (line: string) => void
  onProgress?: (step: string) => void
}

export interface PushedImage {
  tag: string
  /** Manifest digest in the registry. */
  digest: string
  /** `repository@digest`: the reference to deploy, immune to the tag moving. */
  reference: string
}

export interface BuildResult {
  name: string
  version: string
  artifactDigest: string
  engine: EngineName
  /** The first tag: what `docker run` takes. */
  reference: string
  tags: string[]
  /** Digest of the image configuration. */
  imageId: string
  /** Uncompressed size of all layers, in bytes. */
  size: number
  layers: string[]
  labels: Record<string, string>
  /** Path of the Dockerfile built, and whether mlops wrote it from its template. */
  dockerfile: string
  generated: boolean
  context: string
  /** Base image of the generated Dockerfile, or the BASE_IMAGE build argument given to an own one. */
  baseImage?: string
  runtime?: RuntimeSummary
  pushed: PushedImage[]
  /** Engines passed over when detecting one, and why. */
  skippedEngines: string[]
  warnings: string[]
}

/** Where an own Dockerfile finds the artifact: the path "mlops init"'s Dockerfile and .dockerignore name. */
export const EXPORTED_ARTIFACT = '.mlops/export/artifact.tar'
/** Where an own Dockerfile finds the mlops runtime: `package/` (mlops) and `node_modules/` (its dependencies). */
export const EXPORTED_RUNTIME = '.mlops/export/runtime'
const BUILD_DIR = '.mlops/build'

export async function buildImage(options: BuildOptions): Promise<BuildResult> {
  const progress = options.onProgress ?? (() => {})
  const {store, name, loaded} = await projectStore(options.dir)
  const config: ImageConfig = loaded?.config.image ?? {}
  const projectDir = loaded?.dir ?? resolve(options.dir)
  const record = await store.resolve(options.ref, {name})
  const tags = (options.tags && options.tags.length > 0 ? options.tags : [config.repository ?? record.name]).map(
    (tag) => formatReference(parseReference(tag, record.version)),
  )
  const unpushable = options.push ? tags.find((tag) => !parseReference(tag, '').repository.includes('/')) : undefined
  if (unpushable) {
    // A bare name would go to Docker Hub's official library, where nobody but Docker may push.
    throw new UsageError(
      'PUSH_NEEDS_REGISTRY',
      `--push needs an image reference with a registry or account, not ${unpushable}`,
      {
        hint: `Pass --tag REGISTRY/PATH (e.g. --tag registry.example.com/ml/${record.name}) or set image.repository in mlops.yaml.`,
      },
    )
  }
  const {engine, skipped} = await detectEngine(options.engine ?? config.engine, {
    buildahVfs: options.buildahVfs ?? config.buildah?.vfs,
  })
  const warnings: string[] = []
  const tlsVerify = options.tlsVerify ?? config.tls_verify ?? true
  if (options.push && !tlsVerify && engine.name === 'docker')
    warnings.push(
      'docker ignores --no-tls-verify: its daemon decides per registry (127.0.0.0/8 is allowed over HTTP; others need "insecure-registries" in daemon.json)',
    )

  const own = ownDockerfile(projectDir, options.dockerfile ?? config.dockerfile)
  const buildArgs: Record<string, string> = {...config.build_args, ...options.buildArgs}
  // The generated Dockerfile has the base image written in as the default of ARG BASE_IMAGE; an own one may declare
  // that ARG too. Either way a --build-arg BASE_IMAGE=… wins.
  if (own && options.baseImage && !buildArgs.BASE_IMAGE) buildArgs.BASE_IMAGE = options.baseImage
  const baseImage =
    buildArgs.BASE_IMAGE ?? (own ? undefined : (options.baseImage ?? config.base_image ?? DEFAULT_BASE_IMAGE))
  const labels = imageLabels({record, baseImage})
  let context: {
    dir: string
    dockerfile: string
    labels: Record<string, string>
    runtime?: RuntimeSummary
    hint?: string
  }
  if (own) {
    const runtime = await exportForOwnDockerfile({
      projectDir,
      arch: options.arch ?? process.arch,
      progress,
      exportArtifact: (path) => store.export(options.ref, path, {name}),
    })
    if (!existsSync(join(projectDir, '.dockerignore')))
      warnings.push(
        `${projectDir} has no .dockerignore, so the whole folder (artifact store included) is sent to ${engine.name} as the build context`,
      )
    // An own Dockerfile need not write the labels: the engine sets them.
    context = {dir: projectDir, dockerfile: own, labels, runtime}
  } else {
    context = await writeContext({
      options,
      config,
      projectDir,
      record,
      labels,
      baseImage: baseImage,
      progress,
      exportArtifact: (path) => store.export(options.ref, path, {name}),
    })
  }

  progress(`building with ${engine.name}`)
  const imageId = await engine.build({
    contextDir: context.dir,
    dockerfile: context.dockerfile,
    tags,
    buildArgs,
    labels: context.labels,
    hint: context.hint,
    onLine: options.onLine,
  })
  const info = await engine.inspect(tags[0])
  const pushed = options.push ? await pushAll(engine, tags, tlsVerify, options, progress) : []
  return {
    name: record.name,
    version: record.version,
    artifactDigest: record.digest,
    engine: engine.name,
    reference: tags[0],
    tags,
    imageId,
    size: info.size,
    layers: info.layers,
    labels: info.labels,
    dockerfile: context.dockerfile,
    generated: !own,
    context: context.dir,
    ...(baseImage ? {baseImage} : {}),
    ...(context.runtime ? {runtime: context.runtime} : {}),
    pushed,
    skippedEngines: skipped,
    warnings,
  }
}

function ownDockerfile(projectDir: string, configured: string | undefined): string | undefined {
  if (configured) {
    const path = resolve(projectDir, configured)
    if (!existsSync(path))
      throw new UsageError('DOCKERFILE_NOT_FOUND', `the Dockerfile ${configured} does not exist in ${projectDir}`, {
        hint: 'Fix image.dockerfile in mlops.yaml (or --dockerfile), or remove it to build with the Dockerfile mlops generates.',
      })
    return path
  }
  // A Dockerfile in the project (mlops init writes one) is used only when named: by default the image holds the very
  // runtime that was tested, which only the generated context carries.
  return undefined
}

/**
 * What an own Dockerfile copies from the project (the one "mlops init" writes does): the artifact and this mlops
 * runtime under .mlops/export/, written afresh, so the image runs the code "mlops test" ran and needs no registry.
 */
export async function exportForOwnDockerfile(input: {
  projectDir: string
  arch: string
  progress: (step: string) => void
  exportArtifact: (path: string) => Promise<unknown>
}): Promise<RuntimeSummary> {
  input.progress('exporting the artifact')
  await input.exportArtifact(join(input.projectDir, EXPORTED_ARTIFACT))
  input.progress('copying the mlops runtime')
  const targetDir = join(input.projectDir, EXPORTED_RUNTIME)
  await rm(targetDir, {recursive: true, force: true})
  return copyRuntime({packageRoot, targetDir, arch: input.arch})
}

interface ContextInput {
  options: BuildOptions
  config: ImageConfig
  projectDir: string
  record: ArtifactRecord
  labels: Record<string, string>
  baseImage: string
  progress: (step: string) => void
  exportArtifact: (path: string) => Promise<unknown>
}

/**
 * `.mlops/build/NAME-VERSION/`: the generated Dockerfile, this mlops runtime, an empty home for the server and the
 * artifact, written afresh so nothing of an earlier build (or the project) slips into the image.
 */
async function writeContext(
  input: ContextInput,
): Promise<{dir: string; dockerfile: string; labels: Record<string, string>; runtime: RuntimeSummary; hint: string}> {
  const {options, config, record} = input
  const dir = join(input.projectDir, BUILD_DIR, `${record.name}-${record.version}`)
  await rm(dir, {recursive: true, force: true})
  await mkdir(join(dir, 'home', 'mlops'), {recursive: true})
  input.progress('copying the mlops runtime')
  const runtime = await copyRuntime({packageRoot, targetDir: join(dir, 'runtime'), arch: options.arch ?? process.arch})
  input.progress('exporting the artifact')
  await input.exportArtifact(join(dir, 'artifact.tar'))
  const template = await readFile(join(templatesDir, 'image', 'Dockerfile'), 'utf8')
  const locale = options.locale ?? config.locale ?? true
  const dockerfile = join(dir, 'Dockerfile')
  await writeFile(
    dockerfile,
    renderDockerfile(template, {
      name: record.name,
      version: record.version,
      baseImage: input.baseImage,
      mlopsVersion: toolVersion(),
      labels: input.labels,
      locale,
    }),
  )
  await fixTimes(dir)
  // The labels are in the Dockerfile, so a hand-run "docker build" of this folder gets them too.
  const hint = locale
    ? `If the locale stage failed, the base image has no apt-get or no way to its package mirror: build with --no-locale (or image.locale: false) when no model needs en_US.UTF-8. Otherwise fix what the step above reports; ${dockerfile} shows the steps.`
    : `Fix what the step above reports; ${dockerfile} shows the steps (DEBUG=1 prints the engine's command).`
  return {dir, dockerfile, labels: {}, runtime, hint}
}

async function pushAll(
  engine: ImageEngine,
  tags: string[],
  tlsVerify: boolean,
  options: BuildOptions,
  progress: (step: string) => void,
): Promise<PushedImage[]> {
  const pushed: PushedImage[] = []
  for (const tag of tags) {
    progress(`pushing ${tag}`)
    const digest = await engine.push(tag, {tlsVerify, onLine: options.onLine})
    pushed.push({tag, digest, reference: `${parseReference(tag, '').repository}@${digest}`})
  }
  return pushed
}
