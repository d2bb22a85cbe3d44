import { Clipboard } from '@jupyterlab/apputils';
import { ServerConnection } from '@jupyterlab/services';
import { acceptDialog, dismissDialog, framePromise } from '@jupyterlab/testing';
import { nullTranslator } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { CS3Client } from '../client';
import {
  copyTarget,
  dateInputValue,
  editLink,
  endOfDay,
  linkForm,
  linkUpdate
} from '../linkedit';
import { SharesPanel } from '../shares';
import { ICS3Client } from '../tokens';
import { ILink } from '../types';

const trans = nullTranslator.load('cs3sync');

function link(partial: Partial<ILink> = {}): ILink {
  return {
    id: '7',
    token: 'aBcD3',
    url: null,
    name: 'papers',
    type: 'directory',
    storage_path: '/eos/user/e/einstein/papers',
    api_path: 'papers',
    role: 'viewer',
    password_protected: false,
    expiration: null,
    display_name: '',
    ...partial
  };
}

function newClient(): CS3Client {
  return new CS3Client({
    serverSettings: ServerConnection.makeSettings({ baseUrl: 'http://x/' })
  });
}

/** Set a React-controlled input's value the way a user does. */
function type(input: HTMLInputElement, value: string): void {
  const setter = Object.getOwnPropertyDescriptor(
    HTMLInputElement.prototype,
    'value'
  )!.set!;
  setter.call(input, value);
  input.dispatchEvent(new Event('input', { bubbles: true }));
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (condition()) {
      return;
    }
    await framePromise();
  }
  throw new Error('timed out waiting for ' + what);
}

describe('link form', () => {
  it('round-trips dates through the date input', () => {
    const seconds = endOfDay('2031-03-04')!;
    expect(dateInputValue(seconds)).toBe('2031-03-04');
    const date = new Date(seconds * 1000);
    expect([date.getHours(), date.getMinutes(), date.getSeconds()]).toEqual([
      23, 59, 59
    ]);
    expect(endOfDay('')).toBeNull();
    expect(endOfDay('tomorrow')).toBeNull();
    expect(dateInputValue(null)).toBe('');
  });

  it('sends nothing when nothing changed', () => {
    const l = link({ expiration: endOfDay('2031-03-04') });
    expect(linkUpdate(l, linkForm(l))).toBeNull();
  });

  it('sets, changes and removes the expiry', () => {
    const none = link();
    expect(
      linkUpdate(none, { ...linkForm(none), expiry: '2031-03-04' })
    ).toEqual({ expiration: endOfDay('2031-03-04') });
    const dated = link({ expiration: endOfDay('2031-03-04') });
    expect(
      linkUpdate(dated, { ...linkForm(dated), expiry: '2032-01-01' })
    ).toEqual({ expiration: endOfDay('2032-01-01') });
    expect(linkUpdate(dated, { ...linkForm(dated), expiry: '' })).toEqual({
      expiration: null
    });
    expect(() =>
      linkUpdate(dated, { ...linkForm(dated), expiry: '2031-3-4' })
    ).toThrow('is not a date');
    expect(() =>
      linkUpdate(dated, { ...linkForm(dated), expiry: '2020-01-01' })
    ).toThrow('in the past');
  });

  it('sets, changes and removes the password', () => {
    const open = link();
    expect(linkUpdate(open, { ...linkForm(open), password: 's3cret' })).toEqual(
      { password: 's3cret' }
    );
    const guarded = link({ password_protected: true });
    expect(linkUpdate(guarded, linkForm(guarded))).toBeNull(); // empty: keep it
    expect(
      linkUpdate(guarded, { ...linkForm(guarded), password: 'n3w' })
    ).toEqual({ password: 'n3w' });
    expect(
      linkUpdate(guarded, { ...linkForm(guarded), removePassword: true })
    ).toEqual({ password: '' });
    // "remove" on a link without a password is no change
    expect(
      linkUpdate(open, { ...linkForm(open), removePassword: true })
    ).toBeNull();
  });
});

describe('copyTarget', () => {
  it('copies the configured URL', () => {
    const target = copyTarget(
      link({ url: 'https://cernbox.example.org/s/aBcD3' }),
      trans
    );
    expect(target.text).toBe('https://cernbox.example.org/s/aBcD3');
    expect(target.label).toBe('Copy link');
  });

  it('falls back to the token and says so', () => {
    const target = copyTarget(link(), trans);
    expect(target.text).toBe('aBcD3');
    expect(target.label).toBe('Copy token');
    expect(target.title).toContain('public_link_url');
  });
});

describe('editLink', () => {
  afterEach(() => jest.restoreAllMocks());

  it('patches the expiry and password typed in the dialog', async () => {
    const client = newClient();
    const update = jest
      .spyOn(client, 'updateLink')
      .mockImplementation(async (_id, request) => ({
        ...link(),
        expiration: request.expiration ?? null,
        password_protected: !!request.password
      }));
    const done = editLink(client, link(), trans);
    await until(
      () => !!document.querySelector('.jp-cs3sync-linkEditor input'),
      'the dialog'
    );
    const dialog = document.querySelector('.jp-Dialog') as HTMLElement;
    expect(dialog.textContent).toContain('Edit the public link of “papers”');
    type(
      dialog.querySelector('input[type="date"]') as HTMLInputElement,
      '2031-03-04'
    );
    type(
      dialog.querySelector('input[type="password"]') as HTMLInputElement,
      'pw-123'
    );
    await framePromise();
    await acceptDialog();
    const updated = await done;
    expect(update).toHaveBeenCalledWith('7', {
      expiration: endOfDay('2031-03-04'),
      password: 'pw-123'
    });
    expect(updated?.password_protected).toBe(true);
  });

  it('removes the expiry and the password', async () => {
    const client = newClient();
    const update = jest
      .spyOn(client, 'updateLink')
      .mockImplementation(async () => link());
    const done = editLink(
      client,
      link({ expiration: endOfDay('2031-03-04'), password_protected: true }),
      trans
    );
    await until(
      () => !!document.querySelector('.jp-cs3sync-clearExpiry'),
      'the dialog'
    );
    const dialog = document.querySelector('.jp-Dialog') as HTMLElement;
    (dialog.querySelector('.jp-cs3sync-clearExpiry') as HTMLElement).click();
    (dialog.querySelector('input[type="checkbox"]') as HTMLElement).click();
    await framePromise();
    await acceptDialog();
    await done;
    expect(update).toHaveBeenCalledWith('7', {
      expiration: null,
      password: ''
    });
  });

  it('does nothing when cancelled', async () => {
    const client = newClient();
    const update = jest.spyOn(client, 'updateLink');
    const done = editLink(client, link(), trans);
    await dismissDialog();
    expect(await done).toBeNull();
    expect(update).not.toHaveBeenCalled();
  });
});

describe('Shares panel, Public links tab', () => {
  afterEach(() => jest.restoreAllMocks());

  it('has Edit and a labelled Copy on every link', async () => {
    const client = newClient();
    jest.spyOn(client, 'incomingShares').mockResolvedValue([]);
    jest.spyOn(client, 'outgoingShares').mockResolvedValue([]);
    jest
      .spyOn(client, 'links')
      .mockResolvedValue([
        link(),
        link({ id: '8', name: 'data.csv', url: 'https://x.example.org/s/q' })
      ]);
    const update = jest
      .spyOn(client, 'updateLink')
      .mockImplementation(async () => link());
    const copy = jest
      .spyOn(Clipboard, 'copyToSystem')
      .mockImplementation(() => undefined);
    const cs3: ICS3Client = { client, server: null, open: jest.fn() };
    const panel = new SharesPanel({ cs3 });
    Widget.attach(panel, document.body);
    await panel.model.refresh();
    const node = panel.node;
    await until(
      () => node.querySelectorAll('[role="tab"]').length === 3,
      'tabs'
    );
    (
      Array.from(node.querySelectorAll('[role="tab"]')).find(
        tab => tab.textContent === 'Public links'
      ) as HTMLElement
    ).click();
    await until(
      () => node.querySelectorAll('.jp-cs3sync-editLink').length === 2,
      'two links'
    );
    const copies = node.querySelectorAll('.jp-cs3sync-copyLink');
    expect(copies[0].textContent).toBe('Copy token');
    expect(copies[1].textContent).toBe('Copy link');
    (copies[1] as HTMLElement).click();
    expect(copy).toHaveBeenCalledWith('https://x.example.org/s/q');
    (node.querySelector('.jp-cs3sync-editLink') as HTMLElement).click();
    await until(
      () => !!document.querySelector('.jp-cs3sync-linkEditor input'),
      'the dialog'
    );
    type(
      document.querySelector(
        '.jp-Dialog input[type="date"]'
      ) as HTMLInputElement,
      '2031-03-04'
    );
    await framePromise();
    await acceptDialog();
    await until(() => update.mock.calls.length === 1, 'the update');
    expect(update).toHaveBeenCalledWith('7', {
      expiration: endOfDay('2031-03-04')
    });
    expect(cs3.open).not.toHaveBeenCalled(); // the buttons do not open the link's folder
    panel.dispose();
  });
});
