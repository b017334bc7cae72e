import { describe, expect, it } from 'vitest';
import { fleetFromRunnerConfig } from '../../src/config/fleet-from-runner-config.ts';
import { InvalidInputError } from '../../src/core/errors.ts';
import { captured, expectNoTokens } from '../support/token-leaks.ts';

const TOKEN_A = 'glrt-AAAAAAAAAAAAAAAAAAAA';
const TOKEN_B = 'glrt-BBBBBBBBBBBBBBBBBBBB';
const options = { configPath: '/etc/gitlab-runner/config.toml', fleetPath: '/etc/gitlab-runner-rotator/fleet.json', stateDir: '/var/lib/gitlab-runner-rotator', hostName: 'build-7' };

/** The error a call throws (fails the test when it returns). */
function thrown(call: () => unknown): Error {
  try {
    call();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the call to throw');
}

describe('a fleet file from config.toml', () => {
  it('lists every [[runners]] table by name, url without its trailing slash and id, on this host, and holds no token', () => {
    const text = `concurrent = 4
[[runners]]
  name = "docker-builders"
  url = "https://gitlab.example.com/"
  id = 42
  token = "${TOKEN_A}"
  executor = "docker"
[[runners]]
  name = "deploy"
  url = "https://gitlab.example.com"
  id = 43
  token = "${TOKEN_B}"
  executor = "shell"
`;
    const fleet = fleetFromRunnerConfig(text, options);

    expect(fleet).toEqual({
      stateDir: '/var/lib/gitlab-runner-rotator',
      runners: [
        { name: 'docker-builders', gitlabUrl: 'https://gitlab.example.com', runnerId: 42, hosts: [{ name: 'build-7', config: '/etc/gitlab-runner/config.toml' }] },
        { name: 'deploy', gitlabUrl: 'https://gitlab.example.com', runnerId: 43, hosts: [{ name: 'build-7', config: '/etc/gitlab-runner/config.toml' }] },
      ],
    });
    expectNoTokens(JSON.stringify(fleet), [TOKEN_A, TOKEN_B]);
  });

  it('makes host names into runner names, and gives a taken or empty name its runner id', () => {
    const table = (name: string | undefined, id: number) => `[[runners]]\n${name === undefined ? '' : `name = "${name}"\n`}url = "https://gitlab.example.com"\nid = ${id}\ntoken = "${TOKEN_A}"\n`;
    const text = [table('ip-10-0-0-1.ec2.internal', 1), table('ip-10-0-0-1.ec2.internal', 2), table('my runner (x86)', 3), table(undefined, 4), table('..', 5)].join('');

    const names = fleetFromRunnerConfig(text, options).runners.map((r) => r.name);

    expect(names).toEqual(['ip-10-0-0-1.ec2.internal', 'ip-10-0-0-1.ec2.internal-2', 'my-runner-x86-', 'runner-4', 'runner-5']);
  });

  it('reports every table without a url or an id at once, saying "missing"', () => {
    const text = `[[runners]]\nname = "a"\nurl = "https://gitlab.example.com"\ntoken = "${TOKEN_A}"\n[[runners]]\nname = "b"\nid = 7\n[[runners]]\nname = "c"\nid = "x"\nurl = "https://gitlab.example.com"\n`;

    const error = thrown(() => fleetFromRunnerConfig(text, options));

    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message.split('\n')).toEqual([
      expect.stringMatching(/^\/etc\/gitlab-runner\/config.toml: \[\[runners\]\] #1 \("a"\): id: missing \(gitlab-runner 15\+ writes it/),
      '/etc/gitlab-runner/config.toml: [[runners]] #2 ("b"): url: missing',
      expect.stringMatching(/^\/etc\/gitlab-runner\/config.toml: \[\[runners\]\] #3 \("c"\): id: "x" is not a runner id/),
    ]);
    expectNoTokens(captured(error), [TOKEN_A]);
  });

  it('refuses a config.toml with no runner, or one that is not TOML, without quoting a token', () => {
    expect(thrown(() => fleetFromRunnerConfig('concurrent = 1\n', options)).message).toMatch(/has no \[\[runners\]\] table/);
    const error = thrown(() => fleetFromRunnerConfig(`[[runners]]\ntoken = "${TOKEN_A}" oops\n`, options));
    expect(error.message).toMatch(/^\/etc\/gitlab-runner\/config.toml: not valid TOML/);
    expectNoTokens(captured(error), [TOKEN_A]);
  });

  it('refuses what the engine would refuse: the same GitLab runner twice', () => {
    const text = `[[runners]]\nname = "a"\nurl = "https://gitlab.example.com"\nid = 9\n[[runners]]\nname = "b"\nurl = "https://gitlab.example.com/"\nid = 9\n`;

    expect(thrown(() => fleetFromRunnerConfig(text, options)).message).toMatch(/fleet.json: runners\[1\].runnerId: runner 9 of https:\/\/gitlab.example.com is also runners\[0\]/);
  });
});
