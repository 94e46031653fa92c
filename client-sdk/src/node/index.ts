/**
 * @shoal/client-sdk/node — the parts of the SDK that need Node: encrypted key files
 * (and, later, the CLI's helpers). The browser-safe core is `@shoal/client-sdk`.
 */
export * from './keystore.ts'
export * from './mesh-client.ts'
export * from './mesh-protocol.ts'
export * from './mesh-transport.ts'
export * from './service.ts'
export * from './service-key.ts'
