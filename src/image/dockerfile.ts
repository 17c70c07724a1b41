// Pure decisions of an image build: the generated Dockerfile, its OCI labels and the image references.
import {renderTemplate} from '../init/render.js'
import {UsageError} from '../errors.js'
import type {ArtifactRecord} from '../artifact/types.js'

/**
 * node:20-bookworm-slim pinned to one build (the multi-platform index, so amd64 and arm64 hosts both get theirs);
 * a tag alone could change under a rebuild. Bump it deliberately, after "docker buildx imagetools inspect node:20-bookworm-slim".
 */
export const DEFAULT_BASE_IMAGE =
  'docker.io/library/node:20-bookworm-slim@sha256:2cf067cfed83d5ea958367df9f966191a942351a2df77d6f0193e162b5febfc0'

export interface DockerfileValues {
  name: string
  version: string
  baseImage: string
  mlopsVersion: string
  labels: Record<string, string>
  /** Keep the en_US.UTF-8 locale stage (Debian-based images). */
  locale: boolean
}

const SECTION = /^\{\{#([A-Za-z]+)\}\}\n([\s\S]*?)^\{\{\/\1\}\}\n/gm

/** Fills the template: `{{#section}}…{{/section}}` lines stay when the section is on, then `{{var}}` placeholders. */
export function renderDockerfile(template: string, values: DockerfileValues): string {
  const sections: Record<string, boolean> = {locale: values.locale}
  const kept = template.replace(SECTION, (_match, key: string, body: string) => {
    if (!(key in sections))
      throw new Error(`templates/image/Dockerfile has a section {{#${key}}} that mlops build does not know`)
    return sections[key] ? body : ''
  })
  return renderTemplate(
    kept,
    {
      name: values.name,
      version: values.version,
      baseImage: values.baseImage,
      mlopsVersion: values.mlopsVersion,
      labels: labelArguments(values.labels),
    },
    'templates/image/Dockerfile',
  )
}

/** `"key"="value"` pairs for one LABEL instruction, one per line. */
export function labelArguments(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([key, value]) => `${JSON.stringify(key)}=${JSON.stringify(value.replaceAll(/\s+/g, ' '))}`)
    .join(' \\\n      ')
}

export interface LabelInput {
  record: Pick<ArtifactRecord, 'name' | 'version' | 'digest' | 'storedAt' | 'git'>
  baseImage?: string
}

/**
 * OCI annotations plus the artifact's identity. `created` is when the artifact was packaged, not when the image was
 * built, so building the same artifact twice gives the same labels; an archive from outside a store has no such time.
 */
export function imageLabels(input: LabelInput): Record<string, string> {
  const {record} = input
  const labels: Record<string, string> = {
    'org.opencontainers.image.title': record.name,
    'org.opencontainers.image.version': record.version,
  }
  if (record.git?.commit) labels['org.opencontainers.image.revision'] = record.git.commit
  if (record.storedAt) labels['org.opencontainers.image.created'] = record.storedAt
  const source = record.git?.remote ? sourceUrl(record.git.remote) : undefined
  if (source) labels['org.opencontainers.image.source'] = source
  if (input.baseImage) labels['org.opencontainers.image.base.name'] = input.baseImage
  labels['dev.mlops.artifact.name'] = record.name
  labels['dev.mlops.artifact.version'] = record.version
  labels['dev.mlops.artifact.digest'] = record.digest
  return labels
}

/** A git remote as a browsable URL: `git@github.com:org/repo.git` → `https://github.com/org/repo`; credentials dropped. */
export function sourceUrl(remote: string): string | undefined {
  const scp = /^(?:[\w.-]+@)?([\w.-]+):(?!\/\/)(.+?)(?:\.git)?\/?$/.exec(remote)
  if (scp) return `https://${scp[1]}/${scp[2]}`
  try {
    const url = new URL(remote)
    if (!['https:', 'http:', 'ssh:', 'git:'].includes(url.protocol)) return undefined
    return `https://${url.hostname}${url.pathname.replace(/\.git\/?$/, '').replace(/\/$/, '')}`
  } catch {
    return undefined
  }
}

// distribution/reference's grammar: [domain[:port]/]path[/path…][:tag]
const DOMAIN_PART = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])'
const DOMAIN = `${DOMAIN_PART}(?:\\.${DOMAIN_PART})*(?::[0-9]+)?`
const PATH_PART = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*'
const REFERENCE = new RegExp(`^((?:${DOMAIN}/)?${PATH_PART}(?:/${PATH_PART})*)(?::([\\w][\\w.-]{0,127}))?$`)

export interface ImageReference {
  repository: string
  tag: string
}

/** Parses `[registry/]path[:tag]`; without a tag the artifact version is the tag. Digests (`@sha256:`) are refused: a build makes a new one. */
export function parseReference(reference: string, defaultTag: string): ImageReference {
  const match = REFERENCE.exec(reference)
  if (!match || match[1].length > 255) {
    throw new UsageError('IMAGE_REFERENCE_INVALID', `${JSON.stringify(reference)} is not an image reference`, {
      hint: 'Use [REGISTRY/]PATH[:TAG] in lowercase, e.g. --tag registry.example.com/ml/credit-risk:1.2.0.',
    })
  }
  return {repository: match[1], tag: match[2] ?? defaultTag.replaceAll('+', '_')}
}

export function formatReference(reference: ImageReference): string {
  return `${reference.repository}:${reference.tag}`
}
