import { nullTranslator } from '@jupyterlab/translation';
import { framePromise } from '@jupyterlab/testing';
import { Contents, ServerConnection } from '@jupyterlab/services';
import { Notification } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { CS3Client } from '../client';
import {
  bannerChoices,
  ConflictActions,
  ConflictBanner,
  conflictText,
  ConflictWatcher,
  diffRows
} from '../conflicts';
import { CS3APIError } from '../request';
import { IJournalEntry } from '../types';

const trans = nullTranslator.load('cs3sync');

/** The first element matching `selector` once React has rendered it (frame by frame, at most 100). */
async function rendered(node: HTMLElement, selector: string): Promise<Element> {
  for (let frame = 0; frame < 100; frame++) {
    const found = node.querySelector(selector);
    if (found) {
      return found;
    }
    await framePromise();
  }
  throw new Error(`${selector} was never rendered`);
}

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

  it('Compare shows a notebook cell by cell from the compare endpoint', async () => {
    const client = new CS3Client({
      serverSettings: ServerConnection.makeSettings({ baseUrl: 'http://x/' })
    });
    const compareCall = jest.spyOn(client, 'compare').mockResolvedValue({
      base: {
        cells: [
          { cell_type: 'markdown', source: '# Decay' },
          { cell_type: 'code', source: 'rate = 0.5' }
        ]
      },
      diff: [
        {
          op: 'patch',
          key: 'cells',
          diff: [
            {
              op: 'patch',
              key: 1,
              diff: [
                {
                  op: 'patch',
                  key: 'source',
                  diff: [
                    {
                      op: 'patch',
                      key: 0,
                      diff: [{ op: 'addrange', key: 9, valuelist: '2' }]
                    }
                  ]
                }
              ]
            }
          ]
        }
      ],
      api_path: 'decay.ipynb',
      conflict_api_path: 'decay (conflicted copy).ipynb'
    });
    const contents = { get: jest.fn() } as unknown as Contents.IManager;
    const shown: Widget[] = [];
    const actions = new ConflictActions({
      client,
      contents,
      docManager: null,
      trans,
      show: widget => {
        shown.push(widget);
        Widget.attach(widget, document.body);
      }
    });
    await actions.compare({
      ...conflict,
      api_path: 'decay.ipynb',
      conflict_api_path: 'decay (conflicted copy).ipynb'
    });
    expect(compareCall).toHaveBeenCalledWith(7);
    expect(contents.get).not.toHaveBeenCalled();
    const modified = await rendered(
      shown[0].node,
      '[data-cell-kind="modified"]'
    );
    expect(modified.textContent).toBe(
      'Cell 2 (code): changed− rate = 0.5+ rate = 0.25'
    );
    shown[0].dispose();
  });

  it('Compare falls back to the line diff when the server finds no notebook', async () => {
    const client = new CS3Client({
      serverSettings: ServerConnection.makeSettings({ baseUrl: 'http://x/' })
    });
    jest
      .spyOn(client, 'compare')
      .mockRejectedValue(
        new CS3APIError('decay.ipynb is not a notebook', 400, 'bad-request')
      );
    const contents = {
      get: jest.fn(async (path: string) => ({
        type: 'file',
        format: 'text',
        content: path.includes('conflicted') ? 'mine\n' : 'theirs\n'
      }))
    } as unknown as Contents.IManager;
    const shown: Widget[] = [];
    const actions = new ConflictActions({
      client,
      contents,
      docManager: null,
      trans,
      show: widget => {
        shown.push(widget);
        Widget.attach(widget, document.body);
      }
    });
    await actions.compare({
      ...conflict,
      api_path: 'decay.ipynb',
      conflict_api_path: 'decay (conflicted copy).ipynb'
    });
    await framePromise();
    await framePromise();
    const node = shown[0].node;
    expect(node.querySelector('[data-kind="mine"]')!.textContent).toBe(
      '+ mine'
    );
    expect(node.querySelector('[data-cell-kind]')).toBeNull();
    shown[0].dispose();
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
    expect(actions.keepTheirs).toHaveBeenCalledWith(conflict, 'document');
    expect(banner.isHidden).toBe(false);
    banner.entry = null;
    expect(banner.isHidden).toBe(true);
    banner.dispose();
  });

  it('with several conflicts on one document the banner shows the newest and settles them all', async () => {
    const actions = {
      keepMine: jest.fn(),
      keepTheirs: jest.fn(),
      compare: jest.fn()
    } as unknown as ConflictActions;
    const older = { ...conflict, id: 6 };
    const banner = new ConflictBanner(actions, trans);
    Widget.attach(banner, document.body);
    banner.conflicts = [conflict, older];
    expect(banner.entry).toBe(conflict);
    const keepMine = await rendered(banner.node, '[data-choice="keep-mine"]');
    (keepMine as HTMLButtonElement).click();
    expect(actions.keepMine).toHaveBeenCalledWith(conflict, 'document');
    banner.dispose();
  });

  it('from the banner, Keep mine keeps the newest conflict of the document and resolves the others; Keep theirs resolves all', async () => {
    const client = new CS3Client({
      serverSettings: ServerConnection.makeSettings({ baseUrl: 'http://x/' })
    });
    // The journal as it is at the click: the room saved once more after the
    // banner's last poll (entry 9), and another document has a conflict too.
    jest.spyOn(client, 'journal').mockResolvedValue({
      state: 'online',
      last_error: null,
      counts: {},
      pending: 0,
      entries: [
        { ...conflict, id: 4 },
        { ...conflict, id: 3, api_path: 'papers/other.md' },
        conflict,
        { ...conflict, id: 8, state: 'done' },
        { ...conflict, id: 9 }
      ]
    });
    const kept = jest.spyOn(client, 'keepMine').mockResolvedValue();
    const resolved = jest
      .spyOn(client, 'resolve')
      // One older conflict was settled meanwhile (in the Sync panel): not an error.
      .mockImplementation(async (id: number) => {
        if (id === 4) {
          throw new CS3APIError('moved on', 409, 'conflict');
        }
      });
    const actions = new ConflictActions({
      client,
      contents: { get: jest.fn() } as unknown as Contents.IManager,
      docManager: null,
      trans,
      show: jest.fn()
    });
    await actions.keepMine(conflict, 'document');
    expect(kept.mock.calls).toEqual([[9]]);
    expect(resolved.mock.calls).toEqual([[7], [4]]);

    kept.mockClear();
    resolved.mockClear();
    await actions.keepTheirs(conflict, 'document');
    expect(kept).not.toHaveBeenCalled();
    expect(resolved.mock.calls).toEqual([[9], [7], [4]]);
    expect(document.querySelector('.jp-Dialog')).toBeNull();

    // The Sync panel acts on its row only.
    kept.mockClear();
    resolved.mockClear();
    await actions.keepMine(conflict);
    expect(kept.mock.calls).toEqual([[7]]);
    expect(resolved).not.toHaveBeenCalled();
  });

  it('notifies once per document in conflict, however many entries it has', () => {
    const warning = jest.spyOn(Notification, 'warning').mockReturnValue('');
    const watcher = new ConflictWatcher({
      actions: {} as ConflictActions,
      trans,
      open: jest.fn()
    });
    const other = { ...conflict, id: 3, api_path: 'papers/other.md' };
    watcher.update([other, conflict]);
    expect(warning).toHaveBeenCalledTimes(2);
    // The room saved the same content once more: a second conflict, the same document.
    watcher.update([other, conflict, { ...conflict, id: 9 }]);
    expect(warning).toHaveBeenCalledTimes(2);
    // Settled, then a new conflict on it: announced.
    watcher.update([other]);
    watcher.update([other, { ...conflict, id: 12 }]);
    expect(warning).toHaveBeenCalledTimes(3);
    warning.mockRestore();
  });

  it('when Keep mine is refused the older conflicts stay', async () => {
    const client = new CS3Client({
      serverSettings: ServerConnection.makeSettings({ baseUrl: 'http://x/' })
    });
    jest
      .spyOn(client, 'keepMine')
      .mockRejectedValue(new CS3APIError('moved on', 409, 'conflict'));
    const resolved = jest.spyOn(client, 'resolve').mockResolvedValue();
    const actions = new ConflictActions({
      client,
      contents: { get: jest.fn() } as unknown as Contents.IManager,
      docManager: null,
      trans,
      show: jest.fn()
    });
    jest.spyOn(client, 'journal').mockResolvedValue({
      state: 'online',
      last_error: null,
      counts: {},
      pending: 0,
      entries: [{ ...conflict, id: 6 }, conflict]
    });
    await actions.keepMine(conflict, 'document');
    expect(resolved).not.toHaveBeenCalled();
  });
});
