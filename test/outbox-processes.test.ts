/** Two gateway processes on one PostgreSQL drain 1,000 outbox rows: each row runs exactly once. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { eachDb } from './helpers/db.js';

const root = path.resolve(import.meta.dirname, '..');

function worker(url: string, name: string): Promise<{ worker: string; ran: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/outbox-worker.ts', url, name], { cwd: root });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').at(-1)!)) : reject(new Error(`worker ${name} exited ${code}: ${err}`))));
  });
}

eachDb(
  'outbox: two processes drain 1,000 rows, each row runs exactly once',
  async (t, { db, url }) => {
    await db.raw('CREATE TABLE outbox_test_effects (row_id bigint NOT NULL, worker text NOT NULL)');
    const now = new Date();
    await db.raw(
      `INSERT INTO outbox (kind, payload, status, run_at, created_at, updated_at)
     SELECT 'test.effect', jsonb_build_object('n', g), 'pending', ?, ?, ? FROM generate_series(1, 1000) g`,
      [now, now, now],
    );
    const [a, b] = await Promise.all([worker(url!, 'A'), worker(url!, 'B')]);
    t.equal(a.ran + b.ran, 1000, 'between them they ran 1,000 rows');
    t.ok(a.ran > 0 && b.ran > 0, `both took part (A ${a.ran}, B ${b.ran})`);
    const [{ n, distinct }] = (await db('outbox_test_effects').select(db.raw('count(*) AS n'), db.raw('count(DISTINCT row_id) AS distinct'))) as [
      { n: string; distinct: string },
    ];
    t.equal(Number(n), 1000, 'exactly 1,000 effects');
    t.equal(Number(distinct), 1000, 'one per row: none twice, none lost');
    const [{ done }] = (await db('outbox').where({ kind: 'test.effect', status: 'done' }).count({ done: '*' })) as [{ done: string }];
    t.equal(Number(done), 1000);
  },
  { engines: ['postgres'] },
);
