import * as vscode from 'vscode';
import { readSettings, SECTION } from './config';
import { InterceptRequest, parseTargets, ServerCommand } from './protocol';
import { pickNamespace, pickService } from './quickPick';
import { InnerloopServer } from './server';

/**
 * The workspace ↔ Service mapping: the `innerloop` workspace settings (context, namespace,
 * service, servicePort, localPort) that the code lens, the status bar's intercept and the
 * launch snippet read (server/innerloop/lsp/service_map.py reads the same keys, and
 * `.vscode/innerloop.json` when the settings name no Service). Written here only.
 */

const LIST_CONTEXTS = 'innerloop.listContexts';
const WORKSPACE_MAPPING = 'innerloop.workspaceMapping';
const REFRESH_LENSES = 'innerloop.refreshCodeLenses';
const SYNC_TIMEOUT_MS = 10_000;

interface KubeContext {
  name: string;
  namespace: string;
  cluster: string;
}

interface ContextList {
  contexts: KubeContext[];
  current: string | null;
  /** The server's `innerloop.context` setting as it has received it. */
  selected: string | null;
}

function parseContexts(v: unknown): ContextList {
  const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  if (!Array.isArray(o.contexts)) throw new Error(`the server sent an unexpected context list: ${JSON.stringify(v)?.slice(0, 200)}`);
  const text = (x: unknown): string => (typeof x === 'string' ? x : '');
  const contexts = o.contexts.map((c: unknown) => {
    const e = (typeof c === 'object' && c !== null ? c : {}) as Record<string, unknown>;
    return { name: text(e.name), namespace: text(e.namespace) || 'default', cluster: text(e.cluster) };
  });
  const orNull = (x: unknown): string | null => (typeof x === 'string' && x !== '' ? x : null);
  return { contexts, current: orNull(o.current), selected: orNull(o.selected) };
}

async function listContexts(server: InnerloopServer): Promise<ContextList> {
  return parseContexts(await server.execute(LIST_CONTEXTS));
}

/** Settings reach the server by a notification: wait until it has the new context. */
async function serverHasContext(server: InnerloopServer, context: string | null): Promise<void> {
  const deadline = Date.now() + SYNC_TIMEOUT_MS;
  while ((await listContexts(server)).selected !== context) {
    if (Date.now() > deadline) throw new Error('the server did not receive the innerloop.context setting');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Step 1: which kubeconfig context. Picking the kubeconfig's current context leaves the setting
 * empty (innerloop follows the kubeconfig, as kubectl does); a new context drops the workspace's
 * namespace, so the namespace defaults to the new context's.
 */
export async function pickContext(server: InnerloopServer): Promise<string | undefined> {
  const listed = await listContexts(server);
  if (listed.contexts.length === 0) throw new Error('the kubeconfig has no context: set innerloop.kubeconfig to one that has');
  const chosen = readSettings().context || listed.current;
  const items = listed.contexts.map((c) => ({
    label: c.name,
    description: [`namespace ${c.namespace}`, c.name === listed.current ? 'current' : ''].filter(Boolean).join(' · '),
    detail: c.cluster === '' ? undefined : `cluster ${c.cluster}`,
    picked: c.name === chosen,
    value: c,
  }));
  items.sort((a, b) => Number(b.picked) - Number(a.picked));
  const picked = await vscode.window.showQuickPick(items, {
    title: 'Innerloop: the Kubernetes context',
    placeHolder: 'Context (from your kubeconfig)',
    ignoreFocusOut: true,
  });
  if (picked === undefined) return undefined;
  const settings = vscode.workspace.getConfiguration(SECTION);
  const target = vscode.ConfigurationTarget.Workspace;
  const value = picked.value.name === listed.current ? undefined : picked.value.name;
  if ((value ?? '') !== readSettings().context) await settings.update('namespace', undefined, target);
  await settings.update('context', value, target);
  await serverHasContext(server, value ?? null);
  return picked.value.name;
}

let writing: Promise<boolean> | undefined;

/** The mapping being chosen or written, if any: the settings take a second or two to save. */
export function mappingInProgress(): Promise<boolean> | undefined {
  return writing;
}

/** Step 2: namespace (the context's first) → Service → port → local port, written to the workspace. */
export function chooseMapping(server: InnerloopServer): Promise<boolean> {
  const running = pickAndWrite(server).finally(() => {
    if (writing === running) writing = undefined;
  });
  writing = running;
  return running;
}

async function pickAndWrite(server: InnerloopServer): Promise<boolean> {
  const title = 'Innerloop: the Service this workspace serves';
  const steps = 3;
  const current = readSettings();
  const namespace = await pickNamespace(server, title, steps, current.namespace || undefined);
  if (namespace === undefined) return false;
  const service = await pickService(server, title, steps, namespace, current.service || undefined, (s) => s.ports.length > 0);
  if (service === undefined) return false;
  let port = service.ports[0];
  if (port === undefined) return false;
  if (service.ports.length > 1) {
    const picked = await vscode.window.showQuickPick(
      service.ports.map((p) => ({ label: String(p.port), description: p.name ?? '', detail: `targetPort ${p.targetPort}`, value: p })),
      { title: `${title} (2/${steps}): port of ${service.name}`, placeHolder: 'Service port', ignoreFocusOut: true },
    );
    if (picked === undefined) return false;
    port = picked.value;
  }
  // Where the app listens in the pod is where the local copy listens too (it gets the pod's env).
  const suggested = typeof port.targetPort === 'number' ? port.targetPort : port.port;
  const answer = await vscode.window.showInputBox({
    title: `${title} (3/${steps}): local port`,
    prompt: `Your program listens here; ${service.name}:${port.port} traffic comes to it`,
    value: String(current.service === service.name && current.localPort > 0 ? current.localPort : suggested),
    ignoreFocusOut: true,
    validateInput: (v) => (/^\d+$/.test(v) && Number(v) >= 1 && Number(v) <= 65535 ? undefined : 'A port number, 1–65535'),
  });
  if (answer === undefined) return false;
  const settings = vscode.workspace.getConfiguration(SECTION);
  const target = vscode.ConfigurationTarget.Workspace;
  await settings.update('namespace', namespace, target);
  await settings.update('servicePort', service.ports.length > 1 ? String(port.name ?? port.port) : undefined, target);
  await settings.update('localPort', Number(answer), target);
  await settings.update('service', service.name, target);
  await server.execute(REFRESH_LENSES);
  return true;
}

/** The mapping's keys as the server sends them (server/innerloop/lsp/service_map.py `as_json`). */
export interface MappedService {
  service: string;
  /** Empty: the context's. */
  namespace: string;
  /** Number or name; empty: the Service's only port. */
  servicePort: string;
  /** 0: the Service port's target port. */
  localPort: number;
  program: string;
}

export function portRef(servicePort: string): number | string | undefined {
  if (servicePort === '') return undefined;
  return /^\d+$/.test(servicePort) ? Number(servicePort) : servicePort;
}

/**
 * The intercept a mapping means, its blanks filled as the cluster says: the context's namespace,
 * the Service's port, and the local port where the app listens in the pod (the local copy gets
 * the pod's env, so it listens there too).
 */
export async function resolveMapping(server: InnerloopServer, m: MappedService): Promise<InterceptRequest> {
  const targets = parseTargets(await server.execute(ServerCommand.listTargets, { namespace: m.namespace || null }));
  const wanted = portRef(m.servicePort);
  const service = targets.services.find((s) => s.name === m.service);
  const port = service?.ports.find((p) => wanted === undefined || p.port === wanted || p.name === wanted);
  const namespace = m.namespace || targets.namespace || 'default';
  if (service === undefined) throw new Error(`no Service ${m.service} in namespace ${namespace}: fix innerloop.service or run "Innerloop: Choose the Service for this Workspace…"`);
  const localPort = m.localPort > 0 ? m.localPort : typeof port?.targetPort === 'number' ? port.targetPort : undefined;
  if (localPort === undefined) throw new Error(`set innerloop.localPort: the port your program listens on for ${m.service}`);
  return { namespace, service: m.service, servicePort: wanted ?? port?.port ?? 80, localPort };
}

/** This folder's mapping as the code lens sees it (the settings, else `.vscode/innerloop.json`); undefined: none. */
export async function workspaceMapping(server: InnerloopServer, folder: vscode.WorkspaceFolder | undefined): Promise<(InterceptRequest & { program: string }) | undefined> {
  const file = folder === undefined ? undefined : vscode.Uri.joinPath(folder.uri, '__any__.py').fsPath;
  const raw = (await server.execute(WORKSPACE_MAPPING, file === undefined ? {} : { file })) as Partial<MappedService> | null;
  if (raw === null || typeof raw !== 'object' || typeof raw.service !== 'string' || raw.service === '') return undefined;
  const mapped: MappedService = {
    service: raw.service,
    namespace: raw.namespace ?? '',
    servicePort: String(raw.servicePort ?? ''),
    localPort: typeof raw.localPort === 'number' ? raw.localPort : 0,
    program: raw.program ?? '',
  };
  return { ...(await resolveMapping(server, mapped)), program: mapped.program };
}
