import assert from 'node:assert/strict'

import {tokenCheck} from '../../src/auth/token.js'

describe('tokenCheck', () => {
  const token = 'a1'.repeat(32)
  const check = tokenCheck(token)

  it('takes the token and nothing else: another of its length, a prefix, a longer one or none', () => {
    assert.equal(check(token), true)
    assert.equal(check('b2'.repeat(32)), false)
    assert.equal(check(token.slice(0, 63)), false)
    assert.equal(check(`${token}0`), false)
    assert.equal(check(''), false)
    assert.equal(check(undefined), false)
  })

  it('refuses a value as many characters long but more bytes long, rather than throwing', () => {
    assert.equal(check('é'.repeat(64)), false)
  })
})
