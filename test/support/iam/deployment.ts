import { App, type CfnResource } from 'aws-cdk-lib';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IConstruct } from 'constructs';
import { RotatorStack } from '../../../lib/rotator-stack.ts';
import { parseAwsFleetConfig } from '../../../src/config/aws-fleet-config.ts';
import { RUNNER_TAG } from '../../../src/config/runner-tags.ts';
import { CfnResolver, SITE as DEFAULT_SITE, secretArnOf, type DeploymentSite, type Template } from './cfn-resolver.ts';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CDK_CONTEXT = (JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> }).context;


export interface PolicyStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Principal?: unknown;
  Action: string | string[];
  Resource?: string | string[];
  Condition?: Record<string, Record<string, unknown>>;
}

export interface PolicyDocument {
  Version: string;
  Statement: PolicyStatement[];
}

export interface NamedPolicy {
  /** `<policy logical id>`, or the managed policy's name: where a statement comes from, in reports. */
  name: string;
  policy: PolicyDocument;
}

/** Who makes a call: a role the stack defines or documents, or an AWS service principal. */
export type PrincipalName = 'RotateSecret' | 'ScanExpiry' | 'ScanRunners' | 'Notify' | 'Operator' | `Host:${string}` | `${string}.amazonaws.com`;

export interface DeployedPrincipal {
  arn: string;
  policies: NamedPolicy[];
  /** The role's tags: `aws:PrincipalTag/<key>` in every request it makes (a host role's host group). */
  tags?: Record<string, string>;
}

/**
 * The stack as IAM would see it once deployed: each role's identity policies and each resource's policy,
 * with every intrinsic resolved (cfn-resolver.ts), and the names the functions are configured with.
 * - `RotateSecret`, `ScanExpiry`, `ScanRunners`, `Notify`: the functions' roles, with every policy the template attaches.
 * - `Host:<runner>`: an instance role with the HostReadPolicyArn output attached and tagged with the runner's
 *   host group (`gitlab-runner-rotator:host-group`), as docs/aws-deployment.md says to do.
 * - `Operator`: a role with the OperatorPolicyArn output attached.
 */
export interface Deployment {
  site: DeploymentSite;
  template: Template;
  stack: RotatorStack;
  resolver: CfnResolver;
  principals: Map<PrincipalName, DeployedPrincipal>;
  /** Resource policies by resource ARN: secrets, functions (their Lambda permissions), keys, topics, queues. */
  resourcePolicies: Map<string, PolicyDocument>;
  ledgerTableName: string;
  hostDocumentName: string;
  /** The convergence document the runners' State Manager associations run. */
  convergeDocumentName: string;
  /** The State Manager associations, resolved: what State Manager runs on which targets. */
  associations: Array<{ documentName: string; targets: Array<{ Key: string; Values: string[] }>; parameters: Record<string, string[]> }>;
  doctorDocumentName: string;
  alertTopicArn: string;
  alertKeyArn: string;
  /** The function ARN by role name. */
  functionArns: Record<'RotateSecret' | 'ScanExpiry' | 'ScanRunners' | 'Notify', string>;
  /** The log group ARN (`…:log-group:<name>:*`) by function. */
  logGroupArns: Record<'RotateSecret' | 'ScanExpiry' | 'ScanRunners' | 'Notify', string>;
  /** The scan's queue: its URL (what the functions are configured with) and ARN. */
  scanQueue: { url: string; arn: string };
  /** The rotation function of each managed secret (its RotationSchedule), by secret ARN. */
  rotationFunctionOf: Map<string, string>;
  /** The tags of each secret the stack creates, by ARN (`aws:ResourceTag/<key>` of requests on it). */
  secretTags: Map<string, Record<string, string>>;
  /** The nested stacks' templates (RunnerShard), resolved with the parameters the root passes them. */
  nested: Array<{ template: Template; resolver: CfnResolver }>;
  /** The ARN of a secret given by name or ARN: the stack's own secrets and the ones the fleet file names. */
  secretArn(nameOrArn: string): string;
}

const deployments = new Map<string, Deployment>();

/** The deployment of the stack for this AWS fleet file (synthesized once per text, without bundling). */
export function deploymentOf(fleetText: string): Deployment {
  let deployment = deployments.get(fleetText);
  if (!deployment) {
    deployment = synthesize(fleetText);
    deployments.set(fleetText, deployment);
  }
  return deployment;
}

function synthesize(fleetText: string): Deployment {
  const app = new App({ context: { ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': [] }, builtinCloudFormationValidation: false });
  const fleet = { path: 'fleet.aws.json', text: fleetText, config: parseAwsFleetConfig(fleetText, 'fleet.aws.json') };
  // The stack name bin/app.ts gives it: the fleet file's (GitLabRunnerRotator unless it names its own).
  const site = { ...DEFAULT_SITE, stackName: fleet.config.stackName };
  const stack = new RotatorStack(app, site.stackName, { fleet, env: { account: site.account, region: site.region } });
  const assembly = app.synth();
  const template = assembly.getStackByName(site.stackName).template as Template;
  const resolver = new CfnResolver(site, template);
  const logicalId = (construct: IConstruct) => stack.getLogicalId((construct.node.defaultChild ?? construct) as CfnResource);
  const resources = Object.entries(template.Resources);
  const ofType = (type: string) => resources.filter(([, r]) => r.Type === type);
  const resolved = <T>(value: unknown) => resolver.resolve(value) as T;
  const nested = stack.shards.map((shard) => {
    const nestedTemplate = JSON.parse(readFileSync(join(assembly.directory, shard.templateFile), 'utf8')) as Template;
    const stackResource = template.Resources[logicalId(shard.nestedStackResource as IConstruct)];
    return { template: nestedTemplate, resolver: new CfnResolver(site, nestedTemplate, resolved<Record<string, string>>(stackResource?.Properties?.Parameters ?? {})) };
  });
  /** Resources of a type in every nested stack, each resolved in its own template. */
  const nestedOfType = (type: string) =>
    nested.flatMap(({ template: t, resolver: r }) => Object.entries(t.Resources).filter(([, res]) => res.Type === type).map(([id, res]) => ({ id, resource: res, resolver: r })));

  const managedPolicies = new Map(ofType('AWS::IAM::ManagedPolicy').map(([id, r]) => [resolver.ref(id), { name: id, policy: resolved<PolicyDocument>(r.Properties?.PolicyDocument) }]));
  const rolePolicies = (roleId: string): NamedPolicy[] => {
    const attachedTo = (r: { Properties?: Record<string, unknown> }) => ((r.Properties?.Roles as Array<{ Ref?: string }> | undefined) ?? []).some((role) => role.Ref === roleId);
    const inline = ofType('AWS::IAM::Policy')
      .filter(([, r]) => attachedTo(r))
      .map(([id, r]) => ({ name: id, policy: resolved<PolicyDocument>(r.Properties?.PolicyDocument) }));
    const role = template.Resources[roleId]?.Properties ?? {};
    const embedded = ((role.Policies as Array<{ PolicyName: string; PolicyDocument: unknown }> | undefined) ?? []).map((p) => ({ name: `${roleId}/${p.PolicyName}`, policy: resolved<PolicyDocument>(p.PolicyDocument) }));
    const attached = resolved<string[] | undefined>(role.ManagedPolicyArns) ?? [];
    const managed = [
      ...attached.map((arn) => {
        const policy = managedPolicies.get(arn);
        if (!policy) throw new Error(`deployment: role ${roleId} attaches ${arn}, whose document is not in the template`);
        return policy;
      }),
      ...ofType('AWS::IAM::ManagedPolicy').filter(([, r]) => attachedTo(r)).map(([id]) => managedPolicies.get(resolver.ref(id)) as NamedPolicy),
    ];
    return [...inline, ...embedded, ...managed];
  };

  const functions = { RotateSecret: stack.functions.rotateSecret, ScanExpiry: stack.functions.scanExpiry, ScanRunners: stack.functions.scanRunners, Notify: stack.notify.function } as const;
  const principals = new Map<PrincipalName, DeployedPrincipal>();
  const functionArns = {} as Deployment['functionArns'];
  const logGroupArns = {} as Deployment['logGroupArns'];
  for (const [name, fn] of Object.entries(functions) as Array<[keyof typeof functions, (typeof functions)[keyof typeof functions]]>) {
    const fnId = logicalId(fn);
    const roleId = (template.Resources[fnId]?.Properties?.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    principals.set(name, { arn: resolver.getAtt(roleId, 'Arn'), policies: rolePolicies(roleId) });
    functionArns[name] = resolver.getAtt(fnId, 'Arn');
    logGroupArns[name] = resolver.getAtt(logicalId(fn.logGroup), 'Arn');
  }
  // Every runner's hosts: a role with the one HostReadPolicy attached, tagged with the runner's host group (docs/aws-deployment.md).
  const hostReadPolicy = managedPolicies.get(resolver.ref(logicalId(stack.hostReadPolicy)));
  if (!hostReadPolicy) throw new Error('deployment: no host read policy');
  for (const runner of fleet.config.runners) {
    principals.set(`Host:${runner.name}`, {
      arn: `arn:aws:iam::${site.account}:role/gitlab-runner-host-${runner.hostGroup.replace(/[^A-Za-z0-9+=,.@_-]/g, '-')}`,
      policies: [hostReadPolicy],
      tags: { [RUNNER_TAG.hostGroup]: runner.hostGroup },
    });
  }
  const operator = managedPolicies.get(resolver.ref(logicalId(stack.operatorPolicy)));
  if (!operator) throw new Error('deployment: no operator policy');
  principals.set('Operator', { arn: `arn:aws:iam::${site.account}:role/gitlab-runner-rotator-operator`, policies: [operator] });

  const resourcePolicies = new Map<string, PolicyDocument>();
  const addStatements = (arn: string, statements: PolicyStatement[]) => {
    const policy = resourcePolicies.get(arn) ?? { Version: '2012-10-17', Statement: [] };
    policy.Statement.push(...statements);
    resourcePolicies.set(arn, policy);
  };
  for (const [, r] of ofType('AWS::SecretsManager::ResourcePolicy')) addStatements(resolved<string>(r.Properties?.SecretId), resolved<PolicyDocument>(r.Properties?.ResourcePolicy).Statement);
  for (const [id, r] of ofType('AWS::KMS::Key')) addStatements(resolver.getAtt(id, 'Arn'), resolved<PolicyDocument>(r.Properties?.KeyPolicy).Statement);
  for (const [, r] of ofType('AWS::SNS::TopicPolicy')) {
    for (const topic of resolved<string[]>(r.Properties?.Topics)) addStatements(topic, resolved<PolicyDocument>(r.Properties?.PolicyDocument).Statement);
  }
  for (const [, r] of ofType('AWS::SQS::QueuePolicy')) {
    const queueUrls = resolved<string[]>(r.Properties?.Queues);
    for (const url of queueUrls) {
      const queueName = url.split('/').pop() ?? '';
      addStatements(`arn:aws:sqs:${site.region}:${site.account}:${queueName}`, resolved<PolicyDocument>(r.Properties?.PolicyDocument).Statement);
    }
  }
  for (const [, r] of ofType('AWS::Lambda::Permission')) addStatements(...lambdaPermissionStatement(resolved<Record<string, string>>(r.Properties)));

  const rotationFunctionOf = new Map(
    nestedOfType('AWS::SecretsManager::RotationSchedule').map(({ resource: r, resolver: nr }) => [nr.resolve(r.Properties?.SecretId) as string, nr.resolve(r.Properties?.RotationLambdaARN) as string] as const),
  );
  const nestedSecrets = nestedOfType('AWS::SecretsManager::Secret').map(({ id, resource: r, resolver: nr }) => ({
    name: String(r.Properties?.Name),
    arn: nr.ref(id),
    tags: Object.fromEntries(((r.Properties?.Tags as Array<{ Key: string; Value: string }> | undefined) ?? []).map((t) => [t.Key, t.Value])),
  }));
  const topicId = logicalId(stack.alerts.topic);
  const ownSecrets = new Map(nestedSecrets.map((secret) => [secret.name, secret.arn]));
  return {
    site: site,
    template,
    stack,
    resolver,
    principals,
    resourcePolicies,
    ledgerTableName: resolver.ref(logicalId(stack.ledger.table)),
    scanQueue: { url: resolver.ref(logicalId(stack.scanQueue.queue)), arn: resolver.getAtt(logicalId(stack.scanQueue.queue), 'Arn') },
    hostDocumentName: resolver.ref(logicalId(stack.hostDocument.document)),
    convergeDocumentName: resolver.ref(logicalId(stack.convergeDocument.document)),
    associations: nestedOfType('AWS::SSM::Association').map(({ resource: r, resolver: nr }) => ({
      documentName: nr.resolve(r.Properties?.Name) as string,
      targets: nr.resolve(r.Properties?.Targets) as Array<{ Key: string; Values: string[] }>,
      parameters: nr.resolve(r.Properties?.Parameters) as Record<string, string[]>,
    })),
    doctorDocumentName: resolver.ref(logicalId(stack.doctorDocument.document)),
    alertTopicArn: resolver.ref(topicId),
    alertKeyArn: resolver.getAtt(logicalId(stack.alerts.key), 'Arn'),
    functionArns,
    logGroupArns,
    rotationFunctionOf,
    secretTags: new Map(nestedSecrets.map((secret) => [secret.arn, secret.tags])),
    nested,
    secretArn: (nameOrArn) => (nameOrArn.startsWith('arn:') ? nameOrArn : (ownSecrets.get(nameOrArn) ?? secretArnOf(site, nameOrArn))),
  };
}

/**
 * An AWS::Lambda::Permission as the statement Lambda adds to the function's resource policy (as
 * `aws lambda get-policy` shows it): SourceAccount becomes `StringEquals aws:SourceAccount`, SourceArn
 * `ArnLike aws:SourceArn`.
 */
function lambdaPermissionStatement(props: Record<string, string>): [string, PolicyStatement[]] {
  const principal = props.Principal ?? '';
  const condition: Record<string, Record<string, string>> = {};
  if (props.SourceAccount) condition.StringEquals = { 'aws:SourceAccount': props.SourceAccount };
  if (props.SourceArn) condition.ArnLike = { 'aws:SourceArn': props.SourceArn };
  const statement: PolicyStatement = {
    Effect: 'Allow',
    Principal: principal.endsWith('.amazonaws.com') ? { Service: principal } : { AWS: principal },
    Action: props.Action ?? '',
    Resource: props.FunctionName ?? '',
    ...(Object.keys(condition).length > 0 ? { Condition: condition } : {}),
  };
  return [props.FunctionName ?? '', [statement]];
}
