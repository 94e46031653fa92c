/**
 * What the browser test's page loads: the SDK's core entry, plus viem's local account
 * so the page can sign integrity reports (an app would bring its own wallet).
 */

export { privateKeyToAccount } from 'viem/accounts'
export * from '../src/index.ts'
