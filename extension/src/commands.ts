import * as vscode from 'vscode';
import { LSPErrorCodes, ResponseError } from 'vscode-languageclient/node';
import { copyCurl } from './curl';
import { DebugSessions, explainOwnedIntercept } from './debugSessions';
import { InterceptRequest, InterceptStatus, parseIntercept, ServerCommand } from './protocol';
import { LastChoice, pickAgentService, pickIntercept } from './quickPick';
import { InnerloopServer } from './server';
import { TOGGLE_COMMAND } from './statusBar';
import { workspaceMapping } from './walkthroughMapping';

/** Palette commands (package.json `contributes.commands`); ids differ from the server's commands. */
export const Command = {
  interceptService: 'innerloop.interceptService',
  stop: 'innerloop.stop',
  toggle: TOGGLE_COMMAND,
  showStatus: 'innerloop.showStatus',
  uninstallAgent: 'innerloop.uninstallAgent',
  showLogs: 'innerloop.showLogs',
  restartServer: 'innerloop.restartServer',
  copyCurl: 'innerloop.copyCurl',
} as const;

interface Deps {
  server: InnerloopServer;
  last: LastChoice;
  log: vscode.LogOutputChannel;
  sessions: DebugSessions;
  /** The server failed to start: why, and what to do (the status bar's click shows it again). */
  startFailure: () => Promise<void> | undefined;
}

function describe(i: InterceptStatus): string {
  const scope = i.scope === '' ? '' : ` · ${i.scope}`;
  return `${i.namespace}/${i.service}:${i.servicePort ?? '?'} → 127.0.0.1:${i.localPort ?? '?'} (${i.state})${scope}`;
}

/** The only intercept, or the one the user picks; undefined (after saying so) when none runs. */
async function pickRunning(d: Deps, title: string, none: string): Promise<InterceptStatus | undefined> {
  const { intercepts } = await d.server.status();
  if (intercepts.length === 0) {
    void vscode.window.showInformationMessage(`innerloop: ${none}`);
    return undefined;
  }
  if (intercepts.length === 1) return intercepts[0];
  const picked = await vscode.window.showQuickPick(
    intercepts.map((i) => ({ label: `${i.namespace}/${i.service}`, description: describe(i), value: i })),
    { title, placeHolder: 'Intercept' },
  );
  return picked?.value;
}

async function startIntercept(d: Deps, request: InterceptRequest): Promise<void> {
  const started = parseIntercept(await d.server.execute(ServerCommand.startIntercept, request));
  d.log.info(`intercept started: ${describe(started)}`);
}

async function interceptService(d: Deps): Promise<void> {
  const request = await pickIntercept(d.server, d.last);
  if (request !== undefined) await startIntercept(d, request);
}

async function stop(d: Deps): Promise<void> {
  const target = await pickRunning(d, 'Stop Intercept', 'there is no intercept to stop.');
  if (target === undefined) return;
  const owner = d.sessions.owner(target);
  if (owner !== undefined) return explainOwnedIntercept(owner);
  await d.server.execute(ServerCommand.stopIntercept, { id: target.id });
}

async function curl(d: Deps): Promise<void> {
  const target = await pickRunning(d, 'Copy curl Command', 'there is no intercept: start one first.');
  if (target !== undefined) await copyCurl(target, d.log);
}

/** Stops the running intercept, or starts the last one, else the workspace's mapped Service (asking when there is none). */
async function toggle(d: Deps): Promise<void> {
  const failure = d.startFailure();
  if (failure !== undefined) return failure;
  const { intercepts } = await d.server.status();
  if (intercepts.length > 0) return stop(d);
  const previous = d.last.get();
  if (previous !== undefined) return startIntercept(d, previous);
  const mapped = await workspaceMapping(d.server, vscode.workspace.workspaceFolders?.[0]);
  if (mapped === undefined) return interceptService(d);
  const { namespace, service, servicePort, localPort } = mapped;
  return startIntercept(d, { namespace, service, servicePort, localPort });
}

async function showStatus(d: Deps): Promise<void> {
  const status = await d.server.status();
  const what = status.intercepts.length === 0 ? 'no intercept' : status.intercepts.map(describe).join('; ');
  const python = status.python === null ? '' : ` (${status.python})`;
  void vscode.window.showInformationMessage(`innerloop ${status.version}${python}: ${what}`);
}

async function uninstallAgent(d: Deps): Promise<void> {
  const service = await pickAgentService(d.server, d.last);
  if (service === undefined) return;
  const confirm = 'Uninstall';
  const answer = await vscode.window.showWarningMessage(
    `Remove the innerloop agent from the workload behind ${service.namespace}/${service.name}? Its pods roll out again.`,
    { modal: true },
    confirm,
  );
  if (answer !== confirm) return;
  await d.server.execute(ServerCommand.uninstall, { namespace: service.namespace, service: service.name });
  void vscode.window.showInformationMessage(`innerloop: agent removed from ${service.namespace}/${service.name}.`);
}

/** Shows a failed command as one line, with a way to the log. */
function guarded(d: Deps, name: string, body: (d: Deps) => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await body(d);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (err instanceof ResponseError && err.code === LSPErrorCodes.RequestCancelled) {
        d.log.info(`${name}: ${message}`);
        void vscode.window.showInformationMessage(`innerloop: ${message}`);
        return;
      }
      d.log.error(`${name}: ${message}`);
      const logs = 'Show Logs';
      if ((await vscode.window.showErrorMessage(`innerloop: ${message}`, logs)) === logs) d.log.show(true);
    }
  };
}

export function registerCommands(d: Deps): vscode.Disposable[] {
  const bodies: Record<string, (d: Deps) => Promise<void>> = {
    [Command.interceptService]: interceptService,
    [Command.stop]: stop,
    [Command.toggle]: toggle,
    [Command.showStatus]: showStatus,
    [Command.uninstallAgent]: uninstallAgent,
    [Command.showLogs]: async () => d.log.show(true),
    [Command.restartServer]: async () => d.server.restart(),
    [Command.copyCurl]: curl,
  };
  return Object.entries(bodies).map(([id, body]) => vscode.commands.registerCommand(id, guarded(d, id, body)));
}
