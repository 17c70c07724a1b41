// Entry of the detached gateway process: `node main.js --dir PROJECT --port PORT`, started by `mlops deploy`; also of
// its client-port workers (deploy.gateway_workers), which node:cluster starts from the same file. Each loads only its part.
import cluster from 'node:cluster'

if (cluster.isWorker) await (await import('./front-cluster.js')).runFrontWorker()
else await (await import('./gateway-process.js')).runGateway()
