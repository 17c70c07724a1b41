// The pipeline's public face: resolve a mlops.yaml pipeline against the model (package time), then build the runtime pipeline (serve time).
export {createPipeline, type CreatePipelineOptions} from './create.js'
export {PipelineInputError} from './errors.js'
export {resolvePipeline, type ReferenceRecords} from './resolve.js'
export {requestSchemaOf} from './request-schema.js'
export type {FeatureSpec, InputAssembly, OutputPostprocess, PipelineSpec, ResolvedPipeline} from './spec.js'
export type {InputRecord, Pipeline, Prediction, RecordIssue} from './types.js'
