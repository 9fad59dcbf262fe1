/**
 * A minimal typed event emitter. Listener errors are isolated: one failing
 * listener never stops the others or the emitter's caller.
 */
export class Emitter<Events extends object> {
  private listeners = new Map<keyof Events, Set<(event: never) => void>>()

  /** Subscribes `fn` to `event`; returns a function that unsubscribes it. */
  on<K extends keyof Events>(event: K, fn: (event: Events[K]) => void): () => void {
    let set = this.listeners.get(event)
    if (!set) this.listeners.set(event, (set = new Set()))
    set.add(fn as (event: never) => void)
    return () => this.off(event, fn)
  }

  /** Subscribes `fn` to the next `event` only. */
  once<K extends keyof Events>(event: K, fn: (event: Events[K]) => void): () => void {
    const off = this.on(event, (e) => {
      off()
      fn(e)
    })
    return off
  }

  /** Removes a listener added with `on()`. */
  off<K extends keyof Events>(event: K, fn: (event: Events[K]) => void): void {
    this.listeners.get(event)?.delete(fn as (event: never) => void)
  }

  /** True when at least one listener is subscribed to `event`. */
  has(event: keyof Events): boolean {
    return (this.listeners.get(event)?.size ?? 0) > 0
  }

  protected emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    const set = this.listeners.get(event)
    if (!set) return
    for (const fn of [...set]) {
      try {
        ;(fn as (e: Events[K]) => void)(payload)
      } catch (err) {
        queueMicrotask(() => {
          throw err
        })
      }
    }
  }
}
