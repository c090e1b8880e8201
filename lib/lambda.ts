import { loadConfig } from './config.ts'
import { createDeps } from './deps.ts'

/**
 * The deps of a Lambda entry, built once per cold start from the environment. Lambda mode (queues
 * looked up, never created; each job sent at once) follows AWS_LAMBDA_FUNCTION_NAME, which the
 * Lambda runtime sets, so no entry can leave it out.
 *
 * @example export const handler = handle(createGetChatApp(createLambdaDeps(process.env)))
 */
export const createLambdaDeps = (env: Record<string, string | undefined>) =>
  createDeps(loadConfig(env), { isLambda: Boolean(env.AWS_LAMBDA_FUNCTION_NAME) })
