import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SNSClient } from '@aws-sdk/client-sns';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import middy from '@middy/core';
import { DynamoDbAlertLedger } from '../src/adapters/dynamodb-alert-ledger.ts';
import { SecretsManagerStore } from '../src/adapters/secrets-manager-store.ts';
import { SlackWebhook, webhookUrlFromSecret } from '../src/adapters/slack-webhook.ts';
import { SnsAlertSink, alertsFromSnsEvent } from '../src/adapters/sns-alert-sink.ts';
import { systemClock } from '../src/adapters/system-clock.ts';
import { runnerForSecret, secretNameFromId, type AwsFleetConfig } from '../src/config/aws-fleet-config.ts';
import { readNotifyEnvironment } from '../src/config/lambda-environment.ts';
import { buildAlert } from '../src/core/alert-rules.ts';
import type { Alert } from '../src/core/alerts.ts';
import { InvalidInputError } from '../src/core/errors.ts';
import type { AlertSink } from '../src/core/ports.ts';
import { raiseAlert } from '../src/core/raise-alert.ts';
import type { Telemetry } from '../src/engines/rotation-log.ts';

/** slack: undefined when no webhook is configured (alerts are only logged). raise: de-duplicates, then SNS. */
export interface NotifyDeps { slack: AlertSink | undefined; raise: (alert: Alert) => Promise<void>; fleet: AwsFleetConfig; logGroupUrl?: string }
export type NotifyOutcome = { posted: number } | { logged: number } | { raised: Alert['kind'] } | { ignored: string };

const SUMMARY: Record<string, (runner: string) => string> = {
  RotationFailed: (r) => `Secrets Manager reports RotationFailed for runner ${r}: a rotation step failed; Secrets Manager retries it within the rotation window`,
  RotationAbandoned: (r) => `Secrets Manager abandoned a rotation of runner ${r} (RotationAbandoned): if GitLab had issued the new token, AWSCURRENT may hold a dead one`,
};

/**
 * (a) SNS from the alert topic: Alert JSON → Slack (never published again: no loop); a failed post throws, so
 * Lambda retries. (b) EventBridge RotationFailed/RotationAbandoned of a managed secret → `raise` (→ topic → a).
 */
export function createHandler(deps: NotifyDeps | (() => NotifyDeps), telemetry: Telemetry) {
  const { logger, metrics, tracer } = telemetry;
  return middy(async (event: unknown): Promise<NotifyOutcome> => {
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
      metrics.addMetric(d.slack ? 'AlertsPosted' : 'AlertsLogged', MetricUnit.Count, sns.alerts.length);
      return d.slack ? { posted: sns.alerts.length } : { logged: sns.alerts.length };
    }
    const { detail, time } = event as { detail?: { eventName?: unknown; eventTime?: unknown; additionalEventData?: { SecretId?: unknown } }; time?: unknown };
    const secretId = detail?.additionalEventData?.SecretId;
    if (typeof detail?.eventName !== 'string' || typeof secretId !== 'string') throw new InvalidInputError('notify event', 'is neither an SNS delivery nor a Secrets Manager rotation event');
    const summary = Object.hasOwn(SUMMARY, detail.eventName) ? SUMMARY[detail.eventName] : undefined;
    if (!summary || !secretNameFromId(secretId).startsWith(d.fleet.secretPrefix)) {
      logger.info('rotation event needs no alert', { eventName: detail.eventName, secretId });
      return { ignored: detail.eventName };
    }
    const runner = runnerForSecret(d.fleet, secretId)?.name ?? secretNameFromId(secretId);
    const now = new Date(Date.parse(String(detail.eventTime ?? time)) || Date.now());
    await d.raise(buildAlert('rotation-failed', { runner, secretId, summary: summary(runner), now, logUrl: d.logGroupUrl, stateKey: detail.eventName }));
    metrics.addMetric('RotationFailureEvents', MetricUnit.Count, 1);
    logger.warn('rotation failure event: alert raised (or held back as a repeat)', { eventName: detail.eventName, secretId, runner });
    return { raised: 'rotation-failed' };
  })
    .use(captureLambdaHandler(tracer))
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(logMetrics(metrics));
}

/** Clients once per container (first invocation); the webhook URL when first needed, then kept. */
function awsDeps(): NotifyDeps {
  const env = readNotifyEnvironment();
  const retry = { maxAttempts: 6, retryMode: 'adaptive' as const };
  const sink = new SnsAlertSink(new SNSClient(retry), env.alertTopicArn, { readmeUrl: env.readmeUrl });
  const alerts = { ledger: new DynamoDbAlertLedger(DynamoDBDocumentClient.from(new DynamoDBClient(retry)), env.ledgerTableName), sink, clock: systemClock, reminderMs: env.fleet.alerts.reminderHours * 3_600_000 };
  const webhookUrl = env.slackWebhookSecret && webhookUrlFromSecret(new SecretsManagerStore(new SecretsManagerClient(retry)), env.slackWebhookSecret);
  const slack = webhookUrl ? new SlackWebhook({ webhookUrl, readmeUrl: env.readmeUrl }) : undefined;
  return { slack, fleet: env.fleet, logGroupUrl: env.rotationLogUrl, raise: async (alert) => void (await raiseAlert(alerts, alert)) };
}

let deps: NotifyDeps | undefined;
export const handler = createHandler(() => (deps ??= awsDeps()), { logger: new Logger(), metrics: new Metrics(), tracer: new Tracer() });
