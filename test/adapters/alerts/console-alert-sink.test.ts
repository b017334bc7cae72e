import { describe, expect, it } from 'vitest';
import { ConsoleAlertSink } from '../../../src/adapters/alerts/console-alert-sink.ts';
import { buildAlert } from '../../../src/core/alert-rules.ts';
import { alertText } from '../../../src/core/alert-text.ts';

describe('ConsoleAlertSink', () => {
  it('writes the alert text line by line, then an empty line', async () => {
    const alert = buildAlert('near-expiry', { engine: 'aws', runner: 'builders', secretId: 'builders', summary: 'The token of runner builders expires in 2 days and was not rotated', now: new Date('2026-11-23T12:00:00.000Z') });
    const lines: string[] = [];
    await new ConsoleAlertSink((line) => lines.push(line), { readmeUrl: 'docs/README.md' }).publish(alert);
    expect(lines).toEqual([...alertText(alert, { readmeUrl: 'docs/README.md' }).split('\n'), '']);
    expect(lines).toContain('Runbook:   docs/README.md#runbook-near-expiry');
  });
});
