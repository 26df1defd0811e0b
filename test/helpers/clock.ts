/** A clock tests move by hand instead of sleeping. */
export class ManualClock {
  constructor(public t = Date.now()) {}
  now(): number {
    return this.t
  }
  advance(ms: number): void {
    this.t += ms
  }
}
