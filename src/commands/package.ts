import {Flags} from '@oclif/core'

import {NO_GOLDEN_WARNING, type PackageResult, packageProject} from '../artifact/package.js'
import {BaseCommand} from '../base-command.js'
import {formatBytes} from '../system/format.js'
import {Progress, colorEnabled, colors} from '../system/terminal.js'

export default class Package extends BaseCommand {
  static override summary = 'Package the model and its pipeline into a versioned, content-addressed artifact.'
  static override description = `Loads the model with onnxruntime-node, refuses what Node cannot serve, freezes the pipeline (fitting statistics from the reference data), runs the golden cases, profiles the reference data as the drift baseline, and stores a deterministic tar archive whose sha256 is the artifact id.

Exit codes: 0 packaged (or already packaged with the same content), 1 golden cases failed or the model cannot be served, 2 usage or configuration error.`

  static override examples = [
    '<%= config.bin %> package',
    '<%= config.bin %> package --bump minor',
    '<%= config.bin %> package --version 1.2.0 --git-tag --json',
  ]

  static override flags = {
    version: Flags.string({
      description: 'Version to package as (semver). Default: version in mlops.yaml.',
      exclusive: ['bump'],
    }),
    bump: Flags.string({
      description: 'Bump the newest stored version (or the one in mlops.yaml).',
      options: ['patch', 'minor', 'major'],
    }),
    'git-tag': Flags.boolean({description: 'Create an annotated git tag NAME-vVERSION pointing at HEAD.'}),
  }

  async run(): Promise<PackageResult> {
    const {flags} = await this.parse(Package)
    const progress = new Progress('packaging', this.showProgress)
    const result = await packageProject({
      dir: flags.dir,
      version: flags.version,
      bump: flags.bump as 'major' | 'minor' | 'patch' | undefined,
      gitTag: flags['git-tag'],
      onProgress: (step) => progress.update(0, step),
    })
    progress.done()
    const noGolden = result.golden.total === 0
    for (const warning of result.warnings) if (!(noGolden && warning.startsWith(NO_GOLDEN_WARNING))) this.warn(warning)
    this.say(`${result.created ? 'packaged' : 'already packaged'} ${result.name}@${result.version} ${result.digest}`)
    this.say(
      `  ${formatBytes(result.size)}, golden cases ${result.golden.passed}/${result.golden.total} passed${result.git ? `, git ${result.git.commit?.slice(0, 8) ?? '?'}${result.git.dirty ? ' (dirty)' : ''}` : ''}${result.tag ? `, tag ${result.tag}` : ''}`,
    )
    this.say(`  next: mlops serve ${result.version}   |   mlops test ${result.version}`)
    // Said last and on stderr, where it is not lost among the lines above (as init says it).
    const c = colors(colorEnabled(process.stderr))
    const loud = (text: string) => c.bold(c.yellow(text))
    if (noGolden)
      this.logToStderr(
        `\n${loud('NO GOLDEN CASES')}: ${result.name}@${result.version} holds no golden cases, so "mlops test" has no regression baseline and cannot tell when a model answers differently.\nAdd cases to the file data.golden names in mlops.yaml (or run "mlops init --sample FILE"), then package again.\n`,
      )
    return result
  }
}
