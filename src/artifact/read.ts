// Reads an artifact archive in one streaming pass: its digest, each entry's sha256, unsafe entries, and optional extraction.
import {createHash} from 'node:crypto'
import {once} from 'node:events'
import {createReadStream, createWriteStream, type WriteStream} from 'node:fs'
import {mkdir, open} from 'node:fs/promises'
import {dirname, join, relative, sep} from 'node:path'
import {finished} from 'node:stream/promises'

import semver from 'semver'
import {Parser, type ReadEntry} from 'tar'

import {MlopsError, isMlopsError} from '../errors.js'
import {diskError} from '../system/atomic.js'
import {CHUNK, unsafeEntryPath} from './archive.js'
import {type ArtifactManifest, MANIFEST_FILE} from './types.js'

export type ProblemKind =
  | 'archive-digest'
  | 'unreadable'
  | 'manifest'
  | 'file-digest'
  | 'file-size'
  | 'missing'
  | 'extra'
  | 'unsafe-path'
  | 'unsafe-type'
  | 'duplicate'

export interface VerifyProblem {
  kind: ProblemKind
  /** The entry inside the artifact the problem is about, when there is one. */
  path?: string
  message: string
}

export interface ArchiveScan {
  /** `sha256:<hex>` of the archive bytes as read. */
  digest: string
  size: number
  manifest?: ArtifactManifest
  manifestBytes?: Buffer
  files: Map<string, {sha256: string; size: number}>
  problems: VerifyProblem[]
}

export interface ScanOptions {
  /** Unpack every safe regular file and folder under this (existing, empty) folder while scanning. */
  extractTo?: string
}

/** A manifest bigger than this is not ours: refuse it rather than hold it in memory. */
const MAX_MANIFEST_BYTES = 64 * 1024 * 1024
const SAFE_TYPES = new Set(['File', 'OldFile', 'Directory'])
/** gzip and zstd: the tar parser would inflate them silently, but an artifact's digest is over plain tar bytes. */
const COMPRESSED = [Buffer.from([0x1f, 0x8b]), Buffer.from([0x28, 0xb5, 0x2f, 0xfd])]
/** Same rule as `name` in mlops.yaml: the name becomes part of file names and image tags. */
export const ARTIFACT_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/

/** Reads the whole archive once; never throws for bad content, which it reports as problems instead. */
export async function scanArchive(tarPath: string, options: ScanOptions = {}): Promise<ArchiveScan> {
  const archiveHash = createHash('sha256')
  const scan: ArchiveScan = {digest: '', size: 0, files: new Map(), problems: []}
  const seen = new Set<string>()
  const pending: Promise<void>[] = []
  // The first failure to write an entry out (a full disk, say): caught as it happens, thrown once the archive is read.
  let writeFailure: unknown
  const track = (work: Promise<unknown>) =>
    pending.push(
      work.then(
        () => undefined,
        (error: unknown) => void (writeFailure ??= error),
      ),
    )
  let first = true

  const parser = new Parser({
    onwarn: (_code, message) =>
      scan.problems.push({kind: 'unreadable', message: `the archive is not a valid tar: ${String(message)}`}),
  })
  parser.on('entry', (entry: ReadEntry) => {
    const isFirst = first
    first = false
    const path = entry.path.endsWith('/') ? entry.path.slice(0, -1) : entry.path
    const unsafe = unsafeEntryPath(entry.path)
    if (unsafe) {
      scan.problems.push({
        kind: 'unsafe-path',
        path: entry.path,
        message: `entry ${JSON.stringify(entry.path)} ${unsafe}`,
      })
      entry.resume()
      return
    }
    if (!SAFE_TYPES.has(entry.type)) {
      scan.problems.push({
        kind: 'unsafe-type',
        path,
        message: `entry ${path} is a ${entry.type}${entry.linkpath ? ` to ${entry.linkpath}` : ''}; artifacts hold only regular files and folders`,
      })
      entry.resume()
      return
    }
    if (seen.has(path)) {
      scan.problems.push({kind: 'duplicate', path, message: `entry ${path} appears twice in the archive`})
      entry.resume()
      return
    }
    seen.add(path)
    if (isFirst !== (path === MANIFEST_FILE) || (isFirst && entry.type === 'Directory')) {
      scan.problems.push({
        kind: 'manifest',
        path,
        message: isFirst
          ? `the first entry is ${path}, not ${MANIFEST_FILE}`
          : `${MANIFEST_FILE} is not the first entry`,
      })
    }
    if (entry.type === 'Directory') {
      if (options.extractTo) track(mkdir(inside(options.extractTo, path), {recursive: true}))
      entry.resume()
      return
    }
    track(readEntry(entry, path, isFirst && path === MANIFEST_FILE, scan, options.extractTo))
  })

  // Parsing stops at the first sign the bytes are not a plain tar; hashing goes on, so the digest is still reported.
  let parsing = true
  const stop = (message: string) => {
    if (parsing) scan.problems.push({kind: 'unreadable', message})
    parsing = false
  }
  parser.on('error', (error: Error) => stop(`the archive is not a valid tar: ${error.message}`))
  let size = 0
  try {
    for await (const chunk of createReadStream(tarPath, {highWaterMark: CHUNK}) as AsyncIterable<Buffer>) {
      archiveHash.update(chunk)
      if (size === 0 && COMPRESSED.some((magic) => chunk.subarray(0, magic.length).equals(magic)))
        stop('the archive is compressed; artifacts are plain, uncompressed tar files')
      size += chunk.length
      // once() takes its 'error' listener off when 'drain' comes: a listener left per wait piles up on a large archive.
      // The parser's error is recorded by the listener above.
      if (parsing && !parser.write(chunk)) await once(parser, 'drain').catch(() => undefined)
    }
  } catch (error) {
    throw new MlopsError('ARTIFACT_UNREADABLE', `cannot read ${tarPath}: ${(error as Error).message}`, {
      hint: 'Check the path and its permissions.',
      cause: error,
    })
  }
  if (parsing) {
    await new Promise<void>((resolve) => {
      parser.once('end', resolve)
      parser.once('error', resolve)
      parser.end()
    })
  }
  // After an abort an entry may never end; its output is thrown away with the rest, so do not wait for it.
  if (parsing) await Promise.all(pending)
  if (writeFailure !== undefined)
    throw isMlopsError(writeFailure) ? writeFailure : diskError(options.extractTo ?? tarPath, writeFailure)
  scan.digest = `sha256:${archiveHash.digest('hex')}`
  scan.size = size
  return scan
}

async function readEntry(
  entry: ReadEntry,
  path: string,
  isManifest: boolean,
  scan: ArchiveScan,
  extractTo: string | undefined,
): Promise<void> {
  const hash = createHash('sha256')
  let size = 0
  const manifestChunks: Buffer[] = []
  let out: WriteStream | undefined
  let target = ''
  let writeError: unknown
  if (extractTo) {
    target = inside(extractTo, path)
    try {
      await mkdir(dirname(target), {recursive: true})
      // 'wx': an entry never overwrites anything, so a folder prepared by someone else cannot be written through.
      out = createWriteStream('', {fd: await open(target, 'wx', 0o444), flush: true})
    } catch (error) {
      // Read past it anyway, or the parser would wait for this entry for ever.
      entry.resume()
      throw diskError(target, error)
    }
    // A failed write (a full disk) stops the writing; the entry is still read to its end, so the archive's parse goes on.
    out.on('error', (error) => {
      writeError ??= error
      entry.resume()
    })
  }
  const ended = new Promise((resolve) => entry.once('end', resolve))
  entry.on('data', (chunk: Buffer) => {
    hash.update(chunk)
    size += chunk.length
    if (isManifest && size <= MAX_MANIFEST_BYTES) manifestChunks.push(chunk)
    if (out && writeError === undefined && !out.write(chunk)) {
      entry.pause()
      out.once('drain', () => entry.resume())
    }
  })
  await ended
  if (out && writeError === undefined) {
    out.end()
    await finished(out).catch((error: unknown) => (writeError ??= error))
  }
  if (writeError !== undefined) {
    out?.destroy()
    throw diskError(target, writeError)
  }
  scan.files.set(path, {sha256: hash.digest('hex'), size})
  if (!isManifest) return
  scan.files.delete(path)
  if (size > MAX_MANIFEST_BYTES) {
    scan.problems.push({
      kind: 'manifest',
      path,
      message: `${MANIFEST_FILE} is ${size} bytes, more than a manifest can be`,
    })
    return
  }
  scan.manifestBytes = Buffer.concat(manifestChunks)
  try {
    const value = JSON.parse(scan.manifestBytes.toString('utf8')) as unknown
    const issues = manifestIssues(value)
    if (issues.length === 0) scan.manifest = value as ArtifactManifest
    for (const issue of issues) scan.problems.push({kind: 'manifest', path, message: `${MANIFEST_FILE} ${issue}`})
  } catch (error) {
    scan.problems.push({
      kind: 'manifest',
      path,
      message: `${MANIFEST_FILE} is not valid JSON: ${(error as Error).message}`,
    })
  }
}

/** A path under `root`; entries were checked already, this guards the join itself. */
function inside(root: string, path: string): string {
  const target = join(root, path)
  const rel = relative(root, target)
  if (rel === '' || rel.startsWith('..') || rel.startsWith(sep))
    throw new MlopsError('ARTIFACT_TAMPERED', `entry ${path} would be written outside ${root}`)
  return target
}

/** The fields the store and the server rely on, named by their path in the manifest. */
export function manifestIssues(value: unknown): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return ['is not a JSON object']
  const m = value as Record<string, unknown>
  const issues: string[] = []
  if (m.schemaVersion !== 1) issues.push(`schemaVersion: must be 1, found ${JSON.stringify(m.schemaVersion)}`)
  if (typeof m.name !== 'string' || !ARTIFACT_NAME.test(m.name))
    issues.push(`name: must be lowercase letters, digits, '.', '_' and '-', found ${JSON.stringify(m.name)}`)
  if (typeof m.version !== 'string' || !semver.valid(m.version))
    issues.push(`version: must be a semantic version, found ${JSON.stringify(m.version)}`)
  const model = m.model as Record<string, unknown> | undefined
  if (typeof model !== 'object' || model === null || typeof model.path !== 'string')
    issues.push('model.path: must be a string')
  if (!Array.isArray(m.files)) {
    issues.push('files: must be an array')
    return issues
  }
  for (const [i, f] of (m.files as unknown[]).entries()) {
    const file = f as Record<string, unknown> | null
    if (
      typeof file !== 'object' ||
      file === null ||
      typeof file.path !== 'string' ||
      typeof file.sha256 !== 'string' ||
      typeof file.size !== 'number'
    )
      issues.push(`files[${i}]: must have path, sha256 and size`)
  }
  return issues
}

/** Problems of a scanned archive against its own manifest and, for a stored artifact, against its id. */
export function checkScan(scan: ArchiveScan, expectedDigest?: string): VerifyProblem[] {
  const problems = [...scan.problems]
  if (expectedDigest && scan.digest !== expectedDigest)
    problems.unshift({
      kind: 'archive-digest',
      message: `the archive's sha256 is ${scan.digest}, not its id ${expectedDigest}`,
    })
  const manifest = scan.manifest
  if (!manifest) {
    if (!problems.some((p) => p.kind === 'manifest'))
      problems.push({kind: 'manifest', path: MANIFEST_FILE, message: `${MANIFEST_FILE} is missing`})
    return problems
  }
  const listed = new Set<string>()
  for (const file of manifest.files) {
    listed.add(file.path)
    const unsafe = unsafeEntryPath(file.path)
    if (unsafe) {
      problems.push({
        kind: 'unsafe-path',
        path: file.path,
        message: `manifest file ${JSON.stringify(file.path)} ${unsafe}`,
      })
      continue
    }
    const found = scan.files.get(file.path)
    if (!found)
      problems.push({
        kind: 'missing',
        path: file.path,
        message: `${file.path} is listed in the manifest but missing from the archive`,
      })
    else if (found.sha256 !== file.sha256)
      problems.push({kind: 'file-digest', path: file.path, message: `${file.path} sha256 differs from the manifest`})
    else if (found.size !== file.size)
      problems.push({
        kind: 'file-size',
        path: file.path,
        message: `${file.path} is ${found.size} bytes, the manifest says ${file.size}`,
      })
  }
  for (const path of scan.files.keys())
    if (!listed.has(path))
      problems.push({kind: 'extra', path, message: `${path} is in the archive but not in the manifest`})
  const model = manifest.files.find((f) => f.path === manifest.model.path)
  if (!model)
    problems.push({
      kind: 'manifest',
      path: manifest.model.path,
      message: `model.path ${manifest.model.path} is not listed in the manifest's files`,
    })
  else if (model.sha256 !== manifest.model.sha256)
    problems.push({
      kind: 'manifest',
      path: manifest.model.path,
      message: `model.sha256 differs from the files entry for ${manifest.model.path}`,
    })
  return problems
}
