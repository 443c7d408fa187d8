import * as vscode from 'vscode';
import { registerCommands } from './commands';
import { registerDebugger } from './debug';
import { LastChoice } from './quickPick';
import { InnerloopServer } from './server';
import { StatusBar } from './statusBar';

let server: InnerloopServer | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('innerloop', { log: true });
  server = new InnerloopServer(context, log);
  const statusBar = new StatusBar(server);
  context.subscriptions.push(
    log,
    server,
    statusBar,
    ...registerCommands({ server, last: new LastChoice(context.workspaceState), log }),
    ...registerDebugger(server),
  );
  void server.start().catch(() => undefined); // failures show in the status bar and the log
}

export function deactivate(): Promise<void> | undefined {
  return server?.stop();
}
