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

/**
 * WCAG AA (4.5:1) on every visible element of the extension that draws text, in the dark theme.
 * Colours are read from the computed style; backgrounds are composited up the ancestors, so a
 * translucent chip over a dark panel is measured as it is seen.
 */
export async function lowContrast(page: any): Promise<string[]> {
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
