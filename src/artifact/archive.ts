// Writes an artifact archive byte for byte the same on every machine: manifest first, sorted entries, fixed metadata.
import {createHash, randomBytes} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {type FileHandle, mkdir, open, rm, stat} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {Header, type HeaderData, Pax} from 'tar'

import {MlopsError} from '../errors.js'
import {diskError} from '../system/atomic.js'
import {type ArtifactManifest, MANIFEST_FILE, type ManifestFile} from './types.js'

export interface ArchiveEntry {
  /** Path inside the artifact: POSIX separators, relative, no `.` or `..` segments. */
  path: string
  /** A regular file on disk (streamed, never loaded whole) or the bytes themselves. */
  source: string | Buffer
}

export interface WriteArchiveOptions {
  /** Folder for the archive being written; put it in the store folder so storing it is a rename. */
  tmpDir?: string
}

export interface WrittenArchive {
  /** `sha256:<hex>` of the whole archive: the artifact id. */
  digest: string
  size: number
  files: ManifestFile[]
  /** The manifest exactly as stored: `files` and the model's sha256 and size filled in. */
  manifest: ArtifactManifest
  /** The finished archive, fsynced; the caller moves it into the store or removes it. */
  tmpPath: string
}

/** Every entry carries this mtime, so the time of packaging never reaches the digest. */
export const ARCHIVE_MTIME = new Date('2000-01-01T00:00:00.000Z')
export const FILE_MODE = 0o644
export const DIR_MODE = 0o755
/** Prefix of archives being written; a file with it is never an artifact, and a dead writer's is cleaned. */
export const INCOMING_PREFIX = '.incoming-'
export const BLOCK = 512
export const CHUNK = 1024 * 1024
const MAX_IN_FLIGHT = 4

const ZEROS = Buffer.alloc(BLOCK * 2)

/** Why a path may not be an entry of an artifact, or undefined when it is safe to extract anywhere. */
export function unsafeEntryPath(path: string): string | undefined {
  const trimmed = path.endsWith('/') ? path.slice(0, -1) : path
  if (trimmed === '') return 'is empty'
  if (trimmed.includes('\0')) return 'contains a NUL byte'
  if (trimmed.startsWith('/') || /^[A-Za-z]:/.test(trimmed)) return 'is an absolute path'
  if (trimmed.includes('\\')) return 'contains a backslash (use POSIX separators)'
  const segments = trimmed.split('/')
  if (segments.includes('..')) return 'escapes its folder (contains "..")'
  if (segments.some((s) => s === '' || s === '.')) return 'is not normalized (empty or "." segment)'
  return undefined
}

/** JSON with object keys sorted at every level, so equal manifests serialize to equal bytes. */
export function canonicalJson(value: unknown): string {
  const sorted = (_key: string, v: unknown): unknown => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v
    const source = v as Record<string, unknown>
    return Object.fromEntries(
      Object.keys(source)
        .sort()
        .map((k) => [k, source[k]]),
    )
  }
  return JSON.stringify(value, sorted, 2) + '\n'
}

/** Byte order of the UTF-8 paths: the same on every machine and locale, unlike localeCompare. */
export function comparePaths(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

interface HashedEntry extends ArchiveEntry {
  sha256: string
  size: number
  /** File identity at hash time, to notice a file rewritten before the archive pass reads it again. */
  stamp?: string
}

/**
 * Writes the archive into a temp file and returns its digest. The manifest lists each file's sha256 and comes first
 * (so `tar -xOf x.tar manifest.json` and the store read it without scanning gigabytes), which means every file is
 * read twice: a hash pass, then the archive pass that hashes the archive as it writes it.
 */
export async function writeArchive(
  manifest: Omit<ArtifactManifest, 'files'> & {files?: ManifestFile[]},
  entries: ArchiveEntry[],
  options: WriteArchiveOptions = {},
): Promise<WrittenArchive> {
  checkEntries(entries)
  const sorted = [...entries].sort((a, b) => comparePaths(a.path, b.path))
  const hashed: HashedEntry[] = []
  for (const entry of sorted) hashed.push(await hashEntry(entry))

  const files: ManifestFile[] = hashed.map((e) => ({path: e.path, sha256: e.sha256, size: e.size}))
  const model = files.find((f) => f.path === manifest.model.path)
  if (!model)
    throw new MlopsError(
      'ARTIFACT_ENTRY_INVALID',
      `manifest model.path ${manifest.model.path} is not one of the archive entries (${files.map((f) => f.path).join(', ')})`,
      {hint: 'Add the model file to the entries under the same path as model.path.'},
    )
  const full: ArtifactManifest = {
    ...manifest,
    model: {...manifest.model, sha256: model.sha256, size: model.size},
    files,
  }
  const manifestBytes = Buffer.from(canonicalJson(full), 'utf8')

  const tmpDir = options.tmpDir ?? tmpdir()
  await mkdir(tmpDir, {recursive: true})
  const tmpPath = join(tmpDir, `${INCOMING_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}.tar`)
  let handle: FileHandle | undefined
  try {
    handle = await open(tmpPath, 'wx', FILE_MODE)
    const out = new HashingWriter(handle)
    await out.write(headerFor(MANIFEST_FILE, 'File', manifestBytes.length))
    await out.write(manifestBytes)
    await out.pad()
    for (const item of withDirectories(hashed)) {
      if (item.dir) {
        await out.write(headerFor(item.path, 'Directory', 0))
        continue
      }
      const entry = item.entry
      await out.write(headerFor(entry.path, 'File', entry.size))
      await (Buffer.isBuffer(entry.source) ? out.write(entry.source) : copyFile(entry, out))
      await out.pad()
    }
    await out.write(ZEROS)
    await out.flush()
    await handle.sync()
    await handle.close()
    handle = undefined
    return {digest: `sha256:${out.hash.digest('hex')}`, size: out.size, files, manifest: full, tmpPath}
  } catch (error) {
    await handle?.close().catch(() => undefined)
    await rm(tmpPath, {force: true})
    throw diskError(tmpPath, error)
  }
}

function checkEntries(entries: ArchiveEntry[]): void {
  const seen = new Set<string>()
  for (const {path} of entries) {
    const reason = path === MANIFEST_FILE ? `is reserved for the manifest` : unsafeEntryPath(path)
    if (reason || path.endsWith('/'))
      throw new MlopsError(
        'ARTIFACT_ENTRY_INVALID',
        `artifact entry "${path}" ${reason ?? 'ends with "/" (entries are files)'}`,
        {hint: 'Use a relative POSIX path such as model/model.onnx.'},
      )
    if (seen.has(path))
      throw new MlopsError('ARTIFACT_ENTRY_INVALID', `artifact entry "${path}" is given twice`, {
        hint: 'Give each file one path in the artifact.',
      })
    seen.add(path)
  }
  for (const path of seen) {
    const parts = path.split('/')
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/')
      if (seen.has(parent))
        throw new MlopsError(
          'ARTIFACT_ENTRY_INVALID',
          `artifact entry "${parent}" is a file, but "${path}" needs it to be a folder`,
          {hint: 'Rename one of the two entries.'},
        )
    }
  }
}

async function hashEntry(entry: ArchiveEntry): Promise<HashedEntry> {
  if (Buffer.isBuffer(entry.source))
    return {...entry, sha256: createHash('sha256').update(entry.source).digest('hex'), size: entry.source.length}
  const stamp = await statSource(entry)
  return {...entry, ...(await sha256File(entry.source)), stamp}
}

/** Streams a file through sha256, in chunks, so a model of any size hashes in flat memory. */
export async function sha256File(path: string): Promise<{sha256: string; size: number}> {
  const hash = createHash('sha256')
  let size = 0
  for await (const chunk of createReadStream(path, {highWaterMark: CHUNK}) as AsyncIterable<Buffer>) {
    hash.update(chunk)
    size += chunk.length
  }
  return {sha256: hash.digest('hex'), size}
}

async function statSource(entry: ArchiveEntry): Promise<string> {
  const source = entry.source as string
  let info
  try {
    info = await stat(source)
  } catch (error) {
    throw new MlopsError(
      'ARTIFACT_SOURCE_MISSING',
      `cannot read ${source} for artifact entry ${entry.path}: ${(error as Error).message}`,
      {hint: 'Check that the file exists and is readable, then package again.', cause: error},
    )
  }
  if (!info.isFile())
    throw new MlopsError('ARTIFACT_SOURCE_INVALID', `${source} (artifact entry ${entry.path}) is not a regular file`, {
      hint: 'Point the entry at a regular file.',
    })
  return `${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}`
}

/** Streams a file into the archive; it must still be the file the hash pass read, or the manifest would lie. */
async function copyFile(entry: HashedEntry, out: HashingWriter): Promise<void> {
  const changed = () =>
    new MlopsError('ARTIFACT_SOURCE_CHANGED', `${entry.source as string} changed while it was being packaged`, {
      hint: 'Wait until whatever writes the file has finished, then package again.',
    })
  if ((await statSource(entry)) !== entry.stamp) throw changed()
  let copied = 0
  for await (const chunk of createReadStream(entry.source, {highWaterMark: CHUNK}) as AsyncIterable<Buffer>) {
    copied += chunk.length
    if (copied > entry.size) throw changed()
    await out.write(chunk)
  }
  if (copied !== entry.size) throw changed()
}

type Item = {dir: true; path: string} | {dir: false; path: string; entry: HashedEntry}

/** The sorted entries with a folder entry before each folder's first file, as tar tools expect. */
function withDirectories(entries: HashedEntry[]): Item[] {
  const items: Item[] = entries.map((entry) => ({dir: false, path: entry.path, entry}))
  const dirs = new Set<string>()
  for (const {path} of entries) {
    const parts = path.split('/')
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/') + '/')
  }
  for (const path of dirs) items.push({dir: true, path})
  return items.sort((a, b) => comparePaths(a.path, b.path))
}

/** One ustar header, preceded by a pax header when the path or size does not fit ustar. */
function headerFor(path: string, type: 'File' | 'Directory', size: number): Buffer {
  const data: HeaderData = {
    path,
    type,
    size,
    mode: type === 'File' ? FILE_MODE : DIR_MODE,
    uid: 0,
    gid: 0,
    uname: '',
    gname: '',
    mtime: ARCHIVE_MTIME,
  }
  const header = new Header(data)
  header.encode()
  if (!header.needPax) return header.block!
  const pax = new Pax({path, size: size >= 8 ** 11 ? size : undefined, mtime: ARCHIVE_MTIME}).encode()
  const short = new Header({...data, path: path.slice(-99)})
  short.encode()
  return Buffer.concat([pax, short.block!])
}

/**
 * Appends to the archive, hashing every byte as it goes so the digest costs no second read. Up to MAX_IN_FLIGHT
 * writes run at once at explicit offsets, so the disk writes while the next chunk is read and hashed; memory stays
 * bounded by MAX_IN_FLIGHT chunks.
 */
class HashingWriter {
  readonly hash = createHash('sha256')
  size = 0
  private readonly inFlight: Promise<void>[] = []

  constructor(private readonly handle: FileHandle) {}

  async write(data: Buffer): Promise<void> {
    this.hash.update(data)
    const position = this.size
    this.size += data.length
    const written = writeAll(this.handle, data, position)
    // A failure surfaces from flush() or the next full window; never as an unhandled rejection meanwhile.
    written.catch(() => undefined)
    this.inFlight.push(written)
    if (this.inFlight.length >= MAX_IN_FLIGHT) await this.inFlight.shift()
  }

  /** Zero-fills to the next 512-byte block, where the next header starts. */
  async pad(): Promise<void> {
    const rest = this.size % BLOCK
    if (rest !== 0) await this.write(ZEROS.subarray(0, BLOCK - rest))
  }

  async flush(): Promise<void> {
    while (this.inFlight.length > 0) await this.inFlight.shift()
  }
}

async function writeAll(handle: FileHandle, data: Buffer, position: number): Promise<void> {
  let offset = 0
  while (offset < data.length) {
    const {bytesWritten} = await handle.write(data, offset, data.length - offset, position + offset)
    offset += bytesWritten
  }
}
