// Watch: a chunked stream of {"type","object"} JSON lines for one resource, filtered by
// namespace and selectors, starting from a resourceVersion.
// Differences from a real API server: bookmarks are never sent (allowWatchBookmarks is ignored);
// sendInitialEvents is ignored; a resourceVersion older than the history window is answered the
// way kube does (HTTP 200 then an ERROR event carrying a 410 Expired Status); watches end after
// timeoutSeconds or 30 minutes.
import type { ServerResponse } from 'node:http';
import { grOf } from './rest.js';
import type { ResourceDef } from './registry.js';
import { parseFieldSelector, parseLabelSelector } from './selectors.js';
import { ApiError } from './status.js';
import type { ObjectStore, StoreEvent, StoredObject } from './store.js';
import { toTable } from './table.js';

/** Streams watch events to res until the client goes away or the timeout passes. */
export function serveWatch(res: ServerResponse, store: ObjectStore, def: ResourceDef, namespace: string,
  query: URLSearchParams, asTable: boolean): void {
  const labels = parseLabelSelector(query.get('labelSelector'));
  const fields = parseFieldSelector(query.get('fieldSelector'));
  const match = (o: StoredObject) => labels(o) && fields(o);
  const gr = grOf(def);
  const ns = def.namespaced ? namespace : '';
  const rvParam = query.get('resourceVersion');
  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
  res.flushHeaders();
  // Nothing is written once the answer has ended (its timeout, or the gate ending it): a store event
  // between that and 'close' would be a write after end, an error nothing handles.
  const write = (type: string, object: unknown) => {
    if (res.writableEnded || res.destroyed) return;
    res.write(JSON.stringify({ type, object }) + '\n');
  };
  const send = (type: string, obj: StoredObject) => write(type, asTable ? toTable(def, [obj]) : obj);
  let backlog: StoreEvent[] = [];
  if (!rvParam || rvParam === '0') {
    for (const o of store.list(gr, ns || undefined)) if (match(o)) send('ADDED', o);
  } else {
    try {
      backlog = store.eventsSince(Number(rvParam));
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      write('ERROR', err.toStatus());
      res.end();
      return;
    }
  }
  const deliver = (e: StoreEvent) => {
    if (e.gr !== gr || (ns && e.obj.metadata.namespace !== ns)) return;
    const now = match(e.obj);
    if (e.type === 'MODIFIED') {
      const was = e.prev ? match(e.prev) : false;
      if (now) send(was ? 'MODIFIED' : 'ADDED', e.obj);
      else if (was) send('DELETED', e.obj);
    } else if (now) {
      send(e.type, e.obj);
    }
  };
  for (const e of backlog) deliver(e);
  const unsubscribe = store.subscribe(deliver);
  const timeoutSec = Number(query.get('timeoutSeconds') ?? 1800) || 1800;
  const timer = setTimeout(() => res.end(), timeoutSec * 1000);
  timer.unref();
  const stop = () => {
    clearTimeout(timer);
    unsubscribe();
  };
  res.on('finish', stop);
  res.on('close', stop);
}
