import {Args, Flags} from '@oclif/core'

import {SCOPES, type Scope} from '../../auth/config.js'
import {type KeyInfo, createKey, projectKeysFile} from '../../auth/keys.js'
import {BaseCommand} from '../../base-command.js'
import {UsageError} from '../../errors.js'

export type KeysCreateResult = KeyInfo & {key: string}

export default class KeysCreate extends BaseCommand {
  static override summary = 'Make an API key for the model server and the gateway (shown once).'
  static override description = `The key is printed once (as "key" with --json) and kept only as a salted scrypt hash in serving.auth.keys_file (default .mlops/keys.json, mode 0600). Clients send it as "Authorization: Bearer KEY"; a running server accepts it within a second.

Exit codes: 0 made, 2 usage error (bad name or scope, a key of that name exists).`

  static override examples = [
    '<%= config.bin %> keys create billing --scope predict',
    '<%= config.bin %> keys create labeller --scope feedback --rate-limit 5 --json',
  ]

  static override args = {
    name: Args.string({description: 'A name for the key: who holds it (logged as the caller).', required: true}),
  }

  static override flags = {
    scope: Flags.string({
      description: `What the key may do, comma separated: ${SCOPES.join(', ')}.`,
      default: 'predict',
    }),
    'rate-limit': Flags.integer({description: 'Requests per second this key may make (429 past it).', min: 1}),
  }

  async run(): Promise<KeysCreateResult> {
    const {args, flags} = await this.parse(KeysCreate)
    const scopes = flags.scope.split(',').map((s) => s.trim())
    const unknown = scopes.filter((s) => !SCOPES.includes(s as Scope))
    if (unknown.length > 0 || scopes.length === 0)
      throw new UsageError('SCOPE_INVALID', `unknown scope "${unknown[0] ?? ''}"`, {
        hint: `Pass --scope with some of ${SCOPES.join(',')}.`,
      })
    const file = await projectKeysFile(flags.dir)
    const {key, info} = await createKey(file, {
      name: args.name,
      scopes: scopes as Scope[],
      ratePerSecond: flags['rate-limit'],
    })
    this.say(`${key}\n\nThe key for "${info.name}" (${info.scopes.join(', ')}): keep it now, it is not shown again.`)
    return {...info, key}
  }
}
