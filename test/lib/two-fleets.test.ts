import { describe, expect, it } from 'vitest';
import { deploymentOf, type Deployment, type PrincipalName } from '../support/iam/deployment.ts';
import { IamEvaluator } from '../support/iam/iam-evaluator.ts';
import type { IamRequest } from '../support/iam/iam-requests.ts';

/**
 * Two fleets in one account and region (issue 18): each names its stack and its secret prefix. Both have a
 * runner named `builders` in host group `builders`, so only the prefix keeps them apart.
 */
const fleet = (own: Record<string, unknown>) =>
  JSON.stringify({
    ...own,
    alerts: { chatbot: { slackWorkspaceId: 'T0123ABCD', slackChannelId: 'C0123ABCD' } },
    runners: [
      { name: 'builders', gitlabUrl: 'https://gitlab.example.com', runnerId: 11, hosts: { tag: { key: 'gitlab-runner', value: 'builders' } } },
      { name: 'deployers', gitlabUrl: 'https://gitlab.example.com', runnerId: 12, hosts: { instanceIds: ['i-0123456789abcdef0'] } },
    ],
  });

const FIRST = fleet({});
const SECOND = fleet({ stackName: 'TeamBRunnerRotator', secretPrefix: 'team-b/runners/' });

/** Every call on a secret the roles of a stack make, with the context IAM sees for it (iam-requests.ts). */
const SECRET_ACTIONS: Array<[string, Record<string, string>]> = [
  ['secretsmanager:DescribeSecret', {}],
  ['secretsmanager:GetSecretValue', { 'secretsmanager:VersionStage': 'AWSCURRENT' }],
  ['secretsmanager:PutSecretValue', {}],
  ['secretsmanager:UpdateSecretVersionStage', {}],
  ['secretsmanager:RotateSecret', {}],
];
const PRINCIPALS: PrincipalName[] = ['RotateSecret', 'ScanExpiry', 'ScanRunners', 'Notify', 'Operator', 'Host:builders', 'Host:deployers'];

/** What each principal of `roles` may do on each secret of `secrets`: `<principal> <action> <secret name>`. */
async function allowedOn(roles: Deployment, secrets: Deployment): Promise<string[]> {
  const evaluator = new IamEvaluator(roles);
  const allowed: string[] = [];
  for (const [arn, tags] of secrets.secretTags) {
    const resourceTags = Object.fromEntries(Object.entries(tags).map(([key, value]) => [`aws:ResourceTag/${key}`, value]));
    for (const principal of PRINCIPALS) {
      for (const [action, context] of SECRET_ACTIONS) {
        const request: IamRequest = { principal, action, resource: arn, context: { ...resourceTags, ...context }, because: `${principal} on ${arn}` };
        if ((await evaluator.decide(request)) === 'Allowed') allowed.push(`${principal} ${action} ${arn.split(':secret:')[1]?.replace(/-[A-Za-z0-9]{6}$/, '')}`);
      }
    }
  }
  return allowed.sort();
}

/** The physical names a template sets itself (CloudFormation generates the others, from the stack name). */
function fixedNames(deployment: Deployment): string[] {
  const names: string[] = [];
  for (const template of [deployment.template, ...deployment.nested.map((n) => n.template)]) {
    for (const resource of Object.values(template.Resources)) {
      for (const [key, value] of Object.entries(resource.Properties ?? {})) {
        if (typeof value === 'string' && /^(Name|[A-Za-z]*Name)$/.test(key) && !['MetricName', 'DisplayName', 'PolicyName', 'Namespace'].includes(key)) names.push(`${resource.Type} ${value}`);
      }
    }
  }
  return names.sort();
}

describe('two fleets in one account, each with its stack name and secret prefix', () => {
  it("lets no role or host of one stack touch the other stack's secrets, while each reaches its own", async () => {
    const first = deploymentOf(FIRST);
    const second = deploymentOf(SECOND);
    expect(first.site.stackName).toBe('GitLabRunnerRotator');
    expect(second.site.stackName).toBe('TeamBRunnerRotator');
    // Each stack's roles do reach their own runner secrets (so the refusals below are the prefix's doing).
    const own = await allowedOn(second, second);
    expect(own).toEqual(expect.arrayContaining(['Host:builders secretsmanager:GetSecretValue team-b/runners/builders', 'RotateSecret secretsmanager:PutSecretValue team-b/runners/builders', 'ScanRunners secretsmanager:RotateSecret team-b/runners/deployers', 'Operator secretsmanager:DescribeSecret team-b/runners/builders']));
    expect(await allowedOn(second, first)).toEqual([]);
    expect(await allowedOn(first, second)).toEqual([]);
  });

  it('gives every resource whose name the stack fixes a name of its own, so the second deploy collides with nothing', () => {
    const first = fixedNames(deploymentOf(FIRST));
    const second = fixedNames(deploymentOf(SECOND));
    // The names that must differ: documents, dashboard, Chatbot channel, associations, secrets.
    expect(first.some((n) => n.startsWith('AWS::SSM::Document '))).toBe(true);
    expect(first.some((n) => n.startsWith('AWS::CloudWatch::Dashboard '))).toBe(true);
    expect(first.some((n) => n.startsWith('AWS::Chatbot::SlackChannelConfiguration '))).toBe(true);
    expect(first.some((n) => n.startsWith('AWS::SSM::Association '))).toBe(true);
    expect(first.some((n) => n.startsWith('AWS::SecretsManager::Secret '))).toBe(true);
    expect(first.filter((name) => second.includes(name))).toEqual([]);
  });
});
