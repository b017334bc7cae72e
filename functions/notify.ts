import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { alertsFromSnsEvent } from '../src/adapters/aws/sns-alert-sink.ts';
import { secretNameFromId } from '../src/config/aws-fleet-config.ts';
import { readNotifyEnvironment } from '../src/config/lambda-environment.ts';
import { alertFromRotationOutcome } from '../src/core/alert-rules.ts';
import type { Alert } from '../src/core/alerts.ts';
import { InvalidInputError } from '../src/core/errors.ts';
import { parseRotationOutcomeEvent } from '../src/core/rotation-event.ts';
import { FLEET_METRICS } from '../src/engines/fleet-metrics.ts';
import { createNotifyDeps, type NotifyDeps } from '../src/engines/notify-engine.ts';
import { runnerNameOfSecret } from '../src/engines/runner-name.ts';
import { defaultTelemetry, withTelemetry, type Telemetry } from '../src/engines/rotation-log.ts';

export type { NotifyDeps } from '../src/engines/notify-engine.ts';
export type NotifyOutcome = { posted: number } | { logged: number } | { raised: Alert['kind'] } | { ignored: string };

/**
 * (a) SNS from the alert topic: Alert JSON → Slack (never published again: no loop); a failed post throws, so
 * Lambda retries. (b) EventBridge RotationFailed/RotationAbandoned of a managed secret → `raise` (→ topic → a).
 * The notifier knows no runners and reads no secret's tags (its role may not): an event names the secret's
 * ARN, and the runner is that secret's name without the fleet's `secretPrefix`.
 */
export function createHandler(deps: NotifyDeps | (() => NotifyDeps), telemetry: Telemetry) {
  const { logger, metrics } = telemetry;
  return withTelemetry(async (event: unknown): Promise<NotifyOutcome> => {
    const d = typeof deps === 'function' ? deps() : deps;
    const sns = alertsFromSnsEvent(event);
    if (sns) {
      for (const other of sns.others) logger.warn('SNS message is not an alert of this service: not posted', other);
      for (const alert of sns.alerts) {
        const about = { kind: alert.kind, runner: alert.runner, secretId: alert.secretId, reminder: alert.reminder };
        if (!d.slack) logger.warn('alert (no Slack webhook configured)', { alert });
        else await d.slack.publish(alert).then(() => logger.info('alert posted to Slack', about), (error: unknown) => {
          logger.error('Slack post failed', { ...about, error: error as Error });
          throw error;
        });
      }
      metrics.addMetric(d.slack ? FLEET_METRICS.alertsPosted : FLEET_METRICS.alertsLogged, MetricUnit.Count, sns.alerts.length);
      return d.slack ? { posted: sns.alerts.length } : { logged: sns.alerts.length };
    }
    const outcome = parseRotationOutcomeEvent(event, new Date());
    if (!outcome) throw new InvalidInputError('notify event', 'is neither an SNS delivery nor a Secrets Manager rotation event');
    const { eventName, secretId, at } = outcome;
    const runner = runnerNameOfSecret(secretId, d.fleet.secretPrefix);
    const alert = secretNameFromId(secretId).startsWith(d.fleet.secretPrefix) ? alertFromRotationOutcome(eventName, runner, secretId, at, d.logGroupUrl) : undefined;
    if (!alert) {
      logger.info('rotation event needs no alert', { eventName, secretId });
      return { ignored: eventName };
    }
    await d.raise(alert);
    metrics.addMetric(FLEET_METRICS.rotationFailureEvents, MetricUnit.Count, 1);
    logger.warn('rotation failure event: alert raised (or held back as a repeat)', { eventName, secretId, runner });
    return { raised: 'rotation-failed' };
  }, telemetry);
}

let deps: NotifyDeps | undefined;
export const handler = createHandler(() => (deps ??= createNotifyDeps(readNotifyEnvironment())), defaultTelemetry());
