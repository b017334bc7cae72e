import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { FLEET_METRICS } from '../../src/engines/fleet-metrics.ts';
import { alarmToTopic } from './alarm-to-topic.ts';
import { COMMON_FUNCTION_ENVIRONMENT } from './rotation-functions.ts';

export interface FleetDashboardProps {
  /** The scanner's log group: its "runner scanned" lines carry each runner's days to expiry. */
  scanLogGroup: logs.ILogGroup;
  /** The rotation hook's log group: its "rotation finished" lines name each host's result. */
  rotationLogGroup: logs.ILogGroup;
  /** Where the ScanFailures alarm goes (and comes back OK). */
  alertTopic: sns.ITopic;
  /** The fleet file's scan cadence: the figures of one scan add up over this period. */
  scanEveryHours: number;
}

/**
 * The fleet on one CloudWatch dashboard (`<stack>-fleet`): runners due and expiring soon, the fewest days
 * left, hosts that missed a token, failed rotations and scans, from the fleet-wide metrics the functions
 * emit (src/engines/fleet-metrics.ts: no per-runner dimension, so the dashboard costs the same at any fleet
 * size), and the runners closest to expiry and the last hosts missed from the logs (Logs Insights).
 */
export class FleetDashboard extends Construct {
  readonly dashboard: cloudwatch.Dashboard;
  /**
   * A runner whose scan failed (its secret's tags make no runner, or the scan threw) raises no alert of its
   * own: the scanner counts it in ScanFailures, and this alarm tells the alert topic.
   */
  readonly scanFailuresAlarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: FleetDashboardProps) {
    super(scope, id);
    const metric = (metricName: string, statistic: string, label?: string) =>
      new cloudwatch.Metric({
        namespace: COMMON_FUNCTION_ENVIRONMENT.POWERTOOLS_METRICS_NAMESPACE ?? 'GitLabRunnerRotator',
        metricName,
        dimensionsMap: { service: COMMON_FUNCTION_ENVIRONMENT.POWERTOOLS_SERVICE_NAME ?? 'gitlab-runner-rotator' },
        statistic,
        label,
        period: Duration.hours(props.scanEveryHours),
      });
    this.scanFailuresAlarm = new cloudwatch.Alarm(this, 'ScanFailures', {
      alarmDescription: `A scan could not scan at least one runner (its secret's tags make no runner, or the scan threw): see the scanner's log group for "scan of runner failed".`,
      // No label: an alarm on one plain metric (a label would make it a metric-math alarm).
      metric: metric(FLEET_METRICS.scanFailures, 'Sum').with({ period: Duration.hours(1) }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    alarmToTopic(this.scanFailuresAlarm, props.alertTopic);
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `${Stack.of(this).stackName}-fleet`,
      defaultInterval: Duration.days(14),
    });
    // Each figure once, by what it shows: the widgets below pick from these.
    const figures = {
      scanned: metric(FLEET_METRICS.runnersScanned, 'Sum', 'runners scanned'),
      due: metric(FLEET_METRICS.runnersDue, 'Sum', 'runners due'),
      expiringSoon: metric(FLEET_METRICS.runnersExpiringSoon, 'Sum', 'expiring soon'),
      fewestDaysLeft: metric(FLEET_METRICS.minDaysToExpiry, 'Minimum', 'fewest days left'),
      hostsMissed: metric(FLEET_METRICS.hostsMissed, 'Sum', 'hosts missed'),
      rotationsFailed: metric(FLEET_METRICS.rotationFailureEvents, 'Sum', 'rotations failed'),
      scansFailed: metric(FLEET_METRICS.scanFailures, 'Sum', 'scans failed'),
      rotationsStarted: metric(FLEET_METRICS.rotationsStarted, 'Sum', 'rotations started'),
      hostsUpdated: metric(FLEET_METRICS.hostsUpdated, 'Sum', 'hosts updated'),
    };
    this.dashboard.addWidgets(
      new cloudwatch.SingleValueWidget({
        title: 'Fleet now (last scan)',
        width: 24,
        metrics: [figures.scanned, figures.due, figures.expiringSoon, figures.fewestDaysLeft, figures.hostsMissed, figures.rotationsFailed],
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({ title: 'Runners due and expiring soon', width: 12, left: [figures.due, figures.expiringSoon], right: [figures.fewestDaysLeft] }),
      new cloudwatch.GraphWidget({
        title: 'Hosts missed, rotations and scans failed',
        width: 12,
        left: [figures.hostsMissed, figures.rotationsFailed, figures.scansFailed],
        right: [figures.rotationsStarted, figures.hostsUpdated],
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.LogQueryWidget({
        title: 'Runners closest to expiry (last scan)',
        width: 12,
        logGroupNames: [props.scanLogGroup.logGroupName],
        // Each runner once, as its latest scan saw it (a runner rotated since shows its new days, not the old
        // ones); `latest` is the Logs Insights stats function of the last value in time.
        queryLines: [
          'filter message = "runner scanned" and ispresent(daysLeft)',
          'stats latest(daysLeft) as daysLeft, latest(due) as due, latest(reason) as reason, max(@timestamp) as scanned by runner',
          'sort daysLeft asc',
          'limit 25',
        ],
      }),
      new cloudwatch.LogQueryWidget({
        title: 'Hosts that missed a token',
        width: 12,
        logGroupNames: [props.rotationLogGroup.logGroupName, props.scanLogGroup.logGroupName],
        queryLines: ['fields @timestamp, runner, @message', 'filter level = "WARN" and @message like /host/', 'sort @timestamp desc', 'limit 25'],
      }),
    );
  }
}
