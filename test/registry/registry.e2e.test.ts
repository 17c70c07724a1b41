// push and pull against Debian's docker-registry on 127.0.0.1: anonymous over plain HTTP, and htpasswd Basic over TLS.
import assert from 'node:assert/strict'
import {existsSync} from 'node:fs'
import {mkdir, open, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {execa} from 'execa'

import {run} from '../../src/system/exec.js'
import {BIN, exampleProject, mlops} from '../support/cli.js'
import {assertMatchesSchema} from '../support/schema.js'
import {PASSWORD, type TestRegistry, USER, registryToolsMissing, startTestRegistry} from './helpers.js'

interface Pushed {
  reference: string
  digest: string
  artifact: {digest: string}
  blobs: {mediaType: string; sent: boolean}[]
}

describe('artifacts push and pull with a real registry (docker-registry on 127.0.0.1, e2e)', function () {
  this.timeout(300_000)
  let example: Awaited<ReturnType<typeof exampleProject>> | undefined
  let project: string
  let records: unknown[]
  before(async function () {
    const missing = await registryToolsMissing()
    if (missing) {
      if (process.env.CI) throw new Error(missing)
      console.log(`      skipped: ${missing}`)
      this.skip()
    }
    example = await exampleProject()
    project = example.project
    const packaged = await mlops(['package', '--json', '--dir', project])
    assert.equal(packaged.exitCode, 0, packaged.stderr)
    const golden = (await readFile(join(project, 'golden.jsonl'), 'utf8')).trim().split('\n')
    records = golden.flatMap((line) => (JSON.parse(line) as {records: unknown[]}).records)
  })
  after(async () => example?.remove())

  for (const secure of [false, true]) {
    describe(secure ? 'htpasswd Basic auth over TLS' : 'anonymous, plain HTTP on 127.0.0.1', () => {
      let registry: TestRegistry
      /** No credentials but these: the auth files of the machine running the tests stay out of it. */
      let env: Record<string, string>
      let repository: string
      let pushed: Pushed
      before(async function () {
        if (!example) this.skip()
        registry = await startTestRegistry(secure)
        const home = join(example.tmp, secure ? 'home-tls' : 'home-plain')
        await mkdir(home, {recursive: true})
        const authFile = join(home, 'auth.json')
        const auths = secure ? {[registry.address]: {auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}} : {}
        await writeFile(authFile, JSON.stringify({auths}), {mode: 0o600})
        env = {
          HOME: home,
          DOCKER_CONFIG: join(home, '.docker'),
          XDG_CONFIG_HOME: join(home, '.config'),
          REGISTRY_AUTH_FILE: authFile,
          ...(registry.caFile ? {MLOPS_REGISTRY_CA_FILE: registry.caFile} : {}),
        }
        repository = `${registry.address}/models/credit-risk`
      })
      after(async () => registry?.stop())

      const skopeoArgs = () =>
        secure
          ? ['--cert-dir', registry.certDir!, '--creds', `${USER}:${PASSWORD}`]
          : ['--tls-verify=false', '--no-creds']

      it('pushes a ModelPack manifest that skopeo reads: artifactType, config and layer media types', async () => {
        const result = await mlops(['artifacts', 'push', '1.0.0', `${repository}:1.0.0`, '--json', '--dir', project], {
          env,
        })
        assert.equal(result.exitCode, 0, result.stdout + result.stderr)
        assertMatchesSchema(result.json, 'artifacts-push')
        pushed = result.json as Pushed
        assert.equal(pushed.reference, `${repository}@${pushed.digest}`)
        assert.deepEqual(
          pushed.blobs.map((b) => b.sent),
          [true, true],
        )
        const raw = (await run('skopeo', ['inspect', '--raw', ...skopeoArgs(), `docker://${repository}:1.0.0`])).stdout
        const manifest = JSON.parse(raw) as {
          artifactType: string
          config: {mediaType: string}
          layers: {mediaType: string; digest: string}[]
          annotations: Record<string, string>
        }
        assert.equal(manifest.artifactType, 'application/vnd.cncf.model.manifest.v1+json')
        assert.equal(manifest.config.mediaType, 'application/vnd.cncf.model.config.v1+json')
        assert.deepEqual(
          manifest.layers.map((l) => [l.mediaType, l.digest]),
          [['application/vnd.cncf.model.weight.v1.tar', pushed.artifact.digest]],
        )
        assert.equal(manifest.annotations['org.opencontainers.image.version'], '1.0.0')
        assert.equal(manifest.annotations['org.opencontainers.image.title'], 'credit-risk')
      })

      it('pushes the same artifact again to the same digest, asking with HEAD and sending no blob', async () => {
        const uploadsBefore = registry.requests().filter((r) => /^(POST|PATCH|PUT) .*\/blobs\/uploads/.test(r))
        const headsBefore = registry.requests().filter((r) => r.startsWith('HEAD ')).length
        const again = await mlops(['artifacts', 'push', '1.0.0', `${repository}:again`, '--json', '--dir', project], {
          env,
        })
        assert.equal(again.exitCode, 0, again.stdout + again.stderr)
        const second = again.json as Pushed
        assert.equal(second.digest, pushed.digest)
        assert.deepEqual(
          second.blobs.map((b) => b.sent),
          [false, false],
        )
        assert.ok(
          uploadsBefore.length >= 2,
          `the first push uploaded through the registry: ${uploadsBefore.join(', ')}`,
        )
        assert.deepEqual(
          registry.requests().filter((r) => /^(POST|PATCH|PUT) .*\/blobs\/uploads/.test(r)),
          uploadsBefore,
        )
        assert.ok(registry.requests().filter((r) => r.startsWith('HEAD ')).length >= headsBefore + 2)
      })

      it('pulls into a folder with nothing local, and serves the same answers as the original', async () => {
        const second = join(example!.tmp, secure ? 'second-tls' : 'second-plain')
        await mkdir(second)
        const pulled = await mlops(['artifacts', 'pull', pushed.reference, '--json', '--dir', second], {env})
        assert.equal(pulled.exitCode, 0, pulled.stdout + pulled.stderr)
        assertMatchesSchema(pulled.json, 'artifacts-pull')
        const result = pulled.json as {cached: boolean; artifact: {digest: string}; digest: string}
        assert.equal(result.cached, false)
        assert.equal(result.digest, pushed.digest)
        assert.equal(result.artifact.digest, pushed.artifact.digest)
        const show = await mlops(['artifacts', 'show', pushed.reference, '--json', '--dir', second], {env})
        assert.equal(show.exitCode, 0, show.stdout + show.stderr)
        assert.equal((show.json as {record: {digest: string}}).record.digest, pushed.artifact.digest)

        // A third folder serves by tag straight from the registry: the one ref resolver pulls it first.
        const third = join(example!.tmp, secure ? 'third-tls' : 'third-plain')
        await mkdir(third)
        const original = await serveAndPredict(project, '1.0.0', env, records)
        const fromRegistry = await serveAndPredict(third, `${repository}:1.0.0`, env, records)
        assert.equal(fromRegistry.digest, pushed.artifact.digest)
        assert.equal((original.answer as {predictions: unknown[]}).predictions.length, records.length)
        assert.deepEqual(fromRegistry.answer, original.answer)
      })

      if (secure)
        it('a wrong password is REGISTRY_UNAUTHORIZED naming the registry and how to log in, never the password', async () => {
          const wrong = 'not-the-password-42'
          const result = await mlops(
            [
              'artifacts',
              'pull',
              pushed.reference,
              '--username',
              USER,
              '--password-stdin',
              '--json',
              '--dir',
              join(example!.tmp, 'home-tls'),
            ],
            {env, input: wrong + '\n'},
          )
          assert.equal(result.exitCode, 1, result.stdout + result.stderr)
          const error = (result.json as {error: {code: string; message: string; hint: string}}).error
          assert.equal(error.code, 'REGISTRY_UNAUTHORIZED')
          assert.match(error.message, new RegExp(registry.address.replace(/\./g, '\\.')))
          assert.match(error.hint, /docker login|--password-stdin/)
          assert.ok(!(result.stdout + result.stderr).includes(wrong), 'the password was printed')
        })

      if (secure)
        it('a CA it does not know is REGISTRY_TLS_FAILED naming --ca-file; --tls-verify=false with --password-stdin gets through', async () => {
          const bare = join(example!.tmp, 'home-tls', 'empty-auth.json')
          await writeFile(bare, '{}')
          const {MLOPS_REGISTRY_CA_FILE: _ca, ...rest} = env
          const noCa = {...rest, REGISTRY_AUTH_FILE: bare}
          const fresh = join(example!.tmp, 'tls-verify-off')
          await mkdir(fresh)
          const refused = await mlops(['artifacts', 'pull', pushed.reference, '--json', '--dir', fresh], {env: noCa})
          assert.equal(refused.exitCode, 1, refused.stdout + refused.stderr)
          const error = (refused.json as {error: {code: string; hint: string}}).error
          assert.equal(error.code, 'REGISTRY_TLS_FAILED')
          assert.match(error.hint, /--ca-file/)
          const args = [
            'artifacts',
            'pull',
            pushed.reference,
            '--tls-verify=false',
            '--username',
            USER,
            '--password-stdin',
          ]
          const pulled = await mlops([...args, '--json', '--dir', fresh], {env: noCa, input: PASSWORD + '\n'})
          assert.equal(pulled.exitCode, 0, pulled.stdout + pulled.stderr)
          assert.equal((pulled.json as {artifact: {digest: string}}).artifact.digest, pushed.artifact.digest)
        })

      if (!secure)
        it('--as-image pushes a plain image layer that pull reads back as the same artifact', async () => {
          const image = `${registry.address}/models/credit-risk-image:1.0.0`
          const args = ['artifacts', 'push', '1.0.0', image, '--as-image', '--json', '--dir', project]
          const result = await mlops(args, {env})
          assert.equal(result.exitCode, 0, result.stdout + result.stderr)
          const raw = (await run('skopeo', ['inspect', '--raw', ...skopeoArgs(), `docker://${image}`])).stdout
          const manifest = JSON.parse(raw) as {artifactType?: string; layers: {mediaType: string}[]}
          assert.equal(manifest.artifactType, undefined)
          assert.deepEqual(
            manifest.layers.map((l) => l.mediaType),
            ['application/vnd.oci.image.layer.v1.tar'],
          )
          const fresh = join(example!.tmp, 'as-image')
          await mkdir(fresh)
          const pulled = await mlops(['artifacts', 'pull', image, '--json', '--dir', fresh], {env})
          assert.equal(pulled.exitCode, 0, pulled.stdout + pulled.stderr)
          assert.equal((pulled.json as {artifact: {digest: string}}).artifact.digest, pushed.artifact.digest)
        })

      it('a repository that does not exist is REGISTRY_NOT_FOUND', async () => {
        const result = await mlops(
          ['artifacts', 'pull', `${registry.address}/models/absent:1.0.0`, '--json', '--dir', example!.tmp],
          {env},
        )
        assert.equal(result.exitCode, 2, result.stdout + result.stderr)
        assert.equal((result.json as {error: {code: string}}).error.code, 'REGISTRY_NOT_FOUND')
      })

      it('refuses a blob tampered with in the registry storage, and stores nothing', async () => {
        const hex = pushed.artifact.digest.slice('sha256:'.length)
        const data = join(registry.storage, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data')
        assert.ok(existsSync(data), data)
        const handle = await open(data, 'r+')
        await handle.write(Buffer.from('X'), 0, 1, 4096)
        await handle.close()
        const fresh = join(example!.tmp, secure ? 'fresh-tls' : 'fresh-plain')
        await mkdir(fresh)
        const result = await mlops(['artifacts', 'pull', pushed.reference, '--json', '--dir', fresh], {env})
        assert.equal(result.exitCode, 1, result.stdout + result.stderr)
        assert.equal((result.json as {error: {code: string}}).error.code, 'REGISTRY_DIGEST_MISMATCH')
        assert.ok(!existsSync(join(fresh, '.mlops', 'artifacts', 'index.json')), 'something was stored')
      })
    })
  }
})

/** `mlops serve REF` as a child process, asked to predict `records`; its answer and the artifact digest it serves. */
async function serveAndPredict(
  dir: string,
  ref: string,
  env: Record<string, string>,
  records: unknown[],
): Promise<{answer: unknown; digest: string}> {
  const child = execa('node', [BIN, 'serve', ref, '--port', '0', '--json', '--dir', dir], {
    env: {CI: 'true', ...env},
    reject: false,
  })
  try {
    const ready = await new Promise<{url: string; digest?: string}>((resolve, reject) => {
      child.stdout.once('data', (chunk: Buffer) => resolve(JSON.parse(chunk.toString().split('\n')[0])))
      void child.then((r) =>
        reject(new Error(`serve exited before it was ready: ${String(r.stdout)} ${String(r.stderr)}`)),
      )
    })
    const response = await fetch(`${ready.url}/v1/predict`, {
      method: 'POST',
      headers: {'content-type': 'application/json'},
      body: JSON.stringify({instances: records}),
    })
    assert.equal(response.status, 200)
    return {answer: await response.json(), digest: ready.digest ?? ''}
  } finally {
    child.kill('SIGTERM')
    await child
  }
}
