import { App } from 'aws-cdk-lib'
import { Match, Template } from 'aws-cdk-lib/assertions'
import { beforeAll, describe, expect, it } from 'vitest'
import { allRoutes } from '../../lib/api/routes.ts'
import { configSchema } from '../../lib/config.ts'
import { ChatStack, CONFIG_PARAMETERS, STREAM_TIMEOUT } from '../lib/chat-stack.ts'
import {
  deployableFunctions,
  discoverFunctions,
  FUNCTION_KINDS,
  routesOf,
  toApiGatewayPath,
} from '../lib/functions.ts'

type Resource = { Type: string; Properties: Record<string, unknown> }

const discovered = discoverFunctions()
const ofKind = (kind: string) => discovered.filter((name) => FUNCTION_KINDS[name]?.kind === kind)

let template: Template
let resources: Record<string, Resource>

/** The logical id of the Lambda function deployed for functions/<name>. */
const functionId = (name: string) => {
  const entry = Object.entries(template.findResources('AWS::Lambda::Function')).find(
    ([, resource]) => resource.Properties.Description === `chat system: ${name}`,
  )
  if (!entry) throw new Error(`no Lambda function for ${name}`)
  return entry[0]
}

beforeAll(() => {
  // An empty bundling-stacks list skips esbuild: synthesis runs offline, without an AWS account.
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } })
  const stack = new ChatStack(app, 'ChatSystemTest', {
    env: { account: '123456789012', region: 'eu-west-1' },
  })
  template = Template.fromStack(stack)
  resources = template.toJSON().Resources
}, 120_000)

describe('the function table', () => {
  it('covers every route of lib/api/routes.ts exactly once', () => {
    const served = Object.keys(FUNCTION_KINDS).flatMap((name) => routesOf(name))

    for (const route of allRoutes) {
      const matches = served.filter(
        (r) => r.method === route.method && r.path === toApiGatewayPath(route.path),
      )
      expect(matches, `${route.method} ${route.path}`).toHaveLength(1)
    }
  })

  it('has an entry for every functions/*/lambda.ts', () => {
    expect(() => deployableFunctions()).not.toThrow()
    expect(discovered.length).toBeGreaterThan(0)
  })

  it('refuses a lambda.ts it does not know', () => {
    expect(() => deployableFunctions(['no-such-function'])).toThrow(/no-such-function/)
  })

  it.each([
    ['/applications/:token', '/applications/{token}'],
    ['/applications/:token/chats/:chat{[0-9]+}', '/applications/{token}/chats/{chat}'],
    [
      '/applications/:token/chats/:chat{[0-9]+}/messages/:message{[0-9]+}',
      '/applications/{token}/chats/{chat}/messages/{message}',
    ],
    ['/health', '/health'],
  ])('converts the Hono path %s to %s', (hono, apiGateway) => {
    expect(toApiGatewayPath(hono)).toBe(apiGateway)
  })
})

describe('the synthesized stack', () => {
  it('deploys one Node 24 Lambda per functions/*/lambda.ts', () => {
    template.resourceCountIs('AWS::Lambda::Function', discovered.length)
    for (const name of discovered) {
      expect(resources[functionId(name)]!.Properties).toMatchObject({
        Runtime: 'nodejs24.x',
        Handler: 'index.handler',
      })
    }
  })

  it('sends every other route to a function, so unknown routes get the API error shape', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: '$default' })
  })

  it('routes every HTTP function path and method on the HTTP API to its function', () => {
    const expected = ofKind('http').flatMap((name) =>
      routesOf(name).map((route) => ({ key: `${route.method} ${route.path}`, name })),
    )
    const routes = Object.values(template.findResources('AWS::ApiGatewayV2::Route'))

    template.resourceCountIs('AWS::ApiGatewayV2::Api', 1)
    expect(routes.map((route) => route.Properties.RouteKey).sort()).toEqual(
      [...expected.map((r) => r.key), '$default'].sort(),
    )
    for (const { key, name } of expected) {
      const route = routes.find((r) => r.Properties.RouteKey === key)!
      const integrationId = (route.Properties.Target as { 'Fn::Join': [string, unknown[]] })[
        'Fn::Join'
      ][1][1] as {
        Ref: string
      }
      const integration = resources[integrationId.Ref]!.Properties
      expect(JSON.stringify(integration.IntegrationUri), key).toContain(functionId(name))
    }
  })

  it('serves each streaming function through a response-streaming function URL, ending streams before its timeout', () => {
    const streaming = ofKind('stream')

    expect(streaming).toEqual(['stream-messages'])
    for (const name of streaming) {
      template.hasResourceProperties('AWS::Lambda::Url', {
        TargetFunctionArn: { 'Fn::GetAtt': [functionId(name), 'Arn'] },
        InvokeMode: 'RESPONSE_STREAM',
        AuthType: 'NONE',
      })
      const properties = resources[functionId(name)]!.Properties as {
        Timeout: number
        Environment: { Variables: Record<string, string> }
      }
      expect(properties.Timeout).toBe(STREAM_TIMEOUT.toSeconds())
      expect(Number(properties.Environment.Variables.LIVE_STREAM_MAX_S)).toBeLessThan(properties.Timeout)
    }
    template.resourceCountIs('AWS::Lambda::Url', streaming.length)
  })

  it('feeds each consumer from its queue in batches with partial batch failures', () => {
    const consumers = ofKind('sqs')

    template.resourceCountIs('AWS::Lambda::EventSourceMapping', consumers.length)
    for (const name of consumers) {
      const kind = FUNCTION_KINDS[name]!
      const queueId = kind.kind === 'sqs' ? `${kind.queue[0]!.toUpperCase()}${kind.queue.slice(1)}Queue` : ''
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        FunctionName: { Ref: functionId(name) },
        EventSourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp(`^${queueId}`), 'Arn'] },
        BatchSize: 10,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
      })
    }
  })

  it('gives both queues a dead-letter queue after 5 receives, and a visibility timeout over the consumer timeout', () => {
    const queues = template.findResources('AWS::SQS::Queue')
    const withRedrive = Object.entries(queues).filter(([, queue]) => queue.Properties.RedrivePolicy)

    expect(Object.keys(queues)).toHaveLength(4)
    expect(withRedrive.map(([id]) => id).sort()).toEqual([
      expect.stringMatching(/^ChatsQueue/),
      expect.stringMatching(/^MessagesQueue/),
    ])
    for (const [id, queue] of withRedrive) {
      const target = (queue.Properties.RedrivePolicy as { deadLetterTargetArn: { 'Fn::GetAtt': string[] } })
        .deadLetterTargetArn['Fn::GetAtt'][0]!
      expect(queue.Properties.RedrivePolicy).toMatchObject({ maxReceiveCount: 5 })
      expect(target).toMatch(new RegExp(`^${id.replace(/Queue.*$/, '')}DeadLetterQueue`))
      expect(queue.Properties.VisibilityTimeout).toBeGreaterThanOrEqual(30)
    }
  })

  it('tells every function its dead-letter queues by name and lets it count them, for a re-seed', () => {
    const deadLetterQueues = Object.keys(template.findResources('AWS::SQS::Queue')).filter((id) =>
      /DeadLetterQueue/.test(id),
    )
    const policies = Object.values(template.findResources('AWS::IAM::Policy'))

    for (const name of discovered) {
      const variables = (
        resources[functionId(name)]!.Properties.Environment as { Variables: Record<string, unknown> }
      ).Variables
      expect(variables, name).toMatchObject({
        SQS_CHATS_DEAD_LETTER_QUEUE: {
          'Fn::GetAtt': [expect.stringMatching(/^ChatsDeadLetterQueue/), 'QueueName'],
        },
        SQS_MESSAGES_DEAD_LETTER_QUEUE: {
          'Fn::GetAtt': [expect.stringMatching(/^MessagesDeadLetterQueue/), 'QueueName'],
        },
      })
      const role = (resources[functionId(name)]!.Properties.Role as { 'Fn::GetAtt': string[] })[
        'Fn::GetAtt'
      ][0]
      const statements = policies
        .filter((policy) => JSON.stringify(policy.Properties.Roles).includes(role!))
        .flatMap((policy) => (policy.Properties.PolicyDocument as { Statement: unknown[] }).Statement)
      for (const queue of deadLetterQueues) {
        expect(statements, `${name} on ${queue}`).toContainEqual(
          expect.objectContaining({
            Action: expect.arrayContaining(['sqs:GetQueueAttributes', 'sqs:GetQueueUrl']),
            Resource: { 'Fn::GetAtt': [queue, 'Arn'] },
          }),
        )
      }
    }
  })

  it('runs the scheduled functions (the reconciler every minute) on EventBridge rules', () => {
    const scheduled = ofKind('schedule')

    expect(FUNCTION_KINDS['reconcile-counts']).toEqual({ kind: 'schedule', rateMinutes: 1 })
    template.resourceCountIs('AWS::Events::Rule', scheduled.length)
    for (const name of scheduled) {
      const kind = FUNCTION_KINDS[name] as { rateMinutes: number }
      template.hasResourceProperties('AWS::Events::Rule', {
        ScheduleExpression: `rate(${kind.rateMinutes} minute${kind.rateMinutes === 1 ? '' : 's'})`,
        Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [functionId(name), 'Arn'] } })],
      })
    }
  })

  it('configures the functions from SSM parameters, with variables the config schema knows', () => {
    const parameters = template.toJSON().Parameters as Record<string, { Type: string; Default: string }>
    const known = new Set(Object.keys(configSchema.entries))

    for (const key of CONFIG_PARAMETERS) {
      expect(Object.values(parameters)).toContainEqual({
        Type: 'AWS::SSM::Parameter::Value<String>',
        Default: `/chat-system/${key}`,
      })
    }
    for (const name of discovered) {
      const variables = (
        resources[functionId(name)]!.Properties.Environment as { Variables: Record<string, unknown> }
      ).Variables
      expect(
        Object.keys(variables).filter((key) => !known.has(key)),
        name,
      ).toEqual([])
      expect(Object.keys(variables)).toEqual(
        expect.arrayContaining([...CONFIG_PARAMETERS, 'SQS_CHATS_QUEUE']),
      )
      expect(variables).toMatchObject({
        RUN_WORKERS: 'false',
        SQS_CREATE_QUEUES: 'false',
        SQS_MAX_RECEIVES: '5',
      })
    }
  })
})
