import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {accessFromFlags, registryFlags} from '../../registry-flags.js'
import {type PushResult, pushArtifact} from '../../registry/push.js'
import {formatBytes} from '../../system/format.js'
import {Progress} from '../../system/terminal.js'

export default class ArtifactsPush extends BaseCommand {
  static override summary =
    'Push an artifact to an OCI registry (CNCF ModelPack layout); prints REGISTRY/REPOSITORY@sha256:….'
  static override description =
    'The artifact is verified, then sent as one uncompressed tar layer; blobs the registry has are not sent again, and the same artifact always gives the same digest. Credentials come from --username/--password-stdin, $REGISTRY_AUTH_FILE, containers auth.json or ~/.docker/config.json (and their credential helpers).\n\nExit codes: 0 pushed, 1 the registry refused or could not be reached, 2 usage error or no such artifact.'
  static override examples = [
    '<%= config.bin %> artifacts push 1.2.0 ghcr.io/acme/credit-risk:1.2.0',
    'echo "$GITHUB_TOKEN" | <%= config.bin %> artifacts push latest ghcr.io/acme/credit-risk:1.2.0 --username "$GITHUB_ACTOR" --password-stdin --json',
  ]
  static override args = {
    ref: Args.string({description: 'Version, NAME@VERSION, digest or .tar path.', required: true}),
    target: Args.string({description: 'REGISTRY/REPOSITORY[:TAG].', required: true}),
  }
  static override flags = {
    ...registryFlags,
    'as-image': Flags.boolean({description: 'Push as a plain image layer, for registries that refuse artifact types.'}),
  }

  async run(): Promise<PushResult> {
    const {args, flags} = await this.parse(ArtifactsPush)
    const progress = new Progress('pushing', this.showProgress)
    const result = await pushArtifact({
      dir: flags.dir,
      ref: args.ref,
      target: args.target,
      access: await accessFromFlags(flags),
      asImage: flags['as-image'],
      onProgress: ({done, total}) => progress.update(done, `${formatBytes(done)} / ${formatBytes(total)}`),
    })
    progress.done()
    const sent = result.blobs.filter((b) => b.sent)
    this.say(
      `pushed ${result.artifact.name}@${result.artifact.version}${result.tag ? ` as :${result.tag}` : ''} (${sent.length ? `${sent.length} blob(s), ${formatBytes(sent.reduce((n, b) => n + b.size, 0))} sent` : 'every blob was there already'})`,
    )
    this.say(result.reference)
    return result
  }
}
