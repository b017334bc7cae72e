import { execFile } from 'node:child_process';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { GetCommandInvocationCommand, ListCommandInvocationsCommand, ListCommandsCommand, SendCommandCommand, SSMClient } from '@aws-sdk/client-ssm';
import type {
  CommandInvocation,
  GetCommandInvocationCommandInput,
  ListCommandInvocationsCommandInput,
  ListCommandsCommandInput,
  SendCommandCommandInput,
} from '@aws-sdk/client-ssm';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';
import { buildHostUpdateDocument } from '../../src/adapters/aws/host-update-document.ts';

/** A runner host as SSM sees it: an instance id, its EC2 tags, and a folder standing for its file system root. */
export interface FakeInstance {
  instanceId: string;
  tags: Record<string, string>;
  root: string;
}

/** The SSM calls throttleNext can fail. */
export type ThrottledApi = 'SendCommand' | 'ListCommands' | 'ListCommandInvocations';

interface FakeCommand {
  commandId: string;
  instanceIds: string[];
  invocations: Map<string, CommandInvocation>;
  runs: Array<Promise<void>>;
  /** Per instance: the whole stdout, as GetCommandInvocation's StandardOutputContent keeps it (24,000 characters). */
  stdout: Map<string, string>;
}

/** The agent's mark at the end of a plugin Output it cut (amazon-ssm-agent iohandler TruncateOutput). */
const OUTPUT_TRUNCATED = '\n---Output truncated---';
const PLUGIN_OUTPUT_MAX = 2500;
const STANDARD_OUTPUT_MAX = 24_000;

const $metadata = {};

/**
 * A stand-in `aws` CLI on the hosts' PATH: get-secret-value answers from files the fake writes for every
 * version of the secret the command was sent for (FAKE_AWS_SECRET_ID, the SecretArn parameter), as it
 * stood when the command was sent, and only for that secret. A version is asked for by --version-id or by
 * --version-stage (AWSCURRENT when neither: the real CLI's default); --query SecretString, VersionId or
 * [VersionId,SecretString] with --output text prints what the real CLI prints (a list's values on one line,
 * tab-separated). A missing version or label fails with the real message. Each call is written to
 * FAKE_AWS_CALLS (secret, version id, label; tab-separated): the reads the instance role must allow.
 */
export const FAKE_AWS_CLI = `#!/usr/bin/env bash
version=""
stage=""
secret=""
query=SecretString
while [ $# -gt 0 ]; do
  case "$1" in
    --version-id) version="$2"; shift ;;
    --version-stage) stage="$2"; shift ;;
    --secret-id) secret="$2"; shift ;;
    --query) query="$2"; shift ;;
  esac
  shift
done
if [ -z "$version" ] && [ -z "$stage" ]; then stage=AWSCURRENT; fi
printf '%s\t%s\t%s\n' "$secret" "$version" "$stage" >>"$FAKE_AWS_CALLS"
if [ "$secret" != "$FAKE_AWS_SECRET_ID" ]; then
  echo "An error occurred (AccessDeniedException) when calling the GetSecretValue operation: not the secret of this command" >&2
  exit 254
fi
if [ -n "$stage" ]; then
  if [ ! -f "$FAKE_AWS_SECRETS/stage-$stage" ]; then
    echo "An error occurred (ResourceNotFoundException) when calling the GetSecretValue operation: Secrets Manager can't find the specified secret value for staging label: $stage" >&2
    exit 254
  fi
  version=$(cat "$FAKE_AWS_SECRETS/stage-$stage")
fi
file="$FAKE_AWS_SECRETS/$version.json"
if [ -z "$version" ] || [ ! -f "$file" ]; then
  echo "An error occurred (ResourceNotFoundException) when calling the GetSecretValue operation: Secrets Manager can't find the specified secret value for VersionId: $version" >&2
  exit 254
fi
case "$query" in
  SecretString) cat "$file" ;;
  VersionId) printf '%s\n' "$version" ;;
  "[VersionId,SecretString]") printf '%s\t' "$version"; cat "$file" ;;
  *) echo "fake aws: unexpected --query $query" >&2; exit 252 ;;
esac
`;

/** What the hosts' stand-in CLI can read: each version's value and the labels on the versions. */
export interface HostSecretsView {
  valueOf(secretId: string, versionId: string): string | undefined;
  /** Labels by version id (DescribeSecret's VersionIdsToStages). */
  stages(secretId: string): Record<string, string[]>;
}

/** For fleets whose hosts read no secret (the doctor document). */
export const NO_SECRETS: HostSecretsView = { valueOf: () => undefined, stages: () => ({}) };

/**
 * SSM Run Command behind aws-sdk-client-mock, which really runs the host update document: for each target
 * instance it runs the document's runCommand with `sh` (as the SSM agent does), with the SSM_* parameters
 * in the environment and a stand-in `aws` CLI that reads the secret version the fake Secrets Manager
 * holds. The config path is taken inside the instance's root folder. Offline instances are Undeliverable.
 *
 * Other documents (the doctor document) run the same way once added with addDocument(name, document):
 * a SendCommand whose DocumentName is that name runs that document's runCommand. GetCommandInvocation answers with
 * the whole stdout (StandardOutputContent); with `markTruncation` a plugin Output longer than the
 * agent's 2,500 characters ends with the agent's "---Output truncated---" mark, as the real agent does.
 */
export class FakeSsm {
  readonly client = new SSMClient({ region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  readonly mock: AwsClientStub<SSMClient> = mockClient(this.client);
  readonly offline = new Set<string>();
  /** Instances that take a command and never finish it: their invocation stays InProgress. */
  readonly stalled = new Set<string>();
  readonly commands: FakeCommand[] = [];
  private readonly throttles: Array<{ api: ThrottledApi; remaining: number }> = [];
  private readonly script: string;
  /** Documents added with addDocument: their runCommand and step name, by document name. */
  private readonly scripts = new Map<string, { script: string; stepName: string }>();
  /** Per host run: the file its `aws` CLI writes its calls to. */
  private readonly callFiles: Array<{ instanceId: string; path: string }> = [];
  /** Cut plugin Output as the agent does, with its mark (off by default: the cut is silent). */
  markTruncation = false;

  constructor(
    readonly instances: FakeInstance[],
    private readonly workDir: string,
    private readonly secrets: HostSecretsView,
  ) {
    const document = buildHostUpdateDocument() as { mainSteps: Array<{ inputs: { runCommand: string[] } }> };
    this.script = document.mainSteps[0]?.inputs.runCommand.join('\n') ?? '';
    this.mock.on(SendCommandCommand).callsFake(async (input: SendCommandCommandInput) => {
      this.throttle('SendCommand');
      return this.send(input);
    });
    this.mock.on(ListCommandsCommand).callsFake(async (input: ListCommandsCommandInput) => {
      this.throttle('ListCommands');
      return this.listCommands(input);
    });
    this.mock.on(ListCommandInvocationsCommand).callsFake(async (input: ListCommandInvocationsCommandInput) => {
      this.throttle('ListCommandInvocations');
      return { $metadata, CommandInvocations: [...(this.command(input.CommandId).invocations.values())].map((i) => structuredClone(i)) };
    });
    this.mock.on(GetCommandInvocationCommand).callsFake((input: GetCommandInvocationCommandInput) => this.getInvocation(input));
  }

  /** Runs `document`'s runCommand for every SendCommand naming `name` (the host update document otherwise). */
  addDocument(name: string, document: Record<string, unknown>): void {
    const step = (document.mainSteps as Array<{ name: string; inputs: { runCommand: string[] } }> | undefined)?.[0];
    // The plugin of an invocation is named after the document's step, as SSM names it.
    this.scripts.set(name, { script: step?.inputs.runCommand.join('\n') ?? '', stepName: step?.name ?? 'runShellScript' });
  }

  /**
   * The next `count` calls of `api` fail with ThrottlingException ("Rate exceeded"), as SSM answers a burst;
   * they reach the adapter as they would after the SDK's own retries gave up. `disarm` ends it early.
   */
  throttleNext(api: ThrottledApi, count: number): { disarm(): void } {
    const armed = { api, remaining: count };
    this.throttles.push(armed);
    return { disarm: () => void (armed.remaining = 0) };
  }

  private throttle(api: ThrottledApi): void {
    const armed = this.throttles.find((t) => t.api === api && t.remaining > 0);
    if (!armed) return;
    armed.remaining -= 1;
    throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $fault: 'client', $metadata, $retryable: { throttling: true } });
  }

  /** Waits for every host run started so far. */
  async settle(): Promise<void> {
    await Promise.all(this.commands.flatMap((c) => c.runs));
  }

  /**
   * State Manager applying an association (what it does when the association is created, on its schedule
   * and for each instance that joins its targets): the association's document runs on every target, with
   * the association's parameters, under the instance's own role. Returns the command, as SendCommand would.
   */
  async applyAssociation(association: { documentName: string; targets: Array<{ Key: string; Values: string[] }>; parameters: Record<string, string[]> }) {
    const ids = association.targets.find((t) => t.Key === 'InstanceIds')?.Values;
    return this.send({
      DocumentName: association.documentName,
      ...(ids ? { InstanceIds: ids } : { Targets: association.targets }),
      Parameters: association.parameters,
    });
  }

  /** Every version of `secretId` as the hosts' CLI reads it: `<version>.json`, and `stage-<label>` holding the version id. */
  private async writeSecretVersions(dir: string, secretId: string | undefined, named: Array<string | undefined>): Promise<void> {
    if (!secretId) return;
    let stages: Record<string, string[]>;
    try {
      stages = this.secrets.stages(secretId);
    } catch {
      return; // no such secret: every read fails as the real one would
    }
    // The versions the command names, labelled or not (a version that lost its labels can still be read by id).
    for (const versionId of named) if (versionId && versionId !== 'none' && !(versionId in stages)) stages[versionId] = [];
    for (const [versionId, labels] of Object.entries(stages)) {
      const value = this.secrets.valueOf(secretId, versionId);
      if (value !== undefined) await writeFile(join(dir, `${versionId}.json`), value, { mode: 0o600 });
      for (const label of labels) await writeFile(join(dir, `stage-${label}`), versionId, { mode: 0o600 });
    }
  }

  /** Every `aws secretsmanager get-secret-value` the hosts ran, in each host's order (after settle()). */
  async hostSecretReads(): Promise<Array<{ instanceId: string; secretId: string; versionId: string; versionStage: string }>> {
    const reads = await Promise.all(
      this.callFiles.map(async ({ instanceId, path }) => {
        const text = await readFile(path, 'utf8').catch(() => '');
        return text
          .split('\n')
          .filter((line) => line !== '')
          .map((line) => {
            const [secretId = '', versionId = '', versionStage = ''] = line.split('\t');
            return { instanceId, secretId, versionId, versionStage };
          });
      }),
    );
    return reads.flat();
  }

  private async send(input: SendCommandCommandInput) {
    const tagTarget = input.Targets?.find((t) => t.Key?.startsWith('tag:'));
    const targets = tagTarget
      ? this.instances.filter((i) => i.tags[tagTarget.Key?.slice(4) ?? ''] === tagTarget.Values?.[0])
      : this.instances.filter((i) => input.InstanceIds?.includes(i.instanceId));
    const command: FakeCommand = { commandId: randomUUID(), instanceIds: targets.map((t) => t.instanceId), invocations: new Map(), runs: [], stdout: new Map() };
    const { script, stepName } = this.scripts.get(input.DocumentName ?? '') ?? { script: this.script, stepName: 'runShellScript' };
    this.commands.push(command);
    const binDir = join(this.workDir, 'fake-aws-bin');
    const secretsDir = join(this.workDir, `fake-aws-secrets-${command.commandId}`);
    await mkdir(binDir, { recursive: true });
    await writeFile(join(binDir, 'aws'), FAKE_AWS_CLI);
    await chmod(join(binDir, 'aws'), 0o755);
    await mkdir(secretsDir, { recursive: true, mode: 0o700 });
    const params = Object.fromEntries(Object.entries(input.Parameters ?? {}).map(([k, v]) => [k, v[0] ?? '']));
    await this.writeSecretVersions(secretsDir, params.SecretArn, [params.VersionId, params.PreviousVersionId]);
    for (const target of targets) {
      const invocation: CommandInvocation = { CommandId: command.commandId, InstanceId: target.instanceId, Status: 'InProgress', StatusDetails: 'InProgress' };
      command.invocations.set(target.instanceId, invocation);
      if (this.offline.has(target.instanceId)) {
        Object.assign(invocation, { Status: 'Failed', StatusDetails: 'Undeliverable' });
        continue;
      }
      if (this.stalled.has(target.instanceId)) continue;
      const callFile = join(secretsDir, `calls-${target.instanceId}`);
      this.callFiles.push({ instanceId: target.instanceId, path: callFile });
      const env: NodeJS.ProcessEnv = {
        PATH: `${binDir}:${process.env.PATH ?? ''}`,
        FAKE_AWS_CALLS: callFile,
        FAKE_AWS_SECRETS: secretsDir,
        FAKE_AWS_SECRET_ID: params.SecretArn ?? '',
        ...Object.fromEntries(Object.entries(params).map(([k, v]) => [`SSM_${k}`, k === 'ConfigPath' ? join(target.root, v) : v])),
      };
      command.runs.push(
        new Promise((resolve) => {
          execFile('sh', ['-c', script], { env, timeout: 30_000 }, (error, stdout, stderr) => {
            const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
            const output = stderr ? `${stdout}\n----------ERROR-------\n${stderr}` : stdout;
            const cut =
              this.markTruncation && output.length > PLUGIN_OUTPUT_MAX ? `${output.slice(0, PLUGIN_OUTPUT_MAX - OUTPUT_TRUNCATED.length)}${OUTPUT_TRUNCATED}` : output.slice(0, PLUGIN_OUTPUT_MAX);
            command.stdout.set(target.instanceId, stdout.slice(0, STANDARD_OUTPUT_MAX));
            Object.assign(invocation, {
              Status: code === 0 ? 'Success' : 'Failed',
              StatusDetails: code === 0 ? 'Success' : 'Failed',
              CommandPlugins: [{ Name: stepName, Status: code === 0 ? 'Success' : 'Failed', ResponseCode: code, Output: cut }],
            });
            resolve();
          });
        }),
      );
    }
    return { $metadata, Command: { CommandId: command.commandId, TargetCount: targets.length, Status: 'Pending' } };
  }

  private getInvocation(input: GetCommandInvocationCommandInput) {
    const command = this.command(input.CommandId);
    const invocation = command.invocations.get(input.InstanceId ?? '');
    if (!invocation) throw Object.assign(new Error(`fake SSM: no invocation of ${input.CommandId} on ${input.InstanceId}`), { name: 'InvocationDoesNotExist' });
    return {
      $metadata,
      CommandId: command.commandId,
      InstanceId: invocation.InstanceId,
      PluginName: input.PluginName,
      Status: invocation.Status,
      StatusDetails: invocation.StatusDetails,
      ResponseCode: invocation.CommandPlugins?.[0]?.ResponseCode ?? -1,
      StandardOutputContent: command.stdout.get(invocation.InstanceId ?? '') ?? '',
    };
  }

  private listCommands(input: ListCommandsCommandInput) {
    const command = this.command(input.CommandId);
    const invocations = [...command.invocations.values()];
    const completed = invocations.filter((i) => i.Status !== 'InProgress').length;
    const status = completed === invocations.length ? 'Success' : 'InProgress';
    return { $metadata, Commands: [{ CommandId: command.commandId, TargetCount: invocations.length, CompletedCount: completed, Status: status }] };
  }

  private command(commandId: string | undefined): FakeCommand {
    const command = this.commands.find((c) => c.commandId === commandId);
    if (!command) throw new Error(`fake SSM: no command ${commandId}`);
    return command;
  }
}
