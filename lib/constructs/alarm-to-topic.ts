import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';

/**
 * An alarm of the stack as every one of them works: it tells the alert topic when it goes to ALARM and again
 * when it returns to OK (an alarm acts on state changes only), so a failure is heard once and its end too.
 */
export function alarmToTopic(alarm: cloudwatch.Alarm, topic: sns.ITopic): cloudwatch.Alarm {
  const action = new actions.SnsAction(topic);
  alarm.addAlarmAction(action);
  alarm.addOkAction(action);
  return alarm;
}

/**
 * A dead-letter queue as the stack keeps them: SQS-managed encryption, TLS only, 14 days, and an alarm at one
 * visible message (maximum over 5 minutes) to the alert topic and back. Created under `scope` with the ids
 * given, so the resources keep the logical ids they were deployed with.
 */
export function alarmedDeadLetterQueue(
  scope: Construct,
  ids: { queue: string; alarm: string },
  props: { alertTopic: sns.ITopic; alarmDescription: string },
): { queue: sqs.Queue; alarm: cloudwatch.Alarm } {
  const queue = new sqs.Queue(scope, ids.queue, { encryption: sqs.QueueEncryption.SQS_MANAGED, enforceSSL: true, retentionPeriod: Duration.days(14) });
  const alarm = new cloudwatch.Alarm(scope, ids.alarm, {
    alarmDescription: props.alarmDescription,
    metric: queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: cloudwatch.Stats.MAXIMUM }),
    threshold: 1,
    evaluationPeriods: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  });
  return { queue, alarm: alarmToTopic(alarm, props.alertTopic) };
}
