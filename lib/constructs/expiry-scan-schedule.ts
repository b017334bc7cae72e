import { Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';

export interface ExpiryScanScheduleProps {
  scanner: lambda.IFunction;
  /** From the fleet file's `scanEveryHours` (1-24). */
  everyHours: number;
}

/** Runs the expiry scanner every `scanEveryHours`: it rotates what is due and re-pushes to hosts that missed. */
export class ExpiryScanSchedule extends Construct {
  readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: ExpiryScanScheduleProps) {
    super(scope, id);
    this.rule = new events.Rule(this, 'Rule', {
      description: `Scans the managed GitLab runner tokens every ${props.everyHours} h`,
      schedule: events.Schedule.rate(Duration.hours(props.everyHours)),
      targets: [new targets.LambdaFunction(props.scanner)],
    });
  }
}
