// The packaging half of the bench, in its own process so its peak RSS is only packaging: archive, then store put.
import {writeArchive} from '../../src/artifact/archive.js'
import {ArtifactStore} from '../../src/artifact/store.js'
import type {ArtifactManifest} from '../../src/artifact/types.js'

const [modelPath, storeRoot, mode] = process.argv.slice(2)
const store = new ArtifactStore(storeRoot)
const manifest: Omit<ArtifactManifest, 'files'> = {
  schemaVersion: 1,
  name: 'bench',
  version: '1.0.0',
  model: {
    path: 'model/model.onnx',
    sha256: '',
    size: 0,
    signature: {inputs: [], outputs: []},
    fetches: [],
    warnings: [],
  },
  tool: {name: 'mlops', version: 'bench'},
  runtime: {onnxruntime: 'none', node: process.versions.node},
}

const started = process.hrtime.bigint()
let digest: string
if (mode === 'open') {
  digest = (await store.open('bench@1.0.0')).record.digest
} else {
  const archive = await writeArchive(manifest, [{path: 'model/model.onnx', source: modelPath}], {tmpDir: store.root})
  digest = (await store.put(archive.tmpPath, archive.manifest, archive)).record.digest
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9
console.log(JSON.stringify({seconds, digest, maxRssKb: process.resourceUsage().maxRSS}))
