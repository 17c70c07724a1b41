// The one module that writes files: folders made one level at a time, and files replaced whole, except what is not a file.
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {lstatSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {execa} from 'execa'

import {makeDirectory, writeFileAtomically} from '../../src/system/atomic.js'
import {tempDir} from '../support/cli.js'

describe('atomic writes', () => {
  it("makes nested folders, and fails at once where Node's recursive mkdir spins forever (under /proc)", async () => {
    const dir = await tempDir()
    try {
      await makeDirectory(join(dir.path, 'a', 'b', 'c'))
      await makeDirectory(join(dir.path, 'a', 'b', 'c'))
      assert.ok(lstatSync(join(dir.path, 'a', 'b', 'c')).isDirectory())
      writeFileSync(join(dir.path, 'file'), '')
      await assert.rejects(makeDirectory(join(dir.path, 'file', 'sub')), {code: 'ENOTDIR'})
      await assert.rejects(makeDirectory('/proc/mlops-nope/logs'), {code: 'ENOENT'})
    } finally {
      await dir.remove()
    }
  })

  it('replaces a file whole, and writes into a pipe rather than replacing it', async () => {
    const dir = await tempDir()
    try {
      const file = join(dir.path, 'report.xml')
      writeFileSync(file, 'old')
      await writeFileAtomically(file, 'new')
      assert.equal(readFileSync(file, 'utf8'), 'new')
      await assert.rejects(writeFileAtomically(dir.path, 'x'), {code: 'PATH_IS_DIRECTORY', exitCode: 2})
      const fifo = join(dir.path, 'pipe')
      await execa('mkfifo', [fifo])
      const reader = spawn('cat', [fifo])
      let read = ''
      reader.stdout.on('data', (chunk: Buffer) => (read += chunk.toString()))
      await writeFileAtomically(fifo, '<testsuites/>\n')
      await new Promise((resolve) => reader.once('exit', resolve))
      assert.equal(read, '<testsuites/>\n')
      assert.ok(lstatSync(fifo).isFIFO(), 'still a pipe')
    } finally {
      await dir.remove()
    }
  })
})
