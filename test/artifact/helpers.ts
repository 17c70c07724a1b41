// Builders for artifact tests: a small project on disk, manifests, and hand-crafted (hostile) tar archives.
import {createHash} from 'node:crypto'
import {mkdtemp, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {Header} from 'tar'

import type {ArchiveEntry} from '../../src/artifact/archive.js'
import type {ArtifactManifest} from '../../src/artifact/types.js'

export type ManifestInput = Omit<ArtifactManifest, 'files'>

export function tempDir(label: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `mlops-artifact-${label}-`))
}

export function manifestFor(name: string, version: string): ManifestInput {
  return {
    schemaVersion: 1,
    name,
    version,
    model: {
      path: 'model/model.onnx',
      sha256: '',
      size: 0,
      signature: {inputs: [], outputs: []},
      fetches: ['probabilities'],
      warnings: [],
    },
    tool: {name: 'mlops', version: '0.1.0'},
    runtime: {onnxruntime: '1.20.0', node: '20'},
  }
}

/** Bytes that differ per seed, so two versions can have different content. */
export function modelBytes(seed: number, size = 256 * 1024): Buffer {
  const out = Buffer.alloc(size)
  let block = Buffer.from(String(seed))
  for (let offset = 0; offset < size; offset += 32) {
    block = createHash('sha256').update(block).digest()
    block.copy(out, offset)
  }
  return out
}

/** A model file on disk plus a golden file and a buffer entry, as `mlops package` passes them. */
export async function projectEntries(dir: string, seed = 1): Promise<ArchiveEntry[]> {
  const model = join(dir, 'model.onnx')
  const golden = join(dir, 'golden.jsonl')
  await writeFile(model, modelBytes(seed))
  await writeFile(golden, '{"name":"a","input":{"x":1},"expected":{"y":0.5}}\n')
  return [
    {path: 'model/model.onnx', source: model},
    {path: 'golden/golden.jsonl', source: golden},
    {path: 'pipeline/pipeline.json', source: Buffer.from('{"features":[]}\n')},
  ]
}

export interface CraftedEntry {
  path: string
  type?: 'File' | 'Directory' | 'SymbolicLink' | 'Link' | 'CharacterDevice'
  body?: Buffer | string
  linkpath?: string
}

/** A tar written header by header, to build archives `writeArchive` would never produce. */
export function craftTar(entries: CraftedEntry[]): Buffer {
  const blocks: Buffer[] = []
  for (const entry of entries) {
    const body = Buffer.from(entry.body ?? '')
    const header = new Header({
      path: entry.path,
      type: entry.type ?? 'File',
      size: entry.type && entry.type !== 'File' ? 0 : body.length,
      mode: 0o644,
      uid: 0,
      gid: 0,
      mtime: new Date(0),
      linkpath: entry.linkpath ?? '',
    })
    header.encode()
    blocks.push(header.block!)
    if (body.length > 0 && (entry.type ?? 'File') === 'File') {
      blocks.push(body, Buffer.alloc((512 - (body.length % 512)) % 512))
    }
  }
  blocks.push(Buffer.alloc(1024))
  return Buffer.concat(blocks)
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex')
}
