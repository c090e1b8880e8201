import { describe, expect, it } from 'vitest'
import { testConfig } from '../tests/harness.ts'
import { toEnv } from '../tests/processes.ts'
import { createLambdaDeps } from './lambda.ts'

describe('createLambdaDeps', () => {
  it.each([
    ['in Lambda (AWS_LAMBDA_FUNCTION_NAME set)', { AWS_LAMBDA_FUNCTION_NAME: 'create-chat' }, false],
    ['outside Lambda', {}, true],
  ])(
    '%s: creates the queues only outside Lambda, where they belong to no stack',
    async (_, lambdaEnv, creates) => {
      const env = { ...toEnv(testConfig({ SQS_CREATE_QUEUES: 'true' })), ...lambdaEnv }
      const deps = createLambdaDeps(env)

      const urls = await deps.queueUrls().then(
        (found) => found,
        () => undefined,
      )

      await deps.close()
      expect(urls !== undefined).toBe(creates)
    },
  )
})
