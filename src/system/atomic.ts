// The one place state reaches the disk: temp file, fsync, rename, so a crash never leaves a half-written file.
import {type FileHandle, mkdir, readFile, stat, writeFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import writeFileAtomic from 'write-file-atomic'

import {MlopsError, UsageError} from '../errors.js'

/**
 * mkdir -p, one level at a time. Not Node's `recursive` option: on a path under /proc or /sys it retries forever (Node 20),
 * which hung a model server whose request log was configured there.
 */
export async function makeDirectory(path: string): Promise<void> {
  try {
    await mkdir(path)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'EEXIST') {
      if ((await stat(path)).isDirectory()) return
      throw diskError(path, error)
    }
    if (code !== 'ENOENT' || dirname(path) === path) throw diskError(path, error)
    await makeDirectory(dirname(path))
    await mkdir(path).catch((again: NodeJS.ErrnoException) => {
      if (again.code !== 'EEXIST') throw diskError(path, again)
    })
  }
}

/**
 * For an append-only file of lines (the ledger, the request log) opened with 'a+': "\n" when its last line was torn by a
 * crash, so the next line starts on its own and the torn one stays one unreadable line rather than spoiling two.
 */
export async function tornLineEnd(handle: FileHandle, size: number): Promise<string> {
  if (size === 0) return ''
  const {buffer} = await handle.read(Buffer.alloc(1), 0, 1, size - 1)
  return buffer[0] === 0x0a ? '' : '\n'
}

export async function writeFileAtomically(path: string, data: string | Buffer, mode?: number): Promise<void> {
  await makeDirectory(dirname(path))
  try {
    // A report sent to a device or a pipe (--junit /dev/stdout) is written into it: a rename would replace the device.
    const existing = await stat(path).catch(() => undefined)
    if (existing?.isDirectory())
      throw new UsageError('PATH_IS_DIRECTORY', `${path} is a directory, so no file can be written there`, {
        hint: `Name a file inside it, e.g. ${join(path, 'report')}.`,
      })
    if (existing && !existing.isFile()) return await writeFile(path, data)
    await writeFileAtomic(path, data, {fsync: true, mode})
  } catch (error) {
    throw diskError(path, error)
  }
}

export async function writeJsonAtomically(path: string, value: unknown, mode?: number): Promise<void> {
  await writeFileAtomically(path, JSON.stringify(value, null, 2) + '\n', mode)
}

export async function readJson<T>(path: string): Promise<T | undefined> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
  try {
    return JSON.parse(text) as T
  } catch (error) {
    throw new MlopsError('STATE_CORRUPT', `${path} is not valid JSON: ${(error as Error).message}`, {
      hint: `Restore ${path} from a backup or remove it.`,
    })
  }
}

export function diskError(path: string, error: unknown): Error {
  const code = (error as NodeJS.ErrnoException).code
  if (code === 'ENOSPC')
    return new MlopsError('DISK_FULL', `No space left on the device while writing ${path}`, {
      hint: 'Free some disk space and run the command again; nothing half-written was kept.',
      cause: error,
    })
  if (code === 'EACCES' || code === 'EPERM')
    return new MlopsError('PERMISSION_DENIED', `Permission denied writing ${path}`, {
      hint: 'Check the folder permissions, or run with --dir pointing at a writable project.',
      cause: error,
    })
  return error as Error
}
