// The whole mlops.yaml; each section's type lives with the area that reads it.
import type {ChecksConfig} from '../checks/config.js'
import type {ImageConfig} from '../image/config.js'
import type {PipelineSpec} from '../pipeline/spec.js'
import type {DeployConfig} from '../rollout/config.js'
import type {MonitorConfig} from '../monitor/config.js'
import type {ServingConfig} from '../serve/config.js'

export interface MlopsConfig {
  name: string
  version?: string
  description?: string
  model: {path: string; threads?: number}
  data?: {reference?: string; golden?: string}
  artifacts?: {store?: string}
  pipeline?: PipelineSpec
  serving?: ServingConfig
  checks?: ChecksConfig
  image?: ImageConfig
  deploy?: DeployConfig
  monitor?: MonitorConfig
}
