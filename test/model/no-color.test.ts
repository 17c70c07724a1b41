// NO_COLOR reaches onnxruntime too: its log lines (red, terminal or not) are left out, and its error still comes back.
import assert from 'node:assert/strict'
import {join} from 'node:path'

import {execa} from 'execa'

import {packageRoot} from '../../src/paths.js'
import {MODELS_DIR} from '../support/cli.js'

// Audio far too short for silero's STFT padding: the Pad kernel fails, and onnxruntime logs it before throwing.
const script = `
import * as ort from 'onnxruntime-node'
import {loadModel, runModel} from './src/model/signature.ts'
const model = await loadModel(${JSON.stringify(join(MODELS_DIR, 'silero_vad_v5.onnx'))})
const feeds = {
  input: new ort.Tensor('float32', new Float32Array(8), [1, 8]),
  state: new ort.Tensor('float32', new Float32Array(256), [2, 1, 128]),
  sr: new ort.Tensor('int64', BigInt64Array.from([16000n]), []),
}
await runModel(model, feeds).then(() => console.log('ran'), (error) => console.log('threw: ' + error.message.split('\\n')[0]))
`

const ESC = '\u001B'

async function runWith(env: Record<string, string>) {
  const result = await execa('node', ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: packageRoot,
    env,
    reject: false,
  })
  return {stdout: String(result.stdout), stderr: String(result.stderr)}
}

describe('NO_COLOR and onnxruntime', function () {
  this.timeout(60_000)

  it('onnxruntime prints no coloured line under NO_COLOR, and the failure still reaches the caller', async () => {
    const plain = await runWith({NO_COLOR: '1'})
    assert.match(plain.stdout, /^threw: Non-zero status code returned while running If node/)
    assert.ok(!plain.stderr.includes(`${ESC}[`), plain.stderr)
    // Without NO_COLOR the same run logs the kernel's failure in red: what the test above would catch.
    const coloured = await runWith({NO_COLOR: ''})
    assert.ok(coloured.stderr.includes(`${ESC}[1;31m`) && coloured.stderr.includes('ExecuteKernel'), coloured.stderr)
  })
})
