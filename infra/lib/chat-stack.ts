import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib'
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2'
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations'
import * as ec2 from 'aws-cdk-lib/aws-ec2'
import * as events from 'aws-cdk-lib/aws-events'
import * as targets from 'aws-cdk-lib/aws-events-targets'
import * as lambda from 'aws-cdk-lib/aws-lambda'
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources'
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs'
import * as sqs from 'aws-cdk-lib/aws-sqs'
import * as ssm from 'aws-cdk-lib/aws-ssm'
import type { Construct } from 'constructs'
import { deployableFunctions, lambdaEntry, type QueueKey, routesOf } from './functions.ts'

export interface ChatStackProps extends StackProps {
  /** Function folders to deploy; defaults to every functions/<name>/lambda.ts. */
  functionNames?: string[]
  /** SSM parameter path holding DATABASE_URL, REDIS_URL and ELASTICSEARCH_URL (String parameters). */
  configParameterPrefix?: string
  /** Run the functions in this VPC's private subnets (to reach a private RDS, ElastiCache, Elasticsearch). */
  vpcId?: string
  /** Receives before a job moves to its dead-letter queue (the app's SQS_MAX_RECEIVES). */
  maxReceiveCount?: number
}

const REPO_ROOT = new URL('../../', import.meta.url).pathname
const CONSUMER_TIMEOUT = Duration.seconds(30)
const HTTP_TIMEOUT = Duration.seconds(15)
/** A streaming function's longest life; its streams end 30 s before, and clients resume with their cursor. */
export const STREAM_TIMEOUT = Duration.minutes(15)
/** Kept by the configuration, resolved at deploy time into each function's environment. */
export const CONFIG_PARAMETERS = ['DATABASE_URL', 'REDIS_URL', 'ELASTICSEARCH_URL'] as const

const pascalCase = (name: string) =>
  name.replace(/(^|-)([a-z0-9])/g, (_, __, letter: string) => letter.toUpperCase())

/**
 * The chat system on AWS: one Lambda per HTTP function behind an HTTP API, the persisting consumers
 * on SQS with dead-letter queues, and the count reconciler on a one-minute schedule.
 */
export class ChatStack extends Stack {
  readonly api: apigw.HttpApi
  readonly queues: Record<QueueKey, sqs.Queue>
  readonly functions: Record<string, nodejs.NodejsFunction> = {}

  constructor(scope: Construct, id: string, props: ChatStackProps = {}) {
    super(scope, id, props)
    const prefix = (props.configParameterPrefix ?? '/chat-system').replace(/\/$/, '')
    const maxReceiveCount = props.maxReceiveCount ?? 5
    // AWS's advice for Lambda consumers: visibility timeout at least six times the function timeout.
    const visibilityTimeout = Duration.seconds(CONSUMER_TIMEOUT.toSeconds() * 6)

    const makeQueue = (key: QueueKey) => {
      const name = pascalCase(key)
      const deadLetterQueue = new sqs.Queue(this, `${name}DeadLetterQueue`, {
        retentionPeriod: Duration.days(14),
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
      })
      return new sqs.Queue(this, `${name}Queue`, {
        visibilityTimeout,
        retentionPeriod: Duration.days(14),
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount },
      })
    }
    this.queues = { chats: makeQueue('chats'), messages: makeQueue('messages') }

    const config = Object.fromEntries(
      CONFIG_PARAMETERS.map((key) => [
        key,
        ssm.StringParameter.valueForStringParameter(this, `${prefix}/${key}`),
      ]),
    )
    const environment: Record<string, string> = {
      ...config,
      NODE_ENV: 'production',
      LOG_LEVEL: 'info',
      DATABASE_POOL_SIZE: '2',
      // Migrations run as a deploy step (README), not in a cold start; the queues belong to this stack.
      DATABASE_MIGRATE_ON_START: 'false',
      SQS_CREATE_QUEUES: 'false',
      SQS_ENDPOINT: `https://sqs.${this.region}.${this.urlSuffix}`,
      SQS_CHATS_QUEUE: this.queues.chats.queueName,
      SQS_MESSAGES_QUEUE: this.queues.messages.queueName,
      // The generated names, so that a re-seed can count the dead letters (lib/numbering/).
      SQS_CHATS_DEAD_LETTER_QUEUE: this.queues.chats.deadLetterQueue!.queue.queueName,
      SQS_MESSAGES_DEAD_LETTER_QUEUE: this.queues.messages.deadLetterQueue!.queue.queueName,
      SQS_MAX_RECEIVES: String(maxReceiveCount),
      SQS_VISIBILITY_TIMEOUT_S: String(visibilityTimeout.toSeconds()),
      // Lambda invokes the consumers and the reconciler; no pollers or timers inside a function.
      RUN_WORKERS: 'false',
    }

    const vpc = props.vpcId ? ec2.Vpc.fromLookup(this, 'Vpc', { vpcId: props.vpcId }) : undefined
    this.api = new apigw.HttpApi(this, 'HttpApi', { apiName: `${id}-api`, createDefaultStage: true })

    for (const { name, kind } of deployableFunctions(props.functionNames)) {
      const fn = new nodejs.NodejsFunction(this, `${pascalCase(name)}Function`, {
        entry: lambdaEntry(name),
        handler: 'handler',
        projectRoot: REPO_ROOT,
        depsLockFilePath: `${REPO_ROOT}package-lock.json`,
        runtime: lambda.Runtime.NODEJS_24_X,
        architecture: lambda.Architecture.ARM_64,
        memorySize: 512,
        timeout:
          kind.kind === 'http' ? HTTP_TIMEOUT : kind.kind === 'stream' ? STREAM_TIMEOUT : CONSUMER_TIMEOUT,
        environment:
          kind.kind === 'stream'
            ? { ...environment, LIVE_STREAM_MAX_S: String(STREAM_TIMEOUT.toSeconds() - 30) }
            : environment,
        description: `chat system: ${name}`,
        ...(vpc && { vpc, vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS } }),
        bundling: {
          format: nodejs.OutputFormat.ESM,
          target: 'node24',
          minify: true,
          // Error classes are told apart by name (ioredis's ReplyError); minifying must keep names.
          keepNames: true,
          sourceMap: true,
          mainFields: ['module', 'main'],
          // CommonJS dependencies (mysql2, ioredis) call require() inside the ESM bundle.
          banner:
            "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
        },
      })
      this.functions[name] = fn
      // Every function may look up the queue URLs and send jobs (create and update functions do,
      // consumers re-send a job split out of its pack), and count what waits in every queue,
      // dead letters included (a re-seed of the numbering does).
      for (const queue of Object.values(this.queues)) {
        queue.grantSendMessages(fn)
        queue.deadLetterQueue!.queue.grant(fn, 'sqs:GetQueueUrl', 'sqs:GetQueueAttributes')
      }

      if (kind.kind === 'http') {
        const integration = new HttpLambdaIntegration(`${pascalCase(name)}Integration`, fn)
        for (const route of routesOf(name)) {
          this.api.addRoutes({ path: route.path, methods: [apigw.HttpMethod[route.method]], integration })
        }
      } else if (kind.kind === 'stream') {
        // The application token in the path is the credential, as on the HTTP API.
        const url = fn.addFunctionUrl({
          authType: lambda.FunctionUrlAuthType.NONE,
          invokeMode: lambda.InvokeMode.RESPONSE_STREAM,
        })
        new CfnOutput(this, `${pascalCase(name)}Url`, { value: url.url })
      } else if (kind.kind === 'sqs') {
        fn.addEventSource(
          new SqsEventSource(this.queues[kind.queue], {
            batchSize: 10,
            maxBatchingWindow: Duration.seconds(1),
            reportBatchItemFailures: true,
          }),
        )
      } else {
        new events.Rule(this, `${pascalCase(name)}Schedule`, {
          schedule: events.Schedule.rate(Duration.minutes(kind.rateMinutes)),
          targets: [new targets.LambdaFunction(fn, { retryAttempts: 0 })],
        })
      }
    }

    // Every other method and path goes to one of our functions too, so that an unknown route gets
    // the API's JSON 404 (or 405 with Allow) instead of API Gateway's own body.
    const fallback = this.functions.health
    if (fallback) {
      new apigw.HttpRoute(this, 'DefaultRoute', {
        httpApi: this.api,
        routeKey: apigw.HttpRouteKey.DEFAULT,
        integration: new HttpLambdaIntegration('DefaultIntegration', fallback),
      })
    }

    new CfnOutput(this, 'ApiUrl', { value: this.api.apiEndpoint })
    for (const [key, queue] of Object.entries(this.queues)) {
      new CfnOutput(this, `${pascalCase(key)}QueueUrl`, { value: queue.queueUrl })
    }
  }
}
