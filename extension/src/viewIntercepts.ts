import * as vscode from 'vscode';
import { InnerloopServer } from './server';
import { formatTime, InterceptNode, parseIntercepts, TunnelNode, ViewMethod } from './viewModel';

type Node = { kind: 'intercept'; intercept: InterceptNode } | { kind: 'detail'; item: vscode.TreeItem };

function since(epochSeconds: number): string {
  const minutes = Math.floor((Date.now() / 1000 - epochSeconds) / 60);
  return `${formatTime(epochSeconds).slice(0, 8)} (${minutes < 1 ? 'just now' : `${minutes} min ago`})`;
}

function tunnelItem(t: TunnelNode): vscode.TreeItem {
  const item = new vscode.TreeItem(t.pod);
  const rtt = t.rttMs === null ? '' : ` · rtt ${t.rttMs.toFixed(2)} ms`;
  item.description = t.connected ? `tunnel up${rtt}` : 'tunnel reconnecting';
  item.iconPath = new vscode.ThemeIcon(t.connected ? 'pass' : 'sync~spin');
  item.tooltip = `replica ${t.pod}: ${item.description}`;
  return item;
}

function detail(label: string, description: string, icon: string): Node {
  const item = new vscode.TreeItem(label);
  item.description = description;
  item.iconPath = new vscode.ThemeIcon(icon);
  return { kind: 'detail', item };
}

/** The active intercepts of this window: who holds them, since when, their tunnels per replica. */
export class InterceptsView implements vscode.TreeDataProvider<Node>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  private readonly subscription: vscode.Disposable;

  readonly onDidChangeTreeData = this.changed.event;

  constructor(
    private readonly server: InnerloopServer,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.subscription = server.onStatus(() => this.refresh());
  }

  refresh(): void {
    this.changed.fire();
  }

  async getChildren(node?: Node): Promise<Node[]> {
    if (node === undefined) {
      try {
        const intercepts = parseIntercepts(await this.server.request(ViewMethod.tree, { node: 'intercepts' }));
        return intercepts.map((intercept) => ({ kind: 'intercept', intercept }));
      } catch (err) {
        this.log.warn(`Intercepts view: ${err instanceof Error ? err.message : String(err)}`);
        return [];
      }
    }
    if (node.kind === 'detail') return [];
    const i = node.intercept;
    return [
      detail('held by', i.holder, 'account'),
      detail('since', since(i.since), 'clock'),
      ...(i.scope === '' ? [] : [detail('requests', i.scope, 'filter')]),
      ...i.tunnels.map((t): Node => ({ kind: 'detail', item: tunnelItem(t) })),
    ];
  }

  getTreeItem(node: Node): vscode.TreeItem {
    if (node.kind === 'detail') return node.item;
    const i = node.intercept;
    const item = new vscode.TreeItem(`${i.service}.${i.namespace}`, vscode.TreeItemCollapsibleState.Expanded);
    const up = i.tunnels.filter((t) => t.connected).length;
    item.description = `:${i.servicePort ?? '?'} → localhost:${i.localPort ?? '?'} · ${i.state} · ${up}/${i.tunnels.length} tunnels`;
    item.iconPath = new vscode.ThemeIcon(i.state === 'paused' ? 'debug-pause' : i.state === 'active' ? 'plug' : 'sync~spin');
    item.tooltip = `${i.namespace}/${i.service} port ${i.servicePort ?? '?'} → 127.0.0.1:${i.localPort ?? '?'} (${i.state})`;
    item.id = `intercept:${i.id}`;
    return item;
  }

  dispose(): void {
    this.subscription.dispose();
    this.changed.dispose();
  }
}
