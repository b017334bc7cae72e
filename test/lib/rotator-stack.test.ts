import { App, ArnFormat, Validations, type CfnResource } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ESM_REQUIRE_BANNER } from '../../lib/constructs/rotation-functions.ts';
import { loadFleetConfig, type LoadedFleet } from '../../lib/fleet-config.ts';
import { RotatorStack } from '../../lib/rotator-stack.ts';
import { MANAGED_SECRET_TAG_KEY, parseAwsFleetConfig } from '../../src/config/aws-fleet-config.ts';

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

/** The app of bin/app.ts, without bundling unless `context` says otherwise, and without CDK's built-in CloudFormation validation (6-8 s a synth; `cdk synth` runs it). */
function build(options: { fleet?: LoadedFleet; context?: Record<string, unknown>; outdir?: string; entries?: { rotateSecret: string; scanExpiry: string } } = {}) {
  const app = new App({ context: { ...CDK_CONTEXT, ...(options.context ?? SKIP_BUNDLING) }, outdir: options.outdir, builtinCloudFormationValidation: false });
  const stack = new RotatorStack(app, 'GitLabRunnerRotator', { fleet: options.fleet ?? fleetFrom(FLEET_TEXT), functionEntries: options.entries });
  return { app, stack };
}

function synth(fleet?: LoadedFleet) {
  const { app, stack } = build({ fleet });
  const template = Template.fromStack(stack);
  const resources = template.toJSON().Resources as Record<string, { Type: string; Properties: Record<string, unknown> }>;
  const id = (construct: { node: { defaultChild?: unknown } }) => stack.getLogicalId(construct.node.defaultChild as CfnResource);
  return { app, stack, template, resources, id };
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

const DELIVERY_PARAMETERS = ['SecretArn', 'VersionId', 'PreviousVersionId', 'RunnerId', 'GitLabUrl', 'ConfigPath', 'ReloadMode', 'ExpiresAt'];
/** The `*` resources each role may hold, by action: the actions that take no resource ARN. */
const LIST_ACTIONS = ['ssm:GetCommandInvocation', 'ssm:ListCommandInvocations', 'ssm:ListCommands', 'xray:PutTraceSegments', 'xray:PutTelemetryRecords'];

describe('RotatorStack', () => {
  it('creates one secret per runner, named and tagged after it, with a generated placeholder and never a value', () => {
    const { stack, resources, template } = synth();
    const secrets = Object.values(resources).filter((r) => r.Type === 'AWS::SecretsManager::Secret');
    expect(secrets.map((s) => s.Properties.Name)).toEqual(['ci/runners/builders', 'ci/runners/testers', 'ci/runners/deployers']);
    expect(stack.runnerSecrets).toHaveLength(3);
    for (const [index, secret] of secrets.entries()) {
      expect(secret.Properties.Tags).toEqual([{ Key: MANAGED_SECRET_TAG_KEY, Value: ['builders', 'testers', 'deployers'][index] }]);
      expect(secret.Properties.SecretString).toBeUndefined();
      const generate = secret.Properties.GenerateSecretString as { SecretStringTemplate: string; GenerateStringKey: string };
      expect(JSON.parse(generate.SecretStringTemplate)).toEqual({ adopted: false, runner_id: [11, 12, 13][index], url: index === 2 ? 'https://gitlab.other.example' : 'https://gitlab.example.com' });
      expect(generate.GenerateStringKey).toBe('placeholder');
    }
    for (const resource of Object.values(resources)) expect(Object.keys(resource.Properties ?? {})).not.toContain('SecretString');
    // The host scripts embedded in the document mention the glrt- prefix; a token would have 20+ characters after it.
    expect(JSON.stringify(template.toJSON())).not.toMatch(/glrt-[A-Za-z0-9_-]{20}/);
  });

  it('schedules each secret with the rotation hook, after its own number of days, without rotating on deploy', () => {
    const { resources, stack, id } = synth();
    const schedules = Object.values(resources).filter((r) => r.Type === 'AWS::SecretsManager::RotationSchedule');
    expect(schedules.map((s) => s.Properties)).toEqual(
      stack.runnerSecrets.map((r, index) => ({
        SecretId: { Ref: id(r.secret) },
        RotationLambdaARN: { 'Fn::GetAtt': [id(stack.functions.rotateSecret), 'Arn'] },
        RotationRules: { ScheduleExpression: ['rate(30 days)', 'rate(7 days)', 'rate(30 days)'][index] },
        RotateImmediatelyOnUpdate: false,
      })),
    );
  });

  it('lets Secrets Manager invoke the rotation hook, from this account only', () => {
    const { resources, stack, id } = synth();
    const grants = Object.values(resources).filter((r) => r.Type === 'AWS::Lambda::Permission' && r.Properties.Principal === 'secretsmanager.amazonaws.com');
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
    const { resources } = synth();
    const documents = Object.values(resources).filter((r) => r.Type === 'AWS::SSM::Document');
    expect(documents).toHaveLength(1);
    const document = documents[0]!.Properties;
    expect(document).toMatchObject({ DocumentType: 'Command', DocumentFormat: 'JSON', UpdateMethod: 'NewVersion' });
    const content = document.Content as { schemaVersion: string; parameters: Record<string, Record<string, unknown>> };
    expect(content.schemaVersion).toBe('2.2');
    // The eight delivery fields; ExecutionTimeout is the step's timeoutSeconds input, which no shell sees.
    expect(Object.keys(content.parameters).sort()).toEqual([...DELIVERY_PARAMETERS, 'ExecutionTimeout'].sort());
    for (const [name, parameter] of Object.entries(content.parameters)) {
      expect(parameter, name).toMatchObject({ type: 'String', interpolationType: 'ENV_VAR' });
      expect(String(parameter.allowedPattern), name).toMatch(/^\^.+\$$/);
      expect(`${name} ${String(parameter.description)}`, name).not.toMatch(/token|password/i);
    }
  });

  it('scans on the fleet file schedule, targeting the scanner', () => {
    const { template, stack, id } = synth();
    template.resourceCountIs('AWS::Events::Rule', 1);
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

  it('runs both functions on Node 22 arm64 with tracing, 256 MB, 10 minutes, their own log group and the environment the handlers read', () => {
    const { template, stack, id } = synth();
    for (const fn of [stack.functions.rotateSecret, stack.functions.scanExpiry]) {
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
        Environment: {
          Variables: {
            LEDGER_TABLE_NAME: { Ref: id(stack.ledger.table) },
            HOST_DOCUMENT_NAME: { Ref: stack.getLogicalId(stack.hostDocument.document) },
            POWERTOOLS_SERVICE_NAME: 'gitlab-runner-rotator',
            POWERTOOLS_METRICS_NAMESPACE: 'GitLabRunnerRotator',
            POWERTOOLS_LOG_LEVEL: 'INFO',
            NODE_OPTIONS: '--enable-source-maps',
          },
        },
      });
      template.hasResource('AWS::Logs::LogGroup', { Properties: { RetentionInDays: 90 } });
    }
    template.resourceCountIs('AWS::Logs::LogGroup', 2);
  });

  it('gives the rotation hook the four rotation actions on the managed secrets only, and reads of the admin tokens', () => {
    const { resources, stack, id } = synth();
    const statements = roleStatements(resources, id(stack.functions.rotateSecret));
    const managed = stack.runnerSecrets.map((r) => ({ Ref: id(r.secret) }));
    const admin = [
      stack.resolve(stack.formatArn({ service: 'secretsmanager', resource: 'secret', resourceName: 'ci/gitlab-admin-token-??????', arnFormat: ArnFormat.COLON_RESOURCE_NAME })),
      'arn:aws:secretsmanager:eu-west-1:111122223333:secret:other-admin-AbCdEf',
    ];
    for (const action of ['secretsmanager:DescribeSecret', 'secretsmanager:PutSecretValue', 'secretsmanager:UpdateSecretVersionStage']) {
      expect(sorted(grantsOf(statements, action).flatMap((s) => s.Resource)), action).toEqual(sorted(managed));
    }
    expect(sorted(grantsOf(statements, 'secretsmanager:GetSecretValue').flatMap((s) => s.Resource))).toEqual(sorted([...managed, ...admin]));
    expect(grantsOf(statements, 'secretsmanager:RotateSecret')).toEqual([]);
    expect(grantsOf(statements, 'secretsmanager:ListSecrets')).toEqual([]);
    // secretsmanager:GetRandomPassword is aws-cdk-lib RotationSchedule's own addition; it names no resource.
    expectOnlyListActionsOnStar(statements, ['secretsmanager:GetRandomPassword']);
    expectHostCommandsOnly(stack, statements);
    expectLedgerOnly(statements, id(stack.ledger.table));
  });

  it('gives the scanner ListSecrets, its three actions on the managed secrets, the admin tokens and the same host commands', () => {
    const { resources, stack, id } = synth();
    const statements = roleStatements(resources, id(stack.functions.scanExpiry));
    const managed = stack.runnerSecrets.map((r) => ({ Ref: id(r.secret) }));
    expect(grantsOf(statements, 'secretsmanager:ListSecrets').flatMap((s) => s.Resource)).toEqual(['*']);
    for (const action of ['secretsmanager:DescribeSecret', 'secretsmanager:RotateSecret']) {
      expect(sorted(grantsOf(statements, action).flatMap((s) => s.Resource)), action).toEqual(sorted(managed));
    }
    expect(grantsOf(statements, 'secretsmanager:GetSecretValue').flatMap((s) => s.Resource)).toHaveLength(managed.length + 2);
    expect(grantsOf(statements, 'secretsmanager:PutSecretValue')).toEqual([]);
    expect(grantsOf(statements, 'secretsmanager:UpdateSecretVersionStage')).toEqual([]);
    expectOnlyListActionsOnStar(statements, ['secretsmanager:ListSecrets']);
    expectHostCommandsOnly(stack, statements);
    expectLedgerOnly(statements, id(stack.ledger.table));
  });

  it('gives each runner a host read policy that allows GetSecretValue on its own secret and nothing else', () => {
    const { resources, stack, id } = synth();
    const policies = Object.entries(resources).filter(([, r]) => r.Type === 'AWS::IAM::ManagedPolicy');
    expect(policies).toHaveLength(3);
    for (const runner of stack.runnerSecrets) {
      const policy = resources[id(runner.hostReadPolicy)]!.Properties;
      expect(policy.PolicyDocument).toEqual({
        Version: '2012-10-17',
        Statement: [{ Sid: 'ReadRunnerTokenSecret', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: { Ref: id(runner.secret) } }],
      });
    }
  });

  it('outputs the table name, the document name, and each runner secret ARN and host read policy ARN', () => {
    const { template, stack, id } = synth();
    template.hasOutput('LedgerTableName', { Value: { Ref: id(stack.ledger.table) } });
    template.hasOutput('HostDocumentName', { Value: { Ref: stack.getLogicalId(stack.hostDocument.document) } });
    for (const runner of stack.runnerSecrets) {
      template.hasOutput('*', { Value: { Ref: id(runner.secret) } });
      template.hasOutput('*', { Value: { Ref: id(runner.hostReadPolicy) }, Description: Match.stringLikeRegexp('instance role') });
    }
  });

  it('compiles the fleet file into the bundle with esbuild define, not into the environment', () => {
    const fleet = loadFleetConfig(join(REPO_ROOT, 'fleet.aws.example.json'));
    const outdir = mkdtempSync(join(tmpdir(), 'rotator-cdk-'));
    const { app, stack } = build({ fleet, outdir });
    expect(stack.functions.bundling.define).toEqual({ 'process.env.ROTATOR_FLEET_JSON': JSON.stringify(fleet.text) });
    expect(JSON.stringify(Template.fromStack(stack).toJSON())).not.toContain('ROTATOR_FLEET_JSON');
    // With aws:cdk:bundling-stacks = [] nothing was bundled: the unit tests never run esbuild.
    app.synth();
    expect(readdirSync(outdir).filter((d) => d.startsWith('asset.'))).toEqual([]);
  });

  it('bundles locally with esbuild into an ESM file that loads in Node and reads the compiled-in fleet', () => {
    // The real NodejsFunction bundling path (local esbuild from node_modules, no Docker), on an entry that
    // reads the fleet the way the handlers do. Without the define, readLambdaEnvironment() fails: ROTATOR_FLEET_JSON is not set.
    const outdir = mkdtempSync(join(tmpdir(), 'rotator-cdk-'));
    const fleet = loadFleetConfig(join(REPO_ROOT, 'fleet.aws.example.json'));
    const entry = 'src/config/lambda-environment.ts';
    const { app } = build({ fleet, context: {}, outdir, entries: { rotateSecret: entry, scanExpiry: entry } });
    app.synth();
    const bundles = readdirSync(outdir).filter((d) => d.startsWith('asset.')).map((d) => join(outdir, d, 'index.mjs'));
    expect(bundles.length).toBeGreaterThan(0);
    for (const bundle of bundles) {
      expect(readFileSync(bundle, 'utf8').startsWith(ESM_REQUIRE_BANNER)).toBe(true);
      const script = `const m = await import(${JSON.stringify(pathToFileURL(bundle).href)}); const e = m.readLambdaEnvironment(); console.log(JSON.stringify({ runners: e.fleet.runners.map((r) => r.name), table: e.ledgerTableName }));`;
      const env = { PATH: process.env.PATH, LEDGER_TABLE_NAME: 'ledger', HOST_DOCUMENT_NAME: 'doc' };
      const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env, encoding: 'utf8' });
      expect(run.status, run.stderr.trim().split('\n').at(-1)).toBe(0);
      expect(JSON.parse(run.stdout)).toEqual({ runners: fleet.config.runners.map((r) => r.name), table: 'ledger' });
    }
  }, 60_000);
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

  it('acknowledges only named findings on the two function roles and functions, each with its reason', () => {
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
    expect(acknowledged.map(([path, rule]) => `${path} ${rule}`).sort()).toEqual(
      [
        'GitLabRunnerRotator/Functions/RotateSecret AwsSolutions-L1',
        'GitLabRunnerRotator/Functions/RotateSecretRole AwsSolutions-IAM5[Resource::*]',
        `GitLabRunnerRotator/Functions/RotateSecretRole ${instances}`,
        'GitLabRunnerRotator/Functions/ScanExpiry AwsSolutions-L1',
        'GitLabRunnerRotator/Functions/ScanExpiryRole AwsSolutions-IAM5[Resource::*]',
        `GitLabRunnerRotator/Functions/ScanExpiryRole ${instances}`,
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

function expectLedgerOnly(statements: Statement[], tableId: string): void {
  const dynamo = statements.filter((s) => s.Action.some((a) => a.startsWith('dynamodb:')));
  expect(dynamo.flatMap((s) => s.Resource)).toEqual([{ 'Fn::GetAtt': [tableId, 'Arn'] }]);
  expect(dynamo.flatMap((s) => s.Action)).toEqual(expect.arrayContaining(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query']));
}
