import { describe, expect, it } from 'vitest'
import { relayUrlOf } from '../src/relays/relays.ts'

describe('relay announcements in node records', () => {
  it('reads the relay URL from an /http multiaddr', () => {
    expect(relayUrlOf(['/ip4/203.0.113.7/tcp/4001', '/ip4/203.0.113.7/tcp/7481/http'])).toBe(
      'http://203.0.113.7:7481',
    )
    expect(relayUrlOf(['/ip6/2001:db8::7/tcp/7481/http'])).toBe('http://[2001:db8::7]:7481')
    expect(relayUrlOf(['/dns/relay.example.org/tcp/80/http'])).toBe('http://relay.example.org')
  })

  it('ignores records without one and malformed ones', () => {
    expect(relayUrlOf(['/ip4/203.0.113.7/tcp/4001'])).toBeUndefined()
    expect(relayUrlOf(['/ip4/203.0.113.7/tcp/99999/http'])).toBeUndefined()
    expect(relayUrlOf(['/ip4/203.0.113.7/tcp/7481/https'])).toBeUndefined()
    expect(relayUrlOf(['/dns/a b/tcp/1/http', '/ip4/203.0.113.7/udp/1/http'])).toBeUndefined()
  })
})
