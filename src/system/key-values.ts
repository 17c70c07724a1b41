// KEY=VALUE pairs from a repeatable flag (--build-arg, --env); a pair without a key is refused as FLAG_INVALID.
import {UsageError} from '../errors.js'

export function parseKeyValues(flag: string, pairs: string[], example: string): Record<string, string> {
  const values: Record<string, string> = {}
  for (const pair of pairs) {
    const eq = pair.indexOf('=')
    if (eq <= 0)
      throw new UsageError(`${flag.toUpperCase().replaceAll('-', '_')}_INVALID`, `--${flag} ${pair} is not KEY=VALUE`, {
        hint: `Pass it as --${flag} KEY=VALUE, e.g. --${flag} ${example}.`,
      })
    values[pair.slice(0, eq)] = pair.slice(eq + 1)
  }
  return values
}
