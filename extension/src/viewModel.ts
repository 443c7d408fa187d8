/**
 * The wire contract of the Innerloop view with the language server
 * (server/innerloop/lsp/flows.py, features/request_log.py, features/cluster_tree.py):
 * method names and the shapes of the tree nodes and request-log records, parsed defensively
 * (the server is a separate process, possibly of another version).
 */

export const ViewMethod = {
  tree: 'innerloop/tree',
  requestLog: 'innerloop/requestLog',
  handlerLocation: 'innerloop/handlerLocation',
} as const;

/** Pushed by the server with the records that changed: `{records: RequestRecord[]}`. */
export const REQUEST_LOG_NOTIFICATION = 'innerloop/requestLog';

export interface TunnelNode {
  pod: string;
  connected: boolean;
  rttMs: number | null;
}

export interface InterceptNode {
  id: string;
  namespace: string;
  service: string;
  servicePort: number | string | null;
  localPort: number | null;
  state: string;
  /** Who holds it: `user@host:pid`. */
  holder: string;
  /** Epoch seconds. */
  since: number;
  scope: string;
  tunnels: TunnelNode[];
}

export interface ContextNode {
  name: string;
  namespace: string;
  cluster: string;
}

export interface ContextsNode {
  contexts: ContextNode[];
  current: string | null;
  selected: string | null;
}

export interface NamespacesNode {
  namespaces: string[];
  current: string;
}

export interface ServiceNode {
  name: string;
  /** `80→8080/http` per port. */
  ports: string[];
  hasAgent: boolean;
  workload: string | null;
  ready: number | null;
  wanted: number | null;
}

export interface RequestRecord {
  id: number;
  intercept: string;
  replica: string;
  /** The caller's address as the agent saw it (`ip:port`). */
  peer: string;
  /** The caller's pod, once the server has looked it up. */
  peerPod: string | null;
  /** Epoch seconds. */
  started: number;
  kind: 'http' | 'tcp';
  method: string | null;
  path: string | null;
  status: number | null;
  requestBytes: number;
  responseBytes: number;
  /** Seconds; null while open. */
  duration: number | null;
  /** The program was paused at a breakpoint while this request was open. */
  held: boolean;
  outcome: 'open' | 'done' | 'reset';
  note: string;
}

export interface HandlerLocation {
  file: string;
  /** 1-based line of the handler's code lens. */
  line: number;
  bodyLine: number;
  handler: string;
  route: string;
}

type Obj = Record<string, unknown>;

function obj(v: unknown): Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {};
}

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function str(v: unknown, fallback = ''): string {
  return typeof v === 'string' ? v : fallback;
}

function strOrNull(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function portRef(v: unknown): number | string | null {
  return typeof v === 'number' || typeof v === 'string' ? v : null;
}

export function parseIntercepts(v: unknown): InterceptNode[] {
  return list(obj(v).intercepts).map((raw) => {
    const i = obj(raw);
    return {
      id: str(i.id),
      namespace: str(i.namespace),
      service: str(i.service),
      servicePort: portRef(i.servicePort),
      localPort: num(i.localPort),
      state: str(i.state, 'unknown'),
      holder: str(i.holder),
      since: num(i.since) ?? 0,
      scope: str(i.scope),
      tunnels: list(i.tunnels).map((t) => {
        const o = obj(t);
        return { pod: str(o.pod), connected: o.connected === true, rttMs: num(o.rttMs) };
      }),
    };
  });
}

export function parseContexts(v: unknown): ContextsNode {
  const o = obj(v);
  return {
    contexts: list(o.contexts).map((c) => {
      const x = obj(c);
      return { name: str(x.name), namespace: str(x.namespace, 'default'), cluster: str(x.cluster) };
    }),
    current: strOrNull(o.current),
    selected: strOrNull(o.selected),
  };
}

export function parseNamespaces(v: unknown): NamespacesNode {
  const o = obj(v);
  return { namespaces: list(o.namespaces).filter((n): n is string => typeof n === 'string'), current: str(o.current) };
}

export function parseServices(v: unknown): ServiceNode[] {
  return list(obj(v).services).map((raw) => {
    const s = obj(raw);
    return {
      name: str(s.name),
      ports: list(s.ports).filter((p): p is string => typeof p === 'string'),
      hasAgent: s.hasAgent === true,
      workload: strOrNull(s.workload),
      ready: num(s.ready),
      wanted: num(s.wanted),
    };
  });
}

export function parseRecord(v: unknown): RequestRecord | null {
  const r = obj(v);
  const id = num(r.id);
  if (id === null) return null;
  const outcome = r.outcome === 'done' || r.outcome === 'reset' ? r.outcome : 'open';
  return {
    id,
    intercept: str(r.intercept),
    replica: str(r.replica),
    peer: str(r.peer),
    peerPod: strOrNull(r.peerPod),
    started: num(r.started) ?? 0,
    kind: r.kind === 'tcp' ? 'tcp' : 'http',
    method: strOrNull(r.method),
    path: strOrNull(r.path),
    status: num(r.status),
    requestBytes: num(r.requestBytes) ?? 0,
    responseBytes: num(r.responseBytes) ?? 0,
    duration: num(r.duration),
    held: r.held === true,
    outcome,
    note: str(r.note),
  };
}

export function parseRecords(v: unknown): RequestRecord[] {
  return list(obj(v).records)
    .map(parseRecord)
    .filter((r): r is RequestRecord => r !== null);
}

export function parseHandlerLocation(v: unknown): HandlerLocation | null {
  const o = obj(v);
  const line = num(o.line);
  if (typeof o.file !== 'string' || line === null) return null;
  return { file: o.file, line, bodyLine: num(o.bodyLine) ?? line, handler: str(o.handler), route: str(o.route) };
}

// -- how a record reads, shared by the tree and the table ------------------------------------

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function formatDuration(seconds: number | null): string {
  if (seconds === null) return 'in flight';
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  return `${seconds.toFixed(1)} s`;
}

export function formatTime(epochSeconds: number): string {
  const d = new Date(epochSeconds * 1000);
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** `GET /orders/7`, or `h2 connection` / `TCP connection` for other protocols. */
export function recordTitle(r: RequestRecord): string {
  if (r.kind === 'tcp') return r.note === 'h2' ? 'h2 connection' : 'TCP connection';
  return `${r.method ?? '?'} ${r.path ?? '?'}`;
}

/** `200`, `reset`, `…` (in flight). */
export function recordStatus(r: RequestRecord): string {
  if (r.status !== null) return String(r.status);
  if (r.outcome === 'reset') return 'reset';
  return r.outcome === 'open' ? '…' : '-';
}

export function recordCaller(r: RequestRecord): string {
  return r.peerPod ?? r.peer.replace(/:\d+$/, '');
}

export const HELD_MARK = 'held at breakpoint';
