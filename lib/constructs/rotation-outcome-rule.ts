import { Duration } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { rotationOutcomePattern } from '../../src/config/rotation-outcome-pattern.ts';
import { alarmedDeadLetterQueue } from './alarm-to-topic.ts';

export interface RotationOutcomeRuleProps {
  /** `arn:<partition>:secretsmanager:<region>:<account>:secret:<secretPrefix>` (managedSecretArnPrefix). */
  secretArnPrefix: string;
  notify: lambda.IFunction;
  /** Where the alarm on undeliverable events goes. */
  alertTopic: sns.ITopic;
}

/**
 * Sends every RotationFailed / RotationAbandoned of a managed secret to the notifier.
 *
 * Delivery: EventBridge retries a failed invoke (throttling, Lambda unavailable) with backoff for at most
 * 8 attempts within 1 hour, then puts the event in a dead-letter queue (SQS-managed encryption, TLS only,
 * kept 14 days). An alarm on that queue's depth publishes to the alert topic, so an outcome the notifier
 * never got still reaches the e-mail and Chatbot subscribers within minutes, rather than after EventBridge's
 * default 24 hours of silent retries, or never. (Once Lambda has accepted the event, a failing notifier
 * shows in its own Errors alarm.) The queue uses SQS-managed keys, not the alert key: EventBridge can write
 * to it with the queue policy alone.
 */
export class RotationOutcomeRule extends Construct {
  readonly rule: events.Rule;
  readonly deadLetterQueue: sqs.Queue;
  readonly undeliveredAlarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: RotationOutcomeRuleProps) {
    super(scope, id);
    ({ queue: this.deadLetterQueue, alarm: this.undeliveredAlarm } = alarmedDeadLetterQueue(this, { queue: 'DeadLetterQueue', alarm: 'UndeliveredAlarm' }, {
      alertTopic: props.alertTopic,
      alarmDescription:
        'A Secrets Manager rotation failure could not be delivered to the notifier: read the event in the rotation-outcome dead-letter queue and check the notifier.',
    }));
    this.rule = new events.Rule(this, 'Rule', {
      description: 'Secrets Manager RotationFailed / RotationAbandoned of a managed GitLab runner token secret, to the notifier',
      eventPattern: rotationOutcomePattern(props.secretArnPrefix),
      targets: [
        new targets.LambdaFunction(props.notify, {
          deadLetterQueue: this.deadLetterQueue,
          retryAttempts: 8,
          maxEventAge: Duration.hours(1),
        }),
      ],
    });
  }
}
