import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedPost {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface WebhookReply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

export interface WebhookServer {
  /** The full webhook URL, secret path included: `http://127.0.0.1:<port>/services/…`. */
  url: string;
  /** The part of the URL that makes it a secret. */
  secretPath: string;
  received: ReceivedPost[];
  /** Replies for the next requests, in order; once they run out every request gets 200 "ok", as Slack answers. */
  replies: WebhookReply[];
  close(): Promise<void>;
}

/** A Slack incoming webhook stand-in: a real HTTP server on 127.0.0.1, on an ephemeral port. */
export async function startWebhookServer(secretPath = '/services/T0TEST000/B0TEST000/xoxSecretWebhookPath24ch'): Promise<WebhookServer> {
  const received: ReceivedPost[] = [];
  const replies: WebhookReply[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({ method: request.method ?? '', path: request.url ?? '', headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
      const reply = replies.shift() ?? { status: 200, body: 'ok' };
      response.writeHead(reply.status, { 'content-type': 'text/plain', ...reply.headers });
      response.end(reply.body ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${secretPath}`,
    secretPath,
    received,
    replies,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
