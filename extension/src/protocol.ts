/**
 * The wire contract with the innerloop language server (server/innerloop/lsp): command names,
 * argument and result shapes. Results are parsed defensively because the server is a separate
 * process that may be a different version than this extension.
 */

export const ServerCommand = {
  status: 'innerloop.status',
  listTargets: 'innerloop.listTargets',
  startIntercept: 'innerloop.startIntercept',
  stopIntercept: 'innerloop.stopIntercept',
  uninstall: 'innerloop.uninstall',
  debugAdapterEndpoint: 'innerloop.debugAdapterEndpoint',
} as const;

/** Notification the server pushes on every state change; params are a ServerStatus. */
export const STATUS_NOTIFICATION = 'innerloop/status';

export type InterceptState = 'connecting' | 'active' | 'paused' | 'error' | 'stopping';

export type InterceptMode = 'route' | 'mirror';

/** The launch.json / startIntercept `match` object (a header value `~RE` is a regex). */
export interface RequestMatch {
  headers?: Record<string, string>;
  path?: string;
  pathPrefix?: string;
  pathRegex?: string;
  method?: string;
}

export interface InterceptStatus {
  id: string;
  namespace: string;
  service: string;
  /** null until the server has resolved the Service's port. */
  servicePort: number | string | null;
  localPort: number | null;
  state: InterceptState;
  replicas: number | null;
  envFile: string | null;
  message: string | null;
  /** Which requests, for people: `x-dev=me`, `mirror: all requests`; '' for all of them. */
  scope: string;
  mode: InterceptMode;
  /** The filter as a `match` object ({} for all requests). */
  match: RequestMatch;
  /** false: nothing listens on 127.0.0.1:localPort, so every request goes to the cluster; null: unknown. */
  listening: boolean | null;
}

export interface ServerStatus {
  version: string;
  /** The interpreter running the server, so "Show Status" tells which environment is in use. */
  python: string | null;
  intercepts: InterceptStatus[];
}

export interface ServicePort {
  name: string | null;
  port: number;
  targetPort: number | string;
}

export interface ServiceTarget {
  namespace: string;
  name: string;
  ports: ServicePort[];
  hasAgent: boolean;
}

export interface TargetList {
  namespaces: string[];
  /** The namespace the services belong to, or the context's namespace when none was asked. */
  namespace: string | null;
  services: ServiceTarget[];
}

/** What the user picked in "Intercept Service…"; also the startIntercept argument. */
export interface InterceptRequest {
  namespace: string;
  service: string;
  servicePort: number | string;
  localPort: number;
  /** Only these requests (absent: all of them). */
  match?: RequestMatch;
  /** Absent: route. */
  mode?: InterceptMode;
}

export type DebugAdapterEndpoint =
  | { kind: 'tcp'; host: string; port: number; token: string }
  | { kind: 'pipe'; path: string; token: string };

export class ProtocolMismatch extends Error {
  constructor(what: string, value: unknown) {
    super(`the innerloop server sent an unexpected ${what}: ${JSON.stringify(value)?.slice(0, 200)}`);
  }
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

function int(v: unknown): number | null {
  return typeof v === 'number' && Number.isInteger(v) ? v : null;
}

function portRef(v: unknown): number | string | null {
  return int(v) ?? str(v);
}

/** An older server sends no match: all requests. Unknown keys and non-string values are dropped. */
function parseMatch(v: unknown): RequestMatch {
  if (!isObj(v)) return {};
  const out: RequestMatch = {};
  if (isObj(v.headers)) {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(v.headers)) {
      if (typeof value === 'string') headers[name] = value;
    }
    if (Object.keys(headers).length > 0) out.headers = headers;
  }
  for (const key of ['path', 'pathPrefix', 'pathRegex', 'method'] as const) {
    const value = str(v[key]);
    if (value !== null) out[key] = value;
  }
  return out;
}

const STATES: ReadonlySet<string> = new Set(['connecting', 'active', 'paused', 'error', 'stopping']);

export function parseIntercept(v: unknown): InterceptStatus {
  if (!isObj(v)) throw new ProtocolMismatch('intercept', v);
  const namespace = str(v.namespace);
  const service = str(v.service);
  const servicePort = portRef(v.servicePort);
  const localPort = int(v.localPort);
  const state = str(v.state);
  if (namespace === null || service === null) throw new ProtocolMismatch('intercept', v);
  if (state === null || !STATES.has(state)) throw new ProtocolMismatch('intercept state', v.state);
  return {
    id: str(v.id) ?? `${namespace}/${service}`,
    namespace,
    service,
    servicePort,
    localPort,
    state: state as InterceptState,
    replicas: int(v.replicas),
    envFile: str(v.envFile),
    message: str(v.message),
    scope: str(v.scope) ?? '',
    mode: v.mode === 'mirror' ? 'mirror' : 'route',
    match: parseMatch(v.match),
    listening: typeof v.listening === 'boolean' ? v.listening : null,
  };
}

export function parseStatus(v: unknown): ServerStatus {
  if (!isObj(v)) throw new ProtocolMismatch('status', v);
  const version = str(v.version);
  if (version === null || !Array.isArray(v.intercepts)) throw new ProtocolMismatch('status', v);
  return { version, python: str(v.python), intercepts: v.intercepts.map(parseIntercept) };
}

function parseServicePort(v: unknown): ServicePort {
  if (!isObj(v)) throw new ProtocolMismatch('service port', v);
  const port = int(v.port);
  const targetPort = portRef(v.targetPort);
  if (port === null) throw new ProtocolMismatch('service port', v);
  return { name: str(v.name), port, targetPort: targetPort ?? port };
}

function parseService(v: unknown): ServiceTarget {
  if (!isObj(v) || !Array.isArray(v.ports)) throw new ProtocolMismatch('service', v);
  const namespace = str(v.namespace);
  const name = str(v.name);
  if (namespace === null || name === null) throw new ProtocolMismatch('service', v);
  return { namespace, name, ports: v.ports.map(parseServicePort), hasAgent: v.hasAgent === true };
}

export function parseTargets(v: unknown): TargetList {
  if (!isObj(v) || !Array.isArray(v.namespaces) || !Array.isArray(v.services)) {
    throw new ProtocolMismatch('target list', v);
  }
  const namespaces = v.namespaces.map((n) => {
    const s = str(n);
    if (s === null) throw new ProtocolMismatch('namespace', n);
    return s;
  });
  return { namespaces, namespace: str(v.namespace), services: v.services.map(parseService) };
}

export function parseEndpoint(v: unknown): DebugAdapterEndpoint {
  if (!isObj(v)) throw new ProtocolMismatch('debug adapter endpoint', v);
  const token = str(v.token);
  if (token === null) throw new ProtocolMismatch('debug adapter endpoint', v);
  const path = str(v.pipe);
  if (path !== null) return { kind: 'pipe', path, token };
  const port = int(v.port);
  if (port === null) throw new ProtocolMismatch('debug adapter endpoint', v);
  return { kind: 'tcp', host: str(v.host) ?? '127.0.0.1', port, token };
}
