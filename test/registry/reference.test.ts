// Which refs are registry references (and which stay versions, digests and paths), and the auth header parser.
import assert from 'node:assert/strict'

import {parseChallenge} from '../../src/registry/auth.js'
import {isLoopback, parseReference} from '../../src/registry/reference.js'

const DIGEST = `sha256:${'ab'.repeat(32)}`

describe('registry references', () => {
  const cases: [string, ReturnType<typeof parseReference>][] = [
    ['ghcr.io/acme/credit-risk:1.2.0', {registry: 'ghcr.io', repository: 'acme/credit-risk', tag: '1.2.0'}],
    [
      `127.0.0.1:5000/models/credit-risk@${DIGEST}`,
      {registry: '127.0.0.1:5000', repository: 'models/credit-risk', digest: DIGEST},
    ],
    [`localhost/m:v1@${DIGEST}`, {registry: 'localhost', repository: 'm', tag: 'v1', digest: DIGEST}],
    ['registry.example.com/team/model', {registry: 'registry.example.com', repository: 'team/model'}],
    // Not references: versions, digests, names, paths.
    ['1.2.0', undefined],
    ['credit-risk@1.2.0', undefined],
    [DIGEST, undefined],
    ['models/credit-risk.tar', undefined],
    ['./dist/credit-risk-1.0.0.tar', undefined],
    ['/abs/path/x.tar', undefined],
    ['dist.v1/model.tar', undefined],
    ['ghcr.io/Acme/Model:1', undefined],
    ['ghcr.io/acme/model@sha256:abc', undefined],
    ['ghcr.io/acme/model:bad tag', undefined],
  ]
  for (const [text, expected] of cases)
    it(`${text} → ${expected ? 'a reference' : 'not a reference'}`, () =>
      assert.deepEqual(parseReference(text), expected))

  it('loopback hosts are the only ones reached over plain HTTP unasked', () => {
    assert.deepEqual(['localhost:5000', '127.0.0.1:5000', '[::1]:5000', 'ghcr.io', '10.0.0.1:5000'].map(isLoopback), [
      true,
      true,
      true,
      false,
      false,
    ])
  })

  it('parses Bearer challenges with quoted commas, and refuses nothing it cannot read', () => {
    assert.deepEqual(
      parseChallenge('Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:a/b:pull,push"'),
      {
        scheme: 'bearer',
        params: {realm: 'https://ghcr.io/token', service: 'ghcr.io', scope: 'repository:a/b:pull,push'},
      },
    )
    assert.deepEqual(parseChallenge('Basic realm="registry"'), {scheme: 'basic', params: {realm: 'registry'}})
    assert.equal(parseChallenge(undefined), undefined)
  })
})
