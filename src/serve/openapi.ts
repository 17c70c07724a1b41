// The model server's OpenAPI 3.1 document, generated from what the artifact holds: the request schema the pipeline derives,
// the prediction schema of its outputs, examples from the golden cases, and the v2, health and metrics routes.
import type {ArtifactManifest, ReferenceProfile} from '../artifact/types.js'
import {scopeFor} from '../auth/authenticator.js'
import type {AuthSettings} from '../auth/config.js'
import type {GoldenCase} from '../checks/golden.types.js'
import type {ModelSignature} from '../model/signature.js'
import {feedbackItemSchema, feedbackSchemas} from '../feedback/store.js'
import {type TensorJson} from '../model/tensor.js'
import {openRequestSchema, requestSchemaOf} from '../pipeline/request-schema.js'
import {predictionSchemaOf} from '../pipeline/response-schema.js'
import type {FeatureSpec, ResolvedPipeline} from '../pipeline/spec.js'
import {toolVersion} from '../paths.js'
import {rawPipeline} from './raw-pipeline.js'
import {datatypeOf, modelMetadata} from './v2.js'

type Schema = Record<string, unknown>

export interface OpenApiSource {
  name: string
  version: string
  description?: string
  signature: ModelSignature
  /** The frozen pipeline; without one a record holds one row of each model input. */
  pipeline?: ResolvedPipeline
  cases?: readonly GoldenCase[]
  /** The reference data's profile: the range of each numeric feature is documented from it. */
  profile?: ReferenceProfile
  /**
   * Who may call, as the server checks it: each operation then names the schemes and the scope it needs (none for the
   * open ones: health by default, /metrics when so set).
   */
  auth?: AuthSettings
}

/** The document of an artifact, as both `mlops serve` and `mlops artifacts show --openapi` give it. */
export function artifactOpenApi(manifest: ArtifactManifest, cases: readonly GoldenCase[], auth?: AuthSettings): Schema {
  const spec = manifest.pipeline?.spec
  return openApiDocument({
    name: manifest.name,
    version: manifest.version,
    description: manifest.description,
    signature: manifest.model.signature,
    pipeline: spec && manifest.pipeline?.module ? {...spec, module: manifest.pipeline.module} : spec,
    cases,
    profile: manifest.profile,
    auth,
  })
}

const ref = (name: string) => ({$ref: `#/components/schemas/${name}`})
const json = (schema: Schema, examples?: Schema) => ({
  'application/json': {schema, ...(examples && Object.keys(examples).length > 0 ? {examples} : {})},
})
const answer = (description: string, schema: Schema, examples?: Schema) => ({
  description,
  content: json(schema, examples),
})
const v1Error = (description: string) => answer(description, ref('V1Error'))
const v2Error = (description: string) => answer(description, ref('V2Error'))

/** OpenAPI Security Scheme Objects of an auth mode: API keys and JWTs are both sent as `Authorization: Bearer …`. */
export function securitySchemesOf(auth: AuthSettings | undefined): Record<string, Schema> | undefined {
  if (!auth || auth.mode === 'none') return undefined
  const schemes: Record<string, Schema> = {}
  if (auth.mode === 'keys' || auth.mode === 'keys_or_jwt')
    schemes.apiKey = {
      type: 'http',
      scheme: 'bearer',
      description: 'An API key made by "mlops keys create NAME --scope …", sent as "Authorization: Bearer KEY".',
    }
  if (auth.mode === 'jwt' || auth.mode === 'keys_or_jwt')
    schemes.jwt = {
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'JWT',
      description: `A token from the issuer${auth.jwt?.issuer ? ` ${auth.jwt.issuer}` : ''} whose audience is this server's; its scope (or scp) claim grants predict, feedback or metrics.`,
    }
  return schemes
}

/**
 * The document with the security `auth` enforces: the schemes in components, and on each operation the scope the server
 * asks for (scopeFor on its path) and the refusals auth adds (401, 403, 429), or `security: []` on the open ones. The
 * model server applies it to its own document, the deploy gateway to its model servers' (which run without auth).
 */
export function withSecurity(document: Schema, auth: AuthSettings | undefined): Schema {
  const schemes = securitySchemesOf(auth)
  if (!schemes) return document
  for (const [template, operations] of Object.entries(document.paths as Record<string, Record<string, Schema>>)) {
    // scopeFor tells routes apart by their shape: any name in place of a path parameter does.
    const path = template.replaceAll(/\{[^}]*\}/g, 'x')
    const scope = scopeFor(path, auth!)
    const error = path.startsWith('/v2') ? v2Error : v1Error
    for (const operation of Object.values(operations)) {
      if (!scope) {
        operation.security = []
        continue
      }
      operation.security = Object.keys(schemes).map((name) => ({[name]: [scope]}))
      const needs = `Needs credentials granted the "${scope}" scope.`
      operation.description = operation.description ? `${operation.description as string} ${needs}` : needs
      operation.responses = {
        ...(operation.responses as Schema),
        '401': error('No credentials, or not valid ones: see the WWW-Authenticate header'),
        '403': error(`The credentials are not granted the "${scope}" scope`),
        '429': error("Over the caller's rate: retry after the Retry-After header"),
      }
    }
  }
  ;(document.components as Schema).securitySchemes = schemes
  return document
}

/** Without `$schema` and `title`: inside the document every schema is of OpenAPI 3.1's dialect (JSON Schema 2020-12). */
function bare(schema: Schema): Schema {
  const {$schema: _dialect, title: _title, ...rest} = schema
  return rest
}

function recordSchema(source: OpenApiSource): Schema {
  const {pipeline, signature} = source
  if (!pipeline) return bare(rawPipeline(signature).requestSchema)
  if (pipeline.module) return bare(openRequestSchema())
  const schema = bare(requestSchemaOf(pipeline.features ?? []))
  const properties = schema.properties as Record<string, Schema>
  for (const f of pipeline.features ?? []) properties[f.name] = annotated(properties[f.name], f, source.profile)
  return schema
}

/** What the request schema does not enforce but a client should know: clipping, known categories, the training range. */
function annotated(schema: Schema, f: FeatureSpec, profile: ReferenceProfile | undefined): Schema {
  const notes: string[] = schema.description ? [schema.description as string] : []
  const extra: Schema = {}
  if (f.clip) notes.push(`Clipped to [${f.clip.min ?? '-∞'}, ${f.clip.max ?? '∞'}].`)
  const seen = profile?.features[f.name]
  if (seen?.kind === 'numeric') {
    notes.push(`The reference data ranged over [${seen.min}, ${seen.max}].`)
    const median = seen.quantiles[Math.floor(seen.quantiles.length / 2)] ?? seen.mean
    extra.examples = [f.type === 'integer' ? Math.round(median) : median]
  }
  const encoded = f.encode && ('onehot' in f.encode ? f.encode.onehot.categories : f.encode.index.categories)
  if (!schema.enum && encoded) {
    notes.push(`Known categories: ${encoded.join(', ')}; others are accepted as unknown.`)
    extra.examples = [...encoded]
  }
  return {...schema, ...extra, ...(notes.length > 0 ? {description: notes.join(' ')} : {})}
}

/** With image features, /v1/predict also takes one record as a form: each image a file, the other fields as text. */
function uploadForm(source: OpenApiSource): Schema {
  const features = source.pipeline?.features ?? []
  if (!features.some((f) => f.type === 'image')) return {}
  const properties = Object.fromEntries(
    features.map((f) => [
      f.name,
      f.type === 'image'
        ? {type: 'string', contentMediaType: 'image/*'}
        : {type: 'string', description: 'as JSON text'},
    ]),
  )
  const required = features.filter((f) => f.type === 'image').map((f) => f.name)
  return {'multipart/form-data': {schema: {type: 'object', properties, required}}}
}

/** The one image output of the pipeline (pipeline.outputs[].image), whose PNG `Accept: image/png` answers. */
function imageOutputOf(source: OpenApiSource): string | undefined {
  const images = (source.pipeline?.outputs ?? []).filter((o) => o.image)
  return images.length === 1 ? (images[0].as ?? images[0].output) : undefined
}

function pngAnswer(source: OpenApiSource, answer: {description: string; content: Schema}): Schema {
  const image = imageOutputOf(source)
  if (!image) return answer
  const png = {schema: {type: 'string', contentMediaType: 'image/png'}}
  return {
    description: `${answer.description}; with Accept: image/png and one record, the PNG of "${image}" itself`,
    content: {...answer.content, 'image/png': png},
  }
}

function predictionSchema(source: OpenApiSource): Schema {
  if (source.pipeline?.module)
    return {type: 'object', description: "Shaped by the pipeline module's postprocess, when it has one."}
  return bare(predictionSchemaOf(source.pipeline?.outputs ?? [], source.signature))
}

function v1Examples(source: OpenApiSource): {requests: Schema; responses: Schema} {
  const requests: Schema = {}
  const responses: Schema = {}
  for (const c of source.cases ?? []) {
    if (!c.records || !c.expected.predictions) continue
    requests[c.name] = {summary: c.name, value: {instances: c.records}}
    const value = {predictions: c.expected.predictions, model: source.name, version: source.version}
    responses[c.name] = {summary: c.name, value}
  }
  return {requests, responses}
}

/** A truth for a golden case's request: its label when the model names classes, else its first number. */
function feedbackExamples(source: OpenApiSource): Schema {
  const predictions = (source.cases ?? []).flatMap((c) => c.expected.predictions ?? [])
  const label = predictions.map((p) => p.label).find((l) => ['string', 'number', 'boolean'].includes(typeof l))
  const value = predictions.flatMap((p) => Object.values(p)).find((v) => typeof v === 'number')
  const truth = label === undefined ? {value: typeof value === 'number' ? value : 0} : {label}
  const time = '2026-12-03T09:00:00Z'
  return {
    one: {summary: 'One request', value: {request_id: '5f0c2a7e9b1d4c3a', ...truth, time}},
    several: {
      summary: 'Several at once',
      value: {feedback: [1, 2].map((i) => ({request_id: `5f0c2a7e9b1d4c3${i}`, ...truth}))},
    },
  }
}

function v2Input(name: string, tensor: TensorJson): Schema {
  return {name, shape: tensor.shape, datatype: datatypeOf(tensor.dtype), data: tensor.data}
}

function v2Examples(source: OpenApiSource): Schema {
  const examples: Schema = {}
  for (const c of source.cases ?? []) {
    if (!c.inputs || Object.values(c.inputs).some((t) => t.data === undefined)) continue
    const inputs = Object.entries(c.inputs).map(([name, tensor]) => v2Input(name, tensor))
    examples[c.name] = {summary: c.name, value: {inputs}}
  }
  return examples
}

function v2Schemas(signature: ModelSignature): Record<string, Schema> {
  const datatypes = [...new Set(signature.inputs.map((i) => datatypeOf(i.dtype)))]
  const tensor = (names: string[]) => ({
    type: 'object',
    required: ['name', 'shape', 'datatype'],
    properties: {
      name: {type: 'string', enum: names},
      shape: {type: 'array', items: {type: 'integer', minimum: 0}},
      datatype: {type: 'string'},
      data: {type: 'array', description: 'Values, flat in row-major order or nested to the shape.'},
      parameters: {type: 'object'},
    },
  })
  const input = tensor(signature.inputs.map((i) => i.name))
  ;(input.properties.datatype as Schema).enum = datatypes
  const outputs = signature.outputs.filter((o) => o.isTensor).map((o) => o.name)
  return {
    InferRequest: {
      type: 'object',
      required: ['inputs'],
      properties: {
        id: {type: 'string'},
        parameters: {type: 'object', properties: {binary_data_output: {type: 'boolean'}}},
        inputs: {type: 'array', minItems: 1, items: input},
        outputs: {
          type: 'array',
          items: {
            type: 'object',
            required: ['name'],
            properties: {name: {type: 'string', enum: outputs}, parameters: {type: 'object'}},
          },
        },
      },
    },
    InferResponse: {
      type: 'object',
      required: ['model_name', 'outputs'],
      properties: {
        model_name: {type: 'string'},
        model_version: {type: 'string'},
        id: {type: 'string'},
        parameters: {type: 'object'},
        outputs: {type: 'array', items: tensor(outputs)},
      },
    },
    ModelMetadata: {
      type: 'object',
      required: ['name', 'versions', 'platform', 'inputs', 'outputs'],
      properties: {
        name: {type: 'string'},
        versions: {type: 'array', items: {type: 'string'}},
        platform: {type: 'string'},
        inputs: {type: 'array', items: ref('TensorMetadata')},
        outputs: {type: 'array', items: ref('TensorMetadata')},
      },
    },
    TensorMetadata: {
      type: 'object',
      required: ['name', 'datatype', 'shape'],
      properties: {
        name: {type: 'string'},
        datatype: {type: 'string'},
        shape: {type: 'array', items: {type: 'integer', description: '-1 for a dynamic dimension'}},
      },
    },
    V2Error: {
      type: 'object',
      required: ['error'],
      properties: {error: {type: 'string'}, code: {type: 'string'}, field: {type: 'string'}},
    },
  }
}

export function openApiDocument(source: OpenApiSource): Schema {
  const {name, version, signature} = source
  const v1 = v1Examples(source)
  const feedback = feedbackSchemas(ref('FeedbackItem'))
  const modelParams = (withVersion: boolean) => [
    {name: 'model_name', in: 'path', required: true, schema: {type: 'string', enum: [name]}},
    ...(withVersion
      ? [{name: 'model_version', in: 'path', required: true, schema: {type: 'string', enum: [version]}}]
      : []),
  ]
  const health = (summary: string, key: string) => ({
    get: {
      tags: ['health'],
      summary,
      responses: {
        '200': answer('Yes', {type: 'object', properties: {[key]: {const: true}}}),
        ...(key === 'ready' ? {'503': answer('Not yet, or draining', {type: 'object'})} : {}),
      },
    },
  })
  const paths: Record<string, Schema> = {
    '/v1/predict': {
      post: {
        tags: ['predict'],
        operationId: 'predict',
        summary: `Predict with ${name} ${version}`,
        description: 'Records in, one prediction per record out, through the pipeline packaged with the model.',
        requestBody: {required: true, content: {...json(ref('PredictRequest'), v1.requests), ...uploadForm(source)}},
        responses: {
          '200': pngAnswer(source, answer('One prediction per record, in order', ref('PredictResponse'), v1.responses)),
          '400': v1Error('A record or field is wrong; `field` names it'),
          ...(imageOutputOf(source) ? {'406': v1Error('Accept: image/png on a request of several records')} : {}),
          '413': v1Error('The body is over serving.max_body_mb'),
          '415': v1Error('Not JSON'),
          '503': v1Error('Warming up, or at capacity: retry after the Retry-After header'),
          '504': v1Error('Inference took longer than serving.timeout_ms'),
        },
      },
    },
    '/v1/feedback': {
      post: {
        tags: ['feedback'],
        operationId: 'feedback',
        summary: 'Ground truth for served requests',
        description:
          'What actually happened for a request this server answered (its x-request-id): a label or a value, kept once per request id beside the request log, for "mlops monitor --performance". Needs serving.request_log.',
        requestBody: {required: true, content: json(ref('FeedbackRequest'), feedbackExamples(source))},
        responses: {
          '200': answer('How many items were kept, and how many repeated a request id', ref('FeedbackResponse')),
          '400': v1Error('An item is wrong; `field` names it (feedback[3].label)'),
          '404': v1Error('This server keeps no request log (serving.request_log), so feedback has nothing to join'),
          '415': v1Error('Not JSON'),
        },
      },
    },
    '/v2': {
      get: {
        tags: ['v2'],
        operationId: 'serverMetadata',
        summary: 'Server metadata (Open Inference Protocol)',
        responses: {
          '200': answer('The server', {
            type: 'object',
            required: ['name', 'version', 'extensions'],
            properties: {
              name: {type: 'string'},
              version: {type: 'string'},
              extensions: {type: 'array', items: {type: 'string'}},
            },
          }),
        },
      },
    },
    '/v2/health/live': health('The process is up', 'live'),
    '/v2/health/ready': health('The model is loaded and warmed up', 'ready'),
  }
  for (const withVersion of [false, true]) {
    const suffix = withVersion ? 'Version' : ''
    const metadataPath = `/v2/models/{model_name}${withVersion ? '/versions/{model_version}' : ''}`
    const readyPath = `${metadataPath}/ready`
    const inferPath = `${metadataPath}/infer`
    const parameters = modelParams(withVersion)
    const notFound = v2Error('No such model or version here')
    const operation = (operationId: string, summary: string, responses: Schema, more: Schema = {}) => ({
      tags: ['v2'],
      operationId: `${operationId}${suffix}`,
      summary,
      parameters,
      ...more,
      responses: {...responses, '404': notFound},
    })
    const metadata = {[name]: {value: modelMetadata(name, version, signature)}}
    paths[metadataPath] = {
      get: operation('modelMetadata', 'Model metadata: inputs and outputs', {
        '200': answer('The model', ref('ModelMetadata'), metadata),
      }),
    }
    paths[readyPath] = {
      get: operation('modelReady', 'Whether the model takes requests', {
        '200': answer('Ready', {type: 'object', properties: {name: {type: 'string'}, ready: {type: 'boolean'}}}),
        '503': answer('Not ready', {type: 'object'}),
      }),
    }
    paths[inferPath] = {
      post: operation(
        'infer',
        'Run the model on tensors (Open Inference Protocol), without the pipeline',
        {
          '200': answer('The output tensors', ref('InferResponse')),
          '400': v2Error('A tensor is wrong; `field` names it'),
          '503': v2Error('Warming up, or at capacity'),
        },
        {
          description:
            "JSON tensors; or, with the Inference-Header-Content-Length header, JSON followed by the tensors' bytes (binary tensor data extension).",
          requestBody: {required: true, content: json(ref('InferRequest'), v2Examples(source))},
        },
      ),
    }
  }
  paths['/metrics'] = {
    get: {
      tags: ['health'],
      operationId: 'metrics',
      summary: 'Prometheus metrics',
      responses: {
        '200': {
          description: 'Metrics in the Prometheus text format',
          content: {'text/plain': {schema: {type: 'string'}}},
        },
      },
    },
  }
  return withSecurity(
    {
      openapi: '3.1.0',
      info: {
        title: `${name} model server`,
        version,
        ...(source.description ? {description: source.description} : {}),
        'x-generator': `mlops ${toolVersion()}`,
      },
      paths,
      components: {
        schemas: {
          Record: recordSchema(source),
          Prediction: predictionSchema(source),
          PredictRequest: {
            type: 'object',
            additionalProperties: false,
            required: ['instances'],
            properties: {instances: {type: 'array', minItems: 1, items: ref('Record')}, parameters: {type: 'object'}},
          },
          PredictResponse: {
            type: 'object',
            required: ['predictions', 'model', 'version'],
            properties: {
              predictions: {type: 'array', items: ref('Prediction')},
              model: {type: 'string', const: name},
              version: {type: 'string', const: version},
              fallback: {type: 'boolean', description: 'True when serving.fallback answered instead of the model'},
            },
          },
          V1Error: {
            type: 'object',
            required: ['error'],
            properties: {
              error: {
                type: 'object',
                required: ['code', 'message'],
                properties: {code: {type: 'string'}, message: {type: 'string'}, field: {type: 'string'}},
              },
            },
          },
          FeedbackItem: feedbackItemSchema(),
          FeedbackRequest: feedback.request,
          FeedbackResponse: feedback.response,
          ...v2Schemas(signature),
        },
      },
      tags: [
        {name: 'predict', description: 'Records through the packaged pipeline'},
        {name: 'feedback', description: 'Ground truth, joined to predictions by "mlops monitor --performance"'},
        {name: 'v2', description: 'Open Inference Protocol (KServe v2, Triton)'},
        {name: 'health', description: 'Probes and metrics'},
      ],
    },
    source.auth,
  )
}
