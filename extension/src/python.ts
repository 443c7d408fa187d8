import { execFile } from 'node:child_process';

/** A Python interpreter we ran and asked for its real path and version. */
export interface Interpreter {
  /** Command and leading arguments that start it, e.g. ['py', '-3'] or ['/usr/bin/python3']. */
  command: string[];
  executable: string;
  version: [number, number, number];
}

export const MIN_PYTHON: readonly [number, number] = [3, 10];

const PROBE = 'import json, sys; print(json.dumps([sys.executable, list(sys.version_info[:3])]))';

export function formatVersion(v: readonly number[]): string {
  return v.join('.');
}

export function isSupported(i: Interpreter): boolean {
  const [major, minor] = i.version;
  return major > MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor >= MIN_PYTHON[1]);
}

export function run(
  command: string[],
  args: string[],
  timeoutMs: number,
): Promise<{ stdout: string; stderr: string }> {
  const [file, ...lead] = command;
  if (file === undefined) return Promise.reject(new Error('empty command'));
  return new Promise((resolve, reject) => {
    execFile(file, [...lead, ...args], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        reject(Object.assign(err, { stdout, stderr }));
      } else {
        resolve({ stdout, stderr });
      }
    });
  });
}

/** Runs `command` as Python; null when it is not a working interpreter. */
export async function probe(command: string[]): Promise<Interpreter | null> {
  try {
    const { stdout } = await run(command, ['-c', PROBE], 15_000);
    const [executable, version] = JSON.parse(stdout.trim()) as [string, number[]];
    const [major = 0, minor = 0, micro = 0] = version;
    return { command, executable, version: [major, minor, micro] };
  } catch {
    return null;
  }
}

function candidates(): string[][] {
  if (process.platform === 'win32') {
    return [['py', '-3'], ['python'], ['python3']];
  }
  const versioned = ['3.14', '3.13', '3.12', '3.11', '3.10'].map((v) => [`python${v}`]);
  return [['python3'], ['python'], ...versioned];
}

/**
 * Finds a Python >= 3.10 on PATH to create the managed environment from; the first supported
 * one wins, in the order a user would expect (`python3` before versioned names).
 */
export async function discoverPython(): Promise<Interpreter> {
  const seen: string[] = [];
  for (const command of candidates()) {
    const found = await probe(command);
    if (found === null) continue;
    if (isSupported(found)) return found;
    seen.push(`${found.executable} (${formatVersion(found.version)})`);
  }
  const also = seen.length > 0 ? ` Found only: ${seen.join(', ')}.` : '';
  throw new Error(
    `innerloop needs Python ${formatVersion(MIN_PYTHON)} or newer: install one, or set "innerloop.python" to its path.${also}`,
  );
}
