// Copyright (c) cs3sync contributors. Apache-2.0.
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import { INotebookCompare } from './nbdiff';
import { requestAPI } from './request';
import {
  IGroup,
  IJournal,
  ILink,
  ILockStatus,
  IQuota,
  IShare,
  ISpace,
  IUser,
  IVersion,
  Role
} from './types';

/** Arguments of a new share. */
export interface IShareRequest {
  path: string;
  grantee_type: 'user' | 'group';
  grantee_id: string;
  grantee_idp?: string;
  role: Role;
}

/** Arguments of a new or updated public link. */
export interface ILinkRequest {
  path?: string;
  role?: Role;
  password?: string;
  expiration?: number | null;
  display_name?: string;
}

/** The typed client of the cs3sync REST API, shared by every plugin. */
export class CS3Client {
  constructor(options: CS3Client.IOptions = {}) {
    this.serverSettings =
      options.serverSettings ?? ServerConnection.makeSettings();
  }

  readonly serverSettings: ServerConnection.ISettings;

  /** Emitted after this client changed shares or links (so panels refresh). */
  get sharesChanged(): ISignal<this, void> {
    return this._sharesChanged;
  }

  /** Emitted after a journal entry was retried or discarded. */
  get journalChanged(): ISignal<this, void> {
    return this._journalChanged;
  }

  private _get<T>(endPoint: string): Promise<T> {
    return requestAPI<T>(endPoint, this.serverSettings, { method: 'GET' });
  }

  private _send<T>(endPoint: string, method: string, body?: any): Promise<T> {
    return requestAPI<T>(endPoint, this.serverSettings, { method, body });
  }

  version(): Promise<IVersion> {
    return this._get<IVersion>('version');
  }

  async spaces(): Promise<ISpace[]> {
    return (await this._get<{ spaces: ISpace[] }>('spaces')).spaces;
  }

  async incomingShares(): Promise<IShare[]> {
    return (await this._get<{ shares: IShare[] }>('shares/incoming')).shares;
  }

  async outgoingShares(path?: string): Promise<IShare[]> {
    const query = path ? URLExt.objectToQueryString({ path }) : '';
    return (await this._get<{ shares: IShare[] }>('shares/outgoing' + query))
      .shares;
  }

  async createShare(request: IShareRequest): Promise<IShare> {
    const share = await this._send<IShare>('shares', 'POST', request);
    this._sharesChanged.emit();
    return share;
  }

  async updateShare(id: string, role: Role): Promise<IShare> {
    const share = await this._send<IShare>(
      'shares/' + encodeURIComponent(id),
      'PATCH',
      { role }
    );
    this._sharesChanged.emit();
    return share;
  }

  async removeShare(id: string): Promise<void> {
    await this._send<void>('shares/' + encodeURIComponent(id), 'DELETE');
    this._sharesChanged.emit();
  }

  async links(path?: string): Promise<ILink[]> {
    const query = path ? URLExt.objectToQueryString({ path }) : '';
    return (await this._get<{ links: ILink[] }>('links' + query)).links;
  }

  async createLink(request: ILinkRequest): Promise<ILink> {
    const link = await this._send<ILink>('links', 'POST', request);
    this._sharesChanged.emit();
    return link;
  }

  async updateLink(id: string, request: ILinkRequest): Promise<ILink> {
    const link = await this._send<ILink>(
      'links/' + encodeURIComponent(id),
      'PATCH',
      request
    );
    this._sharesChanged.emit();
    return link;
  }

  async removeLink(id: string): Promise<void> {
    await this._send<void>('links/' + encodeURIComponent(id), 'DELETE');
    this._sharesChanged.emit();
  }

  async findUsers(q: string): Promise<IUser[]> {
    const query = URLExt.objectToQueryString({ q });
    return (await this._get<{ users: IUser[] }>('users' + query)).users;
  }

  async findGroups(q: string): Promise<IGroup[]> {
    const query = URLExt.objectToQueryString({ q });
    return (await this._get<{ groups: IGroup[] }>('groups' + query)).groups;
  }

  quota(path = ''): Promise<IQuota> {
    return this._get<IQuota>('quota' + URLExt.objectToQueryString({ path }));
  }

  journal(): Promise<IJournal> {
    return this._get<IJournal>('journal');
  }

  async retry(id: number): Promise<void> {
    await this._send<void>(`journal/${id}/retry`, 'POST');
    this._journalChanged.emit();
  }

  async discard(id: number): Promise<void> {
    await this._send<void>(`journal/${id}/discard`, 'POST');
    this._journalChanged.emit();
  }

  /** A conflict: put this version over the one on the storage (the conflict copy stays). */
  async keepMine(id: number): Promise<void> {
    await this._send<void>(`journal/${id}/keep-mine`, 'POST');
    this._journalChanged.emit();
  }

  /** A conflict or failure dealt with: the storage's version stays ("Keep theirs", "Mark resolved"). */
  async resolve(id: number): Promise<void> {
    await this._send<void>(`journal/${id}/resolve`, 'POST');
    this._journalChanged.emit();
  }

  /** A notebook conflict: nbdime's diff from the storage's version to the conflicted copy. */
  compare(id: number): Promise<INotebookCompare> {
    return this._get<INotebookCompare>(`journal/${id}/compare`);
  }

  /** The lock heartbeat settings of the server (seconds). */
  lockSettings(): Promise<{
    enabled?: boolean;
    heartbeat?: number;
    expiration?: number;
  }> {
    return this._get('locks');
  }

  /** Open (or refresh: same call) a lock session on a document. */
  lockOpen(path: string, session: string): Promise<ILockStatus> {
    return this._send<ILockStatus>('locks', 'POST', { path, session });
  }

  /** Check a lock session (a read of the lock; no refresh). */
  lockCheck(path: string, session: string): Promise<ILockStatus> {
    return this._get<ILockStatus>(
      'locks' + URLExt.objectToQueryString({ path, session })
    );
  }

  /** Close a lock session. */
  async lockClose(path: string, session: string): Promise<void> {
    await this._send<void>(
      'locks' + URLExt.objectToQueryString({ path, session }),
      'DELETE'
    );
  }

  private _sharesChanged = new Signal<this, void>(this);
  private _journalChanged = new Signal<this, void>(this);
}

export namespace CS3Client {
  export interface IOptions {
    serverSettings?: ServerConnection.ISettings;
  }
}
