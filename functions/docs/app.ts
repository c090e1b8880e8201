import { docsRoutes } from '../../lib/api/routes.ts'
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
    <script id="api-reference" data-url="${docsRoutes.openApi.path}"></script>
    <script src="https://cdn.jsdelivr.net/npm/@scalar/api-reference@1"></script>
    <noscript>The description is at <a href="${docsRoutes.openApi.path}">${docsRoutes.openApi.path}</a>.</noscript>
  </body>
</html>
`

export const createDocsApp = (deps: { logger: Logger }) => {
  const document = buildOpenApiDocument()
  return createApi(deps.logger)
    .get(docsRoutes.openApi.path, (c) => c.json(document))
    .get(docsRoutes.page.path, (c) => c.html(DOCS_PAGE))
}
