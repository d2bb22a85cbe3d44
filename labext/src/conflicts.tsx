// Copyright (c) cs3sync contributors. Apache-2.0.
/**
 * Conflicts: what the user can do about one (Keep mine, Keep theirs, Mark
 * resolved, Compare), a banner on the open document and a notification.
 *
 * One owner for the choices: the Sync panel and the banner both call
 * `ConflictActions`. A later state (issue 16's "merged") adds a choice here and
 * a line in `conflictText`; the banner renders whatever `bannerChoices` lists.
 */
import {
  MainAreaWidget,
  Notification,
  ReactWidget,
  showDialog,
  Dialog
} from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { IDocumentWidget } from '@jupyterlab/docregistry';
import { Contents } from '@jupyterlab/services';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';
import { diffLines } from 'diff';
import * as React from 'react';

import { CS3Client } from './client';
import {
  cellChanges,
  DiffLines,
  NotebookCompareView,
  notebookMetadataChanged
} from './nbdiff';
import { CS3APIError } from './request';
import { IJournalEntry } from './types';

/** The base name of an API path. */
function baseName(path: string | null): string {
  return (path ?? '').split('/').pop() ?? '';
}

/** What a choice acts on: one journal entry (the Sync panel) or its whole document (the banner). */
export type ConflictScope = 'entry' | 'document';

/** The choices a conflict offers, in the order the banner shows them. */
export type ConflictChoice = 'compare' | 'keep-mine' | 'keep-theirs';

/** The banner's choices for an entry (only conflicts of saves have two versions to compare). */
export function bannerChoices(entry: IJournalEntry): ConflictChoice[] {
  return entry.conflict_api_path
    ? ['compare', 'keep-mine', 'keep-theirs']
    : ['keep-mine', 'keep-theirs'];
}

/** What a conflict means, in the user's words. */
export function conflictText(
  entry: IJournalEntry,
  trans: TranslationBundle
): string {
  const name = baseName(entry.api_path ?? entry.path);
  if (entry.conflict_api_path) {
    return trans.__(
      '“%1” was changed by someone else while you edited it. The storage keeps their version; yours is saved as “%2”.',
      name,
      baseName(entry.conflict_api_path)
    );
  }
  return trans.__(
    '“%1” was changed by someone else, so your %2 was not applied.',
    name,
    entry.op
  );
}

/** Unified line diff of two texts, as rows for the Compare view. */
export function diffRows(
  theirs: string,
  mine: string
): { kind: 'same' | 'theirs' | 'mine'; text: string }[] {
  const rows: { kind: 'same' | 'theirs' | 'mine'; text: string }[] = [];
  for (const part of diffLines(theirs, mine)) {
    const kind = part.added ? 'mine' : part.removed ? 'theirs' : 'same';
    const lines = part.value.replace(/\n$/, '').split('\n');
    for (const text of lines) {
      rows.push({ kind, text });
    }
  }
  return rows;
}

/** The conflict choices, shared by the Sync panel and the document banner. */
export class ConflictActions {
  constructor(options: ConflictActions.IOptions) {
    this._client = options.client;
    this._show = options.show;
    this._docManager = options.docManager;
    this._contents = options.contents;
    this._trans = options.trans;
  }

  /**
   * Put my version over theirs. The conflict copy stays (it is the user's data).
   * `scope` 'document' (the banner): the document's newest conflict is kept and
   * its older ones are settled (see `_documentConflicts`).
   */
  async keepMine(
    entry: IJournalEntry,
    scope: ConflictScope = 'entry'
  ): Promise<void> {
    await this._run(async () => {
      const [newest, ...earlier] = await this._conflictsOf(entry, scope);
      await this._client.keepMine(newest.id);
      await this._settle(earlier);
    });
  }

  /** Keep the storage's version, and show it in the open editor. The conflict copy stays. */
  async keepTheirs(
    entry: IJournalEntry,
    scope: ConflictScope = 'entry'
  ): Promise<void> {
    const settled = await this._run(async () => {
      const [newest, ...earlier] = await this._conflictsOf(entry, scope);
      await this._client.resolve(newest.id);
      await this._settle(earlier);
    });
    if (!settled) {
      return;
    }
    const widget = entry.api_path
      ? this._docManager?.findWidget(entry.api_path)
      : undefined;
    await (widget as IDocumentWidget | undefined)?.context
      .revert()
      .catch(() => undefined);
  }

  /** The user dealt with it (merged by hand, for instance): nothing changes on the storage. */
  async markResolved(entry: IJournalEntry): Promise<void> {
    await this._run(() => this._client.resolve(entry.id));
  }

  /**
   * Show the storage's version and mine beside the document: a notebook cell by
   * cell (nbdime's diff from the compare endpoint), any other text line by line.
   */
  async compare(entry: IJournalEntry): Promise<void> {
    const trans = this._trans;
    if (!entry.api_path || !entry.conflict_api_path) {
      return;
    }
    const theirs = trans.__('On the storage: %1', baseName(entry.api_path));
    const mine = trans.__('Yours: %1', baseName(entry.conflict_api_path));
    let content: React.ReactElement | null;
    try {
      content = entry.api_path.endsWith('.ipynb')
        ? await this._notebookView(entry, theirs, mine)
        : null;
      if (content === null) {
        const [theirText, myText] = await Promise.all([
          this._text(entry.api_path),
          this._text(entry.conflict_api_path)
        ]);
        content = (
          <CompareView
            rows={diffRows(theirText, myText)}
            theirs={theirs}
            mine={mine}
          />
        );
      }
    } catch (error) {
      this._report(error as Error);
      return;
    }
    const view = new MainAreaWidget({ content: ReactWidget.create(content) });
    view.id = `cs3sync-compare-${entry.id}`;
    view.title.label = trans.__('Compare %1', baseName(entry.api_path));
    view.title.closable = true;
    view.addClass('jp-cs3sync-compare');
    this._show(view, this._docManager?.findWidget(entry.api_path)?.id);
  }

  /** The cell-by-cell view of a notebook conflict, or null when the server finds no notebook (400). */
  private async _notebookView(
    entry: IJournalEntry,
    theirs: string,
    mine: string
  ): Promise<React.ReactElement | null> {
    let compared;
    try {
      compared = await this._client.compare(entry.id);
    } catch (error) {
      if (error instanceof CS3APIError && error.status === 400) {
        return null; // not a readable notebook on one side: the line diff shows what is there
      }
      throw error;
    }
    return (
      <NotebookCompareView
        changes={cellChanges(compared.base, compared.diff)}
        metadataChanged={notebookMetadataChanged(compared.diff)}
        theirs={theirs}
        mine={mine}
        trans={this._trans}
      />
    );
  }

  /**
   * The conflicts a choice acts on, newest first: the entry itself, or (scope
   * 'document') every conflict of its document as the journal has them now.
   * With real-time collaboration one conflict often comes as two: the room,
   * opened on the version the conflicting save had journaled, saves that same
   * content once more and gets a conflict copy of its own
   * (docs/collaboration.md) — possibly a moment before the click, so the
   * banner's list, a poll old, is not enough.
   */
  private async _conflictsOf(
    entry: IJournalEntry,
    scope: ConflictScope
  ): Promise<IJournalEntry[]> {
    if (scope === 'entry' || entry.api_path === null) {
      return [entry];
    }
    const { entries } = await this._client.journal();
    const same = entries
      .filter(e => e.state === 'conflict' && e.api_path === entry.api_path)
      .sort((x, y) => y.id - x.id);
    return same.length > 0 ? same : [entry];
  }

  /**
   * Older conflicts of a document settled from its banner: marked resolved, so
   * the banner does not come back with one of them. Nothing changes on the
   * storage and their conflict copies stay. One that has moved on meanwhile
   * (404/409: settled in the Sync panel) is no longer a conflict to settle.
   */
  private async _settle(earlier: IJournalEntry[]): Promise<void> {
    for (const entry of earlier) {
      try {
        await this._client.resolve(entry.id);
      } catch (error) {
        if (
          !(error instanceof CS3APIError) ||
          (error.status !== 404 && error.status !== 409)
        ) {
          throw error;
        }
      }
    }
  }

  private async _text(path: string): Promise<string> {
    const model = await this._contents.get(path, { content: true });
    if (model.type === 'notebook') {
      return JSON.stringify(model.content, null, 1);
    }
    if (model.format === 'base64') {
      throw new Error(
        this._trans.__('“%1” is not a text file.', baseName(path))
      );
    }
    return String(model.content ?? '');
  }

  private async _run(action: () => Promise<void>): Promise<boolean> {
    try {
      await action();
      return true;
    } catch (error) {
      this._report(error as Error);
      return false;
    }
  }

  private _report(error: Error): void {
    void showDialog({
      title: this._trans.__('Conflict'),
      body: error.message,
      buttons: [Dialog.okButton()]
    });
  }

  private _client: CS3Client;
  private _show: (widget: Widget, ref?: string) => void;
  private _docManager: IDocumentManager | null;
  private _contents: Contents.IManager;
  private _trans: TranslationBundle;
}

export namespace ConflictActions {
  export interface IOptions {
    client: CS3Client;
    /** Add a view to the main area beside the widget with id `ref`. */
    show: (widget: Widget, ref?: string) => void;
    docManager: IDocumentManager | null;
    contents: Contents.IManager;
    trans: TranslationBundle;
  }
}

function CompareView(props: {
  rows: { kind: 'same' | 'theirs' | 'mine'; text: string }[];
  theirs: string;
  mine: string;
}): React.ReactElement {
  return (
    <div className="jp-cs3sync-compareView">
      <div className="jp-cs3sync-compareLegend">
        <span className="jp-cs3sync-diff-theirs">− {props.theirs}</span>
        <span className="jp-cs3sync-diff-mine">+ {props.mine}</span>
      </div>
      <DiffLines rows={props.rows} />
    </div>
  );
}

/**
 * The conflict banner on an open document: what happened and the choices.
 * Rendered from the entry; hidden when the document has no conflict.
 */
export class ConflictBanner extends ReactWidget {
  constructor(
    private _actions: ConflictActions,
    private _trans: TranslationBundle
  ) {
    super();
    this.addClass('jp-cs3sync-conflictBanner');
    this.node.setAttribute('role', 'alert');
    this.hide();
  }

  /** The newest conflict of the document: the one the banner describes. */
  get entry(): IJournalEntry | null {
    return this._conflicts[0] ?? null;
  }

  set entry(entry: IJournalEntry | null) {
    this.conflicts = entry ? [entry] : [];
  }

  /** The document's conflicts, newest first (the choices settle all of them). */
  set conflicts(entries: IJournalEntry[]) {
    const key = (list: IJournalEntry[]) =>
      list.map(e => `${e.id}:${e.state}`).join(',');
    if (key(entries) === key(this._conflicts)) {
      return;
    }
    this._conflicts = entries;
    this.setHidden(entries.length === 0);
    this.update();
  }

  protected render(): React.ReactElement | null {
    const entry = this._conflicts[0];
    const trans = this._trans;
    if (!entry) {
      return null;
    }
    const labels: Record<ConflictChoice, [string, string]> = {
      compare: [
        trans.__('Compare'),
        trans.__('Show what differs between both versions')
      ],
      'keep-mine': [
        trans.__('Keep mine'),
        trans.__('Put your version over theirs (the conflict copy stays)')
      ],
      'keep-theirs': [
        trans.__('Keep theirs'),
        trans.__(
          'Keep their version and reload it here (yours stays in the conflict copy)'
        )
      ]
    };
    const run: Record<ConflictChoice, () => Promise<void>> = {
      compare: () => this._actions.compare(entry),
      'keep-mine': () => this._actions.keepMine(entry, 'document'),
      'keep-theirs': () => this._actions.keepTheirs(entry, 'document')
    };
    return (
      <>
        <span className="jp-cs3sync-conflictText">
          {conflictText(entry, trans)}
        </span>
        <span className="jp-cs3sync-conflictChoices">
          {bannerChoices(entry).map(choice => (
            <button
              key={choice}
              className="jp-mod-styled jp-cs3sync-conflictChoice"
              data-choice={choice}
              title={labels[choice][1]}
              onClick={() => void run[choice]()}
            >
              {labels[choice][0]}
            </button>
          ))}
        </span>
      </>
    );
  }

  private _conflicts: IJournalEntry[] = [];
}

/**
 * Keeps a banner on every open document whose path has a conflict, and
 * notifies once per new conflict.
 */
export class ConflictWatcher {
  constructor(options: ConflictWatcher.IOptions) {
    this._actions = options.actions;
    this._trans = options.trans;
    this._open = options.open;
  }

  /** Attach a banner to a newly opened document. */
  track(widget: IDocumentWidget): void {
    if (!(widget instanceof MainAreaWidget) || this._banners.has(widget)) {
      return;
    }
    const banner = new ConflictBanner(this._actions, this._trans);
    widget.contentHeader.addWidget(banner);
    this._banners.set(widget, banner);
    widget.disposed.connect(() => this._banners.delete(widget));
    banner.conflicts = this._conflicts.get(widget.context.localPath) ?? [];
  }

  /** The journal's current entries. */
  update(entries: IJournalEntry[]): void {
    this._conflicts.clear();
    // Newest first: the banner describes the newest conflict of its document.
    const newestFirst = [...entries].sort((a, b) => b.id - a.id);
    for (const entry of newestFirst) {
      if (entry.state === 'conflict' && entry.api_path !== null) {
        const known = this._conflicts.get(entry.api_path) ?? [];
        this._conflicts.set(entry.api_path, [...known, entry]);
      }
    }
    // One notification per document in conflict, not per entry: a document
    // whose conflicts were all notified, or that gets a second one while the
    // first is still open (the room's save, with real-time collaboration), is
    // not announced again.
    for (const conflicts of this._conflicts.values()) {
      const fresh = conflicts.filter(e => !this._notified.has(e.id));
      fresh.forEach(e => this._notified.add(e.id));
      if (fresh.length === conflicts.length) {
        this._notify(conflicts[0]);
      }
    }
    for (const [widget, banner] of this._banners) {
      banner.conflicts = this._conflicts.get(widget.context.localPath) ?? [];
    }
  }

  private _notify(entry: IJournalEntry): void {
    const trans = this._trans;
    Notification.warning(conflictText(entry, trans), {
      autoClose: false,
      actions: [
        {
          label: trans.__('Open'),
          caption: trans.__('Open the document and choose a version'),
          callback: () => void this._open(entry)
        }
      ]
    });
  }

  private _actions: ConflictActions;
  private _trans: TranslationBundle;
  private _open: (entry: IJournalEntry) => Promise<void>;
  private _banners = new Map<IDocumentWidget, ConflictBanner>();
  /** Each document's conflicts, newest first. */
  private _conflicts = new Map<string, IJournalEntry[]>();
  private _notified = new Set<number>();
}

export namespace ConflictWatcher {
  export interface IOptions {
    actions: ConflictActions;
    trans: TranslationBundle;
    open: (entry: IJournalEntry) => Promise<void>;
  }
}
