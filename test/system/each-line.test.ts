import assert from 'node:assert/strict'
import {PassThrough} from 'node:stream'

import {MAX_LINE_CHARS, eachLine} from '../../src/system/exec.js'

/** The lines eachLine passes on for these chunks. */
async function linesOf(chunks: (string | Buffer)[]): Promise<string[]> {
  const stream = new PassThrough()
  const lines: string[] = []
  eachLine(stream, (line) => lines.push(line))
  for (const chunk of chunks) stream.write(chunk)
  stream.end()
  await new Promise((resolve) => stream.on('end', resolve))
  return lines
}

describe('eachLine', () => {
  it('passes on each line without its newline, empty ones too, and the last one without an end', async () => {
    assert.deepEqual(await linesOf(['a\nb', 'c\n\n', 'd']), ['a', 'bc', '', 'd'])
  })

  it('keeps a character split across chunks whole', async () => {
    const bytes = Buffer.from('é\n')
    assert.deepEqual(await linesOf([bytes.subarray(0, 1), bytes.subarray(1)]), ['é'])
  })

  it('cuts a line longer than MAX_LINE_CHARS into pieces of that length, as it arrives or whole', async () => {
    const long = 'x'.repeat(2 * MAX_LINE_CHARS + 5)
    const pieces = [MAX_LINE_CHARS, MAX_LINE_CHARS, 5]
    assert.deepEqual(
      (await linesOf([`${long}\n`])).map((l) => l.length),
      pieces,
    )
    // Without an end for a while: the full pieces go on at once, so memory stays bounded.
    const stream = new PassThrough()
    const seen: number[] = []
    eachLine(stream, (line) => seen.push(line.length))
    stream.write(long)
    await new Promise((resolve) => setImmediate(resolve))
    assert.deepEqual(seen, [MAX_LINE_CHARS, MAX_LINE_CHARS])
    stream.end('\n')
    await new Promise((resolve) => stream.on('end', resolve))
    assert.deepEqual(seen, pieces)
    assert.deepEqual(
      (await linesOf(['y'.repeat(MAX_LINE_CHARS), '\n'])).map((l) => l.length),
      [MAX_LINE_CHARS],
    )
  })
})
