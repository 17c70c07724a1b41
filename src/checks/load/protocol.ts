// What the load generator process is asked to do and what it reports back, over its IPC channel (started by start() in src/system/exec.ts).

export interface LoadRequest {
  path: string
  body: string
}

export interface LoadJob {
  /** Origin of the server, e.g. http://127.0.0.1:8080. */
  origin: string
  /** Sent round-robin. */
  requests: LoadRequest[]
  mode: 'open' | 'closed'
  /** Requests per second (open model). */
  rate?: number
  /** Users (closed model) or the most connections (open model). */
  concurrency: number
  warmupMs: number
  durationMs: number
  timeoutMs: number
}

export interface LoadProgress {
  type: 'progress'
  elapsedMs: number
  phase: 'warmup' | 'measure' | 'drain'
  sent: number
  completed: number
  failed: number
}

export interface LoadOutcome {
  type: 'result'
  /** Requests whose intended send time fell in the measured window (after warm-up). */
  measured: number
  /** Of those, answered (any status) or failed (network, timeout): everything but what was still pending at the end. */
  completed: number
  ok: number
  /** HTTP status ("200", "500") or failure kind ("timeout", "refused", "reset", "error") → count. */
  statuses: Record<string, number>
  /** Seconds from the start of the measured window to the last measured completion (at least the window). */
  elapsedS: number
  /** HDR histograms in microseconds, compressed base64: from the intended send time, and from the actual send. */
  latency: string
  service: string
  /** How late the generator sent, against its schedule (open model), microseconds, compressed base64. */
  lag: string
  /** Event-loop utilisation of the generator process over the run (0..1). */
  elu: number
  /** The first few failure messages, for the report. */
  samples: string[]
}

export type WorkerMessage = LoadProgress | LoadOutcome | {type: 'error'; message: string}
