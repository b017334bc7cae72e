import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { InvalidInputError } from '../../core/errors.ts';
import type { Delivery } from '../../core/ports.ts';
import type { ManagedRunner } from '../../core/types.ts';

/**
 * The SSM Command document that puts a secret version's token into config.toml on every host of a
 * runner. It embeds host/update-runner-token.sh, its TOML walker host/toml-edit.awk and
 * host/run-update-runner-token.sh, written side by side into one private folder (the updater runs the
 * walker from its own folder), so a host needs only bash, coreutils, awk and the AWS CLI.
 *
 * Why it cannot be injected into:
 * - Every parameter has `interpolationType: ENV_VAR`: the agent (3.3.2746.0+) exports it as
 *   `SSM_<name>` (docs.aws.amazon.com/systems-manager/latest/userguide/sysman-doc-syntax.html). The same
 *   page's example still writes `echo {{Message}}` with ENV_VAR set, and the troubleshooting page's
 *   fallback `export SSM_x="{{x}}"` relies on it: `{{ }}` placeholders are STILL pasted into the text.
 *   So `runCommand` never contains `{{`; the scripts read only the environment (asserted below).
 * - Every parameter also has an `allowedPattern`, checked by SSM at SendCommand and here by
 *   hostUpdateCommandParameters.
 * - There is no token parameter, ever (SecureString cannot be referenced from a Command document
 *   either): the host fetches the secret version itself with its instance role.
 */

/** The names of the document parameters that describe one delivery to one runner. */
export type HostUpdateParameterName =
  | 'SecretArn'
  | 'VersionId'
  | 'PreviousVersionId'
  | 'RunnerId'
  | 'GitLabUrl'
  | 'ConfigPath'
  | 'ReloadMode'
  | 'ExpiresAt'
  | 'Mode'
  | 'FromRunnerId';

export interface HostUpdateParameter<Name extends string = HostUpdateParameterName> {
  name: Name;
  /** Checked by SSM when the command is sent (a Java-style regular expression; also valid JavaScript). */
  allowedPattern: string;
  description: string;
  /** null: required (SendCommand without it fails with InvalidParameters). */
  default: string | null;
}

const VERSION_ID = '[A-Za-z0-9][A-Za-z0-9-]{31,63}';

/** The ten delivery parameters, in the order the document lists them. None carries a secret. */
export const HOST_UPDATE_PARAMETERS: readonly HostUpdateParameter[] = [
  {
    name: 'SecretArn',
    allowedPattern: '^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:)?[A-Za-z0-9/_+=.@][A-Za-z0-9/_+=.@-]{0,511}$',
    description: "ARN (or name) of the runner's Secrets Manager secret. The host reads the version itself with its instance role.",
    default: null,
  },
  {
    name: 'VersionId',
    allowedPattern: `^${VERSION_ID}$`,
    description: 'The secret version to install.',
    default: null,
  },
  {
    name: 'PreviousVersionId',
    allowedPattern: `^(none|${VERSION_ID})$`,
    description: "The secret version the host holds now ('none' if unknown); picks the [[runners]] table when config.toml has no ids.",
    default: 'none',
  },
  {
    name: 'RunnerId',
    allowedPattern: '^[1-9][0-9]{0,12}$',
    description: 'The GitLab runner id.',
    default: null,
  },
  {
    name: 'GitLabUrl',
    allowedPattern: '^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$',
    description: 'The GitLab URL as written in config.toml (a trailing slash is ignored).',
    default: null,
  },
  {
    name: 'ConfigPath',
    allowedPattern: '^/[A-Za-z0-9._/-]{1,1024}$',
    description: "Absolute path of gitlab-runner's config.toml on the host.",
    default: '/etc/gitlab-runner/config.toml',
  },
  {
    name: 'ReloadMode',
    allowedPattern: '^(sighup|restart|none)$',
    description: 'How gitlab-runner picks up the change: sighup (no job interrupted), restart (aborts running jobs unless the unit stops with SIGQUIT) or none.',
    default: 'sighup',
  },
  {
    name: 'ExpiresAt',
    allowedPattern: '^(none|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z)$',
    description: "When the new credential expires, ISO 8601 UTC ('none' if GitLab sets no expiry); written to config.toml where it records the expiry.",
    default: 'none',
  },
  {
    name: 'Mode',
    allowedPattern: '^(update|add|remove)$',
    description: "update: install the secret version in RunnerId's [[runners]] table. add: copy FromRunnerId's table as RunnerId's (replace strategy). remove: remove RunnerId's table (no secret is read).",
    default: 'update',
  },
  {
    name: 'FromRunnerId',
    allowedPattern: '^(none|[1-9][0-9]{0,12})$',
    description: "Mode add: the runner whose [[runners]] table is copied; 'none' otherwise.",
    default: 'none',
  },
];

/**
 * The updater's execution timeout. Unlike the others it is never seen by the shell: the agent reads it
 * from the step's `timeoutSeconds` input (as AWS-RunShellScript does with its `executionTimeout`).
 * SsmFleet sends it beside hostUpdateCommandParameters.
 */
export const EXECUTION_TIMEOUT_PARAMETER: HostUpdateParameter<'ExecutionTimeout'> = {
  name: 'ExecutionTimeout',
  allowedPattern: '^[1-9][0-9]{1,4}$',
  description: 'Seconds the host may take to run the updater before SSM reports Execution Timed Out.',
  default: '120',
};

/** CreateDocument: "The content of the document must not exceed 64KB" (the runtime parameters count too). */
export const SSM_DOCUMENT_MAX_BYTES = 64 * 1024;

/** Ends each embedded file's quoted heredoc; readScript checks that no embedded file contains it. */
export const HEREDOC_DELIMITER = 'GITLAB_RUNNER_ROTATOR_END_OF_EMBEDDED_SCRIPT';

const STEP_NAME = 'updateRunnerToken';

/**
 * The document content (schema 2.2), built at synth time from the scripts in host/. Throws when a script
 * would break the embedding (contains the heredoc delimiter, `{{`, or CR line ends) or when the document
 * would exceed SSM's 64 KB.
 */
export function buildHostUpdateDocument(): Record<string, unknown> {
  return buildDocument({
    description:
      "Installs one version of a GitLab runner's authentication token (read by the host from Secrets Manager with its instance role) into gitlab-runner's config.toml and reloads gitlab-runner. Prints one line: status=updated|added|removed|already-current runner_id=… config=… system_id=… reload=….",
    parameters: HOST_UPDATE_PARAMETERS,
    mode: undefined,
  });
}

/** The parameters of the convergence document: which secret, and where and how on the host. */
export const HOST_CONVERGE_PARAMETER_NAMES = ['SecretArn', 'ConfigPath', 'ReloadMode'] as const satisfies readonly HostUpdateParameterName[];

/**
 * The convergence document: the same scripts in the wrapper's mode `converge`, which installs the secret's
 * AWSCURRENT version (runner id, url and expiry read from its value) unless a rotation is open. A State
 * Manager association runs it on each runner's hosts on a cadence and on every instance that joins the
 * runner's targets (RunnerConvergence in lib/), so a host that lost an update, was restored from an image or
 * is new gets the current token without a rotation. Its parameters name no version: only the secret.
 */
export function buildHostConvergeDocument(): Record<string, unknown> {
  return buildDocument({
    description:
      "Keeps a GitLab runner's authentication token on this host equal to the secret's AWSCURRENT version (read by the host with its instance role), unless a rotation is open. Prints one line: status=updated|already-current|kept-newer … or status=skipped reason=rotation-open|not-adopted ….",
    parameters: HOST_UPDATE_PARAMETERS.filter((p) => (HOST_CONVERGE_PARAMETER_NAMES as readonly string[]).includes(p.name)),
    mode: 'converge',
  });
}

function buildDocument(spec: { description: string; parameters: readonly HostUpdateParameter[]; mode: 'converge' | undefined }): Record<string, unknown> {
  // Resolved here, not at module load: the Lambda bundle imports this module for
  // hostUpdateCommandParameters and has no host/ folder (nor, as CommonJS, an import.meta.url).
  const updater = readScript(new URL('../../../host/update-runner-token.sh', import.meta.url));
  const walker = readScript(new URL('../../../host/toml-edit.awk', import.meta.url));
  const wrapper = readScript(new URL('../../../host/run-update-runner-token.sh', import.meta.url));

  const runCommand = [
    // The agent writes these lines to _script.sh and runs it with `sh -c` (amazon-ssm-agent
    // agent/plugins/runscript/runshellscript.go): POSIX sh only up to the `bash` line.
    ...filesInPrivateFolder('ROTATOR_DIR', 'gitlab-runner-rotator', [
      ['update-runner-token.sh', updater],
      // Beside the updater, which runs it with `awk -f` from its own folder (find_walker).
      ['toml-edit.awk', walker],
      ['run-update-runner-token.sh', wrapper],
    ]),
    // The mode is the document's, written here as a constant (this document has no Mode parameter).
    ...(spec.mode === undefined ? [] : [`SSM_Mode=${spec.mode}`, 'export SSM_Mode']),
    // The wrapper reads SSM_* from the environment; its output and exit code are the command's.
    'ROTATOR_RC=0',
    'bash "$ROTATOR_DIR/run-update-runner-token.sh" "$ROTATOR_DIR/update-runner-token.sh" || ROTATOR_RC=$?',
    'exit "$ROTATOR_RC"',
  ];
  if (runCommand.some((line) => line.includes('{{'))) {
    throw new Error('the host update document must not contain "{{" in runCommand: SSM would paste parameter text there');
  }

  const parameters = Object.fromEntries(
    [...spec.parameters, EXECUTION_TIMEOUT_PARAMETER].map((p) => [
      p.name,
      {
        type: 'String',
        description: p.description,
        allowedPattern: p.allowedPattern,
        interpolationType: 'ENV_VAR',
        ...(p.default === null ? {} : { default: p.default }),
      },
    ]),
  );

  const document: Record<string, unknown> = {
    schemaVersion: '2.2',
    description: spec.description,
    parameters,
    mainSteps: [
      {
        action: 'aws:runShellScript',
        name: STEP_NAME,
        precondition: { StringEquals: ['platformType', 'Linux'] },
        inputs: {
          // A plugin input, never shell text: the agent parses it as the execution timeout.
          timeoutSeconds: `{{ ${EXECUTION_TIMEOUT_PARAMETER.name} }}`,
          runCommand,
        },
      },
    ],
  };
  const bytes = Buffer.byteLength(JSON.stringify(document), 'utf8');
  if (bytes >= SSM_DOCUMENT_MAX_BYTES) {
    throw new Error(`the host update document is ${bytes} bytes; SSM accepts less than ${SSM_DOCUMENT_MAX_BYTES}`);
  }
  return document;
}

/** The lines of a script to embed, checked for everything that would break its embedding in a quoted heredoc. */
/**
 * The POSIX sh lines that open a private temporary folder (its path in `$folderVar`, removed on exit and
 * on HUP/INT/TERM) and write each embedded file into it: the start of every document that carries scripts.
 */
export function filesInPrivateFolder(folderVar: string, prefix: string, files: Array<[name: string, lines: string[]]>): string[] {
  return [
    'set -eu',
    'umask 077',
    `${folderVar}=$(mktemp -d "\${TMPDIR:-/tmp}/${prefix}.XXXXXXXXXX")`,
    `trap 'rm -rf -- "$${folderVar}"' EXIT`,
    `trap 'exit 129' HUP`,
    `trap 'exit 130' INT`,
    `trap 'exit 143' TERM`,
    ...files.flatMap(([name, lines]) => [`cat >"$${folderVar}/${name}" <<'${HEREDOC_DELIMITER}'`, ...lines, HEREDOC_DELIMITER]),
  ];
}

export function readScript(url: URL): string[] {
  const path = fileURLToPath(url);
  const text = readFileSync(path, 'utf8');
  if (text.includes(HEREDOC_DELIMITER)) throw new Error(`${path} contains the heredoc delimiter ${HEREDOC_DELIMITER}`);
  if (text.includes('{{')) throw new Error(`${path} contains "{{", which SSM would treat as a parameter placeholder`);
  if (text.includes('\r')) throw new Error(`${path} has CR characters (CRLF line ends?)`);
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  // Comment lines and indentation are for the people reading host/: the embedded copy drops them (the
  // shebang stays), which keeps the documents inside SSM's 64 KB. A line starting with # is a comment in
  // bash and in awk, and leading blanks mean nothing to either, save inside a string that spans lines:
  // the files have none (no heredoc, no multi-line quoted text; host/toml-edit.awk's strings and
  // regular expressions are one line each). CI runs test/host against the embedded copies too
  // (`npm run test:embedded-updater`), to hold that.
  return lines.filter((line, index) => index === 0 || !/^\s*#/.test(line)).map((line) => line.replace(/^[ \t]+/, ''));
}

/**
 * SendCommand's `Parameters` for one delivery to one runner: the only place that maps a delivery to
 * document parameters. Absent values are 'none'. Every value is checked against its allowedPattern, so
 * a bad config fails here with the parameter's name instead of as an SSM InvalidParameters. No token.
 */
export function hostUpdateCommandParameters(delivery: Delivery, runner: ManagedRunner): Record<string, string[]> {
  return commandParameters(runner, {
    SecretArn: delivery.secretId,
    VersionId: delivery.versionId,
    PreviousVersionId: delivery.previousVersionId ?? 'none',
    RunnerId: String(runner.runnerId),
    ExpiresAt: delivery.tokenExpiresAt === null ? 'none' : isoUtc(delivery.tokenExpiresAt),
    Mode: delivery.addFromRunnerId === undefined ? 'update' : 'add',
    FromRunnerId: delivery.addFromRunnerId === undefined ? 'none' : String(delivery.addFromRunnerId),
  });
}

/** SendCommand's `Parameters` to remove one runner's table (`Mode` remove): the host reads no secret. */
export function hostRemoveCommandParameters(removal: { secretId: string; versionId: string }, runner: ManagedRunner): Record<string, string[]> {
  return commandParameters(runner, {
    SecretArn: removal.secretId,
    VersionId: removal.versionId,
    PreviousVersionId: 'none',
    RunnerId: String(runner.runnerId),
    ExpiresAt: 'none',
    Mode: 'remove',
    FromRunnerId: 'none',
  });
}

function commandParameters(runner: ManagedRunner, delivery: Omit<Record<HostUpdateParameterName, string>, 'GitLabUrl' | 'ConfigPath' | 'ReloadMode'>): Record<string, string[]> {
  if (runner.hosts.kind === 'config-files') {
    throw new InvalidInputError(`runner ${runner.name}`, 'config-file hosts belong to the local engine; SSM pushes to ec2-tag or ec2-instances hosts');
  }
  const values: Record<HostUpdateParameterName, string> = { ...delivery, GitLabUrl: runner.gitlabUrl, ConfigPath: runner.hosts.configPath, ReloadMode: runner.reload };
  const parameters: Record<string, string[]> = {};
  for (const p of HOST_UPDATE_PARAMETERS) {
    const value = values[p.name];
    if (!new RegExp(p.allowedPattern).test(value)) {
      throw new InvalidInputError(`runner ${runner.name}: SSM parameter ${p.name}`, `does not match ${p.allowedPattern}`);
    }
    parameters[p.name] = [value];
  }
  return parameters;
}

/** GitLab writes expiries with an offset or milliseconds; the document wants UTC with a Z. */
function isoUtc(text: string): string {
  const time = Date.parse(text);
  return Number.isNaN(time) ? text : new Date(time).toISOString();
}
