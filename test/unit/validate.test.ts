/**
 * Argument validation and server addresses. beanstalkd runs the body of a rejected `put` as a command,
 * so everything that reaches the command line must be refused here, before a byte is written; and a
 * refusal must say which argument was wrong and what it was.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { DEFAULT_ADDRESS, DEFAULT_PORT, formatAddress, parseServerUrl, resolveServerAddress } from '../../src/beanstalk/address.js';
import {
  assertBodySize,
  assertInteger,
  assertPriority,
  assertSeconds,
  assertTtr,
  assertTubeName,
  describe as describeValue,
  MAX_TUBE_NAME_BYTES,
  normaliseJobId,
  UINT32_MAX,
} from '../../src/beanstalk/validate.js';

type ErrorClass = typeof TypeError | typeof RangeError;

/** Asserts `run` throws exactly `kind` (not a subclass mix-up) and that the message contains every `parts`. */
function assertThrowsWith(run: () => unknown, kind: ErrorClass, ...parts: string[]): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof Error, `expected an Error, got ${String(error)}`);
    assert.equal(error.constructor, kind, `expected a ${kind.name}, got ${error.name}: ${error.message}`);
    for (const part of parts) assert.ok(error.message.includes(part), `expected ${JSON.stringify(part)} in: ${error.message}`);
    return true;
  });
}

describe('assertTubeName', () => {
  it('accepts 1 to 200 bytes', () => {
    assert.equal(MAX_TUBE_NAME_BYTES, 200);
    assert.doesNotThrow(() => assertTubeName('a'));
    assert.doesNotThrow(() => assertTubeName('a'.repeat(200)));
  });

  it('refuses 201 bytes with a RangeError that gives the size', () => {
    assertThrowsWith(() => assertTubeName('a'.repeat(201)), RangeError, '`tube`', '201 bytes');
  });

  it('accepts every allowed punctuation character, alone and together', () => {
    assert.doesNotThrow(() => assertTubeName('a-+/;.$_()'));
    assert.doesNotThrow(() => assertTubeName('Az09'));
    for (const char of '-+/;.$_()') assert.doesNotThrow(() => assertTubeName(`x${char}y`), `x${char}y`);
    // Every one of them except `-` may also start a name.
    for (const char of '+/;.$_()') assert.doesNotThrow(() => assertTubeName(char), char);
  });

  it('refuses a leading hyphen and says so', () => {
    assertThrowsWith(() => assertTubeName('-jobs'), TypeError, '"-jobs"', 'may not start with `-`');
    assertThrowsWith(() => assertTubeName('-'), TypeError, '"-"');
  });

  it('refuses characters beanstalkd rejects: colon, space, non-ASCII, control characters', () => {
    for (const name of ['a:b', 'a b', 'é', 'caf\u00e9', 'tab\there', 'x\r\ndelete 3', 'a,b', 'a*', 'a#', 'a\u0000']) {
      assertThrowsWith(() => assertTubeName(name), TypeError, JSON.stringify(name));
    }
  });

  it('refuses an empty name with a RangeError', () => {
    assertThrowsWith(() => assertTubeName(''), RangeError, '`tube`', 'empty');
  });

  it('refuses non-strings with a TypeError naming the value and its type', () => {
    assertThrowsWith(() => assertTubeName(5), TypeError, '`tube`', '`5` (number)');
    assertThrowsWith(() => assertTubeName(null), TypeError, '(null)');
    assertThrowsWith(() => assertTubeName(undefined), TypeError, '(undefined)');
    assertThrowsWith(() => assertTubeName(['jobs']), TypeError, '(array)');
  });

  it('names the argument it was given', () => {
    assertThrowsWith(() => assertTubeName('a b', 'tubes[3]'), TypeError, '`tubes[3]`', '"a b"');
  });

  it('counts non-ASCII names in bytes, not characters', () => {
    // 150 characters but 300 bytes: refused either way, and never accepted as "short enough".
    assert.throws(() => assertTubeName('é'.repeat(150)));
    assertThrowsWith(() => assertTubeName('é'.repeat(201)), RangeError, '402 bytes');
  });
});

describe('priority, delay and ttr', () => {
  it('accepts 0 and 2^32-1 for priority and delay', () => {
    assert.equal(UINT32_MAX, 2 ** 32 - 1);
    for (const value of [0, 1, 1024, UINT32_MAX]) {
      assert.doesNotThrow(() => assertPriority(value));
      assert.doesNotThrow(() => assertSeconds(value, 'delay'));
    }
  });

  it('refuses out-of-range and fractional numbers with a RangeError naming argument and value', () => {
    const cases: [unknown, string][] = [
      [-1, '`-1` (number)'],
      [2 ** 32, '`4294967296` (number)'],
      [1.5, '`1.5` (number)'],
      [Number.NaN, '`NaN` (number)'],
      [Number.POSITIVE_INFINITY, '`Infinity` (number)'],
    ];
    for (const [value, shown] of cases) {
      assertThrowsWith(() => assertPriority(value), RangeError, '`priority`', shown);
      assertThrowsWith(() => assertSeconds(value, 'delay'), RangeError, '`delay`', shown);
      assertThrowsWith(() => assertTtr(value), RangeError, '`ttr`', shown);
    }
  });

  it('refuses non-numbers such as "5" with a TypeError', () => {
    for (const value of ['5', null, undefined, 5n, {}, true]) {
      assertThrowsWith(() => assertPriority(value), TypeError, '`priority`');
      assertThrowsWith(() => assertSeconds(value, 'delay'), TypeError, '`delay`');
      assertThrowsWith(() => assertTtr(value), TypeError, '`ttr`');
    }
    assertThrowsWith(() => assertPriority('5'), TypeError, '`"5"` (string)');
  });

  it('accepts a ttr of 2 to 2^32-1', () => {
    assert.doesNotThrow(() => assertTtr(2));
    assert.doesNotThrow(() => assertTtr(60));
    assert.doesNotThrow(() => assertTtr(UINT32_MAX));
  });

  it('refuses a ttr of 0 or 1 and explains the safety margin', () => {
    assertThrowsWith(() => assertTtr(0), RangeError, '`ttr`', '`0` (number)', 'safety margin');
    assertThrowsWith(() => assertTtr(1), RangeError, '`ttr`', '`1` (number)', 'safety margin');
    assertThrowsWith(() => assertTtr(1, 'defaults.ttr'), RangeError, '`defaults.ttr`', 'safety margin');
  });

  it('assertInteger uses the bounds it is given and names them', () => {
    assert.doesNotThrow(() => assertInteger(3, 'n', 3, 3));
    assertThrowsWith(() => assertInteger(4, 'n', 0, 3), RangeError, '`n`', 'from 0 to 3', '`4` (number)');
  });
});

describe('normaliseJobId', () => {
  it('accepts decimal strings and safe non-negative integers', () => {
    assert.equal(normaliseJobId('0'), '0');
    assert.equal(normaliseJobId('123'), '123');
    // beanstalkd ids are 64-bit: a 20-digit string must survive unchanged, not as a lossy number.
    assert.equal(normaliseJobId('18446744073709551615'), '18446744073709551615');
    assert.equal(normaliseJobId(42), '42');
    assert.equal(normaliseJobId(0), '0');
  });

  it('refuses anything that could smuggle a second command or is not an id', () => {
    const bad: unknown[] = [
      '1 2',
      '1\r\ndelete 3',
      '',
      '-1',
      '1.5',
      ' 1',
      '1\n',
      'abc',
      '1'.repeat(21),
      // One past 2^64-1: beanstalkd would answer BAD_FORMAT and the connection would be lost.
      '18446744073709551616',
      '99999999999999999999',
      -1,
      1.5,
      Number.NaN,
      2 ** 53,
      null,
    ];
    for (const id of bad) {
      assert.throws(
        () => normaliseJobId(id),
        (error: unknown) => error instanceof TypeError && error.message.includes('`id`'),
        `id ${JSON.stringify(String(id))} should be refused`,
      );
    }
  });

  it('names the argument and shows the value with control characters escaped', () => {
    assertThrowsWith(() => normaliseJobId('1\r\ndelete 3', 'jobId'), TypeError, '`jobId`', '"1\\r\\ndelete 3"');
  });
});

describe('assertBodySize', () => {
  it('counts bytes, not characters', () => {
    assert.doesNotThrow(() => assertBodySize(Buffer.alloc(65_535), 65_535));
    assertThrowsWith(() => assertBodySize(Buffer.alloc(65_536), 65_535), RangeError, '65535', '65536 bytes');
    // 40,000 characters, 80,000 bytes.
    const wide = Buffer.from('é'.repeat(40_000), 'utf8');
    assertThrowsWith(() => assertBodySize(wide, 65_535), RangeError, '80000 bytes');
  });

  it('uses the limit it is given (the server may have raised it with -z)', () => {
    assert.doesNotThrow(() => assertBodySize(Buffer.alloc(100_000), 100_000));
    assert.throws(() => assertBodySize(Buffer.alloc(11), 10), RangeError);
  });
});

describe('describe', () => {
  it('shows the value and its type', () => {
    assert.equal(describeValue(-1), '`-1` (number)');
    assert.equal(describeValue('x'), '`"x"` (string)');
    assert.equal(describeValue(null), '`null` (null)');
    assert.equal(describeValue([1]), '`[1]` (array)');
    assert.equal(describeValue(5n), '`5n` (bigint)');
    assert.equal(describeValue(Number.NEGATIVE_INFINITY), '`-Infinity` (number)');
  });

  it('does not throw on values JSON cannot show', () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    assert.match(describeValue(circular), /\(object\)$/);
    assert.match(describeValue(Symbol('s')), /Symbol\(s\)/);
  });
});

describe('parseServerUrl', () => {
  it('parses beanstalk://host:port, host:port and host', () => {
    assert.deepEqual(parseServerUrl('beanstalk://h:1'), { host: 'h', port: 1 });
    assert.deepEqual(parseServerUrl('beanstalk://h:1/'), { host: 'h', port: 1 });
    assert.deepEqual(parseServerUrl('h:1'), { host: 'h', port: 1 });
    assert.deepEqual(parseServerUrl('h'), { host: 'h', port: DEFAULT_PORT });
    assert.deepEqual(parseServerUrl('  10.0.0.5:65535  '), { host: '10.0.0.5', port: 65_535 });
  });

  it('defaults the port to 11300', () => {
    assert.equal(DEFAULT_PORT, 11_300);
    assert.equal(parseServerUrl('beanstalk://queue.internal').port, 11_300);
  });

  it('parses bracketed IPv6 addresses', () => {
    assert.deepEqual(parseServerUrl('[::1]:11300'), { host: '::1', port: 11_300 });
    assert.deepEqual(parseServerUrl('beanstalk://[::1]:7'), { host: '::1', port: 7 });
    assert.deepEqual(parseServerUrl('[::1]'), { host: '::1', port: 11_300 });
  });

  it('refuses bad inputs with a TypeError that names the value', () => {
    for (const url of [
      'http://x',
      'h:0',
      'h:99999',
      'h:65536',
      'h:abc',
      'h:',
      'h:-1',
      '',
      '   ',
      'a:b:c',
      'h/x',
      ':11300',
      'u@h:1',
      'a b:1',
    ]) {
      assert.throws(
        () => parseServerUrl(url),
        (error: unknown) => error instanceof TypeError && error.message.includes(`got \`${url}\``),
        `${JSON.stringify(url)} should be refused`,
      );
    }
  });

  it('says why: the scheme, the port, the brackets', () => {
    assertThrowsWith(() => parseServerUrl('http://x'), TypeError, 'beanstalk://', 'http://');
    assertThrowsWith(() => parseServerUrl('h:99999'), TypeError, '1 to 65535');
    assertThrowsWith(() => parseServerUrl('a:b:c'), TypeError, 'brackets');
  });
});

describe('resolveServerAddress', () => {
  it('uses 127.0.0.1:11300 when there is neither an option nor BEANSTALKD_URL', () => {
    assert.deepEqual(resolveServerAddress(undefined, {}), { host: '127.0.0.1', port: 11_300 });
    assert.equal(resolveServerAddress(undefined, {}), DEFAULT_ADDRESS);
    assert.deepEqual(resolveServerAddress(undefined, { BEANSTALKD_URL: '  ' }), DEFAULT_ADDRESS);
  });

  it('uses BEANSTALKD_URL when no option is given', () => {
    assert.deepEqual(resolveServerAddress(undefined, { BEANSTALKD_URL: 'beanstalk://envhost:4000' }), { host: 'envhost', port: 4000 });
  });

  it('lets the option win over the environment', () => {
    assert.deepEqual(resolveServerAddress('opt:5', { BEANSTALKD_URL: 'envhost:4000' }), { host: 'opt', port: 5 });
  });

  it('reads process.env by default', () => {
    const saved = process.env.BEANSTALKD_URL;
    process.env.BEANSTALKD_URL = 'from-process-env:4321';
    try {
      assert.deepEqual(resolveServerAddress(), { host: 'from-process-env', port: 4321 });
    } finally {
      if (saved === undefined) delete process.env.BEANSTALKD_URL;
      else process.env.BEANSTALKD_URL = saved;
    }
  });

  it('refuses a bad BEANSTALKD_URL and a bad option, naming the value', () => {
    assertThrowsWith(() => resolveServerAddress(undefined, { BEANSTALKD_URL: 'http://x' }), TypeError, '`http://x`');
    assertThrowsWith(() => resolveServerAddress('', { BEANSTALKD_URL: 'ok:1' }), TypeError, 'empty');
  });
});

describe('formatAddress', () => {
  it('writes host:port, with IPv6 hosts in brackets', () => {
    assert.equal(formatAddress({ host: 'h', port: 1 }), 'h:1');
    assert.equal(formatAddress({ host: '::1', port: 11_300 }), '[::1]:11300');
    assert.equal(formatAddress(parseServerUrl('[::1]:9')), '[::1]:9');
  });
});
