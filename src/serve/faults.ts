// Fault injection for testing what sits in front of the server (mlops test, the gateway): read once, free when unset.
import type {OrtTensor} from '../model/tensor.js'
import {makeTensor} from '../model/tensor.js'

export interface Faults {
  /** Extra latency added to every inference, ms. */
  latencyMs: number
  /** Share of inferences that fail (0..1). */
  errorRate: number
  /** A substring of a request body that kills the process, as a crash would. */
  crashOn?: string
  /** Perturb every prediction, so quality gates have something to catch. */
  wrong: boolean
}

export const NO_FAULTS: Faults = {latencyMs: 0, errorRate: 0, wrong: false}

export function readFaults(env: NodeJS.ProcessEnv = process.env): Faults {
  const latencyMs = Number(env.MLOPS_FAULT_LATENCY_MS ?? 0)
  const errorRate = Number(env.MLOPS_FAULT_ERROR_RATE ?? 0)
  const wrong = env.MLOPS_FAULT_WRONG
  return {
    latencyMs: Number.isFinite(latencyMs) && latencyMs > 0 ? latencyMs : 0,
    errorRate: Number.isFinite(errorRate) ? Math.min(1, Math.max(0, errorRate)) : 0,
    crashOn: env.MLOPS_FAULT_CRASH_ON || undefined,
    wrong: Boolean(wrong) && wrong !== '0' && wrong !== 'false',
  }
}

/** The crash fault: SIGKILL ourselves, so nothing drains or flushes, exactly like a crash seen from outside. */
export function crashIfTriggered(faults: Faults, body: string | Buffer): void {
  if (faults.crashOn !== undefined && body.includes(faults.crashOn)) process.kill(process.pid, 'SIGKILL')
}

/** Shifts every value: floats by +1 and 10%, integers by +1, booleans flipped, strings suffixed. */
export function perturb(outputs: Record<string, OrtTensor>): Record<string, OrtTensor> {
  const result: Record<string, OrtTensor> = {}
  for (const [name, tensor] of Object.entries(outputs)) {
    const {type, dims} = tensor
    const data = tensor.data as unknown
    let next: unknown
    if (type === 'string') next = (data as string[]).map((s) => `${s}~`)
    else if (type === 'bool') next = (data as Uint8Array).map((v) => (v ? 0 : 1))
    else if (type === 'int64' || type === 'uint64') next = (data as BigInt64Array).map((v) => v + 1n)
    else if (type === 'float32' || type === 'float64') next = (data as Float32Array).map((v) => v * 1.1 + 1)
    else if (type === 'float16')
      next = (data as Uint16Array).map((v) => v ^ 0x0400) // flips the lowest exponent bit
    else next = (data as Int32Array).map((v) => v + 1)
    result[name] = makeTensor(type as never, next as never, dims)
  }
  return result
}
