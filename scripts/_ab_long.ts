const A = await import('/work/baseline/src/index.ts')
const B = await import('/work/main/src/index.ts')
const v = { id: 7, name: 'product seven', price: 12.5, tags: ['a', 'b', 'c'], stock: 42, meta: { created: 1700000000000, active: true }, text: 'x'.repeat(40) }
const mk = async (m: any, ns: string, redis: any) => { const c = await m.createCache({ redis, namespace: ns }); for (let i = 0; i < 100; i++) await c.set(`k${i}`, v); return c }
const redis = process.argv[2] ?? false
const ca = await mk(A, 'abA', redis === 'false' ? false : redis)
const cb = await mk(B, 'abB', redis === 'false' ? false : redis)
const keys = Array.from({ length: 100 }, (_, i) => `k${i}`)
async function round(c: any, n: number, op: string): Promise<number> {
  const t0 = process.cpuUsage()
  if (op === 'get') for (let i = 0; i < n; i++) await c.get(keys[i % 100])
  else if (op === 'getOrSet') for (let i = 0; i < n; i++) await c.getOrSet(keys[i % 100], () => v)
  else for (let i = 0; i < n / 100; i++) await c.getMany(keys)
  const d = process.cpuUsage(t0)
  return ((d.user + d.system) * 1000) / n
}
for (const op of ['get']) {
  const ra: number[] = [], rb: number[] = []
  for (let r = 0; r < 121; r++) {
    if (r % 2 === 0) { ra.push(await round(ca, 50_000, op)); rb.push(await round(cb, 50_000, op)) }
    else { rb.push(await round(cb, 50_000, op)); ra.push(await round(ca, 50_000, op)) }
  }
  const med = (x: number[]) => [...x].sort((p, q) => p - q)[Math.floor(x.length / 2)] as number
  console.log(`${op} redis=${redis}: before ${med(ra).toFixed(0)} ns, after ${med(rb).toFixed(0)} ns CPU/op, after/before time ${(med(rb) / med(ra)).toFixed(3)}`)
}
await ca.close(); await cb.close()
