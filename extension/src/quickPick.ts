import * as os from 'os';
import * as vscode from 'vscode';
import { readSettings } from './config';
import { InterceptMode, InterceptRequest, parseTargets, RequestMatch, ServerCommand, ServiceTarget, TargetList } from './protocol';
import { InnerloopServer } from './server';

const LAST_INTERCEPT = 'innerloop.lastIntercept';

/** The last "Intercept Service…" choice, per workspace, offered first next time. */
export class LastChoice {
  constructor(private readonly memento: vscode.Memento) {}

  get(): InterceptRequest | undefined {
    return this.memento.get<InterceptRequest>(LAST_INTERCEPT);
  }

  set(choice: InterceptRequest): Thenable<void> {
    return this.memento.update(LAST_INTERCEPT, choice);
  }
}

interface Item<T> extends vscode.QuickPickItem {
  value: T;
}

async function listTargets(server: InnerloopServer, namespace: string | null): Promise<TargetList> {
  return parseTargets(await server.execute(ServerCommand.listTargets, { namespace }));
}

/** Moves the preferred entries to the front, keeping the server's order otherwise. */
function preferFirst<T>(items: Item<T>[], preferred: (T | undefined)[]): Item<T>[] {
  const rank = (i: Item<T>): number => {
    const at = preferred.indexOf(i.value);
    return at === -1 ? preferred.length : at;
  };
  return [...items].sort((a, b) => rank(a) - rank(b));
}

/** A quick pick that also accepts a typed value that is not in the list. */
function pickOrType(title: string, placeholder: string, load: Promise<Item<string>[]>): Promise<string | undefined> {
  return new Promise((resolve) => {
    const pick = vscode.window.createQuickPick<Item<string>>();
    pick.title = title;
    pick.placeholder = placeholder;
    pick.busy = true;
    pick.ignoreFocusOut = true;
    load.then(
      (items) => {
        pick.items = items;
        pick.busy = false;
      },
      (err: unknown) => {
        pick.hide();
        void vscode.window.showErrorMessage(`innerloop: ${err instanceof Error ? err.message : String(err)}`);
      },
    );
    let answer: string | undefined;
    pick.onDidAccept(() => {
      const typed = pick.value.trim();
      answer = pick.selectedItems[0]?.value ?? (typed === '' ? undefined : typed);
      pick.hide();
    });
    pick.onDidHide(() => {
      pick.dispose();
      resolve(answer);
    });
    pick.show();
  });
}

/** "Intercept Service (2/3): …": every dialog of a flow says its step out of the same total. */
function stepTitle(title: string, step: number, steps: number, what: string): string {
  return `${title} (${step}/${steps}): ${what}`;
}

export async function pickNamespace(server: InnerloopServer, title: string, steps: number, last: string | undefined): Promise<string | undefined> {
  const setting = readSettings().namespace || undefined;
  const load = async (): Promise<Item<string>[]> => {
    const targets = await listTargets(server, null);
    const names = new Set([...targets.namespaces, ...[last, setting].filter((n): n is string => n !== undefined)]);
    const items = [...names].map((ns) => ({
      label: ns,
      value: ns,
      description: [ns === last ? 'last used' : '', ns === targets.namespace ? 'current' : ''].filter(Boolean).join(', '),
    }));
    return preferFirst(items, [last, setting, targets.namespace ?? undefined]);
  };
  return pickOrType(stepTitle(title, 1, steps, 'namespace'), 'Namespace (pick, or type another)', load());
}

export async function pickService(
  server: InnerloopServer,
  title: string,
  steps: number,
  namespace: string,
  last: string | undefined,
  filter: (s: ServiceTarget) => boolean,
): Promise<ServiceTarget | undefined> {
  const load = async (): Promise<Item<ServiceTarget>[]> => {
    const services = (await listTargets(server, namespace)).services.filter(filter);
    if (services.length === 0) {
      void vscode.window.showInformationMessage(`innerloop: no matching Service in namespace "${namespace}".`);
    }
    const items = services.map((s) => ({
      label: s.name,
      value: s,
      description: s.ports.map((p) => `${p.port}${p.name ? `/${p.name}` : ''}`).join(', '),
      detail: s.hasAgent ? 'agent installed' : undefined,
    }));
    const lastService = services.find((s) => s.name === last);
    return preferFirst(items, [lastService]);
  };
  const picked = await vscode.window.showQuickPick(load(), { title: stepTitle(title, 2, steps, `Service in ${namespace}`), placeHolder: 'Service' });
  return picked?.value;
}

/** The header of a personal intercept: requests that carry it with your name come to you. */
export const PERSONAL_HEADER = 'x-innerloop-user';

/** The OS user name as a header value (`me` when it cannot be read). */
export function personalValue(): string {
  let name = '';
  try {
    name = os.userInfo().username;
  } catch {
    name = process.env.USER ?? process.env.USERNAME ?? '';
  }
  return name.replace(/[^A-Za-z0-9._-]/g, '') || 'me';
}

/** An HTTP header name (RFC 9110 token). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** `NAME=VALUE` (`NAME=~REGEX` for a regex, `NAME=~` for "present") → one header condition. */
export function parseHeaderAnswer(text: string): { name: string; value: string } | string {
  const at = text.indexOf('=');
  const name = at === -1 ? '' : text.slice(0, at).trim();
  const value = at === -1 ? '' : text.slice(at + 1).trim();
  if (!TOKEN.test(name)) return 'NAME=VALUE, e.g. x-innerloop-user=me (a header name is letters, digits and -)';
  if (value === '') return `A value for ${name} (NAME=~REGEX for a regex, NAME=~ for "present")`;
  if (/[\r\n\0]/.test(value)) return 'One line, please';
  return { name, value };
}

function validPrefix(text: string): string | undefined {
  return text.startsWith('/') && !/\s/.test(text) ? undefined : 'A path starting with /, e.g. /api';
}

interface Scope {
  match?: RequestMatch;
  mode?: InterceptMode;
}

type ScopeKind = 'all' | 'header' | 'prefix' | 'mirror';

function scopeKind(previous: Scope | undefined): ScopeKind | undefined {
  if (previous === undefined) return undefined;
  if (previous.mode === 'mirror') return 'mirror';
  if (previous.match?.headers !== undefined) return 'header';
  if (previous.match?.pathPrefix !== undefined) return 'prefix';
  return 'all';
}

/** The last step: all of the port's requests, a personal header, a path prefix, or copies. */
async function pickScope(title: string, step: number, steps: number, service: string, previous: Scope | undefined): Promise<Scope | undefined> {
  const personal = `${PERSONAL_HEADER}=${personalValue()}`;
  const lastKind = scopeKind(previous);
  const items: Item<ScopeKind>[] = [
    { label: 'All traffic', value: 'all', description: `every request to ${service} comes to your program` },
    {
      label: 'Only requests with header…',
      value: 'header',
      description: personal,
      detail: 'A personal intercept: the others keep theirs, and requests without the header go to the cluster',
    },
    { label: 'Only a path prefix…', value: 'prefix', description: 'e.g. /api', detail: 'Requests under the prefix come to you, the rest go to the cluster' },
    {
      label: 'Mirror (copies only)',
      value: 'mirror',
      description: 'a copy of every request',
      detail: "The cluster's app keeps answering; your program's answers are dropped",
    },
  ];
  for (const item of items) {
    if (item.value === lastKind && item.value !== 'all') item.description = `${item.description ?? ''} (last used)`;
  }
  const picked = await vscode.window.showQuickPick(items, {
    title: stepTitle(title, step, steps, 'which requests'),
    placeHolder: 'Which requests come to your program',
    ignoreFocusOut: true,
  });
  switch (picked?.value) {
    case undefined:
      return undefined;
    case 'all':
      return {};
    case 'mirror':
      return { mode: 'mirror' };
    case 'header': {
      const [lastName, lastValue] = Object.entries(previous?.match?.headers ?? {})[0] ?? [];
      const answer = await vscode.window.showInputBox({
        title: stepTitle(title, step, steps, 'header'),
        prompt: `Only requests with this header come to your program (NAME=VALUE; NAME=~REGEX for a regex). Send it from your client, e.g. curl -H '${PERSONAL_HEADER}: ${personalValue()}'.`,
        value: lastName !== undefined && lastValue !== undefined ? `${lastName}=${lastValue}` : personal,
        ignoreFocusOut: true,
        validateInput: (v) => {
          const parsed = parseHeaderAnswer(v);
          return typeof parsed === 'string' ? parsed : undefined;
        },
      });
      if (answer === undefined) return undefined;
      const header = parseHeaderAnswer(answer);
      return typeof header === 'string' ? undefined : { match: { headers: { [header.name]: header.value } } };
    }
    case 'prefix': {
      const answer = await vscode.window.showInputBox({
        title: stepTitle(title, step, steps, 'path prefix'),
        prompt: 'Only requests whose path starts with this come to your program',
        value: previous?.match?.pathPrefix ?? '/',
        ignoreFocusOut: true,
        validateInput: validPrefix,
      });
      return answer === undefined ? undefined : { match: { pathPrefix: answer.trim() } };
    }
  }
}

/** Namespace → Service → port → local port → which requests; remembers the answer for the next time. */
export async function pickIntercept(server: InnerloopServer, last: LastChoice): Promise<InterceptRequest | undefined> {
  const title = 'Intercept Service';
  const previous = last.get();
  // namespace → Service (and its port, when it has several) → local port → which requests
  const steps = 4;
  const namespace = await pickNamespace(server, title, steps, previous?.namespace);
  if (namespace === undefined) return undefined;
  const service = await pickService(server, title, steps, namespace, previous?.service, (s) => s.ports.length > 0);
  if (service === undefined) return undefined;

  const [onlyPort, ...otherPorts] = service.ports;
  let port = onlyPort;
  if (otherPorts.length > 0) {
    const picked = await vscode.window.showQuickPick(
      service.ports.map((p) => ({
        label: String(p.port),
        description: p.name ?? '',
        detail: `targetPort ${p.targetPort}`,
        value: p,
      })),
      { title: stepTitle(title, 2, steps, `port of ${service.name}`), placeHolder: 'Service port' },
    );
    port = picked?.value;
  }
  if (port === undefined) return undefined;

  const sameAsBefore = previous?.namespace === namespace && previous.service === service.name;
  const suggested = sameAsBefore ? previous.localPort : typeof port.targetPort === 'number' ? port.targetPort : port.port;
  const answer = await vscode.window.showInputBox({
    title: stepTitle(title, 3, steps, 'local port'),
    prompt: `Local port that receives ${service.name}:${port.port} traffic (your program listens there)`,
    value: String(suggested),
    validateInput: (v) => (/^\d+$/.test(v) && Number(v) >= 1 && Number(v) <= 65535 ? undefined : 'A port number, 1–65535'),
  });
  if (answer === undefined) return undefined;

  const scope = await pickScope(title, 4, steps, service.name, sameAsBefore ? previous : undefined);
  if (scope === undefined) return undefined;

  const choice: InterceptRequest = {
    namespace,
    service: service.name,
    servicePort: port.port,
    localPort: Number(answer),
    ...scope,
  };
  await last.set(choice);
  return choice;
}

/** Namespace → a Service whose workload carries the agent. */
export async function pickAgentService(server: InnerloopServer, last: LastChoice): Promise<ServiceTarget | undefined> {
  const title = 'Uninstall Agent';
  const steps = 2;
  const namespace = await pickNamespace(server, title, steps, last.get()?.namespace);
  if (namespace === undefined) return undefined;
  return pickService(server, title, steps, namespace, undefined, (s) => s.hasAgent);
}
