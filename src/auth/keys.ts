// API keys: made once and shown once, kept as a salted scrypt hash in a 0600 file; the running server re-reads the file when it changes.
import {createHash, randomBytes, scrypt, timingSafeEqual} from 'node:crypto'
import {readFile, stat} from 'node:fs/promises'
import {dirname, resolve} from 'node:path'

import lockfile from 'proper-lockfile'

import {loadConfig} from '../config/load.js'
import {MlopsError, UsageError} from '../errors.js'
import {makeDirectory, writeFileAtomically} from '../system/atomic.js'
import {DEFAULT_KEYS_FILE, type Scope, authSettings} from './config.js'

export interface StoredKey {
  /** Public part of the key: finds its entry without hashing against every one. */
  id: string
  name: string
  scopes: Scope[]
  salt: string
  hash: string
  created: string
  revoked?: string
  /** Requests per second this key may make; the server's serving.auth.rate_limit otherwise. */
  rate_per_second?: number
}

/** A key as `keys list` shows it: never the hash. */
export interface KeyInfo {
  id: string
  name: string
  scopes: Scope[]
  created: string
  revoked?: string
  rate_per_second?: number
}

interface KeyFile {
  version: 1
  keys: StoredKey[]
}

const PREFIX = 'mlk'
const KEY_PATTERN = /^mlk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/
/** scrypt's cost: ~16 MB and tens of ms per hash, paid once per key per server thanks to the cache below. */
const SCRYPT = {N: 16_384, r: 8, p: 1, maxmem: 64 * 1024 * 1024}
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

function hashSecret(secret: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(secret, salt, 32, SCRYPT, (error, derived) => (error ? reject(error) : resolve(derived))),
  )
}

export function keyInfo({id, name, scopes, created, revoked, rate_per_second}: StoredKey): KeyInfo {
  return {id, name, scopes, created, ...(revoked ? {revoked} : {}), ...(rate_per_second ? {rate_per_second} : {})}
}

async function readKeyFile(path: string): Promise<KeyFile> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {version: 1, keys: []}
    throw error
  }
  const parsed = JSON.parse(text) as Partial<KeyFile>
  if (!Array.isArray(parsed.keys)) throw new Error(`${path} holds no "keys" list`)
  return {version: 1, keys: parsed.keys}
}

async function withKeyFile<T>(path: string, change: (file: KeyFile) => Promise<T>): Promise<T> {
  await makeDirectory(dirname(path))
  const release = await lockfile.lock(path, {realpath: false, retries: {retries: 20, minTimeout: 50, maxTimeout: 500}})
  try {
    const file = await readKeyFile(path)
    const result = await change(file)
    await writeFileAtomically(path, JSON.stringify(file, null, 2) + '\n', 0o600)
    return result
  } finally {
    await release()
  }
}

export interface CreateKeyOptions {
  name: string
  scopes: Scope[]
  ratePerSecond?: number
}

/** Makes a key; the secret is returned here and nowhere else. */
export async function createKey(path: string, options: CreateKeyOptions): Promise<{key: string; info: KeyInfo}> {
  if (!NAME_PATTERN.test(options.name))
    throw new UsageError('KEY_NAME_INVALID', `"${options.name}" is not a key name`, {
      hint: 'Use letters, digits, ".", "_" and "-", at most 64, e.g. "mlops keys create billing-service".',
    })
  return withKeyFile(path, async (file) => {
    if (file.keys.some((k) => k.name === options.name && !k.revoked))
      throw new UsageError('KEY_EXISTS', `a key named "${options.name}" exists and is not revoked`, {
        hint: `Revoke it first ("mlops keys revoke ${options.name}") or pick another name.`,
      })
    const id = randomBytes(6).toString('hex')
    const secret = randomBytes(32).toString('base64url')
    const salt = randomBytes(16)
    const stored: StoredKey = {
      id,
      name: options.name,
      scopes: [...new Set(options.scopes)],
      salt: salt.toString('hex'),
      hash: (await hashSecret(secret, salt)).toString('hex'),
      created: new Date().toISOString(),
      ...(options.ratePerSecond ? {rate_per_second: options.ratePerSecond} : {}),
    }
    file.keys.push(stored)
    return {key: `${PREFIX}_${id}_${secret}`, info: keyInfo(stored)}
  })
}

export async function listKeys(path: string): Promise<KeyInfo[]> {
  return (await readKeyFile(path)).keys.map(keyInfo)
}

/** Revokes the active key of that name (or that id); a running server refuses it within about a second. */
export async function revokeKey(path: string, nameOrId: string): Promise<KeyInfo> {
  return withKeyFile(path, async (file) => {
    const key = file.keys.find((k) => !k.revoked && (k.name === nameOrId || k.id === nameOrId))
    if (!key)
      throw new UsageError('KEY_NOT_FOUND', `no active key named "${nameOrId}"`, {
        hint: 'See the keys with "mlops keys list".',
      })
    key.revoked = new Date().toISOString()
    return keyInfo(key)
  })
}

export interface VerifiedKey {
  name: string
  scopes: Scope[]
  ratePerSecond?: number
}

const CACHE_LIMIT = 10_000

/**
 * Checks presented keys against the key file, re-read within `pollMs` of a change (a revoked key stops working without a
 * restart). Each presented key is hashed once per load of the file: the result, good or bad, is kept under the
 * presented key's sha256, so a busy client does not pay scrypt per request.
 */
export class KeyVerifier {
  private keys = new Map<string, StoredKey>()
  private readonly verdicts = new Map<string, VerifiedKey | null>()
  private signature = ''
  private timer?: NodeJS.Timeout
  private loading?: Promise<void>

  constructor(
    readonly path: string,
    private readonly log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
  ) {}

  /** Loads the file and watches it for changes (polling its stat: atomic writes replace the file, which fs.watch loses). */
  async start(pollMs = 1000): Promise<void> {
    await this.reload()
    this.timer = setInterval(() => void this.reload(), pollMs).unref()
  }

  close(): void {
    clearInterval(this.timer)
  }

  /** Re-reads the key file when its inode, size or mtime changed. A file that cannot be read means no key is valid. */
  reload(): Promise<void> {
    this.loading ??= this.load().finally(() => (this.loading = undefined))
    return this.loading
  }

  async verify(presented: string): Promise<VerifiedKey | undefined> {
    const digest = createHash('sha256').update(presented).digest('hex')
    const known = this.verdicts.get(digest)
    if (known !== undefined) return known ?? undefined
    const match = KEY_PATTERN.exec(presented)
    const stored = match ? this.keys.get(match[1]) : undefined
    let verdict: VerifiedKey | null = null
    if (stored && match) {
      const hash = await hashSecret(match[2], Buffer.from(stored.salt, 'hex'))
      const expected = Buffer.from(stored.hash, 'hex')
      if (expected.length === hash.length && timingSafeEqual(hash, expected))
        verdict = {name: stored.name, scopes: stored.scopes, ratePerSecond: stored.rate_per_second}
    }
    // The file may have changed while hashing: a verdict on the old keys is not kept.
    if (this.keys.get(match?.[1] ?? '') === stored) {
      if (this.verdicts.size >= CACHE_LIMIT) this.verdicts.clear()
      this.verdicts.set(digest, verdict)
    }
    return verdict ?? undefined
  }

  private async load(): Promise<void> {
    let signature: string
    try {
      const info = await stat(this.path)
      signature = `${info.ino}:${info.size}:${info.mtimeMs}`
    } catch {
      signature = 'absent'
    }
    if (signature === this.signature) return
    let keys = new Map<string, StoredKey>()
    try {
      const file = await readKeyFile(this.path)
      keys = new Map(file.keys.filter((k) => !k.revoked).map((k) => [k.id, k]))
    } catch (error) {
      this.log(
        `mlops: the key file ${this.path} cannot be read (${(error as Error).message}); every key is refused until it can`,
      )
    }
    this.signature = signature
    this.keys = keys
    this.verdicts.clear()
  }
}

/** The project's key file: serving.auth.keys_file, or .mlops/keys.json in a folder without mlops.yaml. */
export async function projectKeysFile(dir: string): Promise<string> {
  try {
    const loaded = await loadConfig(dir)
    return authSettings(loaded.config.serving?.auth, loaded.dir).keysFile
  } catch (error) {
    if (error instanceof MlopsError && error.code === 'CONFIG_NOT_FOUND') return resolve(dir, DEFAULT_KEYS_FILE)
    throw error
  }
}
