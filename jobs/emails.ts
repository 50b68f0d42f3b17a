// Decorator form: a static method becomes a task in the `emails` tube. TypeScript cannot change a
// decorated member's type, so put it with the fully typed `queue.put(Emails.welcome, {...})`.
import { queue } from './queue.js';

export class Emails {
  @queue.task('emails')
  static async welcome(kw: { to: string; name: string }): Promise<string> {
    if (!kw.to.includes('@')) throw new Error(`not an email address: ${kw.to}`);
    return `Welcome, ${kw.name}!`;
  }
}
