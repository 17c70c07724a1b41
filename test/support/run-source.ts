// Runs one command from the TypeScript sources in a child process (`node --import tsx run-source.ts NAME ARGS…`),
// independent of a build or of an oclif manifest that a concurrent build is rewriting. NAME is "deploy", "artifacts:list"…
import {fileURLToPath} from 'node:url'

interface RunnableCommand {
  run(argv: string[], options: string): Promise<unknown>
}

const [name, ...argv] = process.argv.slice(2)
const file = new URL(`../../src/commands/${name.replaceAll(':', '/')}.ts`, import.meta.url)
const {default: command} = (await import(fileURLToPath(file))) as {default: RunnableCommand}
try {
  await command.run(argv, import.meta.url)
} catch (error) {
  // BaseCommand has printed the error and set process.exitCode; oclif's ExitError only carries it.
  process.exitCode ??= (error as {oclif?: {exit?: number}}).oclif?.exit ?? 1
}
