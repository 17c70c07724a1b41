import {Args} from '@oclif/core'

import {projectStore} from '../../artifact/project.js'
import {BaseCommand} from '../../base-command.js'
import {accessFromFlags, registryFlags} from '../../registry-flags.js'
import {type PullResult, pullArtifact} from '../../registry/pull.js'
import {formatBytes} from '../../system/format.js'
import {Progress} from '../../system/terminal.js'

export default class ArtifactsPull extends BaseCommand {
  static override summary = 'Pull an artifact from an OCI registry into the store, verified before it is kept.'
  static override description =
    "The manifest must match the digest asked for, the layer the manifest, and every file the artifact's own manifest. serve, test, predict, deploy, build and artifacts show take such a reference directly (pulled once, kept by digest).\n\nExit codes: 0 pulled (or already stored), 1 refused (digest mismatch, tampered, unauthorized) or unreachable, 2 usage error or no such repository or tag."
  static override examples = [
    '<%= config.bin %> artifacts pull ghcr.io/acme/credit-risk@sha256:3f2a…',
    '<%= config.bin %> artifacts pull 127.0.0.1:5000/credit-risk:1.2.0 --json',
  ]
  static override args = {
    source: Args.string({description: 'REGISTRY/REPOSITORY@sha256:… or REGISTRY/REPOSITORY:TAG.', required: true}),
  }
  static override flags = {...registryFlags}

  async run(): Promise<PullResult> {
    const {args, flags} = await this.parse(ArtifactsPull)
    const progress = new Progress('pulling', this.showProgress)
    const result = await pullArtifact({
      store: (await projectStore(flags.dir)).store,
      source: args.source,
      access: await accessFromFlags(flags),
      onProgress: ({done, total}) => progress.update(done, `${formatBytes(done)} / ${formatBytes(total)}`),
    })
    progress.done()
    const {artifact} = result
    this.say(
      `${result.cached ? 'already stored' : 'pulled'} ${artifact.name}@${artifact.version} ${artifact.digest} (${formatBytes(artifact.size)})`,
    )
    this.say(result.reference)
    return result
  }
}
