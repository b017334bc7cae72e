import { ArnFormat, CfnOutput, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Construct, IConstruct } from 'constructs';
import type { AwsManagedRunner } from '../src/config/aws-fleet-config.ts';
import { ExpiryScanSchedule } from './constructs/expiry-scan-schedule.ts';
import { HostUpdateDocument } from './constructs/host-update-document.ts';
import { LedgerTable } from './constructs/ledger-table.ts';
import { RotationFunctions, type RotationFunctionsProps } from './constructs/rotation-functions.ts';
import { RunnerSecret } from './constructs/runner-secret.ts';
import type { LoadedFleet } from './fleet-config.ts';

export interface RotatorStackProps extends StackProps {
  fleet: LoadedFleet;
  /** Lambda entry files (tests only); defaults to functions/rotate-secret.ts and functions/scan-expiry.ts. */
  functionEntries?: RotationFunctionsProps['entries'];
}

/**
 * The AWS engine: one secret per runner with its rotation schedule and host read policy, the rotation
 * hook and the scanner, the host update document, the ledger table and the scan schedule. Every
 * permission is written out here, per function, on the exact resources the fleet file names.
 */
export class RotatorStack extends Stack {
  readonly ledger: LedgerTable;
  readonly hostDocument: HostUpdateDocument;
  readonly functions: RotationFunctions;
  readonly runnerSecrets: RunnerSecret[];
  readonly scanSchedule: ExpiryScanSchedule;

  constructor(scope: Construct, id: string, props: RotatorStackProps) {
    super(scope, id, props);
    const { config, text } = props.fleet;

    this.ledger = new LedgerTable(this, 'Ledger');
    this.hostDocument = new HostUpdateDocument(this, 'HostUpdateDocument');
    this.functions = new RotationFunctions(this, 'Functions', {
      fleetText: text,
      ledgerTableName: this.ledger.table.tableName,
      hostDocumentName: this.hostDocument.documentName,
      entries: props.functionEntries,
    });
    const { rotateSecret, scanExpiry } = this.functions;
    this.runnerSecrets = config.runners.map((runner) => new RunnerSecret(this, `Runner-${runner.name}`, { runner, rotationLambda: rotateSecret }));
    this.scanSchedule = new ExpiryScanSchedule(this, 'ExpiryScan', { scanner: scanExpiry, everyHours: config.scanEveryHours });
    this.limitRotationInvokeToThisAccount();

    const managedSecretArns = this.runnerSecrets.map((r) => r.secret.secretArn);
    const adminSecretArns = [...new Set(Object.values(config.adminTokenSecrets))].map((nameOrArn) => adminSecretArn(this, nameOrArn));
    const hostCommands = hostCommandStatements(this, config.runners, this.hostDocument.documentArn);

    // Rotation hook. Its four actions on each managed secret (and Secrets Manager's right to invoke it)
    // come from addRotationSchedule in RunnerSecret.
    for (const statement of [...adminTokenStatements(adminSecretArns), ...hostCommands]) rotateSecret.addToRolePolicy(statement);
    this.ledger.table.grantReadWriteData(rotateSecret);

    // Scanner: finds the managed secrets by tag, starts due rotations, re-pushes AWSCURRENT to hosts that missed one.
    scanExpiry.addToRolePolicy(new iam.PolicyStatement({ sid: 'ListSecrets', actions: ['secretsmanager:ListSecrets'], resources: ['*'] }));
    scanExpiry.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ScanManagedSecrets',
        actions: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue', 'secretsmanager:RotateSecret'],
        resources: managedSecretArns,
      }),
    );
    for (const statement of [...adminTokenStatements(adminSecretArns), ...hostCommands]) scanExpiry.addToRolePolicy(statement);
    this.ledger.table.grantReadWriteData(scanExpiry);

    this.acknowledgeFindings(config.runners);

    new CfnOutput(this, 'LedgerTableName', { description: 'DynamoDB table of rotation state', value: this.ledger.table.tableName });
    new CfnOutput(this, 'HostDocumentName', { description: 'SSM Command document that updates config.toml on runner hosts', value: this.hostDocument.documentName });
  }

  /**
   * addRotationSchedule lets `secretsmanager.amazonaws.com` invoke the rotation hook with no condition. AWS
   * recommends `aws:SourceAccount` there against the confused deputy, and not `aws:SourceArn`, so one function
   * can rotate many secrets (Secrets Manager User Guide, "Permissions for rotation":
   * docs.aws.amazon.com/secretsmanager/latest/userguide/rotating-secrets-required-permissions-function.html).
   */
  private limitRotationInvokeToThisAccount(): void {
    const grants = this.functions.rotateSecret.node.children.filter(
      (child): child is lambda.CfnPermission => child instanceof lambda.CfnPermission && this.resolve(child.principal) === 'secretsmanager.amazonaws.com',
    );
    for (const grant of grants) grant.sourceAccount = this.account;
  }

  /** cdk-nag AwsSolutions findings this design accepts, each on the one construct it concerns, with the reason. */
  private acknowledgeFindings(runners: AwsManagedRunner[]): void {
    const { rotateSecret, scanExpiry } = this.functions;
    const ack = (scope: IConstruct, id: string, reason: string) => Validations.of(scope).acknowledge({ id, reason });
    for (const fn of [rotateSecret, scanExpiry]) {
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
          ? 'Only actions that take no resource ARN: ssm:ListCommands, ssm:ListCommandInvocations, ssm:GetCommandInvocation (a command id exists only once SendCommand returns it), xray:PutTraceSegments/PutTelemetryRecords (active tracing), and secretsmanager:GetRandomPassword (added by aws-cdk-lib RotationSchedule).'
          : 'Only actions that take no resource ARN: secretsmanager:ListSecrets (the scanner lists by the managed-secret tag), ssm:ListCommands, ssm:ListCommandInvocations, ssm:GetCommandInvocation, and xray:PutTraceSegments/PutTelemetryRecords (active tracing).',
      );
      if (runners.some((r) => r.hosts.kind === 'ec2-tag')) {
        ack(
          role,
          `AwsSolutions-IAM5[Resource::${nagResource(this, this.formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' }))}]`,
          'SendCommand to runners whose hosts are chosen by EC2 tag: any instance, but only where the ssm:resourceTag/<key> condition matches that runner\'s tag (the instances are found by SSM at send time).',
        );
      }
    }
  }
}

/** GetSecretValue on the admin access token secrets (by name, or ARN as given): the only way back from an expired token. */
function adminTokenStatements(arns: string[]): iam.PolicyStatement[] {
  return arns.length === 0 ? [] : [new iam.PolicyStatement({ sid: 'ReadAdminTokens', actions: ['secretsmanager:GetSecretValue'], resources: arns })];
}

/**
 * A secret named in adminTokenSecrets: an ARN is used as given; a name becomes `…:secret:<name>-??????`,
 * the pattern Secrets Manager documents for a secret known by name ("??????" = the six random characters
 * it appends; `*` would also match longer names): docs.aws.amazon.com/secretsmanager/latest/userguide/permissions_grant-limited-resources.html
 */
function adminSecretArn(stack: Stack, nameOrArn: string): string {
  if (nameOrArn.startsWith('arn:')) return nameOrArn;
  return stack.formatArn({ service: 'secretsmanager', resource: 'secret', resourceName: `${nameOrArn}-??????`, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
}

/**
 * SendCommand needs the permission on the document and on every target instance. Tag targets: any EC2
 * instance carrying the runner's tag, with the service condition key `ssm:resourceTag/<key>` that the
 * Systems Manager User Guide uses for Run Command on `arn:aws:ec2:*:*:instance/*` ("Restricting Run Command
 * access based on tags", docs.aws.amazon.com/systems-manager/latest/userguide/run-command-setting-up.html;
 * the global `aws:ResourceTag` would also need aws:ViaAWSService there). Id targets: exactly the listed
 * instances (`mi-…` hybrid nodes are `ssm:managed-instance`). Reading results takes no resource ARN.
 */
function hostCommandStatements(stack: Stack, runners: AwsManagedRunner[], documentArn: string): iam.PolicyStatement[] {
  const statements = [new iam.PolicyStatement({ sid: 'SendHostUpdateDocument', actions: ['ssm:SendCommand'], resources: [documentArn] })];
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
        conditions: { StringEquals: { [`ssm:resourceTag/${key}`]: [...values] } },
      }),
    );
  }
  if (instanceArns.size > 0) statements.push(new iam.PolicyStatement({ sid: 'SendToListedHosts', actions: ['ssm:SendCommand'], resources: [...instanceArns] }));
  statements.push(
    new iam.PolicyStatement({
      sid: 'ReadCommandResults',
      actions: ['ssm:GetCommandInvocation', 'ssm:ListCommandInvocations', 'ssm:ListCommands'],
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
