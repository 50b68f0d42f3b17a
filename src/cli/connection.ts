/** Opens a connection for one CLI command and always closes it. */
import { resolveServerAddress } from '../beanstalk/address.js';
import { BeanstalkConnection } from '../beanstalk/connection.js';
import type { Beanstalk } from '../beanstalk/types.js';

/** Runs `action` on a fresh connection to `url` (or `BEANSTALKD_URL`, or the default) and closes it. */
export async function withConnection<T>(url: string | undefined, action: (connection: Beanstalk) => Promise<T>): Promise<T> {
  const connection = await BeanstalkConnection.connect(resolveServerAddress(url), { connectTimeoutMs: 5_000, commandTimeoutMs: 10_000 });
  try {
    return await action(connection);
  } finally {
    await connection.quit();
  }
}
