// Manifests as one multi-document YAML stream, for --output yaml and --dry-run.
import {stringify} from 'yaml'

export function renderManifests(manifests: unknown[]): string {
  return manifests.map((manifest) => `---\n${stringify(manifest, {lineWidth: 0})}`).join('')
}
