/** Where the CLI writes: stdout for results and progress, stderr for errors. Tests pass a recorder. */
export interface Output {
  out(line: string): void;
  err(line: string): void;
}

export const consoleOutput: Output = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** Keeps every line, for tests and for the demo's own checks. */
export function recordingOutput(echo?: Output): Output & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    out: (line) => {
      lines.push(line);
      echo?.out(line);
    },
    err: (line) => {
      lines.push(line);
      echo?.err(line);
    },
  };
}
