import * as vscode from 'vscode';
import { SECTION } from './config';
import { RequestLogStore } from './requestLogStore';
import { RequestLogTable } from './requestLogTable';
import { InnerloopServer } from './server';
import { ClusterView, USE_CONTEXT_COMMAND } from './viewCluster';
import { InterceptsView } from './viewIntercepts';
import { parseHandlerLocation, recordTitle, ViewMethod } from './viewModel';
import { OPEN_HANDLER_COMMAND, RequestsView } from './viewRequests';

/** The views of the Innerloop activity-bar container (package.json `contributes.views`). */
export const ViewId = {
  intercepts: 'innerloop.intercepts',
  requests: 'innerloop.requests',
  cluster: 'innerloop.cluster',
} as const;

export const ViewCommand = {
  showRequestLog: 'innerloop.showRequestLog',
  clearRequestLog: 'innerloop.clearRequestLog',
  refreshView: 'innerloop.refreshView',
} as const;

/** Opens the handler of a logged request at its code lens (the server's route finder). */
async function openHandler(server: InnerloopServer, store: RequestLogStore, id: number): Promise<void> {
  const record = store.get(id);
  if (record === undefined || record.kind !== 'http') return;
  const found = parseHandlerLocation(
    await server.request(ViewMethod.handlerLocation, { method: record.method ?? 'GET', path: record.path ?? '/' }),
  );
  if (found === null) {
    void vscode.window.showInformationMessage(`innerloop: no handler in this workspace takes ${recordTitle(record)}.`);
    return;
  }
  const line = Math.max(found.line - 1, 0);
  const position = new vscode.Position(line, 0);
  await vscode.window.showTextDocument(vscode.Uri.file(found.file), {
    selection: new vscode.Range(position, position),
    preview: true,
  });
}

/** Registers the Innerloop view: the request log store, three trees, the table and their commands. */
export function registerView(server: InnerloopServer, log: vscode.LogOutputChannel): vscode.Disposable[] {
  const store = new RequestLogStore(server, log);
  const intercepts = new InterceptsView(server, log);
  const requests = new RequestsView(store);
  const cluster = new ClusterView(server);
  const open = (id: number): void => {
    openHandler(server, store, id).catch((err: unknown) => log.warn(`open handler: ${err instanceof Error ? err.message : String(err)}`));
  };
  const table = new RequestLogTable(store, open);
  return [
    store,
    intercepts,
    requests,
    cluster,
    table,
    vscode.window.createTreeView(ViewId.intercepts, { treeDataProvider: intercepts }),
    vscode.window.createTreeView(ViewId.requests, { treeDataProvider: requests }),
    vscode.window.createTreeView(ViewId.cluster, { treeDataProvider: cluster }),
    vscode.commands.registerCommand(OPEN_HANDLER_COMMAND, (id: unknown) => typeof id === 'number' && open(id)),
    vscode.commands.registerCommand(ViewCommand.showRequestLog, () => table.show()),
    vscode.commands.registerCommand(ViewCommand.clearRequestLog, () => store.reload(true)),
    vscode.commands.registerCommand(ViewCommand.refreshView, () => {
      intercepts.refresh();
      cluster.refresh();
    }),
    vscode.commands.registerCommand(USE_CONTEXT_COMMAND, (name: unknown) =>
      typeof name === 'string' && vscode.workspace.getConfiguration(SECTION).update('context', name, vscode.ConfigurationTarget.Global),
    ),
  ];
}
