import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { alarmToTopic } from './alarm-to-topic.ts';

export interface FunctionAlarmsProps {
  /** Each function by the name an operator knows it by (it titles the alarm). */
  functions: Record<string, lambda.IFunction>;
  alertTopic: sns.ITopic;
}

/**
 * For each function, one alarm on Errors and one on Throttles: at least 1 in 5 minutes. Both notify the alert
 * topic when they go to ALARM and again when they return to OK, so a failure is heard once and its end too
 * (an alarm acts on state changes only, never on every failing invocation). No data is not a failure: the
 * functions run a few times a day.
 */
export class FunctionAlarms extends Construct {
  readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: FunctionAlarmsProps) {
    super(scope, id);
    for (const [name, fn] of Object.entries(props.functions)) {
      const metrics = {
        Errors: { metric: fn.metricErrors({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }), what: 'failed (an exception or a timeout)' },
        Throttles: { metric: fn.metricThrottles({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }), what: 'was throttled (concurrency limit reached)' },
      };
      for (const [metricName, { metric, what }] of Object.entries(metrics)) {
        const alarm = new cloudwatch.Alarm(this, `${name}${metricName}`, {
          alarmDescription: `The ${name} function ${what} at least once in 5 minutes: see its log group for the request and the error.`,
          metric,
          threshold: 1,
          evaluationPeriods: 1,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        });
        alarmToTopic(alarm, props.alertTopic);
        this.alarms.push(alarm);
      }
    }
  }
}
