// Copyright (c) cs3sync contributors. Apache-2.0.
import { VDomRenderer } from '@jupyterlab/apputils';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import {
  folderIcon,
  refreshIcon,
  SidePanel,
  ToolbarButton
} from '@jupyterlab/ui-components';
import { Panel } from '@lumino/widgets';
import * as React from 'react';

import { cs3Icon } from './icons';
import { PolledModel } from './model';
import { ICS3Client } from './tokens';
import { ISpace } from './types';
import { activation, formatBytes } from './utils';

/** The Spaces sidebar: the user's storage spaces, click to open. */
export class SpacesPanel extends SidePanel {
  constructor(options: SpacesPanel.IOptions) {
    const translator = options.translator ?? nullTranslator;
    super({ content: new Panel(), translator });
    const trans = translator.load('cs3sync');
    this.id = 'cs3sync-spaces';
    this.addClass('jp-cs3sync-panel');
    this.title.icon = cs3Icon;
    this.title.caption = trans.__('Spaces');
    const header = new Panel();
    header.node.textContent = trans.__('Spaces');
    header.addClass('jp-cs3sync-header');
    this.header.addWidget(header);
    this.model = new PolledModel<ISpace[]>({
      fetch: () => options.cs3.client.spaces(),
      name: '@cs3sync/labextension:spaces',
      interval: 120 * 1000,
      standby: () => this.isHidden || 'when-hidden'
    });
    this.toolbar.addItem(
      'refresh',
      new ToolbarButton({
        icon: refreshIcon,
        tooltip: trans.__('Refresh the list of spaces'),
        onClick: () => void this.model.refresh()
      })
    );
    this.addWidget(new SpacesList(this.model, options.cs3, translator));
  }

  readonly model: PolledModel<ISpace[]>;

  protected onBeforeShow(): void {
    void this.model.refresh();
  }

  dispose(): void {
    this.model.dispose();
    super.dispose();
  }
}

export namespace SpacesPanel {
  export interface IOptions {
    cs3: ICS3Client;
    translator?: ITranslator;
  }
}

class SpacesList extends VDomRenderer<PolledModel<ISpace[]>> {
  constructor(
    model: PolledModel<ISpace[]>,
    private _cs3: ICS3Client,
    translator: ITranslator
  ) {
    super(model);
    this._trans = translator.load('cs3sync');
    this.addClass('jp-cs3sync-content');
  }

  protected render(): React.ReactElement {
    const trans = this._trans;
    const model = this.model;
    if (model.error && !model.data) {
      return (
        <div className="jp-cs3sync-error" role="alert">
          {trans.__('Could not load the spaces: %1', model.error.message)}
          <button
            className="jp-mod-styled jp-mod-reject"
            onClick={() => void model.refresh()}
          >
            {trans.__('Retry')}
          </button>
        </div>
      );
    }
    if (!model.loaded) {
      return <div className="jp-cs3sync-empty">{trans.__('Loading…')}</div>;
    }
    const spaces = model.data ?? [];
    if (spaces.length === 0) {
      return (
        <div className="jp-cs3sync-empty">
          {trans.__('No spaces on this storage.')}
        </div>
      );
    }
    return (
      <ul
        className="jp-cs3sync-list"
        role="group"
        aria-label={trans.__('Spaces')}
      >
        {spaces.map(space => (
          <li
            key={space.id}
            className={
              'jp-cs3sync-item' +
              (space.api_path === null ? ' jp-mod-disabled' : '')
            }
            data-space-id={space.id}
            title={
              space.api_path === null
                ? trans.__(
                    '%1 (not reachable from this server’s root)',
                    space.storage_path
                  )
                : space.storage_path
            }
            {...activation(
              space.api_path !== null
                ? () => void this._cs3.open(space.api_path!, 'directory')
                : null,
              trans.__('Open %1', space.name)
            )}
          >
            <folderIcon.react tag="span" className="jp-cs3sync-itemIcon" />
            <span className="jp-cs3sync-name">{space.name}</span>
            <span className={`jp-cs3sync-badge jp-cs3sync-badge-${space.type}`}>
              {spaceTypeLabel(space.type, trans)}
            </span>
            {space.quota && !space.quota.unlimited ? (
              <span className="jp-cs3sync-detail">
                {trans.__(
                  '%1 of %2',
                  formatBytes(space.quota.used),
                  formatBytes(space.quota.total)
                )}
              </span>
            ) : null}
          </li>
        ))}
      </ul>
    );
  }

  private _trans: ReturnType<ITranslator['load']>;
}

function spaceTypeLabel(
  type: string,
  trans: ReturnType<ITranslator['load']>
): string {
  switch (type) {
    case 'personal':
      return trans.__('personal');
    case 'project':
      return trans.__('project');
    case 'share':
    case 'mountpoint':
      return trans.__('share');
    default:
      return type;
  }
}
