import { CfnOutput, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct, IConstruct } from 'constructs';
import { FLEET_SETTINGS_MAX_BYTES, MANAGED_SECRET_TAG_KEY, fleetSettingsText, type AwsManagedRunner } from '../src/config/aws-fleet-config.ts';
import { LAMBDA_ENVIRONMENT_NAMES } from '../src/config/lambda-environment.ts';
import { RUNNER_TAG } from '../src/config/runner-tags.ts';
import { InvalidInputError } from '../src/core/errors.ts';
import { buildHostConvergeDocument } from '../src/adapters/aws/host-update-document.ts';
import { AlertTopic } from './constructs/alert-topic.ts';
import { ChatbotSlackChannel } from './constructs/chatbot-slack-channel.ts';
import { DoctorDocument } from './constructs/doctor-document.ts';
import { ExpiryScanSchedule } from './constructs/expiry-scan-schedule.ts';
import { FleetDashboard } from './constructs/fleet-dashboard.ts';
import { FunctionAlarms } from './constructs/function-alarms.ts';
import { HostUpdateDocument } from './constructs/host-update-document.ts';
import { LedgerTable } from './constructs/ledger-table.ts';
import { NotifyFunction } from './constructs/notify-function.ts';
import { RotationFunctions, type RotationFunctionsProps } from './constructs/rotation-functions.ts';
import { RotationOutcomeRule } from './constructs/rotation-outcome-rule.ts';
import type { RunnerConvergence } from './constructs/runner-convergence.ts';
import type { RunnerSecret } from './constructs/runner-secret.ts';
import { RunnerShard, shardOf } from './constructs/runner-shard.ts';
import { ScanQueue } from './constructs/scan-queue.ts';
import type { LoadedFleet } from './fleet-config.ts';
import { managedSecretArnPrefix, secretArnForGrant } from './secret-arn.ts';

export interface RotatorStackProps extends StackProps {
  fleet: LoadedFleet;
  /** Lambda entry files (tests only); defaults to functions/rotate-secret.ts, functions/scan-expiry.ts and functions/scan-runners.ts. */
  functionEntries?: RotationFunctionsProps['entries'];
  /** The notifier's entry file (tests only); defaults to functions/notify.ts. */
  notifyEntry?: string;
}

/**
 * The AWS engine: one secret per runner with its rotation schedule and host read policy, the rotation
 * hook and the scanner, the host update document, the convergence document and each runner's State
 * Manager association of it, the ledger table and the scan schedule; and the alert path:
 * the encrypted alert topic (e-mail, the notifier, Chatbot), the notifier, the rule that hands it rotation
 * failures, and the alarms on every function; and the read-only doctor document, which only operators send.
 * Every permission is written out here, per function, on the exact resources the fleet file names.
 */
export class RotatorStack extends Stack {
  readonly ledger: LedgerTable;
  readonly hostDocument: HostUpdateDocument;
  /** The convergence document the runners' State Manager associations run (AWSCURRENT onto every host). */
  readonly convergeDocument: HostUpdateDocument;
  /** Per runner, unless the fleet file's convergeEveryHours is 0. */
  readonly convergence: RunnerConvergence[];
  /** The nested stacks that hold the runners' secrets, schedules and associations (RunnerShard). */
  readonly shards: RunnerShard[];
  /** Attach to every runner host's instance role (tagged with its host group): reads the group's secrets. */
  readonly hostReadPolicy: iam.ManagedPolicy;
  /** The read-only doctor document operators send (`rotator doctor --aws`); no role of the stack may send it. */
  readonly doctorDocument: DoctorDocument;
  readonly functions: RotationFunctions;
  readonly runnerSecrets: RunnerSecret[];
  readonly scanSchedule: ExpiryScanSchedule;
  /** The scan's fan-out: the dispatcher queues batches of runners, the workers scan them. */
  readonly scanQueue: ScanQueue;
  readonly alerts: AlertTopic;
  readonly notify: NotifyFunction;
  readonly rotationOutcomes: RotationOutcomeRule;
  readonly functionAlarms: FunctionAlarms;
  /** Attach to the role or group of the people who run `rotator … --aws`: exactly what those commands call. */
  readonly operatorPolicy: iam.ManagedPolicy;
  /** The fleet on one CloudWatch dashboard: runners due, expiring soon, hosts missed, rotations failed. */
  readonly dashboard: FleetDashboard;
  /** Present when the fleet file's `alerts.chatbot` names a Slack channel. */
  readonly chatbot: ChatbotSlackChannel | undefined;

  constructor(scope: Construct, id: string, props: RotatorStackProps) {
    super(scope, id, props);
    const { config } = props.fleet;
    const settingsText = fleetSettingsText(config);
    if (Buffer.byteLength(settingsText) > FLEET_SETTINGS_MAX_BYTES) {
      throw new InvalidInputError(
        `${props.fleet.path}: settings`,
        `the fleet file without its runners is ${Buffer.byteLength(settingsText)} bytes as JSON; the Lambdas' environment holds ${FLEET_SETTINGS_MAX_BYTES} (fewer admin token secrets, or shorter secret names)`,
      );
    }

    this.ledger = new LedgerTable(this, 'Ledger');
    this.hostDocument = new HostUpdateDocument(this, 'HostUpdateDocument');
    this.convergeDocument = new HostUpdateDocument(this, 'HostConvergeDocument', { content: buildHostConvergeDocument() });
    this.doctorDocument = new DoctorDocument(this, 'DoctorDocument');
    this.functions = new RotationFunctions(this, 'Functions', {
      settingsText,
      ledgerTableName: this.ledger.table.tableName,
      hostDocumentName: this.hostDocument.documentName,
      entries: props.functionEntries,
    });
    const { rotateSecret, scanExpiry, scanRunners } = this.functions;
    this.shards = shardRunners(config.runners).map(
      ([index, runners]) =>
        new RunnerShard(this, `Runners${String(index).padStart(2, '0')}`, {
          runners,
          rotationLambdaArn: rotateSecret.functionArn,
          convergeDocumentName: this.convergeDocument.documentName,
          settings: config,
          namePrefix: this.stackName,
        }),
    );
    this.runnerSecrets = this.shards.flatMap((shard) => shard.runnerSecrets);
    this.convergence = this.shards.flatMap((shard) => shard.convergence);
    this.scanSchedule = new ExpiryScanSchedule(this, 'ExpiryScan', { scanner: scanExpiry, everyHours: config.scanEveryHours });
    // Secrets Manager invokes the hook for every managed secret: one permission, from this account only. AWS
    // recommends `aws:SourceAccount` there against the confused deputy, and not `aws:SourceArn`, so one
    // function can rotate many secrets (Secrets Manager User Guide, "Permissions for rotation":
    // docs.aws.amazon.com/secretsmanager/latest/userguide/rotating-secrets-required-permissions-function.html).
    rotateSecret.addPermission('InvokedBySecretsManager', {
      principal: new iam.ServicePrincipal('secretsmanager.amazonaws.com'),
      action: 'lambda:InvokeFunction',
      sourceAccount: this.account,
    });
    // Creating a schedule with RotateImmediatelyOnUpdate false still has Secrets Manager run the hook's
    // testSecret (Secrets Manager User Guide, "Rotate … on a schedule": it "tests the rotation configuration
    // by running the testSecret step"): the nested stacks wait for the invoke permission and the role's policy.
    const invokePermission = rotateSecret.node.findChild('InvokedBySecretsManager');
    const hookPolicy = (rotateSecret.role as iam.Role).node.findChild('DefaultPolicy');
    for (const shard of this.shards) shard.node.addDependency(invokePermission, hookPolicy);

    const managed = managedSecretStatement(this, config.secretPrefix);
    const adminSecretArns = [...new Set(Object.values(config.adminTokenSecrets))].map((nameOrArn) => secretArnForGrant(this, nameOrArn));
    const hostCommands = hostCommandStatements(this, config.runners, { sid: 'SendHostUpdateDocument', documentArn: this.hostDocument.documentArn, readFullOutput: false });
    // RotateSecret: "You also need lambda:InvokeFunction permissions on the rotation function" (Secrets Manager
    // API reference, RotateSecret). Without it every rotation the scanner or an operator starts is refused.
    const startRotations = new iam.PolicyStatement({ sid: 'InvokeRotationHook', actions: ['lambda:InvokeFunction'], resources: [rotateSecret.functionArn] });

    // Rotation hook: the four actions of a rotation on the managed secrets (by prefix and runner tag).
    rotateSecret.addToRolePolicy(
      managed('RotateManagedSecrets', ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue', 'secretsmanager:PutSecretValue', 'secretsmanager:UpdateSecretVersionStage']),
    );
    for (const statement of [...adminTokenStatements(adminSecretArns), ...hostCommands]) rotateSecret.addToRolePolicy(statement);
    this.ledger.grantRotationLedger(rotateSecret);

    // Scan: the dispatcher finds the managed secrets by tag and queues them; it reads no secret.
    scanExpiry.addToRolePolicy(new iam.PolicyStatement({ sid: 'ListSecrets', actions: ['secretsmanager:ListSecrets'], resources: ['*'] }));
    // Scan workers: read each runner's secret, start due rotations, re-push AWSCURRENT to hosts that missed one,
    // claim runners and GitLab budget in the ledger table, hand on what they could not reach.
    scanRunners.addToRolePolicy(managed('ScanManagedSecrets', ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue', 'secretsmanager:RotateSecret']));
    for (const statement of [startRotations, ...adminTokenStatements(adminSecretArns), ...hostCommands]) scanRunners.addToRolePolicy(statement);
    this.ledger.grantScanWorker(scanRunners);

    // Hosts: one policy for every runner host role, attribute-based (the role's host group tag = the secret's).
    this.hostReadPolicy = new iam.ManagedPolicy(this, 'HostReadPolicy', {
      description: `Attach to the instance role of GitLab runner hosts tagged ${RUNNER_TAG.hostGroup}=<group>: read the token secrets of that host group, nothing else`,
      statements: [
        new iam.PolicyStatement({
          sid: 'ReadOwnHostGroupTokens',
          actions: ['secretsmanager:GetSecretValue'],
          resources: [`${managedSecretArnPrefix(this, config.secretPrefix)}*`],
          conditions: { StringEquals: { [`aws:ResourceTag/${RUNNER_TAG.hostGroup}`]: `\${aws:PrincipalTag/${RUNNER_TAG.hostGroup}}` } },
        }),
      ],
    });

    // Alerts: the topic, the notifier subscribed to it, and who may publish (the three functions, and the alarms).
    this.alerts = new AlertTopic(this, 'Alerts', { emails: config.alerts.emails });
    this.notify = new NotifyFunction(this, 'Notify', {
      bundling: this.functions.bundling,
      settingsText,
      ledger: this.ledger,
      alerts: this.alerts,
      slackWebhookSecretName: config.alerts.slackWebhookSecretName,
      rotationLogGroupName: rotateSecret.logGroup.logGroupName,
      entry: props.notifyEntry,
    });
    for (const fn of [rotateSecret, scanRunners]) {
      fn.addEnvironment(LAMBDA_ENVIRONMENT_NAMES.alertTopicArn, this.alerts.topic.topicArn);
      this.alerts.grantPublishTo(fn);
    }
    this.scanQueue = new ScanQueue(this, 'Scan', { worker: scanRunners, workerTimeout: scanRunners.timeout!, workers: config.scanWorkers, alertTopic: this.alerts.topic });
    for (const fn of [scanExpiry, scanRunners]) {
      fn.addEnvironment(LAMBDA_ENVIRONMENT_NAMES.scanQueueUrl, this.scanQueue.queue.queueUrl);
      // sqs:SendMessage only (grantSendMessages would add GetQueueAttributes and GetQueueUrl, which nothing calls).
      fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'QueueScanBatches', actions: ['sqs:SendMessage'], resources: [this.scanQueue.queue.queueArn] }));
    }
    this.rotationOutcomes = new RotationOutcomeRule(this, 'RotationOutcomes', {
      secretArnPrefix: managedSecretArnPrefix(this, config.secretPrefix),
      notify: this.notify.function,
      alertTopic: this.alerts.topic,
    });
    this.functionAlarms = new FunctionAlarms(this, 'FunctionAlarms', {
      functions: { RotateSecret: rotateSecret, ScanExpiry: scanExpiry, ScanRunners: scanRunners, Notify: this.notify.function },
      alertTopic: this.alerts.topic,
    });
    this.dashboard = new FleetDashboard(this, 'FleetDashboard', { scanLogGroup: scanRunners.logGroup, rotationLogGroup: rotateSecret.logGroup, alertTopic: this.alerts.topic, scanEveryHours: config.scanEveryHours });
    this.chatbot = config.alerts.chatbot
      ? new ChatbotSlackChannel(this, 'Chatbot', {
          ...config.alerts.chatbot,
          alertTopic: this.alerts.topic,
          alarms: [...this.functionAlarms.alarms, this.rotationOutcomes.undeliveredAlarm, this.dashboard.scanFailuresAlarm, this.scanQueue.deadLetterAlarm],
        })
      : undefined;

    this.operatorPolicy = new iam.ManagedPolicy(this, 'OperatorPolicy', {
      description: 'Attach to the people who run `rotator adopt|rotate|status|migrate|doctor --aws`: what those commands call, on this stack only',
      statements: [
        managed('OperateRunnerSecrets', ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue', 'secretsmanager:PutSecretValue', 'secretsmanager:RotateSecret']),
        startRotations,
        ...adminTokenStatements(adminSecretArns),
        new iam.PolicyStatement({
          sid: 'RequestReplacements',
          actions: ['dynamodb:PutItem', 'dynamodb:DeleteItem'],
          resources: [this.ledger.table.tableArn],
        }),
        ...hostCommandStatements(this, config.runners, { sid: 'SendDoctorDocument', documentArn: this.doctorDocument.documentArn, readFullOutput: true }),
      ],
    });

    this.acknowledgeFindings(config.runners, config.secretPrefix);

    new CfnOutput(this, 'DashboardName', { description: 'CloudWatch dashboard of the fleet', value: this.dashboard.dashboard.dashboardName });
    new CfnOutput(this, 'LedgerTableName', { description: 'DynamoDB table of rotation state', value: this.ledger.table.tableName });
    new CfnOutput(this, 'HostDocumentName', { description: 'SSM Command document that updates config.toml on runner hosts', value: this.hostDocument.documentName });
    new CfnOutput(this, 'ConvergeDocumentName', {
      description: "SSM Command document of the runners' State Manager associations: keeps each host on its secret's AWSCURRENT token",
      value: this.convergeDocument.documentName,
    });
    new CfnOutput(this, 'DoctorDocumentName', {
      description: 'Read-only SSM Command document of `rotator doctor --aws` (sent by operators, not by the stack)',
      value: this.doctorDocument.document.ref,
    });
    new CfnOutput(this, 'OperatorPolicyArn', {
      description: 'Attach to the operators who run `rotator … --aws` (adopt, rotate, status, migrate, doctor): exactly what those commands call',
      value: this.operatorPolicy.managedPolicyArn,
    });
    new CfnOutput(this, 'HostReadPolicyArn', {
      description: `Attach to the instance role of every runner host, and tag that role ${RUNNER_TAG.hostGroup}=<the runners' hostGroup>`,
      value: this.hostReadPolicy.managedPolicyArn,
    });
    new CfnOutput(this, 'AlertTopicArn', { description: 'SNS topic of every alert (subscribe more endpoints here)', value: this.alerts.topic.topicArn });
  }

  /** cdk-nag AwsSolutions findings this design accepts, each on the one construct it concerns, with the reason. */
  private acknowledgeFindings(runners: AwsManagedRunner[], secretPrefix: string): void {
    const { rotateSecret, scanExpiry, scanRunners } = this.functions;
    const notify = this.notify.function;
    const ack = (scope: IConstruct, id: string, reason: string) => Validations.of(scope).acknowledge({ id, reason });
    const ackTaggedInstances = (scope: IConstruct) =>
      ack(
        scope,
        `AwsSolutions-IAM5[Resource::${nagResource(this, this.formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' }))}]`,
        "SendCommand to runners whose hosts are chosen by EC2 tag: any instance, but only where the ssm:resourceTag/<key> condition matches that runner's tag (the instances are found by SSM at send time).",
      );
    ack(
      notify,
      'AwsSolutions-L1',
      'Node.js 22 (LTS until 2027-04) rather than the newest 24, like the other three functions: one bundle target (node20 syntax) and one tested Node version for the whole project. Move to 24 with the project.',
    );
    ack(
      notify.role as IConstruct,
      'AwsSolutions-IAM5[Resource::*]',
      'Only xray:PutTraceSegments and xray:PutTelemetryRecords (active tracing), which take no resource ARN. Its other grants name their resources: the alert topic and key, the ledger table, the webhook secret.',
    );
    ack(
      this.rotationOutcomes.deadLetterQueue,
      'AwsSolutions-SQS3',
      'This queue is itself a dead-letter queue: the DeadLetterConfig of the rotation-outcome rule\'s target (cdk-nag only recognizes a queue named in another queue\'s RedrivePolicy). Its depth alarm publishes to the alert topic; a DLQ behind it would only move the same events one hop further.',
    );
    for (const fn of [rotateSecret, scanExpiry, scanRunners]) {
      ack(
        fn,
        'AwsSolutions-L1',
        'Node.js 22 (LTS until 2027-04) rather than the newest 24: the bundle targets node20 syntax and the project is tested on Node 20; 22 is the oldest runtime Lambda does not deprecate before then. Move to 24 with the project.',
      );
      const role = fn.role as IConstruct;
      ack(
        role,
        'AwsSolutions-IAM5[Resource::*]',
        fn === rotateSecret
          ? 'Only actions that take no resource ARN: ssm:ListCommands, ssm:ListCommandInvocations (a command id exists only once SendCommand returns it), and xray:PutTraceSegments/PutTelemetryRecords (active tracing).'
          : fn === scanExpiry
            ? 'Only actions that take no resource ARN: secretsmanager:ListSecrets (the scan lists by the managed-secret tag) and xray:PutTraceSegments/PutTelemetryRecords (active tracing).'
            : 'Only actions that take no resource ARN: ssm:ListCommands, ssm:ListCommandInvocations (a command id exists only once SendCommand returns it), and xray:PutTraceSegments/PutTelemetryRecords (active tracing).',
      );
      if (fn !== scanExpiry && runners.some((r) => r.hosts.kind === 'ec2-tag')) ackTaggedInstances(role);
    }
    // The managed secrets by prefix, narrowed by tag: one statement for any number of runners.
    const managedSecrets = `AwsSolutions-IAM5[Resource::${nagResource(this, `${managedSecretArnPrefix(this, secretPrefix)}*`)}]`;
    for (const scope of [rotateSecret.role as IConstruct, scanRunners.role as IConstruct, this.operatorPolicy, this.hostReadPolicy]) {
      ack(
        scope,
        managedSecrets,
        scope === this.hostReadPolicy
          ? 'The token secrets by prefix, only where the secret\'s gitlab-runner-rotator:host-group tag equals the calling role\'s (ABAC: one policy for every host role, whatever the number of runners).'
          : 'The managed token secrets by prefix, only those tagged gitlab-runner-rotator:runner (ABAC: one statement whatever the number of runners, where a list of ARNs outgrows a role policy at a few hundred).',
      );
    }
    if (listedHostsOverLimit(runners)) {
      const anyInstance = (scope: IConstruct) => {
        for (const resourceName of [
          this.formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' }),
          this.formatArn({ service: 'ssm', resource: 'managed-instance', resourceName: '*' }),
        ]) {
          ack(scope, `AwsSolutions-IAM5[Resource::${nagResource(this, resourceName)}]`, `More than ${EXACT_HOST_GRANTS_MAX} hosts are listed by instance id: SendCommand of the stack's own documents to any instance (a role policy cannot list them all; the documents only install a token the host's own role may read).`);
        }
      };
      for (const scope of [rotateSecret.role as IConstruct, scanRunners.role as IConstruct, this.operatorPolicy]) anyInstance(scope);
    }
    ack(
      this.operatorPolicy,
      'AwsSolutions-IAM5[Resource::*]',
      'Only actions that take no resource ARN: ssm:ListCommands, ssm:ListCommandInvocations and ssm:GetCommandInvocation, which doctor --aws reads its own commands with (a command id exists only once SendCommand returns it).',
    );
    if (runners.some((r) => r.hosts.kind === 'ec2-tag')) ackTaggedInstances(this.operatorPolicy);
  }
}

/** The runners by nested stack (shardOf), in shard order; only shards that hold a runner. */
function shardRunners(runners: AwsManagedRunner[]): Array<[number, AwsManagedRunner[]]> {
  const shards = new Map<number, AwsManagedRunner[]>();
  for (const runner of runners) {
    const index = shardOf(runner.name);
    shards.set(index, [...(shards.get(index) ?? []), runner]);
  }
  return [...shards].sort(([a], [b]) => a - b);
}

/**
 * A statement on every managed secret, however many: the secrets under the fleet's prefix that carry the
 * runner tag (`aws:ResourceTag/<key>`, Secrets Manager User Guide "Control access to secrets
 * using tags" / ABAC). One statement whatever the fleet's size; a secret of the same prefix without the tag
 * (an admin token secret, say) is not covered.
 */
function managedSecretStatement(stack: Stack, secretPrefix: string): (sid: string, actions: string[]) => iam.PolicyStatement {
  return (sid, actions) =>
    new iam.PolicyStatement({
      sid,
      actions,
      resources: [`${managedSecretArnPrefix(stack, secretPrefix)}*`],
      conditions: { StringLike: { [`aws:ResourceTag/${MANAGED_SECRET_TAG_KEY}`]: '?*' } },
    });
}

/** GetSecretValue on the admin access token secrets (by name, or ARN as given): the only way back from an expired token. */
function adminTokenStatements(arns: string[]): iam.PolicyStatement[] {
  return arns.length === 0 ? [] : [new iam.PolicyStatement({ sid: 'ReadAdminTokens', actions: ['secretsmanager:GetSecretValue'], resources: arns })];
}

/** Host targets named one by one in a role policy; past this, by tag key or any instance (see below). */
const EXACT_HOST_GRANTS_MAX = 50;

/** More instance ids listed over the whole fleet than EXACT_HOST_GRANTS_MAX. */
function listedHostsOverLimit(runners: AwsManagedRunner[]): boolean {
  return new Set(runners.flatMap((r) => (r.hosts.kind === 'ec2-instances' ? r.hosts.instanceIds : []))).size > EXACT_HOST_GRANTS_MAX;
}

/**
 * SendCommand needs the permission on the document and on every target instance. Tag targets: any EC2
 * instance carrying the runner's tag, with the service condition key `ssm:resourceTag/<key>` that the
 * Systems Manager User Guide uses for Run Command on `arn:aws:ec2:*:*:instance/*` ("Restricting Run Command
 * access based on tags", docs.aws.amazon.com/systems-manager/latest/userguide/run-command-setting-up.html;
 * the global `aws:ResourceTag` would also need aws:ViaAWSService there). Id targets: exactly the listed
 * instances (`mi-…` hybrid nodes are `ssm:managed-instance`). Reading results takes no resource ARN.
 */
function hostCommandStatements(stack: Stack, runners: AwsManagedRunner[], document: { sid: string; documentArn: string; readFullOutput: boolean }): iam.PolicyStatement[] {
  const statements = [new iam.PolicyStatement({ sid: document.sid, actions: ['ssm:SendCommand'], resources: [document.documentArn] })];
  const tagValuesByKey = new Map<string, Set<string>>();
  const instanceArns = new Set<string>();
  for (const runner of runners) {
    const hosts = runner.hosts;
    if (hosts.kind === 'ec2-tag') {
      tagValuesByKey.set(hosts.tagKey, (tagValuesByKey.get(hosts.tagKey) ?? new Set()).add(hosts.tagValue));
    } else if (hosts.kind === 'ec2-instances') {
      for (const id of hosts.instanceIds) {
        instanceArns.add(
          id.startsWith('mi-')
            ? stack.formatArn({ service: 'ssm', resource: 'managed-instance', resourceName: id })
            : stack.formatArn({ service: 'ec2', resource: 'instance', resourceName: id }),
        );
      }
    }
  }
  for (const [key, values] of tagValuesByKey) {
    statements.push(
      new iam.PolicyStatement({
        actions: ['ssm:SendCommand'],
        resources: [stack.formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' })],
        // Up to EXACT_HOST_GRANTS_MAX values the exact ones; a larger fleet any instance carrying the tag key
        // (a role policy holds 10,240 characters; the document only installs a token the host's own role reads).
        conditions:
          values.size <= EXACT_HOST_GRANTS_MAX
            ? { StringEquals: { [`ssm:resourceTag/${key}`]: [...values] } }
            : { StringLike: { [`ssm:resourceTag/${key}`]: '*' } },
      }),
    );
  }
  if (listedHostsOverLimit(runners)) {
    statements.push(
      new iam.PolicyStatement({
        sid: 'SendToListedHosts',
        actions: ['ssm:SendCommand'],
        resources: [
          stack.formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' }),
          stack.formatArn({ service: 'ssm', resource: 'managed-instance', resourceName: '*' }),
        ],
      }),
    );
  } else if (instanceArns.size > 0) {
    statements.push(new iam.PolicyStatement({ sid: 'SendToListedHosts', actions: ['ssm:SendCommand'], resources: [...instanceArns] }));
  }
  statements.push(
    new iam.PolicyStatement({
      sid: 'ReadCommandResults',
      // GetCommandInvocation: the whole stdout of a host whose plugin output was cut (only the doctor's is that long).
      actions: [...(document.readFullOutput ? ['ssm:GetCommandInvocation'] : []), 'ssm:ListCommandInvocations', 'ssm:ListCommands'],
      resources: ['*'],
    }),
  );
  return statements;
}

/**
 * A resource as cdk-nag names it in a finding id (cdk-nag utils/flatten-cfn-reference): the resolved
 * value with `Fn::Join` joined and `{Ref: X}` written `<X>`, e.g. `arn:<AWS::Partition>:ec2:<AWS::Region>:…`.
 */
function nagResource(stack: Stack, value: string): string {
  const flatten = (node: unknown): string => {
    if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/\}/g, '>');
    if (typeof node === 'object' && node !== null && 'Fn::Join' in node) {
      const [delimiter, items] = (node as { 'Fn::Join': [string, unknown[]] })['Fn::Join'];
      return items.map(flatten).join(delimiter);
    }
    if (typeof node === 'object' && node !== null && 'Ref' in node) return `<${flatten((node as { Ref: unknown }).Ref)}>`;
    return JSON.stringify(node);
  };
  return flatten(stack.resolve(value));
}
