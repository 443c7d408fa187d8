import * as vscode from 'vscode';
import {
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
} from 'vscode-languageclient/node';
import { readSettings, SECTION, serverSettings } from './config';
import { ensureManagedEnv } from './managedEnv';
import { parseStatus, ServerCommand, ServerStatus, STATUS_NOTIFICATION } from './protocol';
import { discoverPython } from './python';
import { REQUEST_LOG_NOTIFICATION } from './viewModel';

export type ServerState =
  | { kind: 'starting'; detail: string }
  | { kind: 'running' }
  | { kind: 'failed'; message: string }
  | { kind: 'stopped' };

/**
 * Owns the Python language server process: picks the interpreter, starts it through
 * vscode-languageclient, restarts it when `innerloop.python` changes, and forwards commands.
 * Other settings reach the running server through workspace/didChangeConfiguration.
 */
export class InnerloopServer implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private starting: Promise<LanguageClient> | undefined;
  private readonly statusEmitter = new vscode.EventEmitter<ServerStatus>();
  private readonly stateEmitter = new vscode.EventEmitter<ServerState>();
  private readonly notificationEmitter = new vscode.EventEmitter<{ method: string; params: unknown }>();
  private readonly disposables: vscode.Disposable[] = [this.statusEmitter, this.stateEmitter, this.notificationEmitter];

  readonly onStatus = this.statusEmitter.event;
  readonly onState = this.stateEmitter.event;
  /** The server's other notifications (the Innerloop view's `innerloop/requestLog`). */
  readonly onNotification = this.notificationEmitter.event;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.disposables.push(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration(`${SECTION}.python`)) {
          this.log.info('innerloop.python changed: restarting the server');
          void this.restart();
        }
      }),
    );
  }

  /** Starts the server unless it is running or starting; resolves when it answers requests. */
  start(): Promise<LanguageClient> {
    if (this.starting === undefined) {
      this.starting = this.launch();
      const attempt = this.starting;
      attempt.catch((err: unknown) => {
        if (this.starting === attempt) this.starting = undefined; // the next command retries
        const message = err instanceof Error ? err.message : String(err);
        this.log.error(`server failed to start: ${message}`);
        this.stateEmitter.fire({ kind: 'failed', message });
      });
    }
    return this.starting;
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.starting = undefined;
    if (client !== undefined && client.state !== State.Stopped) {
      await client.stop().catch((err: unknown) => this.log.warn(`stopping the server: ${String(err)}`));
    }
    client?.dispose().catch(() => undefined);
    this.stateEmitter.fire({ kind: 'stopped' });
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start().catch(() => undefined);
  }

  /** Runs one of the server's commands (workspace/executeCommand) and returns its raw result. */
  async execute(command: string, ...args: unknown[]): Promise<unknown> {
    const client = await this.start();
    return client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args });
  }

  /** Sends one of the server's custom requests (`innerloop/tree`, …) and returns its raw result. */
  async request(method: string, params: object): Promise<unknown> {
    const client = await this.start();
    return client.sendRequest(method, params);
  }

  async status(): Promise<ServerStatus> {
    const status = parseStatus(await this.execute(ServerCommand.status));
    this.statusEmitter.fire(status);
    return status;
  }

  private async pythonCommand(): Promise<string> {
    const configured = readSettings().python;
    if (configured !== '') return configured;
    const base = await discoverPython();
    return vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'innerloop: preparing its Python environment' },
      (progress) =>
        ensureManagedEnv(
          {
            storageDir: this.context.globalStorageUri.fsPath,
            wheelDir: this.context.asAbsolutePath('extension/out/python'),
          },
          base,
          {
            step: (message) => {
              this.log.info(message);
              progress.report({ message });
            },
            log: (line) => this.log.info(line),
          },
        ),
    );
  }

  private async launch(): Promise<LanguageClient> {
    this.stateEmitter.fire({ kind: 'starting', detail: 'finding Python' });
    const python = await this.pythonCommand();
    this.log.info(`starting the server: ${python} -m innerloop.lsp`);
    this.stateEmitter.fire({ kind: 'starting', detail: python });
    const serverOptions: ServerOptions = {
      command: python,
      args: ['-m', 'innerloop.lsp'],
      options: { env: { ...process.env, PYTHONUNBUFFERED: '1' } },
    };
    const clientOptions: LanguageClientOptions = {
      // Python files: the code lens above HTTP handlers, env hover/diagnostics/completion.
      documentSelector: [{ scheme: 'file', language: 'python' }],
      outputChannel: this.log,
      initializationOptions: serverSettings(readSettings()),
      synchronize: { configurationSection: SECTION },
    };
    const client = new LanguageClient('innerloop', 'innerloop', serverOptions, clientOptions);
    this.client = client;
    client.onDidChangeState((e) => {
      if (this.client !== client) return;
      if (e.newState === State.Running) this.stateEmitter.fire({ kind: 'running' });
      if (e.newState === State.Stopped) this.stateEmitter.fire({ kind: 'stopped' });
    });
    client.onNotification(STATUS_NOTIFICATION, (params: unknown) => {
      try {
        this.statusEmitter.fire(parseStatus(params));
      } catch (err) {
        this.log.error(String(err));
      }
    });
    client.onNotification(REQUEST_LOG_NOTIFICATION, (params: unknown) =>
      this.notificationEmitter.fire({ method: REQUEST_LOG_NOTIFICATION, params }),
    );
    await client.start();
    this.stateEmitter.fire({ kind: 'running' });
    this.statusEmitter.fire(parseStatus(await client.sendRequest(ExecuteCommandRequest.type, { command: ServerCommand.status })));
    return client;
  }

  dispose(): void {
    void this.stop();
    for (const d of this.disposables) d.dispose();
  }
}
