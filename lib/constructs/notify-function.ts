import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { LAMBDA_ENVIRONMENT_NAMES } from '../../src/config/lambda-environment.ts';
import { ALERT_KINDS } from '../../src/core/alerts.ts';
import { secretArnForGrant } from '../secret-arn.ts';
import type { AlertTopic } from './alert-topic.ts';
import type { LedgerTable } from './ledger-table.ts';
import { rotatorFunction } from './rotation-functions.ts';

export interface NotifyFunctionProps {
  /** The bundling every function shares (RotationFunctions.bundling). */
  bundling: nodejs.BundlingOptions;
  ledger: LedgerTable;
  alerts: AlertTopic;
  /** From the fleet file's `alerts.slackWebhookSecretName`: the secret holding the incoming-webhook URL. */
  slackWebhookSecretName?: string;
  /** The rotation hook's log group: alerts raised here link to it. */
  rotationLogGroupName: string;
  /** fleetSettingsText of the fleet file: ROTATOR_SETTINGS_JSON. */
  settingsText: string;
  /** Entry file, relative to the repository root (tests only). Default functions/notify.ts. */
  entry?: string;
}

/**
 * The notifier (functions/notify.ts): raises a rotation-failed alert for each rotation outcome EventBridge hands
 * it (de-duplicated through the ledger table, published to the alert topic), and posts the topic's alerts to the
 * Slack webhook. It reads the webhook secret (only that one, only GetSecretValue) and the ledger.
 *
 * Its topic subscription only takes messages whose `kind` attribute is an alert kind, as SnsAlertSink sets it:
 * CloudWatch alarm notifications (no attributes) go to e-mail and Chatbot, and never reach a handler that would
 * reject them as "not an alert of this service" and so raise its own Errors alarm on every alarm change.
 */
export class NotifyFunction extends Construct {
  readonly function: nodejs.NodejsFunction;

  constructor(scope: Construct, id: string, props: NotifyFunctionProps) {
    super(scope, id);
    const environment: Record<string, string> = {
      [LAMBDA_ENVIRONMENT_NAMES.settingsJson]: props.settingsText,
      [LAMBDA_ENVIRONMENT_NAMES.ledgerTableName]: props.ledger.table.tableName,
      [LAMBDA_ENVIRONMENT_NAMES.alertTopicArn]: props.alerts.topic.topicArn,
      [LAMBDA_ENVIRONMENT_NAMES.rotationLogGroup]: props.rotationLogGroupName,
    };
    if (props.slackWebhookSecretName !== undefined) environment[LAMBDA_ENVIRONMENT_NAMES.slackWebhookSecret] = props.slackWebhookSecretName;
    this.function = rotatorFunction(this, 'Function', {
      entry: props.entry ?? 'functions/notify.ts',
      description: 'GitLab runner rotator notifier (rotation failures and alerts to Slack, de-duplicated)',
      environment,
      bundling: props.bundling,
    });

    props.alerts.topic.addSubscription(
      new subscriptions.LambdaSubscription(this.function, {
        filterPolicy: { kind: sns.SubscriptionFilter.stringFilter({ allowlist: [...ALERT_KINDS] }) },
      }),
    );
    props.alerts.grantPublishTo(this.function);
    props.ledger.grantAlertLedger(this.function);
    if (props.slackWebhookSecretName !== undefined) {
      this.function.addToRolePolicy(
        new iam.PolicyStatement({
          sid: 'ReadSlackWebhookSecret',
          actions: ['secretsmanager:GetSecretValue'],
          resources: [secretArnForGrant(Stack.of(this), props.slackWebhookSecretName)],
        }),
      );
    }
  }
}
