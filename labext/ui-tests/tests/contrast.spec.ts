import { expect, test } from '@jupyterlab/galata';

import {
  admin,
  EINSTEIN_HOME,
  makeConflict,
  openFile,
  saveText,
  screenshot,
  waitSynced
} from './helpers';

/**
 * WCAG AA (4.5:1) on every visible element of the extension that draws text, in the dark theme.
 * Colours are read from the computed style; backgrounds are composited up the ancestors, so a
 * translucent chip over a dark panel is measured as it is seen.
 */
async function lowContrast(page: any): Promise<string[]> {
  return page.evaluate(() => {
    type RGBA = [number, number, number, number];
    const parse = (value: string): RGBA => {
      const m = value.match(/rgba?\(([^)]+)\)/);
      if (!m) {
        return [0, 0, 0, 0];
      }
      const parts = m[1]
        .split(/[\s,/]+/)
        .filter(Boolean)
        .map(Number);
      return [parts[0], parts[1], parts[2], parts.length > 3 ? parts[3] : 1];
    };
    const over = (top: RGBA, below: RGBA): RGBA => {
      const a = top[3] + below[3] * (1 - top[3]);
      if (a === 0) {
        return [0, 0, 0, 0];
      }
      const mix = (i: number) =>
        (top[i] * top[3] + below[i] * below[3] * (1 - top[3])) / a;
      return [mix(0), mix(1), mix(2), a];
    };
    const background = (node: Element | null): RGBA => {
      const layers: RGBA[] = [];
      for (let n = node; n; n = n.parentElement) {
        const bg = parse(getComputedStyle(n).backgroundColor);
        if (bg[3] > 0) {
          layers.push(bg);
          if (bg[3] >= 1) {
            break;
          }
        }
      }
      let color: RGBA = [0, 0, 0, 1]; // below everything: the dark theme's page
      for (const layer of layers.reverse()) {
        color = over(layer, color);
      }
      return color;
    };
    const luminance = (c: RGBA) => {
      const ch = c.slice(0, 3).map(v => {
        const s = v / 255;
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2];
    };
    const failures: string[] = [];
    const roots = document.querySelectorAll(
      '[class*="jp-cs3sync"], [id^="cs3sync-"]'
    );
    const seen = new Set<Element>();
    for (const root of Array.from(roots)) {
      if (/jp-cs3sync-mod-/.test(root.className)) {
        continue; // a modifier on JupyterLab's own widget (a locked document): not our element
      }
      for (const el of [root, ...Array.from(root.querySelectorAll('*'))]) {
        if (seen.has(el)) {
          continue;
        }
        seen.add(el);
        const own = Array.from(el.childNodes)
          .filter(n => n.nodeType === Node.TEXT_NODE)
          .map(n => n.textContent ?? '')
          .join('')
          .trim();
        const box = (el as HTMLElement).getBoundingClientRect();
        if (!own || box.width === 0 || box.height === 0) {
          continue;
        }
        const style = getComputedStyle(el);
        if (style.visibility === 'hidden' || Number(style.opacity) === 0) {
          continue;
        }
        const bg = background(el);
        const fg = over(parse(style.color), bg);
        const [hi, lo] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
        const ratio = (hi + 0.05) / (lo + 0.05);
        if (ratio < 4.5) {
          failures.push(
            `${ratio.toFixed(2)}:1 "${own.slice(0, 40)}" <${el.tagName.toLowerCase()} class="${el.className}">`
          );
        }
      }
    }
    return failures;
  });
}

test.describe('dark theme', () => {
  test('every extension element meets WCAG AA contrast', async ({ page }) => {
    await page.evaluate(async () => {
      await (window as any).jupyterapp.commands.execute(
        'apputils:change-theme',
        { theme: 'JupyterLab Dark' }
      );
    });
    await expect(page.locator('body')).toHaveAttribute(
      'data-jp-theme-light',
      'false'
    );
    const failures: string[] = [];
    const check = async (where: string) => {
      for (const f of await lowContrast(page)) {
        failures.push(`${where}: ${f}`);
      }
    };
    await page.sidebar.openTab('cs3sync-spaces');
    await expect(
      page.locator('#cs3sync-spaces li.jp-cs3sync-item')
    ).toHaveCount(3);
    await check('spaces');
    await page.sidebar.openTab('cs3sync-shares');
    const shares = page.locator('#cs3sync-shares');
    for (const tab of ['Shared with me', 'Shared by me', 'Public links']) {
      await shares.getByRole('tab', { name: tab }).click();
      await expect(shares.locator('li.jp-cs3sync-item').first()).toBeVisible();
      await check(tab);
    }
    // The lock chip (a file of its own: the lock stays for the rest of the run).
    await saveText(page, 'dark-locked.md', '# locked\n');
    await waitSynced(page, expect);
    await admin('storage/lock', {
      path: `${EINSTEIN_HOME}/dark-locked.md`,
      app: 'cernbox-office',
      user: 'marie'
    });
    await openFile(page, 'dark-locked.md');
    await expect(page.locator('.jp-cs3sync-lockIndicator')).toBeVisible();
    await check('lock chip');
    // The conflict banner on an open document, and its Compare view.
    await makeConflict(
      page,
      expect,
      'dark-conflict.md',
      '# Mine\n',
      '# Theirs\n'
    );
    await openFile(page, 'dark-conflict.md');
    const banner = page.locator(
      '.jp-MainAreaWidget:visible .jp-cs3sync-conflictBanner'
    );
    await expect(banner).toBeVisible({ timeout: 120000 });
    await check('conflict banner');
    await banner.getByRole('button', { name: 'Compare' }).click();
    await expect(
      page.locator('.jp-cs3sync-compare [data-kind="theirs"]')
    ).toContainText('Theirs');
    await check('compare');
    // Settle it (Keep theirs), so the next checks see no banner of ours.
    await page
      .locator('#jp-main-dock-panel')
      .getByRole('tab', { name: 'dark-conflict.md', exact: true })
      .click();
    await banner.getByRole('button', { name: 'Keep theirs' }).click();
    await expect(banner).toBeHidden({ timeout: 60000 });
    // The offline state in the Sync panel and the status bar.
    await admin('grpc/outage');
    try {
      await saveText(page, 'dark-offline.md', '# offline\n');
      await page.sidebar.openTab('cs3sync-sync');
      await expect(page.locator('.jp-cs3sync-syncItem')).toHaveAttribute(
        'data-state',
        'offline',
        { timeout: 30000 }
      );
      await expect(
        page.locator('#cs3sync-sync .jp-cs3sync-syncState.jp-mod-offline')
      ).toBeVisible();
      await check('offline');
      await page.screenshot({ path: screenshot('dark.png') });
    } finally {
      await admin('grpc/restart');
    }
    // Leave the next tests what they expect: light theme, nothing pending.
    await page.evaluate(async () => {
      await (window as any).jupyterapp.commands.execute(
        'apputils:change-theme',
        { theme: 'JupyterLab Light' }
      );
    });
    await expect
      .poll(
        () =>
          page.evaluate(async () => {
            const app = (window as any).jupyterapp;
            const url = app.serviceManager.serverSettings.baseUrl;
            const answer = await fetch(url + 'api/cs3sync/journal');
            const journal = await answer.json();
            return journal.pending === 0 && journal.state === 'online';
          }),
        { timeout: 120000 }
      )
      .toBe(true);
    expect(failures).toEqual([]);
  });
});
