import { ServerConnection } from '@jupyterlab/services';

import { CS3Client } from '../client';
import { requestAPI } from '../request';

jest.mock('../request', () => ({
  ...jest.requireActual('../request'),
  requestAPI: jest.fn()
}));

const mocked = requestAPI as jest.MockedFunction<typeof requestAPI>;

/** Answer each endpoint from a map, recording the calls. */
function serve(responses: { [endpoint: string]: any }): void {
  mocked.mockImplementation(async (endPoint: string) => {
    const key = endPoint.split('?')[0];
    if (!(key in responses)) {
      throw new Error('unexpected ' + endPoint);
    }
    return responses[key];
  });
}

const client = new CS3Client({
  serverSettings: ServerConnection.makeSettings({ baseUrl: 'http://x/' })
});

beforeEach(() => mocked.mockReset());

describe('CS3Client', () => {
  it('unwraps listings', async () => {
    serve({
      spaces: { spaces: [{ id: 's', name: 'cosmology' }] },
      'shares/incoming': { shares: [{ id: '1' }] },
      'shares/outgoing': { shares: [{ id: '2' }] },
      links: { links: [{ id: '3' }] },
      users: { users: [{ id: 'u' }] },
      groups: { groups: [{ id: 'g' }] }
    });
    expect((await client.spaces())[0].name).toBe('cosmology');
    expect((await client.incomingShares())[0].id).toBe('1');
    expect((await client.outgoingShares('a b'))[0].id).toBe('2');
    expect(mocked.mock.calls[2][0]).toBe('shares/outgoing?path=a%20b');
    expect((await client.links())[0].id).toBe('3');
    expect((await client.findUsers('ma'))[0].id).toBe('u');
    expect(mocked.mock.calls[4][0]).toBe('users?q=ma');
    expect((await client.findGroups('ph'))[0].id).toBe('g');
  });

  it('signals share changes', async () => {
    serve({ shares: { id: '9' }, 'shares/9': null, links: { id: 'l' } });
    const seen: string[] = [];
    client.sharesChanged.connect(() => seen.push('changed'));
    await client.createShare({
      path: 'papers',
      grantee_type: 'user',
      grantee_id: 'marie',
      role: 'editor'
    });
    expect(mocked.mock.calls[0][2]).toEqual({
      method: 'POST',
      body: {
        path: 'papers',
        grantee_type: 'user',
        grantee_id: 'marie',
        role: 'editor'
      }
    });
    await client.updateShare('9', 'viewer');
    expect(mocked.mock.calls[1][2]).toEqual({
      method: 'PATCH',
      body: { role: 'viewer' }
    });
    await client.removeShare('9');
    expect(mocked.mock.calls[2][2]).toEqual({
      method: 'DELETE',
      body: undefined
    });
    await client.createLink({ path: 'papers', password: 'x' });
    expect(seen).toHaveLength(4);
  });

  it('drives the journal and locks', async () => {
    serve({
      journal: { state: 'offline', pending: 2, counts: {}, entries: [] },
      'journal/4/retry': null,
      'journal/4/discard': null,
      locks: { path: 'a', locked: true, read_only: false, holder: null }
    });
    expect((await client.journal()).state).toBe('offline');
    let changed = 0;
    client.journalChanged.connect(() => changed++);
    await client.retry(4);
    await client.discard(4);
    expect(changed).toBe(2);
    const status = await client.lockOpen('a', 'session');
    expect(status.locked).toBe(true);
    await client.lockClose('a', 'session');
    const last = mocked.mock.calls[mocked.mock.calls.length - 1];
    expect(last[0]).toBe('locks?path=a&session=session');
    expect(last[2]).toEqual({ method: 'DELETE', body: undefined });
  });

  it('asks the quota of a path', async () => {
    serve({ quota: { used: 1, total: 2, unlimited: false } });
    expect((await client.quota('Spaces/cosmology')).total).toBe(2);
    expect(mocked.mock.calls[0][0]).toBe('quota?path=Spaces%2Fcosmology');
  });
});
