#!/usr/bin/env node
// Runs the TypeScript sources directly, for development (oclif registers tsx itself); bin/run.js runs the build.
import {execute} from '@oclif/core'

await execute({development: true, dir: import.meta.url})
