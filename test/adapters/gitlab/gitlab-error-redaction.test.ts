/**
 * GitLab's error text is redacted before it is cut to length: a token that straddles the cut must not leave
 * a piece of itself behind. A plain HTTP server on 127.0.0.1 plays a GitLab (or a proxy) that echoes the
 * token it was sent in its error reply, at the place where the adapter cuts the text.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { GitLabAdapter } from '../../../src/adapters/gitlab/gitlab.ts';
import { GitLabForbiddenError } from '../../../src/core/errors.ts';
import { rejection } from '../../support/rejection.ts';

/** A legacy runner token: no prefix, so only its whole value is known to the redactor. */
const LEGACY_TOKEN = 'k3Xq9VbN2mRt7LwPz4Hs';

let server: Server | undefined;

afterEach(async () => {
  if (!server) return;
  server.closeAllConnections();
  const closing = server;
  await new Promise<void>((resolve) => closing.close(() => resolve()));
  server = undefined;
});

/** A server that answers every request with 403 and this body. */
async function answering(contentType: string, body: string): Promise<string> {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(403, { 'content-type': contentType });
      res.end(body);
    });
  });
  const listening = server;
  await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(listening.address() as AddressInfo).port}`;
}

/** Every run of 8 characters of the token: what must not appear anywhere. */
function fragments(token: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + 8 <= token.length; i += 1) out.push(token.slice(i, i + 8));
  return out;
}

function everyView(error: Error): string {
  return [error.message, String(error.stack), inspect(error, { depth: 10 }), inspect(error, { depth: 10, showHidden: true }), JSON.stringify(error)].join('\n');
}

/** The body with the token starting `before` characters ahead of the cut, so that the cut goes through it. */
function straddling(cut: number, before: number, token: string): string {
  return `${'x'.repeat(cut - before)}${token} and then some more words`;
}

describe('GitLab error text', () => {
  it.each([
    ['a JSON message', 'application/json', 500, 16],
    ['a JSON message', 'application/json', 500, 8],
    ['a plain-text body', 'text/plain', 200, 16],
    ['an HTML page', 'text/html', 200, 10],
  ])('leaves no 8-character piece of a legacy runner token that straddles the cut of %s (%s, cut at %i, %i characters before it)', async (_what, contentType, cut, before) => {
    const text = straddling(cut, before, LEGACY_TOKEN);
    const url = await answering(contentType, contentType === 'application/json' ? JSON.stringify({ message: text }) : text);

    const error = await rejection(new GitLabAdapter({ sleep: async () => {} }).resetWithToken(url, LEGACY_TOKEN));

    expect(error).toBeInstanceOf(GitLabForbiddenError);
    const description = (error.cause as { description?: string }).description ?? '';
    expect(description.startsWith('xxxx')).toBe(true);
    expect(description.length).toBeLessThanOrEqual(cut);
    const views = everyView(error);
    for (const piece of fragments(LEGACY_TOKEN)) expect(views.includes(piece), `a piece of the token (${piece.length} characters) leaked`).toBe(false);
  });

  it('still cuts a long error text to its length after redacting it', async () => {
    const url = await answering('application/json', JSON.stringify({ message: `${LEGACY_TOKEN} ${'y'.repeat(2_000)}` }));

    const error = await rejection(new GitLabAdapter({ sleep: async () => {} }).resetWithToken(url, LEGACY_TOKEN));

    const description = (error.cause as { description?: string }).description ?? '';
    expect(description.startsWith('[redacted] yyy')).toBe(true);
    expect(description).toHaveLength(500);
  });

  it('names an unparseable gitlabUrl without the token typed into it', async () => {
    const typed = 'https://glpat-TYPEDINTOTHEURL01@gitlab example.com';

    const error = await rejection(new GitLabAdapter({ sleep: async () => {} }).verify(typed, 'glrt-NOTSENTANYWHERE0'));

    expect(error.message).toContain('gitlabUrl');
    expect(error.message).toContain('is not a url');
    expect(everyView(error)).not.toContain('TYPEDINTOTHEURL01');
  });
});
