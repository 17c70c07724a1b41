// The one way a duration is written, in flags and in mlops.yaml alike: a number (decimals allowed) and a unit.
// schemas/config/duration.schema.json holds the same pattern for the config files.
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/
const UNIT_MS: Record<string, number> = {ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000}

/** What to tell someone who wrote something else. */
export const DURATION_EXAMPLES = '500ms, 10s, 1.5m, 24h or 7d'

/** `500ms`, `2.5s`, `30m`, `24h`, `7d` → milliseconds; undefined when it is not a duration. */
export function parseDuration(text: string): number | undefined {
  const m = DURATION.exec(text.trim())
  return m ? Number(m[1]) * UNIT_MS[m[2]] : undefined
}
