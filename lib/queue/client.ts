import { SQSClient } from '@aws-sdk/client-sqs'
import type { Config } from '../config.ts'

/**
 * The SQS client, always with an explicit endpoint. On AWS the SDK's default chain finds the
 * credentials (Lambda's role comes with a session token); emulators (LocalStack, fauxqs) accept
 * any, so off AWS the client takes the configured keys or dummy ones instead of searching profiles.
 */
export const createSqsClient = (config: Config) => {
  const isAws = new URL(config.SQS_ENDPOINT).hostname.endsWith('.amazonaws.com')
  const credentials = isAws
    ? undefined
    : {
        accessKeyId: config.AWS_ACCESS_KEY_ID ?? 'local',
        secretAccessKey: config.AWS_SECRET_ACCESS_KEY ?? 'local',
      }
  const client = new SQSClient({
    region: config.AWS_REGION,
    endpoint: config.SQS_ENDPOINT,
    ...(credentials && { credentials }),
    maxAttempts: 2,
    // A bound on a silent socket for every call, long polls included (they wait up to 20 s);
    // request-path calls have a tighter deadline of their own (SQS_TIMEOUT_MS).
    requestHandler: { connectionTimeout: 2_000, socketTimeout: 30_000 },
    // No MD5 of every body sent and received, compared with the one SQS computed: TLS (TCP's own
    // checksum on a local network) already guards the bytes, and every body is JSON that the
    // consumers parse and validate. It was a fifth of the SDK's CPU on a 250-job call.
    md5: false,
  })
  // The SDK's logger middleware builds a redacted copy of every call's input and output and hands
  // it to the logger, the no-op default included; this project logs its own SQS failures.
  client.middlewareStack.remove('loggerMiddleware')
  return client
}

/** Send options that give up on an SQS call, retries included, after `ms`. */
export const deadline = (ms: number) => ({ abortSignal: AbortSignal.timeout(ms) })
