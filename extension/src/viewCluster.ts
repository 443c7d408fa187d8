import * as vscode from 'vscode';
import { SECTION } from './config';
import { InnerloopServer } from './server';
import { ContextNode, parseContexts, parseNamespaces, parseServices, ServiceNode, ViewMethod } from './viewModel';

export const USE_CONTEXT_COMMAND = 'innerloop.useContext';

type Node =
  | { kind: 'context'; context: ContextNode; inUse: boolean }
  | { kind: 'namespace'; namespace: string; current: boolean }
  | { kind: 'service'; namespace: string; service: ServiceNode }
  | { kind: 'message'; text: string };

function replicas(s: ServiceNode): string {
  if (s.ready === null || s.wanted === null) return 'no workload';
  return `${s.ready}/${s.wanted} ready`;
}

/**
 * Contexts → namespaces → Services (ports, replicas, whether an agent runs beside them), read
 * as the user expands them. The server talks to one context (the `innerloop.context` setting,
 * else the kubeconfig's current one); another is a click away (`innerloop.useContext`).
 */
export class ClusterView implements vscode.TreeDataProvider<Node>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  private readonly subscription: vscode.Disposable;

  readonly onDidChangeTreeData = this.changed.event;

  constructor(private readonly server: InnerloopServer) {
    this.subscription = vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration(SECTION)) this.refresh();
    });
  }

  refresh(): void {
    this.changed.fire();
  }

  async getChildren(node?: Node): Promise<Node[]> {
    try {
      return await this.children(node);
    } catch (err) {
      return [{ kind: 'message', text: err instanceof Error ? err.message : String(err) }];
    }
  }

  private async children(node?: Node): Promise<Node[]> {
    if (node === undefined) {
      const found = parseContexts(await this.server.request(ViewMethod.tree, { node: 'contexts' }));
      const inUse = found.selected ?? found.current;
      if (found.contexts.length === 0) return [{ kind: 'message', text: 'the kubeconfig has no contexts' }];
      return found.contexts.map((context) => ({ kind: 'context', context, inUse: context.name === inUse }));
    }
    if (node.kind === 'context') {
      if (!node.inUse) return [];
      const found = parseNamespaces(await this.server.request(ViewMethod.tree, { node: 'namespaces' }));
      return found.namespaces.map((namespace) => ({ kind: 'namespace', namespace, current: namespace === found.current }));
    }
    if (node.kind === 'namespace') {
      const services = parseServices(await this.server.request(ViewMethod.tree, { node: 'services', namespace: node.namespace }));
      if (services.length === 0) return [{ kind: 'message', text: 'no Services' }];
      return services.map((service) => ({ kind: 'service', namespace: node.namespace, service }));
    }
    return [];
  }

  getTreeItem(node: Node): vscode.TreeItem {
    const collapsed = vscode.TreeItemCollapsibleState.Collapsed;
    switch (node.kind) {
      case 'context': {
        const c = node.context;
        const item = new vscode.TreeItem(c.name, node.inUse ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.None);
        item.description = node.inUse ? `in use · ${c.cluster}` : c.cluster;
        item.iconPath = new vscode.ThemeIcon(node.inUse ? 'vm-active' : 'vm');
        item.id = `context:${c.name}`;
        if (!node.inUse) {
          item.tooltip = `click to use ${c.name} (sets innerloop.context)`;
          item.command = { command: USE_CONTEXT_COMMAND, title: 'Use this Context', arguments: [c.name] };
        }
        return item;
      }
      case 'namespace': {
        const item = new vscode.TreeItem(node.namespace, node.current ? vscode.TreeItemCollapsibleState.Expanded : collapsed);
        item.description = node.current ? 'default for this context' : undefined;
        item.iconPath = new vscode.ThemeIcon('symbol-namespace');
        item.id = `namespace:${node.namespace}`;
        return item;
      }
      case 'service': {
        const s = node.service;
        const item = new vscode.TreeItem(s.name);
        item.description = [s.ports.join(', '), replicas(s), s.hasAgent ? 'agent' : 'no agent'].join(' · ');
        item.iconPath = new vscode.ThemeIcon(s.hasAgent ? 'plug' : 'server-process');
        item.tooltip = `${node.namespace}/${s.name}${s.workload === null ? '' : ` → ${s.workload}`}\n${item.description}`;
        item.id = `service:${node.namespace}/${s.name}`;
        return item;
      }
      case 'message': {
        const item = new vscode.TreeItem(node.text);
        item.iconPath = new vscode.ThemeIcon('info');
        return item;
      }
    }
  }

  dispose(): void {
    this.subscription.dispose();
    this.changed.dispose();
  }
}
