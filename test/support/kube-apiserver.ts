// A real Kubernetes API server for tests: etcd and kube-apiserver v1.20.2 on 127.0.0.1, token auth, RBAC, the Gateway
// API CRDs, and a kubeconfig per user. No kubelet and no controllers run: tests play them (Deployment status, pods).
import {type ChildProcess, spawn} from 'node:child_process'
import {generateKeyPairSync, randomBytes} from 'node:crypto'
import {existsSync, readFileSync} from 'node:fs'
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {createServer} from 'node:net'
import {homedir, tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {Agent, request} from 'undici'
import {parseAllDocuments, stringify} from 'yaml'

import {packageRoot} from '../../src/paths.js'

export const KUBE_APISERVER = join(homedir(), '.cache', 'mlops', 'kube-apiserver-v1.20.2')
export const GATEWAY_CRDS = join(packageRoot, 'test', 'fixtures', 'kubernetes', 'gateway-api-crds.yaml')

/** What is missing to run the API server here, or undefined when everything is present. */
export function missingForApiServer(): string | undefined {
  if (!existsSync(KUBE_APISERVER)) return `${KUBE_APISERVER} (build it with scripts/kube-apiserver.sh)`
  if (!onPath('etcd')) return 'etcd (apt-get install etcd-server)'
  return undefined
}

/** Outside CI a missing tool skips the suite with one line saying what; in CI it fails it. */
export function skipOrFail(context: Mocha.Context, missing: string | undefined): void {
  if (!missing) return
  if (process.env.CI) throw new Error(`the Kubernetes tests need ${missing}`)
  console.log(`    skipped: the Kubernetes tests need ${missing}`)
  context.skip()
}

/** What the API server tests that also run kubectl lack, or undefined. */
export function missingForKubectl(): string | undefined {
  return missingForApiServer() ?? (onPath('kubectl') ? undefined : 'kubectl (apt-get install kubernetes-client)')
}

/** A digest reference per version, as "mlops build --push" prints: 1.2.0 → registry.example/demo@sha256:120120… */
export function digestImage(version: string): string {
  return `registry.example/demo@sha256:${version.replaceAll('.', '').repeat(64).slice(0, 64)}`
}

export function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(join(dir, command)))
}

export interface ApiServer {
  url: string
  dir: string
  /** A kubeconfig for the cluster admin (system:masters). */
  adminKubeconfig: string
  /** A kubeconfig for a user RBAC grants nothing. */
  limitedKubeconfig: string
  /** The admin's raw API: tests play the kubelet and controllers through it. */
  api: (method: string, path: string, body?: unknown, contentType?: string) => Promise<{status: number; body: any}>
  installGatewayCrds(): Promise<void>
  stop(): Promise<void>
}

export async function startApiServer(): Promise<ApiServer> {
  const dir = await mkdtemp(join(tmpdir(), 'mlops-kube-'))
  const children: ChildProcess[] = []
  const stop = async () => {
    for (const child of children.reverse()) {
      if (child.exitCode !== null) continue
      child.kill('SIGTERM')
      const gone = new Promise((resolve) => child.once('exit', resolve))
      await Promise.race([gone, sleep(10_000)])
      if (child.exitCode === null) child.kill('SIGKILL')
    }
    await rm(dir, {recursive: true, force: true})
  }
  try {
    const [etcdPort, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()]
    children.push(
      spawnLogged(
        'etcd',
        [
          '--data-dir',
          join(dir, 'etcd'),
          '--listen-client-urls',
          `http://127.0.0.1:${etcdPort}`,
          '--advertise-client-urls',
          `http://127.0.0.1:${etcdPort}`,
          '--listen-peer-urls',
          `http://127.0.0.1:${etcdPeer}`,
          '--initial-advertise-peer-urls',
          `http://127.0.0.1:${etcdPeer}`,
          '--initial-cluster',
          `default=http://127.0.0.1:${etcdPeer}`,
        ],
        join(dir, 'etcd.log'),
      ),
    )
    const adminToken = randomBytes(16).toString('hex')
    const limitedToken = randomBytes(16).toString('hex')
    await writeFile(
      join(dir, 'tokens.csv'),
      `${adminToken},admin,1,"system:masters"\n${limitedToken},nobody,2,"developers"\n`,
      {mode: 0o600},
    )
    const {privateKey, publicKey} = generateKeyPairSync('rsa', {modulusLength: 2048})
    await writeFile(join(dir, 'sa.key'), privateKey.export({type: 'pkcs8', format: 'pem'}), {mode: 0o600})
    await writeFile(join(dir, 'sa.pub'), publicKey.export({type: 'spki', format: 'pem'}))
    await mkdir(join(dir, 'certs'))
    children.push(
      spawnLogged(
        KUBE_APISERVER,
        [
          `--etcd-servers=http://127.0.0.1:${etcdPort}`,
          '--bind-address=127.0.0.1',
          '--advertise-address=127.0.0.1',
          `--secure-port=${apiPort}`,
          '--insecure-port=0',
          `--cert-dir=${join(dir, 'certs')}`,
          `--token-auth-file=${join(dir, 'tokens.csv')}`,
          '--authorization-mode=RBAC',
          `--service-account-key-file=${join(dir, 'sa.pub')}`,
          `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
          '--service-account-issuer=https://kubernetes.default.svc',
          '--service-cluster-ip-range=10.0.0.0/24',
          // Pods created by tests have no service account controller behind them.
          '--disable-admission-plugins=ServiceAccount',
          // Endpoints on 127.0.0.1 are refused by validation, and nothing here routes to the API server through them.
          '--endpoint-reconciler-type=none',
        ],
        join(dir, 'apiserver.log'),
      ),
    )
    const url = `https://127.0.0.1:${apiPort}`
    const ca = await waitForFile(join(dir, 'certs', 'apiserver.crt'), children, dir)
    const dispatcher = new Agent({connect: {ca}})
    const api: ApiServer['api'] = async (method, path, body, contentType = 'application/json') => {
      const response = await request(`${url}${path}`, {
        method: method as 'GET',
        dispatcher,
        headers: {authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : {'content-type': contentType})},
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      })
      const text = await response.body.text()
      let parsed: unknown = text
      try {
        parsed = JSON.parse(text)
      } catch {
        // not JSON
      }
      return {status: response.statusCode, body: parsed}
    }
    await waitForReady(api, children, dir)
    const kubeconfig = (user: string, token: string) =>
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{name: 'test', cluster: {server: url, 'certificate-authority-data': ca.toString('base64')}}],
        users: [{name: user, user: {token}}],
        contexts: [{name: user, context: {cluster: 'test', user}}],
        'current-context': user,
      })
    const adminKubeconfig = join(dir, 'admin.kubeconfig')
    const limitedKubeconfig = join(dir, 'limited.kubeconfig')
    await writeFile(adminKubeconfig, kubeconfig('admin', adminToken), {mode: 0o600})
    await writeFile(limitedKubeconfig, kubeconfig('nobody', limitedToken), {mode: 0o600})
    return {
      url,
      dir,
      adminKubeconfig,
      limitedKubeconfig,
      api,
      installGatewayCrds: () => installCrds(api),
      stop,
    }
  } catch (error) {
    await stop().catch(() => undefined)
    throw error
  }
}

/** Creates the Gateway API CRDs and waits until the API serves them. */
async function installCrds(api: ApiServer['api']): Promise<void> {
  const documents = parseAllDocuments(await readFile(GATEWAY_CRDS, 'utf8'))
  for (const document of documents) {
    const crd = document.toJSON() as {metadata: {name: string}} | null
    if (!crd) continue
    const created = await api('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd)
    if (created.status !== 201 && created.status !== 409)
      throw new Error(`creating ${crd.metadata.name}: ${created.status} ${JSON.stringify(created.body).slice(0, 500)}`)
  }
  for (let i = 0; i < 200; i++) {
    const served = await api('GET', '/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes')
    if (served.status === 200) return
    await sleep(100)
  }
  throw new Error('the Gateway API CRDs were created but are not served after 20s')
}

function spawnLogged(command: string, args: string[], log: string): ChildProcess {
  const child = spawn(command, args, {stdio: ['ignore', 'pipe', 'pipe']})
  const chunks: Buffer[] = []
  const keep = (chunk: Buffer) => {
    chunks.push(chunk)
    if (chunks.length > 400) chunks.shift()
  }
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  child.once('exit', () => void writeFile(log, Buffer.concat(chunks)).catch(() => undefined))
  ;(child as ChildProcess & {logTail?: () => string}).logTail = () => Buffer.concat(chunks).toString().slice(-3000)
  return child
}

function tails(children: ChildProcess[]): string {
  return children
    .map((child) => `--- ${child.spawnfile}:\n${(child as ChildProcess & {logTail?: () => string}).logTail?.()}`)
    .join('\n')
}

async function waitForFile(path: string, children: ChildProcess[], dir: string): Promise<Buffer> {
  for (let i = 0; i < 1200; i++) {
    if (children.some((c) => c.exitCode !== null))
      throw new Error(`a server exited while starting (${dir}):\n${tails(children)}`)
    if (existsSync(path)) {
      await sleep(100)
      return readFileSync(path)
    }
    await sleep(100)
  }
  throw new Error(`${path} did not appear within 120s:\n${tails(children)}`)
}

async function waitForReady(api: ApiServer['api'], children: ChildProcess[], dir: string): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    if (children.some((c) => c.exitCode !== null))
      throw new Error(`a server exited while starting (${dir}):\n${tails(children)}`)
    const ready = await api('GET', '/readyz').catch(() => undefined)
    if (ready?.status === 200) {
      // RBAC's bootstrap roles are written just after readiness on a slow machine: wait for the one tests rely on.
      const role = await api('GET', '/apis/rbac.authorization.k8s.io/v1/clusterroles/admin')
      if (role.status === 200) return
    }
    await sleep(250)
  }
  throw new Error(`the API server was not ready within 300s:\n${tails(children)}`)
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const {port} = server.address() as {port: number}
      server.close(() => resolve(port))
    })
  })
}

/**
 * Plays the Deployment controller for one Deployment until `until.settled` (the command it serves ended): whenever a
 * generation has not been observed yet, reports every wanted replica of it updated and available.
 */
export async function becomeAvailable(
  server: ApiServer,
  namespace: string,
  name: string,
  until: {settled: boolean},
): Promise<void> {
  while (!until.settled) {
    const got = await server.api('GET', `/apis/apps/v1/namespaces/${namespace}/deployments/${name}`)
    const replicas = (got.body?.spec?.replicas as number | undefined) ?? 1
    const observed = got.body?.status?.observedGeneration === got.body?.metadata?.generation
    if (got.status === 200 && !(observed && got.body.status.availableReplicas === replicas)) {
      const patched = await server.api(
        'PATCH',
        `/apis/apps/v1/namespaces/${namespace}/deployments/${name}/status`,
        {
          status: {
            observedGeneration: got.body.metadata.generation,
            replicas,
            updatedReplicas: replicas,
            readyReplicas: replicas,
            availableReplicas: replicas,
            conditions: [{type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable'}],
          },
        },
        'application/merge-patch+json',
      )
      if (patched.status !== 200) throw new Error(`status of ${name}: ${JSON.stringify(patched.body).slice(0, 500)}`)
    }
    await sleep(200)
  }
}

/** Runs a command while playing the controller of the version's Deployment, until the command ends. */
export async function whileAvailable<T>(
  server: ApiServer,
  namespace: string,
  deployment: string,
  command: Promise<T>,
): Promise<T> {
  const until = {settled: false}
  void command.finally(() => (until.settled = true)).catch(() => undefined)
  const [result] = await Promise.all([command, becomeAvailable(server, namespace, deployment, until)])
  return result
}

/** A kubeconfig for an API server at `server` (nothing may listen there), for the unreachable-cluster errors. */
export async function kubeconfigFor(dir: string, server: string): Promise<string> {
  const path = join(dir, `kubeconfig-${new URL(server).port}`)
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{name: 'nowhere', cluster: {server, 'insecure-skip-tls-verify': true}}],
    users: [{name: 'someone', user: {token: 'not-a-real-token'}}],
    contexts: [{name: 'nowhere', context: {cluster: 'nowhere', user: 'someone'}}],
    'current-context': 'nowhere',
  }
  await writeFile(path, stringify(config), {mode: 0o600})
  return path
}
