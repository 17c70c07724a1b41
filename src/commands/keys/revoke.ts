import {Args} from '@oclif/core'

import {type KeyInfo, projectKeysFile, revokeKey} from '../../auth/keys.js'
import {BaseCommand} from '../../base-command.js'

export default class KeysRevoke extends BaseCommand {
  static override summary = 'Revoke an API key: running servers refuse it within a second, without a restart.'
  static override description = 'Exit codes: 0 revoked, 2 no active key of that name or id.'
  static override examples = ['<%= config.bin %> keys revoke billing']

  static override args = {
    name: Args.string({description: 'The key name (or id, from "mlops keys list").', required: true}),
  }

  async run(): Promise<KeyInfo> {
    const {args, flags} = await this.parse(KeysRevoke)
    const info = await revokeKey(await projectKeysFile(flags.dir), args.name)
    this.say(`revoked ${info.name} (${info.id})`)
    return info
  }
}
