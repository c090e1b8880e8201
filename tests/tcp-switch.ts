import { connect, createServer, type Socket } from 'node:net'

/**
 * What the switch does with traffic: `pass` forwards both ways; `blackhole` accepts connections
 * and forwards nothing, so requests are never answered (nor received); `swallow` delivers
 * requests upstream but drops the answers, so the service acts on what its client never hears of.
 */
export type SwitchMode = 'pass' | 'blackhole' | 'swallow'

/**
 * A TCP hop in front of a service whose behaviour the test switches at run time. Setting `pass`
 * again closes the connections that lost traffic, as a network that heals leaves them dead.
 */
export const startTcpSwitch = async (target: URL) => {
  let mode: SwitchMode = 'pass'
  const connections = new Set<{ client: Socket; upstream: Socket; hasLost: boolean }>()
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname)
    const connection = { client, upstream, hasLost: false }
    connections.add(connection)
    client.on('data', (chunk) => {
      if (mode === 'blackhole') connection.hasLost = true
      else upstream.write(chunk)
    })
    upstream.on('data', (chunk) => {
      if (mode === 'pass') client.write(chunk)
      else connection.hasLost = true
    })
    const close = () => {
      connections.delete(connection)
      client.destroy()
      upstream.destroy()
    }
    for (const socket of [client, upstream]) {
      socket.on('close', close)
      socket.on('error', close)
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  return {
    url: `http://127.0.0.1:${port}`,
    /** Connections held open right now. */
    get openConnections() {
      return connections.size
    },
    set: (next: SwitchMode) => {
      mode = next
      if (next !== 'pass') return
      for (const connection of connections) {
        if (connection.hasLost) {
          connection.client.destroy()
          connection.upstream.destroy()
        }
      }
    },
    close: async () => {
      for (const { client, upstream } of connections) {
        client.destroy()
        upstream.destroy()
      }
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
