// Thin HTTP compatibility proxy between the official @elastic/elasticsearch 9.x client and an
// OpenSearch node. It does exactly three things and nothing else:
//   1. request `content-type` / `accept`: `application/vnd.elasticsearch+json; compatible-with=N`
//      -> `application/json`, `application/vnd.elasticsearch+x-ndjson; compatible-with=N`
//      -> `application/x-ndjson` (OpenSearch answers 406 to the vendor types);
//   2. streams request and response bodies unchanged;
//   3. adds `x-elastic-product: Elasticsearch` to every response (the client's product check).
// Only node: builtins, erasable TypeScript syntax (runs under Node >= 22.6 type stripping and tsx).
import http from 'node:http'
import type { AddressInfo } from 'node:net'

export interface CompatProxy {
  url: string
  close(): Promise<void>
}

const VENDOR_TYPE = /application\/vnd\.elasticsearch\+(json|x-ndjson)\s*;\s*compatible-with\s*=\s*"?\d+"?/gi

/** Rewrites the Elasticsearch vendor media types in a content-type/accept header value. */
export function rewriteMediaType(value: string): string {
  return value.replace(VENDOR_TYPE, (_m, sub: string) => `application/${sub.toLowerCase()}`)
}

// Hop-by-hop headers must not be forwarded (RFC 9110 §7.6.1); the agent manages its own connection.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
])

export async function createCompatProxy(targetUrl: string): Promise<CompatProxy> {
  const target = new URL(targetUrl)
  if (target.protocol !== 'http:')
    throw new Error(`compat-proxy: only http targets are supported: ${targetUrl}`)
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 16 })

  const server = http.createServer((req, res) => {
    const headers: Record<string, string | string[]> = {}
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined || HOP_BY_HOP.has(name)) continue
      if (name === 'content-type' || name === 'accept') {
        headers[name] = Array.isArray(value) ? value.map(rewriteMediaType) : rewriteMediaType(value)
      } else {
        headers[name] = value
      }
    }
    headers.host = target.host
    if (req.headers['transfer-encoding'] !== undefined && req.headers['content-length'] === undefined) {
      headers['transfer-encoding'] = 'chunked'
    }

    const upstream = http.request(
      {
        protocol: target.protocol,
        hostname: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers,
        agent,
      },
      (up) => {
        const outHeaders: Record<string, string | string[]> = {}
        for (const [name, value] of Object.entries(up.headers)) {
          if (value === undefined || HOP_BY_HOP.has(name)) continue
          outHeaders[name] = value
        }
        outHeaders['x-elastic-product'] = 'Elasticsearch'
        res.writeHead(up.statusCode ?? 502, up.statusMessage, outHeaders)
        up.pipe(res)
        up.on('error', () => res.destroy())
      },
    )
    upstream.on('error', (err) => {
      if (res.headersSent) {
        res.destroy(err)
        return
      }
      const body = JSON.stringify({ error: `compat-proxy: upstream error: ${err.message}`, status: 502 })
      res.writeHead(502, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        'x-elastic-product': 'Elasticsearch',
      })
      res.end(body)
    })
    req.on('aborted', () => upstream.destroy())
    req.pipe(upstream)
  })
  server.keepAliveTimeout = 65_000

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo

  let closing: Promise<void> | undefined
  return {
    url: `http://127.0.0.1:${port}`,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
        agent.destroy()
      })
      return closing
    },
  }
}
