import { describe, expect, it } from 'vitest'
import { CircuitBreaker } from '../../src/l2/circuit_breaker.js'

describe('CircuitBreaker', () => {
  it('opens after the threshold, fails fast, half-opens for one probe, closes on success', () => {
    let now = 0
    const states: string[] = []
    const b = new CircuitBreaker(3, 1000, () => now)
    b.onChange = (s) => states.push(s)
    for (let i = 0; i < 2; i++) {
      expect(b.admit('get')).toBe(false)
      b.failure(false)
    }
    expect(b.state).toBe('closed')
    b.success(false) // a success resets the count
    for (let i = 0; i < 3; i++) b.failure(false)
    expect(b.state).toBe('open')
    expect(() => b.admit('get')).toThrow(expect.objectContaining({ code: 'E_L2_UNAVAILABLE', message: expect.stringMatching(/circuit open.*1000 ms/) }))
    now = 1000
    expect(b.admit('get')).toBe(true) // the probe
    expect(() => b.admit('set')).toThrow(/circuit open/) // only one probe at a time
    b.failure(true)
    expect(b.state).toBe('open')
    now = 2500
    expect(b.admit('get')).toBe(true)
    b.success(true)
    expect(b.state).toBe('closed')
    expect(b.admit('get')).toBe(false)
    expect(states).toEqual(['open', 'half-open', 'open', 'half-open', 'closed'])
  })
})
