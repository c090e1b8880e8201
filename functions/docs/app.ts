import { createApi } from '../../lib/http/api.ts'
import { buildOpenApiDocument } from '../../lib/http/openapi.ts'
import type { Logger } from '../../lib/logger.ts'

const DOCS_PAGE = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>Chat system API</title>
    <meta name="viewport" content="width=device-width, initial-scale=1" />
  </head>
  <body>
    <script id="api-reference" data-url="/openapi.json"></script>
    <script src="https://cdn.jsdelivr.net/npm/@scalar/api-reference@1"></script>
    <noscript>The description is at <a href="/openapi.json">/openapi.json</a>.</noscript>
  </body>
</html>
`

export const createDocsApp = (deps: { logger: Logger }) => {
  const document = buildOpenApiDocument()
  return createApi(deps.logger)
    .get('/openapi.json', (c) => c.json(document))
    .get('/docs', (c) => c.html(DOCS_PAGE))
}
