// Registry credentials found where container tools keep them, and the WWW-Authenticate challenges that ask for them.
import {readFile} from 'node:fs/promises'
import {homedir} from 'node:os'
import {join} from 'node:path'

import {MlopsError} from '../errors.js'
import {run} from '../system/exec.js'

export interface Credentials {
  username: string
  password: string
  /** Where they came from, to name in errors (never the secret itself). */
  source: string
}

interface AuthFile {
  auths?: Record<string, {auth?: string; username?: string; password?: string; identitytoken?: string}>
  credHelpers?: Record<string, string>
  credsStore?: string
}

/** The files container tools read, first match wins: podman/skopeo/buildah's, then Docker's. */
export function authFiles(env: NodeJS.ProcessEnv = process.env): string[] {
  const home = env.HOME ?? homedir()
  const files: string[] = []
  if (env.REGISTRY_AUTH_FILE) files.push(env.REGISTRY_AUTH_FILE)
  if (env.XDG_RUNTIME_DIR) files.push(join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'))
  files.push(join(env.XDG_CONFIG_HOME ?? join(home, '.config'), 'containers', 'auth.json'))
  files.push(join(env.DOCKER_CONFIG ?? join(home, '.docker'), 'config.json'))
  return files
}

/** Credentials for `registry` from the auth files and their credential helpers, or undefined for anonymous access. */
export async function findCredentials(
  registry: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Credentials | undefined> {
  for (const file of authFiles(env)) {
    const parsed = await readAuthFile(file)
    if (!parsed) continue
    const helper = parsed.credHelpers?.[registry]
    if (helper) return fromHelper(helper, registry, file, env)
    const entry = Object.entries(parsed.auths ?? {}).find(([key]) => hostOf(key) === registry)?.[1]
    if (entry) {
      const fromEntry = entryCredentials(entry, `${file} (auths."${registry}")`)
      if (fromEntry) return fromEntry
    }
    if (parsed.credsStore) {
      const stored = await fromHelper(parsed.credsStore, registry, file, env).catch(() => undefined)
      if (stored) return stored
    }
  }
  return undefined
}

async function readAuthFile(file: string): Promise<AuthFile | undefined> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch {
    return undefined
  }
  try {
    const value: unknown = JSON.parse(text)
    return value !== null && typeof value === 'object' ? value : undefined
  } catch {
    throw new MlopsError('REGISTRY_AUTH_FILE_INVALID', `${file} is not valid JSON`, {
      hint: `Fix or remove ${file}, then log in again ("docker login" or "skopeo login").`,
    })
  }
}

/** `https://ghcr.io/v1/` and `ghcr.io` name the same registry in auth files. */
function hostOf(key: string): string {
  return key.replace(/^https?:\/\//, '').replace(/\/.*$/, '')
}

function entryCredentials(
  entry: {auth?: string; username?: string; password?: string; identitytoken?: string},
  source: string,
): Credentials | undefined {
  if (entry.identitytoken) return {username: '<token>', password: entry.identitytoken, source}
  if (entry.username && entry.password) return {username: entry.username, password: entry.password, source}
  if (!entry.auth) return undefined
  const decoded = Buffer.from(entry.auth, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon <= 0) return undefined
  return {username: decoded.slice(0, colon), password: decoded.slice(colon + 1), source}
}

/** docker-credential-<helper> get, with the registry on stdin: the protocol every helper speaks. */
async function fromHelper(
  helper: string,
  registry: string,
  file: string,
  env: NodeJS.ProcessEnv,
): Promise<Credentials | undefined> {
  const command = `docker-credential-${helper}`
  if (!/^[A-Za-z0-9_.-]+$/.test(helper))
    throw new MlopsError(
      'REGISTRY_AUTH_FILE_INVALID',
      `${file} names the credential helper ${JSON.stringify(helper)}`,
      {
        hint: `Name a helper such as "pass" or "secretservice" in ${file}.`,
      },
    )
  let stdout: string
  try {
    stdout = (await run(command, ['get'], {input: registry, timeoutMs: 30_000, env})).stdout
  } catch (error) {
    // Helpers answer "credentials not found" with a non-zero exit: that is anonymous access, not a failure.
    if (/not found/i.test(String((error as MlopsError).message))) return undefined
    throw new MlopsError(
      'REGISTRY_CREDENTIAL_HELPER_FAILED',
      `the credential helper ${command} (named in ${file}) failed for ${registry}`,
      {hint: `Check that ${command} is installed and works ("echo ${registry} | ${command} get").`, cause: error},
    )
  }
  let answer: {Username?: string; Secret?: string}
  try {
    answer = JSON.parse(stdout) as {Username?: string; Secret?: string}
  } catch {
    throw new MlopsError('REGISTRY_CREDENTIAL_HELPER_FAILED', `${command} get answered something other than JSON`, {
      hint: `Check ${command}; log in again with "docker login ${registry}".`,
    })
  }
  if (!answer.Secret) return undefined
  return {username: answer.Username ?? '<token>', password: answer.Secret, source: `${command} (from ${file})`}
}

export interface Challenge {
  scheme: string
  params: Record<string, string>
}

/** Parses `Bearer realm="https://…",service="…",scope="…"` (quoted values may hold commas). */
export function parseChallenge(header: string | undefined): Challenge | undefined {
  if (!header) return undefined
  const match = /^\s*([A-Za-z][A-Za-z0-9_-]*)\s*(.*)$/s.exec(header.slice(0, 4096))
  if (!match) return undefined
  const params: Record<string, string> = {}
  for (const p of match[2].matchAll(/([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g))
    params[p[1].toLowerCase()] = (p[2] ?? p[3] ?? '').replace(/\\(.)/g, '$1')
  return {scheme: match[1].toLowerCase(), params}
}

export function basicAuthorization(credentials: Credentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`, 'utf8').toString('base64')}`
}
