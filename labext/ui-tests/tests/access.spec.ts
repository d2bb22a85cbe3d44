import { expect, test } from '@jupyterlab/galata';

import { LINK_URL } from './helpers';

test.describe('keyboard, links and contrast', () => {
  test('keyboard only: Tab reaches a space and a share, Enter opens them', async ({
    page
  }) => {
    await page.sidebar.openTab('cs3sync-spaces');
    const spaces = page.locator('#cs3sync-spaces');
    await expect(spaces.locator('li.jp-cs3sync-item')).toHaveCount(3);
    // Start from the panel's toolbar and move with Tab only.
    await spaces.locator('.jp-ToolbarButtonComponent').first().focus();
    const cosmology = spaces.getByRole('button', { name: 'Open cosmology' });
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press('Tab');
      if (await cosmology.evaluate(node => node === document.activeElement)) {
        break;
      }
    }
    await expect(cosmology).toBeFocused();
    await page.keyboard.press('Enter');
    await expect(page.locator('.jp-FileBrowser-crumbs')).toContainText(
      'cosmology'
    );

    await page.sidebar.openTab('cs3sync-shares');
    const shares = page.locator('#cs3sync-shares');
    const radium = shares.getByRole('button', { name: 'Open radium' });
    await expect(radium).toBeVisible();
    await shares.getByRole('tab', { name: 'Shared with me' }).focus();
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press('Tab');
      if (await radium.evaluate(node => node === document.activeElement)) {
        break;
      }
    }
    await expect(radium).toBeFocused();
    await page.keyboard.press('Enter');
    await expect(page.locator('.jp-FileBrowser-crumbs')).toContainText(
      'radium'
    );
  });

  test('a public link shows its full address; Copy link copies it and says so', async ({
    page,
    context
  }) => {
    await context.grantPermissions(['clipboard-read', 'clipboard-write']);
    await page.sidebar.openTab('cs3sync-shares');
    const panel = page.locator('#cs3sync-shares');
    await panel.getByRole('tab', { name: 'Public links' }).click();
    const papers = panel
      .locator('li.jp-cs3sync-item')
      .filter({ hasText: 'papers' });
    await expect(papers.locator('.jp-cs3sync-linkUrl')).toContainText(LINK_URL);
    await expect(papers).toContainText('Anyone with the link can');
    await papers.getByRole('button', { name: 'Copy link' }).click();
    await expect(page.getByText('Link copied')).toBeVisible();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    expect(copied.startsWith(LINK_URL)).toBe(true);
    expect(copied.length).toBeGreaterThan(LINK_URL.length);
    await expect(papers.locator('.jp-cs3sync-linkUrl')).toHaveText(copied);
    // Remove asks first; Cancel keeps the link.
    await papers.getByRole('button', { name: 'Remove' }).click();
    const dialog = page.getByRole('dialog');
    await expect(dialog).toContainText('no longer be able to open it');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await expect(papers).toHaveCount(1);
    // A refused expiry brings the dialog back with what was typed and why.
    await papers.getByRole('button', { name: 'Edit' }).click();
    await expect(dialog.getByLabel('Link expiry date')).toBeFocused();
    await dialog.getByLabel('Link expiry date').fill('2020-01-01');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await expect(dialog.getByRole('alert')).toContainText('in the past');
    await expect(dialog.getByLabel('Link expiry date')).toHaveValue(
      '2020-01-01'
    );
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await expect(dialog).toHaveCount(0);
  });
});

test.describe('requests', () => {
  test('opening or refreshing the Shares panel asks for each list once', async ({
    page
  }) => {
    const seen: string[] = [];
    page.on('request', request => {
      const path = request.url().replace(/\?.*$/, '');
      const m = path.match(
        /api\/cs3sync\/(shares\/(incoming|outgoing)|links)$/
      );
      if (m) {
        seen.push(m[1]);
      }
    });
    const once = ['links', 'shares/incoming', 'shares/outgoing'];
    await page.sidebar.openTab('cs3sync-shares');
    const panel = page.locator('#cs3sync-shares');
    await expect(panel.locator('li.jp-cs3sync-item').first()).toBeVisible();
    await page.waitForLoadState('networkidle');
    expect(seen.sort()).toEqual(once);
    seen.length = 0;
    await panel
      .locator('.jp-ToolbarButtonComponent[title="Refresh the shares"]')
      .click();
    await expect.poll(() => seen.length).toBeGreaterThanOrEqual(3);
    await page.waitForLoadState('networkidle');
    expect(seen.sort()).toEqual(once);
    // Shown again after another panel: once more, not twice (onBeforeShow and the poll's wake-up).
    await page.sidebar.openTab('cs3sync-spaces');
    seen.length = 0;
    await page.sidebar.openTab('cs3sync-shares');
    await expect.poll(() => seen.length).toBeGreaterThanOrEqual(3);
    await page.waitForLoadState('networkidle');
    expect(seen.sort()).toEqual(once);
  });
});
