import {relative} from 'node:path'

import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {type BuildResult, buildImage} from '../image/build.js'
import {ENGINE_NAMES, type EngineName} from '../image/config.js'
import {formatBytes} from '../system/format.js'
import {parseKeyValues} from '../system/key-values.js'

export default class Build extends BaseCommand {
  static override summary =
    'Build an OCI image that serves an artifact with "mlops serve", with docker, podman or buildah; optionally push it.'
  static override description = `Writes the build context to .mlops/build/NAME-VERSION/ (the Dockerfile from mlops' template, this mlops runtime with its production dependencies, the artifact as artifact.tar) and builds it. A Dockerfile named by image.dockerfile in mlops.yaml or --dockerfile is built instead (the one "mlops init" writes is used only when named), with the project as context and the artifact exported to .mlops/export/artifact.tar.

Registry credentials are the engine's own ("docker login"); mlops never reads them.

Exit codes: 0 built (and pushed), 1 the engine failed or none was found, or the artifact fails verification, 2 usage or configuration error.`

  static override examples = [
    '<%= config.bin %> build',
    '<%= config.bin %> build 1.2.0 --engine buildah --tag registry.example.com/ml/credit-risk:1.2.0 --push --json',
    '<%= config.bin %> build --push --tag 127.0.0.1:5000/credit-risk --no-tls-verify',
  ]

  static override args = {
    ref: Args.string({
      description: 'Artifact: a version, name@version, digest or .tar path. Default: the newest in the project store.',
      ignoreStdin: true,
    }),
  }

  static override flags = {
    engine: Flags.string({
      description: 'Build engine. Default: image.engine, else docker (when its daemon answers), podman, buildah.',
      options: [...ENGINE_NAMES],
      env: 'MLOPS_ENGINE',
    }),
    tag: Flags.string({
      char: 't',
      description: 'Image reference [REGISTRY/]PATH[:TAG]; the tag defaults to the artifact version. Repeat for more.',
      multiple: true,
    }),
    'base-image': Flags.string({
      description:
        'Base image of the generated Dockerfile (pin it by digest). Default: image.base_image or node:20-bookworm-slim by digest.',
    }),
    dockerfile: Flags.string({
      description: 'Build this Dockerfile (relative to the project) with the project as context.',
    }),
    'build-arg': Flags.string({
      description: 'KEY=VALUE passed to the build; repeat for more. Not for secrets: they stay readable in the image.',
      multiple: true,
    }),
    locale: Flags.boolean({
      description:
        'Add the en_US.UTF-8 locale (Debian-based images; --no-locale for others). Default: image.locale or true.',
      allowNo: true,
    }),
    push: Flags.boolean({description: 'Push every tag to its registry after building.'}),
    'tls-verify': Flags.boolean({
      description: 'Verify the registry certificate when pushing (podman, buildah). Default: image.tls_verify or true.',
      allowNo: true,
    }),
    'buildah-vfs': Flags.boolean({
      description: 'buildah: vfs storage and chroot isolation, for containers and CI runners without overlay.',
      env: 'MLOPS_BUILDAH_VFS',
    }),
  }

  async run(): Promise<BuildResult> {
    const {args, flags} = await this.parse(Build)
    const result = await buildImage({
      dir: flags.dir,
      ref: args.ref,
      engine: flags.engine as EngineName | undefined,
      tags: flags.tag,
      baseImage: flags['base-image'],
      dockerfile: flags.dockerfile,
      buildArgs: parseKeyValues('build-arg', flags['build-arg'] ?? [], 'HTTP_PROXY=http://proxy:3128'),
      locale: flags.locale,
      push: flags.push,
      tlsVerify: flags['tls-verify'],
      buildahVfs: flags['buildah-vfs'] || undefined,
      // The engine's own log, as "docker build" shows it, between our steps; --json stays one document on stdout.
      onLine: this.jsonEnabled() ? undefined : (line) => process.stderr.write(`${line}\n`),
      onProgress: this.jsonEnabled() ? undefined : (step) => process.stderr.write(`mlops build: ${step}\n`),
    })
    for (const warning of [...result.skippedEngines.map((s) => `passed over ${s}`), ...result.warnings])
      this.warn(warning)
    this.say(
      `built ${result.reference} with ${result.engine}: ${result.imageId.slice(0, 19)}, ${formatBytes(result.size)}, ${result.layers.length} layers`,
    )
    this.say(
      `  ${result.name}@${result.version} ${result.artifactDigest}; Dockerfile ${relative(process.cwd(), result.dockerfile) || result.dockerfile}${result.generated ? '' : ' (your own)'}`,
    )
    for (const pushed of result.pushed) this.say(`  pushed ${pushed.tag}: ${pushed.reference}`)
    this.say(
      `  next: ${result.pushed.length > 0 ? `mlops deploy ${result.version}` : `docker run -p 8080:8080 ${result.reference}   |   mlops build ${result.version} --push`}`,
    )
    return result
  }
}
