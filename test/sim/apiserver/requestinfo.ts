// Turning a request path and method into what it addresses (group, version, resource, namespace,
// name, subresource) and the Kubernetes verb, following kube-apiserver's RequestInfo rules.
// Differences from a real API server: the old /api/v1/watch/... paths are not served.

/** What a request addresses, and its Kubernetes verb. */
export interface RequestInfo {
  isResource: boolean;
  path: string;
  verb: string;
  apiGroup: string;
  apiVersion: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
}

const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

/** Parses method + path + query the way kube's RequestInfoFactory does. */
export function parseRequestInfo(method: string, path: string, query: URLSearchParams): RequestInfo {
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const info: RequestInfo = { isResource: false, path, verb: method.toLowerCase(), apiGroup: '', apiVersion: '', resource: '', subresource: '', namespace: '', name: '' };
  let rest: string[];
  if (parts[0] === 'api' && parts.length >= 2) {
    info.apiVersion = parts[1];
    rest = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 3) {
    info.apiGroup = parts[1];
    info.apiVersion = parts[2];
    rest = parts.slice(3);
  } else {
    return info;
  }
  if (!rest.length) return info;
  info.isResource = true;
  if (rest[0] === 'namespaces' && rest.length > 1) {
    info.namespace = rest[1];
    if (rest.length > 2 && !NAMESPACE_SUBRESOURCES.has(rest[2])) rest = rest.slice(2);
  }
  info.resource = rest[0];
  info.name = rest[1] ?? '';
  info.subresource = rest[2] ?? '';
  const watch = ['1', 'true'].includes(query.get('watch') ?? '');
  switch (method) {
    case 'GET': case 'HEAD': info.verb = info.name ? (watch ? 'watch' : 'get') : (watch ? 'watch' : 'list'); break;
    case 'POST': info.verb = 'create'; break;
    case 'PUT': info.verb = 'update'; break;
    case 'PATCH': info.verb = 'patch'; break;
    case 'DELETE': info.verb = info.name ? 'delete' : 'deletecollection'; break;
    default: info.verb = method.toLowerCase();
  }
  // Pod streams (exec, attach, portforward) too are authorized by their method, as a real API
  // server does: a WebSocket upgrade is a GET, so `get` on pods/exec, where SPDY's POST needed
  // `create` (kubernetes/kubernetes#78741, #133515). The simulator is v1.32: the extra `create`
  // check of 1.35 (AuthorizePodWebsocketUpgradeCreatePermission, kubernetes/kubernetes#134577) is
  // not modelled.
  return info;
}
