// The command-line side of registry access, shared by push and pull (kept out of src/registry, which takes no flags).
import {Flags} from '@oclif/core'

import {UsageError} from './errors.js'
import type {RegistryAccess} from './registry/client.js'

export const registryFlags = {
  username: Flags.string({description: 'Registry user; the password or token comes from --password-stdin.'}),
  'password-stdin': Flags.boolean({description: 'Read the password or token from stdin (never from a flag).'}),
  'tls-verify': Flags.string({
    description: "Verify the registry's TLS certificate.",
    options: ['true', 'false'],
    default: 'true',
    env: 'MLOPS_REGISTRY_TLS_VERIFY',
  }),
  'ca-file': Flags.file({
    description: 'PEM file of CA certificates to trust for the registry.',
    exists: true,
    env: 'MLOPS_REGISTRY_CA_FILE',
  }),
  'plain-http': Flags.boolean({
    description: 'Plain HTTP for a registry not on this machine (localhost and 127.0.0.1 need no flag).',
    env: 'MLOPS_REGISTRY_PLAIN_HTTP',
  }),
}

interface RegistryFlagValues {
  username?: string
  'password-stdin'?: boolean
  'tls-verify': string
  'ca-file'?: string
  'plain-http'?: boolean
}

/** A password longer than this is not a password. */
const MAX_PASSWORD = 64 * 1024

export async function accessFromFlags(
  flags: RegistryFlagValues,
  stdin: NodeJS.ReadableStream = process.stdin,
): Promise<RegistryAccess> {
  if (Boolean(flags.username) !== Boolean(flags['password-stdin']))
    throw new UsageError('CREDENTIALS_INCOMPLETE', '--username and --password-stdin go together', {
      hint: 'echo "$TOKEN" | mlops artifacts push REF REGISTRY/REPOSITORY --username USER --password-stdin',
    })
  const access: RegistryAccess = {
    tlsVerify: flags['tls-verify'] !== 'false',
    plainHttp: flags['plain-http'],
    ...(flags['ca-file'] ? {caFile: flags['ca-file']} : {}),
  }
  if (!flags.username) return access
  let password = ''
  for await (const chunk of stdin) {
    password += String(chunk)
    if (password.length > MAX_PASSWORD)
      throw new UsageError('PASSWORD_INVALID', `stdin held more than ${MAX_PASSWORD} bytes: not a password`, {
        hint: 'Pipe only the password or token into --password-stdin.',
      })
  }
  password = password.replace(/\r?\n$/, '')
  if (!password)
    throw new UsageError('PASSWORD_INVALID', '--password-stdin read an empty password', {
      hint: 'Pipe the password or token in: echo "$TOKEN" | mlops … --password-stdin',
    })
  return {...access, credentials: {username: flags.username, password, source: '--username/--password-stdin'}}
}
