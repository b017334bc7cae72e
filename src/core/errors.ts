/**
 * The error hierarchy every part of the service speaks. Adapters translate vendor errors
 * (HTTP statuses, SDK exceptions, exit codes) into these and rethrow anything they do not know.
 * No message ever carries a token: callers pass runner ids, urls and statuses, never values.
 */
import type { HostResult } from './types.ts';
export class RotatorError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Base for every failed GitLab call. `status` is the HTTP status, absent when no reply came. */
export class GitLabError extends RotatorError {
  readonly status: number | undefined;
  readonly endpoint: string;
  constructor(message: string, details: { status?: number; endpoint: string; cause?: unknown }) {
    super(message, { cause: details.cause });
    this.status = details.status;
    this.endpoint = details.endpoint;
  }
}

/** 401: the access token (PRIVATE-TOKEN) is missing, wrong or expired. */
export class GitLabUnauthorizedError extends GitLabError {}

/** 403: GitLab rejects the runner token (expired, revoked, or already reset) or the access token lacks a scope. */
export class GitLabForbiddenError extends GitLabError {}

/** 404: no such runner, or the access token cannot see it. */
export class GitLabNotFoundError extends GitLabError {}

/** 410: legacy registration tokens are disabled ("runner registration disallowed"). */
export class GitLabGoneError extends GitLabError {}

/** 429 after the adapter's own bounded waits; `retryAfterSeconds` is what GitLab last asked for. */
export class GitLabRateLimitedError extends GitLabError {
  readonly retryAfterSeconds: number | undefined;
  constructor(message: string, details: { status?: number; endpoint: string; retryAfterSeconds?: number; cause?: unknown }) {
    super(message, details);
    this.retryAfterSeconds = details.retryAfterSeconds;
  }
}

/** 5xx after bounded retries. A reset may or may not have been applied. */
export class GitLabServerError extends GitLabError {}

/**
 * No HTTP reply at all: DNS, refused connection, TLS, timeout. Where the request may have reached GitLab
 * (a timeout after it was sent, a connection reset), a reset may or may not have been applied.
 */
export class GitLabUnreachableError extends GitLabError {}

/**
 * No HTTP reply because the request never reached GitLab: the name did not resolve (ENOTFOUND, EAI_AGAIN),
 * the connection was refused or the network unreachable, or the server's certificate was not trusted (the
 * TLS handshake fails before a byte of the request is sent), on every attempt. Nothing was applied: a reset
 * was not made, and the runner keeps its token.
 */
export class GitLabRequestNotSentError extends GitLabUnreachableError {}

/** Any other 4xx (400 bad request and the like). */
export class GitLabRequestError extends GitLabError {}

/** Why a rotation stopped, where an alert of its own follows (see core/alert-rules.ts). */
export type RotationFailureCode =
  | 'current-token-rejected-no-admin-token'
  | 'pending-token-rejected'
  | 'store-failed'
  /** `replace` needs an access token that may create and delete runners, and none is configured. */
  | 'replace-needs-access-token'
  /** `replace`: some host did not take the new runner, or its manager never contacted GitLab. */
  | 'replacement-unconfirmed'
  /** `replace`: the new runner is current everywhere but the old runner could not be deleted. */
  | 'replaced-runner-not-deleted';

/** A rotation step cannot go on. `secretId` and `step` say where; `fix` says what an operator does next. */
export class RotationError extends RotatorError {
  readonly secretId: string;
  readonly step: string;
  readonly fix: string | undefined;
  readonly code: RotationFailureCode | undefined;
  /** The hosts the failure is about, where it is about hosts (`replacement-unconfirmed`). */
  readonly hosts: HostResult[];
  constructor(
    message: string,
    details: { secretId: string; step: string; fix?: string; code?: RotationFailureCode; cause?: unknown; hosts?: HostResult[] },
  ) {
    super(message, { cause: details.cause });
    this.secretId = details.secretId;
    this.step = details.step;
    this.fix = details.fix;
    this.code = details.code;
    this.hosts = details.hosts ?? [];
  }
}

/** The Secrets Manager rotation template's guards: rotation disabled, unknown version, wrong stage. */
export class RotationGuardError extends RotationError {}

/** Another rotation of the same runner holds the lock or has a version in AWSPENDING. */
export class RotationInProgressError extends RotationError {}

/** A secret or one of its versions does not exist. */
export class SecretNotFoundError extends RotatorError {
  readonly secretId: string;
  constructor(message: string, details: { secretId: string; cause?: unknown }) {
    super(message, { cause: details.cause });
    this.secretId = details.secretId;
  }
}

/** One thing wrong with an input, and where: `fleet.json: runners[0].runnerId` and `missing`. */
export interface InputProblem {
  where: string;
  problem: string;
}

/**
 * Input that does not have the expected shape: a config file, an event, a secret value. `where` names the
 * place. A file checked in full reports every problem it found in one error: `problems` lists them, the
 * message has one line `where: problem` for each, and `where` is the first one's.
 */
export class InvalidInputError extends RotatorError {
  readonly where: string;
  readonly problems: InputProblem[];
  constructor(where: string, problem: string, options?: { cause?: unknown; more?: InputProblem[] }) {
    const problems = [{ where, problem }, ...(options?.more ?? [])];
    super(problems.map((p) => `${p.where}: ${p.problem}`).join('\n'), { cause: options?.cause });
    this.where = where;
    this.problems = problems;
  }

  /** Throws one error listing every problem; does nothing when there is none. */
  static throwIfAny(problems: InputProblem[]): void {
    const [first, ...more] = problems;
    if (first) throw new InvalidInputError(first.where, first.problem, { more });
  }
}

/**
 * The GitLab rate budget shared by the scan's workers (a fleet-wide budget per GitLab url) has no request
 * for `gitlabUrl` before this invocation's deadline: nothing was sent. The scan worker hands the runners
 * it could not reach to a later invocation rather than failing them.
 */
export class RateBudgetDeferredError extends RotatorError {
  readonly gitlabUrl: string;
  /** When the budget next has a request (epoch ms), as far as it is known. */
  readonly nextSlotAtMs: number;
  constructor(gitlabUrl: string, nextSlotAtMs: number) {
    super(`no request to GitLab at ${gitlabUrl} fits the shared rate budget before this invocation's deadline (next at ${new Date(nextSlotAtMs).toISOString()}): deferred, nothing sent`);
    this.gitlabUrl = gitlabUrl;
    this.nextSlotAtMs = nextSlotAtMs;
  }
}
