// The registry client against a fake registry on 127.0.0.1 that lies: huge bodies, endless and trickling streams,
// wrong digests, silence, a token service, a dropped upload and a refused artifact type. Every refusal is bounded.
import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {readdir, readFile} from 'node:fs/promises'
import {type IncomingMessage, type Server, type ServerResponse, createServer} from 'node:http'
import {join} from 'node:path'

import {writeArchive} from '../../src/artifact/archive.js'
import {ArtifactStore} from '../../src/artifact/store.js'
import {MlopsError} from '../../src/errors.js'
import type {RegistryAccess} from '../../src/registry/client.js'
import {MODEL_ARTIFACT_TYPE, buildManifest, sha256Digest} from '../../src/registry/modelpack.js'
import {pullInto} from '../../src/registry/pull.js'
import {pushArtifact} from '../../src/registry/push.js'
import {resolveImage} from '../../src/targets/kubernetes/image.js'
import {manifestFor, projectEntries, tempDir} from '../artifact/helpers.js'

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void

/** An HTTP server whose answers each test writes; it counts what it was sent and what it wrote. */
class FakeRegistry {
  handler: Handler = (_req, res) => res.writeHead(404).end()
  requests: string[] = []
  bytesWritten = 0
  private server?: Server
  address = ''

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        this.requests.push(`${req.method} ${req.url}`)
        this.handler(req, res, Buffer.concat(chunks))
      })
    })
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve))
    this.address = `127.0.0.1:${(this.server.address() as {port: number}).port}`
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections()
    await new Promise((resolve) => this.server?.close(resolve))
  }

  /** Writes 64 KiB chunks until the client hangs up. */
  endless(res: ServerResponse, headers: Record<string, string> = {}): void {
    res.writeHead(200, headers)
    const chunk = Buffer.alloc(64 * 1024, 0x7b)
    const timer = setInterval(() => {
      if (res.destroyed) return clearInterval(timer)
      this.bytesWritten += chunk.length
      res.write(chunk)
    }, 1)
    res.on('close', () => clearInterval(timer))
  }
}

const ACCESS: RegistryAccess = {
  env: {HOME: '/nonexistent'},
  timeouts: {connectMs: 2000, headersMs: 500, bodyIdleMs: 500, smallMs: 1500, minBytesPerSecond: 1024 * 1024},
  attempts: 2,
  retryDelayMs: 10,
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<MlopsError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  assert.ok(error instanceof MlopsError, `expected ${code}, got ${String(error)}`)
  assert.equal(error.code, code, error.message)
  return error
}

describe('registry client against a hostile registry on 127.0.0.1', function () {
  this.timeout(30_000)
  const registry = new FakeRegistry()
  let dir: string
  let store: ArtifactStore
  let archive: {digest: string; size: number; bytes: Buffer}
  let built: ReturnType<typeof buildManifest>

  before(async () => {
    await registry.start()
    dir = await tempDir('registry')
    store = new ArtifactStore(join(dir, '.mlops', 'artifacts'))
    const written = await writeArchive(manifestFor('hostile', '1.0.0'), await projectEntries(dir), {
      tmpDir: store.blobsDir,
    })
    await store.put(written.tmpPath, written.manifest, written)
    archive = {digest: written.digest, size: written.size, bytes: await readFile(store.blobPath(written.digest))}
    built = buildManifest(written.manifest, archive)
  })
  after(async () => registry.stop())
  beforeEach(() => {
    registry.requests = []
    registry.bytesWritten = 0
  })

  /** Serves `manifest` for any manifest request, `blob(digest)` for blobs. */
  const serving = (manifest: Buffer, blob: (digest: string, res: ServerResponse) => void) => {
    registry.handler = (req, res) => {
      if (req.url === '/v2/') return res.writeHead(200).end('{}')
      if (req.url?.includes('/manifests/'))
        return res.writeHead(200, {'content-type': 'application/vnd.oci.image.manifest.v1+json'}).end(manifest)
      const digest = /\/blobs\/(sha256:[0-9a-f]+)$/.exec(req.url ?? '')?.[1]
      if (digest) return blob(digest, res)
      res.writeHead(404).end()
    }
  }
  const pullFresh = async (ref: string) => {
    const target = new ArtifactStore(join(await tempDir('pull'), 'store'))
    return {target, pulled: pullInto(target, ref, ACCESS)}
  }
  const nothingStored = async (target: ArtifactStore) => {
    assert.deepEqual(await target.list(), [])
    const left = await readdir(target.blobsDir).catch(() => [])
    assert.deepEqual(left, [], 'a temp file was left behind')
  }

  it('refuses an endless manifest after 4 MiB, having read no more than that', async () => {
    registry.handler = (req, res) => (req.url === '/v2/' ? res.writeHead(200).end() : registry.endless(res))
    const {target, pulled} = await pullFresh(`${registry.address}/m/hostile:1.0.0`)
    await rejectsWith(pulled, 'REGISTRY_RESPONSE_TOO_LARGE')
    assert.ok(registry.bytesWritten < 64 * 1024 * 1024, `the fake wrote ${registry.bytesWritten} bytes`)
    await nothingStored(target)
  })

  it('gives up on a manifest that trickles forever, within the time bound, as unreachable', async () => {
    registry.handler = (req, res) => {
      if (req.url === '/v2/') return res.writeHead(200).end()
      res.writeHead(200)
      const timer = setInterval(() => (res.destroyed ? clearInterval(timer) : res.write('{')), 100)
      res.on('close', () => clearInterval(timer))
    }
    const {pulled} = await pullFresh(`${registry.address}/m/hostile:1.0.0`)
    const error = await rejectsWith(pulled, 'REGISTRY_UNREACHABLE')
    assert.match(error.message, /timed out/)
  })

  it('gives up on a registry that never answers, after its retries', async () => {
    registry.handler = (req, res) => (req.url === '/v2/' ? res.writeHead(200).end() : undefined)
    const {pulled} = await pullFresh(`${registry.address}/m/hostile:1.0.0`)
    const error = await rejectsWith(pulled, 'REGISTRY_UNREACHABLE')
    assert.match(error.message, /2 attempts/)
  })

  it('refuses a manifest whose bytes are not the digest asked for', async () => {
    serving(built.bytes, () => undefined)
    const other = sha256Digest(Buffer.from('something else'))
    const {target, pulled} = await pullFresh(`${registry.address}/m/hostile@${other}`)
    await rejectsWith(pulled, 'REGISTRY_DIGEST_MISMATCH')
    await nothingStored(target)
  })

  it('refuses a layer with the right size and the wrong bytes, and keeps nothing of it', async () => {
    serving(built.bytes, (digest, res) => {
      if (digest === built.config.descriptor.digest) return res.writeHead(200).end(built.config.bytes)
      const wrong = Buffer.from(archive.bytes)
      wrong[archive.size - 2000] ^= 0xff
      res.writeHead(200).end(wrong)
    })
    const {target, pulled} = await pullFresh(`${registry.address}/m/hostile@${built.digest}`)
    await rejectsWith(pulled, 'REGISTRY_DIGEST_MISMATCH')
    await nothingStored(target)
  })

  it('refuses a config blob that is not the one the manifest names, before fetching the layer', async () => {
    serving(built.bytes, (digest, res) => {
      if (digest === built.config.descriptor.digest)
        return res.writeHead(200).end(Buffer.from(built.config.bytes!).fill(0x20, 0, 1))
      assert.fail('the layer was fetched')
    })
    const {target, pulled} = await pullFresh(`${registry.address}/m/hostile@${built.digest}`)
    const error = await rejectsWith(pulled, 'REGISTRY_DIGEST_MISMATCH')
    assert.match(error.message, /config blob/)
    await nothingStored(target)
  })

  it('refuses a layer that streams past its descriptor size, and one that declares more up front', async () => {
    serving(built.bytes, (digest, res) =>
      digest === built.config.descriptor.digest ? res.writeHead(200).end(built.config.bytes) : registry.endless(res),
    )
    const endless = await pullFresh(`${registry.address}/m/hostile@${built.digest}`)
    await rejectsWith(endless.pulled, 'REGISTRY_RESPONSE_TOO_LARGE')
    assert.ok(registry.bytesWritten < archive.size + 64 * 1024 * 1024)
    await nothingStored(endless.target)

    serving(built.bytes, (digest, res) => {
      if (digest === built.config.descriptor.digest) return res.writeHead(200).end(built.config.bytes)
      res.writeHead(200, {'content-length': String(archive.size * 1000)})
      res.write(archive.bytes)
    })
    const declared = await pullFresh(`${registry.address}/m/hostile@${built.digest}`)
    await rejectsWith(declared.pulled, 'REGISTRY_RESPONSE_TOO_LARGE')
    await nothingStored(declared.target)
  })

  it('gives up on a layer that trickles in, never silent for long, once its size at the slowest rate has passed', async () => {
    serving(built.bytes, (digest, res) => {
      if (digest === built.config.descriptor.digest) return res.writeHead(200).end(built.config.bytes)
      res.writeHead(200, {'content-length': String(archive.size)})
      let offset = 0
      const timer = setInterval(
        () => (res.destroyed ? clearInterval(timer) : res.write(archive.bytes.subarray(offset, ++offset))),
        100,
      )
      res.on('close', () => clearInterval(timer))
    })
    const {target, pulled} = await pullFresh(`${registry.address}/m/hostile@${built.digest}`)
    const error = await rejectsWith(pulled, 'REGISTRY_UNREACHABLE')
    assert.match(error.message, /timed out/)
    await nothingStored(target)
  })

  it("refuses an image whose manifest is not JSON when deploy resolves --image's tag, rather than pinning it", async () => {
    serving(Buffer.from('<html>not a manifest</html>'), (_digest, res) => res.writeHead(404).end())
    const resolving = resolveImage({
      reference: `${registry.address}/demo:1.0.0`,
      artifactDigest: archive.digest,
      access: ACCESS,
    })
    const error = await rejectsWith(resolving, 'REGISTRY_RESPONSE_INVALID')
    assert.match(error.message, /the manifest of .*demo:1\.0\.0 is not a JSON object/)
  })

  it('refuses a manifest naming a petabyte layer before fetching any blob', async () => {
    const huge = {...built.manifest, layers: [{...built.manifest.layers[0], size: 1e15}]}
    serving(Buffer.from(JSON.stringify(huge)), () => assert.fail('a blob was fetched'))
    const {pulled} = await pullFresh(`${registry.address}/m/hostile:1.0.0`)
    await rejectsWith(pulled, 'REGISTRY_RESPONSE_TOO_LARGE')
    assert.ok(!registry.requests.some((r) => r.includes('/blobs/')))
  })

  it('follows the Bearer token flow with Basic credentials, and pulls; a wrong password is REGISTRY_UNAUTHORIZED', async () => {
    const token = 'tok-' + createHash('sha256').update('x').digest('hex').slice(0, 16)
    const basic = `Basic ${Buffer.from('robot:s3cret').toString('base64')}`
    const challenge = `Bearer realm="http://${registry.address}/token",service="fake",scope="repository:m/hostile:pull"`
    const inner = (req: IncomingMessage, res: ServerResponse) => {
      if (req.url?.includes('/manifests/'))
        return res.writeHead(200, {'content-type': 'application/vnd.oci.image.manifest.v1+json'}).end(built.bytes)
      const digest = /\/blobs\/(sha256:[0-9a-f]+)$/.exec(req.url ?? '')?.[1]
      res.writeHead(200).end(digest === built.config.descriptor.digest ? built.config.bytes : archive.bytes)
    }
    registry.handler = (req, res) => {
      if (req.url?.startsWith('/token')) {
        const url = new URL(req.url, 'http://x')
        if (req.headers.authorization !== basic || url.searchParams.get('scope') !== 'repository:m/hostile:pull')
          return res.writeHead(401).end()
        return res.writeHead(200, {'content-type': 'application/json'}).end(JSON.stringify({token}))
      }
      if (req.headers.authorization !== `Bearer ${token}`)
        return res.writeHead(401, {'www-authenticate': challenge}).end('{"errors":[{"code":"UNAUTHORIZED"}]}')
      if (req.url === '/v2/') return res.writeHead(200).end()
      inner(req, res)
    }
    const target = new ArtifactStore(join(await tempDir('bearer'), 'store'))
    const credentials = {username: 'robot', password: 's3cret', source: 'the test'}
    const pulled = await pullInto(target, `${registry.address}/m/hostile@${built.digest}`, {...ACCESS, credentials})
    assert.equal(pulled.record.digest, archive.digest)
    assert.ok(registry.requests.some((r) => r.startsWith('GET /token')))

    const wrong = {username: 'robot', password: 'nope', source: 'the test'}
    const other = new ArtifactStore(join(await tempDir('bearer-wrong'), 'store'))
    const error = await rejectsWith(
      pullInto(other, `${registry.address}/m/hostile@${built.digest}`, {...ACCESS, credentials: wrong}),
      'REGISTRY_UNAUTHORIZED',
    )
    assert.ok(!JSON.stringify({m: error.message, h: error.hint, d: error.details}).includes('nope'))
  })

  it('a registry asking for Basic credentials that nobody has is REGISTRY_UNAUTHORIZED saying none were found', async () => {
    registry.handler = (_req, res) => res.writeHead(401, {'www-authenticate': 'Basic realm="fake"'}).end()
    const {pulled} = await pullFresh(`${registry.address}/m/hostile:1.0.0`)
    const error = await rejectsWith(pulled, 'REGISTRY_UNAUTHORIZED')
    assert.match(error.message, /none were found/)
    assert.match(error.hint ?? '', /docker login 127\.0\.0\.1:\d+/)
  })

  it('a digest reference pulled once needs no registry the second time', async () => {
    serving(built.bytes, (digest, res) =>
      res.writeHead(200).end(digest === built.config.descriptor.digest ? built.config.bytes : archive.bytes),
    )
    const target = new ArtifactStore(join(await tempDir('cached'), 'store'))
    const ref = `${registry.address}/m/hostile@${built.digest}`
    assert.equal((await pullInto(target, ref, ACCESS)).cached, false)
    registry.requests = []
    registry.handler = (_req, res) => res.destroy()
    const again = await pullInto(target, ref, ACCESS)
    assert.equal(again.cached, true)
    assert.deepEqual(registry.requests, [])
    assert.equal((await target.resolve(ref)).digest, archive.digest)
  })

  it('refuses to store a pulled name@version over a different local one, and says where it came from', async () => {
    const other = await writeArchive(manifestFor('hostile', '1.0.0'), await projectEntries(await tempDir('other'), 2))
    const otherBytes = await readFile(other.tmpPath)
    const otherBuilt = buildManifest(other.manifest, other)
    serving(otherBuilt.bytes, (digest, res) =>
      res.writeHead(200).end(digest === otherBuilt.config.descriptor.digest ? otherBuilt.config.bytes : otherBytes),
    )
    const ref = `${registry.address}/m/hostile@${otherBuilt.digest}`
    const error = await rejectsWith(pullInto(store, ref, ACCESS), 'VERSION_EXISTS')
    assert.match(error.message, new RegExp(`^${registry.address.replace(/\./g, '\\.')}/m/hostile@`))
    assert.deepEqual(
      (await store.list()).map((r) => r.digest),
      [archive.digest],
    )
  })

  /** A registry that keeps uploads in memory; `onPatch` may drop the connection of one PATCH. */
  const uploads = (options: {onPatch?: (n: number, res: ServerResponse) => boolean; refuseArtifacts?: boolean}) => {
    const sessions = new Map<string, Buffer>()
    const blobs = new Map<string, Buffer>()
    const manifests: Buffer[] = []
    let patches = 0
    registry.handler = (req, res, body) => {
      const url = new URL(req.url ?? '/', 'http://x')
      if (url.pathname === '/v2/') return res.writeHead(200).end()
      const blob = /\/blobs\/(sha256:[0-9a-f]+)$/.exec(url.pathname)?.[1]
      if (req.method === 'HEAD' && blob) return res.writeHead(blobs.has(blob) ? 200 : 404).end()
      if (req.method === 'POST' && url.pathname.endsWith('/blobs/uploads/')) {
        const id = `u${sessions.size}`
        sessions.set(id, Buffer.alloc(0))
        return res.writeHead(202, {location: `/v2/m/hostile/blobs/uploads/${id}?_state=x`}).end()
      }
      const id = /\/uploads\/(u\d+)$/.exec(url.pathname)?.[1]
      if (id && sessions.has(id)) {
        const so = sessions.get(id)!
        if (req.method === 'PATCH') {
          sessions.set(id, Buffer.concat([so, body]))
          if (options.onPatch?.(++patches, res)) return
          return res.writeHead(202, {location: req.url!, range: `0-${so.length + body.length - 1}`}).end()
        }
        if (req.method === 'GET') return res.writeHead(204, {location: req.url!, range: `0-${so.length - 1}`}).end()
        if (req.method === 'PUT') {
          const digest = url.searchParams.get('digest')!
          if (sha256Digest(so) !== digest) return res.writeHead(400).end('{"errors":[{"code":"DIGEST_INVALID"}]}')
          blobs.set(digest, so)
          return res.writeHead(201).end()
        }
      }
      if (req.method === 'PUT' && url.pathname.includes('/manifests/')) {
        const parsed = JSON.parse(body.toString()) as {artifactType?: string}
        if (options.refuseArtifacts && parsed.artifactType === MODEL_ARTIFACT_TYPE)
          return res.writeHead(400).end('{"errors":[{"code":"MANIFEST_INVALID","message":"unknown media type"}]}')
        manifests.push(body)
        return res.writeHead(201, {'docker-content-digest': sha256Digest(body)}).end()
      }
      res.writeHead(404).end()
    }
    return {blobs, manifests}
  }

  it('resumes an upload whose connection dropped mid-way from the Range the registry reports', async () => {
    const state = uploads({onPatch: (n, res) => (n === 3 ? (res.socket?.destroy(), true) : false)})
    const result = await pushArtifact({
      dir,
      ref: '1.0.0',
      target: `${registry.address}/m/hostile:1.0.0`,
      access: ACCESS,
      chunkSize: 64 * 1024,
    })
    assert.equal(result.digest, built.digest)
    assert.ok(state.blobs.get(archive.digest)?.equals(archive.bytes), 'the registry holds the archive byte for byte')
    assert.ok(
      registry.requests.some((r) => r.startsWith('GET /v2/m/hostile/blobs/uploads/')),
      'no status was asked',
    )
    assert.equal(registry.requests.filter((r) => r.startsWith('POST')).length, 2, 'config and layer: one upload each')
  })

  it('resumes after a PATCH the registry answered with 503, from the Range it reports', async () => {
    const state = uploads({onPatch: (n, res) => (n === 2 ? (res.writeHead(503).end(), true) : false)})
    const target = `${registry.address}/m/hostile:1.0.0`
    const result = await pushArtifact({dir, ref: '1.0.0', target, access: ACCESS, chunkSize: 64 * 1024})
    assert.equal(result.digest, built.digest)
    assert.ok(state.blobs.get(archive.digest)?.equals(archive.bytes), 'the registry holds the archive byte for byte')
  })

  it('names a registry that refuses the artifact type, and --as-image pushes it as a plain image', async () => {
    uploads({refuseArtifacts: true})
    const target = `${registry.address}/m/hostile:1.0.0`
    const error = await rejectsWith(
      pushArtifact({dir, ref: '1.0.0', target, access: ACCESS}),
      'REGISTRY_ARTIFACT_REFUSED',
    )
    assert.match(error.hint ?? '', /--as-image/)
    const state = uploads({refuseArtifacts: true})
    const image = await pushArtifact({dir, ref: '1.0.0', target, access: ACCESS, asImage: true})
    assert.equal(image.asImage, true)
    const manifest = JSON.parse(state.manifests[0].toString()) as {layers: {mediaType: string}[]; artifactType?: string}
    assert.equal(manifest.artifactType, undefined)
    assert.equal(manifest.layers[0].mediaType, 'application/vnd.oci.image.layer.v1.tar')
  })
})
