// SIGKILL of `kubectl etcd restore` on the `single` fixture (kill-points.ts says how), for the
// default order (etcd scaled to 0) and for --in-place:
// - --resume after every step, as a chain of resumes each killed after the next step, run to the
//   verified end after the first utility pod, the swap, etcd back (wait-ready) and the last step;
// - --abort after one step of each kind across the two modes, and in both modes after the first
//   utility pod, the swap and etcd back. Kill points left out for --abort repeat a kept one: the
//   same handler and the same roll-back steps (abortSteps depends only on whether a utility pod
//   ran and whether a member's restore finished), on a cluster differing only in what an
//   idempotent step of the same kind has already done (listed beside each mode below);
// - kills during --abort at each of its steps.
import { killPointTests } from './kill-points.js';

killPointTests({
  name: 'restore-kill',
  fixtures: ['single'],
  tool: { binary: 'etcdctl' },
  resumeAfter: { scaled: 'every', 'in place': 'every' },
  abortAfter: {
    // Left out: quiesce/Deployment (as quiesce/StatefulSet: one more workload at 0, which every
    // later kill point also has), restore (kept in place; as copy plus a restore dir, which swap
    // also has), verify (as wait-ready: the same data running, verification only reads),
    // unquiesce/Deployment and pdb-create (as unquiesce/StatefulSet: a workload or PDB already
    // back, which the roll-back re-applies idempotently; pdb-create kept in place), wait-ready (as
    // etcd-start: the restored member started, Ready or about to be; kept in place).
    scaled: [
      'journal', 'pdb-delete/kube-apiserver-pdb', 'quiesce/StatefulSet/kube-apiserver', 'utility/kube-etcd-0', 'etcd-stop',
      'copy/kube-etcd-0', 'swap/kube-etcd-0', 'cleanup/kube-etcd-0', 'etcd-start', 'unquiesce/StatefulSet/kube-apiserver',
    ],
    // Left out: journal, pdb-delete, quiesce/* (before the utility pod nothing differs from the
    // scaled order but the roll-back skipping a no-op scale of etcd to 1), copy (kept scaled),
    // cleanup (as etcd-recreate: the pods restarted on the restored data, the utility pod gone,
    // which the roll-back re-creates as it does scaled after cleanup), unquiesce/* (kept scaled),
    // restored (as restore: that step only checks the restored data is there, changing nothing),
    // verify (as wait-ready, as scaled).
    'in place': [
      'utility/kube-etcd-0', 'restore/kube-etcd-0', 'swap/kube-etcd-0', 'etcd-recreate', 'wait-ready',
      'pdb-create/kube-apiserver-pdb',
    ],
  },
  killDuringAbort: true,
});
