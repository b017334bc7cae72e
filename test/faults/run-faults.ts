/**
 * `npm run faults`: runs the fault matrix (test/faults/fault-matrix.test.ts) under vitest, collects each
 * case's verdict from the JSON lines the suite appends to FAULTS_REPORT, and ends with one line:
 *   faults: N cases, M passed, L tokens lost, U unalerted failures
 * It exits non-zero when a case failed or never reported, a token was lost, or a failure went unalerted.
 * Extra arguments go to vitest (e.g. `npm run faults -- -t "AWS engine"`).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface Line {
  planned?: number;
  name?: string;
  passed?: boolean;
  tokenLost?: boolean;
  unalerted?: boolean;
  problems?: string[];
}

const dir = mkdtempSync(join(tmpdir(), 'faults-'));
const report = join(dir, 'verdicts.jsonl');
try {
  const vitest = spawnSync('npx', ['vitest', 'run', 'test/faults/fault-matrix.test.ts', '--reporter=dot', ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, FAULTS_REPORT: report },
  });
  let lines: Line[] = [];
  try {
    lines = readFileSync(report, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Line);
  } catch {
    lines = [];
  }
  const verdicts = lines.filter((l) => l.name !== undefined);
  const planned = Math.max(0, ...lines.map((l) => l.planned ?? 0));
  // A filtered run (-t) skips the test that records the plan: then only the cases that ran count.
  const cases = Math.max(planned, verdicts.length);
  const passed = verdicts.filter((v) => v.passed).length;
  const lost = verdicts.filter((v) => v.tokenLost).length;
  const unalerted = verdicts.filter((v) => v.unalerted).length;
  for (const v of verdicts.filter((x) => !x.passed)) console.log(`failed: ${v.name}\n  ${(v.problems ?? []).join('\n  ')}`);
  console.log(`faults: ${cases} cases, ${passed} passed, ${lost} tokens lost, ${unalerted} unalerted failures`);
  const ok = vitest.status === 0 && cases > 0 && passed === cases && lost === 0 && unalerted === 0;
  process.exitCode = ok ? 0 : 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
