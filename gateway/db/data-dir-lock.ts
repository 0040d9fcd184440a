/**
 * The embedded database (PGlite) belongs to one process. A second process opening the same
 * directory (the CLI next to a running `npm start`) would work on its own copy in memory and lose
 * what it wrote, or abort inside the WASM build. So whoever opens the directory takes a lock on it
 * (proper-lockfile: a lock directory beside it, refreshed while held, taken over when stale after a
 * crash), and everyone else is refused with a message that names the fix.
 */
import lockfile from 'proper-lockfile';

export const DATA_DIR_IN_USE = 'FEEGATE_ERR_DATA_DIR_IN_USE';

export class DataDirInUseError extends Error {
  readonly code = DATA_DIR_IN_USE;
  constructor(readonly dir: string) {
    super(
      `the embedded database in ${dir} is in use by another feegate process (a running \`npm start\`?). ` +
        'Stop that process and run this again, or run both against PostgreSQL (DATABASE_URL).',
    );
  }
}

/** Takes the lock on `dir` (which must exist) or throws DataDirInUseError; returns the release. */
export function lockDataDir(dir: string): () => void {
  let release: () => void;
  try {
    release = lockfile.lockSync(dir, { stale: 15_000, update: 5_000, realpath: false });
  } catch (err) {
    if ((err as { code?: string }).code === 'ELOCKED') throw new DataDirInUseError(dir);
    throw err;
  }
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    try {
      release();
    } catch {
      // already released or taken over as stale: nothing of ours to undo
    }
  };
}
