import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {UsageError} from '../errors.js'
import {askInitAnswers} from '../init/ask.js'
import {parseShapeFlags} from '../init/inputs.js'
import {type InitResult, initProject} from '../init/project.js'
import {type TemplateKind, TEMPLATE_KINDS} from '../init/suggest.js'
import {isInteractive} from '../system/terminal.js'

export default class Init extends BaseCommand {
  static override summary = 'Scaffold a deployment project around a trained ONNX model.'
  static override description = `Reads the model's signature with onnxruntime-node, picks a template (tabular, image or tensor), and writes mlops.yaml with a starting pipeline, the model under model/, golden.jsonl seeded with the model's own answers, a Dockerfile and CI workflows (GitHub Actions, GitLab CI). Files that exist are left alone: running init again changes nothing.

On a terminal it asks for what the flags do not give; with --yes or without a terminal it never asks.

Exit codes: 0 project written (or already there), 1 the model cannot be served from Node, 2 usage error (a missing or invalid flag, a bad --sample file).`

  static override examples = [
    '<%= config.bin %> init credit-risk --model ./model.onnx',
    '<%= config.bin %> init ocr --model cls.onnx --template image --shape x=1,3,48,192 --yes',
    '<%= config.bin %> init vad --model silero.onnx --sample samples.jsonl --json',
  ]

  static override args = {
    dir: Args.directory({
      description: 'Project directory to create or complete (default: --dir, else the current one).',
    }),
  }

  static override flags = {
    model: Flags.file({
      char: 'm',
      description: 'The trained ONNX (or .ort) model; copied into model/ unless it is inside DIR.',
      env: 'MLOPS_MODEL',
    }),
    name: Flags.string({
      description: 'Project, artifact and image name (lowercase). Default: the directory name.',
      env: 'MLOPS_NAME',
    }),
    template: Flags.string({
      description: "Project template. Default: chosen from the model's inputs.",
      options: [...TEMPLATE_KINDS],
      env: 'MLOPS_TEMPLATE',
    }),
    shape: Flags.string({
      description: 'Full shape of an input with dynamic dimensions for the generated golden inputs, e.g. x=1,3,48,192.',
      multiple: true,
    }),
    sample: Flags.file({
      description:
        'Real inputs to seed golden.jsonl with: {"samples": [{name, inputs}]} JSON or {name?, inputs} JSONL.',
      exists: true,
    }),
    yes: Flags.boolean({
      char: 'y',
      description: 'Never ask: take every default, fail when --model is missing.',
      env: 'MLOPS_YES',
    }),
  }

  async run(): Promise<InitResult> {
    const {args, flags} = await this.parse(Init)
    const dir = args.dir ?? flags.dir
    const shapes = parseShapeFlags(flags.shape ?? [])
    const given = {model: flags.model, name: flags.name, template: flags.template as TemplateKind | undefined}
    const answers =
      !flags.yes && isInteractive(process.stdin) && isInteractive(process.stderr)
        ? await askInitAnswers(dir, given)
        : given
    if (!answers.model) {
      throw new UsageError(
        'INIT_MISSING_ANSWERS',
        'mlops init needs the model to serve, and there is no terminal to ask on (or --yes was given)',
        {
          hint: `Pass the answers as flags: mlops init ${dir === '.' ? '' : dir + ' '}--model PATH/TO/model.onnx [--name NAME] [--template ${TEMPLATE_KINDS.join('|')}] [--sample FILE] [--shape INPUT=D0,D1,…] (or set MLOPS_MODEL).`,
        },
      )
    }
    const result = await initProject({
      dir,
      model: answers.model,
      name: answers.name,
      template: answers.template,
      shapes,
      sample: flags.sample,
    })
    for (const warning of result.warnings) this.warn(warning)
    this.say(`${result.name}: ${result.template} project in ${result.dir}`)
    const goldenNote =
      result.golden > 0
        ? ` (${result.golden} case${result.golden === 1 ? '' : 's'} with the model's answers)`
        : ' (empty: seed it with --sample FILE)'
    for (const file of result.created) this.say(`  created  ${file}${file === 'golden.jsonl' ? goldenNote : ''}`)
    for (const file of result.skipped) this.say(`  exists   ${file} (left alone)`)
    this.say('inferred from running the model (edit mlops.yaml to change):')
    for (const item of result.inferred)
      this.say(`  ${item.kind.padEnd(7)}  ${item.name}: ${item.decision} (${item.why})`)
    // Said last and on stderr, where it is not lost among the files: without golden cases "mlops test" has no baseline.
    if (result.noGolden)
      this.logToStderr(
        `\nNO GOLDEN CASES: golden.jsonl is empty because ${result.noGolden}. "mlops test" has no regression baseline until it holds cases.\n`,
      )
    this.say(`next: ${dir === '.' ? '' : `cd ${dir} && `}mlops package   then   mlops serve   |   mlops test`)
    return result
  }
}
