/** Node's list of live handles (sockets, servers, timers, file requests); empty where the runtime has none to show (a browser). */
export function activeResources(): string[] {
  const p = (globalThis as { process?: { getActiveResourcesInfo?: () => string[] } }).process
  return p?.getActiveResourcesInfo?.() ?? []
}
