import { showErrorMessage } from '@jupyterlab/apputils';
import { ServerConnection } from '@jupyterlab/services';

import { CS3Client } from '../client';
import { checkServer } from '../index';
import { CS3APIError } from '../request';

jest.mock('@jupyterlab/apputils', () => ({
  ...jest.requireActual('@jupyterlab/apputils'),
  showErrorMessage: jest.fn()
}));

const shown = showErrorMessage as jest.MockedFunction<typeof showErrorMessage>;

function client(version: () => Promise<any>): CS3Client {
  const c = new CS3Client({
    serverSettings: ServerConnection.makeSettings({ baseUrl: 'http://x/' })
  });
  jest.spyOn(c, 'version').mockImplementation(version);
  return c;
}

beforeEach(() => shown.mockReset());

describe('checkServer', () => {
  it('accepts the same version quietly', async () => {
    const server = await checkServer(
      client(async () => ({
        name: 'cs3sync',
        version: '0.1.0',
        api: 1,
        contents_manager: true
      }))
    );
    expect(server?.version).toBe('0.1.0');
    expect(shown).not.toHaveBeenCalled();
  });

  it('explains a missing server extension', async () => {
    const server = await checkServer(
      client(async () => {
        throw new CS3APIError('Not Found', 404, 'not-found');
      })
    );
    expect(server).toBeNull();
    expect(shown).toHaveBeenCalledTimes(1);
    expect(shown.mock.calls[0][0]).toBe('cs3sync server extension unavailable');
    expect(String(shown.mock.calls[0][1])).toContain('not installed');
  });

  it('warns about a version mismatch', async () => {
    await checkServer(
      client(async () => ({
        name: 'cs3sync',
        version: '9.9.9',
        api: 1,
        contents_manager: true
      }))
    );
    expect(shown.mock.calls[0][0]).toBe('cs3sync version mismatch');
    expect(String(shown.mock.calls[0][1])).toContain('9.9.9');
  });
});
