// Columns a file carries that the model does not read (an id, the label): left out of each record and listed once, so
// a batch file need not be cut down to the features first. With --strict they are kept, and the pipeline refuses them.
import type {InputRecord} from '../pipeline/types.js'

export class ExtraColumns {
  private readonly seen = new Set<string>()
  private readonly accepted?: ReadonlySet<string>

  /** `requestSchema`: the pipeline's schema of one record; one that takes any field leaves every record whole. */
  constructor(requestSchema: Record<string, unknown>) {
    if (requestSchema.additionalProperties === false)
      this.accepted = new Set(Object.keys(requestSchema.properties ?? {}))
  }

  /** The record without the fields the model does not read (the same object when it has none). */
  strip(record: InputRecord): InputRecord {
    if (!this.accepted) return record
    let kept: InputRecord | undefined
    for (const key of Object.keys(record)) {
      if (this.accepted.has(key)) continue
      this.seen.add(key)
      kept ??= {...record}
      delete kept[key]
    }
    return kept ?? record
  }

  /** The columns left out so far, in the order first seen. */
  get ignored(): string[] {
    return [...this.seen]
  }
}

/** The one warning for the columns left out. */
export function ignoredColumnsWarning(columns: string[]): string {
  return `ignored ${columns.length === 1 ? 'the column' : `${columns.length} columns`} the model does not read: ${columns.join(', ')} (--strict refuses them)`
}
