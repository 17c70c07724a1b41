// JSON from outside (request bodies, JSONL rows): nesting depth bounded and integers past 2^53 kept exact as BigInt.
import {parse as losslessParse} from 'lossless-json'

export class JsonSyntaxError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'JsonSyntaxError'
  }
}

export interface ParseJsonOptions {
  /** Deepest nesting of arrays and objects accepted; deeper input is refused before it is parsed. */
  maxDepth?: number
}

const DEFAULT_MAX_DEPTH = 64
const SAFE_DIGITS = 15

/**
 * Parses JSON text. One pass over the characters measures the nesting and looks for integer literals too long to be
 * exact doubles; only then is the slower lossless parser used, so ordinary bodies go through V8's JSON.parse.
 */
export function parseJson(text: string, options: ParseJsonOptions = {}): unknown {
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH
  const {depth, longNumbers} = scan(text, maxDepth)
  if (depth > maxDepth) throw new JsonSyntaxError(`JSON is nested deeper than ${maxDepth} levels`)
  try {
    return longNumbers ? losslessParse(text, null, parseNumber) : JSON.parse(text)
  } catch (error) {
    throw new JsonSyntaxError(`invalid JSON: ${(error as Error).message}`)
  }
}

/** Integers that a double cannot hold exactly become BigInt; every other number stays a number. */
function parseNumber(literal: string): number | bigint {
  const value = Number(literal)
  if (/^-?\d+$/.test(literal) && !Number.isSafeInteger(value)) return BigInt(literal)
  return value
}

function scan(text: string, maxDepth: number): {depth: number; longNumbers: boolean} {
  let depth = 0
  let deepest = 0
  let inString = false
  let digits = 0
  // Digits after a '.' or an exponent are not an integer literal: floats never need the lossless parser.
  let fraction = false
  let longNumbers = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c)
        i++ // backslash: skip the escaped character
      else if (c === 0x22) inString = false
      continue
    }
    if (c >= 0x30 && c <= 0x39) {
      if (++digits > SAFE_DIGITS && !fraction) longNumbers = true
      continue
    }
    if (c === 0x2e || c === 0x65 || c === 0x45) fraction = true
    else if (c !== 0x2b && c !== 0x2d) fraction = false
    digits = 0
    if (c === 0x22) inString = true
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > deepest) {
        deepest = depth
        if (deepest > maxDepth) break
      }
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  return {depth: deepest, longNumbers}
}
