import {type KeyInfo, listKeys, projectKeysFile} from '../../auth/keys.js'
import {BaseCommand} from '../../base-command.js'
import {table} from '../../system/format.js'

export default class KeysList extends BaseCommand {
  static override summary = 'List the API keys: names, scopes, when made and revoked (never the keys).'
  static override description = 'Exit codes: 0 ok, 2 usage or configuration error.'
  static override examples = ['<%= config.bin %> keys list', '<%= config.bin %> keys list --json']

  async run(): Promise<{keys: KeyInfo[]}> {
    const {flags} = await this.parse(KeysList)
    const keys = await listKeys(await projectKeysFile(flags.dir))
    if (keys.length === 0) this.say('no keys yet: run "mlops keys create NAME --scope predict"')
    else
      this.say(
        table(
          ['NAME', 'ID', 'SCOPES', 'RATE', 'CREATED', 'REVOKED'],
          keys.map((k) => [
            k.name,
            k.id,
            k.scopes.join(','),
            k.rate_per_second ? `${k.rate_per_second}/s` : '-',
            k.created,
            k.revoked ?? '-',
          ]),
        ),
      )
    return {keys}
  }
}
