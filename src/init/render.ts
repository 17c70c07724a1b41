// Fills the `{{var}}` placeholders of the files in templates/; the templates stay readable files, not strings in code.
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {templatesDir} from '../paths.js'

// `${{ … }}` is a GitHub Actions expression, not ours: a `$` right before the braces leaves them alone.
const PLACEHOLDER = /(?<!\$)\{\{\s*([A-Za-z][A-Za-z0-9]*)\s*\}\}/g

export function renderTemplate(text: string, vars: Record<string, string>, source = 'template'): string {
  return text.replace(PLACEHOLDER, (_match, key: string) => {
    // A placeholder without a value is a bug in mlops, not in the user's input: fail loudly rather than write "{{x}}".
    if (!(key in vars)) throw new Error(`${source} uses {{${key}}}, which init does not provide`)
    return vars[key]
  })
}

export async function renderTemplateFile(relativePath: string, vars: Record<string, string>): Promise<string> {
  const text = await readFile(join(templatesDir, relativePath), 'utf8')
  return renderTemplate(text, vars, `templates/${relativePath}`)
}
