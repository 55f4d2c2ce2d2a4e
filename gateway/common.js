// Shared by serve.js and mock-server.js: logging that never shows the token, and the gRPC server.
import net from 'node:net'

import { log } from 'wechaty-puppet'
import { PuppetServer } from 'wechaty-puppet-service'

/**
 * Route every wechaty log line to stderr (stdout is reserved for the READY line of the mock)
 * and mask the token: PuppetServer logs it at verbose level in its constructor and auth wrapper.
 */
export function installLogRedaction (secrets) {
  const hidden = secrets.filter(s => typeof s === 'string' && s.length > 0)
  log.textPrinter = (_levelTitle, text) => {
    let safe = String(text)
    for (const secret of hidden) {
      safe = safe.split(secret).join('***')
    }
    process.stderr.write(safe + '\n')
  }
}

/** A port nobody listens on right now (used when the caller asks for port 0). */
export async function freePort (host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, host, () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

/**
 * Serve `puppet` over gRPC without TLS (the Python client, wechaty 0.10.x, speaks plain HTTP/2 and
 * sends the token as the :authority header). Keep the gateway on localhost or a private network.
 */
export async function startPuppetServer ({ puppet, host, port, token }) {
  const server = new PuppetServer({
    endpoint: `${host}:${port}`,
    puppet,
    tls: { disable: true },
    token,
  })
  await server.start()
  return server
}
