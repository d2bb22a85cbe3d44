// Copyright (c) cs3sync contributors. Apache-2.0.
import { Dialog, ReactWidget, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { CS3Client, ILinkRequest } from './client';
import { ILink } from './types';

/** What the "Edit link" form holds. */
export interface ILinkForm {
  /** Expiry day as YYYY-MM-DD (local time), '' for none. */
  expiry: string;
  /** A new password, '' to keep the current one. */
  password: string;
  /** Remove the current password. */
  removePassword: boolean;
}

function pad(value: number): string {
  return value < 10 ? '0' + value : String(value);
}

/** The local YYYY-MM-DD of a time in seconds since the epoch ('' for none). */
export function dateInputValue(seconds: number | null | undefined): string {
  if (!seconds) {
    return '';
  }
  const date = new Date(seconds * 1000);
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** The end (23:59:59 local time) of a YYYY-MM-DD day, in seconds since the epoch; null if invalid. */
export function endOfDay(day: string): number | null {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
  if (!match) {
    return null;
  }
  const date = new Date(
    Number(match[1]),
    Number(match[2]) - 1,
    Number(match[3]),
    23,
    59,
    59
  );
  return isNaN(date.getTime()) ? null : Math.floor(date.getTime() / 1000);
}

/** The initial form of a link. */
export function linkForm(link: ILink): ILinkForm {
  return {
    expiry: dateInputValue(link.expiration),
    password: '',
    removePassword: false
  };
}

/**
 * The PATCH body that turns `link` into what the form says, or null when nothing changes.
 * An emptied expiry removes it (`expiration: null`); "remove password" sends `password: ''`.
 * Throws on an unreadable date.
 */
export function linkUpdate(link: ILink, form: ILinkForm): ILinkRequest | null {
  const request: ILinkRequest = {};
  if (form.expiry !== dateInputValue(link.expiration)) {
    if (form.expiry === '') {
      request.expiration = null;
    } else {
      const seconds = endOfDay(form.expiry);
      if (seconds === null) {
        throw new Error(`“${form.expiry}” is not a date.`);
      }
      if (seconds * 1000 < Date.now()) {
        throw new Error('The expiry date is in the past: choose a later day.');
      }
      request.expiration = seconds;
    }
  }
  if (form.removePassword && link.password_protected) {
    request.password = '';
  } else if (form.password) {
    request.password = form.password;
  }
  return Object.keys(request).length > 0 ? request : null;
}

/** The body of the "Edit link" dialog; `getValue()` gives the form. */
export class LinkEditor
  extends ReactWidget
  implements Dialog.IBodyWidget<ILinkForm>
{
  constructor(
    private _link: ILink,
    private _trans: TranslationBundle,
    form?: ILinkForm,
    private _problem: string | null = null
  ) {
    super();
    this.addClass('jp-cs3sync-linkEditor');
    this._form = form ?? linkForm(_link);
  }

  getValue(): ILinkForm {
    return { ...this._form };
  }

  private _set(change: Partial<ILinkForm>): void {
    this._form = { ...this._form, ...change };
    this.update();
  }

  protected render(): React.ReactElement {
    const trans = this._trans;
    const form = this._form;
    return (
      <div className="jp-cs3sync-form">
        {this._problem ? (
          <div className="jp-cs3sync-error" role="alert">
            {this._problem}
          </div>
        ) : null}
        <label className="jp-cs3sync-field">
          <span>{trans.__('Expires on')}</span>
          <input
            className="jp-mod-styled"
            type="date"
            aria-label={trans.__('Link expiry date')}
            value={form.expiry}
            onChange={event => this._set({ expiry: event.target.value })}
          />
          <button
            type="button"
            className="jp-mod-styled jp-cs3sync-clearExpiry"
            disabled={form.expiry === ''}
            onClick={() => this._set({ expiry: '' })}
          >
            {trans.__('Never')}
          </button>
        </label>
        <label className="jp-cs3sync-field">
          <span>
            {this._link.password_protected
              ? trans.__('New password')
              : trans.__('Password')}
          </span>
          <input
            className="jp-mod-styled"
            type="password"
            autoComplete="new-password"
            aria-label={trans.__('Link password')}
            placeholder={
              this._link.password_protected
                ? trans.__('Leave empty to keep the current one')
                : trans.__('None')
            }
            disabled={form.removePassword}
            value={form.password}
            onChange={event => this._set({ password: event.target.value })}
          />
        </label>
        {this._link.password_protected ? (
          <label className="jp-cs3sync-field">
            <input
              type="checkbox"
              checked={form.removePassword}
              onChange={event =>
                this._set({
                  removePassword: event.target.checked,
                  password: ''
                })
              }
            />
            <span>{trans.__('Remove the password')}</span>
          </label>
        ) : null}
      </div>
    );
  }

  private _form: ILinkForm;
}

/** Ask for a link's new expiry and password and apply them; resolves to the updated link or null. */
export async function editLink(
  client: CS3Client,
  link: ILink,
  trans: TranslationBundle
): Promise<ILink | null> {
  // Until it is saved or cancelled: a refused value brings the dialog back with what was typed and why.
  let form = linkForm(link);
  let problem: string | null = null;
  for (;;) {
    const result = await showDialog<ILinkForm>({
      title: trans.__('Edit the public link of “%1”', link.name),
      body: new LinkEditor(link, trans, form, problem),
      focusNodeSelector: 'input',
      buttons: [
        Dialog.cancelButton(),
        Dialog.okButton({ label: trans.__('Save') })
      ]
    });
    if (!result.button.accept || !result.value) {
      return null;
    }
    form = result.value;
    try {
      const request = linkUpdate(link, form);
      return request ? await client.updateLink(link.id, request) : null;
    } catch (error) {
      problem = (error as Error).message;
    }
  }
}

/** What "Copy" puts on the clipboard, and how the button says it. */
export function copyTarget(
  link: ILink,
  trans: TranslationBundle
): { text: string; label: string; title: string } {
  if (link.url) {
    return {
      text: link.url,
      label: trans.__('Copy link'),
      title: trans.__('Copy %1', link.url)
    };
  }
  return {
    text: link.token,
    label: trans.__('Copy token'),
    title: trans.__(
      'No public link URL is configured on the server (CS3SyncAPI.public_link_url): this copies the link token %1',
      link.token
    )
  };
}
