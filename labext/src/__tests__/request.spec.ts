import { ServerConnection } from '@jupyterlab/services';

import { CS3APIError, errorKind, requestAPI } from '../request';

const settings = ServerConnection.makeSettings({ baseUrl: 'http://x/base/' });

function respond(status: number, body: string): void {
  jest
    .spyOn(ServerConnection, 'makeRequest')
    .mockResolvedValue(new Response(body || null, { status }));
}

afterEach(() => jest.restoreAllMocks());

describe('requestAPI', () => {
  it('joins the namespace and parses JSON', async () => {
    respond(200, '{"spaces": []}');
    const data = await requestAPI<any>('spaces', settings);
    expect(data).toEqual({ spaces: [] });
    const url = (ServerConnection.makeRequest as jest.Mock).mock.calls[0][0];
    expect(url).toBe('http://x/base/api/cs3sync/spaces');
  });

  it('sends objects as JSON', async () => {
    respond(201, '{"id": "1"}');
    await requestAPI<any>('shares', settings, {
      method: 'POST',
      body: { path: 'a', role: 'viewer' }
    });
    const init = (ServerConnection.makeRequest as jest.Mock).mock.calls[0][1];
    expect(init.method).toBe('POST');
    expect(JSON.parse(init.body)).toEqual({ path: 'a', role: 'viewer' });
    expect(init.headers['Content-Type']).toBe('application/json');
  });

  it('returns null for 204', async () => {
    respond(204, '');
    expect(await requestAPI('shares/1', settings, { method: 'DELETE' })).toBe(
      null
    );
  });

  it.each([
    [400, 'bad-request'],
    [403, 'forbidden'],
    [404, 'not-found'],
    [409, 'conflict'],
    [423, 'locked'],
    [503, 'offline'],
    [507, 'quota'],
    [502, 'server']
  ])('turns %i into a typed error', async (status, kind) => {
    respond(status, JSON.stringify({ message: 'short message' }));
    const error: any = await requestAPI('x', settings).catch((e: any) => e);
    expect(error).toBeInstanceOf(CS3APIError);
    expect(error.status).toBe(status);
    expect(error.kind).toBe(kind);
    expect(error.message).toBe('short message');
  });

  it('turns network failures into offline-like errors', async () => {
    jest
      .spyOn(ServerConnection, 'makeRequest')
      .mockRejectedValue(new TypeError('Failed to fetch'));
    const error: any = await requestAPI('x', settings).catch((e: any) => e);
    expect(error.kind).toBe('network');
    expect(error.status).toBe(0);
  });

  it('maps statuses', () => {
    expect(errorKind(504)).toBe('offline');
    expect(errorKind(412)).toBe('conflict');
    expect(errorKind(418)).toBe('server');
  });
});
