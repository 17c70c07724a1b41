// GET /openapi.json and /docs of a served artifact: a valid OpenAPI 3.1 document, its examples answered as its schemas
// say, the same document from `mlops artifacts show --openapi`, and a docs page that Chromium renders.
import assert from 'node:assert/strict'
import {existsSync} from 'node:fs'

import {Validator} from '@seriousme/openapi-schema-validator'
import {Ajv2020} from 'ajv/dist/2020.js'
import {execa} from 'execa'

import {type Serving, startServing} from '../../src/serve/load.js'
import {exampleProject, mlops, tempDir} from '../support/cli.js'
import {assertMatchesSchema} from '../support/schema.js'
import {start} from '../serve/helpers.js'

const CHROMIUM = '/usr/bin/chromium'

type Doc = {
  paths: Record<string, Record<string, Operation>>
  components: {schemas: Record<string, object>}
}
type Operation = {requestBody?: {content: Record<string, {examples?: Record<string, {value: unknown}>}>}}

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

describe('OpenAPI document and docs page of a served artifact (e2e)', function () {
  this.timeout(180_000)
  let example: Awaited<ReturnType<typeof exampleProject>>
  let serving: Serving
  let doc: Doc
  before(async () => {
    example = await exampleProject()
    const packaged = await mlops(['package', '--dir', example.project])
    assert.equal(packaged.exitCode, 0, packaged.stderr)
    serving = await startServing({dir: example.project, settings: {port: 0, host: '127.0.0.1'}})
    const response = await fetch(`${serving.url}/openapi.json`)
    assert.equal(response.status, 200)
    assert.equal(response.headers.get('content-type'), 'application/json')
    doc = (await response.json()) as Doc
  })
  after(async () => {
    await serving?.stop(1000)
    await example?.remove()
  })

  it('is a valid OpenAPI 3.1 document with /v1/predict, the v2 routes, health and metrics', async () => {
    await assertValidOpenApi(doc)
    for (const path of [
      '/v1/predict',
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

  it('is the document "mlops artifacts show --openapi" prints', async () => {
    const shown = await mlops(['artifacts', 'show', '--openapi', '--dir', example.project])
    assert.equal(shown.exitCode, 0, shown.stderr)
    assert.deepEqual(shown.json, doc)
    const asJson = await mlops(['artifacts', 'show', '--openapi', '--json', '--dir', example.project])
    assert.deepEqual(asJson.json, doc)
    assertMatchesSchema(asJson.json, 'artifacts-show')
  })

  it('renders every operation on /docs in headless Chromium, from files this server serves', async function () {
    if (!existsSync(CHROMIUM)) {
      if (process.env.CI) assert.fail(`${CHROMIUM} is missing: install Debian's chromium`)
      this.skip()
    }
    const page = await fetch(`${serving.url}/docs`)
    assert.equal(page.status, 200)
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/)
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
          `${serving.url}/docs`,
        ],
        {timeout: 90_000},
      )
      const rendered = [...stdout.matchAll(/class="opblock-summary-path" data-path="([^"]+)"/g)].map((m) => m[1])
      for (const path of Object.keys(doc.paths)) assert.ok(rendered.includes(path), `/docs shows ${path}`)
      assert.match(stdout, /credit-risk model server/)
    } finally {
      await profile.remove()
    }
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
