import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { recordingOutput } from '../../src/cli/output.ts';
import { GitLabSimulator } from '../../src/simulator/gitlab-simulator.ts';
import { createSimulatedFleet, type SimulatedFleet } from '../../src/simulator/simulated-fleet.ts';
import { captured, expectNoTokens } from '../support/token-leaks.ts';
import { startWebhookServer, type WebhookServer } from '../support/webhook-server.ts';

let dir: string;
let simulator: GitLabSimulator;
let fleet: SimulatedFleet;
let webhook: WebhookServer;
let fleetPath: string;
let output: ReturnType<typeof recordingOutput>;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'local-alerts-'));
  simulator = new GitLabSimulator({ tokenLifetimeSeconds: 30 * 86_400 });
  await simulator.start();
  fleet = await createSimulatedFleet(simulator, dir, [{ name: 'builders', hosts: 3 }]);
  webhook = await startWebhookServer();
  await writeFile(join(dir, 'slack-webhook'), `${webhook.url}\n`, { mode: 0o600 });
  fleetPath = join(dir, 'fleet.json');
  await writeFile(fleetPath, JSON.stringify({ ...fleet.fleetFile('state', 'none'), alerts: { slackWebhookUrlFile: 'slack-webhook' } }));
  output = recordingOutput();
});

afterEach(async () => {
  const everything = captured(output.lines, ...webhook.received.map((r) => r.body));
  expectNoTokens(everything, fleet.tokens);
  expect(everything.includes(webhook.secretPath)).toBe(false);
  await webhook.close();
  await simulator.stop();
  await rm(dir, { recursive: true, force: true });
});

const rotator = (...args: string[]) => main(['--fleet', fleetPath, ...args], output);

describe('local engine alerts', () => {
  it('names the host that missed a rotation on stdout and in Slack once, stays quiet across scans, and is quiet after the repair', async () => {
    expect(await rotator('adopt', 'builders', '--no-rotate')).toBe(0);
    const broken = fleet.hosts[1];
    if (!broken) throw new Error('three hosts');
    const original = await readFile(broken.configPath, 'utf8');
    await appendFile(broken.configPath, '[[runners]\n');

    expect(await rotator('rotate', 'builders')).toBe(1);
    const text = output.lines.join('\n');
    expect(text).toContain('host-missed');
    expect(text).toContain(broken.name);
    expect(webhook.received).toHaveLength(1);
    const body = webhook.received[0]?.body ?? '';
    expect(body).toContain('builders');
    expect(body).toContain(broken.name);
    expect(body).toContain('runbook-host-missed');

    for (let i = 0; i < 3; i += 1) await rotator('scan');
    expect(webhook.received).toHaveLength(1);

    await writeFile(broken.configPath, original);
    expect(await rotator('scan')).toBe(0);
    expect(webhook.received).toHaveLength(1);
  });

  it('keeps working, and says so, when the Slack webhook is down', async () => {
    webhook.replies.push({ status: 500, body: 'no' });
    await appendFile(fleet.hosts[2]?.configPath ?? '', '[[runners]\n');
    expect(await rotator('adopt', 'builders')).toBe(1);
    expect(output.lines.join('\n')).toContain('could not send an alert');
    expect(await rotator('scan')).toBe(1);
    expect(webhook.received).toHaveLength(2);
  });
});
