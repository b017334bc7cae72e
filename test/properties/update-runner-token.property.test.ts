/**
 * Property tests of host/update-runner-token.sh: the REAL script, run with bash on temp copies of
 * generated config.toml documents (see config-toml.arbitrary.ts), checked with smol-toml.
 * Seed: SEED in updater-harness.ts (PROPERTY_SEED=… to explore); fast-check prints seed and path on failure.
 */
import fc from 'fast-check';
import { readFile, rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configTomlArb, corruptionArb, expectedEdits, FLAG, normUrl, type GeneratedConfig } from './config-toml.arbitrary.ts';
import { linesOf, listing, modeOf, runs, runUpdater, SEED, tomlAccepts, tomlData, workspaces, type Workspace } from './updater-harness.ts';

const VALID_RUNS = runs(60);
const MODEL_RUNS = runs(300);
const CORRUPT_RUNS = runs(80);

let ws: Awaited<ReturnType<typeof workspaces>>;
beforeAll(async () => {
  ws = await workspaces('urt-prop-');
});
afterAll(async () => {
  await ws.dispose();
});

type Runner = Record<string, unknown>;
const runnersOf = (doc: Record<string, unknown>): Runner[] => doc.runners as Runner[];

/** An --expires-at value and what the updater writes for it (UTC, whole seconds). */
const expiresArgArb = fc.option(
  fc
    .tuple(fc.date({ min: new Date('2025-01-01T00:00:00Z'), max: new Date('2035-01-01T00:00:00Z'), noInvalidDate: true }), fc.boolean())
    .map(([d, ms]) => {
      const iso = d.toISOString();
      return { arg: ms ? iso : iso.replace(/\.\d{3}Z$/, 'Z'), written: iso.replace(/\.\d{3}Z$/, 'Z') };
    }),
  { nil: undefined },
);

const modeArb = fc.constantFrom(0o600, 0o640, 0o644, 0o660);

function args(doc: GeneratedConfig, w: Workspace, expiresAt: string | undefined): string[] {
  const a = ['--config', w.config, '--runner-id', String(doc.targetId), '--url', doc.urlArg, '--token-file', w.tokenFile, '--reload', 'none'];
  if (expiresAt !== undefined) a.push('--expires-at', expiresAt);
  return a;
}

/** The text of a TOML value as tomlData shows it. */
const tomlValue = (literal: string): unknown => tomlData(`v = ${literal}`).v;

describe('the config.toml arbitrary', () => {
  it('generates valid TOML whose content matches its model, with a target runner whose url and id are unique', () => {
    fc.assert(
      fc.property(configTomlArb, (doc) => {
        const data = tomlData(doc.text);
        const runners = runnersOf(data);
        expect(runners).toHaveLength(doc.runners.length);
        doc.runners.forEach((model, i) => {
          const r = runners[i] as Runner;
          expect(r).toMatchObject({ name: model.name, url: model.url, token: model.token, executor: model.executor });
          expect(r.id).toBe(model.id);
          if (model.obtainedAt !== undefined) expect(r.token_obtained_at).toEqual(tomlValue(model.obtainedAt));
          const flags = r.feature_flags as Record<string, unknown> | undefined;
          const ff = model.featureFlags;
          if (ff.kind === 'none') expect(flags).toBeUndefined();
          else expect(flags?.[FLAG]).toBe(ff.flag === 'absent' ? undefined : ff.flag === 'true');
        });
        const same = runners.filter((r) => normUrl(String(r.url)) === normUrl(doc.urlArg) && r.id === doc.targetId);
        expect(same).toHaveLength(1);
        expect(doc.text.includes('\r')).toBe(doc.eol === '\r\n');
        expect(doc.text.endsWith('\n')).toBe(doc.finalNewline);
        expect(doc.lines[doc.targetLines.token]).toContain(doc.runners[doc.target]?.token);
      }),
      { seed: SEED, numRuns: MODEL_RUNS },
    );
  });
});

describe('update-runner-token.sh on generated config.toml documents', () => {
  it(
    'changes only the target token fields and the flag, keeps every other line, is idempotent and keeps the mode',
    async () => {
      await fc.assert(
        fc.asyncProperty(configTomlArb, expiresArgArb, modeArb, async (doc, expires, mode) => {
          const w = await ws.create(doc.text, mode);
          const target = doc.runners[doc.target];
          if (target === undefined) throw new Error('no target');
          const from = Math.floor(Date.now() / 1000) * 1000;
          const first = await runUpdater(args(doc, w, expires?.arg));
          const to = Date.now();

          // (a) exit 0, one status=updated line, no token in the output.
          expect(first, first.stderr).toMatchObject({ code: 0, stderr: '' });
          expect(first.stdout).toMatch(new RegExp(`^status=updated runner_id=${doc.targetId} config=\\S+ system_id= reload=none\\n$`));
          for (const secret of [w.token, target.token]) expect(`${first.stdout}${first.stderr}`).not.toContain(secret);

          // (b) the parsed document equals the original but for the target's token fields and flag.
          const afterText = (await readFile(w.config)).toString('utf8');
          const after = tomlData(afterText);
          const expected = tomlData(doc.text);
          const before = runnersOf(expected)[doc.target] as Runner;
          const now = runnersOf(after)[doc.target] as Runner;
          before.token = w.token;
          if (target.obtainedAt !== undefined) {
            expect(now.token_obtained_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/);
            const at = Date.parse(String(now.token_obtained_at));
            expect(at).toBeGreaterThanOrEqual(from);
            expect(at).toBeLessThanOrEqual(to);
            before.token_obtained_at = now.token_obtained_at;
          }
          if (target.expiresAt !== undefined && expires !== undefined) before.token_expires_at = tomlValue(expires.written);
          before.feature_flags = { ...(before.feature_flags as object | undefined), [FLAG]: true };
          expect(after).toEqual(expected);

          // (c) every line not edited is still there, byte for byte and in order; line endings and the
          //     final-newline state are kept; the token line differs only in the token.
          const { changed, added } = expectedEdits(doc, expires !== undefined);
          const beforeLines = linesOf(doc.text);
          const afterLines = linesOf(afterText);
          const kept = beforeLines.filter((_, i) => !changed.includes(i));
          const same = (line: string, original: string | undefined): boolean =>
            original !== undefined && (line === original || (!original.endsWith('\n') && line === `${original}${doc.eol}`));
          let k = 0;
          let other = 0;
          for (const line of afterLines) {
            if (k < kept.length && same(line, kept[k])) k++;
            else other++;
          }
          expect(kept.slice(k), 'original lines missing or out of order').toEqual([]);
          expect(other).toBe(changed.length + added);
          expect(afterLines).toHaveLength(beforeLines.length + added);
          expect(afterText.endsWith('\n')).toBe(doc.finalNewline);
          if (doc.eol === '\r\n') expect(afterText.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
          else expect(afterText).not.toContain('\r');
          const tokenLine = doc.lines[doc.targetLines.token] as string;
          const quoted = (t: string): string => `${target.quote}${t}${target.quote}`;
          expect(afterText.split(doc.eol)).toContain(tokenLine.replace(quoted(target.token), quoted(w.token)));

          // (e) same mode; the backup holds the original; no temp file is left.
          expect(await modeOf(w.config)).toBe(mode);
          expect((await readFile(`${w.config}.bak`)).equals(w.original)).toBe(true);
          expect(await listing(w.dir)).toEqual(['config.toml', 'config.toml.bak', 'new-token']);

          // (d) a second run finds it current and changes no byte.
          const second = await runUpdater(args(doc, w, expires?.arg));
          expect(second, second.stderr).toMatchObject({ code: 0, stderr: '' });
          expect(second.stdout).toMatch(/^status=already-current .* reload=skipped\n$/);
          expect((await readFile(w.config)).toString('utf8')).toBe(afterText);
          await rm(w.dir, { recursive: true, force: true });
        }),
        { seed: SEED, numRuns: VALID_RUNS },
      );
    },
    runs(120_000),
  );

  it(
    'refuses a corrupted document that smol-toml rejects: non-zero exit, one stderr line, the file untouched',
    async () => {
      await fc.assert(
        fc.asyncProperty(corruptionArb, async ({ doc, corruption }) => {
          fc.pre(!tomlAccepts(corruption.text));
          const w = await ws.create(corruption.text, 0o640);
          const result = await runUpdater(args(doc, w, undefined));
          expect(result.code, `${corruption.kind}: ${corruption.detail}; stdout ${result.stdout}`).not.toBe(0);
          expect(result.stdout).toBe('');
          expect(result.stderr).toMatch(/^update-runner-token: error: [^\n]+\n$/);
          expect(result.stderr).not.toContain(w.token);
          expect((await readFile(w.config)).equals(w.original)).toBe(true);
          expect(await modeOf(w.config)).toBe(0o640);
          expect(await listing(w.dir)).toEqual(['config.toml', 'new-token']);
          await rm(w.dir, { recursive: true, force: true });
        }),
        { seed: SEED, numRuns: CORRUPT_RUNS },
      );
    },
    runs(120_000),
  );
});
