#!/usr/bin/env node
// The `rotator` command: the package's bin, and what `npm run rotator` and `npm run demo` start.
// A launcher in plain JavaScript, so that it runs wherever it is installed and from any working folder:
// tsx is loaded from beside this file (a `node --import tsx` shebang looks for it in the working folder),
// and no check of argv[1] is needed (npm's bin links and npx call it through a symlink).
import process from 'node:process';
import { register } from 'tsx/esm/api';

// `rotator status | head` closes the pipe early. The command's work goes on to its end (a rotation is never
// cut short because nobody reads its progress) and its exit code stands; what it would still print is dropped.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error) => {
    if (error.code !== 'EPIPE' && error.code !== 'ERR_STREAM_DESTROYED') throw error;
  });
}

register();
const { main } = await import('./main.ts');
process.exitCode = await main(process.argv.slice(2));
