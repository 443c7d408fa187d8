import * as vscode from 'vscode';
import { InnerloopServer } from './server';

/**
 * A server that could not start (no Python, no package index for the managed environment, a
 * broken `innerloop.python`) is said once as a notification with the ways out, not only by a
 * red status bar; clicking the status bar says it again.
 */
export class StartFailure implements vscode.Disposable {
  private message: string | undefined;
  private readonly subscription: vscode.Disposable;

  constructor(
    private readonly server: InnerloopServer,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.subscription = server.onState((state) => {
      if (state.kind === 'failed') {
        this.message = state.message;
        void this.show();
      } else if (state.kind === 'running') {
        this.message = undefined;
      }
    });
  }

  /** Shows the failure again; undefined when the server did not fail. */
  show(): Promise<void> | undefined {
    const message = this.message;
    if (message === undefined) return undefined;
    return (async () => {
      const setPython = 'Set innerloop.python';
      const retry = 'Retry';
      const logs = 'Show Logs';
      const answer = await vscode.window.showErrorMessage(`innerloop could not start: ${message}`, setPython, retry, logs);
      if (answer === setPython) await vscode.commands.executeCommand('workbench.action.openSettings', 'innerloop.python');
      if (answer === retry) await this.server.restart();
      if (answer === logs) this.log.show(true);
    })();
  }

  dispose(): void {
    this.subscription.dispose();
  }
}
