import { randomBytes } from 'crypto';
import * as vscode from 'vscode';
import { RequestLogStore } from './requestLogStore';
import { HELD_MARK, recordText } from './requestText';
import { RequestRecord } from './viewModel';

/** One table row, computed here so the page only renders text. */
interface Row {
  id: number;
  time: string;
  caller: string;
  replica: string;
  request: string;
  status: string;
  bytes: string;
  duration: string;
  held: boolean;
  http: boolean;
}

function row(r: RequestRecord): Row {
  const text = recordText(r);
  return {
    id: r.id,
    time: text.time,
    caller: text.caller,
    replica: r.replica,
    request: text.title + (r.note !== '' && r.kind === 'http' ? ` (${r.note})` : ''),
    status: text.status,
    bytes: `${text.requestBytes} / ${text.responseBytes}`,
    duration: text.duration,
    held: r.held,
    http: r.kind === 'http',
  };
}

/**
 * "Innerloop: Show Request Log": the request log as a table in an editor tab, every record
 * the window keeps. A thin rendering of the store; a click on an HTTP row opens its handler.
 */
export class RequestLogTable implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private readonly subscription: vscode.Disposable;

  constructor(
    private readonly store: RequestLogStore,
    private readonly openHandler: (id: number) => void,
  ) {
    this.subscription = store.onDidChange(() => this.post());
  }

  show(): void {
    if (this.panel !== undefined) {
      this.panel.reveal();
      return;
    }
    const panel = vscode.window.createWebviewPanel('innerloop.requestLog', 'Innerloop Request Log', vscode.ViewColumn.Active, {
      enableScripts: true,
      retainContextWhenHidden: true,
    });
    panel.webview.html = page(randomBytes(16).toString('base64'), panel.webview.cspSource);
    panel.webview.onDidReceiveMessage((message: unknown) => {
      const id = typeof message === 'object' && message !== null ? (message as { open?: unknown }).open : undefined;
      if (typeof id === 'number') this.openHandler(id);
    });
    panel.onDidDispose(() => (this.panel = undefined));
    this.panel = panel;
    this.post();
  }

  private post(): void {
    void this.panel?.webview.postMessage({ rows: this.store.all().map(row) });
  }

  dispose(): void {
    this.subscription.dispose();
    this.panel?.dispose();
  }
}

function page(nonce: string, cspSource: string): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src ${cspSource} 'nonce-${nonce}'; script-src 'nonce-${nonce}';">
<style nonce="${nonce}">
  body { font-family: var(--vscode-font-family); font-size: var(--vscode-font-size); color: var(--vscode-foreground); }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 2px 8px; white-space: nowrap; }
  th { position: sticky; top: 0; background: var(--vscode-editor-background); border-bottom: 1px solid var(--vscode-panel-border); }
  tr.http { cursor: pointer; }
  tr:hover td { background: var(--vscode-list-hoverBackground); }
  td.request { white-space: normal; font-family: var(--vscode-editor-font-family); }
  .held { color: var(--vscode-debugIcon-pauseForeground); font-weight: bold; }
  #empty { opacity: 0.7; margin-top: 1em; }
</style></head>
<body>
<table><thead><tr><th>Time</th><th>Caller</th><th>Replica</th><th>Request</th><th>Status</th><th>Bytes in / out</th><th>Duration</th><th></th></tr></thead>
<tbody id="rows"></tbody></table>
<div id="empty">No request routed to this machine yet.</div>
<script nonce="${nonce}">
  const vscode = acquireVsCodeApi();
  const body = document.getElementById('rows');
  const empty = document.getElementById('empty');
  const columns = ['time', 'caller', 'replica', 'request', 'status', 'bytes', 'duration'];
  window.addEventListener('message', (event) => {
    const rows = event.data.rows || [];
    empty.style.display = rows.length ? 'none' : 'block';
    body.replaceChildren(...rows.map((r) => {
      const tr = document.createElement('tr');
      tr.dataset.id = String(r.id);
      if (r.http) {
        tr.className = 'http';
        tr.title = 'open the handler';
        tr.addEventListener('click', () => vscode.postMessage({ open: r.id }));
      }
      for (const c of columns) {
        const td = document.createElement('td');
        td.className = c;
        td.textContent = r[c];
        tr.appendChild(td);
      }
      const held = document.createElement('td');
      if (r.held) { held.className = 'held'; held.textContent = '${HELD_MARK}'; }
      tr.appendChild(held);
      return tr;
    }));
  });
</script></body></html>`;
}
