/**
 * @shoal/client-sdk/node — the parts of the SDK that need Node: encrypted key files
 * (and, later, the CLI's helpers). The browser-safe core is `@shoal/client-sdk`.
 */

export * from './keystore.ts'
export {
  createRelayDispatcher,
  DEFAULT_RELAY_COOLDOWN_MS,
  DEFAULT_RELAY_COUNT,
  DEFAULT_RELAY_REFRESH_MS,
  RelayDispatcher,
  type RelayDispatcherComponents,
  type RelayDispatcherInit,
  relayDispatcher,
} from './relay.ts'
export * from './service.ts'
export * from './service-key.ts'
