import { Notification } from '@jupyterlab/apputils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { IMergedSave, IOpenDocuments, MergeWatcher } from '../merged';

class Journal {
  data: { merged: IMergedSave[] } | null = null;
  readonly stateChanged = new Signal<this, void>(this);
  answer(merged: IMergedSave[]): void {
    this.data = { merged };
    this.stateChanged.emit();
  }
}

function merged(id: number, path: string): IMergedSave {
  return {
    id,
    api_path: path,
    merge: { merged: true, message: "merged with marie's change, 2 cells" }
  };
}

function openDocument(
  path: string,
  dirty: boolean
): { docs: IOpenDocuments; revert: jest.Mock } {
  const widget = new Widget();
  const revert = jest.fn().mockResolvedValue(undefined);
  const context = {
    model: { dirty },
    revert
  } as unknown as DocumentRegistry.Context;
  const docs: IOpenDocuments = {
    findWidget: (p: string) => (p === path ? widget : undefined),
    contextForWidget: () => context
  };
  return { docs, revert };
}

describe('MergeWatcher', () => {
  beforeEach(() => {
    jest.spyOn(Notification, 'info').mockReturnValue('');
    jest.spyOn(Notification, 'warning').mockReturnValue('');
  });
  afterEach(() => jest.restoreAllMocks());

  it('reloads an open, unmodified document whose save was merged', async () => {
    const journal = new Journal();
    const { docs, revert } = openDocument('decay.ipynb', false);
    new MergeWatcher(journal, docs);
    journal.answer([]); // the first answer: merges from before the page loaded
    journal.answer([merged(7, 'decay.ipynb')]);
    await Promise.resolve();
    expect(revert).toHaveBeenCalledTimes(1);
    expect(Notification.info).toHaveBeenCalledWith(
      "decay.ipynb: merged with marie's change, 2 cells",
      expect.anything()
    );
    journal.answer([merged(7, 'decay.ipynb')]); // seen: not reloaded twice
    await Promise.resolve();
    expect(revert).toHaveBeenCalledTimes(1);
  });

  it('keeps unsaved edits and says so instead of reloading', async () => {
    const journal = new Journal();
    const { docs, revert } = openDocument('decay.ipynb', true);
    new MergeWatcher(journal, docs);
    journal.answer([]);
    journal.answer([merged(8, 'decay.ipynb')]);
    await Promise.resolve();
    expect(revert).not.toHaveBeenCalled();
    expect(Notification.warning).toHaveBeenCalled();
  });

  it('leaves merges from before the page loaded and closed documents alone', async () => {
    const journal = new Journal();
    const { docs, revert } = openDocument('decay.ipynb', false);
    journal.data = { merged: [merged(3, 'decay.ipynb')] };
    new MergeWatcher(journal, docs);
    journal.answer([merged(4, 'other.ipynb'), merged(3, 'decay.ipynb')]);
    await Promise.resolve();
    expect(revert).not.toHaveBeenCalled();
  });
});
