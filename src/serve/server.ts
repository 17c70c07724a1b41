// The model server: /v1/predict, the Open Inference Protocol v2 and /metrics on the lean HTTP/1.1 server of src/http
// (requests read whole, each answer one write), with no framework on the hot path.
import {randomBytes} from 'node:crypto'
import {setTimeout as sleep} from 'node:timers/promises'

import Negotiator from 'negotiator'

import {type Authenticator, CALLER_HEADER, GATEWAY_TOKEN_HEADER} from '../auth/authenticator.js'
import {tokenCheck} from '../auth/token.js'
import {type JsonSyntaxError, parseJson} from '../data/json.js'
import {FeedbackLog, MAX_FEEDBACK_ITEMS, feedbackPath, parseFeedback} from '../feedback/store.js'
import {
  HttpServer,
  type ServerAnswer,
  type ServerRequest,
  headerValue,
  httpDate,
  clip,
  pathOf,
  statusName,
} from '../http/server.js'
import {readTls, watchTls} from '../http/tls.js'
import {type LoadedModel, checkFeeds} from '../model/signature.js'
import {type Dtype, type OrtTensor, bigintReplacer, tensorFromJson, valuesToJson} from '../model/tensor.js'
import {toolVersion} from '../paths.js'
import type {InputRecord, Pipeline, Prediction} from '../pipeline/types.js'
import type {ServeSettings} from './config.js'
import {ApiDocs} from './docs.js'
import {InferenceEngine} from './engine.js'
import {HttpError, OverloadedError, badRequest} from './errors.js'
import {type Faults, crashIfTriggered, readFaults} from './faults.js'
import {isMultipart, multipartRecord} from './multipart.js'
import {openApiDocument} from './openapi.js'
import type {LiveProfiles} from '../monitor/live.js'
import {ServeMetrics} from './metrics.js'
import {Predictor, inputFault} from './predictor.js'
import {rawPipeline} from './raw-pipeline.js'
import {RequestLog, loggedInputs} from './request-log.js'
import type {SharedServices} from './shared.js'
import {
  type InferRequest,
  datatypeOf,
  decodeInferRequest,
  encodeBinaryOutput,
  encodeOutput,
  feedsFit,
  modelMetadata,
} from './v2.js'
import {type Warmup, warmUp} from './warmup.js'

export interface ModelIdentity {
  name: string
  version: string
  /** `sha256:…` of the artifact, when served from one. */
  digest?: string
}

export interface ModelServerOptions {
  model: LoadedModel
  /** Records to feeds and back; without it a record holds one row of each model input. */
  pipeline?: Pipeline
  identity: ModelIdentity
  settings: ServeSettings
  /** Warm-up inputs (e.g. from the artifact's golden cases); generated from the signature when absent. */
  warmup?: Warmup
  /** Default: read once from MLOPS_FAULT_* environment variables. */
  faults?: Faults
  /** Node process metrics (CPU, memory, event loop lag) in /metrics: for the real server, not for tests. */
  processMetrics?: boolean
  /** Profiles of answered /v1/predict records and predictions, for drift gauges in /metrics and `mlops monitor`. */
  live?: LiveProfiles
  /** Checks callers (started by the caller of createModelServer); without it every request is let in. */
  auth?: Authenticator
  /** This process's share of serving.max_connections (a worker of several); default all of it. */
  maxConnections?: number
  /** A worker of several: request log lines, feedback and /metrics go through its primary (see shared.ts). */
  shared?: SharedServices
  /** The OpenAPI document of GET /openapi.json and /docs (see openapi.ts); from the signature alone when absent. */
  openapi?: Record<string, unknown>
}

export interface ModelServer {
  /** Binds, warms the model up, and resolves with the URL once ready. Port 0 picks a free port. */
  listen(port?: number, host?: string): Promise<string>
  /** Stops accepting, lets in-flight requests finish (up to timeoutMs), then closes. True when nothing was cut off. */
  drain(timeoutMs?: number): Promise<boolean>
  close(): Promise<void>
  readonly url: string
  readonly ready: boolean
  readonly engine: InferenceEngine
  readonly metrics: ServeMetrics
  readonly warmupSource?: string
  readonly warnings: string[]
}

const JSON_TYPE = 'application/json'
const BINARY_TYPE = 'application/octet-stream'
/** The binary tensor data extension: the length of the JSON that starts the body; tensor bytes follow it. */
const HEADER_LENGTH = 'inference-header-content-length'
const V1_KEYS = new Set(['instances', 'parameters'])

interface Route {
  label: string
  methods: string[]
  handle: (ctx: Context) => Promise<Reply> | Reply
}

interface Context {
  req: ServerRequest
  params: string[]
  id: string
  /** The authenticated caller's name (or the one the gateway names), when known. */
  caller?: string
}

interface Reply {
  status: number
  /** JSON text, or text for /metrics. */
  body: string
  /** Bytes sent in place of `body` (a PNG for `Accept: image/png`). */
  bytes?: Buffer
  /** Output tensor bytes sent after `body`, which is then the JSON part of a binary tensor data response. */
  binary?: Buffer[]
  contentType?: string
  headers?: Record<string, string>
  log?: {inputs: () => unknown; body: string | Buffer; outputsJson: () => string; fallback?: boolean}
}

export function createModelServer(options: ModelServerOptions): ModelServer {
  const {model, identity, settings} = options
  const faults = options.faults ?? readFaults()
  const metrics = new ServeMetrics({processMetrics: options.processMetrics})
  metrics.modelLoad.set(model.loadMs / 1000)
  options.live?.registerMetrics(metrics.registry, {version: identity.version})
  const auth = options.auth?.enabled ? options.auth : undefined
  auth?.registerMetrics(metrics.registry)
  const engine = new InferenceEngine({model, batching: settings.batching, maxQueue: settings.maxQueue, metrics, faults})
  const pipeline = options.pipeline ?? rawPipeline(model.signature)
  const predictor = new Predictor(engine, pipeline)
  const {shared} = options
  if (shared) metrics.aggregate = shared.metrics
  const requestLog = settings.requestLog
    ? new RequestLog(settings.requestLog, () => metrics.logDropped.inc(), shared?.appendLog)
    : undefined
  const feedbackLog: Pick<FeedbackLog, 'add' | 'close'> | undefined = !settings.requestLog
    ? undefined
    : shared
      ? {add: shared.addFeedback, close: async () => undefined}
      : new FeedbackLog(feedbackPath(settings.requestLog.path))
  const maxRank = Math.max(1, ...model.signature.inputs.map((i) => i.shape.length))
  // Deep enough for {"inputs":[{"data":[nested to the rank]}]} and records holding rows; deeper is an attack or a mistake.
  const maxDepth = maxRank + 6
  const fallback = settings.fallback
  const fallbackOutputs = fallback?.outputs
    ? Object.fromEntries(
        Object.entries(fallback.outputs).map(([name, json]) => [
          name,
          tensorFromJson(json, `serving.fallback.outputs.${name}`),
        ]),
      )
    : undefined
  const warnings: string[] = []
  const version = identity.version
  const modelName = identity.name

  let ready = false
  let draining = false
  let inFlight = 0
  let url = ''
  let warmupSource: string | undefined
  let idleWaiters: (() => void)[] = []

  const metadata = JSON.stringify(modelMetadata(modelName, version, model.signature))
  const serverMetadata = JSON.stringify({name: 'mlops', version: toolVersion(), extensions: ['binary_tensor_data']})
  const inferPaths = new Set([
    `/v2/models/${encodeURIComponent(modelName)}/infer`,
    `/v2/models/${encodeURIComponent(modelName)}/versions/${encodeURIComponent(version)}/infer`,
  ])
  const modelParams = [modelName]
  const docs = new ApiDocs(
    options.openapi ?? openApiDocument({name: modelName, version, signature: model.signature, auth: settings.auth}),
  )

  const json = (status: number, value: unknown, headers?: Record<string, string>): Reply => ({
    status,
    body: JSON.stringify(value),
    headers,
  })

  const readiness = (): Reply => (ready && !draining ? json(200, {ready: true}) : json(503, {ready: false}))

  function checkModel(params: string[]): void {
    // The params of a path found in inferPaths are this model's: nothing to decode.
    if (params === modelParams) return
    const name = decoded(params[0])
    const wanted = params[1] === undefined ? undefined : decoded(params[1])
    if (name !== modelName)
      throw new HttpError(404, 'MODEL_NOT_FOUND', `no model "${clip(name)}" here; this server serves "${modelName}"`)
    if (wanted !== undefined && wanted !== version)
      throw new HttpError(
        404,
        'VERSION_NOT_FOUND',
        `model "${modelName}" has no version "${clip(wanted)}"; this server serves version ${version}`,
      )
  }

  async function predictV1(ctx: Context): Promise<Reply> {
    const form = headerValue(ctx.req.headers, 'content-type')
    if (!isMultipart(form)) checkContentType(ctx.req, false)
    const body = ctx.req.body
    crashIfTriggered(faults, body)
    const value = isMultipart(form) ? {instances: [await multipartRecord(body, form!)]} : parseBody(body, maxDepth)
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      throw badRequest('BAD_REQUEST', 'the body must be a JSON object {"instances": [record, …]}')
    for (const key of Object.keys(value))
      if (!V1_KEYS.has(key))
        throw badRequest(
          'UNKNOWN_FIELD',
          `unknown field "${clip(key)}"; the body is {"instances": [record, …]}`,
          clip(key),
        )
    const instances = (value as {instances?: unknown}).instances
    if (!Array.isArray(instances) || instances.length === 0)
      throw badRequest('BAD_FIELD', 'must be a non-empty array of records', 'instances')
    if (instances.length > settings.maxInstances)
      throw badRequest(
        'TOO_MANY_INSTANCES',
        `${instances.length} records in one request; at most ${settings.maxInstances} (serving.max_instances)`,
        'instances',
      )
    const image = imageAnswer(headerValue(ctx.req.headers, 'accept'), instances.length, pipeline.imageOutputs)
    instances.forEach((record, index) => {
      const problem = predictor.problem(record, index)
      if (problem) throw problem
    })
    const records = instances as InputRecord[]
    let predictions: Prediction[]
    let usedFallback = false
    try {
      predictions = await predictor.predict(records, settings.timeoutMs)
    } catch (error) {
      if (!fallback?.prediction || !isServerFault(error)) throw error
      metrics.fallbacks.inc({reason: (error as HttpError).code ?? 'ERROR'})
      predictions = records.map(() => fallback.prediction!)
      usedFallback = true
    }
    if (!usedFallback) options.live?.add(records, predictions)
    const answer = JSON.stringify(
      {predictions, model: modelName, version, ...(usedFallback ? {fallback: true} : {})},
      bigintReplacer,
    )
    const png = image === undefined ? undefined : predictions[0][image]
    return {
      status: 200,
      body: answer,
      ...(typeof png === 'string' ? {bytes: Buffer.from(png, 'base64'), contentType: 'image/png'} : {}),
      log: {inputs: () => records, body, outputsJson: () => answer, fallback: usedFallback},
    }
  }

  async function inferV2(ctx: Context): Promise<Reply> {
    checkModel(ctx.params)
    const jsonLength = headerLength(ctx.req)
    checkContentType(ctx.req, jsonLength !== undefined)
    // Put together from several reads, the body has its binary part on an 8-byte boundary (the server's alignBody).
    const body = ctx.req.body
    crashIfTriggered(faults, body)
    if (jsonLength !== undefined && jsonLength > body.length)
      throw badRequest(
        'BAD_HEADER',
        `Inference-Header-Content-Length is ${jsonLength}, but the body has only ${body.length} bytes`,
        HEADER_LENGTH,
      )
    const value = parseBody(jsonLength === undefined ? body : body.subarray(0, jsonLength), maxDepth)
    const request = decodeInferRequest(
      value,
      model.signature,
      model.fetches,
      jsonLength === undefined ? undefined : body.subarray(jsonLength),
    )
    const issues = feedsFit(model.signature, request.feeds) ? [] : checkFeeds(model.signature, request.feeds)
    if (issues.length > 0) {
      const index = Object.keys(request.feeds).indexOf(issues[0].field)
      throw badRequest(
        'INVALID_INPUT',
        `input "${issues[0].field}": ${issues[0].message}`,
        index >= 0 ? `inputs[${index}].shape` : 'inputs',
      )
    }
    let outputs: Record<string, OrtTensor>
    let wanted = request.outputs
    let usedFallback = false
    try {
      outputs = await engine.run(request.feeds, settings.timeoutMs)
    } catch (error) {
      const fault = inputFault(error, model.signature, request.feeds, 'inputs')
      if (fault) throw fault
      if (!fallbackOutputs || !isServerFault(error)) throw error
      metrics.fallbacks.inc({reason: (error as HttpError).code ?? 'ERROR'})
      outputs = fallbackOutputs
      wanted = Object.keys(fallbackOutputs).map((name) => ({
        name,
        binary: request.outputs.find((o) => o.name === name)?.binary ?? request.binaryOutputs,
      }))
      usedFallback = true
    }
    const id = request.id === undefined ? '' : `,"id":${JSON.stringify(request.id)}`
    const flag = usedFallback ? ',"parameters":{"fallback":true}' : ''
    const head = `{"model_name":${JSON.stringify(modelName)},"model_version":${JSON.stringify(version)}${id}${flag},"outputs":[`
    const parts: string[] = []
    let binary: Buffer[] | undefined
    for (const {name, binary: asBytes} of wanted) {
      const tensor = outputs[name]
      if (!asBytes) {
        parts.push(encodeOutput(name, tensor))
        continue
      }
      const encoded = encodeBinaryOutput(name, tensor)
      parts.push(encoded.json)
      ;(binary ??= []).push(encoded.bytes)
    }
    const outputsJson = () => `[${wanted.map(({name}) => encodeOutput(name, outputs[name])).join(',')}]`
    return {
      status: 200,
      body: `${head}${parts.join(',')}]}`,
      binary,
      log: {inputs: () => inputsForLog(value, request), body, outputsJson, fallback: usedFallback},
    }
  }

  /** Ground truth for served requests: `{request_id, label|value, time}` or `{"feedback": [them]}`, kept once per id. */
  async function feedback(ctx: Context): Promise<Reply> {
    if (!feedbackLog)
      throw new HttpError(
        404,
        'FEEDBACK_UNAVAILABLE',
        'this server keeps no request log (serving.request_log.path), so feedback has no predictions to join',
      )
    checkContentType(ctx.req, false)
    const value = parseBody(ctx.req.body, 4)
    const list = (value as {feedback?: unknown} | null)?.feedback
    const items = Array.isArray(list) ? list : [value]
    if (items.length === 0 || items.length > MAX_FEEDBACK_ITEMS)
      throw badRequest('BAD_FIELD', `must hold 1 to ${MAX_FEEDBACK_ITEMS} items`, 'feedback')
    const received = new Date()
    const parsed = items.map((item, i) => {
      const one = parseFeedback(item, Array.isArray(list) ? `feedback[${i}]` : 'feedback', received)
      if ('problem' in one) throw badRequest('INVALID_FEEDBACK', one.problem, one.field)
      return ctx.caller === undefined ? one.feedback : {...one.feedback, caller: ctx.caller}
    })
    return json(200, await feedbackLog.add(parsed))
  }

  const inferRoute: Route = {label: '/v2/models/infer', methods: ['POST'], handle: inferV2}
  const routes: {pattern: RegExp; route: Route}[] = [
    {pattern: /^\/v1\/predict$/, route: {label: '/v1/predict', methods: ['POST'], handle: predictV1}},
    {pattern: /^\/v1\/feedback$/, route: {label: '/v1/feedback', methods: ['POST'], handle: feedback}},
    {
      pattern: /^\/v2\/health\/live$/,
      route: {label: '/v2/health', methods: ['GET'], handle: () => json(200, {live: true})},
    },
    {pattern: /^\/v2\/health\/ready$/, route: {label: '/v2/health', methods: ['GET'], handle: readiness}},
    {
      pattern: /^\/v2\/?$/,
      route: {label: '/v2', methods: ['GET'], handle: () => ({status: 200, body: serverMetadata})},
    },
    {
      pattern: /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?\/?$/,
      route: {
        label: '/v2/models/metadata',
        methods: ['GET'],
        handle: (ctx) => (checkModel(ctx.params), {status: 200, body: metadata}),
      },
    },
    {
      pattern: /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?\/ready$/,
      route: {
        label: '/v2/models/ready',
        methods: ['GET'],
        handle: (ctx) => (
          checkModel(ctx.params),
          json(ready && !draining ? 200 : 503, {name: modelName, ready: ready && !draining})
        ),
      },
    },
    {pattern: /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?\/infer$/, route: inferRoute},
    {
      pattern: /^\/(?:openapi\.json|docs(?:\/[\w.-]*)?)$/,
      route: {label: '/docs', methods: ['GET'], handle: (ctx) => docs.answer(pathOf(ctx.req.url))},
    },
    {
      pattern: /^\/metrics$/,
      route: {
        label: '/metrics',
        methods: ['GET'],
        handle: async () => {
          const {contentType, body} = await metrics.render()
          return {status: 200, body, contentType}
        },
      },
    },
  ]

  const gatewayToken = settings.gatewayToken === undefined ? undefined : tokenCheck(settings.gatewayToken)

  async function handle(req: ServerRequest, respond: (answer: ServerAnswer) => void): Promise<void> {
    const started = performance.now()
    inFlight++
    metrics.inFlight.inc()
    const id = requestId(headerValue(req.headers, 'x-request-id'))
    const path = pathOf(req.url)
    let label = 'other'
    let reply: Reply
    let caller: string | undefined
    try {
      if (gatewayToken && !gatewayToken(headerValue(req.headers, GATEWAY_TOKEN_HEADER)))
        throw new HttpError(
          401,
          'UNAUTHORIZED',
          "this model server answers its deploy gateway only: send requests to the gateway's port",
        )
      const match = findRoute(path)
      if (!match)
        throw new HttpError(
          404,
          'NOT_FOUND',
          `no route ${clip(path)}; see GET /v2 and POST /v1/predict, /v2/models/{name}/infer`,
        )
      label = match.route.label
      if (!match.route.methods.includes(req.method))
        throw new HttpError(
          405,
          'METHOD_NOT_ALLOWED',
          `${req.method} is not allowed on ${clip(path)}; use ${match.route.methods.join(', ')}`,
          undefined,
          {allow: match.route.methods.join(', ')},
        )
      caller = auth
        ? (await auth.authorize(req.method, req.url, req.headers))?.name
        : settings.trustCallerHeader
          ? headerValue(req.headers, CALLER_HEADER)
          : undefined
      if (req.method === 'POST') {
        if (!ready)
          throw new HttpError(503, 'NOT_READY', 'the model is still warming up; retry shortly', undefined, {
            'retry-after': '1',
          })
        if (engine.full) throw new OverloadedError(engine.queued)
      }
      reply = await match.route.handle({req, params: match.params, id, caller})
    } catch (error) {
      reply = errorReply(error, path.startsWith('/v2'))
      if (reply.status === 503 && (error as HttpError).code === 'OVERLOADED') metrics.rejected.inc({reason: 'overload'})
      if (reply.status === 504) metrics.rejected.inc({reason: 'timeout'})
    }
    respond(answerOf(reply, id))
    const seconds = (performance.now() - started) / 1000
    metrics.requests.inc({route: label, status: String(reply.status), version})
    metrics.latency.observe({route: label, version}, seconds)
    if (requestLog && reply.log) {
      const {inputs, sampleRate} = requestLog.settings
      requestLog.add({
        id,
        time: new Date().toISOString(),
        model: identity,
        route: label,
        status: reply.status,
        latency_ms: Math.round(seconds * 1e6) / 1000,
        ...(reply.log.fallback ? {fallback: true} : {}),
        ...(caller === undefined ? {} : {caller}),
        ...loggedInputs(inputs, sampleRate, reply.log.inputs, reply.log.body),
        outputsJson: reply.log.outputsJson(),
      })
    }
    inFlight--
    metrics.inFlight.dec()
    if (inFlight === 0 && idleWaiters.length > 0) {
      for (const wake of idleWaiters) wake()
      idleWaiters = []
    }
  }

  function findRoute(path: string): {route: Route; params: string[]} | undefined {
    // The inference route of this model is nearly every request: a set lookup before the patterns.
    if (inferPaths.has(path)) return {route: inferRoute, params: modelParams}
    for (const {pattern, route} of routes) {
      const m = pattern.exec(path)
      if (m) return {route, params: m.slice(1).filter((p) => p !== undefined)}
    }
    return undefined
  }

  function answerOf(reply: Reply, id: string): ServerAnswer {
    const headers = [
      'content-type',
      reply.contentType ?? (reply.binary ? BINARY_TYPE : JSON_TYPE),
      'date',
      httpDate(),
      'x-request-id',
      id,
      'x-model-version',
      version,
    ]
    if (reply.headers) for (const name in reply.headers) headers.push(name, reply.headers[name])
    if (reply.bytes) return {status: reply.status, headers, body: reply.bytes}
    if (!reply.binary) return {status: reply.status, headers, body: reply.body}
    // The JSON, then every output tensor's bytes: Inference-Header-Content-Length says where the JSON ends.
    const json = Buffer.from(reply.body)
    headers.push(HEADER_LENGTH, String(json.length))
    return {status: reply.status, headers, body: Buffer.concat([json, ...reply.binary])}
  }

  /** Requests the HTTP server refuses before they reach a route (too large, too slow, not HTTP): answered and counted like the others. */
  function refusal(status: number, message: string, url: string | undefined): ServerAnswer {
    const path = url === undefined ? '' : pathOf(url)
    const error = status === 413 ? tooLarge(settings.maxBodyBytes) : new HttpError(status, statusName(status), message)
    metrics.requests.inc({route: findRoute(path)?.route.label ?? 'other', status: String(status), version})
    return answerOf(errorReply(error, path.startsWith('/v2')), requestId(undefined))
  }

  const server = new HttpServer(
    {
      maxBodyBytes: settings.maxBodyBytes,
      requestTimeoutMs: Math.max(60_000, settings.timeoutMs * 2),
      keepAliveTimeoutMs: 65_000,
      maxConnections: options.maxConnections ?? settings.maxConnections,
      refusal,
      alignBody: (headers) => Number(headerValue(headers, HEADER_LENGTH)) || 0,
      ...(settings.tls ? {tls: readTls(settings.tls)} : {}),
    },
    (req, respond) => void handle(req, respond),
  )
  const stopWatching = settings.tls
    ? watchTls(
        settings.tls,
        (tls) => server.setSecureContext(tls),
        (line) => process.stderr.write(`mlops serve: ${line}\n`),
      )
    : () => undefined

  return {
    get url() {
      return url
    },
    get ready() {
      return ready && !draining
    },
    get warmupSource() {
      return warmupSource
    },
    engine,
    metrics,
    warnings,
    async listen(port = settings.port, host = settings.host) {
      const address = await server.listen(port, host)
      url = `${settings.tls ? 'https' : 'http'}://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`
      const result = await warmUp(engine, pipeline, options.warmup)
      warmupSource = result.source
      if (result.warning) warnings.push(result.warning)
      ready = true
      return url
    },
    async drain(timeoutMs = 30_000) {
      draining = true
      stopWatching()
      // Idle connections close now; the others after their last answer, which says connection: close, so clients move on.
      const closed = server.close()
      const idle =
        inFlight === 0
          ? Promise.resolve(true)
          : new Promise<boolean>((resolve) => idleWaiters.push(() => resolve(true)))
      const drained = await Promise.race([idle, sleep(timeoutMs, false, {ref: false})])
      // Clients have a moment to read their last answers and close; whoever is still connected then is cut off.
      await Promise.race([closed, sleep(1000, undefined, {ref: false})])
      server.destroyAll()
      await engine.idle()
      await requestLog?.close()
      await feedbackLog?.close()
      return drained
    },
    async close() {
      draining = true
      stopWatching()
      const closed = server.close()
      server.destroyAll()
      await closed
      // Queued runs still finish, so the caller may release the session once close resolves.
      await engine.idle()
      await requestLog?.close()
      await feedbackLog?.close()
    },
  }
}

/** The request's inputs as JSON for the request log: tensors sent as binary data get their values, as if sent as JSON. */
function inputsForLog(value: unknown, request: InferRequest): unknown {
  return (value as {inputs: Record<string, unknown>[]}).inputs.map((input) => {
    if (input.data !== undefined) return input
    const tensor = request.feeds[input.name as string]
    return {
      name: input.name,
      shape: [...tensor.dims],
      datatype: datatypeOf(tensor.type as Dtype),
      data: valuesToJson(tensor.type, tensor.data),
    }
  })
}

/**
 * The image output to answer as PNG bytes, when the Accept header prefers image/png to JSON (`Accept: image/png`); 406
 * when it does but the answer cannot be one PNG (several records, or no image output, or several).
 */
function imageAnswer(accept: string | undefined, records: number, images: readonly string[] = []): string | undefined {
  if (accept === undefined || !prefersPng(accept)) return undefined
  if (images.length !== 1)
    throw new HttpError(
      406,
      'NOT_ACCEPTABLE',
      images.length === 0
        ? 'this model has no image output (pipeline.outputs[].image) to answer as image/png; accept application/json'
        : `this model has ${images.length} image outputs (${images.join(', ')}); image/png answers one: accept application/json`,
    )
  if (records !== 1)
    throw new HttpError(
      406,
      'NOT_ACCEPTABLE',
      `image/png answers one record and this request has ${records}; send one, or accept application/json (each PNG in base64)`,
      'instances',
    )
  return images[0]
}

/** Whether an Accept header ranks image/png above application/json (negotiator: q-values, specificity, then the client's order). */
function prefersPng(accept: string): boolean {
  return (
    new Negotiator({headers: {accept: accept.slice(0, 1000)}}).mediaType(['application/json', 'image/png']) ===
    'image/png'
  )
}

function isServerFault(error: unknown): boolean {
  return error instanceof HttpError ? error.status >= 500 && error.status !== 503 : true
}

function errorReply(error: unknown, v2: boolean): Reply {
  if (error instanceof HttpError) {
    if (error.status >= 500 && error.status !== 503 && error.status !== 504) logServerError(error)
    // Messages and fields may quote the request (a field name, a path): never more than a few hundred characters of it.
    const fields = error.field === undefined ? {} : {field: clip(error.field, 200)}
    const message = clip(error.message, 400)
    // The Open Inference Protocol's error is {"error": "<message>"}; code and field ride alongside it there.
    const body = v2 ? {error: message, code: error.code, ...fields} : {error: {code: error.code, message, ...fields}}
    return {status: error.status, body: JSON.stringify(body), headers: error.headers}
  }
  logServerError(error)
  const message = 'internal server error; see the server log'
  return {
    status: 500,
    body: JSON.stringify(v2 ? {error: message, code: 'INTERNAL'} : {error: {code: 'INTERNAL', message}}),
  }
}

function logServerError(error: unknown): void {
  const detail =
    (error as {detail?: string}).detail ?? (error instanceof Error ? (error.stack ?? error.message) : String(error))
  process.stderr.write(`mlops serve: ${detail}\n`)
}

/** 415 for a body that is not JSON (or, with the binary extension's header, not JSON followed by bytes). */
function checkContentType(req: ServerRequest, binary: boolean): void {
  const header = headerValue(req.headers, 'content-type')
  if (header === undefined || header === JSON_TYPE) return
  const type = header.split(';')[0].trim().toLowerCase()
  // Clients of the v2 protocol (tritonclient) often send no content type: JSON is assumed then.
  if (type === '' || type === JSON_TYPE || type.endsWith('+json') || (binary && type === BINARY_TYPE)) return
  throw new HttpError(
    415,
    'UNSUPPORTED_MEDIA_TYPE',
    `content type ${type} is not supported; send application/json${binary ? ' or application/octet-stream' : ''}`,
    undefined,
    {accept: JSON_TYPE},
  )
}

/** A path segment decoded, or as sent when its escapes are malformed (it then names no model, and gets a 404). */
function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}

/** The binary tensor data extension's header, when the request has one. */
function headerLength(req: ServerRequest): number | undefined {
  const header = headerValue(req.headers, HEADER_LENGTH)
  if (header === undefined) return undefined
  if (!/^\d{1,15}$/.test(header.trim()))
    throw badRequest(
      'BAD_HEADER',
      `Inference-Header-Content-Length must be the length in bytes of the JSON at the start of the body, not "${clip(header)}"`,
      HEADER_LENGTH,
    )
  return Number(header)
}

function parseBody(bytes: Buffer, maxDepth: number): unknown {
  const text = bytes.toString('utf8')
  try {
    return parseJson(text, {maxDepth})
  } catch (error) {
    // Looked at only once parsing failed: an empty body is the likelier mistake to name.
    if (text.trim() === '') throw badRequest('EMPTY_BODY', 'the request body is empty; send a JSON object')
    throw badRequest('INVALID_JSON', (error as JsonSyntaxError).message)
  }
}

function tooLarge(limit: number): HttpError {
  return new HttpError(
    413,
    'BODY_TOO_LARGE',
    `the request body is over ${limit} bytes (serving.max_body_mb); send fewer records per request`,
  )
}

// Request ids the server makes: a random prefix per process and a counter, in the shape of a UUID; no entropy per request.
const ID_PREFIX = randomBytes(12)
  .toString('hex')
  .replace(/^(.{8})(.{4})(.{4})(.{4})(.{4})$/, '$1-$2-$3-$4-$5')
let idCounter = 0

/** The caller's x-request-id when it is printable ASCII of a sane length, else a new one. */
function requestId(header: string | undefined): string {
  if (header !== undefined && header.length > 0 && header.length <= 200 && /^[\x21-\x7e]+$/.test(header)) return header
  idCounter = (idCounter + 1) % 0x1_0000_0000
  return ID_PREFIX + idCounter.toString(16).padStart(8, '0')
}
