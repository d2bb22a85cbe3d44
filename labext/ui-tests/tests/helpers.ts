import * as path from 'path';

/** The emulator's loopback admin endpoint (see jupyter_server_test_config.py). */
export const ADMIN =
  process.env.CS3SYNC_UI_ADMIN ||
  `http://127.0.0.1:${process.env.CS3SYNC_UI_HTTP_PORT || '19143'}`;

export const EINSTEIN_HOME = '/eos/user/e/einstein';

/** The public link URL template the test server is configured with. */
export const LINK_URL = 'https://cernbox.example.org/s/';

/** This run's secret of the emulator's admin API (set by tests/test_browser.py). */
export const ADMIN_SECRET = process.env.CS3SYNC_UI_ADMIN_SECRET || '';

/** POST to the emulator's admin API. */
export async function admin(route: string, body: any = {}): Promise<any> {
  const response = await fetch(`${ADMIN}/_admin/${route}`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      'X-CS3Sync-Admin': ADMIN_SECRET
    },
    body: JSON.stringify(body)
  });
  if (!response.ok) {
    throw new Error(
      `admin ${route}: ${response.status} ${await response.text()}`
    );
  }
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** Where the README screenshots go. */
export function screenshot(name: string): string {
  return path.resolve(__dirname, '..', '..', '..', 'docs', 'screenshots', name);
}

/** Open a file (path from the server root) in its default editor. */
export async function openFile(page: any, path: string): Promise<void> {
  await page.evaluate(async (p: string) => {
    await (window as any).jupyterapp.commands.execute('docmanager:open', {
      path: p
    });
  }, path);
}

/** Save a text file through JupyterLab's contents service (what editors call). */
export async function saveText(
  page: any,
  path: string,
  content: string
): Promise<void> {
  await page.evaluate(
    async ([p, c]: [string, string]) => {
      await (window as any).jupyterapp.serviceManager.contents.save(p, {
        type: 'file',
        format: 'text',
        content: c
      });
    },
    [path, content]
  );
}

/** Wait until the journal has nothing pending (the saves so far are on the storage). */
export async function waitSynced(page: any, expect: any): Promise<void> {
  await expect
    .poll(
      () =>
        page.evaluate(async () => {
          const app = (window as any).jupyterapp;
          const settings = app.serviceManager.serverSettings;
          const response = await fetch(
            settings.baseUrl + 'api/cs3sync/journal',
            { headers: { 'X-XSRFToken': '' } }
          );
          return (await response.json()).pending;
        }),
      { timeout: 60000 }
    )
    .toBe(0);
}

/** Lab saves `name` while the storage is away and someone else writes it meanwhile: a conflict. */
export async function makeConflict(
  page: any,
  expect: any,
  name: string,
  mine: string,
  theirs: string
): Promise<void> {
  await saveText(page, name, '# First version\n');
  // Saves reply once journaled: wait until the first version is on the storage.
  await waitSynced(page, expect);
  await page.evaluate(async (p: string) => {
    await (window as any).jupyterapp.serviceManager.contents.get(p);
  }, name);
  await admin('grpc/outage');
  try {
    await saveText(page, name, mine);
    await admin('storage/external_write', {
      path: `${EINSTEIN_HOME}/${name}`,
      data: theirs
    });
  } finally {
    await admin('grpc/restart');
  }
}
