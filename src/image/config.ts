// The `image` section of mlops.yaml, as typed by its JSON Schema in schemas/config/image.schema.json.

export const ENGINE_NAMES = ['docker', 'podman', 'buildah'] as const
export type EngineName = (typeof ENGINE_NAMES)[number]

export interface ImageConfig {
  /** docker, podman or buildah; default the first found on PATH in that order (docker only when its daemon answers). */
  engine?: EngineName
  /** Image name without the tag, e.g. registry.example.com/ml/credit-risk; default the artifact name. */
  repository?: string
  /** Base image of the generated Dockerfile; default a digest-pinned node:20-bookworm-slim. */
  base_image?: string
  /** A Dockerfile of the project's own, relative to the project; without it the generated context is built (a root `Dockerfile` only when named). */
  dockerfile?: string
  /** Build arguments passed to every build (`--build-arg` adds to them). */
  build_args?: Record<string, string>
  /** Generate the en_US.UTF-8 locale (Debian-based images only). Default true. */
  locale?: boolean
  /** Verify the registry's TLS certificate when pushing (podman and buildah). Default true. */
  tls_verify?: boolean
  buildah?: {
    /** Use the vfs storage driver and chroot isolation: for containers and CI runners without overlay or user namespaces. */
    vfs?: boolean
  }
}
