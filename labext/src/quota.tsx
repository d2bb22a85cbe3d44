// Copyright (c) cs3sync contributors. Apache-2.0.
import { VDomRenderer } from '@jupyterlab/apputils';
import { GroupItem, TextItem } from '@jupyterlab/statusbar';
import {
  ITranslator,
  nullTranslator,
  TranslationBundle
} from '@jupyterlab/translation';
import * as React from 'react';

import { PolledModel } from './model';
import { ICS3Client } from './tokens';
import { IQuota } from './types';
import { formatBytes, quotaLevel, quotaPercent } from './utils';

/** The quota of the storage under the file browser's current folder. */
export class QuotaModel extends PolledModel<IQuota> {
  constructor(options: QuotaModel.IOptions) {
    super({
      fetch: () => options.cs3.client.quota(this._path),
      name: '@cs3sync/labextension:quota',
      interval: options.interval ?? 60 * 1000,
      standby: options.standby
    });
    this.warning = options.warning ?? 75;
    this.critical = options.critical ?? 90;
  }

  readonly warning: number;
  readonly critical: number;

  /** The API path whose storage quota is shown. */
  get path(): string {
    return this._path;
  }
  set path(value: string) {
    if (value !== this._path) {
      this._path = value;
      void this.refresh();
    }
  }

  get percent(): number | null {
    return quotaPercent(this.data);
  }

  get level(): 'ok' | 'warning' | 'critical' {
    return quotaLevel(this.percent, this.warning, this.critical);
  }

  private _path = '';
}

export namespace QuotaModel {
  export interface IOptions {
    cs3: ICS3Client;
    interval?: number;
    warning?: number;
    critical?: number;
    standby?: PolledModel.IOptions<IQuota>['standby'];
  }
}

/** A text summary of a quota, e.g. "7.8 GB of 10 GB (78%)". */
export function quotaText(
  quota: IQuota | null,
  trans: TranslationBundle
): string {
  if (!quota) {
    return '';
  }
  if (quota.unlimited) {
    return trans.__('%1 used (no quota)', formatBytes(quota.used));
  }
  return trans.__(
    '%1 of %2 (%3%)',
    formatBytes(quota.used),
    formatBytes(quota.total),
    String(quotaPercent(quota) ?? 0)
  );
}

/** The bar under the file browser listing. */
export class QuotaBar extends VDomRenderer<QuotaModel> {
  constructor(model: QuotaModel, translator?: ITranslator) {
    super(model);
    this._trans = (translator ?? nullTranslator).load('cs3sync');
    this.addClass('jp-cs3sync-quotaBar');
  }

  protected render(): React.ReactElement | null {
    const trans = this._trans;
    const model = this.model;
    if (model.error && !model.data) {
      return (
        <div className="jp-cs3sync-quotaText" title={model.error.message}>
          {trans.__('Quota unavailable')}
        </div>
      );
    }
    if (!model.data) {
      return null;
    }
    const percent = model.percent;
    return (
      <div
        className="jp-cs3sync-quota"
        title={trans.__('Storage quota of %1', '/' + model.path)}
      >
        <div
          className={`jp-cs3sync-quotaTrack jp-mod-${model.level}`}
          role="progressbar"
          aria-label={trans.__('Storage quota')}
          aria-valuemin={0}
          aria-valuemax={100}
          aria-valuenow={percent ?? 0}
        >
          <div
            className="jp-cs3sync-quotaFill"
            style={{ width: `${percent ?? 0}%` }}
          />
        </div>
        <div className="jp-cs3sync-quotaText">
          {quotaText(model.data, trans)}
        </div>
      </div>
    );
  }

  private _trans: TranslationBundle;
}

/** The status bar item: used / total, a bar coloured like the one under the file browser. */
export class QuotaStatus extends VDomRenderer<QuotaModel> {
  constructor(model: QuotaModel, translator?: ITranslator) {
    super(model);
    this._trans = (translator ?? nullTranslator).load('cs3sync');
    this.addClass('jp-cs3sync-quotaStatus');
  }

  protected render(): React.ReactElement | null {
    const model = this.model;
    const trans = this._trans;
    if (!model.data) {
      // Unreadable: say so instead of vanishing (the item stays where the user expects it).
      return model.error ? (
        <TextItem
          source={trans.__('Quota unavailable')}
          title={model.error.message}
          className="jp-cs3sync-quotaStatusText"
        />
      ) : null;
    }
    const percent = model.percent;
    return (
      <GroupItem spacing={4} title={quotaText(model.data, trans)}>
        <TextItem
          source={
            model.data.unlimited
              ? trans.__('%1 used', formatBytes(model.data.used))
              : trans.__(
                  '%1 of %2',
                  formatBytes(model.data.used),
                  formatBytes(model.data.total)
                )
          }
          className={`jp-cs3sync-quotaStatusText jp-mod-${model.level}`}
        />
        {percent !== null ? (
          <div
            className={`jp-cs3sync-quotaTrack jp-cs3sync-quotaStatusTrack jp-mod-${model.level}`}
            role="progressbar"
            aria-label={trans.__('Storage quota')}
            aria-valuemin={0}
            aria-valuemax={100}
            aria-valuenow={percent}
          >
            <div
              className="jp-cs3sync-quotaFill"
              style={{ width: `${percent}%` }}
            />
          </div>
        ) : null}
      </GroupItem>
    );
  }

  private _trans: TranslationBundle;
}
