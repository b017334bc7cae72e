import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { outageWindow } from '../core/outage-window.ts';
import type { RotationEvent, RotationEvents } from '../core/ports.ts';
import type { RaiseOutcome } from '../core/raise-alert.ts';
import { hostHoldsVersion } from '../core/types.ts';
import type { HostResult, RotationRecord } from '../core/types.ts';
import { FLEET_METRICS, type FleetScanSummary } from './fleet-metrics.ts';

/** The Powertools trio every handler gets; tests pass their own to capture the log lines. */
export interface Telemetry {
  logger: Logger;
  metrics: Metrics;
  tracer: Tracer;
}

/** Powertools for a Lambda container: one Logger, Metrics and Tracer, configured by POWERTOOLS_* variables. */
export function defaultTelemetry(): Telemetry {
  return { logger: new Logger(), metrics: new Metrics(), tracer: new Tracer() };
}

/** A handler wrapped in middy with the Powertools middlewares every function uses: tracing, log context, metrics. */
export function withTelemetry<E, R>(handler: (event: E, context: Context) => Promise<R>, telemetry: Telemetry) {
  return middy(handler)
    .use(captureLambdaHandler(telemetry.tracer))
    .use(injectLambdaContext(telemetry.logger, { resetKeys: true }))
    .use(logMetrics(telemetry.metrics));
}

/**
 * Rotation progress as structured log lines (one per event, the event's fields as keys). Events carry
 * ids, statuses and reasons only: never a token.
 */
export function logRotationEvents(logger: Logger): RotationEvents {
  return (event: RotationEvent) => {
    if (event.kind === 'warning') logger.warn(event.message, { secretId: event.secretId });
    else logger.info(event.kind, { ...event });
  };
}

/**
 * Runs an alerting step and logs, rather than throws, its failure: an SNS outage must not fail a rotation
 * whose token is stored (the condition is raised again by the next step or scan).
 */
export async function alertSafely(logger: Logger, what: string, alerting: () => Promise<RaiseOutcome[]>): Promise<void> {
  try {
    const outcomes = await alerting();
    if (outcomes.length > 0) logger.info('alerts', { what, outcomes });
  } catch (error) {
    logger.error('could not raise an alert', { what, error: error as Error });
  }
}

/** The structured line and metrics of a finished rotation: runner, versions, per-host results, timings. */
export function logFinishedRotation(logger: Logger, metrics: Metrics, record: RotationRecord): void {
  const window = outageWindow(record);
  logger.info('rotation finished', { rotation: record, outageWindowMs: window.ms, hostsMissed: window.hostsMissed });
  if (window.ms !== null) metrics.addMetric(FLEET_METRICS.outageWindow, MetricUnit.Milliseconds, window.ms);
  addHostMetrics(metrics, record.hosts);
}

export function addHostMetrics(metrics: Metrics, hosts: HostResult[]): void {
  metrics.addMetric(FLEET_METRICS.hostsUpdated, MetricUnit.Count, hosts.filter(hostHoldsVersion).length);
  metrics.addMetric(FLEET_METRICS.hostsMissed, MetricUnit.Count, hosts.filter((h) => !hostHoldsVersion(h)).length);
}

/** The scan's fleet-level metrics, once per scan, with no per-runner dimension (fleet-metrics.ts). */
export function addScanMetrics(metrics: Metrics, summary: FleetScanSummary): void {
  metrics.addMetric(FLEET_METRICS.runnersScanned, MetricUnit.Count, summary.runnersScanned);
  metrics.addMetric(FLEET_METRICS.runnersDue, MetricUnit.Count, summary.runnersDue);
  metrics.addMetric(FLEET_METRICS.runnersExpiringSoon, MetricUnit.Count, summary.runnersExpiringSoon);
  if (summary.minDaysToExpiry !== null) metrics.addMetric(FLEET_METRICS.minDaysToExpiry, MetricUnit.Count, summary.minDaysToExpiry);
  metrics.addMetric(FLEET_METRICS.scanFailures, MetricUnit.Count, summary.scanFailures);
  metrics.addMetric(FLEET_METRICS.rotationsStarted, MetricUnit.Count, summary.rotationsStarted);
}

/**
 * Only with the fleet file's `metrics.perRunnerDaysToExpiry`: the runner's days to expiry as `DaysToExpiry`
 * under the dimension `Runner` (and `service`), in a metric line of its own (Powertools singleMetric), so
 * that it never joins the fleet metrics' dimension set. Each runner is a custom metric ($0.30 a month).
 */
export function addRunnerDaysToExpiry(metrics: Metrics, runner: string, daysLeft: number): void {
  const single = metrics.singleMetric();
  single.addDimension(RUNNER_DIMENSION, runner);
  single.addMetric(FLEET_METRICS.daysToExpiry, MetricUnit.Count, daysLeft);
}

/** The dimension of the per-runner metric (DaysToExpiry): the runner's name. */
export const RUNNER_DIMENSION = 'Runner';
