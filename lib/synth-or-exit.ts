import { InvalidInputError } from '../src/core/errors.ts';

/**
 * Runs the CDK app's synth; a fleet file the app refuses (an InvalidInputError: "file: field: problem")
 * ends the process with one line per problem on stderr and exit code 2, as the rotator CLI does for bad input,
 * instead of a Node stack trace. Any other error is thrown unchanged (a defect shows its trace).
 */
export function synthOrExit(synth: () => void, stderr: (line: string) => void = (line) => process.stderr.write(`${line}\n`), exit: (code: number) => void = (code) => process.exit(code)): void {
  try {
    synth();
  } catch (error) {
    if (!(error instanceof InvalidInputError)) throw error;
    for (const line of error.message.split('\n')) stderr(`rotator synth: ${line}`);
    const fix = (error as InvalidInputError & { fix?: unknown }).fix;
    if (typeof fix === 'string' && fix !== '') stderr(`fix: ${fix}`);
    exit(2);
  }
}
