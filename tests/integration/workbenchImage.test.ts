import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { testUser } from '../support/api.js';
import { createReady, deleteAll, exec } from '../support/sandboxes.js';

/**
 * Each tool of the workbench image, used the way an agent would, in one sandbox (network none) and
 * one command, as the default user. Each check runs in a subshell of that command, in a folder of
 * its own under /tmp, and its output is judged on its own.
 */
const CHECKS: Record<string, { run: string; expect: RegExp }> = {
  id: { run: 'id -un; id -u; echo "$HOME"', expect: /^agent\n1000\n\/home\/agent\n$/ },
  'tini as PID 1': {
    run: "tr '\\0' ' ' </proc/1/cmdline; echo",
    expect: /^\/usr\/bin\/tini -g -- /,
  },
  gcc: {
    run: `cat >hello.c <<'EOF'
#include <stdio.h>
int main(void) { puts("hello from C"); return 0; }
EOF
gcc -Wall -o hello hello.c && ./hello`,
    expect: /^hello from C$/m,
  },
  make: {
    run: `printf 'hello: hello.c\\n\\tcc -o $@ $<\\n' >Makefile
echo 'int main(void) { return 7; }' >hello.c
make -s hello; ./hello; echo "exit $?"`,
    expect: /^exit 7$/m,
  },
  git: {
    run: `git init -q repo && cd repo
git config user.name Agent && git config user.email agent@example.com
echo hi >a && git add a && git commit -qm first && git log --format=%s`,
    expect: /^first$/m,
  },
  python3: {
    run: 'python3 -c "import sys, json; print(json.dumps(sys.version_info[:1]))"',
    expect: /^\[3\]$/m,
  },
  'python3 -m venv': {
    run: 'python3 -m venv venv && venv/bin/python -c "import sys; print(sys.prefix != sys.base_prefix)" && venv/bin/pip --version',
    expect: /^True\npip \d+/m,
  },
  node: { run: `node -e 'console.log("node", 6 * 7)'`, expect: /^node 42$/m },
  npm: { run: 'npm --version', expect: /^\d+\.\d+\.\d+$/m },
  rg: { run: "printf 'hay\\nneedle\\n' >haystack && rg -n needle haystack", expect: /^2:needle$/m },
  fd: {
    run: 'mkdir -p a/b && touch a/b/target.md && fd -e md target',
    expect: /^a\/b\/target\.md$/m,
  },
  jq: { run: `echo '{"a":[1,2,3]}' | jq -c '.a | add'`, expect: /^6$/m },
  sqlite3: {
    run: "sqlite3 :memory: 'create table t(x); insert into t values (20), (22); select sum(x) from t;'",
    expect: /^42$/m,
  },
  curl: { run: 'curl --version', expect: /^curl \d/ },
  wget: { run: 'wget --version', expect: /^GNU Wget \d/ },
  pdftotext: { run: 'pdftotext -v', expect: /^pdftotext version \d/ },
  tmux: { run: 'tmux -V', expect: /^tmux \d/ },
  'zip and unzip': {
    run: 'mkdir z && echo zipped >z/f && zip -qr z.zip z && rm -r z && unzip -q z.zip && cat z/f',
    expect: /^zipped$/m,
  },
  'less, vi, tree, file, ssh, ps': {
    run: 'less --version | head -n 1; vi --version | head -n 1; tree --version; file --version | head -n 1; ssh -V; ps --version',
    expect: /^less \d+.*\nVIM .*\ntree v\d.*\nfile-\d.*\nOpenSSH_\d.*\nps from procps-ng \d/,
  },
};

const user = testUser('workbench');
const results = new Map<string, { exit: number; output: string }>();

beforeAll(async () => {
  const sandbox = await createReady(user);
  const script = Object.values(CHECKS)
    .map(
      ({ run }, index) =>
        `mkdir /tmp/check-${index} && cd /tmp/check-${index} && (\n${run}\n) >out 2>&1
echo "=== ${index} $?"; cat out`,
    )
    .join('\n');
  const ran = await exec(sandbox.sandbox_id, script, { timeout: 120 });
  expect(ran.status).toBe(200);
  const names = Object.keys(CHECKS);
  for (const section of ran.body.stdout.split(/^=== /m).slice(1)) {
    const [, index = '', exit = '', output = ''] = /^(\d+) (\d+)\n([\s\S]*)$/.exec(section) ?? [];
    results.set(names[Number(index)] ?? index, { exit: Number(exit), output });
  }
}, 180_000);
afterAll(() => deleteAll(user));

describe('the workbench image', () => {
  it.each(Object.entries(CHECKS))('runs %s', (name, { expect: expected }) => {
    expect(results.get(name)).toEqual({ exit: 0, output: expect.stringMatching(expected) });
  });
});
