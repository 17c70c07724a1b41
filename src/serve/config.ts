// The `serving` section of mlops.yaml (typed by schemas/config/serving.schema.json) and the settings the server runs with.
import {availableParallelism} from 'node:os'

import type {AuthConfig, AuthMode, AuthSettings} from '../auth/config.js'
import type {TlsSettings} from '../http/tls.js'
import type {TensorJson} from '../model/tensor.js'
import type {Prediction} from '../pipeline/types.js'

export type LoggedInputs = 'all' | 'sampled' | 'hashed' | 'none'

export interface ServingConfig {
  port?: number
  host?: string
  /** Largest request body accepted, in MB (default 32); past it the server answers 413 without reading further. */
  max_body_mb?: number
  /** Most records in one /v1/predict request (default 10000). */
  max_instances?: number
  /** Client connections open at once (default 1024, shared among the workers); past it new ones are closed at once. */
  max_connections?: number
  /** Model-server processes on the one port, each with its own session (default one per core; 1: a single process). */
  workers?: number
  /** Per-request time limit in ms (default 30000): past it, the fallback or 504. */
  timeout_ms?: number
  /** Requests waiting for the model at most (default 256): past it, 503 with Retry-After. */
  max_queue?: number
  batching?: {enabled?: boolean; max_batch_size?: number; max_wait_ms?: number}
  /** A fixed answer used when inference fails or times out: `prediction` per record for /v1, `outputs` for /v2. */
  fallback?: {prediction?: Prediction; outputs?: Record<string, TensorJson>}
  /** HTTPS: PEM files relative to the project; client_ca requires client certificates it signed (mutual TLS). */
  tls?: {cert: string; key: string; client_ca?: string; upstream_ca?: string}
  /** Who may call: a mode, or a section (see src/auth/config.ts). Default none. */
  auth?: AuthMode | AuthConfig
  request_log?: {
    path?: string
    /** all: every input; sampled: inputs of `sample_rate` of the requests; hashed: a sha256 of the inputs; none. */
    inputs?: LoggedInputs
    sample_rate?: number
    max_mb?: number
    max_files?: number
    /** Entries held in memory while the disk catches up; past it, entries are dropped and counted. */
    buffer?: number
  }
}

export interface BatchingSettings {
  enabled: boolean
  maxBatchSize: number
  maxWaitMs: number
}

export interface RequestLogSettings {
  path: string
  inputs: LoggedInputs
  sampleRate: number
  maxBytes: number
  maxFiles: number
  buffer: number
}

/** What the server runs with: the config with every default filled in. */
export interface ServeSettings {
  port: number
  host: string
  maxBodyBytes: number
  maxInstances: number
  maxConnections: number
  /** Processes serving the port (node:cluster); 1 serves from this process. */
  workers: number
  timeoutMs: number
  maxQueue: number
  batching: BatchingSettings
  fallback?: {prediction?: Prediction; outputs?: Record<string, TensorJson>}
  requestLog?: RequestLogSettings
  /** Callers checked (API keys, JWTs), scopes and rates; absent or mode none: everyone is let in. */
  auth?: AuthSettings
  /** HTTPS with these files (absolute paths), re-read when they change. */
  tls?: TlsSettings
  /** Behind the deploy gateway: the caller it names in x-mlops-caller is logged as the caller. */
  trustCallerHeader?: boolean
  /** Behind the deploy gateway: only requests carrying this token in x-mlops-gateway-token are answered (401 otherwise). */
  gatewayToken?: string
}

export const DEFAULT_PORT = 8080

export function serveSettings(config: ServingConfig = {}, overrides: Partial<ServeSettings> = {}): ServeSettings {
  const log = config.request_log
  return {
    port: config.port ?? DEFAULT_PORT,
    host: config.host ?? '127.0.0.1',
    maxBodyBytes: Math.round((config.max_body_mb ?? 32) * 1024 * 1024),
    maxInstances: config.max_instances ?? 10_000,
    maxConnections: config.max_connections ?? 1024,
    workers: config.workers ?? availableParallelism(),
    timeoutMs: config.timeout_ms ?? 30_000,
    maxQueue: config.max_queue ?? 256,
    batching: {
      enabled: config.batching?.enabled ?? true,
      // 16, not 32: with 32 concurrent clients the image model of bench/serve served ~7% more with runs of 16; its cost per image stops falling past ~8.
      maxBatchSize: config.batching?.max_batch_size ?? 16,
      maxWaitMs: config.batching?.max_wait_ms ?? 0,
    },
    fallback: config.fallback,
    requestLog: log?.path
      ? {
          path: log.path,
          inputs: log.inputs ?? 'all',
          sampleRate: log.sample_rate ?? 0.1,
          maxBytes: Math.round((log.max_mb ?? 64) * 1024 * 1024),
          maxFiles: log.max_files ?? 5,
          buffer: log.buffer ?? 10_000,
        }
      : undefined,
    ...overrides,
  }
}
