// Fixtures for image tests: buildah on vfs, a Node base image made from this machine, a registry on 127.0.0.1, skopeo.
import {execFileSync} from 'node:child_process'
import {readdirSync} from 'node:fs'
import {chmod, copyFile, cp, mkdir, mkdtemp, realpath, rm, symlink, writeFile} from 'node:fs/promises'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'

import {execa, type ResultPromise} from 'execa'

import {packageRoot} from '../../src/paths.js'
import {run, which} from '../../src/system/exec.js'

/** What the tests pass as --base-image: node:20-bookworm-slim cannot be pulled here, so they make their own. */
export const BASE_IMAGE = 'localhost/mlops-test-node:20'

export const buildahMissing = async (): Promise<string | undefined> =>
  (await which('buildah'))
    ? undefined
    : 'buildah is not installed (apt-get install buildah), so no image can be built here'

export async function buildah(args: string[]): Promise<string> {
  return (await run('buildah', ['--storage-driver', 'vfs', ...args])).stdout
}

let baseImage: Promise<string> | undefined

/**
 * A Node 20 runtime image built FROM scratch out of this machine's node binary and the shared libraries it,
 * onnxruntime-node and sharp load (as ldd lists them), plus dash for RUN steps, /tmp and a passwd with uid 1000: what
 * node:20-bookworm-slim gives the generated Dockerfile, minus apt (so the locale stage cannot run on it). Made once,
 * and kept in buildah's storage for later runs while it holds this node and these libraries.
 */
export function ensureBaseImage(): Promise<string> {
  baseImage ??= makeBaseImage()
  return baseImage
}

const NODE_LABEL = 'dev.mlops.test.node'

async function makeBaseImage(): Promise<string> {
  const node = await realpath(process.execPath)
  const libraries = sharedLibraries([node, '/bin/dash', ...nativeModules()])
  // The libraries are part of what the image is: a native dependency added to mlops must rebuild it.
  const identity = `${node} ${process.version} ${process.arch} ${[...libraries].sort().join(' ')}`
  const existing = await buildah(['inspect', '--type', 'image', BASE_IMAGE]).catch(() => undefined)
  if (
    existing &&
    (JSON.parse(existing) as {Docker?: {config?: {Labels?: Record<string, string>}}}).Docker?.config?.Labels?.[
      NODE_LABEL
    ] === identity
  )
    return BASE_IMAGE
  const dir = await mkdtemp(join(tmpdir(), 'mlops-test-base-'))
  try {
    const rootfs = join(dir, 'rootfs')
    for (const library of libraries) await copyInto(rootfs, library, library)
    await copyInto(rootfs, node, '/usr/local/bin/node')
    await copyInto(rootfs, '/bin/dash', '/bin/sh')
    await copyInto(rootfs, '/etc/ssl/certs/ca-certificates.crt', '/etc/ssl/certs/ca-certificates.crt').catch(
      () => undefined,
    )
    await mkdir(join(rootfs, 'tmp'), {recursive: true})
    await chmod(join(rootfs, 'tmp'), 0o1777)
    await writeFile(
      join(rootfs, 'etc', 'passwd'),
      'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n',
    )
    await writeFile(join(rootfs, 'etc', 'group'), 'root:x:0:\nnode:x:1000:\n')
    await writeFile(
      join(dir, 'Dockerfile'),
      `FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/local/bin:/usr/bin:/bin\nLABEL ${NODE_LABEL}="${identity}"\n`,
    )
    await buildah(['bud', '--isolation', 'chroot', '--format', 'docker', '--tag', BASE_IMAGE, dir])
    return BASE_IMAGE
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
}

/**
 * The native modules mlops loads at start: onnxruntime-node's, and sharp's (libvips needs libresolv, which neither
 * node nor onnxruntime does; without it "mlops serve" exits at its first import inside the image).
 */
function nativeModules(): string[] {
  const ortDir = join(packageRoot, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', 'linux', process.arch)
  const sharpDir = join(packageRoot, 'node_modules', '@img', `sharp-linux-${process.arch}`, 'lib')
  return [
    join(ortDir, 'libonnxruntime.so.1'),
    join(ortDir, 'onnxruntime_binding.node'),
    ...readdirSync(sharpDir)
      .filter((name) => name.endsWith('.node'))
      .map((name) => join(sharpDir, name)),
  ]
}

/** The shared libraries `binaries` load, as ldd lists them, less those of the installation (the image has its own). */
function sharedLibraries(binaries: string[]): Set<string> {
  const libraries = new Set<string>()
  for (const binary of binaries) {
    for (const match of execFileSync('ldd', [binary], {encoding: 'utf8'}).matchAll(/(\/\S+) \(0x/g)) {
      if (!match[1].startsWith(packageRoot)) libraries.add(match[1])
    }
  }
  return libraries
}

async function copyInto(rootfs: string, source: string, target: string): Promise<void> {
  await mkdir(dirname(join(rootfs, target)), {recursive: true})
  await copyFile(source, join(rootfs, target))
  await chmod(join(rootfs, target), 0o755)
}

/**
 * A frozen copy of the built CLI (its published files, with node_modules linked), run as `node <copy>/bin/run.js`.
 * The image holds the mlops installation that runs the build; on a checkout where dist/ is being rebuilt meanwhile, two
 * builds from it would hold two different runtimes, and the layer-reuse test would measure that instead.
 */
export async function snapshotCli(dir: string): Promise<string> {
  const root = join(dir, 'mlops')
  await mkdir(root, {recursive: true})
  for (const entry of ['bin', 'dist', 'templates', 'schemas', 'oclif.manifest.json', 'package.json', 'README.md']) {
    await cp(join(packageRoot, entry), join(root, entry), {recursive: true}).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error
    })
  }
  await symlink(join(packageRoot, 'node_modules'), join(root, 'node_modules'))
  return join(root, 'bin', 'run.js')
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const {port} = server.address() as {port: number}
      server.close(() => resolve(port))
    })
  })
}

export interface Registry {
  /** host:port, e.g. 127.0.0.1:40123 */
  address: string
  stop: () => Promise<void>
}

/** The distribution registry (Debian's docker-registry) on a free port of 127.0.0.1, storing into a temp folder. */
export async function startRegistry(): Promise<Registry> {
  const dir = await mkdtemp(join(tmpdir(), 'mlops-test-registry-'))
  const port = await freePort()
  const address = `127.0.0.1:${port}`
  const config = join(dir, 'config.yml')
  await writeFile(
    config,
    `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\nhttp:\n  addr: ${address}\n`,
  )
  const child = execa('/usr/bin/docker-registry', ['serve', config], {reject: false})
  const stop = async () => {
    child.kill('SIGTERM')
    await child
    await rm(dir, {recursive: true, force: true})
  }
  await waitFor(async () => (await fetch(`http://${address}/v2/`)).ok, `the registry on ${address}`)
  return {address, stop}
}

/** Polls `check` until it holds; `what` is read when it fails, so it can hold a process's output by then. */
export async function waitFor(
  check: () => Promise<boolean>,
  what: string | (() => string),
  timeoutMs = 60_000,
  ended?: () => boolean,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  const name = () => (typeof what === 'string' ? what : what())
  while (Date.now() < deadline) {
    if (ended?.()) throw new Error(`${name()} ended before it came up`)
    try {
      if (await check()) return
    } catch (error) {
      last = error
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  throw new Error(`${name()} did not come up within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`)
}

export async function skopeo(reference: string, what: 'inspect' | 'config'): Promise<Record<string, unknown>> {
  const args = what === 'config' ? ['inspect', '--config', '--raw'] : ['inspect']
  return JSON.parse((await run('skopeo', [...args, '--tls-verify=false', `docker://${reference}`])).stdout) as Record<
    string,
    unknown
  >
}

/** A working container of `image` and a command running in it (host network under chroot isolation), stopped by stop(). */
export interface RunningContainer {
  process: ResultPromise
  output: () => string
  /** Whether the command has ended. */
  ended: () => boolean
  exec: (command: string[]) => Promise<string>
  stop: () => Promise<void>
}

/** `volumes` are HOST:CONTAINER[:ro] bind mounts, for the command and for exec() alike. */
export async function runInImage(image: string, command: string[], volumes: string[] = []): Promise<RunningContainer> {
  const container = (await buildah(['from', image])).trim()
  const runArgs = [
    'run',
    '--isolation',
    'chroot',
    ...volumes.flatMap((volume) => ['--volume', volume]),
    container,
    '--',
  ]
  let output = ''
  const child = execa('buildah', ['--storage-driver', 'vfs', ...runArgs, ...command], {reject: false, all: true})
  child.all?.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8')
  })
  let ended = false
  void child.finally(() => (ended = true))
  return {
    process: child,
    output: () => output,
    ended: () => ended,
    exec: async (args) => buildah([...runArgs, ...args]),
    stop: async () => {
      child.kill('SIGTERM')
      await child
      await buildah(['rm', container])
    },
  }
}
