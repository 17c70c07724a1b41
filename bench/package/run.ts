// Packaging throughput against sha256sum of the same file in the same run, and the packaging process's peak RSS.
// Run: npx tsx bench/package/run.ts [--size-gb 1]
import {randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {mkdtemp, open, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {parseArgs} from 'node:util'

import {execa} from 'execa'

const TARGET_RATIO = 0.5
const TARGET_RSS_MB = 200
const TIME = '/usr/bin/time'

interface ChildResult {
  seconds: number
  digest: string
  maxRssKb: number
}

const {values} = parseArgs({options: {'size-gb': {type: 'string', default: '1'}}})
const sizeGb = Number(values['size-gb'])
if (!(sizeGb > 0)) throw new Error(`--size-gb must be a positive number, got ${values['size-gb']}`)
const size = Math.round(sizeGb * 1024 ** 3)
const child = fileURLToPath(new URL('child.ts', import.meta.url))
const dir = await mkdtemp(join(tmpdir(), 'mlops-bench-package-'))

try {
  const model = join(dir, 'model.onnx')
  await randomFile(model, size)
  // Both sides read the file from the page cache: one untimed pass warms it for both.
  await execa('sha256sum', [model])

  const hashStart = process.hrtime.bigint()
  await execa('sha256sum', [model])
  const hashSeconds = Number(process.hrtime.bigint() - hashStart) / 1e9

  const pack = await runChild([model, join(dir, 'store'), 'package'])
  const opened = await runChild([model, join(dir, 'store'), 'open'])

  const mbps = (seconds: number) => size / 1e6 / seconds
  const ratio = mbps(pack.result.seconds) / mbps(hashSeconds)
  const rssMb = pack.rssKb / 1024
  console.log(`file            ${(size / 1e6).toFixed(0)} MB of random bytes`)
  console.log(`sha256sum       ${mbps(hashSeconds).toFixed(0)} MB/s`)
  console.log(
    `package         ${mbps(pack.result.seconds).toFixed(0)} MB/s (hash pass + archive pass + store put, ${pack.result.digest.slice(0, 19)}…)`,
  )
  console.log(
    `open            ${mbps(opened.result.seconds).toFixed(0)} MB/s (verify + extract into the cache; not a target)`,
  )
  console.log(
    `ratio           ${ratio.toFixed(2)} of sha256sum  ${ratio >= TARGET_RATIO ? 'PASS' : 'FAIL'} (target ≥ ${TARGET_RATIO})`,
  )
  console.log(
    `peak RSS        ${rssMb.toFixed(0)} MB (${pack.rssSource})  ${rssMb < TARGET_RSS_MB ? 'PASS' : 'FAIL'} (target < ${TARGET_RSS_MB} MB)`,
  )
  console.log(`peak RSS open   ${(opened.rssKb / 1024).toFixed(0)} MB (${opened.rssSource})`)
} finally {
  await rm(dir, {recursive: true, force: true})
}

async function randomFile(path: string, bytes: number): Promise<void> {
  const handle = await open(path, 'w')
  const block = 8 * 1024 * 1024
  try {
    for (let written = 0; written < bytes; written += block)
      await handle.write(randomBytes(Math.min(block, bytes - written)))
  } finally {
    await handle.close()
  }
}

/** Runs the packaging child, under /usr/bin/time -v when there is one, for the peak RSS of the whole process. */
async function runChild(args: string[]): Promise<{result: ChildResult; rssKb: number; rssSource: string}> {
  const node = [process.execPath, '--import', 'tsx', child, ...args]
  const timed = existsSync(TIME)
  const {stdout, stderr} = timed ? await execa(TIME, ['-v', ...node]) : await execa(node[0], node.slice(1))
  const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as ChildResult
  const fromTime = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr)?.[1]
  return fromTime
    ? {result, rssKb: Number(fromTime), rssSource: '/usr/bin/time -v'}
    : {result, rssKb: result.maxRssKb, rssSource: 'process.resourceUsage().maxRSS'}
}
