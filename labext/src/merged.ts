// Copyright (c) cs3sync contributors. Apache-2.0.
/**
 * Saves the server merged with someone else's change (cs3sync/rebase.py): the open editor still shows
 * what it sent, so it reloads the merge from the storage. A document with unsaved edits is not
 * reloaded (that would lose them): the user is told, and JupyterLab's "File Changed" question comes
 * on the next save, because the merge is presented as newer than that editor's save.
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { Notification } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { ISignal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { JournalModel, mergeText } from './sync';
import { ICS3Client } from './tokens';
import { IMergeRecord } from './types';

/** A save merged with a foreign change, as the journal endpoint lists it under `merged`. */
export interface IMergedSave {
  id: number;
  api_path: string | null;
  /** `message`: e.g. "merged with marie's change, 2 cells". */
  merge: IMergeRecord | null;
}

/** What the watcher reads: the polled journal answer (only its `merged` list). */
export interface IMergeSource {
  readonly data: object | null;
  readonly stateChanged: ISignal<any, void>;
}

/** The part of the document manager the watcher uses. */
export interface IOpenDocuments {
  findWidget(path: string): Widget | undefined;
  contextForWidget(widget: Widget): DocumentRegistry.Context | undefined;
}

/** Reloads open, unmodified documents whose save was merged; says so in a notification. */
export class MergeWatcher {
  constructor(
    source: IMergeSource,
    docs: IOpenDocuments,
    translator: ITranslator = nullTranslator
  ) {
    this._docs = docs;
    this._source = source;
    this._trans = translator.load('cs3sync');
    source.stateChanged.connect(this._check, this);
    this._check();
  }

  dispose(): void {
    this._source.stateChanged.disconnect(this._check, this);
  }

  private _check(): void {
    const data = this._source.data as { merged?: IMergedSave[] } | null;
    const merged = data?.merged;
    if (!merged) {
      return;
    }
    const first = this._seen === null;
    this._seen = this._seen ?? new Set();
    for (const save of merged) {
      if (this._seen.has(save.id)) {
        continue;
      }
      this._seen.add(save.id);
      // Merges from before this page was loaded are already in what it opened.
      if (!first && save.api_path && save.merge?.merged) {
        void this._reload(save.api_path, mergeText(save.merge, this._trans));
      }
    }
  }

  private async _reload(path: string, message: string): Promise<void> {
    const widget = this._docs.findWidget(path);
    const context = widget ? this._docs.contextForWidget(widget) : undefined;
    if (!context) {
      return; // not open here: whoever opens it next reads the merge
    }
    if (context.model.dirty) {
      Notification.warning(
        this._trans.__(
          '%1: %2. Your unsaved changes are kept; reload the file before saving again.',
          path,
          message
        ),
        { autoClose: false }
      );
      return;
    }
    await context.revert();
    Notification.info(this._trans.__('%1: %2', path, message), {
      autoClose: 8000
    });
  }

  private _docs: IOpenDocuments;
  private _seen: Set<number> | null = null;
  private _source: IMergeSource;
  private _trans: ReturnType<ITranslator['load']>;
}

/** Watches the journal for merged saves and reloads the documents they concern. */
export const merges: JupyterFrontEndPlugin<void> = {
  id: '@cs3sync/labextension:merges',
  description:
    'Reloads an open document when its save was merged with a change made on the storage.',
  autoStart: true,
  requires: [ICS3Client, IDocumentManager],
  optional: [ITranslator],
  activate: (
    app: JupyterFrontEnd,
    cs3: ICS3Client,
    docManager: IDocumentManager,
    translator: ITranslator | null
  ) => {
    const model = new JournalModel({
      cs3,
      standby: 'when-hidden',
      interval: 5000
    });
    new MergeWatcher(model, docManager, translator ?? undefined);
    // The first answer sets what was merged before this page loaded: ask for it now, not in 5 s.
    void model.refresh();
  }
};
