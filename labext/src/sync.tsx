// Copyright (c) cs3sync contributors. Apache-2.0.
import { Dialog, showDialog, VDomRenderer } from '@jupyterlab/apputils';
import { GroupItem, ProgressBar, TextItem } from '@jupyterlab/statusbar';
import {
  ITranslator,
  nullTranslator,
  TranslationBundle
} from '@jupyterlab/translation';
import {
  fileIcon,
  notebookIcon,
  refreshIcon,
  SidePanel,
  ToolbarButton
} from '@jupyterlab/ui-components';
import { Panel } from '@lumino/widgets';
import * as React from 'react';

import { ConflictActions, conflictText } from './conflicts';
import { syncIcon } from './icons';
import { PolledModel } from './model';
import { CS3APIError } from './request';
import { ICS3Client } from './tokens';
import { IJournal, IJournalEntry, IMergeRecord } from './types';
import { activation, formatBytes, formatDate } from './utils';

/** Journal states that are still waiting to reach the storage. */
export const PENDING_STATES = ['queued', 'running', 'retrying', 'blocked'];

/** JupyterLab's own checkpoint copies: kept by us, not something the user saved. */
export function isCheckpoint(entry: IJournalEntry): boolean {
  return (
    entry.op === 'checkpoint' ||
    /(^|\/)\.ipynb_checkpoints\//.test(entry.api_path ?? entry.path)
  );
}

/** Split journal entries into pending, conflicted and failed; waiting checkpoints are only counted. */
export function groupEntries(entries: IJournalEntry[]): {
  pending: IJournalEntry[];
  conflicts: IJournalEntry[];
  failed: IJournalEntry[];
  checkpoints: number;
} {
  const waiting = entries.filter(e => PENDING_STATES.includes(e.state));
  return {
    checkpoints: waiting.filter(isCheckpoint).length,
    pending: waiting.filter(e => !isCheckpoint(e)),
    conflicts: entries.filter(e => e.state === 'conflict'),
    failed: entries.filter(e => e.state === 'failed')
  };
}

/** Overall upload progress (0..100) of the running uploads, or null. */
export function uploadPercent(entries: IJournalEntry[]): number | null {
  let total = 0;
  let done = 0;
  for (const entry of entries) {
    if (entry.state !== 'running' || !entry.size) {
      continue;
    }
    const uploaded =
      entry.uploaded ??
      (entry.progress !== null ? entry.progress * entry.size : null);
    if (uploaded !== null) {
      total += entry.size;
      done += Math.min(uploaded, entry.size);
    }
  }
  return total > 0 ? Math.round((done / total) * 100) : null;
}

/** At most one line of at most 200 characters: what the panel shows of an error message. */
export function shortMessage(
  message: string | null | undefined
): string | null {
  if (!message) {
    return null;
  }
  const line = message.trim().split('\n')[0].trim();
  return line.length > 200
    ? line.slice(0, 199).replace(/\s+$/, '') + '…'
    : line;
}

/** A labelled progress bar (role="progressbar") around the status bar's ProgressBar. */
export function UploadProgress(props: {
  percent: number;
  label: string;
}): React.ReactElement {
  return (
    <span
      className="jp-cs3sync-uploadProgress"
      role="progressbar"
      aria-label={props.label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={props.percent}
      title={`${props.label}: ${props.percent}%`}
    >
      <ProgressBar percentage={props.percent} />
    </span>
  );
}

/** The journal, polled. */
export class JournalModel extends PolledModel<IJournal> {
  constructor(options: JournalModel.IOptions) {
    super({
      fetch: () => options.cs3.client.journal(),
      name: '@cs3sync/labextension:journal',
      interval: options.interval ?? 3 * 1000,
      standby: options.standby
    });
    options.cs3.client.journalChanged.connect(() => void this.refresh(), this);
  }

  /** Number of operations not yet applied to the storage. */
  get pending(): number {
    return this.data?.pending ?? 0;
  }

  get problems(): number {
    const counts = this.data?.counts ?? {};
    return (counts['conflict'] ?? 0) + (counts['failed'] ?? 0);
  }
}

export namespace JournalModel {
  export interface IOptions {
    cs3: ICS3Client;
    interval?: number;
    standby?: PolledModel.IOptions<IJournal>['standby'];
  }
}

/** Journal states of entries still waiting for their turn (calm buttons, no Retry). */
export const WAITING_STATES = ['queued', 'retrying', 'blocked'];

/** The one-line state of the sync, e.g. "CERNBox: offline · 2 pending". */
export function syncSummary(
  journal: IJournal | null,
  trans: TranslationBundle,
  product = 'CS3'
): string {
  if (!journal) {
    return trans.__('%1: unknown', product);
  }
  const state =
    journal.state === 'online'
      ? trans.__('online')
      : journal.state === 'offline'
        ? trans.__('offline')
        : trans.__('signed out');
  const parts = [trans.__('%1: %2', product, state)];
  if (journal.pending > 0) {
    parts.push(trans._n('%1 pending', '%1 pending', journal.pending));
  } else if (journal.state === 'online') {
    parts.push(trans.__('synced'));
  }
  const problems =
    (journal.counts['conflict'] ?? 0) + (journal.counts['failed'] ?? 0);
  if (problems > 0) {
    parts.push(trans._n('%1 problem', '%1 problems', problems));
  }
  if (journal.health === 'journal_error') {
    parts.push(trans.__('local journal not writable'));
  } else if (journal.health === 'dead') {
    parts.push(trans.__('sync restarting'));
  }
  return parts.join(' · ');
}

/**
 * A merged save in the user's words, e.g. "merged with Marie Curie's change, 2
 * cells": the person's display name and the count of the merge record; the
 * server's own line where the record has no count.
 */
export function mergeText(
  merge: IMergeRecord,
  trans: TranslationBundle
): string {
  const n = merge.changes;
  if (!merge.merged || n === undefined || !merge.unit) {
    return merge.message;
  }
  const who = merge.with;
  if (merge.unit === 'cell') {
    return who
      ? trans._n(
          "merged with %2's change, %1 cell",
          "merged with %2's change, %1 cells",
          n,
          who
        )
      : trans._n(
          'merged with a change on the storage, %1 cell',
          'merged with a change on the storage, %1 cells',
          n
        );
  }
  return who
    ? trans._n(
        "merged with %2's change, %1 line",
        "merged with %2's change, %1 lines",
        n,
        who
      )
    : trans._n(
        'merged with a change on the storage, %1 line',
        'merged with a change on the storage, %1 lines',
        n
      );
}

/** The state the status item shows: the journal's, or what the failed request says. */
export function itemState(model: JournalModel): string {
  const error = model.error;
  if (error) {
    // A journal we cannot read is not "online · synced", whatever the last answer said.
    return (error as CS3APIError).kind === 'offline' ? 'offline' : 'error';
  }
  return model.data?.state ?? '';
}

/** The status bar item: state, pending count and upload progress. */
export class SyncStatus extends VDomRenderer<JournalModel> {
  constructor(
    model: JournalModel,
    private _onClick: () => void,
    translator?: ITranslator,
    private _product = 'CS3'
  ) {
    super(model);
    this._trans = (translator ?? nullTranslator).load('cs3sync');
    this.addClass('jp-cs3sync-syncStatus');
    this.node.title = this._trans.__(
      'Show what is being saved to %1',
      _product
    );
  }

  protected render(): React.ReactElement {
    const trans = this._trans;
    const data = this.model.error ? null : this.model.data;
    const state = itemState(this.model);
    const percent = data ? uploadPercent(data.entries) : null;
    const text =
      state === 'error'
        ? trans.__('%1: not answering', this._product)
        : state === 'offline' && !data
          ? trans.__('%1: offline', this._product)
          : syncSummary(data, trans, this._product);
    return (
      <div
        className={`jp-cs3sync-syncItem jp-mod-${state}`}
        data-state={state}
        data-pending={data?.pending ?? this.model.pending}
        data-progress={percent ?? ''}
        role="button"
        tabIndex={0}
        onClick={this._onClick}
        onKeyDown={event => {
          if (event.key === 'Enter' || event.key === ' ') {
            event.preventDefault();
            this._onClick();
          }
        }}
      >
        <GroupItem spacing={4}>
          <syncIcon.react tag="span" />
          <TextItem source={text} />
          {percent !== null ? (
            <UploadProgress
              percent={percent}
              label={trans.__('Upload progress')}
            />
          ) : null}
        </GroupItem>
      </div>
    );
  }

  private _trans: TranslationBundle;
}

/** The Sync sidebar: a toolbar (refresh, Retry all) over the journal list. */
export class SyncPanel extends SidePanel {
  constructor(options: SyncPanel.IOptions) {
    const translator = options.translator ?? nullTranslator;
    super({ content: new Panel(), translator });
    const trans = translator.load('cs3sync');
    this.id = 'cs3sync-sync';
    this.addClass('jp-cs3sync-panel');
    this.addClass('jp-cs3sync-syncPanel');
    this.title.icon = syncIcon;
    this.title.caption = trans.__('Sync');
    const header = new Panel();
    header.node.textContent = trans.__('Sync');
    header.addClass('jp-cs3sync-header');
    this.header.addWidget(header);
    const model = options.model;
    this.toolbar.addItem(
      'refresh',
      new ToolbarButton({
        icon: refreshIcon,
        tooltip: trans.__('Refresh'),
        onClick: () => void model.refresh()
      })
    );
    this.toolbar.addItem(
      'retry-all',
      new ToolbarButton({
        label: trans.__('Retry all'),
        tooltip: trans.__('Try every failed change again'),
        onClick: () => void this._retryAll()
      })
    );
    this.addWidget(
      new SyncList(
        model,
        options.cs3,
        options.actions,
        translator,
        options.product
      )
    );
    this._model = model;
    this._cs3 = options.cs3;
    this._strings = trans;
  }

  private async _retryAll(): Promise<void> {
    const failed = (this._model.data?.entries ?? []).filter(
      e => e.state === 'failed'
    );
    for (const entry of failed) {
      await this._cs3.client.retry(entry.id).catch(error =>
        showDialog({
          title: this._strings.__('Retry all'),
          body: (error as Error).message,
          buttons: [Dialog.okButton()]
        })
      );
    }
    await this._model.refresh();
  }

  private _model: JournalModel;
  private _cs3: ICS3Client;
  private _strings: TranslationBundle;
}

export namespace SyncPanel {
  export interface IOptions {
    model: JournalModel;
    cs3: ICS3Client;
    actions: ConflictActions;
    translator?: ITranslator;
    product?: string;
  }
}

/** The list of pending, conflicted and failed operations. */
export class SyncList extends VDomRenderer<JournalModel> {
  constructor(
    model: JournalModel,
    private _cs3: ICS3Client,
    private _actions: ConflictActions,
    translator?: ITranslator,
    private _product = 'CS3'
  ) {
    super(model);
    this._trans = (translator ?? nullTranslator).load('cs3sync');
    this.addClass('jp-cs3sync-content');
  }

  protected render(): React.ReactElement {
    const trans = this._trans;
    const model = this.model;
    const data = model.data;
    if (model.error && !data) {
      return (
        <div className="jp-cs3sync-error" role="alert">
          {trans.__(
            'Could not read what is waiting to be saved: %1',
            model.error.message
          )}
        </div>
      );
    }
    if (!data) {
      return <div className="jp-cs3sync-empty">{trans.__('Loading…')}</div>;
    }
    const groups = groupEntries(data.entries);
    const state = itemState(model);
    return (
      <div className="jp-cs3sync-content">
        <div className={`jp-cs3sync-syncState jp-mod-${state}`} role="status">
          {syncSummary(
            model.error ? { ...data, state: 'offline' } : data,
            trans,
            this._product
          )}
          {data.health_error ? (
            <div
              className="jp-cs3sync-detail jp-cs3sync-stateError"
              role="alert"
            >
              {shortMessage(data.health_error)}
            </div>
          ) : null}
          {data.last_error && data.state !== 'online' ? (
            <details className="jp-cs3sync-details">
              <summary>{trans.__('Details')}</summary>
              {shortMessage(data.last_error)}
            </details>
          ) : null}
        </div>
        {this._section(
          trans.__('Conflicts'),
          groups.conflicts,
          trans.__('No conflicts.')
        )}
        {this._section(
          trans.__('Failed'),
          groups.failed,
          trans.__('No failures.')
        )}
        {this._section(
          trans.__('Pending'),
          groups.pending,
          groups.checkpoints
            ? trans._n(
                'Only %1 checkpoint is waiting to be saved.',
                'Only %1 checkpoints are waiting to be saved.',
                groups.checkpoints
              )
            : trans.__('Everything is saved to the storage.')
        )}
        {this._merged(data.merged ?? [])}
      </div>
    );
  }

  /** The latest saves merged with someone else's change (the section is there only when there are some). */
  private _merged(entries: IJournalEntry[]): React.ReactElement | null {
    const trans = this._trans;
    const merged = entries.filter(e => e.merge?.merged && e.api_path);
    if (merged.length === 0) {
      return null;
    }
    const title = trans.__('Merged');
    return (
      <section className="jp-cs3sync-section jp-cs3sync-mergedSection">
        <h3 className="jp-cs3sync-subtitle">
          {title} ({merged.length})
        </h3>
        <ul className="jp-cs3sync-list" role="group" aria-label={title}>
          {merged.map(entry => {
            const name = entry.api_path!;
            const text = mergeText(entry.merge!, trans);
            const when = formatDate(entry.finished ?? entry.updated);
            const Icon = name.endsWith('.ipynb') ? notebookIcon : fileIcon;
            return (
              <li
                key={entry.id}
                className="jp-cs3sync-item jp-cs3sync-entry jp-mod-merged"
                data-entry-id={entry.id}
                title={[name, text, when].filter(Boolean).join('\n')}
                {...activation(
                  () => void this._cs3.open(name, 'file'),
                  trans.__('Open %1: %2', name, text)
                )}
              >
                <Icon.react tag="span" className="jp-cs3sync-itemIcon" />
                <span className="jp-cs3sync-name">{name.split('/').pop()}</span>
                <span className="jp-cs3sync-detail jp-cs3sync-mergeText">
                  {text}
                </span>
              </li>
            );
          })}
        </ul>
      </section>
    );
  }

  private _section(
    title: string,
    entries: IJournalEntry[],
    empty: string
  ): React.ReactElement {
    return (
      <section className="jp-cs3sync-section">
        <h3 className="jp-cs3sync-subtitle">
          {title} ({entries.length})
        </h3>
        {entries.length === 0 ? (
          <div className="jp-cs3sync-empty">{empty}</div>
        ) : (
          <ul className="jp-cs3sync-list">
            {entries.map(entry => this._entry(entry))}
          </ul>
        )}
      </section>
    );
  }

  private _entry(entry: IJournalEntry): React.ReactElement {
    const trans = this._trans;
    const client = this._cs3.client;
    const name = entry.api_path ?? entry.path;
    const state = entry.blocked_reason
      ? `${entry.state} (${entry.blocked_reason})`
      : entry.state;
    const waiting = WAITING_STATES.includes(entry.state);
    return (
      <li
        key={entry.id}
        className={`jp-cs3sync-item jp-cs3sync-entry jp-mod-${entry.state}`}
        data-entry-id={entry.id}
      >
        <div className="jp-cs3sync-entryMain">
          <span className="jp-cs3sync-op">{entry.op}</span>
          <span className="jp-cs3sync-name" title={name}>
            {name}
          </span>
          <span className="jp-cs3sync-detail">
            {state}
            {entry.attempts > 0
              ? ' · ' + trans._n('%1 attempt', '%1 attempts', entry.attempts)
              : ''}
            {entry.size !== null ? ' · ' + formatBytes(entry.size) : ''}
          </span>
          {entry.progress !== null && entry.state === 'running' ? (
            <UploadProgress
              percent={Math.round(entry.progress * 100)}
              label={trans.__('Upload of %1', name)}
            />
          ) : null}
          {entry.state === 'conflict' ? (
            <div className="jp-cs3sync-detail jp-cs3sync-conflictText">
              {conflictText(entry, trans)}
            </div>
          ) : null}
          {entry.last_error && entry.state !== 'conflict' ? (
            <details className="jp-cs3sync-details jp-cs3sync-entryError">
              <summary>{trans.__('Details')}</summary>
              {shortMessage(entry.last_error)}
            </details>
          ) : null}
        </div>
        <div className="jp-cs3sync-entryActions">
          {entry.state === 'conflict' ? (
            <>
              <button
                className="jp-mod-styled jp-mod-accept"
                data-choice="keep-mine"
                title={trans.__(
                  'Put your version over theirs (the conflict copy stays)'
                )}
                onClick={() => void this._actions.keepMine(entry)}
              >
                {trans.__('Keep mine')}
              </button>
              <button
                className="jp-mod-styled"
                data-choice="keep-theirs"
                title={trans.__(
                  'Keep their version (yours stays in the conflict copy)'
                )}
                onClick={() => void this._actions.keepTheirs(entry)}
              >
                {trans.__('Keep theirs')}
              </button>
              <button
                className="jp-mod-styled"
                data-choice="resolve"
                title={trans.__(
                  'You dealt with it: nothing changes on the storage'
                )}
                onClick={() => void this._actions.markResolved(entry)}
              >
                {trans.__('Mark resolved')}
              </button>
              {entry.conflict_api_path ? (
                <button
                  className="jp-mod-styled jp-cs3sync-openConflict"
                  title={trans.__('Open %1', entry.conflict_api_path)}
                  onClick={() =>
                    void this._cs3.open(entry.conflict_api_path!, 'file')
                  }
                >
                  {trans.__('Open conflict copy')}
                </button>
              ) : null}
            </>
          ) : null}
          {entry.state === 'failed' ? (
            <>
              <button
                className="jp-mod-styled jp-mod-accept"
                onClick={() => void client.retry(entry.id).catch(this._report)}
              >
                {trans.__('Retry')}
              </button>
              <button
                className="jp-mod-styled jp-mod-reject"
                onClick={() => void this._discard(entry)}
              >
                {trans.__('Discard')}
              </button>
            </>
          ) : null}
          {waiting ? (
            <button
              className="jp-cs3sync-quietButton"
              title={trans.__('Do not save this change')}
              onClick={() => void this._discard(entry)}
            >
              {trans.__('Discard')}
            </button>
          ) : null}
        </div>
      </li>
    );
  }

  private async _discard(entry: IJournalEntry): Promise<void> {
    const trans = this._trans;
    const name = entry.api_path ?? entry.path;
    const body = entry.conflict_api_path
      ? trans.__(
          'The %1 of “%2” will not be applied. The conflict copy “%3” stays.',
          entry.op,
          name,
          entry.conflict_api_path
        )
      : trans.__('The %1 of “%2” will not be applied.', entry.op, name);
    const result = await showDialog({
      title: trans.__('Discard this change?'),
      body,
      buttons: [
        Dialog.cancelButton(),
        Dialog.warnButton({ label: trans.__('Discard') })
      ]
    });
    if (result.button.accept) {
      await this._cs3.client.discard(entry.id).catch(this._report);
    }
  }

  private _report = (error: Error) => {
    void showDialog({
      title: this._trans.__('Sync'),
      body: error.message,
      buttons: [Dialog.okButton()]
    });
  };

  private _trans: TranslationBundle;
}
