import { nullTranslator } from '@jupyterlab/translation';
import { framePromise } from '@jupyterlab/testing';
import { Widget } from '@lumino/widgets';

import {
  bannerChoices,
  ConflictActions,
  ConflictBanner,
  conflictText,
  diffRows
} from '../conflicts';
import { IJournalEntry } from '../types';

const trans = nullTranslator.load('cs3sync');

const conflict: IJournalEntry = {
  id: 7,
  op: 'save',
  path: '/eos/user/e/einstein/notes.md',
  api_path: 'papers/notes.md',
  state: 'conflict',
  blocked_reason: null,
  attempts: 1,
  last_error: 'etag moved',
  size: 10,
  uploaded: null,
  progress: null,
  conflict_api_path: 'papers/notes (conflicted copy 2026-01-01 000000).md',
  created: null,
  updated: null
};

describe('conflicts', () => {
  it('says what happened in the user’s words, with names only', () => {
    const text = conflictText(conflict, trans);
    expect(text).toContain('“notes.md”');
    expect(text).toContain('“notes (conflicted copy 2026-01-01 000000).md”');
    expect(text).not.toContain('/eos/');
    expect(text).not.toContain('etag');
  });

  it('offers Compare only when there are two versions', () => {
    expect(bannerChoices(conflict)).toEqual([
      'compare',
      'keep-mine',
      'keep-theirs'
    ]);
    expect(bannerChoices({ ...conflict, conflict_api_path: null })).toEqual([
      'keep-mine',
      'keep-theirs'
    ]);
  });

  it('diffs line by line', () => {
    expect(diffRows('a\nb\nc\n', 'a\nB\nc\n')).toEqual([
      { kind: 'same', text: 'a' },
      { kind: 'theirs', text: 'b' },
      { kind: 'mine', text: 'B' },
      { kind: 'same', text: 'c' }
    ]);
  });

  it('the banner shows and runs the choices, and hides without a conflict', async () => {
    const actions = {
      keepMine: jest.fn(),
      keepTheirs: jest.fn(),
      compare: jest.fn()
    } as unknown as ConflictActions;
    const banner = new ConflictBanner(actions, trans);
    Widget.attach(banner, document.body);
    banner.entry = conflict;
    await framePromise();
    await framePromise();
    const buttons = Array.from(banner.node.querySelectorAll('button'));
    expect(buttons.map(b => b.textContent)).toEqual([
      'Compare',
      'Keep mine',
      'Keep theirs'
    ]);
    buttons[2].click();
    expect(actions.keepTheirs).toHaveBeenCalledWith(conflict);
    expect(banner.isHidden).toBe(false);
    banner.entry = null;
    expect(banner.isHidden).toBe(true);
    banner.dispose();
  });
});
