import { GetCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { RateBudgetDeferredError } from '../../core/errors.ts';
import { isConditionFailed } from './dynamodb-ledger.ts';
import type { PacingClock, SharedRateBudget } from '../gitlab/gitlab-pacing.ts';

/** The ledger table's item of one GitLab url's shared budget (dynamodb-ledger.ts lists the key layout). */
export const RATE_BUDGET_PARTITION_PREFIX = 'RATE#';
export const RATE_BUDGET_SORT_KEY = 'BUDGET';

const WINDOW_MS = 60_000;
/** A url's item outlives its last window by an hour (TTL), then DynamoDB deletes it. */
const ITEM_TTL_SECONDS = 3_600;
/** Of GitLab's own figure (RateLimit-Limit on a 429), the share the workers use: the rest is for GitLab's other clients. */
const LEARNED_SHARE = 0.9;
/** Requests claimed at once when no limit is known: the claim only carries holds then. */
const UNLIMITED_CLAIM = 20;
const MAX_CLAIM = 50;

export interface DynamoDbRateBudgetOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  clock: PacingClock;
  /** The fleet's budget per GitLab url (fleet file `gitlabRequestsPerMinute`); undefined: only what a 429 teaches. */
  requestsPerMinute: number | undefined;
  /** How many processes draw from the budget at most (the scan's workers): sets the size of a claim. */
  workers: number;
  /** No wait may end after this (epoch ms; the invocation's deadline less what a runner needs after its GitLab call): RateBudgetDeferredError instead. */
  deadline: () => number | undefined;
}

interface BudgetItem {
  window?: number;
  used?: number;
  holdUntil?: number;
  learned?: number;
}

/** What this process holds of one url's budget: requests claimed for one window, and what it last learned. */
interface LocalShare {
  window: number;
  left: number;
  learned: number | undefined;
  holdUntil: number;
  claiming: Promise<void> | undefined;
}

/**
 * One GitLab rate budget per url, shared by every scan worker of the fleet (and by overlapping scans), in
 * one DynamoDB item per url. GitLab counts requests in fixed windows (Rack::Attack; `RateLimit-Reset` is
 * the window's end), and so does the budget: per minute of the epoch, `used` counts the requests workers
 * claimed. A worker claims a block of requests at a time (an UpdateItem with a condition), so the item
 * sees one write per block, not per request:
 *
 * - **Claim** (`take`): `used + block ≤ limit` in the current window, and no hold → the block is this
 *   worker's until the window ends (what is left then is forgotten). A new window starts the count again.
 *   A full window waits for the next; a hold waits for its end; a wait that would end after the
 *   invocation's deadline throws RateBudgetDeferredError at once (nothing sent), so the runner goes to a
 *   later invocation instead of the Lambda timing out.
 * - **Limit**: the fleet's `gitlabRequestsPerMinute`, and, once any worker got a 429 that named GitLab's
 *   limit (`RateLimit-Limit`, "the request quota for the client each minute": GitLab docs, User and IP rate
 *   limits, Response headers), 90 % of that, whichever is lower. With neither, claims only carry holds.
 * - **Hold** (`rateLimited`): a 429 writes `holdUntil` (its Retry-After, as the pacer took it), so every
 *   worker waits it out, not only the one that hit it. GitLab sends no RateLimit-* before the 429
 *   (lib/gitlab/rack_attack.rb); the hold and the learned limit are how the other workers hear of it.
 *
 * Block size: the limit / (10 × workers), 1 … 50 (20 while no limit is known): at most a tenth of a
 * window's budget sits unused in workers' hands. Writes: one UpdateItem per block, plus a GetItem and
 * one more UpdateItem when a claim is refused (a new window, a full one, a hold); a few hundred for a
 * scan of 10,000 runners.
 */
export class DynamoDbRateBudget implements SharedRateBudget {
  private readonly shares = new Map<string, LocalShare>();

  constructor(private readonly options: DynamoDbRateBudgetOptions) {
    const { requestsPerMinute, workers } = options;
    if (requestsPerMinute !== undefined && !(Number.isInteger(requestsPerMinute) && requestsPerMinute >= 1)) throw new RangeError('requestsPerMinute must be an integer ≥ 1');
    if (!(Number.isInteger(workers) && workers >= 1)) throw new RangeError('workers must be an integer ≥ 1');
  }

  async take(baseUrl: string): Promise<void> {
    const share = this.shareOf(baseUrl);
    for (;;) {
      const now = this.options.clock.now();
      if (share.holdUntil > now) await this.wait(baseUrl, share.holdUntil);
      else if (share.window === windowOf(now) && share.left > 0) {
        share.left -= 1;
        return;
      } else {
        // One claim at a time per url in this process; the others wait for its block.
        share.claiming ??= this.claim(baseUrl, share).finally(() => (share.claiming = undefined));
        await share.claiming;
      }
    }
  }

  rateLimited(baseUrl: string, holdMs: number, limitPerMinute: number | undefined): void {
    const share = this.shareOf(baseUrl);
    const until = this.options.clock.now() + holdMs;
    share.left = 0;
    share.holdUntil = Math.max(share.holdUntil, until);
    const learned = limitPerMinute !== undefined && limitPerMinute > 0 ? limitPerMinute : undefined;
    if (learned !== undefined) share.learned = learned;
    const names: Record<string, string> = { '#holdUntil': 'holdUntil', '#expiresAt': 'expiresAt' };
    const values: Record<string, number> = { ':until': until, ':ttl': ttlOf(until) };
    let set = 'SET #holdUntil = :until, #expiresAt = :ttl';
    if (learned !== undefined) {
      set += ', #learned = :learned';
      names['#learned'] = 'learned';
      values[':learned'] = learned;
    }
    // Best effort: this worker's own pacer holds back either way; the others hear of it at their next claim.
    void this.recordHold(baseUrl, set, names, values).catch(() => undefined);
  }

  private async recordHold(baseUrl: string, set: string, names: Record<string, string>, values: Record<string, number>): Promise<void> {
    await this.options.client.send(
      new UpdateCommand({
        TableName: this.options.tableName,
        Key: keyOf(baseUrl),
        UpdateExpression: set,
        ConditionExpression: 'attribute_not_exists(#holdUntil) OR #holdUntil < :until',
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      }),
    );
  }

  /** Claims a block for the current window into `share`, or waits for the moment one may be claimed. */
  private async claim(baseUrl: string, share: LocalShare): Promise<void> {
    const now = this.options.clock.now();
    const window = windowOf(now);
    const limit = this.limitOf(share);
    const block = blockSize(limit, this.options.workers);
    try {
      const item = await this.update(baseUrl, {
        UpdateExpression: 'SET #used = #used + :block',
        ConditionExpression: `#window = :window AND #holdUntil <= :now${limit === undefined ? '' : ' AND #used <= :cap'}`,
        ExpressionAttributeNames: { '#used': 'used', '#window': 'window', '#holdUntil': 'holdUntil' },
        ExpressionAttributeValues: { ':block': block, ':window': window, ':now': now, ...(limit === undefined ? {} : { ':cap': limit - block }) },
      });
      this.granted(share, window, block, item);
      return;
    } catch (error) {
      if (!isConditionFailed(error)) throw error;
    }
    const item = await this.read(baseUrl);
    if (item?.learned !== undefined) share.learned = item.learned;
    if (item?.holdUntil !== undefined && item.holdUntil > now) {
      share.holdUntil = Math.max(share.holdUntil, item.holdUntil);
      return;
    }
    if (item?.window !== undefined && item.window > window) return this.wait(baseUrl, item.window); // this clock is behind another worker's
    if (item?.window === window) return this.wait(baseUrl, window + WINDOW_MS); // the window is spent
    // No window yet, or an old one: open this one (another worker may do it first: then try again).
    try {
      const opened = await this.update(baseUrl, {
        UpdateExpression: 'SET #window = :window, #used = :block, #holdUntil = if_not_exists(#holdUntil, :zero), #expiresAt = :ttl',
        ConditionExpression: '(attribute_not_exists(#window) OR #window < :window) AND (attribute_not_exists(#holdUntil) OR #holdUntil <= :now)',
        ExpressionAttributeNames: { '#used': 'used', '#window': 'window', '#holdUntil': 'holdUntil', '#expiresAt': 'expiresAt' },
        ExpressionAttributeValues: { ':block': block, ':window': window, ':now': now, ':zero': 0, ':ttl': ttlOf(window + WINDOW_MS) },
      });
      this.granted(share, window, block, opened);
    } catch (error) {
      if (!isConditionFailed(error)) throw error;
    }
  }

  private granted(share: LocalShare, window: number, block: number, item: BudgetItem): void {
    share.window = window;
    share.left = block;
    if (item.learned !== undefined) share.learned = item.learned;
  }

  /** The requests per minute the workers may use: the fleet's budget and 90 % of what GitLab said, the lower. */
  private limitOf(share: LocalShare): number | undefined {
    const learned = share.learned === undefined ? undefined : Math.max(1, Math.floor(share.learned * LEARNED_SHARE));
    const configured = this.options.requestsPerMinute;
    if (learned === undefined) return configured;
    return configured === undefined ? learned : Math.min(configured, learned);
  }

  checkWait(baseUrl: string, untilMs: number): void {
    const deadline = this.options.deadline();
    if (deadline !== undefined && untilMs > deadline) throw new RateBudgetDeferredError(baseUrl, untilMs);
  }

  private async wait(baseUrl: string, untilMs: number): Promise<void> {
    this.checkWait(baseUrl, untilMs);
    await this.options.clock.sleep(Math.max(0, untilMs - this.options.clock.now()));
  }

  private async update(baseUrl: string, expression: Pick<ConstructorParameters<typeof UpdateCommand>[0], 'UpdateExpression' | 'ConditionExpression' | 'ExpressionAttributeNames' | 'ExpressionAttributeValues'>): Promise<BudgetItem> {
    const reply = await this.options.client.send(new UpdateCommand({ TableName: this.options.tableName, Key: keyOf(baseUrl), ReturnValues: 'ALL_NEW', ...expression }));
    return (reply.Attributes ?? {}) as BudgetItem;
  }

  private async read(baseUrl: string): Promise<BudgetItem | undefined> {
    const reply = await this.options.client.send(new GetCommand({ TableName: this.options.tableName, Key: keyOf(baseUrl), ConsistentRead: true }));
    return reply.Item as BudgetItem | undefined;
  }

  private shareOf(baseUrl: string): LocalShare {
    let share = this.shares.get(baseUrl);
    if (!share) {
      share = { window: -1, left: 0, learned: undefined, holdUntil: 0, claiming: undefined };
      this.shares.set(baseUrl, share);
    }
    return share;
  }
}

function keyOf(baseUrl: string): { pk: string; sk: string } {
  return { pk: `${RATE_BUDGET_PARTITION_PREFIX}${baseUrl}`, sk: RATE_BUDGET_SORT_KEY };
}

/**
 * The start of the epoch minute `nowMs` falls in. GitLab's throttles count in windows aligned the same way:
 * Rack::Attack keys each count by `(epoch_time / period).to_i` (rack/rack-attack lib/rack/attack/cache.rb,
 * `key_and_expiry`). With GitLab's self-managed default period of an hour, a per-minute budget keeps the
 * hour's total at 60 times it.
 */
function windowOf(nowMs: number): number {
  return Math.floor(nowMs / WINDOW_MS) * WINDOW_MS;
}

function ttlOf(untilMs: number): number {
  return Math.ceil(untilMs / 1000) + ITEM_TTL_SECONDS;
}

/** Requests claimed at once: a tenth of a window's budget split among the workers, 1 … 50. */
export function blockSize(limit: number | undefined, workers: number): number {
  if (limit === undefined) return UNLIMITED_CLAIM;
  return Math.min(MAX_CLAIM, limit, Math.max(1, Math.floor(limit / (10 * workers))));
}
