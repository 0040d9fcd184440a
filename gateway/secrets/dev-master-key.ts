/** Development only: a master key kept in the data directory (a dev fixture, never for production). */
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import { generateMasterKey } from './secret-box.js';

export function devMasterKey(config: Pick<Config, 'dataDir'>): string {
  const file = path.join(config.dataDir, 'dev-master-key');
  if (!fs.existsSync(file)) {
    fs.mkdirSync(config.dataDir, { recursive: true });
    try {
      fs.writeFileSync(file, generateMasterKey() + '\n', { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  return fs.readFileSync(file, 'utf8').trim();
}

/** The configured master key, or in development the one under the data directory. */
export function withMasterKey<C extends Config>(config: C): C {
  if (config.masterKey || config.mode === 'production') return config;
  return { ...config, masterKey: devMasterKey(config) };
}
