// parseArgs: kubectl-style flags read by util.parseArgs. Sources: kubectl and
// cilium/hubble (spf13/pflag: flags anywhere, `--flag value`, `--flag=value`,
// `-o json`, `-ojson`, `-o=json`, `--bool=false`, `--` ends flags).
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { MembraneError } from '@membrane/api';
import { boolFlag, flag, outputFormat, parseArgs, type FlagSpec } from './args.js';

const SPECS: FlagSpec[] = [
  { name: 'output', short: 'o', value: true },
  { name: 'namespace', short: 'n', value: true },
  { name: 'filename', short: 'f', value: true, multiple: true },
  { name: 'stdin', short: 'i' },
  { name: 'tty', short: 't' },
  { name: 'live' },
];

function usageError(argv: string[], message: string): void {
  assert.throws(
    () => parseArgs(argv, SPECS),
    (e: unknown) => {
      assert.ok(e instanceof MembraneError, `expected a MembraneError, got ${String(e)}`);
      assert.equal(e.code, 'MEMBRANE_E_USAGE');
      assert.equal(e.message, message);
      return true;
    },
    JSON.stringify(argv),
  );
}

describe('values', () => {
  test('--flag value, --flag=value, -o value, -ovalue and -o=value', () => {
    for (const argv of [['--output', 'json'], ['--output=json'], ['-o', 'json'], ['-ojson'], ['-o=json']]) {
      assert.equal(flag(parseArgs(argv, SPECS), 'output'), 'json', JSON.stringify(argv));
    }
  });

  test('a value may contain = (only the first one splits)', () => {
    assert.equal(flag(parseArgs(['--namespace=a=b'], SPECS), 'namespace'), 'a=b');
    assert.equal(flag(parseArgs(['-n', 'a=b'], SPECS), 'namespace'), 'a=b');
    assert.equal(flag(parseArgs(['-na=b'], SPECS), 'namespace'), 'a=b');
  });

  test('an empty value is a value', () => {
    assert.equal(flag(parseArgs(['--namespace='], SPECS), 'namespace'), '');
    assert.equal(flag(parseArgs(['-n', ''], SPECS), 'namespace'), '');
  });

  test('a repeated flag keeps its last value; a multiple one keeps all, in order', () => {
    const p = parseArgs(['-o', 'json', '-f', 'a.yaml', '--output=yaml', '--filename', 'b.yaml', '-fc.yaml'], SPECS);
    assert.equal(flag(p, 'output'), 'yaml');
    assert.deepEqual(p.flags.get('output'), ['yaml']);
    assert.deepEqual(p.flags.get('filename'), ['a.yaml', 'b.yaml', 'c.yaml']);
  });

  test('a flag not given is undefined', () => {
    assert.equal(flag(parseArgs([], SPECS), 'output'), undefined);
  });
});

describe('booleans', () => {
  test('--flag, -i and grouped short flags -it', () => {
    assert.equal(boolFlag(parseArgs(['--live'], SPECS), 'live'), true);
    const p = parseArgs(['-it', 'pod'], SPECS);
    assert.equal(boolFlag(p, 'stdin'), true);
    assert.equal(boolFlag(p, 'tty'), true);
    assert.deepEqual(p.positionals, ['pod']);
    assert.equal(boolFlag(parseArgs([], SPECS), 'live'), false);
  });

  test('--flag=true and --flag=false, the last one winning', () => {
    assert.equal(boolFlag(parseArgs(['--live=true'], SPECS), 'live'), true);
    assert.equal(boolFlag(parseArgs(['--live=false'], SPECS), 'live'), false);
    assert.equal(boolFlag(parseArgs(['--live', '--live=false'], SPECS), 'live'), false);
    assert.equal(boolFlag(parseArgs(['--live=false', '--live'], SPECS), 'live'), true);
  });

  test('a boolean does not take the next argument', () => {
    const p = parseArgs(['--live', 'x'], SPECS);
    assert.equal(boolFlag(p, 'live'), true);
    assert.deepEqual(p.positionals, ['x']);
  });
});

describe('positionals and --', () => {
  test('flags may come anywhere among positionals', () => {
    const p = parseArgs(['get', '-o', 'wide', 'pods', '--namespace', 'kube', 'x'], SPECS);
    assert.deepEqual(p.positionals, ['get', 'pods', 'x']);
    assert.equal(flag(p, 'output'), 'wide');
    assert.equal(flag(p, 'namespace'), 'kube');
  });

  test('-- ends flags: what follows is rest, flags included', () => {
    const p = parseArgs(['pod', '-n', 'default', '--', 'curl', '-s', '--live', '--', 'x'], SPECS);
    assert.deepEqual(p.positionals, ['pod']);
    assert.deepEqual(p.rest, ['curl', '-s', '--live', '--', 'x']);
    assert.equal(boolFlag(p, 'live'), false);
  });

  test('-- with nothing after it, and no --', () => {
    assert.deepEqual(parseArgs(['a', '--'], SPECS).rest, []);
    assert.deepEqual(parseArgs(['a'], SPECS).rest, []);
  });

  test('a lone - is a positional (stdin, as in -f -)', () => {
    assert.deepEqual(parseArgs(['-'], SPECS).positionals, ['-']);
    assert.deepEqual(parseArgs(['-f', '-'], SPECS).flags.get('filename'), ['-']);
  });
});

describe('usage errors', () => {
  test('unknown flags', () => {
    usageError(['--nope'], 'unknown flag --nope');
    usageError(['--nope=1'], 'unknown flag --nope');
    usageError(['pods', '-x'], 'unknown flag -x');
    usageError(['-ix'], 'unknown flag -ix');
    usageError(['-i=1'], 'unknown flag -i=1');
    usageError(['---x'], 'unknown flag ---x');
  });

  test('a flag that needs a value and has none', () => {
    usageError(['--output'], 'flag --output needs a value');
    usageError(['pods', '-o'], 'flag -o needs a value');
  });

  test('a value that starts with - must be written with =', () => {
    usageError(['--namespace', '-x'], 'flag --namespace needs a value (for one that starts with -, write --namespace=-x)');
    usageError(['-n', '--', 'x'], 'flag -n needs a value (for one that starts with -, write -n=--)');
    assert.equal(flag(parseArgs(['--namespace=-x'], SPECS), 'namespace'), '-x');
    assert.equal(flag(parseArgs(['-n=-x'], SPECS), 'namespace'), '-x');
  });

  test('a boolean given another value', () => {
    usageError(['--live=yes'], 'flag --live takes no value');
  });

  test('a command without flags refuses every flag', () => {
    assert.throws(() => parseArgs(['-o', 'json'], []), /unknown flag -o/);
    assert.deepEqual(parseArgs(['a', 'b'], []).positionals, ['a', 'b']);
  });
});

describe('outputFormat', () => {
  test('the default, an allowed format, and a refused one', () => {
    assert.equal(outputFormat(parseArgs([], SPECS), ['table', 'json'], 'table'), 'table');
    assert.equal(outputFormat(parseArgs(['-ojson'], SPECS), ['table', 'json'], 'table'), 'json');
    assert.throws(() => outputFormat(parseArgs(['-o', 'xml'], SPECS), ['table', 'json'], 'table'), (e: unknown) => {
      assert.ok(e instanceof MembraneError);
      assert.equal(e.code, 'MEMBRANE_E_USAGE');
      assert.equal(e.message, 'unknown output format "xml" (use table, json)');
      return true;
    });
  });
});
