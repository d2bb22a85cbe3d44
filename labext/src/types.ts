// Copyright (c) cs3sync contributors. Apache-2.0.
// JSON shapes of the cs3sync REST API (contents/handlers.py).

export interface IQuota {
  path?: string;
  used: number;
  total: number;
  unlimited: boolean;
}

export interface IVersion {
  name: string;
  version: string;
  api: number;
  contents_manager: boolean;
  /** The storage's name in the UI (c.CS3SyncAPI.product_name), e.g. "CERNBox". */
  product_name?: string;
}

export interface ISpace {
  id: string;
  name: string;
  type: string;
  storage_path: string;
  /** Path to open in the file browser, or null when the server cannot serve it. */
  api_path: string | null;
  quota: IQuota | null;
}

export interface IPrincipal {
  type: 'user' | 'group';
  id: string;
  idp?: string;
  display_name: string;
  mail?: string;
}

export type Role = 'viewer' | 'editor' | 'uploader' | 'manager' | 'custom';

export interface IShare {
  id: string;
  name: string;
  type: 'file' | 'directory';
  storage_path: string;
  api_path: string | null;
  role: Role;
  /** Outgoing shares: who receives it. */
  grantee?: IPrincipal;
  /** Incoming shares: who shared it. */
  creator?: IPrincipal;
  state?: 'accepted' | 'pending' | 'rejected' | 'invalid';
  expiration: number | null;
  ctime?: number | null;
}

export interface ILink {
  id: string;
  token: string;
  url: string | null;
  name: string;
  type: 'file' | 'directory';
  storage_path: string;
  api_path: string | null;
  role: Role;
  password_protected: boolean;
  expiration: number | null;
  display_name: string;
}

export interface IUser {
  id: string;
  idp: string;
  username: string;
  display_name: string;
  mail: string;
}

export interface IGroup {
  id: string;
  idp: string;
  name: string;
  display_name: string;
  mail: string;
}

export type SyncState = 'online' | 'offline' | 'auth';

/** A save's merge with someone else's change (cs3sync/rebase.py), or why there was none. */
export interface IMergeRecord {
  merged: boolean;
  /** The other person's display name; null: CS3 does not say who ("a change on the storage"). */
  with?: string | null;
  /** How many cells (notebook) or lines (text) their change touched. */
  changes?: number;
  unit?: 'cell' | 'line';
  /** Where both sides changed the same place (1-based, in the version both started from). */
  collisions?: number[];
  /** The server's one line, e.g. "merged with Marie Curie's change, 2 cells". */
  message: string;
}

export interface IJournalEntry {
  id: number;
  op: string;
  path: string;
  api_path: string | null;
  src_api_path?: string | null;
  state: string;
  blocked_reason: string | null;
  attempts: number;
  last_error: string | null;
  size: number | null;
  /** Bytes confirmed by the storage, for uploads in progress. */
  uploaded: number | null;
  /** 0..1 upload progress, or null. */
  progress: number | null;
  conflict_api_path: string | null;
  /** A merge with someone else's change, or why there was none. */
  merge?: IMergeRecord | null;
  created: number | null;
  updated: number | null;
  finished?: number | null;
}

export interface IJournal {
  state: SyncState;
  last_error: string | null;
  /** The engine itself: 'journal_error' (its journal cannot be written: disk full?), 'dead' (being restarted). */
  health?: 'ok' | 'journal_error' | 'dead' | 'stopped';
  health_error?: string | null;
  counts: { [state: string]: number };
  pending: number;
  entries: IJournalEntry[];
  /** The latest saves merged with someone else's change (newest first). */
  merged?: IJournalEntry[];
}

export interface ILockStatus {
  path: string;
  locked: boolean;
  read_only: boolean;
  /** Who holds it: the person's name when the storage says, else the application. */
  holder: string | null;
  /** The application they hold it with. */
  holder_app?: string | null;
}
