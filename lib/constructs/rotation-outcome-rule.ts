import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { rotationOutcomePattern } from '../../src/config/rotation-outcome-pattern.ts';

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
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
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
    this.undeliveredAlarm = new cloudwatch.Alarm(this, 'UndeliveredAlarm', {
      alarmDescription:
        'A Secrets Manager rotation failure could not be delivered to the notifier: read the event in the rotation-outcome dead-letter queue and check the notifier.',
      metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: cloudwatch.Stats.MAXIMUM }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.undeliveredAlarm.addAlarmAction(new actions.SnsAction(props.alertTopic));
    this.undeliveredAlarm.addOkAction(new actions.SnsAction(props.alertTopic));
  }
}
