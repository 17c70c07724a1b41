// The OpenAPI document's parts that follow settings and the feedback parser: security per auth mode and open routes,
// and the feedback item schema against parseFeedback on the same items.
import assert from 'node:assert/strict'

import {Ajv2020} from 'ajv/dist/2020.js'

import {type AuthMode, authSettings} from '../../src/auth/config.js'
import {feedbackItemSchema, parseFeedback} from '../../src/feedback/store.js'
import {openApiDocument} from '../../src/serve/openapi.js'

const signature = {
  inputs: [{name: 'x', dtype: 'float32' as const, shape: ['N', 2]}],
  outputs: [{name: 'y', isTensor: true, dtype: 'float32' as const, shape: ['N', 1]}],
}

type Operation = {security?: Record<string, string[]>[]; responses: Record<string, unknown>}

function documentFor(mode: AuthMode, more: Record<string, unknown> = {}) {
  const auth = authSettings({mode, jwt: {jwks_url: 'https://issuer.example/jwks', audience: 'api'}, ...more}, '/p')
  const doc = openApiDocument({name: 'm', version: '1.0.0', signature, auth}) as {
    paths: Record<string, Record<string, Operation>>
    components: {securitySchemes?: Record<string, {bearerFormat?: string}>}
  }
  return {doc, security: (path: string, method = 'get') => doc.paths[path][method].security}
}

describe('OpenAPI security per auth setting', () => {
  it('has no security at all without auth', () => {
    const {doc, security} = documentFor('none')
    assert.equal(doc.components.securitySchemes, undefined)
    assert.equal(security('/v1/predict', 'post'), undefined)
    assert.equal(security('/v2/health/live'), undefined)
  })

  it('offers either scheme with keys_or_jwt, the JWT one with bearerFormat JWT', () => {
    const {doc, security} = documentFor('keys_or_jwt')
    assert.deepEqual(Object.keys(doc.components.securitySchemes!), ['apiKey', 'jwt'])
    assert.equal(doc.components.securitySchemes!.jwt.bearerFormat, 'JWT')
    assert.deepEqual(security('/v2/models/{model_name}/versions/{model_version}/infer', 'post'), [
      {apiKey: ['predict']},
      {jwt: ['predict']},
    ])
    assert.deepEqual(security('/v1/feedback', 'post'), [{apiKey: ['feedback']}, {jwt: ['feedback']}])
  })

  it('follows open_metrics and open_health as the server does', () => {
    const open = documentFor('keys', {open_metrics: true})
    assert.deepEqual(open.security('/metrics'), [])
    assert.ok(!open.doc.paths['/metrics'].get.responses['401'])
    const closed = documentFor('jwt', {open_health: false})
    assert.deepEqual(closed.security('/v2/health/live'), [{jwt: ['predict']}])
    assert.deepEqual(closed.security('/v2/models/{model_name}/ready'), [{jwt: ['predict']}])
    assert.deepEqual(closed.security('/metrics'), [{jwt: ['metrics']}])
  })
})

describe('the feedback item schema', () => {
  it('takes and refuses the items parseFeedback takes and refuses', () => {
    const valid = new Ajv2020({strict: false}).compile(feedbackItemSchema())
    const items: [unknown, boolean][] = [
      [{request_id: 'abc', label: 'repaid'}, true],
      [{request_id: 'abc', label: 1, time: '2026-12-03T09:00:00Z'}, true],
      [{request_id: 'abc', label: true}, true],
      [{request_id: 'abc', value: 3.5, time: 1764752400000}, true],
      [{request_id: 'abc'}, false],
      [{request_id: 'abc', label: 'a', value: 1}, false],
      [{request_id: 'a b', label: 'a'}, false],
      [{request_id: 'x'.repeat(201), label: 'a'}, false],
      [{request_id: 'abc', label: 'x'.repeat(201)}, false],
      [{request_id: 'abc', label: ['a']}, false],
      [{request_id: 'abc', value: '3'}, false],
      [{request_id: 'abc', label: 'a', extra: 1}, false],
      [['abc'], false],
    ]
    for (const [item, ok] of items) {
      const parsed = parseFeedback(item, 'feedback', new Date())
      assert.equal('feedback' in parsed, ok, `parseFeedback ${JSON.stringify(item).slice(0, 60)}`)
      assert.equal(valid(item), ok, `schema ${JSON.stringify(item).slice(0, 60)}`)
    }
  })
})
