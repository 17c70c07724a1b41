// GET /openapi.json and /docs of a served artifact: a valid OpenAPI 3.1 document, its examples answered as its schemas
// say, the same document from `mlops artifacts show --openapi`, and a docs page that Chromium renders.
import assert from 'node:assert/strict'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {Validator} from '@seriousme/openapi-schema-validator'
import {Ajv2020} from 'ajv/dist/2020.js'
import {execa} from 'execa'

import {createKey} from '../../src/auth/keys.js'
import {type Serving, startServing} from '../../src/serve/load.js'
import {exampleProject, mlops, tempDir} from '../support/cli.js'
import {assertMatchesSchema} from '../support/schema.js'
import {start} from '../serve/helpers.js'

const CHROMIUM = '/usr/bin/chromium'

type Doc = {
  paths: Record<string, Record<string, Operation>>
  components: {schemas: Record<string, object>; securitySchemes?: Record<string, Record<string, string>>}
}
type Operation = {
  requestBody?: {content: Record<string, {examples?: Record<string, {value: unknown}>}>}
  security?: Record<string, string[]>[]
  responses: Record<string, unknown>
}

async function assertValidOpenApi(doc: unknown): Promise<void> {
  // The validator resolves $refs in the object it is given: a copy keeps the document as served.
  const result = await new Validator().validate(structuredClone(doc) as Parameters<Validator['validate']>[0])
  assert.ok(result.valid, `not a valid OpenAPI document: ${JSON.stringify(result.errors)?.slice(0, 2000)}`)
}

/** A validator for one of the document's component schemas (OpenAPI 3.1 schemas are JSON Schema 2020-12). */
function componentValidator(doc: Doc, name: string) {
  const ajv = new Ajv2020({allErrors: true, strict: false})
  ajv.addSchema({...doc, $id: 'doc'})
  return ajv.getSchema(`doc#/components/schemas/${name}`)!
}

/**
 * The bundled example packaged (after `prepare` on its folder) and served, and the document it serves, fetched without
 * credentials: with auth on too, a browser cannot send one with the page it opens.
 */
function servedExample(prepare: (project: string) => Promise<void> = async () => undefined) {
  const state = {} as {example: Awaited<ReturnType<typeof exampleProject>>; serving: Serving; doc: Doc}
  before(async () => {
    state.example = await exampleProject()
    await prepare(state.example.project)
    const packaged = await mlops(['package', '--dir', state.example.project])
    assert.equal(packaged.exitCode, 0, packaged.stderr)
    state.serving = await startServing({dir: state.example.project, settings: {port: 0, host: '127.0.0.1'}})
    const response = await fetch(`${state.serving.url}/openapi.json`)
    assert.equal(response.status, 200)
    assert.equal(response.headers.get('content-type'), 'application/json')
    state.doc = (await response.json()) as Doc
  })
  after(async () => {
    await state.serving?.stop(1000)
    await state.example?.remove()
  })
  return state
}

describe('OpenAPI document and docs page of a served artifact (e2e)', function () {
  this.timeout(180_000)
  const served = servedExample()
  let example: Awaited<ReturnType<typeof exampleProject>>
  let serving: Serving
  let doc: Doc
  before(() => ({example, serving, doc} = served))

  it('is a valid OpenAPI 3.1 document with /v1/predict, feedback, the v2 routes, health and metrics', async () => {
    await assertValidOpenApi(doc)
    for (const path of [
      '/v1/predict',
      '/v1/feedback',
      '/v2',
      '/v2/health/live',
      '/v2/health/ready',
      '/v2/models/{model_name}',
      '/v2/models/{model_name}/ready',
      '/v2/models/{model_name}/infer',
      '/v2/models/{model_name}/versions/{model_version}/infer',
      '/metrics',
    ])
      assert.ok(doc.paths[path], `the document has ${path}`)
    const record = doc.components.schemas.Record as {
      properties: Record<string, {type: unknown; description?: string; examples?: unknown[]}>
      required: string[]
    }
    assert.deepEqual(record.properties.credit_history_months.type, 'integer')
    assert.deepEqual(record.properties.region.examples, ['north', 'south', 'east', 'west'])
    assert.match(record.properties.age.description ?? '', /reference data ranged over/)
    assert.ok(!record.required.includes('income'), 'income may be missing: it is imputed')
    const prediction = doc.components.schemas.Prediction as {properties: {label: {enum: string[]}}}
    assert.deepEqual(prediction.properties.label.enum, ['repaid', 'default'])
  })

  it('answers every example as its response schema says, and refuses a record its request schema refuses', async () => {
    const examples = doc.paths['/v1/predict'].post.requestBody!.content['application/json'].examples!
    assert.equal(Object.keys(examples).length, 20, 'one example per golden case')
    const request = componentValidator(doc, 'PredictRequest')
    const response = componentValidator(doc, 'PredictResponse')
    for (const [name, {value}] of Object.entries(examples)) {
      assert.ok(request(value), `${name}: ${JSON.stringify(request.errors)}`)
      const answer = await fetch(`${serving.url}/v1/predict`, {
        method: 'POST',
        headers: {'content-type': 'application/json'},
        body: JSON.stringify(value),
      })
      assert.equal(answer.status, 200, name)
      const body = await answer.json()
      assert.ok(response(body), `${name}: ${JSON.stringify(response.errors)}`)
    }
    const wrong = {instances: [{age: 40, region: 3}]}
    assert.equal(request(wrong), false)
    const refused = await fetch(`${serving.url}/v1/predict`, {
      method: 'POST',
      headers: {'content-type': 'application/json'},
      body: JSON.stringify(wrong),
    })
    assert.equal(refused.status, 400)
    assert.ok(componentValidator(doc, 'V1Error')(await refused.json()))
  })

  it('takes every feedback example, as its schemas say, and refuses what its request schema refuses', async () => {
    assert.ok(!('security' in doc.paths['/v1/predict'].post), 'no auth, no security requirements')
    await sendFeedbackExamples(doc, serving.url, {})
    const request = componentValidator(doc, 'FeedbackRequest')
    for (const wrong of [{request_id: 'a b', label: 'repaid'}, {request_id: 'x', label: 'repaid', value: 1}, {}]) {
      assert.equal(request(wrong), false, JSON.stringify(wrong))
      const refused = await fetch(`${serving.url}/v1/feedback`, {
        method: 'POST',
        headers: {'content-type': 'application/json'},
        body: JSON.stringify(wrong),
      })
      assert.equal(refused.status, 400, JSON.stringify(wrong))
    }
  })

  it('is the document "mlops artifacts show --openapi" prints', async () => {
    const shown = await mlops(['artifacts', 'show', '--openapi', '--dir', example.project])
    assert.equal(shown.exitCode, 0, shown.stderr)
    assert.deepEqual(shown.json, doc)
    const asJson = await mlops(['artifacts', 'show', '--openapi', '--json', '--dir', example.project])
    assert.deepEqual(asJson.json, doc)
    assertMatchesSchema(asJson.json, 'artifacts-show')
  })

  it('renders every operation on /docs in headless Chromium, from files this server serves', async function () {
    const page = await fetch(`${serving.url}/docs`)
    assert.equal(page.status, 200)
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/)
    const dom = await renderedDocs(this, serving.url, doc)
    assert.match(dom, /credit-risk model server/)
    assert.doesNotMatch(dom, /class="btn authorize/, 'no auth, no Authorize button')
  })
})

/** The DOM of /docs as headless Chromium renders it, checked to show every path of the document. */
async function renderedDocs(test: Mocha.Context, url: string, doc: Doc): Promise<string> {
  if (!existsSync(CHROMIUM)) {
    if (process.env.CI) assert.fail(`${CHROMIUM} is missing: install Debian's chromium`)
    test.skip()
  }
  const profile = await tempDir('mlops-chromium-')
  try {
    const {stdout} = await execa(
      CHROMIUM,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
        `--user-data-dir=${profile.path}`,
        '--virtual-time-budget=20000',
        '--dump-dom',
        `${url}/docs`,
      ],
      {timeout: 90_000},
    )
    const rendered = [...stdout.matchAll(/class="opblock-summary-path" data-path="([^"]+)"/g)].map((m) => m[1])
    for (const path of Object.keys(doc.paths)) assert.ok(rendered.includes(path), `/docs shows ${path}`)
    return stdout
  } finally {
    await profile.remove()
  }
}

/** Sends each feedback example of the document; each is taken and answered as the response schema says. */
async function sendFeedbackExamples(doc: Doc, url: string, headers: Record<string, string>): Promise<void> {
  const examples = doc.paths['/v1/feedback'].post.requestBody!.content['application/json'].examples!
  assert.ok(Object.keys(examples).length >= 2)
  const request = componentValidator(doc, 'FeedbackRequest')
  const response = componentValidator(doc, 'FeedbackResponse')
  for (const [name, {value}] of Object.entries(examples)) {
    assert.ok(request(value), `${name}: ${JSON.stringify(request.errors)}`)
    const answer = await fetch(`${url}/v1/feedback`, {
      method: 'POST',
      headers: {'content-type': 'application/json', ...headers},
      body: JSON.stringify(value),
    })
    assert.equal(answer.status, 200, name)
    const body = await answer.json()
    assert.ok(response(body), `${name}: ${JSON.stringify(response.errors)}`)
  }
}

describe('OpenAPI document of a served artifact with API keys (e2e)', function () {
  this.timeout(180_000)
  const keys = {predict: '', feedback: ''}
  const served = servedExample(async (project) => {
    const config = join(project, 'mlops.yaml')
    writeFileSync(config, readFileSync(config, 'utf8').replace('serving:\n', 'serving:\n  auth: keys\n'))
    const file = join(project, '.mlops', 'keys.json')
    keys.predict = (await createKey(file, {name: 'app', scopes: ['predict']})).key
    keys.feedback = (await createKey(file, {name: 'labels', scopes: ['feedback']})).key
  })

  it('names the bearer scheme, and on each operation the scope the server asks for', async () => {
    await assertValidOpenApi(served.doc)
    const schemes = served.doc.components.securitySchemes ?? {}
    assert.deepEqual(Object.keys(schemes), ['apiKey'])
    assert.deepEqual(
      {...schemes.apiKey, description: undefined},
      {
        type: 'http',
        scheme: 'bearer',
        description: undefined,
      },
    )
    const security = (path: string, method = 'get') => served.doc.paths[path][method].security
    assert.deepEqual(security('/v1/predict', 'post'), [{apiKey: ['predict']}])
    assert.deepEqual(security('/v1/feedback', 'post'), [{apiKey: ['feedback']}])
    assert.deepEqual(security('/v2/models/{model_name}/infer', 'post'), [{apiKey: ['predict']}])
    assert.deepEqual(security('/metrics'), [{apiKey: ['metrics']}])
    assert.deepEqual(security('/v2/health/ready'), [])
    assert.deepEqual(security('/v2/models/{model_name}/ready'), [])
    assert.ok(served.doc.paths['/v1/predict'].post.responses['401'])
    assert.ok(!served.doc.paths['/v2/health/live'].get.responses['401'])
    // What the document says open is open, and what it says needs a scope is refused without it.
    assert.equal((await fetch(`${served.serving.url}/v2/health/ready`)).status, 200)
    assert.equal((await fetch(`${served.serving.url}/metrics`)).status, 401)
    assert.equal((await fetch(`${served.serving.url}/docs`)).status, 200)
  })

  it('answers each predict and feedback example sent with a key of the scope, and 401 without one', async () => {
    const examples = served.doc.paths['/v1/predict'].post.requestBody!.content['application/json'].examples!
    const response = componentValidator(served.doc, 'PredictResponse')
    for (const [name, {value}] of Object.entries(examples)) {
      const send = (headers: Record<string, string>) =>
        fetch(`${served.serving.url}/v1/predict`, {
          method: 'POST',
          headers: {'content-type': 'application/json', ...headers},
          body: JSON.stringify(value),
        })
      const answer = await send({authorization: `Bearer ${keys.predict}`})
      assert.equal(answer.status, 200, name)
      assert.ok(response(await answer.json()), name)
    }
    const [first] = Object.values(examples)
    const bare = await fetch(`${served.serving.url}/v1/predict`, {
      method: 'POST',
      headers: {'content-type': 'application/json'},
      body: JSON.stringify(first.value),
    })
    assert.equal(bare.status, 401)
    assert.ok(componentValidator(served.doc, 'V1Error')(await bare.json()))
    await sendFeedbackExamples(served.doc, served.serving.url, {authorization: `Bearer ${keys.feedback}`})
    const wrongScope = await fetch(`${served.serving.url}/v1/feedback`, {
      method: 'POST',
      headers: {'content-type': 'application/json', authorization: `Bearer ${keys.predict}`},
      body: JSON.stringify({request_id: 'r1', label: 'repaid'}),
    })
    assert.equal(wrongScope.status, 403)
  })

  it('renders every operation on /docs without credentials, with the Authorize button for a key', async function () {
    const dom = await renderedDocs(this, served.serving.url, served.doc)
    assert.match(dom, /class="btn authorize/)
  })

  it('is the document "mlops artifacts show --openapi" prints from serving.auth, and without auth with --auth none', async () => {
    const shown = await mlops(['artifacts', 'show', '--openapi', '--json', '--dir', served.example.project])
    assert.equal(shown.exitCode, 0, shown.stderr)
    assert.deepEqual(shown.json, served.doc)
    const open = await mlops([
      'artifacts',
      'show',
      '--openapi',
      '--auth',
      'none',
      '--json',
      '--dir',
      served.example.project,
    ])
    assert.equal(open.exitCode, 0, open.stderr)
    assert.equal((open.json as Doc).components.securitySchemes, undefined)
    const jwt = await mlops([
      'artifacts',
      'show',
      '--openapi',
      '--auth',
      'jwt',
      '--json',
      '--dir',
      served.example.project,
    ])
    const schemes = (jwt.json as Doc).components.securitySchemes ?? {}
    assert.deepEqual(Object.keys(schemes), ['jwt'])
    assert.equal(schemes.jwt.bearerFormat, 'JWT')
    await assertValidOpenApi(jwt.json)
  })
})

describe('OpenAPI document of a bare model', function () {
  this.timeout(60_000)
  it('is valid, and its v2 metadata example is what the server answers', async () => {
    const {server, url} = await start('mnist_cnn')
    try {
      const doc = (await (await fetch(`${url}/openapi.json`)).json()) as Doc & {
        paths: Record<string, {get: {responses: {'200': {content: {'application/json': {examples: object}}}}}}>
      }
      await assertValidOpenApi(doc)
      const examples = doc.paths['/v2/models/{model_name}'].get.responses['200'].content['application/json'].examples
      const metadata = await (await fetch(`${url}/v2/models/mnist_cnn`)).json()
      assert.deepEqual(Object.values(examples)[0], {value: metadata})
      assert.ok(componentValidator(doc, 'ModelMetadata')(metadata))
      assert.ok(componentValidator(doc, 'Record').schema)
      // swagger-ui-dist has index.html, but only the files the page loads are served.
      const missing = await fetch(`${url}/docs/index.html`)
      assert.equal(missing.status, 404)
    } finally {
      await server.close()
    }
  })
})
