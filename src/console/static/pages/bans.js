// Bans: end users banned for prompt attacks (bastion bans); lift.
import { el, replace, when, table, empty, flash } from '../dom.js';
import { get, post } from '../api.js';

export async function render(root) {
  const { bans } = await get('bans');
  const lift = async (b) => {
    try {
      const r = await post('bans/lift', { user: b.user, agent: b.agent });
      flash(`Lifted ${r.lifted} ban(s) of ${b.user}.`);
      await render(root);
    } catch (err) {
      flash(`Could not lift: ${err.message}`, true);
    }
  };
  replace(
    root,
    el('h1', { text: 'Bans in force' }),
    bans.length === 0
      ? empty('Nobody is banned.')
      : table(
          [
            ['user', (b) => b.user],
            ['agent', (b) => b.agent],
            ['level', (b) => b.level],
            ['rule', (b) => el('code', { text: b.rule })],
            ['reason', (b) => b.reason],
            ['since', (b) => when(b.at)],
            ['until', (b) => when(b.until)],
            [
              '',
              (b) => {
                const btn = el('button', { type: 'button', text: 'Lift' });
                btn.addEventListener('click', () => lift(b));
                return btn;
              },
            ],
          ],
          bans,
        ),
  );
}
