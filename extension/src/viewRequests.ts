import * as vscode from 'vscode';
import { RequestLogStore } from './requestLogStore';
import { HELD_MARK, recordText } from './requestText';
import { RequestRecord } from './viewModel';

export const OPEN_HANDLER_COMMAND = 'innerloop.openRequestHandler';

/** Rows the tree shows (newest first); the table shows every record kept. */
const TREE_ROWS = 200;

function icon(r: RequestRecord): vscode.ThemeIcon {
  if (r.held) return new vscode.ThemeIcon('debug-pause', new vscode.ThemeColor('debugIcon.pauseForeground'));
  if (r.outcome === 'open') return new vscode.ThemeIcon('loading~spin');
  if (r.outcome === 'reset' || (r.status !== null && r.status >= 500)) {
    return new vscode.ThemeIcon('error', new vscode.ThemeColor('errorForeground'));
  }
  return new vscode.ThemeIcon(r.kind === 'tcp' ? 'plug' : 'arrow-right');
}

/** `200 · held at breakpoint · client · 12 B · 3 ms · 14:03:05.120` (the mark when it applies). */
export function recordDescription(r: RequestRecord): string {
  const text = recordText(r);
  const bytes = r.kind === 'tcp' ? `${text.requestBytes} in, ${text.responseBytes} out` : text.responseBytes;
  const parts = [text.caller, bytes, text.duration, text.time];
  return [text.status, ...(r.held ? [HELD_MARK] : []), ...parts].join(' · ');
}

function tooltip(r: RequestRecord): vscode.MarkdownString {
  const text = recordText(r);
  const lines = [
    `**${text.title}** → ${text.status}${r.held ? ` — ${HELD_MARK}` : ''}`,
    `caller: ${r.peerPod ?? '?'} (${r.peer})`,
    `through replica: ${r.replica} · intercept: ${r.intercept}`,
    `bytes: ${text.requestBytes} in, ${text.responseBytes} out (bodies for HTTP)`,
    `started ${text.time} · ${text.duration}`,
  ];
  if (r.note !== '') lines.push(r.note);
  if (r.kind === 'http') lines.push('click: open the handler');
  return new vscode.MarkdownString(lines.join('\n\n'));
}

/** The live request log: what the intercepts routed to this machine, newest first. */
export class RequestsView implements vscode.TreeDataProvider<RequestRecord>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  private readonly subscription: vscode.Disposable;

  readonly onDidChangeTreeData = this.changed.event;

  constructor(private readonly store: RequestLogStore) {
    this.subscription = store.onDidChange(() => this.changed.fire());
  }

  getChildren(record?: RequestRecord): RequestRecord[] {
    return record === undefined ? this.store.all().slice(0, TREE_ROWS) : [];
  }

  getTreeItem(r: RequestRecord): vscode.TreeItem {
    const title = recordText(r).title;
    const item = new vscode.TreeItem(title);
    item.id = `request:${r.id}`;
    item.description = recordDescription(r);
    item.iconPath = icon(r);
    item.tooltip = tooltip(r);
    item.contextValue = r.kind === 'http' ? 'httpRequest' : 'connection';
    // What a screen reader (and the UI test) reads: the whole row in words.
    item.accessibilityInformation = { label: `${title} ${recordDescription(r)}` };
    if (r.kind === 'http') item.command = { command: OPEN_HANDLER_COMMAND, title: 'Open Handler', arguments: [r.id] };
    return item;
  }

  dispose(): void {
    this.subscription.dispose();
    this.changed.dispose();
  }
}
