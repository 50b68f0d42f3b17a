import { Admin } from '../src/admin/admin.js';
import { BeanstalkConnection } from '../src/beanstalk/connection.js';
import { resolveServerAddress } from '../src/beanstalk/address.js';
import { startBeanstalkd } from '../test/helpers/beanstalkd.js';
const server = await startBeanstalkd();
const c = await BeanstalkConnection.connect(resolveServerAddress(server.url));
await Promise.all(Array.from({ length: 20000 }, (_, i) => c.putInTube(i % 100 === 0 ? 'rare' : 'bulk', Buffer.from('{"func_name":"f","kwargs":{}}'), { priority: 1024, delaySeconds: 0, ttrSeconds: 60 })));
const admin = new Admin({ urls: [server.url] });
await admin.servers();
for (let i = 0; i < 3; i++) {
  const t0 = performance.now();
  const page = await admin.jobs('rare', 'ready', { limit: 1000 });
  console.log('5000 ids', (performance.now() - t0).toFixed(1), 'ms', page.jobs.length, page.scanned, page.stoppedBy);
}
const t1 = performance.now();
const big = await admin.jobs('rare', 'ready', { limit: 1000, scan: 20000 });
console.log('20000 ids', (performance.now() - t1).toFixed(1), 'ms', big.jobs.length, big.scanned, big.stoppedBy);
await admin.close(); await c.quit(); await server.stop();
