// Copyright (c) cs3sync contributors. Apache-2.0.
import {
  Clipboard,
  Dialog,
  Notification,
  showDialog,
  VDomRenderer
} from '@jupyterlab/apputils';
import {
  ITranslator,
  nullTranslator,
  TranslationBundle
} from '@jupyterlab/translation';
import {
  copyIcon,
  fileIcon,
  folderIcon,
  linkIcon,
  refreshIcon,
  SidePanel,
  ToolbarButton
} from '@jupyterlab/ui-components';
import { Panel } from '@lumino/widgets';
import * as React from 'react';

import { shareIcon } from './icons';
import { copyTarget, editLink } from './linkedit';
import { PolledModel } from './model';
import { openShareDialog } from './sharedialog';
import { ICS3Client } from './tokens';
import { ILink, IShare } from './types';
import { activation, formatDate } from './utils';

/** The three lists of the Shares panel; a failed list carries its error. */
export interface ISharesData {
  incoming: IShare[] | null;
  outgoing: IShare[] | null;
  links: ILink[] | null;
  errors: { incoming?: string; outgoing?: string; links?: string };
}

/** Load the three lists, keeping whatever succeeded. */
export async function fetchShares(cs3: ICS3Client): Promise<ISharesData> {
  const [incoming, outgoing, links] = await Promise.allSettled([
    cs3.client.incomingShares(),
    cs3.client.outgoingShares(),
    cs3.client.links()
  ]);
  const errors: ISharesData['errors'] = {};
  const value = <T,>(
    result: PromiseSettledResult<T>,
    key: keyof ISharesData['errors']
  ): T | null => {
    if (result.status === 'fulfilled') {
      return result.value;
    }
    errors[key] = (result.reason as Error)?.message ?? String(result.reason);
    return null;
  };
  const data: ISharesData = {
    incoming: value(incoming, 'incoming'),
    outgoing: value(outgoing, 'outgoing'),
    links: value(links, 'links'),
    errors
  };
  if (!data.incoming && !data.outgoing && !data.links) {
    throw new Error(errors.incoming ?? errors.outgoing ?? errors.links);
  }
  return data;
}

export type SharesTab = 'incoming' | 'outgoing' | 'links';

/** The Shares sidebar: "Shared with me", "Shared by me", "Public links". */
export class SharesPanel extends SidePanel {
  constructor(options: SharesPanel.IOptions) {
    const translator = options.translator ?? nullTranslator;
    super({ content: new Panel(), translator });
    const trans = translator.load('cs3sync');
    this.id = 'cs3sync-shares';
    this.addClass('jp-cs3sync-panel');
    this.title.icon = shareIcon;
    this.title.caption = trans.__('Shares');
    const header = new Panel();
    header.node.textContent = trans.__('Shares');
    header.addClass('jp-cs3sync-header');
    this.header.addWidget(header);
    this.model = new PolledModel<ISharesData>({
      fetch: () => fetchShares(options.cs3),
      name: '@cs3sync/labextension:shares',
      interval: 60 * 1000,
      standby: () => this.isHidden || 'when-hidden'
    });
    options.cs3.client.sharesChanged.connect(this._onChanged, this);
    this.toolbar.addItem(
      'refresh',
      new ToolbarButton({
        icon: refreshIcon,
        tooltip: trans.__('Refresh the shares'),
        onClick: () => void this.model.refresh()
      })
    );
    this.addWidget(new SharesView(this.model, options.cs3, translator));
  }

  readonly model: PolledModel<ISharesData>;

  protected onBeforeShow(): void {
    void this.model.refresh();
  }

  private _onChanged(): void {
    void this.model.refresh();
  }

  dispose(): void {
    this.model.dispose();
    super.dispose();
  }
}

export namespace SharesPanel {
  export interface IOptions {
    cs3: ICS3Client;
    translator?: ITranslator;
  }
}

class SharesView extends VDomRenderer<PolledModel<ISharesData>> {
  constructor(
    model: PolledModel<ISharesData>,
    private _cs3: ICS3Client,
    private _translator: ITranslator
  ) {
    super(model);
    this._trans = _translator.load('cs3sync');
    this.addClass('jp-cs3sync-content');
  }

  protected render(): React.ReactElement {
    const trans = this._trans;
    const tabs: [SharesTab, string][] = [
      ['incoming', trans.__('Shared with me')],
      ['outgoing', trans.__('Shared by me')],
      ['links', trans.__('Public links')]
    ];
    return (
      <div className="jp-cs3sync-shares">
        <div className="jp-cs3sync-tabs" role="tablist">
          {tabs.map(([tab, label]) => (
            <button
              key={tab}
              role="tab"
              aria-selected={this._tab === tab}
              className={
                'jp-cs3sync-tab' + (this._tab === tab ? ' jp-mod-active' : '')
              }
              onClick={() => {
                this._tab = tab;
                this.update();
              }}
            >
              {label}
            </button>
          ))}
        </div>
        <div role="tabpanel">{this._renderTab()}</div>
      </div>
    );
  }

  private _renderTab(): React.ReactElement {
    const trans = this._trans;
    const model = this.model;
    if (model.error && !model.data) {
      return (
        <div className="jp-cs3sync-error" role="alert">
          {trans.__('Could not load the shares: %1', model.error.message)}
        </div>
      );
    }
    if (!model.loaded || !model.data) {
      return <div className="jp-cs3sync-empty">{trans.__('Loading…')}</div>;
    }
    const data = model.data;
    const error = data.errors[this._tab];
    if (error) {
      return (
        <div className="jp-cs3sync-error" role="alert">
          {error}
        </div>
      );
    }
    if (this._tab === 'links') {
      return this._renderLinks(data.links ?? []);
    }
    const shares =
      (this._tab === 'incoming' ? data.incoming : data.outgoing) ?? [];
    if (shares.length === 0) {
      return (
        <div className="jp-cs3sync-empty">
          {this._tab === 'incoming'
            ? trans.__('Nobody has shared anything with you yet.')
            : trans.__('You have not shared anything yet.')}
        </div>
      );
    }
    return (
      <ul
        className="jp-cs3sync-list"
        role="group"
        aria-label={
          this._tab === 'incoming'
            ? trans.__('Shared with me')
            : trans.__('Shared by me')
        }
      >
        {shares.map(share => this._renderShare(share))}
      </ul>
    );
  }

  private _renderShare(share: IShare): React.ReactElement {
    const trans = this._trans;
    const Icon = share.type === 'directory' ? folderIcon : fileIcon;
    const who =
      this._tab === 'incoming'
        ? share.creator?.display_name || share.creator?.id
        : share.grantee?.display_name || share.grantee?.id;
    return (
      <li
        key={share.id}
        className={
          'jp-cs3sync-item' +
          (share.api_path === null ? ' jp-mod-disabled' : '')
        }
        data-share-id={share.id}
        title={share.name}
        {...activation(
          share.api_path !== null
            ? () => void this._cs3.open(share.api_path!, share.type)
            : null,
          trans.__('Open %1', share.name)
        )}
      >
        <Icon.react tag="span" className="jp-cs3sync-itemIcon" />
        <span className="jp-cs3sync-name">{share.name}</span>
        <span className={`jp-cs3sync-badge jp-cs3sync-badge-${share.role}`}>
          {roleLabel(share.role, trans)}
        </span>
        <span className="jp-cs3sync-detail">
          {this._tab === 'incoming'
            ? trans.__('from %1', who ?? '')
            : share.grantee?.type === 'group'
              ? trans.__('with group %1', who ?? '')
              : trans.__('with %1', who ?? '')}
          {share.state && share.state !== 'accepted' ? ' · ' + share.state : ''}
          {share.expiration
            ? ' · ' + trans.__('expires %1', formatDate(share.expiration))
            : ''}
        </span>
        {this._tab === 'outgoing' && share.api_path !== null ? (
          <button
            className="jp-cs3sync-action"
            title={trans.__('Manage sharing')}
            onKeyDown={event => event.stopPropagation()}
            onClick={event => {
              event.stopPropagation();
              void openShareDialog({
                cs3: this._cs3,
                path: share.api_path!,
                name: share.name,
                translator: this._translator
              });
            }}
          >
            {trans.__('Manage')}
          </button>
        ) : null}
      </li>
    );
  }

  private _renderLinks(links: ILink[]): React.ReactElement {
    const trans = this._trans;
    if (links.length === 0) {
      return (
        <div className="jp-cs3sync-empty">
          {trans.__('No public links. Use “Share…” on a file to create one.')}
        </div>
      );
    }
    return (
      <ul
        className="jp-cs3sync-list"
        role="group"
        aria-label={trans.__('Public links')}
      >
        {links.map(link => {
          const copy = copyTarget(link, trans);
          return (
            <li
              key={link.id}
              className="jp-cs3sync-item jp-cs3sync-link"
              data-link-id={link.id}
              title={link.name}
              {...activation(
                link.api_path !== null
                  ? () => void this._cs3.open(link.api_path!, link.type)
                  : null,
                trans.__('Open %1', link.name)
              )}
            >
              <linkIcon.react tag="span" className="jp-cs3sync-itemIcon" />
              <span className="jp-cs3sync-name">{link.name}</span>
              <span
                className={`jp-cs3sync-badge jp-cs3sync-badge-${link.role}`}
              >
                {roleLabel(link.role, trans)}
              </span>
              <span className="jp-cs3sync-detail">
                {linkAudience(link, trans)}
                {link.expiration
                  ? ' · ' + trans.__('expires %1', formatDate(link.expiration))
                  : ''}
              </span>
              <span className="jp-cs3sync-linkUrl" title={copy.text}>
                {copy.text}
              </span>
              <span
                className="jp-cs3sync-linkActions"
                onClick={event => event.stopPropagation()}
                onKeyDown={event => event.stopPropagation()}
              >
                <button
                  className="jp-cs3sync-action jp-cs3sync-copyLink"
                  title={copy.title}
                  aria-label={copy.label}
                  onClick={() => {
                    Clipboard.copyToSystem(copy.text);
                    Notification.success(
                      link.url
                        ? trans.__('Link copied')
                        : trans.__('Token copied (no link address configured)'),
                      { autoClose: 3000 }
                    );
                  }}
                >
                  <copyIcon.react tag="span" />
                  {copy.label}
                </button>
                <button
                  className="jp-cs3sync-action jp-cs3sync-editLink"
                  title={trans.__('Change the expiry or password of this link')}
                  onClick={() => void editLink(this._cs3.client, link, trans)}
                >
                  {trans.__('Edit')}
                </button>
                <button
                  className="jp-cs3sync-action"
                  title={trans.__('Remove the link')}
                  onClick={() => void this._removeLink(link)}
                >
                  {trans.__('Remove')}
                </button>
              </span>
            </li>
          );
        })}
      </ul>
    );
  }

  private async _removeLink(link: ILink): Promise<void> {
    const trans = this._trans;
    const result = await showDialog({
      title: trans.__('Remove this link?'),
      body: trans.__(
        'People who have the link to “%1” will no longer be able to open it.',
        link.name
      ),
      buttons: [
        Dialog.cancelButton(),
        Dialog.warnButton({ label: trans.__('Remove') })
      ]
    });
    if (result.button.accept) {
      await this._cs3.client.removeLink(link.id).catch(error =>
        showDialog({
          title: trans.__('Remove this link?'),
          body: (error as Error).message,
          buttons: [Dialog.okButton()]
        })
      );
    }
  }

  private _tab: SharesTab = 'incoming';
  private _trans: TranslationBundle;
}

/** Who can open a public link, in plain words. */
export function linkAudience(link: ILink, trans: TranslationBundle): string {
  const what =
    link.role === 'editor'
      ? trans.__('Anyone with the link can edit')
      : link.role === 'uploader'
        ? trans.__('Anyone with the link can upload')
        : trans.__('Anyone with the link can view');
  return link.password_protected
    ? trans.__('%1 (with the password)', what)
    : what;
}

/** A translated role name. */
export function roleLabel(role: string, trans: TranslationBundle): string {
  switch (role) {
    case 'viewer':
      return trans.__('viewer');
    case 'editor':
      return trans.__('editor');
    case 'uploader':
      return trans.__('uploader');
    case 'manager':
      return trans.__('manager');
    default:
      return role;
  }
}
