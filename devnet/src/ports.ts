/** Checks, before anything starts, that every port the devnet needs is free on 127.0.0.1. */
import { createServer } from 'node:net'
import { InvalidArgumentError } from '@shoal/protocol'

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)))
  })
}

/**
 * @throws InvalidArgumentError naming every port in use and how to move the devnet
 * @example
 * await requireFreePorts([7470, 7471], 'npm start -- --base-port 8470')
 */
export async function requireFreePorts(ports: readonly number[], hint: string): Promise<void> {
  const taken: number[] = []
  for (const port of ports) if (!(await isFree(port))) taken.push(port)
  if (taken.length > 0) {
    throw new InvalidArgumentError(
      `port${taken.length > 1 ? 's' : ''} ${taken.join(', ')} on 127.0.0.1 ${taken.length > 1 ? 'are' : 'is'} in use (another devnet, or another program). ${hint}`,
    )
  }
}
