// The agent's command line: --state-dir, --pod-cidr, --api-port, --pin-root,
// --socket, each as `--flag value` or `--flag=value` (what `membrane agent`
// and `membrane up` pass, and what a user types to run the agent by hand).
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { MembraneError } from '@membrane/api';
import { parseAgentFlags } from './main.js';

function usageError(argv: string[], message: string): void {
  assert.throws(
    () => parseAgentFlags(argv),
    (e: unknown) => {
      assert.ok(e instanceof MembraneError, `expected a MembraneError, got ${String(e)}`);
      assert.equal(e.code, 'MEMBRANE_E_USAGE');
      assert.equal(e.message, message);
      return true;
    },
    JSON.stringify(argv),
  );
}

describe('agent flags', () => {
  test('every flag, in both forms', () => {
    const want = { stateDir: '/tmp/s', podCIDR: '10.9.0.0/16', apiPort: 8080, pinRoot: '/sys/fs/bpf/x', socketPath: '/tmp/s/a.sock' };
    assert.deepEqual(parseAgentFlags(['--state-dir', '/tmp/s', '--pod-cidr', '10.9.0.0/16', '--api-port', '8080', '--pin-root', '/sys/fs/bpf/x', '--socket', '/tmp/s/a.sock']), want);
    assert.deepEqual(parseAgentFlags(['--state-dir=/tmp/s', '--pod-cidr=10.9.0.0/16', '--api-port=8080', '--pin-root=/sys/fs/bpf/x', '--socket=/tmp/s/a.sock']), want);
  });

  test('no flags: nothing set, so the environment and defaults apply', () => {
    assert.deepEqual(parseAgentFlags([]), {});
  });

  test('a value containing = is kept whole', () => {
    assert.deepEqual(parseAgentFlags(['--state-dir=/a=b']), { stateDir: '/a=b' });
    assert.deepEqual(parseAgentFlags(['--state-dir', '/a=b=c']), { stateDir: '/a=b=c' });
  });

  test('a repeated flag keeps its last value', () => {
    assert.deepEqual(parseAgentFlags(['--state-dir', '/a', '--state-dir=/b']), { stateDir: '/b' });
  });

  test('--api-port is an integer from 0 to 65535', () => {
    assert.deepEqual(parseAgentFlags(['--api-port', '0']), { apiPort: 0 });
    assert.deepEqual(parseAgentFlags(['--api-port=65535']), { apiPort: 65535 });
    for (const bad of ['65536', '-1', 'http', '', '1e3', '80.5', ' 80', '0x50', '123456']) {
      usageError([`--api-port=${bad}`], `flag --api-port: "${bad}" is not a port number (0 to 65535)`);
    }
  });

  test('unknown flags', () => {
    usageError(['--state'], 'unknown flag --state');
    usageError(['--nope=1'], 'unknown flag --nope');
    usageError(['-s', '/a'], 'unknown flag -s');
  });

  test('a flag without its value', () => {
    usageError(['--state-dir'], 'flag --state-dir needs a value');
    usageError(['--pod-cidr', '10.0.0.0/8', '--socket'], 'flag --socket needs a value');
    usageError(['--state-dir', '--pod-cidr', '10.0.0.0/8'], 'flag --state-dir needs a value (for one that starts with -, write --state-dir=--pod-cidr)');
  });

  test('arguments that are not flags', () => {
    usageError(['/var/lib/membrane'], 'unexpected argument "/var/lib/membrane" (the agent takes only flags)');
    usageError(['--state-dir', '/a', '--', 'x'], 'unexpected argument "x" (the agent takes only flags)');
  });
});
