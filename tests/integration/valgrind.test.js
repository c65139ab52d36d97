// valgrind.test.js - runs tests/valgrind.sh (issue 9 item 4: one
// integration run of rpcpoold under valgrind memcheck reports no error and
// no leak in any process) as part of make test.
//
// Skipped when valgrind is not installed (the script exits 77).
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const lib = require('./lib.js');

test('rpcpoold under valgrind memcheck: no error, no definite or indirect leak in any process', async (t) => {
  const r = await lib.run('sh', [path.join(lib.ROOT, 'tests', 'valgrind.sh')], { timeout: 240000 });
  const out = r.stdout + r.stderr;
  process.stderr.write(out.split('\n').filter((l) => /^valgrind: /.test(l)).map((l) => `# ${l}\n`).join(''));
  if (r.code === 77) {
    t.skip(out.trim().split('\n').pop());
    return;
  }
  assert.equal(r.code, 0, out);
  assert.match(out, /^valgrind: ok: \d+ processes, 0 errors, 0 definitely \/ 0 indirectly lost/m);
});
