// Credentials found where container tools keep them: auth files in their order, and a real credential helper process.
import assert from 'node:assert/strict'
import {chmod, mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {findCredentials} from '../../src/registry/auth.js'
import {tempDir} from '../support/cli.js'

describe('registry credentials from auth files and credential helpers', () => {
  let dir: {path: string; remove: () => Promise<void>}
  let env: NodeJS.ProcessEnv
  beforeEach(async () => {
    dir = await tempDir('mlops-auth-')
    env = {HOME: dir.path, PATH: `${join(dir.path, 'bin')}:${process.env.PATH ?? ''}`}
    await mkdir(join(dir.path, '.docker'), {recursive: true})
    await mkdir(join(dir.path, 'bin'))
  })
  afterEach(async () => dir.remove())

  const dockerConfig = (value: unknown) => writeFile(join(dir.path, '.docker', 'config.json'), JSON.stringify(value))

  it('reads a base64 auth from ~/.docker/config.json, under any spelling of the registry key', async () => {
    await dockerConfig({auths: {'https://ghcr.io/v1/': {auth: Buffer.from('octo:ghp_secret').toString('base64')}}})
    const found = await findCredentials('ghcr.io', env)
    assert.equal(found?.username, 'octo')
    assert.equal(found?.password, 'ghp_secret')
    assert.match(found?.source ?? '', /\.docker\/config\.json/)
    assert.equal(await findCredentials('quay.io', env), undefined)
  })

  it('$REGISTRY_AUTH_FILE comes before Docker config, as in skopeo and podman', async () => {
    await dockerConfig({auths: {'ghcr.io': {auth: Buffer.from('docker:one').toString('base64')}}})
    const authFile = join(dir.path, 'auth.json')
    await writeFile(
      authFile,
      JSON.stringify({auths: {'ghcr.io': {auth: Buffer.from('podman:two').toString('base64')}}}),
    )
    assert.equal((await findCredentials('ghcr.io', {...env, REGISTRY_AUTH_FILE: authFile}))?.username, 'podman')
  })

  it('asks the credential helper named in credHelpers, with the registry on stdin', async () => {
    const helper = join(dir.path, 'bin', 'docker-credential-fake')
    await writeFile(
      helper,
      '#!/bin/sh\nread host\n[ "$1" = get ] && [ "$host" = "registry.example.com" ] && echo \'{"Username":"bot","Secret":"from-helper"}\' && exit 0\necho "credentials not found in native keychain"; exit 1\n',
    )
    await chmod(helper, 0o755)
    await dockerConfig({credHelpers: {'registry.example.com': 'fake', 'other.example.com': 'fake'}})
    const found = await findCredentials('registry.example.com', env)
    assert.deepEqual([found?.username, found?.password], ['bot', 'from-helper'])
    assert.equal(await findCredentials('other.example.com', env), undefined)
  })

  it('a config file that is not JSON is named, not a stack trace', async () => {
    await writeFile(join(dir.path, '.docker', 'config.json'), '{not json')
    await assert.rejects(findCredentials('ghcr.io', env), /config\.json is not valid JSON/)
  })
})
