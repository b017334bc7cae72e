import { beforeAll, describe, expect, it } from 'vitest';
import type { PrincipalName } from '../support/iam/deployment.ts';
import { describeRefusals, IamEvaluator, unique } from '../support/iam/iam-evaluator.ts';
import type { IamRequest } from '../support/iam/iam-requests.ts';
import { grantsOf, requestsUsing, statementsOf, without } from '../support/iam/grants.ts';
import { recordScenarios, type RecordedScenarios } from '../support/iam/scenarios.ts';
import { platformRequests, serviceRequests } from '../support/iam/service-requests.ts';

let scenarios: RecordedScenarios;
let evaluator: IamEvaluator;
let requests: IamRequest[];

// The scenarios are real work (four harnesses, rotations with bash hosts, a replacement): about 6 s alone,
// several times that on a loaded 2-core machine. The bound only stops a hang.
beforeAll(async () => {
  scenarios = await recordScenarios();
  evaluator = new IamEvaluator(scenarios.deployment);
  requests = unique([...scenarios.requests, ...platformRequests(scenarios.deployment), ...serviceRequests(scenarios.deployment)]);
}, 180_000);

const ROLES: PrincipalName[] = ['RotateSecret', 'ScanExpiry', 'ScanRunners', 'Notify', 'Operator', 'Host:builders'];

describe('the IAM contract of the synthesized stack', () => {
  it('lets the dispatcher queue the scan, and the worker share the GitLab budget and claim runners in the ledger table', async () => {
    const { deployment } = scenarios;
    const queued = requests.filter((r) => r.principal === 'ScanExpiry' && r.action === 'sqs:SendMessage');
    expect(queued.map((r) => r.resource)).toContain(deployment.scanQueue.arn);
    // What the worker's own code called (recorded SDK calls), not what the event source does for it.
    const worker = scenarios.requests.filter((r) => r.principal === 'ScanRunners').map((r) => r.action);
    expect(worker).toEqual(expect.arrayContaining(['dynamodb:UpdateItem', 'dynamodb:PutItem', 'sqs:SendMessage', 'secretsmanager:DescribeSecret']));
    // The dispatcher reads no secret: a listing is all it needs.
    expect(requests.filter((r) => r.principal === 'ScanExpiry' && r.action.startsWith('secretsmanager:')).map((r) => r.action)).toEqual(['secretsmanager:ListSecrets']);
    for (const request of [...queued, ...requests.filter((r) => r.principal === 'ScanRunners')]) expect(await evaluator.decide(request), request.because).toBe('Allowed');
  });

  it('records calls of every role in the scenarios', () => {
    for (const role of ROLES) expect(requests.filter((r) => r.principal === role).length, `${role} made no call`).toBeGreaterThan(0);
  });

  it('allows every call each role makes, and every call AWS services make for the stack', async () => {
    expect(describeRefusals(await evaluator.judge(requests))).toEqual([]);
  });

  it("lets the operator run status --aws: DescribeSecret and GetSecretValue of AWSCURRENT on every runner's secret", async () => {
    const status = requests.filter((r) => r.principal === 'Operator' && /secretsmanager:(DescribeSecret|GetSecretValue)$/.test(r.action));
    expect(new Set(status.map((r) => r.action))).toEqual(new Set(['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']));
    for (const request of status) expect(await evaluator.decide(request), request.because).toBe('Allowed');
  });

  it('lets the scan worker start a rotation: RotateSecret, and lambda:InvokeFunction on the rotation hook', async () => {
    const started = requests.filter((r) => r.principal === 'ScanRunners' && r.because.endsWith('RotateSecretCommand'));
    expect(started.map((r) => r.action).sort()).toEqual(['lambda:InvokeFunction', 'secretsmanager:RotateSecret']);
    expect(started.find((r) => r.action === 'lambda:InvokeFunction')?.resource).toBe(scenarios.deployment.functionArns.RotateSecret);
    for (const request of started) expect(await evaluator.decide(request)).toBe('Allowed');
  });

  it('uses every grant of every role, except those kept with a reason', async () => {
    const unused: string[] = [];
    for (const role of ROLES) {
      const principal = scenarios.deployment.principals.get(role)!;
      for (const statement of statementsOf(role, principal)) {
        for (const grant of grantsOf(statement)) {
          if (KEPT[`${role} ${grant.action}`]) continue;
          if ((await requestsUsing(grant, requests, evaluator, principal)).length === 0) unused.push(`${role}: ${grant.action} on ${grant.resource} (${statement.label})`);
        }
      }
    }
    expect(unused).toEqual([]);
  });

  it("refuses a host the token secret of another host group, and the rotation roles a secret of the prefix without the runner tag", async () => {
    const { deployment } = scenarios;
    const hostRead = requests.find((r) => r.principal === 'Host:builders' && r.action === 'secretsmanager:GetSecretValue')!;
    expect(await evaluator.decide(hostRead)).toBe('Allowed');
    const host = deployment.principals.get('Host:builders')!;
    const otherGroup = { ...host, tags: { 'gitlab-runner-rotator:host-group': 'someone-else' } };
    expect(await evaluator.withPrincipals(new Map([['Host:builders', otherGroup]])).decide(hostRead)).toBe('ImplicitlyDenied');
    const untagged = { ...host, tags: {} };
    expect(await evaluator.withPrincipals(new Map([['Host:builders', untagged]])).decide(hostRead)).toBe('ImplicitlyDenied');
    // A secret under the prefix that is no runner's (no runner tag): the hook may not touch it.
    const stranger = `arn:aws:secretsmanager:${deployment.site.region}:${deployment.site.account}:secret:gitlab-runner-rotator/not-a-runner-AbCdEf`;
    const put = requests.find((r) => r.principal === 'RotateSecret' && r.action === 'secretsmanager:PutSecretValue')!;
    expect(await evaluator.decide(put)).toBe('Allowed');
    expect(await evaluator.decide({ ...put, resource: stranger, context: {} })).toBe('ImplicitlyDenied');
  });

  it('refuses a recorded call whenever one statement is dropped from a role', async () => {
    const harmless: string[] = [];
    for (const role of ROLES) {
      const principal = scenarios.deployment.principals.get(role)!;
      for (const statement of statementsOf(role, principal)) {
        if (grantsOf(statement).every((g) => KEPT[`${role} ${g.action}`])) continue;
        const verdicts = await evaluator.withPrincipals(new Map([[role, without(principal, statement)]])).judge(requests.filter((r) => r.principal === role));
        if (describeRefusals(verdicts).length === 0) harmless.push(`${role}: ${statement.label}`);
      }
    }
    expect(harmless).toEqual([]);
  });
});

/** Grants no recorded call uses, kept on purpose: `<role> <action>` → why. */
const KEPT: Record<string, string> = {
  'Operator ssm:GetCommandInvocation': "doctor --aws reads it only when a host's findings pass the 2,500 characters ListCommandInvocations keeps (fleet-doctor.ts).",
  'ScanRunners sqs:ChangeMessageVisibility': "granted with the SQS event source by aws-cdk-lib (SqsEventSource → queue.grantConsumeMessages); Lambda's poller, not our code, would use it.",
  'ScanRunners sqs:GetQueueUrl': 'granted with the SQS event source by aws-cdk-lib (grantConsumeMessages); nothing of ours calls it.',
  'ScanRunners ssm:ListCommands': 'polled only while a re-push to a tag target has no invocations yet (pollCommand); the scenarios re-push by instance id.',
};
