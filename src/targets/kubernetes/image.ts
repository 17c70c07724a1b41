// The image a version runs: a tag resolved to its manifest digest through the registry (the project's OCI client, with
// its size and time bounds), and the image's dev.mlops.artifact.digest label checked against the artifact deployed.
import {MlopsError, UsageError} from '../../errors.js'
import {type RegistryAccess, RegistryClient, RegistryUnreachableError} from '../../registry/client.js'
import {
  ARTIFACT_DIGEST_ANNOTATION,
  DOCKER_MANIFEST,
  MODEL_ARTIFACT_TYPE,
  MODEL_CONFIG,
  OCI_INDEX,
  OCI_MANIFEST,
  sha256Digest,
} from '../../registry/modelpack.js'
import {accessFromEnv} from '../../registry/pull.js'
import {type RegistryReference, formatReference, parseReference} from '../../registry/reference.js'

const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
const ACCEPT = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].join(', ')
/** An image config is a few KiB; one past this is not read for its label. */
const MAX_CONFIG_BYTES = 1024 * 1024
const PINNED = /@sha256:[0-9a-f]{64}$/

export interface ImageRequest {
  /** --image or deploy.kubernetes.image, as given. */
  reference: string
  /** The artifact deployed (a packaged one; a bare --model file has none): the image's label must name it. */
  artifactDigest?: string
  /** When the registry cannot be reached: deploy the reference as given (a tag stays a tag, the label unchecked). */
  allowUnverified?: boolean
  access?: RegistryAccess
}

/** REPOSITORY@sha256:… for the Deployment; the reference as given only when allowUnverified let it through. */
/**
 * A lookup answers in well under a second from a working registry: one that does not answer fails the deploy within
 * about 20 s (two attempts of 10 s), not the minutes a push or pull may wait for a large blob.
 */
const LOOKUP_ATTEMPTS = 2
const LOOKUP_TIMEOUTS = {connectMs: 5000, headersMs: 10_000, bodyIdleMs: 10_000, smallMs: 15_000}

export async function resolveImage(request: ImageRequest): Promise<string> {
  const {reference, artifactDigest} = request
  const ref = parseReference(reference)
  if (!ref) {
    // Without a registry host (Docker Hub's short names) there is nothing to ask; only a pinned one can go as it is.
    if (PINNED.test(reference) && !/\s/.test(reference)) return reference
    throw new UsageError('IMAGE_REFERENCE_INVALID', `the image ${reference} cannot be resolved to a digest`, {
      hint: 'Pass REGISTRY/REPOSITORY:TAG (the registry host needs a dot, a port or to be localhost, e.g. docker.io/acme/model:1.2.0) or REPOSITORY@sha256:…, as "mlops build --push" printed.',
    })
  }
  // Already pinned, and no label to compare: the digest is the answer, the registry is not asked.
  if (ref.digest && !artifactDigest) return reference
  const access = request.access ?? accessFromEnv()
  const client = new RegistryClient(ref.registry, ref.repository, {
    ...access,
    attempts: access.attempts ?? LOOKUP_ATTEMPTS,
    timeouts: {...LOOKUP_TIMEOUTS, ...access.timeouts},
  })
  try {
    const {digest, body} = await manifestOf(client, ref, ref.digest ?? ref.tag ?? 'latest')
    if (ref.digest && digest !== ref.digest)
      throw new MlopsError('REGISTRY_DIGEST_MISMATCH', `the registry answered ${digest} for ${reference}`, {
        hint: 'The registry (or something between) altered the manifest; check the registry and push the image again.',
        details: {expected: ref.digest, actual: digest},
      })
    const pinned = formatReference({registry: ref.registry, repository: ref.repository, digest})
    if (artifactDigest) {
      const label = await artifactLabel(client, ref, body)
      if (label !== undefined && label !== artifactDigest)
        throw new UsageError(
          'IMAGE_ARTIFACT_MISMATCH',
          `the image ${reference} (${digest}) was built from artifact ${label}, not from the artifact deployed (${artifactDigest})`,
          {
            hint: `Build and push the image of this artifact ("mlops build --push") and pass the reference it prints, or deploy the version the image was built from.`,
            details: {image: pinned, imageArtifact: label, artifact: artifactDigest},
          },
        )
    }
    return pinned
  } catch (error) {
    if (error instanceof RegistryUnreachableError) {
      if (request.allowUnverified) return reference
      throw new MlopsError(
        'IMAGE_REGISTRY_UNREACHABLE',
        `the image ${reference} cannot be ${ref.digest ? 'checked' : 'resolved to a digest'}: ${error.message}`,
        {
          hint: `Check the registry and the network, then deploy again; or pass --allow-unverified-image to deploy ${reference} as given (${ref.digest ? 'its artifact label unchecked' : 'a tag can move under a running rollout'}).`,
          details: {reference, registry: ref.registry},
          cause: error,
        },
      )
    }
    if ((error as MlopsError).code === 'REGISTRY_NOT_FOUND')
      throw new UsageError('IMAGE_NOT_FOUND', `the image ${reference} does not exist in ${ref.registry}`, {
        hint: `Push it first ("mlops build --push --tag ${formatReference({...ref, digest: undefined})}"), or check the repository and tag ("skopeo list-tags docker://${ref.registry}/${ref.repository}").`,
        details: {reference},
      })
    throw error
  } finally {
    await client.close()
  }
}

interface ManifestJson {
  mediaType?: string
  artifactType?: string
  config?: {mediaType?: string; digest?: string; size?: number}
  manifests?: {mediaType?: string; digest?: string; platform?: {os?: string; architecture?: string}}[]
}

async function manifestOf(
  client: RegistryClient,
  ref: RegistryReference,
  tagOrDigest: string,
): Promise<{digest: string; body: ManifestJson}> {
  const answer = await client.call(
    {method: 'GET', url: `/v2/${ref.repository}/manifests/${tagOrDigest}`, headers: {accept: ACCEPT}, idempotent: true},
    [200],
  )
  let body: unknown
  try {
    body = JSON.parse(answer.body.toString('utf8'))
  } catch {
    body = undefined
  }
  if (body === null || typeof body !== 'object')
    throw new MlopsError('REGISTRY_RESPONSE_INVALID', `the manifest of ${formatReference(ref)} is not a JSON object`, {
      hint: 'Check the reference: it should name an image "mlops build --push" pushed.',
    })
  return {digest: sha256Digest(answer.body), body}
}

/** The image config's dev.mlops.artifact.digest label, or undefined when the image has none (not built by mlops). */
async function artifactLabel(
  client: RegistryClient,
  ref: RegistryReference,
  manifest: ManifestJson,
): Promise<string | undefined> {
  let image = manifest
  if (Array.isArray(manifest.manifests)) {
    // An index (several platforms): the labels are the same in each; the linux/amd64 one is read, else the first.
    const entries = manifest.manifests.filter((m) => m.platform?.os !== 'unknown' && typeof m.digest === 'string')
    const entry =
      entries.find((m) => m.platform?.os === 'linux' && m.platform.architecture === 'amd64') ?? entries.at(0)
    if (!entry?.digest || !/^sha256:[0-9a-f]{64}$/.test(entry.digest)) return undefined
    image = (await manifestOf(client, ref, entry.digest)).body
  }
  if (image.artifactType === MODEL_ARTIFACT_TYPE || image.config?.mediaType === MODEL_CONFIG)
    throw new UsageError(
      'IMAGE_IS_ARTIFACT',
      `${formatReference(ref)} is an mlops artifact, not an image a pod can run`,
      {
        hint: 'Build the model server image from it ("mlops build --push") and pass the image reference that prints.',
      },
    )
  const config = image.config
  if (!config?.digest || !/^sha256:[0-9a-f]{64}$/.test(config.digest)) return undefined
  const size = typeof config.size === 'number' && config.size > 0 ? config.size : MAX_CONFIG_BYTES
  if (size > MAX_CONFIG_BYTES) return undefined
  const chunks: Buffer[] = []
  const got = await client.download(`/v2/${ref.repository}/blobs/${config.digest}`, size, async (chunk) => {
    chunks.push(chunk)
  })
  if (got.digest !== config.digest)
    throw new MlopsError('REGISTRY_DIGEST_MISMATCH', `the image config of ${formatReference(ref)} is ${got.digest}`, {
      hint: 'The registry (or something between) altered it; check the registry and push the image again.',
      details: {expected: config.digest, actual: got.digest},
    })
  try {
    const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {config?: {Labels?: Record<string, unknown>}}
    const label = parsed.config?.Labels?.[ARTIFACT_DIGEST_ANNOTATION]
    return typeof label === 'string' ? label : undefined
  } catch {
    return undefined
  }
}
