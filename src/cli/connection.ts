/** The admin layer for one CLI command: made for the command's `--url`, always closed after it. */
import { Admin, type AdminOptions } from '../admin/admin.js';

/**
 * An {@link Admin} for `url`, one server or a comma-separated list (else `BEANSTALKD_URL`, a list too,
 * else 127.0.0.1:11300).
 */
export function adminFor(url: string | undefined, options: AdminOptions = {}): Admin {
  return new Admin({ ...options, ...(url === undefined ? {} : { urls: url }) });
}

/** Runs `action` with an {@link Admin} for `url` and closes it. */
export async function withAdmin<T>(url: string | undefined, action: (admin: Admin) => Promise<T>, options: AdminOptions = {}): Promise<T> {
  const admin = adminFor(url, options);
  try {
    return await action(admin);
  } finally {
    await admin.close();
  }
}
