#!/bin/bash
# Runs inside LocalStack once SQS is ready (init stage READY): creates the app's queues, their
# dead-letter queues and redrive policies, with the same attributes the app sets when it creates
# them itself (lib/queue.ts), so both can run in either order. The compose healthcheck waits for
# this script on /_localstack/init/ready.
set -euo pipefail

CHATS_QUEUE="${SQS_CHATS_QUEUE:-chats}"
MESSAGES_QUEUE="${SQS_MESSAGES_QUEUE:-messages}"
MAX_RECEIVES="${SQS_MAX_RECEIVES:-5}"
VISIBILITY_TIMEOUT_S="${SQS_VISIBILITY_TIMEOUT_S:-30}"
DLQ_SUFFIX="-dlq"
RETENTION_S=1209600

create_queue_with_dlq() {
  local name="$1" dlq_url dlq_arn attributes
  dlq_url=$(awslocal sqs create-queue --queue-name "${name}${DLQ_SUFFIX}" \
    --attributes "MessageRetentionPeriod=${RETENTION_S}" --query QueueUrl --output text)
  dlq_arn=$(awslocal sqs get-queue-attributes --queue-url "$dlq_url" \
    --attribute-names QueueArn --query Attributes.QueueArn --output text)
  # RedrivePolicy is itself a JSON string inside the attributes map.
  attributes=$(printf '{"VisibilityTimeout":"%s","MessageRetentionPeriod":"%s","RedrivePolicy":"{\\"deadLetterTargetArn\\":\\"%s\\",\\"maxReceiveCount\\":\\"%s\\"}"}' \
    "$VISIBILITY_TIMEOUT_S" "$RETENTION_S" "$dlq_arn" "$MAX_RECEIVES")
  awslocal sqs create-queue --queue-name "$name" --attributes "$attributes" --query QueueUrl --output text
}

create_queue_with_dlq "$CHATS_QUEUE"
create_queue_with_dlq "$MESSAGES_QUEUE"
echo "queues ready: ${CHATS_QUEUE} ${MESSAGES_QUEUE} (dead-letter after ${MAX_RECEIVES} receives)"
