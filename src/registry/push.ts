// `mlops artifacts push`: a stored artifact, verified, into any OCI registry as a ModelPack manifest; blobs it has are skipped.
import {open} from 'node:fs/promises'

import {verificationError} from '../artifact/verification.js'
import {projectStore} from '../artifact/project.js'
import {checkScan, scanArchive} from '../artifact/read.js'
import {MlopsError, UsageError} from '../errors.js'
import {type RegistryAccess, RegistryClient, RegistryUnreachableError} from './client.js'
import {type Blob, OCI_MANIFEST, buildManifest} from './modelpack.js'
import {type RegistryLocation, formatReference, requireReference} from './reference.js'

export interface PushOptions {
  dir: string
  /** The artifact: a version, name@version, digest or .tar path; default the newest. */
  ref?: string
  /** REGISTRY/REPOSITORY[:TAG]. */
  target: string
  access?: RegistryAccess
  /** A plain image (image config, image layer) for registries that refuse artifact types. */
  asImage?: boolean
  /** Bytes per PATCH of a blob upload (default 8 MiB). */
  chunkSize?: number
  onProgress?: (progress: {done: number; total: number}) => void
}

export interface PushedBlob {
  mediaType: string
  digest: string
  size: number
  /** False when the registry had it already (HEAD answered 200). */
  sent: boolean
}

export interface PushResult extends RegistryLocation {
  asImage: boolean
  blobs: PushedBlob[]
}

const DEFAULT_CHUNK = 8 * 1024 * 1024
/** Times an interrupted upload is picked up again from where the registry says it stands. */
const MAX_RESUMES = 5

export async function pushArtifact(options: PushOptions): Promise<PushResult> {
  const target = requireReference(options.target, 'the push target')
  if (target.digest)
    throw new UsageError('REFERENCE_INVALID', `push to ${options.target}: a push target names a tag, not a digest`, {
      hint: 'Push to REGISTRY/REPOSITORY[:TAG]; the digest is what the push prints.',
    })
  const {store, name} = await projectStore(options.dir)
  const record = await store.resolve(options.ref, {name})
  const scan = await scanArchive(record.path)
  const problems = checkScan(scan, record.storedAt ? record.digest : undefined)
  if (problems.length > 0 || !scan.manifest)
    throw verificationError({
      name: record.name,
      version: record.version,
      digest: record.digest,
      actualDigest: scan.digest,
      path: record.path,
      ok: false,
      problems,
    })
  const built = buildManifest(scan.manifest, {digest: scan.digest, size: scan.size}, options.asImage)
  const client = new RegistryClient(target.registry, target.repository, options.access, true)
  try {
    const blobs: PushedBlob[] = []
    for (const blob of [built.config, built.layer]) {
      const sent = await pushBlob(client, blob, record.path, options)
      blobs.push({...pick(blob.descriptor), sent})
    }
    const tagOrDigest = target.tag ?? built.digest
    const answer = await client
      .call(
        {
          method: 'PUT',
          url: `/v2/${target.repository}/manifests/${tagOrDigest}`,
          headers: {'content-type': OCI_MANIFEST},
          body: built.bytes,
          idempotent: true,
        },
        [200, 201],
      )
      .catch((error: unknown) => {
        throw refusedType(error, target.registry, options.asImage)
      })
    const said = answer.headers['docker-content-digest']
    if (said && said !== built.digest)
      throw new MlopsError(
        'REGISTRY_DIGEST_MISMATCH',
        `${target.registry} stored the manifest as ${said}, but its bytes are ${built.digest}`,
        {hint: 'The registry rewrote the manifest; pull by tag, or use a registry that stores manifests as sent.'},
      )
    const pinned = {registry: target.registry, repository: target.repository, digest: built.digest}
    return {
      reference: formatReference(pinned),
      registry: target.registry,
      repository: target.repository,
      ...(target.tag ? {tag: target.tag} : {}),
      digest: built.digest,
      artifact: {name: record.name, version: record.version, digest: scan.digest, size: scan.size},
      asImage: Boolean(options.asImage),
      blobs,
    }
  } finally {
    await client.close()
  }
}

function pick(d: {mediaType: string; digest: string; size: number}): Omit<PushedBlob, 'sent'> {
  return {mediaType: d.mediaType, digest: d.digest, size: d.size}
}

/** HEAD first; then POST, PATCH in chunks, PUT ?digest=. A broken PATCH resumes from the Range the registry reports. */
async function pushBlob(client: RegistryClient, blob: Blob, archive: string, options: PushOptions): Promise<boolean> {
  const {digest, size} = blob.descriptor
  const repo = client.repository
  const head = {method: 'HEAD' as const, url: `/v2/${repo}/blobs/${digest}`, idempotent: true}
  if (await client.probe(head, [200])) return false
  const chunk = Math.max(1, options.chunkSize ?? DEFAULT_CHUNK)
  const file = blob.bytes ? undefined : await open(archive, 'r')
  const read = async (offset: number, length: number): Promise<Buffer> => {
    if (blob.bytes) return blob.bytes.subarray(offset, offset + length)
    const buffer = Buffer.alloc(length)
    const {bytesRead} = await file!.read(buffer, 0, length, offset)
    if (bytesRead !== length)
      throw new MlopsError('ARTIFACT_UNREADABLE', `${archive} ended before byte ${offset + length}`, {
        hint: 'The archive changed while it was pushed; verify it with "mlops artifacts verify".',
      })
    return buffer
  }
  try {
    let location = await startUpload(client)
    let offset = 0
    let resumes = 0
    while (offset < size) {
      const length = Math.min(chunk, size - offset)
      try {
        const answer = await client.call(
          {
            method: 'PATCH',
            url: location,
            headers: {
              'content-type': 'application/octet-stream',
              'content-range': `${offset}-${offset + length - 1}`,
            },
            body: await read(offset, length),
          },
          [202],
        )
        location = answer.headers.location ?? location
        offset += length
        options.onProgress?.({done: offset, total: size})
      } catch (error) {
        if (!worthResuming(error) || resumes >= MAX_RESUMES) throw error
        resumes++
        ;({location, offset} = await uploadStatus(client, location))
      }
    }
    const finish = new URL(await client.resolve(location))
    finish.searchParams.set('digest', digest)
    await client.call({method: 'PUT', url: finish.toString(), body: Buffer.alloc(0)}, [201, 204])
    return true
  } finally {
    await file?.close()
  }
}

async function startUpload(client: RegistryClient): Promise<string> {
  const answer = await client.call(
    {method: 'POST', url: `/v2/${client.repository}/blobs/uploads/`, body: Buffer.alloc(0)},
    [202],
  )
  if (!answer.headers.location)
    throw new MlopsError('REGISTRY_RESPONSE_INVALID', `${client.registry} started an upload without a Location`, {
      hint: 'The registry does not follow the OCI distribution API; report it to whoever runs it.',
    })
  return answer.headers.location
}

/** Where an interrupted upload stands (GET on its location, Range: 0-N); a session the registry forgot starts over. */
async function uploadStatus(client: RegistryClient, location: string): Promise<{location: string; offset: number}> {
  const answer = await client.probe({method: 'GET', url: location, idempotent: true}, [204])
  if (!answer) return {location: await startUpload(client), offset: 0}
  const end = /^(?:bytes=)?0-(\d+)$/.exec(answer.headers.range ?? '')
  return {location: answer.headers.location ?? location, offset: end ? Number(end[1]) + 1 : 0}
}

/** The HTTP status a registry error carries, if it is one. */
function httpStatusOf(error: unknown): number | undefined {
  return error instanceof MlopsError ? (error.details as {status?: number} | undefined)?.status : undefined
}

/** A dropped connection, a timeout or a registry error on its side (5xx): the upload may go on from where it stands. */
function worthResuming(error: unknown): boolean {
  if (error instanceof RegistryUnreachableError) return true
  const status = httpStatusOf(error)
  return (error as MlopsError).code === 'REGISTRY_ERROR' && status !== undefined && status >= 500
}

/** A registry that refuses the manifest's artifact type is named as such, with --as-image as the way around it. */
function refusedType(error: unknown, registry: string, asImage: boolean | undefined): unknown {
  const status = httpStatusOf(error)
  const refused =
    !asImage &&
    (error as MlopsError).code === 'REGISTRY_ERROR' &&
    (status === 400 || status === 415) &&
    !/BLOB_UNKNOWN/.test((error as Error).message)
  if (!refused) return error
  return new MlopsError(
    'REGISTRY_ARTIFACT_REFUSED',
    `${registry} refused the ModelPack manifest (artifact type application/vnd.cncf.model.manifest.v1+json): ${(error as Error).message}`,
    {hint: 'Push it as a plain image layer instead with --as-image; mlops pulls both forms.', cause: error},
  )
}
