/**
 * The miss runs' floor: the least a Node proxy does for a request, with the same parts
 * Shoal uses (node:http in, an undici Agent out) and nothing else: no cache, no header
 * rules, no metrics. Run as its own process by `run.ts`.
 *
 *   node benchmarks/edge/bare-proxy.ts ORIGIN_PORT   → prints {"port":N} once listening on 127.0.0.1
 */
import http from 'node:http'
import { Agent } from 'undici'
import { serveHelper } from './origin.ts'

const HOP_BY_HOP = ['connection', 'keep-alive', 'transfer-encoding']

async function main(): Promise<void> {
  const originPort = Number(process.argv[2])
  if (!Number.isInteger(originPort) || originPort <= 0) throw new Error('usage: bare-proxy.ts ORIGIN_PORT')
  const origin = `http://127.0.0.1:${originPort}`
  const agent = new Agent({ connections: 64, keepAliveTimeout: 10_000 })
  const server = http.createServer(async (req, res) => {
    try {
      const up = await agent.request({ origin, path: req.url ?? '/', method: 'GET' })
      const headers = { ...up.headers }
      for (const name of HOP_BY_HOP) delete headers[name]
      res.writeHead(up.statusCode, headers)
      for await (const chunk of up.body) res.write(chunk)
      res.end()
    } catch {
      if (!res.headersSent) res.writeHead(502)
      res.end()
    }
  })
  await serveHelper(server)
}

await main()
