import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { deploymentOf } from '../support/iam/deployment.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const EXAMPLE = readFileSync(join(REPO_ROOT, 'fleet.aws.example.json'), 'utf8');

/** The output keys docs/aws-deployment.md lists in its "Stack outputs" table. */
function documentedOutputs(): string[] {
  const doc = readFileSync(join(REPO_ROOT, 'docs/aws-deployment.md'), 'utf8');
  const section = doc.slice(doc.indexOf('\n## Stack outputs\n'), doc.indexOf('\n## ', doc.indexOf('\n## Stack outputs\n') + 1));
  return [...section.matchAll(/^\| `([A-Za-z0-9]+)` \|/gm)].map((m) => m[1]!);
}

describe('the stack outputs', () => {
  it('are exactly the keys the deployment guide lists, with no hash suffix, all in the root stack', () => {
    const deployment = deploymentOf(EXAMPLE);
    const outputs = Object.keys((deployment.template as { Outputs?: Record<string, unknown> }).Outputs ?? {}).sort();
    expect(outputs).toEqual(['AlertTopicArn', 'ConvergeDocumentName', 'DashboardName', 'DoctorDocumentName', 'HostDocumentName', 'HostReadPolicyArn', 'LedgerTableName', 'OperatorPolicyArn']);
    expect(documentedOutputs().sort()).toEqual(outputs);
    // The nested stacks export nothing an operator would look for (and so no key CloudFormation would suffix).
    for (const { template } of deployment.nested) expect(Object.keys((template as { Outputs?: Record<string, unknown> }).Outputs ?? {})).toEqual([]);
  });

  it('keep their keys whatever the fleet: another stack name, prefix and set of runners', () => {
    const text = JSON.stringify({ ...(JSON.parse(EXAMPLE) as object), stackName: 'TeamBRunnerRotator', secretPrefix: 'team-b/' });
    const keys = (t: unknown) => Object.keys((t as { Outputs?: Record<string, unknown> }).Outputs ?? {}).sort();
    expect(keys(deploymentOf(text).template)).toEqual(keys(deploymentOf(EXAMPLE).template));
  });
});
