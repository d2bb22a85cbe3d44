// Copyright (c) cs3sync contributors. Apache-2.0.
import { IDocumentWidget } from '@jupyterlab/docregistry';
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
    if (!foreign) {
      this._indicator?.dispose();
      this._indicator = null;
      return;
    }
    const holder =
      this._status?.holder || this._trans.__('another application');
    const text = this._trans.__('Read-only: locked by %1', holder);
    if (!this._indicator) {
      this._indicator = new Widget();
      this._indicator.addClass('jp-cs3sync-lockIndicator');
      this._indicator.node.setAttribute('role', 'status');
      this.widget.toolbar.insertItem(0, 'cs3sync-lock', this._indicator);
    }
    this._indicator.node.textContent = text;
    this._indicator.node.title = this._trans.__(
      'Someone else holds the lock on this file; your changes cannot be saved until it is released.'
    );
  }

  private _disposed = false;
  private _path: string;
  private _status: ILockStatus | null = null;
  private _timer: ReturnType<typeof setInterval>;
  private _indicator: Widget | null = null;
  private _trans: TranslationBundle;
}
