/**
 * Records core/v1 Events about the objects the controllers act on.
 *
 * Differs from client-go's recorder: no aggregation or count bumping; an identical event
 * (same object, reason and message) is written at most once per process, and failures to write
 * an event are logged and otherwise ignored.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { errLine, type ClusterApi } from './api.js';
import type { LogFn } from './loop.js';

/** Writes Events; `component` becomes source.component and reportingComponent. */
export class EventRecorder {
  private seen = new Set<string>();

  constructor(
    private readonly api: ClusterApi,
    private readonly component: string,
    private readonly log: LogFn,
  ) {}

  /** Emits one event about `obj` (fire and forget). */
  record(obj: KubernetesObject, type: 'Normal' | 'Warning', reason: string, message: string): void {
    const uid = obj.metadata?.uid ?? '';
    const key = `${uid}\0${reason}\0${message}`;
    if (this.seen.has(key)) return;
    if (this.seen.size > 5000) this.seen.clear();
    this.seen.add(key);
    const now = new Date().toISOString();
    const namespace = obj.metadata?.namespace || 'default';
    const suffix = (Date.now() * 1000 + Math.floor(Math.random() * 1000)).toString(16);
    const event = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: `${obj.metadata?.name}.${suffix}`, namespace },
      involvedObject: {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        name: obj.metadata?.name,
        namespace: obj.metadata?.namespace,
        uid: obj.metadata?.uid,
        resourceVersion: obj.metadata?.resourceVersion,
      },
      reason,
      message,
      type,
      source: { component: this.component },
      reportingComponent: this.component,
      reportingInstance: this.component,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    this.api.create(event as KubernetesObject).catch((err) => this.log(`event ${reason} for "${obj.metadata?.name}": ${errLine(err)}`));
  }
}
