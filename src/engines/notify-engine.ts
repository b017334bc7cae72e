import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SNSClient } from '@aws-sdk/client-sns';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { dynamoDbDocumentClient, secretsManagerClient, snsClient } from '../adapters/aws/sdk-clients.ts';
import { DynamoDbAlertLedger } from '../adapters/aws/dynamodb-alert-ledger.ts';
import { SecretsManagerStore } from '../adapters/aws/secrets-manager-store.ts';
import { SlackWebhook, webhookUrlFromSecret } from '../adapters/alerts/slack-webhook.ts';
import { SnsAlertSink } from '../adapters/aws/sns-alert-sink.ts';
import { systemClock } from '../adapters/local/system-clock.ts';
import type { AwsFleetSettings } from '../config/aws-fleet-config.ts';
import type { NotifyEnvironment } from '../config/lambda-environment.ts';
import type { Alert } from '../core/alerts.ts';
import type { AlertSink, Clock } from '../core/ports.ts';
import { raiseAlert } from '../core/raise-alert.ts';

/** slack: undefined when no webhook is configured (alerts are only logged). raise: de-duplicates, then SNS. */
export interface NotifyDeps {
  slack: AlertSink | undefined;
  raise: (alert: Alert) => Promise<void>;
  /** The fleet's settings (no runners): `secretPrefix` tells a managed secret, and the runner's name from it. */
  fleet: AwsFleetSettings;
  logGroupUrl?: string;
}

/** The notifier's SDK clients: SNS and DynamoDB for alerts, Secrets Manager for the webhook URL. */
export interface NotifyClients {
  sns: SNSClient;
  dynamodb: DynamoDBDocumentClient;
  secretsManager: SecretsManagerClient;
}

/** With the project's one retry policy (sdk-clients.ts). */
export function createNotifyClients(): NotifyClients {
  return { sns: snsClient(), dynamodb: dynamoDbDocumentClient(), secretsManager: secretsManagerClient() };
}

/**
 * The notifier's wiring: its own clients (not the AWS engine's, so the GitLab client stays out of its
 * bundle); the webhook URL is read from its secret when first needed, then kept.
 */
export function createNotifyDeps(env: NotifyEnvironment, clients: NotifyClients = createNotifyClients(), clock: Clock = systemClock): NotifyDeps {
  const sink = new SnsAlertSink(clients.sns, env.alertTopicArn, { readmeUrl: env.readmeUrl });
  const ledger = new DynamoDbAlertLedger(clients.dynamodb, env.ledgerTableName, { now: () => clock.now() });
  const alerts = { engine: 'aws' as const, ledger, sink, clock, reminderMs: env.fleet.alerts.reminderHours * 3_600_000 };
  const webhookUrl = env.slackWebhookSecret && webhookUrlFromSecret(new SecretsManagerStore(clients.secretsManager), env.slackWebhookSecret);
  const slack = webhookUrl ? new SlackWebhook({ webhookUrl, readmeUrl: env.readmeUrl }) : undefined;
  return {
    slack,
    fleet: env.fleet,
    logGroupUrl: env.rotationLogUrl,
    raise: async (alert) => {
      await raiseAlert(alerts, alert);
    },
  };
}
