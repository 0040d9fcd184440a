#!/usr/bin/env node
// The installed `feegate` command: loads the TypeScript CLI through tsx.
import { register } from 'tsx/esm/api';
import { fileURLToPath } from 'node:url';
register();
const { runCli } = await import(fileURLToPath(new URL('./main.ts', import.meta.url)));
process.exit(await runCli(process.argv.slice(2)));
