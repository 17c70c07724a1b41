// TLS for the model server and the gateway's client port: certificate and key files (and a client CA for mutual TLS),
// checked to match at start, and re-read when they change so a renewed certificate needs no restart.
import {existsSync, readFileSync, statSync} from 'node:fs'
import {basename, join, resolve} from 'node:path'
import {type SecureContextOptions, createSecureContext} from 'node:tls'

import {UsageError} from '../errors.js'

export interface TlsSettings {
  /** PEM certificate chain, absolute path. */
  cert: string
  /** PEM private key, absolute path. */
  key: string
  /** PEM CA bundle: when set, clients must present a certificate it signed (mutual TLS). */
  clientCa?: string
  /** Gateway only: the CA its model servers' certificates are checked against; with it they serve HTTPS too. */
  upstreamCa?: string
}

/** What a Kubernetes TLS Secret mounted as a volume holds: the certificate chain and its key. */
export const TLS_DIR_CERT = 'tls.crt'
export const TLS_DIR_KEY = 'tls.key'

export interface TlsFileOptions {
  /** --tls-cert or MLOPS_TLS_CERT. */
  cert?: string
  /** --tls-key or MLOPS_TLS_KEY. */
  key?: string
  /** --tls-dir or MLOPS_TLS_DIR: a folder that may hold tls.crt and tls.key (the image's /etc/mlops/tls). */
  dir?: string
}

/**
 * The certificate and key "mlops serve" serves HTTPS with, or undefined for plain HTTP: named files first, else the
 * folder's tls.crt and tls.key when it holds them. A folder that is absent or holds neither means plain HTTP, so one
 * image serves both ways; one file without the other is an error, not a silent fallback to plain HTTP.
 */
export function tlsFiles(options: TlsFileOptions): TlsSettings | undefined {
  if (options.cert && options.key) return {cert: resolve(options.cert), key: resolve(options.key)}
  if (!options.dir) return undefined
  const cert = join(resolve(options.dir), TLS_DIR_CERT)
  const key = join(resolve(options.dir), TLS_DIR_KEY)
  const present = [cert, key].filter((path) => existsSync(path))
  if (present.length === 0) return undefined
  if (present.length === 1) {
    const missing = present[0] === cert ? key : cert
    throw new UsageError(
      'TLS_FILE_MISSING',
      `${options.dir} holds ${basename(present[0])} but not ${basename(missing)}, so it can serve neither HTTPS nor plain HTTP`,
      {
        hint: `Mount both ${TLS_DIR_CERT} and ${TLS_DIR_KEY} there (a Kubernetes TLS Secret has both), or neither to serve plain HTTP.`,
      },
    )
  }
  return {cert, key}
}

/** The files' contents as a secure context's options; a key that does not match its certificate is a usage error. */
export function readTls(settings: TlsSettings): SecureContextOptions {
  const read = (path: string, field: string) => {
    try {
      return readFileSync(path)
    } catch (error) {
      throw new UsageError('TLS_FILE_UNREADABLE', `${field} ${path} cannot be read: ${(error as Error).message}`, {
        hint: 'Point serving.tls.cert and serving.tls.key (or --tls-cert and --tls-key) at readable PEM files.',
      })
    }
  }
  const options: SecureContextOptions = {
    cert: read(settings.cert, 'serving.tls.cert'),
    key: read(settings.key, 'serving.tls.key'),
    ...(settings.clientCa ? {ca: read(settings.clientCa, 'serving.tls.client_ca')} : {}),
  }
  try {
    createSecureContext(options)
  } catch (error) {
    const message = (error as Error).message
    if (/key values mismatch/i.test(message))
      throw new UsageError(
        'TLS_KEY_MISMATCH',
        `the key ${settings.key} does not match the certificate ${settings.cert}`,
        {
          hint: 'Pass the private key the certificate was issued for (openssl x509 -noout -pubkey -in CERT and openssl pkey -pubout -in KEY print the same key).',
        },
      )
    throw new UsageError(
      'TLS_INVALID',
      `${settings.cert} and ${settings.key} are not a usable certificate and key: ${message}`,
      {
        hint: 'Pass PEM files: a certificate chain and its unencrypted private key.',
      },
    )
  }
  return options
}

/**
 * Calls `apply` with fresh options whenever a file's size or mtime changes (polled: renewals replace files, which fs.watch
 * loses). A pair that does not load (a key written before its certificate) is logged and the old one kept.
 */
export function watchTls(
  settings: TlsSettings,
  apply: (options: SecureContextOptions) => void,
  log: (line: string) => void,
  pollMs = 2000,
): () => void {
  const files = [settings.cert, settings.key, settings.clientCa].filter((f): f is string => Boolean(f))
  const stamp = () =>
    files
      .map((f) => {
        try {
          const s = statSync(f)
          return `${s.ino}:${s.size}:${s.mtimeMs}`
        } catch {
          return 'absent'
        }
      })
      .join('|')
  let last = stamp()
  const timer = setInterval(() => {
    const now = stamp()
    if (now === last) return
    last = now
    try {
      apply(readTls(settings))
      log(`TLS: reloaded ${settings.cert}`)
    } catch (error) {
      log(`TLS: keeping the previous certificate: ${(error as Error).message}`)
    }
  }, pollMs)
  timer.unref()
  return () => clearInterval(timer)
}
