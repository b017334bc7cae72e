import { App, ArnFormat, Validations, type CfnResource } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ESM_REQUIRE_BANNER } from '../../lib/constructs/function-bundling.ts';
import { loadFleetConfig, type LoadedFleet } from '../../lib/fleet-config.ts';
import { RotatorStack } from '../../lib/rotator-stack.ts';
import { DOCTOR_PARAMETERS, ROTATOR_STACK_NAME, buildDoctorDocument, doctorDocumentName } from '../../src/adapters/aws/doctor-document.ts';
import { HEREDOC_DELIMITER } from '../../src/adapters/aws/host-update-document.ts';
import { fleetSettingsText, parseAwsFleetConfig, parseAwsFleetSettings } from '../../src/config/aws-fleet-config.ts';
import { runnerFromTags, runnerTags } from '../../src/config/runner-tags.ts';
import { shardOf } from '../../lib/constructs/runner-shard.ts';
import { FLEET_METRICS } from '../../src/engines/fleet-metrics.ts';
import { matchesEventPattern, rotationOutcomePattern, type EventPattern } from '../../src/config/rotation-outcome-pattern.ts';
import { ALERT_KINDS } from '../../src/core/alerts.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The feature flags of cdk.json, so the tests build the stack `cdk synth` builds. */
const CDK_CONTEXT = (JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> }).context;
/** aws-cdk-lib cx-api BUNDLING_STACKS: the stacks whose assets are bundled; none in unit tests (aws/aws-cdk#12844). */
const SKIP_BUNDLING = { 'aws:cdk:bundling-stacks': [] };

const FLEET_TEXT = JSON.stringify({
  secretPrefix: 'ci/runners/',
  scanEveryHours: 6,
  adminTokenSecrets: {
    'https://gitlab.example.com': 'ci/gitlab-admin-token',
    'https://gitlab.other.example': 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:other-admin-AbCdEf',
  },
  defaults: { rotateEveryDays: 30 },
  runners: [
    { name: 'builders', gitlabUrl: 'https://gitlab.example.com', runnerId: 11, hosts: { tag: { key: 'gitlab-runner', value: 'builders' } } },
    { name: 'testers', gitlabUrl: 'https://gitlab.example.com', runnerId: 12, hosts: { tag: { key: 'gitlab-runner', value: 'testers' } }, rotateEveryDays: 7 },
    { name: 'deployers', gitlabUrl: 'https://gitlab.other.example', runnerId: 13, hosts: { instanceIds: ['i-0123456789abcdef0', 'mi-0123456789abcdef0'] } },
  ],
});

function fleetFrom(text: string, path = 'fleet.test.json'): LoadedFleet {
  return { path, text, config: parseAwsFleetConfig(text, path) };
}

interface BuildOptions {
  fleet?: LoadedFleet;
  context?: Record<string, unknown>;
  outdir?: string;
  entries?: { rotateSecret: string; scanExpiry: string; scanRunners: string };
  notifyEntry?: string;
  env?: { account: string; region: string };
}

/** The app of bin/app.ts, without bundling unless `context` says otherwise, and without CDK's built-in CloudFormation validation (6-8 s a synth; `cdk synth` runs it). */
function build(options: BuildOptions = {}) {
  const app = new App({ context: { ...CDK_CONTEXT, ...(options.context ?? SKIP_BUNDLING) }, outdir: options.outdir, builtinCloudFormationValidation: false });
  const stack = new RotatorStack(app, 'GitLabRunnerRotator', {
    fleet: options.fleet ?? fleetFrom(FLEET_TEXT),
    functionEntries: options.entries,
    notifyEntry: options.notifyEntry,
    env: options.env,
  });
  return { app, stack };
}

function synth(fleet?: LoadedFleet, env?: BuildOptions['env']) {
  const { app, stack } = build({ fleet, env });
  const template = Template.fromStack(stack);
  const resources = template.toJSON().Resources as Record<string, { Type: string; Properties: Record<string, unknown> }>;
  const id = (construct: { node: { defaultChild?: unknown } }) => stack.getLogicalId(construct.node.defaultChild as CfnResource);
  return { app, stack, template, resources, id, nested: nestedOf(stack) };
}

/** The runners' nested stacks: each one's template, its resources, and the parameters the root passes it. */
function nestedOf(stack: RotatorStack) {
  const root = Template.fromStack(stack).toJSON().Resources as Record<string, { Properties: Record<string, unknown> }>;
  return stack.shards.map((shard) => {
    const template = Template.fromStack(shard);
    const resources = template.toJSON().Resources as Record<string, { Type: string; Properties: Record<string, unknown> }>;
    const parameters = (root[stack.getLogicalId(shard.nestedStackResource as CfnResource)]?.Properties.Parameters ?? {}) as Record<string, unknown>;
    const id = (construct: { node: { defaultChild?: unknown } }) => shard.getLogicalId(construct.node.defaultChild as CfnResource);
    /** What a `Ref` to one of the shard's parameters stands for in the root. */
    const parameter = (value: unknown) => parameters[(value as { Ref: string }).Ref];
    return { shard, template, resources, id, parameter };
  });
}

/** Every resource of `type` in the runners' nested stacks. */
function nestedResources(nested: ReturnType<typeof nestedOf>, type: string) {
  return nested.flatMap((n) => Object.values(n.resources).filter((r) => r.Type === type).map((resource) => ({ ...n, resource })));
}

interface Statement {
  Effect: string;
  Action: string[];
  Resource: unknown[];
  Condition?: Record<string, Record<string, unknown>>;
}

/** Every statement of the inline policies on a function's role, with Action and Resource as arrays. */
function roleStatements(resources: Record<string, { Type: string; Properties: Record<string, unknown> }>, functionId: string): Statement[] {
  const role = (resources[functionId]?.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
  const policies = Object.values(resources).filter(
    (r) => r.Type === 'AWS::IAM::Policy' && (r.Properties.Roles as Array<{ Ref: string }>).some((ref) => ref.Ref === role),
  );
  expect(policies.length).toBeGreaterThan(0);
  const list = <T>(x: T | T[]): T[] => (Array.isArray(x) ? x : [x]);
  return policies.flatMap((p) =>
    (p.Properties.PolicyDocument as { Statement: Array<Statement & { Action: string | string[]; Resource: unknown }> }).Statement.map((s) => ({
      ...s,
      Action: list(s.Action),
      Resource: list(s.Resource),
    })),
  );
}

/** Order-free comparison of policy resources (aws-iam:minimizePolicies reorders them). */
function sorted(values: unknown[]): string[] {
  return values.map((v) => JSON.stringify(v)).sort();
}

/** The statements that allow `action`. */
function grantsOf(statements: Statement[], action: string) {
  return statements.filter((s) => s.Effect === 'Allow' && s.Action.includes(action));
}

const DELIVERY_PARAMETERS = ['SecretArn', 'VersionId', 'PreviousVersionId', 'RunnerId', 'GitLabUrl', 'ConfigPath', 'ReloadMode', 'ExpiresAt', 'Mode', 'FromRunnerId'];
/** The `*` resources each role may hold, by action: the actions that take no resource ARN. */
const LIST_ACTIONS = ['ssm:ListCommandInvocations', 'ssm:ListCommands', 'xray:PutTraceSegments', 'xray:PutTelemetryRecords'];

describe('RotatorStack', () => {
  it('creates one secret per runner in the nested stack of its name, tagged with its record, with a generated placeholder and never a value', () => {
    const { stack, resources, template, nested } = synth();
    // The root holds no runner resource: only one nested stack per shard that has runners.
    expect(Object.values(resources).filter((r) => r.Type.startsWith('AWS::SecretsManager::'))).toEqual([]);
    expect(stack.shards.map((s) => s.node.id).sort()).toEqual([...new Set(['builders', 'testers', 'deployers'].map((n) => `Runners${String(shardOf(n)).padStart(2, '0')}`))].sort());
    const secrets = nestedResources(nested, 'AWS::SecretsManager::Secret');
    expect(secrets.map((s) => s.resource.Properties.Name).sort()).toEqual(['ci/runners/builders', 'ci/runners/deployers', 'ci/runners/testers']);
    const config = parseAwsFleetConfig(FLEET_TEXT, 'fleet');
    for (const { resource: secret, shard } of secrets) {
      const runner = config.runners.find((r) => r.secretId === secret.Properties.Name)!;
      expect(shard.node.id).toBe(`Runners${String(shardOf(runner.name)).padStart(2, '0')}`);
      const tags = Object.fromEntries((secret.Properties.Tags as Array<{ Key: string; Value: string }>).map((t) => [t.Key, t.Value]));
      expect(tags).toEqual(runnerTags(runner));
      if (runner.name === 'builders') {
        // Literal: the record a deployed secret carries (tags written by one version are read by the next).
        expect(tags).toEqual({
          'gitlab-runner-rotator:runner': 'builders',
          'gitlab-runner-rotator:url': 'https://gitlab.example.com',
          'gitlab-runner-rotator:runner-id': '11',
          'gitlab-runner-rotator:reload': 'sighup',
          'gitlab-runner-rotator:strategy': 'reset',
          'gitlab-runner-rotator:policy': '0.5/7/90',
          'gitlab-runner-rotator:host-group': 'builders',
          'gitlab-runner-rotator:config-path': '/etc/gitlab-runner/config.toml',
          'gitlab-runner-rotator:host-tag-key': 'gitlab-runner',
          'gitlab-runner-rotator:host-tag-value': 'builders',
        });
      }
      // The Lambdas read the runner back from exactly these tags.
      expect(runnerFromTags(runner.secretId, tags, runner.rotateEveryDays)).toEqual(runner);
      expect(secret.Properties.SecretString).toBeUndefined();
      const generate = secret.Properties.GenerateSecretString as { SecretStringTemplate: string; GenerateStringKey: string };
      expect(JSON.parse(generate.SecretStringTemplate)).toEqual({ adopted: false, runner_id: runner.runnerId, url: runner.gitlabUrl });
      expect(generate.GenerateStringKey).toBe('placeholder');
    }
    for (const { resource } of nested.flatMap((n) => Object.values(n.resources).map((resource) => ({ resource })))) {
      expect(Object.keys(resource.Properties ?? {})).not.toContain('SecretString');
    }
    // The host scripts embedded in the document mention the glrt- prefix; a token would have 20+ characters after it.
    expect(JSON.stringify(template.toJSON())).not.toMatch(/glrt-[A-Za-z0-9_-]{20}/);
  });

  it('assigns nested stacks by a hash that must never change: a runner that moved stack would fail the deploy on its secret name', () => {
    // Literal values: changing shardOf or RUNNER_STACKS moves every deployed secret.
    expect(['builders', 'testers', 'deployers', 'runner-00000'].map(shardOf)).toEqual(PINNED_SHARDS);
  });

  it('keeps a runner in the same nested stack whatever else the fleet holds, and refuses a stack past 450 resources', () => {
    const ids: Record<string, number> = { alpha: 1, beta: 2, gamma: 3, omega: 4 };
    const runner = (name: string) => ({ name, gitlabUrl: 'https://gitlab.example.com', runnerId: ids[name], hosts: { tag: { key: 'gitlab-runner', value: name } } });
    const small = synth(fleetFrom(JSON.stringify({ runners: [runner('alpha'), runner('omega')] })));
    const large = synth(fleetFrom(JSON.stringify({ runners: [runner('alpha'), runner('beta'), runner('gamma'), runner('omega')] })));
    const shardOfSecret = (n: ReturnType<typeof nestedOf>, name: string) => nestedResources(n, 'AWS::SecretsManager::Secret').find((s) => s.resource.Properties.Name === `gitlab-runner-rotator/${name}`)?.shard.node.id;
    for (const name of ['alpha', 'omega']) expect(shardOfSecret(large.nested, name)).toBe(shardOfSecret(small.nested, name));
    // 400 instance ids are 8 associations of 50: 10 resources a runner, so 46 such runners in one stack are too many.
    const instanceIds = Array.from({ length: 400 }, (_, i) => `i-${(0x1000_0000 + i).toString(16).padStart(17, '0')}`);
    const crowded = Array.from({ length: 20_000 }, (_, i) => `r${i}`).filter((name) => shardOf(name) === 0).slice(0, 46);
    expect(crowded).toHaveLength(46);
    const text = JSON.stringify({ runners: crowded.map((name, i) => ({ name, gitlabUrl: 'https://gitlab.example.com', runnerId: i + 1, hosts: { instanceIds } })) });
    expect(() => synth(fleetFrom(text))).toThrow(/Runners00: 46 runners need 460 resources, over 450 of one nested stack/);
  });

  it('schedules each secret with the rotation hook, after its own number of days, without rotating on deploy', () => {
    const { stack, id, nested } = synth();
    const schedules = nestedResources(nested, 'AWS::SecretsManager::RotationSchedule');
    const days = new Map([['ci/runners/builders', 30], ['ci/runners/testers', 7], ['ci/runners/deployers', 30]]);
    expect(schedules).toHaveLength(3);
    for (const { resource, resources, parameter } of schedules) {
      const secret = resources[(resource.Properties.SecretId as { Ref: string }).Ref]!;
      expect(resource.Properties).toMatchObject({ RotationRules: { AutomaticallyAfterDays: days.get(String(secret.Properties.Name)) }, RotateImmediatelyOnUpdate: false });
      expect(parameter(resource.Properties.RotationLambdaARN)).toEqual({ 'Fn::GetAtt': [id(stack.functions.rotateSecret), 'Arn'] });
    }
  });

  it('lets Secrets Manager invoke the rotation hook, from this account only', () => {
    const { resources, stack, id, nested } = synth();
    const grants = Object.values(resources).filter((r) => r.Type === 'AWS::Lambda::Permission' && r.Properties.Principal === 'secretsmanager.amazonaws.com');
    // One permission for every secret, however many (the nested stacks add none).
    expect(nestedResources(nested, 'AWS::Lambda::Permission')).toEqual([]);
    // Creating a schedule runs the hook's testSecret: each nested stack waits for the permission and the hook's policy.
    const root = Template.fromStack(stack).toJSON().Resources as Record<string, { DependsOn?: string[] }>;
    const permissionId = Object.entries(resources).find(([, r]) => r.Type === 'AWS::Lambda::Permission' && r.Properties.Principal === 'secretsmanager.amazonaws.com')![0];
    const hookPolicyId = stack.getLogicalId((stack.functions.rotateSecret.role as iam.Role).node.findChild('DefaultPolicy').node.defaultChild as CfnResource);
    for (const shard of stack.shards) {
      expect(root[stack.getLogicalId(shard.nestedStackResource as CfnResource)]?.DependsOn).toEqual(expect.arrayContaining([permissionId, hookPolicyId]));
    }
    expect(grants.map((g) => g.Properties)).toEqual([
      {
        Action: 'lambda:InvokeFunction',
        Principal: 'secretsmanager.amazonaws.com',
        FunctionName: { 'Fn::GetAtt': [id(stack.functions.rotateSecret), 'Arn'] },
        SourceAccount: { Ref: 'AWS::AccountId' },
      },
    ]);
  });

  it('publishes a Command document whose parameters are the delivery fields, each pattern-checked and passed as ENV_VAR, none a token', () => {
    const { resources, stack } = synth();
    const documents = Object.values(resources).filter((r) => r.Type === 'AWS::SSM::Document');
    // The host update document, the convergence document (below) and the read-only doctor document (see 'DoctorDocument' below).
    expect(documents).toHaveLength(3);
    const document = resources[stack.getLogicalId(stack.hostDocument.document)]!.Properties;
    expect(document).toMatchObject({ DocumentType: 'Command', DocumentFormat: 'JSON', UpdateMethod: 'NewVersion' });
    const content = document.Content as { schemaVersion: string; parameters: Record<string, Record<string, unknown>> };
    expect(content.schemaVersion).toBe('2.2');
    // The ten delivery fields; ExecutionTimeout is the step's timeoutSeconds input, which no shell sees.
    expect(Object.keys(content.parameters).sort()).toEqual([...DELIVERY_PARAMETERS, 'ExecutionTimeout'].sort());
    for (const [name, parameter] of Object.entries(content.parameters)) {
      expect(parameter, name).toMatchObject({ type: 'String', interpolationType: 'ENV_VAR' });
      expect(String(parameter.allowedPattern), name).toMatch(/^\^.+\$$/);
      expect(`${name} ${String(parameter.description)}`, name).not.toMatch(/token|password/i);
    }
  });

  it('converges every runner with a State Manager association of the convergence document on its hosts, naming only the secret and the host side', () => {
    const { stack, resources, nested } = synth();
    const convergeDocument = resources[stack.getLogicalId(stack.convergeDocument.document)]!.Properties;
    const content = convergeDocument.Content as { parameters: Record<string, unknown>; mainSteps: Array<{ inputs: { runCommand: string[] } }> };
    // No version, runner id or url: the host reads them from AWSCURRENT, so a replaced runner needs no new association.
    expect(Object.keys(content.parameters).sort()).toEqual(['ConfigPath', 'ExecutionTimeout', 'ReloadMode', 'SecretArn']);
    expect(content.mainSteps[0]?.inputs.runCommand).toContain('SSM_Mode=converge');
    const associations = nestedResources(nested, 'AWS::SSM::Association');
    expect(associations).toHaveLength(3);
    const byRunner = (name: string) =>
      associations.find(({ resource, resources: own }) => own[((resource.Properties.Parameters as { SecretArn: [{ Ref: string }] }).SecretArn[0]).Ref]?.Properties.Name === `ci/runners/${name}`)!;
    const builders = byRunner('builders');
    expect(builders.parameter(builders.resource.Properties.Name)).toEqual({ Ref: stack.getLogicalId(stack.convergeDocument.document) });
    expect(builders.resource.Properties).toMatchObject({
      DocumentVersion: '$LATEST',
      Targets: [{ Key: 'tag:gitlab-runner', Values: ['builders'] }],
      Parameters: { ConfigPath: ['/etc/gitlab-runner/config.toml'], ReloadMode: ['sighup'], ExecutionTimeout: ['120'] },
      ScheduleExpression: 'rate(1 hour)',
      MaxConcurrency: '50',
      MaxErrors: '100%',
      AssociationName: 'GitLabRunnerRotator-converge-builders',
    });
    expect(byRunner('deployers').resource.Properties.Targets).toEqual([{ Key: 'InstanceIds', Values: ['i-0123456789abcdef0', 'mi-0123456789abcdef0'] }]);
    for (const { resource } of associations) expect(String(resource.Properties.AssociationName)).toMatch(/^[a-zA-Z0-9_\-.]{3,128}$/);
  });

  it('splits a runner listed by more than 50 instance ids into associations of 50, and creates none with convergeEveryHours 0', () => {
    const ids = Array.from({ length: 120 }, (_, i) => `i-${(0x1000_0000 + i).toString(16).padStart(17, '0')}`);
    const many = JSON.stringify({ runners: [{ name: 'fleet', gitlabUrl: 'https://gitlab.example.com', runnerId: 5, hosts: { instanceIds: ids } }], convergeEveryHours: 6 });
    const associations = nestedResources(synth(fleetFrom(many)).nested, 'AWS::SSM::Association');
    const targets = associations.map(({ resource }) => (resource.Properties.Targets as Array<{ Values: string[] }>)[0]!.Values);
    expect(targets.map((values) => values.length)).toEqual([50, 50, 20]);
    expect(targets.flat()).toEqual(ids);
    expect(associations.every(({ resource }) => resource.Properties.ScheduleExpression === 'rate(6 hours)')).toBe(true);
    const off = synth(fleetFrom(JSON.stringify({ ...JSON.parse(many), convergeEveryHours: 0 })));
    expect(nestedResources(off.nested, 'AWS::SSM::Association')).toEqual([]);
  });

  it('shows the fleet on one dashboard from the fleet-wide metrics the functions emit, none per runner', () => {
    const { template, stack } = synth();
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    template.hasOutput('DashboardName', {});
    const body = JSON.stringify(stack.resolve(Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0]?.Properties?.DashboardBody));
    for (const name of [FLEET_METRICS.runnersDue, FLEET_METRICS.runnersExpiringSoon, FLEET_METRICS.hostsMissed, FLEET_METRICS.rotationFailureEvents, FLEET_METRICS.minDaysToExpiry]) {
      expect(body).toContain(`\\"${name}\\"`);
    }
    expect(body).toContain('runner scanned');
    expect(body).not.toMatch(/"runner",/);
  });

  it('scans on the fleet file schedule, targeting the scanner', () => {
    const { template, stack, id } = synth();
    expect(Object.keys(template.findResources('AWS::Events::Rule', { Properties: { ScheduleExpression: Match.anyValue() } }))).toHaveLength(1);
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(6 hours)',
      State: 'ENABLED',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [id(stack.functions.scanExpiry), 'Arn'] } })],
    });
    const hourly = synth(fleetFrom(JSON.stringify({ ...JSON.parse(FLEET_TEXT), scanEveryHours: 1 })));
    hourly.template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(1 hour)' });
  });

  it('keeps the ledger in an on-demand table with point-in-time recovery, TTL and AWS-managed encryption, retained on delete', () => {
    const { template } = synth();
    template.resourceCountIs('AWS::DynamoDB::Table', 1);
    template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: {
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        SSESpecification: { SSEEnabled: true },
      },
    });
  });

  it('runs the four functions on Node 22 arm64 with tracing, 256 MB, 10 minutes, their own log group and the environment the handlers read', () => {
    const { template, stack, id } = synth();
    const common = {
      ROTATOR_SETTINGS_JSON: fleetSettingsText(parseAwsFleetConfig(FLEET_TEXT, 'fleet')),
      LEDGER_TABLE_NAME: { Ref: id(stack.ledger.table) },
      ALERT_TOPIC_ARN: { Ref: id(stack.alerts.topic) },
      POWERTOOLS_SERVICE_NAME: 'gitlab-runner-rotator',
      POWERTOOLS_METRICS_NAMESPACE: 'GitLabRunnerRotator',
      POWERTOOLS_LOG_LEVEL: 'INFO',
      NODE_OPTIONS: '--enable-source-maps',
    };
    const rotationLogGroup = { Ref: stack.getLogicalId(stack.functions.rotateSecret.logGroup.node.defaultChild as CfnResource) };
    const hostDocument = { HOST_DOCUMENT_NAME: { Ref: stack.getLogicalId(stack.hostDocument.document) } };
    const scanQueue = { SCAN_QUEUE_URL: { Ref: stack.getLogicalId(stack.scanQueue.queue.node.defaultChild as CfnResource) } };
    const withoutTopic = Object.fromEntries(Object.entries(common).filter(([name]) => name !== 'ALERT_TOPIC_ARN'));
    const environments = new Map<unknown, Record<string, unknown>>([
      [stack.functions.rotateSecret, { ...common, ...hostDocument }],
      // The dispatcher raises no alert: it lists and queues.
      [stack.functions.scanExpiry, { ...withoutTopic, ...hostDocument, ...scanQueue }],
      [stack.functions.scanRunners, { ...common, ...hostDocument, ...scanQueue }],
      [stack.notify.function, { ...common, ROTATION_LOG_GROUP: rotationLogGroup }],
    ]);
    for (const fn of [stack.functions.rotateSecret, stack.functions.scanExpiry, stack.functions.scanRunners, stack.notify.function]) {
      const logGroupId = stack.getLogicalId(fn.logGroup.node.defaultChild as CfnResource);
      template.hasResourceProperties('AWS::Lambda::Function', {
        FunctionName: Match.absent(),
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        MemorySize: 256,
        Timeout: 600,
        TracingConfig: { Mode: 'Active' },
        LoggingConfig: { LogGroup: { Ref: logGroupId } },
        Role: { 'Fn::GetAtt': [stack.getLogicalId(fn.role!.node.defaultChild as CfnResource), 'Arn'] },
      });
      // Exactly these variables: no fleet text, no token, no secret value.
      expect(template.toJSON().Resources[id(fn)].Properties.Environment).toEqual({ Variables: environments.get(fn) });
      template.hasResource('AWS::Logs::LogGroup', { Properties: { RetentionInDays: 90 } });
    }
    template.resourceCountIs('AWS::Lambda::Function', 4);
    template.resourceCountIs('AWS::Logs::LogGroup', 4);
  });

  it('gives the rotation hook the four rotation actions on the managed secrets only (prefix and runner tag), and reads of the admin tokens', () => {
    const { resources, stack, id } = synth();
    const statements = roleStatements(resources, id(stack.functions.rotateSecret));
    const admin = [
      stack.resolve(stack.formatArn({ service: 'secretsmanager', resource: 'secret', resourceName: 'ci/gitlab-admin-token-??????', arnFormat: ArnFormat.COLON_RESOURCE_NAME })),
      'arn:aws:secretsmanager:eu-west-1:111122223333:secret:other-admin-AbCdEf',
    ];
    for (const action of ['secretsmanager:DescribeSecret', 'secretsmanager:PutSecretValue', 'secretsmanager:UpdateSecretVersionStage']) {
      expect(grantsOf(statements, action), action).toEqual([expect.objectContaining({ Resource: [MANAGED_SECRETS], Condition: MANAGED_TAG_CONDITION })]);
    }
    expect(sorted(grantsOf(statements, 'secretsmanager:GetSecretValue').flatMap((s) => s.Resource))).toEqual(sorted([MANAGED_SECRETS, ...admin]));
    expect(grantsOf(statements, 'secretsmanager:RotateSecret')).toEqual([]);
    expect(grantsOf(statements, 'secretsmanager:ListSecrets')).toEqual([]);
    expectOnlyListActionsOnStar(statements, []);
    expectHostCommandsOnly(stack, statements);
    expectLedgerOnly(statements, id(stack.ledger.table), ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem', 'dynamodb:Query']);
  });

  it('gives the scan dispatcher ListSecrets and SendMessage on the scan queue, and no secret, host or table', () => {
    const { resources, stack, id } = synth();
    const statements = roleStatements(resources, id(stack.functions.scanExpiry));
    expect(grantsOf(statements, 'secretsmanager:ListSecrets').flatMap((s) => s.Resource)).toEqual(['*']);
    expect(grantsOf(statements, 'sqs:SendMessage').flatMap((s) => s.Resource)).toEqual([{ 'Fn::GetAtt': [id(stack.scanQueue.queue), 'Arn'] }]);
    for (const action of ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue', 'secretsmanager:RotateSecret', 'ssm:SendCommand', 'dynamodb:PutItem', 'lambda:InvokeFunction']) {
      expect(grantsOf(statements, action), action).toEqual([]);
    }
    const onStar = statements.filter((st) => st.Resource.includes('*'));
    expect(onStar.flatMap((st) => st.Action).sort()).toEqual(['secretsmanager:ListSecrets', 'xray:PutTelemetryRecords', 'xray:PutTraceSegments']);
  });

  it('gives the scan worker its three actions on the managed secrets, the admin tokens, the same host commands, the table with UpdateItem, and the queue', () => {
    const { resources, stack, id } = synth();
    const statements = roleStatements(resources, id(stack.functions.scanRunners));
    expect(grantsOf(statements, 'secretsmanager:ListSecrets')).toEqual([]);
    expect(grantsOf(statements, 'sqs:SendMessage').flatMap((s) => s.Resource)).toEqual([{ 'Fn::GetAtt': [id(stack.scanQueue.queue), 'Arn'] }]);
    expect(grantsOf(statements, 'sqs:ReceiveMessage').flatMap((s) => s.Resource)).toEqual([{ 'Fn::GetAtt': [id(stack.scanQueue.queue), 'Arn'] }]);
    for (const action of ['secretsmanager:DescribeSecret', 'secretsmanager:RotateSecret']) {
      expect(grantsOf(statements, action), action).toEqual([expect.objectContaining({ Resource: [MANAGED_SECRETS], Condition: MANAGED_TAG_CONDITION })]);
    }
    expect(grantsOf(statements, 'secretsmanager:GetSecretValue').flatMap((s) => s.Resource)).toHaveLength(3);
    // RotateSecret also needs lambda:InvokeFunction on the secret's rotation function (RotateSecret API reference).
    expect(grantsOf(statements, 'lambda:InvokeFunction').flatMap((s) => s.Resource)).toEqual([{ 'Fn::GetAtt': [id(stack.functions.rotateSecret), 'Arn'] }]);
    expect(grantsOf(statements, 'secretsmanager:PutSecretValue')).toEqual([]);
    expect(grantsOf(statements, 'secretsmanager:UpdateSecretVersionStage')).toEqual([]);
    expectOnlyListActionsOnStar(statements, []);
    expectHostCommandsOnly(stack, statements);
    expectLedgerOnly(statements, id(stack.ledger.table), ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem', 'dynamodb:Query', 'dynamodb:UpdateItem']);
  });

  it('gives every runner host one read policy, by attribute: GetSecretValue on a managed secret whose host group is the role\'s', () => {
    const { resources, stack, id } = synth();
    const policies = Object.entries(resources).filter(([, r]) => r.Type === 'AWS::IAM::ManagedPolicy');
    // The host policy and the operator policy, whatever the number of runners.
    expect(policies).toHaveLength(2);
    expect(resources[id(stack.hostReadPolicy)]!.Properties.PolicyDocument).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'ReadOwnHostGroupTokens',
          Effect: 'Allow',
          Action: 'secretsmanager:GetSecretValue',
          Resource: MANAGED_SECRETS,
          Condition: { StringEquals: { 'aws:ResourceTag/gitlab-runner-rotator:host-group': '${aws:PrincipalTag/gitlab-runner-rotator:host-group}' } },
        },
      ],
    });
  });

  it('outputs the table name, the document names and the host read policy ARN, and nothing per runner', () => {
    const { template, stack, id } = synth();
    template.hasOutput('LedgerTableName', { Value: { Ref: id(stack.ledger.table) } });
    template.hasOutput('HostDocumentName', { Value: { Ref: stack.getLogicalId(stack.hostDocument.document) } });
    template.hasOutput('ConvergeDocumentName', { Value: { Ref: stack.getLogicalId(stack.convergeDocument.document) } });
    template.hasOutput('HostReadPolicyArn', { Value: { Ref: id(stack.hostReadPolicy) }, Description: Match.stringLikeRegexp('instance role') });
    // CloudFormation allows 200 outputs a template: per-runner outputs would stop the stack at 100 runners.
    expect(Object.keys(template.toJSON().Outputs ?? {}).length).toBeLessThan(12);
  });

  it('synthesizes a fleet with 100 alert e-mail addresses: the functions get no address, only the settings they read', () => {
    const emails = Array.from({ length: 100 }, (_, i) => `oncall-team-member-${i}@example.com`);
    const { template } = synth(fleetWithAlerts({ emails }));
    template.resourceCountIs('AWS::SNS::Subscription', 100 + 1);
    for (const fn of Object.values(template.findResources('AWS::Lambda::Function'))) expect(JSON.stringify(fn.Properties.Environment)).not.toContain('@example.com');
  });

  it('refuses settings too large for the functions\' environment, naming what to cut', () => {
    const adminTokenSecrets = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`https://gitlab-${i}.example.com`, `gitlab-runner-rotator/admin/gitlab-${i}.example.com`]));
    const fleet = fleetFrom(JSON.stringify({ ...JSON.parse(FLEET_TEXT), adminTokenSecrets }));
    expect(() => synth(fleet)).toThrow(/settings: the fleet file without its runners is \d+ bytes as JSON; the Lambdas' environment holds 2500/);
  });

  it('puts the fleet settings into the environment and no runner anywhere in the functions', () => {
    const fleet = loadFleetConfig(join(REPO_ROOT, 'fleet.aws.example.json'));
    const outdir = mkdtempSync(join(tmpdir(), 'rotator-cdk-'));
    const { app, stack } = build({ fleet, outdir });
    expect(stack.functions.bundling.define).toBeUndefined();
    const resources = Template.fromStack(stack).toJSON().Resources as Record<string, { Type: string; Properties: { Environment?: { Variables: Record<string, string> } } }>;
    const functions = Object.values(resources).filter((r) => r.Type === 'AWS::Lambda::Function');
    expect(functions).toHaveLength(4);
    for (const fn of functions) {
      const settings = fn.Properties.Environment?.Variables.ROTATOR_SETTINGS_JSON ?? '';
      expect(parseAwsFleetSettings(settings, 'ROTATOR_SETTINGS_JSON')).toEqual(parseAwsFleetSettings(fleetSettingsText(fleet.config), 'x'));
      for (const runner of fleet.config.runners) expect(JSON.stringify(fn.Properties)).not.toContain(runner.name);
    }
    // With aws:cdk:bundling-stacks = [] nothing was bundled: the unit tests never run esbuild.
    app.synth();
    expect(readdirSync(outdir).filter((d) => d.startsWith('asset.'))).toEqual([]);
  });

  it('bundles every function to the same bytes whatever the fleet: a runner added changes no bundle', () => {
    // The real NodejsFunction bundling path (local esbuild from node_modules, no Docker) of the three
    // functions, for a fleet of two runners and the same fleet with a third: the asset folders are named by
    // the hash of their content, so the same names are the same bytes.
    const two = JSON.parse(FLEET_TEXT) as { runners: unknown[] };
    const assets = (text: string) => {
      const outdir = mkdtempSync(join(tmpdir(), 'rotator-cdk-'));
      build({ fleet: fleetFrom(text), context: {}, outdir }).app.synth();
      return readdirSync(outdir).filter((d) => d.startsWith('asset.') && existsSync(join(outdir, d, 'index.mjs'))).sort();
    };
    const before = assets(JSON.stringify({ ...two, runners: two.runners.slice(0, 2) }));
    const after = assets(FLEET_TEXT);
    expect(before.length).toBeGreaterThan(0);
    expect(after).toEqual(before);
  }, 120_000);

  it('bundles locally with esbuild into an ESM file that loads in Node and reads its settings from the environment', () => {
    // The real NodejsFunction bundling path on an entry that reads the environment the way the handlers do.
    const outdir = mkdtempSync(join(tmpdir(), 'rotator-cdk-'));
    const fleet = loadFleetConfig(join(REPO_ROOT, 'fleet.aws.example.json'));
    const entry = 'src/config/lambda-environment.ts';
    const { app } = build({ fleet, context: {}, outdir, entries: { rotateSecret: entry, scanExpiry: entry, scanRunners: entry }, notifyEntry: entry });
    app.synth();
    const bundles = readdirSync(outdir).filter((d) => d.startsWith('asset.') && existsSync(join(outdir, d, 'index.mjs'))).map((d) => join(outdir, d, 'index.mjs'));
    expect(bundles.length).toBeGreaterThan(0);
    for (const bundle of bundles) {
      expect(readFileSync(bundle, 'utf8').startsWith(ESM_REQUIRE_BANNER)).toBe(true);
      const script = `const m = await import(${JSON.stringify(pathToFileURL(bundle).href)}); const e = m.readLambdaEnvironment(); console.log(JSON.stringify({ prefix: e.fleet.secretPrefix, table: e.ledgerTableName }));`;
      const env = { PATH: process.env.PATH, LEDGER_TABLE_NAME: 'ledger', HOST_DOCUMENT_NAME: 'doc', ROTATOR_SETTINGS_JSON: fleetSettingsText(fleet.config) };
      const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env, encoding: 'utf8' });
      expect(run.status, run.stderr.trim().split('\n').at(-1)).toBe(0);
      expect(JSON.parse(run.stdout)).toEqual({ prefix: fleet.config.secretPrefix, table: 'ledger' });
    }
  }, 60_000);
});

/** FLEET_TEXT with an alerts section. */
function fleetWithAlerts(alerts: Record<string, unknown>): LoadedFleet {
  return fleetFrom(JSON.stringify({ ...JSON.parse(FLEET_TEXT), alerts }));
}

/** Every statement of every inline policy in the template, with the logical ids of the roles it is attached to. */
function allStatements(resources: Record<string, { Type: string; Properties: Record<string, unknown> }>) {
  const list = <T>(x: T | T[]): T[] => (Array.isArray(x) ? x : [x]);
  return Object.values(resources)
    .filter((r) => r.Type === 'AWS::IAM::Policy' || (r.Type === 'AWS::IAM::Role' && r.Properties.Policies))
    .flatMap((r) => {
      const roles =
        r.Type === 'AWS::IAM::Policy'
          ? (r.Properties.Roles as Array<{ Ref: string }>).map((ref) => ref.Ref)
          : [Object.entries(resources).find(([, x]) => x === r)![0]];
      const documents =
        r.Type === 'AWS::IAM::Policy'
          ? [r.Properties.PolicyDocument]
          : (r.Properties.Policies as Array<{ PolicyDocument: unknown }>).map((p) => p.PolicyDocument);
      return (documents as Array<{ Statement: Array<Statement & { Action: string | string[]; Resource: unknown }> }>).flatMap((d) =>
        d.Statement.map((st) => ({ roles, statement: { ...st, Action: list(st.Action), Resource: list(st.Resource) } })),
      );
    });
}

const roleIdOf = (stack: RotatorStack, fn: { role?: { node: { defaultChild?: unknown } } }) => stack.getLogicalId(fn.role!.node.defaultChild as CfnResource);

/** shardOf of builders, testers, deployers and runner-00000 as first deployed (sha-256 of the name, mod 100). */
const PINNED_SHARDS = [53, 50, 46, 0];

/** Every managed secret, as the template writes it for secretPrefix `ci/runners/` in an environment-agnostic stack. */
const MANAGED_SECRETS = {
  'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':secretsmanager:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':secret:ci/runners/*']],
};
/** …that carry the runner tag: the fleet's secrets, not an admin token secret under the same prefix. */
const MANAGED_TAG_CONDITION = { StringLike: { 'aws:ResourceTag/gitlab-runner-rotator:runner': '?*' } };

/** The ARN prefix of the managed secrets, as the template writes it for secretPrefix `ci/runners/` in an environment-agnostic stack. */
const MANAGED_PREFIX = {
  'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':secretsmanager:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':secret:ci/runners/']],
};

describe('Alerts', () => {
  it('encrypts the alert topic with a customer-managed key that rotates, and denies publishing without TLS', () => {
    const { template, stack, id } = synth();
    template.resourceCountIs('AWS::SNS::Topic', 1);
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: { 'Fn::GetAtt': [id(stack.alerts.key), 'Arn'] } });
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    const policies = Object.values(template.findResources('AWS::SNS::TopicPolicy'));
    expect(policies).toHaveLength(1);
    const statements = policies[0]!.Properties.PolicyDocument.Statement as Array<Record<string, unknown>>;
    expect(statements).toContainEqual(
      expect.objectContaining({ Effect: 'Deny', Principal: '*', Action: 'sns:Publish', Condition: { Bool: { 'aws:SecureTransport': 'false' } }, Resource: { Ref: id(stack.alerts.topic) } }),
    );
  });

  it('lets CloudWatch alarms of this account and region, and no other service, publish to the topic and use its key', () => {
    const { template, stack, id } = synth();
    const alarmArns = {
      'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':cloudwatch:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':alarm:*']],
    };
    const onlyThisAccountsAlarms = { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } }, ArnLike: { 'aws:SourceArn': alarmArns } };
    const topicPolicy = Object.values(template.findResources('AWS::SNS::TopicPolicy'))[0]!.Properties.PolicyDocument.Statement as Array<Record<string, unknown>>;
    expect(topicPolicy.filter((st) => st.Effect === 'Allow')).toEqual([
      expect.objectContaining({ Principal: { Service: 'cloudwatch.amazonaws.com' }, Action: 'sns:Publish', Resource: { Ref: id(stack.alerts.topic) }, Condition: onlyThisAccountsAlarms }),
    ]);
    const keyPolicy = template.toJSON().Resources[id(stack.alerts.key)].Properties.KeyPolicy.Statement as Array<Record<string, unknown>>;
    const services = keyPolicy.filter((st) => (st.Principal as { Service?: string }).Service !== undefined);
    expect(services).toEqual([
      expect.objectContaining({ Principal: { Service: 'cloudwatch.amazonaws.com' }, Action: ['kms:Decrypt', 'kms:GenerateDataKey*'], Condition: onlyThisAccountsAlarms }),
    ]);
  });

  it('subscribes each configured e-mail address, and none when the fleet file names none', () => {
    const withEmails = synth(fleetWithAlerts({ emails: ['ops@example.com', 'runner-admins@example.org'] }));
    const emails = Object.values(withEmails.template.findResources('AWS::SNS::Subscription', { Properties: { Protocol: 'email' } }));
    expect(emails.map((e) => e.Properties)).toEqual([
      { Protocol: 'email', Endpoint: 'ops@example.com', TopicArn: { Ref: withEmails.id(withEmails.stack.alerts.topic) } },
      { Protocol: 'email', Endpoint: 'runner-admins@example.org', TopicArn: { Ref: withEmails.id(withEmails.stack.alerts.topic) } },
    ]);
    const none = synth();
    expect(Object.keys(none.template.findResources('AWS::SNS::Subscription', { Properties: { Protocol: 'email' } }))).toEqual([]);
  });

  it('hands RotationFailed and RotationAbandoned of the managed secrets to the notifier with the shared pattern, not by detail-type', () => {
    const { template, stack, id } = synth();
    const rule = template.toJSON().Resources[id(stack.rotationOutcomes.rule)].Properties;
    const expected = JSON.parse(JSON.stringify(rotationOutcomePattern('<prefix>')).replace('"<prefix>"', JSON.stringify(MANAGED_PREFIX)));
    expect(rule.EventPattern).toEqual(expected);
    expect(Object.keys(rule.EventPattern)).not.toContain('detail-type');
    expect(rule.Targets).toEqual([
      {
        Id: 'Target0',
        Arn: { 'Fn::GetAtt': [id(stack.notify.function), 'Arn'] },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [id(stack.rotationOutcomes.deadLetterQueue), 'Arn'] } },
        RetryPolicy: { MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 3600 },
      },
    ]);
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Principal: 'events.amazonaws.com',
      FunctionName: { 'Fn::GetAtt': [id(stack.notify.function), 'Arn'] },
      SourceArn: { 'Fn::GetAtt': [id(stack.rotationOutcomes.rule), 'Arn'] },
    });
  });

  it('deploys a rule that, in a known account and region, matches the sample failure events and misses the success', () => {
    const fleet = loadFleetConfig(join(REPO_ROOT, 'fleet.aws.example.json'));
    const { template, stack, id } = synth(fleet, { account: '123456789012', region: 'eu-west-1' });
    const pattern = template.toJSON().Resources[id(stack.rotationOutcomes.rule)].Properties.EventPattern as EventPattern;
    const sample = (name: string) => JSON.parse(readFileSync(join(REPO_ROOT, 'events', name), 'utf8')) as unknown;
    expect(matchesEventPattern(pattern, sample('rotation-failed.json'))).toBe(true);
    expect(matchesEventPattern(pattern, sample('rotation-abandoned.json'))).toBe(true);
    expect(matchesEventPattern(pattern, sample('rotation-succeeded.json'))).toBe(false);
  });

  it('puts undeliverable rotation outcomes in an encrypted, TLS-only queue whose depth alarms the topic', () => {
    const { template, stack, id } = synth();
    template.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 24 * 3600 });
    const policyOf = (queue: IConstruct) =>
      Object.values(template.findResources('AWS::SQS::QueuePolicy')).find((p) => JSON.stringify(p.Properties.Queues).includes(id(queue)))!.Properties.PolicyDocument.Statement as Array<Record<string, unknown>>;
    const queuePolicy = policyOf(stack.rotationOutcomes.deadLetterQueue);
    expect(queuePolicy).toContainEqual(expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }));
    expect(queuePolicy).toContainEqual(
      expect.objectContaining({ Effect: 'Allow', Principal: { Service: 'events.amazonaws.com' }, Action: 'sqs:SendMessage', Condition: { ArnEquals: { 'aws:SourceArn': { 'Fn::GetAtt': [id(stack.rotationOutcomes.rule), 'Arn'] } } } }),
    );
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [id(stack.rotationOutcomes.deadLetterQueue), 'QueueName'] } }],
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      AlarmActions: [{ Ref: id(stack.alerts.topic) }],
      OKActions: [{ Ref: id(stack.alerts.topic) }],
    });
  });

  it('fans the scan out on an encrypted, TLS-only queue: one message an invocation, scanWorkers at once, failed batches received five times and then dead-lettered with an alarm', () => {
    const { template, stack, id } = synth();
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: id(stack.functions.scanRunners) },
      EventSourceArn: { 'Fn::GetAtt': [id(stack.scanQueue.queue), 'Arn'] },
      BatchSize: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 4 },
    });
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', 1);
    const queue = template.toJSON().Resources[id(stack.scanQueue.queue)].Properties;
    // Six times the worker's 10-minute timeout (Lambda's SQS guide); a day of retention (the next scan queues again).
    expect(queue).toMatchObject({ SqsManagedSseEnabled: true, VisibilityTimeout: 3600, MessageRetentionPeriod: 86_400, RedrivePolicy: { maxReceiveCount: 5, deadLetterTargetArn: { 'Fn::GetAtt': [id(stack.scanQueue.deadLetterQueue), 'Arn'] } } });
    for (const q of [stack.scanQueue.queue, stack.scanQueue.deadLetterQueue]) {
      const policy = Object.values(template.findResources('AWS::SQS::QueuePolicy')).find((p) => JSON.stringify(p.Properties.Queues).includes(id(q)))!;
      expect(policy.Properties.PolicyDocument.Statement).toContainEqual(expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }));
    }
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [id(stack.scanQueue.deadLetterQueue), 'QueueName'] } }],
      AlarmActions: [{ Ref: id(stack.alerts.topic) }],
      OKActions: [{ Ref: id(stack.alerts.topic) }],
    });
  });

  it('alarms on Errors and on Throttles of each of the four functions, at 1 in 5 minutes, to the topic and back', () => {
    const { template, stack, id } = synth();
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm', { Properties: { Namespace: 'AWS/Lambda' } })).map((a) => a.Properties);
    const functions = [stack.functions.rotateSecret, stack.functions.scanExpiry, stack.functions.scanRunners, stack.notify.function];
    expect(alarms.map((a) => `${JSON.stringify(a.Dimensions)} ${a.MetricName}`).sort()).toEqual(
      functions.flatMap((fn) => ['Errors', 'Throttles'].map((metric) => `${JSON.stringify([{ Name: 'FunctionName', Value: { Ref: id(fn) } }])} ${metric}`)).sort(),
    );
    for (const alarm of alarms) {
      expect(alarm).toMatchObject({
        Statistic: 'Sum',
        Period: 300,
        EvaluationPeriods: 1,
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
        AlarmActions: [{ Ref: id(stack.alerts.topic) }],
        OKActions: [{ Ref: id(stack.alerts.topic) }],
      });
      expect(String(alarm.AlarmDescription)).toMatch(/at least once in 5 minutes/);
    }
    // The eight function alarms, the two dead-letter queues' and the scan failures' (below).
    template.resourceCountIs('AWS::CloudWatch::Alarm', 11);
  });

  it('alarms the topic when a scan could not scan a runner (ScanFailures), and again when scans are whole', () => {
    const { template, stack, id } = synth();
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'GitLabRunnerRotator',
      MetricName: FLEET_METRICS.scanFailures,
      Dimensions: [{ Name: 'service', Value: 'gitlab-runner-rotator' }],
      Statistic: 'Sum',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [{ Ref: id(stack.alerts.topic) }],
      OKActions: [{ Ref: id(stack.alerts.topic) }],
    });
  });

  it('subscribes the notifier to the topic for alert messages only, so alarm notifications never reach it', () => {
    const { template, stack, id } = synth();
    const lambdas = Object.values(template.findResources('AWS::SNS::Subscription', { Properties: { Protocol: 'lambda' } })).map((s) => s.Properties);
    expect(lambdas).toEqual([
      {
        Protocol: 'lambda',
        Endpoint: { 'Fn::GetAtt': [id(stack.notify.function), 'Arn'] },
        TopicArn: { Ref: id(stack.alerts.topic) },
        FilterPolicy: { kind: [...ALERT_KINDS] },
      },
    ]);
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Principal: 'sns.amazonaws.com',
      FunctionName: { 'Fn::GetAtt': [id(stack.notify.function), 'Arn'] },
      SourceArn: { Ref: id(stack.alerts.topic) },
    });
  });

  it('grants sns:Publish on the topic, and the key through SNS only, to the hook, the scan worker and the notifier, and no other role', () => {
    const { resources, stack, id } = synth(fleetWithAlerts({ chatbot: { slackWorkspaceId: 'T0123ABCD', slackChannelId: 'C0123ABCD' } }));
    const functions = [stack.functions.rotateSecret, stack.functions.scanRunners, stack.notify.function];
    const statements = allStatements(resources);
    const publishers = statements.filter(({ statement }) => statement.Effect === 'Allow' && statement.Action.some((a) => a.startsWith('sns:')));
    expect(publishers.flatMap((p) => p.roles).sort()).toEqual(functions.map((fn) => roleIdOf(stack, fn)).sort());
    for (const { statement } of publishers) {
      expect(statement.Action).toEqual(['sns:Publish']);
      expect(statement.Resource).toEqual([{ Ref: id(stack.alerts.topic) }]);
    }
    const keyUsers = statements.filter(({ statement }) => statement.Action.some((a) => a.startsWith('kms:')));
    expect(keyUsers.flatMap((k) => k.roles).sort()).toEqual(functions.map((fn) => roleIdOf(stack, fn)).sort());
    for (const { statement } of keyUsers) {
      expect(statement).toMatchObject({
        Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
        Resource: [{ 'Fn::GetAtt': [id(stack.alerts.key), 'Arn'] }],
        Condition: { StringEquals: { 'kms:ViaService': { 'Fn::Join': ['', ['sns.', { Ref: 'AWS::Region' }, '.', { Ref: 'AWS::URLSuffix' }]] } } },
      });
    }
  });

  it('lets only the notifier read the Slack webhook secret, by name, and tells it the name', () => {
    const { resources, stack, id } = synth(fleetWithAlerts({ slackWebhookSecretName: 'ci/slack-webhook' }));
    const webhookArn = stack.resolve(stack.formatArn({ service: 'secretsmanager', resource: 'secret', resourceName: 'ci/slack-webhook-??????', arnFormat: ArnFormat.COLON_RESOURCE_NAME }));
    const readers = allStatements(resources).filter(({ statement }) => statement.Resource.some((r) => JSON.stringify(r) === JSON.stringify(webhookArn)));
    expect(readers).toEqual([{ roles: [roleIdOf(stack, stack.notify.function)], statement: expect.objectContaining({ Action: ['secretsmanager:GetSecretValue'] }) }]);
    const notify = roleStatements(resources, id(stack.notify.function));
    expect(grantsOf(notify, 'secretsmanager:GetSecretValue').flatMap((st) => st.Resource)).toEqual([webhookArn]);
    expect(notify.flatMap((st) => st.Action).filter((a) => a.startsWith('secretsmanager:'))).toEqual(['secretsmanager:GetSecretValue']);
    expect(resources[id(stack.notify.function)]!.Properties.Environment).toMatchObject({ Variables: { SLACK_WEBHOOK_SECRET: 'ci/slack-webhook' } });

    const without = synth();
    const notifyWithout = roleStatements(without.resources, without.id(without.stack.notify.function));
    expect(notifyWithout.flatMap((st) => st.Action).filter((a) => a.startsWith('secretsmanager:'))).toEqual([]);
    expect(Object.keys((without.resources[without.id(without.stack.notify.function)]!.Properties.Environment as { Variables: object }).Variables)).not.toContain('SLACK_WEBHOOK_SECRET');
  });

  it('gives the notifier the ledger, the topic and tracing, and nothing of the rotation: no SSM, no managed secret', () => {
    const { resources, stack, id } = synth(fleetWithAlerts({ slackWebhookSecretName: 'ci/slack-webhook' }));
    const statements = roleStatements(resources, id(stack.notify.function));
    expect(statements.flatMap((st) => st.Action).filter((a) => a.startsWith('ssm:'))).toEqual([]);
    const onStar = statements.filter((st) => st.Resource.includes('*'));
    expect(onStar.flatMap((st) => st.Action).sort()).toEqual(['xray:PutTelemetryRecords', 'xray:PutTraceSegments']);
    expect(JSON.stringify(statements)).not.toContain(':secret:ci/runners/');
    expectLedgerOnly(statements, id(stack.ledger.table), ['dynamodb:GetItem', 'dynamodb:PutItem']);
  });

  it('relays the topic to Slack through Chatbot only when configured: read-only role and guardrail, errors logged', () => {
    synth().template.resourceCountIs('AWS::Chatbot::SlackChannelConfiguration', 0);
    const { template, stack, id, resources } = synth(fleetWithAlerts({ chatbot: { slackWorkspaceId: 'T0123ABCD', slackChannelId: 'C0456EFGH' } }));
    template.resourceCountIs('AWS::Chatbot::SlackChannelConfiguration', 1);
    const chatbot = stack.chatbot!;
    template.hasResourceProperties('AWS::Chatbot::SlackChannelConfiguration', {
      ConfigurationName: 'GitLabRunnerRotator-alerts',
      SlackWorkspaceId: 'T0123ABCD',
      SlackChannelId: 'C0456EFGH',
      SnsTopicArns: [{ Ref: id(stack.alerts.topic) }],
      IamRoleArn: { 'Fn::GetAtt': [id(chatbot.role), 'Arn'] },
      GuardrailPolicies: [{ Ref: id(chatbot.guardrail) }],
      LoggingLevel: 'ERROR',
      UserRoleRequired: false,
    });
    const alarmArns = [...stack.functionAlarms.alarms, stack.rotationOutcomes.undeliveredAlarm, stack.dashboard.scanFailuresAlarm, stack.scanQueue.deadLetterAlarm].map((a) => JSON.stringify(stack.resolve(a.alarmArn))).sort();
    const chatbotStatements = allStatements(resources).filter(({ roles }) => roles.includes(id(chatbot.role)));
    const guardrail = (resources[id(chatbot.guardrail)]!.Properties.PolicyDocument as { Statement: Array<{ Action: unknown; Resource: unknown[] }> }).Statement;
    for (const statements of [chatbotStatements.map((c) => c.statement), guardrail]) {
      expect(statements).toHaveLength(1);
      expect([statements[0]!.Action].flat()).toEqual(['cloudwatch:DescribeAlarms']);
      expect(statements[0]!.Resource.map((r) => JSON.stringify(r)).sort()).toEqual(alarmArns);
    }
  });

  it('outputs the alert topic ARN', () => {
    const { template, stack, id } = synth();
    template.hasOutput('AlertTopicArn', { Value: { Ref: id(stack.alerts.topic) } });
  });
});

describe('DoctorDocument', () => {
  /** The doctor document's runCommand split into the lines the agent's shell runs and the heredoc bodies (the scripts written to disk). */
  function doctorScript(content: { mainSteps: Array<{ inputs: { runCommand: string[] } }> }) {
    const top: string[] = [];
    const files = new Map<string, string[]>();
    let file: string[] | null = null;
    for (const line of content.mainSteps[0]!.inputs.runCommand) {
      if (file !== null) {
        if (line === HEREDOC_DELIMITER) file = null;
        else file.push(line);
        continue;
      }
      top.push(line);
      const heredoc = /^cat >"\$DOCTOR_DIR\/([\w.-]+)" <<'(\w+)'$/.exec(line);
      if (heredoc) {
        expect(heredoc[2]).toBe(HEREDOC_DELIMITER);
        file = [];
        files.set(heredoc[1]!, file);
      }
    }
    expect(file, 'every heredoc is closed').toBeNull();
    return { top, files };
  }

  function doctorResource() {
    const { resources, stack, template } = synth();
    const resource = resources[stack.getLogicalId(stack.doctorDocument.document)]!;
    return { resource, stack, template, resources, content: resource.Properties.Content as { description: string; parameters: Record<string, Record<string, unknown>>; mainSteps: Array<{ name: string; inputs: { runCommand: string[] } }> } };
  }

  it('publishes the doctor document under the fixed name the CLI uses by default, with the content of buildDoctorDocument()', () => {
    const { resource, stack, content } = doctorResource();
    expect(resource.Type).toBe('AWS::SSM::Document');
    expect(resource.Properties).toMatchObject({ Name: 'GitLabRunnerRotator-RunnerDoctor', DocumentType: 'Command', DocumentFormat: 'JSON', UpdateMethod: 'NewVersion' });
    expect(stack.doctorDocument.documentName).toBe(doctorDocumentName());
    expect(content).toEqual(buildDoctorDocument());
    // The default of `rotator doctor --aws` is <the fleet file's stackName>-RunnerDoctor: bin/app.ts must deploy that stack name.
    expect(readFileSync(join(REPO_ROOT, 'bin/app.ts'), 'utf8')).toContain('new RotatorStack(app, fleet.config.stackName,');
    expect(parseAwsFleetConfig(FLEET_TEXT, 'fleet.test.json').stackName).toBe(ROTATOR_STACK_NAME);
  });

  it('is read-only in its parameters: path, numbers and yes/no, each pattern-checked ENV_VAR, none a token, a secret or an output', () => {
    const { content } = doctorResource();
    expect(Object.keys(content.parameters)).toEqual(DOCTOR_PARAMETERS.map((p) => p.name));
    for (const [name, parameter] of Object.entries(content.parameters)) {
      expect(parameter, name).toMatchObject({ type: 'String', interpolationType: 'ENV_VAR' });
      expect(String(parameter.allowedPattern), name).toMatch(/^\^.+\$$/);
      expect(name).not.toMatch(/token|password|secret|version|output|write/i);
      // Mentions of the checks (token.expiring, token_expires_at) are fine; a token, password or secret as the value is not.
      expect(String(parameter.description), name).not.toMatch(/\b(token|password|secret)\b(?![._])/i);
      // No value that looks like a token gets past its pattern.
      for (const token of ['glrt-AbCdEf0123456789xyz_-', 'glpat-AbCdEf0123456789xyz', 'Hd4LegacyHostToken000001']) expect(new RegExp(String(parameter.allowedPattern)).test(token), `${name} ${token}`).toBe(false);
    }
  });

  it('runs doctor.sh only: the TOML walker travels as doctor.sh\'s reader and runs in its list mode, config.toml is never written, and nothing reads a secret or sends credentials', () => {
    const { content } = doctorResource();
    const { top, files } = doctorScript(content);
    expect([...files.keys()]).toEqual(['doctor.sh', 'toml-edit.awk']);
    // The lines the agent runs: one bash, on doctor.sh; the walker appears only as the file written and as --walker's value.
    expect(top.filter((l) => /^(bash|sh|exec|source|\.) /.test(l))).toEqual([expect.stringMatching(/^bash "\$DOCTOR_DIR\/doctor\.sh" /)]);
    expect(top.some((l) => l.includes('update-runner-token.sh'))).toBe(false);
    for (const line of top.filter((l) => l.includes('toml-edit.awk'))) {
      expect(line).toMatch(/^cat >"\$DOCTOR_DIR\/toml-edit\.awk" <<'|--walker "\$DOCTOR_DIR\/toml-edit\.awk"/);
    }
    const doctor = files.get('doctor.sh')!;
    const code = doctor.filter((l) => !/^\s*#/.test(l));
    // doctor.sh runs the walker toml-edit.awk in its list mode (URT_OUT="": it writes nothing).
    for (const line of code.filter((l) => /\$\{?UPDATER\b/.test(l))) expect(line, line).not.toMatch(/(^|[;&|(]\s*|\b(bash|sh|exec|source|\.)\s+)"?\$\{?UPDATER\}?"?(\s|$)/);
    for (const line of code.filter((l) => l.includes('URT_OUT'))) expect(line).toMatch(/URT_OUT=""/);
    for (const line of code.filter((l) => /\$\{?CONFIG\b/.test(l))) expect(line, line).not.toMatch(/(>>?|\b(mv|cp|chmod|chown|tee|rm|truncate|install|sed -i)\b)[^|]*\$\{?CONFIG\b/);
    const text = code.join('\n');
    expect(text).not.toMatch(/secretsmanager|get-secret-value|runners\/verify|PRIVATE-TOKEN|Authorization|JOB-TOKEN|--data|-X POST|--request/i);
    // Its one network call: curl GET /api/v4/version, without credentials.
    const curls = code.filter((l) => /^\s*curl /.test(l));
    expect(curls).toHaveLength(1);
    expect(curls[0]).not.toMatch(/ -[Hdu] | --(header|user|data|netrc)/);
  });

  it('is granted to no role of the stack, only by the operator policy: operators send it with their own credentials', () => {
    const { resources, stack } = doctorResource();
    const documentId = stack.getLogicalId(stack.doctorDocument.document);
    const operatorPolicyId = stack.getLogicalId(stack.operatorPolicy.node.defaultChild as CfnResource);
    expect(JSON.stringify(resources[operatorPolicyId]?.Properties)).toContain('RunnerDoctor');
    const policies = Object.entries(resources)
      .filter(([logicalId, r]) => logicalId !== operatorPolicyId && (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy' || r.Type === 'AWS::IAM::Role'))
      .map(([, r]) => r);
    expect(policies.length).toBeGreaterThan(0);
    for (const policy of policies) {
      const text = JSON.stringify(policy.Properties);
      expect(text).not.toContain(documentId);
      expect(text).not.toContain('RunnerDoctor');
    }
  });

  it('outputs the doctor document name', () => {
    const { template, stack } = doctorResource();
    template.hasOutput('DoctorDocumentName', { Value: { Ref: stack.getLogicalId(stack.doctorDocument.document) }, Description: Match.stringLikeRegexp('rotator doctor --aws') });
  });
});

describe('cdk-nag AwsSolutions checks', () => {
  /** Synthesizes with cdk-nag registered as in bin/app.ts; returns the AwsSolutions part of the validation report. */
  function synthWithNag(addToStack?: (stack: RotatorStack) => void) {
    const outdir = mkdtempSync(join(tmpdir(), 'rotator-nag-'));
    const { app, stack } = build({ fleet: loadFleetConfig(join(REPO_ROOT, 'fleet.aws.example.json')), outdir });
    addToStack?.(stack);
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
    let error: unknown;
    try {
      app.synth();
    } catch (e) {
      error = e;
    }
    const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as {
      pluginReports: Array<{ pluginName: string; violations: Array<{ ruleName: string; severity: string; violatingConstructs: Array<{ constructPath: string }> }> }>;
    };
    const violations = report.pluginReports.filter((r) => r.pluginName === 'AwsSolutions').flatMap((r) => r.violations);
    return { app, error, violations };
  }

  it('finds nothing unacknowledged in the stack, neither errors nor warnings', () => {
    const { app, error, violations } = synthWithNag();
    expect(error).toBeUndefined();
    expect(violations).toEqual([]);
    expect(new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(app).violations).toEqual([]);
  });

  it('fails the synth on a resource that breaks a rule, and the function acknowledgements do not cover other roles', () => {
    const { error, violations } = synthWithNag((stack) => {
      new dynamodb.Table(stack, 'UnprotectedTable', { partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING } });
      const role = new iam.Role(stack, 'WildcardRole', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
      role.addToPolicy(new iam.PolicyStatement({ actions: ['ssm:ListCommands'], resources: ['*'] }));
    });
    expect(String(error)).toMatch(/ValidationFailed[\s\S]*AwsSolutions-DDB3/);
    expect(violations.map((v) => [v.ruleName, v.violatingConstructs.map((c) => c.constructPath)])).toEqual(
      expect.arrayContaining([
        ['AwsSolutions-DDB3', ['GitLabRunnerRotator/UnprotectedTable/Resource']],
        ['AwsSolutions-IAM5[Resource::*]', ['GitLabRunnerRotator/WildcardRole/DefaultPolicy/Resource']],
      ]),
    );
  });

  it('acknowledges only named findings on the function roles, the functions and the rule dead-letter queue, each with its reason', () => {
    const { stack } = build({ fleet: loadFleetConfig(join(REPO_ROOT, 'fleet.aws.example.json')) });
    const acknowledged: Array<[string, string, string]> = [];
    for (const construct of stack.node.findAll()) {
      for (const entry of construct.node.metadata) {
        if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
        for (const [rule, reason] of Object.entries(entry.data as Record<string, string>)) {
          acknowledged.push([construct.node.path, rule.replace(/^annotation::/i, ''), reason]);
        }
      }
    }
    const instances = 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*]';
    const secrets = 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:gitlab-runner-rotator/*]';
    expect(acknowledged.map(([path, rule]) => `${path} ${rule}`).sort()).toEqual(
      [
        'GitLabRunnerRotator/Functions/RotateSecret AwsSolutions-L1',
        'GitLabRunnerRotator/Functions/RotateSecretRole AwsSolutions-IAM5[Resource::*]',
        `GitLabRunnerRotator/Functions/RotateSecretRole ${instances}`,
        'GitLabRunnerRotator/Functions/ScanExpiry AwsSolutions-L1',
        'GitLabRunnerRotator/Functions/ScanExpiryRole AwsSolutions-IAM5[Resource::*]',
        'GitLabRunnerRotator/Functions/ScanRunners AwsSolutions-L1',
        'GitLabRunnerRotator/Functions/ScanRunnersRole AwsSolutions-IAM5[Resource::*]',
        `GitLabRunnerRotator/Functions/ScanRunnersRole ${instances}`,
        'GitLabRunnerRotator/Notify/Function AwsSolutions-L1',
        'GitLabRunnerRotator/Notify/FunctionRole AwsSolutions-IAM5[Resource::*]',
        'GitLabRunnerRotator/OperatorPolicy AwsSolutions-IAM5[Resource::*]',
        `GitLabRunnerRotator/OperatorPolicy ${instances}`,
        'GitLabRunnerRotator/RotationOutcomes/DeadLetterQueue AwsSolutions-SQS3',
        `GitLabRunnerRotator/Functions/RotateSecretRole ${secrets}`,
        `GitLabRunnerRotator/Functions/ScanRunnersRole ${secrets}`,
        `GitLabRunnerRotator/OperatorPolicy ${secrets}`,
        `GitLabRunnerRotator/HostReadPolicy ${secrets}`,
      ].sort(),
    );
    for (const [, , reason] of acknowledged) expect(reason.length).toBeGreaterThan(60);
  });
});

describe('loadFleetConfig', () => {
  it('names the file and the field when the fleet file is wrong, and asks for the context when none is named', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rotator-fleet-'));
    const bad = join(dir, 'fleet.json');
    writeFileSync(bad, JSON.stringify({ runners: [{ name: 'a', gitlabUrl: 'https://gitlab.example.com', runnerId: -1, hosts: { tag: { key: 'k', value: 'v' } } }] }));
    expect(() => loadFleetConfig(bad)).toThrow(`${bad}: runners[0].runnerId`);
    expect(() => loadFleetConfig(join(dir, 'missing.json'))).toThrow(/missing\.json: cannot read the fleet file \(ENOENT\)/);
    expect(() => loadFleetConfig(undefined)).toThrow(/fleetConfig/);
  });
});

function expectOnlyListActionsOnStar(statements: Statement[], extra: string[]): void {
  const onStar = statements.filter((s) => s.Resource.includes('*'));
  expect(onStar.flatMap((s) => s.Action).sort()).toEqual([...LIST_ACTIONS, ...extra].sort());
  for (const s of statements) {
    for (const action of s.Action) expect(action, 'no wildcard action').not.toContain('*');
  }
}

function expectHostCommandsOnly(stack: RotatorStack, statements: Statement[]): void {
  const send = grantsOf(statements, 'ssm:SendCommand');
  const arn = (service: string, resource: string, name: string) => stack.resolve(stack.formatArn({ service, resource, resourceName: name }));
  const unconditioned = send.filter((s) => !s.Condition).flatMap((s) => s.Resource);
  expect(unconditioned).toEqual(
    expect.arrayContaining([stack.resolve(stack.hostDocument.documentArn), arn('ec2', 'instance', 'i-0123456789abcdef0'), arn('ssm', 'managed-instance', 'mi-0123456789abcdef0')]),
  );
  expect(unconditioned).toHaveLength(3);
  const byTag = send.filter((s) => s.Condition);
  expect(byTag).toEqual([
    expect.objectContaining({
      Resource: [arn('ec2', 'instance', '*')],
      Condition: { StringEquals: { 'ssm:resourceTag/gitlab-runner': ['builders', 'testers'] } },
    }),
  ]);
  for (const s of send) expect(s.Action).toEqual(['ssm:SendCommand']);
}

/** The ledger table and exactly these item actions (what the ledger adapters send; iam-contract.test.ts proves each is used). */
function expectLedgerOnly(statements: Statement[], tableId: string, actions: string[]): void {
  const dynamo = statements.filter((s) => s.Action.some((a) => a.startsWith('dynamodb:')));
  expect(dynamo.flatMap((s) => s.Resource)).toEqual([{ 'Fn::GetAtt': [tableId, 'Arn'] }]);
  expect(dynamo.flatMap((s) => s.Action).sort()).toEqual([...actions].sort());
}
