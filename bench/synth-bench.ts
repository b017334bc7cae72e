/**
 * `cdk synth` of generated fleets: how long the CDK app takes and how large its templates get, at 1,000 and
 * 10,000 runners (issue 15). The app is bin/app.ts's RotatorStack with cdk.json's context, without bundling
 * (bundles do not depend on the fleet: test/lib/rotator-stack.test.ts proves them byte-identical) and
 * cdk-nag's time reported apart from the synth's (`cdk synth` runs both).
 */
import { App } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { readFileSync } from 'node:fs';
import { RotatorStack } from '../lib/rotator-stack.ts';
import { parseAwsFleetConfig } from '../src/config/aws-fleet-config.ts';

const CDK_CONTEXT = (JSON.parse(readFileSync(new URL('../cdk.json', import.meta.url), 'utf8')) as { context: Record<string, unknown> }).context;

export interface SynthMeasurement {
  runners: number;
  /** Parse of the fleet file and construction of the stack, then synthesis of every template. */
  synthMs: number;
  /** cdk-nag's AwsSolutions checks over the synthesized app (`cdk synth` runs them), when measured. */
  nagMs: number | undefined;
  nagViolations: number | undefined;
  templates: number;
  /** Resources of the root template, and of the fullest nested stack. */
  rootResources: number;
  largestNestedResources: number;
  largestTemplateBytes: number;
  heapUsedMb: number;
}

/** A fleet file of `runners` runners on one GitLab, hosts by tag, as teams with many runners write it. */
export function generatedFleet(runners: number): string {
  return JSON.stringify({
    adminTokenSecrets: { 'https://gitlab.example.com': 'gitlab-runner-rotator-admin/gitlab.example.com' },
    runners: Array.from({ length: runners }, (_, i) => ({
      name: `runner-${String(i).padStart(5, '0')}`,
      gitlabUrl: 'https://gitlab.example.com',
      runnerId: 1_000 + i,
      hosts: { tag: { key: 'gitlab-runner', value: `runner-${String(i).padStart(5, '0')}` } },
      ...(i % 10 === 0 ? { hostGroup: `group-${Math.floor(i / 100)}` } : {}),
    })),
  });
}

export function measureSynth(runners: number, withNag = false): SynthMeasurement {
  const text = generatedFleet(runners);
  const started = performance.now();
  const app = new App({ context: { ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': [] } });
  const stack = new RotatorStack(app, 'GitLabRunnerRotator', { fleet: { path: 'generated.json', text, config: parseAwsFleetConfig(text, 'generated.json') } });
  const assembly = app.synth();
  const synthMs = performance.now() - started;
  let nagMs: number | undefined;
  let nagViolations: number | undefined;
  if (withNag) {
    const nagStarted = performance.now();
    nagViolations = new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(app).violations.length;
    nagMs = performance.now() - nagStarted;
  }
  const root = assembly.getStackByName(stack.stackName);
  const templates = [JSON.stringify(root.template), ...stack.shards.map((shard) => readFileSync(`${assembly.directory}/${shard.templateFile}`, 'utf8'))];
  const count = (json: string) => Object.keys((JSON.parse(json) as { Resources: object }).Resources).length;
  return {
    runners,
    synthMs,
    nagMs,
    nagViolations,
    templates: templates.length,
    rootResources: count(templates[0] ?? '{}'),
    largestNestedResources: Math.max(0, ...templates.slice(1).map(count)),
    largestTemplateBytes: Math.max(...templates.map((t) => Buffer.byteLength(t))),
    heapUsedMb: process.memoryUsage().heapUsed / 1e6,
  };
}

// `node --import tsx bench/synth-bench.ts 1000 10000`: the figures alone, as JSON lines.
if (import.meta.url === `file://${process.argv[1]}`) {
  for (const arg of process.argv.slice(2)) process.stdout.write(`${JSON.stringify(measureSynth(Number(arg), process.env.WITH_NAG === '1'))}\n`);
}
