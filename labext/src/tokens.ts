// Copyright (c) cs3sync contributors. Apache-2.0.
import { Token } from '@lumino/coreutils';

import { CS3Client } from './client';
import { IVersion } from './types';

/** The shared cs3sync REST client and the server extension's status. */
export interface ICS3Client {
  readonly client: CS3Client;
  /** The server extension's version answer, or null if it is missing. */
  readonly server: IVersion | null;
  /** Open a storage path (as returned by the API) in the file browser or an editor. */
  open(apiPath: string, type?: 'file' | 'directory'): Promise<void>;
}

export const ICS3Client = new Token<ICS3Client>(
  '@cs3sync/labextension:ICS3Client',
  'The cs3sync REST client shared by the Spaces, Shares, Quota, Sync and Locking plugins.'
);
