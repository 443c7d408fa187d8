import * as vscode from 'vscode';
import { InnerloopServer } from './server';
import { parseRecords, REQUEST_LOG_NOTIFICATION, RequestRecord, ViewMethod } from './viewModel';

/** Records the store keeps: the server keeps 500; the view shows the newest first. */
const KEEP = 500;

/**
 * The editor's copy of the server's request log: every record once (`innerloop/requestLog`
 * request when the server starts), then the changes it pushes. The tree and the table render it.
 */
export class RequestLogStore implements vscode.Disposable {
  private readonly records = new Map<number, RequestRecord>();
  private readonly changed = new vscode.EventEmitter<void>();
  private readonly disposables: vscode.Disposable[] = [this.changed];

  readonly onDidChange = this.changed.event;

  constructor(
    private readonly server: InnerloopServer,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.disposables.push(
      server.onNotification(({ method, params }) => {
        if (method === REQUEST_LOG_NOTIFICATION) this.merge(parseRecords(params));
      }),
      server.onState((state) => {
        if (state.kind === 'running') void this.reload();
      }),
    );
  }

  /** Newest first. */
  all(): RequestRecord[] {
    return [...this.records.values()].sort((a, b) => b.id - a.id);
  }

  get(id: number): RequestRecord | undefined {
    return this.records.get(id);
  }

  async reload(clear = false): Promise<void> {
    try {
      const records = parseRecords(await this.server.request(ViewMethod.requestLog, { clear }));
      this.records.clear();
      this.merge(records);
    } catch (err) {
      this.log.warn(`request log: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private merge(records: RequestRecord[]): void {
    for (const r of records) this.records.set(r.id, r);
    if (this.records.size > KEEP) {
      const ids = [...this.records.keys()].sort((a, b) => a - b);
      for (const id of ids.slice(0, this.records.size - KEEP)) this.records.delete(id);
    }
    this.changed.fire();
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
