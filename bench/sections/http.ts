// The http section: bare Hono's JSON POST against the project's no-op behind its middleware and
// against its two creates, and bare Hono's GET /health against the project's.
import { type BenchRun, interleaved, load, ROUNDS, sections, show } from '../harness.ts'
import { benchBody } from '../persistence.ts'
import { compare } from '../report.ts'

export const NOOP_BODY = '{"body":"hello, world"}'
/** A message create's body, the same in every section that creates messages. */
export const MESSAGE_BODY = JSON.stringify({ body: benchBody(42) })

/**
 * Warms both servers' JIT and pools, and with the http section the creates' paths (numbering,
 * SQS) too: the first round of a cold create path otherwise weighs on its mean. Gives the jobs
 * the creates queued, which the persistence section drains with the rest.
 */
export const warmUp = async ({ bare, server, writer }: BenchRun) => {
  await Promise.all([
    load({ url: `${bare}/noop`, method: 'POST', body: NOOP_BODY, durationS: 2, connections: 20 }),
    load({ url: `${server}/bench/noop`, method: 'POST', body: NOOP_BODY, durationS: 2, connections: 20 }),
  ])
  let queued = 0
  if (sections.has('http')) {
    const creates = [
      [`/applications/${writer.token}/chats`, '{"title":"bench"}'],
      [`/applications/${writer.token}/chats/1/messages`, MESSAGE_BODY],
    ] as const
    for (const [path, body] of creates) {
      const warm = await load({
        url: `${server}${path}`,
        method: 'POST',
        body,
        durationS: 2,
        connections: 20,
      })
      queued += warm.accepted
    }
  }
  return queued
}

/** The comparisons; gives the jobs the creates queued and the message creates' rate. */
export const benchHttp = async ({ bare, server, writer }: BenchRun) => {
  console.log(`\n# HTTP: bare Hono vs the project, ${ROUNDS} rounds alternating`)
  const [bareFigures, noopFigures, chatFigures, messageFigures] = await interleaved([
    { url: `${bare}/noop`, method: 'POST', body: NOOP_BODY },
    { url: `${server}/bench/noop`, method: 'POST', body: NOOP_BODY },
    { url: `${server}/applications/${writer.token}/chats`, method: 'POST', body: '{"title":"bench"}' },
    { url: `${server}/applications/${writer.token}/chats/1/messages`, method: 'POST', body: MESSAGE_BODY },
  ])
  show('bare Hono: JSON POST parsing its body', bareFigures!)
  show('project: no-op POST behind the middleware', noopFigures!)
  show('project: POST …/chats', chatFigures!)
  show('project: POST …/chats/1/messages', messageFigures!)
  compare('no-op POST behind the middleware', bareFigures!, noopFigures!, { minRatio: 0.8 })
  compare('POST /applications/:token/chats', bareFigures!, chatFigures!, {
    minRatio: 0.5,
    maxP99Factor: 2,
  })
  compare('POST …/chats/:chat/messages', bareFigures!, messageFigures!, {
    minRatio: 0.5,
    maxP99Factor: 2,
  })
  const [bareHealth, health] = await interleaved([{ url: `${bare}/health` }, { url: `${server}/health` }])
  show('bare Hono: GET /health', bareHealth!)
  show('project: GET /health', health!)
  compare('GET /health', bareHealth!, health!, { minRatio: 0.8 })
  return {
    queued: chatFigures!.accepted + messageFigures!.accepted,
    maxMessageRate: messageFigures!.requests_per_s,
  }
}
