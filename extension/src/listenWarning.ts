import * as vscode from 'vscode';
import { InnerloopServer } from './server';
import { notListening } from './statusBar';

/**
 * Says once per intercept that nothing listens on its local port (the server probes it): the
 * intercept works, but every request goes to the cluster's app, which would otherwise pass
 * unnoticed behind a green status bar.
 */
export class ListenWarning implements vscode.Disposable {
  private readonly warned = new Set<string>();
  private readonly subscription: vscode.Disposable;

  constructor(server: InnerloopServer, log: vscode.LogOutputChannel) {
    this.subscription = server.onStatus((status) => {
      const current = new Set(status.intercepts.map((i) => i.id));
      for (const id of this.warned) if (!current.has(id)) this.warned.delete(id); // a new intercept may warn again
      for (const i of status.intercepts.filter(notListening)) {
        if (this.warned.has(i.id)) continue;
        this.warned.add(i.id);
        const logs = 'Show Logs';
        void vscode.window
          .showWarningMessage(
            `innerloop: nothing listens on 127.0.0.1:${i.localPort ?? '?'}: ${i.namespace}/${i.service}'s requests are served by the cluster's app until your program listens there.`,
            logs,
          )
          .then((answer) => answer === logs && log.show(true));
      }
    });
  }

  dispose(): void {
    this.subscription.dispose();
  }
}
