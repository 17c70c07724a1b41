import {Args, Flags} from '@oclif/core'

import {exportArtifact} from '../../artifact/inspect.js'
import type {ExportResult} from '../../artifact/store.js'
import {BaseCommand} from '../../base-command.js'

export default class ArtifactsExport extends BaseCommand {
  static override summary =
    'Copy an artifact archive out of the store (verified after copying), e.g. for another machine or an image.'
  static override description =
    'Exit codes: 0 exported, 1 the artifact fails verification, 2 usage error or no such artifact.'
  static override examples = [
    '<%= config.bin %> artifacts export 1.1.0 --output dist/',
    '<%= config.bin %> artifacts export --output model.tar --json',
  ]
  static override args = {ref: Args.string({description: 'Version, NAME@VERSION or digest; default the newest.'})}
  static override flags = {
    output: Flags.string({
      char: 'o',
      description: 'File to write, or a folder to write NAME-VERSION.tar into.',
      required: true,
    }),
  }

  async run(): Promise<ExportResult> {
    const {args, flags} = await this.parse(ArtifactsExport)
    const result = await exportArtifact({dir: flags.dir, ref: args.ref, output: flags.output})
    this.say(`exported ${result.name}@${result.version} ${result.digest} to ${result.path}`)
    return result
  }
}
