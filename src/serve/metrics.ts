// Prometheus metrics of one server: a registry of its own, so servers in one process (tests, bench) never mix counts.
import {Counter, Gauge, Histogram, Registry, collectDefaultMetrics} from 'prom-client'

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]

export class ServeMetrics {
  readonly registry = new Registry()
  readonly requests: Counter<'route' | 'status' | 'version'>
  readonly latency: Histogram<'route' | 'version'>
  readonly inFlight: Gauge
  readonly batchSize: Histogram
  readonly queueTime: Histogram
  readonly inferenceTime: Histogram
  readonly queueDepth: Gauge
  readonly modelLoad: Gauge
  readonly fallbacks: Counter<'reason'>
  readonly rejected: Counter<'reason'>
  readonly logDropped: Counter
  /** Set in a worker of several: /metrics then shows every worker's counts, gathered by the primary. */
  aggregate?: () => Promise<string>

  constructor(options: {processMetrics?: boolean} = {}) {
    const registers = [this.registry]
    this.requests = new Counter({
      name: 'mlops_requests_total',
      help: 'HTTP requests by route, status and model version.',
      labelNames: ['route', 'status', 'version'],
      registers,
    })
    this.latency = new Histogram({
      name: 'mlops_request_duration_seconds',
      help: 'Time from request to response.',
      labelNames: ['route', 'version'],
      buckets: LATENCY_BUCKETS,
      registers,
    })
    this.inFlight = new Gauge({name: 'mlops_requests_in_flight', help: 'Requests being handled now.', registers})
    this.batchSize = new Histogram({
      name: 'mlops_batch_size',
      help: 'Rows in each model run (after adaptive batching).',
      buckets: BATCH_BUCKETS,
      registers,
    })
    this.queueTime = new Histogram({
      name: 'mlops_queue_seconds',
      help: 'Time a request waited for the model.',
      buckets: LATENCY_BUCKETS,
      registers,
    })
    this.inferenceTime = new Histogram({
      name: 'mlops_inference_seconds',
      help: 'Time of each model run.',
      buckets: LATENCY_BUCKETS,
      registers,
    })
    this.queueDepth = new Gauge({name: 'mlops_queue_depth', help: 'Requests waiting for the model.', registers})
    this.modelLoad = new Gauge({
      name: 'mlops_model_load_seconds',
      help: 'Time to load the model into onnxruntime.',
      registers,
      // Across workers: the slowest load, not the sum.
      aggregator: 'max',
    })
    this.fallbacks = new Counter({
      name: 'mlops_fallbacks_total',
      help: 'Responses answered with the configured fallback, by reason.',
      labelNames: ['reason'],
      registers,
    })
    this.rejected = new Counter({
      name: 'mlops_rejected_total',
      help: 'Requests refused before inference: overload, timeout.',
      labelNames: ['reason'],
      registers,
    })
    this.logDropped = new Counter({
      name: 'mlops_request_log_dropped_total',
      help: 'Request log entries dropped because the disk could not keep up.',
      registers,
    })
    if (options.processMetrics) collectDefaultMetrics({register: this.registry})
  }

  async render(): Promise<{contentType: string; body: string}> {
    const body = this.aggregate ? await this.aggregate() : await this.registry.metrics()
    return {contentType: this.registry.contentType, body}
  }
}
