import { randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SecretsManagerStore } from '../../../src/adapters/aws/secrets-manager-store.ts';
import { SlackWebhook, SlackWebhookError, checkWebhookUrl, slackMessage, webhookUrlFromSecret } from '../../../src/adapters/alerts/slack-webhook.ts';
import { buildAlert } from '../../../src/core/alert-rules.ts';
import type { Alert, AlertHost } from '../../../src/core/alerts.ts';
import { InvalidInputError } from '../../../src/core/errors.ts';
import { FakeSecretsManager } from '../../support/fake-secrets-manager.ts';
import { startWebhookServer, type WebhookServer } from '../../support/webhook-server.ts';

const SINCE = '2026-11-23T12:05:12.000Z';
const LOGS = 'https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/$252Faws$252Flambda$252Frotate';
const HOSTS: AlertHost[] = [
  { host: 'i-0123456789abcdef0', systemId: 's_0123456789ab', status: 'undeliverable', detail: 'SSM agent offline' },
  { host: 'i-0fedcba9876543210', systemId: 's_fedcba987654', status: 'timed-out', detail: 'Delivery timed out after 120 s' },
  { host: 'i-0aaaabbbbccccdddd', systemId: null, status: 'failed', detail: 'no matching runner in /etc/gitlab-runner/config.toml' },
];

const alertWith = (fields: Partial<Alert> = {}): Alert => ({
  ...buildAlert('host-missed', { engine: 'aws',
    runner: 'builders',
    secretId: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:gitlab-runner-rotator/builders-AbCdEf',
    summary: '3 of 4 host(s) of runner builders did not take the new token and cannot take jobs',
    hosts: HOSTS,
    now: new Date(SINCE),
    logUrl: LOGS,
  }),
  ...fields,
});

type Block = { type: string; text?: { type: string; text: string }; fields?: Array<{ text: string }>; elements?: Array<{ text: string }> };
const blocksOf = (body: string) => (JSON.parse(body) as { blocks: Block[] }).blocks;
const sectionTexts = (blocks: Block[]) => blocks.filter((b) => b.type === 'section' && b.text).map((b) => b.text?.text ?? '');

let server: WebhookServer;
beforeEach(async () => {
  server = await startWebhookServer();
});
afterEach(async () => {
  await server.close();
});

describe('SlackWebhook', () => {
  it('posts a Block Kit message with the runner, every host, since, the next step, its runbook section and the logs', async () => {
    const alert = alertWith();
    await new SlackWebhook({ webhookUrl: server.url }).publish(alert);
    expect(server.received).toHaveLength(1);
    const post = server.received[0];
    expect(post?.method).toBe('POST');
    expect(post?.path).toBe(server.secretPath);
    expect(post?.headers['content-type']).toMatch(/^application\/json/);
    const body = JSON.parse(post?.body ?? '{}') as { text: string; blocks: Block[] };
    expect(body.text).toBe(`CRITICAL host-missed: builders: ${alert.summary}`);
    const blocks = body.blocks;
    expect(blocks[0]).toEqual({ type: 'header', text: { type: 'plain_text', text: ':rotating_light: host-missed: builders', emoji: true } });
    const fields = blocks.find((b) => b.fields)?.fields?.map((f) => f.text) ?? [];
    expect(fields).toEqual(['*Runner*\nbuilders', expect.stringContaining(`*Since*\n<!date^${Date.parse(SINCE) / 1000}^`), '*Severity*\ncritical', '*Kind*\nhost-missed']);
    expect(fields[1]).toContain(`|${SINCE}>`);
    const sections = sectionTexts(blocks);
    expect(sections).toContain(alert.summary);
    const hosts = sections.find((t) => t.startsWith('*Hosts (3)*')) ?? '';
    for (const h of HOSTS) {
      const line = hosts.split('\n').find((l) => l.includes(h.host)) ?? '';
      expect(line).toContain(`\`${h.systemId ?? '-'}\``);
      expect(line).toContain(`*${h.status}*`);
      expect(line).toContain(h.detail);
    }
    const next = sections.find((t) => t.startsWith('*Next step:*')) ?? '';
    expect(next).toContain(alert.nextStep);
    expect(next).toContain('`docs/operations.md#runbook-host-missed`');
    expect(sections).toContain(`*Logs:* <${LOGS}|open the logs>`);
    expect(blocks.some((b) => b.type === 'context')).toBe(false);
  });

  it('adds a reminder note when the state persists', async () => {
    await new SlackWebhook({ webhookUrl: server.url }).publish(alertWith({ reminder: true, since: '2026-11-20T08:00:00.000Z' }));
    const context = blocksOf(server.received[0]?.body ?? '{}').find((b) => b.type === 'context');
    expect(context?.elements?.[0]?.text).toMatch(/^:repeat: reminder: still unresolved since <!date\^\d+\^.*\|2026-11-20T08:00:00\.000Z>$/);
  });

  it('throws SlackWebhookError on a 500, naming the host and the status but never the URL', async () => {
    server.replies.push({ status: 500, body: 'internal_error' });
    const error = await new SlackWebhook({ webhookUrl: server.url }).publish(alertWith()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SlackWebhookError);
    const host = new URL(server.url).host;
    expect(error).toMatchObject({ name: 'SlackWebhookError', status: 500, host, message: `Slack webhook at ${host} answered 500: internal_error` });
    expect(inspect(error, { depth: 10 })).not.toContain(server.secretPath);
    expect(String((error as Error).stack)).not.toContain(server.secretPath);
  });

  it('throws SlackWebhookError without the URL when nothing answers', async () => {
    await server.close();
    const error = await new SlackWebhook({ webhookUrl: server.url, timeoutMs: 2000 }).publish(alertWith()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SlackWebhookError);
    expect(error).toMatchObject({ status: undefined, message: expect.stringMatching(/could not be reached: ECONNREFUSED$/) });
    expect(inspect(error, { depth: 10 })).not.toContain(server.secretPath);
    server = await startWebhookServer();
  });

  it('waits out a 429 once, for its Retry-After, and posts again', async () => {
    server.replies.push({ status: 429, headers: { 'retry-after': '1' }, body: 'rate_limited' });
    const slept: number[] = [];
    await new SlackWebhook({ webhookUrl: server.url, sleep: async (ms) => void slept.push(ms) }).publish(alertWith());
    expect(slept).toEqual([1000]);
    expect(server.received).toHaveLength(2);
    expect(server.received[1]?.body).toBe(server.received[0]?.body);
  });

  it('gives up after one retry of a 429, and at once when Retry-After is longer than it may wait', async () => {
    server.replies.push({ status: 429, headers: { 'retry-after': '1' } }, { status: 429, headers: { 'retry-after': '1' } });
    const slept: number[] = [];
    const slack = new SlackWebhook({ webhookUrl: server.url, sleep: async (ms) => void slept.push(ms) });
    await expect(slack.publish(alertWith())).rejects.toMatchObject({ name: 'SlackWebhookError', status: 429 });
    expect(server.received).toHaveLength(2);

    server.replies.push({ status: 429, headers: { 'retry-after': '3600' } });
    await expect(slack.publish(alertWith())).rejects.toMatchObject({ status: 429 });
    expect(server.received).toHaveLength(3);
    expect(slept).toEqual([1000]);
  });

  it('reads the URL through the function it was given, at each post', async () => {
    let reads = 0;
    const slack = new SlackWebhook({
      webhookUrl: async () => {
        reads += 1;
        return server.url;
      },
    });
    expect(reads).toBe(0);
    await slack.publish(alertWith());
    expect(reads).toBe(1);
    expect(server.received).toHaveLength(1);
  });
});

describe('checkWebhookUrl', () => {
  it('takes https anywhere and plain http only on 127.0.0.1', () => {
    expect(checkWebhookUrl('https://hooks.slack.com/services/T0/B0/abc').host).toBe('hooks.slack.com');
    expect(checkWebhookUrl('http://127.0.0.1:8080/services/T0/B0/abc').port).toBe('8080');
  });

  it.each(['http://hooks.slack.com/services/T0/B0/secretpart', 'http://localhost:8080/services/T0/B0/secretpart', 'ftp://hooks.slack.com/services/T0/B0/secretpart', 'hooks.slack.com/services/T0/B0/secretpart'])(
    'refuses %s without repeating its path',
    (url) => {
      const error = (() => {
        try {
          return checkWebhookUrl(url);
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(SlackWebhookError);
      expect(inspect(error)).not.toContain('secretpart');
    },
  );

  it('refuses a bad URL when the sink is built, before any alert', () => {
    expect(() => new SlackWebhook({ webhookUrl: 'http://hooks.slack.com/services/x' })).toThrow(SlackWebhookError);
  });
});

describe('slackMessage', () => {
  it('lists ten hosts and says how many more', () => {
    const hosts = Array.from({ length: 13 }, (_, i): AlertHost => ({ host: `host-${String(i).padStart(2, '0')}`, systemId: `s_${i}`, status: 'failed', detail: 'exit 3' }));
    const text = sectionTexts(slackMessage(alertWith({ hosts })).blocks as Block[]).find((t) => t.startsWith('*Hosts (13)*')) ?? '';
    expect(text).toContain('host-09');
    expect(text).not.toContain('host-10');
    expect(text.endsWith('\nand 3 more')).toBe(true);
  });

  it('links the runbook section when docs/operations.md has a URL', () => {
    const texts = sectionTexts(slackMessage(alertWith(), { readmeUrl: 'https://gitlab.example.com/ops/rotator/-/blob/main/docs/operations.md' }).blocks as Block[]);
    expect(texts.find((t) => t.startsWith('*Next step:*'))).toContain('<https://gitlab.example.com/ops/rotator/-/blob/main/docs/operations.md#runbook-host-missed|Runbook: runbook-host-missed>');
  });

  it('escapes mrkdwn in what it quotes, so a field cannot ping the channel or forge a link', () => {
    const message = slackMessage(alertWith({ summary: 'hello <!channel> & <https://evil.example|click>', logUrl: undefined }));
    const texts = sectionTexts(message.blocks as Block[]);
    expect(texts).toContain('hello &lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;');
    expect(message.text).toBe('CRITICAL host-missed: builders: hello &lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;');
    expect(texts.some((t) => t.startsWith('*Logs:*'))).toBe(false);
  });

  it('keeps the header within Slack’s 150 characters', () => {
    const header = slackMessage(alertWith({ runner: 'r'.repeat(300) })).blocks[0] as Block;
    expect(header.text?.text.length).toBe(150);
  });
});

describe('webhookUrlFromSecret', () => {
  it('reads the secret once, and again only after a failed read', async () => {
    const fake = new FakeSecretsManager();
    const store = new SecretsManagerStore(fake.client);
    const url = webhookUrlFromSecret(store, 'gitlab-runner-rotator/slack-webhook');
    // No such secret yet (getValue answers undefined), then a secret without a value: the same refusal.
    await expect(url()).rejects.toThrow(InvalidInputError);
    fake.createSecret('gitlab-runner-rotator/slack-webhook');
    await expect(url()).rejects.toThrow(InvalidInputError);
    await store.adoptCurrent('gitlab-runner-rotator/slack-webhook', randomUUID(), ` ${server.url}\n`);
    expect(await url()).toBe(server.url);
    await store.adoptCurrent('gitlab-runner-rotator/slack-webhook', randomUUID(), 'https://hooks.slack.com/services/T0/B0/changed');
    expect(await url()).toBe(server.url);
    fake.restore();
  });
});
