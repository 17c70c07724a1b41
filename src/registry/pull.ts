// `mlops artifacts pull` and registry references anywhere a ref is taken: fetched once, verified, kept by digest.
import {randomBytes} from 'node:crypto'
import {open, readFile, rm} from 'node:fs/promises'
import {join} from 'node:path'

import {verificationError} from '../artifact/verification.js'
import {INCOMING_PREFIX} from '../artifact/archive.js'
import {checkScan, scanArchive} from '../artifact/read.js'
import type {ArtifactStore} from '../artifact/store.js'
import type {ArtifactRecord} from '../artifact/types.js'
import {MlopsError, UsageError} from '../errors.js'
import {diskError, makeDirectory, writeFileAtomically} from '../system/atomic.js'
import {type RegistryAccess, RegistryClient} from './client.js'
import {DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, type PulledManifest, readManifest, sha256Digest} from './modelpack.js'
import {type RegistryLocation, type RegistryReference, formatReference, requireReference} from './reference.js'

export interface PullOptions {
  store: ArtifactStore
  /** REGISTRY/REPOSITORY@sha256:… or REGISTRY/REPOSITORY:TAG. */
  source: string
  access?: RegistryAccess
  onProgress?: (progress: {done: number; total: number}) => void
}

export interface PullResult extends RegistryLocation {
  /** True when the artifact was in the store already and no blob was fetched. */
  cached: boolean
}

/** Far above any model an ONNX runtime loads; MLOPS_REGISTRY_MAX_BYTES raises it. */
const DEFAULT_MAX_BYTES = 64 * 1024 ** 3

/** Registry settings for commands that take a reference without registry flags (serve, test, deploy, build). */
export function accessFromEnv(env: NodeJS.ProcessEnv = process.env): RegistryAccess {
  return {
    tlsVerify: env.MLOPS_REGISTRY_TLS_VERIFY !== 'false',
    ...(env.MLOPS_REGISTRY_CA_FILE ? {caFile: env.MLOPS_REGISTRY_CA_FILE} : {}),
    plainHttp: env.MLOPS_REGISTRY_PLAIN_HTTP === 'true',
    env,
  }
}

export async function pullArtifact(options: PullOptions): Promise<PullResult> {
  const {record: _record, ...result} = await pullInto(options.store, options.source, options.access, options.onProgress)
  return result
}

/** Pulls into `store` unless it holds the artifact already; by digest with a cached manifest, without the network. */
export async function pullInto(
  store: ArtifactStore,
  source: string,
  access: RegistryAccess = accessFromEnv(),
  onProgress?: PullOptions['onProgress'],
): Promise<PullResult & {record: ArtifactRecord}> {
  const ref = requireReference(source, 'the pull source')
  const where = formatReference(ref)
  const maxBytes =
    Number(access.env?.MLOPS_REGISTRY_MAX_BYTES ?? process.env.MLOPS_REGISTRY_MAX_BYTES) || DEFAULT_MAX_BYTES
  if (ref.digest) {
    const bytes = await cachedManifest(store, ref.digest)
    const record = bytes && (await storedByDigest(store, readManifest(bytes, where, maxBytes).layer.digest))
    if (record) return resultOf(ref, ref.digest, record, true)
  }
  const client = new RegistryClient(ref.registry, ref.repository, access)
  try {
    const answer = await client.call(
      {
        method: 'GET',
        url: `/v2/${ref.repository}/manifests/${ref.digest ?? ref.tag ?? 'latest'}`,
        headers: {accept: [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST].join(', ')},
        idempotent: true,
      },
      [200],
    )
    const digest = sha256Digest(answer.body)
    const expected = ref.digest ?? answer.headers['docker-content-digest']
    if (expected && expected !== digest) throw mismatch(where, 'manifest', expected, digest)
    const pulled = readManifest(answer.body, where, maxBytes)
    let record = await storedByDigest(store, pulled.layer.digest)
    const cached = record !== undefined
    if (!record) {
      await fetchConfig(client, pulled, where)
      record = await fetchLayer(client, store, pulled, where, onProgress)
    }
    await writeFileAtomically(manifestPath(store, digest), answer.body)
    return resultOf(ref, digest, record, cached)
  } finally {
    await client.close()
  }
}

function resultOf(
  ref: RegistryReference,
  digest: string,
  record: ArtifactRecord,
  cached: boolean,
): PullResult & {record: ArtifactRecord} {
  return {
    reference: formatReference({registry: ref.registry, repository: ref.repository, digest}),
    registry: ref.registry,
    repository: ref.repository,
    ...(ref.tag ? {tag: ref.tag} : {}),
    digest,
    artifact: {name: record.name, version: record.version, digest: record.digest, size: record.size},
    cached,
    record,
  }
}

/** Manifests pulled before, by their digest: a digest reference then needs no registry at all. */
function manifestPath(store: ArtifactStore, digest: string): string {
  return join(store.root, 'registry', 'manifests', `${digest.slice('sha256:'.length)}.json`)
}

async function cachedManifest(store: ArtifactStore, digest: string): Promise<Buffer | undefined> {
  const bytes = await readFile(manifestPath(store, digest)).catch(() => undefined)
  return bytes && sha256Digest(bytes) === digest ? bytes : undefined
}

/** The stored artifact with this archive digest, when its blob is still there and intact in size. */
async function storedByDigest(store: ArtifactStore, digest: string): Promise<ArtifactRecord | undefined> {
  const record = (await store.list()).find((r) => r.digest === digest)
  if (!record) return undefined
  const info = await open(record.path, 'r')
    .then(async (handle) => {
      try {
        return await handle.stat()
      } finally {
        await handle.close()
      }
    })
    .catch(() => undefined)
  return info?.size === record.size ? record : undefined
}

/** The config is checked against its digest (mlops reads everything it needs from the artifact itself). */
async function fetchConfig(client: RegistryClient, pulled: PulledManifest, where: string): Promise<void> {
  const path = `/v2/${client.repository}/blobs/${pulled.config.digest}`
  const got = await client.download(path, pulled.config.size, async () => undefined)
  if (got.digest !== pulled.config.digest) throw mismatch(where, 'config blob', pulled.config.digest, got.digest)
}

/**
 * Streams the layer into a temp file beside the store's blobs, checks its digest and size against the manifest, then
 * every file against the artifact's own manifest, and only then stores it.
 */
async function fetchLayer(
  client: RegistryClient,
  store: ArtifactStore,
  pulled: PulledManifest,
  where: string,
  onProgress: PullOptions['onProgress'],
): Promise<ArtifactRecord> {
  const {layer} = pulled
  await makeDirectory(store.blobsDir)
  const tmp = join(store.blobsDir, `${INCOMING_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}.tar`)
  let kept = false
  try {
    const handle = await open(tmp, 'wx', 0o644).catch((error: unknown) => {
      throw diskError(tmp, error)
    })
    let done = 0
    let got: {digest: string; size: number}
    try {
      got = await client.download(`/v2/${client.repository}/blobs/${layer.digest}`, layer.size, async (chunk) => {
        await handle.write(chunk)
        done += chunk.length
        onProgress?.({done, total: layer.size})
      })
      await handle.sync()
    } finally {
      await handle.close()
    }
    if (got.digest !== layer.digest || got.size !== layer.size)
      throw mismatch(where, 'artifact layer', layer.digest, got.digest)
    const scan = await scanArchive(tmp)
    const problems = checkScan(scan, layer.digest)
    if (problems.length > 0 || !scan.manifest) {
      const report = {digest: layer.digest, actualDigest: scan.digest, path: where, ok: false, problems}
      throw verificationError(report)
    }
    const {record} = await store
      .put(tmp, scan.manifest, {digest: scan.digest, size: scan.size})
      .catch((error: unknown) => {
        throw otherContent(error, where)
      })
    kept = true
    return record
  } finally {
    if (!kept) await rm(tmp, {force: true})
  }
}

/** Versions are immutable here too: the registry's name@version may not replace a different local one. */
function otherContent(error: unknown, where: string): unknown {
  if (!(error instanceof MlopsError) || error.code !== 'VERSION_EXISTS') return error
  return new UsageError(
    'VERSION_EXISTS',
    `${where} holds ${error.message.replace(/ is already stored with/, ', but this store has it with')}`,
    {
      hint: 'Pull it into another project folder (--dir), or serve the local one by its version.',
      details: error.details,
    },
  )
}

function mismatch(where: string, what: string, expected: string, actual: string): MlopsError {
  return new MlopsError(
    'REGISTRY_DIGEST_MISMATCH',
    `the ${what} of ${where} is ${actual}, not the ${expected} it was asked for; refused, nothing was stored`,
    {
      hint: 'The registry (or something between) altered it: push the artifact again with "mlops artifacts push", then pull by the digest it prints.',
      details: {expected, actual},
    },
  )
}
