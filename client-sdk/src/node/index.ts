/**
 * @shoal/client-sdk/node — the parts of the SDK that need Node: encrypted key files,
 * service helpers, and the publisher's tools (publish a directory, purge, content types).
 * The browser-safe core is `@shoal/client-sdk`.
 */
export * from './content-type.ts'
export * from './keystore.ts'
export * from './mesh-client.ts'
export * from './mesh-dispatch.ts'
export * from './mesh-protocol.ts'
export * from './mesh-receipts.ts'
export * from './mesh-transport.ts'
export { callNode, DEFAULT_NODE_TIMEOUT_MS, type NodeCall } from './node-http.ts'
export * from './publish-directory.ts'
export * from './purge-site.ts'
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
export * from './walk-directory.ts'
