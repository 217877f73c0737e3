// Plain JavaScript on purpose: it runs with the TypeScript build. Compiles the sandbox's command
// channel (sandbox-image/exec-channel.c) into a static binary that the service puts into each
// sandbox. Without a C compiler it says so and leaves none: commands then take a plain engine exec
// each, and the service says so at WARNING when it starts.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';

const source = 'sandbox-image/exec-channel.c';
const target = 'dist/sandbox/matrx-channel';
const compiler = process.env.CC || 'cc';

mkdirSync('dist/sandbox', { recursive: true });
const result = spawnSync(
  compiler,
  ['-O2', '-Wall', '-Wextra', '-Werror', '-static', '-s', '-o', target, source],
  { stdio: 'inherit' },
);
if (result.status !== 0) {
  rmSync(target, { force: true });
  const why = result.error ? result.error.message : `${compiler} exited with ${result.status}`;
  process.stderr.write(
    `build-channel: no compiled command channel (${why}); install a C compiler and libc6-dev ` +
      'for commands at the speed of a fork\n',
  );
}
