import { DescribeSecretCommand, GetSecretValueCommand, ResourceNotFoundException, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseAwsFleetConfig } from '../../src/config/aws-fleet-config.ts';
import { main } from '../../src/cli/main.ts';
import { recordingOutput } from '../../src/cli/output.ts';
import { collectAwsStatus, printAwsStatus } from '../../src/cli/status-aws-command.ts';

const NOW = new Date('2026-12-05T12:00:00Z');
const TOKEN = 'glrt-StatusAwsToken0123456789ab';
const CURRENT = '11111111-aaaa-4000-8000-000000000001';
const PREVIOUS = '22222222-bbbb-4000-8000-000000000002';
const PENDING = '33333333-cccc-4000-8000-000000000003';

const FLEET_TEXT = JSON.stringify({
  stackName: 'TeamBRunnerRotator',
  secretPrefix: 'team-b/runners/',
  runners: [
    { name: 'builders', gitlabUrl: 'https://gitlab.example.com', runnerId: 11, hosts: { tag: { key: 'gitlab-runner', value: 'builders' } } },
    { name: 'deployers', gitlabUrl: 'https://gitlab.example.com', runnerId: 12, hosts: { instanceIds: ['i-0123456789abcdef0'] } },
    { name: 'testers', gitlabUrl: 'https://gitlab.example.com', runnerId: 13, hosts: { instanceIds: ['i-0fedcba9876543210'] } },
  ],
});

const sm = mockClient(SecretsManagerClient);

/** Secrets Manager as an operator sees the three runners: one rotated, one not adopted with a rotation open, one never deployed. */
beforeEach(() => {
  sm.reset();
  sm.on(DescribeSecretCommand, { SecretId: 'team-b/runners/builders' }).resolves({
    Name: 'team-b/runners/builders',
    RotationEnabled: true,
    LastRotatedDate: new Date('2026-11-20T08:00:00Z'),
    NextRotationDate: new Date('2026-12-20T23:59:59Z'),
    VersionIdsToStages: { [CURRENT]: ['AWSCURRENT'], [PREVIOUS]: ['AWSPREVIOUS'] },
  });
  sm.on(GetSecretValueCommand, { SecretId: 'team-b/runners/builders', VersionStage: 'AWSCURRENT' }).resolves({
    SecretString: JSON.stringify({ runner_id: 11, url: 'https://gitlab.example.com', token: TOKEN, token_expires_at: '2026-12-15T18:00:00Z', token_obtained_at: '2026-11-20T08:00:00Z' }),
  });
  sm.on(DescribeSecretCommand, { SecretId: 'team-b/runners/deployers' }).resolves({
    Name: 'team-b/runners/deployers',
    RotationEnabled: true,
    VersionIdsToStages: { [CURRENT]: ['AWSCURRENT'], [PENDING]: ['AWSPENDING'] },
  });
  sm.on(GetSecretValueCommand, { SecretId: 'team-b/runners/deployers', VersionStage: 'AWSCURRENT' }).resolves({
    SecretString: JSON.stringify({ adopted: false, runner_id: 12, url: 'https://gitlab.example.com', password: 'generated-placeholder' }),
  });
  sm.on(DescribeSecretCommand, { SecretId: 'team-b/runners/testers' }).rejects(new ResourceNotFoundException({ message: "Secrets Manager can't find the specified secret.", $metadata: {} }));
});

afterEach(() => sm.reset());

describe('status --aws', () => {
  it("reads each runner's secret under the fleet's own prefix: rotation state, versions and the expiry AWSCURRENT records", async () => {
    const rows = await collectAwsStatus(parseAwsFleetConfig(FLEET_TEXT, 'fleet.aws.json'), new SecretsManagerClient({ region: 'eu-west-1' }), NOW);
    expect(sm.commandCalls(DescribeSecretCommand).map((c) => c.args[0].input.SecretId).sort()).toEqual(['team-b/runners/builders', 'team-b/runners/deployers', 'team-b/runners/testers']);
    expect(rows[0]).toEqual({
      runner: 'builders',
      secretId: 'team-b/runners/builders',
      rotationEnabled: true,
      lastRotatedAt: '2026-11-20T08:00:00.000Z',
      nextRotationAt: '2026-12-20T23:59:59.000Z',
      versions: [{ versionId: CURRENT, stages: ['AWSCURRENT'] }, { versionId: PREVIOUS, stages: ['AWSPREVIOUS'] }],
      rotationOpen: false,
      adopted: true,
      expiresAt: '2026-12-15T18:00:00Z',
      daysLeft: 10.2,
      problem: null,
    });
    expect(rows[1]).toMatchObject({ runner: 'deployers', adopted: false, rotationOpen: true, expiresAt: null, daysLeft: null, problem: null });
    expect(rows[2]).toMatchObject({ runner: 'testers', rotationEnabled: null, problem: 'no secret team-b/runners/testers (deploy the stack with this fleet file)' });
  });

  it('prints a table (or JSON lines) with no token, and exits 1 when a runner could not be read', async () => {
    const rows = await collectAwsStatus(parseAwsFleetConfig(FLEET_TEXT, 'fleet.aws.json'), new SecretsManagerClient({ region: 'eu-west-1' }), NOW);
    const table = recordingOutput();
    expect(printAwsStatus(rows, table, false)).toBe(1);
    expect(table.lines[0]).toMatch(/^RUNNER\s+ROTATION\s+LAST ROTATED\s+NEXT ROTATION\s+EXPIRES\s+DAYS LEFT\s+VERSIONS$/);
    expect(table.lines[2]).toMatch(/^builders\s+on\s+2026-11-20 08:00\s+2026-12-20 23:59\s+2026-12-15 18:00\s+10\.2\s+11111111:current 22222222:previous$/);
    expect(table.lines[3]).toMatch(/^deployers\s+on, open\s+-\s+-\s+not adopted\s+-\s+11111111:current 33333333:pending$/);
    expect(table.lines).toContain('[testers] no secret team-b/runners/testers (deploy the stack with this fleet file)');
    const json = recordingOutput();
    printAwsStatus(rows, json, true);
    expect(json.lines.slice(0, 3).map((line) => (JSON.parse(line) as { runner: string }).runner)).toEqual(['builders', 'deployers', 'testers']);
    for (const line of [...table.lines, ...json.lines]) {
      expect(line).not.toContain(TOKEN);
      expect(line).not.toContain('generated-placeholder');
    }
  });

  it('is an option of `rotator status`, reading the fleet file named by --fleet', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'status-aws-')), 'fleet.aws.json');
    writeFileSync(path, FLEET_TEXT);
    const output = recordingOutput();
    expect(await main(['--fleet', path, 'status', '--aws', '--json'], output)).toBe(1);
    expect(output.lines.filter((l) => l.startsWith('{')).map((l) => (JSON.parse(l) as { secretId: string }).secretId)).toEqual(['team-b/runners/builders', 'team-b/runners/deployers', 'team-b/runners/testers']);
    expect(output.lines.join('\n')).not.toContain(TOKEN);
  });

  it('names a value it cannot read by its field, without showing it', async () => {
    sm.on(GetSecretValueCommand, { SecretId: 'team-b/runners/builders', VersionStage: 'AWSCURRENT' }).resolves({ SecretString: JSON.stringify({ runner_id: 11, url: 'https://gitlab.example.com', token: TOKEN, token_expires_at: 'soon', token_obtained_at: '2026-11-20T08:00:00Z' }) });
    const [row] = await collectAwsStatus(parseAwsFleetConfig(FLEET_TEXT, 'fleet.aws.json'), new SecretsManagerClient({ region: 'eu-west-1' }), NOW);
    expect(row?.problem).toMatch(/^team-b\/runners\/builders AWSCURRENT: token_expires_at/);
    expect(row?.problem).not.toContain(TOKEN);
  });
});
