import { describe, expect, it } from 'vitest';
import { DEFAULT_SECRET_PREFIX, DEFAULT_STACK_NAME, fleetSettingsText, parseAwsFleetConfig, parseAwsFleetSettings } from '../../src/config/aws-fleet-config.ts';

const RUNNERS = [{ name: 'builders', gitlabUrl: 'https://gitlab.example.com', runnerId: 12, hosts: { tag: { key: 'gitlab-runner', value: 'builders' } } }];
const parse = (fields: Record<string, unknown>) => parseAwsFleetConfig(JSON.stringify({ ...fields, runners: RUNNERS }), 'fleet.aws.json');

describe('the fleet file: stack name, secret prefix and per-runner metrics', () => {
  it('defaults to the one-fleet stack name and prefix, and to no per-runner metric', () => {
    const config = parse({});
    expect([config.stackName, config.secretPrefix, config.metrics]).toEqual([DEFAULT_STACK_NAME, DEFAULT_SECRET_PREFIX, { perRunnerDaysToExpiry: false }]);
    expect([DEFAULT_STACK_NAME, DEFAULT_SECRET_PREFIX]).toEqual(['GitLabRunnerRotator', 'gitlab-runner-rotator/']);
  });

  it("names every runner's secret under the fleet's own prefix", () => {
    const config = parse({ stackName: 'TeamB', secretPrefix: 'team-b/', metrics: { perRunnerDaysToExpiry: true } });
    expect(config.runners[0]?.secretId).toBe('team-b/builders');
    expect([config.stackName, config.metrics.perRunnerDaysToExpiry]).toEqual(['TeamB', true]);
  });

  it('refuses a stack name of its own on the default prefix, naming the field and a way out', () => {
    expect(() => parse({ stackName: 'TeamB' })).toThrow(/^fleet\.aws\.json: secretPrefix: is not set, but stackName is "TeamB": name this fleet's own prefix \(e\.g\. "TeamB\/"\)/);
    // The default stack name spelt out is the default fleet: its prefix may stay the default.
    expect(parse({ stackName: 'GitLabRunnerRotator' }).secretPrefix).toBe('gitlab-runner-rotator/');
  });

  it.each([
    ['9lives', 'starts with a digit'],
    ['team_b', 'has an underscore'],
    ['AwsRotator', 'starts with aws (SSM reserves it for document names)'],
    ['amazon-runners', 'starts with amazon'],
    ['a'.repeat(65), 'is longer than 64'],
  ])('refuses the stack name %s, which %s, naming the field', (name) => {
    expect(() => parse({ stackName: name, secretPrefix: 'x/' })).toThrow(/^fleet\.aws\.json: stackName: a CloudFormation stack name/);
  });

  it('refuses a metrics section with an unknown key or a non-boolean', () => {
    expect(() => parse({ metrics: { perRunnerDaysToExpiry: 'yes' } })).toThrow(/^fleet\.aws\.json: metrics\.perRunnerDaysToExpiry: /);
    expect(() => parse({ metrics: { daysToExpiry: true } })).toThrow(/^fleet\.aws\.json: metrics/);
  });

  it('hands the Lambdas the stack name, prefix and metrics switch in their settings', () => {
    const config = parse({ stackName: 'TeamB', secretPrefix: 'team-b/', metrics: { perRunnerDaysToExpiry: true } });
    const settings = parseAwsFleetSettings(fleetSettingsText(config), 'environment variable ROTATOR_SETTINGS_JSON');
    expect(settings).toMatchObject({ stackName: 'TeamB', secretPrefix: 'team-b/', metrics: { perRunnerDaysToExpiry: true } });
  });
});
