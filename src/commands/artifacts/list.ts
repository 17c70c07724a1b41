import {Flags} from '@oclif/core'

import {type ListResult, listArtifacts} from '../../artifact/inspect.js'
import {BaseCommand} from '../../base-command.js'
import {formatBytes, table} from '../../system/format.js'

export default class ArtifactsList extends BaseCommand {
  static override summary = 'List the artifacts in the project store.'
  static override description = 'Exit codes: 0 ok, 2 usage or configuration error.'
  static override examples = ['<%= config.bin %> artifacts list', '<%= config.bin %> artifacts list --json']
  static override flags = {
    name: Flags.string({description: 'Only artifacts of this name.'}),
  }

  async run(): Promise<ListResult> {
    const {flags} = await this.parse(ArtifactsList)
    const result = await listArtifacts({dir: flags.dir, name: flags.name})
    if (result.artifacts.length === 0)
      this.say(
        flags.name
          ? `no artifacts named ${flags.name} (without --name, every stored artifact is listed)`
          : 'no artifacts yet: run "mlops package"',
      )
    else
      this.say(
        table(
          ['NAME', 'VERSION', 'DIGEST', 'SIZE', 'GIT', 'STORED'],
          result.artifacts.map((a) => [
            a.name,
            a.version,
            a.digest.slice(0, 19),
            formatBytes(a.size),
            a.git ? `${a.git.commit?.slice(0, 8) ?? ''}${a.git.dirty ? '+dirty' : ''}` : '-',
            a.storedAt,
          ]),
        ),
      )
    return result
  }
}
