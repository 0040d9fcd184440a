/**
 * knex CLI configuration. The gateway migrates itself on start and with `npm run migrate`;
 * this file exists so `npx knex` tooling points at the same database and migrations.
 */
import path from 'node:path';
import { migrationSource } from './gateway/db/migrations/index.js';

const url = process.env.DATABASE_URL;

export default url
  ? { client: 'pg', connection: url, migrations: { migrationSource } }
  : {
      client: 'knex-pglite',
      dialect: 'postgres',
      connection: { filename: path.resolve(process.env.FEEGATE_DATA_DIR ?? './data', 'pglite') },
      migrations: { migrationSource },
    };
