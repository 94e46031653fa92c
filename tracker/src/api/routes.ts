/**
 * The tracker's HTTP API (docs/tracker.md documents every route): each handler turns a
 * request into a call on one service and its answer into JSON.
 */
import {
  decodeNodeRecord,
  InvalidArgumentError,
  isShoalError,
  NotFoundError,
  parseCid,
  UnauthorizedError,
} from '@shoal/protocol'
import type { Registry as PromRegistry } from 'prom-client'
import { getAddress } from 'viem'
import type { Auditor } from '../audit/auditor.ts'
import { epochAt, epochInfo } from '../epochs/epochs.ts'
import { HEARTBEAT_MAC_HEADER } from '../heartbeat/session.ts'
import { parseJson, readBody, readJson, requireJson, validate } from '../http/body.ts'
import { sendJson } from '../http/respond.ts'
import type { Route } from '../http/server.ts'
import type { TrackerMetrics } from '../metrics.ts'
import type { ResolvedTrackerOptions } from '../options.ts'
import type { Prober } from '../probe/prober.ts'
import type { ReachabilityDirectory } from '../reachability/reachability.ts'
import type { ReceiptIngest } from '../receipts/ingest.ts'
import type { NodeMeta, Registry } from '../registry/registry.ts'
import type { RelayDirectory } from '../relays/relays.ts'
import type { ReportService } from '../reports/reports.ts'
import type { NodeIndex } from '../selection/index.ts'
import type { Settler } from '../settlement/settler.ts'
import type { SiteService } from '../sites/sites.ts'
import type { TrackerStore } from '../store/types.ts'
import type { TicketIssuer } from '../tickets/issuer.ts'
import type { SelectionLog } from '../tickets/selections.ts'
import { heartbeatSchema, registerSchema, reportSchema, ticketRequestSchema } from './schemas.ts'
import { statsOf } from './stats.ts'

/** Body limits of the small JSON requests. */
const REGISTER_BODY = 16 * 1024
const HEARTBEAT_BODY = 2 * 1024
const REPORT_BODY = 4 * 1024
const TICKET_BODY = 1024
const DEFAULT_SELECT_COUNT = 3
const REGION_RE = /^[a-z0-9][a-z0-9-]{0,31}$/
const ADDRESS_RE = /^0x[0-9a-fA-F]{40}$/
const TICKET_ID_RE = /^0x[0-9a-f]{64}$/

export interface ApiServices {
  options: ResolvedTrackerOptions
  store: TrackerStore
  index: NodeIndex<NodeMeta>
  registry: Registry
  sites: SiteService
  reports: ReportService
  tickets: TicketIssuer
  /** Records (ticket, node) pairs of selections that name a ticket. */
  selections?: SelectionLog
  receipts?: ReceiptIngest
  settler?: Settler
  prober?: Prober
  auditor?: Auditor
  /** Region names nodes have registered in (an unknown client region is ignored, not an error). */
  regions: ReadonlySet<string>
  /** Nodes that announce a relay. */
  relays?: RelayDirectory
  /** How clients reach each node: its URL (the probe says) or only the mesh. */
  reachability?: ReachabilityDirectory<NodeMeta>
  register?: PromRegistry
  metrics?: TrackerMetrics
  clock: () => number
  startedAt: number
}

function epochParam(text: string): number {
  if (!/^\d{1,15}$/.test(text)) throw new InvalidArgumentError('an epoch is a non-negative integer')
  return Number(text)
}

function outcome(err: unknown): string {
  return isShoalError(err) ? err.code : 'SHOAL_ERR_INTERNAL'
}

function parseSelectQuery(query: string, maxCount: number, maxExclude: number, needCid = true) {
  const params = new URLSearchParams(query)
  let cid: string | undefined
  let count = DEFAULT_SELECT_COUNT
  let region: string | undefined
  let exclude: string[] | undefined
  let ticket: string | undefined
  let mesh = false
  for (const [key, value] of params) {
    switch (key) {
      case 'cid':
        cid = value
        break
      case 'count': {
        const n = Number(value)
        if (!/^\d+$/.test(value) || n < 1 || n > maxCount) {
          throw new InvalidArgumentError(`count must be an integer from 1 to ${maxCount}`)
        }
        count = n
        break
      }
      case 'region':
        if (!REGION_RE.test(value))
          throw new InvalidArgumentError('region must match [a-z0-9][a-z0-9-]{0,31}')
        region = value
        break
      case 'exclude':
        exclude = value === '' ? [] : value.split(',')
        if (exclude.length > maxExclude)
          throw new InvalidArgumentError(`exclude lists at most ${maxExclude} nodes`)
        for (const a of exclude)
          if (!ADDRESS_RE.test(a)) throw new InvalidArgumentError(`exclude: ${a} is not an address`)
        break
      case 'ticket':
        if (!TICKET_ID_RE.test(value))
          throw new InvalidArgumentError('ticket must be a ticket id: 32 bytes of lowercase 0x-hex')
        ticket = value
        break
      case 'mesh':
        if (value !== '1' && value !== '0') throw new InvalidArgumentError('mesh must be 1 or 0')
        mesh = value === '1'
        break
      default:
        throw new InvalidArgumentError(`unknown query parameter ${JSON.stringify(key)}`)
    }
  }
  if (!needCid) {
    if (cid !== undefined) throw new InvalidArgumentError('relays are not chosen by cid')
    return { cid: undefined, count, region, exclude, ticket }
  }
  if (cid === undefined) throw new InvalidArgumentError('cid is required')
  return { cid: parseCid(cid), count, region, exclude, ticket, mesh }
}

/** Every route of the API. */
export function createRoutes(s: ApiServices): Route[] {
  const { options, registry, index, metrics } = s
  const maxCount = index.options.maxCount
  const maxExclude = index.options.maxExclude

  return [
    {
      method: 'GET',
      path: '/health',
      cors: true,
      name: 'health',
      limit: 'default',
      handle: ({ res }) => sendJson(res, 200, { status: 'ok', nodes: index.size }),
    },
    {
      method: 'GET',
      path: '/metrics',
      name: 'metrics',
      limit: 'default',
      async handle({ res }) {
        if (s.register === undefined) throw new NotFoundError('metrics are not enabled')
        if (metrics !== undefined) {
          const stats = index.stats()
          for (const [status, n] of Object.entries(stats.byStatus)) metrics.nodes.set({ status }, n)
        }
        const text = await s.register.metrics()
        res.writeHead(200, { 'content-type': s.register.contentType, 'cache-control': 'no-store' })
        res.end(text)
      },
    },
    {
      method: 'POST',
      path: '/v1/nodes',
      name: 'register',
      limit: 'register',
      async handle({ req, res, signal }) {
        try {
          const body = await readJson(req, REGISTER_BODY, registerSchema, 'body')
          const result = await registry.register(body, { signal })
          sendJson(res, result.created ? 201 : 200, result)
        } catch (err) {
          metrics?.registrations.inc({ outcome: outcome(err) })
          throw err
        }
      },
    },
    {
      method: 'POST',
      path: '/v1/nodes/heartbeat',
      name: 'heartbeat',
      limit: 'heartbeat',
      async handle({ req, res, signal }) {
        try {
          requireJson(req)
          const mac = req.headers[HEARTBEAT_MAC_HEADER]
          if (typeof mac !== 'string')
            throw new UnauthorizedError(`a heartbeat needs the ${HEARTBEAT_MAC_HEADER} header`)
          const raw = await readBody(req, HEARTBEAT_BODY)
          const body = validate(heartbeatSchema, parseJson(raw), 'heartbeat')
          const status = await registry.heartbeat(body, raw, mac, { signal })
          metrics?.heartbeats.inc({ outcome: 'accepted' })
          sendJson(res, 200, `{"status":"${status}"}`)
        } catch (err) {
          metrics?.heartbeats.inc({ outcome: outcome(err) })
          throw err
        }
      },
    },
    {
      method: 'GET',
      path: '/v1/nodes/:address',
      cors: true,
      name: 'node',
      limit: 'default',
      async handle({ res, params, signal }) {
        const address = params.address!
        if (!ADDRESS_RE.test(address)) throw new InvalidArgumentError(`${address} is not an address`)
        const row = await registry.get(address, { signal })
        const explained = index.has(address) ? index.explain(address) : undefined
        const events = await s.store.listIntegrityEvents(address, 20, { signal })
        sendJson(res, 200, {
          node: getAddress(address),
          registration: row.status,
          registeredAt: row.registeredAt,
          updatedAt: row.updatedAt,
          record: decodeNodeRecord(row.record),
          ...(explained !== undefined
            ? {
                status: explained.status,
                eligible: explained.eligible,
                score: explained.score,
                formula: explained.formula,
                components: explained.components,
                figures: explained.figures,
                placementWeight: explained.placementWeight,
                targetWeight: explained.targetWeight,
              }
            : { status: 'retired' }),
          heartbeat: registry.figures(address) ?? null,
          reachability: s.reachability?.of(address) ?? null,
          integrityEvents: events.map(({ cid, chunk, source, at, detail }) => ({
            cid,
            chunk,
            source,
            at,
            detail,
          })),
        })
      },
    },
    {
      method: 'GET',
      path: '/v1/select',
      cors: true,
      name: 'select',
      limit: 'select',
      handle({ res, query }) {
        const q = parseSelectQuery(query, maxCount, maxExclude)
        if (q.cid === undefined) throw new InvalidArgumentError('cid is required')
        const region = q.region !== undefined && s.regions.has(q.region) ? q.region : undefined
        const picked = index.select({
          cid: q.cid,
          count: q.count,
          ...(region !== undefined ? { region } : {}),
          ...(q.exclude !== undefined ? { exclude: q.exclude } : {}),
        })
        // a mesh client (mesh=1) also takes nodes reachable only through the mesh, after
        // the ones whose URL the probes reach, with their peer id and addresses, no URL
        const meshPicked =
          q.mesh && picked.length < q.count && s.reachability !== undefined
            ? s.reachability.pickMesh({
                root: q.cid.root,
                count: q.count - picked.length,
                ...(region !== undefined ? { region } : {}),
                ...(q.exclude !== undefined ? { exclude: q.exclude } : {}),
              })
            : []
        if (q.ticket !== undefined && picked.length + meshPicked.length > 0) {
          s.selections?.record(q.ticket, [...picked.map((p) => p.node), ...meshPicked.map((p) => p.node)])
        }
        let out = `{"cid":"${q.cid.text}","nodes":[`
        for (let i = 0; i < picked.length; i++) {
          const p = picked[i]!
          if (i > 0) out += ','
          out += `{"node":"${p.node}","region":"${p.region}","score":${Number(p.score.toFixed(6))},${p.meta?.json ?? ''}}`
        }
        for (let i = 0; i < meshPicked.length; i++) {
          const p = meshPicked[i]!
          if (i > 0 || picked.length > 0) out += ','
          out += `{"node":"${p.node}","region":"${p.region}","score":0,"reachability":"mesh",${p.meta.meshJson}}`
        }
        out += ']}'
        sendJson(res, 200, out)
      },
    },
    {
      // relays for a client's region (docs/relay.md): eligible nodes that announce one
      method: 'GET',
      path: '/v1/relays',
      name: 'relays',
      limit: 'select',
      handle({ res, query }) {
        const q = parseSelectQuery(query, maxCount, maxExclude, false)
        const picked =
          s.relays?.pick({
            count: q.count,
            ...(q.region !== undefined ? { region: q.region } : {}),
            ...(q.exclude !== undefined ? { exclude: q.exclude } : {}),
          }) ?? []
        // like select: the relays handed to a ticket are the ones settlement pays for it
        if (q.ticket !== undefined && picked.length > 0)
          s.selections?.record(
            q.ticket,
            picked.map((p) => p.node),
          )
        sendJson(res, 200, {
          relays: picked.map((p) => ({ ...p, score: Number(p.score.toFixed(6)) })),
        })
      },
    },
    {
      method: 'POST',
      path: '/v1/reports',
      cors: true,
      name: 'reports',
      limit: 'reports',
      async handle({ req, res, signal }) {
        try {
          const body = await readJson(req, REPORT_BODY, reportSchema, 'report')
          const result = await s.reports.submit(body, { signal })
          metrics?.reports.inc({ outcome: 'accepted' })
          sendJson(res, 202, result)
        } catch (err) {
          metrics?.reports.inc({ outcome: outcome(err) })
          throw err
        }
      },
    },
    {
      method: 'POST',
      path: '/v1/sites',
      name: 'publish',
      limit: 'sites',
      async handle({ req, res, signal }) {
        requireJson(req)
        const text = (await readBody(req, options.maxManifestBytes)).toString('utf8')
        const result = await s.sites.publish(text, { signal })
        sendJson(res, result.created ? 201 : 200, result)
      },
    },
    {
      method: 'GET',
      path: '/v1/sites/:site',
      cors: true,
      name: 'site',
      limit: 'default',
      async handle({ res, params, signal }) {
        sendJson(res, 200, await s.sites.manifest(params.site!, { signal }), { 'cache-control': 'no-cache' })
      },
    },
    {
      method: 'GET',
      path: '/v1/sites/:site/entries',
      cors: true,
      name: 'site-entry',
      limit: 'default',
      async handle({ res, params, query, signal }) {
        const q = new URLSearchParams(query)
        for (const key of q.keys()) {
          if (key !== 'path') throw new InvalidArgumentError(`unknown query parameter ${JSON.stringify(key)}`)
        }
        const path = q.get('path')
        if (path === null) throw new InvalidArgumentError('path is required')
        sendJson(res, 200, await s.sites.entryProof(params.site!, path, { signal }), {
          'cache-control': 'no-cache',
        })
      },
    },
    {
      method: 'POST',
      path: '/v1/tickets',
      cors: true,
      name: 'tickets',
      limit: 'tickets',
      async handle({ req, res, signal }) {
        const body = await readJson(req, TICKET_BODY, ticketRequestSchema, 'ticket request')
        const issued = await s.tickets.issue(body, { signal })
        sendJson(
          res,
          201,
          `{"id":"${issued.id}","ticket":${issued.encoded},"publisher":"${issued.publisher}","epoch":${issued.epoch},"epochEndsAt":${issued.epochEndsAt}}`,
        )
      },
    },
    {
      method: 'POST',
      path: '/v1/receipts',
      name: 'receipts',
      limit: 'receipts',
      async handle({ req, res, signal }) {
        if (s.receipts === undefined) throw new NotFoundError('receipts are not enabled')
        requireJson(req)
        const body = parseJson(await readBody(req, options.maxReceiptBodyBytes))
        const result = await s.receipts.submit(body, { signal })
        sendJson(res, result.created ? 201 : 200, result)
      },
    },
    {
      method: 'GET',
      path: '/v1/receipts/:batch',
      name: 'receipt-batch',
      limit: 'default',
      async handle({ res, params, signal }) {
        if (s.receipts === undefined) throw new NotFoundError('receipts are not enabled')
        const id = params.batch!
        if (!TICKET_ID_RE.test(id))
          throw new InvalidArgumentError('a batch id is 32 bytes of lowercase 0x-hex')
        sendJson(res, 200, await s.receipts.report(id, { signal }))
      },
    },
    {
      method: 'GET',
      path: '/v1/epochs/current',
      name: 'epoch-current',
      limit: 'default',
      handle({ res }) {
        const info = epochInfo(epochAt(s.clock(), options.epochSeconds), options.epochSeconds)
        // `issuer`: the key that signs tickets, which nodes check sessions against
        sendJson(res, 200, { ...info, issuer: s.tickets.issuer }, { 'cache-control': 'no-cache' })
      },
    },
    {
      method: 'GET',
      path: '/v1/epochs/:epoch',
      name: 'epoch',
      limit: 'default',
      async handle({ res, params, signal }) {
        if (s.settler === undefined) throw new NotFoundError('settlement is not enabled')
        sendJson(res, 200, await s.settler.view(epochParam(params.epoch!), { signal }), {
          'cache-control': 'no-cache',
        })
      },
    },
    {
      method: 'GET',
      path: '/v1/epochs/:epoch/proofs/:address',
      name: 'epoch-proof',
      limit: 'default',
      async handle({ res, params, signal }) {
        if (s.settler === undefined) throw new NotFoundError('settlement is not enabled')
        const address = params.address!
        if (!ADDRESS_RE.test(address)) throw new InvalidArgumentError(`${address} is not an address`)
        sendJson(res, 200, await s.settler.proof(epochParam(params.epoch!), address, { signal }), {
          'cache-control': 'no-cache',
        })
      },
    },
    {
      method: 'GET',
      path: '/v1/stats',
      cors: true,
      name: 'stats',
      limit: 'default',
      async handle({ res, signal }) {
        sendJson(res, 200, await statsOf(s, { signal }))
      },
    },
  ]
}
