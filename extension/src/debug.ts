import * as vscode from 'vscode';
import { readSettings } from './config';
import { DEBUG_TYPE, DebugSessions } from './debugSessions';
import { DebugAdapterEndpoint, parseEndpoint, parseTargets, ServerCommand } from './protocol';
import { InnerloopServer } from './server';
import { workspaceMapping } from './walkthroughMapping';
import { importHint, workspacePython } from './workspacePython';

export { DEBUG_TYPE };
/** Where the launch's interpreter came from (for the Debug Console's import hint); the adapter drops it. */
const PYTHON_SOURCE_KEY = 'pythonSource';
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
    private readonly sessions: DebugSessions,
  ) {}

  /** launch.json's first configuration (F5 without one, "Add Configuration"): the workspace's mapped Service, else a real Service and namespace when the cluster answers. */
  async provideDebugConfigurations(folder: vscode.WorkspaceFolder | undefined): Promise<vscode.DebugConfiguration[]> {
    const mapped = await workspaceMapping(this.server, folder).catch(() => undefined);
    if (mapped !== undefined) {
      const config = launchConfiguration(folder, mapped.service, mapped.namespace, mapped.localPort);
      return [{ ...config, servicePort: mapped.servicePort, ...(mapped.program === '' ? {} : { program: mapped.program }) }];
    }
    const [first] = await this.serviceConfigurations(folder).catch(() => []);
    return [first ?? launchConfiguration(folder, 'my-service', readSettings().namespace || 'default', 8080)];
  }

  /** "Select and Start Debugging" without launch.json: one configuration per Service of the namespace. */
  async serviceConfigurations(folder: vscode.WorkspaceFolder | undefined): Promise<vscode.DebugConfiguration[]> {
    const targets = parseTargets(await this.server.execute(ServerCommand.listTargets, { namespace: null }));
    const namespace = targets.namespace ?? 'default';
    return targets.services
      .filter((s) => s.ports.length > 0)
      .map((s) => {
        const port = s.ports[0]!;
        return launchConfiguration(folder, s.name, namespace, typeof port.targetPort === 'number' ? port.targetPort : port.port);
      });
  }

  async resolveDebugConfiguration(
    folder: vscode.WorkspaceFolder | undefined,
    config: vscode.DebugConfiguration,
  ): Promise<vscode.DebugConfiguration | null> {
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
      if (resolved.python === undefined) {
        // The program is the user's: it runs with the workspace's interpreter, not innerloop's own.
        const chosen = await workspacePython(folder);
        if (chosen !== undefined) {
          resolved.python = chosen.path;
          resolved[PYTHON_SOURCE_KEY] = chosen.source;
        }
      } else {
        resolved[PYTHON_SOURCE_KEY] ??= '"python" in the launch configuration';
      }
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
    if (!(await handOver(this.server, this.sessions, config))) return undefined;
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

/**
 * F5 on a Service the palette intercepts: offer to hand that intercept over to the debug
 * session (instead of a refusal whose only button opens launch.json). False: do not start.
 */
async function handOver(server: InnerloopServer, sessions: DebugSessions, config: vscode.DebugConfiguration): Promise<boolean> {
  let holders;
  try {
    holders = (await server.status()).intercepts.filter(
      (i) => i.service === config.service && (config.namespace === undefined || i.namespace === config.namespace),
    );
  } catch {
    return true; // the launch itself will say what is wrong with the server
  }
  const palette = holders.find((i) => sessions.owner(i) === undefined);
  if (palette === undefined) return true;
  const hand = 'Hand Over';
  const answer = await vscode.window.showWarningMessage(
    `innerloop: ${palette.namespace}/${palette.service} is intercepted from the palette (to 127.0.0.1:${palette.localPort ?? '?'}). ` +
      `Hand it over to the debug session "${String(config.name)}"?`,
    { modal: true, detail: 'Its traffic then goes to the program under the debugger, and the intercept ends with the session.' },
    hand,
  );
  if (answer !== hand) return false;
  await server.execute(ServerCommand.stopIntercept, { id: palette.id });
  return true;
}

function launchConfiguration(
  folder: vscode.WorkspaceFolder | undefined,
  service: string,
  namespace: string,
  port: number,
): vscode.DebugConfiguration {
  const active = vscode.window.activeTextEditor?.document;
  const inFolder = active?.languageId === 'python' && folder !== undefined && active.uri.fsPath.startsWith(folder.uri.fsPath);
  const program = inFolder ? `\${workspaceFolder}/${vscode.workspace.asRelativePath(active.uri, false)}` : '\${workspaceFolder}/app.py';
  return { type: DEBUG_TYPE, request: 'launch', name: `innerloop: ${service} (${namespace})`, service, namespace, program, port };
}

interface AdapterMessage {
  type?: string;
  event?: string;
  body?: { output?: unknown; reason?: unknown; text?: unknown; description?: unknown };
}

/** The text of an output event, or of a stop on an exception (debugpy stops on uncaught ones first). */
function failureText(m: AdapterMessage): string {
  if (m.type !== 'event' || m.body === undefined) return '';
  if (m.event === 'output') return String(m.body.output ?? '');
  if (m.event === 'stopped' && m.body.reason === 'exception') return `${String(m.body.text ?? '')} ${String(m.body.description ?? '')}`;
  return '';
}

/** Tells the Debug Console which interpreter ran the program when one of its imports fails. */
class ImportHints implements vscode.DebugAdapterTrackerFactory {
  createDebugAdapterTracker(session: vscode.DebugSession): vscode.DebugAdapterTracker {
    let told = false;
    return {
      onDidSendMessage: (m: AdapterMessage) => {
        if (told || !/\b(ModuleNotFoundError|ImportError)\b/.test(failureText(m))) return;
        told = true;
        const root = session.parentSession?.type === DEBUG_TYPE ? session.parentSession : session;
        vscode.debug.activeDebugConsole.appendLine(importHint(root.configuration.python, root.configuration[PYTHON_SOURCE_KEY]));
      },
    };
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

export function registerDebugger(server: InnerloopServer, sessions: DebugSessions): vscode.Disposable[] {
  const pending = new Map<string, DebugAdapterEndpoint>();
  const provider = new ConfigurationProvider(server, pending, sessions);
  const dynamic: vscode.DebugConfigurationProvider = {
    provideDebugConfigurations: (folder) => provider.serviceConfigurations(folder).catch(() => []),
  };
  return [
    vscode.debug.registerDebugConfigurationProvider(DEBUG_TYPE, provider),
    vscode.debug.registerDebugConfigurationProvider(DEBUG_TYPE, dynamic, vscode.DebugConfigurationProviderTriggerKind.Dynamic),
    vscode.debug.registerDebugAdapterDescriptorFactory(DEBUG_TYPE, new AdapterFactory(pending)),
    vscode.debug.registerDebugAdapterTrackerFactory(DEBUG_TYPE, new ImportHints()),
  ];
}
