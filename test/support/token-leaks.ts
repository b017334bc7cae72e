import { inspect } from 'node:util';
import { expect } from 'vitest';

/** Anything shaped like a runner token (glrt-…) or a personal access token (glpat-…). */
const TOKEN_SHAPE = /gl(rt|pat)-[A-Za-z0-9_-]{8,}/;

/** Turns whatever a test captured (lines, events, errors) into one text to search. */
export function captured(...things: unknown[]): string {
  return things
    .map((t) => (typeof t === 'string' ? t : t instanceof Error ? `${t.stack}\n${inspect(t, { depth: 10 })}` : inspect(t, { depth: 10 })))
    .join('\n');
}

/** Fails when any known token, or anything shaped like one, is in the text. */
export function expectNoTokens(text: string, knownTokens: Iterable<string>): void {
  for (const token of knownTokens) {
    expect(text.includes(token), 'a known token appears in captured output').toBe(false);
  }
  expect(TOKEN_SHAPE.exec(text)?.[0] ?? null, 'something shaped like a token appears in captured output').toBeNull();
}
