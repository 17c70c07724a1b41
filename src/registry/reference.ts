// Registry references the way container tools spell them: REGISTRY/REPOSITORY[:TAG][@sha256:HEX].
import {UsageError} from '../errors.js'

export interface RegistryReference {
  /** host[:port] as given, e.g. ghcr.io or 127.0.0.1:5000. */
  registry: string
  repository: string
  tag?: string
  /** `sha256:<hex>` of the manifest, when the reference pins one. */
  digest?: string
}

/** A host needs a dot, a port or to be localhost: `models/x.tar` stays a path, as in Docker's own rule. */
const HOST =
  /^(?:localhost|\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*)(?::\d{1,5})?$/i
const COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/
const DIGEST = /^sha256:[0-9a-f]{64}$/

/** The reference, or undefined when `text` is not one (a version, a digest prefix, a file path). */
export function parseReference(text: string): RegistryReference | undefined {
  const slash = text.indexOf('/')
  if (slash <= 0) return undefined
  const registry = text.slice(0, slash)
  if (!HOST.test(registry) || !(registry.includes('.') || registry.includes(':') || registry === 'localhost'))
    return undefined
  const [beforeAt, digest] = splitLast(text.slice(slash + 1), '@')
  if (digest !== undefined && !DIGEST.test(digest)) return undefined
  const [rest, tag] = splitLast(beforeAt, ':')
  if (tag !== undefined && !TAG.test(tag)) return undefined
  if (rest.length === 0 || rest.length > 255 || !rest.split('/').every((c) => COMPONENT.test(c))) return undefined
  // An archive path such as dist.v1/model.tar is a file, not a repository: repositories seldom end in .tar.
  if (!tag && !digest && rest.endsWith('.tar')) return undefined
  return {registry, repository: rest, ...(tag ? {tag} : {}), ...(digest ? {digest} : {})}
}

/** Like parseReference, but a usage error naming the expected shape when `text` is not a reference. */
export function requireReference(text: string, what: string): RegistryReference {
  const parsed = parseReference(text.trim())
  if (!parsed)
    throw new UsageError('REFERENCE_INVALID', `${what} ${JSON.stringify(text)} is not a registry reference`, {
      hint: 'Write REGISTRY/REPOSITORY[:TAG] or REGISTRY/REPOSITORY@sha256:…, e.g. ghcr.io/acme/credit-risk:1.2.0 (the registry host needs a dot or a port, or is localhost).',
    })
  return parsed
}

/** `a:b` → [a, b]; without the separator, [text, undefined]. */
function splitLast(text: string, separator: string): [string, string | undefined] {
  const at = text.lastIndexOf(separator)
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)]
}

/** Where an artifact is in a registry, as push and pull return it. */
export interface RegistryLocation {
  /** REGISTRY/REPOSITORY@sha256:… of the manifest: what pull, serve and deploy take. */
  reference: string
  registry: string
  repository: string
  tag?: string
  /** The manifest digest. */
  digest: string
  artifact: {name: string; version: string; digest: string; size: number}
}

export function formatReference(ref: RegistryReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`
}

/** Loopback hosts: where plain HTTP is allowed without being asked, as container tools do. */
export function isLoopback(registry: string): boolean {
  const host = registry.replace(/:\d+$/, '').replace(/^\[|\]$/g, '')
  return host === 'localhost' || host === '127.0.0.1' || host === '::1'
}
