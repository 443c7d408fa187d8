import * as vscode from 'vscode';
import { InterceptStatus } from './protocol';

export const DEBUG_TYPE = 'innerloop';

/** An innerloop debug session that holds an intercept (not a debugpy child process). */
export interface OwningSession {
  session: vscode.DebugSession;
  service: string;
  namespace: string | undefined;
}

/**
 * Which intercepts the running `innerloop` debug sessions hold, so that the status bar and the
 * palette never end a debugger's intercept behind its back, and F5 can take over one that the
 * palette started.
 */
export class DebugSessions implements vscode.Disposable {
  private readonly sessions = new Map<string, OwningSession>();
  private readonly subscriptions: vscode.Disposable[];

  constructor() {
    this.subscriptions = [
      vscode.debug.onDidStartDebugSession((s) => {
        const c = s.configuration;
        if (s.type !== DEBUG_TYPE || c.subProcessId !== undefined || typeof c.service !== 'string') return;
        this.sessions.set(s.id, { session: s, service: c.service, namespace: typeof c.namespace === 'string' ? c.namespace : undefined });
      }),
      vscode.debug.onDidTerminateDebugSession((s) => this.sessions.delete(s.id)),
    ];
  }

  /** The debug session that holds `intercept`, if any (a session without namespace matches any). */
  owner(intercept: InterceptStatus): OwningSession | undefined {
    return [...this.sessions.values()].find(
      (o) => o.service === intercept.service && (o.namespace === undefined || o.namespace === intercept.namespace),
    );
  }

  dispose(): void {
    for (const s of this.subscriptions) s.dispose();
  }
}

/**
 * Asked instead of stopping an intercept a debug session holds: ending it would leave the
 * program running without its traffic, with nothing said in the Debug Console.
 */
export async function explainOwnedIntercept(owner: OwningSession): Promise<void> {
  const stop = 'Stop Debugging';
  const show = 'Show Debug Console';
  const answer = await vscode.window.showWarningMessage(
    `innerloop: ${owner.service} is intercepted by the debug session "${owner.session.name}". ` +
      'The intercept ends with the session: stop debugging to end it.',
    { modal: true },
    stop,
    show,
  );
  if (answer === stop) await vscode.debug.stopDebugging(owner.session);
  if (answer === show) await vscode.commands.executeCommand('workbench.debug.action.toggleRepl');
}
