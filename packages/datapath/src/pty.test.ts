// The addon's pseudo-terminals (native/pty.c), which need no privileges:
// the pair's flags, its window size as a program on it sees it, data through
// the line discipline, EIO at the end, and errors that say what failed.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { isatty } from 'node:tty';
import { test, type TestContext } from 'node:test';
import { native } from './native.js';

const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;

function flags(fd: number): number {
  const m = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  assert.ok(m, `flags of fd ${fd}`);
  return parseInt(m[1]!, 8);
}

function openPty(t: TestContext, cols: number, rows: number) {
  const p = native().ptyOpen(cols, rows);
  const open = new Set([p.master, p.slave]);
  t.after(() => open.forEach((fd) => closeSync(fd)));
  return { ...p, close: (fd: number) => (closeSync(fd), open.delete(fd)) };
}

/** What `stty size` prints on the terminal: "rows cols". */
function sttySize(slave: number): string {
  const r = spawnSync('stty', ['size'], { stdio: [slave, 'pipe', 'pipe'], encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

function readMaster(master: number): string {
  const buf = Buffer.alloc(256);
  for (let i = 0; i < 100; i++) {
    try {
      return buf.toString('utf8', 0, readSync(master, buf));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      spawnSync('sleep', ['0.01']);
    }
  }
  assert.fail('nothing to read on the master');
}

test('ptyOpen gives a pty pair: close-on-exec, master nonblocking, the size asked', (t) => {
  const p = openPty(t, 100, 30);
  assert.match(p.path, /^\/dev\/pts\/\d+$/);
  assert.ok(isatty(p.master) && isatty(p.slave));
  assert.ok(flags(p.master) & O_CLOEXEC, 'master O_CLOEXEC');
  assert.ok(flags(p.master) & O_NONBLOCK, 'master O_NONBLOCK');
  assert.ok(flags(p.slave) & O_CLOEXEC, 'slave O_CLOEXEC');
  assert.equal(flags(p.slave) & O_NONBLOCK, 0, 'slave blocking, as a program expects its terminal');
  assert.equal(sttySize(p.slave), '30 100');
});

test('ptyResize changes the size a program on the terminal sees', (t) => {
  const p = openPty(t, 80, 24);
  assert.equal(sttySize(p.slave), '24 80');
  native().ptyResize(p.master, 132, 43);
  assert.equal(sttySize(p.slave), '43 132');
  native().ptyResize(p.slave, 90, 20); // either end names the same terminal
  assert.equal(sttySize(p.slave), '20 90');
});

test('output written on the slave is read on the master, then EIO once the slave is closed', (t) => {
  const p = openPty(t, 80, 24);
  writeSync(p.slave, 'hi\n');
  assert.equal(readMaster(p.master), 'hi\r\n'); // the line discipline's ONLCR
  p.close(p.slave);
  assert.throws(() => readSync(p.master, Buffer.alloc(16)), { code: 'EIO' });
});

test('pty errors say what failed', (t) => {
  assert.throws(() => native().ptyOpen(70000, 24), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: 'cols and rows must be at most 65535 (got 70000 x 24)' });
  assert.throws(() => native().ptyOpen(-1, 24), { name: 'RangeError', message: 'cols must be an integer in [0, 4294967295], got -1' });
  assert.throws(() => native().ptyResize(-1, 80, 24), { code: 'EBADF', syscall: 'ioctl', message: 'resize pty fd -1 to 80 x 24: EBADF' });
  const fd = openSync('/dev/null', 'r');
  t.after(() => closeSync(fd));
  assert.throws(() => native().ptyResize(fd, 80, 24), { code: 'ENOTTY' });
});
