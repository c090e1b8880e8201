// The reads section: the project's GETs against bare Hono + mysql2 running the same SQL, on the
// application and chat that bench/seed.ts wrote (a chat of CHAT_DEPTH messages).
import { type BenchRun, CHAT_DEPTH, interleaved, PAGE, show } from '../harness.ts'
import { compare } from '../report.ts'

export const benchReads = async ({ bare, server, reader }: BenchRun) => {
  console.log(
    `\n# Reads: bare Hono + mysql2 (same SQL) vs the project; chat of ${CHAT_DEPTH.toLocaleString('en')} messages`,
  )
  const paths = [
    ['GET /applications/:token', `/applications/${reader.token}`],
    ['GET …/chats/:chat', `/applications/${reader.token}/chats/1`],
    [
      `GET …/messages?${PAGE} (depth ${CHAT_DEPTH.toLocaleString('en')})`,
      `/applications/${reader.token}/chats/1/messages?${PAGE}`,
    ],
  ] as const
  for (const [name, path] of paths) {
    const [baseline, project] = await interleaved([{ url: `${bare}${path}` }, { url: `${server}${path}` }])
    show(`bare: ${name}`, baseline!)
    show(`project: ${name}`, project!)
    compare(name, baseline!, project!, { minRatio: 0.7 })
  }
}
