// Plain JavaScript on purpose: it runs before anything is compiled. Where the TypeScript compiler
// is installed (a developer's clone) it compiles; where it is not (a production install with
// `npm ci --omit=dev`) the release's dist/ must already be there. With --check (npm run serve,
// which runs built code as it is) it never compiles, only says what is missing.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let tsc;
try {
  tsc = require.resolve('typescript/bin/tsc');
} catch {
  tsc = null;
}
if (tsc && !process.argv.includes('--check')) {
  const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], {
    stdio: 'inherit',
  });
  if (result.status === 0) {
    spawnSync(process.execPath, ['scripts/build-channel.mjs'], { stdio: 'inherit' });
  }
  process.exit(result.status ?? 1);
}
if (!existsSync('dist/scripts/launcher.js')) {
  process.stderr.write(
    'dist/ is missing: run npm run build (with dev dependencies installed), or deploy a ' +
      'release that includes dist/\n',
  );
  process.exit(1);
}
