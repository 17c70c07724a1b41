// The one liveness check: a live process, an ended one, and a pid taken over by another process.
import assert from 'node:assert/strict'

import {execa} from 'execa'

import {isAlive, processStart} from '../../src/system/process.js'

describe('isAlive', () => {
  it('is true for a running process and false once it has ended', async () => {
    assert.equal(isAlive({pid: process.pid, started: processStart(process.pid)}), true)
    const child = execa('node', ['-e', ''])
    const pid = child.pid!
    await child
    assert.equal(isAlive({pid}), false)
  })

  it('is false when the pid now belongs to a process started at another time', function () {
    const started = processStart(process.pid)
    if (started === undefined) return this.skip() // no /proc: start times are not known off Linux
    assert.equal(isAlive({pid: process.pid, started: String(Number(started) + 1)}), false)
  })

  it('takes a holder on another host as alive: it cannot be checked from here', () => {
    assert.equal(isAlive({pid: 1 << 22, host: 'elsewhere.invalid'}), true)
  })
})
