// The base of every command: JSON mode, error rendering with codes and hints, and quiet rules for CI.
import {Command, Errors, Flags} from '@oclif/core'

import {ExitCode, MlopsError, isMlopsError} from './errors.js'
import {type Colors, PLAIN, colorEnabled, colors, isInteractive} from './system/terminal.js'

export abstract class BaseCommand extends Command {
  static override enableJsonFlag = true

  static override baseFlags = {
    dir: Flags.directory({
      char: 'C',
      description: 'Project directory (where mlops.yaml lives).',
      default: '.',
      env: 'MLOPS_DIR',
      helpGroup: 'GLOBAL',
    }),
  }

  /** True when a progress bar or spinner may be drawn: a terminal, not CI, not --json. */
  protected get showProgress(): boolean {
    return !this.jsonEnabled() && isInteractive(process.stderr)
  }

  /**
   * Set by a command whose data goes to stdout (predict --output -): its --json result or error then goes to stderr,
   * so the data stays parseable on its own.
   */
  protected dataOnStdout = false

  protected override logJson(json: unknown): void {
    if (this.dataOnStdout) process.stderr.write(JSON.stringify(json, null, 2) + '\n')
    else super.logJson(json)
  }

  /** Styles for human output: colour on a terminal, plain under NO_COLOR, in CI, piped or with --json. */
  protected get colors(): Colors {
    return !this.jsonEnabled() && colorEnabled(process.stdout) ? colors(true) : PLAIN
  }

  /** Human output only: silent in --json mode. */
  protected say(message = ''): void {
    if (!this.jsonEnabled()) this.log(message)
  }

  protected override async catch(error: Error & {exitCode?: number; oclif?: {exit?: number}}): Promise<unknown> {
    const mlopsError = toMlopsError(error)
    if (this.jsonEnabled()) {
      const stream = this.dataOnStdout ? process.stderr : process.stdout
      stream.write(JSON.stringify({error: mlopsError.toJSON()}, null, 2) + '\n')
    } else {
      const hint = mlopsError.hint ? `\nHint: ${mlopsError.hint}` : ''
      process.stderr.write(`Error: ${mlopsError.message}${hint}\n`)
      if (process.env.DEBUG && error.stack) process.stderr.write(error.stack + '\n')
    }
    process.exitCode = mlopsError.exitCode
    throw new Errors.ExitError(mlopsError.exitCode)
  }
}

/** How oclif rewrites the message of an error a flag's parse threw. */
const FLAG_PARSE_WRAPPER = /^Parsing (--\S+) \n\t([\s\S]*)\nSee more help with --help$/

function toMlopsError(error: Error & {oclif?: {exit?: number}}): MlopsError {
  if (isMlopsError(error)) {
    error.message = error.message.replace(FLAG_PARSE_WRAPPER, '$1: $2')
    return error
  }
  // oclif's own parse errors (unknown flag, missing argument) are usage errors.
  if (error instanceof Errors.CLIError || error.oclif?.exit === 2) {
    return new MlopsError('USAGE', error.message.replace(/^Error: /, ''), {
      exitCode: ExitCode.usage,
      hint: 'Run the command with --help to see its flags.',
    })
  }
  return new MlopsError('INTERNAL', error.message || String(error), {
    exitCode: ExitCode.failed,
    hint: 'Run again with DEBUG=* for details; if it persists, report it with the output.',
  })
}
