// A shared secret checked in constant time: the gateway's control token, the token its model servers ask of it.
import {createHash, timingSafeEqual} from 'node:crypto'

/** Whether a credential is `token`: both hashed first, so the comparison takes the same time whatever their lengths. */
export function tokenCheck(token: string): (given: string | undefined) => boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest()
  const expected = digest(token)
  return (given) => given !== undefined && timingSafeEqual(digest(given), expected)
}
