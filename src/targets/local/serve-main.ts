// `mlops serve` run straight from its command class, for the gateway when it runs from the sources: no oclif manifest to go stale.
import Serve from '../../commands/serve.js'

try {
  await Serve.run(process.argv.slice(2), import.meta.url)
} catch (error) {
  // BaseCommand has printed the error and set process.exitCode; oclif's ExitError only carries it.
  process.exitCode ??= (error as {oclif?: {exit?: number}}).oclif?.exit ?? 1
}
