import {Args} from '@oclif/core'

import {verifyArtifact} from '../../artifact/inspect.js'
import {verificationError} from '../../artifact/verification.js'
import type {VerifyReport} from '../../artifact/store.js'
import {BaseCommand} from '../../base-command.js'

export default class ArtifactsVerify extends BaseCommand {
  static override summary =
    'Re-check every digest of an artifact: the archive against its id, each file against the manifest.'
  static override description =
    'Exit codes: 0 intact, 1 it fails verification (every problem is listed), 2 usage error or no such artifact.'
  static override examples = [
    '<%= config.bin %> artifacts verify 1.1.0',
    '<%= config.bin %> artifacts verify ./credit-risk-1.1.0.tar --json',
  ]
  static override args = {
    ref: Args.string({description: 'Version, NAME@VERSION, digest or .tar path; default the newest.'}),
  }

  async run(): Promise<VerifyReport> {
    const {args, flags} = await this.parse(ArtifactsVerify)
    const report = await verifyArtifact({dir: flags.dir, ref: args.ref})
    if (!report.ok) throw verificationError(report)
    this.say(`ok: ${report.name}@${report.version} ${report.digest}: every file matches the manifest`)
    return report
  }
}
