// Docker, podman and buildah behind one interface: build, push, inspect, each a thin class over the engine's own CLI.
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {MlopsError} from '../errors.js'
import {CommandFailedError, CommandNotFoundError, run, tail, which} from '../system/exec.js'
import {ENGINE_NAMES, type EngineName} from './config.js'

export interface BuildRequest {
  contextDir: string
  dockerfile: string
  /** Full references, `repository:tag`. */
  tags: string[]
  buildArgs: Record<string, string>
  /** Set on the image by the engine (for Dockerfiles that do not write them). */
  labels: Record<string, string>
  /** What to do when the build fails; default: fix the failing step of the Dockerfile. */
  hint?: string
  onLine?: (line: string) => void
}

export interface ImageInfo {
  /** `sha256:` digest of the image configuration: the image id. */
  id: string
  /** Uncompressed size of the layers in bytes. */
  size: number
  /** Layer diff ids, base first. */
  layers: string[]
  labels: Record<string, string>
}

export interface PushOptions {
  tlsVerify: boolean
  onLine?: (line: string) => void
}

export interface ImageEngine {
  readonly name: EngineName
  /** Builds and tags the image; returns its id. */
  build(request: BuildRequest): Promise<string>
  /** Pushes a tag to its registry; returns the manifest digest the registry stored. */
  push(reference: string, options: PushOptions): Promise<string>
  inspect(reference: string): Promise<ImageInfo>
}

export interface EngineOptions {
  /** buildah only: the vfs storage driver and chroot isolation. */
  buildahVfs?: boolean
}

const INSTALL_HINT =
  'Install docker, podman or buildah (e.g. "sudo apt-get install buildah"); on GitHub Actions docker is preinstalled.'

const DAEMON_DOWN = /Cannot connect to the Docker daemon|Is the docker daemon running|docker\.sock/i
const DAEMON_HINT =
  'Start Docker (Docker Desktop, or "sudo systemctl start docker"), or build with another engine: --engine podman or --engine buildah.'

export function createEngine(name: EngineName, options: EngineOptions = {}): ImageEngine {
  switch (name) {
    case 'docker':
      return new DockerEngine()
    case 'podman':
      return new PodmanEngine()
    case 'buildah':
      return new BuildahEngine(options.buildahVfs ?? false)
  }
}

export interface DetectedEngine {
  engine: ImageEngine
  /** Engines passed over and why, for the output. */
  skipped: string[]
}

/**
 * The engine to use: the one asked for, else docker when its daemon answers, then podman, then buildah. A docker
 * CLI without a running daemon is common (Docker Desktop closed), so it is passed over rather than failing the build.
 */
export async function detectEngine(
  requested: EngineName | undefined,
  options: EngineOptions = {},
): Promise<DetectedEngine> {
  if (requested) {
    if (!(await which(requested)))
      throw new MlopsError('ENGINE_NOT_FOUND', `${requested} was not found on PATH`, {
        hint: `${INSTALL_HINT} Or leave out --engine to use whichever is installed.`,
      })
    return {engine: createEngine(requested, options), skipped: []}
  }
  const skipped: string[] = []
  for (const name of ENGINE_NAMES) {
    if (!(await which(name))) continue
    if (name === 'docker') {
      const problem = await dockerDaemonProblem()
      if (problem) {
        skipped.push(`docker: the daemon does not answer (${problem})`)
        continue
      }
    }
    return {engine: createEngine(name, options), skipped}
  }
  const why = skipped.length > 0 ? `: ${skipped.join('; ')}, and neither podman nor buildah is on PATH` : ' on PATH'
  throw new MlopsError('ENGINE_NOT_FOUND', `no image build engine (docker, podman or buildah) was found${why}`, {
    hint:
      skipped.length > 0
        ? `Start Docker (Docker Desktop, or "sudo systemctl start docker"), or: ${INSTALL_HINT}`
        : INSTALL_HINT,
  })
}

async function dockerDaemonProblem(): Promise<string | undefined> {
  try {
    await run('docker', ['version', '--format', '{{.Server.Version}}'], {timeoutMs: 15_000})
    return undefined
  } catch (error) {
    const message = error instanceof CommandFailedError ? error.stderrTail : String(error)
    return tail(message, 1) || 'no answer'
  }
}

interface Failure {
  code: string
  /** What was being done, for the message: "build", "push registry/app:1". */
  what: string
  hint: string
}

/** Runs an engine command; a failure keeps the engine's stderr tail and gets a hint for what to do next. */
async function engineRun(
  command: string,
  args: string[],
  failure: Failure,
  onLine?: (line: string) => void,
): Promise<string> {
  try {
    return (await run(command, args, {onLine})).stdout
  } catch (error) {
    if (error instanceof CommandNotFoundError)
      throw new MlopsError('ENGINE_NOT_FOUND', `${command} was not found on PATH`, {hint: INSTALL_HINT})
    if (!(error instanceof CommandFailedError)) throw error
    const status = error.status === undefined ? '' : ` (exit code ${error.status})`
    // The usual docker failure is not the Dockerfile at all but a daemon that is not running.
    const hint = DAEMON_DOWN.test(error.stderrTail) ? DAEMON_HINT : failure.hint
    throw new MlopsError(
      failure.code,
      `${command} ${failure.what} failed${status}${error.stderrTail ? `:\n${error.stderrTail}` : ''}`,
      {hint, details: error.details, cause: error},
    )
  }
}

function buildFailure(request: BuildRequest): Failure {
  return {
    code: 'IMAGE_BUILD_FAILED',
    what: 'build',
    hint:
      request.hint ??
      `Fix the failing step of ${request.dockerfile} shown above, then run "mlops build" again (DEBUG=1 prints the engine's command).`,
  }
}

function pushFailure(reference: string): Failure {
  const registry = reference.split('/')[0]
  return {
    code: 'IMAGE_PUSH_FAILED',
    what: `push ${reference}`,
    hint: `Log in with "docker login ${registry}" (or podman/buildah login), check that the registry is reachable, then "mlops build --push" again; for a registry on plain HTTP add --no-tls-verify.`,
  }
}

function inspectFailure(engine: string, reference: string): Failure {
  return {
    code: 'IMAGE_NOT_FOUND',
    what: `inspect ${reference}`,
    hint: `Check that "${engine} images" lists ${reference}.`,
  }
}

function commonBuildArgs(request: BuildRequest): string[] {
  const args = ['--file', request.dockerfile]
  for (const tag of request.tags) args.push('--tag', tag)
  for (const [key, value] of Object.entries(request.buildArgs)) args.push('--build-arg', `${key}=${value}`)
  for (const [key, value] of Object.entries(request.labels)) args.push('--label', `${key}=${value}`)
  return args
}

async function withTempFile<T>(use: (path: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'mlops-image-'))
  try {
    return await use(join(dir, 'out'))
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
}

async function readDigest(path: string): Promise<string> {
  return (await readFile(path, 'utf8')).trim()
}

export class DockerEngine implements ImageEngine {
  readonly name = 'docker' as const

  async build(request: BuildRequest): Promise<string> {
    return withTempFile(async (iidfile) => {
      await engineRun(
        'docker',
        ['build', ...commonBuildArgs(request), '--iidfile', iidfile, request.contextDir],
        buildFailure(request),
        request.onLine,
      )
      return readDigest(iidfile)
    })
  }

  async push(reference: string, options: PushOptions): Promise<string> {
    // docker has no per-push TLS switch: the daemon decides (127.0.0.0/8 is insecure by default, others via daemon.json).
    const out = await engineRun('docker', ['push', reference], pushFailure(reference), options.onLine)
    const digest = /digest: (sha256:[0-9a-f]{64})/.exec(out)?.[1]
    if (!digest)
      throw new MlopsError('IMAGE_PUSH_FAILED', `docker push ${reference} did not report a digest:\n${tail(out)}`, {
        hint: pushFailure(reference).hint,
      })
    return digest
  }

  async inspect(reference: string): Promise<ImageInfo> {
    const out = await engineRun('docker', ['image', 'inspect', reference], inspectFailure('docker', reference))
    const [image] = JSON.parse(out) as Array<{
      Id: string
      Size: number
      RootFS?: {Layers?: string[]}
      Config?: {Labels?: Record<string, string> | null}
    }>
    return {id: image.Id, size: image.Size, layers: image.RootFS?.Layers ?? [], labels: image.Config?.Labels ?? {}}
  }
}

/** podman and buildah share containers/storage and most flags; they differ in how they are called. */
abstract class ContainersEngine implements ImageEngine {
  abstract readonly name: 'podman' | 'buildah'
  protected abstract command(subcommand: string[]): string[]
  protected abstract buildCommand(): string[]

  async build(request: BuildRequest): Promise<string> {
    return withTempFile(async (iidfile) => {
      // docker format: OCI image configs have no HEALTHCHECK, and buildah would drop it with a warning. --force-rm: a
      // failed step's working container would otherwise stay behind, holding a copy of the image's files.
      const args = [
        ...this.buildCommand(),
        '--format',
        'docker',
        '--layers',
        '--force-rm',
        ...commonBuildArgs(request),
        '--iidfile',
        iidfile,
        request.contextDir,
      ]
      await engineRun(this.name, args, buildFailure(request), request.onLine)
      return `sha256:${(await readDigest(iidfile)).replace(/^sha256:/, '')}`
    })
  }

  async push(reference: string, options: PushOptions): Promise<string> {
    return withTempFile(async (digestfile) => {
      const args = this.command([
        'push',
        `--tls-verify=${options.tlsVerify}`,
        '--digestfile',
        digestfile,
        reference,
        `docker://${reference}`,
      ])
      await engineRun(this.name, args, pushFailure(reference), options.onLine)
      return readDigest(digestfile)
    })
  }

  async inspect(reference: string): Promise<ImageInfo> {
    const out = await engineRun(
      this.name,
      this.command(['inspect', '--type', 'image', reference]),
      inspectFailure(this.name, reference),
    )
    return this.parseInspect(out)
  }

  protected abstract parseInspect(out: string): ImageInfo
}

export class PodmanEngine extends ContainersEngine {
  readonly name = 'podman' as const

  protected command(subcommand: string[]): string[] {
    return subcommand
  }

  protected buildCommand(): string[] {
    return ['build']
  }

  protected parseInspect(out: string): ImageInfo {
    const [image] = JSON.parse(out) as Array<{
      Id: string
      Size: number
      RootFS?: {Layers?: string[]}
      Labels?: Record<string, string> | null
    }>
    return {
      id: `sha256:${image.Id.replace(/^sha256:/, '')}`,
      size: image.Size,
      layers: image.RootFS?.Layers ?? [],
      labels: image.Labels ?? {},
    }
  }
}

export class BuildahEngine extends ContainersEngine {
  readonly name = 'buildah' as const

  constructor(private readonly vfs: boolean) {
    super()
  }

  protected command(subcommand: string[]): string[] {
    return this.vfs ? ['--storage-driver', 'vfs', ...subcommand] : subcommand
  }

  protected buildCommand(): string[] {
    return this.command(this.vfs ? ['bud', '--isolation', 'chroot'] : ['bud'])
  }

  protected parseInspect(out: string): ImageInfo {
    type Config = {rootfs?: {diff_ids?: string[]}; config?: {Labels?: Record<string, string> | null}}
    const image = JSON.parse(out) as {FromImageID: string; Manifest: string; Docker?: Config; OCIv1?: Config}
    const manifest = JSON.parse(image.Manifest) as {layers?: Array<{size: number}>}
    return {
      id: `sha256:${image.FromImageID.replace(/^sha256:/, '')}`,
      // Layers in local storage are uncompressed, so the manifest's sizes add up to the image's size on disk.
      size: (manifest.layers ?? []).reduce((sum, layer) => sum + layer.size, 0),
      layers: image.Docker?.rootfs?.diff_ids ?? image.OCIv1?.rootfs?.diff_ids ?? [],
      labels: image.Docker?.config?.Labels ?? image.OCIv1?.config?.Labels ?? {},
    }
  }
}
