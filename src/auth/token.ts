// A shared secret checked in constant time: the gateway's control token, the token its model servers ask of it.
import {timingSafeEqual} from 'node:crypto'

/**
 * Whether a credential is `token`, compared in constant time. Only the length can differ in time, and a token's length
 * (64 hex characters) is no secret. No hash per check: the model servers run it on every request.
 */
export function tokenCheck(token: string): (given: string | undefined) => boolean {
  const expected = Buffer.from(token)
  return (given) => {
    if (given === undefined) return false
    const bytes = Buffer.from(given)
    return bytes.length === expected.length && timingSafeEqual(bytes, expected)
  }
}
