import { setTimeout as delay } from 'node:timers/promises';
import { inspect } from 'node:util';
import type { Alert } from '../../core/alerts.ts';
import { DEFAULT_RUNBOOK_DOCUMENT, oneLine, runbookLink } from '../../core/alert-text.ts';
import { InvalidInputError, RotatorError } from '../../core/errors.ts';
import type { AlertSink, SecretStore } from '../../core/ports.ts';

/**
 * A Slack incoming webhook refused the alert or could not be reached. The webhook URL is a secret (anyone
 * holding it can post to the channel): the message names its host only, and no cause that would show the
 * URL is kept.
 */
export class SlackWebhookError extends RotatorError {
  readonly host: string;
  /** The HTTP status, absent when no reply came. */
  readonly status: number | undefined;
  constructor(message: string, details: { host: string; status?: number; cause?: unknown }) {
    super(message, { cause: details.cause });
    this.host = details.host;
    this.status = details.status;
  }
}

export interface SlackMessageOptions {
  /** The runbook document (docs/operations.md) the anchors point into. An http(s) URL becomes a link; the default is plain text. */
  readmeUrl?: string;
}

/** Slack Block Kit limits: header text 150 characters, section text 3,000. */
const HEADER_MAX = 150;
const HOSTS_LISTED = 10;
const DETAIL_MAX = 160;
const EMOJI: Record<Alert['severity'], string> = { critical: ':rotating_light:', warning: ':warning:' };

/**
 * The Block Kit message of an alert: a header (severity, kind, runner), the summary, fields (runner, since,
 * severity, kind), the hosts (ten at most, then "and N more"), the next step with its runbook section, the
 * logs link when known, and a reminder note when the state persists. `text` is the notification fallback.
 */
export function slackMessage(alert: Alert, options: SlackMessageOptions = {}): { text: string; blocks: unknown[] } {
  const title = `${alert.kind}: ${oneLine(alert.runner)}`;
  const runbook = runbookLink(alert.runbook, options.readmeUrl ?? DEFAULT_RUNBOOK_DOCUMENT);
  const runbookText = /^https?:\/\//.test(runbook) ? `<${linkTarget(runbook)}|Runbook: ${escape(alert.runbook)}>` : `Runbook: \`${escape(runbook)}\``;
  const mrkdwn = (text: string) => ({ type: 'mrkdwn', text });
  const section = (text: string) => ({ type: 'section', text: mrkdwn(text) });
  const blocks: unknown[] = [
    { type: 'header', text: { type: 'plain_text', text: truncate(`${EMOJI[alert.severity]} ${title}`, HEADER_MAX), emoji: true } },
    section(escape(oneLine(alert.summary))),
    {
      type: 'section',
      fields: [
        mrkdwn(`*Runner*\n${escape(oneLine(alert.runner))}`),
        mrkdwn(`*Since*\n${slackDate(alert.since)}`),
        mrkdwn(`*Severity*\n${alert.severity}`),
        mrkdwn(`*Kind*\n${alert.kind}`),
      ],
    },
  ];
  if (alert.hosts.length > 0) blocks.push(section(hostsText(alert)));
  blocks.push(section(`*Next step:* ${escape(oneLine(alert.nextStep))}\n${runbookText}`));
  if (alert.logUrl) blocks.push(section(`*Logs:* <${linkTarget(alert.logUrl)}|open the logs>`));
  if (alert.reminder) blocks.push({ type: 'context', elements: [mrkdwn(`:repeat: reminder: still unresolved since ${slackDate(alert.since)}`)] });
  return { text: escape(`${alert.severity.toUpperCase()} ${title}: ${oneLine(alert.summary)}`), blocks };
}

function hostsText(alert: Alert): string {
  const lines = alert.hosts.slice(0, HOSTS_LISTED).map((h) => {
    const detail = oneLine(h.detail);
    return `• \`${escape(oneLine(h.host))}\` system_id \`${escape(h.systemId ?? '-')}\` *${h.status}*${detail ? ` - ${escape(truncate(detail, DETAIL_MAX))}` : ''}`;
  });
  const more = alert.hosts.length - HOSTS_LISTED;
  return [`*Hosts (${alert.hosts.length})*`, ...lines, ...(more > 0 ? [`and ${more} more`] : [])].join('\n');
}

/** Slack shows the date in the reader's time zone; the ISO text is the fallback (and what tests read). */
function slackDate(iso: string): string {
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? escape(iso) : `<!date^${Math.floor(ms / 1000)}^{date_short_pretty} {time}|${escape(iso)}>`;
}

/** mrkdwn control characters (Slack: "escape &, < and >"). */
function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A URL inside `<url|label>`: the characters that would end it are percent-encoded. */
function linkTarget(url: string): string {
  return url.replace(/[<>| ]/g, (c) => encodeURIComponent(c));
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

export interface SlackWebhookOptions {
  /** The incoming-webhook URL, or a function that reads it (from Secrets Manager) when first needed. */
  webhookUrl: string | (() => Promise<string>);
  fetch?: typeof fetch;
  /** Per request. Default 10 s. */
  timeoutMs?: number;
  readmeUrl?: string;
  /** How a 429's Retry-After is waited out (tests pass their own). */
  sleep?: (ms: number) => Promise<void>;
  /** The longest Retry-After honoured; a longer one fails at once (the caller retries later). Default 15 s. */
  maxRetryAfterMs?: number;
}

/**
 * Posts alerts to a Slack incoming webhook (POST of the Block Kit JSON). Any reply but 2xx, or no reply,
 * throws SlackWebhookError. A 429 is retried once after its Retry-After (bounded). The URL must be https;
 * plain http is accepted for 127.0.0.1 only (tests).
 */
export class SlackWebhook implements AlertSink {
  private readonly fetch: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly options: SlackWebhookOptions) {
    this.fetch = options.fetch ?? globalThis.fetch;
    this.sleep = options.sleep ?? ((ms) => delay(ms));
    if (typeof options.webhookUrl === 'string') checkWebhookUrl(options.webhookUrl);
  }

  async publish(alert: Alert): Promise<void> {
    const raw = typeof this.options.webhookUrl === 'string' ? this.options.webhookUrl : await this.options.webhookUrl();
    const url = checkWebhookUrl(raw);
    const body = JSON.stringify(slackMessage(alert, { readmeUrl: this.options.readmeUrl }));
    let reply = await this.post(url, body);
    if (reply.status === 429) {
      const waitMs = retryAfterMs(reply.headers.get('retry-after'));
      if (waitMs <= (this.options.maxRetryAfterMs ?? 15_000)) {
        await reply.body?.cancel();
        await this.sleep(waitMs);
        reply = await this.post(url, body);
      }
    }
    const text = await reply.text().catch(() => '');
    if (reply.ok) return;
    const said = scrub(oneLine(text), url).slice(0, 200);
    throw new SlackWebhookError(`Slack webhook at ${url.host} answered ${reply.status}${said ? `: ${said}` : ''}`, { host: url.host, status: reply.status });
  }

  private async post(url: URL, body: string): Promise<Response> {
    try {
      return await this.fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body,
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
      });
    } catch (error) {
      const reason = error instanceof Error ? (errorCode(error) ?? error.message) : String(error);
      const shown = inspect(error, { depth: 5 });
      throw new SlackWebhookError(`Slack webhook at ${url.host} could not be reached: ${scrub(reason, url)}`, {
        host: url.host,
        cause: secretParts(url).some((part) => shown.includes(part)) ? undefined : error,
      });
    }
  }
}

/**
 * The webhook URL from a secret of its own (AWSCURRENT, the URL as plain text), read at the first call and
 * kept; a failed read is tried again at the next call. The error for an empty secret never shows its value.
 */
export function webhookUrlFromSecret(store: SecretStore, secretId: string): () => Promise<string> {
  let url: Promise<string> | undefined;
  const read = async (): Promise<string> => {
    const value = (await store.getValue(secretId, { stage: 'AWSCURRENT' }))?.trim();
    if (!value) throw new InvalidInputError(`Slack webhook secret ${secretId}`, 'holds no URL (store the incoming-webhook URL as plain text)');
    return value;
  };
  return () =>
    (url ??= read().catch((error: unknown) => {
      url = undefined;
      throw error;
    }));
}

/** The webhook URL, parsed and checked. Errors never repeat the URL. */
export function checkWebhookUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new SlackWebhookError('The Slack webhook URL is not a URL (store only the URL in its secret)', { host: '(invalid)' });
  }
  if (url.protocol === 'https:' || (url.protocol === 'http:' && url.hostname === '127.0.0.1')) return url;
  throw new SlackWebhookError(`The Slack webhook URL at ${url.host} must use https (plain http only for 127.0.0.1)`, { host: url.host });
}

/** Retry-After in seconds (Slack sends seconds); missing or unreadable counts as one second. */
function retryAfterMs(header: string | null): number {
  const seconds = Number(header);
  return header !== null && Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : 1000;
}

/** The undici cause's code (ECONNREFUSED, UND_ERR_CONNECT_TIMEOUT) or the abort reason. */
function errorCode(error: Error): string | undefined {
  if (error.name === 'TimeoutError' || error.name === 'AbortError') return 'timed out';
  const cause = (error as { cause?: { code?: unknown } }).cause;
  return typeof cause?.code === 'string' ? cause.code : undefined;
}

/** What makes the URL a secret: all of it, and its path and query (a bare "/" is no secret). */
function secretParts(url: URL): string[] {
  const path = `${url.pathname}${url.search}`;
  return path.length > 1 ? [url.href, path] : [url.href];
}

function scrub(text: string, url: URL): string {
  return secretParts(url).reduce((out, part) => out.split(part).join('(webhook path)'), text);
}
