// The local artifact store: content-addressed blobs, an index of name → version → digest, verified opening and export.
import {randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {copyFile, lstat, mkdir, open, readdir, readFile, rename, rm, stat} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {basename, dirname, extname, join, resolve as resolvePath} from 'node:path'

import lockfile from 'proper-lockfile'
import semver from 'semver'

import {MlopsError, UsageError} from '../errors.js'
import type {RegistryAccess} from '../registry/client.js'
import {parseReference} from '../registry/reference.js'
import {diskError, makeDirectory, readJson, writeJsonAtomically} from '../system/atomic.js'
import type {GitInfo} from '../system/git.js'
import {isAlive} from '../system/process.js'
import {INCOMING_PREFIX, sha256File, type WrittenArchive} from './archive.js'
import {ARTIFACT_NAME, type ArchiveScan, checkScan, scanArchive, type VerifyProblem} from './read.js'
import {type ArtifactManifest, type ArtifactRecord, MANIFEST_FILE, type OpenedArtifact} from './types.js'

export interface ArtifactStoreOptions {
  /** Where opened artifacts are unpacked, one folder per digest. Default: `<root>/cache`. */
  cacheDir?: string
  now?: () => Date
}

export interface ResolveOptions {
  /** The project's artifact name: a bare version or `latest` means a version of this one. */
  name?: string
  /** How to reach a registry a reference names (default: the MLOPS_REGISTRY_* environment, the auth files). */
  registry?: RegistryAccess
}

export interface OpenOptions extends ResolveOptions {
  cacheDir?: string
}

export interface PutResult {
  record: ArtifactRecord
  /** False when this version was already stored with the same content. */
  created: boolean
  /** The stored archive of this same content was missing or damaged, and this build replaced it. */
  repaired?: boolean
}

export interface VerifyReport {
  name?: string
  version?: string
  /** The artifact id: the digest the store recorded, or for a file outside the store the digest it has. */
  digest: string
  /** The sha256 of the archive as it is now. */
  actualDigest: string
  path: string
  ok: boolean
  problems: VerifyProblem[]
}

export interface ExportResult {
  name: string
  version: string
  digest: string
  size: number
  path: string
}

interface IndexEntry {
  digest: string
  size: number
  storedAt: string
  git?: GitInfo
}

interface IndexFile {
  schemaVersion: 1
  artifacts: Record<string, Record<string, IndexEntry>>
}

/** An artifact a ref points at: one in the store, or an archive file anywhere. */
type Located = {stored: true; record: ArtifactRecord} | {stored: false; file: string}

const EXTRACTING_PREFIX = '.extracting-'
/** A temp file whose writer's pid cannot be checked is someone else's only while it is this young. */
const STALE_MS = 24 * 60 * 60 * 1000
const INDEX_TEMP_STALE_MS = 10 * 60 * 1000
const DIGEST_HEX = /^[0-9a-f]{64}$/

export class ArtifactStore {
  readonly root: string
  readonly blobsDir: string
  readonly indexPath: string
  readonly cacheDir: string
  private readonly now: () => Date

  constructor(root: string, options: ArtifactStoreOptions = {}) {
    this.root = resolvePath(root)
    this.blobsDir = join(this.root, 'blobs', 'sha256')
    this.indexPath = join(this.root, 'index.json')
    this.cacheDir = resolvePath(options.cacheDir ?? join(this.root, 'cache'))
    this.now = options.now ?? (() => new Date())
  }

  blobPath(digest: string): string {
    return join(this.blobsDir, `${hexOf(digest)}.tar`)
  }

  /**
   * Moves a finished archive (from writeArchive) into the store under its manifest's name and version. Pass the
   * WrittenArchive as `written` to skip re-reading the archive; without it the archive is scanned and checked first.
   */
  async put(
    tmpPath: string,
    manifest: ArtifactManifest,
    written?: Pick<WrittenArchive, 'digest' | 'size'>,
  ): Promise<PutResult> {
    await this.clean()
    const invalid = !ARTIFACT_NAME.test(manifest.name)
      ? `name ${JSON.stringify(manifest.name)} is not lowercase letters, digits, '.', '_' and '-'`
      : semver.valid(manifest.version) === manifest.version
        ? undefined
        : `version ${JSON.stringify(manifest.version)} is not a plain semantic version`
    if (invalid) {
      await rm(tmpPath, {force: true})
      throw new UsageError('MANIFEST_INVALID', `cannot store the artifact: its ${invalid}`, {
        hint: 'Fix name or version in mlops.yaml (or --version X.Y.Z), then package again.',
      })
    }
    const {digest, size} = written ?? (await this.checkIncoming(tmpPath, manifest))
    const stored = await this.existing(manifest, digest).catch(async (error: unknown) => {
      await rm(tmpPath, {force: true})
      throw error
    })
    if (stored) {
      // The same content again: a chance to heal its blob if it went missing or was damaged since (a byte-identical build).
      const intact = await sha256File(stored.path).then(
        (blob) => `sha256:${blob.sha256}` === digest,
        () => false,
      )
      if (intact) await rm(tmpPath, {force: true})
      else await moveInto(tmpPath, stored.path)
      return {record: stored, created: false, ...(intact ? {} : {repaired: true})}
    }

    await mkdir(this.blobsDir, {recursive: true})
    // Always rename over an existing blob of the same digest: it heals a blob that was damaged since.
    await moveInto(tmpPath, this.blobPath(digest))
    const entry: IndexEntry = {digest, size, storedAt: this.now().toISOString(), git: manifest.git}
    // Under the index lock, read the index again, so that what a concurrent put added is kept.
    return this.withIndexLock(async () => {
      const index = await this.readIndex()
      const raced = index.artifacts[manifest.name]?.[manifest.version]
      if (raced)
        return {
          record: this.recordOf(manifest.name, manifest.version, this.assertSame(manifest, raced, digest)),
          created: false,
        }
      index.artifacts[manifest.name] ??= {}
      index.artifacts[manifest.name][manifest.version] = entry
      await writeJsonAtomically(this.indexPath, index)
      return {record: this.recordOf(manifest.name, manifest.version, entry), created: true}
    })
  }

  /**
   * Runs `fn` holding `index.json.lock` (a folder, made atomically by mkdir): concurrent `mlops package` runs take
   * turns at the index instead of one overwriting what the other added. A lock left by a killed process goes stale
   * after 10 s, and is then taken over.
   */
  private async withIndexLock<T>(fn: () => Promise<T>): Promise<T> {
    let release: () => Promise<void>
    try {
      release = await lockfile.lock(this.indexPath, {
        realpath: false,
        stale: 10_000,
        retries: {retries: 100, minTimeout: 20, maxTimeout: 250},
      })
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ELOCKED')
        throw new MlopsError(
          'INDEX_LOCKED',
          `the artifact index ${this.indexPath} stayed locked by another mlops command`,
          {hint: `Run the command again; if no other mlops command is running, remove ${this.indexPath}.lock.`},
        )
      throw diskError(`${this.indexPath}.lock`, error)
    }
    try {
      return await fn()
    } finally {
      await release().catch(() => {})
    }
  }

  /** Stored artifacts, by name and then by ascending semver. */
  async list(name?: string): Promise<ArtifactRecord[]> {
    const index = await this.readIndex()
    const records: ArtifactRecord[] = []
    for (const [n, versions] of Object.entries(index.artifacts)) {
      if (name !== undefined && n !== name) continue
      for (const [version, entry] of Object.entries(versions)) records.push(this.recordOf(n, version, entry))
    }
    return records.sort((a, b) => (a.name === b.name ? semver.compare(a.version, b.version) : a.name < b.name ? -1 : 1))
  }

  async latestVersion(name: string): Promise<string | undefined> {
    return (await this.list(name)).at(-1)?.version
  }

  /**
   * Finds an artifact by a version, `latest` or nothing (the highest version), `name@version`, a digest or a unique
   * digest prefix (`sha256:ab12…`, or 7+ hex digits), the path of a .tar file inside or outside the store, or a
   * registry reference (REGISTRY/REPOSITORY@sha256:… or :TAG), pulled into this store once and kept by digest.
   */
  async resolve(ref?: string, options: ResolveOptions = {}): Promise<ArtifactRecord> {
    const located = await this.locate(ref, options)
    if (located.stored) return located.record
    const scan = await scanArchive(located.file)
    if (!scan.manifest) throw tampered(`artifact file ${located.file}`, checkScan(scan), fileHint(located.file))
    return fileRecord(located.file, scan, scan.manifest)
  }

  /** Reads the whole archive and lists every problem; it throws only when the ref matches nothing. */
  async verify(ref?: string, options: ResolveOptions = {}): Promise<VerifyReport> {
    const located = await this.locate(ref, options)
    const path = located.stored ? located.record.path : located.file
    const expected = located.stored ? located.record.digest : undefined
    if (!existsSync(path)) {
      return {
        name: located.stored ? located.record.name : undefined,
        version: located.stored ? located.record.version : undefined,
        digest: expected ?? '',
        actualDigest: '',
        path,
        ok: false,
        problems: [{kind: 'unreadable', message: `the archive file ${path} is missing`}],
      }
    }
    const scan = await scanArchive(path)
    const problems = checkScan(scan, expected)
    return {
      name: located.stored ? located.record.name : scan.manifest?.name,
      version: located.stored ? located.record.version : scan.manifest?.version,
      digest: expected ?? scan.digest,
      actualDigest: scan.digest,
      path,
      ok: problems.length === 0,
      problems,
    }
  }

  /** Unpacks the artifact into the cache (every digest checked first) and returns where its model is. */
  async open(ref?: string, options: OpenOptions = {}): Promise<OpenedArtifact> {
    const located = await this.locate(ref, options)
    const cacheDir = options.cacheDir ? resolvePath(options.cacheDir) : this.cacheDir
    if (!located.stored) return openArtifactFile(located.file, {cacheDir})
    const {record} = located
    const label = `artifact ${record.name}@${record.version}`
    return openVerified(record.path, cacheDir, label, await this.repackageHint(record), record)
  }

  /** Copies the artifact to `destPath` (a file, or a folder to write NAME-VERSION.tar into), checked after copying. */
  async export(ref: string | undefined, destPath: string, options: ResolveOptions = {}): Promise<ExportResult> {
    const located = await this.locate(ref, options)
    const source = located.stored ? located.record.path : located.file
    const isDir = existsSync(destPath) && (await stat(destPath)).isDirectory()
    const name = located.stored ? `${located.record.name}-${located.record.version}.tar` : basename(source)
    const target = resolvePath(isDir ? join(destPath, name) : destPath)
    // Replacing an earlier export is expected; replacing a file of another kind (data.csv) is a slip of the finger.
    if (existsSync(target) && extname(target) !== '.tar') {
      throw new UsageError(
        'OUTPUT_EXISTS',
        `${target} exists and is not an artifact archive (.tar): it would be replaced`,
        {hint: 'Write to a .tar path or a folder, or remove the file first.'},
      )
    }
    const tmp = join(dirname(target), `.${basename(target)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`)
    try {
      await makeDirectory(dirname(target))
      await copyFile(source, tmp)
      await fsync(tmp)
      const scan = await scanArchive(tmp)
      const problems = checkScan(scan, located.stored ? located.record.digest : undefined)
      const label = located.stored
        ? `artifact ${located.record.name}@${located.record.version}`
        : `artifact file ${source}`
      if (problems.length > 0 || !scan.manifest)
        throw tampered(label, problems, located.stored ? await this.repackageHint(located.record) : fileHint(source))
      await rename(tmp, target)
      return {
        name: scan.manifest.name,
        version: scan.manifest.version,
        digest: scan.digest,
        size: scan.size,
        path: target,
      }
    } catch (error) {
      await rm(tmp, {force: true})
      throw diskError(target, error)
    }
  }

  /** Removes what killed writers left behind (temp archives, half-unpacked folders, index temp files); returns them. */
  async clean(): Promise<string[]> {
    const removed: string[] = []
    for (const dir of [this.root, this.blobsDir, this.cacheDir])
      removed.push(...(await removeDeadTemps(dir, dir === this.root)))
    return removed
  }

  private async locate(ref: string | undefined, options: ResolveOptions): Promise<Located> {
    const trimmed = ref?.trim()
    if (trimmed && !existsSync(trimmed) && parseReference(trimmed)) {
      // Loaded on demand: most commands never talk to a registry.
      const {pullInto} = await import('../registry/pull.js')
      return {stored: true, record: (await pullInto(this, trimmed, options.registry)).record}
    }
    if (trimmed && looksLikeFile(trimmed)) {
      if (!existsSync(trimmed))
        throw new UsageError('ARTIFACT_NOT_FOUND', `artifact file ${trimmed} does not exist`, {
          hint: 'Check the path, or give a stored version (see "mlops artifacts list").',
        })
      return {stored: false, file: resolvePath(trimmed)}
    }
    if (trimmed === undefined || trimmed === '' || trimmed === 'latest')
      return {stored: true, record: await this.byVersion(undefined, options.name)}
    const digestPrefix =
      /^sha256:([0-9a-f]{4,64})$/i.exec(trimmed)?.[1] ??
      (/^[0-9a-f]{7,64}$/i.test(trimmed) && !semver.valid(trimmed) ? trimmed : undefined)
    if (digestPrefix) return {stored: true, record: await this.byDigest(digestPrefix.toLowerCase())}
    if (trimmed.startsWith('sha256:'))
      throw new UsageError('REF_INVALID', `${trimmed} is not a sha256 digest or prefix`, {
        hint: 'Give at least 4 hex digits after "sha256:", e.g. sha256:ab12cd3.',
      })
    const at = trimmed.lastIndexOf('@')
    if (at > 0) {
      const version = trimmed.slice(at + 1)
      return {
        stored: true,
        record: await this.byVersion(
          version === 'latest' ? undefined : checkVersion(version, trimmed),
          trimmed.slice(0, at),
        ),
      }
    }
    if (semver.valid(trimmed)) return {stored: true, record: await this.byVersion(semver.valid(trimmed)!, options.name)}
    if (existsSync(trimmed)) return {stored: false, file: resolvePath(trimmed)}
    throw new UsageError('ARTIFACT_NOT_FOUND', `${trimmed} is not a stored version, digest or artifact file`, {
      hint: 'Give a version (1.2.0), latest, name@version, a digest prefix (sha256:ab12cd3) or a .tar path; "mlops artifacts list" shows what is stored.',
    })
  }

  private async byVersion(version: string | undefined, name: string | undefined): Promise<ArtifactRecord> {
    const records = await this.list(name)
    const what = name ?? 'this store'
    if (records.length === 0)
      throw new UsageError('ARTIFACT_NOT_FOUND', `no artifacts of ${what} are stored in ${this.root}`, {
        hint: 'Run "mlops package" first.',
      })
    const names = [...new Set(records.map((r) => r.name))]
    const matches =
      version === undefined
        ? names.map((n) => records.filter((r) => r.name === n).at(-1)!)
        : records.filter((r) => r.version === version)
    if (matches.length === 1) return matches[0]
    if (matches.length === 0) {
      const newest = records.at(-1)!.version
      throw new UsageError(
        'ARTIFACT_NOT_FOUND',
        `${name ? `${name}@` : 'version '}${version} is not stored; the stored versions are ${records.map((r) => r.version).join(', ')}`,
        {
          hint: `Package it with "mlops package --version ${version}", or use one of the stored versions (newest: ${newest}).`,
        },
      )
    }
    throw new UsageError(
      'ARTIFACT_AMBIGUOUS',
      `${version ?? 'latest'} matches several artifacts: ${matches.map((r) => `${r.name}@${r.version}`).join(', ')}`,
      {hint: `Name one, e.g. ${matches[0].name}@${matches[0].version}.`},
    )
  }

  private async byDigest(prefix: string): Promise<ArtifactRecord> {
    const matches = (await this.list()).filter((r) => hexOf(r.digest).startsWith(prefix))
    if (matches.length === 1) return matches[0]
    if (matches.length === 0)
      throw new UsageError('ARTIFACT_NOT_FOUND', `no stored artifact has a digest starting with ${prefix}`, {
        hint: 'Run "mlops artifacts list" to see the stored digests.',
      })
    throw new UsageError(
      'ARTIFACT_AMBIGUOUS',
      `digest prefix ${prefix} matches ${matches.length} artifacts: ${matches.map((r) => `${r.name}@${r.version} ${r.digest.slice(0, 19)}`).join(', ')}`,
      {hint: 'Give more hex digits of the digest.'},
    )
  }

  private async readIndex(): Promise<IndexFile> {
    const index = await readJson<IndexFile>(this.indexPath)
    if (index === undefined) return {schemaVersion: 1, artifacts: {}}
    if (
      index === null ||
      typeof index !== 'object' ||
      index.schemaVersion !== 1 ||
      typeof index.artifacts !== 'object' ||
      index.artifacts === null
    ) {
      throw new MlopsError(
        'STATE_CORRUPT',
        `${this.indexPath} is not an artifact index (schemaVersion 1 with an "artifacts" object)`,
        {hint: `Restore ${this.indexPath} from a backup; the archives in ${this.blobsDir} are intact.`},
      )
    }
    return index
  }

  private recordOf(name: string, version: string, entry: IndexEntry): ArtifactRecord {
    return {
      name,
      version,
      digest: entry.digest,
      size: entry.size,
      storedAt: entry.storedAt,
      path: this.blobPath(entry.digest),
      git: entry.git,
    }
  }

  /** The stored record when this exact content is already stored under the version; refuses other content. */
  private async existing(manifest: ArtifactManifest, digest: string): Promise<ArtifactRecord | undefined> {
    const entry = (await this.readIndex()).artifacts[manifest.name]?.[manifest.version]
    if (!entry) return undefined
    return this.recordOf(manifest.name, manifest.version, this.assertSame(manifest, entry, digest))
  }

  private assertSame(manifest: ArtifactManifest, entry: IndexEntry, digest: string): IndexEntry {
    if (entry.digest === digest) return entry
    throw new UsageError(
      'VERSION_EXISTS',
      `${manifest.name}@${manifest.version} is already stored with other content (${entry.digest.slice(0, 19)}…, this one is ${digest.slice(0, 19)}…)`,
      {
        hint: 'Versions are immutable: bump it with "mlops package --bump patch" (or --version X.Y.Z).',
        details: {name: manifest.name, version: manifest.version, stored: entry.digest, new: digest},
      },
    )
  }

  private async checkIncoming(tmpPath: string, manifest: ArtifactManifest): Promise<{digest: string; size: number}> {
    const scan = await scanArchive(tmpPath)
    const problems = checkScan(scan)
    if (scan.manifest && (scan.manifest.name !== manifest.name || scan.manifest.version !== manifest.version)) {
      problems.push({
        kind: 'manifest',
        path: MANIFEST_FILE,
        message: `the archive is ${scan.manifest.name}@${scan.manifest.version}, not ${manifest.name}@${manifest.version}`,
      })
    }
    if (problems.length === 0) return {digest: scan.digest, size: scan.size}
    await rm(tmpPath, {force: true})
    throw tampered(
      `artifact ${manifest.name}@${manifest.version}`,
      problems,
      'The archive was not stored; package it again with "mlops package".',
    )
  }

  private async repackageHint(record: ArtifactRecord): Promise<string> {
    const latest = await this.latestVersion(record.name)
    const next = latest ? semver.inc(latest, 'patch') : undefined
    const same = `Package it again from the same sources ("mlops package --version ${record.version}"): a byte-identical build replaces the damaged archive`
    return next ? `${same}; otherwise package it as a new version ("mlops package --version ${next}").` : `${same}.`
  }
}

/** Opens an archive file with no store around it (an exported .tar, or the one baked into an image). */
export async function openArtifactFile(tarPath: string, options: {cacheDir?: string} = {}): Promise<OpenedArtifact> {
  const path = resolvePath(tarPath)
  if (!existsSync(path))
    throw new UsageError('ARTIFACT_NOT_FOUND', `artifact file ${path} does not exist`, {
      hint: 'Export one with "mlops artifacts export VERSION --output PATH".',
    })
  return openVerified(
    path,
    resolvePath(options.cacheDir ?? join(tmpdir(), 'mlops-artifacts')),
    `artifact file ${path}`,
    fileHint(path),
  )
}

/**
 * Checks every digest of the archive, then reuses the unpacked folder for its digest after checking it again, or
 * unpacks into a temp folder (checking each entry once more as it is written) and renames it into place.
 */
async function openVerified(
  tarPath: string,
  cacheDir: string,
  label: string,
  hint: string,
  stored?: ArtifactRecord,
): Promise<OpenedArtifact> {
  const scan = await scanArchive(tarPath)
  const problems = checkScan(scan, stored?.digest)
  if (problems.length > 0 || !scan.manifest || !scan.manifestBytes) throw tampered(label, problems, hint)
  const manifest = scan.manifest
  const record = stored ?? fileRecord(tarPath, scan, manifest)
  const dir = join(cacheDir, hexOf(scan.digest))
  const opened = {record, manifest, dir, modelPath: join(dir, manifest.model.path)}

  if (existsSync(dir)) {
    if (await cacheIntact(dir, scan)) return opened
    await rm(dir, {recursive: true, force: true})
  }
  await removeDeadTemps(cacheDir, false)
  const tmp = join(cacheDir, `${EXTRACTING_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`)
  await mkdir(tmp, {recursive: true})
  try {
    const unpacked = await scanArchive(tarPath, {extractTo: tmp})
    const again = checkScan(unpacked, scan.digest)
    if (again.length > 0) throw tampered(label, again, hint)
    try {
      await rename(tmp, dir)
    } catch (error) {
      // Another process unpacked the same digest first: use theirs once it checks out.
      const code = (error as NodeJS.ErrnoException).code
      if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || !(await cacheIntact(dir, scan))) throw error
    }
    return opened
  } finally {
    await rm(tmp, {recursive: true, force: true})
  }
}

/** An unpacked folder is reused only if it holds exactly the manifest's files with the manifest's digests. */
async function cacheIntact(dir: string, scan: ArchiveScan): Promise<boolean> {
  const manifest = scan.manifest!
  let onDisk: string[]
  try {
    onDisk = await readdir(dir, {recursive: true})
    if (!(await readFile(join(dir, MANIFEST_FILE))).equals(scan.manifestBytes!)) return false
  } catch {
    return false
  }
  const expected = new Map(manifest.files.map((f) => [f.path, f]))
  for (const rel of onDisk) {
    const info = await lstat(join(dir, rel))
    if (info.isDirectory()) continue
    if (!info.isFile()) return false
    const path = rel.split('\\').join('/')
    if (path !== MANIFEST_FILE && !expected.has(path)) return false
  }
  for (const file of manifest.files) {
    const found = await sha256File(join(dir, file.path)).catch(() => undefined)
    if (found?.sha256 !== file.sha256 || found.size !== file.size) return false
  }
  return true
}

/** A record for an archive outside the store: storedAt stays empty because it never entered one. */
function fileRecord(path: string, scan: ArchiveScan, manifest: ArtifactManifest): ArtifactRecord {
  return {
    name: manifest.name,
    version: manifest.version,
    digest: scan.digest,
    size: scan.size,
    storedAt: '',
    path,
    git: manifest.git,
  }
}

function tampered(label: string, problems: VerifyProblem[], hint: string): MlopsError {
  const list =
    problems.length > 0 ? problems : [{kind: 'manifest' as const, message: `${MANIFEST_FILE} is missing or unreadable`}]
  const more =
    list.length > 1
      ? ` (and ${list.length - 1} more: ${list
          .slice(1, 4)
          .map((p) => p.message)
          .join('; ')}${list.length > 4 ? '; …' : ''})`
      : ''
  return new MlopsError('ARTIFACT_TAMPERED', `${label} fails verification: ${list[0].message}${more}.`, {
    hint,
    details: {problems: list},
  })
}

function fileHint(path: string): string {
  return `Export it again from the store with "mlops artifacts export VERSION --output ${path}".`
}

function hexOf(digest: string): string {
  const hex = digest.startsWith('sha256:') ? digest.slice(7) : digest
  if (!DIGEST_HEX.test(hex))
    throw new MlopsError('STATE_CORRUPT', `${digest} is not a sha256 digest`, {
      hint: 'The artifact index is damaged; restore it from a backup.',
    })
  return hex
}

function checkVersion(version: string, ref: string): string {
  const valid = semver.valid(version)
  if (!valid)
    throw new UsageError('REF_INVALID', `${ref}: ${version} is not a semantic version`, {
      hint: 'Use NAME@MAJOR.MINOR.PATCH, e.g. credit-risk@1.2.0, or NAME@latest.',
    })
  return valid
}

function looksLikeFile(ref: string): boolean {
  return ref.endsWith('.tar') || ref.includes('/') || ref.startsWith('.')
}

/** Temp files and folders in `dir` whose writer died (or that are too old to belong to a live one). */
async function removeDeadTemps(dir: string, withIndexTemps: boolean): Promise<string[]> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch {
    return []
  }
  const removed: string[] = []
  const now = Date.now()
  for (const name of names) {
    const temp = name.startsWith(INCOMING_PREFIX) || name.startsWith(EXTRACTING_PREFIX)
    // write-file-atomic names its temp files index.json.<number>; they live for milliseconds.
    const indexTemp = withIndexTemps && /^index\.json\.\d+$/.test(name)
    if (!temp && !indexTemp) continue
    const path = join(dir, name)
    const info = await lstat(path).catch(() => undefined)
    if (!info) continue
    const age = now - info.mtimeMs
    const stale = indexTemp ? age > INDEX_TEMP_STALE_MS : !writerAlive(name) || age > STALE_MS
    if (!stale) continue
    await rm(path, {recursive: true, force: true})
    removed.push(path)
  }
  return removed
}

/** Temp names carry the writer's pid: a live writer's files are left alone. */
function writerAlive(name: string): boolean {
  const pid = Number(/^\.(?:incoming|extracting)-(\d+)-/.exec(name)?.[1])
  return Number.isInteger(pid) && pid > 0 && isAlive({pid})
}

/** Rename into place; across file systems, copy next to the target first so the rename stays atomic. */
async function moveInto(from: string, to: string): Promise<void> {
  try {
    await rename(from, to)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw diskError(to, error)
    const near = join(dirname(to), `${INCOMING_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}.tar`)
    try {
      await copyFile(from, near)
      await fsync(near)
      await rename(near, to)
    } catch (copyError) {
      await rm(near, {force: true})
      throw diskError(to, copyError)
    }
    await rm(from, {force: true})
  }
  await fsync(dirname(to))
}

async function fsync(path: string): Promise<void> {
  const handle = await open(path, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}
