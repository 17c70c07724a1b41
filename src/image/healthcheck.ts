// The HEALTHCHECK of the image "mlops build" makes: `node healthcheck.js [PORT]` exits 0 when the model server in this
// container answers /v2/health/ready with 200, asking over HTTPS when the server serves HTTPS by the rule "mlops serve"
// follows (MLOPS_TLS_CERT and MLOPS_TLS_KEY, or tls.crt and tls.key in MLOPS_TLS_DIR). Small on purpose: it runs every
// 10 s, so it loads no more than node:http(s) and that rule.
import {get as httpGet} from 'node:http'
import {get as httpsGet} from 'node:https'

import {tlsFiles} from '../http/tls.js'

const TIMEOUT_MS = 2500

function ready(port: number, https: boolean): Promise<boolean> {
  const target = {host: '127.0.0.1', port, path: '/v2/health/ready', timeout: TIMEOUT_MS}
  return new Promise((resolve) => {
    const answered = (response: {statusCode?: number; resume: () => void}) => {
      response.resume()
      resolve(response.statusCode === 200)
    }
    // The certificate names the service, not 127.0.0.1, and is the clients' to check: this asks its own container.
    const request = https ? httpsGet({...target, rejectUnauthorized: false}, answered) : httpGet(target, answered)
    request.on('timeout', () => request.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)))
    request.on('error', (error) => {
      process.stderr.write(`not ready: ${error.message}\n`)
      resolve(false)
    })
  })
}

async function main(): Promise<number> {
  const port = Number(process.argv[2] ?? '8080')
  const {MLOPS_TLS_CERT: cert, MLOPS_TLS_KEY: key, MLOPS_TLS_DIR: dir} = process.env
  return (await ready(port, tlsFiles({cert, key, dir}) !== undefined)) ? 0 : 1
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (error: Error) => {
    process.stderr.write(`not ready: ${error.message}\n`)
    process.exitCode = 1
  },
)
