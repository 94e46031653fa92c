/**
 * The whole network on one machine: an in-process EVM chain served on 127.0.0.1, the
 * contracts, a funded publisher, a tracker and edge nodes as real child processes (their
 * real command lines), a sample origin, and one node whose public URL corrupts bytes.
 * `startDevnet` boots it and returns a handle; `stop` ends every process it started.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { deployShoal, fundEscrow, type ShoalChain, type ShoalDeployment, startChain } from '@shoal/contracts'
import { createSqliteStore, createTracker, createViemSettlementChain, type Tracker } from '@shoal/tracker'
import pino from 'pino'
import { type Address, getAddress, parseEther } from 'viem'
import { type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts'
import { type DevnetArgs, portsOf } from './args.ts'
import { type CorruptProxy, startCorruptProxy } from './corrupt-proxy.ts'
import { prepareSampleSite, type SampleOrigin, startSampleOrigin } from './origin.ts'
import { requireFreePorts } from './ports.ts'
import { createSupervisor, type Service, type ServiceExit, type Supervisor } from './supervisor.ts'

const NODE_BIN = fileURLToPath(new URL('../../edge-node/bin/shoal-node.ts', import.meta.url))

/** Regions the devnet's nodes are spread over, round robin. */
export const DEVNET_REGIONS = ['eu-west', 'us-east', 'ap-south'] as const
/** Tokens the publisher deposits into escrow. */
export const PUBLISHER_DEPOSIT = parseEther('1000')
/** Epoch length on the devnet: short, so an epoch settles within the first minute. */
export const DEVNET_EPOCH_SECONDS = 15
/** What a GiB of delivery earns on the devnet (token base units). */
export const DEVNET_PRICE_PER_GIB = parseEther('100')

export interface DevnetNode {
  index: number
  name: string
  address: Address
  /** Where the node listens. */
  url: string
  /** What it registered: the corrupting proxy for the bad node. */
  publicUrl: string
  region: string
  pid: number
  dataDir: string
  logFile: string
  /** True for the node whose public URL flips bits. */
  corrupt: boolean
}

export interface Devnet {
  readonly dataDir: string
  readonly keep: boolean
  readonly chain: { url: string; chainId: number; client: ShoalChain }
  readonly contracts: ShoalDeployment
  readonly publisher: PrivateKeyAccount
  /** The tracker runs in the devnet's own process (its settlement posts to the chain). */
  readonly tracker: Tracker
  readonly origin: SampleOrigin
  readonly siteDir: string
  readonly nodes: readonly DevnetNode[]
  readonly corruptProxy: CorruptProxy
  /** Called once if a child process dies while the devnet runs. */
  onCrash(listener: (exit: ServiceExit) => void): void
  /** Stops everything it started; removes the data directory unless `keep` (or `options.keep`). */
  stop(options?: { keep?: boolean }): Promise<void>
}

export interface DevnetProgress {
  /** A step begins. */
  step(text: string): void
  /** The step ended. */
  done(detail?: string): void
}

const SILENT: DevnetProgress = { step() {}, done() {} }

/** The passphrase of every devnet key: a devnet holds no real money. */
const DEVNET_PASSPHRASE = 'shoal-devnet'

/**
 * @example
 * const devnet = await startDevnet({ nodes: 5, basePort: 7470, keep: false, exit: true })
 * console.log(devnet.tracker.url)
 * await devnet.stop()
 */
export async function startDevnet(args: DevnetArgs, progress: DevnetProgress = SILENT): Promise<Devnet> {
  const ports = portsOf(args)
  const corruptPorts = { node: ports.nodes.at(-1)! + 1, proxy: ports.nodes.at(-1)! + 2 }
  await requireFreePorts(
    [
      ports.tracker,
      ports.origin,
      ports.chain,
      ...[...ports.nodes, corruptPorts.node].flatMap((p) => [p, p + 100]),
      corruptPorts.proxy,
    ],
    `Stop the other devnet, or move this one: npm start -- --base-port ${args.basePort + 1000}`,
  )
  const dataDir = args.dataDir ?? (await mkdtemp(join(tmpdir(), 'shoal-devnet-')))
  await mkdir(dataDir, { recursive: true })
  const supervisor: Supervisor = createSupervisor()
  const closers: (() => Promise<unknown>)[] = []
  let stopped = false
  const stop = async (options: { keep?: boolean } = {}) => {
    if (stopped) return
    stopped = true
    await supervisor.stopAll()
    for (const close of closers.reverse()) await close().catch(() => {})
    if (!(args.keep || options.keep === true)) await rm(dataDir, { recursive: true, force: true })
  }

  try {
    progress.step('starting the EVM chain')
    const chain = await startChain({ accounts: 4 })
    closers.push(() => chain.close())
    const rpc = await chain.serve({ port: ports.chain })
    progress.done(rpc.url)

    progress.step('deploying the contracts and funding the publisher')
    const [deployer, , settlerWallet] = chain.walletClients
    const publisher = privateKeyToAccount(chain.accounts[1]!.privateKey)
    // the tracker's key signs tickets and, holding SETTLER_ROLE, posts the epoch roots
    const trackerAccount = privateKeyToAccount(chain.accounts[2]!.privateKey)
    const contracts = await deployShoal({
      walletClient: deployer!,
      publicClient: chain.publicClient,
      settler: trackerAccount.address,
      noticePeriodSeconds: 7 * 24 * 3600,
    })
    await fundEscrow({
      walletClient: deployer!,
      publicClient: chain.publicClient,
      deployment: contracts,
      publisher: publisher.address,
      amount: PUBLISHER_DEPOSIT,
    })
    progress.done(`token ${contracts.token}`)

    progress.step('starting the tracker')
    const trackerDir = join(dataDir, 'tracker')
    await mkdir(trackerDir, { recursive: true })
    const tracker = createTracker(
      {
        host: '127.0.0.1',
        port: ports.tracker,
        allowPrivateUrls: true,
        probeIntervalMs: 1_000,
        // the nodes run the mesh: their reachability claims are checked by dialling them
        meshProbe: true,
        epochSeconds: DEVNET_EPOCH_SECONDS,
        submitWindowSeconds: 10,
        settleIntervalMs: 0,
        pricePerGiB: DEVNET_PRICE_PER_GIB,
      },
      {
        store: createSqliteStore({ path: join(trackerDir, 'tracker.db') }),
        account: trackerAccount,
        logger: pino({ level: 'warn' }, pino.destination(join(dataDir, 'tracker.log'))),
        chain: createViemSettlementChain({
          publicClient: chain.publicClient,
          walletClient: settlerWallet!,
          distributor: contracts.distributor,
          escrow: contracts.escrow,
        }),
      },
    )
    await tracker.start()
    closers.push(() => tracker.stop())
    progress.done(tracker.url)

    progress.step('starting the sample origin')
    const siteDir = await prepareSampleSite(join(dataDir, 'site'))
    const origin = await startSampleOrigin(siteDir, ports.origin)
    closers.push(() => origin.close())
    progress.done(origin.url)

    progress.step(`starting ${args.nodes} edge nodes and a corrupt one`)
    const nodeSpecs = ports.nodes.map((port, index) => ({ port, index, corrupt: false }))
    nodeSpecs.push({ port: corruptPorts.node, index: args.nodes, corrupt: true })
    const corruptProxy = await startCorruptProxy(`http://127.0.0.1:${corruptPorts.node}`, corruptPorts.proxy)
    closers.push(() => corruptProxy.close())
    const nodes = await Promise.all(
      nodeSpecs.map((spec) => startNode(supervisor, dataDir, tracker.url, spec, corruptProxy.url)),
    )
    // node keys pay the gas of their claims
    for (const node of nodes)
      await chain.testClient.setBalance({ address: node.address, value: parseEther('10') })
    progress.done(`${nodes.length} nodes`)

    return {
      dataDir,
      keep: args.keep,
      chain: { url: rpc.url, chainId: chain.chainId, client: chain },
      contracts,
      publisher,
      tracker,
      origin,
      siteDir,
      nodes,
      corruptProxy,
      onCrash: (listener) => supervisor.onCrash(listener),
      stop,
    }
  } catch (err) {
    await stop()
    throw err
  }
}

async function startNode(
  supervisor: Supervisor,
  dataDir: string,
  trackerUrl: string,
  spec: { port: number; index: number; corrupt: boolean },
  corruptUrl: string,
): Promise<DevnetNode> {
  const name = spec.corrupt ? 'node X' : `node ${spec.index + 1}`
  const dir = join(dataDir, spec.corrupt ? 'node-corrupt' : `node-${spec.index + 1}`)
  await mkdir(dir, { recursive: true })
  const region = DEVNET_REGIONS[spec.index % DEVNET_REGIONS.length]!
  const logFile = join(dataDir, `${spec.corrupt ? 'node-corrupt' : `node-${spec.index + 1}`}.log`)
  const service: Service = await supervisor.start({
    name,
    script: NODE_BIN,
    args: [
      'start',
      '--listen',
      `127.0.0.1:${spec.port}`,
      '--data-dir',
      dir,
      '--tracker',
      trackerUrl,
      '--region',
      region,
      '--memory-cache',
      '32MiB',
      '--disk-cache',
      '256MiB',
      '--epoch-seconds',
      String(DEVNET_EPOCH_SECONDS),
      '--mesh-port',
      String(spec.port + 100),
      ...(spec.corrupt ? ['--public-url', `${corruptUrl}/`] : []),
    ],
    env: { SHOAL_KEY_PASSPHRASE: DEVNET_PASSPHRASE },
    logFile,
    ready: /shoal-node (?<address>0x[0-9a-fA-F]{40}) serving at (?<url>\S+)/,
  })
  return {
    index: spec.index,
    name,
    address: getAddress(service.match.groups!.address!),
    url: service.url,
    publicUrl: spec.corrupt ? corruptUrl : service.url,
    region,
    pid: service.pid,
    dataDir: dir,
    logFile,
    corrupt: spec.corrupt,
  }
}
