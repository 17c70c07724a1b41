// An unknown command answers like every other usage error: exit 2, "Error:" and "Hint:", or the JSON error with --json.
import {Errors, type Hook} from '@oclif/core'
import {closest, distance} from 'fastest-levenshtein'

import {UsageError} from '../errors.js'

const hook: Hook.CommandNotFound = async function ({id, argv}) {
  // With spaces between topic and command, oclif's id runs on into the arguments ("deplyo:1.0.0"): the command is the
  // first word, or the first two under a topic.
  const words = id.split(':')
  const asTyped = words.slice(0, this.config.topics.some((t) => t.name === words[0]) ? 2 : 1).join(' ')
  const known = this.config.commandIDs.map((c) => c.replaceAll(':', ' '))
  const near = known.length > 0 ? closest(asTyped, known) : undefined
  const hint =
    near && distance(asTyped, near) <= 3
      ? `Did you mean "${this.config.bin} ${near}"? "${this.config.bin} --help" lists the commands.`
      : `"${this.config.bin} --help" lists the commands.`
  const error = new UsageError('COMMAND_NOT_FOUND', `there is no command "${asTyped}"`, {hint})
  if (argv?.includes('--json')) process.stdout.write(JSON.stringify({error: error.toJSON()}, null, 2) + '\n')
  else process.stderr.write(`Error: ${error.message}\nHint: ${error.hint}\n`)
  throw new Errors.ExitError(error.exitCode)
}

export default hook
