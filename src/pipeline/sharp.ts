// sharp (libvips) loaded on first use: a model without image features serves even where libvips cannot load
// (a slim base image without a library it links), and one with them fails on its first image, naming the cause.
import type SharpType from 'sharp'

let loading: Promise<typeof SharpType> | undefined

export function loadSharp(): Promise<typeof SharpType> {
  loading ??= import('sharp').then(
    (module) => module.default,
    (error: unknown) => {
      loading = undefined
      // A server fault, not the request's: a plain Error becomes a 500 and the server log keeps sharp's own words.
      throw new Error(`image features need sharp (libvips), which could not load here: ${(error as Error).message}`, {
        cause: error,
      })
    },
  )
  return loading
}
