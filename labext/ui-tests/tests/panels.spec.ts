import { expect, test } from '@jupyterlab/galata';

import {
  admin,
  EINSTEIN_HOME,
  LINK_URL,
  openFile,
  saveText,
  screenshot,
  waitSynced
} from './helpers';

/*
 * Robustness rules (2-core CI machines run this beside the rest of the suite): role/title locators,
 * web-first assertions and expect.poll on UI state, never fixed waits; every fault injected into the
 * emulator is cleared in a finally block.
 */

test.describe('cs3sync panels on the demo emulator', () => {
  test('the server extension answers and every plugin activates', async ({
    page
  }) => {
    const version = await page.evaluate(async () => {
      const response = await fetch('/api/cs3sync/version');
      return response.json();
    });
    expect(version.contents_manager).toBe(true);
    await expect(page.getByRole('dialog')).toHaveCount(0); // no "server extension missing" message
    await expect(
      page.locator('.jp-SideBar.jp-mod-left [data-id="cs3sync-spaces"]')
    ).toHaveCount(1);
    await expect(
      page.locator('.jp-SideBar.jp-mod-left [data-id="cs3sync-shares"]')
    ).toHaveCount(1);
    await expect(
      page.locator('.jp-SideBar.jp-mod-right [data-id="cs3sync-sync"]')
    ).toHaveCount(1);
  });

  test('Spaces lists the demo spaces and a click opens one', async ({
    page
  }) => {
    await page.sidebar.openTab('cs3sync-spaces');
    const panel = page.locator('#cs3sync-spaces');
    const items = panel.locator('li.jp-cs3sync-item');
    await expect(items).toHaveCount(3);
    await expect(items.filter({ hasText: 'cosmology' })).toHaveCount(1);
    await expect(items.filter({ hasText: 'relativity-lab' })).toHaveCount(1);
    await expect(panel.locator('.jp-cs3sync-badge-project')).toHaveCount(2);
    await expect(panel.locator('.jp-cs3sync-badge-personal')).toHaveCount(1);
    await panel.screenshot({ path: screenshot('spaces.png') });
    await items.filter({ hasText: 'cosmology' }).click();
    await expect(page.locator('.jp-FileBrowser-crumbs')).toContainText(
      'cosmology'
    );
    await expect(
      page.locator('.jp-DirListing-item', { hasText: 'README.md' })
    ).toBeVisible();
  });

  test('Shares lists incoming, outgoing and links; the dialog shares with marie', async ({
    page
  }) => {
    await page.sidebar.openTab('cs3sync-shares');
    const panel = page.locator('#cs3sync-shares');
    const radium = panel
      .locator('li.jp-cs3sync-item')
      .filter({ hasText: 'radium' });
    await expect(radium).toBeVisible();
    await expect(radium).toContainText('Marie Curie');
    await panel.screenshot({ path: screenshot('shares-incoming.png') });
    await panel.getByRole('tab', { name: 'Shared by me' }).click();
    await expect(
      panel
        .locator('li.jp-cs3sync-item')
        .filter({ hasText: 'shared-with-marie' })
    ).toBeVisible();
    await expect(
      panel.locator('li.jp-cs3sync-item').filter({ hasText: 'data.csv' })
    ).toBeVisible();
    await panel.screenshot({ path: screenshot('shares-outgoing.png') });

    // Open radium (someone else's folder, outside the root) from "Shared with me".
    await panel.getByRole('tab', { name: 'Shared with me' }).click();
    await radium.click();
    await expect(page.locator('.jp-FileBrowser-crumbs')).toContainText(
      'radium'
    );
    await expect(
      page.locator('.jp-DirListing-item', { hasText: 'measurements.csv' })
    ).toBeVisible();

    // Share welcome.ipynb with marie as editor through the context menu dialog.
    await page.filebrowser.openDirectory('/');
    await page
      .locator('.jp-DirListing-item', { hasText: 'welcome.ipynb' })
      .click({ button: 'right' });
    await page.getByRole('menuitem', { name: 'Share…' }).click();
    const dialog = page.getByRole('dialog');
    await expect(dialog).toContainText('Share “welcome.ipynb”');
    // The search field has the focus; nobody matches a nonsense name.
    await expect(dialog.getByRole('searchbox')).toBeFocused();
    await page.keyboard.type('zzzq');
    await expect(dialog.locator('.jp-cs3sync-noMatch')).toContainText(
      'No one matches'
    );
    await dialog.getByRole('searchbox').fill('mar');
    const candidate = dialog
      .locator('.jp-cs3sync-found')
      .getByRole('listitem')
      .filter({ hasText: 'Marie Curie' });
    // The role picker comes after the person and says whose role it is.
    await candidate
      .getByRole('combobox', { name: 'Role for Marie Curie' })
      .selectOption('editor');
    await candidate.getByRole('button', { name: 'Share' }).click();
    await expect(
      dialog.locator('.jp-cs3sync-grantees').getByRole('listitem')
    ).toContainText(['Marie Curie']);
    // Someone who already has access is marked, not offered a second share.
    await dialog.getByRole('searchbox').fill('mar');
    await expect(candidate).toContainText('has access as editor');
    await expect(candidate.getByRole('button', { name: 'Share' })).toHaveCount(
      0
    );
    await dialog.getByRole('button', { name: 'Create link' }).click();
    const links = dialog.locator('.jp-cs3sync-links').getByRole('listitem');
    await expect(links).toHaveCount(1);
    await expect(
      links.getByRole('button', { name: 'Copy link' })
    ).toHaveAttribute('title', new RegExp(LINK_URL.replace(/\./g, '\\.')));
    await dialog.locator('.jp-Dialog-content').screenshot({
      path: screenshot('share-dialog.png')
    });
    await dialog.getByRole('button', { name: 'Close' }).click();
    await expect(dialog).toHaveCount(0);
    await page.sidebar.openTab('cs3sync-shares');
    await panel.getByRole('tab', { name: 'Shared by me' }).click();
    await expect(
      panel.locator('li.jp-cs3sync-item').filter({ hasText: 'welcome.ipynb' })
    ).toContainText('editor');
  });

  test('Public links: copy the URL and edit expiry and password', async ({
    page
  }) => {
    await page.sidebar.openTab('cs3sync-shares');
    const panel = page.locator('#cs3sync-shares');
    await panel.getByRole('tab', { name: 'Public links' }).click();
    const papers = panel
      .locator('li.jp-cs3sync-item')
      .filter({ hasText: 'papers' });
    await expect(papers).toHaveCount(1);
    await expect(
      papers.getByRole('button', { name: 'Copy link' })
    ).toHaveAttribute('title', new RegExp(LINK_URL.replace(/\./g, '\\.')));
    await papers.getByRole('button', { name: 'Edit' }).click();
    const dialog = page.getByRole('dialog');
    await expect(dialog).toContainText('Edit the public link of “papers”');
    await dialog.getByLabel('Link expiry date').fill('2031-03-04');
    await dialog.getByLabel('Link password').fill('pw-for-the-lab');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await expect(dialog).toHaveCount(0);
    await expect(papers).toContainText('password');
    await expect(papers).toContainText('expires');
    await panel.screenshot({ path: screenshot('shares-links.png') });
    // And back: no expiry, no password.
    await papers.getByRole('button', { name: 'Edit' }).click();
    await dialog.getByRole('button', { name: 'Never' }).click();
    await dialog.getByLabel('Remove the password').check();
    await dialog.getByRole('button', { name: 'Save' }).click();
    await expect(dialog).toHaveCount(0);
    await expect(papers).not.toContainText('password');
    await expect(papers).not.toContainText('expires');
  });

  test('the quota bar shows the emulator numbers', async ({ page }) => {
    await admin('storage/quota', {
      total: 10_000_000_000,
      used: 7_800_000_000
    });
    try {
      await page.reload();
      const bar = page
        .locator('.jp-FileBrowser')
        .getByRole('progressbar', { name: 'Storage quota' });
      await expect(bar).toHaveAttribute('aria-valuenow', '78');
      await expect(bar).toHaveClass(/jp-mod-warning/);
      await expect(page.locator('.jp-cs3sync-quotaText')).toContainText(
        '7.8 GB of 10.0 GB'
      );
      // The status item: used / total, its bar the same colour as the browser's.
      const item = page.locator('.jp-cs3sync-quotaStatus');
      await expect(item).toContainText('7.8 GB of 10.0 GB');
      await expect(item.getByRole('progressbar')).toHaveClass(/jp-mod-warning/);
      const colours = await page.evaluate(() =>
        Array.from(document.querySelectorAll('.jp-cs3sync-quotaFill')).map(
          n => getComputedStyle(n).backgroundColor
        )
      );
      expect(new Set(colours).size).toBe(1);
      // A save refreshes it (no waiting for the minute poll).
      await admin('storage/quota', {
        total: 10_000_000_000,
        used: 9_500_000_000
      });
      await saveText(page, 'quota-refresh.md', '# refresh\n');
      await expect(item).toContainText('9.5 GB of 10.0 GB', {
        timeout: 10000
      });
      await expect(item.getByRole('progressbar')).toHaveClass(
        /jp-mod-critical/
      );
      await page
        .locator('.jp-FileBrowser')
        .screenshot({ path: screenshot('quota.png') });
    } finally {
      await admin('storage/quota', { total: null, used: null });
    }
  });

  test('a lock taken after opening names the person within 5 s and makes the editor read-only', async ({
    page
  }) => {
    await openFile(page, 'papers/annus-mirabilis.md');
    const editor = page.locator('.jp-MainAreaWidget:visible .cm-editor');
    await expect(editor).toBeVisible();
    await expect(editor).not.toHaveClass(/jp-mod-readOnly/);
    await admin('storage/lock', {
      path: `${EINSTEIN_HOME}/papers/annus-mirabilis.md`,
      app: 'cernbox-office',
      user: 'marie'
    });
    const indicator = page.locator('.jp-cs3sync-lockIndicator');
    // The person, not the application; detected by the editor's 4 s check (5 s budget).
    await expect(indicator).toHaveText('Locked by Marie Curie', {
      timeout: 5000
    });
    await expect(indicator).toHaveAttribute('title', /cernbox-office/);
    await expect(editor).toHaveClass(/jp-mod-readOnly/);
    const before = await editor.locator('.cm-content').innerText();
    await editor.locator('.cm-content').click();
    await page.keyboard.type('typed while locked');
    expect(await editor.locator('.cm-content').innerText()).toBe(before);
    // One chip: JupyterLab's own read-only label is not shown beside ours.
    await expect(indicator).toHaveCount(1);
    await expect(
      page.locator(
        '.jp-MainAreaWidget:visible [data-jp-item-name="read-only-indicator"]:visible'
      )
    ).toHaveCount(0);
    await expect(page.locator('.jp-cs3sync-mod-foreignLock')).toHaveCount(1);
    await page
      .locator('.jp-MainAreaWidget.jp-cs3sync-mod-foreignLock')
      .screenshot({
        path: screenshot('lock.png')
      });
  });

  test('with the storage down a save is pending and clears when it returns', async ({
    page
  }) => {
    const status = page.locator('.jp-cs3sync-syncItem');
    await expect(status).toHaveAttribute('data-state', 'online');
    await admin('grpc/outage');
    try {
      await saveText(
        page,
        'offline-notes.md',
        '# Written while the storage was down\n'
      );
      await expect(status).toHaveAttribute('data-pending', /^[1-9]/);
      await expect(status).toContainText('pending');
      // The item says offline during the outage, in the warning colour (not the status bar's text colour).
      await expect(status).toHaveAttribute('data-state', 'offline', {
        timeout: 30000
      });
      await expect(status).toContainText('CERNBox: offline');
      const colours = await status.evaluate(node => {
        const text = node.querySelector('.jp-StatusBar-TextItem') ?? node;
        const bar = node.closest('#jp-main-statusbar') ?? document.body;
        return [getComputedStyle(text).color, getComputedStyle(bar).color];
      });
      expect(colours[0]).not.toBe(colours[1]);
      await page.sidebar.openTab('cs3sync-sync');
      const panel = page.locator('#cs3sync-sync');
      const entry = panel
        .getByRole('listitem')
        .filter({ hasText: 'offline-notes.md' });
      await expect(entry).toBeVisible();
      // The short message of the client, never grpc-core's transport text.
      await expect(panel).not.toContainText('ipv4:');
      await expect(panel).not.toContainText('failed to connect');
      await expect(panel).not.toContainText('/eos/'); // Jupyter paths, even in the details
      await panel.screenshot({ path: screenshot('sync.png') });
    } finally {
      await admin('grpc/restart');
    }
    await expect(status).toHaveAttribute('data-pending', '0', {
      timeout: 120000
    });
    await expect(status).toHaveAttribute('data-state', 'online');
    await expect(status).toContainText('synced');
    await expect(page.locator('#cs3sync-sync')).toContainText(
      'Everything is saved to the storage.'
    );
  });

  test('a throttled multi-MiB upload shows its progress in the Sync item', async ({
    page
  }) => {
    const status = page.locator('.jp-cs3sync-syncItem');
    await expect(status).toHaveAttribute('data-state', 'online');
    const MiB = 1024 * 1024;
    const size = 12 * MiB;
    // 12 MiB, over tus in 1 MiB PATCHes (jupyter_server_test_config.py), each throttled to 512 kB/s:
    // about 25 s on the wire, with a confirmed offset every 2 s for the 3 s journal poll to see move.
    const rule = await admin('faults', {
      kind: 'http',
      match: 'PATCH',
      action: { type: 'throttle', bytes_per_second: 512_000 },
      times: 100
    });
    try {
      // Saved through JupyterLab's contents service as base64 (what the file browser's upload does);
      // the contents manager answers after its write-through timeout while the upload goes on.
      await page.evaluate(async (bytes: number) => {
        await (window as any).jupyterapp.serviceManager.contents.save(
          'big-upload.bin',
          {
            type: 'file',
            format: 'base64',
            content: 'A'.repeat(Math.ceil(bytes / 3) * 4)
          }
        );
      }, size);
      const bar = page
        .locator('#jp-main-statusbar')
        .getByRole('progressbar', { name: 'Upload progress' });
      await expect(bar).toBeVisible({ timeout: 60000 });
      const percent = async () =>
        Number((await bar.getAttribute('aria-valuenow')) ?? 'NaN');
      // It moves: two different values below 100 %.
      let first = 0;
      await expect
        .poll(async () => (first = await percent()))
        .toBeGreaterThan(0);
      expect(first).toBeLessThan(100);
      await expect.poll(percent).toBeGreaterThan(first);
      await expect(status).toHaveAttribute('data-pending', /^[1-9]/);
      await page.sidebar.openTab('cs3sync-sync');
      const panel = page.locator('#cs3sync-sync');
      await expect(
        panel.getByRole('progressbar', { name: 'Upload of big-upload.bin' })
      ).toBeVisible();
      await page.locator('#cs3sync-sync').screenshot({
        path: screenshot('sync-upload.png')
      });
    } finally {
      await admin('faults/clear', { id: rule.id });
    }
    await expect(status).toHaveAttribute('data-pending', '0', {
      timeout: 120000
    });
    await expect(
      page.locator('#jp-main-statusbar').getByRole('progressbar', {
        name: 'Upload progress'
      })
    ).toHaveCount(0);
  });

  test('a conflict is listed and "Open conflict copy" opens it', async ({
    page
  }) => {
    const status = page.locator('.jp-cs3sync-syncItem');
    await expect(status).toHaveAttribute('data-state', 'online');
    await saveText(page, 'conflict-demo.md', '# First version\n');
    // Saves reply once journaled: wait until the first version is on the storage.
    await waitSynced(page, expect);
    await page.evaluate(async () => {
      // Read it back, so the server knows the version Lab saw.
      await (window as any).jupyterapp.serviceManager.contents.get(
        'conflict-demo.md'
      );
    });
    await admin('grpc/outage');
    try {
      // Lab saves while the storage is away: journaled against the version it saw ...
      await saveText(page, 'conflict-demo.md', "# Lab's version\n");
      await expect(status).toHaveAttribute('data-pending', /^[1-9]/);
      // ... and meanwhile someone else writes the file on the storage.
      await admin('storage/external_write', {
        path: `${EINSTEIN_HOME}/conflict-demo.md`,
        data: "# Someone else's version\n"
      });
    } finally {
      await admin('grpc/restart');
    }
    await page.sidebar.openTab('cs3sync-sync');
    const panel = page.locator('#cs3sync-sync');
    const conflict = panel
      .locator('.jp-cs3sync-entry.jp-mod-conflict')
      .filter({ hasText: 'conflict-demo.md' });
    await expect(conflict).toHaveCount(1, { timeout: 120000 });
    await expect(status).toContainText('1 problem');
    await expect(conflict).toContainText('was changed by someone else');
    await expect(panel).not.toContainText('/eos/'); // Jupyter paths, not storage paths
    const open = conflict.getByRole('button', { name: 'Open conflict copy' });
    await expect(open).toHaveAttribute('title', /conflicted copy/);
    await panel.screenshot({ path: screenshot('sync-conflict.png') });
    await open.click();
    const tab = page
      .locator('#jp-main-dock-panel')
      .getByRole('tab', { name: /conflict-demo \(conflicted copy/ });
    await expect(tab).toBeVisible();
    await expect(
      page.locator('.jp-MainAreaWidget:visible .cm-content')
    ).toContainText("Lab's version");
    // The remote file kept the other person's version.
    const remote = await page.evaluate(async () => {
      const model = await (
        window as any
      ).jupyterapp.serviceManager.contents.get('conflict-demo.md', {
        content: true,
        format: 'text',
        type: 'file'
      });
      return model.content;
    });
    expect(remote).toContain("Someone else's version");
    // Mark it resolved (the copy stays).
    await conflict.getByRole('button', { name: 'Mark resolved' }).click();
    await expect(conflict).toHaveCount(0);
    await expect(panel).toContainText('No conflicts.');
  });
});
