/** Where the CLI writes: stdout for results and progress, stderr for errors. Tests pass a recorder. */
export interface Output {
  out(line: string): void;
  err(line: string): void;
}

export const consoleOutput: Output = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** Every line to stderr: the people's lines of a command whose stdout is JSON. */
export function stderrOnly(output: Output): Output {
  return { out: (line) => output.err(line), err: (line) => output.err(line) };
}

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
