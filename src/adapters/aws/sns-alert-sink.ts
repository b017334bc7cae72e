import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { ALERT_KINDS, type Alert, type AlertKind } from '../../core/alerts.ts';
import { alertText, oneLine } from '../../core/alert-text.ts';
import { InvalidInputError } from '../../core/errors.ts';
import type { AlertSink } from '../../core/ports.ts';

export const ALERT_SUBJECT_PREFIX = '[gitlab-runner-rotator]';
/** SNS: a subject "must be less than 100 characters long", without line breaks or control characters. */
const SUBJECT_MAX = 99;
/** Rows of the e-mail's hosts table: a fleet-wide miss must not push the message past SNS's 256 KB. */
const EMAIL_MAX_HOSTS = 100;

export interface SnsAlertSinkOptions {
  /** The runbook document (docs/operations.md) whose sections the e-mail names (see alertText). */
  readmeUrl?: string;
}

/**
 * Publishes alerts to the alert topic, one message per alert (PublishCommand, MessageStructure `json`):
 * - `default`: the Alert as JSON. Lambda and HTTP subscribers get it (the notify function posts it to Slack).
 * - `email`: the plain-text rendering (alertText), for e-mail subscriptions.
 * Message attributes `kind` and `severity` let a subscription filter (a pager only for critical, say).
 */
export class SnsAlertSink implements AlertSink {
  constructor(
    private readonly client: SNSClient,
    private readonly topicArn: string,
    private readonly options: SnsAlertSinkOptions = {},
  ) {}

  async publish(alert: Alert): Promise<void> {
    const email = alertText(alert, { readmeUrl: this.options.readmeUrl, maxHosts: EMAIL_MAX_HOSTS });
    await this.client.send(
      new PublishCommand({
        TopicArn: this.topicArn,
        Subject: alertSubject(alert),
        MessageStructure: 'json',
        Message: JSON.stringify({ default: JSON.stringify(alert), email }),
        MessageAttributes: {
          kind: { DataType: 'String', StringValue: alert.kind },
          severity: { DataType: 'String', StringValue: alert.severity },
        },
      }),
    );
  }
}

/** `[gitlab-runner-rotator] host-missed: builders`: printable ASCII, one line, under 100 characters. */
export function alertSubject(alert: Alert): string {
  const subject = oneLine(`${ALERT_SUBJECT_PREFIX} ${alert.reminder ? 'reminder: ' : ''}${alert.kind}: ${alert.runner}`).replace(/[^\x20-\x7e]/g, '?');
  return subject.length <= SUBJECT_MAX ? subject : `${subject.slice(0, SUBJECT_MAX - 3)}...`;
}

/**
 * The Alert in an SNS message's `default` text, as SnsAlertSink wrote it. Throws InvalidInputError for
 * anything else: a message this service did not publish is never passed on.
 */
export function parseAlertMessage(message: string): Alert {
  let value: unknown;
  try {
    value = JSON.parse(message);
  } catch (error) {
    throw new InvalidInputError('SNS message', 'is not JSON (the alert topic carries Alert JSON)', { cause: error });
  }
  const problem = alertProblem(value);
  if (problem) throw new InvalidInputError('SNS message', `${problem}: not an alert of this service`);
  const alert = value as Alert;
  return { ...alert, reminder: alert.reminder === true, stateKey: typeof alert.stateKey === 'string' ? alert.stateKey : '' };
}

/** What an SNS delivery to a Lambda carried: the alerts of this service, and whatever else reached the topic. */
export interface SnsDelivery {
  alerts: Alert[];
  /** Messages that are not alerts (a CloudWatch alarm, a test message): their subject and what is wrong. */
  others: Array<{ subject: string | undefined; problem: string }>;
}

/**
 * The alerts in an SNS event (`Records[].Sns.Message`), or undefined when the event is not an SNS delivery.
 * Other messages on the topic are listed apart rather than thrown: failing on them would only make Lambda
 * retry a message that can never become an alert.
 */
export function alertsFromSnsEvent(event: unknown): SnsDelivery | undefined {
  const records = isRecord(event) ? event.Records : undefined;
  if (!Array.isArray(records) || !records.every((r) => isRecord(r) && isRecord(r.Sns))) return undefined;
  const delivery: SnsDelivery = { alerts: [], others: [] };
  for (const record of records as Array<{ Sns: { Message?: unknown; Subject?: unknown } }>) {
    try {
      delivery.alerts.push(parseAlertMessage(String(record.Sns.Message)));
    } catch (error) {
      if (!(error instanceof InvalidInputError)) throw error;
      delivery.others.push({ subject: typeof record.Sns.Subject === 'string' ? record.Sns.Subject : undefined, problem: error.message });
    }
  }
  return delivery;
}

const ALERT_STRINGS = ['runner', 'secretId', 'summary', 'since', 'nextStep', 'runbook'] as const;

function alertProblem(value: unknown): string | undefined {
  if (!isRecord(value)) return 'is not an object';
  if (!ALERT_KINDS.includes(value.kind as AlertKind)) return 'has no known alert kind';
  if (value.severity !== 'critical' && value.severity !== 'warning') return 'has no severity';
  const missing = ALERT_STRINGS.find((key) => typeof value[key] !== 'string');
  if (missing) return `lacks ${missing}`;
  if (value.logUrl !== undefined && typeof value.logUrl !== 'string') return 'has a logUrl that is not a string';
  const hostsValid = Array.isArray(value.hosts) && value.hosts.every((h) => isRecord(h) && typeof h.host === 'string' && typeof h.status === 'string' && typeof h.detail === 'string');
  return hostsValid ? undefined : 'lacks a valid hosts list';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
