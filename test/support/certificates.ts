// Certificates made by openssl for TLS tests: a CA, server certificates for 127.0.0.1 it signed, a client certificate.
import {join} from 'node:path'

import {execa} from 'execa'

async function openssl(dir: string, args: string[]): Promise<void> {
  await execa('openssl', args, {cwd: dir})
}

/** A CA, a server certificate for 127.0.0.1 signed by it, a client certificate, and a key that matches neither. */
export async function certificates(dir: string): Promise<void> {
  const ext = join(dir, 'san.ext')
  await execa('sh', ['-c', `printf 'subjectAltName=IP:127.0.0.1\\n' > ${ext}`])
  await openssl(dir, [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=test CA',
  ])
  for (const [name, cn] of [
    ['server', '127.0.0.1'],
    ['renewed', '127.0.0.1'],
    ['client', 'client-1'],
  ]) {
    await openssl(dir, [
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=${cn}`,
    ])
    await openssl(dir, [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      '-extfile',
      ext,
    ])
  }
  await openssl(dir, ['genrsa', '-out', 'other.key', '2048'])
}
