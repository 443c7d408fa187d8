import * as vscode from 'vscode';
import { registerCodeLensCommands } from './codeLens';
import { registerCommands } from './commands';
import { registerDebugger } from './debug';
import { DebugSessions } from './debugSessions';
import { ListenWarning } from './listenWarning';
import { LastChoice } from './quickPick';
import { InnerloopServer } from './server';
import { StartFailure } from './startFailure';
import { StatusBar } from './statusBar';
import { registerView } from './view';
import { registerWalkthrough } from './walkthrough';

let server: InnerloopServer | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('innerloop', { log: true });
  server = new InnerloopServer(context, log);
  const statusBar = new StatusBar(server);
  const sessions = new DebugSessions();
  const startFailure = new StartFailure(server, log);
  const last = new LastChoice(context.workspaceState);
  context.subscriptions.push(
    log,
    server,
    statusBar,
    sessions,
    startFailure,
    new ListenWarning(server, log),
    ...registerCommands({
      server,
      last,
      log,
      sessions,
      startFailure: () => startFailure.show(),
    }),
    ...registerDebugger(server, sessions),
    ...registerCodeLensCommands(server, log),
    ...registerWalkthrough(server, log),
    ...registerView(server, log),
  );
  void server.start().catch(() => undefined); // failures: the status bar, a notification, the log
}

export function deactivate(): Promise<void> | undefined {
  return server?.stop();
}
