import { describe, expect, it } from 'vitest';
import { EgressGuard, egressFromEnvironment, parseAllowList, pinnedLookup, type Resolver } from '../../server/connectors/egress';
import { ConnectorError } from '../../server/connectors/types/contract';

/** A resolver that answers from a table, as a hostile DNS server might. */
function dns(table: Record<string, string[]>): Resolver {
  return async (host) => {
    const found = table[host];
    if (!found) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    return found.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
}

async function failureOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ConnectorError);
    return (e as ConnectorError).failure;
  }
  throw new Error('expected a refusal');
}

describe('egress guard', () => {
  const guard = new EgressGuard({
    resolver: dns({
      'public.example': ['93.184.215.14'],
      'loop.example': ['127.0.0.1'],
      'mixed.example': ['10.1.2.3', '93.184.215.14'],
      'private.example': ['192.168.1.1', 'fd00::1'],
      'mapped.example': ['::ffff:127.0.0.1'],
    }),
  });

  it('passes a public address and answers the address it checked', async () => {
    await expect(guard.resolve('public.example')).resolves.toEqual({ host: 'public.example', address: '93.184.215.14', family: 4 });
    await expect(guard.resolve('2606:4700::1111')).resolves.toMatchObject({ address: '2606:4700::1111', family: 6 });
  });

  it.each([
    '127.0.0.1',
    '127.8.9.10',
    '::1',
    '0.0.0.0',
    '::',
    '10.0.0.1',
    '172.16.5.4',
    '192.168.0.1',
    '169.254.169.254',
    'fe80::1',
    'fd12:3456::1',
    '224.0.0.1',
    'ff02::1',
    '100.64.0.1',
    '255.255.255.255',
    '::ffff:127.0.0.1',
    '[::1]',
    '2002:7f00:1::1',
  ])('refuses %s', async (address) => {
    expect(await failureOf(guard.resolve(address))).toBe('policy_denied');
  });

  it('refuses a name that resolves only to local or private addresses, after resolving it', async () => {
    expect(await failureOf(guard.resolve('loop.example'))).toBe('policy_denied');
    expect(await failureOf(guard.resolve('private.example'))).toBe('policy_denied');
    expect(await failureOf(guard.resolve('mapped.example'))).toBe('policy_denied');
  });

  it('picks the permitted address of a name that also resolves to a private one', async () => {
    await expect(guard.resolve('mixed.example')).resolves.toMatchObject({ address: '93.184.215.14' });
  });

  it('refuses numeric forms a resolver would read as loopback, and a name that does not resolve', async () => {
    expect(await failureOf(guard.resolve('2130706433'))).toBe('validation_error');
    expect(await failureOf(guard.resolve('127.1'))).toBe('validation_error');
    expect(await failureOf(guard.resolve('0x7f.0.0.1'))).toBe('validation_error');
    expect(await failureOf(guard.resolve('nowhere.example'))).toBe('permanent');
  });

  it('lets the allow list open hosts, wildcards and networks', async () => {
    const allowing = new EgressGuard({
      allow: parseAllowList(' 127.0.0.1 , loop.example,*.corp.example, 10.0.0.0/8, fd00::/8 '),
      resolver: dns({ 'loop.example': ['127.0.0.2'], 'mail.corp.example': ['192.168.7.7'], 'other.example': ['127.0.0.3'] }),
    });
    await expect(allowing.resolve('127.0.0.1')).resolves.toMatchObject({ address: '127.0.0.1' });
    await expect(allowing.resolve('loop.example')).resolves.toMatchObject({ address: '127.0.0.2' });
    await expect(allowing.resolve('mail.corp.example')).resolves.toMatchObject({ address: '192.168.7.7' });
    await expect(allowing.resolve('10.200.0.1')).resolves.toMatchObject({ address: '10.200.0.1' });
    await expect(allowing.resolve('fd00::5')).resolves.toMatchObject({ family: 6 });
    expect(await failureOf(allowing.resolve('127.0.0.2'))).toBe('policy_denied');
    expect(await failureOf(allowing.resolve('other.example'))).toBe('policy_denied');
    expect(await failureOf(allowing.resolve('192.168.1.1'))).toBe('policy_denied');
  });

  it('parses allow lists and names the entry it cannot read', () => {
    const list = parseAllowList('Example.COM., *.example.org, ::ffff:10.0.0.0/104, 2001:db8::1');
    expect([...list.hosts]).toEqual(['example.com']);
    expect(list.suffixes).toEqual(['.example.org']);
    expect(list.cidrs.map(([a, b]) => `${a.toString()}/${b}`)).toEqual(['10.0.0.0/8', '2001:db8::1/128']);
    expect(parseAllowList(undefined).cidrs).toEqual([]);
    expect(parseAllowList(' , ').hosts.size).toBe(0);
    expect(() => parseAllowList('good.example, bad host')).toThrow(/"bad host"/);
    expect(() => parseAllowList('10.0.0.0/99')).toThrow(/"10.0.0.0\/99"/);
  });

  it('takes the installation allow list from CYNODE_CONNECTOR_ALLOW and refuses a bad one', async () => {
    await expect(egressFromEnvironment({ CYNODE_CONNECTOR_ALLOW: '127.0.0.1,10.0.0.0/8' }).resolve('10.9.8.7')).resolves.toMatchObject({ address: '10.9.8.7' });
    expect(await failureOf(egressFromEnvironment({}).resolve('127.0.0.1'))).toBe('policy_denied');
    expect(() => egressFromEnvironment({ CYNODE_CONNECTOR_ALLOW: 'http://x' })).toThrow(/CIDR|host name/);
  });

  it('pins the lookup to the checked address whichever form the socket asks for', () => {
    const lookup = pinnedLookup({ host: 'x.example', address: '93.184.215.14', family: 4 });
    const one: unknown[] = [];
    lookup('x.example', {}, (...args: unknown[]) => one.push(...args));
    expect(one).toEqual([null, '93.184.215.14', 4]);
    const all: unknown[] = [];
    lookup('x.example', { all: true }, (...args: unknown[]) => all.push(...args));
    expect(all).toEqual([null, [{ address: '93.184.215.14', family: 4 }]]);
  });
});
