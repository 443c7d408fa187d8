import * as vscode from 'vscode';
import { readSettings } from './config';
import { InterceptRequest, parseTargets, ServerCommand, ServiceTarget, TargetList } from './protocol';
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

async function pickNamespace(server: InnerloopServer, title: string, steps: number, last: string | undefined): Promise<string | undefined> {
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

async function pickService(
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

/** Namespace → Service → port → local port; remembers the answer for the next time. */
export async function pickIntercept(server: InnerloopServer, last: LastChoice): Promise<InterceptRequest | undefined> {
  const title = 'Intercept Service';
  const previous = last.get();
  // namespace → Service (and its port, when it has several) → local port
  const steps = 3;
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

  const choice: InterceptRequest = {
    namespace,
    service: service.name,
    servicePort: port.port,
    localPort: Number(answer),
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
