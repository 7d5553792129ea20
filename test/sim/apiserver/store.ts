// The object store: every object by resource, namespace and name, one global resourceVersion,
// a bounded history of change events for watches, and durable persistence under DIR/state/.
// Differences from a real API server (etcd behind it): one process, one global counter kept in
// memory and in an append-only log (fsync'd per write, compacted into snapshot.json at start);
// the watch history window is a fixed number of events and starts empty after a restart, so a
// watch from a resourceVersion older than the restart gets 410 Gone, as after an etcd compaction.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { Json } from '../json.js';
import { gone } from './status.js';

/** Metadata as every stored object has it (create and update refuse an object without a name). */
export type StoredMeta = Json<V1ObjectMeta> & { name: string };

/**
 * A stored object of any kind: its metadata is typed, its other fields (spec, status, data, …)
 * depend on the kind; code that reads them types the object with Stored<T>.
 */
export interface StoredObject {
  apiVersion?: string;
  kind?: string;
  metadata: StoredMeta;
  [field: string]: unknown;
}

/** A stored object of a known kind, typed by client-node's model T (e.g. Stored<V1Pod>). */
export type Stored<T> = Json<T> & StoredObject;

/** A change to one object, as a watch reports it. */
export interface StoreEvent {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  gr: string;
  obj: StoredObject;
  /** The object before a MODIFIED change. */
  prev?: StoredObject;
}

/** One line of DIR/state/log.jsonl. */
type LogLine = { rv: number; gr: string; key: string } & ({ op: 'put'; obj: StoredObject } | { op: 'del' });

/** Key of an object inside its resource: "namespace/name" ("/name" when cluster-scoped). */
export function objectKey(ns: string | undefined, name: string): string {
  return `${ns ?? ''}/${name}`;
}

/** A durable, watchable map of Kubernetes objects. */
export class ObjectStore {
  private readonly byGr = new Map<string, Map<string, StoredObject>>();
  private readonly history: StoreEvent[] = [];
  private readonly listeners = new Set<(e: StoreEvent) => void>();
  private rv = 0;
  private historyStart = 0;
  private logFd = -1;

  constructor(private readonly stateDir: string, private readonly historyLimit = 10000) {}

  /** Loads the snapshot and log from stateDir, compacts them and opens a fresh log. */
  open(): void {
    mkdirSync(this.stateDir, { recursive: true });
    const snapFile = join(this.stateDir, 'snapshot.json');
    const logFile = join(this.stateDir, 'log.jsonl');
    if (existsSync(snapFile)) {
      const snap = JSON.parse(readFileSync(snapFile, 'utf8')) as { rv: number; objects: Record<string, Record<string, StoredObject>> };
      this.rv = snap.rv;
      for (const [gr, objs] of Object.entries(snap.objects)) this.byGr.set(gr, new Map(Object.entries(objs)));
    }
    if (existsSync(logFile)) {
      for (const line of readFileSync(logFile, 'utf8').split('\n')) {
        if (!line.trim()) continue;
        let entry: LogLine;
        try { entry = JSON.parse(line) as LogLine; } catch { break; } // a torn last line from a crash
        if (entry.rv <= this.rv) continue;
        this.apply(entry);
        this.rv = entry.rv;
      }
    }
    const objects: Record<string, Record<string, StoredObject>> = {};
    for (const [gr, m] of this.byGr) objects[gr] = Object.fromEntries(m);
    const tmp = `${snapFile}.tmp`;
    const fd = openSync(tmp, 'w');
    writeSync(fd, JSON.stringify({ rv: this.rv, objects }));
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, snapFile);
    writeFileSync(logFile, '');
    this.logFd = openSync(logFile, 'a');
    this.historyStart = this.rv;
  }

  /** Closes the log file. */
  close(): void {
    if (this.logFd >= 0) closeSync(this.logFd);
    this.logFd = -1;
  }

  /** The latest resourceVersion handed out. */
  currentRv(): number {
    return this.rv;
  }

  /** One object, or undefined. */
  get(gr: string, ns: string | undefined, name: string): StoredObject | undefined {
    return this.byGr.get(gr)?.get(objectKey(ns, name));
  }

  /** All objects of a resource, optionally only those in one namespace, sorted by namespace and name. */
  list(gr: string, ns?: string): StoredObject[] {
    const m = this.byGr.get(gr);
    if (!m) return [];
    const out: StoredObject[] = [];
    for (const [key, obj] of m) if (ns === undefined || key.startsWith(`${ns}/`)) out.push(obj);
    return out.sort((a, b) => objectKey(a.metadata.namespace, a.metadata.name).localeCompare(objectKey(b.metadata.namespace, b.metadata.name)));
  }

  /** Resources that hold at least one object. */
  resources(): string[] {
    return [...this.byGr.keys()].filter((gr) => (this.byGr.get(gr)?.size ?? 0) > 0);
  }

  /** Stores obj (new or replacing), stamping a fresh resourceVersion; returns the stored copy. */
  put<T extends StoredObject>(gr: string, obj: T, dryRun = false): T {
    const key = objectKey(obj.metadata.namespace, obj.metadata.name);
    const prev = this.byGr.get(gr)?.get(key);
    const stored = structuredClone(obj);
    if (dryRun) return stored;
    const rv = this.rv + 1;
    stored.metadata.resourceVersion = String(rv);
    this.persist({ rv, op: 'put', gr, key, obj: stored });
    this.rv = rv;
    this.apply({ rv, op: 'put', gr, key, obj: stored });
    this.emit({ rv, type: prev ? 'MODIFIED' : 'ADDED', gr, obj: stored, prev });
    return structuredClone(stored);
  }

  /** Removes an object; returns the removed copy stamped with the deletion's resourceVersion. */
  remove(gr: string, ns: string | undefined, name: string, dryRun = false): StoredObject | undefined {
    const key = objectKey(ns, name);
    const old = this.byGr.get(gr)?.get(key);
    if (!old) return undefined;
    if (dryRun) return structuredClone(old);
    const rv = this.rv + 1;
    this.persist({ rv, op: 'del', gr, key });
    this.rv = rv;
    this.apply({ rv, op: 'del', gr, key });
    const gone = structuredClone(old);
    gone.metadata.resourceVersion = String(rv);
    this.emit({ rv, type: 'DELETED', gr, obj: gone });
    return structuredClone(gone);
  }

  /** Events after rv still in the history window; throws 410 Gone when rv is older than the window. */
  eventsSince(rv: number): StoreEvent[] {
    if (rv < this.historyStart) throw gone(String(rv));
    return this.history.filter((e) => e.rv > rv);
  }

  /** Calls fn for every future event until the returned function is called. */
  subscribe(fn: (e: StoreEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private apply(entry: LogLine): void {
    let m = this.byGr.get(entry.gr);
    if (!m) this.byGr.set(entry.gr, (m = new Map()));
    if (entry.op === 'put') m.set(entry.key, entry.obj);
    else m.delete(entry.key);
  }

  private persist(entry: LogLine): void {
    if (this.logFd < 0) throw new Error('object store is not open');
    writeSync(this.logFd, JSON.stringify(entry) + '\n');
    fsyncSync(this.logFd);
  }

  private emit(e: StoreEvent): void {
    this.history.push(e);
    while (this.history.length > this.historyLimit) this.historyStart = this.history.shift()!.rv;
    for (const fn of [...this.listeners]) fn(e);
  }
}
