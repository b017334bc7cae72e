/**
 * Turns what the GitLab transport throws into the GitLab* errors of src/core/errors.ts, with a message
 * that says what happened and where, and a `cause` that is a small plain object: never gitbeaker's
 * Request/Response, never a header, never a token.
 */
import { inspect } from 'node:util';
import {
  GitLabError,
  GitLabForbiddenError,
  GitLabGoneError,
  GitLabNotFoundError,
  GitLabRateLimitedError,
  GitLabRequestError,
  GitLabRequestNotSentError,
  GitLabServerError,
  GitLabUnauthorizedError,
  GitLabUnreachableError,
} from '../../core/errors.ts';
import { redactSecrets } from '../../core/redact.ts';
import { GitLabCallFailure } from './gitlab-transport.ts';

/** Which adapter call failed: it picks the words of the message. */
export type GitLabCall =
  | 'reset-with-token'
  | 'reset-by-id'
  | 'verify'
  | 'runner'
  | 'managers'
  | 'user'
  | 'create-runner'
  | 'delete-runner'
  | 'enable-runner'
  | 'application-settings';

export interface CallContext {
  /** The GitLab base url as shown to operators (no credentials, no trailing slash). */
  gitlabUrl: string;
  call: GitLabCall;
  runnerId?: number;
  /** Every secret value this call sent: scrubbed from anything kept. */
  secrets: readonly string[];
}

/** The sanitized `cause` of every GitLab* error the adapter throws. */
export interface GitLabFailureCause {
  status?: number;
  statusText?: string;
  /** GitLab's `message`/`error`, scrubbed. */
  description?: string;
  /** For no reply: what happened instead. */
  reason?: string;
  attempts: number;
  /** What an earlier attempt got when it may have been applied and its reply lost. */
  earlierUncertainAttempt?: string;
}

const TOKEN_LESS: ReadonlySet<GitLabCall> = new Set(['reset-with-token', 'verify']);
const RESETS: ReadonlySet<GitLabCall> = new Set(['reset-with-token', 'reset-by-id']);

function runnerWords(ctx: CallContext): string {
  return ctx.runnerId === undefined ? 'the runner' : `runner ${ctx.runnerId}`;
}

/** What a 4xx means for this call, in an operator's words. */
function meaning(status: number, ctx: CallContext): string {
  switch (status) {
    case 401:
      return TOKEN_LESS.has(ctx.call)
        ? 'GitLab asked for authentication on an endpoint that needs none (a proxy or an SSO gateway in front of it?)'
        : 'the access token (PRIVATE-TOKEN) is invalid, expired or revoked';
    case 403:
      if (ctx.call === 'application-settings') return "the access token is not an administrator's";
      if (TOKEN_LESS.has(ctx.call)) return 'the runner token is invalid, expired or already reset';
      if (ctx.call === 'create-runner') return 'the access token lacks the create_runner scope or the role to create this runner';
      return `the access token lacks the scope (manage_runner, api or read_api) or the role to manage ${runnerWords(ctx)}`;
    case 404:
      return ctx.runnerId === undefined
        ? 'not found (is the GitLab url right?)'
        : `${runnerWords(ctx)} does not exist, or the access token cannot see it`;
    case 410:
      return 'legacy runner registration is disabled ("runner registration disallowed", the default from GitLab 17.0): create the runner with POST /user/runners and an access token with create_runner';
    default:
      return 'GitLab rejected the request';
  }
}

/** The note for a 4xx that came after an attempt that may have been applied. */
function lostReplyNote(failure: GitLabCallFailure, ctx: CallContext): string {
  if (!failure.earlierUncertainAttempt) return '';
  const what = RESETS.has(ctx.call)
    ? `that attempt may have reset the token and its reply (the new token) was lost, so ${runnerWords(ctx)} may now hold a token nobody has: recover by resetting ${runnerWords(ctx)} by id with an access token`
    : 'that attempt may have been applied and its reply lost';
  return `. An earlier attempt got ${failure.earlierUncertainAttempt}: ${what}`;
}

function gitlabSaid(description: string | undefined): string {
  return description ? ` (GitLab said: ${JSON.stringify(description)})` : '';
}

function causeOf(failure: GitLabCallFailure, secrets: readonly string[]): GitLabFailureCause {
  const cause: GitLabFailureCause = { attempts: failure.attempts };
  if (failure.status !== undefined) cause.status = failure.status;
  if (failure.statusText) cause.statusText = failure.statusText;
  if (failure.description) cause.description = redactSecrets(failure.description, secrets);
  if (failure.reason) cause.reason = redactSecrets(failure.reason, secrets);
  if (failure.earlierUncertainAttempt) cause.earlierUncertainAttempt = redactSecrets(failure.earlierUncertainAttempt, secrets);
  return cause;
}

function attemptsWords(attempts: number): string {
  return attempts === 1 ? '1 attempt' : `${attempts} attempts`;
}

/** The GitLab* error for a transport failure. */
function fromFailure(failure: GitLabCallFailure, ctx: CallContext): GitLabError {
  const endpoint = `${failure.method} /${failure.path}`;
  const cause = causeOf(failure, ctx.secrets);
  const where = `GitLab at ${ctx.gitlabUrl}`;
  const details = { status: failure.status, endpoint, cause };
  const uncertain = RESETS.has(ctx.call) ? ': the reset may or may not have been applied' : '';

  if (failure.kind === 'no-reply' && failure.notSent && !failure.earlierUncertainAttempt) {
    // Every attempt failed before the request left (DNS, refused, TLS trust): nothing to be unsure of.
    const notApplied = RESETS.has(ctx.call) ? `: the request never reached GitLab, so the reset was not applied and ${runnerWords(ctx)} keeps its token` : ': the request never reached GitLab';
    return new GitLabRequestNotSentError(`${where} could not be reached for ${endpoint} after ${attemptsWords(failure.attempts)}: ${cause.reason ?? 'no connection'}${notApplied}`, details);
  }
  if (failure.kind === 'no-reply') {
    return new GitLabUnreachableError(`${where} did not answer ${endpoint} after ${attemptsWords(failure.attempts)}: ${cause.reason ?? 'no reply'}${uncertain}`, details);
  }
  if (failure.kind === 'bad-reply') {
    const applied = RESETS.has(ctx.call) ? `: the reset was applied but its reply is unusable, so the new token is lost; recover by resetting ${runnerWords(ctx)} by id with an access token` : '';
    return new GitLabServerError(`${where} answered ${failure.status ?? '?'} to ${endpoint} but ${cause.reason ?? 'the reply is unusable'}${applied}`, details);
  }

  const status = failure.status ?? 0;
  const said = gitlabSaid(cause.description);
  if (status === 429) {
    const asked = failure.retryAfterSeconds === undefined ? '' : `; it last asked to wait ${failure.retryAfterSeconds} s`;
    return new GitLabRateLimitedError(
      `${where} answered 429 (rate limited) to ${endpoint} on each of ${attemptsWords(failure.attempts)}${asked}`,
      { ...details, retryAfterSeconds: failure.retryAfterSeconds },
    );
  }
  if (status >= 500) {
    return new GitLabServerError(`${where} answered ${status} to ${endpoint} after ${attemptsWords(failure.attempts)}${said}${uncertain}`, details);
  }
  const message = `${where} answered ${status} to ${endpoint}: ${meaning(status, ctx)}${said}${lostReplyNote(failure, ctx)}`;
  switch (status) {
    case 401:
      return new GitLabUnauthorizedError(message, details);
    case 403:
      return new GitLabForbiddenError(message, details);
    case 404:
      return new GitLabNotFoundError(message, details);
    case 410:
      return new GitLabGoneError(message, details);
    default:
      return new GitLabRequestError(message, details);
  }
}

/** True when nothing reachable from `error` (message, stack, own fields, causes) holds a secret. */
function cannotCarrySecret(error: unknown, secrets: readonly string[]): boolean {
  let text: string;
  try {
    text = inspect(error, { depth: 10, showHidden: true });
  } catch {
    return false;
  }
  return redactSecrets(text, secrets) === text;
}

/**
 * The error to throw for anything a GitLab call threw. Transport failures become GitLab* errors.
 * Anything else (a bug, a bad header value rejected by Node (or the Headers class) before sending …) is rethrown unchanged
 * when neither it nor its causes mention a secret this call sent or anything shaped like a GitLab token
 * (Node, for one, quotes an invalid header value in its message, and V8 quotes the text in a JSON
 * SyntaxError); otherwise it is replaced by a GitLabRequestError that keeps only its scrubbed name
 * and message.
 */
export function translateGitLabError(error: unknown, ctx: CallContext, endpoint: string): unknown {
  if (error instanceof GitLabCallFailure) return fromFailure(error, ctx);
  if (error instanceof GitLabError) return error;
  if (cannotCarrySecret(error, ctx.secrets)) return error;
  const name = error instanceof Error ? error.name : typeof error;
  const message = redactSecrets(error instanceof Error ? error.message : String(error), ctx.secrets);
  return new GitLabRequestError(`The call ${endpoint} to GitLab at ${ctx.gitlabUrl} failed before any reply: ${name}: ${message}`, {
    endpoint,
    cause: { name, message },
  });
}
