// Per-caller token buckets: a caller past its rate gets 429 with how long to wait.

const MAX_CALLERS = 100_000

export class RateLimiter {
  private readonly buckets = new Map<string, {tokens: number; at: number}>()

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Takes one token of `caller`'s bucket; 0 when allowed, else the seconds until one is there. */
  take(caller: string, perSecond: number, burst: number): number {
    const now = this.now()
    let bucket = this.buckets.get(caller)
    if (!bucket) {
      // Bounded: callers seen long ago go first (a Map keeps insertion order).
      if (this.buckets.size >= MAX_CALLERS) this.buckets.delete(this.buckets.keys().next().value!)
      bucket = {tokens: burst, at: now}
      this.buckets.set(caller, bucket)
    }
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * perSecond)
    bucket.at = now
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1
      return 0
    }
    return (1 - bucket.tokens) / perSecond
  }
}
