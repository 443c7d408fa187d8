import * as vscode from 'vscode';
import { DEBUG_TYPE } from './debugSessions';
import { parseIntercept, ServerCommand } from './protocol';
import { InnerloopServer } from './server';
import { chooseMapping, portRef, resolveMapping } from './walkthroughMapping';

/** The commands of the server's code lens above HTTP handlers (server/innerloop/lsp/features/code_lens.py). */
export const LensCommand = {
  debugHandler: 'innerloop.debugHandler',
  interceptHandler: 'innerloop.interceptHandler',
  chooseService: 'innerloop.chooseService',
} as const;

/** The lens command's argument: the workspace's Service mapping and the handler. */
export interface HandlerTarget {
  service: string;
  namespace: string;
  servicePort: string;
  localPort: number;
  program: string;
  file: string;
  /** 1-based line of the handler's first statement. */
  line: number;
  handler: string;
  path: string;
  match: { pathPrefix: string };
}

function parseTarget(v: unknown): HandlerTarget {
  const t = (typeof v === 'object' && v !== null ? v : {}) as Partial<HandlerTarget>;
  if (typeof t.service !== 'string' || typeof t.file !== 'string' || typeof t.line !== 'number') {
    throw new Error(`the code lens sent an unexpected handler: ${JSON.stringify(v)?.slice(0, 200)}`);
  }
  return {
    service: t.service,
    namespace: t.namespace ?? '',
    servicePort: t.servicePort ?? '',
    localPort: t.localPort ?? 0,
    program: t.program ?? '',
    file: t.file,
    line: t.line,
    handler: t.handler ?? '',
    path: t.path ?? '/',
    match: t.match ?? { pathPrefix: '/' },
  };
}

function servicePort(t: HandlerTarget): number | string | undefined {
  return portRef(t.servicePort);
}

async function localPort(server: InnerloopServer, t: HandlerTarget): Promise<number> {
  return (await resolveMapping(server, t)).localPort;
}

/** A breakpoint on the handler's first statement, unless one is there already. */
function breakAt(t: HandlerTarget): void {
  const uri = vscode.Uri.file(t.file);
  const line = t.line - 1;
  const present = vscode.debug.breakpoints.some(
    (b) => b instanceof vscode.SourceBreakpoint && b.location.uri.fsPath === uri.fsPath && b.location.range.start.line === line,
  );
  if (!present) vscode.debug.addBreakpoints([new vscode.SourceBreakpoint(new vscode.Location(uri, new vscode.Position(line, 0)))]);
}

/** An `innerloop` launch configuration for the handler: only its route's requests come here. */
export function handlerConfiguration(t: HandlerTarget, port: number): vscode.DebugConfiguration {
  const config: vscode.DebugConfiguration = {
    type: DEBUG_TYPE,
    request: 'launch',
    name: `innerloop: ${t.service} ${t.handler}`,
    service: t.service,
    port,
    program: t.program || t.file,
    match: t.match,
  };
  if (t.namespace !== '') config.namespace = t.namespace;
  const sp = servicePort(t);
  if (sp !== undefined) config.servicePort = sp;
  return config;
}

async function debugHandler(server: InnerloopServer, t: HandlerTarget): Promise<void> {
  const config = handlerConfiguration(t, await localPort(server, t));
  breakAt(t);
  await vscode.debug.startDebugging(vscode.workspace.getWorkspaceFolder(vscode.Uri.file(t.file)), config);
}

async function interceptHandler(server: InnerloopServer, log: vscode.LogOutputChannel, t: HandlerTarget): Promise<void> {
  const request = {
    service: t.service,
    namespace: t.namespace || undefined,
    servicePort: servicePort(t),
    localPort: await localPort(server, t),
    match: t.match,
  };
  const started = parseIntercept(await server.execute(ServerCommand.startIntercept, request));
  log.info(`intercept started for ${t.handler} (${t.path}): ${started.namespace}/${started.service} → :${started.localPort ?? '?'}`);
}

export function registerCodeLensCommands(server: InnerloopServer, log: vscode.LogOutputChannel): vscode.Disposable[] {
  const guarded = (name: string, body: (arg: unknown) => Promise<void>) =>
    vscode.commands.registerCommand(name, async (arg: unknown) => {
      try {
        await body(arg);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        log.error(`${name}: ${message}`);
        void vscode.window.showErrorMessage(`innerloop: ${message}`);
      }
    });
  return [
    guarded(LensCommand.debugHandler, (arg) => debugHandler(server, parseTarget(arg))),
    guarded(LensCommand.interceptHandler, (arg) => interceptHandler(server, log, parseTarget(arg))),
    guarded(LensCommand.chooseService, async () => void (await chooseMapping(server))),
  ];
}
