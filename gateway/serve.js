// The production gateway: a Wechaty puppet behind a gRPC PuppetServer that the Python bot connects to.
//
//   WECHATY_PUPPET_SERVICE_TOKEN=insecure_<something-long-and-random> npm start
//
// Environment:
//   WECHATY_PUPPET_SERVICE_TOKEN  required; the Python bot must use the same value. Never printed.
//   WECHATY_PUPPET                puppet npm package (default wechaty-puppet-wechat4u, installed).
//                                 Others must be installed first, e.g. `npm install wechaty-puppet-padlocal`
//                                 (+ WECHATY_PUPPET_PADLOCAL_TOKEN) or a WeCom/WorkPro provider; each reads
//                                 its own settings from its own env vars.
//   WECHATY_PUPPET_SERVER_PORT    gRPC port (default 8788).
//   WECHATY_PUPPET_SERVER_HOST    bind address (default 127.0.0.1). TLS is off (the Python client cannot do
//                                 it), so only widen this on a private network (e.g. 0.0.0.0 inside docker).
//   WECHATY_LOG                   wechaty log level: silent|error|warn|info|verbose|silly (default info).
//
// The puppet is started here, at once, so the WeChat login (QR scan, printed below) happens in this
// process and survives restarts of the Python bot: the bot re-attaches and receives the login again.
import { resolvePuppet } from 'wechaty-puppet/helpers'

import { installLogRedaction, startPuppetServer } from './common.js'

function describeError (e) {
  const raw = e?.gerror ?? e?.data ?? e?.message ?? e
  if (typeof raw !== 'string') return JSON.stringify(raw)
  try { return JSON.parse(raw).message || raw } catch { return raw }
}

function fail (message) {
  process.stderr.write(`gateway: ${message}\n`)
  process.exit(2)
}

const token = process.env.WECHATY_PUPPET_SERVICE_TOKEN
if (!token || !token.trim()) {
  fail('WECHATY_PUPPET_SERVICE_TOKEN is not set. Choose a long random value (e.g. insecure_$(openssl rand -hex 16)),\n'
    + '  export it here and give the same value to the Python bot. Refusing to start.')
}

// Mask the service token and any puppet provider token (WECHATY_PUPPET_PADLOCAL_TOKEN, ...) in all logs.
installLogRedaction(Object.entries(process.env)
  .filter(([name]) => /TOKEN|SECRET|KEY/i.test(name))
  .map(([, value]) => value))

const puppetName = process.env.WECHATY_PUPPET || 'wechaty-puppet-wechat4u'
const host = process.env.WECHATY_PUPPET_SERVER_HOST || '127.0.0.1'
const port = Number(process.env.WECHATY_PUPPET_SERVER_PORT || 8788)
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  fail(`WECHATY_PUPPET_SERVER_PORT must be a port number, got "${process.env.WECHATY_PUPPET_SERVER_PORT}"`)
}

let puppet
try {
  puppet = await resolvePuppet({ puppet: puppetName })
} catch (e) {
  fail(`cannot load puppet "${puppetName}": ${e.message}. Is it installed in gateway/ (npm install ${puppetName})?`)
}

puppet.on('scan', ({ qrcode, status }) => {
  if (qrcode) {
    console.log(`gateway: scan status=${status}: open https://wechaty.js.org/qrcode/${encodeURIComponent(qrcode)} and scan it with the bot's WeChat`)
  } else {
    console.log(`gateway: scan status=${status}`)
  }
})
puppet.on('login', ({ contactId }) => console.log(`gateway: logged in as ${contactId}`))
puppet.on('logout', ({ contactId, data }) => console.log(`gateway: logged out ${contactId} (${data || ''})`))
puppet.on('error', (e) => console.error(`gateway: puppet error: ${describeError(e)}`))

const server = await startPuppetServer({ puppet, host, port, token })
console.log(`gateway: PuppetServer (${puppetName}) listening on ${host}:${port}, TLS off`)

await puppet.start()

let stopping = false
async function shutdown (signal) {
  if (stopping) return
  stopping = true
  console.log(`gateway: ${signal}, stopping`)
  try { await server.stop() } catch (e) { console.error(`gateway: server stop: ${e.message}`) }
  try { await puppet.stop() } catch (e) { console.error(`gateway: puppet stop: ${e.message}`) }
  process.exit(0)
}
process.on('SIGINT', () => void shutdown('SIGINT'))
process.on('SIGTERM', () => void shutdown('SIGTERM'))
