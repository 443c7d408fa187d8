import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { formatVersion, Interpreter, run } from './python';

/**
 * The Python environment innerloop creates for itself when `innerloop.python` is unset: a venv
 * under the extension's global storage with the innerloop wheel shipped inside the VSIX
 * installed into it (its dependencies come from the user's package index).
 * A marker file written last records what was installed, so an interrupted setup is redone
 * and a new extension version replaces the environment.
 */

export interface EnvLayout {
  /** Folder that holds the environment and its lock (the extension's globalStorage). */
  storageDir: string;
  /** Folder inside the installed extension that holds innerloop-*.whl. */
  wheelDir: string;
}

export interface EnvReporter {
  step(message: string): void;
  log(line: string): void;
}

interface Marker {
  wheel: string;
  sha256: string;
  base: string;
  baseVersion: string;
}

const MARKER = 'innerloop-env.json';
const LOCK_STALE_MS = 15 * 60_000;
const INSTALL_TIMEOUT_MS = 15 * 60_000;

function envDir(layout: EnvLayout): string {
  return path.join(layout.storageDir, 'python-env');
}

export function envPython(dir: string): string {
  return process.platform === 'win32' ? path.join(dir, 'Scripts', 'python.exe') : path.join(dir, 'bin', 'python');
}

async function findWheel(wheelDir: string): Promise<string> {
  const names = (await fs.readdir(wheelDir).catch(() => [] as string[])).filter(
    (n) => n.startsWith('innerloop-') && n.endsWith('.whl'),
  );
  const [wheel, ...extra] = names;
  if (wheel === undefined || extra.length > 0) {
    throw new Error(`this innerloop extension is damaged: expected one innerloop wheel in ${wheelDir}, found ${names.length}; reinstall it`);
  }
  return path.join(wheelDir, wheel);
}

async function sha256(file: string): Promise<string> {
  return createHash('sha256').update(await fs.readFile(file)).digest('hex');
}

async function readMarker(dir: string): Promise<Marker | null> {
  try {
    return JSON.parse(await fs.readFile(path.join(dir, MARKER), 'utf8')) as Marker;
  } catch {
    return null;
  }
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}

/** A lock folder, so two windows starting at once do not build the same environment. */
async function withLock<T>(lockDir: string, work: () => Promise<T>, onWait: () => void): Promise<T> {
  let waited = false;
  for (;;) {
    try {
      await fs.mkdir(lockDir);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const age = Date.now() - (await fs.stat(lockDir).then((s) => s.mtimeMs, () => Date.now()));
      if (age > LOCK_STALE_MS) {
        await fs.rm(lockDir, { recursive: true, force: true });
        continue;
      }
      if (!waited) onWait();
      waited = true;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  try {
    return await work();
  } finally {
    await fs.rm(lockDir, { recursive: true, force: true });
  }
}

const UNREACHABLE_INDEX =
  /Could not find a version that satisfies|No matching distribution found|Failed to establish a new connection|NewConnectionError|Temporary failure in name resolution|Name or service not known|Network is unreachable|Connection refused|ProxyError|Read timed out|ConnectTimeout/i;

/** One line for a failed `pip install` of the wheel: an unreachable package index is the usual cause. */
export function pipFailure(output: string): string {
  const fix = 'set "innerloop.python" to a Python that has innerloop installed, or make a package index reachable (PIP_INDEX_URL, pip.conf)';
  if (UNREACHABLE_INDEX.test(output)) {
    return `no package index is reachable to download innerloop's dependencies (pygls, kubernetes, debugpy, …): ${fix}`;
  }
  return `pip could not install innerloop into its environment (pip's output is in the log): ${fix}`;
}

function commandError(what: string, err: unknown): Error {
  const e = err as { stderr?: string; message?: string };
  const detail = (e.stderr ?? '').trim().split('\n').slice(-3).join(' ') || e.message || String(err);
  return new Error(`${what}: ${detail}`);
}

/** Returns the environment's python, creating or refreshing the environment when needed. */
export async function ensureManagedEnv(layout: EnvLayout, base: Interpreter, reporter: EnvReporter): Promise<string> {
  const wheel = await findWheel(layout.wheelDir);
  const want: Marker = {
    wheel: path.basename(wheel),
    sha256: await sha256(wheel),
    base: base.executable,
    baseVersion: formatVersion(base.version),
  };
  const dir = envDir(layout);
  const python = envPython(dir);
  const upToDate = async (): Promise<boolean> => {
    const have = await readMarker(dir);
    return have !== null && have.sha256 === want.sha256 && have.base === want.base && (await exists(python));
  };
  if (await upToDate()) return python;

  await fs.mkdir(layout.storageDir, { recursive: true });
  return withLock(
    path.join(layout.storageDir, 'python-env.lock'),
    async () => {
      if (await upToDate()) return python;
      reporter.step(`creating a Python ${want.baseVersion} environment`);
      reporter.log(`managed environment: ${dir} from ${base.executable} (${want.baseVersion})`);
      await fs.rm(dir, { recursive: true, force: true });
      try {
        await run(base.command, ['-m', 'venv', dir], 5 * 60_000);
      } catch (err) {
        throw commandError(
          `${base.executable} cannot create a virtual environment (on Debian/Ubuntu: apt install python3-venv), or set "innerloop.python"`,
          err,
        );
      }
      reporter.step(`installing ${want.wheel} and its dependencies`);
      try {
        const { stdout } = await run(
          [python],
          ['-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', wheel],
          INSTALL_TIMEOUT_MS,
        );
        reporter.log(stdout.trim());
      } catch (err) {
        // pip's own words are for the log; the user gets one line that says what to do.
        const e = err as { stdout?: string; stderr?: string; message?: string };
        reporter.log(`pip install failed:\n${(e.stdout ?? '').trim()}\n${(e.stderr ?? e.message ?? String(err)).trim()}`);
        throw new Error(pipFailure(`${e.stdout ?? ''}\n${e.stderr ?? ''}`));
      }
      await fs.writeFile(path.join(dir, MARKER), JSON.stringify(want, null, 2));
      return python;
    },
    () => reporter.step('waiting for another window that is preparing the environment'),
  );
}
