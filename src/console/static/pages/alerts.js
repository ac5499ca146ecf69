// Alerts: audit records that raised an alert; acknowledge (recorded in the audit log).
import { el, replace, when, json, tag, table, empty, flash } from '../dom.js';
import { get, post } from '../api.js';

let unsubscribe = null;

export async function render(root, { live }) {
  const { alerts } = await get('alerts');
  const ack = async (a) => {
    try {
      await post(`alerts/${a.seq}/ack`, {});
      flash(`Acknowledged alert ${a.seq}.`);
      await render(root, { live });
    } catch (err) {
      flash(`Could not acknowledge: ${err.message}`, true);
    }
  };
  replace(
    root,
    el('h1', { text: 'Alerts' }),
    alerts.length === 0
      ? empty('No alert in the recent audit log.')
      : table(
          [
            ['seq', (a) => a.seq],
            ['time', (a) => when(a.time)],
            ['kind', (a) => el('code', { text: a.target ?? a.method })],
            ['agent', (a) => a.agent ?? '—'],
            ['user', (a) => a.user ?? '—'],
            ['summary', (a) => (a.detail && typeof a.detail.summary === 'string' ? a.detail.summary : el('code', { text: json(a.detail ?? {}, 0).slice(0, 200) }))],
            [
              'acknowledged',
              (a) => {
                if (a.acknowledged) return el('span', {}, tag('ok'), ` ${a.acknowledged.by ?? ''}`);
                const b = el('button', { type: 'button', text: 'Acknowledge' });
                b.addEventListener('click', (ev) => {
                  // The row opens the record; the button only acknowledges.
                  ev.stopPropagation();
                  ack(a);
                });
                return b;
              },
            ],
          ],
          alerts,
          (a) => {
            location.hash = `#/audit/${a.seq}`;
          },
        ),
  );
  unsubscribe?.();
  const onAlert = (kind) => {
    if (kind === 'alert') render(root, { live }).catch(() => {});
  };
  live.listeners.add(onAlert);
  unsubscribe = () => live.listeners.delete(onAlert);
}

export function leave() {
  unsubscribe?.();
  unsubscribe = null;
}
