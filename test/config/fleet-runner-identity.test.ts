/**
 * Both fleet files (local and AWS) share the runner's identity: its name, GitLab url and runner id. An entry
 * that would fail later, or break another runner, is refused at parse time, naming the field.
 */
import { describe, expect, it } from 'vitest';
import { parseAwsFleetConfig } from '../../src/config/aws-fleet-config.ts';
import { parseFleetConfig } from '../../src/config/fleet-config.ts';
import { InvalidInputError } from '../../src/core/errors.ts';

interface Identity {
  name: string;
  gitlabUrl: string;
  runnerId: number;
}

const engines = [
  {
    engine: 'the local fleet file',
    parse: (runners: Identity[]) =>
      parseFleetConfig(JSON.stringify({ stateDir: 'state', runners: runners.map((r) => ({ ...r, hosts: [{ config: `${r.name}.toml` }] })) }), '/srv/rotator/fleet.json'),
  },
  {
    engine: 'the AWS fleet file',
    parse: (runners: Identity[]) =>
      parseAwsFleetConfig(JSON.stringify({ runners: runners.map((r) => ({ ...r, hosts: { tag: { key: 'gitlab-runner', value: r.name } } })) }), '/srv/rotator/fleet.json'),
  },
];

const builders: Identity = { name: 'builders', gitlabUrl: 'https://gitlab.example.com', runnerId: 12 };
const deployers: Identity = { name: 'deployers', gitlabUrl: 'https://gitlab.example.com', runnerId: 13 };

/** The InvalidInputError parsing throws (fails the test when parsing succeeds). */
function refusal(parse: () => unknown): InvalidInputError {
  try {
    parse();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidInputError);
    return error as InvalidInputError;
  }
  throw new Error('expected the fleet file to be refused, but it was accepted');
}

describe.each(engines)('$engine', ({ parse }) => {
  it.each([
    ['with a trailing slash', 'https://gitlab.example.com/'],
    ['with the host in another case', 'https://GitLab.Example.COM'],
    ['with the default port written out', 'https://gitlab.example.com:443'],
    ['over http instead of https', 'http://gitlab.example.com'],
  ])('refuses a second entry for the same GitLab runner written %s, naming both entries', (_how, url) => {
    const error = refusal(() => parse([builders, deployers, { name: 'builders-again', gitlabUrl: url, runnerId: 12 }]));

    expect(error.where).toBe('/srv/rotator/fleet.json: runners[2].runnerId');
    expect(error.message).toContain(`runner 12 of ${url} is also runners[0] ("builders", https://gitlab.example.com)`);
  });

  it('accepts the same runner id at two different GitLabs, and two runners of one GitLab', () => {
    const other = { name: 'elsewhere', gitlabUrl: 'https://gitlab.other.example', runnerId: 12 };
    expect(parse([builders, deployers, other]).runners.map((r) => r.name)).toEqual(['builders', 'deployers', 'elsewhere']);
  });

  it('accepts the same runner id under two paths of one host, which are two GitLabs', () => {
    const a = { name: 'a', gitlabUrl: 'https://git.example.com/one', runnerId: 5 };
    const b = { name: 'b', gitlabUrl: 'https://git.example.com/two', runnerId: 5 };
    expect(parse([a, b]).runners).toHaveLength(2);
  });

  it.each([
    ['two dots in a row', 'a..b'],
    ['a dot at the end', 'builders.'],
    ['a dot at the start', '.builders'],
    ['a slash', 'team/builders'],
    ['65 characters', `b${'x'.repeat(64)}`],
  ])('refuses a runner name with %s, naming the field and the rule', (_what, name) => {
    const error = refusal(() => parse([builders, { ...deployers, name }]));

    expect(error.where).toBe('/srv/rotator/fleet.json: runners[1].name');
    expect(error.message).toContain('with no ".." and not ending in "."');
    expect(error.message).toContain('<name>.secret.json');
  });

  it.each(['a', 'a.b', 'build_ers-2', 'x1.y2.z3', `b${'x'.repeat(63)}`])('accepts the runner name %s', (name) => {
    expect(parse([{ ...builders, name }]).runners[0]?.name).toBe(name);
  });
});
