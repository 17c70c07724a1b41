// Record values to feature values: JSON and CSV cells (always strings) become numbers, booleans or strings, with one missing-value convention.

/** What a coercion returns for a value of the wrong type; NaN (numbers) and MISSING (strings) mean "no value". */
export const INVALID = Symbol('invalid')
export const MISSING = Symbol('missing')

// Plain decimal or exponent notation only: Number() would also take "0x1f", " 12 " and "".
const NUMERIC = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/

/** null, undefined, "" and "NaN" are missing (NaN); "Infinity"/"-Infinity" and numeric strings (CSV) are numbers. */
export function toNumber(value: unknown): number | typeof INVALID {
  if (typeof value === 'number') return value
  if (value === null || value === undefined) return Number.NaN
  if (typeof value === 'string') {
    if (NUMERIC.test(value)) return Number(value)
    switch (value) {
      case '':
      case 'NaN':
      case 'nan':
        return Number.NaN
      case 'Infinity':
      case '+Infinity':
      case 'inf':
        return Number.POSITIVE_INFINITY
      case '-Infinity':
      case '-inf':
        return Number.NEGATIVE_INFINITY
      default:
        return INVALID
    }
  }
  return INVALID
}

export function toInteger(value: unknown): number | typeof INVALID {
  const n = toNumber(value)
  if (n === INVALID || Number.isNaN(n)) return n
  return Number.isInteger(n) ? n : INVALID
}

const TRUE = new Set(['true', 'True', 'TRUE', '1'])
const FALSE = new Set(['false', 'False', 'FALSE', '0'])

/** Booleans as 1/0; "true"/"false"/"1"/"0" from CSV; missing is NaN. */
export function toBoolean(value: unknown): number | typeof INVALID {
  if (value === true || value === 1) return 1
  if (value === false || value === 0) return 0
  if (value === null || value === undefined || value === '') return Number.NaN
  if (typeof value === 'string') {
    if (TRUE.has(value)) return 1
    if (FALSE.has(value)) return 0
  }
  return INVALID
}

/** Strings as they are; numbers and booleans as their text (a JSONL `pclass: 1`); null, undefined and "" are missing. */
export function toText(value: unknown): string | typeof MISSING | typeof INVALID {
  if (typeof value === 'string') return value === '' ? MISSING : value
  if (value === null || value === undefined) return MISSING
  if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'boolean') return String(value)
  return INVALID
}

export function describeValue(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)
  if (typeof value === 'object') return 'an object'
  return `${typeof value} ${String(value)}`
}
