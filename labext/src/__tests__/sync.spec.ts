import { nullTranslator } from '@jupyterlab/translation';
import { framePromise } from '@jupyterlab/testing';
import { Widget } from '@lumino/widgets';

import { CS3Client } from '../client';
import { JournalModel, shortMessage, SyncPanel, SyncStatus } from '../sync';
import { ICS3Client } from '../tokens';
import { IJournal, IJournalEntry } from '../types';
import { ServerConnection } from '@jupyterlab/services';

function entry(partial: Partial<IJournalEntry>): IJournalEntry {
  return {
    id: 1,
    op: 'save',
    path: '/eos/user/e/einstein/a.md',
    api_path: 'a.md',
    state: 'queued',
    blocked_reason: null,
    attempts: 0,
    last_error: null,
    size: null,
    uploaded: null,
    progress: null,
    conflict_api_path: null,
    created: null,
    updated: null,
    ...partial
  };
}

async function setup(
  journal: IJournal
): Promise<{ cs3: ICS3Client; model: JournalModel }> {
  const client = new CS3Client({
    serverSettings: ServerConnection.makeSettings({ baseUrl: 'http://x/' })
  });
  jest.spyOn(client, 'journal').mockResolvedValue(journal);
  const cs3: ICS3Client = { client, server: null, open: jest.fn() };
  const model = new JournalModel({ cs3, standby: 'never', interval: 600000 });
  await model.refresh();
  return { cs3, model };
}

async function rendered(widget: Widget): Promise<HTMLElement> {
  Widget.attach(widget, document.body);
  widget.update();
  await framePromise();
  await framePromise();
  return widget.node;
}

describe('shortMessage', () => {
  it('keeps one bounded line', () => {
    expect(shortMessage(null)).toBeNull();
    expect(shortMessage('storage unreachable')).toBe('storage unreachable');
    expect(shortMessage('a\nb')).toBe('a');
    expect(shortMessage('x'.repeat(500))!.length).toBe(200);
  });
});

describe('SyncPanel', () => {
  afterEach(() => {
    document.body.innerHTML = '';
    jest.restoreAllMocks();
  });

  it('shows short errors, progress and opens a conflict copy', async () => {
    const { cs3, model } = await setup({
      state: 'offline',
      last_error: 'storage unreachable\n  at ipv4:127.0.0.1:1',
      counts: { blocked: 1, running: 1, conflict: 1 },
      pending: 2,
      entries: [
        entry({
          id: 1,
          state: 'blocked',
          blocked_reason: 'offline',
          last_error: "upload 'a.md': storage unreachable [UNAVAILABLE]"
        }),
        entry({
          id: 2,
          api_path: 'big.bin',
          state: 'running',
          size: 1000,
          uploaded: 250,
          progress: 0.25
        }),
        entry({
          id: 3,
          api_path: 'notes.md',
          state: 'conflict',
          last_error: 'notes.md was changed on the storage',
          conflict_api_path: 'notes (conflicted copy 2026-01-01 000000).md'
        })
      ]
    });
    const panel = new SyncPanel(model, cs3);
    const node = await rendered(panel);
    expect(node.querySelector('.jp-cs3sync-stateError')!.textContent).toBe(
      'storage unreachable'
    );
    const errors = Array.from(
      node.querySelectorAll('.jp-cs3sync-entryError')
    ).map(e => e.textContent);
    expect(errors).toEqual([
      "upload 'a.md': storage unreachable [UNAVAILABLE]",
      'notes.md was changed on the storage'
    ]);
    const bar = node.querySelector('[role="progressbar"]')!;
    expect(bar.getAttribute('aria-valuenow')).toBe('25');
    expect(bar.getAttribute('aria-label')).toBe('Upload of big.bin');
    const open = node.querySelector('.jp-cs3sync-openConflict') as HTMLElement;
    expect(open.textContent).toBe('Open conflict copy');
    open.click();
    expect(cs3.open).toHaveBeenCalledWith(
      'notes (conflicted copy 2026-01-01 000000).md',
      'file'
    );
    panel.dispose();
    model.dispose();
  });

  it('status item shows the upload progress', async () => {
    const { model } = await setup({
      state: 'online',
      last_error: null,
      counts: { running: 1 },
      pending: 1,
      entries: [
        entry({ state: 'running', size: 4000, uploaded: 1000, progress: 0.25 })
      ]
    });
    const item = new SyncStatus(model, () => undefined, nullTranslator);
    const node = await rendered(item);
    const div = node.querySelector('.jp-cs3sync-syncItem')!;
    expect(div.getAttribute('data-progress')).toBe('25');
    expect(div.getAttribute('data-pending')).toBe('1');
    const bar = node.querySelector('[role="progressbar"]')!;
    expect(bar.getAttribute('aria-label')).toBe('Upload progress');
    expect(bar.getAttribute('aria-valuenow')).toBe('25');
    item.dispose();
    model.dispose();
  });
});
