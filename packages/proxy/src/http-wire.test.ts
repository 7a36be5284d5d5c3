import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { BodyFramer, closesAfter, parseHead, requestFraming, responseFraming } from './http-wire.js';

const b = (s: string) => Buffer.from(s, 'latin1');

test('a request head: start line, headers as received (names keep their case, values trimmed), its length', () => {
  const r = parseHead(b('GET /a?b=1 HTTP/1.1\r\nHost: d\r\nX-Trace:  7 \r\n\r\nBODY'), 1024, 'request');
  assert.ok('head' in r);
  assert.deepEqual(r.head, { start: ['GET', '/a?b=1', '1.1'], rawHeaders: ['Host', 'd', 'X-Trace', '7'], length: 46 });
  assert.deepEqual(parseHead(b('GET / HTTP/1.1\r\nHost: d\r\n'), 1024, 'request'), { incomplete: true });
});

test('heads refused: obs-fold, bad names, space before the colon, control characters, bare LF, bad start lines, too large', () => {
  const bad = [
    'GET / HTTP/1.1\r\nHost: d\r\nX: a\r\n b\r\n\r\n',
    'GET / HTTP/1.1\r\nX Y: a\r\n\r\n',
    'GET / HTTP/1.1\r\nHost : d\r\n\r\n',
    'GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n',
    'GET / HTTP/1.1\nHost: d\n\n',
    'GET / HTTP/1.1\r\nHost: d\nX: y\r\n\r\n',
    'GET  / HTTP/1.1\r\n\r\n',
    'GET / HTTP/2.0\r\n\r\n',
    'G@T / HTTP/1.1\r\n\r\n',
    '\r\nGET / HTTP/1.1\r\n\r\n',
  ];
  for (const s of bad) assert.ok('error' in parseHead(b(s), 1024, 'request'), JSON.stringify(s));
  assert.ok('error' in parseHead(b(`GET / HTTP/1.1\r\nX: ${'a'.repeat(2000)}`), 1024, 'request'), 'too large before its end shows');
  assert.ok('error' in parseHead(b(`GET / HTTP/1.1\r\nX: ${'a'.repeat(2000)}\r\n\r\n`), 1024, 'request'));
});

test('framing: requests by Transfer-Encoding, one Content-Length or nothing; responses by method, status and headers', () => {
  assert.deepEqual(requestFraming(['Transfer-Encoding', 'chunked']), { kind: 'chunked' });
  assert.deepEqual(requestFraming(['Content-Length', '12']), { kind: 'length', length: 12 });
  assert.deepEqual(requestFraming(['Content-Length', '0']), { kind: 'none' });
  assert.deepEqual(requestFraming([]), { kind: 'none' });
  for (const cl of ['0, 30', '+5', '5 5', '0x10', '']) assert.ok('error' in requestFraming(['Content-Length', cl]), cl);
  assert.ok('error' in requestFraming(['Content-Length', '1', 'content-length', '1']));
  assert.deepEqual(responseFraming('HEAD', 200, ['Content-Length', '5']), { kind: 'none' });
  assert.deepEqual(responseFraming('GET', 304, ['Content-Length', '5']), { kind: 'none' });
  assert.deepEqual(responseFraming('GET', 200, ['Transfer-Encoding', 'gzip, chunked']), { kind: 'chunked' });
  assert.deepEqual(responseFraming('GET', 200, ['Content-Length', '5']), { kind: 'length', length: 5 });
  assert.deepEqual(responseFraming('GET', 200, []), { kind: 'close' });
  assert.equal(closesAfter('1.1', []), false);
  assert.equal(closesAfter('1.1', ['Connection', 'keep-alive, Close']), true);
  assert.equal(closesAfter('1.0', []), true);
  assert.equal(closesAfter('1.0', ['connection', 'Keep-Alive']), false);
});

test('a chunked body is counted across any split, and ends after its trailers; the next message is not its', () => {
  const body = b('5;ext=1\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nX-T: 1\r\n\r\nGET /next');
  for (let split = 1; split < body.length; split++) {
    const f = new BodyFramer({ kind: 'chunked' });
    const n1 = f.consume(body.subarray(0, split), 0);
    assert.equal(n1, split > 51 ? 51 : split, `split ${split}`);
    const n2 = f.done ? 0 : f.consume(body.subarray(split), 0);
    assert.equal(n1 + n2, 51, `split ${split}`);
    assert.equal(f.done, true);
    assert.equal(f.error, undefined);
  }
});

test('chunked bodies refused: a bad size, data not followed by CRLF, a bare LF, a size line too long', () => {
  for (const s of ['zz\r\n', '5\r\nhelloXX', '5\nhello\r\n', `${'1'.repeat(5000)}`, '5\r\nhello\r\n0\r\nbad trailer\r\n\r\n']) {
    const f = new BodyFramer({ kind: 'chunked' });
    f.consume(b(s), 0);
    assert.ok(f.error, JSON.stringify(s.slice(0, 30)));
    assert.equal(f.done, true);
  }
});

test('a Content-Length body is counted exactly; a close-delimited one takes everything', () => {
  const f = new BodyFramer({ kind: 'length', length: 5 });
  assert.equal(f.consume(b('abc'), 0), 3);
  assert.equal(f.consume(b('deGET'), 0), 2);
  assert.equal(f.done, true);
  const c = new BodyFramer({ kind: 'close' });
  assert.equal(c.consume(b('anything'), 2), 6);
  assert.equal(c.done, false);
});
