import { describe, expect, it } from 'vitest'
import { parseCommand } from '../src/cli/args.ts'
import { resolveOptions } from '../src/config.ts'

const ISSUER = '0x1111111111111111111111111111111111111111'

describe('relay command line', () => {
  it('keeps the relay off unless a relay listen address is given', () => {
    const cmd = parseCommand(['start'], {}, undefined)
    expect(cmd.kind === 'start' && cmd.options.relay).toBeUndefined()
  })

  it('turns flags into relay options the node accepts', () => {
    const cmd = parseCommand(
      [
        'start',
        '--relay-listen',
        '0.0.0.0:7481',
        '--relay-issuer',
        ISSUER,
        '--relay-client-rate',
        '2MiB/s',
        '--relay-rate',
        '10MiB/s',
        '--relay-max-tunnels',
        '4',
        '--relay-allow',
        'port:587',
        '--relay-allow',
        '192.168.1.50/32',
        '--relay-deny',
        '.example.org',
        '--relay-deny',
        '203.0.113.0/24',
        '--relay-deny',
        'port:8080',
      ],
      {},
      undefined,
    )
    if (cmd.kind !== 'start') throw new Error('expected start')
    expect(cmd.options.relay).toEqual({
      host: '0.0.0.0',
      port: 7481,
      issuers: [ISSUER],
      clientBytesPerSecond: 2 * 2 ** 20,
      bytesPerSecond: 10 * 2 ** 20,
      maxConcurrentPerClient: 4,
      egress: {
        allowPorts: [587],
        allowCidrs: ['192.168.1.50/32'],
        denyHosts: ['.example.org'],
        denyCidrs: ['203.0.113.0/24'],
        denyPorts: [8080],
      },
    })
    expect(resolveOptions({ ...cmd.options, dataDir: '/tmp/x' }).relay?.port).toBe(7481)
  })

  it('reads the relay from the environment and the config file', () => {
    const cmd = parseCommand(
      ['start'],
      { SHOAL_RELAY_LISTEN: '127.0.0.1:9000', SHOAL_RELAY_ISSUERS: ISSUER },
      { relay: { idleTimeoutMs: 5000 } },
    )
    if (cmd.kind !== 'start') throw new Error('expected start')
    expect(cmd.options.relay).toMatchObject({
      host: '127.0.0.1',
      port: 9000,
      issuers: [ISSUER],
      idleTimeoutMs: 5000,
    })
  })

  it('refuses a relay without issuers, bad rules and bad CIDRs with typed errors', () => {
    const bad = (argv: string[]) => () => {
      const cmd = parseCommand(['start', '--relay-listen', ':7481', ...argv], {}, undefined)
      if (cmd.kind === 'start') resolveOptions({ ...cmd.options, dataDir: '/tmp/x' })
    }
    const invalid = expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' })
    expect(bad([])).toThrow(invalid)
    expect(bad(['--relay-issuer', ISSUER, '--relay-allow', 'example.org'])).toThrow(invalid)
    expect(bad(['--relay-issuer', ISSUER, '--relay-deny', 'port:x'])).toThrow(invalid)
    expect(bad(['--relay-issuer', ISSUER, '--relay-allow', '10.0.0.0/99'])).toThrow(invalid)
    expect(bad(['--relay-issuer', 'nope'])).toThrow(invalid)
  })
})
