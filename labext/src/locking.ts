// Copyright (c) cs3sync contributors. Apache-2.0.
import { IDocumentWidget } from '@jupyterlab/docregistry';
import { FileEditor } from '@jupyterlab/fileeditor';
import { Notebook } from '@jupyterlab/notebook';
import {
  ITranslator,
  nullTranslator,
  TranslationBundle
} from '@jupyterlab/translation';
import { UUID } from '@lumino/coreutils';
import { Widget } from '@lumino/widgets';

import { CS3Client } from './client';
import { ILockStatus } from './types';

/** The CSS class of a document whose lock someone else holds. */
export const FOREIGN_LOCK_CLASS = 'jp-cs3sync-mod-foreignLock';

/** Seconds between two checks of the lock while a document is open (a lock taken later shows this fast). */
export const CHECK_SECONDS = 4;

/** What the lock chip says: the person (or the application) holding the lock. */
export function lockText(
  status: ILockStatus,
  trans: TranslationBundle
): { text: string; title: string } {
  const holder = status.holder || trans.__('someone else');
  return {
    text: trans.__('Locked by %1', holder),
    title: status.holder_app
      ? trans.__(
          '%1 is editing this file in %2. It is read-only here until they close it.',
          holder,
          status.holder_app
        )
      : trans.__(
          '%1 is editing this file. It is read-only here until they close it.',
          holder
        )
  };
}

/** Make a document's editor read-only (or editable again). */
export function setReadOnly(widget: IDocumentWidget, readOnly: boolean): void {
  widget.context.model.readOnly = readOnly;
  const content = widget.content;
  if (content instanceof FileEditor) {
    content.editor.setOption('readOnly', readOnly);
  } else if (content instanceof Notebook) {
    for (const cell of content.widgets) {
      cell.readOnly = readOnly;
    }
  }
}

/**
 * One lock session per open document: POST on open and as heartbeat,
 * DELETE on close, DELETE old + POST new on rename.
 */
export class LockSession {
  constructor(
    private _client: CS3Client,
    readonly widget: IDocumentWidget,
    private _heartbeat: number,
    translator?: ITranslator
  ) {
    this._trans = (translator ?? nullTranslator).load('cs3sync');
    this._path = widget.context.localPath;
    widget.context.pathChanged.connect(this._onPathChanged, this);
    widget.disposed.connect(this.dispose, this);
    void this._open();
    this._timer = setInterval(() => void this._open(), this._heartbeat * 1000);
    this._checker = setInterval(() => void this._check(), CHECK_SECONDS * 1000);
  }

  readonly id = UUID.uuid4();

  get path(): string {
    return this._path;
  }

  /** The last answer of the server, or null before the first. */
  get status(): ILockStatus | null {
    return this._status;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    clearInterval(this._timer);
    clearInterval(this._checker);
    this._indicator?.dispose();
    this.widget.context.pathChanged.disconnect(this._onPathChanged, this);
    void this._client.lockClose(this._path, this.id).catch(() => undefined);
  }

  private async _open(): Promise<void> {
    if (this._disposed) {
      return;
    }
    const path = this._path;
    try {
      const status = await this._client.lockOpen(path, this.id);
      if (!this._disposed && path === this._path) {
        this._status = status;
        this._render();
      }
    } catch (error) {
      // No locking on this server (404) or the file is gone: stop the heartbeat.
      if ((error as any)?.status === 404) {
        clearInterval(this._timer);
      }
    }
  }

  /** The frequent, read-only check (GET): a lock someone takes after opening shows within seconds. */
  private async _check(): Promise<void> {
    if (this._disposed) {
      return;
    }
    const path = this._path;
    try {
      const status = await this._client.lockCheck(path, this.id);
      if (!this._disposed && path === this._path) {
        this._status = status;
        this._render();
      }
    } catch (error) {
      if ((error as any)?.status === 404) {
        void this._open(); // the server forgot the session (restart): open it again
      }
    }
  }

  private _onPathChanged(_: unknown, newPath: string): void {
    const old = this._path;
    this._path = this.widget.context.localPath;
    if (old !== this._path) {
      void this._client.lockClose(old, this.id).catch(() => undefined);
      void this._open();
    }
  }

  private _render(): void {
    const foreign = !!this._status?.read_only;
    this.widget.toggleClass(FOREIGN_LOCK_CLASS, foreign);
    if (foreign !== this._readOnly) {
      this._readOnly = foreign;
      setReadOnly(this.widget, foreign);
    }
    if (!foreign) {
      this._indicator?.dispose();
      this._indicator = null;
      return;
    }
    const { text, title } = lockText(this._status!, this._trans);
    if (!this._indicator) {
      this._indicator = new Widget();
      this._indicator.addClass('jp-cs3sync-lockIndicator');
      this._indicator.node.setAttribute('role', 'status');
      this.widget.toolbar.insertItem(0, 'cs3sync-lock', this._indicator);
    }
    this._indicator.node.textContent = text;
    this._indicator.node.title = title;
  }

  private _disposed = false;
  private _path: string;
  private _status: ILockStatus | null = null;
  private _timer: ReturnType<typeof setInterval>;
  private _checker: ReturnType<typeof setInterval>;
  private _readOnly = false;
  private _indicator: Widget | null = null;
  private _trans: TranslationBundle;
}
