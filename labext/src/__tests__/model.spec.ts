import { PolledModel } from '../model';
import { CS3APIError } from '../request';
import { groupEntries, syncSummary, uploadPercent } from '../sync';
import { nullTranslator } from '@jupyterlab/translation';
import { IJournal, IJournalEntry } from '../types';

describe('PolledModel', () => {
  it('records data on success and errors on failure', async () => {
    let fail = false;
    const model = new PolledModel<number[]>({
      name: 'test',
      auto: false,
      standby: 'never',
      fetch: async () => {
        if (fail) {
          throw new CS3APIError('storage unreachable', 503, 'offline');
        }
        return [1, 2];
      }
    });
    let changes = 0;
    model.stateChanged.connect(() => changes++);
    await model.refresh();
    expect(model.data).toEqual([1, 2]);
    expect(model.error).toBeNull();
    expect(model.loaded).toBe(true);
    fail = true;
    await model.refresh();
    expect(model.error?.message).toBe('storage unreachable');
    expect((model.error as CS3APIError).kind).toBe('offline');
    expect(model.data).toEqual([1, 2]); // keeps the last good answer
    expect(changes).toBeGreaterThanOrEqual(2);
    model.dispose();
    expect(model.isDisposed).toBe(true);
  });
});

function entry(partial: Partial<IJournalEntry>): IJournalEntry {
  return {
    id: 1,
    op: 'save',
    path: '/eos/user/e/einstein/a.ipynb',
    api_path: 'a.ipynb',
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

describe('sync', () => {
  const trans = nullTranslator.load('cs3sync');

  it('groups entries', () => {
    const groups = groupEntries([
      entry({ id: 1, state: 'queued' }),
      entry({ id: 2, state: 'blocked', blocked_reason: 'offline' }),
      entry({ id: 3, state: 'conflict' }),
      entry({ id: 4, state: 'failed' }),
      entry({
        id: 5,
        op: 'checkpoint',
        state: 'queued',
        api_path: '.ipynb_checkpoints/a-checkpoint.ipynb'
      })
    ]);
    // JupyterLab's checkpoint copies are counted, not listed as the user's own changes.
    expect(groups.checkpoints).toBe(1);
    expect(groups.pending.map(e => e.id)).toEqual([1, 2]);
    expect(groups.conflicts.map(e => e.id)).toEqual([3]);
    expect(groups.failed.map(e => e.id)).toEqual([4]);
  });

  it('computes upload progress of running uploads', () => {
    expect(uploadPercent([entry({})])).toBeNull();
    expect(
      uploadPercent([
        entry({ state: 'running', size: 100, uploaded: 50 }),
        entry({ state: 'running', size: 300, uploaded: 50 })
      ])
    ).toBe(25);
  });

  it('summarises the state', () => {
    const journal: IJournal = {
      state: 'offline',
      last_error: null,
      counts: { failed: 1 },
      pending: 2,
      entries: []
    };
    expect(syncSummary(journal, trans)).toBe(
      'CS3: offline · 2 pending · 1 problem'
    );
    expect(
      syncSummary(
        { ...journal, state: 'online', pending: 0, counts: {} },
        trans
      )
    ).toBe('CS3: online · synced');
    expect(syncSummary({ ...journal, state: 'auth', counts: {} }, trans)).toBe(
      'CS3: signed out · 2 pending'
    );
    expect(syncSummary(null, trans)).toBe('CS3: unknown');
  });
});
