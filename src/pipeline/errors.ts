// The error a bad request record raises: every problem with its record index and field, for a 400 or a CLI report.
import {ExitCode, MlopsError} from '../errors.js'
import type {RecordIssue} from './types.js'

const SHOWN = 10

export class PipelineInputError extends MlopsError {
  readonly issues: RecordIssue[]

  constructor(issues: RecordIssue[]) {
    const lines = issues.slice(0, SHOWN).map((i) => `  record ${i.index}${i.field ? `, ${i.field}` : ''}: ${i.message}`)
    if (issues.length > SHOWN) lines.push(`  … and ${issues.length - SHOWN} more`)
    super(
      'INPUT_INVALID',
      `${issues.length === 1 ? 'A record is' : `${issues.length} problems:`} not valid input for the model:\n${lines.join('\n')}`,
      {
        exitCode: ExitCode.usage,
        hint: 'Fix the fields above; the record format is the pipeline features in mlops.yaml.',
        details: {issues},
      },
    )
    this.name = 'PipelineInputError'
    this.issues = issues
  }
}
