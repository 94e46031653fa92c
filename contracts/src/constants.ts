/** Defaults for Shoal's contracts and the in-process chain. Plain data, no side effects. */

/** Publisher escrow notice period when none is given: 7 days. */
export const DEFAULT_NOTICE_PERIOD_SECONDS = 7 * 24 * 60 * 60

/** Chain id of the in-process chain (Hardhat's). */
export const DEFAULT_CHAIN_ID = 31337

/** Hardfork of the in-process chain; matches the contracts' `evmVersion`. */
export const DEFAULT_HARDFORK = 'osaka'

/** Funded accounts on the in-process chain. */
export const DEFAULT_ACCOUNT_COUNT = 10

/** Balance of each funded account: 10,000 ETH. */
export const DEFAULT_ACCOUNT_BALANCE = 10_000n * 10n ** 18n

/**
 * Hardhat's well-known development mnemonic. Its keys are public: never use them
 * anywhere but a local chain.
 */
export const DEV_MNEMONIC = 'test test test test test test test test test test test junk'

/** Largest request body the JSON-RPC server reads: 8 MiB. */
export const DEFAULT_MAX_RPC_BODY_BYTES = 8 * 1024 * 1024
