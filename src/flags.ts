// Flags that more than one command takes, parsed the same way everywhere.
import {Flags} from '@oclif/core'

import {UsageError} from './errors.js'
import {DURATION_EXAMPLES, parseDuration} from './system/duration.js'

/**
 * A duration flag, in milliseconds: `20s`, `1.5m`, `500ms`. A bare number is seconds, as these flags took before they
 * took units. `min` is in milliseconds too.
 */
export const durationFlag = Flags.custom<number, {min?: number}>({
  helpValue: '<duration>',
  async parse(input, _context, {min = 0}) {
    const ms = /^\d+(\.\d+)?$/.test(input.trim()) ? Number(input) * 1000 : parseDuration(input)
    if (ms === undefined)
      throw new UsageError('DURATION_INVALID', `"${input}" is not a duration`, {
        hint: `Write a number and a unit: ${DURATION_EXAMPLES} (a bare number is seconds).`,
      })
    if (ms < min)
      throw new UsageError('DURATION_INVALID', `"${input}" is shorter than ${min / 1000}s`, {
        hint: `Give a duration of at least ${min / 1000}s.`,
      })
    return ms
  },
})
