import { describe, expect, it } from 'vitest'
import { configPathOf, parseCommand, parseListen, parseRate, parseSize } from '../src/cli/args.ts'
import { resolveOptions } from '../src/config.ts'
import { resolveMeshInit } from '../src/mesh/index.ts'

const bad = { code: 'SHOAL_ERR_INVALID_ARGUMENT' }

describe('shoal-node arguments', () => {
  it('needs nothing but an origin to start', () => {
    const cmd = parseCommand(['start', '--origin', 'https://example.org'], {}, undefined)
    expect(cmd).toMatchObject({
      kind: 'start',
      options: { dataDir: './shoal-data', defaultOrigin: 'https://example.org' },
    })
    if (cmd.kind !== 'start') throw new Error('unreachable')
    const resolved = resolveOptions(cmd.options)
    expect(resolved.port).toBe(7480)
    expect(resolved.memoryCacheBytes).toBe(64 * 2 ** 20)
    expect(resolved.memoryPolicy).toBe('lru')
    expect(resolved.diskAdmission).toBe('second-use')
  })

  it('reads the memory policy and the disk admission from flags, env and the config file', () => {
    const flags = parseCommand(
      ['start', '--memory-policy', 'lru', '--disk-admission', 'first-use'],
      {},
      undefined,
    )
    expect(flags).toMatchObject({ options: { memoryPolicy: 'lru', diskAdmission: 'first-use' } })
    const env = parseCommand(['start'], { SHOAL_MEMORY_POLICY: 'lru', SHOAL_DISK_ADMISSION: 'first-use' }, {})
    expect(env).toMatchObject({ options: { memoryPolicy: 'lru', diskAdmission: 'first-use' } })
    const file = parseCommand(['start'], {}, { memoryPolicy: 's3-fifo', diskAdmission: 'second-use' })
    expect(file).toMatchObject({ options: { memoryPolicy: 's3-fifo', diskAdmission: 'second-use' } })
    expect(() => resolveOptions({ dataDir: '/d', memoryPolicy: 'mru' as never })).toThrow(
      expect.objectContaining(bad),
    )
    expect(() => resolveOptions({ dataDir: '/d', diskAdmission: 'never' as never })).toThrow(
      expect.objectContaining(bad),
    )
  })

  it('reads sizes, rates, listen addresses and sites', () => {
    expect(parseSize('64MiB', 'x')).toBe(64 * 2 ** 20)
    expect(parseSize('1.5GB', 'x')).toBe(1.5e9)
    expect(parseSize('4096', 'x')).toBe(4096)
    expect(parseRate('20MiB/s', 'x')).toBe(20 * 2 ** 20)
    expect(parseListen('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 })
    expect(parseListen('[::1]:8080')).toEqual({ host: '::1', port: 8080 })
    expect(parseListen(':8080')).toEqual({ host: '0.0.0.0', port: 8080 })
    const cmd = parseCommand(
      [
        'start',
        '--site',
        'blog=https://blog.example',
        '--site',
        'img=http://127.0.0.1:9000/img',
        '--egress-limit',
        '1MiB/s',
      ],
      {},
      undefined,
    )
    expect(cmd).toMatchObject({
      options: {
        sites: [
          { name: 'blog', origin: 'https://blog.example' },
          { name: 'img', origin: 'http://127.0.0.1:9000/img' },
        ],
        egressBytesPerSecond: 2 ** 20,
      },
    })
  })

  it('reads how the node presents itself to the tracker, with defaults and clear refusals', () => {
    const plain = parseCommand(['start', '--tracker', 'http://127.0.0.1:7470'], {}, undefined)
    expect(plain).toMatchObject({ kind: 'start', announce: { region: 'local', capacity: 12_500_000 } })
    const limited = parseCommand(['start', '--egress-limit', '2MiB/s'], {}, undefined)
    expect(limited).toMatchObject({ announce: { capacity: 2 * 2 ** 20 } })
    const full = parseCommand(
      ['start', '--public-url', 'https://n1.example/', '--region', 'eu-west', '--capacity', '10MB/s'],
      { SHOAL_PAYOUT: '0x00000000000000000000000000000000000000aa' },
      undefined,
    )
    expect(full).toMatchObject({
      announce: {
        publicUrl: 'https://n1.example/',
        region: 'eu-west',
        capacity: 10_000_000,
        payout: '0x00000000000000000000000000000000000000aa',
      },
    })
    expect(() => parseCommand(['start', '--region', 'EU West'], {}, undefined)).toThrow(
      expect.objectContaining({ ...bad, message: expect.stringContaining('--region') }),
    )
    expect(() => parseCommand(['start', '--payout', '0x12'], {}, undefined)).toThrow(
      expect.objectContaining({ ...bad, message: expect.stringContaining('--payout') }),
    )
    expect(() => parseCommand(['start', '--public-url', 'ftp://x'], {}, undefined)).toThrow(
      expect.objectContaining({ ...bad, message: expect.stringContaining('--public-url') }),
    )
    expect(() => parseCommand(['start', '--capacity', 'fast'], {}, undefined)).toThrow(
      expect.objectContaining({ ...bad, message: expect.stringContaining('--capacity') }),
    )
  })

  it('parses claim, and says what it is missing', () => {
    const d = '0x00000000000000000000000000000000000000d1'
    expect(
      parseCommand(
        ['claim', '--rpc-url', 'http://127.0.0.1:8545', '--distributor', d, '--data-dir', '/n'],
        { SHOAL_TRACKER: 'http://127.0.0.1:7470' },
        undefined,
      ),
    ).toEqual({
      kind: 'claim',
      dataDir: '/n',
      trackerUrl: 'http://127.0.0.1:7470',
      rpcUrl: 'http://127.0.0.1:8545',
      distributor: d,
    })
    for (const [argv, missing] of [
      [['claim', '--rpc-url', 'http://x', '--distributor', d], '--tracker'],
      [['claim', '--tracker', 'http://x', '--distributor', d], '--rpc-url'],
      [['claim', '--tracker', 'http://x', '--rpc-url', 'http://x', '--distributor', '0x12'], '--distributor'],
    ] as const) {
      expect(() => parseCommand([...argv], {}, undefined)).toThrow(
        expect.objectContaining({ ...bad, message: expect.stringContaining(missing) }),
      )
    }
  })

  it('takes flags over env over config file', () => {
    const file = { memoryCache: '1MiB', diskCache: '10GiB', dataDir: '/from-file' }
    const env = { SHOAL_MEMORY_CACHE: '2MiB', SHOAL_DATA_DIR: '/from-env' }
    const cmd = parseCommand(['start', '--memory-cache', '3MiB'], env, file)
    expect(cmd).toMatchObject({
      options: { memoryCacheBytes: 3 * 2 ** 20, diskCacheBytes: 10 * 2 ** 30, dataDir: '/from-env' },
    })
    expect(configPathOf(['start', '--config', 'a.json'], {})).toBe('a.json')
    expect(configPathOf(['start', '--config=b.json'], {})).toBe('b.json')
    expect(configPathOf(['start'], { SHOAL_CONFIG: 'c.json' })).toBe('c.json')
  })

  it('parses key commands and help', () => {
    expect(parseCommand(['key', 'create', '--data-dir', '/d'], {}, undefined)).toEqual({
      kind: 'key-create',
      dataDir: '/d',
    })
    expect(parseCommand(['key', 'show'], {}, undefined)).toEqual({
      kind: 'key-show',
      dataDir: './shoal-data',
    })
    expect(parseCommand(['--help'], {}, undefined)).toEqual({ kind: 'help' })
    expect(parseCommand([], {}, undefined)).toEqual({ kind: 'help' })
  })

  it.each([
    [['start', '--bogus']],
    [['start', '--memory-cache', 'lots']],
    [['start', '--listen', 'nope']],
    [['start', '--listen', '1.2.3.4:99999']],
    [['start', '--site', 'noequals']],
    [['start', '--tls-cert', 'a.pem']],
    [['start', '--log-level', 'loud']],
    [['start', '--accept-pushes', 'everyone']],
    [['start', '--memory-policy', 'mru']],
    [['start', '--disk-admission', 'third-use']],
    [['stop']],
    [['key', 'delete']],
  ])('refuses %j with a clear typed error', (argv) => {
    expect(() => parseCommand(argv, {}, undefined)).toThrow(expect.objectContaining(bad))
  })

  it('refuses unknown config-file options and bad option values at resolve time', () => {
    expect(() => parseCommand(['start'], {}, { cacheSize: 1 })).toThrow(expect.objectContaining(bad))
    expect(() => resolveOptions({ dataDir: '/d', defaultOrigin: 'ftp://x' })).toThrow(
      expect.objectContaining(bad),
    )
    expect(() => resolveOptions({ dataDir: '/d', defaultOrigin: 'https://u:p@x' })).toThrow(
      expect.objectContaining(bad),
    )
    expect(() =>
      resolveOptions({ dataDir: '/d', sites: [{ name: 'Bad_Name', origin: 'https://x' }] }),
    ).toThrow(expect.objectContaining(bad))
    expect(() =>
      resolveOptions({
        dataDir: '/d',
        sites: [
          { name: 'a', origin: 'https://x' },
          { name: 'a', origin: 'https://y' },
        ],
      }),
    ).toThrow(expect.objectContaining(bad))
    expect(() => resolveOptions({ dataDir: '' })).toThrow(expect.objectContaining(bad))
    expect(() => resolveOptions({ dataDir: '/d', port: 70000 })).toThrow(expect.objectContaining(bad))
  })

  it('reads the mesh port and peers, and turns the mesh off', () => {
    const peer = '/ip4/127.0.0.1/tcp/7481/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN'
    const on = parseCommand(['start', '--mesh-port', '9001', '--mesh-peer', peer], {}, undefined)
    expect(on).toMatchObject({
      kind: 'start',
      options: {
        mesh: {
          port: 9001,
          bootstrap: [{ peerId: '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN', multiaddrs: [peer] }],
        },
      },
    })
    expect(
      parseCommand(['start', '--mesh-relay', peer, '--mesh-relay-server', '--mesh-upnp'], {}, undefined),
    ).toMatchObject({ options: { mesh: { relays: [peer], relayServer: true, upnp: true } } })
    expect(parseCommand(['start'], { SHOAL_MESH_PORT: 'off' }, undefined)).toMatchObject({
      options: { mesh: false },
    })
    const bad = { code: 'SHOAL_ERR_INVALID_ARGUMENT' }
    expect(() => parseCommand(['start', '--mesh-port', '99999'], {}, undefined)).toThrow(
      expect.objectContaining(bad),
    )
    expect(() => parseCommand(['start', '--mesh-peer', '/ip4/127.0.0.1/tcp/1'], {}, undefined)).toThrow(
      expect.objectContaining(bad),
    )
  })

  it("gives the mesh the node's region, so discovery asks the tracker for regional neighbours", () => {
    const tracked = parseCommand(
      ['start', '--tracker', 'http://127.0.0.1:7470', '--region', 'eu-west'],
      {},
      undefined,
    )
    expect(tracked).toMatchObject({ options: { mesh: { region: 'eu-west' } } })
    const meshed = parseCommand(
      ['start', '--tracker', 'http://127.0.0.1:7470', '--mesh-port', '9001'],
      { SHOAL_REGION: 'ap-south' },
      undefined,
    )
    expect(meshed).toMatchObject({ options: { mesh: { port: 9001, region: 'ap-south' } } })
    // no tracker, no discovery; a mesh turned off stays off
    expect(parseCommand(['start', '--region', 'eu-west'], {}, undefined)).not.toMatchObject({
      options: { mesh: expect.anything() },
    })
    expect(
      parseCommand(['start', '--tracker', 'http://127.0.0.1:7470', '--mesh-port', 'off'], {}, undefined),
    ).toMatchObject({ options: { mesh: false } })
    const bad = expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' })
    expect(() => resolveMeshInit({ region: 'EU West' }, '127.0.0.1', 0)).toThrow(bad)
  })

  it('puts the mesh beside the HTTP port and checks its options', () => {
    expect(resolveMeshInit({}, '127.0.0.1', 7480).listen).toEqual(['/ip4/127.0.0.1/tcp/7580'])
    expect(resolveMeshInit({}, '127.0.0.1', 0).listen).toEqual(['/ip4/127.0.0.1/tcp/0'])
    expect(resolveMeshInit({ port: 9000 }, '::1', 7480).listen).toEqual(['/ip6/::1/tcp/9000'])
    const bad = expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' })
    expect(() => resolveMeshInit({}, '127.0.0.1', 65500)).toThrow(bad)
    expect(() => resolveMeshInit({ relays: ['/ip4/1.2.3.4/tcp/1'] }, '127.0.0.1', 0)).toThrow(bad)
    expect(() => resolveMeshInit({ bootstrap: [{ peerId: 1 } as never] }, '127.0.0.1', 0)).toThrow(bad)
  })
})
