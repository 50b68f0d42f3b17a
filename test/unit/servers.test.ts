// The server list, qualified ids and rendezvous hashing behind puts over several servers.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { locateId } from '../../src/admin/input.js';
import { hash32, rankFor } from '../../src/servers/hash.js';
import { qualifyId, splitJobId } from '../../src/servers/job-id.js';
import { MAX_SERVERS, parseServerList } from '../../src/servers/server-list.js';

describe('parseServerList', () => {
  it('takes one URL, a comma-separated list, an array, or BEANSTALKD_URL, and names each host:port', () => {
    assert.deepEqual(
      parseServerList('a:1').map((s) => s.name),
      ['a:1'],
    );
    assert.deepEqual(
      parseServerList('beanstalk://a:1, b , [::1]:3').map((s) => s.name),
      ['a:1', 'b:11300', '[::1]:3'],
    );
    assert.deepEqual(
      parseServerList(['a:1', 'b:2,c:3']).map((s) => s.name),
      ['a:1', 'b:2', 'c:3'],
    );
    assert.deepEqual(
      parseServerList(undefined, { BEANSTALKD_URL: 'x:9,y:8' }).map((s) => s.name),
      ['x:9', 'y:8'],
    );
    assert.deepEqual(
      parseServerList(undefined, {}).map((s) => s.name),
      ['127.0.0.1:11300'],
    );
  });

  it('refuses an empty item, the same server twice, a non-string, and too many servers', () => {
    assert.throws(() => parseServerList('a:1,,b:2'), /an empty item/);
    assert.throws(() => parseServerList('a:1,'), /an empty item/);
    assert.throws(() => parseServerList('a:1,beanstalk://a:1'), /a:1 is listed twice/);
    assert.throws(() => parseServerList(['a:1', 7 as unknown as string]), /to be a string, got number/);
    assert.throws(() => parseServerList([]), /at least one/);
    assert.throws(() => parseServerList(''), /it is empty/);
    assert.throws(() => parseServerList('a:1,b:two'), /the port must be a number/);
    const many = Array.from({ length: MAX_SERVERS + 1 }, (_, i) => `h${i}:1`).join(',');
    assert.throws(() => parseServerList(many), /at most 64/);
  });

  it('gives each server one name however it is spelled, so ids, key routing and --server agree across processes', () => {
    assert.deepEqual(
      parseServerList('Queue-1.Example:11300,[0:0:0:0:0:0:0:1]:11301,[FE80::1]').map((server) => server.name),
      ['queue-1.example:11300', '[::1]:11301', '[fe80::1]:11300'],
    );
    assert.throws(() => parseServerList('LOCALHOST:11300,localhost'), /localhost:11300 is listed twice/);
    assert.throws(() => parseServerList('[::1]:5,[0::1]:5'), /\[::1\]:5 is listed twice/);
    assert.throws(() => parseServerList('[1:2:3]'), /is not an IPv6 address/);
  });
});

describe('locateId', () => {
  it('finds a qualified id whose server is spelled differently from the list', () => {
    const servers = ['localhost:11300', '[::1]:11301'];
    assert.deepEqual(locateId('LOCALHOST:11300/42', servers), { server: 0, id: '42' });
    assert.deepEqual(locateId('beanstalk://[0::1]:11301/7', servers), { server: 1, id: '7' });
    assert.throws(() => locateId('other:1/7', servers), /no configured server is called "other:1"/);
  });
});

describe('qualified job ids', () => {
  it('are name/id and split at the last slash', () => {
    assert.equal(qualifyId('127.0.0.1:11301', '42'), '127.0.0.1:11301/42');
    assert.deepEqual(splitJobId('127.0.0.1:11301/42'), { server: '127.0.0.1:11301', id: '42' });
    assert.deepEqual(splitJobId('[::1]:11300/7'), { server: '[::1]:11300', id: '7' });
    assert.deepEqual(splitJobId('42'), { server: undefined, id: '42' });
  });
});

describe('rendezvous hashing', () => {
  const names = ['10.0.0.1:11300', '10.0.0.2:11300', '10.0.0.3:11300'];

  it('is stable: fixed values, so every process and release agrees', () => {
    // Golden values: a change here moves every keyed job to another server, which is a breaking change.
    assert.equal(hash32(''), 2872998923);
    assert.equal(hash32('bsworker'), 1822040524);
    assert.deepEqual(
      ['a', 'b', 'c', 'customer-7', 'order:123'].map((key) => rankFor(key, names)),
      [
        [2, 0, 1],
        [0, 2, 1],
        [0, 1, 2],
        [2, 1, 0],
        [2, 1, 0],
      ],
    );
  });

  it('spreads keys evenly, and a skipped server moves only its own keys', () => {
    const keys = Array.from({ length: 6_000 }, (_, i) => `key-${i}`);
    const counts = [0, 0, 0];
    const first = keys.map((key) => rankFor(key, names)[0] as number);
    for (const index of first) counts[index] = (counts[index] as number) + 1;
    for (const count of counts) assert.ok(count > 1_700 && count < 2_300, `uneven: ${counts.join(', ')}`);
    // Without server 1, the others keep every key they had; server 1's keys go to their second choice.
    const withoutOne = ['10.0.0.1:11300', '10.0.0.3:11300'];
    for (const [i, key] of keys.entries()) {
      const owner = names[first[i] as number];
      const now = withoutOne[rankFor(key, withoutOne)[0] as number];
      if (owner !== '10.0.0.2:11300') assert.equal(now, owner, key);
      else assert.equal(now, names[rankFor(key, names)[1] as number], key);
    }
  });
});
