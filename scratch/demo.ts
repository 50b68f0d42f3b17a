import { execFileSync } from 'node:child_process';
import { pino } from 'pino';
import { JobQueue } from '../src/tasks/queue.js';
import { Worker } from '../src/worker/worker.js';
import { startBeanstalkd, rawStatsTube } from '../test/helpers/beanstalkd.js';

const server = await startBeanstalkd();
const url = server.url;
const queue = new JobQueue({ url, logger: pino({ level: 'silent' }) });
const charge = queue.task('payments')(async function chargeCard(kw: { order: number }) {
  throw new TypeError(`card declined for order ${kw.order}`);
});
const mail = queue.task('emails')(async function sendEmail(_kw: { to: string }) {
  throw new Error('SMTP 550: mailbox unavailable');
});
const worker = new Worker({ tubes: ['payments', 'emails'], url, logger: pino({ level: 'silent' }), maxKicks: 1 });
await worker.start();
for (let n = 1; n <= 3; n++) await charge.put({ order: 1000 + n });
for (;;) { const s = await rawStatsTube(url, 'payments'); if (s?.['current-jobs-buried'] === '3') break; await new Promise(r => setTimeout(r, 50)); }
await worker.stop();
const bs = (...args: string[]) => { try { return execFileSync(process.execPath, ['bin/bsworker', ...args, '--url', url], { encoding: 'utf8' }); } catch (e) { return String((e as {stdout:string}).stdout) + String((e as {stderr:string}).stderr); } };
console.log('$ bsworker buried --tube payments --limit 2');
console.log(bs('buried', '--tube', 'payments', '--limit', '2'));
const page = JSON.parse(bs('buried', '--tube', 'payments', '--limit', '2', '--json'));
console.log(JSON.stringify(page, null, 2));
console.log(bs('buried', '--tube', 'payments', '--cursor', page.nextCursor));
console.log('$ bsworker peek', page.jobs[0].id);
console.log(bs('peek', page.jobs[0].id));
// dead letters
const w2 = new Worker({ tubes: ['payments', 'emails'], url, logger: pino({ level: 'silent' }), maxKicks: 0, deadLetterTube: 'failed_jobs' });
await w2.start();
console.log(bs('kick', '--tube', 'payments'));
await mail.put({ to: 'ann@example.com' });
for (;;) { const s = await rawStatsTube(url, 'failed_jobs'); if (s?.['current-jobs-ready'] === '4') break; await new Promise(r => setTimeout(r, 50)); }
await w2.stop();
console.log('$ bsworker requeue --from failed_jobs --tube payments');
console.log(bs('requeue', '--from', 'failed_jobs', '--tube', 'payments'));
console.log(bs('requeue', '--from', 'failed_jobs', '--tube', 'emails', '--json'));
await queue.close();
await server.stop();
