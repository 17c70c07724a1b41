// GET /openapi.json and /docs: the server's OpenAPI document and a page to read it and send requests (Swagger UI, served
// from the swagger-ui-dist package on this machine; nothing is fetched from the internet).
import {readFile} from 'node:fs/promises'
import {createRequire} from 'node:module'
import {dirname, join} from 'node:path'

import {HttpError} from './errors.js'

export interface DocsAnswer {
  status: number
  body: string
  contentType: string
  headers: Record<string, string>
}

/** The files of swagger-ui-dist the page loads; no other path under /docs is answered. */
const ASSETS: Record<string, string> = {
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'swagger-ui.css': 'text/css; charset=utf-8',
}

// Swagger UI sets inline styles and draws icons from data: URLs; scripts come only from this server.
const PAGE_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"

const INIT = `window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  tryItOutEnabled: true,
  validatorUrl: null,
})
`

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

function page(title: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
`
}

export class ApiDocs {
  private readonly document: string
  private readonly title: string
  private assets = new Map<string, Promise<string>>()

  constructor(document: Record<string, unknown>) {
    this.document = JSON.stringify(document)
    const info = document.info as {title?: string; version?: string} | undefined
    this.title = `${info?.title ?? 'model server'} ${info?.version ?? ''}`.trim()
  }

  /** The answer for a path under /docs or /openapi.json; 404 for any other. */
  async answer(path: string): Promise<DocsAnswer> {
    if (path === '/openapi.json') return this.reply(this.document, 'application/json', {'cache-control': 'no-cache'})
    if (path === '/docs' || path === '/docs/')
      return this.reply(page(this.title), 'text/html; charset=utf-8', {'content-security-policy': PAGE_POLICY})
    const name = path.slice('/docs/'.length)
    if (name === 'init.js') return this.reply(INIT, ASSETS['swagger-ui-bundle.js'])
    const type = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined
    if (!type) throw new HttpError(404, 'NOT_FOUND', `no file ${path}; the API docs are at /docs`)
    let text = this.assets.get(name)
    if (!text) {
      text = readFile(join(swaggerUiDir(), name), 'utf8')
      this.assets.set(name, text)
    }
    return this.reply(await text, type, {'cache-control': 'public, max-age=86400'})
  }

  private reply(body: string, contentType: string, headers: Record<string, string> = {}): DocsAnswer {
    return {status: 200, body, contentType, headers: {'x-content-type-options': 'nosniff', ...headers}}
  }
}

function swaggerUiDir(): string {
  return dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'))
}
