/**
 * Wires the caches to the controllers: each controller is a SyncLoop kicked by changes to the
 * resources it reads.
 *
 * Differs from kube-controller-manager: no leader election, no per-controller enable flags, no
 * metrics or health endpoints; every controller runs in this one process and event loop.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { ClusterApi } from './api.js';
import { allCaches, makeCaches, type Caches } from './caches.js';
import { makeCronJobController } from './cronjob.js';
import { makeDeploymentController } from './deployment.js';
import { EventRecorder } from './events.js';
import { makeGarbageCollector } from './gc.js';
import { makeJobController } from './job.js';
import { SyncLoop, type LogFn } from './loop.js';
import { makeProtectionController } from './protection.js';
import { makePvBinder } from './pvbinder.js';
import { makeReplicaSetController } from './replicaset.js';
import { makeScheduler } from './scheduler.js';
import { makeStatefulSetController } from './statefulset.js';
import { makeTaintEvictionController } from './tainteviction.js';

/** A running controller-manager. */
export interface ControllerManager {
  caches: Caches;
  /** Resolves once every cache has listed once. */
  synced: Promise<void>;
  stop(): void;
}

/** Starts every cache and controller; `dir` is the cluster directory (for local PV paths). */
export function startControllerManager(kc: KubeConfig, api: ClusterApi, dir: string, log: LogFn): ControllerManager {
  const caches = makeCaches(kc, api, log);
  const events = new EventRecorder(api, 'sim-controller-manager', log);
  const deps = { api, caches, events, log };
  // The taint eviction controller asks to run again when the first toleration runs out, the
  // CronJob controller at the next scheduled time.
  const wakers: Array<() => void> = [];
  const waker = (name: 'taintEviction' | 'cronJobs'): (ms: number) => void => {
    let timer: NodeJS.Timeout | undefined;
    let at = Infinity;
    wakers.push(() => clearTimeout(timer));
    return (asked) => {
      const ms = Math.min(asked, 3600_000); // setTimeout's limit is 2^31 ms; the periodic pass runs anyway
      if (Date.now() + ms >= at) return;
      clearTimeout(timer);
      at = Date.now() + ms;
      timer = setTimeout(() => { at = Infinity; loops[name].kick(); }, ms);
      timer.unref();
    };
  };
  const loops = {
    scheduler: new SyncLoop('scheduler', makeScheduler(deps), log),
    pvBinder: new SyncLoop('pv-binder', makePvBinder({ ...deps, dir }), log),
    statefulSets: new SyncLoop('statefulset', makeStatefulSetController(deps), log),
    deployments: new SyncLoop('deployment', makeDeploymentController(deps), log),
    replicaSets: new SyncLoop('replicaset', makeReplicaSetController(deps), log),
    jobs: new SyncLoop('job', makeJobController(deps), log),
    protection: new SyncLoop('protection', makeProtectionController({ api, caches, log }), log),
    taintEviction: new SyncLoop('taint-eviction', makeTaintEvictionController({ ...deps, wake: waker('taintEviction') }), log),
    cronJobs: new SyncLoop('cronjob', makeCronJobController({ ...deps, now: Date.now, wake: waker('cronJobs') }), log),
    gc: new SyncLoop('garbage-collector', makeGarbageCollector({ api, caches, log }), log, 500, 30_000),
  };
  const kickOn = (cacheNames: Array<keyof Caches>, loop: SyncLoop): void => {
    for (const name of cacheNames) caches[name].onChange(() => loop.kick());
  };
  kickOn(['pods', 'nodes', 'claims', 'volumes', 'classes'], loops.scheduler);
  kickOn(['pods', 'nodes', 'claims', 'volumes', 'classes'], loops.pvBinder);
  kickOn(['statefulsets', 'pods', 'claims', 'revisions'], loops.statefulSets);
  kickOn(['deployments', 'replicasets', 'pods'], loops.deployments);
  kickOn(['replicasets', 'pods'], loops.replicaSets);
  kickOn(['jobs', 'pods'], loops.jobs);
  kickOn(['pods', 'claims', 'volumes'], loops.protection);
  kickOn(['pods', 'nodes'], loops.taintEviction);
  kickOn(['cronjobs', 'jobs'], loops.cronJobs);
  for (const cache of allCaches(caches)) cache.onChange((_obj, type) => (type === 'delete' || _obj.metadata?.deletionTimestamp ? loops.gc.kick() : undefined));

  const list = allCaches(caches);
  for (const c of list) c.start();
  const synced = Promise.all(list.map((c) => c.synced)).then(() => {
    for (const loop of Object.values(loops)) loop.start();
  });
  return {
    caches,
    synced,
    stop() {
      for (const stop of wakers) stop();
      for (const loop of Object.values(loops)) loop.stop();
      for (const c of list) c.stop();
    },
  };
}
