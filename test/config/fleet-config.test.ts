import { describe, expect, it } from 'vitest';
import { parseFleetConfig } from '../../src/config/fleet-config.ts';
import { InvalidInputError } from '../../src/core/errors.ts';

const valid = {
  stateDir: 'state',
  adminTokenFile: 'admin-token',
  defaults: { reload: 'none', policy: { minDaysBeforeExpiry: 3 } },
  runners: [
    { name: 'builders', gitlabUrl: 'https://gitlab.example.com/', runnerId: 12, hosts: [{ name: 'b1', config: '/etc/gitlab-runner/config.toml' }, { config: 'hosts/b2.toml' }] },
    { name: 'deployers', gitlabUrl: 'https://gitlab.example.com', runnerId: 13, reload: 'restart', policy: { rotateAtRemainingShare: 0.3 }, hosts: [{ config: 'c.toml' }] },
  ],
};

describe('parseFleetConfig', () => {
  it('resolves paths against the file, applies defaults and strips the trailing slash of urls', () => {
    const config = parseFleetConfig(JSON.stringify(valid), '/srv/rotator/fleet.json');
    expect(config.stateDir).toBe('/srv/rotator/state');
    expect(config.adminTokenFile).toBe('/srv/rotator/admin-token');
    const [builders, deployers] = config.runners;
    expect(builders).toMatchObject({ name: 'builders', secretId: 'builders', gitlabUrl: 'https://gitlab.example.com', runnerId: 12, reload: 'none' });
    expect(builders?.hosts).toEqual({
      kind: 'config-files',
      files: [
        { name: 'b1', configPath: '/etc/gitlab-runner/config.toml' },
        { name: '/srv/rotator/hosts/b2.toml', configPath: '/srv/rotator/hosts/b2.toml' },
      ],
    });
    expect(builders?.policy).toEqual({ rotateAtRemainingShare: 0.5, minDaysBeforeExpiry: 3, maxAgeDaysWithoutExpiry: 90 });
    expect(deployers).toMatchObject({ reload: 'restart', policy: { rotateAtRemainingShare: 0.3, minDaysBeforeExpiry: 3 } });
  });

  it('rotates by reset unless the runner or the defaults ask for replace', () => {
    const plain = parseFleetConfig(JSON.stringify(valid), '/srv/rotator/fleet.json');
    expect(plain.runners.map((r) => r.strategy)).toEqual(['reset', 'reset']);
    const mixed = structuredClone(valid) as typeof valid & { defaults: Record<string, unknown> };
    mixed.defaults.strategy = 'replace';
    (mixed.runners[1] as Record<string, unknown>).strategy = 'reset';
    expect(parseFleetConfig(JSON.stringify(mixed), '/srv/rotator/fleet.json').runners.map((r) => r.strategy)).toEqual(['replace', 'reset']);
  });

  const broken = (mutate: (c: typeof valid & Record<string, unknown>) => void) => {
    const copy = structuredClone(valid) as typeof valid & Record<string, unknown>;
    mutate(copy);
    return JSON.stringify(copy);
  };

  it.each([
    ['text that is not JSON', '{"runners": [', 'not valid JSON'],
    ['a runner id that is not a positive integer', broken((c) => ((c.runners[0] as Record<string, unknown>).runnerId = -1)), 'runners[0].runnerId'],
    ['a url that is not http(s)', broken((c) => ((c.runners[1] as Record<string, unknown>).gitlabUrl = 'ftp://x')), 'runners[1].gitlabUrl'],
    ['a runner without hosts', broken((c) => ((c.runners[0] as Record<string, unknown>).hosts = [])), 'runners[0].hosts'],
    ['an unknown reload mode', broken((c) => ((c.runners[0] as Record<string, unknown>).reload = 'kill')), 'runners[0].reload'],
    ['an unknown strategy', broken((c) => ((c.runners[1] as Record<string, unknown>).strategy = 'recreate')), 'runners[1].strategy'],
    [
      'strategy replace without an admin token file',
      broken((c) => {
        delete (c as Record<string, unknown>).adminTokenFile;
        (c.runners[1] as Record<string, unknown>).strategy = 'replace';
      }),
      'runners[1].strategy',
    ],
    ['a share of 1', broken((c) => ((c.runners[1] as Record<string, unknown>).policy = { rotateAtRemainingShare: 1 })), 'runners[1].policy.rotateAtRemainingShare'],
    ['a misspelt key', broken((c) => (c.runer = [])), 'runer'],
    ['a name used twice', broken((c) => ((c.runners[1] as Record<string, unknown>).name = 'builders')), 'used twice'],
    ['a name that is not a safe file name', broken((c) => ((c.runners[0] as Record<string, unknown>).name = '../x')), 'runners[0].name'],
  ])('rejects %s and says where', (_name, text, where) => {
    let caught: unknown;
    try {
      parseFleetConfig(text, '/srv/rotator/fleet.json');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidInputError);
    expect((caught as Error).message).toContain('/srv/rotator/fleet.json');
    expect((caught as Error).message).toContain(where);
  });

  it('reports every problem of the file at once, one line each, and says "missing" for an absent field', () => {
    const text = broken((c) => {
      delete (c.runners[0] as Record<string, unknown>).runnerId;
      (c.runners[1] as Record<string, unknown>).gitlabUrl = 'ftp://x';
      (c.runners[1] as Record<string, unknown>).reload = 'kill';
      (c.runners[1] as Record<string, unknown>).name = 'builders';
      c.runer = [];
    });
    let caught: unknown;
    try {
      parseFleetConfig(text, 'fleet.json');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidInputError);
    const lines = (caught as Error).message.split('\n');
    expect(lines).toContain('fleet.json: runners[0].runnerId: missing');
    expect(lines.find((l) => l.startsWith('fleet.json: runners[1].gitlabUrl: '))).toBeDefined();
    expect(lines.find((l) => l.startsWith('fleet.json: runners[1].reload: ') && l.includes('expected one of'))).toBeDefined();
    expect(lines).toContain('fleet.json: runer: unknown field');
    // The cross-field check is reported beside the schema's problems, not after they are fixed.
    expect(lines).toContain('fleet.json: runners[1].name: "builders" is used twice');
    expect(lines).toHaveLength(5);
    expect(lines).toContain('fleet.json: runners[1].reload: expected one of "sighup"|"restart"|"none"');
    expect((caught as InvalidInputError).problems.map((p) => `${p.where}: ${p.problem}`)).toEqual(lines);
  });

  it('says "missing" for a fleet file with no runners key and no stateDir', () => {
    expect(() => parseFleetConfig('{}', 'fleet.json')).toThrow('fleet.json: stateDir: missing\nfleet.json: runners: missing');
  });
});
