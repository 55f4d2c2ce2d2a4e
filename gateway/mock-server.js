// A test gateway: wechaty-puppet-mock behind the same gRPC PuppetServer as serve.js, plus a small
// HTTP JSON control API (127.0.0.1 only) with which tests play the WeChat side.
//
//   node mock-server.js [--port 0] [--control-port 0] [--token insecure_mock] [--self-id bot --self-name Bot]
//                       [--exit-on-stdin-close]
//
// Env equivalents: WECHATY_PUPPET_SERVER_PORT, MOCK_CONTROL_PORT, WECHATY_PUPPET_SERVICE_TOKEN,
// MOCK_SELF_ID, MOCK_SELF_NAME. Port 0 picks a free port. Once both listen, prints exactly one line on
// stdout:  READY puppet=<port> control=<port>   (all logs go to stderr).
//
// Control API (JSON in, JSON out; errors are 4xx/5xx with {"error": "..."}):
//   GET  /health                                   -> {ok, started, logged_in, self_id}
//   POST /login    {id, name}                      -> {id, name, logged_in}
//        the bot's own account; logged in now if the puppet is started, else as soon as a client starts it
//        (and again after every restart of the puppet by a client).
//   POST /logout                                   -> {ok}
//   POST /contacts {id, name} | [{id, name}, ...]  -> {contacts: [{id, name}]}
//   POST /rooms    {id, topic, member_ids, include_bot=true}
//                                                  -> {id, topic, member_ids}   (id gets "@chatroom" if it has no "@")
//   POST /say      {from, text, room_id?, to?, mention_ids?, mention_bot?, type?="text"|"image"}
//                                                  -> {message_id, text, room_id, mention_ids}
//        room message when room_id is set, else 1-on-1 to `to` (default: the bot). Each mentioned contact
//        is written into the text as WeChat does, "@Name" + U+2005, unless the text already contains "@Name",
//        and its id goes into the message's mentionIdList (what the Python side reads as mention_ids).
//   POST /join     {room_id, member_ids, inviter_id?}   -> {ok}   room-join event (inviter defaults to the room's first member)
//   POST /leave    {room_id, member_ids, remover_id?}   -> {ok}   room-leave event (remover defaults to the leaver)
//   GET  /sent[?min=N&timeout_ms=T]                -> {sent: [{conversation_id, text, mention_ids, at}]}  (in order;
//                                                     with min, answers once N sends are recorded or T ms pass)
//   POST /reset-sent                               -> {cleared: n}
//   POST /fail-sends {count=1, message}            -> {ok}   the next `count` sends fail with Error(message)
import http from 'node:http'
import { parseArgs } from 'node:util'

import * as PUPPET from 'wechaty-puppet'
import { PuppetMock, mock } from 'wechaty-puppet-mock'

import { freePort, installLogRedaction, startPuppetServer } from './common.js'

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    'control-port': { type: 'string' },
    token: { type: 'string' },
    'self-id': { type: 'string' },
    'self-name': { type: 'string' },
    'exit-on-stdin-close': { type: 'boolean' },
  },
})

const HOST = '127.0.0.1'
const token = args.token || process.env.WECHATY_PUPPET_SERVICE_TOKEN || 'insecure_mock'
let puppetPort = Number(args.port ?? process.env.WECHATY_PUPPET_SERVER_PORT ?? 0)
const controlPortWanted = Number(args['control-port'] ?? process.env.MOCK_CONTROL_PORT ?? 0)

installLogRedaction([token])

const mocker = new mock.Mocker()
const puppet = new PuppetMock({ mocker })

/** The bot's own account: {id, name}, set by --self-id or POST /login. */
let botAccount = null
/** Every text the bot sent through the gateway, in order. */
let sent = []
/** Injected failures for the next sends: [{message}]. */
const failures = []
let messageCounter = 0

function contactExists (id) { return mocker.cacheContactPayload.has(id) }
function roomExists (id) { return mocker.cacheRoomPayload.has(id) }

function ensureContact ({ id, name }) {
  if (!id) throw new HttpError(400, 'contact needs an id')
  if (contactExists(id)) {
    const payload = mocker.cacheContactPayload.get(id)
    if (name && payload.name !== name) payload.name = name
    return mocker.ContactMock.load(id)
  }
  return mocker.createContact({ id, name: name || id })
}

function loadContact (id, what = 'contact') {
  if (!contactExists(id)) throw new HttpError(400, `${what} "${id}" does not exist: create it with POST /contacts`)
  return mocker.ContactMock.load(id)
}

function loadRoom (id) {
  if (!roomExists(id)) throw new HttpError(400, `room "${id}" does not exist: create it with POST /rooms`)
  return mocker.RoomMock.load(id)
}

function loginBotIfPossible () {
  if (!botAccount || !puppet.state.active() || puppet.isLoggedIn) return
  mocker.login(mocker.ContactMock.load(botAccount.id))
}

// Re-login the bot account every time a client (re)starts the puppet: a real puppet would restore its session.
puppet.on('start', () => setImmediate(loginBotIfPossible))

// Record what the bot sends. PuppetServer passes the mention ids it received from the Python client;
// the mock itself would drop them, so capture them here.
const originalSendText = puppet.messageSendText.bind(puppet)
puppet.messageSendText = async (conversationId, text, mentionIdList) => {
  if (failures.length > 0) {
    const { message } = failures.shift()
    throw new Error(message)
  }
  const id = await originalSendText(conversationId, text, mentionIdList)
  sent.push({
    at: new Date().toISOString(),
    conversation_id: conversationId,
    mention_ids: [...(mentionIdList || [])],
    text,
  })
  for (const waiter of [...sentWaiters]) waiter()
  return id
}

/** Long-poll support for GET /sent?min=N&timeout_ms=T: tests wait on the bot's sends, never sleep. */
const sentWaiters = new Set()
function waitForSent (min, timeoutMs) {
  if (sent.length >= min) return Promise.resolve()
  return new Promise(resolve => {
    const done = () => {
      if (sent.length < min) return
      clearTimeout(timer)
      sentWaiters.delete(done)
      resolve()
    }
    const timer = setTimeout(() => { sentWaiters.delete(done); resolve() }, timeoutMs)
    sentWaiters.add(done)
  })
}

class HttpError extends Error {
  constructor (status, message) { super(message); this.status = status }
}

function withMentionsInText (text, mentioned) {
  let out = text
  const prefixes = []
  for (const contact of mentioned) {
    const name = contact.payload.name
    if (!out.includes(`@${name}`)) prefixes.push(`@${name}\u2005`)
  }
  out = prefixes.join('') + out
  return out
}

function say (body) {
  const from = loadContact(body.from, 'sender')
  const type = body.type || 'text'
  const id = `msg-${++messageCounter}`
  const payload = {
    id,
    talkerId: from.id,
    timestamp: Date.now(),
    type: PUPPET.types.Message.Text,
  }
  if (type === 'image') {
    payload.type = PUPPET.types.Message.Image // no file behind it: clients must not download it
  } else if (type !== 'text') {
    throw new HttpError(400, `unknown message type "${type}" (text|image)`)
  }

  let text = body.text ?? ''
  let mentionIds = []
  if (body.room_id) {
    const room = loadRoom(body.room_id)
    const ids = [...(body.mention_ids || [])]
    if (body.mention_bot) {
      if (!botAccount) throw new HttpError(400, 'mention_bot needs the bot account: POST /login first')
      if (!ids.includes(botAccount.id)) ids.push(botAccount.id)
    }
    const mentioned = ids.map(mid => loadContact(mid, 'mentioned contact'))
    if (type === 'text') text = withMentionsInText(text, mentioned)
    mentionIds = ids
    Object.assign(payload, { mentionIdList: ids, roomId: room.id })
  } else {
    const to = body.to || botAccount?.id
    if (!to) throw new HttpError(400, '1-on-1 message needs "to" or a bot account (POST /login)')
    loadContact(to, 'recipient')
    payload.listenerId = to
  }
  if (type === 'text') payload.text = text

  mocker.MessageMock.create(payload)
  puppet.emit('message', { messageId: id })
  return { message_id: id, text: type === 'text' ? text : null, room_id: body.room_id || null, mention_ids: mentionIds }
}

const routes = {
  'GET /health': () => ({
    logged_in: puppet.isLoggedIn,
    ok: true,
    self_id: puppet.isLoggedIn ? puppet.currentUserId : null,
    started: puppet.state.active(),
  }),

  'POST /login': (body) => {
    if (!body.id) throw new HttpError(400, 'login needs {id, name}')
    if (puppet.isLoggedIn && puppet.currentUserId !== body.id) {
      throw new HttpError(409, `already logged in as ${puppet.currentUserId}: POST /logout first`)
    }
    ensureContact(body)
    botAccount = { id: body.id, name: body.name || body.id }
    loginBotIfPossible()
    return { ...botAccount, logged_in: puppet.isLoggedIn }
  },

  'POST /logout': async () => {
    await puppet.logout('control api')
    return { ok: true }
  },

  'POST /contacts': (body) => {
    const list = Array.isArray(body) ? body : [body]
    const contacts = list.map(c => ensureContact(c)).map(c => ({ id: c.id, name: c.payload.name }))
    return { contacts }
  },

  'POST /rooms': (body) => {
    if (!body.id) throw new HttpError(400, 'room needs an id')
    const id = body.id.includes('@') ? body.id : `${body.id}@chatroom`
    if (roomExists(id)) throw new HttpError(409, `room "${id}" exists already`)
    const memberIds = [...(body.member_ids || [])]
    memberIds.forEach(mid => loadContact(mid, 'member'))
    if ((body.include_bot ?? true) && botAccount && !memberIds.includes(botAccount.id)) memberIds.push(botAccount.id)
    mocker.createRoom({
      adminIdList: [],
      id,
      memberIdList: memberIds,
      ownerId: body.owner_id || memberIds[0],
      topic: body.topic ?? id,
    })
    return { id, member_ids: memberIds, topic: body.topic ?? id }
  },

  'POST /say': (body) => say(body),

  'POST /join': (body) => {
    const room = loadRoom(body.room_id)
    const members = (body.member_ids || []).map(mid => loadContact(mid, 'member'))
    if (members.length === 0) throw new HttpError(400, 'join needs member_ids')
    const inviterId = body.inviter_id || room.payload.ownerId || room.payload.memberIdList[0]
    const inviter = loadContact(inviterId, 'inviter')
    room.add(...members).by(inviter)
    return { ok: true, room_id: room.id, inviter_id: inviter.id, member_ids: members.map(m => m.id) }
  },

  'POST /leave': (body) => {
    const room = loadRoom(body.room_id)
    const members = (body.member_ids || []).map(mid => loadContact(mid, 'member'))
    if (members.length === 0) throw new HttpError(400, 'leave needs member_ids')
    const remover = loadContact(body.remover_id || members[0].id, 'remover')
    room.remove(...members).by(remover)
    return { ok: true, room_id: room.id, member_ids: members.map(m => m.id) }
  },

  'GET /sent': async (_body, query) => {
    const min = Number(query.get('min') || 0)
    if (min > 0) await waitForSent(min, Math.min(Number(query.get('timeout_ms') || 10000), 60000))
    return { sent }
  },

  'POST /reset-sent': () => {
    const cleared = sent.length
    sent = []
    return { cleared }
  },

  'POST /fail-sends': (body) => {
    const count = Number(body.count ?? 1)
    const message = body.message || 'mock send failure'
    for (let i = 0; i < count; i++) failures.push({ message })
    return { ok: true, pending: failures.length }
  },
}

function readJson (req) {
  return new Promise((resolve, reject) => {
    const chunks = []
    req.on('data', c => chunks.push(c))
    req.on('error', reject)
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8').trim()
      if (!raw) return resolve({})
      try { resolve(JSON.parse(raw)) } catch { reject(new HttpError(400, 'body is not valid JSON')) }
    })
  })
}

const control = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://localhost')
  const path = url.pathname
  const handler = routes[`${req.method} ${path}`]
  let status = 200
  let result
  try {
    if (!handler) throw new HttpError(404, `no route ${req.method} ${path}`)
    const body = req.method === 'POST' ? await readJson(req) : {}
    result = await handler(body, url.searchParams)
  } catch (e) {
    status = e instanceof HttpError ? e.status : 500
    result = { error: e.message }
    if (status === 500) process.stderr.write(`mock-server: ${req.method} ${path} failed: ${e.stack}\n`)
  }
  const data = JSON.stringify(result)
  res.writeHead(status, { 'content-length': Buffer.byteLength(data), 'content-type': 'application/json; charset=utf-8' })
  res.end(data)
})

if (args['self-id'] || process.env.MOCK_SELF_ID) {
  const id = args['self-id'] || process.env.MOCK_SELF_ID
  const name = args['self-name'] || process.env.MOCK_SELF_NAME || id
  ensureContact({ id, name })
  botAccount = { id, name }
}

if (!puppetPort) puppetPort = await freePort(HOST)
const server = await startPuppetServer({ host: HOST, port: puppetPort, puppet, token })
await new Promise((resolve, reject) => {
  control.once('error', reject)
  control.listen(controlPortWanted, HOST, resolve)
})
const controlPort = control.address().port

process.stdout.write(`READY puppet=${puppetPort} control=${controlPort}\n`)

let stopping = false
async function shutdown () {
  if (stopping) return
  stopping = true
  control.close()
  try { await server.stop() } catch { /* exiting anyway */ }
  process.exit(0)
}
process.on('SIGINT', () => void shutdown())
process.on('SIGTERM', () => void shutdown())
if (args['exit-on-stdin-close']) {
  // For test harnesses: die with the process that spawned us even if it never gets to stop us.
  process.stdin.on('end', () => void shutdown())
  process.stdin.on('error', () => void shutdown())
  process.stdin.resume()
}
