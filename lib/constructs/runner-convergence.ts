import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import type { AwsFleetConfig, AwsManagedRunner } from '../../src/config/aws-fleet-config.ts';

export interface RunnerConvergenceProps {
  runner: AwsManagedRunner;
  /** The ARN of the runner's token secret. */
  secretArn: string;
  /** The convergence document's name (HostUpdateDocument with buildHostConvergeDocument). */
  documentName: string;
  everyHours: number;
  ssm: AwsFleetConfig['ssm'];
  /** Starts each association's name: the root stack's name (a nested stack's own name is only known at deploy). */
  namePrefix: string;
}

/**
 * SSM's limit on the values of one target (API reference, Target: "Values … Maximum number of 50 items"):
 * a runner listed by more instance ids gets one association per 50.
 */
const TARGET_VALUES_MAX = 50;

/**
 * State Manager associations that keep a runner's hosts on its secret's AWSCURRENT token: the convergence
 * document on the runner's targets (its tag, or its instance ids), on a `rate(N hours)` cadence. State
 * Manager also runs an association when it is created and on each instance that joins its targets
 * ("Understanding when associations are applied to resources", Systems Manager User Guide; CreateAssociation
 * ApplyOnlyAtCronInterval: "by default … runs it immediately after it is created and then according to the
 * schedule you specified and when target changes are detected"), so a new host of the runner gets the
 * current token within minutes of its SSM agent registering, with no boot script.
 *
 * The document reads the runner id, url and expiry from the AWSCURRENT value, so the parameters name only
 * the secret and the host side: a replace rotation (new runner id) changes nothing here. It runs under the
 * instance's own role (the HostReadPolicy), the same reads as a rotation's delivery.
 */
export class RunnerConvergence extends Construct {
  readonly associations: ssm.CfnAssociation[];

  constructor(scope: Construct, id: string, props: RunnerConvergenceProps) {
    super(scope, id);
    const { runner } = props;
    const hosts = runner.hosts;
    if (hosts.kind === 'config-files') throw new Error(`runner ${runner.name}: config-file hosts belong to the local engine`);
    const targetSets: ssm.CfnAssociation.TargetProperty[][] =
      hosts.kind === 'ec2-tag'
        ? [[{ key: `tag:${hosts.tagKey}`, values: [hosts.tagValue] }]]
        : chunks(hosts.instanceIds, TARGET_VALUES_MAX).map((ids) => [{ key: 'InstanceIds', values: ids }]);
    this.associations = targetSets.map(
      (targets, index) =>
        new ssm.CfnAssociation(this, targetSets.length === 1 ? 'Association' : `Association${index + 1}`, {
          name: props.documentName,
          // The newest content the stack deployed, whatever the document's default version.
          documentVersion: '$LATEST',
          associationName: associationName(`${props.namePrefix}-converge-${runner.name}${targetSets.length === 1 ? '' : `-${index + 1}`}`),
          targets,
          parameters: {
            SecretArn: [props.secretArn],
            ConfigPath: [hosts.configPath],
            ReloadMode: [runner.reload],
            ExecutionTimeout: [String(props.ssm.executionTimeoutSeconds)],
          },
          scheduleExpression: props.everyHours === 1 ? 'rate(1 hour)' : `rate(${props.everyHours} hours)`,
          maxConcurrency: props.ssm.maxConcurrency,
          maxErrors: props.ssm.maxErrors,
          complianceSeverity: 'HIGH',
        }),
    );
  }
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** An association name as SSM takes it (`^[a-zA-Z0-9_\-.]{3,128}$`): other characters become `-`. */
function associationName(text: string): string {
  return text.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 128);
}
