// Debian's docker-registry on 127.0.0.1, anonymous or with htpasswd Basic auth over TLS (certificates made by openssl).
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import {Agent, request} from 'undici'

import {run, which} from '../../src/system/exec.js'
import {freePort, waitFor} from '../image/helpers.js'

export interface TestRegistry {
  /** 127.0.0.1:PORT */
  address: string
  /** Where the registry keeps blobs (to tamper with them). */
  storage: string
  /** The CA file to trust, when over TLS, alone in its folder (skopeo's --cert-dir). */
  caFile?: string
  certDir?: string
  /** Requests the registry logged so far, as "METHOD /path". */
  requests: () => string[]
  stop: () => Promise<void>
}

export const USER = 'ci-bot'
export const PASSWORD = 'correct horse battery staple'

/** Why the registry tests cannot run here, or undefined. */
export async function registryToolsMissing(): Promise<string | undefined> {
  for (const tool of ['docker-registry', 'skopeo', 'htpasswd', 'openssl'])
    if (!(await which(tool)))
      return `${tool} is not installed (apt-get install docker-registry skopeo apache2-utils openssl)`
  return undefined
}

export async function startTestRegistry(secure: boolean): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'mlops-test-oci-'))
  const port = await freePort()
  const address = `127.0.0.1:${port}`
  const storage = join(dir, 'data')
  let extra = ''
  let caFile: string | undefined
  const certDir = join(dir, 'certs')
  if (secure) {
    await mkdir(certDir)
    caFile = join(certDir, 'ca.crt')
    const key = join(dir, 'registry.key')
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      caFile,
    ])
    const htpasswd = join(dir, 'htpasswd')
    await writeFile(htpasswd, (await run('htpasswd', ['-Bbn', USER, PASSWORD])).stdout + '\n')
    extra = `  tls:\n    certificate: ${caFile}\n    key: ${key}\nauth:\n  htpasswd:\n    realm: mlops-test\n    path: ${htpasswd}\n`
  }
  const config = join(dir, 'config.yml')
  await writeFile(
    config,
    `version: 0.1\nlog:\n  level: info\n  formatter: text\nstorage:\n  filesystem:\n    rootdirectory: ${storage}\n  delete:\n    enabled: true\nhttp:\n  addr: ${address}\n${extra}`,
  )
  let log = ''
  const child = execa('/usr/bin/docker-registry', ['serve', config], {reject: false, all: true})
  child.all?.on('data', (chunk: Buffer) => (log += chunk.toString('utf8')))
  const origin = `${secure ? 'https' : 'http'}://${address}`
  const dispatcher = new Agent({connect: caFile ? {ca: await readFile(caFile, 'utf8')} : {}})
  await waitFor(async () => {
    const answer = await request(`${origin}/v2/`, {dispatcher})
    await answer.body.dump()
    return answer.statusCode === 200 || answer.statusCode === 401
  }, `the registry on ${address}`)
  await dispatcher.close()
  return {
    address,
    storage,
    caFile,
    ...(secure ? {certDir} : {}),
    requests: () =>
      [...log.matchAll(/http\.request\.method=(\w+) .*?http\.request\.uri="([^"]+)"/g)].map((m) => `${m[1]} ${m[2]}`),
    stop: async () => {
      child.kill('SIGTERM')
      await child
      await rm(dir, {recursive: true, force: true})
    },
  }
}
