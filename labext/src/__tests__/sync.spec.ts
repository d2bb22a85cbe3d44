import { nullTranslator } from '@jupyterlab/translation';
import { framePromise } from '@jupyterlab/testing';
import { Widget } from '@lumino/widgets';

import { CS3Client } from '../client';
import { ConflictActions } from '../conflicts';
import {
  JournalModel,
  mergeText,
  shortMessage,
  SyncList,
  SyncStatus
} from '../sync';
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

describe('mergeText', () => {
  const trans = nullTranslator.load('cs3sync');
  it("names the person and counts the merge record's cells or lines", () => {
    const merge = {
      merged: true,
      with: 'Marie Curie',
      changes: 2,
      unit: 'cell' as const,
      collisions: [],
      message: 'merged with mcurie, 2 cells'
    };
    expect(mergeText(merge, trans)).toBe(
      "merged with Marie Curie's change, 2 cells"
    );
    expect(mergeText({ ...merge, changes: 1 }, trans)).toBe(
      "merged with Marie Curie's change, 1 cell"
    );
    expect(mergeText({ ...merge, unit: 'line', changes: 3 }, trans)).toBe(
      "merged with Marie Curie's change, 3 lines"
    );
    expect(mergeText({ ...merge, with: null, changes: 1 }, trans)).toBe(
      'merged with a change on the storage, 1 cell'
    );
    // A record without a count: the server's own line.
    expect(mergeText({ merged: true, message: 'merged' }, trans)).toBe(
      'merged'
    );
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
    const actions = {
      keepMine: jest.fn(),
      keepTheirs: jest.fn(),
      markResolved: jest.fn(),
      compare: jest.fn()
    } as unknown as ConflictActions;
    const panel = new SyncList(model, cs3, actions, nullTranslator, 'CERNBox');
    const node = await rendered(panel);
    // The storage detail sits in a "Details" disclosure, never in the headline.
    expect(node.querySelector('.jp-cs3sync-syncState')!.textContent).toMatch(
      /^CERNBox: offline/
    );
    const details = Array.from(
      node.querySelectorAll('.jp-cs3sync-details')
    ).map(e => e.textContent);
    expect(details).toEqual([
      'Detailsstorage unreachable',
      "Detailsupload 'a.md': storage unreachable [UNAVAILABLE]"
    ]);
    // A conflict offers the three choices, never a Retry that cannot work.
    const conflict = node.querySelector('[data-entry-id="3"]')!;
    expect(
      Array.from(conflict.querySelectorAll('button')).map(b => b.textContent)
    ).toEqual([
      'Keep mine',
      'Keep theirs',
      'Mark resolved',
      'Open conflict copy'
    ]);
    (
      conflict.querySelector('[data-choice="keep-mine"]') as HTMLElement
    ).click();
    expect(actions.keepMine).toHaveBeenCalledWith(
      expect.objectContaining({ id: 3 })
    );
    // A waiting entry gets one calm Discard.
    const waiting = node.querySelector('[data-entry-id="1"]')!;
    expect(
      Array.from(waiting.querySelectorAll('button')).map(b => b.className)
    ).toEqual(['jp-cs3sync-quietButton']);
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

  it('lists merged saves as rows that open the document by keyboard', async () => {
    const merge = {
      merged: true,
      with: 'Marie Curie',
      changes: 2,
      unit: 'cell' as const,
      collisions: [],
      message: "merged with Marie Curie's change, 2 cells"
    };
    const { cs3, model } = await setup({
      state: 'online',
      last_error: null,
      counts: { done: 2 },
      pending: 0,
      entries: [],
      merged: [
        entry({
          id: 9,
          api_path: 'papers/decay.ipynb',
          state: 'done',
          merge,
          finished: 1767225600
        }),
        // Not a merge (the record says why): not listed.
        entry({
          id: 8,
          api_path: 'b.md',
          state: 'done',
          merge: { merged: false, message: 'not merged: binary' }
        })
      ]
    });
    const actions = {} as ConflictActions;
    const panel = new SyncList(model, cs3, actions, nullTranslator);
    const node = await rendered(panel);
    const section = node.querySelector('.jp-cs3sync-mergedSection')!;
    expect(section.querySelector('h3')!.textContent).toBe('Merged (1)');
    const row = section.querySelector('[data-entry-id="9"]') as HTMLElement;
    expect(row.textContent).toBe(
      "decay.ipynbmerged with Marie Curie's change, 2 cells"
    );
    expect(row.title).toContain('papers/decay.ipynb');
    expect(row.getAttribute('role')).toBe('button');
    expect(row.tabIndex).toBe(0);
    expect(row.getAttribute('aria-label')).toBe(
      "Open papers/decay.ipynb: merged with Marie Curie's change, 2 cells"
    );
    row.dispatchEvent(
      new KeyboardEvent('keydown', { key: 'Enter', bubbles: true })
    );
    expect(cs3.open).toHaveBeenCalledWith('papers/decay.ipynb', 'file');
    expect(section.querySelector('[data-entry-id="8"]')).toBeNull();
    panel.dispose();
    model.dispose();
  });

  it('has no Merged section while nothing was merged', async () => {
    const { cs3, model } = await setup({
      state: 'online',
      last_error: null,
      counts: {},
      pending: 0,
      entries: [],
      merged: []
    });
    const panel = new SyncList(model, cs3, {} as ConflictActions);
    const node = await rendered(panel);
    expect(node.querySelector('.jp-cs3sync-mergedSection')).toBeNull();
    panel.dispose();
    model.dispose();
  });

  it('shows an engine that cannot write its journal', async () => {
    const { cs3, model } = await setup({
      state: 'online',
      last_error: null,
      health: 'journal_error',
      health_error:
        'the local journal cannot be written (local disk full); retrying',
      counts: { queued: 2 },
      pending: 2,
      entries: []
    });
    const item = new SyncStatus(model, () => undefined, nullTranslator);
    const node = await rendered(item);
    expect(node.textContent).toContain('local journal not writable');
    const actions = {
      keepMine: jest.fn(),
      keepTheirs: jest.fn(),
      resolve: jest.fn()
    } as unknown as ConflictActions;
    const list = new SyncList(model, cs3, actions, nullTranslator);
    const shown = await rendered(list);
    expect(shown.querySelector('[role="alert"]')!.textContent).toContain(
      'local disk full'
    );
    item.dispose();
    list.dispose();
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
