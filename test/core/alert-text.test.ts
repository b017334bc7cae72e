import { describe, expect, it } from 'vitest';
import { buildAlert } from '../../src/core/alert-rules.ts';
import { alertText, runbookLink } from '../../src/core/alert-text.ts';
import { ALERT_KINDS, type Alert, type AlertHost, type AlertKind } from '../../src/core/alerts.ts';

const NOW = new Date('2026-11-23T12:05:12.000Z');
const SECRET = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:gitlab-runner-rotator/builders-AbCdEf';
const LOGS = 'https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/$252Faws$252Flambda$252Frotate';

const HOSTS: AlertHost[] = [
  { host: 'i-0123456789abcdef0', systemId: 's_0123456789ab', status: 'undeliverable', detail: 'SSM agent offline' },
  { host: 'i-0fedcba9876543210', systemId: null, status: 'timed-out', detail: 'Delivery timed out after 120 s' },
];

/** Each kind as the core raises it; host-missed and rotation-failed with hosts, the others without. */
const cases: Array<{ kind: AlertKind; hosts: AlertHost[]; logUrl?: string }> = ALERT_KINDS.map((kind) => ({
  kind,
  hosts: kind === 'host-missed' || kind === 'rotation-failed' ? HOSTS : [],
  ...(kind === 'near-expiry' ? {} : { logUrl: LOGS }),
}));

const alertOf = (c: (typeof cases)[number]): Alert =>
  buildAlert(c.kind, { engine: 'aws', runner: 'builders', secretId: SECRET, summary: `Something about ${c.kind} happened to runner builders`, hosts: c.hosts, now: NOW, logUrl: c.logUrl });

const flat = (text: string) => text.replace(/\s+/g, ' ');

describe('alertText', () => {
  it.each(cases)('renders a $kind alert: what, runner, since, hosts, next step, runbook, logs', (c) => {
    const alert = alertOf(c);
    const text = alertText(alert);
    const lines = text.split('\n');
    expect(lines[0]).toBe(`${alert.severity.toUpperCase()} ${c.kind}: builders`);
    expect(lines[1]).toBe(alert.summary);
    expect(text).toContain('Runner:    builders');
    expect(text).toContain(`Secret:    ${SECRET}`);
    expect(text).toContain('Since:     2026-11-23T12:05:12.000Z');
    expect(flat(text)).toContain(`Next step: ${flat(alert.nextStep)}`);
    expect(text).toContain(`Runbook:   docs/operations.md#runbook-${c.kind}`);
    if (c.logUrl) expect(text).toContain(`Logs:      ${LOGS}`);
    else expect(text).not.toContain('Logs:');
    if (c.hosts.length > 0) {
      expect(text).toContain(`Hosts:     ${c.hosts.length}`);
      expect(lines.find((l) => l.includes('HOST'))).toMatch(/^ {2}HOST +SYSTEM_ID +STATUS +DETAIL$/);
      expect(lines).toContainEqual(expect.stringMatching(/^ {2}i-0123456789abcdef0 +s_0123456789ab +undeliverable +SSM agent offline$/));
      expect(lines).toContainEqual(expect.stringMatching(/^ {2}i-0fedcba9876543210 +- +timed-out +Delivery timed out after 120 s$/));
    } else {
      expect(text).toContain('Hosts:     none named');
    }
    expect(text).not.toContain('Reminder');
    // Readable in a terminal: 100 columns, except a single word too long to break (a URL, an ARN).
    expect(lines.filter((l) => l.length > 100 && l.trim().split(/\s+/).length > 2)).toEqual([]);
  });

  it('says a reminder is one, with the time the condition was first seen', () => {
    const text = alertText({ ...alertOf(cases[0] as (typeof cases)[number]), reminder: true, since: '2026-11-20T08:00:00.000Z' });
    expect(text.split('\n')[2]).toBe('Reminder: still unresolved since 2026-11-20T08:00:00.000Z.');
  });

  it('lists at most maxHosts rows and says how many more', () => {
    const hosts = Array.from({ length: 12 }, (_, i) => ({ host: `i-${String(i).padStart(17, '0')}`, systemId: null, status: 'failed' as const, detail: 'exit 3' }));
    const text = alertText(buildAlert('host-missed', { engine: 'aws', runner: 'builders', secretId: SECRET, summary: '12 hosts', hosts, now: NOW }), { maxHosts: 10 });
    expect(text).toContain('Hosts:     12');
    expect(text).toContain('i-00000000000000009');
    expect(text).not.toContain('i-00000000000000010');
    expect(text).toContain('  and 2 more');
  });

  it('keeps every field on its line: newlines and control characters in a field become spaces', () => {
    const text = alertText(
      buildAlert('host-missed', { engine: 'aws',
        runner: 'build\ners',
        secretId: SECRET,
        summary: 'line one\nline two\u001b[31m',
        hosts: [{ host: 'h1', systemId: 's_1', status: 'failed', detail: 'updater said:\nno matching runner\r\n' }],
        now: NOW,
      }),
    );
    expect(text.split('\n').slice(0, 2)).toEqual(['CRITICAL host-missed: build ers', 'line one line two [31m']);
    expect(text).toMatch(/^ {2}h1 +s_1 +failed +updater said: no matching runner$/m);
  });

  it('points the runbook into the docs/operations.md URL the deployment names', () => {
    expect(alertText(alertOf(cases[0] as (typeof cases)[number]), { readmeUrl: 'https://gitlab.example.com/ops/rotator/-/blob/main/docs/operations.md' })).toContain(
      'Runbook:   https://gitlab.example.com/ops/rotator/-/blob/main/docs/operations.md#runbook-rotation-failed',
    );
  });
});

describe('runbookLink', () => {
  it.each([
    ['runbook-host-missed', undefined, 'docs/operations.md#runbook-host-missed'],
    ['#runbook-host-missed', undefined, 'docs/operations.md#runbook-host-missed'],
    ['README.md#runbook-host-missed', undefined, 'docs/operations.md#runbook-host-missed'],
    ['docs/operations.md#runbook-host-missed', undefined, 'docs/operations.md#runbook-host-missed'],
    ['runbook-near-expiry', 'https://example.com/docs/operations.md#top', 'https://example.com/docs/operations.md#runbook-near-expiry'],
  ])('links %s under %s as %s', (runbook, readme, expected) => {
    expect(runbookLink(runbook, readme)).toBe(expected);
  });
});
