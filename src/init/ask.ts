// Asks on a terminal for what `mlops init` was not told on the command line; every question is also a flag.
import {input, select} from '@inquirer/prompts'

import {MlopsError} from '../errors.js'
import {loadModel} from '../model/signature.js'
import {defaultProjectName, modelFileProblem, projectNameProblem} from './project.js'
import {type TemplateKind, TEMPLATE_KINDS, detectTemplate} from './suggest.js'

export interface InitAnswers {
  model?: string
  name?: string
  template?: TemplateKind
}

const TEMPLATE_DESCRIPTIONS: Record<TemplateKind, string> = {
  tabular: 'columns: one feature per value, named in requests',
  image: 'one image tensor [N,C,H,W] per request',
  tensor: 'one raw tensor per model input',
}

/** The template the model's signature suggests, or undefined when it does not load (init then says why). */
async function suggestedTemplate(model: string): Promise<TemplateKind | undefined> {
  try {
    const loaded = await loadModel(model)
    await loaded.session.release()
    return detectTemplate(loaded.signature)
  } catch {
    return undefined
  }
}

/** Prompts go to stderr, so `--json` output on stdout stays one JSON document. */
export async function askInitAnswers(dir: string, given: InitAnswers): Promise<InitAnswers> {
  const context = {output: process.stderr}
  try {
    const model =
      given.model ??
      (
        await input(
          {
            message: 'Path to the ONNX model',
            validate: async (value) => (await modelFileProblem(value.trim())) ?? true,
          },
          context,
        )
      ).trim()
    const name =
      given.name ??
      (
        await input(
          {
            message: 'Project name',
            default: defaultProjectName(dir, model),
            validate: (value) => projectNameProblem(value.trim()) ?? true,
          },
          context,
        )
      ).trim()
    let template = given.template
    if (!template) {
      const suggested = await suggestedTemplate(model)
      if (suggested) {
        const choices = TEMPLATE_KINDS.map((kind) => ({
          value: kind,
          name: kind === suggested ? `${kind} (suggested by the model's inputs)` : kind,
          description: TEMPLATE_DESCRIPTIONS[kind],
        }))
        template = await select({message: 'Project template', choices, default: suggested}, context)
      }
    }
    return {model, name, template}
  } catch (error) {
    if ((error as Error).name === 'ExitPromptError')
      throw new MlopsError('CANCELLED', 'mlops init was cancelled: nothing was written', {
        hint: 'Run "mlops init DIR --model PATH --yes" to skip the questions.',
      })
    throw error
  }
}
