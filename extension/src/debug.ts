import * as vscode from 'vscode';
import { readSettings } from './config';
import { DebugAdapterEndpoint, parseEndpoint, ServerCommand } from './protocol';
import { InnerloopServer } from './server';

export const DEBUG_TYPE = 'innerloop';
/** Key of the one-time token in the resolved configuration; the adapter refuses launch/attach without it. */
export const TOKEN_KEY = 'innerloopToken';

const WHILE_PAUSED = new Set(['cluster', 'hold']);

/** A child process (debugpy subProcess) announced by the adapter: already resolved, with its own token. */
function isChild(c: vscode.DebugConfiguration): boolean {
  return c.subProcessId !== undefined;
}

function isPort(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535;
}

/** Problems with a configuration, as sentences; empty when it can run. */
export function validate(c: vscode.DebugConfiguration): string[] {
  const problems: string[] = [];
  if (isChild(c)) return problems;
  if (c.whilePaused !== undefined && !WHILE_PAUSED.has(c.whilePaused)) {
    problems.push('"whilePaused" must be "cluster" or "hold"');
  }
  if (typeof c.service !== 'string' || c.service === '') problems.push('"service" (the Kubernetes Service to intercept) is required');
  if (!isPort(c.port)) problems.push('"port" (where your program listens locally) must be a port number (1–65535)');
  if (c.request === 'launch') {
    const hasProgram = typeof c.program === 'string' && c.program !== '';
    const hasModule = typeof c.module === 'string' && c.module !== '';
    if (hasProgram === hasModule) problems.push('set exactly one of "program" or "module"');
    if (c.args !== undefined && !(Array.isArray(c.args) && c.args.every((a: unknown) => typeof a === 'string'))) {
      problems.push('"args" must be a list of strings');
    }
  } else if (c.request === 'attach') {
    const connect: unknown = c.connect;
    if (typeof connect !== 'object' || connect === null || !isPort((connect as { port?: unknown }).port)) {
      problems.push('"connect": {"host", "port"} of the running debugpy is required');
    }
    if (c.connectTimeout !== undefined && !(typeof c.connectTimeout === 'number' && c.connectTimeout > 0)) {
      problems.push('"connectTimeout" must be a positive number of seconds');
    }
  } else {
    problems.push('"request" must be "launch" or "attach"');
  }
  return problems;
}

/** Fills defaults from the settings, validates, and attaches a fresh adapter token. */
export class ConfigurationProvider implements vscode.DebugConfigurationProvider {
  constructor(
    private readonly server: InnerloopServer,
    private readonly pending: Map<string, DebugAdapterEndpoint>,
  ) {}

  resolveDebugConfiguration(
    folder: vscode.WorkspaceFolder | undefined,
    config: vscode.DebugConfiguration,
  ): vscode.DebugConfiguration | null {
    // VS Code opens launch.json when this returns null (undefined only cancels the start).
    if (config.type === undefined && config.request === undefined && config.name === undefined) {
      // F5 without launch.json: VS Code creates it with our initial configuration.
      return null;
    }
    if (isChild(config)) return config;
    const settings = readSettings();
    const resolved: vscode.DebugConfiguration = {
      whilePaused: 'cluster',
      keepIntercept: false,
      justMyCode: true,
      ...config,
    };
    if (resolved.namespace === undefined && settings.namespace !== '') resolved.namespace = settings.namespace;
    if (resolved.request === 'launch') {
      resolved.subProcess ??= true;
      if (resolved.cwd === undefined && folder !== undefined) resolved.cwd = folder.uri.fsPath;
      if (resolved.python === undefined && settings.python !== '') resolved.python = settings.python;
    }
    const problems = validate(resolved);
    if (problems.length > 0) {
      void vscode.window.showErrorMessage(`innerloop launch configuration "${config.name}": ${problems.join('; ')}.`);
      return null;
    }
    return resolved;
  }

  async resolveDebugConfigurationWithSubstitutedVariables(
    _folder: vscode.WorkspaceFolder | undefined,
    config: vscode.DebugConfiguration,
  ): Promise<vscode.DebugConfiguration | undefined> {
    if (isChild(config)) return config;
    try {
      const endpoint = parseEndpoint(await this.server.execute(ServerCommand.debugAdapterEndpoint));
      this.pending.set(endpoint.token, endpoint);
      return { ...config, [TOKEN_KEY]: endpoint.token };
    } catch (err) {
      void vscode.window.showErrorMessage(`innerloop: cannot start the debug adapter: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
  }
}

/** Connects VS Code to the adapter the server hosts, at the endpoint handed out with the token. */
export class AdapterFactory implements vscode.DebugAdapterDescriptorFactory {
  constructor(private readonly pending: Map<string, DebugAdapterEndpoint>) {}

  createDebugAdapterDescriptor(session: vscode.DebugSession): vscode.ProviderResult<vscode.DebugAdapterDescriptor> {
    const config = session.configuration;
    if (isChild(config)) {
      // The adapter relays each child process on its own port, named in `connect`.
      const connect = config.connect as { host?: string; port?: number } | undefined;
      if (connect?.port === undefined) throw new Error('innerloop: a child process session came without "connect"');
      return new vscode.DebugAdapterServer(connect.port, connect.host ?? '127.0.0.1');
    }
    const token: unknown = config[TOKEN_KEY];
    const endpoint = typeof token === 'string' ? this.pending.get(token) : undefined;
    if (endpoint === undefined) {
      throw new Error('innerloop: this debug session has no adapter endpoint; start it from launch.json again');
    }
    this.pending.delete(endpoint.token);
    return endpoint.kind === 'pipe'
      ? new vscode.DebugAdapterNamedPipeServer(endpoint.path)
      : new vscode.DebugAdapterServer(endpoint.port, endpoint.host);
  }
}

export function registerDebugger(server: InnerloopServer): vscode.Disposable[] {
  const pending = new Map<string, DebugAdapterEndpoint>();
  return [
    vscode.debug.registerDebugConfigurationProvider(DEBUG_TYPE, new ConfigurationProvider(server, pending)),
    vscode.debug.registerDebugAdapterDescriptorFactory(DEBUG_TYPE, new AdapterFactory(pending)),
  ];
}
