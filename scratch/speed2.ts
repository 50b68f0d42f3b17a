import { BeanstalkConnection } from '../src/beanstalk/connection.js';
import { resolveServerAddress } from '../src/beanstalk/address.js';
import { startBeanstalkd } from '../test/helpers/beanstalkd.js';
const server = await startBeanstalkd();
const c = await BeanstalkConnection.connect(resolveServerAddress(server.url));
await Promise.all(Array.from({ length: 20000 }, (_, i) => c.putInTube('bulk', Buffer.from('{"func_name":"f","kwargs":{}}'), { priority: 1024, delaySeconds: 0, ttrSeconds: 60 })));
for (const inflight of [1, 256, 4096]) {
  const t0 = performance.now();
  let next = 1;
  const worker = async () => { while (next <= 10000) { const id = next++; await c.statsJob(String(id)); } };
  await Promise.all(Array.from({ length: inflight }, worker));
  console.log(inflight, 'in flight: 10000 stats-job', (performance.now() - t0).toFixed(0), 'ms');
}
const t0 = performance.now();
await Promise.all(Array.from({ length: 10000 }, (_, i) => c.peek(String(i + 1))));
console.log('10000 peek all at once', (performance.now() - t0).toFixed(0), 'ms');
await c.quit(); await server.stop();
