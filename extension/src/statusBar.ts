import * as vscode from 'vscode';
import { InterceptStatus, ServerStatus } from './protocol';
import { InnerloopServer, ServerState } from './server';

/** DOM id in the workbench: `<publisher>.<name>.<ITEM_ID>` = innerloop.innerloop.status. */
export const ITEM_ID = 'status';
export const TOGGLE_COMMAND = 'innerloop.toggle';

function localPort(i: InterceptStatus): string {
  return i.localPort === null ? '?' : String(i.localPort);
}

/** Active or paused, yet nothing listens on the local port: every request goes to the cluster. */
export function notListening(i: InterceptStatus): boolean {
  return i.listening === false && (i.state === 'active' || i.state === 'paused');
}

/** ` · x-dev=me`, ` · mirror: all requests`; '' when all of the port's requests come. */
function scopeText(i: InterceptStatus): string {
  return i.scope === '' ? '' : ` · ${i.scope}`;
}

function interceptText(i: InterceptStatus): string {
  const route = `${i.service} → :${localPort(i)}${scopeText(i)}`;
  // Paused says more than "nothing listening" (the warning color and tooltip still tell).
  if (notListening(i) && i.state !== 'paused') return `$(warning) ${route} (nothing listening)`;
  switch (i.state) {
    case 'active':
      return `$(${i.mode === 'mirror' ? 'mirror' : 'plug'}) ${route}`;
    case 'paused':
      return `$(debug-pause) ${route} (paused)`;
    case 'connecting':
      return `$(sync~spin) ${i.service}: connecting`;
    case 'stopping':
      return `$(sync~spin) ${i.service}: stopping`;
    case 'error':
      return `$(error) ${i.service}: error`;
  }
}

function requestsLine(i: InterceptStatus): string {
  const filter = i.mode === 'mirror' ? i.scope.replace(/^mirror: /, '') : i.scope;
  if (i.mode === 'mirror') {
    return `mirror: a copy of ${filter === 'all requests' ? 'every request' : `each request with \`${filter}\``} comes here; the cluster's app answers (your answers are dropped)`;
  }
  return filter === '' ? 'requests: all of them' : `requests: only \`${filter}\`; the others go to the cluster's app ("Innerloop: Copy curl Command" for one that matches)`;
}

function interceptTooltip(i: InterceptStatus): string {
  const lines = [
    `**${i.namespace}/${i.service}** port ${i.servicePort ?? '?'} → 127.0.0.1:${localPort(i)} (${i.state})`,
    `namespace: ${i.namespace}`,
    requestsLine(i),
  ];
  if (i.replicas !== null) lines.push(`replicas: ${i.replicas}`);
  if (i.envFile !== null) lines.push(`env file: \`${i.envFile}\``);
  if (notListening(i)) {
    lines.push(`$(warning) nothing listens on 127.0.0.1:${localPort(i)}: requests are served by the cluster's app until your program listens there`);
  }
  if (i.message !== null) lines.push(i.message);
  return lines.join('\n\n');
}

/** The status bar item: server state first, then the intercepts the server reports. */
export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem(ITEM_ID, vscode.StatusBarAlignment.Left, 50);
  private readonly subscriptions: vscode.Disposable[];
  private last: ServerStatus | undefined;

  constructor(server: InnerloopServer) {
    this.item.name = 'innerloop';
    this.item.command = TOGGLE_COMMAND;
    this.showState({ kind: 'starting', detail: '' });
    this.item.show();
    this.subscriptions = [server.onState((s) => this.showState(s)), server.onStatus((s) => this.showStatus(s))];
  }

  get status(): ServerStatus | undefined {
    return this.last;
  }

  private showState(state: ServerState): void {
    this.item.backgroundColor = undefined;
    switch (state.kind) {
      case 'starting':
        this.item.text = '$(sync~spin) innerloop: starting';
        this.item.tooltip = state.detail === '' ? 'Starting the innerloop server' : `Starting the innerloop server (${state.detail})`;
        return;
      case 'running':
        if (this.last !== undefined) this.showStatus(this.last);
        return;
      case 'stopped':
        this.last = undefined;
        this.item.text = '$(circle-slash) innerloop: stopped';
        this.item.tooltip = 'The innerloop server is not running: run "Innerloop: Restart Server"';
        return;
      case 'failed':
        this.last = undefined;
        this.item.text = '$(error) innerloop';
        this.item.tooltip = `innerloop could not start: ${state.message}. Click for the ways out.`;
        this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
        return;
    }
  }

  private showStatus(status: ServerStatus): void {
    this.last = status;
    const [first, ...others] = status.intercepts;
    const tooltip = new vscode.MarkdownString(undefined, true);
    if (first === undefined) {
      this.item.text = '$(debug-disconnect) innerloop: idle';
      tooltip.appendMarkdown(`innerloop ${status.version}: no intercept. Click to intercept a Service.`);
    } else {
      this.item.text = others.length === 0 ? interceptText(first) : `$(plug) innerloop: ${status.intercepts.length} intercepts`;
      tooltip.appendMarkdown(status.intercepts.map(interceptTooltip).join('\n\n---\n\n'));
      tooltip.appendMarkdown(`\n\n---\n\ninnerloop ${status.version}. Click to stop.`);
    }
    this.item.tooltip = tooltip;
    this.item.backgroundColor = status.intercepts.some((i) => i.state === 'error')
      ? new vscode.ThemeColor('statusBarItem.errorBackground')
      : status.intercepts.some(notListening)
        ? new vscode.ThemeColor('statusBarItem.warningBackground')
        : undefined;
  }

  dispose(): void {
    for (const s of this.subscriptions) s.dispose();
    this.item.dispose();
  }
}
