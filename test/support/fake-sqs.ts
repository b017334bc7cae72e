import { randomUUID } from 'node:crypto';
import { SendMessageBatchCommand, SendMessageCommand, SQSClient, type SendMessageBatchCommandInput, type SendMessageCommandInput } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';

const $metadata = {};
/** Message size, and a whole SendMessageBatch's: 1 MiB since August 2025 (Amazon SQS Developer Guide, quotas). */
const MAX_PAYLOAD_BYTES = 1_048_576;

interface QueuedMessage {
  messageId: string;
  body: string;
  visibleAtMs: number;
  receiveCount: number;
}

/**
 * One standard SQS queue with a redrive policy, at the SDK boundary (aws-sdk-client-mock). SendMessage and
 * SendMessageBatch are checked as the API reference says: at most 10 entries with distinct ids, DelaySeconds
 * 0-900, payloads within 1 MiB; an invalid request throws the error's name, as the SDK would.
 * `deliver` plays the Lambda event source: one message per invocation (batch size 1), a message reported
 * in `batchItemFailures` or whose handler threw becomes visible again after `visibilityTimeoutMs`, and
 * after `maxReceiveCount` receives it moves to `deadLetters`.
 */
export class FakeSqsQueue {
  readonly client = new SQSClient({ region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  readonly url: string;
  readonly mock: AwsClientStub<SQSClient>;
  readonly messages: QueuedMessage[] = [];
  readonly deadLetters: QueuedMessage[] = [];
  /** Every body ever sent, in order. */
  readonly sent: string[] = [];
  /** While true, every send fails as SQS does when it cannot take a message (a service error, retryable). */
  refuseSends = false;

  constructor(
    private readonly now: () => number,
    private readonly options: { url?: string; visibilityTimeoutMs?: number; maxReceiveCount?: number } = {},
  ) {
    this.url = options.url ?? 'https://sqs.eu-west-1.amazonaws.com/123456789012/scan-queue';
    const mock = (this.mock = mockClient(this.client));
    mock.on(SendMessageCommand).callsFake((input: SendMessageCommandInput) => {
      this.checkUrl(input.QueueUrl);
      const delay = input.DelaySeconds ?? 0;
      if (!Number.isInteger(delay) || delay < 0 || delay > 900) throw named('InvalidParameterValue', `DelaySeconds ${delay} is not 0-900`);
      return { $metadata, MessageId: this.enqueue(String(input.MessageBody), delay) };
    });
    mock.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => {
      this.checkUrl(input.QueueUrl);
      const entries = input.Entries ?? [];
      if (entries.length === 0) throw named('EmptyBatchRequest', 'no entries');
      if (entries.length > 10) throw named('TooManyEntriesInBatchRequest', `${entries.length} entries`);
      if (new Set(entries.map((e) => e.Id)).size !== entries.length) throw named('BatchEntryIdsNotDistinct', 'ids repeat');
      if (entries.reduce((n, e) => n + Buffer.byteLength(String(e.MessageBody)), 0) > MAX_PAYLOAD_BYTES) throw named('BatchRequestTooLong', 'over 1 MiB');
      const Successful = entries.map((e) => ({ Id: e.Id, MessageId: this.enqueue(String(e.MessageBody), e.DelaySeconds ?? 0), MD5OfMessageBody: '' }));
      return { $metadata, Successful, Failed: [] };
    });
  }

  /** Messages visible now. */
  visible(): QueuedMessage[] {
    const now = this.now();
    return this.messages.filter((m) => m.visibleAtMs <= now);
  }

  /** The earliest time a queued message becomes visible; undefined when the queue is empty. */
  nextVisibleAtMs(): number | undefined {
    return this.messages.length === 0 ? undefined : Math.min(...this.messages.map((m) => m.visibleAtMs));
  }

  /** Hands one visible message to `handler` as an SQS event, as the event source does; false when none is visible. */
  async deliver(handler: (event: SQSEvent) => Promise<SQSBatchResponse | void>): Promise<boolean> {
    const message = this.visible()[0];
    if (!message) return false;
    message.receiveCount += 1;
    // In flight: invisible until deleted or the visibility timeout passes.
    message.visibleAtMs = this.now() + (this.options.visibilityTimeoutMs ?? 3_600_000);
    let failed: boolean;
    try {
      const reply = await handler({ Records: [recordOf(message, this.url)] });
      failed = (reply?.batchItemFailures ?? []).some((f) => f.itemIdentifier === message.messageId);
    } catch {
      failed = true;
    }
    const index = this.messages.indexOf(message);
    if (!failed) this.messages.splice(index, 1);
    else if (message.receiveCount >= (this.options.maxReceiveCount ?? 3)) this.deadLetters.push(...this.messages.splice(index, 1));
    return true;
  }

  private enqueue(body: string, delaySeconds: number): string {
    if (this.refuseSends) throw named('InternalError', 'SQS could not take the message (test)');
    if (Buffer.byteLength(body) > MAX_PAYLOAD_BYTES) throw named('InvalidParameterValue', 'message over 1 MiB');
    const messageId = randomUUID();
    this.messages.push({ messageId, body, visibleAtMs: this.now() + delaySeconds * 1000, receiveCount: 0 });
    this.sent.push(body);
    return messageId;
  }

  private checkUrl(url: string | undefined): void {
    if (url !== this.url) throw named('QueueDoesNotExist', `no queue ${url}`);
  }
}

function named(name: string, message: string): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}

function recordOf(message: QueuedMessage, queueUrl: string): SQSRecord {
  return {
    messageId: message.messageId,
    receiptHandle: `receipt-${message.messageId}-${message.receiveCount}`,
    body: message.body,
    attributes: {
      ApproximateReceiveCount: String(message.receiveCount),
      SentTimestamp: '0',
      SenderId: 'AROAEXAMPLE',
      ApproximateFirstReceiveTimestamp: '0',
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: `arn:aws:sqs:eu-west-1:123456789012:${queueUrl.split('/').pop()}`,
    awsRegion: 'eu-west-1',
  };
}
