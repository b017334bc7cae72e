import { SendMessageBatchCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';

/** SendMessageBatch takes at most 10 entries (Amazon SQS API reference, SendMessageBatch). */
const SQS_BATCH_ENTRIES = 10;
/** DelaySeconds: 0 … 900 (Amazon SQS API reference, SendMessage). */
const SQS_MAX_DELAY_SECONDS = 900;
/** Entries that failed with a server-side error (SenderFault false) are sent again this many times. */
const RESEND_ATTEMPTS = 3;

/** Some messages could not be queued: their entries' codes, never their bodies. */
export class ScanQueueError extends Error {
  constructor(
    readonly failed: number,
    readonly codes: string[],
  ) {
    super(`SQS did not take ${failed} scan message(s): ${[...new Set(codes)].join(', ')}`);
    this.name = 'ScanQueueError';
  }
}

/**
 * The scan's queue (the fan-out's SQS queue): message bodies are JSON the scan worker reads
 * (scan-fanout.ts). SendMessageBatch answers 200 even when some entries fail ("the result of each
 * message is reported individually", API reference): entries in `Failed` with `SenderFault: false` are
 * sent again, the rest (and what still fails) throw ScanQueueError.
 */
export class SqsScanQueue {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async sendAll(bodies: string[]): Promise<void> {
    for (let start = 0; start < bodies.length; start += SQS_BATCH_ENTRIES) {
      let entries = bodies.slice(start, start + SQS_BATCH_ENTRIES).map((body, i) => ({ Id: String(start + i), MessageBody: body }));
      for (let attempt = 1; entries.length > 0; attempt += 1) {
        const reply = await this.client.send(new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: entries }));
        const failed = reply.Failed ?? [];
        if (failed.length === 0) break;
        const retryable = failed.filter((f) => f.SenderFault !== true);
        if (retryable.length < failed.length || attempt >= RESEND_ATTEMPTS) throw new ScanQueueError(failed.length, failed.map((f) => f.Code ?? 'unknown'));
        const again = new Set(retryable.map((f) => f.Id));
        entries = entries.filter((e) => again.has(e.Id));
      }
    }
  }

  /** One message, visible after `delaySeconds` (0 … 900). */
  async send(body: string, delaySeconds = 0): Promise<void> {
    const delay = Math.min(SQS_MAX_DELAY_SECONDS, Math.max(0, Math.ceil(delaySeconds)));
    await this.client.send(new SendMessageCommand({ QueueUrl: this.queueUrl, MessageBody: body, DelaySeconds: delay }));
  }
}
