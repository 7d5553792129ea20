/**
 * A list+watch cache of one resource type, like client-go's reflector + store.
 *
 * Differs from client-go: no resync period (controllers run their own periodic pass), no
 * indexers beyond uid, and after any watch error it always re-lists (the simulator's API server
 * may restart and lose its watch history), replacing the store and emitting deletions for
 * objects that vanished meanwhile.
 */
import { Watch, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';

/** What a list call returns: items plus the list's resourceVersion. */
export interface ListResult<T> {
  items: T[];
  metadata?: { resourceVersion?: string };
}

/** Where a cache reports progress and trouble. */
export type LogFn = (line: string) => void;

/** A typed, always-current view of one resource type. */
export class ResourceCache<T extends KubernetesObject> {
  private objects = new Map<string, T>();
  private listeners: Array<(obj: T, type: 'add' | 'update' | 'delete') => void> = [];
  private stopped = false;
  private abort?: AbortController;
  private resourceVersion = '';
  private retryTimer?: NodeJS.Timeout;
  private failures = 0;
  private syncedResolve!: () => void;
  /** Resolves after the first successful list. */
  readonly synced = new Promise<void>((resolve) => (this.syncedResolve = resolve));
  /** false when the API server does not serve this resource (404 on list). */
  served = true;

  constructor(
    readonly apiVersion: string,
    readonly kind: string,
    private readonly kc: KubeConfig,
    private readonly watchPath: string,
    private readonly listFn: () => Promise<ListResult<T>>,
    private readonly log: LogFn,
  ) {}

  /** Registers a change listener (called after the store is updated). */
  onChange(cb: (obj: T, type: 'add' | 'update' | 'delete') => void): void {
    this.listeners.push(cb);
  }

  /** All objects, optionally of one namespace. */
  list(namespace?: string): T[] {
    const all = [...this.objects.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata?.namespace === namespace);
  }

  /** One object by namespace and name ('' namespace for cluster-scoped). */
  get(namespace: string, name: string): T | undefined {
    return this.objects.get(keyOf(namespace, name));
  }

  /** One object by uid. */
  byUid(uid: string): T | undefined {
    for (const o of this.objects.values()) if (o.metadata?.uid === uid) return o;
    return undefined;
  }

  /** Starts listing and watching; returns at once. */
  start(): void {
    this.stopped = false;
    void this.relist();
  }

  /** Stops watching for good. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.abort?.abort();
  }

  private async relist(): Promise<void> {
    if (this.stopped) return;
    let list: ListResult<T>;
    try {
      list = await this.listFn();
    } catch (err) {
      const code = (err as { code?: number }).code;
      if (code === 404) {
        if (this.served) this.log(`${this.name}: not served by the API server; retrying every 30s`);
        this.served = false;
        this.syncedResolve();
        this.retryLater(30_000);
      } else {
        this.failures++;
        if (this.failures === 1 || this.failures % 30 === 0) {
          this.log(`${this.name}: list failed (${this.failures}x): ${String((err as Error).message).split('\n')[0]}`);
        }
        this.retryLater(Math.min(5000, 250 * 2 ** Math.min(this.failures, 5)));
      }
      return;
    }
    this.served = true;
    if (this.failures > 0) this.log(`${this.name}: listed again after ${this.failures} failed attempts`);
    this.failures = 0;
    const fresh = new Map<string, T>();
    for (const raw of list.items) {
      const obj = this.stamp(raw);
      fresh.set(keyOfObj(obj), obj);
    }
    const old = this.objects;
    this.objects = fresh;
    for (const [k, o] of old) if (!fresh.has(k)) this.emit(o, 'delete');
    for (const [k, o] of fresh) {
      const prev = old.get(k);
      if (!prev) this.emit(o, 'add');
      else if (prev.metadata?.resourceVersion !== o.metadata?.resourceVersion) this.emit(o, 'update');
    }
    this.resourceVersion = list.metadata?.resourceVersion ?? '';
    this.syncedResolve();
    await this.watch();
  }

  private async watch(): Promise<void> {
    if (this.stopped) return;
    const params: Record<string, string> = { allowWatchBookmarks: 'true' };
    if (this.resourceVersion) params.resourceVersion = this.resourceVersion;
    let needRelist = false;
    const onEvent = (type: string, obj: T): void => {
      if (type === 'ERROR') {
        needRelist = true;
        return;
      }
      const rv = obj?.metadata?.resourceVersion;
      if (rv) this.resourceVersion = rv;
      if (type === 'BOOKMARK') return;
      const o = this.stamp(obj);
      const k = keyOfObj(o);
      if (type === 'DELETED') {
        if (this.objects.delete(k)) this.emit(o, 'delete');
      } else {
        const had = this.objects.has(k);
        this.objects.set(k, o);
        this.emit(o, had ? 'update' : 'add');
      }
    };
    const onDone = (err: unknown): void => {
      if (this.stopped) return;
      if (err || needRelist || !this.resourceVersion) {
        if (err && (err as { name?: string }).name !== 'AbortError') {
          this.log(`${this.name}: watch ended: ${String((err as Error).message ?? err).split('\n')[0]}`);
        }
        this.retryLater(err ? 1000 : 0);
      } else {
        // A clean close (server timeout): resume from the last resourceVersion.
        void this.watch();
      }
    };
    try {
      this.abort = await new Watch(this.kc).watch(this.watchPath, params, onEvent, onDone);
    } catch (err) {
      onDone(err);
    }
  }

  private retryLater(ms: number): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.relist(), ms);
  }

  /** Typed list calls return Date objects and no kind; watch events carry strings. Make both plain JSON. */
  private stamp(obj: T): T {
    return { ...(JSON.parse(JSON.stringify(obj)) as T), apiVersion: this.apiVersion, kind: this.kind };
  }

  private get name(): string {
    return this.kind;
  }

  private emit(obj: T, type: 'add' | 'update' | 'delete'): void {
    for (const cb of this.listeners) cb(obj, type);
  }
}

function keyOf(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function keyOfObj(o: KubernetesObject): string {
  return keyOf(o.metadata?.namespace ?? '', o.metadata?.name ?? '');
}
