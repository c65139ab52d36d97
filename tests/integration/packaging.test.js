// packaging.test.js - librpcpool against a live pool, and `make install`.
//
//  - librpcpool: starts anvil and rpcpoold (tests/integration/lib.js), then
//    runs the live cases of the CUnit test $RPCPOOL_BUILD/tests/test_client
//    (RPCPOOL_TEST_SOCKET / RPCPOOL_TEST_CONTROL) and the example program
//    $RPCPOOL_BUILD/rpcpool-example against it.
//  - make install PREFIX=/usr DESTDIR=<tmp> BUILD=$RPCPOOL_BUILD: programs,
//    library, header, pkg-config file, manual pages, systemd unit and sample
//    configuration land where they should; every manual page renders without
//    a warning (groff -ww); pkg-config finds the library and a small program
//    compiles, links (shared and static) and runs against the installed copy;
//    the unit passes `systemd-analyze verify` when systemd-analyze exists.
'use strict';

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const lib = require('./lib.js');

const BUILD_ARG = process.env.RPCPOOL_BUILD || 'build';
const VERSION = fs.readFileSync(path.join(lib.ROOT, 'VERSION'), 'utf8').trim();
const CC = process.env.CC || 'cc';

// The environment of a sanitized child, plus EXTRA.
function childEnv(extra = {}) {
  return {
    ...process.env,
    ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=1:abort_on_error=0',
    UBSAN_OPTIONS: process.env.UBSAN_OPTIONS || 'print_stacktrace=1:halt_on_error=1',
    ...extra,
  };
}

// The path of a program, or null when it is not on PATH.
async function which(name) {
  const r = await lib.run('sh', ['-c', `command -v ${name}`]);
  return r.code === 0 ? r.stdout.trim() : null;
}

function needFile(p, hint) {
  assert.ok(fs.existsSync(p), `${p} is missing${hint ? ` (${hint})` : ''}`);
}

function show(r) {
  return `exit ${r.code}${r.signal ? ` signal ${r.signal}` : ''}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
}

describe('librpcpool against a live rpcpoold', () => {
  let node;
  let pool;
  before(async () => {
    node = await lib.startAnvil();
    pool = await lib.startPool({
      endpoints: [node],
      workers: 2,
      // The pipelining cases send a few hundred calls in a burst.
      settings: { rate_limit: { max_requests: 1000000, window_ms: 1000, burst_size: 100000 } },
    });
  });
  after(async () => {
    if (pool) assert.equal(await pool.stop(), 0);
    if (node) await node.stop();
    if (pool) lib.assertNoErrors(pool);
  });

  test('CUnit live cases of tests/unit/test_client.c', async (t) => {
    const bin = path.join(lib.BUILD, 'tests', 'test_client');
    needFile(bin, `build it with: make BUILD=${BUILD_ARG} units`);
    const r = await lib.run(bin, [], {
      timeout: 120000,
      env: childEnv({ RPCPOOL_TEST_SOCKET: pool.socket, RPCPOOL_TEST_CONTROL: pool.controlSocket }),
    });
    // CUnit prints these after "Test: NAME ..." on the same line.
    for (const line of r.stdout.split('\n')) {
      const m = /\b((?:stats|nonblocking): .*)$/.exec(line);
      if (m) t.diagnostic(m[1]);
    }
    const m = /^RESULT suite=client_live passed=(\d+) failed=(\d+)$/m.exec(r.stdout);
    assert.ok(m, `no RESULT line\n${show(r)}`);
    assert.equal(Number(m[2]), 0, show(r));
    assert.equal(Number(m[1]), 6, show(r));
    assert.equal(r.code, 0, show(r));
  });

  test('rpcpool-example prints the chain, the head, 10 pipelined answers and the stats', async (t) => {
    const bin = path.join(lib.BUILD, 'rpcpool-example');
    needFile(bin, `build it with: make BUILD=${BUILD_ARG}`);
    let r = await lib.run(bin, [pool.socket], { env: childEnv() });
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /^chain id: 31337$/m);
    assert.match(r.stdout, /^block number: \d+$/m);
    assert.match(r.stdout, /^pipelined: 10 calls answered \(0 errors\)$/m);
    assert.match(r.stdout, /^batch: "0x7a69" "0x[0-9a-f]+"$/m);
    r = await lib.run(bin, [pool.socket, pool.controlSocket], { env: childEnv() });
    const stats = /^stats: pools=1 healthy=\d+ connections=\d+ \(active=\d+ idle=\d+\) ok=(\d+) failed=\d+ avg_latency_ms=[\d.]+$/m
      .exec(r.stdout);
    if (!stats && /^stats: /m.test(r.stderr) && r.stdout.includes('pipelined:')) {
      t.diagnostic(`stats part not checked: the control socket did not answer: ${r.stderr.trim()}`);
      return;
    }
    assert.equal(r.code, 0, show(r));
    assert.ok(stats, show(r));
    assert.ok(Number(stats[1]) >= 13, `successful requests ${stats[1]} < 13`);
  });

  test('a wrong socket path fails with a clear message', async () => {
    const r = await lib.run(path.join(lib.BUILD, 'rpcpool-example'), [path.join(pool.dir, 'nope.ipc')],
      { env: childEnv() });
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /cannot connect to rpcpool socket .*nope\.ipc: No such file or directory/);
  });
});

describe('make install', () => {
  let dest;
  let usr;
  before(async () => {
    dest = lib.tmpDir('rpcpool-dest-');
    usr = path.join(dest, 'usr');
    const r = await lib.run('make', ['-s', 'install', `BUILD=${BUILD_ARG}`, 'PREFIX=/usr', `DESTDIR=${dest}`],
      { timeout: 600000 });
    assert.equal(r.code, 0, `make install failed\n${show(r)}`);
  });

  test('installs programs, library, header, pkg-config file, manual pages, unit and sample', () => {
    const want = [
      ['usr/sbin/rpcpoold', 0o755],
      ['usr/sbin/rpcpoolctl', 0o755],
      ['usr/bin/rpcpoolstat', 0o755],
      ['usr/lib/librpcpool.a', 0o644],
      ['usr/lib/librpcpool.so.0', 0o755],
      ['usr/include/rpcpool/client.h', 0o644],
      ['usr/lib/pkgconfig/rpcpool.pc', 0o644],
      ['usr/share/man/man8/rpcpoold.8', 0o644],
      ['usr/share/man/man8/rpcpoolctl.8', 0o644],
      ['usr/share/man/man1/rpcpoolstat.1', 0o644],
      ['usr/share/man/man5/rpcpool.conf.5', 0o644],
      ['usr/lib/systemd/system/rpcpool.service', 0o644],
      ['etc/rpcpool/rpcpool.conf.sample', 0o644],
    ];
    for (const [rel, mode] of want) {
      const p = path.join(dest, rel);
      needFile(p);
      assert.equal(fs.statSync(p).mode & 0o777, mode, `${rel}: mode`);
    }
    const link = path.join(usr, 'lib', 'librpcpool.so');
    assert.equal(fs.readlinkSync(link), 'librpcpool.so.0', 'librpcpool.so -> librpcpool.so.0');
    const pc = fs.readFileSync(path.join(usr, 'lib', 'pkgconfig', 'rpcpool.pc'), 'utf8');
    assert.match(pc, /^prefix=\/usr$/m);
    assert.match(pc, new RegExp(`^Version: ${VERSION.replace(/\./g, '\\.')}$`, 'm'));
    // Nothing of the build tree leaks into the installed text files.
    for (const rel of ['usr/lib/pkgconfig/rpcpool.pc', 'usr/lib/systemd/system/rpcpool.service']) {
      assert.ok(!fs.readFileSync(path.join(dest, rel), 'utf8').includes(dest), `${rel} names DESTDIR`);
    }
  });

  test('the installed sample configuration passes rpcpoold -t', async () => {
    const sample = path.join(dest, 'etc', 'rpcpool', 'rpcpool.conf.sample');
    const r = await lib.run(path.join(usr, 'sbin', 'rpcpoold'), ['-t', '-c', sample], { env: childEnv() });
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout.trim(), `${sample}: ok`);
  });

  test('every manual page renders without warnings and documents its subject', async (t) => {
    const groff = await which('groff');
    if (!groff) {
      t.skip('groff is not installed (tools/deps.sh should install groff-base)');
      return;
    }
    const pages = {
      'man8/rpcpoold.8': ['-c FILE', '-t', '-w N', 'SIGTERM', 'SIGHUP', 'EXIT STATUS', 'FILES', 'level='],
      // Every command of docs/interface.md section 4.
      'man8/rpcpoolctl.8': ['ping', 'status', 'stats', 'metrics', 'drain EP', 'enable EP', 'reset EP', 'reload',
        'workers N', 'shutdown', '-s SOCKET', '-j', '-t TIMEOUT_MS'],
      'man1/rpcpoolstat.1': ['-n SHM_NAME', '-i MS', 'BREAKER', 'TOKENS', 'supervisor_alive'],
      // Every key of docs/interface.md section 2.
      'man5/rpcpool.conf.5': ['name', 'chain_id', 'endpoints', 'url', 'weight', 'headers', 'rate_limit',
        'max_connections', 'min_connections', 'connection_timeout_ms', 'idle_timeout_ms',
        'request_timeout_ms', 'attempt_timeout_ms', 'retries', 'no_retry_methods', 'balance',
        'health_check_interval_ms', 'health_check', 'max_block_lag', 'circuit_breaker', 'failure_threshold',
        'recovery_timeout_ms', 'half_open_max_attempts', 'max_requests', 'window_ms', 'burst_size', 'server',
        'socket', 'socket_mode', 'http_listen', 'control_socket', 'shm_name', 'workers', 'max_clients',
        'max_request_bytes', 'max_batch', 'max_response_bytes', 'client_idle_timeout_ms', 'queue_timeout_ms',
        'shutdown_timeout_ms', 'user', 'group', 'log_level'],
    };
    for (const [rel, words] of Object.entries(pages)) {
      const file = path.join(usr, 'share', 'man', rel);
      const lint = await lib.run(groff, ['-man', '-Tutf8', '-ww', '-z', file]);
      assert.equal(lint.code, 0, `${rel}: ${show(lint)}`);
      assert.equal(lint.stderr, '', `${rel}: groff warnings:\n${lint.stderr}`);
      const out = await lib.run(groff, ['-man', '-Tascii', '-P', '-cbou', file], { env: { ...process.env, LC_ALL: 'C' } });
      assert.equal(out.code, 0, `${rel}: ${show(out)}`);
      const text = out.stdout.replace(/\s+/g, ' ');
      const subject = path.basename(rel).replace(/\.\d$/, '');
      assert.match(text, new RegExp(`NAME ${subject.replace('.', '\\.')} - `), `${rel}: NAME section`);
      for (const w of words) assert.ok(text.includes(w), `${rel} does not mention "${w}"`);
    }
    const man = await which('man');
    if (man) {
      const r = await lib.run(man, ['-l', path.join(usr, 'share', 'man', 'man8', 'rpcpoold.8')],
        { env: { ...process.env, MANPAGER: 'cat', PAGER: 'cat', MANWIDTH: '80' } });
      assert.equal(r.code, 0, show(r));
      assert.match(r.stdout, /rpcpoold/);
    }
  });

  test('pkg-config finds the library; a program compiles, links and runs against it', async () => {
    const pcEnv = {
      ...process.env,
      PKG_CONFIG_PATH: path.join(usr, 'lib', 'pkgconfig'),
      PKG_CONFIG_SYSROOT_DIR: dest,
      PKG_CONFIG_ALLOW_SYSTEM_CFLAGS: '1',
      PKG_CONFIG_ALLOW_SYSTEM_LIBS: '1',
    };
    const ver = await lib.run('pkg-config', ['--modversion', 'rpcpool'], { env: pcEnv });
    assert.equal(ver.code, 0, show(ver));
    assert.equal(ver.stdout.trim(), VERSION);
    const flags = await lib.run('pkg-config', ['--cflags', '--libs', 'rpcpool'], { env: pcEnv });
    assert.equal(flags.code, 0, show(flags));
    const words = flags.stdout.trim().split(/\s+/);
    assert.ok(words.includes(`-I${path.join(usr, 'include')}`), flags.stdout);
    assert.ok(words.includes(`-L${path.join(usr, 'lib')}`), flags.stdout);
    assert.ok(words.includes('-lrpcpool'), flags.stdout);

    const dir = lib.tmpDir('rpcpool-cc-');
    const src = path.join(dir, 'tiny.c');
    fs.writeFileSync(src, [
      '#include <rpcpool/client.h>',
      '#include <stdio.h>',
      'int main(int argc, char **argv)',
      '{',
      '    char err[256];',
      '    printf("librpcpool %s\\n", rpcpool_version());',
      '    rpcpool_t *p = rpcpool_connect(argc > 1 ? argv[1] : "/nonexistent.ipc", err, sizeof err);',
      '    if (!p) {',
      '        fprintf(stderr, "%s\\n", err);',
      '        return 1;',
      '    }',
      '    rpcpool_close(p);',
      '    return 0;',
      '}',
      '',
    ].join('\n'));
    // A library built with the sanitizers (make test's build) needs them in
    // the program too.
    const so = path.join(usr, 'lib', 'librpcpool.so.0');
    const san = fs.readFileSync(so).includes('__asan_init') ? ['-fsanitize=address,undefined'] : [];
    const missing = path.join(dir, 'none.ipc');
    const runEnv = childEnv({ LD_LIBRARY_PATH: path.join(usr, 'lib') });

    const shared = path.join(dir, 'tiny-shared');
    let r = await lib.run(CC, ['-std=c11', '-Wall', '-Werror', ...san, '-o', shared, src, ...words]);
    assert.equal(r.code, 0, `compile (shared): ${show(r)}`);
    r = await lib.run(shared, [missing], { env: runEnv });
    assert.equal(r.code, 1, show(r));
    assert.equal(r.stdout, `librpcpool ${VERSION}\n`);
    assert.match(r.stderr, /cannot connect to rpcpool socket .*none\.ipc: No such file or directory/);

    const readelf = await which('readelf');
    if (readelf) {
      const d = await lib.run(readelf, ['-d', so]);
      assert.match(d.stdout, /Library soname: \[librpcpool\.so\.0\]/);
      const n = await lib.run(readelf, ['-d', shared]);
      assert.match(n.stdout, /Shared library: \[librpcpool\.so\.0\]/);
    }

    const stat = path.join(dir, 'tiny-static');
    r = await lib.run(CC, ['-std=c11', ...san, '-o', stat, src, `-I${path.join(usr, 'include')}`,
      path.join(usr, 'lib', 'librpcpool.a')]);
    assert.equal(r.code, 0, `compile (static): ${show(r)}`);
    r = await lib.run(stat, [missing], { env: childEnv() });
    assert.equal(r.code, 1, show(r));
    assert.equal(r.stdout, `librpcpool ${VERSION}\n`);
  });

  test('the systemd unit is hardened and passes systemd-analyze verify', async (t) => {
    const unitPath = path.join(usr, 'lib', 'systemd', 'system', 'rpcpool.service');
    const unit = fs.readFileSync(unitPath, 'utf8');
    const want = [
      /^Type=simple$/m,
      /^ExecStart=\/usr\/sbin\/rpcpoold -c \/etc\/rpcpool\/rpcpool\.conf$/m,
      /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m,
      /^(DynamicUser=yes|User=rpcpool)$/m,
      /^RuntimeDirectory=rpcpool$/m,
      /^ProtectSystem=strict$/m,
      /^ProtectHome=yes$/m,
      /^NoNewPrivileges=yes$/m,
      /^PrivateTmp=yes$/m,
      /^RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6$/m,
      /^CapabilityBoundingSet=$/m,
      /^LimitNOFILE=65536$/m,
      /^Restart=on-failure$/m,
      /^KillSignal=SIGTERM$/m,
      /^TimeoutStopSec=30$/m,
      /^WantedBy=multi-user\.target$/m,
    ];
    for (const re of want) assert.match(unit, re);
    const analyze = await which('systemd-analyze');
    if (!analyze) {
      t.skip('systemd-analyze is not installed');
      return;
    }
    // verify checks that the programs exist: point it at the DESTDIR copies.
    const dir = lib.tmpDir('rpcpool-unit-');
    const copy = path.join(dir, 'rpcpool.service');
    fs.writeFileSync(copy, unit.replaceAll('/usr/sbin/', `${usr}/sbin/`));
    const r = await lib.run(analyze, ['verify', '--man=no', copy], { cwd: dir });
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stderr.trim(), '', `systemd-analyze verify:\n${r.stderr}`);
  });
});
