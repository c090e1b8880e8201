import { App } from 'aws-cdk-lib'
import { ChatStack } from '../lib/chat-stack.ts'

// Deploy: npx cdk deploy --app 'node infra/bin/app.ts' (see infra/README.md).
const app = new App()
const context = (key: string): string | undefined => app.node.tryGetContext(key)

new ChatStack(app, context('stackName') ?? 'ChatSystem', {
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  configParameterPrefix: context('configParameterPrefix'),
  vpcId: context('vpcId'),
})
app.synth()
