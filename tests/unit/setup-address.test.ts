import { describe, expect, it } from 'vitest';
import { isLoopbackAddress, isLoopbackHost } from '../../server/http/addresses';
import { setupRefusal } from '../../server/setup/routes';

// Who may choose the first-run admin password: only a client at the machine (loopback), asking
// for a loopback host name (a DNS-rebound page in the owner's browser names its own).
describe('first-run setup: the loopback check', () => {
  it.each(['127.0.0.1', '127.1.2.3', '::1', '0:0:0:0:0:0:0:1', '::0001', '::ffff:127.0.0.1', '[::1]', '::FFFF:127.0.0.9'])('%s is loopback', (a) => {
    expect(isLoopbackAddress(a)).toBe(true);
  });

  it.each(['192.168.1.5', '10.0.0.1', '0.0.0.0', '128.0.0.1', '::', '::2', 'fe80::1', '::ffff:192.168.1.5', '::ffff:7f00:1x', '1::1', 'localhost', '127.0.0.1.evil.example', '', undefined])('%s is not', (a) => {
    expect(isLoopbackAddress(a)).toBe(false);
  });

  it('takes loopback Host headers with or without a port, and nothing else', () => {
    for (const h of ['127.0.0.1:12080', '127.0.0.1', 'localhost:12080', 'LOCALHOST', '[::1]:12080', '[::1]']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['evil.example:12080', '192.168.1.5:12080', 'localhost.evil.example', '127.0.0.1.nip.io:80', '[fe80::1]:12080', '', undefined]) expect(isLoopbackHost(h), String(h)).toBe(false);
  });

  it('refuses unless both the client address and the Host are loopback', () => {
    expect(setupRefusal('127.0.0.1', '127.0.0.1:12080')).toBeNull();
    expect(setupRefusal('::1', 'localhost:12080')).toBeNull();
    expect(setupRefusal('::ffff:127.0.0.1', '[::1]:1')).toBeNull();
    expect(setupRefusal('192.168.1.5', '127.0.0.1:12080')).toMatch(/loopback/);
    expect(setupRefusal('127.0.0.1', 'evil.example')).toMatch(/loopback/);
    expect(setupRefusal(undefined, '127.0.0.1')).toMatch(/loopback/);
  });
});
