/**
 * Role ids of Shoal's contracts: `keccak256(name)`, as the contracts declare them
 * (checked against the deployed contracts in the tests). `MINTER` is on ShoalToken,
 * `DEBITER` on PublisherEscrow, `SETTLER` and `PAUSER` on RewardDistributor;
 * `DEFAULT_ADMIN` (OpenZeppelin AccessControl's, all zeros) on all three.
 */
export const ROLES = {
  DEFAULT_ADMIN: '0x0000000000000000000000000000000000000000000000000000000000000000',
  MINTER: '0x9f2df0fed2c77648de5860a4cc508cd0818c85b8b8a1ab4ceeef8d981c8956a6',
  DEBITER: '0x7a8272eaad2742909d63d8abf2887410486600ac69168ec7e56b6219404dd24a',
  SETTLER: '0x6666bf5bfee463d10a7fc50448047f8a53b7762d7e28fbc5c643182785f3fd3f',
  PAUSER: '0x65d7a28e3265b37a6474929f336521b332c1681b933f6cb9f3376673440d862a',
} as const

export type Role = keyof typeof ROLES
