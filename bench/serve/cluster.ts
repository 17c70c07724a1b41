// Two model server processes behind one port (node:cluster), each with its own session: how far the HTTP path gets
// with every core of the machine serving. Prints the URL once both are ready; SIGTERM stops both.
import cluster from 'node:cluster'
import {cpus} from 'node:os'
import {join} from 'node:path'

import {loadModel} from '../../src/model/signature.js'
import {serveSettings} from '../../src/serve/config.js'
import {createModelServer} from '../../src/serve/server.js'
import {MODELS_DIR} from '../../test/support/cli.js'

const [id, port] = process.argv.slice(2)
const workers = cpus().length

if (cluster.isPrimary) {
  let ready = 0
  for (let i = 0; i < workers; i++) {
    cluster.fork().on('message', (message) => {
      if (message === 'ready' && ++ready === workers) process.stdout.write(`http://127.0.0.1:${port}\n`)
    })
  }
  process.on('SIGTERM', () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill()
    process.exit(0)
  })
} else {
  // One intra-op thread each: two processes already fill the cores, and their thread pools would fight over them.
  const model = await loadModel(join(MODELS_DIR, `${id}.onnx`), {intraOpThreads: 1})
  const server = createModelServer({
    model,
    identity: {name: id, version: '1.0.0'},
    settings: serveSettings({batching: {enabled: true}}),
    faults: {latencyMs: 0, errorRate: 0, wrong: false},
  })
  await server.listen(Number(port), '127.0.0.1')
  process.send?.('ready')
}
