// Copyright (c) cs3sync contributors. Apache-2.0.
import { VDomModel } from '@jupyterlab/apputils';
import { Poll } from '@lumino/polling';

import { CS3APIError } from './request';

/**
 * A VDom model that polls one REST resource with backoff and a 300 s maximum,
 * and stands by while hidden (or when `standby` says so).
 */
export class PolledModel<T> extends VDomModel {
  constructor(options: PolledModel.IOptions<T>) {
    super();
    this._fetch = options.fetch;
    this._poll = new Poll<T | null, Error>({
      auto: options.auto ?? true,
      factory: () => this._fetch(),
      frequency: {
        interval: options.interval ?? 30 * 1000,
        backoff: true,
        max: 300 * 1000
      },
      name: options.name,
      standby: options.standby ?? 'when-hidden'
    });
    this._poll.ticked.connect(this._onTick, this);
  }

  /** The last successful answer. */
  get data(): T | null {
    return this._data;
  }

  /** The last error, cleared by the next success. */
  get error(): CS3APIError | Error | null {
    return this._error;
  }

  /** Whether at least one request has completed (successfully or not). */
  get loaded(): boolean {
    return this._loaded;
  }

  /** Fetch now and wait for the answer. */
  async refresh(): Promise<void> {
    await this._poll.refresh();
    await this._poll.tick;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._poll.dispose();
    super.dispose();
  }

  private _onTick(poll: Poll<T | null, Error>): void {
    const { payload, phase } = poll.state;
    if (phase === 'resolved') {
      this._data = payload as T;
      this._error = null;
      this._loaded = true;
      this.stateChanged.emit(void 0);
    } else if (phase === 'rejected') {
      this._error = (payload as Error) ?? new Error('request failed');
      this._loaded = true;
      this.stateChanged.emit(void 0);
    }
  }

  private _data: T | null = null;
  private _error: Error | null = null;
  private _loaded = false;
  private _fetch: () => Promise<T>;
  private _poll: Poll<T | null, Error>;
}

export namespace PolledModel {
  export interface IOptions<T> {
    fetch: () => Promise<T>;
    name: string;
    interval?: number;
    auto?: boolean;
    standby?: Poll.Standby | (() => boolean | Poll.Standby);
  }
}
