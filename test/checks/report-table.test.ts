// The human load table: the errors column says what the failed requests were, not only their share.
import assert from 'node:assert/strict'

import {phaseTable} from '../../src/checks/report.js'
import type {LabelledPhase} from '../../src/checks/types.js'

function phase(statuses: Record<string, number>, errorRate: number): LabelledPhase {
  const latencyMs = {p50: 1, p90: 1, p95: 1, p99: 1, 'p99.9': 1, max: 1, mean: 1}
  return {
    label: 'load',
    mode: 'open',
    rate: 20,
    requests: 40,
    throughput: 20,
    errorRate,
    statuses,
    latencyMs,
    client: {saturated: false, lagP99Ms: 1, elu: 0.1},
  } as unknown as LabelledPhase
}

describe('load phase table', () => {
  it('names timeouts and status codes beside the error rate', () => {
    const text = phaseTable([phase({timeout: 30, '503': 8, '200': 2}, 0.95)])
    assert.match(text, /95\.00% \(timeout 30, HTTP 503 8\)/)
  })

  it('shows the bare rate when every request succeeded', () => {
    const text = phaseTable([phase({'200': 40}, 0)])
    assert.match(text, /0\.00%/)
    assert.doesNotMatch(text, /HTTP 200/)
  })
})
