import { Duration } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { alarmedDeadLetterQueue } from './alarm-to-topic.ts';

/**
 * Receives of a batch before it goes to the dead-letter queue: AWS asks for at least 5 on a queue Lambda
 * polls (Lambda Developer Guide, "Configuring an Amazon SQS queue to use with Lambda": a redrive policy's
 * maxReceiveCount of at least 5), so a throttled or failed invocation is retried before the batch is set aside.
 */
const MAX_RECEIVES = 5;

export interface ScanQueueProps {
  /** The scan worker (functions/scan-runners.ts): the queue's consumer. */
  worker: lambda.IFunction;
  /** The worker's timeout: the queue's visibility timeout is six times it, as Lambda's SQS guide asks. */
  workerTimeout: Duration;
  /** The fleet file's `scanWorkers` (2-100): the event source's maximum concurrency (Lambda allows 2-1000). */
  workers: number;
  /** Where the dead-letter queue's alarm goes. */
  alertTopic: sns.ITopic;
}

/**
 * The scan's fan-out on SQS: the dispatcher queues batches of runners, the worker consumes them, one
 * message per invocation and at most `workers` at once (the event source's MaximumConcurrency, which
 * "limits the number of concurrent instances of the function that an Amazon SQS event source can invoke",
 * Lambda Developer Guide, "Configuring maximum concurrency for Amazon SQS event sources"). It reserves
 * nothing: when the account's concurrency runs out, Lambda may still throttle an invocation, and the
 * message comes back after its visibility timeout (a receive counted towards MAX_RECEIVES).
 *
 * - Visibility timeout: six times the worker's timeout (Lambda Developer Guide, "Using Lambda with Amazon
 *   SQS": "set the source queue's visibility timeout to at least six times the timeout that you configure
 *   on your function"), so a message is not handed to a second worker while the first still scans it.
 * - A batch whose scan threw is reported failed (ReportBatchItemFailures) and delivered again; after
 *   MAX_RECEIVES receives it goes to the dead-letter queue, whose alarm tells the alert topic.
 * - Messages live a day: the next scan (every 1-24 hours) queues every runner again.
 * - Encrypted with SQS-managed keys, and TLS only.
 */
export class ScanQueue extends Construct {
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  readonly deadLetterAlarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: ScanQueueProps) {
    super(scope, id);
    ({ queue: this.deadLetterQueue, alarm: this.deadLetterAlarm } = alarmedDeadLetterQueue(this, { queue: 'DeadLetters', alarm: 'DeadLettersAlarm' }, {
      alertTopic: props.alertTopic,
      alarmDescription: `A batch of runners failed its scan ${MAX_RECEIVES} times and sits in the scan dead-letter queue: see the ScanRunners log group for "scan batch failed".`,
    }));
    this.queue = new sqs.Queue(this, 'Queue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(props.workerTimeout.toSeconds() * 6),
      retentionPeriod: Duration.days(1),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: MAX_RECEIVES },
    });
    props.worker.addEventSource(new SqsEventSource(this.queue, { batchSize: 1, reportBatchItemFailures: true, maxConcurrency: props.workers }));
  }
}
