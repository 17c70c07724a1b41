// Copies this mlops installation (its published files and production dependencies) into a build context, so images
// run the exact code that was tested and builds need no npm registry; onnxruntime-node keeps only the target's binaries.
import {existsSync} from 'node:fs'
import {copyFile, lstat, lutimes, mkdir, readdir, readFile, readlink, symlink, utimes} from 'node:fs/promises'
import {dirname, join, relative, sep} from 'node:path'

import {MlopsError} from '../errors.js'

export interface RuntimeOptions {
  /** The mlops package folder (the one with its package.json). */
  packageRoot: string
  /** Receives `package/` (mlops' own files) and `node_modules/`. */
  targetDir: string
  /** Node's name of the image's CPU architecture (x64, arm64): the onnxruntime-node binaries kept. */
  arch: string
}

export interface RuntimeSummary {
  /** Production dependencies copied, mlops itself not counted. */
  packages: number
  files: number
  bytes: number
  /** onnxruntime-node files for other platforms and GPU providers that were left out. */
  prunedFiles: number
  prunedBytes: number
}

interface PackageJson {
  name?: string
  version?: string
  files?: string[]
  dependencies?: Record<string, string>
  optionalDependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
  peerDependenciesMeta?: Record<string, {optional?: boolean}>
}

/**
 * Every file and folder of a context gets this mtime: layer tars then depend on content alone, so a rebuild after
 * "npm ci" or a recompile with the same output hits the engine's cache and gives the same layer digests.
 */
const FIXED_MTIME = new Date('2000-01-01T00:00:00.000Z')

// npm always publishes these, whatever `files` says.
const ALWAYS_PUBLISHED = /^(package\.json|readme(\..*)?|licen[cs]e(\..*)?|notice(\..*)?)$/i

export async function copyRuntime(options: RuntimeOptions): Promise<RuntimeSummary> {
  const own = await readPackageJson(options.packageRoot)
  if (!existsSync(join(options.packageRoot, 'dist'))) {
    throw new MlopsError(
      'RUNTIME_NOT_BUILT',
      `${options.packageRoot} has no dist/ folder: this mlops is not built, so an image of it could not run`,
      {hint: `Run "npm run build" in ${options.packageRoot}, then "mlops build" again.`},
    )
  }
  const summary: RuntimeSummary = {packages: 0, files: 0, bytes: 0, prunedFiles: 0, prunedBytes: 0}
  const packageDir = join(options.targetDir, 'package')
  await mkdir(packageDir, {recursive: true})
  for (const name of await readdir(options.packageRoot)) {
    const published =
      ALWAYS_PUBLISHED.test(name) || (own.files ?? []).some((entry) => entry.replace(/^\.?\/+|\/+$/g, '') === name)
    if (published) await copyTree(join(options.packageRoot, name), join(packageDir, name), summary, () => undefined)
  }

  const modulesDir = join(options.targetDir, 'node_modules')
  const prune = onnxruntimePruner(options.arch)
  for (const [target, source] of await productionPackages(options.packageRoot, own)) {
    summary.packages++
    const name = target.split(`${sep}node_modules${sep}`).at(-1)!
    // A package's own node_modules holds other packages of the tree: they are copied as such, if needed at all.
    const nested = join(source, 'node_modules')
    await copyTree(source, join(modulesDir, target), summary, (path) =>
      path === nested ? 'exclude' : name === 'onnxruntime-node' && prune(relative(source, path)) ? 'prune' : undefined,
    )
  }
  return summary
}

/**
 * The production dependency tree of the package at `root`, resolved the way Node resolves imports (a package's own
 * node_modules first, then each parent's): target path under the image's node_modules → folder on disk.
 */
export async function productionPackages(root: string, own?: PackageJson): Promise<Map<string, string>> {
  const found = new Map<string, string>()
  const queue: Array<{from: string; pkg: PackageJson}> = [{from: root, pkg: own ?? (await readPackageJson(root))}]
  const seen = new Set<string>()
  while (queue.length > 0) {
    const {from, pkg} = queue.shift()!
    const optional = new Set([
      ...Object.keys(pkg.optionalDependencies ?? {}),
      ...Object.keys(pkg.peerDependencies ?? {}),
    ])
    const names = [...new Set([...Object.keys(pkg.dependencies ?? {}), ...optional])]
    for (const name of names.sort()) {
      const dir = resolvePackageDir(from, name)
      if (!dir) {
        // An optional dependency for another platform is not installed; a peer is the user's choice.
        if (optional.has(name)) continue
        throw new MlopsError(
          'RUNTIME_INCOMPLETE',
          `${pkg.name ?? from} depends on ${name}, which is not installed under ${from}`,
          {hint: `Run "npm ci --omit=dev" (or "npm install") in ${root}, then "mlops build" again.`},
        )
      }
      if (seen.has(dir)) continue
      seen.add(dir)
      const target = targetPath(root, dir)
      const clash = found.get(target)
      if (clash && clash !== dir) {
        throw new MlopsError(
          'RUNTIME_CONFLICT',
          `two versions of ${name} would land in the image at node_modules/${target}: ${clash} and ${dir}`,
          {
            hint: 'Install mlops in a folder of its own ("npm install --global mlops", or a fresh "npm ci"), then "mlops build" again.',
          },
        )
      }
      found.set(target, dir)
      queue.push({from: dir, pkg: await readPackageJson(dir)})
    }
  }
  return new Map([...found].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}

/** Which files of onnxruntime-node an image for `arch` leaves out: other OSes and CPUs, and the CUDA/TensorRT providers. */
export function onnxruntimePruner(arch: string): (pathInPackage: string) => boolean {
  return (path) => {
    const parts = path.split(sep)
    // bin/napi-v6/<platform>/<arch>/...
    if (parts[0] !== 'bin' || !parts[1]?.startsWith('napi-v')) return false
    if (parts.length >= 3 && parts[2] !== 'linux') return true
    if (parts.length >= 4 && parts[3] !== arch) return true
    return parts.length >= 5 && /^libonnxruntime_providers_(cuda|tensorrt)/.test(parts[4])
  }
}

function resolvePackageDir(from: string, name: string): string | undefined {
  let dir = from
  for (;;) {
    const candidate = join(dir, 'node_modules', name)
    if (existsSync(join(candidate, 'package.json'))) return candidate
    const parent = dirname(dir)
    if (parent === dir) return undefined
    dir = parent
  }
}

/** Where a dependency goes under the image's node_modules: its path below the node_modules folder that holds it for mlops. */
function targetPath(root: string, dir: string): string {
  const own = join(root, 'node_modules') + sep
  if (dir.startsWith(own)) return dir.slice(own.length)
  // Hoisted next to mlops (mlops installed as a dependency): below the outermost node_modules that is an ancestor of root.
  const marker = `${sep}node_modules${sep}`
  const rootParts = root.split(marker)
  for (let i = 1; i < rootParts.length; i++) {
    const prefix = rootParts.slice(0, i).join(marker) + marker
    if (dir.startsWith(prefix)) return dir.slice(prefix.length)
  }
  return relative(dirname(root), dir)
}

async function readPackageJson(dir: string): Promise<PackageJson> {
  return JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as PackageJson
}

/** Copies, never hard links: a recompile rewriting dist/ in place must not change a context already written. */
async function copyTree(
  source: string,
  target: string,
  summary: RuntimeSummary,
  skip: (path: string) => 'exclude' | 'prune' | undefined,
): Promise<void> {
  const skipped = skip(source)
  if (skipped === 'exclude') return
  if (skipped === 'prune') return countPruned(source, summary)
  const info = await lstat(source)
  if (info.isDirectory()) {
    await mkdir(target, {recursive: true})
    for (const entry of (await readdir(source)).sort())
      await copyTree(join(source, entry), join(target, entry), summary, skip)
    return
  }
  if (info.isSymbolicLink()) {
    await symlink(await readlink(source), target)
    return
  }
  if (!info.isFile()) return
  await copyFile(source, target)
  summary.files++
  summary.bytes += info.size
}

async function countPruned(path: string, summary: RuntimeSummary): Promise<void> {
  const info = await lstat(path)
  if (info.isDirectory()) {
    for (const entry of await readdir(path)) await countPruned(join(path, entry), summary)
  } else if (info.isFile()) {
    summary.prunedFiles++
    summary.prunedBytes += info.size
  }
}

/** Sets FIXED_MTIME on everything under `dir` (symbolic links themselves, not their targets). */
export async function fixTimes(dir: string): Promise<void> {
  for (const entry of await readdir(dir, {withFileTypes: true})) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) await fixTimes(path)
    else await lutimes(path, FIXED_MTIME, FIXED_MTIME)
  }
  await utimes(dir, FIXED_MTIME, FIXED_MTIME)
}
